//! Startup: the one home of everything that starts and ends a run. arch's entry code calls
//! in here through its hooks (the table in src/lib.rs): the boot CPU's main line
//! ([`boot`]), each released thread ([`prepare_secondary`]), every unexpected interrupt
//! ([`report_exception`], [`end_run_failed`]). Here live the allocator statics, the console
//! wiring, the bring-up of the platform ([`bring_up`]), the firmware's main sequence
//! ([`sequence`]: banner, SMP, PCI, the hypervisor, the in-image runs), the end of the run
//! and the panic handler.
//!
//! Bare mode (`-bios`): QEMU hands us its device tree; the console is the LPC UART through
//! XSCOM, HID0[HILE] is ours to set, and the run ends through the ib700 watchdog.
//! Payload mode (`-kernel` under skiboot): skiboot's tree has `/ibm,opal`; the console and
//! HILE go through OPAL, our vectors replace skiboot's at 0 (as Linux does), and the run
//! ends with OPAL_CEC_POWER_DOWN. Nothing above the platform cares which mode it is.
//!
//! Resources: skiboot core/init.c (main_cpu_entry: console, memory, CPUs, PHBs, payload);
//! Linux arch/powerpc/kernel/setup_64.c (early_setup, then setup_arch).
// Denied (crate-wide), not forbidden: hv.rs allows the one phase-2 call.
#![deny(unsafe_code)]

mod bring_up;
mod console;
pub mod hv;
pub mod pci;
mod sequence;

pub use bring_up::{platform, BootMode, Platform};

use crate::arch::ppc64::boot::{symbol_table, Handover};
use crate::arch::ppc64::cpu;
use crate::hw::trap::TrapFrame;
use crate::mm::frame::BuddyAllocator;
use crate::mm::phys::{block_cache::BlockCache, heap::TwoRegionHeap, BootAuthority};
use crate::platform::fault::{write_report, TextSymbols};
use spin::Once;

/// The firmware heap (the global allocator).
#[global_allocator]
pub static HEAP: TwoRegionHeap = TwoRegionHeap::new();
/// The frame allocator for hardware tables.
pub static FRAMES: BuddyAllocator = BuddyAllocator::new();
/// TCE table levels come through this lock-free cache in front of [`FRAMES`], so that a
/// hypercall that needs a new level takes no lock while the cache has blocks.
pub static TABLE_BLOCKS: BlockCache<'static> = BlockCache::new(&FRAMES, 256);

/// The in-image runs the main sequence may end with, handed in by the crate root (they live
/// in `crate::selftest`, above this module). Each returns true when everything passed.
pub struct InImage {
    /// Runs the in-image tests the boot arguments ask for (`./qemu-run.sh --test`, or the
    /// test word in the boot arguments): `None` when they ask for none.
    pub tests: fn(&Platform) -> Option<bool>,
    /// The boot-arguments word that asks for the in-image tests.
    pub test_word: &'static str,
    /// The in-image benchmarks (`./qemu-run.sh --bench`).
    pub benchmarks: fn(&Platform) -> bool,
}

static AUTHORITY: Once<BootAuthority> = Once::new();

/// The boot CPU's main line: early heap and console, bring-up, then the main sequence.
pub fn boot(handover: Handover, authority: BootAuthority, in_image: &InImage) -> ! {
    let authority = AUTHORITY.call_once(|| authority);
    HEAP.add_early_arena();
    if let Some(opal) = handover.opal() {
        // Under skiboot: OPAL's console works before we read anything.
        console::use_opal(opal);
    }
    match bring_up::bring_up(&handover, authority) {
        Ok(platform) => sequence::firmware_main(platform, in_image),
        Err(message) => {
            crate::println!("tcefw: boot failed: {message}");
            end_run_failed("boot failed")
        }
    }
}

/// Run first on every released thread: in bare mode hypervisor interrupts must be taken
/// little-endian before the thread can take one (under skiboot, OPAL_REINIT_CPUS did it for
/// every thread).
pub fn prepare_secondary() {
    if platform().is_some_and(|p| p.mode == BootMode::Bare) {
        cpu::set_hile();
    }
}

/// The image's symbol table, for fault reports.
pub fn symbols() -> TextSymbols<'static> {
    TextSymbols::new(symbol_table())
}

/// Prints the report of an interrupt, even if the console's lock is held by the context
/// it interrupted.
pub fn report_exception(frame: &TrapFrame, fatal: bool) {
    struct EmergencyConsole;
    impl core::fmt::Write for EmergencyConsole {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            crate::console::emergency_print(format_args!("{s}"));
            Ok(())
        }
    }
    let _ = write_report(&mut EmergencyConsole, frame, &symbols(), fatal);
}

/// Ends the run as failed, from anywhere (panics, unexpected exceptions).
pub fn end_run_failed(reason: &str) -> ! {
    crate::console::emergency_print(format_args!("tcefw: {reason}\n"));
    match platform() {
        Some(platform) => platform.end_run(false),
        None => {
            crate::console::emergency_print(format_args!("tcefw: run ended: FAIL\n"));
            halt()
        }
    }
}

fn halt() -> ! {
    loop {
        cpu::relax();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    crate::console::emergency_print(format_args!("PANIC: {info}\n"));
    end_run_failed("panic")
}
