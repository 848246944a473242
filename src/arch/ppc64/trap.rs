//! The Rust side of every interrupt: hypercalls (`sc 1` at 0xC00) go to the registered
//! hypercall handler, a fault a test expects is recorded and skipped, and anything else is
//! reported and ends the run as failed (both through the hooks of [`super::hooks`]).
//!
//! Resources: PAPR / LoPAR 14.5.3 (hypercall registers: r3 opcode, r4.. arguments, r3
//! status, r4.. outputs); POWER ISA 2.07 Book III 6.5.14 (system call: SRR0 is the next
//! instruction, SRR1 the caller's MSR).

use super::hooks::hooks;
use super::percpu::this_cpu;
use crate::hw::trap::{uses_hsrr, TrapFrame};
use core::sync::atomic::Ordering;
use spin::Once;

/// MSR[PR]: problem state.
const MSR_PR: u64 = 1 << 14;
/// PAPR status for a hypercall made from problem state.
const H_PRIVILEGE: u64 = (-3i64) as u64;
/// PAPR status for an opcode nobody serves.
const H_FUNCTION: u64 = (-2i64) as u64;

/// Serves one hypercall: `gpr[3]` is the opcode, `gpr[4..]` the arguments; the handler puts
/// the status in `gpr[3]` and outputs in `gpr[4..]`.
pub type HypercallHandler = fn(gpr: &mut [u64; 32]);

static HYPERCALL_HANDLER: Once<HypercallHandler> = Once::new();

/// Installs the hypercall handler (once).
pub fn set_hypercall_handler(handler: HypercallHandler) {
    HYPERCALL_HANDLER.call_once(|| handler);
}

/// Called by boot/entry.S for every interrupt. Returns 1 to leave by `hrfid`, 0 by `rfid`.
#[no_mangle]
extern "C" fn tcefw_exception(frame: &mut TrapFrame) -> u64 {
    let leave_by_hrfid = u64::from(uses_hsrr(frame.vector));
    if frame.vector == 0xc00 {
        #[cfg(feature = "selftest")]
        selftest_hooks(frame);
        if frame.srr1 & MSR_PR != 0 {
            frame.gpr[3] = H_PRIVILEGE;
        } else if let Some(handler) = HYPERCALL_HANDLER.get() {
            handler(&mut frame.gpr);
        } else {
            frame.gpr[3] = H_FUNCTION;
        }
        return leave_by_hrfid;
    }
    let cpu = this_cpu();
    if cpu.expected_vector.load(Ordering::Acquire) == frame.vector {
        cpu.expected_vector.store(0, Ordering::Relaxed);
        cpu.caught_address
            .store(frame.fault_address(), Ordering::Relaxed);
        cpu.caught_depth
            .store(cpu.exception_depth(), Ordering::Relaxed);
        cpu.caught_frame
            .store(frame as *const TrapFrame as u64, Ordering::Relaxed);
        cpu.caught_vector.store(frame.vector, Ordering::Release);
        (hooks().report_exception)(frame, false);
        frame.skip_instruction();
        return leave_by_hrfid;
    }
    (hooks().report_exception)(frame, true);
    (hooks().end_run_failed)("unexpected exception")
}

/// The entry tests' view of a hypercall (src/selftest/entry_tests.rs): where its frame was
/// built, and, when asked, a fault inside its handler.
#[cfg(feature = "selftest")]
fn selftest_hooks(frame: &TrapFrame) {
    let cpu = this_cpu();
    cpu.last_hypercall_frame
        .store(frame as *const TrapFrame as u64, Ordering::Relaxed);
    if cpu.fault_in_next_hypercall.swap(0, Ordering::AcqRel) != 0 {
        super::cpu::trigger_program_check();
    }
}
