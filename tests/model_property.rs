//! Property test of the TCE protocol against the PHB3 model and its TCE cache.
//!
//! Random sequences of hypercalls (H_PUT_TCE, H_STUFF_TCE, H_PUT_TCE_INDIRECT, H_GET_TCE) and
//! device DMA run on two windows of one PE with random page sizes and level counts. The model
//! watches the page accounting at every register access (the device may DMA through any cached
//! TCE at any instant, kill stores included). After every hypercall returns:
//! - no translation the device can make (cached or filled from memory) reaches a frame with no
//!   pin, and the model's watch saw none during the call either;
//! - the audit is clean: pins equal valid TCEs per frame (so their sums are equal), nothing
//!   outside the caller's memory or in firmware memory, and every byte the frame allocator
//!   has handed out is a table level (or the RTT);
//! - H_GET_TCE and the DMA engine agree with a shadow of what was put, and every replaced
//!   writable page is dirty.
//!
//! Then the same property runs with the kill removed and with the kill moved after the
//! release, and must FAIL in both: the test proves it can detect the bug.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::collections::{BTreeMap, BTreeSet};
use tcefw::hcall::*;
use tcefw::hw::regio::RegIo;
use tcefw::iommu::{KillFault, WindowConfig};
use tcefw::model::Rig;

const PE: u16 = 5;
const RID: u16 = 5;
const SLOTS: u64 = 48;
const PAGES: u64 = 8;
const PART_BYTES: u64 = 64 << 20;
const LIST_GRA: u64 = PART_BYTES - 4096; // the INDIRECT list lives in the caller's last 4 KiB

#[derive(Clone, Debug)]
enum Op {
    Put {
        win: usize,
        slot: u64,
        page: u64,
        perm: u64,
    },
    Stuff {
        win: usize,
        slot: u64,
        count: u64,
        page: u64,
        perm: u64,
    },
    Indirect {
        win: usize,
        slot: u64,
        entries: Vec<(u64, u64)>,
    },
    Dma {
        win: usize,
        slot: u64,
        write: bool,
    },
    Get {
        win: usize,
        slot: u64,
    },
}

#[derive(Clone, Debug)]
struct Case {
    shapes: [(u32, u32); 2], // (page_shift, levels) of window 0 and window 1
    ops: Vec<Op>,
}

fn op() -> impl Strategy<Value = Op> {
    let win = 0usize..2;
    let slot = 0..SLOTS;
    prop_oneof![
        5 => (win.clone(), slot.clone(), 0..PAGES, 0u64..4)
            .prop_map(|(win, slot, page, perm)| Op::Put { win, slot, page, perm }),
        1 => (win.clone(), slot.clone(), 1u64..24, 0..PAGES, prop_oneof![3 => Just(0u64), 1 => 1u64..4])
            .prop_map(|(win, slot, count, page, perm)| Op::Stuff { win, slot, count, page, perm }),
        1 => (win.clone(), slot.clone(), prop::collection::vec((0..PAGES, 0u64..4), 1..24))
            .prop_map(|(win, slot, entries)| Op::Indirect { win, slot, entries }),
        4 => (win.clone(), slot.clone(), any::<bool>()).prop_map(|(win, slot, write)| Op::Dma { win, slot, write }),
        1 => (win, slot).prop_map(|(win, slot)| Op::Get { win, slot }),
    ]
}

fn case(max_ops: usize) -> impl Strategy<Value = Case> {
    let shape0 = (prop_oneof![Just(12u32), Just(16)], 1u32..=3);
    let shape1 = (prop_oneof![Just(12u32), Just(16), Just(24)], 1u32..=5);
    (shape0, shape1, prop::collection::vec(op(), 1..max_ops)).prop_map(|(s0, s1, ops)| Case {
        shapes: [s0, s1],
        ops,
    })
}

struct Win {
    liobn: u64,
    start: u64,
    page: u64,
    entries: u64,
}

impl Win {
    /// Slots spread over the window so that several table levels get used.
    fn index(&self, slot: u64) -> u64 {
        (slot * 613) % self.entries
    }
    fn bus(&self, index: u64) -> u64 {
        self.start + index * self.page
    }
    fn gra(&self, page: u64) -> u64 {
        (page % (PART_BYTES / self.page).min(PAGES)) * self.page
    }
}

/// The permission bits H_GET_TCE must return: exactly the caller's (write-only stays so).
fn perm_bits(perm: u64) -> u64 {
    perm & 3
}

fn property(case: &Case, fault: KillFault) -> Result<(), TestCaseError> {
    let rig = Rig::new(32 << 20, PART_BYTES as usize).expect("host memory");
    let model = rig.model(true);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let part = hv
        .add_partition(0, PART_BYTES, rig.ram.base())
        .expect("partition");
    let wins: Vec<Win> = (0..2u8)
        .map(|w| {
            let (page_shift, levels) = case.shapes[w as usize];
            let page = 1u64 << page_shift;
            let cfg = WindowConfig {
                pe: PE,
                window: w,
                page_shift,
                window_size: page << 16,
                levels,
            };
            let liobn = hv.create_window(0, cfg, part).expect("window");
            Win {
                liobn,
                start: if w == 1 { 1 << 59 } else { 0 },
                page,
                entries: 1 << 16,
            }
        })
        .collect();
    hv.phb(0).unwrap().inject_kill_fault(fault);
    let host = |gra: u64| part.host_base() + gra;
    // Shadow of the tables: (window, index) -> caller's TCE as H_GET_TCE returns it.
    let mut shadow: BTreeMap<(usize, u64), u64> = BTreeMap::new();
    let mut touched: BTreeSet<(usize, u64)> = BTreeSet::new();

    for (step, op) in case.ops.iter().enumerate() {
        // The hypercall (or DMA), with what the shadow expects.
        let mut replaced: Vec<(usize, u64)> = Vec::new(); // old shadow values replaced
        let mut apply =
            |shadow: &mut BTreeMap<(usize, u64), u64>, win: usize, index: u64, value: u64| {
                touched.insert((win, index));
                let old = if value & 3 == 0 {
                    shadow.remove(&(win, index))
                } else {
                    shadow.insert((win, index), value)
                };
                if let Some(old) = old {
                    replaced.push((win, old));
                }
            };
        match op {
            Op::Put {
                win,
                slot,
                page,
                perm,
            } => {
                let w = &wins[*win];
                let index = w.index(*slot);
                let tce = w.gra(*page) | perm;
                let r = hv.dispatch(part, H_PUT_TCE, &args(&[w.liobn, w.bus(index), tce]));
                prop_assert_eq!(r.status, H_SUCCESS, "step {}: {:?}", step, op);
                let value = if perm & 3 == 0 {
                    0
                } else {
                    w.gra(*page) | perm_bits(*perm)
                };
                apply(&mut shadow, *win, index, value);
            }
            Op::Stuff {
                win,
                slot,
                count,
                page,
                perm,
            } => {
                let w = &wins[*win];
                let index = w.index(*slot);
                let tce = w.gra(*page) | perm;
                let r = hv.dispatch(
                    part,
                    H_STUFF_TCE,
                    &args(&[w.liobn, w.bus(index), tce, *count]),
                );
                if index + count > w.entries {
                    prop_assert_eq!(r.status, H_PARAMETER);
                } else {
                    prop_assert_eq!(r.status, H_SUCCESS, "step {}: {:?}", step, op);
                    let value = if perm & 3 == 0 {
                        0
                    } else {
                        w.gra(*page) | perm_bits(*perm)
                    };
                    for i in 0..*count {
                        apply(&mut shadow, *win, index + i, value);
                    }
                }
            }
            Op::Indirect { win, slot, entries } => {
                let w = &wins[*win];
                let index = w.index(*slot);
                let list: Vec<u8> = entries
                    .iter()
                    .flat_map(|&(p, perm)| (w.gra(p) | perm).to_be_bytes())
                    .collect();
                prop_assert!(model.memory().write(host(LIST_GRA), &list));
                let count = entries.len() as u64;
                let r = hv.dispatch(
                    part,
                    H_PUT_TCE_INDIRECT,
                    &args(&[w.liobn, w.bus(index), LIST_GRA, count]),
                );
                if index + count > w.entries {
                    prop_assert_eq!(r.status, H_PARAMETER);
                } else {
                    prop_assert_eq!(r.status, H_SUCCESS, "step {}: {:?}", step, op);
                    for (i, &(p, perm)) in entries.iter().enumerate() {
                        let value = if perm & 3 == 0 {
                            0
                        } else {
                            w.gra(p) | perm_bits(perm)
                        };
                        apply(&mut shadow, *win, index + i as u64, value);
                    }
                }
            }
            Op::Get { win, slot } => {
                let w = &wins[*win];
                let index = w.index(*slot);
                let r = hv.dispatch(part, H_GET_TCE, &args(&[w.liobn, w.bus(index)]));
                prop_assert_eq!(r.status, H_SUCCESS);
                prop_assert_eq!(
                    r.out[0],
                    shadow.get(&(*win, index)).copied().unwrap_or(0),
                    "step {}",
                    step
                );
            }
            Op::Dma { win, slot, write } => {
                let w = &wins[*win];
                let index = w.index(*slot);
                let expected = shadow.get(&(*win, index)).copied().unwrap_or(0);
                let offset = (step as u64 * 8) % w.page;
                if *write {
                    let data = (step as u64).to_be_bytes();
                    let result = model.dma_write(RID, w.bus(index) + offset, &data);
                    prop_assert_eq!(
                        result.is_ok(),
                        expected & 2 != 0,
                        "step {}: DMA write vs shadow {:#x}",
                        step,
                        expected
                    );
                    if result.is_ok() {
                        let mut seen = [0u8; 8];
                        model.memory().read(host(expected & !3) + offset, &mut seen);
                        prop_assert_eq!(
                            seen,
                            data,
                            "step {}: DMA write lands in the shadow's page",
                            step
                        );
                    }
                } else {
                    let result = model.dma_read(RID, w.bus(index) + offset, 8);
                    prop_assert_eq!(
                        result.is_ok(),
                        expected & 1 != 0,
                        "step {}: DMA read vs shadow {:#x}",
                        step,
                        expected
                    );
                }
                continue;
            }
        }

        // After the hypercall returned: nothing the device can reach is released.
        model.watch_now();
        for &(win, index) in &touched {
            let bus = wins[win].bus(index);
            for write in [false, true] {
                if let Ok(target) = model.translate(RID, bus, write) {
                    prop_assert!(
                        rig.pages.pins(target) > 0,
                        "step {}: bus {:#x} still reaches released host {:#x} ({:?})",
                        step,
                        bus,
                        target,
                        op
                    );
                }
            }
        }
        prop_assert_eq!(
            model.stats().violations,
            0,
            "step {}: device reached an unpinned frame: {:?}",
            step,
            model.first_violation()
        );
        // Pins balance, per frame; nothing outside the caller or in firmware memory.
        let report = rig.audit(&hv);
        prop_assert!(report.is_clean(), "step {}: {:?}", step, report.violations);
        // One pin per valid TCE, whatever its page size.
        prop_assert_eq!(
            report.total_pins,
            shadow.len() as u64,
            "step {}: pins == valid TCEs",
            step
        );
        // Every replaced writable mapping left its page dirty.
        for (win, old) in replaced {
            if old & 2 != 0 {
                let page = wins[win].page;
                for frame in (0..page).step_by(4096) {
                    prop_assert!(
                        rig.pages.is_dirty(host(old & !3) + frame),
                        "step {}: dirty",
                        step
                    );
                }
            }
        }
        for (&(win, index), &value) in &shadow {
            let w = &wins[win];
            let got = hv
                .h_get_tce(part, w.liobn, w.bus(index))
                .map_err(|s| TestCaseError::fail(format!("get {s}")))?;
            prop_assert_eq!(got, value, "step {}: table vs shadow", step);
        }
    }
    // Tear down: removing the windows releases everything.
    hv.phb(0).unwrap().inject_kill_fault(KillFault::None);
    for w in &wins {
        hv.remove_window(w.liobn)
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
    }
    prop_assert_eq!(rig.pages.total_pins(), 0);
    prop_assert_eq!(rig.pages.anomalies(), 0);
    prop_assert_eq!(rig.table_bytes_in_use(), 0);
    Ok(())
}

fn args(words: &[u64]) -> [u64; HCALL_ARGS] {
    let mut a = [0; HCALL_ARGS];
    a[..words.len()].copy_from_slice(words);
    a
}

fn run(fault: KillFault, cases: u32, max_ops: usize, shrink: bool) -> Result<(), String> {
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: if shrink { 256 } else { 0 },
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(
        config,
        proptest::test_runner::TestRng::deterministic_rng(config_rng()),
    );
    runner
        .run(&case(max_ops), |c| property(&c, fault))
        .map_err(|e| e.to_string())
}

fn config_rng() -> proptest::test_runner::RngAlgorithm {
    proptest::test_runner::RngAlgorithm::ChaCha
}

#[test]
fn protocol_keeps_released_pages_unreachable() {
    // 40 cases of up to 200 operations: several thousand hypercalls and DMAs, each followed
    // by the full set of checks. The benchmark runs a bigger sweep.
    run(KillFault::None, 40, 200, true).unwrap();
}

#[test]
fn the_property_detects_a_missing_kill() {
    let error =
        run(KillFault::SkipKill, 40, 200, false).expect_err("a missing kill must be caught");
    eprintln!("SkipKill detected: {}", error.replace('\n', " "));
    assert!(
        error.contains("released") || error.contains("unpinned"),
        "{error}"
    );
}

#[test]
fn the_property_detects_a_kill_after_release() {
    let error =
        run(KillFault::KillAfterRelease, 40, 200, false).expect_err("a late kill must be caught");
    eprintln!("KillAfterRelease detected: {}", error.replace('\n', " "));
    assert!(error.contains("unpinned"), "{error}");
}
