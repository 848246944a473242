//! Host tests of the published-window slot's removal (issue 8, defect 6): `retire` must finish
//! in bounded time whatever readers on other CPUs do. A stream of hypercalls on the LIOBN of a
//! window being removed must not keep the remover spinning (with the setup lock held).
//!
//! The readers are real threads, held at the slot's reader steps
//! (`tcefw::iommu::slot::ReaderSteps`) so the interleaving is chosen by the test, not by the
//! scheduler: no timing decides a verdict. Every wait has a generous watchdog that fails the
//! test instead of hanging it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use tcefw::iommu::slot::{ReaderSteps, Slot};

/// Only a broken slot (or a stuck machine) takes this long; it fails the test, never hangs it.
const WATCHDOG: Duration = Duration::from_secs(60);
const BEFORE: usize = 0;
const AFTER: usize = 1;

#[derive(Default)]
struct GateState {
    /// Readers stop at this step (per step).
    armed: [bool; 2],
    /// Readers that ever reached the step.
    arrived: [u64; 2],
    /// Readers that reached the step while it was armed (and so were held there).
    held: [u64; 2],
    /// Held readers the test has let go on from the step.
    permits: [u64; 2],
}

/// Reader steps that hold readers until the test lets them go.
#[derive(Default)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

impl Gate {
    fn arm(&self, step: usize) {
        self.state.lock().unwrap().armed[step] = true;
    }

    fn release(&self, step: usize) {
        self.state.lock().unwrap().permits[step] += 1;
        self.changed.notify_all();
    }

    fn arrived(&self, step: usize) -> u64 {
        self.state.lock().unwrap().arrived[step]
    }

    fn held(&self, step: usize) -> u64 {
        self.state.lock().unwrap().held[step]
    }

    fn pause(&self, step: usize) {
        let mut state = self.state.lock().unwrap();
        state.arrived[step] += 1;
        self.changed.notify_all();
        if !state.armed[step] {
            return;
        }
        state.held[step] += 1;
        let ticket = state.held[step];
        let deadline = Instant::now() + WATCHDOG;
        while state.permits[step] < ticket {
            assert!(Instant::now() < deadline, "watchdog: reader never let go");
            state = self
                .changed
                .wait_timeout(state, Duration::from_millis(50))
                .unwrap()
                .0;
        }
    }
}

impl ReaderSteps for Gate {
    fn before_announce(&self) {
        self.pause(BEFORE);
    }
    fn after_announce(&self) {
        self.pause(AFTER);
    }
}

/// Waits (with the watchdog) until `done()`.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WATCHDOG;
    while !done() {
        assert!(Instant::now() < deadline, "watchdog: {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

type TestSlot = Slot<u64, Gate>;

fn leaked_slot() -> &'static TestSlot {
    Box::leak(Box::new(Slot::with_steps(Gate::default())))
}

/// A reader: one acquire, dropped at once. True when it found nothing.
fn reader(slot: &'static TestSlot) -> JoinHandle<bool> {
    thread::spawn(move || slot.acquire().is_none())
}

/// A remover: retire, then raise the flag. Returns the object it got back.
fn remover(slot: &'static TestSlot, retired: Arc<AtomicBool>) -> JoinHandle<Option<u64>> {
    thread::spawn(move || {
        let object = slot.retire().map(|b| *b);
        retired.store(true, Ordering::SeqCst);
        object
    })
}

#[test]
fn retire_waits_only_for_readers_that_were_in_before_the_unpublish() {
    // Readers arrive one after another on the slot being retired, each announcing itself
    // before the previous one leaves, so that if readers may announce after the unpublish
    // the user count never reaches 0 and the remover waits through every one of them.
    const CHAIN: u64 = 200;
    let slot = leaked_slot();
    assert!(slot.publish(Box::new(7)).is_ok());
    let inside = slot.acquire().expect("published");
    slot.steps().arm(AFTER);
    let retired = Arc::new(AtomicBool::new(false));
    let removal = remover(slot, retired.clone());
    wait_until("the remover unpublishes", || slot.is_empty());
    assert!(
        !retired.load(Ordering::SeqCst),
        "retire returned while a reader that got in before the unpublish still held the object"
    );
    let mut inside = Some(inside);
    let mut waited_through = 0u64;
    let mut paused: Option<JoinHandle<bool>> = None;
    for _ in 0..CHAIN {
        let next = reader(slot);
        wait_until("the reader announces or finishes", || {
            slot.steps().held(AFTER) > waited_through || next.is_finished()
        });
        if slot.steps().held(AFTER) > waited_through {
            // It announced after the unpublish and now holds the count up; the one before
            // it (the reader that was inside, then each late one) may leave.
            waited_through += 1;
            assert!(
                !retired.load(Ordering::SeqCst),
                "retire returned while a reader was announced"
            );
            drop(inside.take());
            if let Some(previous) = paused.take() {
                slot.steps().release(AFTER);
                assert!(previous.join().unwrap(), "a late reader got the object");
            }
            paused = Some(next);
        } else {
            assert!(next.join().unwrap(), "a reader got the retired object");
        }
    }
    // Let everyone go: the remover must finish now.
    drop(inside.take());
    if let Some(last) = paused.take() {
        slot.steps().release(AFTER);
        assert!(last.join().unwrap());
    }
    wait_until("retire returns once no reader is inside", || {
        retired.load(Ordering::SeqCst)
    });
    assert_eq!(removal.join().unwrap(), Some(7));
    assert_eq!(
        waited_through, 0,
        "retire had to wait through {waited_through} of {CHAIN} acquisitions that began after \
         the unpublish: a stream of readers could keep it waiting for ever"
    );
}

#[test]
fn a_reader_that_saw_the_object_before_the_unpublish_backs_out_without_holding_up_retire() {
    let slot = leaked_slot();
    assert!(slot.publish(Box::new(9)).is_ok());
    slot.steps().arm(BEFORE);
    // The reader has seen the object and is stopped just before announcing itself.
    let late = reader(slot);
    wait_until("the reader sees the object", || {
        slot.steps().arrived(BEFORE) == 1 || late.is_finished()
    });
    assert_eq!(
        slot.steps().arrived(BEFORE),
        1,
        "acquire announced without first looking at the pointer"
    );
    // Retire does not wait for it: it has not announced itself.
    let retired = Arc::new(AtomicBool::new(false));
    let removal = remover(slot, retired.clone());
    wait_until("retire returns with no reader announced", || {
        retired.load(Ordering::SeqCst)
    });
    assert_eq!(removal.join().unwrap(), Some(9));
    // Let go, it announces, finds the slot empty and backs out: it never holds the freed
    // object, and the count is back to 0 (the next removal does not wait).
    slot.steps().release(BEFORE);
    assert!(late.join().unwrap(), "a late reader got the retired object");
    assert_eq!(slot.steps().arrived(AFTER), 1);
    assert!(slot.publish(Box::new(10)).is_ok());
    let retired = Arc::new(AtomicBool::new(false));
    let removal = remover(slot, retired.clone());
    wait_until("the next retire returns", || retired.load(Ordering::SeqCst));
    assert_eq!(removal.join().unwrap(), Some(10));
}

#[test]
fn readers_and_removals_race_without_losing_or_freeing_a_held_object() {
    // No pauses: many readers hammer acquire while the slot is published and retired over
    // and over; every hold must see a live object (the value it was published with).
    let slot: &'static Slot<u64> = Box::leak(Box::new(Slot::empty()));
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let stop = stop.clone();
            thread::spawn(move || {
                let mut seen = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    if let Some(object) = slot.acquire() {
                        assert!(*object >= 1000, "a freed or foreign object: {}", *object);
                        seen += 1;
                    }
                }
                seen
            })
        })
        .collect();
    for round in 0..2000u64 {
        assert!(slot.publish(Box::new(1000 + round)).is_ok());
        assert_eq!(slot.retire().map(|b| *b), Some(1000 + round));
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
    assert!(slot.is_empty());
}
