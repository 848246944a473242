//! Benchmark-style hostile-guest fuzz of the HPT and RTAS calls (not a timing benchmark): one
//! million random hypercalls from a partition through `papr::route` + `Papr::handle`, the
//! same engine and checks as `tests/hv_fuzz.rs` (`tests/support/hv_fuzz.rs`): no panic, a
//! refused call changes nothing, RTAS writes only its return cells, the neighbour partition
//! is untouched, audits clean. Prints the figures and exits non-zero if anything failed.
//!
//! Run: `cargo bench --target x86_64-unknown-linux-gnu --bench fuzz_hv`
//! Options (after `--`): `--calls N`, `--seed S`.

#[path = "../tests/support/hv_fakes.rs"]
mod hv_fakes;
#[path = "../tests/support/hv_fuzz.rs"]
mod hv_fuzz;

use std::time::Instant;

fn value_after(args: &[String], flag: &str) -> Option<u64> {
    let at = args.iter().position(|a| a == flag)?;
    let text = args.get(at + 1)?;
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.replace('_', "").parse().ok(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let calls = value_after(&args, "--calls").unwrap_or(1_000_000);
    let seed = value_after(&args, "--seed").unwrap_or(0x5eed_0002);
    let started = Instant::now();
    let report = hv_fuzz::run(calls, seed);
    let seconds = started.elapsed().as_secs_f64();
    println!("hv fuzz (HPT + RTAS), seed {seed:#x}");
    println!("calls:                {}", report.calls);
    for (name, (accepted, refused)) in &report.by_opcode {
        println!("  {name:<18} {accepted:>9} accepted {refused:>9} refused");
    }
    println!("panics:               {}", report.panics);
    println!("audits:               {}", report.audits);
    println!("guest HPTEs at end:   {}", report.final_guest_entries);
    println!("failures:             {}", report.failures.len());
    for failure in &report.failures {
        println!("  FAILURE: {failure}");
    }
    println!(
        "time:                 {seconds:.2} s ({:.0} calls/s)",
        report.calls as f64 / seconds
    );
    if report.panics != 0 || !report.failures.is_empty() {
        std::process::exit(1);
    }
}
