//! Page accounting: for every 4 KiB frame of partition RAM, the number of valid TCEs that
//! point at it (its pin count) and whether a device may have written it (its dirty bit).
//!
//! One `AtomicU32` per frame: bits 0..30 the pin count, bit 31 dirty. Every update is one
//! atomic read-modify-write, so the accounting is lock-free and exact on many CPUs. An IOMMU
//! page larger than 4 KiB pins every frame it covers, so "is this frame reachable" has one
//! exact answer whatever the page size. A pin count never goes below zero (a release of an
//! unpinned frame is refused and counted as an anomaly) and never wraps (a pin past the
//! maximum is refused, and the caller gets an error before anything is mapped).
//!
//! Resources: the seed patch (release-replaced-tce: put_page + SetPageDirty when the old TCE
//! had WRITE); Linux arch/powerpc/kernel/iommu.c `iommu_tce_xchg` / `iommu_tce_mk_dirty`.

use super::ram::Ram;
use super::Error;
use crate::mm::PhysAddr;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Accounting granule: one 4 KiB frame.
pub const FRAME_SHIFT: u32 = 12;
const DIRTY: u32 = 1 << 31;
const PINS: u32 = DIRTY - 1;

/// The pin count and dirty bit of every frame in one range of RAM.
pub struct PageAccounting {
    ram: Ram,
    base: PhysAddr,
    frames: Vec<AtomicU32>,
    anomalies: AtomicU64,
}

impl PageAccounting {
    /// Accounting for all of `ram`, which must be 4 KiB aligned. The records take 4 bytes of
    /// heap per 4 KiB frame, allocated here at setup and never on a hypercall.
    pub fn new(ram: Ram) -> Result<Self, Error> {
        let (base, bytes) = (ram.base(), ram.bytes());
        let granule = 1u64 << FRAME_SHIFT;
        if !base.is_multiple_of(granule)
            || !bytes.is_multiple_of(granule)
            || base.checked_add(bytes).is_none()
        {
            return Err(Error::BadConfig);
        }
        let count = usize::try_from(bytes >> FRAME_SHIFT).map_err(|_| Error::BadConfig)?;
        let mut frames = Vec::new();
        // Too much RAM for the heap is an error to report, not an allocation failure to die of.
        frames
            .try_reserve_exact(count)
            .map_err(|_| Error::NoMemory)?;
        frames.resize_with(count, || AtomicU32::new(0));
        Ok(PageAccounting {
            ram,
            base,
            frames,
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
        (self.frames.len() as u64) << FRAME_SHIFT
    }

    /// True when `[pa, pa + bytes)` lies inside the accounted RAM.
    pub fn covers(&self, pa: PhysAddr, bytes: u64) -> bool {
        pa >= self.base
            && pa
                .checked_add(bytes)
                .is_some_and(|end| end <= self.base + self.bytes())
    }

    fn frame_range(&self, pa: PhysAddr, bytes: u64) -> Option<core::ops::Range<usize>> {
        if !self.covers(pa, bytes) || bytes == 0 {
            return None;
        }
        let first = ((pa - self.base) >> FRAME_SHIFT) as usize;
        let last = ((pa - self.base + bytes - 1) >> FRAME_SHIFT) as usize;
        Some(first..last + 1)
    }

    fn record(&self, pa: PhysAddr) -> Option<&AtomicU32> {
        if pa < self.base {
            return None;
        }
        self.frames.get(((pa - self.base) >> FRAME_SHIFT) as usize)
    }

    /// Takes one pin on every frame of `[pa, pa + bytes)`. All or nothing: on failure (outside
    /// the RAM, or a count at its maximum) nothing stays pinned.
    pub fn pin(&self, pa: PhysAddr, bytes: u64) -> Result<(), Error> {
        let range = self.frame_range(pa, bytes).ok_or(Error::NotInRam)?;
        for i in range.clone() {
            // `then`, not `then_some`: the argument must not be computed when the count is at
            // its maximum (v + 1 would overflow with the dirty bit set).
            let pinned = self.frames[i].fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
                (v & PINS < PINS).then(|| v + 1)
            });
            if pinned.is_err() {
                for j in range.start..i {
                    self.unpin_frame(j, false);
                }
                return Err(Error::PinOverflow);
            }
        }
        Ok(())
    }

    /// Drops one pin on every frame of `[pa, pa + bytes)`, marking each dirty first when
    /// `dirty` (in the same atomic update, so whoever sees the count drop sees the dirty bit).
    pub fn unpin(&self, pa: PhysAddr, bytes: u64, dirty: bool) {
        match self.frame_range(pa, bytes) {
            Some(range) => range.for_each(|i| self.unpin_frame(i, dirty)),
            None => {
                self.anomalies.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn unpin_frame(&self, i: usize, dirty: bool) {
        let mark = if dirty { DIRTY } else { 0 };
        // `then`, not `then_some`: for an unpinned clean frame `v - 1` would underflow, and
        // this is exactly the refused release that must be counted, not a panic.
        let released = self.frames[i].fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
            (v & PINS > 0).then(|| (v - 1) | mark)
        });
        if released.is_err() {
            self.anomalies.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Pins on the frame holding `pa` (0 outside the accounted RAM).
    pub fn pins(&self, pa: PhysAddr) -> u32 {
        self.record(pa)
            .map_or(0, |r| r.load(Ordering::Acquire) & PINS)
    }

    /// True when the frame holding `pa` was released from a writable TCE since the last
    /// [`PageAccounting::take_dirty`].
    pub fn is_dirty(&self, pa: PhysAddr) -> bool {
        self.record(pa)
            .is_some_and(|r| r.load(Ordering::Acquire) & DIRTY != 0)
    }

    /// Reads and clears the dirty bit of the frame holding `pa` (what a partition's memory
    /// manager does when it writes the page back or migrates it).
    pub fn take_dirty(&self, pa: PhysAddr) -> bool {
        self.record(pa)
            .is_some_and(|r| r.fetch_and(!DIRTY, Ordering::AcqRel) & DIRTY != 0)
    }

    /// Sum of all pin counts.
    pub fn total_pins(&self) -> u64 {
        self.frames
            .iter()
            .map(|r| (r.load(Ordering::Acquire) & PINS) as u64)
            .sum()
    }

    /// Calls `visit(frame_pa, pins)` for every frame with at least one pin.
    pub fn for_each_pinned(&self, visit: &mut dyn FnMut(PhysAddr, u32)) {
        for (i, r) in self.frames.iter().enumerate() {
            let pins = r.load(Ordering::Acquire) & PINS;
            if pins != 0 {
                visit(self.base + ((i as u64) << FRAME_SHIFT), pins);
            }
        }
    }

    /// Copies the raw record of every frame (pin count in bits 0..30, dirty in bit 31) into
    /// `out`, replacing its contents: the exact state, for tests that must prove a call
    /// changed nothing.
    pub fn copy_records(&self, out: &mut Vec<u32>) {
        out.clear();
        out.extend(self.frames.iter().map(|r| r.load(Ordering::Acquire)));
    }

    /// Releases of unpinned or unaccounted frames that were refused: always 0 unless there is
    /// a bug (the audit reports it).
    pub fn anomalies(&self) -> u64 {
        self.anomalies.load(Ordering::Relaxed)
    }
}
