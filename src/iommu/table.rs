//! TCE tables of 1 to 5 levels: get, exchange and clear of one entry, with lower levels
//! allocated on demand and installed by compare-and-swap.
//!
//! Geometry follows the IODA2 hardware walk (QEMU `pnv_phb3_translate_tve`): every level has
//! `2^level_shift` 8-byte entries; the entry address is `level_base | digit * 8` (an OR, so
//! each level is naturally aligned to its size); an indirect entry is the next level's address
//! with R|W set (Linux `pnv_pci_ioda2_table_do_alloc_pages` / `pnv_tce` in
//! platforms/powernv/pci-ioda-tce.c); a zero indirect entry means "level not allocated".
//! The table index of a bus address is `(addr >> page_shift)` masked to the table's index
//! bits, exactly as the PHB computes it, so window 1 (bus address bit 59) works even when the
//! table's reach exceeds 59 bits.
//!
//! Concurrency: a level is installed with one compare-and-swap, and the CPU that loses the
//! race frees its own block, so a level is never installed twice (the Linux fix for the EEH
//! errors described in the reference). Levels are freed only by [`TceTable::destroy`], which
//! the window code calls once no CPU can reach the table any more.

use super::ram::WordBlock;
use super::tce::{Tce, TCE_READ, TCE_WRITE};
use super::Error;
use crate::mm::{FrameAllocator, PhysAddr};
use core::sync::atomic::{AtomicU64, Ordering};

/// Smallest level: 4 KiB (512 entries), the frame allocator's minimum block.
pub const MIN_LEVEL_SHIFT: u32 = 9;
/// Largest level: 16 MiB (2M entries), the frame allocator's maximum block.
pub const MAX_LEVEL_SHIFT: u32 = 21;
/// Most levels the TVE's NUM_LEVELS field and the PHB accept.
pub const MAX_LEVELS: u32 = 5;
/// IOMMU page sizes this firmware offers (log2): 4 KiB, 64 KiB, 16 MiB, as
/// skiboot's `ibm,supported-tce-sizes` minus 256 MiB.
pub const PAGE_SHIFTS: [u32; 3] = [12, 16, 24];

/// The shape of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableGeometry {
    /// Number of levels, 1..=5.
    pub levels: u32,
    /// log2 of the entries in each level.
    pub level_shift: u32,
    /// log2 of the IOMMU page size.
    pub page_shift: u32,
}

impl TableGeometry {
    /// The smallest geometry with `levels` levels that covers a window of `window_size` bytes
    /// of `2^page_shift` pages (as Linux's `pnv_pci_ioda2_get_table_size` sizes it).
    pub fn for_window(window_size: u64, page_shift: u32, levels: u32) -> Result<Self, Error> {
        if !PAGE_SHIFTS.contains(&page_shift)
            || !(1..=MAX_LEVELS).contains(&levels)
            || !window_size.is_power_of_two()
            || window_size < 1u64 << page_shift
            || window_size > 1u64 << 59
        {
            return Err(Error::BadConfig);
        }
        let entry_bits = window_size.trailing_zeros() - page_shift;
        let level_shift = entry_bits.div_ceil(levels).max(MIN_LEVEL_SHIFT);
        if level_shift > MAX_LEVEL_SHIFT {
            return Err(Error::BadConfig);
        }
        Ok(TableGeometry {
            levels,
            level_shift,
            page_shift,
        })
    }

    /// Bytes in one level.
    pub const fn level_bytes(&self) -> usize {
        8 << self.level_shift
    }

    /// Entries in one level.
    pub const fn level_entries(&self) -> usize {
        1 << self.level_shift
    }

    /// Bits of table index the levels together decode.
    pub const fn index_bits(&self) -> u32 {
        self.level_shift * self.levels
    }

    /// The table index the PHB uses for bus address `addr`.
    pub const fn index_of(&self, addr: u64) -> u64 {
        let index = addr >> self.page_shift;
        let bits = self.index_bits();
        if bits >= 64 {
            index
        } else {
            index & ((1u64 << bits) - 1)
        }
    }

    /// The digit of `index` that selects the entry in the level at `depth` (0 = top).
    const fn digit(&self, index: u64, depth: u32) -> usize {
        let shift = self.level_shift * (self.levels - 1 - depth);
        let digit = if shift >= 64 { 0 } else { index >> shift };
        (digit & (self.level_entries() as u64 - 1)) as usize
    }
}

/// A TCE table whose levels come from a [`FrameAllocator`].
#[derive(Debug)]
pub struct TceTable {
    root: PhysAddr,
    geometry: TableGeometry,
}

impl TceTable {
    /// A table with its top level allocated (zeroed: every entry unmapped).
    pub fn new(frames: &dyn FrameAllocator, geometry: TableGeometry) -> Result<Self, Error> {
        let root = frames
            .alloc(geometry.level_bytes())
            .ok_or(Error::NoMemory)?;
        Ok(TceTable { root, geometry })
    }

    /// The top level's physical address (for the TVE).
    pub fn root(&self) -> PhysAddr {
        self.root
    }

    /// The table's shape.
    pub fn geometry(&self) -> TableGeometry {
        self.geometry
    }

    fn level(&self, pa: PhysAddr) -> WordBlock<'_> {
        // SAFETY: `pa` is the root or an address read from an indirect entry of this table,
        // i.e. a level this table allocated with `level_bytes` bytes, aligned to its size,
        // owned until `destroy(self)`, whose words are only accessed atomically (and by the PHB).
        unsafe { WordBlock::new(pa, self.geometry.level_entries()) }
    }

    /// The leaf word of `index`, or `None` when a lower level is not allocated.
    fn leaf(&self, index: u64) -> Option<&AtomicU64> {
        let mut level = self.root;
        for depth in 0..self.geometry.levels - 1 {
            let word = self.level(level).word(self.geometry.digit(index, depth))?;
            let next = Tce::from_be(word.load(Ordering::Acquire));
            if !next.is_valid() {
                return None;
            }
            level = next.addr();
        }
        self.level(level)
            .word(self.geometry.digit(index, self.geometry.levels - 1))
    }

    /// The leaf word of `index`, allocating missing lower levels. Returns the bytes of levels
    /// this call installed (0 when they all existed).
    ///
    /// Each missing level is installed with one compare-and-swap; a CPU that loses the race
    /// frees its block and follows the winner's, so no level is ever installed twice.
    pub fn prepare(&self, frames: &dyn FrameAllocator, index: u64) -> Result<usize, Error> {
        let mut installed = 0;
        let mut level = self.root;
        for depth in 0..self.geometry.levels - 1 {
            let word = self
                .level(level)
                .word(self.geometry.digit(index, depth))
                .ok_or(Error::Corrupt)?;
            let mut next = Tce::from_be(word.load(Ordering::Acquire));
            if !next.is_valid() {
                let block = frames
                    .alloc(self.geometry.level_bytes())
                    .ok_or(Error::NoMemory)?;
                let pointer = Tce::from_raw(block | TCE_READ | TCE_WRITE);
                // Release publishes the zeroed block; Acquire on failure sees the winner's.
                match word.compare_exchange(0, pointer.to_be(), Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => {
                        installed += self.geometry.level_bytes();
                        next = pointer;
                    }
                    Err(current) => {
                        frames.free(block, self.geometry.level_bytes());
                        next = Tce::from_be(current);
                        if !next.is_valid() {
                            return Err(Error::Corrupt);
                        }
                    }
                }
            }
            level = next.addr();
        }
        Ok(installed)
    }

    /// The entry at `index` (unmapped when its level is absent).
    pub fn get(&self, index: u64) -> Tce {
        self.leaf(index)
            .map_or(Tce::NONE, |word| Tce::from_be(word.load(Ordering::Acquire)))
    }

    /// Swaps `new` into the entry at `index` with one atomic exchange of the big-endian word,
    /// and returns the entry it replaced.
    ///
    /// A mapping needs its levels ([`TceTable::prepare`] first; else `Error::LevelMissing`, and
    /// nothing changes). Storing an unmapped value where a level is absent does nothing,
    /// allocates nothing, and returns [`Tce::NONE`].
    pub fn exchange(&self, index: u64, new: Tce) -> Result<Tce, Error> {
        match self.leaf(index) {
            Some(word) => Ok(Tce::from_be(word.swap(new.to_be(), Ordering::AcqRel))),
            None if new.is_valid() => Err(Error::LevelMissing),
            None => Ok(Tce::NONE),
        }
    }

    /// Unmaps the entry at `index` and returns the old entry ([`TceTable::exchange`] with
    /// [`Tce::NONE`]).
    pub fn clear(&self, index: u64) -> Tce {
        self.exchange(index, Tce::NONE).unwrap_or(Tce::NONE)
    }

    /// Calls `visit(index, tce)` for every valid leaf entry.
    pub fn for_each_valid(&self, visit: &mut dyn FnMut(u64, Tce)) {
        self.walk(self.root, 0, 0, &mut |leaf_level, base| {
            for digit in 0..self.geometry.level_entries() {
                if let Some(word) = leaf_level.word(digit) {
                    let tce = Tce::from_be(word.load(Ordering::Acquire));
                    if tce.is_valid() {
                        visit(base | digit as u64, tce);
                    }
                }
            }
        });
    }

    /// Calls `visit(level_pa)` for every allocated level, the top one included.
    pub fn for_each_level(&self, visit: &mut dyn FnMut(PhysAddr)) {
        visit(self.root);
        self.walk_levels(self.root, 0, visit);
    }

    fn walk_levels(&self, level: PhysAddr, depth: u32, visit: &mut dyn FnMut(PhysAddr)) {
        if depth + 1 >= self.geometry.levels {
            return;
        }
        for digit in 0..self.geometry.level_entries() {
            let Some(word) = self.level(level).word(digit) else {
                continue;
            };
            let next = Tce::from_be(word.load(Ordering::Acquire));
            if next.is_valid() {
                visit(next.addr());
                self.walk_levels(next.addr(), depth + 1, visit);
            }
        }
    }

    /// Calls `leaf(level, first_index)` for every allocated leaf level.
    fn walk(
        &self,
        level: PhysAddr,
        depth: u32,
        prefix: u64,
        leaf: &mut dyn FnMut(WordBlock<'_>, u64),
    ) {
        let block = self.level(level);
        if depth + 1 == self.geometry.levels {
            leaf(block, prefix << self.geometry.level_shift);
            return;
        }
        for digit in 0..self.geometry.level_entries() {
            let Some(word) = block.word(digit) else {
                continue;
            };
            let next = Tce::from_be(word.load(Ordering::Acquire));
            if next.is_valid() {
                let prefix = (prefix << self.geometry.level_shift) | digit as u64;
                self.walk(next.addr(), depth + 1, prefix, leaf);
            }
        }
    }

    /// Bytes of levels allocated right now.
    pub fn allocated_bytes(&self) -> usize {
        let mut levels = 0;
        self.for_each_level(&mut |_| levels += 1);
        levels * self.geometry.level_bytes()
    }

    /// Frees every level. The caller guarantees no CPU and no device can reach the table any
    /// more (TVE cleared and killed, no hypercall inside the window). Returns the bytes freed.
    pub fn destroy(self, frames: &dyn FrameAllocator) -> usize {
        let mut levels: alloc::vec::Vec<PhysAddr> = alloc::vec::Vec::new();
        self.for_each_level(&mut |pa| levels.push(pa));
        for &pa in &levels {
            frames.free(pa, self.geometry.level_bytes());
        }
        levels.len() * self.geometry.level_bytes()
    }
}
