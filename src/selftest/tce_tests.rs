//! In-image tests of the TCE hypercalls through a real `sc 1`, proven by edu's DMA through
//! the PHB3's translation: map, remap (exchange: old page released and dirty), read-only,
//! write-only and cleared TCEs, RAM-to-device reads, H_GET_TCE, and hostile arguments, on
//! several window shapes (4K, 64K and 16M pages, 1 and 2 levels, window 0 and window 1 at
//! bus address 1<<59); and large IOMMU pages over a partition only 4 KiB aligned in host
//! memory, which every TCE call must refuse.
//!
//! QEMU neither caches TCEs nor reports a refused DMA to edu: every check compares memory.
//! Without an edu the DMA tests skip; window 1 also needs edu's DMA mask to cover bit 59,
//! which a probe checks first (see `support::edu_reaches_window1`).
//! Resources: LoPAR 14.5.4.2 (H_PUT_TCE, H_GET_TCE); QEMU hw/pci-host/pnv_phb3.c
//! (pnv_phb3_translate_tve), hw/misc/edu.c (DMA engine, 4 KiB buffer at 0x40000).

use super::support::{
    edu_bar0, edu_dma, edu_reaches_window1, expect, hcall, read_guest, require, status, EDU,
    WINDOW1_BUS,
};
use super::Test;
use crate::hcall::codes::{
    H_FUNCTION, H_GET_TCE, H_PARAMETER, H_PUT_TCE, H_PUT_TCE_INDIRECT, H_STUFF_TCE, H_SUCCESS,
};
use crate::hcall::hypervisor::Hypervisor;
use crate::hcall::partition::Partition;
use crate::iommu::service::WindowConfig;
use crate::pci::edu::{DmaDirection, Edu};
use crate::startup::hv::{self, guest_write};
use crate::startup::pci::PciHost;
use crate::startup::Platform;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use spin::Once;

/// The TCE tests, in order.
pub const TESTS: &[Test] = &[
    Test {
        name: "tce_4k_1level_window0",
        run: tce_4k_1level_window0,
    },
    Test {
        name: "tce_64k_1level_window0",
        run: tce_64k_1level_window0,
    },
    Test {
        name: "tce_4k_2level_window0",
        run: tce_4k_2level_window0,
    },
    Test {
        name: "tce_4k_1level_window1",
        run: tce_4k_1level_window1,
    },
    Test {
        name: "tce_16m_1level_window0",
        run: tce_16m_1level_window0,
    },
    Test {
        name: "hostile_tce_arguments_change_nothing",
        run: hostile_arguments,
    },
    Test {
        name: "large_pages_over_4k_aligned_partition_refused",
        run: large_pages_over_misaligned_partition,
    },
    Test {
        name: "unknown_opcode_is_h_function",
        run: unknown_opcode,
    },
];

/// How much of each page the tests write and compare (edu's buffer is 4 KiB).
const PATTERN_BYTES: usize = 256;
/// Big enough for four 16 MiB IOMMU pages.
const PARTITION_BYTES: u64 = 64 << 20;
const OTHER_PARTITION_BYTES: u64 = 16 << 20;
/// The partition of the large-page test: 1 MiB at 104 MiB + 4 KiB into the pool (the TCE
/// tests take the first 80 MiB, the bulk tests the next 16, the kill test 96..100 MiB), so
/// its host base is 4 KiB aligned and no more.
const MISALIGNED_POOL_OFFSET: u64 = (104 << 20) + 0x1000;
const MISALIGNED_PARTITION_BYTES: u64 = 1 << 20;
/// A guest page no scenario uses, for the DMA-mask probe.
const PROBE_SCRATCH: u64 = 2 << 20;

/// The partitions the tests play: no device needed.
struct Partitions {
    me: &'static Partition,
    /// Owns the "foreign" window of the "not your LIOBN" checks.
    other: &'static Partition,
}

struct Context {
    hv: &'static Hypervisor<'static>,
    edu_host: &'static PciHost,
    edu_pe: u16,
    me: &'static Partition,
    /// A window owned by another partition, for the "not your LIOBN" checks.
    foreign_liobn: u64,
}

static PARTITIONS: Once<Result<Partitions, String>> = Once::new();
static CONTEXT: Once<Result<Context, String>> = Once::new();

fn partitions(platform: &Platform) -> Result<&'static Partitions, String> {
    PARTITIONS
        .call_once(|| {
            let (pool, _) = platform.partition_pool;
            Ok(Partitions {
                me: hv::add_partition(PARTITION_BYTES, pool)?,
                other: hv::add_partition(OTHER_PARTITION_BYTES, pool + PARTITION_BYTES)?,
            })
        })
        .as_ref()
        .map_err(String::clone)
}

/// The edu the DMA tests drive, the partitions, and a foreign window; a skip without edu
/// (asked on every call, so that every test that needs edu says so).
fn context(platform: &Platform) -> Result<&'static Context, String> {
    require(&EDU)?;
    CONTEXT
        .call_once(|| build_context(platform))
        .as_ref()
        .map_err(String::clone)
}

fn build_context(platform: &Platform) -> Result<Context, String> {
    let hv = hv::hypervisor().ok_or("no hypervisor")?;
    let (edu_host, edu) = require(&EDU)?;
    let edu_pe = edu.pe.ok_or("edu has no PE")?;
    let Partitions { me, other } = *partitions(platform)?;
    // The other partition owns a window on another PE (the root port's on edu's PHB).
    let root_pe = edu_host
        .topology
        .functions
        .iter()
        .find(|f| f.bdf.rid() == 0)
        .and_then(|f| f.pe)
        .ok_or("no root port PE")?;
    let foreign_liobn = hv
        .create_window(edu_host.number, window_config(root_pe, 12, 1, 0), other)
        .map_err(|e| format!("foreign window: {e:?}"))?;
    Ok(Context {
        hv,
        edu_host,
        edu_pe,
        me,
        foreign_liobn,
    })
}

fn window_config(pe: u16, page_shift: u32, levels: u32, window: u8) -> WindowConfig {
    WindowConfig {
        pe,
        window,
        page_shift,
        window_size: 1 << 30,
        levels,
    }
}

fn put(liobn: u64, ioba: u64, tce: u64) -> i64 {
    status(hcall(H_PUT_TCE, [liobn, ioba, tce, 0]))
}

fn get(liobn: u64, ioba: u64) -> (i64, u64) {
    let out = hcall(H_GET_TCE, [liobn, ioba, 0, 0]);
    (status(out), out[1])
}

fn pattern(seed: u8) -> Vec<u8> {
    (0..PATTERN_BYTES)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
        .collect()
}

fn read_page(me: &Partition, gra: u64) -> Result<Vec<u8>, String> {
    read_guest(me, gra, PATTERN_BYTES)
}

/// edu behind its BAR, moving `PATTERN_BYTES` per DMA.
struct Device<'a> {
    edu: Edu<'a>,
}

impl Device<'_> {
    fn dma(&self, direction: DmaDirection, bus: u64) -> Result<(), String> {
        edu_dma(&self.edu, direction, bus, PATTERN_BYTES)
    }
}

/// The whole DMA story on one window shape.
fn dma_scenario(
    platform: &Platform,
    page_shift: u32,
    levels: u32,
    window: u8,
) -> Result<(), String> {
    let ctx = context(platform)?;
    let bar0 = edu_bar0(ctx.edu_host)?;
    let device = Device {
        edu: Edu::new(&bar0).map_err(|e| format!("{e:?}"))?,
    };
    let hv = ctx.hv;
    let me = ctx.me;
    if window == 1 {
        edu_reaches_window1(hv, ctx.edu_host, ctx.edu_pe, me, PROBE_SCRATCH)?;
    }
    let liobn = hv
        .create_window(
            ctx.edu_host.number,
            window_config(ctx.edu_pe, page_shift, levels, window),
            me,
        )
        .map_err(|e| format!("create_window: {e:?}"))?;
    hv::enter_partition(me);
    let result = run_scenario(hv, me, &device, liobn, page_shift, window);
    hv::leave_partition();
    let removed = hv.remove_window(liobn);
    result?;
    removed.map_err(|e| format!("remove_window: {e:?}"))?;
    let audit = hv.audit();
    if !audit.is_clean() {
        return Err(format!("audit: {:?}", audit.violations));
    }
    Ok(())
}

fn run_scenario(
    hv: &Hypervisor<'_>,
    me: &Partition,
    device: &Device<'_>,
    liobn: u64,
    page_shift: u32,
    window: u8,
) -> Result<(), String> {
    let page = 1u64 << page_shift;
    let bus_base = if window == 1 { WINDOW1_BUS } else { 0 };
    // Guest pages, aligned to the IOMMU page: A and B take device writes, C feeds reads.
    let (a, b, c) = if page >= 16 << 20 {
        (page, 2 * page, 3 * page)
    } else {
        (4 * page, 6 * page, 8 * page)
    };
    let x = bus_base + 3 * page;
    let y = bus_base + 5 * page;
    let host = |gra: u64| {
        me.to_host(gra, page)
            .ok_or(format!("{gra:#x} outside partition"))
    };
    let zeros = vec![0u8; PATTERN_BYTES];
    for gra in [a, b, c] {
        guest_write(me, gra, &zeros)?;
    }
    let first = pattern(0x11);
    guest_write(me, c, &first)?;

    // RAM -> device through a read-only TCE: edu's buffer gets C's pattern.
    expect("map X->C read-only", put(liobn, x, c | 1), H_SUCCESS)?;
    device.dma(DmaDirection::RamToBuffer, x)?;
    // Device -> RAM: map X->A read/write; the pattern must land in A.
    expect("map X->A", put(liobn, x, a | 3), H_SUCCESS)?;
    if hv.pages().pins(host(c)?) != 0 {
        return Err(String::from("C still pinned after X was remapped"));
    }
    if hv.pages().is_dirty(host(c)?) {
        return Err(String::from("C was only readable but is marked dirty"));
    }
    device.dma(DmaDirection::BufferToRam, x)?;
    if read_page(me, a)? != first {
        return Err(String::from("device write through X did not land in A"));
    }
    // H_GET_TCE returns what was put (in the partition's addresses).
    let (status, tce) = get(liobn, x);
    expect("get X", status, H_SUCCESS)?;
    if tce != a | 3 {
        return Err(format!("H_GET_TCE(X) = {tce:#x}, expected {:#x}", a | 3));
    }
    // Exchange: remap X to B. A loses its pin and is dirty; the next DMA lands in B only.
    let pins_before = hv.pages().pins(host(a)?);
    expect("remap X->B", put(liobn, x, b | 3), H_SUCCESS)?;
    let pins_after = hv.pages().pins(host(a)?);
    if pins_before != 1 || pins_after != 0 {
        return Err(format!(
            "A pins {pins_before} -> {pins_after}, expected 1 -> 0"
        ));
    }
    if !hv.pages().take_dirty(host(a)?) {
        return Err(String::from("A was writable but is not marked dirty"));
    }
    guest_write(me, a, &zeros)?;
    device.dma(DmaDirection::BufferToRam, x)?;
    if read_page(me, b)? != first || read_page(me, a)? != zeros {
        return Err(String::from(
            "after the exchange the DMA did not land in B alone",
        ));
    }
    // A read-only TCE blocks the device's write.
    guest_write(me, b, &zeros)?;
    expect("map X->B read-only", put(liobn, x, b | 1), H_SUCCESS)?;
    device.dma(DmaDirection::BufferToRam, x)?;
    if read_page(me, b)? != zeros {
        return Err(String::from("a read-only TCE let the device write"));
    }
    // A write-only TCE (what Linux maps DMA_FROM_DEVICE to) stays write-only: H_GET_TCE
    // returns W alone, the device's write lands, and its read through X is refused (QEMU's
    // PHB3 gives the refused read no data; edu's buffer does not get A's pattern).
    expect("map X->A write-only", put(liobn, x, a | 2), H_SUCCESS)?;
    let (status, tce) = get(liobn, x);
    expect("get X write-only", status, H_SUCCESS)?;
    if tce != a | 2 {
        return Err(format!("H_GET_TCE(X) = {tce:#x}, expected {:#x}", a | 2));
    }
    device.dma(DmaDirection::BufferToRam, x)?;
    if read_page(me, a)? != first {
        return Err(String::from("a write-only TCE blocked the device's write"));
    }
    let secret = pattern(0x33);
    guest_write(me, a, &secret)?;
    device.dma(DmaDirection::RamToBuffer, x)?;
    expect("map Y->B", put(liobn, y, b | 3), H_SUCCESS)?;
    device.dma(DmaDirection::BufferToRam, y)?;
    if read_page(me, b)? == secret {
        return Err(String::from("a write-only TCE let the device read A"));
    }
    expect("clear Y", put(liobn, y, 0), H_SUCCESS)?;
    hv.pages().take_dirty(host(a)?);
    expect("map X->B read-only again", put(liobn, x, b | 1), H_SUCCESS)?;
    if !hv.pages().take_dirty(host(a)?) {
        return Err(String::from(
            "A was mapped write-only but is not marked dirty after release",
        ));
    }
    guest_write(me, a, &zeros)?;
    guest_write(me, b, &zeros)?;
    // A cleared TCE blocks both directions.
    expect("clear X", put(liobn, x, 0), H_SUCCESS)?;
    device.dma(DmaDirection::BufferToRam, x)?;
    if read_page(me, b)? != zeros {
        return Err(String::from("a cleared TCE let the device write"));
    }
    let second = pattern(0x5a);
    guest_write(me, c, &second)?;
    // Y -> A writable, to see what edu's buffer holds after a read through cleared X.
    expect("map Y->A", put(liobn, y, a | 3), H_SUCCESS)?;
    device.dma(DmaDirection::RamToBuffer, x)?;
    device.dma(DmaDirection::BufferToRam, y)?;
    if read_page(me, a)? == second {
        return Err(String::from("a cleared TCE let the device read C"));
    }
    expect("clear Y", put(liobn, y, 0), H_SUCCESS)?;
    if hv.pages().total_pins() != 0 {
        return Err(format!(
            "{} pins left after clearing every TCE",
            hv.pages().total_pins()
        ));
    }
    Ok(())
}

fn tce_4k_1level_window0(platform: &Platform) -> Result<(), String> {
    dma_scenario(platform, 12, 1, 0)
}

fn tce_64k_1level_window0(platform: &Platform) -> Result<(), String> {
    dma_scenario(platform, 16, 1, 0)
}

fn tce_4k_2level_window0(platform: &Platform) -> Result<(), String> {
    dma_scenario(platform, 12, 2, 0)
}

fn tce_4k_1level_window1(platform: &Platform) -> Result<(), String> {
    dma_scenario(platform, 12, 1, 1)
}

fn tce_16m_1level_window0(platform: &Platform) -> Result<(), String> {
    dma_scenario(platform, 24, 1, 0)
}

/// Bad LIOBN, bad ioba and bad TCE each get H_PARAMETER and leave the table, the pins, the
/// kill counters and the partition's memory exactly as they were.
fn hostile_arguments(platform: &Platform) -> Result<(), String> {
    let ctx = context(platform)?;
    let (hv, me) = (ctx.hv, ctx.me);
    let liobn = hv
        .create_window(ctx.edu_host.number, window_config(ctx.edu_pe, 12, 1, 0), me)
        .map_err(|e| format!("create_window: {e:?}"))?;
    hv::enter_partition(me);
    let result = (|| {
        let page = 0x1000u64;
        let x = 7 * page;
        let mapped = 2 * page;
        expect("map X", put(liobn, x, mapped | 3), H_SUCCESS)?;
        let marker = pattern(0x77);
        guest_write(me, mapped, &marker)?;
        let snapshot = |hv: &Hypervisor<'_>| {
            (
                get(liobn, x),
                hv.pages().total_pins(),
                hv.phb(ctx.edu_host.number).map(|p| p.kill_counts().stores),
            )
        };
        let before = snapshot(hv);
        let partition_end = PARTITION_BYTES;
        let bad_calls: [(&str, u64, u64, u64); 11] = [
            ("foreign LIOBN", ctx.foreign_liobn, x, mapped | 3),
            ("unknown LIOBN", 0x1234_5678, x, mapped | 3),
            ("LIOBN past the TVT", liobn | 0xFFFF, x, mapped | 3),
            ("misaligned ioba", liobn, x + 8, mapped | 3),
            ("ioba past the window", liobn, 1 << 30, mapped | 3),
            ("ioba wraps", liobn, !0xFFF, mapped | 3),
            ("TCE past the partition", liobn, x, partition_end | 3),
            ("TCE at the last byte", liobn, x, (partition_end - 8) | 3),
            ("misaligned TCE", liobn, x, (mapped + 0x800) | 3),
            ("TCE into firmware", liobn, x, (1u64 << 40) | 3),
            ("TCE with reserved bits", liobn, x, mapped | 0x400 | 3),
        ];
        for (what, l, ioba, tce) in bad_calls {
            expect(what, put(l, ioba, tce), H_PARAMETER)?;
            let now = snapshot(hv);
            if now != before {
                return Err(format!("{what}: state changed from {before:?} to {now:?}"));
            }
        }
        expect(
            "get with foreign LIOBN",
            get(ctx.foreign_liobn, x).0,
            H_PARAMETER,
        )?;
        expect("get past the window", get(liobn, 1 << 30).0, H_PARAMETER)?;
        if read_page(me, mapped)? != marker {
            return Err(String::from("partition memory changed"));
        }
        expect("clear X", put(liobn, x, 0), H_SUCCESS)
    })();
    hv::leave_partition();
    let removed = hv.remove_window(liobn);
    result?;
    removed.map_err(|e| format!("remove_window: {e:?}"))?;
    Ok(())
}

static MISALIGNED: Once<Result<&'static Partition, String>> = Once::new();

/// Issue 8, defect 1: a 64K window over a partition whose host base is only 4 KiB aligned.
/// Every guest page of 64 KiB then sits on a misaligned host address, and the PHB would drop
/// the low bits (QEMU `pnv_phb3_translate_tve` masks with the page size) and let edu reach
/// memory below the partition. H_PUT_TCE, H_STUFF_TCE and H_PUT_TCE_INDIRECT must refuse it
/// with H_PARAMETER and change nothing (entries, pins and dirty bits, kill stores, memory).
fn large_pages_over_misaligned_partition(platform: &Platform) -> Result<(), String> {
    let ctx = context(platform)?;
    let hv = ctx.hv;
    let part = *MISALIGNED
        .call_once(|| {
            let (pool, pool_end) = platform.partition_pool;
            if pool + MISALIGNED_POOL_OFFSET + MISALIGNED_PARTITION_BYTES > pool_end {
                return Err(String::from("partition pool too small"));
            }
            hv::add_partition(MISALIGNED_PARTITION_BYTES, pool + MISALIGNED_POOL_OFFSET)
        })
        .as_ref()
        .map_err(String::clone)?;
    let page = 64u64 << 10;
    if part.host_base() & (page - 1) == 0 || part.can_map_pages_of(page) {
        return Err(format!(
            "the test partition at {:#x} is 64K aligned",
            part.host_base()
        ));
    }
    let liobn = hv
        .create_window(
            ctx.edu_host.number,
            window_config(ctx.edu_pe, 16, 1, 0),
            part,
        )
        .map_err(|e| format!("create_window: {e:?}"))?;
    let bar0 = edu_bar0(ctx.edu_host)?;
    let device = Device {
        edu: Edu::new(&bar0).map_err(|e| format!("{e:?}"))?,
    };
    hv::enter_partition(part);
    let result = (|| {
        let list = 0x2000u64;
        let mut entries = Vec::new();
        for tce in [page | 3, (2 * page) | 1, (3 * page) | 2] {
            entries.extend_from_slice(&u64::to_be_bytes(tce));
        }
        guest_write(part, list, &entries)?;
        let marker = pattern(0x42);
        guest_write(part, 0, &marker)?;
        let state = |hv: &Hypervisor<'_>| {
            let mut records = Vec::new();
            hv.pages().copy_records(&mut records);
            let entries: Vec<(i64, u64)> = (0..4).map(|i| get(liobn, i * page)).collect();
            let kills = hv.phb(ctx.edu_host.number).map(|p| p.kill_counts().stores);
            (records, entries, kills)
        };
        let before = state(hv);
        let calls: [(&str, u64, [u64; 4]); 4] = [
            ("H_PUT_TCE of guest page 0", H_PUT_TCE, [liobn, 0, 3, 0]),
            (
                "H_PUT_TCE of guest page 64K",
                H_PUT_TCE,
                [liobn, page, page | 3, 0],
            ),
            ("H_STUFF_TCE", H_STUFF_TCE, [liobn, 0, page | 1, 4]),
            (
                "H_PUT_TCE_INDIRECT",
                H_PUT_TCE_INDIRECT,
                [liobn, 0, list, 3],
            ),
        ];
        for (what, opcode, args) in calls {
            expect(what, status(hcall(opcode, args)), H_PARAMETER)?;
            if state(hv) != before {
                return Err(format!("{what} was refused but changed the state"));
            }
        }
        // The device reaches nothing through the window.
        device.dma(DmaDirection::BufferToRam, 0)?;
        if read_page(part, 0)? != marker {
            return Err(String::from("the device wrote through a refused TCE"));
        }
        Ok(())
    })();
    hv::leave_partition();
    let removed = hv.remove_window(liobn);
    result?;
    match removed {
        Ok(0) => Ok(()),
        Ok(n) => Err(format!("the window held {n} TCEs")),
        Err(e) => Err(format!("remove_window: {e:?}")),
    }
}

fn unknown_opcode(platform: &Platform) -> Result<(), String> {
    let me = partitions(platform)?.me;
    hv::enter_partition(me);
    let got = status(hcall(0x7FF0, [0; 4]));
    hv::leave_partition();
    expect("opcode 0x7FF0", got, H_FUNCTION)
}
