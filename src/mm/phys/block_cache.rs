//! A lock-free cache of zeroed blocks in front of the frame allocator, so that installing a
//! missing TCE table level on the hypercall path takes no lock while the cache has blocks.
//!
//! One Treiber stack per block size (4 KiB to 64 KiB). The link to the next free block lives
//! in the free block's first word, so the cache needs no memory of its own; the stack head
//! carries a generation tag next to the frame number, so a block popped and pushed back
//! between another CPU's read and its compare-and-swap cannot be mistaken for the old head
//! (the ABA problem). Blocks are zeroed when they enter the cache, and their link word when
//! they leave it, so they come out as zeroed as the frame allocator's.
//!
//! It lives in `mm::phys` because its free lists are threaded through the free blocks
//! themselves: it writes memory it knows only by address, which a block from a
//! [`FrameAllocator`] is to its holder until freed (the trait's contract).
//! Resources: R. K. Treiber, "Systems Programming: Coping with Parallelism" (IBM RJ 5118,
//! 1986); Linux arch/powerpc/kvm/book3s_64_vio.c (TCE levels allocated under no lock).

use crate::mm::{phys, FrameAllocator, PhysAddr};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

const FRAME_SHIFT: u32 = 12;
/// Frame numbers take the low 36 bits of a stack head: blocks below 2^48.
const FRAME_BITS: u32 = 36;
const FRAME_MASK: u64 = (1 << FRAME_BITS) - 1;
/// Block sizes the cache keeps: 4 KiB .. 64 KiB (log2).
const FIRST_CLASS_SHIFT: u32 = 12;
const CLASSES: usize = 5;

/// Usage counters (bytes), with cached blocks counted as free.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Bytes handed out through the cache and not yet given back.
    pub used_bytes: u64,
    /// Bytes sitting in the cache, ready to hand out.
    pub cached_bytes: u64,
    /// Allocations served from the cache (lock-free).
    pub hits: u64,
    /// Allocations that went to the frame allocator.
    pub misses: u64,
}

struct Class {
    /// `tag << FRAME_BITS | frame number`; frame number 0 means empty (physical page 0 holds
    /// the vectors and is never a free block).
    head: AtomicU64,
    cached: AtomicUsize,
}

/// A lock-free block cache over a frame allocator.
pub struct BlockCache<'a> {
    inner: &'a dyn FrameAllocator,
    classes: [Class; CLASSES],
    /// Most blocks kept per size; beyond that, freed blocks go back to the frame allocator.
    limit: usize,
    used_bytes: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

fn class_of(size: usize) -> Option<usize> {
    if !size.is_power_of_two() {
        return None;
    }
    let shift = size.trailing_zeros();
    let index = shift.checked_sub(FIRST_CLASS_SHIFT)? as usize;
    (index < CLASSES).then_some(index)
}

impl<'a> BlockCache<'a> {
    /// A cache in front of `inner` keeping at most `limit` blocks of each size.
    pub const fn new(inner: &'a dyn FrameAllocator, limit: usize) -> Self {
        Self {
            inner,
            classes: [const {
                Class {
                    head: AtomicU64::new(0),
                    cached: AtomicUsize::new(0),
                }
            }; CLASSES],
            limit,
            used_bytes: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Takes `count` blocks of `size` from the frame allocator into the cache, so that the
    /// next `count` allocations of that size take no lock. Returns how many were added.
    pub fn prefill(&self, size: usize, count: usize) -> usize {
        let Some(class) = class_of(size) else {
            return 0;
        };
        let mut added = 0;
        while added < count && self.classes[class].cached.load(Ordering::Relaxed) < self.limit {
            let Some(block) = self.inner.alloc(size) else {
                break;
            };
            if !self.push(class, block, size) {
                self.inner.free(block, size);
                break;
            }
            added += 1;
        }
        added
    }

    /// Current counters.
    pub fn stats(&self) -> CacheStats {
        let cached_bytes = self
            .classes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (c.cached.load(Ordering::Relaxed) as u64) << (i as u32 + FIRST_CLASS_SHIFT)
            })
            .sum();
        CacheStats {
            used_bytes: self.used_bytes.load(Ordering::Relaxed),
            cached_bytes,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    /// Pushes a block (zeroing it first). False if the block cannot be cached.
    fn push(&self, class: usize, block: PhysAddr, size: usize) -> bool {
        let frame = block >> FRAME_SHIFT;
        if frame == 0 || frame > FRAME_MASK || block & (size as u64 - 1) != 0 {
            return false;
        }
        // SAFETY: the block was handed out for `size` bytes and is being given back: nobody
        // else uses it until it is popped again.
        unsafe { phys::zero(block, size) };
        // SAFETY: the block's first word is ours while the block is in the cache.
        let link = unsafe { phys::atomic_u64(block) };
        let class = &self.classes[class];
        let mut head = class.head.load(Ordering::Acquire);
        loop {
            link.store(head & FRAME_MASK, Ordering::Relaxed);
            let tag = (head >> FRAME_BITS).wrapping_add(1);
            let new = (tag << FRAME_BITS) | frame;
            match class
                .head
                .compare_exchange_weak(head, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => break,
                Err(current) => head = current,
            }
        }
        class.cached.fetch_add(1, Ordering::Relaxed);
        true
    }

    fn pop(&self, class: usize) -> Option<PhysAddr> {
        let class = &self.classes[class];
        let mut head = class.head.load(Ordering::Acquire);
        loop {
            let frame = head & FRAME_MASK;
            if frame == 0 {
                return None;
            }
            let block = frame << FRAME_SHIFT;
            // SAFETY: `block` is (or was, a moment ago) a cached block: RAM this cache took
            // from the frame allocator and never returns while it can be in a stack. If
            // another CPU popped it meanwhile, the word read may be stale, and the tag makes
            // the compare-and-swap below fail.
            let next = unsafe { phys::atomic_u64(block) }.load(Ordering::Relaxed) & FRAME_MASK;
            let tag = (head >> FRAME_BITS).wrapping_add(1);
            let new = (tag << FRAME_BITS) | next;
            match class
                .head
                .compare_exchange_weak(head, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    class.cached.fetch_sub(1, Ordering::Relaxed);
                    // SAFETY: the block is ours now; clear the link so it leaves zeroed.
                    unsafe { phys::atomic_u64(block) }.store(0, Ordering::Relaxed);
                    return Some(block);
                }
                Err(current) => head = current,
            }
        }
    }
}

impl FrameAllocator for BlockCache<'_> {
    fn alloc(&self, size: usize) -> Option<PhysAddr> {
        let cached = class_of(size).and_then(|class| self.pop(class));
        let block = match cached {
            Some(block) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                block
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                self.inner.alloc(size)?
            }
        };
        self.used_bytes.fetch_add(size as u64, Ordering::Relaxed);
        Some(block)
    }

    fn free(&self, pa: PhysAddr, size: usize) {
        self.used_bytes.fetch_sub(size as u64, Ordering::Relaxed);
        let cached = class_of(size).is_some_and(|class| {
            self.classes[class].cached.load(Ordering::Relaxed) < self.limit
                && self.push(class, pa, size)
        });
        if !cached {
            self.inner.free(pa, size);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::frame::BuddyAllocator;
    use crate::mm::phys::Arena;
    use std::sync::Arc;
    use std::vec::Vec;

    fn buddy(arena: &Arena, bytes: u64) -> &'static BuddyAllocator {
        let frames: &'static BuddyAllocator = Box::leak(Box::new(BuddyAllocator::new()));
        let base = arena.base();
        // SAFETY: the arena is ours and unused.
        unsafe { frames.add_range(base, base + bytes) };
        frames
    }

    #[test]
    fn blocks_are_reused_zeroed_and_counted() {
        let arena = Arena::new(16 << 20, 1 << 24).unwrap();
        let frames = buddy(&arena, 16 << 20);
        let cache = BlockCache::new(frames, 8);
        assert_eq!(cache.prefill(4096, 4), 4);
        assert_eq!(cache.stats().cached_bytes, 4 * 4096);
        let block = cache.alloc(4096).unwrap();
        assert_eq!(cache.stats().hits, 1);
        // SAFETY: the block is ours.
        unsafe { phys::write_bytes(block, &[0xEE; 64]) };
        cache.free(block, 4096);
        let again = cache.alloc(4096).unwrap();
        assert_eq!(again, block, "last in, first out");
        let mut bytes = [0xFFu8; 64];
        // SAFETY: the block is ours.
        unsafe { phys::read_bytes(again, &mut bytes) };
        assert_eq!(bytes, [0; 64], "blocks leave the cache zeroed");
        // Sizes the cache does not keep go straight to the frame allocator.
        let big = cache.alloc(1 << 20).unwrap();
        assert_eq!(cache.stats().misses, 1);
        cache.free(big, 1 << 20);
        cache.free(again, 4096);
        assert_eq!(cache.stats().used_bytes, 0);
        // Past the limit, frees go back to the frame allocator.
        let blocks: Vec<_> = (0..12).map(|_| cache.alloc(4096).unwrap()).collect();
        for b in blocks {
            cache.free(b, 4096);
        }
        assert_eq!(cache.stats().cached_bytes, 8 * 4096);
        assert_eq!(frames.stats().used_bytes, 8 * 4096);
    }

    #[test]
    fn concurrent_alloc_and_free_never_hand_a_block_out_twice() {
        let arena = Arc::new(Arena::new(32 << 20, 1 << 24).unwrap());
        let frames = buddy(&arena, 32 << 20);
        let cache: &'static BlockCache<'static> = Box::leak(Box::new(BlockCache::new(frames, 64)));
        cache.prefill(4096, 32);
        let threads: Vec<_> = (0..4u64)
            .map(|id| {
                std::thread::spawn(move || {
                    for round in 0..20_000u64 {
                        let held: Vec<u64> = (0..3).filter_map(|_| cache.alloc(4096)).collect();
                        let stamp = (id << 32) | round;
                        for &b in &held {
                            // SAFETY: `b` is ours until freed below.
                            let word = unsafe { phys::atomic_u64(b + 8) };
                            assert_eq!(word.load(Ordering::Relaxed), 0, "block not zeroed");
                            word.store(stamp, Ordering::Relaxed);
                        }
                        for &b in &held {
                            // SAFETY: as above.
                            let word = unsafe { phys::atomic_u64(b + 8) };
                            assert_eq!(word.load(Ordering::Relaxed), stamp, "block shared");
                            cache.free(b, 4096);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let stats = cache.stats();
        assert_eq!(stats.used_bytes, 0);
        assert_eq!(frames.stats().used_bytes, stats.cached_bytes);
        assert!(stats.hits > 0);
    }
}
