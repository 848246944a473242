//! PHB3 TCE cache invalidation ("TCE kill") through register 0x210, and its counters.
//!
//! Encodings, from Linux platforms/powernv/pci-ioda.c (`PHB3_TCE_KILL_INVAL_*`,
//! `pnv_pci_phb3_tce_invalidate[_pe]`): ALL = IBM bit 0; PE = IBM bit 1 | PE#;
//! ONE = IBM bit 2 | PE# | (index << page_shift), one store per TCE, where `index` is the bus
//! address divided by the page size, so the value carries the page's full bus address,
//! window-select bit 59 included. Linux issues `mb()` (sync) before the stores so the table
//! updates are visible to the PHB before it refetches. skiboot's PHB4 code waits for the kill
//! to complete before returning; for PHB3 we make completion explicit with a load back from
//! the PHB after the stores: cache-inhibited guarded accesses to one device are performed in
//! program order, so the load's data returns only once the kill stores have reached the PHB,
//! and the `sync` after it keeps every release behind it.

use crate::phb3::regs::{ppc_bit, ppc_bitmask};
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// Invalidate the whole TCE cache.
pub const KILL_ALL: u64 = ppc_bit(0);
/// Invalidate every cached TCE of one PE.
pub const KILL_PE: u64 = ppc_bit(1);
/// Invalidate the cached TCE of one page of one PE.
pub const KILL_ONE: u64 = ppc_bit(2);
/// PE number field of a kill value (PHB3 has 256 PEs).
pub const KILL_PE_MASK: u64 = 0xFF;
/// Bus-address field of a kill-one value: bits 12..59 (IBM 4..51), bit 59 being the window.
pub const KILL_ADDR_MASK: u64 = ppc_bitmask(4, 51);

/// Kill-one stores per batch at most; beyond it one kill-PE store replaces them.
///
/// Why 16: each kill-one is an uncached store the PHB processes in order, so a batch of n
/// costs n MMIO round trips; the reference records one kill per TCE making a 100 GB guest take
/// ~20 s to map, against <10 s with one kill per 512-entry request. A kill-PE is one store but
/// drops every cached TCE of the PE, which the device then refetches one by one on its next
/// DMAs: for a few entries that refetch costs more than the stores, for a long run it is
/// cheaper. 16 stores keep a single H_PUT_TCE (and short STUFF/INDIRECT runs) precise, while
/// any bulk call (up to 512 entries) pays one store.
pub const KILL_ONE_THRESHOLD: usize = 16;

/// The kill-one value for the page at bus address `bus_addr` of PE `pe`.
pub const fn kill_one(pe: u16, bus_addr: u64) -> u64 {
    KILL_ONE | (bus_addr & KILL_ADDR_MASK) | (pe as u64 & KILL_PE_MASK)
}

/// The kill-PE value for PE `pe`.
pub const fn kill_pe(pe: u16) -> u64 {
    KILL_PE | (pe as u64 & KILL_PE_MASK)
}

/// Counters of kill traffic, for tests and benchmarks.
#[derive(Debug, Default)]
pub struct KillStats {
    stores: AtomicU64,
    kill_one: AtomicU64,
    kill_pe: AtomicU64,
    batches: AtomicU64,
}

/// A snapshot of [`KillStats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KillCounts {
    /// Stores to the TCE_KILL register.
    pub stores: u64,
    /// Of which kill-one.
    pub kill_one: u64,
    /// Of which kill-PE.
    pub kill_pe: u64,
    /// Completed kill batches (one per TCE-changing call that changed something).
    pub batches: u64,
}

impl KillStats {
    pub(crate) fn count_one(&self) {
        self.stores.fetch_add(1, Ordering::Relaxed);
        self.kill_one.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_pe(&self) {
        self.stores.fetch_add(1, Ordering::Relaxed);
        self.kill_pe.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_batch(&self) {
        self.batches.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> KillCounts {
        KillCounts {
            stores: self.stores.load(Ordering::Relaxed),
            kill_one: self.kill_one.load(Ordering::Relaxed),
            kill_pe: self.kill_pe.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
        }
    }
}

/// Deliberate protocol bugs, for the tests that prove the property test catches them.
/// Production code never sets anything but [`KillFault::None`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum KillFault {
    /// The protocol as designed: exchange, kill, release.
    None = 0,
    /// Bug: no kill at all.
    SkipKill = 1,
    /// Bug: release the old pages, then kill (what upstream Linux does since 2019).
    KillAfterRelease = 2,
}

/// Holder of the injected fault (an atomic so it can be flipped in a shared service).
#[derive(Debug, Default)]
pub(crate) struct FaultSwitch(AtomicU8);

impl FaultSwitch {
    pub(crate) fn get(&self) -> KillFault {
        match self.0.load(Ordering::Relaxed) {
            1 => KillFault::SkipKill,
            2 => KillFault::KillAfterRelease,
            _ => KillFault::None,
        }
    }

    pub(crate) fn set(&self, fault: KillFault) {
        self.0.store(fault as u8, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_match_linux() {
        assert_eq!(KILL_ALL, 0x8000_0000_0000_0000);
        assert_eq!(kill_pe(5), 0x4000_0000_0000_0005);
        assert_eq!(kill_one(3, 0x7000), 0x2000_0000_0000_7003);
        // Window 1 keeps bit 59 in the address, as Linux's (ioba >> shift) << shift does.
        assert_eq!(kill_one(3, (1 << 59) | 0x1_0000), 0x2800_0000_0001_0003);
    }
}
