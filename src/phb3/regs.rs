//! PHB3 register offsets and fields, in IBM bit order (bit 0 is the most significant), and the
//! PBCQ nest registers reached over XSCOM.
//!
//! Every definition cites the line of the hardware source it follows, so it can be checked one
//! by one. Multi-bit fields are masks used with [`get_field`] and [`set_field`] (skiboot's
//! GETFIELD/SETFIELD); single bits are `bitflags!` types.
//!
//! Resources: skiboot include/phb3-regs.h (PHB registers, IODA2 tables), include/phb3.h
//! (M32_PCI_START/SIZE, table sizes, PHB3_RESERVED_PE_NUM), hw/phb3.c (phb3_probe_pbcq,
//! phb3_init_ioda2, phb3_ioda_sel); QEMU include/hw/pci-host/pnv_phb3_regs.h (PBCQ_NEST_*,
//! PBCQ_PCI_*, PBCQ_SPCI_*) and hw/pci-host/pnv_phb3_pbcq.c (what the BAR registers hold).

use bitflags::bitflags;

/// `1 << (63 - bit)`: a single bit in IBM (big-endian) numbering.
pub const fn ppc_bit(bit: u32) -> u64 {
    1u64 << (63 - bit)
}

/// The mask of IBM bits `first..=last`.
pub const fn ppc_bitmask(first: u32, last: u32) -> u64 {
    (u64::MAX >> first) & (u64::MAX << (63 - last))
}

/// The left shift that puts a value's bit 0 at IBM bit `bit` (skiboot PPC_BITLSHIFT).
pub const fn ppc_bitlshift(bit: u32) -> u32 {
    63 - bit
}

/// The field `mask` of `word`, shifted down (skiboot/QEMU GETFIELD).
pub const fn get_field(mask: u64, word: u64) -> u64 {
    if mask == 0 {
        return 0;
    }
    (word & mask) >> mask.trailing_zeros()
}

/// `word` with the field `mask` replaced by `value`; bits of `value` that do not fit the
/// field are dropped (skiboot/QEMU SETFIELD).
pub const fn set_field(mask: u64, word: u64, value: u64) -> u64 {
    if mask == 0 {
        return word;
    }
    (word & !mask) | ((value << mask.trailing_zeros()) & mask)
}

/// Whether `value` fits the field `mask` without losing bits (use before [`set_field`] when a
/// silent truncation would be a bug).
pub const fn fits_field(mask: u64, value: u64) -> bool {
    mask != 0 && value <= (mask >> mask.trailing_zeros())
}

// ---------------------------------------------------------------------------------------------
// PHB register offsets (skiboot include/phb3-regs.h, "PHB Fundamental register set A/B").
// ---------------------------------------------------------------------------------------------

/// LSI source id.
pub const PHB_LSI_SOURCE_ID: u64 = 0x100;
/// Config-space data (little-endian, 1/2/4-byte lanes at +0..+3).
pub const PHB_CONFIG_DATA: u64 = 0x130;
/// Config-space address.
pub const PHB_CONFIG_ADDRESS: u64 = 0x140;
/// Interrupt vector table BAR.
pub const PHB_IVT_BAR: u64 = 0x150;
/// Reject bit array BAR (memory-resident only on DD1; skiboot writes 0).
pub const PHB_RBA_BAR: u64 = 0x158;
/// PHB3 configuration (M32 enable, 64-byte TCE enable, MSI enables).
pub const PHB_PHB3_CONFIG: u64 = 0x160;
/// RID translation table BAR.
pub const PHB_RTT_BAR: u64 = 0x168;
/// PE lookup table vector BAR.
pub const PHB_PELTV_BAR: u64 = 0x188;
/// M32 window: CPU base address.
pub const PHB_M32_BASE_ADDR: u64 = 0x190;
/// M32 window: mask.
pub const PHB_M32_BASE_MASK: u64 = 0x198;
/// M32 window: PCI start address.
pub const PHB_M32_START_ADDR: u64 = 0x1A0;
/// PE state table BAR.
pub const PHB_PEST_BAR: u64 = 0x1A8;
/// Upper address bits of the M64 windows on PCI.
pub const PHB_M64_UPPER_BITS: u64 = 0x1F0;
/// DMA read sync (skiboot phb3-regs.h `PHB_DMARD_SYNC 0x200`; QEMU pnv_phb3_regs.h adds
/// `PHB_DMARD_SYNC_START PPC_BIT(0)`, `PHB_DMARD_SYNC_COMPLETE PPC_BIT(1)`). The TCE kill's
/// completion step (see `iommu::kill`).
pub const PHB_DMARD_SYNC: u64 = 0x200;
/// RID translation cache invalidate.
pub const PHB_RTC_INVALIDATE: u64 = 0x208;
/// TCE cache kill.
pub const PHB_TCE_KILL: u64 = 0x210;
/// TCE speculation control.
pub const PHB_TCE_SPEC_CTL: u64 = 0x218;
/// IODA table address (table select, index, auto-increment).
pub const PHB_IODA_ADDR: u64 = 0x220;
/// IODA table data.
pub const PHB_IODA_DATA0: u64 = 0x228;
/// Version register.
pub const PHB_VERSION: u64 = 0x800;
/// Reset register.
pub const PHB_RESET: u64 = 0x808;
/// Control register.
pub const PHB_CONTROL: u64 = 0x810;

// ---------------------------------------------------------------------------------------------
// PHB register fields.
// ---------------------------------------------------------------------------------------------

bitflags! {
    /// PHB_PHB3_CONFIG (0x160) bits. skiboot phb3-regs.h `PHB_PHB3C_*`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Phb3Config: u64 {
        /// `PHB_PHB3C_64B_TCE_EN PPC_BIT(2)`: 64-byte TCE fetches. skiboot writes it alone
        /// first in Init_25 ("Clear TCE cache then configure the PHB").
        const TCE_64B_EN = ppc_bit(2);
        /// `PHB_PHB3C_32BIT_MSI_EN PPC_BIT(8)`: 32-bit MSI window at PCI 0xFFFF0000.
        const MSI_32BIT_EN = ppc_bit(8);
        /// `PHB_PHB3C_64BIT_MSI_EN PPC_BIT(14)`: 64-bit MSI window at PCI 1 << 60.
        const MSI_64BIT_EN = ppc_bit(14);
        /// `PHB_PHB3C_M32_EN PPC_BIT(16)`: decode the M32 window.
        const M32_EN = ppc_bit(16);
    }
}

bitflags! {
    /// The enable bit shared by the in-memory table BARs: `PHB_RTT_BAR_ENABLE`,
    /// `PHB_PELTV_BAR_ENABLE`, `PHB_PEST_BAR_ENABLE`, `PHB_IVT_BAR_ENABLE` are all PPC_BIT(0).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct TableBar: u64 {
        /// PPC_BIT(0): the PHB may use the table.
        const ENABLE = ppc_bit(0);
    }
}

/// RTT_BAR address field: `PHB_RTT_BASE_ADDRESS_MASK PPC_BITMASK(14,46)`. The field holds the
/// address in place (QEMU `pnv_phb3_resolve_pe`: `addr = rtt & PHB_RTT_BASE_ADDRESS_MASK`),
/// so the table is 128 KiB aligned (bit 46 is address bit 17).
pub const PHB_RTT_BASE_ADDRESS_MASK: u64 = ppc_bitmask(14, 46);
/// PELTV_BAR address field: `PHB_PELTV_BASE_ADDRESS PPC_BITMASK(14,50)` (8 KiB aligned).
pub const PHB_PELTV_BASE_ADDRESS_MASK: u64 = ppc_bitmask(14, 50);
/// PEST_BAR address field: `PHB_PEST_BASE_ADDRESS PPC_BITMASK(14,51)` (4 KiB aligned).
pub const PHB_PEST_BASE_ADDRESS_MASK: u64 = ppc_bitmask(14, 51);

/// The value of a table BAR (RTT, PELTV or PEST) pointing at `table` and enabled, or `None`
/// when `table` has bits outside `address_mask` (misaligned or beyond the PHB's reach).
/// skiboot phb3_init_ioda2: `out_be64(PHB_RTT_BAR, (u64)p->tbl_rtt | PHB_RTT_BAR_ENABLE)`.
pub const fn table_bar(table: u64, address_mask: u64) -> Option<u64> {
    if table & !address_mask != 0 {
        return None;
    }
    Some(table | TableBar::ENABLE.bits())
}

/// CONFIG_ADDRESS: `PHB_CA_ENABLE PPC_BIT(0)`.
pub const PHB_CA_ENABLE: u64 = ppc_bit(0);
/// CONFIG_ADDRESS: `PHB_CA_BUS PPC_BITMASK(4,11)` (bus << 52).
pub const PHB_CA_BUS: u64 = ppc_bitmask(4, 11);
/// CONFIG_ADDRESS: `PHB_CA_DEV PPC_BITMASK(12,16)` (device << 47).
pub const PHB_CA_DEV: u64 = ppc_bitmask(12, 16);
/// CONFIG_ADDRESS: `PHB_CA_FUNC PPC_BITMASK(17,19)` (function << 44).
pub const PHB_CA_FUNC: u64 = ppc_bitmask(17, 19);
/// CONFIG_ADDRESS: `PHB_CA_BDFN PPC_BITMASK(4,19)`: bus, device and function together, so
/// devfn lands at << 44.
pub const PHB_CA_BDFN: u64 = ppc_bitmask(4, 19);
/// CONFIG_ADDRESS: `PHB_CA_REG PPC_BITMASK(20,31)` (register << 32). QEMU
/// `pnv_phb3_config_read` uses `(addr >> 32) & 0xffc`: the low two bits pick nothing; the byte
/// lane is chosen by the CONFIG_DATA offset.
pub const PHB_CA_REG: u64 = ppc_bitmask(20, 31);
/// CONFIG_ADDRESS: `PHB_CA_PE PPC_BITMASK(40,47)` (PE << 16), the PE charged with errors.
pub const PHB_CA_PE: u64 = ppc_bitmask(40, 47);

/// The CONFIG_ADDRESS value for a config access: enable, bus, devfn, dword-aligned register
/// (`reg & 0xFFC`, the lane is picked by the data offset) and PE. Bits beyond each field are
/// dropped; callers validate first (see `phb3::config`).
pub const fn config_address(bus: u8, devfn: u8, reg: u16, pe: u8) -> u64 {
    let bdfn = ((bus as u64) << 8) | devfn as u64;
    let mut value = PHB_CA_ENABLE;
    value = set_field(PHB_CA_BDFN, value, bdfn);
    value = set_field(PHB_CA_REG, value, (reg & 0xFFC) as u64);
    set_field(PHB_CA_PE, value, pe as u64)
}

/// RTC_INVALIDATE: `PHB_RTC_INVALIDATE_ALL PPC_BIT(0)`.
pub const PHB_RTC_INVALIDATE_ALL: u64 = ppc_bit(0);
/// RTC_INVALIDATE: `PHB_RTC_INVALIDATE_RID PPC_BITMASK(16,31)` (one RID; QEMU invalidates all
/// whatever is written).
pub const PHB_RTC_INVALIDATE_RID: u64 = ppc_bitmask(16, 31);

/// TCE_KILL: `PHB_TCE_KILL_ALL PPC_BIT(0)`.
pub const PHB_TCE_KILL_ALL: u64 = ppc_bit(0);

/// DMARD_SYNC: `PHB_DMARD_SYNC_START PPC_BIT(0)` (QEMU pnv_phb3_regs.h; skiboot phb4-regs.h
/// `PHB_DMA_READ_SYNC_START` at the same offset and bit).
pub const PHB_DMARD_SYNC_START: u64 = ppc_bit(0);
/// DMARD_SYNC: `PHB_DMARD_SYNC_COMPLETE PPC_BIT(1)` (QEMU pnv_phb3_regs.h; skiboot
/// phb4-regs.h `PHB_DMA_READ_SYNC_COMPLETE`). QEMU's PHB3 model reads it back set, always.
pub const PHB_DMARD_SYNC_COMPLETE: u64 = ppc_bit(1);

/// IODA_ADDR: auto-increment the index after each data access.
pub const PHB_IODA_AD_AUTOINC: u64 = ppc_bit(0);
/// IODA_ADDR: table select field (IBM bits 11..15).
pub const PHB_IODA_AD_TSEL: u64 = ppc_bitmask(11, 15);
/// IODA_ADDR: table index field (IBM bits 55..63).
pub const PHB_IODA_AD_TADR: u64 = ppc_bitmask(55, 63);

/// The IODA_ADDR value that selects entry `index` of IODA2 table `table`, optionally with
/// auto-increment (skiboot `phb3_ioda_sel`). Returns `None` when the index does not fit the
/// 9-bit TADR field: the hardware would silently wrap onto another entry.
pub const fn ioda_addr(table: u64, index: u64, autoinc: bool) -> Option<u64> {
    if !fits_field(PHB_IODA_AD_TSEL, table) || !fits_field(PHB_IODA_AD_TADR, index) {
        return None;
    }
    let mut value = if autoinc { PHB_IODA_AD_AUTOINC } else { 0 };
    value = set_field(PHB_IODA_AD_TSEL, value, table);
    Some(set_field(PHB_IODA_AD_TADR, value, index))
}

/// IODA2 table ids for IODA_ADDR's table-select field.
pub mod ioda2_table {
    /// Interrupt list (`IODA2_TBL_LIST`).
    pub const LIST: u64 = 1;
    /// LSI interrupt vector table (LXIVT).
    pub const LXIVT: u64 = 2;
    /// Interrupt vector cache CAM (`IODA2_TBL_IVC_CAM`).
    pub const IVC_CAM: u64 = 3;
    /// Reject bit array (`IODA2_TBL_RBA`).
    pub const RBA: u64 = 4;
    /// RID translation cache CAM (`IODA2_TBL_RCAM`).
    pub const RCAM: u64 = 5;
    /// MSI routing table (`IODA2_TBL_MRT`).
    pub const MRT: u64 = 6;
    /// PE state table A.
    pub const PESTA: u64 = 7;
    /// PE state table B.
    pub const PESTB: u64 = 8;
    /// Translation validation table.
    pub const TVT: u64 = 9;
    /// TCE cache CAM (`IODA2_TBL_TCAM`).
    pub const TCAM: u64 = 10;
    /// TCE cache data (`IODA2_TBL_TDR`).
    pub const TDR: u64 = 11;
    /// M64 BAR table.
    pub const M64BT: u64 = 16;
    /// M32 domain table.
    pub const M32DT: u64 = 17;
    /// PE error enable vector.
    pub const PEEV: u64 = 20;
}

/// Entries of each on-chip IODA2 table that bring-up clears (QEMU `pnv_phb3_ioda_access`
/// masks: TVT 511, M64BT 15, M32DT 255, PESTA/PESTB 255, PEEV 3).
pub mod ioda2_entries {
    /// TVT: two DMA windows for each of the 256 PEs.
    pub const TVT: u32 = 512;
    /// M64 BAR table.
    pub const M64BT: u32 = 16;
    /// M32 domain table: one segment per PE.
    pub const M32DT: u32 = 256;
    /// PE state tables A and B: one entry per PE.
    pub const PEST: u32 = 256;
    /// PE error enable vector: 256 bits in 4 doublewords.
    pub const PEEV: u32 = 4;
}

/// PHB_VERSION as it reads on QEMU (hw/pci-host/pnv_phb3.c: "Simulate venice DD2.0").
pub const PHB_VERSION_QEMU: u64 = 0x0000_00A3_0000_0005;

/// The core revision packed from PHB_VERSION as skiboot does (`phb3_init_hw`:
/// `rev = ((val >> 16) & 0x00ff0000) | (val & 0xffff)`), e.g. 0xa30005 = Venice DD2.0.
pub const fn phb_revision(version: u64) -> u32 {
    (((version >> 16) & 0x00ff_0000) | (version & 0xffff)) as u32
}

// ---------------------------------------------------------------------------------------------
// In-memory IODA2 tables and the M32 window (skiboot include/phb3.h).
// ---------------------------------------------------------------------------------------------

/// PEs per PHB3 (`PHB3_MAX_PE_NUM`).
pub const PHB3_NUM_PES: u16 = 256;
/// The PE that every RID maps to until it is assigned (`PHB3_RESERVED_PE_NUM`).
pub const PHB3_RESERVED_PE: u16 = 255;
/// RTT entries: one per 16-bit RID (`RTT_TABLE_ENTRIES`).
pub const RTT_ENTRIES: usize = 0x1_0000;
/// RTT size: 64 Ki big-endian u16 (`RTT_TABLE_SIZE`); also its required alignment.
pub const RTT_SIZE: usize = 0x2_0000;
/// PELTV size: 256 entries of 256 bits (`PELTV_TABLE_SIZE`).
pub const PELTV_SIZE: usize = 0x2000;
/// Bytes in one PELTV entry.
pub const PELTV_ENTRY_BYTES: usize = 32;
/// PEST size: 256 entries of 16 bytes (`PEST_TABLE_SIZE`).
pub const PEST_SIZE: usize = 0x1000;
/// Where the M32 window starts on PCI (`M32_PCI_START`).
pub const M32_PCI_START: u64 = 0x8000_0000;
/// The largest M32 window (`M32_PCI_SIZE`): PCI 0x8000_0000..0x1_0000_0000.
pub const M32_PCI_SIZE: u64 = 0x8000_0000;

/// The M32 mask register value for a window of `size` bytes (a power of two): skiboot
/// phb3_init_ioda2 writes `~(M32_PCI_SIZE - 1)`. QEMU ignores the top 14 bits
/// (`size = ~(mask | 0xfffc000000000000) + 1`), so 0x0003ffff80000000 works there too.
pub const fn m32_mask(size: u64) -> u64 {
    !(size.wrapping_sub(1))
}

/// The window size a M32 mask register describes, as QEMU `pnv_phb3_check_m32` decodes it.
pub const fn m32_size(mask: u64) -> u64 {
    (!(mask | 0xfffc_0000_0000_0000)).wrapping_add(1)
}

// ---------------------------------------------------------------------------------------------
// PBCQ registers, reached over XSCOM at PCB addresses relative to the three bases in the
// `ibm,power8-pbcq` node's `reg` (nest, pci, spci). QEMU pnv_phb3_regs.h `PBCQ_*`; skiboot
// phb3_probe_pbcq uses the same numbers as literals.
// ---------------------------------------------------------------------------------------------

/// Nest: interrupt source number compare (`PBCQ_NEST_IRSN_COMPARE`).
pub const PBCQ_NEST_IRSN_COMPARE: u64 = 0x1A;
/// Nest: interrupt source number mask (`PBCQ_NEST_IRSN_MASK`).
pub const PBCQ_NEST_IRSN_MASK: u64 = 0x1B;
/// Nest: LSI source id (`PBCQ_NEST_LSI_SRC_ID`).
pub const PBCQ_NEST_LSI_SRC_ID: u64 = 0x1F;
/// Nest: MMIO window 0 BAR, address << 14 (`PBCQ_NEST_MMIO_BAR0`).
pub const PBCQ_NEST_MMIO_BAR0: u64 = 0x40;
/// Nest: MMIO window 1 BAR, address << 14 (`PBCQ_NEST_MMIO_BAR1`).
pub const PBCQ_NEST_MMIO_BAR1: u64 = 0x41;
/// Nest: PHB register BAR, address << 14 (`PBCQ_NEST_PHB_BAR`).
pub const PBCQ_NEST_PHB_BAR: u64 = 0x42;
/// Nest: MMIO window 0 mask, (~(size - 1)) << 14 (`PBCQ_NEST_MMIO_MASK0`).
pub const PBCQ_NEST_MMIO_MASK0: u64 = 0x43;
/// Nest: MMIO window 1 mask (`PBCQ_NEST_MMIO_MASK1`).
pub const PBCQ_NEST_MMIO_MASK1: u64 = 0x44;
/// Nest: BAR enables (`PBCQ_NEST_BAR_EN`).
pub const PBCQ_NEST_BAR_EN: u64 = 0x45;
/// PCI: copy of the PHB register BAR (`PBCQ_PCI_BAR2`); skiboot checks it against the nest
/// PHB BAR and fixes it up ("Dbl check PHB BAR").
pub const PBCQ_PCI_BAR2: u64 = 0x0B;
/// SPCI: ASB address for indirect PHB register access (`PBCQ_SPCI_ASB_ADDR`).
pub const PBCQ_SPCI_ASB_ADDR: u64 = 0x0;
/// SPCI: ASB status (`PBCQ_SPCI_ASB_STATUS`); skiboot reads it before touching the PCI
/// registers (workaround HW275117).
pub const PBCQ_SPCI_ASB_STATUS: u64 = 0x1;
/// SPCI: ASB data (`PBCQ_SPCI_ASB_DATA`).
pub const PBCQ_SPCI_ASB_DATA: u64 = 0x2;
/// SPCI: AIB CAPP enable (`PBCQ_SPCI_AIB_CAPP_EN`); bit 0 set = the PHB is in CAPI mode and
/// skiboot leaves it alone ("Ignoring bridge in CAPP mode").
pub const PBCQ_SPCI_AIB_CAPP_EN: u64 = 0x3;

bitflags! {
    /// PBCQ_NEST_BAR_EN (nest 0x45) bits, `PBCQ_NEST_BAR_EN_*` in QEMU pnv_phb3_regs.h;
    /// skiboot phb3_probe_pbcq writes the same bits as 0x8000.., 0x4000.., 0x2000..,
    /// 0x1800...
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct PbcqBarEnable: u64 {
        /// PPC_BIT(0): decode MMIO window 0.
        const MMIO0 = ppc_bit(0);
        /// PPC_BIT(1): decode MMIO window 1.
        const MMIO1 = ppc_bit(1);
        /// PPC_BIT(2): decode the PHB register BAR.
        const PHB = ppc_bit(2);
        /// PPC_BIT(3): receive interrupt source number messages.
        const IRSN_RX = ppc_bit(3);
        /// PPC_BIT(4): send interrupt source number messages.
        const IRSN_TX = ppc_bit(4);
    }
}

/// How far a PBCQ BAR register shifts the address (QEMU `pnv_pbcq_default_bars`:
/// `nest_regs[PBCQ_NEST_MMIO_BAR0] = mm0 << 14`; skiboot `mmio0_bar >>= 14`).
pub const PBCQ_BAR_SHIFT: u32 = 14;
/// The bits QEMU keeps of an MMIO BAR or mask write (`val & 0xffffffffc0000000`): windows are
/// 64 KiB granular.
pub const PBCQ_MMIO_BAR_BITS: u64 = 0xFFFF_FFFF_C000_0000;
/// The bits QEMU keeps of a PHB BAR write (`val & 0xfffffffffc000000`): 4 KiB granular.
pub const PBCQ_PHB_BAR_BITS: u64 = 0xFFFF_FFFF_FC00_0000;
/// Size of the PHB register block a PHB BAR maps (QEMU `pnv_pbcq_update_map`: 0x1000).
pub const PHB_REGS_SIZE: u64 = 0x1000;
/// Real addresses the BAR registers can hold: 64 - 14 = 50 bits.
pub const PBCQ_ADDRESS_LIMIT: u64 = 1 << (64 - PBCQ_BAR_SHIFT);

/// The address a PBCQ BAR register value holds.
pub const fn pbcq_bar_address(register: u64) -> u64 {
    register >> PBCQ_BAR_SHIFT
}

/// The PBCQ BAR register value for `address`.
pub const fn pbcq_bar_value(address: u64) -> u64 {
    address << PBCQ_BAR_SHIFT
}

/// The window size a PBCQ MMIO mask register describes (skiboot phb3_probe_pbcq:
/// `bmask &= 0xffffffffc0000000; size = ((~bmask) >> 14) + 1`). A mask of 0 decodes to 2^50.
pub const fn pbcq_mask_size(register: u64) -> u64 {
    ((!(register & PBCQ_MMIO_BAR_BITS)) >> PBCQ_BAR_SHIFT) + 1
}

/// The PBCQ MMIO mask register value for a window of `size` bytes (a power of two).
pub const fn pbcq_mask_value(size: u64) -> u64 {
    (!(size.wrapping_sub(1))) << PBCQ_BAR_SHIFT
}
