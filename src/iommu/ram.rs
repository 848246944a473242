//! The IOMMU's one unsafe leaf: viewing physical memory that the IOMMU owns or reads as
//! 64-bit atomic words (TCE table levels, and the caller's TCE list for H_PUT_TCE_INDIRECT).
//!
//! With the MMU off a physical address is the pointer (POWER ISA 2.07 Book III real
//! addressing); host tests hand out addresses of real host allocations, so the same code runs
//! on both. Everything is accessed through `AtomicU64` so that a concurrent writer (another
//! CPU, the PHB, or a hostile caller rewriting its list) is never a data race.
//!
//! Resources: [`crate::mm::phys`] (the primitives used here).

use crate::mm::{phys, PhysAddr};
use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering;

/// A block of physical memory holding 64-bit words, valid for `'a`.
#[derive(Clone, Copy, Debug)]
pub struct WordBlock<'a> {
    pa: PhysAddr,
    words: usize,
    _owner: core::marker::PhantomData<&'a AtomicU64>,
}

impl<'a> WordBlock<'a> {
    /// The `words` 8-byte words at `pa`.
    ///
    /// # Safety
    /// `pa` must be 8-byte aligned, and `[pa, pa + 8 * words)` must be memory that stays valid
    /// for `'a` and is only accessed atomically (or by a device) meanwhile: a TCE level the
    /// table owns until it is freed, or RAM of a partition, which the firmware never frees.
    pub unsafe fn new(pa: PhysAddr, words: usize) -> Self {
        WordBlock {
            pa,
            words,
            _owner: core::marker::PhantomData,
        }
    }

    /// The word at `index`, or `None` past the end.
    pub fn word(&self, index: usize) -> Option<&'a AtomicU64> {
        if index >= self.words {
            return None;
        }
        // SAFETY: index < words, so the word lies inside the block; alignment, lifetime and
        // atomic-only access are the contract of `WordBlock::new`.
        Some(unsafe { phys::atomic_u64(self.pa + index as u64 * 8) })
    }

    /// Copies the first `dst.len()` words (as stored, no byte swap) into `dst`, one atomic
    /// load each, so a concurrent writer can change values but never tear a word or race.
    /// Returns false (and copies nothing useful) when `dst` is longer than the block.
    pub fn copy_to(&self, dst: &mut [u64]) -> bool {
        if dst.len() > self.words {
            return false;
        }
        for (i, slot) in dst.iter_mut().enumerate() {
            *slot = self.word(i).map_or(0, |w| w.load(Ordering::Relaxed));
        }
        true
    }
}

/// The host RAM that partitions live in, declared once by the boot code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ram {
    base: PhysAddr,
    bytes: u64,
}

impl Ram {
    /// RAM `[base, base + bytes)`.
    ///
    /// # Safety
    /// The range must be real memory that stays mapped (addressable) for as long as this value
    /// or anything built from it is in use (on the firmware: forever), and that no Rust code
    /// holds references into (partition RAM: only partitions and devices write it; the
    /// firmware reads it atomically).
    pub unsafe fn new(base: PhysAddr, bytes: u64) -> Self {
        Ram { base, bytes }
    }

    /// First address.
    pub fn base(&self) -> PhysAddr {
        self.base
    }

    /// Size in bytes.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// True when `[pa, pa + len)` lies inside.
    pub fn contains(&self, pa: PhysAddr, len: u64) -> bool {
        pa >= self.base
            && pa
                .checked_add(len)
                .is_some_and(|end| end <= self.base + self.bytes)
    }

    /// Copies `dst.len()` 8-byte words from `pa` (as stored: no byte swap), one atomic load
    /// each, so a caller rewriting them meanwhile cannot tear a word. False (nothing copied)
    /// when the range is not inside this RAM or `pa` is not 8-byte aligned.
    pub fn copy_words(&self, pa: PhysAddr, dst: &mut [u64]) -> bool {
        let len = dst.len() as u64 * 8;
        if !pa.is_multiple_of(8) || !self.contains(pa, len) {
            return false;
        }
        // SAFETY: the range is inside this RAM (checked), which `Ram::new`'s contract keeps
        // addressable and free of Rust references; `pa` is 8-byte aligned (checked).
        let words = unsafe { WordBlock::new(pa, dst.len()) };
        words.copy_to(dst)
    }
}
