//! A partition: the caller of the TCE hypercalls. It owns a range of guest-real addresses
//! mapped onto host RAM, and LIOBNs (recorded as the owner of each DMA window).
//!
//! The hypervisor translates the caller's guest-real addresses to host addresses for the
//! hardware TCE, and back for H_GET_TCE. Today the firmware's own test code is the caller,
//! with memory that excludes the firmware; later a real guest (MSR[HV]=0) will be, and the
//! TCE protocol does not change.
//!
//! A partition needs only 4 KiB alignment in host memory, so which IOMMU page sizes can map
//! it depends on its placement ([`Partition::can_map_pages_of`]): the hypercalls refuse a TCE
//! whose host page is misaligned, and the window query offers only the page sizes that fit.
//!
//! Resources: LoPAR ch_address_map (real mode addressing of a partition); docs/tce-protocol.md.

use crate::mm::PhysAddr;

/// A partition. Only [`crate::hcall::Hypervisor::add_partition`] makes one, after checking
/// its memory, so a `&Partition` always describes real RAM that is the partition's own.
#[derive(Debug, PartialEq, Eq)]
pub struct Partition {
    id: u32,
    guest_base: u64,
    size: u64,
    host_base: PhysAddr,
}

impl Partition {
    pub(crate) const fn new(id: u32, guest_base: u64, size: u64, host_base: PhysAddr) -> Self {
        Partition {
            id,
            guest_base,
            size,
            host_base,
        }
    }

    /// The partition id (the owner tag of its windows).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// First guest-real address.
    pub fn guest_base(&self) -> u64 {
        self.guest_base
    }

    /// Bytes of memory.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Host address of the first guest-real address.
    pub fn host_base(&self) -> PhysAddr {
        self.host_base
    }

    /// The host address of guest-real `[gra, gra + len)`, if all of it is the partition's.
    pub fn to_host(&self, gra: u64, len: u64) -> Option<PhysAddr> {
        let offset = gra.checked_sub(self.guest_base)?;
        let end = offset.checked_add(len)?;
        (end <= self.size).then(|| self.host_base + offset)
    }

    /// The guest-real address of host address `host`, if it is the partition's.
    pub fn to_guest(&self, host: PhysAddr) -> Option<u64> {
        let offset = host.checked_sub(self.host_base)?;
        (offset < self.size).then(|| self.guest_base + offset)
    }

    /// True when at least one IOMMU page of `page_size` bytes (a power of two, at least
    /// 4 KiB) fits in the partition with its guest-real AND its host address aligned to the
    /// page. The partition is one contiguous range, so either every page-aligned guest-real
    /// address has a page-aligned host address or none has: a partition whose host base is
    /// only 4 KiB aligned can never have a 64K or 16M TCE, and one smaller than a page can
    /// never hold one.
    pub fn can_map_pages_of(&self, page_size: u64) -> bool {
        if !page_size.is_power_of_two() {
            return false;
        }
        let mask = page_size - 1;
        if self.host_base.wrapping_sub(self.guest_base) & mask != 0 {
            return false;
        }
        let first = match self.guest_base.checked_add(mask) {
            Some(up) => up & !mask,
            None => return false,
        };
        first
            .checked_add(page_size)
            .is_some_and(|end| end <= self.guest_base + self.size)
    }

    /// True when host `[host, host + len)` is all the partition's memory.
    pub fn owns_host(&self, host: PhysAddr, len: u64) -> bool {
        host.checked_sub(self.host_base)
            .and_then(|offset| offset.checked_add(len))
            .is_some_and(|end| end <= self.size)
    }
}
