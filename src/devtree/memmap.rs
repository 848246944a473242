//! Physical address ranges and the set arithmetic on them that turns "RAM", "reserved" and
//! "in use by the image" into the list of free RAM the frame allocator may take.
//!
//! Spans are half-open `(start, end)` pairs, the form `mm::frame::BuddyAllocator::add_range`
//! takes: `start` is the first byte, `end` the first byte after. A span with `end <= start`
//! is empty and ignored wherever it appears.
//!
//! Resources: skiboot core/mem_region.c (the same subtraction of reserved regions from
//! memory nodes); Linux mm/memblock.c (merging adjacent and overlapping regions).

use alloc::vec::Vec;
use core::fmt;

/// A half-open span of physical addresses `(start, end)`.
pub type Span = (u64, u64);

/// A range of physical addresses `[base, base + size)` as the device tree writes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemRange {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

impl MemRange {
    /// The range `[base, base + size)`.
    pub const fn new(base: u64, size: u64) -> Self {
        MemRange { base, size }
    }

    /// The first byte after the range. Ranges read from a tree never wrap (the reader
    /// rejects them); for a hand-made one that would, this saturates at `u64::MAX`.
    pub const fn end(&self) -> u64 {
        self.base.saturating_add(self.size)
    }

    /// The range as a half-open span.
    pub const fn span(&self) -> Span {
        (self.base, self.end())
    }

    /// Whether `address` lies in the range.
    pub const fn contains(&self, address: u64) -> bool {
        address >= self.base && address < self.end()
    }
}

impl fmt::Display for MemRange {
    /// `0x0000000030000000..0x00000000305fffff`: inclusive bounds, the way skiboot's
    /// `mem_dump_free` and Linux's `memblock_dump` print regions.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.end().saturating_sub(1).max(self.base);
        write!(f, "{:#018x}..{:#018x}", self.base, last)
    }
}

/// Sorts `spans`, drops empty ones and merges those that overlap or touch.
pub fn merge_spans(spans: impl IntoIterator<Item = Span>) -> Vec<Span> {
    let mut sorted: Vec<Span> = spans
        .into_iter()
        .filter(|&(start, end)| end > start)
        .collect();
    sorted.sort_unstable();
    let mut merged: Vec<Span> = Vec::with_capacity(sorted.len());
    for (start, end) in sorted {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

/// `from` minus `cuts`: the parts of the spans in `from` that no span in `cuts` covers,
/// sorted and merged. Both inputs may be in any order and overlap.
pub fn subtract_spans(from: &[Span], cuts: &[Span]) -> Vec<Span> {
    let from = merge_spans(from.iter().copied());
    let cuts = merge_spans(cuts.iter().copied());
    let mut free = Vec::new();
    let mut next_cut = 0;
    for (start, end) in from {
        let mut cursor = start;
        // Cuts wholly before this span can never matter again (both lists are sorted).
        while cuts
            .get(next_cut)
            .is_some_and(|&(_, cut_end)| cut_end <= cursor)
        {
            next_cut += 1;
        }
        let mut index = next_cut;
        while let Some(&(cut_start, cut_end)) = cuts.get(index) {
            if cut_start >= end {
                break;
            }
            if cut_start > cursor {
                free.push((cursor, cut_start));
            }
            cursor = cursor.max(cut_end);
            if cursor >= end {
                break;
            }
            index += 1;
        }
        if cursor < end {
            free.push((cursor, end));
        }
    }
    free
}
