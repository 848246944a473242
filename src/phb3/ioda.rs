//! IODA2 initialisation of one PHB3 and the [`Phb3`] that owns its in-memory tables: the RTT
//! (RID → PE), PELTV and PEST, the on-chip tables cleared through IODA_ADDR/IODA_DATA0, the
//! M32 window, and PE assignment with RTC invalidation.
//!
//! The register sequence is skiboot's `phb3_init_ioda2` + `phb3_ioda_reset` (Init_15..36)
//! without the interrupt parts (no LXIVT/IVT/MRT: tcefw takes no PHB interrupts, so the MSI
//! windows stay off). Everything that can fail (the PHB not answering, allocation, a table the
//! BAR cannot hold) is checked before the first register write, so a failed init leaves the
//! PHB as it was and the tables freed. A PHB that stops answering half-way (read-back
//! mismatch) is turned off again: table BARs and M32 disabled, tables freed.
//!
//! Resources: skiboot hw/phb3.c (`phb3_init_ioda2`, `phb3_ioda_reset`, `phb3_ioda_sel`,
//! `phb3_set_pe`, `phb3_allocate_tables`), include/phb3.h; QEMU hw/pci-host/pnv_phb3.c
//! (`pnv_phb3_ioda_access` autoinc and table sizes, `pnv_phb3_check_m32`,
//! `pnv_phb3_resolve_pe`, `pnv_phb3_rtc_invalidate`).

use super::pbcq::Window;
use super::regs::{
    ioda2_entries, ioda2_table, ioda_addr, m32_mask, phb_revision, table_bar, Phb3Config, TableBar,
    M32_PCI_SIZE, M32_PCI_START, PELTV_SIZE, PEST_SIZE, PHB3_NUM_PES, PHB3_RESERVED_PE,
    PHB_IODA_ADDR, PHB_IODA_DATA0, PHB_IVT_BAR, PHB_M32_BASE_ADDR, PHB_M32_BASE_MASK,
    PHB_M32_START_ADDR, PHB_PELTV_BAR, PHB_PELTV_BASE_ADDRESS_MASK, PHB_PEST_BAR,
    PHB_PEST_BASE_ADDRESS_MASK, PHB_PHB3_CONFIG, PHB_RBA_BAR, PHB_RTC_INVALIDATE,
    PHB_RTC_INVALIDATE_ALL, PHB_RTT_BAR, PHB_RTT_BASE_ADDRESS_MASK, PHB_TCE_KILL, PHB_TCE_KILL_ALL,
    PHB_VERSION, RTT_SIZE,
};
use super::tables::{fill_peltv_self, fill_rtt_reserved};
use crate::hw::regio::RegIo;
use crate::mm::phys::OwnedFrame;
use crate::mm::{FrameAllocator, PhysAddr};
use core::fmt;
use core::ops::RangeInclusive;
use core::sync::atomic::{fence, Ordering};

/// skiboot Init_26: "At least 512ns delay according to spec" after PHB3_CONFIG, before the
/// on-chip tables are touched.
const PHB3_CONFIG_SETTLE_NS: u64 = 512;

/// Which in-memory table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phb3Table {
    /// RID translation table, 128 KiB.
    Rtt,
    /// PE lookup table vector, 8 KiB.
    Peltv,
    /// PE state table, 4 KiB.
    Pest,
}

impl Phb3Table {
    /// Bytes the table takes (and its alignment).
    pub const fn size(self) -> usize {
        match self {
            Phb3Table::Rtt => RTT_SIZE,
            Phb3Table::Peltv => PELTV_SIZE,
            Phb3Table::Pest => PEST_SIZE,
        }
    }

    const fn address_mask(self) -> u64 {
        match self {
            Phb3Table::Rtt => PHB_RTT_BASE_ADDRESS_MASK,
            Phb3Table::Peltv => PHB_PELTV_BASE_ADDRESS_MASK,
            Phb3Table::Pest => PHB_PEST_BASE_ADDRESS_MASK,
        }
    }

    const fn bar(self) -> u64 {
        match self {
            Phb3Table::Rtt => PHB_RTT_BAR,
            Phb3Table::Peltv => PHB_PELTV_BAR,
            Phb3Table::Pest => PHB_PEST_BAR,
        }
    }
}

impl fmt::Display for Phb3Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phb3Table::Rtt => "RTT",
            Phb3Table::Peltv => "PELTV",
            Phb3Table::Pest => "PEST",
        })
    }
}

/// Errors from PHB3 IODA2 set-up and PE/TVT updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phb3Error {
    /// PHB_VERSION read as 0 or all-ones (skiboot: "Failed to read version, PHB appears
    /// broken"): the register BAR is not decoded or the PHB is fenced.
    NotAnswering {
        /// What PHB_VERSION read.
        version: u64,
    },
    /// The frame allocator had no block for a table.
    OutOfMemory {
        /// The table.
        table: Phb3Table,
    },
    /// A table block the BAR register cannot point at (misaligned or beyond its address
    /// bits).
    TableOutOfReach {
        /// The table.
        table: Phb3Table,
        /// Its address.
        pa: PhysAddr,
    },
    /// An M32 window the PHB cannot decode (size not a power of two of at least 64 KiB, CPU
    /// base not aligned to it, or PCI range not inside 0x8000_0000..0x1_0000_0000).
    BadM32Window {
        /// CPU base address.
        cpu_base: u64,
        /// Size.
        size: u64,
    },
    /// A register did not read back what was written: the PHB stopped answering during
    /// initialisation. The PHB has been turned off again.
    Readback {
        /// Register offset.
        register: u64,
        /// Value written.
        wrote: u64,
        /// Value read.
        read: u64,
    },
    /// A PE number beyond the PHB's 256.
    PeOutOfRange {
        /// The PE asked for.
        pe: u16,
    },
    /// The reserved PE (255) cannot be assigned; use [`Phb3::unassign`].
    ReservedPe,
    /// A TVT index beyond 511: the hardware would wrap it onto another PE's entry.
    TvtIndexOutOfRange {
        /// The index asked for.
        index: u32,
    },
}

impl fmt::Display for Phb3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phb3Error::NotAnswering { version } => {
                write!(f, "failed to read version ({version:#018x}), PHB appears broken")
            }
            Phb3Error::OutOfMemory { table } => {
                write!(f, "no memory for the {table} ({} bytes)", table.size())
            }
            Phb3Error::TableOutOfReach { table, pa } => {
                write!(f, "{table} at {pa:#x} cannot be addressed by its BAR")
            }
            Phb3Error::BadM32Window { cpu_base, size } => {
                write!(f, "M32 window {cpu_base:#x} size {size:#x} cannot be decoded")
            }
            Phb3Error::Readback { register, wrote, read } => write!(
                f,
                "register {register:#x} read back {read:#018x} after {wrote:#018x}: PHB stopped answering"
            ),
            Phb3Error::PeOutOfRange { pe } => write!(f, "PE#{pe} is beyond the PHB's 256 PEs"),
            Phb3Error::ReservedPe => write!(f, "PE#{PHB3_RESERVED_PE} is reserved"),
            Phb3Error::TvtIndexOutOfRange { index } => {
                write!(f, "TVT index {index} is beyond the 512 entries")
            }
        }
    }
}

/// The M32 window: PCI addresses `[pci_base, pci_base + size)` appear to the CPU at
/// `[cpu_base, cpu_base + size)`, inside the PBCQ's MMIO1 window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct M32Window {
    /// CPU (real) address of the window.
    pub cpu_base: u64,
    /// PCI address of the window (0x8000_0000 on PHB3).
    pub pci_base: u64,
    /// Size in bytes, a power of two.
    pub size: u64,
}

impl M32Window {
    /// The M32 window skiboot uses: PCI 0x8000_0000 onward, at the start of MMIO1, as large as
    /// MMIO1 allows up to 2 GiB (`M32_PCI_START`, `M32_PCI_SIZE`, phb3_init_ioda2 Init_18..21).
    pub fn inside_mmio1(mmio1: Window) -> Result<Self, Phb3Error> {
        let window = M32Window {
            cpu_base: mmio1.base,
            pci_base: M32_PCI_START,
            size: mmio1.size.min(M32_PCI_SIZE),
        };
        window.check()?;
        Ok(window)
    }

    fn check(&self) -> Result<(), Phb3Error> {
        let bad = Phb3Error::BadM32Window {
            cpu_base: self.cpu_base,
            size: self.size,
        };
        let pci_end = self.pci_base.checked_add(self.size);
        if !self.size.is_power_of_two()
            || self.size < (64 << 10)
            || !self.cpu_base.is_multiple_of(self.size)
            || self.cpu_base.checked_add(self.size).is_none()
            || self.pci_base < M32_PCI_START
            || pci_end.is_none_or(|end| end > M32_PCI_START + M32_PCI_SIZE)
        {
            return Err(bad);
        }
        Ok(())
    }

    /// The CPU address of PCI address `pci`, if `pci` is inside the window.
    pub fn cpu_address(&self, pci: u64) -> Option<u64> {
        let offset = pci.checked_sub(self.pci_base)?;
        if offset >= self.size {
            return None;
        }
        self.cpu_base.checked_add(offset)
    }
}

/// The IODA_ADDR value for `table[index]`, or the typed error for an index past the table.
fn select(table: u64, index: u32, entries: u32, autoinc: bool) -> Result<u64, Phb3Error> {
    if index >= entries {
        return Err(Phb3Error::TvtIndexOutOfRange { index });
    }
    ioda_addr(table, u64::from(index), autoinc).ok_or(Phb3Error::TvtIndexOutOfRange { index })
}

/// Writes TVT entry `tvt_index` (PE * 2 + window) through IODA_ADDR/IODA_DATA0, without
/// auto-increment (skiboot `phb3_ioda_sel(p, IODA2_TBL_TVT, window_id, false)`).
///
/// IODA_ADDR/IODA_DATA0 is one shared pair per PHB: callers serialise every IODA access to a
/// PHB (init, TVT updates) themselves. An index past 511 is refused rather than wrapped.
pub fn write_tve(io: &dyn RegIo, tvt_index: u32, value: u64) -> Result<(), Phb3Error> {
    let address = select(ioda2_table::TVT, tvt_index, ioda2_entries::TVT, false)?;
    io.write64(PHB_IODA_ADDR, address);
    io.write64(PHB_IODA_DATA0, value);
    Ok(())
}

/// Reads TVT entry `tvt_index` back through IODA_ADDR/IODA_DATA0 (same serialisation rule as
/// [`write_tve`]).
pub fn read_tve(io: &dyn RegIo, tvt_index: u32) -> Result<u64, Phb3Error> {
    let address = select(ioda2_table::TVT, tvt_index, ioda2_entries::TVT, false)?;
    io.write64(PHB_IODA_ADDR, address);
    Ok(io.read64(PHB_IODA_DATA0))
}

/// Writes `entries` zeroes into an on-chip IODA2 table from index 0 with auto-increment.
fn clear_table_autoinc(io: &dyn RegIo, table: u64, entries: u32) {
    if let Some(address) = ioda_addr(table, 0, true) {
        io.write64(PHB_IODA_ADDR, address);
        for _ in 0..entries {
            io.write64(PHB_IODA_DATA0, 0);
        }
    }
}

/// One PHB3 in IODA2 mode, owning its RTT, PELTV and PEST. Dropping it turns the table BARs
/// and M32 off before the tables go back to the allocator, so the PHB never reads freed
/// memory.
pub struct Phb3<'a> {
    io: &'a dyn RegIo,
    index: u32,
    version: u64,
    m32: M32Window,
    rtt: OwnedFrame<'a>,
    peltv: OwnedFrame<'a>,
    pest: OwnedFrame<'a>,
}

impl<'a> Phb3<'a> {
    /// Initialises the PHB behind `io` (its PBCQ windows must already be enabled) with tables
    /// from `frames`: every RID in the reserved PE, each PE alone in its PELTV, PEST clear,
    /// TVT/M64BT/M32DT/PEST/PEEV cleared, `m32` open, caches invalidated. `index` names the
    /// PHB in logs and summaries (e.g. chip * 4 + PHB index).
    pub fn init(
        io: &'a dyn RegIo,
        frames: &'a dyn FrameAllocator,
        index: u32,
        m32: M32Window,
    ) -> Result<Self, Phb3Error> {
        let version = io.read64(PHB_VERSION);
        if version == 0 || version == u64::MAX {
            return Err(Phb3Error::NotAnswering { version });
        }
        m32.check()?;
        let table = |which: Phb3Table| {
            let block = OwnedFrame::alloc(frames, which.size())
                .ok_or(Phb3Error::OutOfMemory { table: which })?;
            match table_bar(block.pa(), which.address_mask()) {
                Some(_) => Ok(block),
                None => Err(Phb3Error::TableOutOfReach {
                    table: which,
                    pa: block.pa(),
                }),
            }
        };
        // A failure drops (frees) the blocks already taken.
        let mut rtt = table(Phb3Table::Rtt)?;
        let mut peltv = table(Phb3Table::Peltv)?;
        let mut pest = table(Phb3Table::Pest)?;
        fill_rtt_reserved(&mut rtt);
        fill_peltv_self(&mut peltv);
        pest.zero();

        let phb = Phb3 {
            io,
            index,
            version,
            m32,
            rtt,
            peltv,
            pest,
        };
        phb.program()?; // On error `phb` drops: BARs off, tables freed.
        Ok(phb)
    }

    /// skiboot Init_15..36 in order, minus interrupts.
    fn program(&self) -> Result<(), Phb3Error> {
        let io = self.io;
        // The tables must be in memory before the PHB may fetch them.
        fence(Ordering::SeqCst);
        let rtt_bar = self.table_bar(Phb3Table::Rtt);
        io.write64(PHB_RTT_BAR, rtt_bar);
        io.write64(PHB_PELTV_BAR, self.table_bar(Phb3Table::Peltv));
        io.write64(PHB_IVT_BAR, 0);
        io.write64(PHB_RBA_BAR, 0);
        io.write64(PHB_M32_BASE_ADDR, self.m32.cpu_base);
        io.write64(PHB_M32_BASE_MASK, m32_mask(self.m32.size));
        io.write64(PHB_M32_START_ADDR, self.m32.pci_base);
        io.write64(PHB_PEST_BAR, self.table_bar(Phb3Table::Pest));
        // Init_25: "Clear TCE cache then configure the PHB".
        io.write64(PHB_PHB3_CONFIG, Phb3Config::TCE_64B_EN.bits());
        io.write64(PHB_PHB3_CONFIG, Phb3Config::M32_EN.bits());
        io.delay_ns(PHB3_CONFIG_SETTLE_NS);

        // Init_31..36 and phb3_ioda_reset: no stale translation, M64 window or freeze left.
        clear_table_autoinc(io, ioda2_table::TVT, ioda2_entries::TVT);
        clear_table_autoinc(io, ioda2_table::M64BT, ioda2_entries::M64BT);
        clear_table_autoinc(io, ioda2_table::M32DT, ioda2_entries::M32DT);
        for pe in 0..ioda2_entries::PEST {
            for table in [ioda2_table::PESTA, ioda2_table::PESTB] {
                if let Some(address) = ioda_addr(table, u64::from(pe), false) {
                    io.write64(PHB_IODA_ADDR, address);
                    io.write64(PHB_IODA_DATA0, 0);
                }
            }
        }
        clear_table_autoinc(io, ioda2_table::PEEV, ioda2_entries::PEEV);
        fence(Ordering::SeqCst);
        io.write64(PHB_RTC_INVALIDATE, PHB_RTC_INVALIDATE_ALL);
        io.write64(PHB_TCE_KILL, PHB_TCE_KILL_ALL);

        // Still there? A PHB that fell off reads all-ones.
        let read = io.read64(PHB_RTT_BAR) & (PHB_RTT_BASE_ADDRESS_MASK | TableBar::ENABLE.bits());
        if read != rtt_bar {
            return Err(Phb3Error::Readback {
                register: PHB_RTT_BAR,
                wrote: rtt_bar,
                read,
            });
        }
        let config = io.read64(PHB_PHB3_CONFIG);
        if config & Phb3Config::M32_EN.bits() == 0 || config == u64::MAX {
            return Err(Phb3Error::Readback {
                register: PHB_PHB3_CONFIG,
                wrote: Phb3Config::M32_EN.bits(),
                read: config,
            });
        }
        Ok(())
    }

    fn table_bar(&self, table: Phb3Table) -> u64 {
        let block = match table {
            Phb3Table::Rtt => &self.rtt,
            Phb3Table::Peltv => &self.peltv,
            Phb3Table::Pest => &self.pest,
        };
        // `init` checked that the address fits; 0 (disabled) can never be reached.
        table_bar(block.pa(), table.address_mask()).unwrap_or(0)
    }

    /// Maps every RID in `rids` to `pe` in the RTT, then invalidates the RID translation cache
    /// (skiboot `phb3_set_pe`: RTT update, then `PHB_RTC_INVALIDATE_ALL`; QEMU keeps a PE per
    /// device until RTC_INVALIDATE). PE 255 is reserved: see [`Phb3::unassign`].
    pub fn set_pe(&mut self, rids: RangeInclusive<u16>, pe: u16) -> Result<(), Phb3Error> {
        if pe >= PHB3_NUM_PES {
            return Err(Phb3Error::PeOutOfRange { pe });
        }
        if pe == PHB3_RESERVED_PE {
            return Err(Phb3Error::ReservedPe);
        }
        self.write_rtt(rids, pe);
        Ok(())
    }

    /// Returns every RID in `rids` to the reserved PE, then invalidates the RTC.
    pub fn unassign(&mut self, rids: RangeInclusive<u16>) {
        self.write_rtt(rids, PHB3_RESERVED_PE);
    }

    fn write_rtt(&mut self, rids: RangeInclusive<u16>, pe: u16) {
        for rid in rids {
            self.rtt.write_be16(usize::from(rid) * 2, pe);
        }
        // The RTT stores must be visible before the PHB refetches after the invalidate.
        fence(Ordering::SeqCst);
        self.io.write64(PHB_RTC_INVALIDATE, PHB_RTC_INVALIDATE_ALL);
    }

    /// The PE the RTT maps `rid` (bus << 8 | devfn) to.
    pub fn pe_of(&self, rid: u16) -> u16 {
        self.rtt
            .read_be16(usize::from(rid) * 2)
            .unwrap_or(PHB3_RESERVED_PE)
    }

    /// The register I/O of this PHB (for TVT writes and TCE kills by the IOMMU code, which
    /// must serialise its IODA accesses with this PHB's users).
    pub fn regs(&self) -> &'a dyn RegIo {
        self.io
    }

    /// The index given at init.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// PHB_VERSION as read at init.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The core revision (e.g. 0xa30005 for Venice DD2.0, what QEMU models).
    pub fn revision(&self) -> u32 {
        phb_revision(self.version)
    }

    /// The M32 window.
    pub fn m32(&self) -> M32Window {
        self.m32
    }

    /// Physical address of the RTT (128 KiB of big-endian u16, indexed by RID).
    pub fn rtt_base(&self) -> PhysAddr {
        self.rtt.pa()
    }

    /// Physical address of the PELTV (256 x 32 bytes).
    pub fn peltv_base(&self) -> PhysAddr {
        self.peltv.pa()
    }

    /// Physical address of the PEST (256 x 16 bytes).
    pub fn pest_base(&self) -> PhysAddr {
        self.pest.pa()
    }
}

impl Drop for Phb3<'_> {
    fn drop(&mut self) {
        // Stop the PHB from using the tables before the fields' drops free them.
        let io = self.io;
        io.write64(PHB_PHB3_CONFIG, 0);
        for table in [Phb3Table::Rtt, Phb3Table::Peltv, Phb3Table::Pest] {
            io.write64(table.bar(), 0);
        }
        io.write64(PHB_RTC_INVALIDATE, PHB_RTC_INVALIDATE_ALL);
    }
}

impl fmt::Debug for Phb3<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Phb3")
            .field("index", &self.index)
            .field("version", &format_args!("{:#018x}", self.version))
            .field("m32", &self.m32)
            .field("rtt", &format_args!("{:#x}", self.rtt.pa()))
            .field("peltv", &format_args!("{:#x}", self.peltv.pa()))
            .field("pest", &format_args!("{:#x}", self.pest.pa()))
            .finish()
    }
}
