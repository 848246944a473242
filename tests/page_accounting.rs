//! Host tests of the page accounting (issue 8, defect 7: O(1) pin and release per IOMMU page)
//! and of the dirty rule of the TCE protocol ("released from a writable TCE ⇒ dirty; released
//! from a read-only one, or never mapped ⇒ clean"), through the dispatcher and the PHB3 model.
//!
//! O(1) is checked without a clock: a pin or a release of a page of any size must change
//! exactly one accounting record (before, a 16M page changed 4096). The cost figures are in
//! `cargo bench --bench pages`.

use tcefw::hcall::*;
use tcefw::hw::regio::RegIo;
use tcefw::iommu::{Error, WindowConfig};
use tcefw::model::Rig;

const K4: u64 = 4 << 10;
const K64: u64 = 64 << 10;
const M16: u64 = 16 << 20;

fn records(rig: &Rig) -> Vec<u32> {
    let mut out = Vec::new();
    rig.pages.copy_records(&mut out);
    out
}

fn changed(a: &[u32], b: &[u32]) -> usize {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).filter(|(x, y)| x != y).count()
}

fn args(words: &[u64]) -> [u64; HCALL_ARGS] {
    let mut a = [0; HCALL_ARGS];
    a[..words.len()].copy_from_slice(words);
    a
}

#[test]
fn a_pin_or_release_of_any_page_size_changes_one_record() {
    let rig = Rig::new(16 << 20, 64 << 20).unwrap();
    let base = rig.ram.base();
    for size in [K4, K64, M16] {
        let pa = base + 2 * M16;
        let before = records(&rig);
        rig.pages.pin(pa, size).unwrap();
        let pinned = records(&rig);
        assert_eq!(
            changed(&before, &pinned),
            1,
            "pinning a {size:#x}-byte page changed {} records",
            changed(&before, &pinned)
        );
        rig.pages.unpin(pa, size, true);
        let released = records(&rig);
        assert_eq!(
            changed(&pinned, &released),
            1,
            "releasing a {size:#x}-byte page changed {} records",
            changed(&pinned, &released)
        );
    }
    // Through the hypercall: one H_STUFF_TCE of 512 x 16M pages (the same page 512 times)
    // changes one record, and so does the clear that releases them.
    let model = rig.model(false);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let part = hv.add_partition(0, 64 << 20, base).unwrap();
    let cfg = WindowConfig {
        pe: 1,
        window: 0,
        page_shift: 24,
        window_size: 512 * M16,
        levels: 1,
    };
    let liobn = hv.create_window(0, cfg, part).unwrap();
    let before = records(&rig);
    let map = hv.dispatch(part, H_STUFF_TCE, &args(&[liobn, 0, M16 | 3, 512]));
    assert_eq!(map.status, H_SUCCESS);
    let mapped = records(&rig);
    assert_eq!(changed(&before, &mapped), 1);
    assert_eq!(rig.pages.page_pins(base + M16, M16), 512);
    assert_eq!(rig.pages.total_pins(), 512, "one pin per valid TCE");
    assert_eq!(rig.pages.pins(base + M16 + 0x12_3000), 512);
    assert!(rig.audit(&hv).is_clean());
    let clear = hv.dispatch(part, H_STUFF_TCE, &args(&[liobn, 0, 0, 512]));
    assert_eq!(clear.status, H_SUCCESS);
    assert_eq!(changed(&mapped, &records(&rig)), 1);
    assert_eq!(rig.pages.total_pins(), 0);
    assert!(rig.pages.is_dirty(base + M16 + 0xFF_F000));
}

#[test]
fn pins_and_dirty_marks_are_exact_per_frame_across_page_sizes() {
    let rig = Rig::new(16 << 20, 64 << 20).unwrap();
    let base = rig.ram.base();
    let big = base + M16; // one 16M page
    let mid = big + 5 * K64; // a 64K page inside it
    let small = mid + 3 * K4; // a 4K frame inside that
    rig.pages.pin(big, M16).unwrap();
    rig.pages.pin(mid, K64).unwrap();
    rig.pages.pin(mid, K64).unwrap();
    rig.pages.pin(small, K4).unwrap();
    assert_eq!(rig.pages.pins(small), 4, "16M + 2 x 64K + 4K");
    assert_eq!(rig.pages.pins(small + K4), 3);
    assert_eq!(rig.pages.pins(big), 1);
    assert_eq!(rig.pages.pins(big + M16 - 1), 1);
    assert_eq!(rig.pages.pins(big + M16), 0);
    assert_eq!(rig.pages.total_pins(), 4);
    assert_eq!(rig.pages.first_unpinned(big, M16), None);
    assert_eq!(rig.pages.first_unpinned(big, M16 + K4), Some(big + M16));

    // Releasing the 16M page read-only leaves it clean; the 4K one writable makes only its
    // frame dirty.
    rig.pages.unpin(big, M16, false);
    rig.pages.unpin(small, K4, true);
    assert!(!rig.pages.is_dirty(big));
    assert!(rig.pages.is_dirty(small));
    assert!(!rig.pages.is_dirty(small + K4));
    assert_eq!(rig.pages.first_unpinned(big, M16), Some(big));
    assert_eq!(rig.pages.first_unpinned(mid, K64), None);

    // A 64K release marks all 16 of its frames, and taking one frame's mark leaves the other
    // 15 dirty.
    rig.pages.unpin(mid, K64, true);
    for f in 0..16 {
        assert!(rig.pages.is_dirty(mid + f * K4), "frame {f}");
    }
    assert!(!rig.pages.is_dirty(mid - K4) && !rig.pages.is_dirty(mid + K64));
    assert!(rig.pages.take_dirty(mid + 7 * K4));
    assert!(!rig.pages.is_dirty(mid + 7 * K4));
    assert!(!rig.pages.take_dirty(mid + 7 * K4), "taken once");
    for f in (0..16).filter(|&f| f != 7) {
        assert!(rig.pages.is_dirty(mid + f * K4), "frame {f} stays dirty");
    }
    // A 16M release marks 4096 frames; taking one leaves the other 4095.
    rig.pages.pin(big, M16).unwrap();
    rig.pages.unpin(big, M16, true);
    assert!(rig.pages.take_dirty(big + 0x80_0000));
    assert!(!rig.pages.is_dirty(big + 0x80_0000));
    let dirty = (0..4096)
        .filter(|f| rig.pages.is_dirty(big + f * K4))
        .count();
    assert_eq!(dirty, 4095);
    // Still pinned: the second 64K pin.
    assert_eq!(rig.pages.pins(mid), 1);
    rig.pages.unpin(mid, K64, false);
    assert_eq!(rig.pages.total_pins(), 0);
    assert_eq!(rig.pages.anomalies(), 0);
}

#[test]
fn refused_pins_and_releases_change_nothing_and_bad_releases_are_counted() {
    let rig = Rig::new(16 << 20, 32 << 20).unwrap();
    let base = rig.ram.base();
    let before = records(&rig);
    assert_eq!(rig.pages.pin(base + K4, K64), Err(Error::Misaligned));
    assert_eq!(rig.pages.pin(base, 8 << 10), Err(Error::BadConfig));
    assert_eq!(rig.pages.pin(base, 2 << 20), Err(Error::BadConfig));
    assert_eq!(rig.pages.pin(base + (32 << 20), K4), Err(Error::NotInRam));
    assert_eq!(rig.pages.pin(base + M16, 2 * M16), Err(Error::BadConfig));
    assert_eq!(rig.pages.pin(base - M16, M16), Err(Error::NotInRam));
    assert!(records(&rig) == before, "a refused pin changed a record");
    // Releases that match no pin: unpinned, wrong size (the pin was 64K), misaligned, outside.
    rig.pages.pin(base, K64).unwrap();
    let pinned = records(&rig);
    rig.pages.unpin(base + K64, K64, true);
    rig.pages.unpin(base, K4, true);
    rig.pages.unpin(base, M16, true);
    rig.pages.unpin(base + K4, K64, true);
    rig.pages.unpin(base + (64 << 20), K4, true);
    assert_eq!(
        changed(&records(&rig), &pinned),
        0,
        "a refused release marks nothing"
    );
    assert_eq!(rig.pages.anomalies(), 5);
    rig.pages.unpin(base, K64, false);
    assert_eq!(rig.pages.total_pins(), 0);
}

/// The dirty rule through every release path: H_PUT_TCE (replace, clear), H_STUFF_TCE (clear),
/// H_PUT_TCE_INDIRECT (replace) and window removal, on 4K, 64K and 16M pages. A page released
/// from a writable TCE (RW or W-only) is dirty; one released from a read-only TCE, and one
/// never mapped, stays clean. Fails if every released page were marked dirty, or none.
#[test]
fn released_read_only_pages_stay_clean_and_writable_ones_turn_dirty() {
    for page_shift in [12u32, 16, 24] {
        let page = 1u64 << page_shift;
        let rig = Rig::new(16 << 20, 256 << 20).unwrap();
        let model = rig.model(true);
        let hv = rig.hypervisor(&[&model as &dyn RegIo]);
        let part = hv.add_partition(0, 256 << 20, rig.ram.base()).unwrap();
        let cfg = WindowConfig {
            pe: 2,
            window: 0,
            page_shift,
            window_size: 1 << 32,
            levels: 2,
        };
        let liobn = hv.create_window(0, cfg, part).unwrap();
        let host = |n: u64| part.host_base() + n * page;
        let gra = |n: u64| n * page;
        let bus = |n: u64| n * page;
        let put = |slot: u64, tce: u64| {
            let r = hv.dispatch(part, H_PUT_TCE, &args(&[liobn, bus(slot), tce]));
            assert_eq!(r.status, H_SUCCESS);
        };
        // Pages 1..=8 go through every path; page 9 is never mapped.
        // PUT replace: 1 (RO) then 2 (RW) in slot 0; 2 replaced by 3 (W-only).
        put(0, gra(1) | 1);
        put(0, gra(2) | 3);
        put(0, gra(3) | 2);
        // PUT clear: 3 (W-only) cleared; 4 (RO) cleared.
        put(0, 0);
        put(1, gra(4) | 1);
        put(1, 0);
        // STUFF over four slots of 5 (RO), then a clear of them.
        let r = hv.dispatch(part, H_STUFF_TCE, &args(&[liobn, bus(2), gra(5) | 1, 4]));
        assert_eq!(r.status, H_SUCCESS);
        let r = hv.dispatch(part, H_STUFF_TCE, &args(&[liobn, bus(2), 0, 4]));
        assert_eq!(r.status, H_SUCCESS);
        // INDIRECT: 6 (RO) and 7 (RW), then replaced by clears.
        let list = gra(11);
        let write_list = |values: &[u64]| {
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
            assert!(model
                .memory()
                .write(part.to_host(list, bytes.len() as u64).unwrap(), &bytes));
        };
        write_list(&[gra(6) | 1, gra(7) | 3]);
        let r = hv.dispatch(part, H_PUT_TCE_INDIRECT, &args(&[liobn, bus(6), list, 2]));
        assert_eq!(r.status, H_SUCCESS);
        write_list(&[0, 0]);
        let r = hv.dispatch(part, H_PUT_TCE_INDIRECT, &args(&[liobn, bus(6), list, 2]));
        assert_eq!(r.status, H_SUCCESS);
        // Removal: 8 (RO) and 10 (RW) still mapped when the window goes.
        put(8, gra(8) | 1);
        put(9, gra(10) | 3);
        assert_eq!(hv.remove_window(liobn), Ok(2));
        assert_eq!(rig.pages.total_pins(), 0);

        for (n, writable) in [
            (1, false),
            (2, true),
            (3, true),
            (4, false),
            (5, false),
            (6, false),
            (7, true),
            (8, false),
            (9, false),
            (10, true),
        ] {
            for frame in [0, page / 2, page - K4] {
                assert_eq!(
                    rig.pages.is_dirty(host(n) + frame),
                    writable,
                    "{page:#x}-byte page {n} (released {}) at +{frame:#x}",
                    if writable {
                        "writable"
                    } else {
                        "read-only or never mapped"
                    }
                );
            }
        }
        assert!(rig.audit(&hv).is_clean());
        assert_eq!(model.stats().violations, 0);
    }
}
