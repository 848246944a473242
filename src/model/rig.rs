//! A host test rig: host memory standing in for the firmware's table pool and for partition
//! RAM, a buddy frame allocator over the pool, the page accounting, an RTT, and the wiring of
//! [`Phb3Model`]s and a [`Hypervisor`] over them, so tests and benchmarks run the firmware's
//! own iommu and hcall code unchanged.
//!
//! Resources: `crate::mm::frame` unit tests (backing a BuddyAllocator with host memory).

use super::host::{Arena, DeviceMemory};
use super::phb3::{Phb3Model, RTT_BAR_ENABLE};
use crate::hcall::{AllocatorUsage, AuditReport, Hypervisor};
use crate::hw::regio::RegIo;
use crate::iommu::ram::Ram;
use crate::iommu::PageAccounting;
use crate::mm::frame::{BuddyAllocator, MAX_ORDER};
use crate::mm::{FrameAllocator, PhysAddr};
use crate::phb3::regs::PHB_RTT_BAR;

/// RTT size: 64K RIDs of 2 bytes.
pub const RTT_BYTES: usize = 128 << 10;

/// Host memory and allocators for one test.
pub struct Rig {
    /// The firmware's table pool ("firmware memory": no TCE may point here).
    pub tables: Arena,
    /// Partition RAM.
    pub ram: Arena,
    /// Frame allocator over `tables`.
    pub frames: BuddyAllocator,
    /// Page accounting over `ram`.
    pub pages: PageAccounting,
    rtt: PhysAddr,
}

impl Rig {
    /// A rig with `table_bytes` of table pool and `ram_bytes` of partition RAM (both
    /// multiples of 16 MiB are simplest; each is aligned to 16 MiB). The RTT maps RID `r` to
    /// PE `r & 0xFF`.
    pub fn new(table_bytes: usize, ram_bytes: usize) -> Option<Rig> {
        let align = 1usize << MAX_ORDER;
        let tables = Arena::new(table_bytes, align)?;
        let ram = Arena::new(ram_bytes, align)?;
        let frames = BuddyAllocator::new();
        // SAFETY: the table arena is ours, unused, and lives as long as the allocator.
        unsafe { frames.add_range(tables.base(), tables.base() + tables.bytes()) };
        // SAFETY: the RAM arena stays allocated as long as the rig, and everything built from
        // `pages` (hypervisor, models) borrows the rig; only atomics and DMA touch it.
        let pages = PageAccounting::new(unsafe { Ram::new(ram.base(), ram.bytes()) }).ok()?;
        let rtt = frames.alloc(RTT_BYTES)?;
        let rig = Rig {
            tables,
            ram,
            frames,
            pages,
            rtt,
        };
        let memory = rig.device_memory();
        for rid in 0..=u16::MAX {
            memory.write_be16(rtt + 2 * rid as u64, rid & 0xFF);
        }
        Some(rig)
    }

    /// The memory a device may touch: the table pool and the RAM.
    pub fn device_memory(&self) -> DeviceMemory {
        // SAFETY: both arenas live as long as the rig, which outlives every model built
        // from it; tests hold no references into them.
        unsafe {
            DeviceMemory::new(&[
                (self.tables.base(), self.tables.bytes()),
                (self.ram.base(), self.ram.bytes()),
            ])
        }
    }

    /// A PHB model with the rig's RTT enabled; with `watch_pins` it checks the page
    /// accounting at every register access.
    pub fn model(&self, watch_pins: bool) -> Phb3Model<'_> {
        let model = Phb3Model::new(self.device_memory(), watch_pins.then_some(&self.pages));
        model.write64(PHB_RTT_BAR, self.rtt | RTT_BAR_ENABLE);
        model
    }

    /// A hypervisor over the rig's RAM with one PHB per entry of `phbs` (indices in order);
    /// the table pool is declared firmware memory.
    pub fn hypervisor<'a>(&'a self, phbs: &[&'a dyn RegIo]) -> Hypervisor<'a> {
        let mut hv = Hypervisor::new(&self.pages, &[(self.tables.base(), self.tables.bytes())]);
        for &io in phbs {
            let frames: &dyn FrameAllocator = &self.frames;
            // At most MAX_PHBS: tests use a handful.
            let _ = hv.add_phb(io, frames);
        }
        hv
    }

    /// Bytes the frame allocator has handed out beyond the RTT (i.e. TCE table levels).
    pub fn table_bytes_in_use(&self) -> u64 {
        self.frames.stats().used_bytes - RTT_BYTES as u64
    }

    /// The frame allocator's reading for the audit, and `heap` when the caller counts it.
    pub fn usage(&self, heap: Option<u64>) -> AllocatorUsage {
        AllocatorUsage {
            frame_bytes: self.frames.stats().used_bytes,
            heap_bytes: heap,
        }
    }

    /// The audit of `hv`, with the frame allocator checked too: every byte it has handed out
    /// is a table level or the RTT.
    pub fn audit(&self, hv: &Hypervisor<'_>) -> AuditReport {
        let others = AllocatorUsage {
            frame_bytes: RTT_BYTES as u64,
            heap_bytes: None,
        };
        hv.audit_with_usage(self.usage(None), others)
    }
}
