//! Per-CPU areas: the scratch slots and handler address the vector code uses, each CPU's
//! exception stack, and the test hook for expected faults. HSPRG0 points at the area of the
//! CPU that runs.
//!
//! Resources: skiboot include/cpu.h (struct cpu_thread per PIR, stack per CPU); Linux
//! arch/powerpc/include/asm/paca.h (the exception scratch area idea). The first fields are
//! read and written by boot/head.S and boot/entry.S (`PC_*` in boot/defs.S).

use super::cpu::{mtspr, spr};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU64, Ordering};

/// CPUs (threads) this build can run.
pub const MAX_CPUS: usize = 32;
/// Bytes of exception stack per CPU.
pub const EXCEPTION_STACK_BYTES: usize = 64 * 1024;

/// One CPU's area. The layout of the first seven fields is fixed by boot/defs.S.
#[repr(C, align(128))]
pub struct PerCpu {
    scratch_r11: UnsafeCell<u64>,
    scratch_r12: UnsafeCell<u64>,
    scratch_ctr: UnsafeCell<u64>,
    handler: AtomicU64,
    exception_stack_top: AtomicU64,
    exception_stack_base: AtomicU64,
    toc: AtomicU64,
    /// This CPU's PIR.
    pub pir: AtomicU64,
    /// The vector a test expects next on this CPU (0: none).
    pub expected_vector: AtomicU64,
    /// The last expected vector that was caught.
    pub caught_vector: AtomicU64,
    /// Where the last expected fault happened.
    pub caught_address: AtomicU64,
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

/// `caller_partition` when the CPU runs no partition.
pub const NO_PARTITION: u64 = u64::MAX;

// SAFETY: the scratch cells are written only by this CPU's own vector code with interrupts
// off; every other field is atomic.
unsafe impl Sync for PerCpu {}

#[repr(C, align(16))]
struct ExceptionStack(UnsafeCell<[u8; EXCEPTION_STACK_BYTES]>);
// SAFETY: each stack is used only by the CPU whose area names it.
unsafe impl Sync for ExceptionStack {}

impl PerCpu {
    const fn new() -> Self {
        Self {
            scratch_r11: UnsafeCell::new(0),
            scratch_r12: UnsafeCell::new(0),
            scratch_ctr: UnsafeCell::new(0),
            handler: AtomicU64::new(0),
            exception_stack_top: AtomicU64::new(0),
            exception_stack_base: AtomicU64::new(0),
            toc: AtomicU64::new(0),
            pir: AtomicU64::new(0),
            expected_vector: AtomicU64::new(0),
            caught_vector: AtomicU64::new(0),
            caught_address: AtomicU64::new(0),
            work_fn: AtomicU64::new(0),
            work_arg: AtomicU64::new(0),
            work_done: AtomicU64::new(0),
            caller_partition: AtomicU64::new(NO_PARTITION),
        }
    }
}

static AREAS: [PerCpu; MAX_CPUS] = [const { PerCpu::new() }; MAX_CPUS];
static STACKS: [ExceptionStack; MAX_CPUS] =
    [const { ExceptionStack(UnsafeCell::new([0; EXCEPTION_STACK_BYTES])) }; MAX_CPUS];

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
    let base = stack.0.get() as u64;
    area.handler
        .store(exception_entry as *const () as u64, Ordering::Relaxed);
    area.exception_stack_base.store(base, Ordering::Relaxed);
    area.exception_stack_top
        .store(base + EXCEPTION_STACK_BYTES as u64, Ordering::Relaxed);
    area.toc.store(toc, Ordering::Relaxed);
    area.pir.store(u64::from(pir), Ordering::Relaxed);
    // SAFETY: HSPRG0 is ours (the vector code reads it); the area lives forever.
    unsafe { mtspr::<{ spr::HSPRG0 }>(area as *const PerCpu as u64) };
    Some(area)
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
