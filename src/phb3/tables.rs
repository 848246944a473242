//! The PHB3's in-memory IODA2 tables (RTT, PELTV, PEST) as blocks owned by the firmware:
//! [`OwnedFrame`]s from the frame allocator, written through their bounds- and
//! alignment-checked accessors, freed on drop.
//!
//! Resources: skiboot include/phb3.h (RTT_TABLE_SIZE, PELTV_TABLE_SIZE, PEST_TABLE_SIZE) and
//! hw/phb3.c `phb3_allocate_tables`, `phb3_set_peltv` (PELTV bit order).

use super::regs::{PELTV_ENTRY_BYTES, PHB3_NUM_PES, PHB3_RESERVED_PE, RTT_ENTRIES};
use crate::mm::phys::OwnedFrame;

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
