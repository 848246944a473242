//! The frame allocator: a buddy allocator over ranges of free RAM that hands out zeroed,
//! naturally aligned blocks from 4 KiB to 16 MiB.
//!
//! PHB3 tables need natural alignment (RTT 128 KiB, TCE levels up to the level size: see
//! skiboot hw/phb3.c and the IODA2 TVE format), which a buddy allocator gives by construction.
//! Free blocks are kept in ordered sets outside the managed memory, so the allocator never
//! writes to a block it does not own. One short spin lock guards the sets; nothing is
//! allocated from here while any other lock is held by the TCE path.

use super::{phys, FrameAllocator, PhysAddr};
use alloc::collections::BTreeSet;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Mutex;

/// Smallest block: one 4 KiB page.
pub const MIN_ORDER: u32 = 12;
/// Largest block: 16 MiB.
pub const MAX_ORDER: u32 = 24;
/// Smallest block size in bytes.
pub const MIN_BLOCK: usize = 1 << MIN_ORDER;
const ORDERS: usize = (MAX_ORDER - MIN_ORDER + 1) as usize;

/// Usage counters, for tests, the audit and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// Bytes given to the allocator.
    pub managed_bytes: u64,
    /// Bytes currently handed out.
    pub used_bytes: u64,
    /// Blocks currently handed out.
    pub used_blocks: u64,
    /// The most bytes ever handed out at once.
    pub peak_bytes: u64,
    /// Allocations refused (no memory or a bad size).
    pub failed_allocs: u64,
}

/// A buddy allocator over one or more ranges of RAM.
pub struct BuddyAllocator {
    free: Mutex<[BTreeSet<PhysAddr>; ORDERS]>,
    managed_bytes: AtomicU64,
    used_bytes: AtomicU64,
    used_blocks: AtomicU64,
    peak_bytes: AtomicU64,
    failed_allocs: AtomicU64,
}

impl Default for BuddyAllocator {
    fn default() -> Self {
        Self::new()
    }
}

fn order_of(size: usize) -> Option<u32> {
    if !size.is_power_of_two() {
        return None;
    }
    let order = size.trailing_zeros();
    (MIN_ORDER..=MAX_ORDER).contains(&order).then_some(order)
}

impl BuddyAllocator {
    /// An allocator that manages nothing yet.
    pub const fn new() -> Self {
        const EMPTY: BTreeSet<PhysAddr> = BTreeSet::new();
        Self {
            free: Mutex::new([EMPTY; ORDERS]),
            managed_bytes: AtomicU64::new(0),
            used_bytes: AtomicU64::new(0),
            used_blocks: AtomicU64::new(0),
            peak_bytes: AtomicU64::new(0),
            failed_allocs: AtomicU64::new(0),
        }
    }

    /// Gives the allocator the RAM `[start, end)`. The part not aligned to 4 KiB is left out.
    /// Returns the number of bytes added.
    ///
    /// # Safety
    /// The range must be RAM that nothing else uses, now or later, and must not overlap a
    /// range added before.
    pub unsafe fn add_range(&self, start: PhysAddr, end: PhysAddr) -> u64 {
        let min = MIN_BLOCK as u64;
        let mut cursor = start.saturating_add(min - 1) & !(min - 1);
        let end = end & !(min - 1);
        let mut added = 0;
        let mut free = self.free.lock();
        while cursor < end {
            // The largest block that is aligned at `cursor` and fits before `end`.
            let mut order = MAX_ORDER;
            while order > MIN_ORDER
                && (cursor & ((1u64 << order) - 1) != 0 || cursor + (1u64 << order) > end)
            {
                order -= 1;
            }
            free[(order - MIN_ORDER) as usize].insert(cursor);
            cursor += 1u64 << order;
            added += 1u64 << order;
        }
        self.managed_bytes.fetch_add(added, Ordering::Relaxed);
        added
    }

    /// Current usage counters.
    pub fn stats(&self) -> FrameStats {
        FrameStats {
            managed_bytes: self.managed_bytes.load(Ordering::Relaxed),
            used_bytes: self.used_bytes.load(Ordering::Relaxed),
            used_blocks: self.used_blocks.load(Ordering::Relaxed),
            peak_bytes: self.peak_bytes.load(Ordering::Relaxed),
            failed_allocs: self.failed_allocs.load(Ordering::Relaxed),
        }
    }

    /// Bytes free right now, summed over every order.
    pub fn free_bytes(&self) -> u64 {
        let free = self.free.lock();
        free.iter()
            .enumerate()
            .map(|(i, set)| (set.len() as u64) << (i as u32 + MIN_ORDER))
            .sum()
    }

    fn take(&self, order: u32) -> Option<PhysAddr> {
        let mut free = self.free.lock();
        let source = (order..=MAX_ORDER).find(|o| !free[(o - MIN_ORDER) as usize].is_empty())?;
        let block = free[(source - MIN_ORDER) as usize].pop_first()?;
        // Split down to the wanted order, keeping the low half each time.
        for lower in (order..source).rev() {
            free[(lower - MIN_ORDER) as usize].insert(block + (1u64 << lower));
        }
        Some(block)
    }

    fn give_back(&self, mut block: PhysAddr, mut order: u32) {
        let mut free = self.free.lock();
        while order < MAX_ORDER {
            let buddy = block ^ (1u64 << order);
            if !free[(order - MIN_ORDER) as usize].remove(&buddy) {
                break;
            }
            block &= !(1u64 << order);
            order += 1;
        }
        free[(order - MIN_ORDER) as usize].insert(block);
    }
}

impl FrameAllocator for BuddyAllocator {
    fn alloc(&self, size: usize) -> Option<PhysAddr> {
        let Some(block) = order_of(size).and_then(|order| self.take(order)) else {
            self.failed_allocs.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        // SAFETY: `block` was free, so this allocator owns it and nobody else touches it.
        unsafe { phys::zero(block, size) };
        let used = self.used_bytes.fetch_add(size as u64, Ordering::Relaxed) + size as u64;
        self.used_blocks.fetch_add(1, Ordering::Relaxed);
        self.peak_bytes.fetch_max(used, Ordering::Relaxed);
        Some(block)
    }

    fn free(&self, pa: PhysAddr, size: usize) {
        let Some(order) = order_of(size) else { return };
        if pa & (size as u64 - 1) != 0 {
            return;
        }
        self.used_bytes.fetch_sub(size as u64, Ordering::Relaxed);
        self.used_blocks.fetch_sub(1, Ordering::Relaxed);
        self.give_back(pa, order);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::test_arena::Arena;

    #[test]
    fn blocks_are_aligned_zeroed_and_merge_back() {
        let arena = Arena::new(32 << 20);
        let frames = BuddyAllocator::new();
        let base = arena.base();
        // SAFETY: the arena is ours and unused.
        let added = unsafe { frames.add_range(base + 4096, base + (32 << 20)) };
        assert_eq!(added, (32 << 20) - 4096);
        let rtt = frames.alloc(128 << 10).unwrap();
        assert_eq!(rtt % (128 << 10), 0);
        let page = frames.alloc(4096).unwrap();
        assert_eq!(page % 4096, 0);
        // SAFETY: `page` was just handed out to us.
        unsafe { phys::write_bytes(page, &[0xAA; 16]) };
        frames.free(page, 4096);
        let again = frames.alloc(4096).unwrap();
        let mut bytes = [0xFFu8; 16];
        // SAFETY: `again` was just handed out to us.
        unsafe { phys::read_bytes(again, &mut bytes) };
        assert_eq!(bytes, [0; 16], "blocks must come back zeroed");
        let stats = frames.stats();
        assert_eq!(stats.used_blocks, 2);
        assert_eq!(stats.used_bytes, (128 << 10) + 4096);
        frames.free(again, 4096);
        frames.free(rtt, 128 << 10);
        assert_eq!(frames.stats().used_bytes, 0);
        assert_eq!(frames.free_bytes(), added);
        // Everything merged back: a 16 MiB block is available again.
        assert!(frames.alloc(16 << 20).is_some());
    }

    #[test]
    fn bad_sizes_and_exhaustion_are_refused() {
        let arena = Arena::new(1 << MAX_ORDER);
        let frames = BuddyAllocator::new();
        let base = arena.base();
        // SAFETY: the arena is ours and unused.
        unsafe { frames.add_range(base, base + (64 << 10)) };
        assert_eq!(frames.alloc(3000), None);
        assert_eq!(frames.alloc(2048), None);
        assert_eq!(frames.alloc(32 << 20), None);
        let blocks: Vec<_> = (0..16).map(|_| frames.alloc(4096).unwrap()).collect();
        assert_eq!(frames.alloc(4096), None);
        assert_eq!(frames.stats().failed_allocs, 4);
        let mut sorted = blocks.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 16, "no block is handed out twice");
        for b in blocks {
            frames.free(b, 4096);
        }
        assert_eq!(frames.alloc(64 << 10), Some(base));
    }
}
