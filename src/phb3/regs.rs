//! PHB3 register offsets and fields, in IBM bit order (bit 0 is the most significant).
//!
//! Resources: skiboot include/phb3-regs.h; QEMU include/hw/pci-host/pnv_phb3_regs.h.

/// `1 << (63 - bit)`: a single bit in IBM (big-endian) numbering.
pub const fn ppc_bit(bit: u32) -> u64 {
    1u64 << (63 - bit)
}

/// The mask of IBM bits `first..=last`.
pub const fn ppc_bitmask(first: u32, last: u32) -> u64 {
    (u64::MAX >> first) & (u64::MAX << (63 - last))
}

/// LSI source id.
pub const PHB_LSI_SOURCE_ID: u64 = 0x100;
/// Config-space data (little-endian, 1/2/4-byte lanes at +0..+3).
pub const PHB_CONFIG_DATA: u64 = 0x130;
/// Config-space address.
pub const PHB_CONFIG_ADDRESS: u64 = 0x140;
/// Interrupt vector table BAR.
pub const PHB_IVT_BAR: u64 = 0x150;
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

/// IODA_ADDR: auto-increment the index after each data access.
pub const PHB_IODA_AD_AUTOINC: u64 = ppc_bit(0);
/// IODA_ADDR: table select field (IBM bits 11..15).
pub const PHB_IODA_AD_TSEL: u64 = ppc_bitmask(11, 15);
/// IODA_ADDR: table index field (IBM bits 55..63).
pub const PHB_IODA_AD_TADR: u64 = ppc_bitmask(55, 63);

/// IODA2 table ids for IODA_ADDR's table-select field.
pub mod ioda2_table {
    /// Interrupt vector table (LXIVT).
    pub const LXIVT: u64 = 2;
    /// PE state table A.
    pub const PESTA: u64 = 7;
    /// PE state table B.
    pub const PESTB: u64 = 8;
    /// Translation validation table.
    pub const TVT: u64 = 9;
    /// M64 BAR table.
    pub const M64BT: u64 = 16;
    /// M32 domain table.
    pub const M32DT: u64 = 17;
    /// PE error enable vector.
    pub const PEEV: u64 = 20;
}
