//! Physical memory: the one module of `mm` that may use unsafe, and the home of every
//! promise about what a physical address is. It holds
//! - the raw accessors: the pointer casts that turn a physical address into something the
//!   CPU can touch (unsafe functions, each with its contract);
//! - the handles that make those accesses safe for everyone else: [`BootAuthority`] (the boot
//!   code's right to say what an address is), [`OwnedRam`] (RAM given away for good, which
//!   the frame allocator and the partition pool are made of), [`OwnedFrame`] (a block from a
//!   [`FrameAllocator`], freed on drop), and on the host [`Arena`] (host memory standing in
//!   for physical memory);
//! - the two allocators whose bookkeeping lives in the memory they manage: the firmware
//!   [`heap`] (the `GlobalAlloc`) and the lock-free [`block_cache`] (free lists threaded
//!   through the free blocks).
//!
//! With the MMU off (POWER ISA 2.07 Book III, real addressing mode) a real address is the
//! address the CPU dereferences. Host tests keep the same identity by using the addresses of
//! real host allocations as "physical" addresses.
//!
//! What the safe handles rely on: RAM claimed through the boot authority is RAM no Rust
//! object lives in; a block a [`FrameAllocator`] hands out is its caller's until freed (the
//! trait's contract, which the allocators here keep).

pub mod block_cache;
pub mod heap;

use super::frame::BuddyAllocator;
use super::{FrameAllocator, PhysAddr};
use core::sync::atomic::AtomicU64;

/// Fills `len` bytes at `pa` with zero.
///
/// # Safety
/// `[pa, pa + len)` must be memory the caller owns and that nothing else accesses meanwhile.
pub unsafe fn zero(pa: PhysAddr, len: usize) {
    // SAFETY: the caller owns the range exclusively (see the function's contract).
    unsafe { core::ptr::write_bytes(pa as usize as *mut u8, 0, len) }
}

/// The 8-byte word at `pa`, as an atomic.
///
/// # Safety
/// `pa` must be 8-byte aligned and lie in memory that stays valid for `'a` and is only ever
/// accessed atomically (or by a device) while the reference lives.
pub unsafe fn atomic_u64<'a>(pa: PhysAddr) -> &'a AtomicU64 {
    // SAFETY: alignment, validity and atomic-only access are the caller's contract.
    unsafe { &*(pa as usize as *const AtomicU64) }
}

/// Copies `dst.len()` bytes from physical memory at `pa` into `dst`.
///
/// # Safety
/// `[pa, pa + dst.len())` must be readable memory.
pub unsafe fn read_bytes(pa: PhysAddr, dst: &mut [u8]) {
    // SAFETY: the source range is readable (the caller's contract) and cannot overlap a
    // Rust slice the caller holds mutably.
    unsafe { core::ptr::copy_nonoverlapping(pa as usize as *const u8, dst.as_mut_ptr(), dst.len()) }
}

/// Copies `src` into physical memory at `pa`.
///
/// # Safety
/// `[pa, pa + src.len())` must be writable memory that nothing else uses meanwhile.
pub unsafe fn write_bytes(pa: PhysAddr, src: &[u8]) {
    // SAFETY: the destination range is writable and not otherwise in use (the caller's contract).
    unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), pa as usize as *mut u8, src.len()) }
}

/// The physical address of a Rust object (identity with the MMU off, and on the host).
pub fn addr_of<T: ?Sized>(object: &T) -> PhysAddr {
    object as *const T as *const u8 as usize as PhysAddr
}

/// Reads the big-endian u16 at `pa` with one 2-byte load (an RTT entry, which the PHB reads
/// as a unit: a torn read would give a PE number nobody wrote).
///
/// # Safety
/// `pa` must be 2-byte aligned and lie in readable memory.
pub unsafe fn read_be16(pa: PhysAddr) -> u16 {
    // SAFETY: alignment and readability are the caller's contract; volatile keeps it one load.
    u16::from_be(unsafe { core::ptr::read_volatile(pa as usize as *const u16) })
}

/// Writes `value` as a big-endian u16 at `pa` with one 2-byte store, so a device reading the
/// entry concurrently (the PHB walking its RTT) sees either the old or the new value.
///
/// # Safety
/// `pa` must be 2-byte aligned and lie in writable memory that the caller owns.
pub unsafe fn write_be16(pa: PhysAddr, value: u16) {
    // SAFETY: alignment and ownership are the caller's contract; volatile keeps it one store.
    unsafe { core::ptr::write_volatile(pa as usize as *mut u16, value.to_be()) }
}

/// A read-only view of `len` bytes of physical memory at `pa`.
///
/// # Safety
/// `[pa, pa + len)` must be readable memory that nobody writes while the slice lives.
pub unsafe fn bytes<'a>(pa: PhysAddr, len: usize) -> &'a [u8] {
    // The address goes through black_box so that the compiler cannot look through it to a
    // static it believes it knows (the symbol table is rewritten after linking).
    let pa = core::hint::black_box(pa);
    // SAFETY: readable and unchanging for 'a (the caller's contract).
    unsafe { core::slice::from_raw_parts(pa as usize as *const u8, len) }
}

/// The boot code's authority over the machine's address map: whoever holds one may declare
/// ranges free RAM ([`BootAuthority::claim_ram`]) and create device handles (arch's MMIO,
/// XSCOM). There is one, made by arch's boot entry and handed to startup, which takes its
/// addresses only from the device tree, the boot protocol and registers it programmed.
/// Code that has none cannot make an address into memory or a device.
#[derive(Debug)]
pub struct BootAuthority {
    _private: (),
}

impl BootAuthority {
    /// The authority.
    ///
    /// # Safety
    /// Make it once, in the boot entry, and hand it only to code that derives the addresses
    /// it passes from the device tree, the boot protocol or hardware it has programmed.
    pub const unsafe fn new() -> Self {
        BootAuthority { _private: () }
    }

    /// `[start, end)` as RAM given away for good: the caller vouches that it is RAM (the
    /// device tree's memory minus every reserved range, the image, its stacks and the tree)
    /// and that nothing else uses it or ever will. An empty range (`end <= start`) is empty.
    pub fn claim_ram(&self, start: PhysAddr, end: PhysAddr) -> OwnedRam {
        OwnedRam {
            start,
            end: end.max(start),
        }
    }
}

/// RAM `[start, end)` given away for good: no Rust object lives in it, nothing else uses it,
/// and it stays valid for the rest of the program. Not `Clone`: whoever holds it owns it.
/// Dropping it leaks the range (nothing is ever returned).
#[derive(Debug, PartialEq, Eq)]
pub struct OwnedRam {
    start: PhysAddr,
    end: PhysAddr,
}

impl OwnedRam {
    /// `[start, end)` as owned RAM.
    ///
    /// # Safety
    /// The range must be RAM that no Rust object lives in and that nothing else uses, now or
    /// later, for the rest of the program.
    pub const unsafe fn new(start: PhysAddr, end: PhysAddr) -> Self {
        OwnedRam { start, end }
    }

    /// First byte.
    pub fn start(&self) -> PhysAddr {
        self.start
    }

    /// First byte after the range.
    pub fn end(&self) -> PhysAddr {
        self.end
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// True when the range holds no byte.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when `[pa, pa + len)` lies inside.
    pub fn contains(&self, pa: PhysAddr, len: u64) -> bool {
        pa >= self.start && pa.checked_add(len).is_some_and(|end| end <= self.end)
    }

    /// The part `[start, end)` of this range (the rest is given up), or `None` if it is not
    /// inside.
    pub fn narrow(self, start: PhysAddr, end: PhysAddr) -> Option<OwnedRam> {
        (start <= end && self.contains(start, end - start)).then_some(OwnedRam { start, end })
    }

    /// Splits off and returns `[at, end)`, keeping `[start, at)`; `None` (and nothing
    /// changed) if `at` is outside.
    pub fn split_off(&mut self, at: PhysAddr) -> Option<OwnedRam> {
        if at < self.start || at > self.end {
            return None;
        }
        let tail = OwnedRam {
            start: at,
            end: self.end,
        };
        self.end = at;
        Some(tail)
    }

    /// The union of this range and `other` when one ends where the other starts; both back,
    /// unchanged, otherwise.
    pub fn join(self, other: OwnedRam) -> Result<OwnedRam, (OwnedRam, OwnedRam)> {
        if self.end == other.start {
            Ok(OwnedRam {
                start: self.start,
                end: other.end,
            })
        } else if other.end == self.start {
            Ok(OwnedRam {
                start: other.start,
                end: self.end,
            })
        } else {
            Err((self, other))
        }
    }

    /// `[pa, pa + len)` as a block that may be zeroed after the borrow of this range ends
    /// (the range is owned forever), or `None` if it is not inside.
    pub fn block(&self, pa: PhysAddr, len: u64) -> Option<RamBlock> {
        self.contains(pa, len).then_some(RamBlock { pa, len })
    }

    /// Copies `src` to `pa`; false (nothing written) unless the whole range is inside.
    pub fn write(&self, pa: PhysAddr, src: &[u8]) -> bool {
        if !self.contains(pa, src.len() as u64) {
            return false;
        }
        // SAFETY: inside owned RAM (checked), where no Rust object lives.
        unsafe { write_bytes(pa, src) };
        true
    }

    /// Copies memory at `pa` into `dst`; false (nothing read) unless the whole range is
    /// inside.
    pub fn read(&self, pa: PhysAddr, dst: &mut [u8]) -> bool {
        if !self.contains(pa, dst.len() as u64) {
            return false;
        }
        // SAFETY: inside owned RAM (checked), which stays valid.
        unsafe { read_bytes(pa, dst) };
        true
    }
}

/// A piece of [`OwnedRam`], for its owner to zero (the frame allocator clears a block with
/// it after it has let go of its lock).
#[derive(Debug)]
pub struct RamBlock {
    pa: PhysAddr,
    len: u64,
}

impl RamBlock {
    /// Fills the block with zeros.
    pub fn zero(self) {
        // SAFETY: the block lies in owned RAM (OwnedRam::block checked it), which stays
        // valid forever and holds no Rust object.
        unsafe { zero(self.pa, self.len as usize) }
    }
}

/// The frame allocator's raw-address entry point, for callers that hold a range as plain
/// addresses (the software model's rig and host tests); boot code uses
/// [`BuddyAllocator::add_ram`].
impl BuddyAllocator {
    /// Gives the allocator the RAM `[start, end)`. The part not aligned to 4 KiB is left out.
    /// Returns the number of bytes added.
    ///
    /// # Safety
    /// The range must be RAM that nothing else uses, now or later, and must not overlap a
    /// range added before (the contract of [`OwnedRam::new`]).
    pub unsafe fn add_range(&self, start: PhysAddr, end: PhysAddr) -> u64 {
        // SAFETY: the caller's contract is OwnedRam's.
        self.add_ram(unsafe { OwnedRam::new(start, end) })
    }
}

/// A naturally aligned block from a [`FrameAllocator`], owned until dropped (which frees
/// it), with bounds-checked accessors: what a driver needs to fill a hardware table.
pub struct OwnedFrame<'a> {
    pa: PhysAddr,
    size: usize,
    frames: &'a dyn FrameAllocator,
}

impl<'a> OwnedFrame<'a> {
    /// A zeroed block of `size` bytes aligned to `size`, or `None` if the allocator has none
    /// or hands back a block that is not aligned (which would break a hardware BAR decode).
    pub fn alloc(frames: &'a dyn FrameAllocator, size: usize) -> Option<Self> {
        let pa = frames.alloc(size)?;
        let block = OwnedFrame { pa, size, frames };
        if !size.is_power_of_two() || !pa.is_multiple_of(size as u64) {
            return None; // `block` is dropped, which frees it.
        }
        Some(block)
    }

    /// The block's physical address.
    pub fn pa(&self) -> PhysAddr {
        self.pa
    }

    /// The block's size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    fn in_bounds(&self, offset: usize, len: usize) -> bool {
        offset.checked_add(len).is_some_and(|end| end <= self.size)
    }

    /// Writes `value` big-endian at `offset` (2-byte aligned) as one store, so a device
    /// reading it concurrently sees the old or the new value. Out of bounds or misaligned
    /// offsets are ignored: callers index with checked values.
    pub fn write_be16(&mut self, offset: usize, value: u16) {
        if self.in_bounds(offset, 2) && offset.is_multiple_of(2) {
            // SAFETY: the block is ours (the FrameAllocator contract, until drop), the
            // offset is inside it and 2-byte aligned (checked).
            unsafe { write_be16(self.pa + offset as u64, value) }
        }
    }

    /// The big-endian u16 at `offset`, or `None` out of bounds or misaligned.
    pub fn read_be16(&self, offset: usize) -> Option<u16> {
        if !self.in_bounds(offset, 2) || !offset.is_multiple_of(2) {
            return None;
        }
        // SAFETY: the block is ours and the offset is inside it and aligned (checked).
        Some(unsafe { read_be16(self.pa + offset as u64) })
    }

    /// Copies `bytes` to `offset`, if they fit.
    pub fn write_bytes(&mut self, offset: usize, bytes: &[u8]) {
        if self.in_bounds(offset, bytes.len()) {
            // SAFETY: the block is ours and the range is inside it (checked).
            unsafe { write_bytes(self.pa + offset as u64, bytes) }
        }
    }

    /// Copies the bytes at `offset` into `dst`; false (nothing read) if they do not fit.
    pub fn read_bytes(&self, offset: usize, dst: &mut [u8]) -> bool {
        if !self.in_bounds(offset, dst.len()) {
            return false;
        }
        // SAFETY: the block is ours and the range is inside it (checked).
        unsafe { read_bytes(self.pa + offset as u64, dst) };
        true
    }

    /// Zeroes the whole block.
    pub fn zero(&mut self) {
        // SAFETY: the block is ours, `size` bytes from `pa`.
        unsafe { zero(self.pa, self.size) }
    }
}

impl Drop for OwnedFrame<'_> {
    fn drop(&mut self) {
        self.frames.free(self.pa, self.size);
    }
}

#[cfg(not(target_arch = "powerpc64"))]
mod arena;
#[cfg(not(target_arch = "powerpc64"))]
pub use arena::Arena;
