//! In-image tests of the bulk TCE hypercalls, window churn, SMP hypercalls and a hostile
//! caller, all through a real `sc 1`:
//! - H_PUT_TCE_INDIRECT maps 512 pages in one call (one kill batch) and edu's DMA reaches
//!   the first, middle and last of them;
//! - H_STUFF_TCE clears them and DMA is blocked;
//! - 100 window create/remove cycles leave heap and frame-allocator usage where they were;
//! - every online CPU hammers hypercalls on a shared and a private window at once;
//! - random hostile arguments (lists into firmware memory, at the end of the partition,
//!   across a page boundary) are refused and change nothing.
//!
//! Resources: LoPAR 14.5.4.2.3 (H_STUFF_TCE) and 14.5.4.2.4 (H_PUT_TCE_INDIRECT: list of
//! big-endian TCEs, 4 KiB aligned, at most 512); Linux arch/powerpc/kvm/book3s_64_vio.c.

use super::support::{
    edu_bar0, edu_dma, edu_reaches_window1, expect, hcall, read_guest, require, status, EDU,
    WINDOW1_BUS,
};
use super::Test;
use crate::arch::ppc64::smp;
use crate::hcall::codes::{
    H_GET_TCE, H_P2, H_P4, H_PARAMETER, H_PUT_TCE, H_PUT_TCE_INDIRECT, H_RESOURCE, H_STUFF_TCE,
    H_SUCCESS, H_TCEFW_CREATE_PE_DMA_WINDOW, H_TCEFW_QUERY_PE_DMA_WINDOW,
    H_TCEFW_REMOVE_PE_DMA_WINDOW, H_TCEFW_RESET_PE_DMA_WINDOWS,
};
use crate::hcall::hypervisor::Hypervisor;
use crate::hcall::partition::Partition;
use crate::iommu::service::WindowConfig;
use crate::pci::edu::{DmaDirection, Edu};
use crate::startup::hv::{self, guest_write};
use crate::startup::pci::PciHost;
use crate::startup::{Platform, FRAMES, HEAP, TABLE_BLOCKS};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};
use spin::Once;

/// The bulk tests, in order.
pub const TESTS: &[Test] = &[
    Test {
        name: "indirect_maps_512_pages_for_dma",
        run: indirect_maps_512_pages,
    },
    Test {
        name: "window_create_remove_100_cycles",
        run: window_cycles,
    },
    Test {
        name: "window_hypercalls_query_create_remove_reset",
        run: window_hypercalls,
    },
    Test {
        name: "all_cpus_hammer_hypercalls",
        run: all_cpus_hammer,
    },
    Test {
        name: "hostile_random_hypercalls_change_nothing",
        run: hostile_random,
    },
];

const PAGE: u64 = 4096;
const BATCH: u64 = 512;
const PARTITION_BYTES: u64 = 16 << 20;
/// Where the partition of these tests lives in the partition pool (the TCE tests use the
/// first 80 MiB).
const POOL_OFFSET: u64 = 80 << 20;
const PATTERN_BYTES: usize = 128;
/// A guest page no bulk test uses, for the DMA-mask probe.
const PROBE_SCRATCH: u64 = 8 << 20;
/// Random hostile hypercalls made through `sc 1` (each rejected one is checked to change
/// nothing at all every 64 calls and after every INDIRECT).
const HOSTILE_CALLS: u64 = 20_000;

struct Bulk {
    hv: &'static Hypervisor<'static>,
    edu_host: &'static PciHost,
    edu_pe: u16,
    me: &'static Partition,
}

static BULK: Once<Result<Bulk, String>> = Once::new();

/// The edu these tests use and their partition; a skip without edu (asked on every call,
/// so that every test that needs edu says so).
fn bulk(platform: &Platform) -> Result<&'static Bulk, String> {
    require(&EDU)?;
    BULK.call_once(|| {
        let hv = hv::hypervisor().ok_or("no hypervisor")?;
        let (edu_host, edu) = require(&EDU)?;
        let edu_pe = edu.pe.ok_or("edu has no PE")?;
        let (pool, pool_end) = platform.partition_pool;
        if pool + POOL_OFFSET + PARTITION_BYTES > pool_end {
            return Err(String::from("partition pool too small"));
        }
        let me = hv::add_partition(PARTITION_BYTES, pool + POOL_OFFSET)?;
        Ok(Bulk {
            hv,
            edu_host,
            edu_pe,
            me,
        })
    })
    .as_ref()
    .map_err(String::clone)
}

fn window(pe: u16) -> WindowConfig {
    WindowConfig {
        pe,
        window: 0,
        page_shift: 12,
        window_size: 1 << 30,
        levels: 2,
    }
}

/// Runs `body` as the partition, with a fresh window on `pe`, and removes the window after.
fn with_window(
    b: &Bulk,
    phb: usize,
    pe: u16,
    body: impl FnOnce(u64) -> Result<(), String>,
) -> Result<(), String> {
    let liobn =
        b.hv.create_window(phb, window(pe), b.me)
            .map_err(|e| format!("create_window: {e:?}"))?;
    hv::enter_partition(b.me);
    let result = body(liobn);
    hv::leave_partition();
    let removed = b.hv.remove_window(liobn);
    result?;
    removed
        .map(|_| ())
        .map_err(|e| format!("remove_window: {e:?}"))
}

fn read(me: &Partition, gra: u64) -> Result<Vec<u8>, String> {
    read_guest(me, gra, PATTERN_BYTES)
}

/// Writes a TCE list of `count` entries mapping guest pages `first_page..` read/write.
fn write_list(me: &Partition, list: u64, first_page: u64, count: u64) -> Result<(), String> {
    let mut bytes = Vec::with_capacity(count as usize * 8);
    for i in 0..count {
        bytes.extend_from_slice(&((first_page + i * PAGE) | 3).to_be_bytes());
    }
    guest_write(me, list, &bytes)
}

fn indirect_maps_512_pages(platform: &Platform) -> Result<(), String> {
    let b = bulk(platform)?;
    let bar0 = edu_bar0(b.edu_host)?;
    let edu = Edu::new(&bar0).map_err(|e| format!("{e:?}"))?;
    let pages_base = 4 << 20; // guest pages mapped: 4 MiB .. 6 MiB
    let list = 1 << 20;
    let ioba = 0x100 * PAGE;
    with_window(b, b.edu_host.number, b.edu_pe, |liobn| {
        let service = b.hv.phb(b.edu_host.number).ok_or("no TCE service")?;
        let zeros = vec![0u8; PATTERN_BYTES];
        for i in [0, 256, 511] {
            guest_write(b.me, pages_base + i * PAGE, &zeros)?;
        }
        let pattern: Vec<u8> = (0..PATTERN_BYTES as u8).map(|i| i ^ 0xA5).collect();
        guest_write(b.me, pages_base, &pattern)?;
        write_list(b.me, list, pages_base, BATCH)?;
        let kills_before = service.kill_counts();
        expect(
            "INDIRECT 512",
            status(hcall(H_PUT_TCE_INDIRECT, [liobn, ioba, list, BATCH])),
            H_SUCCESS,
        )?;
        let kills = service.kill_counts();
        if kills.batches - kills_before.batches != 1 {
            return Err(format!(
                "{} kill batches for one call",
                kills.batches - kills_before.batches
            ));
        }
        if b.hv.pages().total_pins() != BATCH {
            return Err(format!(
                "{} pins after mapping 512 pages",
                b.hv.pages().total_pins()
            ));
        }
        for i in [0, 1, 255, 511] {
            let out = hcall(H_GET_TCE, [liobn, ioba + i * PAGE, 0, 0]);
            expect("GET", status(out), H_SUCCESS)?;
            if out[1] != (pages_base + i * PAGE) | 3 {
                return Err(format!("entry {i} holds {:#x}", out[1]));
            }
        }
        // Device reads the first page, writes the middle and the last.
        edu_dma(&edu, DmaDirection::RamToBuffer, ioba, PATTERN_BYTES)?;
        edu_dma(
            &edu,
            DmaDirection::BufferToRam,
            ioba + 256 * PAGE,
            PATTERN_BYTES,
        )?;
        edu_dma(
            &edu,
            DmaDirection::BufferToRam,
            ioba + 511 * PAGE,
            PATTERN_BYTES,
        )?;
        for i in [256, 511] {
            if read(b.me, pages_base + i * PAGE)? != pattern {
                return Err(format!("DMA through entry {i} did not reach its page"));
            }
        }
        // H_STUFF_TCE clears all 512 with one kill batch; DMA is then blocked.
        for i in [256, 511] {
            guest_write(b.me, pages_base + i * PAGE, &zeros)?;
        }
        let before = service.kill_counts().batches;
        expect(
            "STUFF 0 x512",
            status(hcall(H_STUFF_TCE, [liobn, ioba, 0, BATCH])),
            H_SUCCESS,
        )?;
        if service.kill_counts().batches - before != 1 {
            return Err(String::from("STUFF did not take exactly one kill batch"));
        }
        if b.hv.pages().total_pins() != 0 {
            return Err(format!("{} pins after STUFF", b.hv.pages().total_pins()));
        }
        edu_dma(
            &edu,
            DmaDirection::BufferToRam,
            ioba + 256 * PAGE,
            PATTERN_BYTES,
        )?;
        if read(b.me, pages_base + 256 * PAGE)? != zeros {
            return Err(String::from("DMA got through a stuffed (cleared) entry"));
        }
        expect(
            "STUFF 513",
            status(hcall(H_STUFF_TCE, [liobn, ioba, 0, BATCH + 1])),
            H_P4,
        )
    })
}

fn window_cycles(platform: &Platform) -> Result<(), String> {
    let b = bulk(platform)?;
    let heap_before = HEAP.stats().used;
    // Memory really held: what the frame allocator handed out, less what sits in the table
    // block cache ready for reuse.
    let held = || FRAMES.stats().used_bytes - TABLE_BLOCKS.stats().cached_bytes;
    let frames_before = held();
    let hits_before = TABLE_BLOCKS.stats().hits;
    for cycle in 0..100u64 {
        with_window(b, b.edu_host.number, b.edu_pe, |liobn| {
            // Map a few pages far apart so that several second-level tables get allocated.
            for (i, ioba) in [0u64, 0x200_000, 0x1000_0000, 0x3FFF_F000]
                .into_iter()
                .enumerate()
            {
                let page = (8 << 20) + (cycle % 16 + i as u64) * PAGE;
                expect(
                    "map",
                    status(hcall(H_PUT_TCE, [liobn, ioba, page | 3, 0])),
                    H_SUCCESS,
                )?;
            }
            Ok(())
        })
        .map_err(|e| format!("cycle {cycle}: {e}"))?;
    }
    let heap_after = HEAP.stats().used;
    let frames_after = held();
    if TABLE_BLOCKS.stats().hits < hits_before + 100 {
        return Err(String::from(
            "TCE levels did not come from the lock-free block cache",
        ));
    }
    if heap_after != heap_before || frames_after != frames_before {
        return Err(format!(
            "heap {heap_before} -> {heap_after} bytes, frames {frames_before} -> {frames_after} bytes"
        ));
    }
    if b.hv.pages().total_pins() != 0 {
        return Err(String::from("pins left after removing every window"));
    }
    Ok(())
}

/// The partition manages its own DMA windows through the firmware-private hypercalls on a
/// PE it was granted: query, create a 64K-page window (it lands at bus 2^59, since the
/// default window holds TVE 0), DMA through it, remove it (unmapping what it still maps),
/// reset, and be refused on a PE it was not granted.
fn window_hypercalls(platform: &Platform) -> Result<(), String> {
    let b = bulk(platform)?;
    let phb = b.edu_host.number;
    // The window the partition creates lands at bus 2^59: edu must reach it.
    edu_reaches_window1(b.hv, b.edu_host, b.edu_pe, b.me, PROBE_SCRATCH)?;
    let handle =
        b.hv.grant_pe(b.me, phb, b.edu_pe)
            .map_err(|e| format!("grant_pe: {e:?}"))?;
    hv::enter_partition(b.me);
    let result = window_hypercalls_as_partition(b, handle);
    hv::leave_partition();
    let revoked = b.hv.revoke_pe(phb, b.edu_pe);
    result?;
    revoked
        .map(|_| ())
        .map_err(|e| format!("revoke_pe: {e:?}"))?;
    if b.hv.pages().total_pins() != 0 {
        return Err(String::from("pins left after the PE was revoked"));
    }
    Ok(())
}

fn window_hypercalls_as_partition(b: &Bulk, handle: u64) -> Result<(), String> {
    let query = hcall(H_TCEFW_QUERY_PE_DMA_WINDOW, [handle, 0, 0, 0]);
    expect("QUERY", status(query), H_SUCCESS)?;
    if query[1] != 1 || query[3] & 0x2 == 0 {
        return Err(format!(
            "QUERY: {} windows free, page sizes {:#x}",
            query[1], query[3]
        ));
    }
    expect(
        "CREATE with 8K pages",
        status(hcall(H_TCEFW_CREATE_PE_DMA_WINDOW, [handle, 13, 30, 2])),
        H_P2,
    )?;
    let create = hcall(H_TCEFW_CREATE_PE_DMA_WINDOW, [handle, 16, 30, 2]);
    expect("CREATE 64K pages, 1 GiB", status(create), H_SUCCESS)?;
    let (liobn, start) = (create[1], create[2]);
    if start != WINDOW1_BUS || create[3] != 1 << 30 {
        return Err(format!(
            "CREATE gave start {start:#x} size {:#x}",
            create[3]
        ));
    }
    expect(
        "CREATE a third window",
        status(hcall(H_TCEFW_CREATE_PE_DMA_WINDOW, [handle, 12, 30, 1])),
        H_RESOURCE,
    )?;
    // DMA through the new window: device writes land in the 64K page mapped.
    let bar0 = edu_bar0(b.edu_host)?;
    let edu = Edu::new(&bar0).map_err(|e| format!("{e:?}"))?;
    let source = 2 << 20;
    let target = 3 << 20;
    let pattern: Vec<u8> = (0..PATTERN_BYTES as u8)
        .map(|i| i.wrapping_mul(7) | 0x80)
        .collect();
    guest_write(b.me, source, &pattern)?;
    guest_write(b.me, target, &[0u8; PATTERN_BYTES])?;
    let page = 1u64 << 16;
    expect(
        "map source",
        status(hcall(H_PUT_TCE, [liobn, start, source | 1, 0])),
        H_SUCCESS,
    )?;
    expect(
        "map target",
        status(hcall(H_PUT_TCE, [liobn, start + page, target | 3, 0])),
        H_SUCCESS,
    )?;
    edu_dma(&edu, DmaDirection::RamToBuffer, start, PATTERN_BYTES)?;
    edu_dma(&edu, DmaDirection::BufferToRam, start + page, PATTERN_BYTES)?;
    if read(b.me, target)? != pattern {
        return Err(String::from("DMA through the created window did not land"));
    }
    // Remove with two mappings left: they are unmapped (after the kill) and reported.
    let removed = hcall(H_TCEFW_REMOVE_PE_DMA_WINDOW, [liobn, 0, 0, 0]);
    expect("REMOVE", status(removed), H_SUCCESS)?;
    if removed[1] != 2 {
        return Err(format!(
            "REMOVE reports {} mappings unmapped, expected 2",
            removed[1]
        ));
    }
    expect(
        "PUT on the removed window",
        status(hcall(H_PUT_TCE, [liobn, start, source | 1, 0])),
        H_PARAMETER,
    )?;
    let reset = hcall(H_TCEFW_RESET_PE_DMA_WINDOWS, [handle, 0, 0, 0]);
    expect("RESET", status(reset), H_SUCCESS)?;
    let default = reset[1];
    expect(
        "map in the default window",
        status(hcall(H_PUT_TCE, [default, 0, source | 3, 0])),
        H_SUCCESS,
    )?;
    // A PE nobody granted (the root port's) is refused.
    let foreign = handle ^ u64::from(b.edu_pe) ^ 250;
    expect(
        "QUERY a PE not granted",
        status(hcall(H_TCEFW_QUERY_PE_DMA_WINDOW, [foreign, 0, 0, 0])),
        H_PARAMETER,
    )?;
    expect(
        "CREATE on a PE not granted",
        status(hcall(H_TCEFW_CREATE_PE_DMA_WINDOW, [foreign, 12, 30, 1])),
        H_PARAMETER,
    )?;
    Ok(())
}

/// Per-CPU results of the hammer: failures, and calls made.
static HAMMER_FAILURES: AtomicU64 = AtomicU64::new(0);
static HAMMER_CALLS: AtomicU64 = AtomicU64::new(0);
static HAMMER_LIOBNS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
const HAMMER_ROUNDS: u64 = 1500;

fn hammer(cpu_index: usize, partition_id: u64) {
    let Some(hv) = hv::hypervisor() else { return };
    let Some(me) = hv.partition(partition_id as u32) else {
        return;
    };
    hv::enter_partition(me);
    let shared = HAMMER_LIOBNS[0].load(Ordering::Acquire);
    // LIOBNs of consecutive PEs differ by 2 (PE * 2 + window): CPU i owns the i-th.
    let private = HAMMER_LIOBNS[1].load(Ordering::Acquire) + 2 * cpu_index as u64;
    let mut failures = 0;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ cpu_index as u64;
    for round in 0..HAMMER_ROUNDS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Shared window: every CPU swaps the same 16 entries, pointing at 64 pages.
        let entry = (seed % 16) * PAGE;
        let page = (12 << 20) + ((seed >> 8) % 64) * PAGE;
        let tce = if round % 5 == 4 { 0 } else { page | 3 };
        if hcall(H_PUT_TCE, [shared, entry, tce, 0])[0] != 0 {
            failures += 1;
        }
        // Private window: map, read back, clear.
        let own = (cpu_index as u64 * 64 + (seed >> 20) % 64) * PAGE;
        let own_page = (14 << 20) + (seed >> 32) % 64 * PAGE;
        let ok = hcall(H_PUT_TCE, [private, own, own_page | 1, 0])[0] == 0
            && hcall(H_GET_TCE, [private, own, 0, 0])[1] == own_page | 1
            && hcall(H_PUT_TCE, [private, own, 0, 0])[0] == 0;
        if !ok {
            failures += 1;
        }
    }
    // Leave the shared entries clear; the last CPU to clear an entry releases its page.
    for entry in 0..16 {
        if hcall(H_PUT_TCE, [shared, entry * PAGE, 0, 0])[0] != 0 {
            failures += 1;
        }
    }
    hv::leave_partition();
    HAMMER_FAILURES.fetch_add(failures, Ordering::Relaxed);
    HAMMER_CALLS.fetch_add(HAMMER_ROUNDS * 4 + 16, Ordering::Relaxed);
}

fn all_cpus_hammer(platform: &Platform) -> Result<(), String> {
    let b = bulk(platform)?;
    let phb = b.edu_host.number;
    let cpus = smp::online_secondaries() + 1;
    // PEs without devices still have TVT entries: one shared window and one per CPU.
    let shared =
        b.hv.create_window(phb, window(200), b.me)
            .map_err(|e| format!("{e:?}"))?;
    let mut private = Vec::new();
    for i in 0..cpus {
        match b.hv.create_window(phb, window(210 + i as u16), b.me) {
            Ok(liobn) => private.push(liobn),
            Err(e) => return Err(format!("private window {i}: {e:?}")),
        }
    }
    if private.windows(2).any(|w| w[1] != w[0] + 2) {
        return Err(String::from("unexpected LIOBN layout"));
    }
    HAMMER_LIOBNS[0].store(shared, Ordering::Release);
    HAMMER_LIOBNS[1].store(private[0], Ordering::Release);
    HAMMER_FAILURES.store(0, Ordering::Relaxed);
    HAMMER_CALLS.store(0, Ordering::Relaxed);
    smp::run_on_all(hammer, u64::from(b.me.id()));
    let failures = HAMMER_FAILURES.load(Ordering::Relaxed);
    let calls = HAMMER_CALLS.load(Ordering::Relaxed);
    let pins = b.hv.pages().total_pins();
    let mut removed = Ok(());
    for liobn in private.into_iter().chain([shared]) {
        if let Err(e) = b.hv.remove_window(liobn) {
            removed = Err(format!("remove_window: {e:?}"));
        }
    }
    crate::log!(Notice, "TEST", "{cpus} CPU(s) made {calls} hypercalls");
    if failures != 0 {
        return Err(format!("{failures} hypercalls failed"));
    }
    if pins != 0 {
        return Err(format!(
            "{pins} pins left after every CPU cleared its entries"
        ));
    }
    if calls != cpus as u64 * (HAMMER_ROUNDS * 4 + 16) {
        return Err(format!(
            "{calls} calls made, expected all {cpus} CPUs to finish"
        ));
    }
    removed
}

/// A snapshot of everything a rejected hypercall must leave alone.
#[derive(Debug, PartialEq, Eq)]
struct State {
    pins: u64,
    kill_stores: u64,
    table_bytes: u64,
    frames_used: u64,
    entries: [u64; 4],
}

fn snapshot(b: &Bulk, liobn: u64) -> State {
    let service = b.hv.phb(b.edu_host.number);
    let mut entries = [0u64; 4];
    for (i, slot) in entries.iter_mut().enumerate() {
        *slot = hcall(H_GET_TCE, [liobn, i as u64 * PAGE, 0, 0])[1];
    }
    State {
        pins: b.hv.pages().total_pins(),
        kill_stores: service.map_or(0, |s| s.kill_counts().stores),
        table_bytes: service.map_or(0, |s| s.table_bytes()),
        frames_used: FRAMES.stats().used_bytes + TABLE_BLOCKS.stats().used_bytes,
        entries,
    }
}

fn hostile_random(platform: &Platform) -> Result<(), String> {
    let b = bulk(platform)?;
    let end = b.me.size();
    let ram_top = platform.machine.ram_top();
    with_window(b, b.edu_host.number, b.edu_pe, |liobn| {
        // Some state worth protecting: four mapped entries.
        for i in 0..4u64 {
            let page = (2 << 20) + i * PAGE;
            expect(
                "map",
                status(hcall(H_PUT_TCE, [liobn, i * PAGE, page | 3, 0])),
                H_SUCCESS,
            )?;
        }
        // A list in the last page of the partition, for the "list is fine, entries not"
        // cases; each call plants one bad entry at the end of the run it names.
        let tail_list = end - PAGE;
        let mut entries = Vec::new();
        for i in 0..BATCH {
            entries.extend_from_slice(&(((1 << 20) + i * PAGE) | 3).to_be_bytes());
        }
        guest_write(b.me, tail_list, &entries)?;
        let interesting = [
            0,
            8,
            PAGE - 8,
            PAGE + 0x800,
            end - 8,
            end - PAGE,
            end,
            end + PAGE,
            ram_top,
            ram_top - PAGE,
            1 << 40,
            u64::MAX,
            u64::MAX - PAGE + 1,
            1 << 59,
            (1 << 30) - PAGE,
            1 << 30,
        ];
        let mut seed = 0x0DDB_1A5E_5BAD_5EEDu64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let before = snapshot(b, liobn);
        let mut rejected = 0u64;
        for n in 0..HOSTILE_CALLS {
            let pick = |r: u64| interesting[(r % interesting.len() as u64) as usize];
            let (r1, r2, r3, r4) = (next(), next(), next(), next());
            let target_liobn = match r1 % 4 {
                0 => liobn,
                1 => liobn ^ (1 << ((r1 >> 8) % 20)),
                2 => r1,
                _ => liobn + 2,
            };
            let (opcode, args) = match r2 % 5 {
                // PUT with an entry, address or permission that cannot be right.
                0 => (H_PUT_TCE, [target_liobn, pick(r3) | 0x10, pick(r4) | 3, 0]),
                // STUFF with a count over 512, or a range past the window.
                1 => (
                    H_STUFF_TCE,
                    [target_liobn, pick(r3), pick(r4) | 1, BATCH + 1 + r4 % 1000],
                ),
                // INDIRECT with a list that is misaligned, outside the partition, in
                // firmware memory, or crossing the partition's end; or with bad entries.
                2 => {
                    let list = match r3 % 4 {
                        0 => pick(r4) | 0x8,
                        1 => ((end - PAGE / 2) & !0xFFF) | ((r4 % 8) * 8 + 8),
                        // Past the partition, or the last page of RAM (firmware memory).
                        2 if r4 % 2 == 0 => end + (r4 % 16) * PAGE,
                        2 => ram_top - PAGE,
                        _ => {
                            // A good list whose last entry points past the partition: the
                            // earlier, valid entries must not be applied either.
                            let count = 1 + r4 % BATCH;
                            let last = tail_list + (count - 1) * 8;
                            guest_write(b.me, last, &(ram_top | 3).to_be_bytes())?;
                            tail_list
                        }
                    };
                    (
                        H_PUT_TCE_INDIRECT,
                        [target_liobn, (r4 % 8) * PAGE, list, 1 + r4 % BATCH],
                    )
                }
                // GET of something that is not there.
                3 => (H_GET_TCE, [target_liobn, pick(r3) | 0x100, 0, 0]),
                // Window management on PE handles this partition was never granted (or
                // garbage), and removal of LIOBNs it does not own.
                _ => {
                    let handle = match r3 % 3 {
                        0 => 0x4000_0000 | (r4 % 0x10000),
                        1 => pick(r4),
                        _ => r4,
                    };
                    // QUERY, CREATE, REMOVE or RESET (0xF200, 0xF204, 0xF208, 0xF20C).
                    let opcode = H_TCEFW_QUERY_PE_DMA_WINDOW + 4 * ((r3 >> 8) % 4);
                    // Our own window may not be removed here: it is the state under test.
                    let foreign = if target_liobn == liobn {
                        liobn ^ 1
                    } else {
                        target_liobn
                    };
                    let first = if opcode == H_TCEFW_REMOVE_PE_DMA_WINDOW {
                        foreign
                    } else {
                        handle
                    };
                    (opcode, [first, 12 + r4 % 20, r3 % 64, r4 % 7])
                }
            };
            let out = hcall(opcode, args);
            let got = status(out);
            if got == H_SUCCESS {
                return Err(format!("call {n}: {opcode:#x} {args:x?} was accepted"));
            }
            if got != H_PARAMETER && !(H_P4..=H_P2).contains(&got) {
                return Err(format!("call {n}: {opcode:#x} {args:x?} gave status {got}"));
            }
            rejected += 1;
            if n % 64 == 0 || opcode == H_PUT_TCE_INDIRECT {
                let now = snapshot(b, liobn);
                if now != before {
                    return Err(format!(
                        "call {n}: {opcode:#x} {args:x?} changed {before:?} to {now:?}"
                    ));
                }
            }
        }
        let after = snapshot(b, liobn);
        if after != before {
            return Err(format!("state changed: {before:?} -> {after:?}"));
        }
        crate::log!(
            Notice,
            "TEST",
            "{rejected} hostile hypercalls refused, state unchanged"
        );
        expect(
            "clear",
            status(hcall(H_STUFF_TCE, [liobn, 0, 0, 4])),
            H_SUCCESS,
        )
    })
}
