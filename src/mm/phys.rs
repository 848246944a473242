//! Raw access to physical memory: the one home of the pointer casts that turn a physical
//! address into something the CPU can touch.
//!
//! With the MMU off (POWER ISA 2.07 Book III, real addressing mode) a real address is the
//! address the CPU dereferences. Host tests keep the same identity by using the addresses of
//! real host allocations as "physical" addresses.

use super::PhysAddr;
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
