//! In-image tests of the boot foundation: exceptions, the heap, the frame allocator, the
//! device tree as the running machine sees it.
//!
//! Resources: POWER ISA 2.07 Book III 6.5.9 (program interrupt: SRR0 = the instruction).

use super::Test;
use crate::arch::ppc64::{cpu, percpu};
use crate::mm::FrameAllocator;
use crate::startup::{Platform, FRAMES, HEAP};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

/// The boot tests, in order.
pub const TESTS: &[Test] = &[
    Test {
        name: "program_check_is_reported",
        run: program_check_is_reported,
    },
    Test {
        name: "heap_alloc_and_free",
        run: heap_alloc_and_free,
    },
    Test {
        name: "frame_allocator_alignment",
        run: frame_allocator_alignment,
    },
    Test {
        name: "hypercall_outside_a_partition_is_refused",
        run: hypercall_outside_a_partition,
    },
    Test {
        name: "hypercall_preserves_fp_vector_state",
        run: hypercall_preserves_fp_vector_state,
    },
    Test {
        name: "every_thread_runs_work",
        run: every_thread_runs_work,
    },
];

fn program_check_is_reported(_: &Platform) -> Result<(), String> {
    let cpu_area = percpu::this_cpu();
    cpu_area.caught_vector.store(0, Ordering::Relaxed);
    cpu_area.expected_vector.store(0x700, Ordering::Release);
    cpu::trigger_program_check();
    let caught = cpu_area.caught_vector.load(Ordering::Acquire);
    if caught != 0x700 {
        return Err(format!(
            "no program interrupt recorded (caught {caught:#x})"
        ));
    }
    let address = cpu_area.caught_address.load(Ordering::Relaxed);
    let symbols = crate::startup::symbols();
    use crate::platform::fault::SymbolLookup;
    match symbols.lookup(address) {
        Some((name, _)) if name.contains("trigger_program_check") => Ok(()),
        Some((name, offset)) => Err(format!(
            "fault at {address:#x} resolved to {name}+{offset:#x}"
        )),
        None => Err(format!("fault at {address:#x} has no symbol")),
    }
}

fn heap_alloc_and_free(_: &Platform) -> Result<(), String> {
    let before = HEAP.stats();
    let mut numbers: Vec<u64> = (0..10_000).collect();
    numbers.reverse();
    let sum: u64 = numbers.iter().sum();
    if sum != 10_000 * 9_999 / 2 {
        return Err(format!("sum {sum}"));
    }
    drop(numbers);
    let after = HEAP.stats();
    if after.used != before.used {
        return Err(format!(
            "heap used {} before, {} after",
            before.used, after.used
        ));
    }
    if after.allocations <= before.allocations {
        return Err(String::from("allocation was not counted"));
    }
    Ok(())
}

fn frame_allocator_alignment(_: &Platform) -> Result<(), String> {
    let before = FRAMES.stats();
    let mut blocks = Vec::new();
    for size in [4096usize, 65536, 128 << 10, 2 << 20] {
        let pa = FRAMES
            .alloc(size)
            .ok_or_else(|| format!("no {size}-byte block"))?;
        if pa % size as u64 != 0 {
            return Err(format!("{size}-byte block at {pa:#x} is misaligned"));
        }
        blocks.push((pa, size));
    }
    for (pa, size) in blocks {
        FRAMES.free(pa, size);
    }
    let after = FRAMES.stats();
    if after.used_bytes != before.used_bytes {
        return Err(format!(
            "{} bytes leaked",
            after.used_bytes - before.used_bytes
        ));
    }
    Ok(())
}

/// The hypervisor's own code is no partition: its `sc 1` must be refused, whatever the
/// opcode, and every non-volatile register must survive the trip through the vector.
fn hypercall_outside_a_partition(_: &Platform) -> Result<(), String> {
    crate::startup::hv::leave_partition();
    let out = cpu::hypercall(0x20, &[1, 2, 3, 4, 5, 6, 7, 8]);
    if out[0] as i64 != -3 {
        return Err(format!("r3 = {:#x}, expected H_PRIVILEGE", out[0]));
    }
    Ok(())
}

static WORK_SEEN: [core::sync::atomic::AtomicU64; crate::arch::ppc64::percpu::MAX_CPUS] =
    [const { core::sync::atomic::AtomicU64::new(0) }; crate::arch::ppc64::percpu::MAX_CPUS];

fn note_work(cpu_index: usize, arg: u64) {
    // Each CPU must find its own per-CPU area through HSPRG0 (the hypercall path does).
    let own_area = percpu::this_cpu().pir.load(Ordering::Relaxed) == u64::from(cpu::pir());
    if let Some(slot) = WORK_SEEN.get(cpu_index) {
        slot.fetch_add(if own_area { arg } else { 1000 }, Ordering::Relaxed);
    }
}

fn every_thread_runs_work(platform: &Platform) -> Result<(), String> {
    let listed: usize = platform
        .machine
        .cpus
        .iter()
        .filter(|c| c.available)
        .map(|c| c.threads.len().max(1))
        .sum();
    let online = crate::arch::ppc64::smp::online_secondaries();
    if online + 1 != listed {
        return Err(format!(
            "{listed} threads in the device tree, {} online",
            online + 1
        ));
    }
    crate::arch::ppc64::smp::run_on_all(note_work, 7);
    for (index, slot) in WORK_SEEN.iter().enumerate().take(online + 1) {
        let seen = slot.load(Ordering::Relaxed);
        if seen != 7 {
            return Err(format!(
                "CPU {index} saw {seen}, expected 7 (1000 means it found another CPU's area)"
            ));
        }
    }
    let distinct_pirs: Vec<u64> = (0..=online)
        .filter_map(|i| percpu::area(i).map(|a| a.pir.load(Ordering::Relaxed)))
        .collect();
    let mut sorted = distinct_pirs.clone();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != online + 1 {
        return Err(format!("per-CPU areas share PIRs: {distinct_pirs:x?}"));
    }
    Ok(())
}

/// PAPR: a hypercall changes no register outside its volatile GPR set. The handler is Rust
/// with the FP and vector units on, so the vector code saves and restores VSR0..63, FPSCR
/// and VSCR; this loads a distinct value into every VSR, makes `sc 1`, and compares.
fn hypercall_preserves_fp_vector_state(_: &Platform) -> Result<(), String> {
    let mut input = [[0u64; 2]; 64];
    for (n, vsr) in input.iter_mut().enumerate() {
        *vsr = [
            0x0123_4567_89ab_cdef ^ (n as u64 * 0x1111),
            0xfedc_ba98_7654_3210 ^ n as u64,
        ];
    }
    let mut output = [[0u64; 2]; 64];
    crate::startup::hv::leave_partition();
    let status = cpu::hypercall_with_vector_state(0x20, &input, &mut output);
    if status as i64 != -3 {
        return Err(format!("status {}", status as i64));
    }
    match (0..64).find(|&n| input[n] != output[n]) {
        None => Ok(()),
        Some(n) => Err(format!(
            "VSR{n} came back {:x?}, was {:x?}",
            output[n], input[n]
        )),
    }
}
