//! SMP readiness on the host: six threads make hypercalls through `dispatch` at once, against
//! one PHB3 model that watches pins at every register access:
//! - three threads of partition A hammer one shared window (the same 16 entries) with
//!   H_PUT_TCE, H_STUFF_TCE, H_PUT_TCE_INDIRECT and H_GET_TCE, each also mapping its own
//!   window and checking it against a private shadow, with device DMA in between;
//! - a churner creates, fills and removes (or resets) windows on two PEs, racing with the
//!   PUTs on the other windows;
//! - a victim thread PUTs into the very window the churner keeps removing and recreating: it
//!   may only ever see H_SUCCESS or H_PARAMETER;
//! - partition B works its own PE and keeps trying A's LIOBNs and PE, always refused.
//!
//! At the end: the audit is clean (pins = valid TCEs per frame, frame allocator = tables +
//! RTT), the device never reached a released page, the private windows match their shadows,
//! and tearing down gives back every pin, frame and heap byte. One `#[test]` only: the heap is
//! counted process-wide.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Barrier;
use tcefw::hcall::*;
use tcefw::hw::regio::RegIo;
use tcefw::mm::FrameAllocator;
use tcefw::model::{CountingAlloc, Rig};

#[global_allocator]
static HEAP: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

const SHARED_PE: u16 = 2;
const CHURN_PE: u16 = 5;
const VICTIM_PE: u16 = 6;
const B_PE: u16 = 7;
const PRIVATE_PE: u16 = 10; // + thread number
const HAMMERS: u64 = 3;
const ROUNDS: u64 = 1_500;
const B_GUEST: u64 = 0x1000_0000;

fn args(words: &[u64]) -> [u64; HCALL_ARGS] {
    let mut a = [0; HCALL_ARGS];
    a[..words.len()].copy_from_slice(words);
    a
}

#[test]
fn concurrent_hypercalls_keep_accounting_exact() {
    let rig = Rig::new(32 << 20, 32 << 20).unwrap();
    let model = rig.model(true);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let a = hv.add_partition(0, 16 << 20, rig.ram.base()).unwrap();
    let b = hv
        .add_partition(B_GUEST, 8 << 20, rig.ram.base() + (16 << 20))
        .unwrap();
    // Warm what keeps heap once touched (the model's RID cache, the allocator's free lists).
    for rid in 0..32 {
        let _ = model.translate(rid, 0, false);
    }
    if let Some(block) = rig.frames.alloc(4096) {
        rig.frames.free(block, 4096);
    }
    let heap_start = HEAP.used();
    let frames_start = rig.frames.stats().used_bytes;

    let shared = liobn(0, SHARED_PE, 0);
    hv.grant_pe(a, 0, SHARED_PE).unwrap();
    let churn_handle = hv.grant_pe(a, 0, CHURN_PE).unwrap();
    let victim_handle = hv.grant_pe(a, 0, VICTIM_PE).unwrap();
    let b_handle = hv.grant_pe(b, 0, B_PE).unwrap();
    for t in 0..HAMMERS {
        hv.grant_pe(a, 0, PRIVATE_PE + t as u16).unwrap();
    }
    let victim = liobn(0, VICTIM_PE, 1);
    let barrier = Barrier::new(HAMMERS as usize + 3);
    let churning = AtomicBool::new(true);
    let victim_hits = AtomicU64::new(0);
    let victim_misses = AtomicU64::new(0);
    let churn_cycles = AtomicU64::new(0);

    // Each handle is joined explicitly: a scope returns when the closures are done, but a
    // thread's own heap (its handle, thread-locals) goes only when it really exits, which
    // `join` waits for; the heap is compared below.
    std::thread::scope(|s| {
        let mut threads = Vec::new();
        // The hammers: partition A, one shared window and one private window each.
        for t in 0..HAMMERS {
            let (hv, model, barrier) = (&hv, &model, &barrier);
            threads.push(s.spawn(move || {
                let own = liobn(0, PRIVATE_PE + t as u16, 0);
                let list = 0xB0_0000 + t * 4096;
                let mut shadow = [0u64; 64];
                barrier.wait();
                for i in 0..ROUNDS {
                    // Shared entries: every thread rewrites them with its own pages.
                    let bus = ((i * 7 + t) % 16) << 12;
                    let gra = (0x10_0000 + ((t * 64 + i % 64) << 12)) | (1 + i % 3);
                    let tce = if i % 13 == 12 { 0 } else { gra };
                    let r = hv.dispatch(a, H_PUT_TCE, &args(&[shared, bus, tce]));
                    assert_eq!(r.status, H_SUCCESS);
                    match i % 50 {
                        0 => {
                            let r = hv.dispatch(a, H_STUFF_TCE, &args(&[shared, 0, 0, 16]));
                            assert_eq!(r.status, H_SUCCESS);
                        }
                        25 => {
                            let words: Vec<u8> = (0..16u64)
                                .flat_map(|k| ((0x20_0000 + (t * 16 + k) * 4096) | 3).to_be_bytes())
                                .collect();
                            model.memory().write(a.host_base() + list, &words);
                            let r =
                                hv.dispatch(a, H_PUT_TCE_INDIRECT, &args(&[shared, 0, list, 16]));
                            assert_eq!(r.status, H_SUCCESS);
                        }
                        _ => {}
                    }
                    let r = hv.dispatch(a, H_GET_TCE, &args(&[shared, bus]));
                    assert_eq!(r.status, H_SUCCESS);
                    let _ = model.dma_write(SHARED_PE, bus + 8, &[t as u8; 8]);
                    // The private window: this thread alone, so a shadow says what it holds.
                    let slot = (i * 11) % 64;
                    let value = if i % 9 == 8 {
                        0
                    } else {
                        (0x30_0000 + (t * 64 + (i % 32)) * 4096) | 3
                    };
                    let r = hv.dispatch(a, H_PUT_TCE, &args(&[own, slot << 12, value]));
                    assert_eq!(r.status, H_SUCCESS);
                    shadow[slot as usize] = value;
                    if value != 0 {
                        model
                            .dma_write(PRIVATE_PE + t as u16, slot << 12, &i.to_be_bytes())
                            .unwrap();
                    }
                }
                for (slot, &value) in shadow.iter().enumerate() {
                    let r = hv.dispatch(a, H_GET_TCE, &args(&[own, (slot as u64) << 12]));
                    assert_eq!(r.out[0], value, "thread {t} slot {slot}");
                }
            }));
        }
        // The churner: windows created, filled and removed (or reset) on two PEs.
        {
            let (hv, model, barrier, churning, churn_cycles) =
                (&hv, &model, &barrier, &churning, &churn_cycles);
            threads.push(s.spawn(move || {
                // Whatever happens here (a failed assert included), the victim must stop.
                struct Stop<'f>(&'f AtomicBool);
                impl Drop for Stop<'_> {
                    fn drop(&mut self) {
                        self.0.store(false, Ordering::Release);
                    }
                }
                let _stop = Stop(churning);
                let list = 0xA0_0000;
                // 64 KiB-aligned pages, valid for every shape churned.
                let words: Vec<u8> = (0..64u64)
                    .flat_map(|k| ((0x50_0000 + k * 0x1_0000) | 3).to_be_bytes())
                    .collect();
                model.memory().write(a.host_base() + list, &words);
                barrier.wait();
                for i in 0..ROUNDS / 3 {
                    let (ps, ws, lv) = [(12, 30, 1), (12, 36, 3), (16, 32, 2)][i as usize % 3];
                    let r = hv.dispatch(
                        a,
                        H_TCEFW_CREATE_PE_DMA_WINDOW,
                        &args(&[churn_handle, ps, ws, lv]),
                    );
                    assert_eq!(r.status, H_SUCCESS, "churn create {i}");
                    let (ddw, bus) = (r.out[0], r.out[1]);
                    let r = hv.dispatch(a, H_PUT_TCE_INDIRECT, &args(&[ddw, bus, list, 64]));
                    assert_eq!(r.status, H_SUCCESS);
                    let _ = model.dma_write(CHURN_PE, bus, b"churn");
                    let r = if i % 7 == 6 {
                        hv.dispatch(a, H_TCEFW_RESET_PE_DMA_WINDOWS, &args(&[churn_handle]))
                    } else {
                        hv.dispatch(a, H_TCEFW_REMOVE_PE_DMA_WINDOW, &args(&[ddw]))
                    };
                    assert_eq!(r.status, H_SUCCESS, "churn remove {i}");
                    // The victim's window, removed under the victim thread's feet.
                    let r = hv.dispatch(
                        a,
                        H_TCEFW_CREATE_PE_DMA_WINDOW,
                        &args(&[victim_handle, 12, 30, 2]),
                    );
                    assert_eq!((r.status, r.out[0]), (H_SUCCESS, victim));
                    std::thread::yield_now();
                    let r = hv.dispatch(a, H_TCEFW_REMOVE_PE_DMA_WINDOW, &args(&[victim]));
                    assert_eq!(r.status, H_SUCCESS);
                    churn_cycles.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        // The victim: PUTs into the window the churner keeps removing.
        {
            let (hv, barrier, churning, hits, misses) =
                (&hv, &barrier, &churning, &victim_hits, &victim_misses);
            threads.push(s.spawn(move || {
                barrier.wait();
                let mut i = 0u64;
                while churning.load(Ordering::Acquire) {
                    let bus = (1u64 << 59) + (i % 128) * 4096;
                    let r = hv.dispatch(
                        a,
                        H_PUT_TCE,
                        &args(&[victim, bus, (0x60_0000 + i % 16 * 4096) | 3]),
                    );
                    match r.status {
                        H_SUCCESS => hits.fetch_add(1, Ordering::Relaxed),
                        H_PARAMETER => misses.fetch_add(1, Ordering::Relaxed),
                        other => panic!("victim PUT got {other}"),
                    };
                    i += 1;
                }
            }));
        }
        // Partition B: its own PE, and A's resources, always refused.
        {
            let (hv, barrier) = (&hv, &barrier);
            threads.push(s.spawn(move || {
                let own = liobn(0, B_PE, 0);
                barrier.wait();
                for i in 0..ROUNDS {
                    let r = hv.dispatch(
                        b,
                        H_PUT_TCE,
                        &args(&[own, (i % 32) << 12, (B_GUEST + (i % 8) * 4096) | 3]),
                    );
                    assert_eq!(r.status, H_SUCCESS);
                    let r = hv.dispatch(b, H_PUT_TCE, &args(&[shared, 0, B_GUEST | 3]));
                    assert_eq!(r.status, H_PARAMETER);
                    let r = hv.dispatch(b, H_STUFF_TCE, &args(&[liobn(0, CHURN_PE, 1), 0, 0, 1]));
                    assert_eq!(r.status, H_PARAMETER);
                    let r = hv.dispatch(b, H_TCEFW_REMOVE_PE_DMA_WINDOW, &args(&[shared]));
                    assert_eq!(r.status, H_PARAMETER);
                    let r = hv.dispatch(b, H_TCEFW_RESET_PE_DMA_WINDOWS, &args(&[churn_handle]));
                    assert_eq!(r.status, H_PARAMETER);
                    let r = hv.dispatch(b, H_TCEFW_QUERY_PE_DMA_WINDOW, &args(&[b_handle]));
                    assert_eq!(r.status, H_SUCCESS);
                }
            }));
        }
        for thread in threads {
            thread.join().unwrap();
        }
    });

    let report = rig.audit(&hv);
    assert!(report.is_clean(), "{report:?}");
    let (valid_tces, total_pins) = (report.valid_tces, report.total_pins);
    assert_eq!(model.stats().violations, 0, "{:?}", model.first_violation());
    assert_eq!(rig.pages.anomalies(), 0, "no page released twice");
    assert_eq!(churn_cycles.load(Ordering::Relaxed), ROUNDS / 3);
    // Tear down: every pin, frame and heap byte comes back.
    for pe in [SHARED_PE, CHURN_PE, VICTIM_PE, B_PE]
        .into_iter()
        .chain((0..HAMMERS as u16).map(|t| PRIVATE_PE + t))
    {
        hv.revoke_pe(0, pe).unwrap();
    }
    assert_eq!(rig.pages.total_pins(), 0);
    assert_eq!(rig.frames.stats().used_bytes, frames_start);
    assert!(rig.audit(&hv).is_clean());
    assert_eq!(HEAP.used(), heap_start, "heap back where it started");
    // Printed last: libtest's output capture allocates.
    eprintln!(
        "SMP: {} churn cycles; victim PUTs {} landed, {} refused; {} valid TCEs, {} pins at the end",
        churn_cycles.load(Ordering::Relaxed),
        victim_hits.load(Ordering::Relaxed),
        victim_misses.load(Ordering::Relaxed),
        valid_tces,
        total_pins
    );
}
