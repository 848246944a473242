//! Memory management: physical addresses, the page (frame) allocator for naturally aligned
//! hardware tables, and [`phys`], the one module of `mm` allowed unsafe: raw access to
//! physical memory, the handles that make it safe, the heap and the block cache.
//!
//! The firmware runs with the MMU off, so a physical address is also the pointer the CPU
//! uses. Host tests keep that identity by handing out addresses of real host allocations.

pub mod frame;
#[allow(unsafe_code)] // The one physical-memory module (see the README's conventions).
pub mod phys;

/// A real (physical) address as the CPU and the PHB see it.
pub type PhysAddr = u64;

/// Hands out zeroed, naturally aligned blocks of physical memory for hardware tables
/// (RTT 128 KiB, TCE levels 4 KiB..., PELTV, PEST).
///
/// `size` is a power of two of at least [`frame::MIN_BLOCK`]; the block returned is aligned to
/// `size`. Implementations must be callable from any CPU without blocking for long.
///
/// The contract that [`phys::OwnedFrame`] and the table code rely on: a block `alloc`
/// returns is RAM that belongs to the caller alone until it is given to `free`, and no Rust
/// object lives in it.
pub trait FrameAllocator: Sync {
    /// A zeroed block of `size` bytes aligned to `size`, or `None` when memory is exhausted or
    /// `size` is not a supported power of two.
    fn alloc(&self, size: usize) -> Option<PhysAddr>;
    /// Returns a block obtained from [`FrameAllocator::alloc`] with the same `size`.
    fn free(&self, pa: PhysAddr, size: usize);
}
