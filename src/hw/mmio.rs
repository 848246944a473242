//! Access to a device's memory BAR, as a small trait so drivers run against host fakes.
//!
//! Values are in PCI byte order: `read32(off)` returns the four bytes at `off` taken as a
//! little-endian number, which is what a plain load gives on ppc64le (and what a PCI device's
//! little-endian registers mean). A device whose registers are big-endian (QEMU's `edu` on a
//! ppc64 target, whose "native" endianness is big) is byte-swapped by its driver.
//!
//! Resources: QEMU docs/devel/memory.rst (DEVICE_NATIVE_ENDIAN); docs/powernv8-phb3.md
//! (observed: edu's registers read byte-swapped from a little-endian CPU).

/// Memory-mapped registers of one BAR, by byte offset from the BAR.
pub trait Mmio {
    /// Four bytes at `offset` (4-byte aligned), little-endian.
    fn read32(&self, offset: u64) -> u32;
    /// Writes four bytes at `offset`, little-endian.
    fn write32(&self, offset: u64, value: u32);
    /// Eight bytes at `offset` (8-byte aligned), little-endian.
    fn read64(&self, offset: u64) -> u64;
    /// Writes eight bytes at `offset`, little-endian.
    fn write64(&self, offset: u64, value: u64);
}
