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
//!
//! All or nothing: a batch first sets aside a block for every level it is missing
//! ([`TceTable::reserve_levels`]), and installs them ([`TceTable::install_levels`]) only once
//! nothing else can fail. An installed level cannot be taken back (another CPU may already be
//! walking through it), so this order is what lets a call that runs out of memory leave the
//! table exactly as it found it.

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
/// Most blocks one batch can need: a run of at most 512 consecutive entries, with levels of at
/// least 512 entries, crosses at most one block boundary at each depth below the top, so it
/// touches at most two blocks per lower level.
pub const RESERVE_MAX: usize = 2 * (MAX_LEVELS as usize - 1);

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

    /// Which leaf level holds `index` (entries with the same value share every level).
    pub const fn leaf_block(&self, index: u64) -> u64 {
        self.block_at(index, self.levels - 1)
    }

    /// Which block at `depth` (0 = top) the walk of `index` goes through.
    const fn block_at(&self, index: u64, depth: u32) -> u64 {
        let shift = self.level_shift * (self.levels - depth);
        if shift >= 64 {
            0
        } else {
            index >> shift
        }
    }

    /// The digit of `index` that selects the entry in the level at `depth` (0 = top).
    const fn digit(&self, index: u64, depth: u32) -> usize {
        let shift = self.level_shift * (self.levels - 1 - depth);
        let digit = if shift >= 64 { 0 } else { index >> shift };
        (digit & (self.level_entries() as u64 - 1)) as usize
    }
}

/// Zeroed blocks set aside for the missing levels of one batch ([`TceTable::reserve_levels`]).
/// Whatever is not installed goes back with [`LevelReserve::release`].
#[derive(Debug)]
#[must_use = "unused blocks must be released"]
pub struct LevelReserve {
    blocks: [PhysAddr; RESERVE_MAX],
    len: usize,
    block_bytes: usize,
}

impl LevelReserve {
    /// Blocks still held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no block is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn take(&mut self) -> Option<PhysAddr> {
        self.len = self.len.checked_sub(1)?;
        Some(self.blocks[self.len])
    }

    fn put_back(&mut self, block: PhysAddr) {
        // A block comes back only after `take` made room for it.
        if let Some(slot) = self.blocks.get_mut(self.len) {
            *slot = block;
            self.len += 1;
        }
    }

    /// Returns every block still held to `frames`.
    pub fn release(mut self, frames: &dyn FrameAllocator) {
        while let Some(block) = self.take() {
            frames.free(block, self.block_bytes);
        }
    }
}

/// Where the blocks of missing levels come from, and where a block that lost the install race
/// goes.
trait BlockSource {
    fn get(&mut self) -> Result<PhysAddr, Error>;
    fn lost(&mut self, block: PhysAddr);
}

impl BlockSource for LevelReserve {
    fn get(&mut self) -> Result<PhysAddr, Error> {
        // Only a reserve that was counted too small runs dry: a bug, reported, never a panic.
        self.take().ok_or(Error::LevelMissing)
    }
    fn lost(&mut self, block: PhysAddr) {
        self.put_back(block);
    }
}

struct FromAllocator<'f> {
    frames: &'f dyn FrameAllocator,
    bytes: usize,
}

impl BlockSource for FromAllocator<'_> {
    fn get(&mut self) -> Result<PhysAddr, Error> {
        self.frames.alloc(self.bytes).ok_or(Error::NoMemory)
    }
    fn lost(&mut self, block: PhysAddr) {
        self.frames.free(block, self.bytes);
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
    /// frees its block and follows the winner's, so no level is ever installed twice. If the
    /// allocator runs dry half way, the levels installed so far stay (use
    /// [`TceTable::reserve_levels`] for all or nothing).
    pub fn prepare(&self, frames: &dyn FrameAllocator, index: u64) -> Result<usize, Error> {
        let mut source = FromAllocator {
            frames,
            bytes: self.geometry.level_bytes(),
        };
        self.install_path(index, &mut source)
    }

    /// The first depth (1 = just below the top) whose level is missing on the walk of
    /// `index`, or `None` when the walk reaches the leaf.
    fn missing_depth(&self, index: u64) -> Option<u32> {
        let mut level = self.root;
        for depth in 0..self.geometry.levels - 1 {
            let next = self
                .level(level)
                .word(self.geometry.digit(index, depth))
                .map_or(Tce::NONE, |w| Tce::from_be(w.load(Ordering::Acquire)));
            if !next.is_valid() {
                return Some(depth + 1);
            }
            level = next.addr();
        }
        None
    }

    /// Sets aside one zeroed block for every level missing on the walks of `indexes` (the
    /// table indexes of one batch, at most [`crate::iommu::MAX_BATCH`] consecutive ones), all
    /// or nothing: on `Err(NoMemory)` nothing is held and the table is untouched.
    ///
    /// The count is an upper bound under concurrency (another CPU may install a level first);
    /// the surplus goes back with [`LevelReserve::release`].
    pub fn reserve_levels(
        &self,
        frames: &dyn FrameAllocator,
        indexes: &mut dyn Iterator<Item = u64>,
    ) -> Result<LevelReserve, Error> {
        let geometry = self.geometry;
        let mut reserve = LevelReserve {
            blocks: [0; RESERVE_MAX],
            len: 0,
            block_bytes: geometry.level_bytes(),
        };
        let mut needed: [(u32, u64); RESERVE_MAX] = [(0, 0); RESERVE_MAX];
        let mut count = 0;
        let mut last_leaf = None;
        for index in indexes {
            // Indexes with the same leaf share the whole walk: check each leaf once.
            let leaf = geometry.leaf_block(index);
            if last_leaf == Some(leaf) {
                continue;
            }
            last_leaf = Some(leaf);
            let Some(first) = self.missing_depth(index) else {
                continue;
            };
            for depth in first..geometry.levels {
                let block = (depth, geometry.block_at(index, depth));
                if needed[..count].contains(&block) {
                    continue;
                }
                // More than RESERVE_MAX blocks means the indexes were not one short run.
                *needed.get_mut(count).ok_or(Error::BatchTooLarge)? = block;
                count += 1;
            }
        }
        for _ in 0..count {
            match frames.alloc(reserve.block_bytes) {
                Some(block) => reserve.put_back(block),
                None => {
                    reserve.release(frames);
                    return Err(Error::NoMemory);
                }
            }
        }
        Ok(reserve)
    }

    /// Installs the levels missing on the walk of `index` with blocks from `reserve`. Returns
    /// the bytes installed. A block that loses the compare-and-swap goes back to the reserve.
    pub fn install_levels(&self, index: u64, reserve: &mut LevelReserve) -> Result<usize, Error> {
        self.install_path(index, reserve)
    }

    fn install_path(&self, index: u64, source: &mut dyn BlockSource) -> Result<usize, Error> {
        let mut installed = 0;
        let mut level = self.root;
        for depth in 0..self.geometry.levels - 1 {
            let word = self
                .level(level)
                .word(self.geometry.digit(index, depth))
                .ok_or(Error::Corrupt)?;
            let mut next = Tce::from_be(word.load(Ordering::Acquire));
            if !next.is_valid() {
                let block = source.get()?;
                let pointer = Tce::from_raw(block | TCE_READ | TCE_WRITE);
                // Release publishes the zeroed block; Acquire on failure sees the winner's.
                match word.compare_exchange(0, pointer.to_be(), Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => {
                        installed += self.geometry.level_bytes();
                        next = pointer;
                    }
                    Err(current) => {
                        source.lost(block);
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
    /// Allocates nothing (children are freed before their parent), so removing a window never
    /// needs heap.
    pub fn destroy(self, frames: &dyn FrameAllocator) -> usize {
        self.free_level(frames, self.root, 0)
    }

    fn free_level(&self, frames: &dyn FrameAllocator, level: PhysAddr, depth: u32) -> usize {
        let mut freed = 0;
        if depth + 1 < self.geometry.levels {
            for digit in 0..self.geometry.level_entries() {
                let Some(word) = self.level(level).word(digit) else {
                    continue;
                };
                let next = Tce::from_be(word.load(Ordering::Acquire));
                if next.is_valid() {
                    freed += self.free_level(frames, next.addr(), depth + 1);
                }
            }
        }
        frames.free(level, self.geometry.level_bytes());
        freed + self.geometry.level_bytes()
    }
}
