//! What the gdb helpers in tools/tcefw.gdb call in the running image. A debugger cannot
//! read the TVT itself: it sits behind the PHB's IODA_ADDR/IODA_DATA0 pair, and QEMU's gdb
//! stub drops writes to MMIO (`address_space_write_rom` writes only RAM and ROM). So
//! `tcefw-tvt` calls [`tcefw_gdb_snapshot_tvt`], which copies a PHB's TVT into RAM the
//! debugger then reads; the TCE tables themselves are RAM and need no help.
//!
//! Resources: QEMU system/physmem.c (`cpu_memory_rw_debug`); skiboot hw/phb3.c
//! (`phb3_ioda_sel`: IODA_ADDR selects a table and an index, IODA_DATA0 reads the entry).

use crate::hw::regio::RegIo;
use crate::iommu::tve::TVT_ENTRIES;
use crate::phb3::regs::PHB_IODA_ADDR;
use crate::startup::pci::hosts;
use core::sync::atomic::{AtomicU64, Ordering};

/// The last TVT copied out, entry `i` at `i * 8`, in CPU (little-endian) order.
static TVT_SNAPSHOT: [AtomicU64; TVT_ENTRIES] = [const { AtomicU64::new(0) }; TVT_ENTRIES];

/// Copies the TVT of PHB `phb` (its position in the boot log's PHB list) into a static
/// buffer and returns the buffer's address, or 0 when there is no such PHB. The caller's
/// IODA_ADDR is put back afterwards, so a stop between an IODA_ADDR write and its data
/// access (a TVE update in progress) reads the same entry when it resumes.
#[allow(unsafe_code)] // Reviewed: #[no_mangle] is how the debugger finds it (see the README).
#[no_mangle]
pub extern "C" fn tcefw_gdb_snapshot_tvt(phb: u64) -> u64 {
    let Some(host) = usize::try_from(phb).ok().and_then(|n| hosts().get(n)) else {
        return 0;
    };
    let saved_address = host.regs.read64(PHB_IODA_ADDR);
    for (index, slot) in TVT_SNAPSHOT.iter().enumerate() {
        let value = crate::phb3::read_tve(host.regs, index as u32).unwrap_or(u64::MAX);
        slot.store(value, Ordering::Relaxed);
    }
    host.regs.write64(PHB_IODA_ADDR, saved_address);
    TVT_SNAPSHOT.as_ptr() as u64
}

/// Keeps the hooks in the image although nothing in it calls them.
#[used]
static GDB_HOOKS: [extern "C" fn(u64) -> u64; 1] = [tcefw_gdb_snapshot_tvt];
