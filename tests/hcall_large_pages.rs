//! Host tests of large IOMMU pages (64K, 16M) over partitions that are only 4 KiB aligned in
//! host memory (issue 8, defect 1).
//!
//! A partition needs only 4 KiB alignment of its host base, so with a 64K or 16M window an
//! aligned guest-real page can sit on a misaligned host address. The PHB drops the low bits of
//! the TCE's address (QEMU `pnv_phb3_translate_tve` masks with the IOMMU page size), so such a
//! TCE would let the device reach memory below the partition. H_PUT_TCE, H_STUFF_TCE and
//! H_PUT_TCE_INDIRECT must refuse it with H_PARAMETER and change nothing, as KVM does
//! (`kvmppc_tce_validate` → `mm_iommu_ua_to_hpa` with the IOMMU page shift); QUERY offers
//! only the page sizes the caller can use and CREATE refuses the others with H_P2.

use tcefw::hcall::*;
use tcefw::hw::regio::RegIo;
use tcefw::iommu::WindowConfig;
use tcefw::model::{Phb3Model, Rig};

const PE: u16 = 3;
const RID: u16 = 3; // the rig's RTT maps RID r to PE r

fn args(words: &[u64]) -> [u64; HCALL_ARGS] {
    let mut a = [0; HCALL_ARGS];
    a[..words.len()].copy_from_slice(words);
    a
}

fn config(pe: u16, page_shift: u32) -> WindowConfig {
    WindowConfig {
        pe,
        window: 0,
        page_shift,
        window_size: 1 << 30,
        levels: 1,
    }
}

/// Everything a refused call must leave as it was, exactly.
#[derive(Debug, PartialEq, Eq)]
struct State {
    records: Vec<u32>,
    entries: Vec<u64>,
    kill_stores: u64,
    model_kills: (u64, u64, u64),
    frame_bytes: u64,
    table_bytes: u64,
    anomalies: u64,
}

fn state(rig: &Rig, hv: &Hypervisor, model: &Phb3Model, part: &Partition, liobn: u64) -> State {
    let mut records = Vec::new();
    rig.pages.copy_records(&mut records);
    let service = hv.phb(0).unwrap();
    let window = service.window(decode_liobn(liobn).unwrap().1).unwrap();
    let entries = (0..16)
        .map(|i| hv.h_get_tce(part, liobn, i * window.page_size()).unwrap())
        .collect();
    let seen = model.stats();
    State {
        records,
        entries,
        kill_stores: service.kill_counts().stores,
        model_kills: (seen.kill_one, seen.kill_pe, seen.kill_all),
        frame_bytes: rig.frames.stats().used_bytes,
        table_bytes: service.table_bytes(),
        anomalies: rig.pages.anomalies(),
    }
}

#[test]
fn large_pages_over_a_partition_misaligned_in_host_memory_are_refused_and_change_nothing() {
    // (IOMMU page shift, host offset of the partition from a 16 MiB boundary)
    for (page_shift, host_offset) in [
        (16, 0x1000),
        (16, 0x8000),
        (16, 0xF000),
        (24, 0x1000),
        (24, 0x1_0000),
        (24, 0x80_0000),
    ] {
        let rig = Rig::new(16 << 20, 64 << 20).unwrap();
        let model = rig.model(true);
        let hv = rig.hypervisor(&[&model as &dyn RegIo]);
        let part = hv
            .add_partition(0, 32 << 20, rig.ram.base() + host_offset)
            .unwrap();
        let page = 1u64 << page_shift;
        assert!(!part.can_map_pages_of(page));
        assert!(part.can_map_pages_of(4096));
        let liobn = hv.create_window(0, config(PE, page_shift), part).unwrap();
        // State worth protecting: a 4K window with a writable entry (clean, pinned) and a
        // released writable page (dirty).
        let small = hv.create_window(0, config(PE + 1, 12), part).unwrap();
        assert_eq!(hv.h_put_tce(part, small, 0, 0x3000 | 3), Ok(()));
        assert_eq!(hv.h_put_tce(part, small, 0x1000, 0x5000 | 3), Ok(()));
        assert_eq!(hv.h_put_tce(part, small, 0x1000, 0), Ok(()));
        // A valid list in the caller's memory for INDIRECT.
        let list = 0x2000u64;
        let entries: Vec<u8> = [page | 3, (2 * page) | 1, (3 * page) | 2]
            .iter()
            .flat_map(|t| t.to_be_bytes())
            .collect();
        assert!(model
            .memory()
            .write(part.to_host(list, 24).unwrap(), &entries));
        let before = state(&rig, &hv, &model, part, liobn);

        let calls: [(&str, u64, [u64; 4]); 5] = [
            ("put RW", H_PUT_TCE, [liobn, page, page | 3, 0]),
            ("put W-only", H_PUT_TCE, [liobn, 0, (2 * page) | 2, 0]),
            ("stuff 4", H_STUFF_TCE, [liobn, 0, page | 1, 4]),
            ("stuff 1", H_STUFF_TCE, [liobn, 4 * page, page | 3, 1]),
            ("indirect 3", H_PUT_TCE_INDIRECT, [liobn, 0, list, 3]),
        ];
        for (what, opcode, words) in calls {
            let ret = hv.dispatch(part, opcode, &args(&words));
            assert_eq!(
                ret.status, H_PARAMETER,
                "{what}: {page_shift}-bit page over host offset {host_offset:#x} accepted"
            );
            assert_eq!(ret.out, [0; HCALL_RETS]);
            assert_eq!(
                state(&rig, &hv, &model, part, liobn),
                before,
                "{what}: a refused call changed something"
            );
        }
        // Nothing reaches the device: the window translates nothing.
        assert!(model.dma_write(RID, page, b"x").is_err());
        assert_eq!(model.stats().violations, 0);
        // Clears are still allowed (they map nothing).
        assert_eq!(
            hv.dispatch(part, H_STUFF_TCE, &args(&[liobn, 0, 0, 16]))
                .status,
            H_SUCCESS
        );
        let report = rig.audit(&hv);
        assert!(report.is_clean(), "{report:?}");
    }
}

#[test]
fn large_pages_over_an_aligned_partition_are_accepted() {
    // The control: the same calls over a partition whose host offset is page aligned.
    for (page_shift, host_offset) in [(16, 0x1_0000), (16, 0x30_0000), (24, 0)] {
        let rig = Rig::new(16 << 20, 64 << 20).unwrap();
        let model = rig.model(true);
        let hv = rig.hypervisor(&[&model as &dyn RegIo]);
        let part = hv
            .add_partition(0, 32 << 20, rig.ram.base() + host_offset)
            .unwrap();
        let page = 1u64 << page_shift;
        assert!(part.can_map_pages_of(page));
        let liobn = hv.create_window(0, config(PE, page_shift), part).unwrap();
        assert_eq!(
            hv.dispatch(part, H_PUT_TCE, &args(&[liobn, page, page | 3]))
                .status,
            H_SUCCESS
        );
        model.dma_write(RID, page + 8, b"aligned").unwrap();
        let mut seen = [0u8; 7];
        assert!(model
            .memory()
            .read(part.to_host(page, 8).unwrap() + 8, &mut seen));
        assert_eq!(&seen, b"aligned", "the device lands inside the partition");
        assert_eq!(
            hv.dispatch(part, H_PUT_TCE, &args(&[liobn, page, 0]))
                .status,
            H_SUCCESS
        );
        let report = rig.audit(&hv);
        assert!(report.is_clean() && report.total_pins == 0, "{report:?}");
    }
}

#[test]
fn query_offers_only_usable_page_sizes_and_create_refuses_the_others() {
    // (guest base, size, host offset from a 16 MiB boundary, expected query mask)
    let cases: [(u64, u64, u64, u64); 7] = [
        (0, 32 << 20, 0, 0x7),
        (0, 32 << 20, 0x1000, 0x1),
        (0, 32 << 20, 0x1_0000, 0x3),
        (0, 8 << 20, 0, 0x3),            // no whole 16M page fits
        (0x1000, 32 << 20, 0x1000, 0x7), // offset aligned; an aligned 16M page fits
        (0x1000, 16 << 20, 0x1000, 0x3), // offset aligned; no whole 16M page fits
        (0, 0x8000, 0, 0x1),             // smaller than one 64K page
    ];
    for (guest, size, host_offset, mask) in cases {
        let rig = Rig::new(16 << 20, 64 << 20).unwrap();
        let model = rig.model(true);
        let hv = rig.hypervisor(&[&model as &dyn RegIo]);
        let part = hv
            .add_partition(guest, size, rig.ram.base() + host_offset)
            .unwrap();
        let handle = hv.grant_pe(part, 0, PE).unwrap();
        let query = hv.dispatch(part, H_TCEFW_QUERY_PE_DMA_WINDOW, &args(&[handle]));
        assert_eq!(query.status, H_SUCCESS);
        assert_eq!(
            query.out[2], mask,
            "guest {guest:#x} size {size:#x} host offset {host_offset:#x}"
        );
        for (bit, shift) in [(1u64, 12u64), (2, 16), (4, 24)] {
            let windows = hv.phb(0).unwrap().windows_of(PE);
            let frames = rig.frames.stats().used_bytes;
            let ret = hv.dispatch(
                part,
                H_TCEFW_CREATE_PE_DMA_WINDOW,
                &args(&[handle, shift, 30, 2]),
            );
            if mask & bit != 0 {
                assert_eq!(ret.status, H_SUCCESS, "page shift {shift}");
                let removed = hv.dispatch(part, H_TCEFW_REMOVE_PE_DMA_WINDOW, &args(&[ret.out[0]]));
                assert_eq!(removed.status, H_SUCCESS);
            } else {
                assert_eq!(ret.status, H_P2, "page shift {shift} is unusable");
                assert_eq!(hv.phb(0).unwrap().windows_of(PE), windows);
                assert_eq!(rig.frames.stats().used_bytes, frames);
            }
        }
        let report = rig.audit(&hv);
        assert!(report.is_clean(), "{report:?}");
    }
}

#[test]
fn the_pin_watch_checks_what_a_cached_tce_actually_reaches() {
    // A 64K TCE whose host address is 4 KiB past a 64K boundary, planted behind the
    // hypervisor's back with its 16 frames pinned as 4K pages: the frames the firmware meant
    // are all pinned, but the PHB drops the low bits and reaches the 64K page below, whose
    // first frame nobody pins. The watch must see that.
    let rig = Rig::new(16 << 20, 32 << 20).unwrap();
    let model = rig.model(true);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let part = hv.add_partition(0, 16 << 20, rig.ram.base()).unwrap();
    let liobn = hv.create_window(0, config(PE, 16), part).unwrap();
    let page = 64u64 << 10;
    assert_eq!(hv.h_put_tce(part, liobn, page, (2 * page) | 3), Ok(()));
    let meant = part.host_base() + 2 * page + 0x1000;
    for f in 0..16 {
        rig.pages.pin(meant + f * 0x1000, 0x1000).unwrap();
    }
    let service = hv.phb(0).unwrap();
    let window = service.window(decode_liobn(liobn).unwrap().1).unwrap();
    let old = window
        .table()
        .exchange(1, tcefw::iommu::Tce::from_raw(meant | 3))
        .unwrap();
    rig.pages.unpin(old.addr(), page, true);
    drop(window);
    // The device uses the entry (the model caches it), then a register access runs the watch.
    let reached = model.translate(RID, page + 8, true).unwrap();
    assert_eq!(
        reached,
        part.host_base() + 2 * page + 8,
        "the PHB rounds down"
    );
    assert_eq!(model.stats().violations, 0);
    model.watch_now();
    assert!(
        model.stats().violations > 0,
        "the watch missed the real reach"
    );
    let seen = model.first_violation().unwrap();
    assert_eq!(seen.frame, part.host_base() + 2 * page);
    assert_eq!(seen.bus, page);
}
