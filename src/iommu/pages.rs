//! Page accounting: which partition RAM valid TCEs point at (pins) and which of it a device
//! may have written (dirty marks), exact, lock-free, and O(1) per IOMMU page whatever its size.
//!
//! One record array per supported IOMMU page size (4K, 64K, 16M: [`GRANULE_SHIFTS`]). A page
//! of size S pins ONE record: the one at granule S for its (S-aligned) address. Each record is
//! an `AtomicU32`: bits 0..30 the pin count, bit 31 dirty. So:
//! - pin and release are one atomic read-modify-write each, for a 4K page as for a 16M one
//!   (before, a 16M page pinned its 4096 frames one by one: one H_STUFF_TCE of 512 × 16M pages
//!   was about two million atomic updates; `cargo bench --bench pages` prints both figures);
//! - "pins on frame F" is the sum of the three records that cover F, and "F is dirty" is true
//!   when any of them is marked: one exact answer per frame whatever the page sizes;
//! - a release marks dirty in the same atomic update that drops the count, so whoever sees the
//!   count drop sees the mark;
//! - a count never goes below zero (releasing an unpinned record is refused and counted as an
//!   anomaly, as is releasing a page of an unsupported size or alignment) and never wraps (a
//!   pin past the maximum is refused, and the caller gets an error before anything is mapped).
//!
//! [`PageAccounting::take_dirty`] reads and clears one frame's dirty state: a mark on a larger
//! page is first pushed down to the smaller records of the page's other frames (so they stay
//! dirty), then cleared. Releases may run meanwhile (a mark is never lost); two `take_dirty`
//! calls on frames of the same large page must be serialised by the caller, as a memory
//! manager's write-back of that page is.
//!
//! Resources: Linux "powerpc/iommu/powernv: Release replaced TCE" (2015: put_page +
//! SetPageDirty when the old TCE had WRITE); Linux arch/powerpc/kernel/iommu.c
//! `iommu_tce_xchg` / `iommu_tce_mk_dirty`, and arch/powerpc/mm/book3s64/iommu_api.c (KVM
//! pins preregistered memory once per region, not per TCE, for the same reason: the
//! hypercall path must not walk pages).

use super::ram::Ram;
use super::Error;
use crate::mm::PhysAddr;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// The smallest granule: one 4 KiB frame (the partition alignment unit).
pub const FRAME_SHIFT: u32 = 12;
/// log2 of every supported IOMMU page size, smallest first: each has its own records.
pub const GRANULE_SHIFTS: [u32; 3] = [12, 16, 24];
const _: () = assert!(
    GRANULE_SHIFTS[0] == 12 && GRANULE_SHIFTS[1] == 16 && GRANULE_SHIFTS[2] == 24,
    "page_record's match follows GRANULE_SHIFTS"
);
const DIRTY: u32 = 1 << 31;
const PINS: u32 = DIRTY - 1;

/// The records of one granule over the accounted RAM.
struct Granule {
    shift: u32,
    /// `base >> shift`: the index origin.
    first: u64,
    records: Vec<AtomicU32>,
}

impl Granule {
    fn index(&self, pa: PhysAddr) -> Option<usize> {
        let index = (pa >> self.shift).checked_sub(self.first)?;
        usize::try_from(index)
            .ok()
            .filter(|&i| i < self.records.len())
    }

    /// The record whose block holds `pa`.
    fn at(&self, pa: PhysAddr) -> Option<&AtomicU32> {
        self.records.get(self.index(pa)?)
    }

    /// The address of record `index`'s block.
    fn block(&self, index: usize) -> PhysAddr {
        (self.first + index as u64) << self.shift
    }
}

/// The pin counts and dirty marks of one range of RAM.
pub struct PageAccounting {
    ram: Ram,
    base: PhysAddr,
    bytes: u64,
    granules: [Granule; GRANULE_SHIFTS.len()],
    anomalies: AtomicU64,
}

impl PageAccounting {
    /// Accounting for all of `ram`, which must be 4 KiB aligned. The records take 4 bytes of
    /// heap per 4 KiB frame plus 1/16 and 1/4096 of that for the 64K and 16M records,
    /// allocated here at setup and never on a hypercall.
    pub fn new(ram: Ram) -> Result<Self, Error> {
        let (base, bytes) = (ram.base(), ram.bytes());
        let granule = 1u64 << FRAME_SHIFT;
        if !base.is_multiple_of(granule)
            || !bytes.is_multiple_of(granule)
            || bytes == 0
            || base.checked_add(bytes).is_none()
        {
            return Err(Error::BadConfig);
        }
        let make = |shift: u32| -> Result<Granule, Error> {
            let first = base >> shift;
            let last = (base + bytes - 1) >> shift;
            let count = usize::try_from(last - first + 1).map_err(|_| Error::BadConfig)?;
            let mut records = Vec::new();
            // Too much RAM for the heap is an error to report, not an allocation failure to
            // die of.
            records
                .try_reserve_exact(count)
                .map_err(|_| Error::NoMemory)?;
            records.resize_with(count, || AtomicU32::new(0));
            Ok(Granule {
                shift,
                first,
                records,
            })
        };
        Ok(PageAccounting {
            ram,
            base,
            bytes,
            granules: [
                make(GRANULE_SHIFTS[0])?,
                make(GRANULE_SHIFTS[1])?,
                make(GRANULE_SHIFTS[2])?,
            ],
            anomalies: AtomicU64::new(0),
        })
    }

    /// The RAM covered.
    pub fn ram(&self) -> &Ram {
        &self.ram
    }

    /// First address covered.
    pub fn base(&self) -> PhysAddr {
        self.base
    }

    /// Bytes covered.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// True when `[pa, pa + bytes)` lies inside the accounted RAM.
    pub fn covers(&self, pa: PhysAddr, bytes: u64) -> bool {
        pa >= self.base
            && pa
                .checked_add(bytes)
                .is_some_and(|end| end <= self.base + self.bytes)
    }

    /// The one record of the IOMMU page `[pa, pa + bytes)`: `bytes` a supported page size,
    /// `pa` aligned to it, the page inside the accounted RAM.
    fn page_record(&self, pa: PhysAddr, bytes: u64) -> Result<&AtomicU32, Error> {
        let level = match bytes.trailing_zeros() {
            _ if !bytes.is_power_of_two() => return Err(Error::BadConfig),
            12 => 0,
            16 => 1,
            24 => 2,
            _ => return Err(Error::BadConfig),
        };
        let granule = &self.granules[level];
        if pa & (bytes - 1) != 0 {
            return Err(Error::Misaligned);
        }
        if !self.covers(pa, bytes) {
            return Err(Error::NotInRam);
        }
        granule.at(pa).ok_or(Error::NotInRam)
    }

    /// Takes one pin on the IOMMU page `[pa, pa + bytes)` (`bytes` 4K, 64K or 16M, `pa`
    /// aligned to it): one atomic update. On failure (outside the RAM, an unsupported size or
    /// alignment, a count at its maximum) nothing is pinned.
    pub fn pin(&self, pa: PhysAddr, bytes: u64) -> Result<(), Error> {
        let record = self.page_record(pa, bytes)?;
        // `then`, not `then_some`: the argument must not be computed when the count is at
        // its maximum (v + 1 would overflow with the dirty bit set).
        record
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                (v & PINS < PINS).then(|| v + 1)
            })
            .map(|_| ())
            .map_err(|_| Error::PinOverflow)
    }

    /// Drops one pin on the IOMMU page `[pa, pa + bytes)`, marking it dirty first when `dirty`
    /// (in the same atomic update, so whoever sees the count drop sees the mark). A release
    /// that matches no pin is refused and counted as an anomaly.
    pub fn unpin(&self, pa: PhysAddr, bytes: u64, dirty: bool) {
        let Ok(record) = self.page_record(pa, bytes) else {
            self.anomalies.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let mark = if dirty { DIRTY } else { 0 };
        // `then`, not `then_some`: for an unpinned clean record `v - 1` would underflow, and
        // this is exactly the refused release that must be counted, not a panic.
        let released = record.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
            (v & PINS > 0).then(|| (v - 1) | mark)
        });
        if released.is_err() {
            self.anomalies.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The records covering the frame that holds `pa`, one per granule.
    fn covering(&self, pa: PhysAddr) -> impl Iterator<Item = &AtomicU32> + '_ {
        let inside = self.covers(pa & !((1 << FRAME_SHIFT) - 1), 1 << FRAME_SHIFT);
        self.granules
            .iter()
            .filter_map(move |g| inside.then(|| g.at(pa)).flatten())
    }

    /// Pins on the frame holding `pa`: the valid TCEs whose page covers it, whatever their
    /// size (0 outside the accounted RAM).
    pub fn pins(&self, pa: PhysAddr) -> u64 {
        self.covering(pa)
            .map(|r| u64::from(r.load(Ordering::Acquire) & PINS))
            .sum()
    }

    /// Pins on the IOMMU page `[pa, pa + bytes)` itself: the TCEs of that size that point at
    /// it (0 for an unsupported size or alignment, or outside the RAM).
    pub fn page_pins(&self, pa: PhysAddr, bytes: u64) -> u32 {
        self.page_record(pa, bytes)
            .map_or(0, |r| r.load(Ordering::Acquire) & PINS)
    }

    /// The first frame of `[pa, pa + bytes)` (4 KiB aligned) that no TCE pins, if any: what
    /// a device could still reach through `[pa, pa + bytes)` that it must not. Checks whole
    /// 16M and 64K blocks at once where a larger page pins them.
    pub fn first_unpinned(&self, pa: PhysAddr, bytes: u64) -> Option<PhysAddr> {
        let frame = 1u64 << FRAME_SHIFT;
        let mut at = pa & !(frame - 1);
        let end = pa.checked_add(bytes)?;
        while at < end {
            if !self.covers(at, frame) {
                return Some(at);
            }
            // The largest granule block starting at `at` that a pin covers lets us skip it.
            let skip = self.granules.iter().rev().find_map(|g| {
                let pinned = g
                    .at(at)
                    .is_some_and(|r| r.load(Ordering::Acquire) & PINS != 0);
                pinned.then(|| ((at >> g.shift) + 1) << g.shift)
            });
            match skip {
                Some(next) => at = next,
                None => return Some(at),
            }
        }
        None
    }

    /// True when the frame holding `pa` was released from a writable TCE (of any size) since
    /// the last [`PageAccounting::take_dirty`] of that frame.
    pub fn is_dirty(&self, pa: PhysAddr) -> bool {
        self.covering(pa)
            .any(|r| r.load(Ordering::Acquire) & DIRTY != 0)
    }

    /// Reads and clears the dirty state of the frame holding `pa` (what a partition's memory
    /// manager does when it writes the page back or migrates it). A mark on a 64K or 16M record
    /// covering the frame is first copied down to the next smaller records of its block, so
    /// the block's other frames stay dirty; the cost is at most 256 + 16 atomic updates, and
    /// this is never on the hypercall path. See the module comment for concurrency.
    pub fn take_dirty(&self, pa: PhysAddr) -> bool {
        if self.covering(pa).next().is_none() {
            return false;
        }
        for level in (1..self.granules.len()).rev() {
            let (coarse, fine) = (&self.granules[level], &self.granules[level - 1]);
            let Some(record) = coarse.at(pa) else {
                continue;
            };
            if record.load(Ordering::Acquire) & DIRTY == 0 {
                continue;
            }
            // Push the mark down before taking it off, so no frame of the block is ever seen
            // clean in between.
            let block = (pa >> coarse.shift) << coarse.shift;
            let span = 1u64 << (coarse.shift - fine.shift);
            for k in 0..span {
                if let Some(r) = fine.at(block + (k << fine.shift)) {
                    r.fetch_or(DIRTY, Ordering::AcqRel);
                }
            }
            record.fetch_and(!DIRTY, Ordering::AcqRel);
        }
        self.granules[0]
            .at(pa)
            .is_some_and(|r| r.fetch_and(!DIRTY, Ordering::AcqRel) & DIRTY != 0)
    }

    /// Sum of all pin counts: one per valid TCE, whatever its page size.
    pub fn total_pins(&self) -> u64 {
        self.granules
            .iter()
            .flat_map(|g| &g.records)
            .map(|r| u64::from(r.load(Ordering::Acquire) & PINS))
            .sum()
    }

    /// Calls `visit(page_pa, page_bytes, pins)` for every IOMMU page with at least one pin
    /// (every record, at every granule).
    pub fn for_each_pinned_page(&self, visit: &mut dyn FnMut(PhysAddr, u64, u32)) {
        for granule in &self.granules {
            for (i, r) in granule.records.iter().enumerate() {
                let pins = r.load(Ordering::Acquire) & PINS;
                if pins != 0 {
                    visit(granule.block(i), 1 << granule.shift, pins);
                }
            }
        }
    }

    /// Copies every raw record (pin count in bits 0..30, dirty in bit 31; the 4K records, then
    /// the 64K ones, then the 16M ones) into `out`, replacing its contents: the exact state,
    /// for tests that must prove a call changed nothing.
    pub fn copy_records(&self, out: &mut Vec<u32>) {
        out.clear();
        for granule in &self.granules {
            out.extend(granule.records.iter().map(|r| r.load(Ordering::Acquire)));
        }
    }

    /// Releases that matched no pin, and were refused: always 0 unless there is a bug (the
    /// audit reports it).
    pub fn anomalies(&self) -> u64 {
        self.anomalies.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::phys::Arena;

    #[test]
    fn a_pin_past_the_maximum_is_refused_and_records_are_separate_per_size() {
        let arena = Arena::new(32 << 20, 16 << 20).unwrap();
        // SAFETY: the arena is ours for the test; the accounting only reads its address.
        let pages = PageAccounting::new(unsafe { Ram::new(arena.base(), arena.bytes()) }).unwrap();
        let pa = arena.base();
        // Bring the 4K record to one below the maximum (2^31 pins through `pin` take too long).
        pages.granules[0].records[0].store((PINS - 1) | DIRTY, Ordering::Release);
        assert_eq!(pages.pin(pa, 4096), Ok(()));
        assert_eq!(pages.pin(pa, 4096), Err(Error::PinOverflow));
        assert_eq!(
            pages.granules[0].records[0].load(Ordering::Acquire),
            PINS | DIRTY,
            "the refused pin changed nothing (and never wrapped into the dirty bit)"
        );
        // The 16M record over the same frame is its own count.
        assert_eq!(pages.pin(pa, 16 << 20), Ok(()));
        assert_eq!(pages.pins(pa), u64::from(PINS) + 1);
        pages.unpin(pa, 16 << 20, false);
        assert_eq!(pages.page_pins(pa, 4096), PINS);
        assert_eq!(pages.anomalies(), 0);
    }
}
