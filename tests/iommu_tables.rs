//! Host tests of TCE tables and windows: exchange at every level count (1..5) and every page
//! size (4K, 64K, 16M) in both windows, checked through the PHB3 model's own hardware walk;
//! clearing in an absent level allocates nothing and kills nothing; a mapping that runs out of
//! memory for its levels installs none of them (all or nothing); level installation races
//! settle by compare-and-swap with no block installed twice or leaked; window removal frees
//! everything.

use std::sync::Barrier;
use tcefw::hw::regio::RegIo;
use tcefw::iommu::table::{TableGeometry, TceTable};
use tcefw::iommu::{Perm, Tce, WindowConfig};
use tcefw::mm::frame::BuddyAllocator;
use tcefw::model::{Arena, Rig};

const PE: u16 = 7;
const RID: u16 = 7;

#[test]
fn exchange_at_every_level_count_page_size_and_window() {
    for page_shift in [12u32, 16, 24] {
        for levels in 1..=5u32 {
            for window in [0u8, 1] {
                let rig = Rig::new(64 << 20, 64 << 20).unwrap();
                let model = rig.model(true);
                let hv = rig.hypervisor(&[&model as &dyn RegIo]);
                let part = hv.add_partition(0, 64 << 20, rig.ram.base()).unwrap();
                let page = 1u64 << page_shift;
                let window_size = page << 20;
                let cfg = WindowConfig {
                    pe: PE,
                    window,
                    page_shift,
                    window_size,
                    levels,
                };
                let liobn = hv.create_window(0, cfg, part).unwrap();
                let start = if window == 1 { 1u64 << 59 } else { 0 };
                let what = format!("page 2^{page_shift}, {levels} levels, window {window}");
                let tve =
                    tcefw::iommu::tve::Tve::decode(model.tve(PE as usize * 2 + window as usize))
                        .expect("a translating TVE");
                assert_eq!((tve.levels, tve.page_shift), (levels, page_shift), "{what}");
                assert_eq!(
                    tve.table_pa % (1 << tve.level_bytes_log2),
                    0,
                    "naturally aligned"
                );

                // First, middle and last page of the window, each mapped, replaced, cleared.
                for slot in [0u64, (1 << 19) + 3, (1 << 20) - 1] {
                    let bus = start + slot * page;
                    let (a, b) = (page, 2 * page);
                    assert_eq!(hv.h_put_tce(part, liobn, bus, a | 3), Ok(()), "{what}");
                    model
                        .dma_write(RID, bus + page - 8, &slot.to_be_bytes())
                        .unwrap();
                    let mut got = [0u8; 8];
                    model
                        .memory()
                        .read(part.host_base() + a + page - 8, &mut got);
                    assert_eq!(u64::from_be_bytes(got), slot, "{what}: DMA lands in A");
                    assert_eq!(hv.h_get_tce(part, liobn, bus), Ok(a | 3));
                    assert_eq!(hv.h_put_tce(part, liobn, bus, b | 1), Ok(()));
                    assert_eq!(hv.h_get_tce(part, liobn, bus), Ok(b | 1));
                    assert_eq!(rig.pages.pins(part.host_base() + a), 0);
                    assert!(rig.pages.take_dirty(part.host_base() + a + page - 4096));
                    assert!(
                        model.dma_write(RID, bus, b"ro").is_err(),
                        "{what}: read-only"
                    );
                    assert_eq!(hv.h_put_tce(part, liobn, bus, 0), Ok(()));
                    assert!(model.dma_read(RID, bus, 8).is_err(), "{what}: cleared");
                }
                let report = rig.audit(&hv);
                assert!(report.is_clean(), "{what}: {report:?}");
                assert_eq!(report.table_bytes, rig.table_bytes_in_use(), "{what}");
                assert_eq!(model.stats().violations, 0, "{what}");
                hv.remove_window(liobn).unwrap();
                assert_eq!(rig.table_bytes_in_use(), 0, "{what}: every level freed");
            }
        }
    }
}

#[test]
fn clearing_in_an_absent_level_allocates_and_kills_nothing() {
    let rig = Rig::new(32 << 20, 32 << 20).unwrap();
    let model = rig.model(true);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let part = hv.add_partition(0, 32 << 20, rig.ram.base()).unwrap();
    let cfg = WindowConfig {
        pe: PE,
        window: 0,
        page_shift: 12,
        window_size: 1 << 40,
        levels: 4,
    };
    let liobn = hv.create_window(0, cfg, part).unwrap();
    let used = rig.frames.stats().used_blocks;
    let kills = hv.phb(0).unwrap().kill_counts();
    for bus in [0u64, 1 << 21, 1 << 30, (1 << 40) - 4096] {
        assert_eq!(hv.h_put_tce(part, liobn, bus, 0), Ok(()));
        assert_eq!(hv.h_stuff_tce(part, liobn, bus, 0, 1), Ok(()));
        assert_eq!(hv.h_get_tce(part, liobn, bus), Ok(0));
    }
    assert_eq!(
        rig.frames.stats().used_blocks,
        used,
        "no level allocated by a clear"
    );
    assert_eq!(
        hv.phb(0).unwrap().kill_counts(),
        kills,
        "nothing changed, nothing killed"
    );
    // A mapping allocates exactly the three missing lower levels.
    assert_eq!(hv.h_put_tce(part, liobn, 1 << 30, 0x3000 | 3), Ok(()));
    assert_eq!(rig.frames.stats().used_blocks, used + 3);
    assert_eq!(hv.h_put_tce(part, liobn, 1 << 30, 0), Ok(()));
    assert_eq!(
        rig.frames.stats().used_blocks,
        used + 3,
        "levels stay for reuse"
    );
    assert!(rig.audit(&hv).is_clean());
}

#[test]
fn a_mapping_short_of_memory_installs_no_level() {
    use tcefw::mm::FrameAllocator;
    let rig = Rig::new(2 << 20, 32 << 20).unwrap();
    let model = rig.model(true);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let part = hv.add_partition(0, 32 << 20, rig.ram.base()).unwrap();
    let cfg = WindowConfig {
        pe: PE,
        window: 0,
        page_shift: 12,
        window_size: 1 << 40,
        levels: 4,
    };
    let liobn = hv.create_window(0, cfg, part).unwrap();
    // Leave room for two 4 KiB blocks; the mapping needs three lower levels.
    let mut hoard = Vec::new();
    while let Some(block) = rig.frames.alloc(4096) {
        hoard.push(block);
    }
    for block in hoard.drain(..2) {
        rig.frames.free(block, 4096);
    }
    let (frames, kills) = (rig.frames.stats(), hv.phb(0).unwrap().kill_counts());
    let tables = hv.phb(0).unwrap().table_bytes();
    let r = hv.h_put_tce(part, liobn, 1 << 30, 0x3000 | 3);
    assert_eq!(r, Err(tcefw::hcall::H_NO_MEM));
    assert_eq!(rig.frames.stats().used_bytes, frames.used_bytes);
    assert_eq!(rig.frames.stats().used_blocks, frames.used_blocks);
    assert_eq!(
        hv.phb(0).unwrap().table_bytes(),
        tables,
        "no level installed"
    );
    assert_eq!(hv.phb(0).unwrap().kill_counts(), kills);
    assert_eq!(rig.pages.total_pins(), 0);
    // A 512-entry STUFF across a leaf boundary needs more (two leaves): refused the same way.
    let r = hv.h_stuff_tce(part, liobn, (1 << 30) - 256 * 4096, 0x3000 | 1, 512);
    assert_eq!(r, Err(tcefw::hcall::H_NO_MEM));
    assert_eq!(hv.phb(0).unwrap().table_bytes(), tables);
    // With one more block, exactly the three levels come.
    rig.frames.free(hoard.pop().unwrap(), 4096);
    assert_eq!(hv.h_put_tce(part, liobn, 1 << 30, 0x3000 | 3), Ok(()));
    assert_eq!(hv.phb(0).unwrap().table_bytes(), tables + 3 * 4096);
    for block in hoard {
        rig.frames.free(block, 4096);
    }
    assert!(rig.audit(&hv).is_clean());
}

#[test]
fn geometry_is_refused_when_unsupported() {
    use tcefw::iommu::Error;
    assert_eq!(
        TableGeometry::for_window(1 << 30, 13, 1),
        Err(Error::BadConfig)
    );
    assert_eq!(
        TableGeometry::for_window(1 << 30, 12, 0),
        Err(Error::BadConfig)
    );
    assert_eq!(
        TableGeometry::for_window(1 << 30, 12, 6),
        Err(Error::BadConfig)
    );
    assert_eq!(
        TableGeometry::for_window(3 << 30, 12, 1),
        Err(Error::BadConfig)
    );
    assert_eq!(
        TableGeometry::for_window(1 << 60, 12, 5),
        Err(Error::BadConfig)
    );
    // 2^40 of 4K pages in one level would need a 2 GiB level: refused (max 16 MiB).
    assert_eq!(
        TableGeometry::for_window(1 << 40, 12, 1),
        Err(Error::BadConfig)
    );
    let g = TableGeometry::for_window(1 << 40, 12, 2).unwrap();
    assert_eq!((g.level_shift, g.level_bytes()), (14, 128 << 10));
    let rig = Rig::new(16 << 20, 16 << 20).unwrap();
    let model = rig.model(false);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let part = hv.add_partition(0, 16 << 20, rig.ram.base()).unwrap();
    let cfg = WindowConfig {
        pe: 300,
        window: 0,
        page_shift: 12,
        window_size: 1 << 30,
        levels: 1,
    };
    assert!(hv.create_window(0, cfg, part).is_err(), "PE out of range");
    let cfg = WindowConfig {
        pe: 1,
        window: 2,
        ..cfg
    };
    assert!(hv.create_window(0, cfg, part).is_err(), "window 2");
    let cfg = WindowConfig {
        pe: 1,
        window: 0,
        ..cfg
    };
    assert!(hv.create_window(0, cfg, part).is_ok());
    assert!(hv.create_window(0, cfg, part).is_err(), "busy TVE");
}

#[test]
fn racing_level_installs_keep_one_block_and_free_the_rest() {
    let arena = Arena::new(64 << 20, 16 << 20).unwrap();
    let frames = BuddyAllocator::new();
    // SAFETY: the arena is ours and unused, and outlives the allocator's use below.
    unsafe { frames.add_range(arena.base(), arena.base() + arena.bytes()) };
    let geometry = TableGeometry::for_window(1 << 40, 12, 5).unwrap();
    let threads = 6;
    for round in 0..40u64 {
        let table = TceTable::new(&frames, geometry).unwrap();
        let barrier = Barrier::new(threads);
        let installed: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads as u64)
                .map(|t| {
                    let (table, frames, barrier) = (&table, &frames, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        // Same index for half the threads, a sibling sharing upper levels
                        // for the others.
                        let index = (round << 20) | (t % 2);
                        let bytes = table.prepare(frames, index).unwrap();
                        let token = Tce::new(0x1000 * (t + 1), Perm::Read);
                        table.exchange(index, token).unwrap();
                        bytes as u64
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        // Top level + 4 lower levels on one path, each installed exactly once.
        assert_eq!(installed, 4 * 4096, "round {round}");
        assert_eq!(table.allocated_bytes(), 5 * 4096);
        assert_eq!(frames.stats().used_blocks, 5, "losers freed their blocks");
        let mut valid = 0;
        table.for_each_valid(&mut |_, _| valid += 1);
        assert_eq!(valid, 2);
        assert_eq!(table.destroy(&frames), 5 * 4096);
        assert_eq!(frames.stats().used_bytes, 0);
    }
}
