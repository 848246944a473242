//! Cache-inhibited MMIO in hypervisor real mode, and the PHB3 register block behind the
//! `RegIo` trait.
//!
//! With the MMU off, ordinary loads and stores are cacheable; device registers need the
//! cache-inhibited forms `ldcix`/`stdcix`/`lwzcix`/`lhzcix`/`lbzcix` (POWER ISA 2.07 Book III
//! 4.4, "Load/Store Caching Inhibited"), as skiboot's and Linux's real-mode accessors use.
//! They transfer in the CPU's byte order (little-endian here), so big-endian registers are
//! byte-swapped in software. Resources: skiboot include/io.h; Linux __raw_rm_readq.

use crate::hw::regio::{RegIo, Width};
use crate::mm::phys::BootAuthority;
use core::arch::asm;

/// Reads 8 bytes, cache-inhibited, with no byte swap.
///
/// # Safety
/// `addr` must be an 8-byte aligned device register that may be read.
#[inline(always)]
pub unsafe fn ld_ci(addr: u64) -> u64 {
    let value: u64;
    // SAFETY: the caller guarantees `addr` is a readable, aligned device register.
    unsafe { asm!("sync", "ldcix {0}, 0, {1}", out(reg) value, in(reg) addr, options(nostack)) };
    value
}

/// Writes 8 bytes, cache-inhibited, with no byte swap.
///
/// # Safety
/// `addr` must be an 8-byte aligned device register that may be written with `value`.
#[inline(always)]
pub unsafe fn st_ci(addr: u64, value: u64) {
    // SAFETY: the caller guarantees `addr` is a writable, aligned device register.
    unsafe { asm!("sync", "stdcix {0}, 0, {1}", in(reg) value, in(reg) addr, options(nostack)) };
}

/// Reads a 1/2/4-byte little-endian lane, cache-inhibited.
///
/// # Safety
/// `addr` must be a readable device location aligned to `width`.
pub unsafe fn read_lane(addr: u64, width: Width) -> u32 {
    let value: u64;
    // SAFETY: the caller guarantees the location; the CPU is little-endian, so the loaded
    // value is the lane's little-endian value.
    unsafe {
        match width {
            Width::U8 => {
                asm!("sync", "lbzcix {0}, 0, {1}", out(reg) value, in(reg) addr, options(nostack))
            }
            Width::U16 => {
                asm!("sync", "lhzcix {0}, 0, {1}", out(reg) value, in(reg) addr, options(nostack))
            }
            Width::U32 => {
                asm!("sync", "lwzcix {0}, 0, {1}", out(reg) value, in(reg) addr, options(nostack))
            }
        }
    }
    value as u32
}

/// Writes a 1/2/4-byte little-endian lane, cache-inhibited.
///
/// # Safety
/// `addr` must be a writable device location aligned to `width`.
pub unsafe fn write_lane(addr: u64, width: Width, value: u32) {
    let value = u64::from(value);
    // SAFETY: the caller guarantees the location (see the function's contract).
    unsafe {
        match width {
            Width::U8 => {
                asm!("sync", "stbcix {0}, 0, {1}", in(reg) value, in(reg) addr, options(nostack))
            }
            Width::U16 => {
                asm!("sync", "sthcix {0}, 0, {1}", in(reg) value, in(reg) addr, options(nostack))
            }
            Width::U32 => {
                asm!("sync", "stwcix {0}, 0, {1}", in(reg) value, in(reg) addr, options(nostack))
            }
        }
    }
}

/// A block of big-endian 64-bit device registers at a physical address (a PHB3's
/// register BAR).
pub struct MmioRegs {
    base: u64,
    size: u64,
}

impl MmioRegs {
    /// The register block `[base, base + size)`: a device register block that nothing maps
    /// as memory (the boot authority's holder vouches for it: a PBCQ BAR it enabled, or
    /// skiboot's `reg`).
    pub const fn new(_authority: &BootAuthority, base: u64, size: u64) -> Self {
        Self { base, size }
    }

    /// The block's base address.
    pub fn base(&self) -> u64 {
        self.base
    }

    fn in_range(&self, offset: u64, bytes: u64) -> bool {
        offset
            .checked_add(bytes)
            .is_some_and(|end| end <= self.size)
            && offset.is_multiple_of(bytes)
    }
}

impl RegIo for MmioRegs {
    fn now_ns(&self) -> u64 {
        let hz = u128::from(crate::console::timebase_hz().max(1));
        (u128::from(super::cpu::timebase()) * 1_000_000_000 / hz) as u64
    }

    fn barrier(&self) {
        // Every access below also starts with a `sync`; the protocol's barrier is explicit all
        // the same, so that it does not rest on how an accessor happens to be written.
        super::cpu::sync();
    }

    fn delay_ns(&self, ns: u64) {
        let hz = crate::console::timebase_hz();
        let ticks = (u128::from(ns) * u128::from(hz)).div_ceil(1_000_000_000) as u64;
        let start = super::cpu::timebase();
        while super::cpu::timebase().wrapping_sub(start) < ticks {
            super::cpu::relax();
        }
    }

    fn read64(&self, offset: u64) -> u64 {
        if !self.in_range(offset, 8) {
            return u64::MAX;
        }
        // SAFETY: the offset is inside the register block and aligned (checked above).
        u64::from_be(unsafe { ld_ci(self.base + offset) })
    }

    fn write64(&self, offset: u64, value: u64) {
        if self.in_range(offset, 8) {
            // SAFETY: the offset is inside the register block and aligned (checked above).
            unsafe { st_ci(self.base + offset, value.to_be()) }
        }
    }

    fn read_le(&self, offset: u64, width: Width) -> u32 {
        if !self.in_range(offset, width.bytes()) {
            return u32::MAX;
        }
        // SAFETY: the offset is inside the register block and aligned (checked above).
        unsafe { read_lane(self.base + offset, width) }
    }

    fn write_le(&self, offset: u64, width: Width, value: u32) {
        if self.in_range(offset, width.bytes()) {
            // SAFETY: the offset is inside the register block and aligned (checked above).
            unsafe { write_lane(self.base + offset, width, value) }
        }
    }
}

/// A device's memory BAR as the CPU sees it (PCI little-endian registers).
pub struct MmioWindow {
    base: u64,
    size: u64,
}

impl MmioWindow {
    /// The BAR mapped at CPU address `base`, `size` bytes: a device's MMIO window that
    /// nothing maps as memory (the boot authority's holder vouches for it: a BAR it assigned
    /// inside a host bridge's window).
    pub const fn new(_authority: &BootAuthority, base: u64, size: u64) -> Self {
        Self { base, size }
    }

    fn fits(&self, offset: u64, bytes: u64) -> bool {
        offset
            .checked_add(bytes)
            .is_some_and(|end| end <= self.size)
            && offset.is_multiple_of(bytes)
    }
}

impl crate::hw::mmio::Mmio for MmioWindow {
    fn read32(&self, offset: u64) -> u32 {
        if !self.fits(offset, 4) {
            return u32::MAX;
        }
        // SAFETY: inside the BAR and aligned (checked above).
        unsafe { read_lane(self.base + offset, Width::U32) }
    }

    fn write32(&self, offset: u64, value: u32) {
        if self.fits(offset, 4) {
            // SAFETY: inside the BAR and aligned (checked above).
            unsafe { write_lane(self.base + offset, Width::U32, value) }
        }
    }

    fn read64(&self, offset: u64) -> u64 {
        if !self.fits(offset, 8) {
            return u64::MAX;
        }
        // SAFETY: inside the BAR and aligned (checked above); the CPU is little-endian, as
        // PCI is, so no swap.
        unsafe { ld_ci(self.base + offset) }
    }

    fn write64(&self, offset: u64, value: u64) {
        if self.fits(offset, 8) {
            // SAFETY: inside the BAR and aligned (checked above).
            unsafe { st_ci(self.base + offset, value) }
        }
    }
}
