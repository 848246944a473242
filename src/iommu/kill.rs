//! PHB3 TCE cache invalidation ("TCE kill") through register 0x210, its completion through
//! the DMA read sync register 0x200, and the counters. docs/phb3-dma-bounds-and-kill.md gives
//! every source; in short:
//!
//! - Encodings, from Linux platforms/powernv/pci-ioda.c (`PHB3_TCE_KILL_INVAL_*`,
//!   `pnv_pci_phb3_tce_invalidate[_pe]`): ALL = IBM bit 0; PE = IBM bit 1 | PE#; ONE = IBM
//!   bit 2 | PE# | (index << page_shift), one store per TCE, where `index` is the bus address
//!   divided by the page size, so the value carries the page's full bus address, window-select
//!   bit 59 included. Linux issues `mb()` (sync) before the stores so the table updates are
//!   visible to the PHB before it refetches; here that is [`RegIo::barrier`].
//! - Kill-one is exact only when no other bus address decodes onto the same entry. A table
//!   decodes `page_shift + index_bits` address bits; every address below the window-select
//!   bit 59 selects the same TVE, so a table whose reach is below 2^59 is also reached at
//!   `address + k * reach`. Nothing we can read says whether the PHB3 faults on those, wraps
//!   (QEMU's `pnv_phb3_translate_tve` wraps) or how its TCE cache (the TCAM) is keyed, so we
//!   assume the worst: the cache holds the alias under its own bus address and a kill-one for
//!   the real address leaves it. Kill-PE ("invalidate TCEs that match the specified PE#")
//!   removes every alias, so it is used whenever the table's reach is below 2^59
//!   ([`kill_one_is_exact`]).
//! - Completion: Linux's PHB3 code stores and returns; skiboot's PHB3 code has no kill call.
//!   skiboot's PHB4 code (hw/phb4.c `phb4_tce_kill`, the same 0x210/0x200 register pair)
//!   kills, writes DMA_READ_WRITE_SYNC = START and waits for COMPLETE, reading all-ones as a
//!   fenced PHB (OPAL_HARDWARE), all under the PHB lock. PHB3 has the same register at 0x200
//!   with the same START/COMPLETE bits (skiboot phb3-regs.h `PHB_DMARD_SYNC`; QEMU
//!   pnv_phb3_regs.h, whose PHB3 model reads it back COMPLETE), so we do that step, bounded by
//!   [`KILL_SYNC_TIMEOUT_NS`] of timebase time, under the PHB's kill lock (the service's). PHB4's other wait (its
//!   `PHB_Q_DMA_R_TCE_KILL_STATUS`, bit 7 of 0x888) has no PHB3 counterpart in any header,
//!   and PHB3's TCE_KILL reads back what was written (QEMU), so its kill bits are not polled.

use crate::hw::regio::RegIo;
use crate::phb3::regs::{
    ppc_bit, ppc_bitmask, PHB_DMARD_SYNC, PHB_DMARD_SYNC_COMPLETE, PHB_DMARD_SYNC_START,
};
use core::sync::atomic::{fence, AtomicU64, AtomicU8, Ordering};

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

/// The DMA address bit that selects the PE's second TVE (skiboot `phb3_map_pe_dma_window`:
/// "only bit 59 of the PCI address is used to select the window"). Every address with the
/// same bit 59 (and bits 60..63 clear) goes through the same TVE.
pub const WINDOW_SELECT_BIT: u32 = 59;

/// Kill-one stores per batch at most; beyond it one kill-PE store replaces them.
///
/// Why 16: each kill-one is an uncached store the PHB processes in order, so a batch of n
/// costs n MMIO round trips; the reference records one kill per TCE making a 100 GB guest take
/// ~20 s to map, against <10 s with one kill per 512-entry request. A kill-PE is one store but
/// drops every cached TCE of the PE, which the device then refetches one by one on its next
/// DMAs: for a few entries that refetch costs more than the stores, for a long run it is
/// cheaper. 16 stores keep a single H_PUT_TCE (and short STUFF/INDIRECT runs) precise, while
/// any bulk call (up to 512 entries) pays one store. It only applies where kill-one is exact
/// ([`kill_one_is_exact`]).
pub const KILL_ONE_THRESHOLD: usize = 16;

/// How long a kill's DMA read sync may take before the PHB is declared failed. skiboot's
/// PHB4 wait has no bound at all ("XXX Add timeout"); the sync waits for DMA reads (TCE
/// fetches included) the PHB has in flight, which take microseconds, so 10 ms of timebase is
/// far beyond any healthy PHB and still short for a hypercall that must end.
pub const KILL_SYNC_TIMEOUT_NS: u64 = 10_000_000;

/// True when a kill-one for a page's bus address provably removes every cached translation of
/// that entry: the table decodes every address bit below [`WINDOW_SELECT_BIT`], so no other
/// address that selects this TVE lands on the entry. With a smaller reach, aliases exist and
/// only kill-PE is safe (module comment).
pub const fn kill_one_is_exact(page_shift: u32, index_bits: u32) -> bool {
    page_shift as u64 + index_bits as u64 >= WINDOW_SELECT_BIT as u64
}

/// The kill-one value for the page at bus address `bus_addr` of PE `pe`.
pub const fn kill_one(pe: u16, bus_addr: u64) -> u64 {
    KILL_ONE | (bus_addr & KILL_ADDR_MASK) | (pe as u64 & KILL_PE_MASK)
}

/// The kill-PE value for PE `pe`.
pub const fn kill_pe(pe: u16) -> u64 {
    KILL_PE | (pe as u64 & KILL_PE_MASK)
}

/// Why a kill did not complete. Either way the PHB's state is unknown: the caller must not
/// release what the device might still reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KillError {
    /// The sync register read all-ones: the PHB is fenced (skiboot hw/phb3.c reads `~0ULL`
    /// from a PHB register as "PHB Fenced"; `phb4_wait_bit` returns OPAL_HARDWARE).
    Fenced,
    /// COMPLETE did not come within [`KILL_SYNC_TIMEOUT_NS`].
    Timeout,
}

/// The completion step of a kill: DMA read sync START, then wait for COMPLETE, bounded in
/// time by the PHB's clock. Call after the kill stores, with the PHB's kill lock held (the
/// START/COMPLETE pair is one state machine per PHB; skiboot holds its PHB lock across the
/// same sequence, core/pci-opal.c `opal_pci_tce_kill`). On success every kill stored before it
/// has been performed and no TCE fetch that began before it is still in flight.
pub fn sync_after_kill(io: &dyn RegIo) -> Result<(), KillError> {
    io.write64(PHB_DMARD_SYNC, PHB_DMARD_SYNC_START);
    // The clock is read from the first poll that finds the sync still running: a sync that
    // is complete at once (QEMU, an idle PHB) costs no timebase conversion.
    let mut started = None;
    loop {
        let status = io.read64(PHB_DMARD_SYNC);
        // All-ones first: it has the COMPLETE bit set too.
        if status == u64::MAX {
            return Err(KillError::Fenced);
        }
        if status & PHB_DMARD_SYNC_COMPLETE != 0 {
            // Every release after this must stay after the load that saw COMPLETE.
            fence(Ordering::SeqCst);
            return Ok(());
        }
        let now = io.now_ns();
        if now.wrapping_sub(*started.get_or_insert(now)) >= KILL_SYNC_TIMEOUT_NS {
            return Err(KillError::Timeout);
        }
        core::hint::spin_loop();
    }
}

/// Counters of kill traffic, for tests and benchmarks.
#[derive(Debug, Default)]
pub struct KillStats {
    stores: AtomicU64,
    kill_one: AtomicU64,
    kill_pe: AtomicU64,
    batches: AtomicU64,
    syncs: AtomicU64,
    failures: AtomicU64,
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
    /// DMA read syncs started (one per batch).
    pub syncs: u64,
    /// Kill sequences that did not complete (fenced PHB or timeout).
    pub failures: u64,
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

    pub(crate) fn count_sync(&self) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_batch(&self) {
        self.batches.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> KillCounts {
        KillCounts {
            stores: self.stores.load(Ordering::Relaxed),
            kill_one: self.kill_one.load(Ordering::Relaxed),
            kill_pe: self.kill_pe.load(Ordering::Relaxed),
            batches: self.batches.load(Ordering::Relaxed),
            syncs: self.syncs.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }
}

/// Deliberate protocol bugs, for the tests that prove the model and the property test catch
/// them. Production code never sets anything but [`KillFault::None`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum KillFault {
    /// The protocol as designed: exchange, barrier, kill, sync, release.
    None = 0,
    /// Bug: no kill at all.
    SkipKill = 1,
    /// Bug: release the old pages, then kill (what upstream Linux does since 2019).
    KillAfterRelease = 2,
    /// Bug: no barrier between the table stores and the kill stores.
    SkipBarrier = 3,
    /// Bug: kill stores without the DMA read sync that completes them.
    SkipCompletion = 4,
    /// Bug: kill-one even where aliases of the entry exist (the pre-issue-8 policy).
    KillOneDespiteAliases = 5,
}

/// Holder of the injected fault (an atomic so it can be flipped in a shared service).
#[derive(Debug, Default)]
pub(crate) struct FaultSwitch(AtomicU8);

impl FaultSwitch {
    pub(crate) fn get(&self) -> KillFault {
        match self.0.load(Ordering::Relaxed) {
            1 => KillFault::SkipKill,
            2 => KillFault::KillAfterRelease,
            3 => KillFault::SkipBarrier,
            4 => KillFault::SkipCompletion,
            5 => KillFault::KillOneDespiteAliases,
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

    #[test]
    fn kill_one_is_exact_only_when_the_table_decodes_up_to_the_window_bit() {
        // The default window: 2 GiB of 4K pages in 2 levels of 1024 entries reaches 4 GiB.
        assert!(!kill_one_is_exact(12, 20));
        // 4K pages, 5 levels of 1024 entries: reach 2^62, every address bit decoded.
        assert!(kill_one_is_exact(12, 50));
        // Exactly 2^59.
        assert!(kill_one_is_exact(24, 35));
        assert!(!kill_one_is_exact(24, 34));
    }
}
