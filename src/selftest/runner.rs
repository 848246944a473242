//! The in-image test runner: selects the tests the boot arguments ask for, runs them tier
//! by tier with the hypervisor's audit after each, times them with the timebase, and
//! prints the result and verdict lines (their format is in [`super::plan`]).
//!
//! Resources: the serial-sentinel test style of rust-raspberrypi-OS-tutorials.

use super::plan::{self, Outcome, Request, Tally};
use super::{Test, TIERS};
use crate::startup::Platform;
use alloc::vec::Vec;

/// Runs (or lists) what the boot arguments ask for; `None` when they ask for nothing.
/// `Some(true)` when the run passed.
pub fn run_requested(platform: &Platform) -> Option<bool> {
    let request = Request::from_boot_args(&platform.boot_args);
    request.wanted().then(|| run(platform, &request))
}

/// Runs every test the request selects (or lists them) and prints the verdict line.
/// Returns true when the run passed.
pub fn run(platform: &Platform, request: &Request) -> bool {
    let tests: Vec<(&str, &Test)> = TIERS
        .iter()
        .flat_map(|(tier, tests)| tests.iter().map(move |test| (*tier, test)))
        .collect();
    let names: Vec<(&str, &str)> = tests.iter().map(|(tier, t)| (*tier, t.name)).collect();
    let selected = match plan::select(request, &names) {
        Ok(selected) => selected,
        Err(problem) => {
            crate::println!("FAIL selection: {problem} (./qemu-run.sh --list names them)");
            let tally = Tally {
                failed: 1,
                ..Tally::default()
            };
            crate::println!("{}", tally.verdict_line());
            return false;
        }
    };
    if request.list {
        for &index in &selected {
            let (tier, test) = tests[index];
            crate::println!("{}", plan::list_line(tier, test.name));
        }
        crate::println!("{} test(s) listed", selected.len());
        return true;
    }
    crate::log!(
        Notice,
        "TEST",
        "running {} of {} tests ({})",
        selected.len(),
        tests.len(),
        request.describe()
    );
    let hz = crate::console::timebase_hz();
    let mut tally = Tally::default();
    for (tier, _) in TIERS {
        let in_tier: Vec<&Test> = selected
            .iter()
            .map(|&index| tests[index])
            .filter(|(t, _)| *t == tier)
            .map(|(_, test)| test)
            .collect();
        if in_tier.is_empty() {
            continue;
        }
        crate::println!("{}", plan::tier_line(tier, in_tier.len()));
        for test in in_tier {
            let start = crate::console::timebase();
            let mut outcome = Outcome::of((test.run)(platform));
            // Every test ends with the hypervisor's audit: a test that leaves a pin
            // without a TCE, a TCE into firmware memory or a leaked table fails even if
            // its own checks passed (or it skipped half-way).
            if !matches!(outcome, Outcome::Fail(_)) {
                if let Err(reason) = audit() {
                    outcome = Outcome::Fail(reason);
                }
            }
            let ticks = crate::console::timebase().wrapping_sub(start);
            tally.add(&outcome);
            crate::println!("{}", plan::result_line(test.name, &outcome, ticks, hz));
        }
        // The timestamp says how long each tier takes (edu's DMAs take 100 ms each).
        crate::log!(Notice, "TEST", "{tier} tests done");
    }
    crate::println!("{}", tally.verdict_line());
    tally.passed_run()
}

fn audit() -> Result<(), alloc::string::String> {
    let Some(hv) = crate::startup::hv::hypervisor() else {
        return Ok(());
    };
    // The table block cache serves TCE tables and nothing else, so its used bytes must
    // equal the table bytes the walk finds ("the allocator counters match the tables
    // that exist").
    let used = crate::hcall::audit::AllocatorUsage {
        frame_bytes: crate::startup::TABLE_BLOCKS.stats().used_bytes,
        heap_bytes: None,
    };
    let others = crate::hcall::audit::AllocatorUsage {
        frame_bytes: 0,
        heap_bytes: None,
    };
    let report = hv.audit_with_usage(used, others);
    if report.is_clean() {
        Ok(())
    } else {
        Err(alloc::format!(
            "audit after the test: {:?}",
            report.violations
        ))
    }
}
