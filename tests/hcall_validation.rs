//! Host tests of the TCE hypercalls through the dispatcher, against the PHB3 model: the
//! end-to-end flows (map, remap with release and dirty, read-only, cleared, get),
//! and every validation path, each of which must return its PAPR status and leave tables,
//! pins, dirty bits, kill counters and allocator usage exactly as they were.

use tcefw::hcall::*;
use tcefw::hw::regio::RegIo;
use tcefw::iommu::{WindowConfig, MAX_BATCH};
use tcefw::model::{DmaFault, Rig};

const PAGE: u64 = 4096;
const RID: u16 = 3; // RTT maps RID r to PE r & 0xFF
const PE: u16 = 3;

fn args(words: &[u64]) -> [u64; HCALL_ARGS] {
    let mut a = [0; HCALL_ARGS];
    a[..words.len()].copy_from_slice(words);
    a
}

fn config(window: u8, page_shift: u32, levels: u32) -> WindowConfig {
    WindowConfig {
        pe: PE,
        window,
        page_shift,
        window_size: 1 << 30,
        levels,
    }
}

/// Everything a rejected call must leave unchanged.
#[derive(Debug, PartialEq)]
struct Snapshot {
    entries: Vec<u64>,
    total_pins: u64,
    dirty: Vec<bool>,
    kills: tcefw::iommu::KillCounts,
    used_bytes: u64,
    audit_tces: u64,
}

fn snapshot(rig: &Rig, hv: &Hypervisor, part: &Partition, liobn: u64, base: u64) -> Snapshot {
    let entries = (0..8)
        .map(|i| hv.h_get_tce(part, liobn, base + i * PAGE).unwrap())
        .collect();
    let dirty = (0..64)
        .map(|p| rig.pages.is_dirty(part.host_base() + p * PAGE))
        .collect();
    Snapshot {
        entries,
        total_pins: rig.pages.total_pins(),
        dirty,
        kills: hv.phb(0).unwrap().kill_counts(),
        used_bytes: rig.frames.stats().used_bytes,
        audit_tces: rig.audit(hv).valid_tces,
    }
}

#[test]
fn put_get_replace_readonly_clear_on_every_window_shape() {
    for (window, page_shift, levels) in [(0, 12, 1), (0, 16, 1), (0, 12, 2), (1, 12, 1), (1, 16, 3)]
    {
        let rig = Rig::new(32 << 20, 32 << 20).unwrap();
        let model = rig.model(true);
        let hv = rig.hypervisor(&[&model as &dyn RegIo]);
        let part = hv.add_partition(0, 16 << 20, rig.ram.base()).unwrap();
        let liobn = hv
            .create_window(0, config(window, page_shift, levels), part)
            .unwrap();
        let page = 1u64 << page_shift;
        let bus = if window == 1 { 1 << 59 } else { 0 } + 5 * page;
        let (a, b) = (2 * page, 7 * page);
        let host = |gra: u64| part.host_base() + gra;

        // Map X -> A (RW): the device's pattern lands in A.
        let r = hv.dispatch(part, H_PUT_TCE, &args(&[liobn, bus, a | 3]));
        assert_eq!(r.status, H_SUCCESS);
        model.dma_write(RID, bus + 16, b"pattern-one").unwrap();
        let mut seen = [0u8; 11];
        assert!(model.memory().read(host(a) + 16, &mut seen));
        assert_eq!(&seen, b"pattern-one");
        assert_eq!(rig.pages.pins(host(a)), 1);
        assert_eq!(
            hv.dispatch(part, H_GET_TCE, &args(&[liobn, bus])).out[0],
            a | 3
        );

        // Map X -> B: A is released and dirty; the next DMA lands in B and leaves A alone.
        let r = hv.dispatch(part, H_PUT_TCE, &args(&[liobn, bus, b | 3]));
        assert_eq!(r.status, H_SUCCESS);
        assert_eq!(rig.pages.pins(host(a)), 0);
        assert!(rig.pages.is_dirty(host(a)));
        assert!(
            rig.pages.is_dirty(host(a) + page - PAGE),
            "every frame of the page"
        );
        model.dma_write(RID, bus + 16, b"pattern-two").unwrap();
        assert!(model.memory().read(host(a) + 16, &mut seen));
        assert_eq!(&seen, b"pattern-one");
        assert!(model.memory().read(host(b) + 16, &mut seen));
        assert_eq!(&seen, b"pattern-two");

        // Read-only blocks device writes but allows reads (RAM -> device through the TCE).
        assert_eq!(
            hv.dispatch(part, H_PUT_TCE, &args(&[liobn, bus, b | 1]))
                .status,
            H_SUCCESS
        );
        assert!(
            rig.pages.is_dirty(host(b)),
            "the replaced W entry marks B dirty"
        );
        assert_eq!(
            rig.pages.pins(host(b)),
            1,
            "remapping the same page keeps one pin"
        );
        assert!(matches!(
            model.dma_write(RID, bus, b"x"),
            Err(DmaFault::Permission { .. })
        ));
        assert_eq!(model.dma_read(RID, bus + 16, 11).unwrap(), b"pattern-two");

        // Write-only stays write-only: H_GET_TCE returns W alone, the device may write A
        // but a device read through X faults.
        assert_eq!(
            hv.dispatch(part, H_PUT_TCE, &args(&[liobn, bus, a | 2]))
                .status,
            H_SUCCESS
        );
        assert_eq!(
            hv.dispatch(part, H_GET_TCE, &args(&[liobn, bus])).out[0],
            a | 2
        );
        assert!(matches!(
            model.dma_read(RID, bus + 16, 11),
            Err(DmaFault::Permission { write: false, .. })
        ));
        model.dma_write(RID, bus + 16, b"write-only!").unwrap();
        assert!(model.memory().read(host(a) + 16, &mut seen));
        assert_eq!(&seen, b"write-only!");
        // A's dirty bit from its first (R|W) mapping goes; the W-only one must set it again.
        rig.pages.take_dirty(host(a));

        // Cleared: DMA blocked both ways, and memory unchanged.
        assert_eq!(
            hv.dispatch(part, H_PUT_TCE, &args(&[liobn, bus, 0])).status,
            H_SUCCESS
        );
        assert!(
            rig.pages.is_dirty(host(a)),
            "a released write-only page is dirty"
        );
        assert!(model.dma_write(RID, bus, b"blocked").is_err());
        assert!(model.dma_read(RID, bus, 4).is_err());
        assert!(model.memory().read(host(a), &mut seen[..7]));
        assert_ne!(&seen[..7], b"blocked");
        assert_eq!(hv.dispatch(part, H_GET_TCE, &args(&[liobn, bus])).out[0], 0);

        let report = rig.audit(&hv);
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(rig.pages.total_pins(), 0);
        assert_eq!(model.stats().violations, 0);
    }
}

#[test]
fn unknown_opcodes_get_h_function() {
    let rig = Rig::new(16 << 20, 16 << 20).unwrap();
    let model = rig.model(true);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let part = hv.add_partition(0, 8 << 20, rig.ram.base()).unwrap();
    for opcode in [0, 4, 0x1D, 0x24, 0x134, 0x140, u64::MAX] {
        assert_eq!(hv.dispatch(part, opcode, &args(&[])).status, H_FUNCTION);
    }
}

#[test]
fn every_validation_failure_changes_nothing() {
    let rig = Rig::new(32 << 20, 32 << 20).unwrap();
    let model = rig.model(true);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let half = 16 << 20;
    let part = hv.add_partition(0, half, rig.ram.base()).unwrap();
    let other = hv.add_partition(0, half, rig.ram.base() + half).unwrap();
    let win_size = 1u64 << 24;
    let cfg = WindowConfig {
        pe: PE,
        window: 0,
        page_shift: 12,
        window_size: win_size,
        levels: 2,
    };
    let liobn = hv.create_window(0, cfg, part).unwrap();
    let cfg64 = WindowConfig {
        pe: 4,
        window: 1,
        page_shift: 16,
        window_size: win_size,
        levels: 1,
    };
    let liobn64 = hv.create_window(0, cfg64, part).unwrap();
    let others = hv
        .create_window(0, WindowConfig { pe: 9, ..cfg }, other)
        .unwrap();
    // Some state to protect: two valid entries, one dirty page.
    assert_eq!(hv.h_put_tce(part, liobn, 0, 0x5000 | 3), Ok(()));
    assert_eq!(hv.h_put_tce(part, liobn, PAGE, 0x6000 | 1), Ok(()));
    assert_eq!(hv.h_put_tce(part, liobn, 2 * PAGE, 0x7000 | 3), Ok(()));
    assert_eq!(hv.h_put_tce(part, liobn, 2 * PAGE, 0), Ok(()));
    // A 4 KiB-aligned list of valid TCEs in the caller's memory.
    let list_gra = 0x10_0000u64;
    let list_host = part.host_base() + list_gra;
    let fill_list = |values: &[u64]| {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
        assert!(model.memory().write(list_host, &bytes));
    };
    fill_list(&[0x8000 | 3; 8]);

    let before = snapshot(&rig, &hv, part, liobn, 0);
    let fw = rig.tables.base();
    let bad: Vec<(&str, u64, [u64; 4], i64)> = vec![
        // LIOBN not the caller's, unknown, malformed.
        (
            "other partition's liobn",
            H_PUT_TCE,
            [others, 0, 0x5000 | 3, 0],
            H_PARAMETER,
        ),
        (
            "unregistered liobn",
            H_PUT_TCE,
            [tcefw::hcall::liobn(0, 77, 0), 0, 0x5000 | 3, 0],
            H_PARAMETER,
        ),
        (
            "liobn of absent phb",
            H_PUT_TCE,
            [tcefw::hcall::liobn(5, PE, 0), 0, 0x5000 | 3, 0],
            H_PARAMETER,
        ),
        (
            "liobn above 32 bits",
            H_PUT_TCE,
            [liobn | 1 << 32, 0, 0x5000 | 3, 0],
            H_PARAMETER,
        ),
        ("liobn zero", H_PUT_TCE, [0, 0, 0x5000 | 3, 0], H_PARAMETER),
        (
            "get: other's liobn",
            H_GET_TCE,
            [others, 0, 0, 0],
            H_PARAMETER,
        ),
        // ioba misaligned, outside, overflowing.
        (
            "ioba misaligned",
            H_PUT_TCE,
            [liobn, 0x800, 0x5000 | 3, 0],
            H_PARAMETER,
        ),
        (
            "ioba at window end",
            H_PUT_TCE,
            [liobn, win_size, 0x5000 | 3, 0],
            H_PARAMETER,
        ),
        (
            "ioba far outside",
            H_PUT_TCE,
            [liobn, 1 << 40, 0x5000 | 3, 0],
            H_PARAMETER,
        ),
        (
            "ioba top page",
            H_PUT_TCE,
            [liobn, !0xFFF, 0x5000 | 3, 0],
            H_PARAMETER,
        ),
        (
            "ioba window 1 below start",
            H_PUT_TCE,
            [liobn64, 0, 0x10000 | 3, 0],
            H_PARAMETER,
        ),
        (
            "ioba 4K-aligned in a 64K window",
            H_PUT_TCE,
            [liobn64, (1 << 59) | 0x1000, 0x10000 | 3, 0],
            H_PARAMETER,
        ),
        (
            "ioba bit 59 masked would fit",
            H_PUT_TCE,
            [liobn, 1 << 59, 0x5000 | 3, 0],
            H_PARAMETER,
        ),
        (
            "get: ioba misaligned",
            H_GET_TCE,
            [liobn, 8, 0, 0],
            H_PARAMETER,
        ),
        (
            "get: ioba outside",
            H_GET_TCE,
            [liobn, win_size, 0, 0],
            H_PARAMETER,
        ),
        // TCE outside the caller's memory, into firmware, misaligned, reserved bits.
        (
            "tce past caller memory",
            H_PUT_TCE,
            [liobn, 0, half | 3, 0],
            H_PARAMETER,
        ),
        (
            "tce in other partition",
            H_PUT_TCE,
            [liobn, 0, (half + 0x1000) | 3, 0],
            H_PARAMETER,
        ),
        (
            "tce last page overflow",
            H_PUT_TCE,
            [liobn, 0, !0xFFF | 1, 0],
            H_PARAMETER,
        ),
        (
            "tce at firmware host addr",
            H_PUT_TCE,
            [liobn, 0, fw | 3, 0],
            H_PARAMETER,
        ),
        (
            "tce reserved bits",
            H_PUT_TCE,
            [liobn, 0, 0x5000 | 0x10 | 3, 0],
            H_PARAMETER,
        ),
        (
            "tce 4K-aligned in a 64K window",
            H_PUT_TCE,
            [liobn64, 1 << 59, 0x11000 | 3, 0],
            H_PARAMETER,
        ),
        (
            "tce 60K into a 64K page",
            H_PUT_TCE,
            [liobn64, 1 << 59, 0x2F000 | 3, 0],
            H_PARAMETER,
        ),
        // H_STUFF_TCE.
        ("stuff count > 512", H_STUFF_TCE, [liobn, 0, 0, 513], H_P4),
        (
            "stuff huge count",
            H_STUFF_TCE,
            [liobn, 0, 0, u64::MAX],
            H_P4,
        ),
        (
            "stuff run past window",
            H_STUFF_TCE,
            [liobn, win_size - PAGE, 0, 2],
            H_PARAMETER,
        ),
        (
            "stuff other's liobn",
            H_STUFF_TCE,
            [others, 0, 0, 1],
            H_PARAMETER,
        ),
        (
            "stuff bad tce",
            H_STUFF_TCE,
            [liobn, 0, half | 3, 4],
            H_PARAMETER,
        ),
        (
            "stuff misaligned ioba",
            H_STUFF_TCE,
            [liobn, 1, 0, 4],
            H_PARAMETER,
        ),
        // H_PUT_TCE_INDIRECT.
        (
            "indirect count > 512",
            H_PUT_TCE_INDIRECT,
            [liobn, 0, list_gra, 513],
            H_PARAMETER,
        ),
        (
            "indirect list misaligned",
            H_PUT_TCE_INDIRECT,
            [liobn, 0, list_gra + 8, 4],
            H_PARAMETER,
        ),
        (
            "indirect list outside",
            H_PUT_TCE_INDIRECT,
            [liobn, 0, half, 4],
            H_PARAMETER,
        ),
        (
            "indirect list straddles end",
            H_PUT_TCE_INDIRECT,
            [liobn, 0, half - 0x1000, 513],
            H_PARAMETER,
        ),
        (
            "indirect list in firmware",
            H_PUT_TCE_INDIRECT,
            [liobn, 0, fw, 4],
            H_PARAMETER,
        ),
        (
            "indirect run past window",
            H_PUT_TCE_INDIRECT,
            [liobn, win_size - PAGE, list_gra, 2],
            H_PARAMETER,
        ),
        (
            "indirect other's liobn",
            H_PUT_TCE_INDIRECT,
            [others, 0, list_gra, 2],
            H_PARAMETER,
        ),
    ];
    for (what, opcode, a, status) in &bad {
        let r = hv.dispatch(part, *opcode, &args(a));
        assert_eq!(r.status, *status, "{what}");
        assert_eq!(r.out, [0; HCALL_RETS], "{what}: no output on failure");
        assert_eq!(
            snapshot(&rig, &hv, part, liobn, 0),
            before,
            "{what} changed state"
        );
    }
    // One bad entry anywhere in an indirect list rejects the whole list.
    for bad_entry in [half | 3, fw | 3, 0x8800 | 3, 0x8000 | 0x100 | 1] {
        let mut list = [0x9000u64 | 3; 16];
        list[11] = bad_entry;
        fill_list(&list);
        let r = hv.dispatch(part, H_PUT_TCE_INDIRECT, &args(&[liobn, 0, list_gra, 16]));
        assert_eq!(r.status, H_PARAMETER, "entry {bad_entry:#x}");
        assert_eq!(snapshot(&rig, &hv, part, liobn, 0), before);
    }
    // Permission 00 ignores every other bit: it is a valid clear (of an absent entry here).
    let r = hv.dispatch(
        part,
        H_PUT_TCE,
        &args(&[liobn, 9 * PAGE, 0xDEAD_BEEF_0000_0FFC]),
    );
    assert_eq!(r.status, H_SUCCESS);
    assert!(rig.audit(&hv).is_clean());
    assert_eq!(model.stats().violations, 0);
    let _ = MAX_BATCH;
}

#[test]
fn stuff_and_indirect_map_and_clear_with_one_kill_batch() {
    let rig = Rig::new(32 << 20, 32 << 20).unwrap();
    let model = rig.model(true);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let part = hv.add_partition(0, 16 << 20, rig.ram.base()).unwrap();
    let cfg = WindowConfig {
        pe: PE,
        window: 1,
        page_shift: 12,
        window_size: 1 << 32,
        levels: 3,
    };
    let liobn = hv.create_window(0, cfg, part).unwrap();
    let bus = (1u64 << 59) + 0x40_0000;
    let list_gra = 0x20_0000u64;
    let list: Vec<u64> = (0..512u64).map(|i| (0x30_0000 + i * PAGE) | 3).collect();
    let bytes: Vec<u8> = list.iter().flat_map(|v| v.to_be_bytes()).collect();
    assert!(model.memory().write(part.host_base() + list_gra, &bytes));

    let kills = hv.phb(0).unwrap().kill_counts();
    let r = hv.dispatch(
        part,
        H_PUT_TCE_INDIRECT,
        &args(&[liobn, bus, list_gra, 512]),
    );
    assert_eq!(r.status, H_SUCCESS);
    let after = hv.phb(0).unwrap().kill_counts();
    assert_eq!(
        after.stores - kills.stores,
        1,
        "one kill-PE for 512 entries"
    );
    assert_eq!(after.batches - kills.batches, 1);
    for i in [0u64, 255, 511] {
        model
            .dma_write(RID, bus + i * PAGE, &i.to_be_bytes())
            .unwrap();
        let mut got = [0u8; 8];
        model
            .memory()
            .read(part.host_base() + 0x30_0000 + i * PAGE, &mut got);
        assert_eq!(u64::from_be_bytes(got), i);
        assert_eq!(
            hv.h_get_tce(part, liobn, bus + i * PAGE),
            Ok(list[i as usize])
        );
    }
    assert_eq!(rig.pages.total_pins(), 512);
    // A short run on this table (it decodes 32 address bits, so every entry has aliases below
    // the window-select bit 59) still pays one kill-PE: a kill-one would leave an alias cached
    // (docs/phb3-dma-bounds-and-kill.md; kill-one on an exact table: tests/kill_protocol.rs).
    let before = hv.phb(0).unwrap().kill_counts();
    assert_eq!(
        hv.dispatch(part, H_STUFF_TCE, &args(&[liobn, bus, 0, 3]))
            .status,
        H_SUCCESS
    );
    let after = hv.phb(0).unwrap().kill_counts();
    assert_eq!(
        (
            after.kill_one - before.kill_one,
            after.kill_pe - before.kill_pe
        ),
        (0, 1)
    );
    // Clear everything in one call: one kill-PE, every page released and dirty.
    assert_eq!(
        hv.dispatch(part, H_STUFF_TCE, &args(&[liobn, bus, 0, 512]))
            .status,
        H_SUCCESS
    );
    assert_eq!(rig.pages.total_pins(), 0);
    assert!(rig
        .pages
        .is_dirty(part.host_base() + 0x30_0000 + 511 * PAGE));
    assert!(model.dma_write(RID, bus + 511 * PAGE, b"x").is_err());
    // Stuff a mapping value: the same page pinned 100 times.
    assert_eq!(
        hv.dispatch(part, H_STUFF_TCE, &args(&[liobn, bus, 0x5000 | 1, 100]))
            .status,
        H_SUCCESS
    );
    assert_eq!(rig.pages.pins(part.host_base() + 0x5000), 100);
    assert!(rig.audit(&hv).is_clean());
    // Removing the window releases everything and frees every level.
    assert_eq!(hv.remove_window(liobn), Ok(100));
    assert_eq!(rig.pages.total_pins(), 0);
    assert_eq!(rig.table_bytes_in_use(), 0);
    assert_eq!(hv.phb(0).unwrap().table_bytes(), 0);
    assert_eq!(
        hv.dispatch(part, H_GET_TCE, &args(&[liobn, bus])).status,
        H_PARAMETER
    );
    assert_eq!(model.tve(PE as usize * 2 + 1), 0);
    assert_eq!(model.stats().violations, 0);
}

#[test]
fn partitions_cannot_overlap_firmware_or_each_other() {
    let rig = Rig::new(16 << 20, 16 << 20).unwrap();
    let model = rig.model(false);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let base = rig.ram.base();
    assert_eq!(hv.add_partition(0, 0, base), Err(SetupError::BadRange));
    assert_eq!(hv.add_partition(0, 0x800, base), Err(SetupError::BadRange));
    assert_eq!(
        hv.add_partition(0, 32 << 20, base),
        Err(SetupError::BadRange)
    );
    assert_eq!(
        hv.add_partition(0, 1 << 20, rig.tables.base()),
        Err(SetupError::BadRange)
    );
    assert!(hv.add_partition(0, 8 << 20, base).is_ok());
    assert_eq!(
        hv.add_partition(0, 8 << 20, base + (4 << 20)),
        Err(SetupError::Overlap)
    );
}
