//! In-image tests: run at boot when the boot arguments ask for them (`tcefw.test`, see
//! [`plan`]; in bare mode the boot arguments come from the configuration blob). Tests run
//! tier by tier; each prints `PASS name (T s)`, `FAIL name (T s): reason` or
//! `SKIP name (T s): reason` (the machine lacks a device the test needs), and the run ends
//! with one `N passed, N failed, N skipped` line that qemu-run.sh reads for its verdict.
//! `tcefw.list` prints the selected tests instead of running them.
//!
//! Resources: the serial-sentinel test style of rust-raspberrypi-OS-tutorials; QEMU's edu
//! device (hw/misc/edu.c) for DMA tests.

pub mod plan;

#[cfg(target_arch = "powerpc64")]
pub mod bench;
#[cfg(target_arch = "powerpc64")]
mod boot_tests;
#[cfg(target_arch = "powerpc64")]
mod bulk_tests;
#[cfg(target_arch = "powerpc64")]
mod entry_tests;
#[cfg(target_arch = "powerpc64")]
pub mod gdb;
#[cfg(target_arch = "powerpc64")]
mod kill_tests;
#[cfg(target_arch = "powerpc64")]
mod pci_tests;
#[cfg(target_arch = "powerpc64")]
mod support;
#[cfg(target_arch = "powerpc64")]
mod tce_tests;

#[cfg(target_arch = "powerpc64")]
mod runner;

#[cfg(target_arch = "powerpc64")]
pub use runner::{run, run_requested};

/// One in-image test: a name and a body that returns `Err(reason)` on failure, or
/// `Err(plan::skip(reason))` when the machine lacks what it needs.
#[cfg(target_arch = "powerpc64")]
pub struct Test {
    /// Test name, as printed.
    pub name: &'static str,
    /// The test body.
    pub run: fn(&crate::startup::Platform) -> Result<(), alloc::string::String>,
}

/// The registry: every test, tier by tier, in run order. A new test goes into its tier's
/// `TESTS`, a new tier here.
#[cfg(target_arch = "powerpc64")]
pub const TIERS: [(&str, &[Test]); 6] = [
    ("boot", boot_tests::TESTS),
    ("entry", entry_tests::TESTS),
    ("pci", pci_tests::TESTS),
    ("tce", tce_tests::TESTS),
    ("kill", kill_tests::TESTS),
    ("bulk", bulk_tests::TESTS),
];
