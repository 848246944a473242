//! The firmware's main line once the platform is up: banner, boot summary, the in-image
//! tests when the boot arguments (bare mode: the configuration blob) ask for them, and the
//! end of the run. Also the panic handler: a panic prints its message and location and
//! ends the run as failed.
//!
//! Resources: skiboot core/init.c (main_cpu_entry: banner, then bring-up, then payload).

pub mod hv;
pub mod pci;

use crate::platform::boot::{end_run_failed, Platform};

/// The boot-arguments word that runs the in-image tests.
pub const TEST_BOOTARG: &str = crate::selftest::plan::TEST_WORD;

/// Everything after bring-up. Never returns: the run ends with a verdict.
pub fn firmware_main(platform: &'static Platform) -> ! {
    crate::println!();
    crate::println!(
        "tcefw {} - POWER8 PHB3 TCE firmware ({} mode)",
        env!("CARGO_PKG_VERSION"),
        platform.mode.name()
    );
    for line in platform.machine.summary() {
        crate::console::log_line(crate::console::Level::Notice, format_args!("{line}"));
    }
    let frames = crate::platform::boot::FRAMES.stats();
    let heap = crate::platform::boot::HEAP.stats();
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
        let ran = crate::selftest::bench::run_all(platform);
        platform.end_run(ran)
    }
    if let Some(passed) = crate::selftest::run_requested(platform) {
        platform.end_run(passed)
    }
    crate::log!(
        Notice,
        "BOOT",
        "boot complete (in-image tests: ./qemu-run.sh --test, or '{TEST_BOOTARG}' in the boot arguments)"
    );
    platform.end_run(true)
}

/// `core::fmt::Write` onto the console.
pub struct ConsoleWriter;

impl core::fmt::Write for ConsoleWriter {
    fn write_str(&mut self, text: &str) -> core::fmt::Result {
        crate::print!("{text}");
        Ok(())
    }
}

#[cfg(not(test))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    crate::console::emergency_print(format_args!("PANIC: {info}\n"));
    end_run_failed("panic")
}

/// The prebuilt `core` refers to this symbol even with panic=abort; it is never called.
#[no_mangle]
extern "C" fn rust_eh_personality() {}

/// The prebuilt `alloc` has landing pads that name this; with panic=abort nothing unwinds,
/// so reaching it is a broken invariant.
#[no_mangle]
extern "C" fn _Unwind_Resume() -> ! {
    end_run_failed("_Unwind_Resume reached: unwinding is not supported")
}
