//! Host builds only: host memory standing in for physical memory. On the host a "physical
//! address" is the address of a real host allocation (see the module above), so the
//! allocators, the PHB3 code and the TCE code run unchanged on blocks of an [`Arena`],
//! naturally aligned like blocks of real RAM.
//!
//! Resources: `std::alloc` (`alloc_zeroed` with a size and an alignment).

use super::{OwnedRam, PhysAddr};
use alloc::alloc::{alloc_zeroed, dealloc, Layout};

/// A zeroed host allocation used as a range of physical memory, freed on drop.
pub struct Arena {
    base: *mut u8,
    layout: Layout,
}

// SAFETY: the arena is plain memory; every access to its contents goes through physical
// addresses with their own synchronisation (atomics, locks, or the test's own ordering).
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

    /// The arena as RAM given away for good: it is never freed (a test that hands an arena
    /// to an allocator this way leaks it, which is what makes the hand-over safe).
    pub fn into_owned_ram(self) -> OwnedRam {
        let (start, end) = (self.base(), self.base() + self.bytes());
        core::mem::forget(self);
        // SAFETY: the allocation is ours and is never freed (forgotten above), no Rust object
        // lives in it, and nothing else names it.
        unsafe { OwnedRam::new(start, end) }
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { dealloc(self.base, self.layout) }
    }
}
