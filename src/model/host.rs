//! The model's unsafe leaf: host memory standing in for physical memory, the device-side
//! accesses the model makes to it (DMA data, TCE and RTT fetches), and a counting global
//! allocator so host tests can read the heap's usage the way the firmware reads its own.
//!
//! On the host a "physical address" is the address of a real host allocation (see
//! [`crate::mm::phys`]). [`Arena`] makes such allocations, naturally aligned like real RAM
//! blocks. The model only touches addresses inside the ranges it was told are memory, so a
//! broken table can make it fault, never make it scribble over the test process.

use crate::mm::{phys, PhysAddr};
use alloc::alloc::{alloc_zeroed, dealloc, GlobalAlloc, Layout};
use core::sync::atomic::{AtomicU64, Ordering};

/// A zeroed host allocation used as a range of physical memory.
pub struct Arena {
    base: *mut u8,
    layout: Layout,
}

// SAFETY: the arena is plain memory; every access to its contents goes through physical
// addresses with their own synchronisation (atomics, or the test's own ordering).
unsafe impl Send for Arena {}
// SAFETY: as above; `&Arena` only exposes the address and size.
unsafe impl Sync for Arena {}

impl Arena {
    /// `bytes` zeroed bytes aligned to `align` (a power of two), or `None`.
    pub fn new(bytes: usize, align: usize) -> Option<Self> {
        let layout = Layout::from_size_align(bytes, align).ok()?;
        if bytes == 0 {
            return None;
        }
        // SAFETY: the layout has a non-zero size (checked above).
        let base = unsafe { alloc_zeroed(layout) };
        (!base.is_null()).then_some(Arena { base, layout })
    }

    /// The physical address of the first byte.
    pub fn base(&self) -> PhysAddr {
        self.base as usize as PhysAddr
    }

    /// Size in bytes.
    pub fn bytes(&self) -> u64 {
        self.layout.size() as u64
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { dealloc(self.base, self.layout) }
    }
}

/// The memory ranges a model may access.
#[derive(Clone, Debug, Default)]
pub struct DeviceMemory {
    ranges: alloc::vec::Vec<(PhysAddr, u64)>,
}

impl DeviceMemory {
    /// Memory made of `ranges`.
    ///
    /// # Safety
    /// Every range must be memory (e.g. an [`Arena`]) that stays allocated while this value is
    /// used, and that no Rust reference covers while the model accesses it.
    pub unsafe fn new(ranges: &[(PhysAddr, u64)]) -> Self {
        DeviceMemory {
            ranges: ranges.to_vec(),
        }
    }

    /// True when `[pa, pa + len)` lies inside one range.
    pub fn contains(&self, pa: PhysAddr, len: u64) -> bool {
        self.ranges.iter().any(|&(base, size)| {
            pa >= base && pa.checked_add(len).is_some_and(|end| end <= base + size)
        })
    }

    /// The big-endian 64-bit word at `pa` (8-byte aligned), read atomically as the PHB's
    /// fetch is, or `None` outside memory.
    pub fn read_be64(&self, pa: PhysAddr) -> Option<u64> {
        if !pa.is_multiple_of(8) || !self.contains(pa, 8) {
            return None;
        }
        // SAFETY: inside memory (checked), aligned (checked), and only accessed atomically
        // while it holds tables (the contract of `new` excludes Rust references).
        Some(u64::from_be(
            unsafe { phys::atomic_u64(pa) }.load(Ordering::Acquire),
        ))
    }

    /// The big-endian 16-bit value at `pa`, or `None` outside memory.
    pub fn read_be16(&self, pa: PhysAddr) -> Option<u16> {
        let mut bytes = [0u8; 2];
        self.read(pa, &mut bytes).then(|| u16::from_be_bytes(bytes))
    }

    /// Writes the big-endian 16-bit `value` at `pa` (test setup of the RTT).
    pub fn write_be16(&self, pa: PhysAddr, value: u16) -> bool {
        self.write(pa, &value.to_be_bytes())
    }

    /// Copies memory at `pa` into `dst`; false (nothing read) outside memory.
    pub fn read(&self, pa: PhysAddr, dst: &mut [u8]) -> bool {
        if !self.contains(pa, dst.len() as u64) {
            return false;
        }
        // SAFETY: inside memory (checked); no Rust reference covers it (contract of `new`).
        unsafe { phys::read_bytes(pa, dst) };
        true
    }

    /// Copies `src` to memory at `pa`; false (nothing written) outside memory.
    pub fn write(&self, pa: PhysAddr, src: &[u8]) -> bool {
        if !self.contains(pa, src.len() as u64) {
            return false;
        }
        // SAFETY: inside memory (checked); no Rust reference covers it (contract of `new`).
        unsafe { phys::write_bytes(pa, src) };
        true
    }
}

/// A global allocator that forwards to `A` and counts the bytes it has handed out (requested
/// sizes, so the count is exact). A host test or benchmark installs it with
/// `#[global_allocator]` and compares [`CountingAlloc::used`] before and after, which is how it
/// proves that window create/remove and rejected hypercalls leave the heap where it was (the
/// firmware reads its own heap's counters instead). The count is process-wide: read it where
/// no other thread allocates.
pub struct CountingAlloc<A> {
    inner: A,
    used: AtomicU64,
    allocations: AtomicU64,
}

impl<A> CountingAlloc<A> {
    /// Counts the allocations made through `inner`.
    pub const fn new(inner: A) -> Self {
        CountingAlloc {
            inner,
            used: AtomicU64::new(0),
            allocations: AtomicU64::new(0),
        }
    }

    /// Bytes handed out and not yet returned.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Allocations ever made.
    pub fn allocations(&self) -> u64 {
        self.allocations.load(Ordering::Relaxed)
    }

    fn add(&self, bytes: usize) {
        self.used.fetch_add(bytes as u64, Ordering::Relaxed);
        self.allocations.fetch_add(1, Ordering::Relaxed);
    }

    fn sub(&self, bytes: usize) {
        self.used.fetch_sub(bytes as u64, Ordering::Relaxed);
    }
}

// SAFETY: every request goes to `inner` unchanged and its answer comes back unchanged; the
// wrapper only adds counters, so `inner`'s guarantees are this allocator's.
unsafe impl<A: GlobalAlloc> GlobalAlloc for CountingAlloc<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout (the caller upholds `alloc`'s contract).
        let block = unsafe { self.inner.alloc(layout) };
        if !block.is_null() {
            self.add(layout.size());
        }
        block
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let block = unsafe { self.inner.alloc_zeroed(layout) };
        if !block.is_null() {
            self.add(layout.size());
        }
        block
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, hence from `inner`, with `layout`.
        unsafe { self.inner.dealloc(ptr, layout) };
        self.sub(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from `inner` with `layout`; the caller upholds `realloc`'s rules.
        let block = unsafe { self.inner.realloc(ptr, layout, new_size) };
        if !block.is_null() {
            self.add(new_size);
            self.sub(layout.size());
        }
        block
    }
}
