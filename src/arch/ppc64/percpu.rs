//! Per-CPU areas: the scratch slots and handler address the vector code uses, each CPU's
//! exception stack and handler depth, and the test hook for expected faults. HSPRG0 points at
//! the area of the CPU that runs.
//!
//! The exception stack is chosen by boot/entry.S from this area and the interrupted MSR, never
//! from the interrupted r1 (a partition's): a handler entered from outside any handler builds
//! its frame at the top of the stack, a handler of a fault inside a handler at the top of the
//! nested region (the lowest [`NESTED_STACK_BYTES`]); the depth counts handlers running. Guards
//! below and above every stack hold a canary for the in-image entry test.
//!
//! Resources: skiboot include/cpu.h (struct cpu_thread per PIR, stack per CPU); Linux
//! arch/powerpc/include/asm/paca.h (the exception scratch area idea). The first fields are
//! read and written by boot/head.S and boot/entry.S (`PC_*` in boot/defs.S).

use super::cpu::{mtspr, spr};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, Ordering};

/// CPUs (threads) this build can run.
pub const MAX_CPUS: usize = 32;
/// Bytes of exception stack per CPU: 64 KiB for a handler, then the nested region.
pub const EXCEPTION_STACK_BYTES: usize = 64 * 1024 + NESTED_STACK_BYTES;
/// Bytes of the nested region at the bottom of each exception stack: the stack of a handler
/// of a fault inside a handler (an expected fault in a test, or the fatal report).
pub const NESTED_STACK_BYTES: usize = 16 * 1024;
/// Bytes of guard below and above each exception stack: never used by a frame, filled with
/// [`GUARD_WORD`] by the in-image test, so that a frame built outside the stack shows.
pub const STACK_GUARD_BYTES: usize = 4096;
/// The canary pattern of the guards.
pub const GUARD_WORD: u64 = 0x5AFE_C0DE_DEAD_BEEF;

/// One CPU's area. The layout of the first ten fields is fixed by boot/defs.S (`PC_*`).
#[repr(C, align(128))]
pub struct PerCpu {
    scratch_r11: UnsafeCell<u64>,
    scratch_r12: UnsafeCell<u64>,
    scratch_ctr: UnsafeCell<u64>,
    handler: AtomicU64,
    exception_stack_top: AtomicU64,
    exception_nested_top: AtomicU64,
    toc: AtomicU64,
    scratch_r10: UnsafeCell<u64>,
    scratch_cr: UnsafeCell<u64>,
    /// Handlers running on this CPU (0, 1, or 2 for a fault inside a handler); kept by the
    /// vector code only.
    exception_depth: AtomicU64,
    /// This CPU's PIR.
    pub pir: AtomicU64,
    /// The vector a test expects next on this CPU (0: none).
    pub expected_vector: AtomicU64,
    /// The last expected vector that was caught.
    pub caught_vector: AtomicU64,
    /// Where the last expected fault happened.
    pub caught_address: AtomicU64,
    /// The handler depth the last expected fault was handled at (2: inside a handler).
    pub caught_depth: AtomicU64,
    /// The trap frame address of the last expected fault.
    pub caught_frame: AtomicU64,
    /// Test hook (selftest builds only): when set, the next hypercall handler on this CPU
    /// takes a program check before serving the call (a fault inside a handler).
    pub fault_in_next_hypercall: AtomicU64,
    /// The trap frame address of the last hypercall (selftest builds only).
    pub last_hypercall_frame: AtomicU64,
    /// Work posted to this CPU: a `smp::WorkFn` as an address (0: none).
    pub work_fn: AtomicU64,
    /// The argument for `work_fn`.
    pub work_arg: AtomicU64,
    /// How many pieces of work this CPU has finished.
    pub work_done: AtomicU64,
    /// The partition whose hypercalls this CPU is making (`NO_PARTITION`: none). Test code
    /// sets it before it plays a partition; a real guest's LPID will set it later.
    pub caller_partition: AtomicU64,
}

// boot/defs.S `PC_*` must name these offsets.
const _: () = {
    use core::mem::offset_of;
    assert!(offset_of!(PerCpu, scratch_r11) == 0);
    assert!(offset_of!(PerCpu, scratch_r12) == 8);
    assert!(offset_of!(PerCpu, scratch_ctr) == 16);
    assert!(offset_of!(PerCpu, handler) == 24);
    assert!(offset_of!(PerCpu, exception_stack_top) == 32);
    assert!(offset_of!(PerCpu, exception_nested_top) == 40);
    assert!(offset_of!(PerCpu, toc) == 48);
    assert!(offset_of!(PerCpu, scratch_r10) == 56);
    assert!(offset_of!(PerCpu, scratch_cr) == 64);
    assert!(offset_of!(PerCpu, exception_depth) == 72);
};

/// `caller_partition` when the CPU runs no partition.
pub const NO_PARTITION: u64 = u64::MAX;

// SAFETY: the scratch cells are written only by this CPU's own vector code with interrupts
// off; every other field is atomic.
unsafe impl Sync for PerCpu {}

/// One CPU's exception stack between two guards.
#[repr(C, align(16))]
struct ExceptionStack {
    guard_low: UnsafeCell<[u64; STACK_GUARD_BYTES / 8]>,
    stack: UnsafeCell<[u8; EXCEPTION_STACK_BYTES]>,
    guard_high: UnsafeCell<[u64; STACK_GUARD_BYTES / 8]>,
}
// SAFETY: each stack is used only by the CPU whose area names it; the guards are touched
// only by the canary functions below, with volatile accesses.
unsafe impl Sync for ExceptionStack {}

impl ExceptionStack {
    const fn new() -> Self {
        ExceptionStack {
            guard_low: UnsafeCell::new([0; STACK_GUARD_BYTES / 8]),
            stack: UnsafeCell::new([0; EXCEPTION_STACK_BYTES]),
            guard_high: UnsafeCell::new([0; STACK_GUARD_BYTES / 8]),
        }
    }

    fn guards(&self) -> [*mut u64; 2] {
        [self.guard_low.get().cast(), self.guard_high.get().cast()]
    }
}

impl PerCpu {
    const fn new() -> Self {
        Self {
            scratch_r11: UnsafeCell::new(0),
            scratch_r12: UnsafeCell::new(0),
            scratch_ctr: UnsafeCell::new(0),
            handler: AtomicU64::new(0),
            exception_stack_top: AtomicU64::new(0),
            exception_nested_top: AtomicU64::new(0),
            toc: AtomicU64::new(0),
            scratch_r10: UnsafeCell::new(0),
            scratch_cr: UnsafeCell::new(0),
            exception_depth: AtomicU64::new(0),
            pir: AtomicU64::new(0),
            expected_vector: AtomicU64::new(0),
            caught_vector: AtomicU64::new(0),
            caught_address: AtomicU64::new(0),
            caught_depth: AtomicU64::new(0),
            caught_frame: AtomicU64::new(0),
            fault_in_next_hypercall: AtomicU64::new(0),
            last_hypercall_frame: AtomicU64::new(0),
            work_fn: AtomicU64::new(0),
            work_arg: AtomicU64::new(0),
            work_done: AtomicU64::new(0),
            caller_partition: AtomicU64::new(NO_PARTITION),
        }
    }
}

static AREAS: [PerCpu; MAX_CPUS] = [const { PerCpu::new() }; MAX_CPUS];
static STACKS: [ExceptionStack; MAX_CPUS] = [const { ExceptionStack::new() }; MAX_CPUS];

extern "C" {
    fn exception_entry();
}

/// Prepares CPU `index` (PIR `pir`) and points this CPU's HSPRG0 at it. Call on the CPU
/// itself, before the first interrupt can happen.
pub fn init_this_cpu(index: usize, pir: u32) -> Option<&'static PerCpu> {
    let area = AREAS.get(index)?;
    let stack = STACKS.get(index)?;
    let toc: u64;
    // SAFETY: reads r2 (the TOC pointer) only.
    unsafe { core::arch::asm!("mr {0}, 2", out(reg) toc, options(nomem, nostack)) };
    let base = stack.stack.get() as u64;
    area.handler
        .store(exception_entry as *const () as u64, Ordering::Relaxed);
    area.exception_nested_top
        .store(base + NESTED_STACK_BYTES as u64, Ordering::Relaxed);
    area.exception_depth.store(0, Ordering::Relaxed);
    area.exception_stack_top
        .store(base + EXCEPTION_STACK_BYTES as u64, Ordering::Relaxed);
    area.toc.store(toc, Ordering::Relaxed);
    area.pir.store(u64::from(pir), Ordering::Relaxed);
    // SAFETY: HSPRG0 is ours (the vector code reads it); the area lives forever.
    unsafe { mtspr::<{ spr::HSPRG0 }>(area as *const PerCpu as u64) };
    Some(area)
}

impl PerCpu {
    /// Handlers running on this CPU now (0 outside any interrupt).
    pub fn exception_depth(&self) -> u64 {
        self.exception_depth.load(Ordering::Relaxed)
    }
}

/// The area of CPU `index`.
pub fn area(index: usize) -> Option<&'static PerCpu> {
    AREAS.get(index)
}

/// This CPU's area.
pub fn this_cpu() -> &'static PerCpu {
    // HSPRG0 points into AREAS (init_this_cpu put it there): the index is derived, not
    // searched for, since every hypercall asks.
    let address = super::cpu::mfspr::<{ spr::HSPRG0 }>();
    let first = AREAS.as_ptr() as u64;
    let index = address.wrapping_sub(first) / core::mem::size_of::<PerCpu>() as u64;
    AREAS.get(index as usize).unwrap_or(&AREAS[0])
}

/// `[base, top)` of CPU `index`'s exception stack (guards excluded).
pub fn exception_stack(index: usize) -> Option<(u64, u64)> {
    let stack = STACKS.get(index)?;
    let base = stack.stack.get() as u64;
    Some((base, base + EXCEPTION_STACK_BYTES as u64))
}

/// Fills the guards around CPU `index`'s exception stack with [`GUARD_WORD`] (in-image tests).
pub fn arm_stack_guards(index: usize) {
    let Some(stack) = STACKS.get(index) else {
        return;
    };
    for guard in stack.guards() {
        for word in 0..STACK_GUARD_BYTES / 8 {
            // SAFETY: inside the guard array, which nothing but these functions touches.
            unsafe { guard.add(word).write_volatile(GUARD_WORD) };
        }
    }
}

/// The address of the first guard word around CPU `index`'s exception stack that no longer
/// holds [`GUARD_WORD`] (something wrote outside the stack), or `None` when both are intact.
pub fn damaged_stack_guard(index: usize) -> Option<u64> {
    let stack = STACKS.get(index)?;
    for guard in stack.guards() {
        for word in 0..STACK_GUARD_BYTES / 8 {
            // SAFETY: inside the guard array, which nothing but these functions touches.
            let (value, address) = unsafe { (guard.add(word).read_volatile(), guard.add(word)) };
            if value != GUARD_WORD {
                return Some(address as u64);
            }
        }
    }
    None
}

/// The index of this CPU's area in the table (what [`exception_stack`] and the guard functions
/// take).
pub fn this_cpu_index() -> usize {
    let first = AREAS.as_ptr() as u64;
    let address = this_cpu() as *const PerCpu as u64;
    ((address - first) / core::mem::size_of::<PerCpu>() as u64) as usize
}
