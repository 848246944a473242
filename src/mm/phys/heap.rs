//! The firmware heap: linked_list_allocator over an early static arena (enough to read the
//! device tree) plus one large region of free RAM added once the tree says where RAM is.
//!
//! It lives in `mm::phys` because a `GlobalAlloc` is unsafe by nature: it turns raw memory
//! into Rust objects.
//!
//! Resources: linked_list_allocator docs (Heap::init, allocate_first_fit); skiboot
//! core/mem_region.c (a small early heap before the memory map is known).

use super::OwnedRam;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use linked_list_allocator::Heap;
use spin::Mutex;

/// Usage counters, for tests, the audit and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// Bytes the heap manages.
    pub size: u64,
    /// Bytes handed out right now.
    pub used: u64,
    /// Allocations ever made.
    pub allocations: u64,
    /// Deallocations ever made.
    pub deallocations: u64,
    /// Allocations refused.
    pub failures: u64,
}

struct Region {
    heap: Heap,
    start: usize,
    end: usize,
}

/// Bytes of the early arena: enough to read the device tree before the RAM map is known.
pub const EARLY_ARENA_BYTES: usize = 2 << 20;

#[repr(C, align(4096))]
struct EarlyArena(UnsafeCell<[u8; EARLY_ARENA_BYTES]>);
// SAFETY: the arena's bytes are handed to one heap once (EARLY_ARENA_TAKEN), which then owns
// them; nothing else names them.
unsafe impl Sync for EarlyArena {}
static EARLY_ARENA: EarlyArena = EarlyArena(UnsafeCell::new([0; EARLY_ARENA_BYTES]));
static EARLY_ARENA_TAKEN: AtomicBool = AtomicBool::new(false);

/// A heap made of up to two regions: the early arena and main RAM.
pub struct TwoRegionHeap {
    regions: Mutex<[Option<Region>; 2]>,
    allocations: AtomicU64,
    deallocations: AtomicU64,
    failures: AtomicU64,
}

// SAFETY: the regions are guarded by the mutex; the raw pointers inside `Heap` refer to
// memory the heap owns exclusively.
unsafe impl Sync for TwoRegionHeap {}

impl Default for TwoRegionHeap {
    fn default() -> Self {
        Self::new()
    }
}

impl TwoRegionHeap {
    /// A heap with no memory yet.
    pub const fn new() -> Self {
        Self {
            regions: Mutex::new([None, None]),
            allocations: AtomicU64::new(0),
            deallocations: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    /// Adds `[start, start + size)` as a region. Returns false if both slots are taken.
    ///
    /// # Safety
    /// The memory must be unused, writable and live forever, and not overlap another region.
    pub unsafe fn add_region(&self, start: usize, size: usize) -> bool {
        let mut regions = self.regions.lock();
        let Some(slot) = regions.iter_mut().find(|slot| slot.is_none()) else {
            return false;
        };
        let mut heap = Heap::empty();
        // SAFETY: the caller hands over exclusive, live memory (the function's contract).
        unsafe { heap.init(start as *mut u8, size) };
        *slot = Some(Region {
            heap,
            start,
            end: start + size,
        });
        true
    }

    /// Adds `ram` as a region (it becomes the heap's for good). Returns false, and leaves
    /// the range unused, if both slots are taken.
    pub fn add_ram(&self, ram: OwnedRam) -> bool {
        let Ok(size) = usize::try_from(ram.len()) else {
            return false;
        };
        // SAFETY: owned RAM is unused, writable and valid forever, and this value was its
        // only owner; distinct OwnedRam values do not overlap (their makers' contract).
        unsafe { self.add_region(ram.start() as usize, size) }
    }

    /// Adds the early arena (a static set aside for it) as a region. Only the first call in
    /// the program gets it; returns whether this call did.
    pub fn add_early_arena(&self) -> bool {
        if EARLY_ARENA_TAKEN.swap(true, Ordering::AcqRel) {
            return false;
        }
        // SAFETY: the arena is a static that nothing else names, handed out once (the flag
        // above); it lives forever.
        unsafe { self.add_region(EARLY_ARENA.0.get() as usize, EARLY_ARENA_BYTES) }
    }

    /// Current usage.
    pub fn stats(&self) -> HeapStats {
        let regions = self.regions.lock();
        let (size, used) = regions
            .iter()
            .flatten()
            .fold((0, 0), |(size, used), region| {
                (
                    size + region.heap.size() as u64,
                    used + region.heap.used() as u64,
                )
            });
        HeapStats {
            size,
            used,
            allocations: self.allocations.load(Ordering::Relaxed),
            deallocations: self.deallocations.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }
}

// SAFETY: allocations come from linked_list_allocator, which returns blocks that fit the
// layout and never overlap; deallocation returns a block to the region that contains it.
unsafe impl GlobalAlloc for TwoRegionHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut regions = self.regions.lock();
        // Prefer the last region added (main RAM) and keep the early arena as a reserve.
        for region in regions.iter_mut().rev().flatten() {
            if let Ok(block) = region.heap.allocate_first_fit(layout) {
                self.allocations.fetch_add(1, Ordering::Relaxed);
                return block.as_ptr();
            }
        }
        self.failures.fetch_add(1, Ordering::Relaxed);
        core::ptr::null_mut()
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let address = ptr as usize;
        let mut regions = self.regions.lock();
        if let Some(region) = regions
            .iter_mut()
            .flatten()
            .find(|r| (r.start..r.end).contains(&address))
        {
            if let Some(block) = NonNull::new(ptr) {
                // SAFETY: the block was allocated from this region with this layout.
                unsafe { region.heap.deallocate(block, layout) };
                self.deallocations.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_from_main_region_and_frees_to_the_right_one() {
        let mut early = vec![0u64; 1024];
        let mut main = vec![0u64; 64 * 1024];
        let heap = TwoRegionHeap::new();
        // SAFETY: both vectors outlive the heap in this test and are not otherwise used.
        unsafe {
            assert!(heap.add_region(early.as_mut_ptr() as usize, 8192));
            assert!(heap.add_region(main.as_mut_ptr() as usize, 512 * 1024));
            assert!(!heap.add_region(0x1000, 0x1000), "only two regions");
        }
        let layout = Layout::from_size_align(4096, 64).unwrap();
        // SAFETY: the layout is non-zero; the block is freed below with the same layout.
        let block = unsafe { heap.alloc(layout) };
        let main_range = main.as_ptr() as usize..main.as_ptr() as usize + 512 * 1024;
        assert!(main_range.contains(&(block as usize)));
        assert_eq!(block as usize % 64, 0);
        assert_eq!(heap.stats().used, 4096);
        // SAFETY: allocated above with this layout.
        unsafe { heap.dealloc(block, layout) };
        let stats = heap.stats();
        assert_eq!(
            (stats.used, stats.allocations, stats.deallocations),
            (0, 1, 1)
        );
        // Too big for either region: a null pointer and a counted failure, not a panic.
        let huge = Layout::from_size_align(1 << 30, 8).unwrap();
        // SAFETY: the layout is non-zero.
        assert!(unsafe { heap.alloc(huge) }.is_null());
        assert_eq!(heap.stats().failures, 1);
    }
}
