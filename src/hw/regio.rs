//! The register-I/O trait that every PHB3 access goes through, so the same PHB3, PCI and
//! IOMMU logic runs on real hardware (cache-inhibited MMIO in `arch::ppc64`) and against
//! host fakes and the software PHB3 model.
//!
//! Resources: skiboot include/phb3-regs.h (registers are 64-bit big-endian, 8-byte accesses
//! only); skiboot hw/phb3.c phb3_pcicfg_* (CONFIG_DATA is little-endian, 1/2/4 bytes).

/// Width of a config-data access. PHB3 CONFIG_DATA takes 1, 2 or 4 bytes; never 8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    /// One byte.
    U8,
    /// Two bytes.
    U16,
    /// Four bytes.
    U32,
}

impl Width {
    /// Size of the access in bytes.
    pub const fn bytes(self) -> u64 {
        match self {
            Width::U8 => 1,
            Width::U16 => 2,
            Width::U32 => 4,
        }
    }
}

/// Access to one PHB's register space, by byte offset from the register BAR.
pub trait RegIo: Sync {
    /// Reads the 64-bit big-endian register at `offset`, returned in CPU order.
    fn read64(&self, offset: u64) -> u64;
    /// Writes the 64-bit big-endian register at `offset`.
    fn write64(&self, offset: u64, value: u64);
    /// Reads `width` bytes of little-endian data at `offset` (CONFIG_DATA and its byte lanes).
    fn read_le(&self, offset: u64, width: Width) -> u32;
    /// Writes `width` bytes of little-endian data at `offset`.
    fn write_le(&self, offset: u64, width: Width, value: u32);
    /// Waits at least `ns` nanoseconds between two register accesses, where the hardware
    /// asks for a settle time (skiboot phb3_init_ioda2 Init_26: "At least 512ns delay" after
    /// PHB3_CONFIG). The default waits for nothing, which suits fakes and models; the real
    /// implementation should wait on the timebase.
    fn delay_ns(&self, ns: u64) {
        let _ = ns;
    }
    /// Monotonic time in nanoseconds, for waits that must end: a wait on the PHB (the TCE
    /// kill's DMA read sync) gives up after a fixed time, not after a number of polls whose
    /// duration depends on the machine. The hardware implementation reads the timebase;
    /// models and fakes advance a virtual clock at each call, so a test with a PHB that
    /// never answers still ends.
    fn now_ns(&self) -> u64;
    /// Makes every store this CPU did to memory before the call (TCE table entries) visible
    /// to the PHB before any register access after it: `sync` on POWER (Book II 1.7.1, the
    /// only barrier that orders cacheable stores before a cache-inhibited store; Linux's
    /// `mb()` before its PHB3 kill stores). The default is the CPU's full fence (`sync` on
    /// ppc64). The software PHB3 model overrides it to see whether it happened: it goes
    /// through this trait, not a bare fence, so that a missing barrier is observable.
    fn barrier(&self) {
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
    }
}
