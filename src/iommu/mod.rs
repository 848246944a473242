//! The IOMMU: PHB3 IODA2 DMA translation owned by the firmware.
//!
//! - [`tce`]: TCE values (big-endian in memory, R/W bits kept as given);
//! - [`tve`]: TVE encoding and the TVT write;
//! - [`table`]: TCE tables of 1..5 levels with on-demand levels installed by CAS;
//! - [`pages`]: pin counts and dirty bits of every RAM frame a TCE points at;
//! - [`kill`]: TCE cache kill encodings, threshold and counters;
//! - [`service`]: DMA windows per PE and the one TCE update protocol (docs/tce-protocol.md);
//! - `ram`, `slot`: the two small unsafe leaves (atomic words in physical memory; the
//!   lock-free published-window slot).
//!
//! Resources: docs/tce-protocol.md; skiboot hw/phb3.c; Linux
//! arch/powerpc/platforms/powernv/pci-ioda.c, pci-ioda-tce.c and arch/powerpc/kernel/iommu.c;
//! QEMU hw/pci-host/pnv_phb3.c.

pub mod kill;
pub mod pages;
pub mod ram;
pub mod service;
pub mod slot;
pub mod table;
pub mod tce;
pub mod tve;

pub use kill::{KillCounts, KillError, KillFault};
pub use pages::PageAccounting;
pub use service::{
    DmaWindow, NewTces, PreparedWindow, QuarantineCounts, TceService, Updated, WindowConfig,
    MAX_BATCH,
};
pub use tce::{Perm, Tce};

/// What can go wrong inside the IOMMU. The hypercall layer maps these to PAPR statuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// A window or accounting configuration the hardware or this firmware does not support.
    BadConfig,
    /// The TVT entry already has a window.
    Busy,
    /// No window at that TVT entry.
    NoWindow,
    /// The frame allocator is out of memory.
    NoMemory,
    /// A page's pin count is at its maximum.
    PinOverflow,
    /// A bus address outside the window.
    OutOfWindow,
    /// A bus or host address not on an IOMMU page boundary.
    Misaligned,
    /// More than [`MAX_BATCH`] entries.
    BatchTooLarge,
    /// A mapping into a level that is not allocated (internal).
    LevelMissing,
    /// A page outside the accounted RAM.
    NotInRam,
    /// A table holds a value this firmware never writes.
    Corrupt,
    /// A kill's completion read all-ones: the PHB is fenced. The entries of that call were
    /// exchanged; the pages they replaced stay pinned (quarantined), never released.
    Fenced,
    /// A kill did not complete in time; as for [`Error::Fenced`].
    KillTimeout,
    /// An earlier kill on this PHB failed: it changes nothing any more (nothing was done).
    PhbFailed,
}

impl Error {
    /// True for the errors that say the PHB itself failed (the hypercall answers H_HARDWARE).
    pub const fn is_hardware(self) -> bool {
        matches!(self, Error::Fenced | Error::KillTimeout | Error::PhbFailed)
    }
}
