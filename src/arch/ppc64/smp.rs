//! SMP: releasing the parked threads and giving each its stack, per-CPU area and a work
//! mailbox.
//!
//! Bare mode: every thread entered at 0x10; the losers of the boot election wait in the low
//! block (at 0) for `release_entry`. Payload mode: skiboot holds the other threads until
//! OPAL_START_CPU sends them to an address; we send them to the same 0x10 entry (in the copy
//! of the low block at 0), where they lose the election and take the same path.
//! Resources: skiboot core/opal.c opal_start_cpu_thread (OPAL_START_CPU = 41, starts the
//! thread big-endian at the address given); Linux arch/powerpc/platforms/powernv/smp.c.

use super::cpu;
use super::opal::Opal;
use super::percpu::{self, MAX_CPUS};
use crate::mm::phys;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Work run on a CPU: it gets the CPU index and the argument posted with it.
pub type WorkFn = fn(cpu_index: usize, arg: u64);

/// OPAL token that starts a thread held by skiboot.
const OPAL_START_CPU: u64 = 41;

static ONLINE_SECONDARIES: AtomicUsize = AtomicUsize::new(0);

extern "C" {
    static __head_start: u8;
    static release_entry: u8;
    fn secondary_linked();
}

/// Releases every parked thread. `others` are the PIRs of the threads to start under
/// skiboot (ignored in bare mode, where every thread is already parked). Waits until
/// `expected` secondaries are online or `timeout_ticks` of timebase pass; returns how many
/// came online.
pub fn release_secondaries(
    opal: Option<&Opal>,
    others: &[u32],
    expected: usize,
    timeout_ticks: u64,
) -> usize {
    // SAFETY: linker symbols; only their addresses are used.
    let offset =
        unsafe { (&release_entry as *const u8 as u64) - (&__head_start as *const u8 as u64) };
    // The low block copy at physical 0 is the one the parked threads read.
    // SAFETY: `offset` is the 8-aligned release word inside the low block at 0, which only
    // parked threads read.
    let release = unsafe { phys::atomic_u64(offset) };
    release.store(secondary_linked as *const () as u64, Ordering::Release);
    cpu::sync();
    if let Some(opal) = opal {
        for &pir in others {
            let rc = opal.call(OPAL_START_CPU, [u64::from(pir), 0x10, 0, 0]);
            if rc != 0 {
                crate::log!(Warning, "SMP", "OPAL_START_CPU({pir:#x}) failed: {rc}");
            }
        }
    }
    let start = cpu::timebase();
    while ONLINE_SECONDARIES.load(Ordering::Acquire) < expected.min(MAX_CPUS - 1)
        && cpu::timebase().wrapping_sub(start) < timeout_ticks
    {
        cpu::relax();
    }
    ONLINE_SECONDARIES.load(Ordering::Acquire)
}

/// How many secondary threads are online.
pub fn online_secondaries() -> usize {
    ONLINE_SECONDARIES.load(Ordering::Acquire)
}

/// Runs `work(index, arg)` on the boot CPU and on every online secondary at once, and
/// returns when all have finished.
pub fn run_on_all(work: WorkFn, arg: u64) {
    let secondaries = online_secondaries().min(MAX_CPUS - 1);
    let mut started = [0u64; MAX_CPUS];
    for (index, done_before) in started.iter_mut().enumerate().skip(1).take(secondaries) {
        if let Some(area) = percpu::area(index) {
            *done_before = area.work_done.load(Ordering::Acquire);
            area.work_arg.store(arg, Ordering::Relaxed);
            area.work_fn
                .store(work as *const () as u64, Ordering::Release);
        }
    }
    work(0, arg);
    for (index, done_before) in started.iter().enumerate().skip(1).take(secondaries) {
        if let Some(area) = percpu::area(index) {
            while area.work_done.load(Ordering::Acquire) == *done_before {
                cpu::relax();
            }
        }
    }
}

/// Where released secondaries enter Rust (from boot/entry.S), with their own stack.
#[no_mangle]
extern "C" fn tcefw_secondary(pir: u64, index: u64) -> ! {
    let index = index as usize;
    (super::hooks::hooks().prepare_secondary)();
    let Some(area) = percpu::init_this_cpu(index, pir as u32) else {
        loop {
            cpu::relax();
        }
    };
    ONLINE_SECONDARIES.fetch_add(1, Ordering::AcqRel);
    loop {
        let posted = area.work_fn.load(Ordering::Acquire);
        if posted == 0 {
            cpu::relax();
            continue;
        }
        // SAFETY: only run_on_all stores here, and it stores a `WorkFn` cast to an address.
        let work: WorkFn = unsafe { core::mem::transmute::<usize, WorkFn>(posted as usize) };
        work(index, area.work_arg.load(Ordering::Relaxed));
        area.work_fn.store(0, Ordering::Relaxed);
        area.work_done.fetch_add(1, Ordering::Release);
    }
}
