//! A partition's memory as the guest sees it: guest-real addresses `0..size`, backed by one
//! contiguous, 16 MiB-aligned host range ([`GuestRealMap`]), and the bounds-checked copy
//! interface ([`GuestMemory`]) through which the hypervisor reads and writes it (RTAS argument
//! buffers, H_ZERO_PAGE, loading a kernel).
//!
//! Why one contiguous range: VRMA maps guest real mode with 16 MiB pages (POWER ISA 2.07B
//! Book III-S 5.7.3.3), so the host range must be 16 MiB-aligned and a multiple of 16 MiB; a
//! guest-real page number then translates by one addition and one bound, and "inside the
//! partition" is one comparison (KVM HV needs memslots and rmaps because its guest memory is
//! host virtual memory; ours is not).
//!
//! Resources: LoPAR ch. "Address map" (real mode addressing of a partition); POWER ISA 2.07B
//! Book III-S 5.7.3 (real addressing, VRMA).

use core::fmt;

/// A host real (physical) address.
pub type HostAddr = u64;

/// The alignment and granule of partition memory: one VRMA page (16 MiB).
pub const PARTITION_GRANULE: u64 = 1 << 24;

/// The largest partition: VRMA uses one 1 TiB segment (ISA 2.07B 5.7.3.3).
pub const MAX_PARTITION_BYTES: u64 = 1 << 40;

/// Guest-real `0..size` mapped onto host `host_base..host_base + size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestRealMap {
    host_base: HostAddr,
    size: u64,
}

/// Why a [`GuestRealMap`] cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GuestRealMapError {
    /// The size is 0, not a multiple of 16 MiB, or above 1 TiB.
    BadSize,
    /// The host base is not 16 MiB-aligned.
    MisalignedHostBase,
    /// `host_base + size` does not fit the 64-bit address space (or the 2^60 real address
    /// limit of the HPTE's RPN field).
    HostRangeTooHigh,
}

/// The highest real address an HPTE can name (ARPN is bits 4:51 of the second doubleword).
pub const REAL_ADDRESS_LIMIT: u64 = 1 << 60;

impl GuestRealMap {
    /// The map of a partition of `size` bytes at host `host_base`.
    pub const fn new(host_base: HostAddr, size: u64) -> Result<Self, GuestRealMapError> {
        if size == 0 || !size.is_multiple_of(PARTITION_GRANULE) || size > MAX_PARTITION_BYTES {
            return Err(GuestRealMapError::BadSize);
        }
        if !host_base.is_multiple_of(PARTITION_GRANULE) {
            return Err(GuestRealMapError::MisalignedHostBase);
        }
        match host_base.checked_add(size) {
            Some(end) if end <= REAL_ADDRESS_LIMIT => Ok(GuestRealMap { host_base, size }),
            _ => Err(GuestRealMapError::HostRangeTooHigh),
        }
    }

    /// Host address of guest-real 0.
    pub const fn host_base(&self) -> HostAddr {
        self.host_base
    }

    /// Bytes of guest-real memory.
    pub const fn size(&self) -> u64 {
        self.size
    }

    /// One past the last host address of the partition.
    pub const fn host_end(&self) -> HostAddr {
        self.host_base + self.size
    }

    /// The host address of guest-real `[gra, gra + len)`, if all of it is the partition's.
    /// `len == 0` asks only whether `gra` is inside (or at the end of) the partition.
    pub fn to_host(&self, gra: u64, len: u64) -> Option<HostAddr> {
        let end = gra.checked_add(len)?;
        (end <= self.size && gra <= self.size).then_some(self.host_base + gra)
    }

    /// The guest-real address of host `[host, host + len)`, if all of it is the partition's.
    pub fn to_guest(&self, host: HostAddr, len: u64) -> Option<u64> {
        let offset = host.checked_sub(self.host_base)?;
        let end = offset.checked_add(len)?;
        (end <= self.size).then_some(offset)
    }

    /// True when host `[host, host + len)` overlaps the partition's memory.
    pub fn overlaps_host(&self, host: HostAddr, len: u64) -> bool {
        let end = host.saturating_add(len);
        len != 0 && host < self.host_end() && end > self.host_base
    }
}

/// A guest-real range that is not all inside the partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestMemoryError {
    /// First guest-real address asked for.
    pub gra: u64,
    /// Bytes asked for.
    pub len: u64,
}

impl fmt::Display for GuestMemoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "guest-real {:#x}+{:#x} is outside the partition",
            self.gra, self.len
        )
    }
}

/// Copies into and out of a partition's memory by guest-real address.
///
/// Contract for implementations (the firmware's is a physical-memory copy in `arch/` or
/// `mm/`, the host's a slice): every method checks the whole range against [`Self::size`]
/// first and touches nothing when any byte is outside; nothing outside guest-real
/// `0..size()` is ever read or written. Callers check too (defence in depth), but must not
/// rely on the implementation being lenient.
pub trait GuestMemory {
    /// Bytes of guest-real memory.
    fn size(&self) -> u64;
    /// Copies guest-real `[gra, gra + dst.len())` into `dst`.
    fn read(&self, gra: u64, dst: &mut [u8]) -> Result<(), GuestMemoryError>;
    /// Copies `src` to guest-real `[gra, gra + src.len())`.
    fn write(&mut self, gra: u64, src: &[u8]) -> Result<(), GuestMemoryError>;
    /// Sets guest-real `[gra, gra + len)` to `byte`.
    fn fill(&mut self, gra: u64, len: u64, byte: u8) -> Result<(), GuestMemoryError>;

    /// The big-endian 32-bit word at `gra` (RTAS cells).
    fn read_be32(&self, gra: u64) -> Result<u32, GuestMemoryError> {
        let mut word = [0u8; 4];
        self.read(gra, &mut word)?;
        Ok(u32::from_be_bytes(word))
    }

    /// Stores `value` big-endian at `gra`.
    fn write_be32(&mut self, gra: u64, value: u32) -> Result<(), GuestMemoryError> {
        self.write(gra, &value.to_be_bytes())
    }
}

/// Checks guest-real `[gra, gra + len)` against a memory of `size` bytes: the one bound every
/// [`GuestMemory`] implementation applies.
pub fn check_range(gra: u64, len: u64, size: u64) -> Result<(), GuestMemoryError> {
    match gra.checked_add(len) {
        Some(end) if end <= size => Ok(()),
        _ => Err(GuestMemoryError { gra, len }),
    }
}

/// Guest memory held in a byte buffer: host tests, and building a guest image in a buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SliceGuestMemory<B> {
    bytes: B,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> SliceGuestMemory<B> {
    /// Guest-real `0..bytes.len()` held in `bytes`.
    pub fn new(bytes: B) -> Self {
        SliceGuestMemory { bytes }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_ref()
    }

    /// The buffer back.
    pub fn into_inner(self) -> B {
        self.bytes
    }

    fn span(&self, gra: u64, len: u64) -> Result<core::ops::Range<usize>, GuestMemoryError> {
        check_range(gra, len, self.size())?;
        // Both fit in usize: they are at most the buffer's length.
        Ok(gra as usize..(gra + len) as usize)
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> GuestMemory for SliceGuestMemory<B> {
    fn size(&self) -> u64 {
        self.bytes.as_ref().len() as u64
    }

    fn read(&self, gra: u64, dst: &mut [u8]) -> Result<(), GuestMemoryError> {
        let span = self.span(gra, dst.len() as u64)?;
        dst.copy_from_slice(&self.bytes.as_ref()[span]);
        Ok(())
    }

    fn write(&mut self, gra: u64, src: &[u8]) -> Result<(), GuestMemoryError> {
        let span = self.span(gra, src.len() as u64)?;
        self.bytes.as_mut()[span].copy_from_slice(src);
        Ok(())
    }

    fn fill(&mut self, gra: u64, len: u64, byte: u8) -> Result<(), GuestMemoryError> {
        let span = self.span(gra, len)?;
        self.bytes.as_mut()[span].fill(byte);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn map_refuses_bad_geometry() {
        const G: u64 = PARTITION_GRANULE;
        assert_eq!(GuestRealMap::new(G, 0), Err(GuestRealMapError::BadSize));
        assert_eq!(
            GuestRealMap::new(G, G + 4096),
            Err(GuestRealMapError::BadSize)
        );
        assert_eq!(
            GuestRealMap::new(0, MAX_PARTITION_BYTES + G),
            Err(GuestRealMapError::BadSize)
        );
        assert_eq!(
            GuestRealMap::new(G + 0x1000, G),
            Err(GuestRealMapError::MisalignedHostBase)
        );
        assert_eq!(
            GuestRealMap::new(REAL_ADDRESS_LIMIT - G, 2 * G),
            Err(GuestRealMapError::HostRangeTooHigh)
        );
        assert_eq!(
            GuestRealMap::new(!(G - 1), G),
            Err(GuestRealMapError::HostRangeTooHigh)
        );
        assert!(GuestRealMap::new(REAL_ADDRESS_LIMIT - G, G).is_ok());
    }

    #[test]
    fn map_translates_both_ways_and_bounds_every_end() {
        let map = GuestRealMap::new(0x4000_0000, 0x200_0000).unwrap();
        assert_eq!(map.to_host(0, 0x200_0000), Some(0x4000_0000));
        assert_eq!(map.to_host(0x1ff_f000, 0x1000), Some(0x41ff_f000));
        assert_eq!(map.to_host(0x1ff_f000, 0x1001), None);
        assert_eq!(map.to_host(0x200_0000, 0), Some(0x4200_0000));
        assert_eq!(map.to_host(0x200_0001, 0), None);
        assert_eq!(map.to_host(u64::MAX, 2), None);
        assert_eq!(map.to_guest(0x4000_1000, 0x1000), Some(0x1000));
        assert_eq!(map.to_guest(0x3fff_f000, 0x1000), None);
        assert_eq!(map.to_guest(0x41ff_f000, 0x1001), None);
        assert_eq!(map.to_guest(u64::MAX, 1), None);
        assert!(map.overlaps_host(0x41ff_ffff, 1));
        assert!(!map.overlaps_host(0x4200_0000, 0x1000));
        assert!(!map.overlaps_host(0x3fff_0000, 0x1_0000));
        assert!(map.overlaps_host(0x3fff_0000, 0x1_0001));
        assert!(!map.overlaps_host(0x4000_0000, 0));
        assert!(map.overlaps_host(0, u64::MAX));
    }

    #[test]
    fn slice_memory_touches_nothing_on_a_range_past_the_end() {
        let mut mem = SliceGuestMemory::new(vec![0xaau8; 64]);
        assert!(mem.write(60, &[1, 2, 3, 4, 5]).is_err());
        assert!(mem.fill(0, 65, 0).is_err());
        assert!(mem.fill(u64::MAX, 2, 0).is_err());
        let mut dst = [0u8; 8];
        assert!(mem.read(57, &mut dst).is_err());
        assert!(mem.bytes().iter().all(|&b| b == 0xaa));
        mem.write_be32(60, 0x0102_0304).unwrap();
        assert_eq!(&mem.bytes()[60..], &[1, 2, 3, 4]);
        assert_eq!(mem.read_be32(60), Ok(0x0102_0304));
        assert!(mem.read_be32(61).is_err());
    }
}
