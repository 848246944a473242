//! The frame allocator: a buddy allocator over ranges of free RAM that hands out zeroed,
//! naturally aligned blocks from 4 KiB to 16 MiB.
//!
//! PHB3 tables need natural alignment (RTT 128 KiB, TCE levels up to the level size: see
//! skiboot hw/phb3.c and the IODA2 TVE format), which a buddy allocator gives by construction.
//! Free blocks are kept in ordered sets outside the managed memory, so the allocator never
//! writes to a block it does not own. One short spin lock guards the sets; nothing is
//! allocated from here while any other lock is held by the TCE path.
//!
//! The allocator owns its RAM as [`OwnedRam`] ranges and zeroes a block through them, so
//! it needs no unsafe of its own; a block freed that is not in its RAM is refused.
#![forbid(unsafe_code)]

use super::phys::{OwnedRam, RamBlock};
use super::{FrameAllocator, PhysAddr};
use alloc::collections::BTreeSet;
use alloc::vec::Vec;
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

/// The free blocks of each order, and the RAM they come from.
struct FreeLists {
    orders: [BTreeSet<PhysAddr>; ORDERS],
    /// Every block handed out or free lies inside one of these (adjacent ranges are joined).
    ram: Vec<OwnedRam>,
}

impl FreeLists {
    fn order(&mut self, order: u32) -> &mut BTreeSet<PhysAddr> {
        &mut self.orders[(order - MIN_ORDER) as usize]
    }

    fn owns(&self, pa: PhysAddr, len: u64) -> bool {
        self.ram.iter().any(|ram| ram.contains(pa, len))
    }
}

/// A buddy allocator over one or more ranges of RAM.
pub struct BuddyAllocator {
    free: Mutex<FreeLists>,
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
            free: Mutex::new(FreeLists {
                orders: [EMPTY; ORDERS],
                ram: Vec::new(),
            }),
            managed_bytes: AtomicU64::new(0),
            used_bytes: AtomicU64::new(0),
            used_blocks: AtomicU64::new(0),
            peak_bytes: AtomicU64::new(0),
            failed_allocs: AtomicU64::new(0),
        }
    }

    /// Gives the allocator the RAM `ram`. The part not aligned to 4 KiB is left out. Returns
    /// the number of bytes added.
    pub fn add_ram(&self, ram: OwnedRam) -> u64 {
        let min = MIN_BLOCK as u64;
        let mut cursor = ram.start().saturating_add(min - 1) & !(min - 1);
        let end = ram.end() & !(min - 1);
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
            free.order(order).insert(cursor);
            cursor += 1u64 << order;
            added += 1u64 << order;
        }
        // Blocks of adjacent ranges can merge into one, which must then lie in one range.
        let mut ram = ram;
        while let Some(index) = free
            .ram
            .iter()
            .position(|r| r.end() == ram.start() || ram.end() == r.start())
        {
            let neighbour = free.ram.swap_remove(index);
            match neighbour.join(ram) {
                Ok(joined) => ram = joined,
                Err((neighbour, alone)) => {
                    free.ram.push(neighbour);
                    ram = alone;
                    break;
                }
            }
        }
        free.ram.push(ram);
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
        free.orders
            .iter()
            .enumerate()
            .map(|(i, set)| (set.len() as u64) << (i as u32 + MIN_ORDER))
            .sum()
    }

    /// A free block of `order`, and its bytes for zeroing once the lock is let go.
    fn take(&self, order: u32) -> Option<(PhysAddr, Option<RamBlock>)> {
        let mut free = self.free.lock();
        let source = (order..=MAX_ORDER).find(|&o| !free.order(o).is_empty())?;
        let block = free.order(source).pop_first()?;
        // Split down to the wanted order, keeping the low half each time.
        for lower in (order..source).rev() {
            free.order(lower).insert(block + (1u64 << lower));
        }
        let bytes = free
            .ram
            .iter()
            .find_map(|ram| ram.block(block, 1u64 << order));
        Some((block, bytes))
    }

    /// Puts a block back, merging it with its free buddies. False (nothing changed) when the
    /// block is not in this allocator's RAM.
    fn give_back(&self, mut block: PhysAddr, mut order: u32) -> bool {
        let mut free = self.free.lock();
        if !free.owns(block, 1u64 << order) {
            return false;
        }
        while order < MAX_ORDER {
            let buddy = block ^ (1u64 << order);
            if !free.order(order).remove(&buddy) {
                break;
            }
            block &= !(1u64 << order);
            order += 1;
        }
        free.order(order).insert(block);
        true
    }
}

impl FrameAllocator for BuddyAllocator {
    fn alloc(&self, size: usize) -> Option<PhysAddr> {
        // A free block always lies in the allocator's RAM (give_back refuses others).
        let Some((block, Some(bytes))) = order_of(size).and_then(|order| self.take(order)) else {
            self.failed_allocs.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        bytes.zero();
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
        if self.give_back(pa, order) {
            self.used_bytes.fetch_sub(size as u64, Ordering::Relaxed);
            self.used_blocks.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::phys::{Arena, OwnedFrame};

    /// An arena of `bytes`, aligned like the largest block, given away as RAM.
    fn ram(bytes: usize) -> OwnedRam {
        Arena::new(bytes, 1 << MAX_ORDER).unwrap().into_owned_ram()
    }

    #[test]
    fn blocks_are_aligned_zeroed_and_merge_back() {
        let ram = ram(32 << 20);
        let frames = BuddyAllocator::new();
        let base = ram.start();
        let added = frames.add_ram(ram.narrow(base + 4096, base + (32 << 20)).unwrap());
        assert_eq!(added, (32 << 20) - 4096);
        let rtt = frames.alloc(128 << 10).unwrap();
        assert_eq!(rtt % (128 << 10), 0);
        let mut page = OwnedFrame::alloc(&frames, 4096).unwrap();
        assert_eq!(page.pa() % 4096, 0);
        page.write_bytes(0, &[0xAA; 16]);
        drop(page);
        let again = OwnedFrame::alloc(&frames, 4096).unwrap();
        let mut bytes = [0xFFu8; 16];
        assert!(again.read_bytes(0, &mut bytes));
        assert_eq!(bytes, [0; 16], "blocks must come back zeroed");
        let stats = frames.stats();
        assert_eq!(stats.used_blocks, 2);
        assert_eq!(stats.used_bytes, (128 << 10) + 4096);
        drop(again);
        frames.free(rtt, 128 << 10);
        assert_eq!(frames.stats().used_bytes, 0);
        assert_eq!(frames.free_bytes(), added);
        // Everything merged back: a 16 MiB block is available again.
        assert!(frames.alloc(16 << 20).is_some());
    }

    #[test]
    fn bad_sizes_and_exhaustion_are_refused() {
        let ram = ram(1 << MAX_ORDER);
        let frames = BuddyAllocator::new();
        let base = ram.start();
        frames.add_ram(ram.narrow(base, base + (64 << 10)).unwrap());
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

    #[test]
    fn blocks_outside_its_ram_are_refused_and_adjacent_ranges_join() {
        let ram = ram(1 << MAX_ORDER);
        let base = ram.start();
        let mut low = ram.narrow(base, base + (128 << 10)).unwrap();
        let high = low.split_off(base + (64 << 10)).unwrap();
        let frames = BuddyAllocator::new();
        frames.add_ram(high);
        frames.add_ram(low);
        // The two 64 KiB halves were added apart; once both are freed they merge into one
        // 128 KiB block, which must still be zeroed and handed out.
        let halves = [frames.alloc(64 << 10), frames.alloc(64 << 10)];
        for half in halves {
            frames.free(half.unwrap(), 64 << 10);
        }
        let whole = frames.alloc(128 << 10);
        assert_eq!(whole, Some(base));
        frames.free(base, 128 << 10);
        // A block the allocator never owned does not enter its free lists.
        let foreign = base + (1 << 20);
        frames.free(foreign, 4096);
        assert_eq!(frames.stats().used_blocks, 0);
        assert_eq!(frames.free_bytes(), 128 << 10);
        let blocks: Vec<_> = (0..32).map_while(|_| frames.alloc(4096)).collect();
        assert_eq!(blocks.len(), 32);
        assert!(!blocks.contains(&foreign));
    }
}
