//! In-image checks of the TCE kill (issue 8, docs/phb3-dma-bounds-and-kill.md), as far as QEMU
//! can show them: QEMU caches no TCE, so it cannot show a kill missing, but it shows the two
//! facts the kill policy rests on and that every changing call completes its kill.
//! - An address one table reach above a mapped entry (below the window-select bit 59) decodes
//!   onto that entry: edu's DMA there lands in the mapped page. This is why a kill-one is not
//!   enough on such a table (an alias may be cached under its own address).
//! - Each changing hypercall makes exactly one kill batch: one kill-PE on this geometry and one
//!   DMA read sync (DMARD_SYNC START, then COMPLETE, which QEMU answers at once); a call that
//!   changes nothing makes none.
//!
//! Resources: QEMU hw/pci-host/pnv_phb3.c (`pnv_phb3_translate_tve` masks every level's digit,
//! `pnv_phb3_reg_read` answers DMARD_SYNC with COMPLETE); hw/misc/edu.c.

use super::support::{
    edu_bar0, edu_dma, edu_reaches_window1, expect, hcall, read_guest, require, status, EDU,
};
use super::Test;
use crate::hcall::codes::{H_PUT_TCE, H_SUCCESS};
use crate::iommu::service::WindowConfig;
use crate::iommu::tve::tvt_index;
use crate::pci::edu::{DmaDirection, Edu};
use crate::startup::hv::{self, guest_write};
use crate::startup::Platform;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

/// The kill tests, in order.
pub const TESTS: &[Test] = &[Test {
    name: "alias_above_the_table_reach_decodes_onto_the_entry",
    run: alias_decodes_onto_the_entry,
}];

/// Where this test's partition lives in the pool (the TCE tests use the first 80 MiB, the
/// bulk tests the next 16).
const POOL_OFFSET: u64 = 96 << 20;
const PARTITION_BYTES: u64 = 4 << 20;
const BYTES: usize = 256;
/// A guest page this test does not use, for the DMA-mask probe.
const PROBE_SCRATCH: u64 = 2 << 20;

fn put(liobn: u64, ioba: u64, tce: u64) -> i64 {
    status(hcall(H_PUT_TCE, [liobn, ioba, tce, 0]))
}

fn alias_decodes_onto_the_entry(platform: &Platform) -> Result<(), String> {
    let hv = hv::hypervisor().ok_or("no hypervisor")?;
    let (host, edu_fn) = require(&EDU)?;
    let pe = edu_fn.pe.ok_or("edu has no PE")?;
    let (pool, pool_end) = platform.partition_pool;
    if pool + POOL_OFFSET + PARTITION_BYTES > pool_end {
        return Err(String::from("partition pool too small"));
    }
    let me = hv::add_partition(PARTITION_BYTES, pool + POOL_OFFSET)?;
    // The alias lies one reach (4 GiB here) above X: an edu whose DMA mask drops bit 32
    // would land on X by itself and pass for the wrong reason.
    edu_reaches_window1(hv, host, pe, me, PROBE_SCRATCH)?;
    let bar0 = edu_bar0(host)?;
    let edu = Edu::new(&bar0).map_err(|e| format!("{e:?}"))?;
    // The default window's shape: 2 GiB of 4K pages in 2 levels of 1024 entries.
    let config = WindowConfig {
        pe,
        window: 0,
        page_shift: 12,
        window_size: 2 << 30,
        levels: 2,
    };
    let liobn = hv
        .create_window(host.number, config, me)
        .map_err(|e| format!("create_window: {e:?}"))?;
    hv::enter_partition(me);
    let result = run(hv, host.number, pe, me, &edu, liobn);
    hv::leave_partition();
    let removed = hv.remove_window(liobn);
    result?;
    removed.map_err(|e| format!("remove_window: {e:?}"))?;
    Ok(())
}

fn run(
    hv: &crate::hcall::Hypervisor<'_>,
    phb: usize,
    pe: u16,
    me: &crate::hcall::Partition,
    edu: &Edu<'_>,
    liobn: u64,
) -> Result<(), String> {
    let service = hv.phb(phb).ok_or("no TCE service")?;
    let reach = {
        let window = service.window(tvt_index(pe, 0)).ok_or("no window")?;
        let geometry = window.table().geometry();
        1u64 << (geometry.page_shift + geometry.index_bits())
    };
    let (source, target) = (0x1000u64, 0x3000u64);
    let x = 0x5000u64;
    let pattern: Vec<u8> = (0..BYTES)
        .map(|i| (i as u8).wrapping_mul(7) | 0x80)
        .collect();
    let zeros = vec![0u8; BYTES];
    guest_write(me, source, &pattern)?;
    guest_write(me, target, &zeros)?;
    let before = service.kill_counts();
    // edu's buffer takes the pattern through X, then X is remapped to the target page.
    expect("map X->source", put(liobn, x, source | 1), H_SUCCESS)?;
    edu_dma(edu, DmaDirection::RamToBuffer, x, BYTES)?;
    expect("map X->target", put(liobn, x, target | 3), H_SUCCESS)?;
    // The device writes one reach above X: the PHB decodes it onto X's entry.
    edu_dma(edu, DmaDirection::BufferToRam, x + reach, BYTES)?;
    if read_guest(me, target, BYTES)? != pattern {
        return Err(format!(
            "a DMA at X + {reach:#x} did not reach X's page: QEMU no longer wraps addresses \
             beyond the table (update docs/phb3-dma-bounds-and-kill.md)"
        ));
    }
    // Cleared, neither X nor its alias reaches the page (QEMU caches nothing).
    expect("clear X", put(liobn, x, 0), H_SUCCESS)?;
    expect("clear X again (no change)", put(liobn, x, 0), H_SUCCESS)?;
    guest_write(me, target, &zeros)?;
    edu_dma(edu, DmaDirection::BufferToRam, x + reach, BYTES)?;
    if read_guest(me, target, BYTES)? != zeros {
        return Err(String::from(
            "the alias still reached the page after the clear",
        ));
    }
    // Three changing calls, one that changed nothing: three batches, each one kill-PE (the
    // table has aliases) and one completed DMA read sync.
    let after = service.kill_counts();
    let batches = after.batches - before.batches;
    let syncs = after.syncs - before.syncs;
    let kill_pe = after.kill_pe - before.kill_pe;
    let kill_one = after.kill_one - before.kill_one;
    if (batches, syncs, kill_pe, kill_one, after.failures) != (3, 3, 3, 0, 0) {
        return Err(format!(
            "batches {batches}, syncs {syncs}, kill-PE {kill_pe}, kill-one {kill_one}, \
             failures {}: expected 3, 3, 3, 0, 0",
            after.failures
        ));
    }
    Ok(())
}
