//! Host-test support: a block of host memory, aligned like the largest frame, that unit tests
//! hand to the frame allocator as "physical" RAM (host addresses stand in for real ones).

use std::alloc::{alloc, dealloc, Layout};

/// Host memory aligned to 16 MiB, freed on drop.
pub struct Arena {
    base: *mut u8,
    layout: Layout,
}

// SAFETY: the arena is plain memory; the allocators it is handed to synchronise access.
unsafe impl Send for Arena {}
// SAFETY: as above.
unsafe impl Sync for Arena {}

impl Arena {
    /// `size` bytes aligned to 16 MiB (the largest frame).
    pub fn new(size: usize) -> Self {
        let layout = Layout::from_size_align(size, 1 << super::frame::MAX_ORDER).unwrap();
        // SAFETY: the layout has a non-zero size.
        let base = unsafe { alloc(layout) };
        assert!(!base.is_null());
        Arena { base, layout }
    }

    /// The arena's address, as a physical address.
    pub fn base(&self) -> u64 {
        self.base as u64
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.base, self.layout) }
    }
}
