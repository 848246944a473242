//! Benchmark-style hostile-caller fuzz (not a timing benchmark): one million random hypercalls
//! with hostile arguments against the PHB3 model rig, through the same code path as
//! `tests/hcall_fuzz.rs` (`tcefw::model::fuzz`). Four partitions with random guest bases,
//! sizes and host placements (4 KiB granular; one only 4K-aligned in host memory, one 64K, one
//! 16M, one anywhere) meet windows of every page size, and the device DMAs inside and outside
//! every window, aliases at multiples of the table's reach included. Every rejected call is checked to leave
//! tables, pins, dirty bits, kill counters, TVTs, grants, frame-allocator and heap usage
//! bit-for-bit unchanged; the audit runs every 10,000 hypercalls and at the end; panics are caught
//! with `catch_unwind` and counted. Prints the figures and exits non-zero if anything failed.
//!
//! Run: `cargo bench --target x86_64-unknown-linux-gnu --bench fuzz_hcall`
//! Options (after `--`): `--hypercalls N`, `--seed S`, `--plant-fault` (plants
//! `HcallFault::IndirectApplyBeforeValidate` and expects the check to catch it).

use std::time::Instant;
use tcefw::hcall::HcallFault;
use tcefw::model::fuzz::{self, FuzzConfig, FuzzHooks, FuzzReport, OPCODES, STATUSES};

#[path = "../tests/support/fuzz_hooks.rs"]
mod fuzz_hooks;
use fuzz_hooks::Hooks;

fn value_after(args: &[String], flag: &str) -> Option<u64> {
    let at = args.iter().position(|a| a == flag)?;
    let text = args.get(at + 1)?;
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.replace('_', "").parse().ok(),
    }
}

fn print(report: &FuzzReport, seconds: f64) {
    println!(
        "cases run:                      {} (hypercalls + DMAs)",
        report.cases
    );
    println!(
        "  hypercalls:                   {} ({} accepted, {} rejected)",
        report.hypercalls,
        report.accepted.iter().sum::<u64>(),
        report.rejected.iter().sum::<u64>()
    );
    println!(
        "  device DMAs between them:     {} ({} at aliases of a window's address)",
        report.dmas, report.alias_dmas
    );
    println!(
        "mapping TCEs per caller (4K / 64K / 16M pages): {:?}; {} with a guest page whose host \
         address is misaligned (each must be refused)",
        report.mapping_tces, report.misaligned_host_tces
    );
    println!("per opcode (accepted / rejected):");
    for (i, (name, _)) in OPCODES.iter().enumerate() {
        println!(
            "  {name:<24} {:>9} / {:>9}",
            report.accepted[i], report.rejected[i]
        );
    }
    println!("per status:");
    for (i, (name, _)) in STATUSES.iter().enumerate() {
        if report.by_status[i] != 0 {
            println!("  {name:<24} {:>9}", report.by_status[i]);
        }
    }
    println!("crashes (panics caught):        {}", report.crashes);
    println!(
        "rejected calls that changed state: {}",
        report.state_changing_rejections
    );
    println!(
        "rejected calls with outputs:    {}",
        report.outputs_on_rejection
    );
    println!(
        "read-only calls that changed state: {}",
        report.read_only_changes
    );
    println!(
        "hostile calls accepted:         {}",
        report.hostile_accepted
    );
    println!(
        "valid calls refused (not memory/resource): {}",
        report.valid_refused
    );
    println!("H_GET_TCE answers outside caller: {}", report.bad_outputs);
    println!(
        "audits: {} run, {} failed; stale device reaches: {}",
        report.audits, report.audit_failures, report.stale_reaches
    );
    println!(
        "teardown gave everything back:  {} (heap measured: {}); peak table memory {} KiB",
        report.teardown_clean,
        report.heap_checked,
        report.peak_table_bytes >> 10
    );
    println!("wall time:                      {seconds:.2} s");
    if let Some(problem) = &report.teardown_problem {
        println!("{problem}");
    }
    if let Some(problem) = &report.first_problem {
        println!("first problem: {problem}");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let hypercalls = value_after(&args, "--hypercalls").unwrap_or(1_000_000);
    let seed = value_after(&args, "--seed").unwrap_or(0x7CEF_0005);
    let plant = args.iter().any(|a| a == "--plant-fault");
    let fault = if plant {
        HcallFault::IndirectApplyBeforeValidate
    } else {
        HcallFault::None
    };
    println!(
        "tcefw hostile-caller fuzz: {hypercalls} hypercalls, seed {seed:#x}, fault {fault:?} \
         (host, two PHB3 models, state compared after every call)"
    );
    // The release profile says panic = "abort"; prove this binary unwinds, or a crash would
    // end the run instead of being counted.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let probe = Hooks.guard(&mut || panic!("probe"));
    std::panic::set_hook(default_hook);
    if probe.is_some() {
        println!("verdict: FAIL (panics are not caught in this build)");
        std::process::exit(1);
    }
    println!("panic probe: caught by catch_unwind (this build unwinds)");
    for (i, p) in fuzz::layout(seed).iter().enumerate() {
        println!(
            "partition {i}: {:<10} guest {:#011x} size {:#09x} host RAM+{:#09x}",
            format!("{:?}", p.placement),
            p.guest,
            p.size,
            p.host_offset
        );
    }
    let start = Instant::now();
    let report = fuzz::run(
        &FuzzConfig {
            seed,
            hypercalls,
            audit_every: 10_000,
            fault,
        },
        &Hooks,
    );
    let seconds = start.elapsed().as_secs_f64();
    print(&report, seconds);
    let ok = if plant {
        report.state_changing_rejections > 0 && report.crashes == 0
    } else {
        report.is_clean() && report.hypercalls == hypercalls
    };
    println!("verdict: {}", if ok { "PASS" } else { "FAIL" });
    if !ok {
        std::process::exit(1);
    }
}
