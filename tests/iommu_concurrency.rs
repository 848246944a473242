//! Host tests of the lock-free TCE path on many threads: exchanges of the same entries hand
//! each old value to exactly one thread, and hypercalls racing on shared entries keep the
//! page accounting exact (every old page released exactly once, nothing leaked, no release
//! while the PHB model's cache could still reach the page).

use std::collections::HashMap;
use std::sync::Barrier;
use tcefw::hcall::*;
use tcefw::hw::regio::RegIo;
use tcefw::iommu::table::{TableGeometry, TceTable};
use tcefw::iommu::{KillFault, Perm, Tce, WindowConfig};
use tcefw::mm::frame::BuddyAllocator;
use tcefw::model::{Arena, Rig};

#[test]
fn every_old_value_goes_to_exactly_one_thread() {
    let arena = Arena::new(16 << 20, 16 << 20).unwrap();
    let frames = BuddyAllocator::new();
    // SAFETY: the arena is ours and unused, and outlives the allocator's use below.
    unsafe { frames.add_range(arena.base(), arena.base() + arena.bytes()) };
    let table = TceTable::new(&frames, TableGeometry::for_window(1 << 30, 12, 3).unwrap()).unwrap();
    let entries = [0u64, 1, 511, 512, 70_000];
    for &e in &entries {
        table.prepare(&frames, e).unwrap();
    }
    let threads = 4u64;
    let per_thread = 20_000u64;
    let barrier = Barrier::new(threads as usize);
    let olds: Vec<Vec<Tce>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (table, barrier) = (&table, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let mut olds = Vec::with_capacity(per_thread as usize);
                    for i in 0..per_thread {
                        // A unique token per (thread, step); every 7th is a clear.
                        let token = if i % 7 == 6 {
                            Tce::NONE
                        } else {
                            Tce::new(
                                ((t * per_thread + i + 1) << 12) & 0x0FFF_FFFF_FFFF_F000,
                                Perm::Write,
                            )
                        };
                        let entry = entries[(i as usize + t as usize) % entries.len()];
                        olds.push(table.exchange(entry, token).unwrap());
                    }
                    olds
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Every valid token put must come back exactly once: as someone's old value, or as the
    // final value of its entry.
    let mut seen: HashMap<u64, u32> = HashMap::new();
    for tce in olds.iter().flatten().chain(
        entries
            .iter()
            .map(|&e| table.get(e))
            .collect::<Vec<_>>()
            .iter(),
    ) {
        if tce.is_valid() {
            *seen.entry(tce.raw()).or_default() += 1;
        }
    }
    let expected = (0..threads)
        .map(|_| (0..per_thread).filter(|i| i % 7 != 6).count())
        .sum::<usize>();
    assert_eq!(seen.len(), expected, "every token accounted for");
    assert!(seen.values().all(|&n| n == 1), "no token released twice");
}

#[test]
fn racing_hypercalls_on_shared_entries_keep_accounting_exact() {
    race(KillFault::None);
}

#[test]
fn racing_hypercalls_detect_a_kill_after_release() {
    race(KillFault::KillAfterRelease);
}

/// Four threads hammer shared and private entries. With `fault` the race must be caught by
/// the model's pin watch; without, everything must balance.
fn race(fault: KillFault) {
    let rig = Rig::new(32 << 20, 32 << 20).unwrap();
    let model = rig.model(true);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let part = hv.add_partition(0, 32 << 20, rig.ram.base()).unwrap();
    let shared = hv
        .create_window(
            0,
            WindowConfig {
                pe: 2,
                window: 0,
                page_shift: 12,
                window_size: 1 << 30,
                levels: 2,
            },
            part,
        )
        .unwrap();
    let private = hv
        .create_window(
            0,
            WindowConfig {
                pe: 2,
                window: 1,
                page_shift: 16,
                window_size: 1 << 34,
                levels: 3,
            },
            part,
        )
        .unwrap();
    hv.phb(0).unwrap().inject_kill_fault(fault);
    let threads = 4u64;
    let barrier = Barrier::new(threads as usize);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (hv, barrier, model) = (&hv, &barrier, &model);
            s.spawn(move || {
                barrier.wait();
                let mut a = [0u64; HCALL_ARGS];
                for i in 0..3_000u64 {
                    // Shared window: 8 entries every thread rewrites (own pages per thread).
                    let bus = ((i * 3 + t) % 8) << 12;
                    let gra =
                        (0x10_0000 + ((t * 64 + i % 64) << 12)) | if i % 3 == 0 { 1 } else { 3 };
                    a[..3].copy_from_slice(&[shared, bus, if i % 11 == 10 { 0 } else { gra }]);
                    assert_eq!(hv.dispatch(part, H_PUT_TCE, &a).status, H_SUCCESS);
                    // Some stuffing and DMA in between.
                    if i % 97 == 0 {
                        assert_eq!(hv.h_stuff_tce(part, shared, 0, 0, 8), Ok(()));
                    }
                    let _ = model.dma_write(2, bus, &[t as u8; 8]);
                    // Replace the entry the DMA just cached, at once: with the kill after the
                    // release, the model's watch at the kill store sees the cached translation
                    // to the released page. (Kills are per PE now, so waiting for another
                    // thread to replace it would let a kill in between hide the bug.)
                    let again = (0x10_0000 + ((t * 64 + (i + 32) % 64) << 12)) | 3;
                    a[..3].copy_from_slice(&[shared, bus, again]);
                    assert_eq!(hv.dispatch(part, H_PUT_TCE, &a).status, H_SUCCESS);
                    // Private 64K window region per thread, in lower levels created racily.
                    let pbus = (1u64 << 59) + (t * 4096 + i % 32) * 0x1_0000;
                    let pg = (0x100_0000 + t * 0x20_0000 + (i % 16) * 0x1_0000) | 3;
                    assert_eq!(hv.h_put_tce(part, private, pbus, pg), Ok(()));
                }
            });
        }
    });
    if fault != KillFault::None {
        assert!(
            model.stats().violations > 0,
            "the late kill must be seen by the pin watch"
        );
        eprintln!(
            "{fault:?} detected: {} stale reaches, first {:?}",
            model.stats().violations,
            model.first_violation()
        );
        return;
    }
    let report = rig.audit(&hv);
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(model.stats().violations, 0, "{:?}", model.first_violation());
    assert_eq!(hv.h_stuff_tce(part, shared, 0, 0, 8), Ok(()));
    hv.remove_window(private).unwrap();
    assert_eq!(
        rig.pages.total_pins(),
        0,
        "every page released exactly once"
    );
    assert_eq!(rig.pages.anomalies(), 0, "no double release");
    assert!(rig.audit(&hv).is_clean());
}
