//! The hostile-caller fuzz, small (the CI size of `benches/fuzz_hcall.rs`, same code path:
//! `tcefw::model::fuzz`): a few thousand random hypercalls with hostile arguments through
//! `dispatch`, from four partitions placed at random (4 KiB granular, one only 4K-aligned in
//! host memory) against windows of every page size, with device DMA inside and outside the
//! windows (aliases included). Each rejected call is checked to leave tables, pins, dirty
//! bits, kill counters, TVTs, grants, frame-allocator and heap usage bit-for-bit unchanged,
//! with audits along the way and a teardown that must give everything back.
//!
//! Then it proves the check can fail: the state comparison sees each kind of change made
//! behind its back, and a planted validation bug (H_PUT_TCE_INDIRECT applying entries before
//! the whole list is validated: `HcallFault::IndirectApplyBeforeValidate`) is caught as
//! "rejected calls that changed state".
//!
//! One `#[test]` only: the heap is counted process-wide, so nothing else may run meanwhile.

use tcefw::hcall::HcallFault;
use tcefw::model::fuzz::{self, FuzzConfig, FuzzReport};

#[path = "support/fuzz_hooks.rs"]
mod fuzz_hooks;
use fuzz_hooks::Hooks;

fn run(seed: u64, hypercalls: u64, fault: HcallFault) -> FuzzReport {
    fuzz::run(
        &FuzzConfig {
            seed,
            hypercalls,
            audit_every: 250,
            fault,
        },
        &Hooks,
    )
}

#[test]
fn hostile_calls_change_nothing_and_the_check_can_fail() {
    // The real run: two seeds.
    for seed in [1, 0x5EED] {
        let report = run(seed, 3_000, HcallFault::None);
        eprintln!(
            "seed {seed:#x}: {} cases, {} hypercalls ({} accepted, {} rejected), {} DMAs, \
             {} audits, peak tables {} KiB",
            report.cases,
            report.hypercalls,
            report.accepted.iter().sum::<u64>(),
            report.rejected.iter().sum::<u64>(),
            report.dmas,
            report.audits,
            report.peak_table_bytes >> 10
        );
        assert!(report.is_clean(), "{report:#?}");
        assert!(report.heap_checked);
        // The run must exercise both outcomes of every opcode it knows.
        for (i, (name, _)) in fuzz::OPCODES.iter().enumerate().take(8) {
            assert!(report.accepted[i] > 0, "{name} never accepted: {report:#?}");
            assert!(report.rejected[i] > 0, "{name} never rejected: {report:#?}");
        }
        assert!(report.rejected[8] > 0, "unknown opcodes thrown");
        // The widened generator reaches what the issue-8 defects needed: every page size from
        // every partition, guest pages on misaligned host addresses, and aliased DMA.
        for (part, sizes) in report.mapping_tces.iter().enumerate() {
            assert!(
                sizes.iter().all(|&n| n > 0),
                "partition {part} did not meet every page size: {sizes:?}"
            );
        }
        assert!(report.misaligned_host_tces > 0, "{report:#?}");
        assert!(report.alias_dmas > 0, "{report:#?}");
    }

    // The comparison sees every kind of state it claims to cover.
    fuzz::detector_self_test().unwrap();

    // A planted bug on a rejected path is caught.
    let report = run(1, 3_000, HcallFault::IndirectApplyBeforeValidate);
    eprintln!(
        "planted IndirectApplyBeforeValidate: {} rejected calls changed state; first: {:?}",
        report.state_changing_rejections, report.first_problem
    );
    assert!(
        report.state_changing_rejections > 0,
        "the planted bug went unseen: {report:#?}"
    );
    assert_eq!(report.crashes, 0);
}
