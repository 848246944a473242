//! The hostile-guest fuzz of the HPT and RTAS calls (`support/hv_fuzz.rs`), CI-sized and with
//! a fixed seed. `TCEFW_HV_FUZZ_CALLS` and `TCEFW_HV_FUZZ_SEED` change the size and seed;
//! `cargo bench --bench fuzz_hv` is the million-call run.

#[path = "support/hv_fakes.rs"]
mod hv_fakes;
#[path = "support/hv_fuzz.rs"]
mod hv_fuzz;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| match v.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => v.replace('_', "").parse().ok(),
        })
        .unwrap_or(default)
}

#[test]
fn hostile_hpt_and_rtas_calls_never_panic_and_refusals_change_nothing() {
    let calls = env_u64("TCEFW_HV_FUZZ_CALLS", 100_000);
    let seed = env_u64("TCEFW_HV_FUZZ_SEED", 0x5eed_0001);
    let report = hv_fuzz::run(calls, seed);
    println!(
        "hv fuzz: {} calls (seed {seed:#x}), {} panics, {} audits, {} guest HPTEs at the end",
        report.calls, report.panics, report.audits, report.final_guest_entries
    );
    for (name, (accepted, refused)) in &report.by_opcode {
        println!("  {name:<14} {accepted:>7} accepted {refused:>7} refused");
    }
    for failure in &report.failures {
        println!("  FAILURE: {failure}");
    }
    assert_eq!(report.panics, 0);
    assert!(
        report.failures.is_empty(),
        "{} failures",
        report.failures.len()
    );
    for name in [
        "H_ENTER",
        "H_REMOVE",
        "H_PROTECT",
        "H_READ",
        "H_BULK_REMOVE",
        "H_RTAS",
    ] {
        let (accepted, refused) = report.by_opcode.get(name).copied().unwrap_or_default();
        assert!(
            accepted > 0 && refused > 0,
            "{name}: {accepted} accepted, {refused} refused"
        );
    }
    assert!(report.final_guest_entries > 0);
}
