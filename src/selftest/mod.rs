//! In-image tests: run at boot when the boot arguments contain `tcefw.test`. Each prints
//! `PASS name` or `FAIL name: reason`, then one `N passed, N failed` line that qemu-run.sh
//! reads for its verdict.
//!
//! Resources: the serial-sentinel test style of rust-raspberrypi-OS-tutorials; QEMU's edu
//! device (hw/misc/edu.c) for DMA tests.

use crate::platform::boot::Platform;

pub mod bench;
mod boot_tests;
mod bulk_tests;
mod entry_tests;
mod kill_tests;
mod pci_tests;
mod support;
mod tce_tests;

/// One in-image test: a name and a body that returns `Err(reason)` on failure.
pub struct Test {
    /// Test name, as printed.
    pub name: &'static str,
    /// The test body.
    pub run: fn(&Platform) -> Result<(), alloc::string::String>,
}

/// Runs every test and prints the summary line. Returns true when all passed.
pub fn run_all(platform: &Platform) -> bool {
    let suites: [(&str, &[Test]); 6] = [
        ("boot", boot_tests::TESTS),
        ("entry", entry_tests::TESTS),
        ("pci", pci_tests::TESTS),
        ("tce", tce_tests::TESTS),
        ("kill", kill_tests::TESTS),
        ("bulk", bulk_tests::TESTS),
    ];
    let mut passed = 0;
    let mut failed = 0;
    for (suite, tests) in suites {
        for test in tests {
            // Every test ends with the hypervisor's audit: a test that leaves a pin without a
            // TCE, a TCE into firmware memory or a leaked table fails even if its own checks
            // passed.
            match (test.run)(platform).and_then(|()| audit()) {
                Ok(()) => {
                    passed += 1;
                    crate::println!("PASS {}", test.name);
                }
                Err(reason) => {
                    failed += 1;
                    crate::println!("FAIL {}: {reason}", test.name);
                }
            }
        }
        // The timestamp says how long each tier takes (edu's DMAs take 100 ms each).
        crate::log!(Notice, "TEST", "{suite} tests done");
    }
    crate::println!("{passed} passed, {failed} failed");
    failed == 0 && passed > 0
}

fn audit() -> Result<(), alloc::string::String> {
    let Some(hv) = crate::firmware::hv::hypervisor() else {
        return Ok(());
    };
    // The table block cache serves TCE tables and nothing else, so its used bytes must equal
    // the table bytes the walk finds ("the allocator counters match the tables that exist").
    let used = crate::hcall::audit::AllocatorUsage {
        frame_bytes: crate::platform::boot::TABLE_BLOCKS.stats().used_bytes,
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
