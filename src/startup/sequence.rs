//! The firmware's main line once the platform is up: banner, boot summary, the secondary
//! threads, the PHBs, the hypervisor, then the in-image tests or benchmarks when the build
//! or the boot arguments (bare mode: the configuration blob) ask for them, and the end of the
//! run.
//!
//! Resources: skiboot core/init.c (main_cpu_entry: banner, then bring-up, then payload).
#![forbid(unsafe_code)]

use super::{hv, pci, InImage, Platform, FRAMES, HEAP};

/// Everything after bring-up. Never returns: the run ends with a verdict.
pub(super) fn firmware_main(platform: &'static Platform, in_image: &InImage) -> ! {
    crate::println!();
    crate::println!(
        "tcefw {} - POWER8 PHB3 TCE firmware ({} mode)",
        env!("CARGO_PKG_VERSION"),
        platform.mode.name()
    );
    for line in platform.machine.summary() {
        crate::console::log_line(crate::console::Level::Notice, format_args!("{line}"));
    }
    let frames = FRAMES.stats();
    let heap = HEAP.stats();
    crate::log!(
        Notice,
        "MEM",
        "heap {} KiB ({} KiB used), frame allocator {} MiB free in {} ranges",
        heap.size >> 10,
        heap.used >> 10,
        frames.managed_bytes >> 20,
        platform.free_ranges.len()
    );
    let online = platform.start_secondaries();
    crate::log!(
        Notice,
        "SMP",
        "{} CPU(s) online ({} secondary thread(s) released)",
        online + 1,
        online
    );
    let hosts = pci::bring_up_all(platform);
    if let Err(why) = hv::setup(platform, hosts) {
        crate::log!(Error, "HV", "no hypervisor: {why}");
    }
    if cfg!(feature = "fault-demo") {
        crate::log!(
            Notice,
            "BOOT",
            "fault-demo build: provoking an unexpected program check"
        );
        crate::arch::ppc64::cpu::trigger_program_check();
    }
    if cfg!(feature = "bench") {
        let ran = (in_image.benchmarks)(platform);
        platform.end_run(ran)
    }
    if let Some(passed) = (in_image.tests)(platform) {
        platform.end_run(passed)
    }
    crate::log!(
        Notice,
        "BOOT",
        "boot complete (in-image tests: ./qemu-run.sh --test, or '{}' in the boot arguments)",
        in_image.test_word
    );
    platform.end_run(true)
}
