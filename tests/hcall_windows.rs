//! Host tests of DMA window management for partitions (the private DDW hypercalls of
//! `tcefw::hcall::windows`), through `dispatch` against the PHB3 model:
//! - a grant gives the PE its default window; query reports the PE's resources;
//! - create picks the free TVE, its window translates DMA, a full PE gets H_RESOURCE;
//! - every create refusal returns its status (H_PARAMETER, H_P2, H_P3, H_P4, H_NO_MEM) and
//!   changes nothing;
//! - remove unmaps what the window still maps (after the kill), frees the table, and restores
//!   the default window when the last non-default window goes (LoPAR); H_NO_MEM for that
//!   restore changes nothing;
//! - reset leaves exactly a fresh default window;
//! - no partition can query, create, remove or reset on another partition's PE, and a PE
//!   cannot be granted twice;
//! - the opcodes sit in the platform range and clash with no known private hcall.

use tcefw::hcall::*;
use tcefw::hw::regio::RegIo;
use tcefw::iommu::tve::tvt_index;
use tcefw::iommu::{KillCounts, WindowConfig};
use tcefw::mm::FrameAllocator;
use tcefw::model::phb3::Phb3Model;
use tcefw::model::Rig;

const PAGE: u64 = 4096;
const PE: u16 = 3; // RTT maps RID r to PE r
const B_GUEST: u64 = 0x1000_0000;

fn args(words: &[u64]) -> [u64; HCALL_ARGS] {
    let mut a = [0; HCALL_ARGS];
    a[..words.len()].copy_from_slice(words);
    a
}

/// Everything a refused call must leave as it was.
#[derive(Debug, PartialEq)]
struct State {
    used_bytes: u64,
    used_blocks: u64,
    free_bytes: u64,
    records: Vec<u32>,
    kills: KillCounts,
    tvt: Vec<u64>,
    windows: usize,
    valid_tces: u64,
    table_bytes: u64,
    grants: Vec<(Option<u32>, bool)>,
}

fn state(rig: &Rig, hv: &Hypervisor, model: &Phb3Model) -> State {
    let frames = rig.frames.stats();
    let mut records = Vec::new();
    rig.pages.copy_records(&mut records);
    // Without the allocator check: one test hoards frames on purpose.
    let audit = hv.audit();
    assert!(audit.is_clean(), "{audit:?}");
    State {
        used_bytes: frames.used_bytes,
        used_blocks: frames.used_blocks,
        free_bytes: rig.frames.free_bytes(),
        records,
        kills: hv.phb(0).unwrap().kill_counts(),
        tvt: (0..512).map(|i| model.tve(i)).collect(),
        windows: audit.windows,
        valid_tces: audit.valid_tces,
        table_bytes: audit.table_bytes,
        grants: (0..16)
            .map(|pe| (hv.pe_grantee(0, pe), hv.has_default_window(0, pe)))
            .collect(),
    }
}

fn new_rig(table_bytes: usize) -> Rig {
    Rig::new(table_bytes, 32 << 20).unwrap()
}

fn partitions<'h>(rig: &Rig, hv: &'h Hypervisor<'_>) -> (&'h Partition, &'h Partition) {
    let a = hv.add_partition(0, 16 << 20, rig.ram.base()).unwrap();
    let b = hv
        .add_partition(B_GUEST, 8 << 20, rig.ram.base() + (24 << 20))
        .unwrap();
    (a, b)
}

fn create(
    hv: &Hypervisor,
    part: &Partition,
    handle: u64,
    ps: u64,
    ws: u64,
    lv: u64,
) -> HcallReturn {
    hv.dispatch(
        part,
        H_TCEFW_CREATE_PE_DMA_WINDOW,
        &args(&[handle, ps, ws, lv]),
    )
}

#[test]
fn grant_gives_a_default_window_and_query_reports_resources() {
    let rig = &new_rig(16 << 20);
    let model = rig.model(true);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let (a, b) = partitions(rig, &hv);
    let used = rig.frames.stats().used_bytes;
    let handle = hv.grant_pe(a, 0, PE).unwrap();
    assert_eq!(handle, pe_handle(0, PE));
    assert_eq!(decode_pe_handle(handle), Some((0, PE)));
    assert_eq!(hv.pe_grantee(0, PE), Some(a.id()));
    assert!(hv.has_default_window(0, PE));
    // The default window: 2 GiB of 4 KiB pages at bus 0, a 2-level table (8 KiB top level).
    assert_eq!(rig.frames.stats().used_bytes, used + 8192);
    let default = liobn(0, PE, 0);
    let window = hv.phb(0).unwrap().window(tvt_index(PE, 0)).unwrap();
    assert_eq!(
        (window.bus_start(), window.bus_size(), window.page_size()),
        (0, 2 << 30, PAGE)
    );
    drop(window);
    // It translates: map, DMA, read back.
    assert_eq!(hv.h_put_tce(a, default, 0x10_0000, 0x7000 | 3), Ok(()));
    model.dma_write(PE, 0x10_0010, b"default").unwrap();
    let mut seen = [0u8; 7];
    assert!(model.memory().read(a.host_base() + 0x7010, &mut seen));
    assert_eq!(&seen, b"default");

    let q = hv.dispatch(a, H_TCEFW_QUERY_PE_DMA_WINDOW, &args(&[handle]));
    assert_eq!(q.status, H_SUCCESS);
    assert_eq!(&q.out[..5], &[1, 1 << 47, 0x7, 5, 0]);
    assert_eq!(
        hv.h_query_pe_dma_window(a, handle),
        Ok(PeDmaQuery {
            windows_available: 1,
            largest_tces: 1 << 47,
            page_sizes: 0x7,
            max_levels: 5
        })
    );

    // Granting again to the same partition changes nothing; to another is refused.
    let before = state(rig, &hv, &model);
    assert_eq!(hv.grant_pe(a, 0, PE), Ok(handle));
    assert_eq!(hv.grant_pe(b, 0, PE), Err(SetupError::Forbidden));
    assert_eq!(state(rig, &hv, &model), before);
    // The firmware's own setup path cannot put another partition's window on it either.
    let cfg = WindowConfig {
        pe: PE,
        window: 1,
        page_shift: 12,
        window_size: 1 << 30,
        levels: 1,
    };
    assert_eq!(hv.create_window(0, cfg, b), Err(SetupError::Forbidden));
    assert_eq!(state(rig, &hv, &model), before);
    // Nor can a PE holding another partition's window be granted.
    let foreign = hv
        .create_window(0, WindowConfig { pe: 9, ..cfg }, b)
        .unwrap();
    assert_eq!(hv.grant_pe(a, 0, 9), Err(SetupError::Forbidden));
    hv.remove_window(foreign).unwrap();
    assert_eq!(hv.grant_pe(a, 1, PE), Err(SetupError::NoPhb));
    assert_eq!(hv.grant_pe(a, 0, 256), Err(SetupError::BadRange));
    assert!(rig.audit(&hv).is_clean());
    assert_eq!(model.stats().violations, 0);
}

#[test]
fn create_takes_the_free_tve_and_its_window_translates() {
    let rig = &new_rig(16 << 20);
    let model = rig.model(true);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let (a, _) = partitions(rig, &hv);
    let handle = hv.grant_pe(a, 0, PE).unwrap();
    // 64 KiB pages, 2^32 bytes, 3 levels: TVE 1 (the default holds TVE 0), at bus 2^59.
    let r = create(&hv, a, handle, 16, 32, 3);
    assert_eq!(r.status, H_SUCCESS);
    assert_eq!(&r.out[..4], &[liobn(0, PE, 1), 1 << 59, 1 << 32, 0]);
    let ddw = r.out[0];
    let tve = tcefw::iommu::tve::Tve::decode(model.tve(tvt_index(PE, 1))).unwrap();
    assert_eq!((tve.levels, tve.page_shift), (3, 16));
    let bus = (1u64 << 59) + 5 * 0x1_0000;
    assert_eq!(hv.h_put_tce(a, ddw, bus, 0x20_0000 | 3), Ok(()));
    model.dma_write(PE, bus + 0x100, b"ddw").unwrap();
    let mut seen = [0u8; 3];
    assert!(model.memory().read(a.host_base() + 0x20_0100, &mut seen));
    assert_eq!(&seen, b"ddw");
    assert_eq!(
        hv.h_query_pe_dma_window(a, handle)
            .unwrap()
            .windows_available,
        0
    );
    // Both TVEs in use: H_RESOURCE, nothing changed.
    let before = state(rig, &hv, &model);
    let r = create(&hv, a, handle, 12, 20, 1);
    assert_eq!(r.status, H_RESOURCE);
    assert_eq!(r.out, [0; HCALL_RETS]);
    assert_eq!(state(rig, &hv, &model), before);
    assert_eq!(model.stats().violations, 0);
}

#[test]
fn every_create_refusal_has_its_status_and_changes_nothing() {
    // A 2 MiB pool (the RTT takes 128 KiB of it): room for small tables only.
    let rig = &new_rig(2 << 20);
    let model = rig.model(true);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let (a, b) = partitions(rig, &hv);
    let handle = hv.grant_pe(a, 0, PE).unwrap();
    let theirs = hv.grant_pe(b, 0, PE + 1).unwrap();
    assert_eq!(hv.h_put_tce(a, liobn(0, PE, 0), 0, 0x5000 | 3), Ok(()));
    let before = state(rig, &hv, &model);
    let cases: &[(&str, [u64; 4], i64)] = &[
        ("another partition's PE", [theirs, 12, 30, 2], H_PARAMETER),
        ("an ungranted PE", [pe_handle(0, 7), 12, 30, 2], H_PARAMETER),
        ("an absent PHB", [pe_handle(5, PE), 12, 30, 2], H_PARAMETER),
        (
            "a LIOBN as handle",
            [liobn(0, PE, 0), 12, 30, 2],
            H_PARAMETER,
        ),
        (
            "handle with high bits",
            [handle | 1 << 32, 12, 30, 2],
            H_PARAMETER,
        ),
        ("handle PE 256", [handle | 0x100, 12, 30, 2], H_PARAMETER),
        ("zero handle", [0, 12, 30, 2], H_PARAMETER),
        ("page shift 13", [handle, 13, 30, 2], H_P2),
        ("page shift 11", [handle, 11, 30, 2], H_P2),
        ("page shift 28", [handle, 28, 40, 2], H_P2),
        ("page shift huge", [handle, 12 | 1 << 32, 30, 2], H_P2),
        ("window below page", [handle, 16, 15, 2], H_P3),
        ("window past 2^59", [handle, 12, 60, 5], H_P3),
        ("window shift huge", [handle, 12, u64::MAX, 5], H_P3),
        ("levels 0", [handle, 12, 30, 0], H_P4),
        ("levels 6", [handle, 12, 30, 6], H_P4),
        ("levels huge", [handle, 12, 30, u64::MAX], H_P4),
        ("one level of 2^28 entries", [handle, 12, 40, 1], H_P4),
        (
            "a 16 MiB level in a 2 MiB pool",
            [handle, 12, 33, 1],
            H_NO_MEM,
        ),
    ];
    for (what, a4, status) in cases {
        let r = create(&hv, a, a4[0], a4[1], a4[2], a4[3]);
        assert_eq!(r.status, *status, "{what}");
        assert_eq!(r.out, [0; HCALL_RETS], "{what}: no output on failure");
        assert_eq!(state(rig, &hv, &model), before, "{what} changed state");
    }
    // The smallest and the largest shapes that fit are accepted.
    let r = create(&hv, a, handle, 24, 24, 1);
    assert_eq!(r.status, H_SUCCESS, "one 16 MiB page");
    assert_eq!(hv.remove_window(r.out[0]), Ok(0));
    let r = create(&hv, a, handle, 12, 59, 5);
    assert_eq!(r.status, H_SUCCESS, "2^59 bytes in 5 levels");
    assert_eq!(hv.remove_window(r.out[0]), Ok(0));
    let mut after = state(rig, &hv, &model);
    after.kills = before.kills; // creating and removing windows kills the PE's cache
    assert_eq!(after, before);
    assert!(rig.audit(&hv).is_clean());
}

#[test]
fn remove_unmaps_after_the_kill_and_frees_everything() {
    let rig = &new_rig(16 << 20);
    let model = rig.model(true);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let (a, _) = partitions(rig, &hv);
    let handle = hv.grant_pe(a, 0, PE).unwrap();
    let start = state(rig, &hv, &model);
    let ddw = create(&hv, a, handle, 12, 36, 4).out[0];
    // Map 300 pages spread over several lower levels, writable; the device uses them.
    for i in 0..300u64 {
        let bus = (1u64 << 59) + i * (1 << 22);
        assert_eq!(
            hv.h_put_tce(a, ddw, bus, (0x40_0000 + i * PAGE) | 3),
            Ok(())
        );
        model.dma_write(PE, bus + 8, &i.to_be_bytes()).unwrap();
    }
    assert_eq!(rig.pages.total_pins(), 300);
    assert!(rig.frames.stats().used_bytes > start.used_bytes);
    // LoPAR makes a mapping left at removal the caller's fault; we unmap, and say how many.
    let r = hv.dispatch(a, H_TCEFW_REMOVE_PE_DMA_WINDOW, &args(&[ddw]));
    assert_eq!(r.status, H_SUCCESS);
    assert_eq!(
        &r.out[..2],
        &[300, 0],
        "300 unmapped; the default still exists"
    );
    assert_eq!(rig.pages.total_pins(), 0);
    assert!((0..300).all(|i| rig.pages.is_dirty(a.host_base() + 0x40_0000 + i * PAGE)));
    assert_eq!(model.tve(tvt_index(PE, 1)), 0);
    assert!(model.dma_write(PE, 1 << 59, b"x").is_err());
    assert_eq!(model.stats().violations, 0, "{:?}", model.first_violation());
    // Tables, pins and TVT as before the window; only kill counters moved.
    let mut after = state(rig, &hv, &model);
    after.kills = start.kills;
    let mut records = start.records.clone();
    for i in 0..300 {
        records[(0x40_0000 / PAGE + i) as usize] |= 1 << 31; // the dirty bits
    }
    assert_eq!(after, State { records, ..start });
    // A second remove of the same LIOBN, and a remove of the default by the wrong caller.
    let r = hv.dispatch(a, H_TCEFW_REMOVE_PE_DMA_WINDOW, &args(&[ddw]));
    assert_eq!(r.status, H_PARAMETER);
}

#[test]
fn removing_the_last_non_default_window_restores_the_default() {
    let rig = &new_rig(4 << 20);
    let model = rig.model(true);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let (a, _) = partitions(rig, &hv);
    let handle = hv.grant_pe(a, 0, PE).unwrap();
    let default = liobn(0, PE, 0);
    // Removing the default window (the last window, but the default): nothing restored.
    let r = hv.dispatch(a, H_TCEFW_REMOVE_PE_DMA_WINDOW, &args(&[default]));
    assert_eq!((r.status, r.out[0], r.out[1]), (H_SUCCESS, 0, 0));
    assert!(!hv.has_default_window(0, PE));
    assert_eq!(
        hv.h_query_pe_dma_window(a, handle)
            .unwrap()
            .windows_available,
        2
    );
    // A DDW now takes TVE 0 (bus 0), and is not the default.
    let r = create(&hv, a, handle, 16, 34, 2);
    assert_eq!(&r.out[..2], &[liobn(0, PE, 0), 0]);
    let ddw = r.out[0];
    assert!(!hv.has_default_window(0, PE));
    assert_eq!(hv.h_put_tce(a, ddw, 0x1_0000, 0x10_0000 | 3), Ok(()));
    // Removing it, the PE's last window, must restore the default; with no memory for the
    // default's table the call is refused and nothing changes.
    let mut hoard = Vec::new();
    while let Some(block) = rig.frames.alloc(4096) {
        hoard.push(block);
    }
    let before = state(rig, &hv, &model);
    let r = hv.dispatch(a, H_TCEFW_REMOVE_PE_DMA_WINDOW, &args(&[ddw]));
    assert_eq!((r.status, r.out), (H_NO_MEM, [0; HCALL_RETS]));
    assert_eq!(state(rig, &hv, &model), before);
    for block in hoard {
        rig.frames.free(block, 4096);
    }
    let r = hv.dispatch(a, H_TCEFW_REMOVE_PE_DMA_WINDOW, &args(&[ddw]));
    assert_eq!(r.status, H_SUCCESS);
    assert_eq!(
        &r.out[..2],
        &[1, liobn(0, PE, 0)],
        "1 unmapped, default restored"
    );
    assert!(hv.has_default_window(0, PE));
    let window = hv.phb(0).unwrap().window(tvt_index(PE, 0)).unwrap();
    assert_eq!((window.page_size(), window.bus_size()), (PAGE, 2 << 30));
    drop(window);
    // With the default and a DDW, removing the DDW restores nothing (not the last window).
    let ddw = create(&hv, a, handle, 12, 30, 1).out[0];
    let r = hv.dispatch(a, H_TCEFW_REMOVE_PE_DMA_WINDOW, &args(&[ddw]));
    assert_eq!(&r.out[..2], &[0, 0]);
    assert!(rig.audit(&hv).is_clean());
    assert_eq!(model.stats().violations, 0);
}

#[test]
fn reset_leaves_a_fresh_default_window_only() {
    let rig = &new_rig(16 << 20);
    let model = rig.model(true);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let (a, _) = partitions(rig, &hv);
    let handle = hv.grant_pe(a, 0, PE).unwrap();
    let fresh = state(rig, &hv, &model);
    let ddw = create(&hv, a, handle, 16, 32, 2).out[0];
    assert_eq!(hv.h_stuff_tce(a, ddw, 1 << 59, 0x30_0000 | 1, 40), Ok(()));
    assert_eq!(hv.h_put_tce(a, liobn(0, PE, 0), 0x2000, 0x9000 | 3), Ok(()));
    let r = hv.dispatch(a, H_TCEFW_RESET_PE_DMA_WINDOWS, &args(&[handle]));
    assert_eq!(r.status, H_SUCCESS);
    assert_eq!(&r.out[..2], &[liobn(0, PE, 0), 41]);
    let mut now = state(rig, &hv, &model);
    assert_eq!((now.windows, now.valid_tces), (1, 0));
    assert!(hv.has_default_window(0, PE));
    // Same shape, tables, pins (plus the dirty page) as right after the grant.
    now.kills = fresh.kills;
    now.tvt = fresh.tvt.clone(); // the new default table may sit elsewhere in the pool
    assert!(rig.pages.is_dirty(a.host_base() + 0x9000));
    rig.pages.take_dirty(a.host_base() + 0x9000);
    rig.pages.copy_records(&mut now.records);
    assert_eq!(now, fresh);
    assert_eq!(model.stats().violations, 0);
}

#[test]
fn no_partition_reaches_another_partitions_pe() {
    let rig = &new_rig(16 << 20);
    let model = rig.model(true);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let (a, b) = partitions(rig, &hv);
    let mine = hv.grant_pe(a, 0, PE).unwrap();
    let ddw = create(&hv, a, mine, 12, 30, 1).out[0];
    assert_eq!(hv.h_put_tce(a, ddw, 1 << 59, 0x4000 | 3), Ok(()));
    let before = state(rig, &hv, &model);
    for (what, opcode, a4) in [
        ("query", H_TCEFW_QUERY_PE_DMA_WINDOW, [mine, 0, 0, 0]),
        ("create", H_TCEFW_CREATE_PE_DMA_WINDOW, [mine, 12, 30, 1]),
        ("reset", H_TCEFW_RESET_PE_DMA_WINDOWS, [mine, 0, 0, 0]),
        ("remove ddw", H_TCEFW_REMOVE_PE_DMA_WINDOW, [ddw, 0, 0, 0]),
        (
            "remove default",
            H_TCEFW_REMOVE_PE_DMA_WINDOW,
            [liobn(0, PE, 0), 0, 0, 0],
        ),
        ("put", H_PUT_TCE, [ddw, 1 << 59, B_GUEST | 3, 0]),
        ("stuff", H_STUFF_TCE, [ddw, 1 << 59, 0, 1]),
        ("get", H_GET_TCE, [ddw, 1 << 59, 0, 0]),
    ] {
        let r = hv.dispatch(b, opcode, &args(&a4));
        assert_eq!((r.status, r.out), (H_PARAMETER, [0; HCALL_RETS]), "{what}");
        assert_eq!(state(rig, &hv, &model), before, "{what}");
    }
    // Revoked, the PE and everything on it go; then B may have it.
    assert_eq!(hv.revoke_pe(0, PE), Ok(1));
    assert_eq!(rig.pages.total_pins(), 0);
    assert_eq!(rig.table_bytes_in_use(), 0);
    let theirs = hv.grant_pe(b, 0, PE).unwrap();
    assert_eq!(theirs, mine, "the handle names the PE");
    let r = hv.dispatch(a, H_TCEFW_QUERY_PE_DMA_WINDOW, &args(&[mine]));
    assert_eq!(r.status, H_PARAMETER, "A lost it");
    assert!(rig.audit(&hv).is_clean());
}

#[test]
fn private_opcodes_sit_in_the_platform_range_and_clash_with_nothing() {
    let ours = [
        H_TCEFW_QUERY_PE_DMA_WINDOW,
        H_TCEFW_CREATE_PE_DMA_WINDOW,
        H_TCEFW_REMOVE_PE_DMA_WINDOW,
        H_TCEFW_RESET_PE_DMA_WINDOWS,
    ];
    assert_eq!(ours, [0xF200, 0xF204, 0xF208, 0xF20C]);
    // KVM/QEMU (H_RTAS, H_LOGICAL_MEMOP, H_CAS, H_UPDATE_DT, H_VOF_CLIENT) and pHyp
    // (H_GET_24X7_CATALOG_PAGE, H_GET_24X7_DATA, H_GET_PERF_COUNTER_INFO) private hcalls.
    let known = [
        0xF000, 0xF001, 0xF002, 0xF003, 0xF005, 0xF078, 0xF07C, 0xF080,
    ];
    for op in ours {
        assert!((0xF000..0xF400).contains(&op) && op % 4 == 0);
        assert!(!known.contains(&op));
    }
    let rig = new_rig(16 << 20);
    let model = rig.model(false);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let (a, _) = partitions(&rig, &hv);
    for op in known.iter().chain(&[0xF1FC, 0xF201, 0xF210, 0xF3FC]) {
        assert_eq!(
            hv.dispatch(a, *op, &args(&[])).status,
            H_FUNCTION,
            "{op:#x}"
        );
    }
}
