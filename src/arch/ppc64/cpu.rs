//! CPU registers and barriers: SPR access, MSR, timebase, `sync`, HID0[HILE].
//!
//! Resources: POWER ISA 2.07 Book III (SPR numbers, MSR bits); skiboot include/processor.h
//! and asm/head.S (the HID0 update sequence: sync; mtspr; six mfspr; isync — POWER8 UM).

use core::arch::asm;

/// SPR numbers used from Rust.
pub mod spr {
    /// Processor identification register.
    pub const PIR: u16 = 1023;
    /// Hypervisor maintenance exception register (XSCOM status).
    pub const HMER: u16 = 336;
    /// Hardware implementation register 0.
    pub const HID0: u16 = 1008;
    /// Hypervisor SPRG0: this CPU's per-CPU area.
    pub const HSPRG0: u16 = 304;
    /// Logical partitioning control register.
    pub const LPCR: u16 = 318;
}

/// HID0[HILE] (IBM bit 19): hypervisor interrupts are taken little-endian.
pub const HID0_HILE: u64 = 1 << (63 - 19);

/// Reads an SPR.
#[inline(always)]
pub fn mfspr<const N: u16>() -> u64 {
    let value: u64;
    // SAFETY: reading an SPR has no side effect for the SPRs this crate names.
    unsafe { asm!("mfspr {0}, {1}", out(reg) value, const N, options(nomem, nostack)) };
    value
}

/// Writes an SPR.
///
/// # Safety
/// Writing an SPR changes machine state; the caller must know what the value does.
#[inline(always)]
pub unsafe fn mtspr<const N: u16>(value: u64) {
    // SAFETY: the caller vouches for the effect (see the function's contract).
    unsafe { asm!("mtspr {0}, {1}", const N, in(reg) value, options(nostack)) };
}

/// The current MSR.
#[inline(always)]
pub fn mfmsr() -> u64 {
    let msr: u64;
    // SAFETY: reading the MSR has no side effect.
    unsafe { asm!("mfmsr {0}", out(reg) msr, options(nomem, nostack)) };
    msr
}

/// The timebase.
#[inline(always)]
pub fn timebase() -> u64 {
    let tb: u64;
    // SAFETY: reading the timebase has no side effect.
    unsafe { asm!("mftb {0}", out(reg) tb, options(nomem, nostack)) };
    tb
}

/// This thread's processor id.
pub fn pir() -> u32 {
    mfspr::<{ spr::PIR }>() as u32
}

/// A full barrier (`sync`): every earlier store is performed before any later access,
/// including cache-inhibited MMIO stores such as a TCE kill.
#[inline(always)]
pub fn sync() {
    // SAFETY: a barrier has no effect other than ordering.
    unsafe { asm!("sync", options(nostack)) };
}

/// Lets the other SMT threads run while this one waits.
#[inline(always)]
pub fn relax() {
    // SAFETY: "or 1,1,1" only lowers this thread's SMT priority.
    unsafe { asm!("or 1,1,1", "or 2,2,2", options(nomem, nostack)) };
}

/// Sets HID0[HILE] so that hypervisor interrupts are taken little-endian (bare mode only:
/// under skiboot, OPAL_REINIT_CPUS does this with the care real POWER8 needs).
pub fn set_hile() {
    let hid0 = mfspr::<{ spr::HID0 }>() | HID0_HILE;
    // SAFETY: the POWER8 sequence for a HID0 update (sync; mtspr; six mfspr; isync); HILE
    // only changes the endianness of interrupt delivery, and our vectors are little-endian.
    unsafe {
        asm!(
            "sync",
            "mtspr 1008, {0}",
            "mfspr {0}, 1008",
            "mfspr {0}, 1008",
            "mfspr {0}, 1008",
            "mfspr {0}, 1008",
            "mfspr {0}, 1008",
            "mfspr {0}, 1008",
            "isync",
            inout(reg) hid0 => _,
            options(nostack)
        )
    };
}

/// Executes `trap` (tw 31,0,0): raises a program interrupt (for the fault tests). An
/// illegal instruction would not do: POWER8 in hypervisor mode reports those as
/// Hypervisor Emulation Assistance (0xE40).
#[inline(never)]
pub fn trigger_program_check() {
    // SAFETY: the program interrupt is handled by our vectors; the test that calls this
    // has told the handler to expect it and to skip the instruction.
    unsafe { asm!("trap", options(nostack)) };
}

/// Issues `sc 1` with `opcode` in r3 and `args` in r4..r11; returns r3..r11.
pub fn hypercall(opcode: u64, args: &[u64; 8]) -> [u64; 9] {
    let (mut r3, mut r4, mut r5, mut r6, mut r7, mut r8, mut r9, mut r10, mut r11) = (
        opcode, args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7],
    );
    // SAFETY: `sc 1` enters our own hypercall vector. Like a call, it may change every
    // register the ELFv2 ABI calls volatile (declared by clobber_abi), and it preserves the
    // rest; r3..r11 carry the opcode, arguments and results.
    unsafe {
        asm!(
            "sc 1",
            inout("r3") r3, inout("r4") r4, inout("r5") r5, inout("r6") r6,
            inout("r7") r7, inout("r8") r8, inout("r9") r9, inout("r10") r10,
            inout("r11") r11,
            clobber_abi("C"),
        )
    };
    [r3, r4, r5, r6, r7, r8, r9, r10, r11]
}

/// Makes instructions written to `[start, start + len)` visible to instruction fetch
/// (POWER ISA 2.07 Book II 1.8: dcbst, sync, icbi, sync, isync).
pub fn flush_icache_range(start: u64, len: u64) {
    const LINE: u64 = 128;
    let first = start & !(LINE - 1);
    let end = start.saturating_add(len);
    let mut line = first;
    while line < end {
        // SAFETY: dcbst only writes a cache line back to memory.
        unsafe { asm!("dcbst 0, {0}", in(reg) line, options(nostack)) };
        line += LINE;
    }
    sync();
    line = first;
    while line < end {
        // SAFETY: icbi only invalidates an instruction cache line.
        unsafe { asm!("icbi 0, {0}", in(reg) line, options(nostack)) };
        line += LINE;
    }
    // SAFETY: barriers only order execution.
    unsafe { asm!("sync", "isync", options(nostack)) };
}

/// Copies `src` to physical address `dst` with plain doubleword stores issued from assembly,
/// for destinations Rust may not name as pointers (physical 0, where the vectors live, is a
/// null pointer to the compiler, and a copy there would be optimised away).
///
/// # Safety
/// `[dst, dst + src.len())` must be RAM nothing else uses; `dst` and `src.len()` must be
/// multiples of 8.
pub unsafe fn copy_to_real(dst: u64, src: &[u8]) {
    for (index, chunk) in src.chunks_exact(8).enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let value = u64::from_ne_bytes(word);
        let address = dst + 8 * index as u64;
        // SAFETY: the destination is ours to write (the function's contract).
        unsafe {
            asm!("std {0}, 0({1})", in(reg) value, in(reg_nonzero) address, options(nostack))
        };
    }
}

/// MMCR0, the performance monitor's control register.
const SPR_MMCR0: u16 = 795;
/// PMC5: instructions completed (POWER8 fixed-function counter).
const SPR_PMC5: u16 = 791;

/// Starts the performance monitor's instruction counter (PMC5) by clearing MMCR0's freeze
/// bits. QEMU's TCG counts guest instructions into PMC5 exactly, which makes instruction
/// counts deterministic without `-icount` (POWER ISA 2.07 Book III 9.4; QEMU
/// target/ppc/power8-pmu.c).
pub fn start_instruction_counter() {
    // SAFETY: MMCR0 = 0 unfreezes the counters; no interrupt is enabled by it (PMAE = 0).
    unsafe { mtspr::<SPR_MMCR0>(0) };
    // SAFETY: a context-synchronising instruction, no other effect.
    unsafe { asm!("isync", options(nostack)) };
}

/// Instructions completed, modulo 2^32 (PMC5 is a 32-bit counter: subtract with
/// `wrapping_sub` on `u32`).
pub fn instructions_completed() -> u32 {
    mfspr::<SPR_PMC5>() as u32
}

extern "C" {
    fn vector_hypercall_probe(opcode: u64, input: *const [u64; 2], output: *mut [u64; 2]) -> u64;
    fn r1_hypercall_probe(opcode: u64, r1: u64, after: *mut [u64; 2]) -> u64;
}

/// The CR value [`hypercall_with_r1`] makes its `sc 1` with.
pub const R1_PROBE_CR: u32 = 0x2468_ace1;

/// Makes `sc 1` with `opcode` (arguments 0) while %r1 holds `r1` and CR holds
/// [`R1_PROBE_CR`], as a partition with a hostile stack pointer would; returns the status,
/// and the %r1 and CR the call came back with (the exception entry test). The real stack is
/// kept in a register meanwhile.
pub fn hypercall_with_r1(opcode: u64, r1: u64) -> (u64, u64, u32) {
    let mut after = [0u64; 2];
    // SAFETY: the probe (boot/entry.S) keeps the real stack pointer in r14 (saved and
    // restored) across the `sc 1`, touches no memory through the given r1, writes only
    // `after`, and keeps every register (and CR field) the ELFv2 ABI says a call must keep.
    let status = unsafe { r1_hypercall_probe(opcode, r1, &mut after) };
    (status, after[0], after[1] as u32)
}

/// Loads VSR0..63 from `input`, makes `sc 1` with `opcode` (arguments 0), and returns the
/// status with VSR0..63 as they came back (for the register-preservation test).
pub fn hypercall_with_vector_state(
    opcode: u64,
    input: &[[u64; 2]; 64],
    output: &mut [[u64; 2]; 64],
) -> u64 {
    // SAFETY: the probe (boot/entry.S) reads 64 x 16 bytes from `input`, writes as many to
    // `output`, and keeps every register the ELFv2 ABI says a call must keep.
    unsafe { vector_hypercall_probe(opcode, input.as_ptr(), output.as_mut_ptr()) }
}
