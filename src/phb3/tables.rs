//! The PHB3's in-memory IODA2 tables (RTT, PELTV, PEST) as blocks owned by the firmware:
//! allocated from the frame allocator, written only through `mm::phys`, freed on drop.
//!
//! This is the one place in `phb3` that touches physical memory; every access is bounds-
//! and alignment-checked here so the callers stay safe code.
//!
//! Resources: skiboot include/phb3.h (RTT_TABLE_SIZE, PELTV_TABLE_SIZE, PEST_TABLE_SIZE) and
//! hw/phb3.c `phb3_allocate_tables`, `phb3_set_peltv` (PELTV bit order).

use super::regs::{PELTV_ENTRY_BYTES, PHB3_NUM_PES, PHB3_RESERVED_PE, RTT_ENTRIES};
use crate::mm::{phys, FrameAllocator, PhysAddr};

/// A naturally aligned block from a [`FrameAllocator`], owned until dropped.
pub(crate) struct OwnedFrame<'a> {
    pa: PhysAddr,
    size: usize,
    frames: &'a dyn FrameAllocator,
}

impl<'a> OwnedFrame<'a> {
    /// A zeroed block of `size` bytes aligned to `size`, or `None` if the allocator has none
    /// or hands back a block that is not aligned (which would break the PHB's BAR decode).
    pub(crate) fn alloc(frames: &'a dyn FrameAllocator, size: usize) -> Option<Self> {
        let pa = frames.alloc(size)?;
        let block = OwnedFrame { pa, size, frames };
        if !size.is_power_of_two() || !pa.is_multiple_of(size as u64) {
            return None; // `block` is dropped, which frees it.
        }
        Some(block)
    }

    /// The block's physical address.
    pub(crate) fn pa(&self) -> PhysAddr {
        self.pa
    }

    fn in_bounds(&self, offset: usize, len: usize) -> bool {
        offset.checked_add(len).is_some_and(|end| end <= self.size)
    }

    /// Writes `value` big-endian at `offset` (2-byte aligned) as one store. Out of bounds or
    /// misaligned offsets are ignored: callers index with checked RIDs.
    pub(crate) fn write_be16(&mut self, offset: usize, value: u16) {
        if self.in_bounds(offset, 2) && offset.is_multiple_of(2) {
            // SAFETY: the block is ours (allocated above, freed only on drop), the offset is
            // inside it and 2-byte aligned (checked).
            unsafe { phys::write_be16(self.pa + offset as u64, value) }
        }
    }

    /// Reads the big-endian u16 at `offset`, or `None` out of bounds or misaligned.
    pub(crate) fn read_be16(&self, offset: usize) -> Option<u16> {
        if !self.in_bounds(offset, 2) || !offset.is_multiple_of(2) {
            return None;
        }
        // SAFETY: the block is ours and the offset is inside it and aligned (checked).
        Some(unsafe { phys::read_be16(self.pa + offset as u64) })
    }

    /// Copies `bytes` to `offset`, if it fits.
    pub(crate) fn write_bytes(&mut self, offset: usize, bytes: &[u8]) {
        if self.in_bounds(offset, bytes.len()) {
            // SAFETY: the block is ours and the range is inside it (checked).
            unsafe { phys::write_bytes(self.pa + offset as u64, bytes) }
        }
    }

    /// Zeroes the whole block.
    pub(crate) fn zero(&mut self) {
        // SAFETY: the block is ours, `size` bytes from `pa`.
        unsafe { phys::zero(self.pa, self.size) }
    }
}

impl Drop for OwnedFrame<'_> {
    fn drop(&mut self) {
        self.frames.free(self.pa, self.size);
    }
}

/// Fills an RTT with the reserved PE for every RID (skiboot `phb3_allocate_tables`:
/// `tbl_rtt[i] = cpu_to_be16(PHB3_RESERVED_PE_NUM)`).
pub(crate) fn fill_rtt_reserved(rtt: &mut OwnedFrame<'_>) {
    let entry = PHB3_RESERVED_PE.to_be_bytes();
    let mut chunk = [0u8; 512];
    for pair in chunk.chunks_exact_mut(2) {
        pair.copy_from_slice(&entry);
    }
    for offset in (0..RTT_ENTRIES * 2).step_by(chunk.len()) {
        rtt.write_bytes(offset, &chunk);
    }
}

/// Puts each PE alone in its own PELTV entry: entry `pe` (32 bytes, 256 bits) has only bit
/// `pe` set, bit order as skiboot `phb3_set_peltv` (`idx = parent * 32 + child / 8`,
/// `mask = 0x1 << (7 - (child % 8))`). So an error on one PE freezes only that PE.
pub(crate) fn fill_peltv_self(peltv: &mut OwnedFrame<'_>) {
    peltv.zero();
    for pe in 0..PHB3_NUM_PES as usize {
        let byte = [0x80u8 >> (pe % 8)];
        peltv.write_bytes(pe * PELTV_ENTRY_BYTES + pe / 8, &byte);
    }
}
