//! In-image tests of the exception entry (issue 8 item 4): the hypervisor stack is chosen from
//! the per-CPU area and the interrupted MSR, never from the interrupted r1, which a partition
//! controls. `sc 1` is made with r1 pointing at 0, into this CPU's exception stack (near its
//! base, in the middle, near its top, misaligned), into the image's data and text, and at
//! all-ones. After each call: the status is the handler's, r1 and CR come back as they went
//! in, the frame was built at the top of the exception stack, the guards around the exception
//! stack still hold their canary, a canary block in the image's data is intact, and no handler
//! is left running on this CPU. Then a fault inside a hypercall handler (an expected one, so
//! the run goes on) must be handled on the nested region, and the hypercall still complete.
//!
//! Resources: POWER ISA 2.07 Book III 6.5.14 (system call), 4.3.x (MSR[HV], MSR[PR]).

use super::plan::skip;
use super::Test;
use crate::arch::ppc64::{cpu, percpu};
use crate::startup::Platform;
use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicU64, Ordering};

/// The entry tests, in order.
pub const TESTS: &[Test] = &[
    Test {
        name: "hypercall_with_a_hostile_r1_keeps_firmware_memory",
        run: hypercall_with_a_hostile_r1,
    },
    Test {
        name: "fault_inside_a_handler_takes_the_nested_stack",
        run: fault_inside_a_handler,
    },
];

/// The hypercall hooks these tests read (arch/ppc64/trap.rs `selftest_hooks`) exist only in
/// a `selftest` build, which `./qemu-run.sh --test` makes; a plain image asked for tests
/// through its boot arguments skips these two.
fn hooks_built() -> Result<(), String> {
    if cfg!(feature = "selftest") {
        Ok(())
    } else {
        Err(skip(
            "needs a selftest build (the hypercall hooks are compiled out; ./qemu-run.sh --test builds with them)",
        ))
    }
}

/// Bytes of a trap frame (hw::trap::TrapFrame, boot/defs.S TF_SIZE).
const FRAME_BYTES: u64 = core::mem::size_of::<crate::hw::trap::TrapFrame>() as u64;

/// H_PRIVILEGE: what the hypervisor's own `sc 1` gets (it plays no partition here).
const H_PRIVILEGE: i64 = -3;
/// Words of the canary block in the image's data.
const IMAGE_CANARY_WORDS: usize = 64;
/// Initialised to non-zero, so it lives in .data (the image), not .bss.
static IMAGE_CANARY: [AtomicU64; IMAGE_CANARY_WORDS] =
    [const { AtomicU64::new(percpu::GUARD_WORD) }; IMAGE_CANARY_WORDS];

fn refill_image_canary() {
    for word in &IMAGE_CANARY {
        word.store(percpu::GUARD_WORD, Ordering::Relaxed);
    }
}

fn image_canary_intact() -> Option<usize> {
    IMAGE_CANARY
        .iter()
        .position(|w| w.load(Ordering::Relaxed) != percpu::GUARD_WORD)
}

/// The hostile r1 values of the test, for this CPU's exception stack `[base, top)`.
fn cases(base: u64, top: u64) -> [(&'static str, u64); 8] {
    let in_data = IMAGE_CANARY[IMAGE_CANARY_WORDS / 2].as_ptr() as u64;
    let in_text = cpu::hypercall_with_r1 as *const () as u64;
    [
        ("0", 0),
        ("the exception stack's base + 64", base + 64),
        ("the middle of the exception stack", base + (top - base) / 2),
        ("the exception stack's top - 16", top - 16),
        ("the exception stack's top - 3 (misaligned)", top - 3),
        ("the image's data", in_data),
        ("the image's text", in_text),
        ("all-ones", u64::MAX),
    ]
}

/// One failed check on one CPU: the case (index into [`cases`]), what failed, a value.
#[derive(Clone, Copy, Debug)]
struct Failure {
    case: usize,
    check: &'static str,
    value: u64,
}

/// Runs every case on the CPU that calls it. Allocates nothing (secondaries run it too).
fn probe_this_cpu() -> Result<(), Failure> {
    crate::startup::hv::leave_partition();
    let index = percpu::this_cpu_index();
    let fail = |case, check, value| Err(Failure { case, check, value });
    let Some((base, top)) = percpu::exception_stack(index) else {
        return fail(0, "no exception stack", index as u64);
    };
    let cpu_area = percpu::this_cpu();
    for (case, (_, r1)) in cases(base, top).into_iter().enumerate() {
        percpu::arm_stack_guards(index);
        cpu_area.last_hypercall_frame.store(0, Ordering::Relaxed);
        refill_image_canary();
        let (status, r1_after, cr_after) = cpu::hypercall_with_r1(0x20, r1);
        if status as i64 != H_PRIVILEGE {
            return fail(case, "status", status);
        }
        if r1_after != r1 {
            return fail(case, "r1 after the call", r1_after);
        }
        if cr_after != cpu::R1_PROBE_CR {
            return fail(case, "CR after the call", u64::from(cr_after));
        }
        if let Some(at) = percpu::damaged_stack_guard(index) {
            return fail(
                case,
                "overwritten guard word around the exception stack",
                at,
            );
        }
        if let Some(word) = image_canary_intact() {
            return fail(case, "overwritten word of the image's canary", word as u64);
        }
        let frame = cpu_area.last_hypercall_frame.load(Ordering::Relaxed);
        if frame != top - FRAME_BYTES {
            return fail(case, "frame not at the exception stack's top", frame);
        }
        if cpu_area.exception_depth() != 0 {
            return fail(
                case,
                "handler depth after the call",
                cpu_area.exception_depth(),
            );
        }
    }
    Ok(())
}

/// Per CPU: 0 when the probe passed, else the failure packed by [`pack`].
static RESULTS: [AtomicU64; percpu::MAX_CPUS] = [const { AtomicU64::new(0) }; percpu::MAX_CPUS];
static FAILURES: [spin::Once<Failure>; percpu::MAX_CPUS] =
    [const { spin::Once::new() }; percpu::MAX_CPUS];

fn probe_on(cpu_index: usize, _: u64) {
    let Some(slot) = RESULTS.get(cpu_index) else {
        return;
    };
    match probe_this_cpu() {
        Ok(()) => slot.store(1, Ordering::Release),
        Err(failure) => {
            FAILURES[cpu_index].call_once(|| failure);
            slot.store(2, Ordering::Release);
        }
    }
}

fn hypercall_with_a_hostile_r1(_: &Platform) -> Result<(), String> {
    hooks_built()?;
    let describe = |cpu: usize, f: Failure| {
        let (base, top) = percpu::exception_stack(cpu).unwrap_or((0, 0));
        let (what, r1) = cases(base, top)[f.case.min(7)];
        format!(
            "CPU {cpu}, r1 = {what} ({r1:#x}): {} {:#x} (exception stack [{base:#x}, {top:#x}))",
            f.check, f.value
        )
    };
    // The boot CPU first, alone; then every CPU at once, each on its own stack and area.
    if let Err(failure) = probe_this_cpu() {
        return Err(describe(percpu::this_cpu_index(), failure));
    }
    for slot in &RESULTS {
        slot.store(0, Ordering::Relaxed);
    }
    crate::arch::ppc64::smp::run_on_all(probe_on, 0);
    let cpus = crate::arch::ppc64::smp::online_secondaries() + 1;
    for (cpu, slot) in RESULTS.iter().enumerate().take(cpus) {
        match slot.load(Ordering::Acquire) {
            1 => {}
            2 => {
                let failure = FAILURES[cpu].get().copied().ok_or("no failure recorded")?;
                return Err(describe(cpu, failure));
            }
            other => return Err(format!("CPU {cpu} did not run the probe ({other})")),
        }
    }
    Ok(())
}

fn fault_inside_a_handler(_: &Platform) -> Result<(), String> {
    hooks_built()?;
    crate::startup::hv::leave_partition();
    let index = percpu::this_cpu_index();
    let (base, top) = percpu::exception_stack(index).ok_or("no exception stack")?;
    let nested_top = base + percpu::NESTED_STACK_BYTES as u64;
    let cpu_area = percpu::this_cpu();
    percpu::arm_stack_guards(index);
    cpu_area.caught_vector.store(0, Ordering::Relaxed);
    cpu_area.expected_vector.store(0x700, Ordering::Release);
    cpu_area.fault_in_next_hypercall.store(1, Ordering::Release);
    let out = cpu::hypercall(0x20, &[0; 8]);
    cpu_area.expected_vector.store(0, Ordering::Relaxed);
    cpu_area.fault_in_next_hypercall.store(0, Ordering::Relaxed);
    if out[0] as i64 != H_PRIVILEGE {
        return Err(format!(
            "the hypercall came back {}, not H_PRIVILEGE",
            out[0] as i64
        ));
    }
    let caught = cpu_area.caught_vector.load(Ordering::Acquire);
    if caught != 0x700 {
        return Err(format!(
            "no program check caught inside the handler ({caught:#x})"
        ));
    }
    let depth = cpu_area.caught_depth.load(Ordering::Relaxed);
    let frame = cpu_area.caught_frame.load(Ordering::Relaxed);
    if depth != 2 || frame != nested_top - FRAME_BYTES {
        return Err(format!(
            "the fault in the handler ran at depth {depth} with its frame at {frame:#x}; \
             expected depth 2 at {:#x} (stack [{base:#x}, {top:#x}))",
            nested_top - FRAME_BYTES
        ));
    }
    let address = cpu_area.caught_address.load(Ordering::Relaxed);
    use crate::platform::fault::SymbolLookup;
    match crate::startup::symbols().lookup(address) {
        Some((name, _)) if name.contains("trigger_program_check") => {}
        other => return Err(format!("fault at {address:#x} resolved to {other:?}")),
    }
    if let Some(at) = percpu::damaged_stack_guard(index) {
        return Err(format!("the guard at {at:#x} was overwritten"));
    }
    if cpu_area.exception_depth() != 0 {
        return Err(format!(
            "handler depth {} after the call",
            cpu_area.exception_depth()
        ));
    }
    Ok(())
}
