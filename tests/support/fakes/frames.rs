//! Host RAM behind the frame allocator (a `tcefw::mm::phys::Arena`), a frame allocator
//! that refuses a chosen allocation and counts what is outstanding, and peeks into the blocks
//! it handed out.

use std::collections::BTreeMap;
use std::sync::Mutex;
use tcefw::mm::frame::BuddyAllocator;
use tcefw::mm::phys::Arena;
use tcefw::mm::{FrameAllocator, PhysAddr};

/// A buddy allocator over a fresh 16 MiB arena. Keep the arena alive as long as the frames.
pub fn host_frames() -> (Arena, BuddyAllocator) {
    let arena = Arena::new(16 << 20, 16 << 20).unwrap();
    let frames = BuddyAllocator::new();
    let base = arena.base();
    // SAFETY: the arena is ours and unused.
    unsafe { frames.add_range(base, base + (16 << 20)) };
    (arena, frames)
}

/// A frame allocator that refuses the `fail_on`-th allocation (1-based) and counts what is
/// outstanding, over a real buddy allocator.
pub struct CountingFrames<'a> {
    pub inner: &'a BuddyAllocator,
    pub fail_on: Option<usize>,
    state: Mutex<(usize, BTreeMap<PhysAddr, usize>)>,
}

impl<'a> CountingFrames<'a> {
    pub fn new(inner: &'a BuddyAllocator, fail_on: Option<usize>) -> Self {
        CountingFrames {
            inner,
            fail_on,
            state: Mutex::new((0, BTreeMap::new())),
        }
    }

    /// Blocks handed out and not yet freed.
    pub fn outstanding(&self) -> Vec<(PhysAddr, usize)> {
        self.state
            .lock()
            .unwrap()
            .1
            .iter()
            .map(|(&pa, &size)| (pa, size))
            .collect()
    }

    /// Allocation attempts so far.
    pub fn attempts(&self) -> usize {
        self.state.lock().unwrap().0
    }
}

impl FrameAllocator for CountingFrames<'_> {
    fn alloc(&self, size: usize) -> Option<PhysAddr> {
        let mut state = self.state.lock().unwrap();
        state.0 += 1;
        if Some(state.0) == self.fail_on {
            return None;
        }
        let pa = self.inner.alloc(size)?;
        state.1.insert(pa, size);
        Some(pa)
    }

    fn free(&self, pa: PhysAddr, size: usize) {
        let mut state = self.state.lock().unwrap();
        assert_eq!(
            state.1.remove(&pa),
            Some(size),
            "free of a block not handed out"
        );
        self.inner.free(pa, size);
    }
}

/// Reads the big-endian u16 at `pa` (host memory handed out by the fakes above).
pub fn peek_be16(pa: PhysAddr) -> u16 {
    let mut bytes = [0u8; 2];
    // SAFETY: tests only peek into blocks the allocator handed out and that are still live.
    unsafe { tcefw::mm::phys::read_bytes(pa, &mut bytes) };
    u16::from_be_bytes(bytes)
}

/// Reads `len` bytes at `pa`.
pub fn peek_bytes(pa: PhysAddr, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    // SAFETY: as for `peek_be16`.
    unsafe { tcefw::mm::phys::read_bytes(pa, &mut bytes) };
    bytes
}
