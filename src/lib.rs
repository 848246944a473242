//! tcefw: bare-metal POWER8 firmware that owns a PHB3's DMA translation.
//!
//! The library holds every piece of logic so that the host can test it; the `tcefw` binary
//! is a thin entry for the ppc64le image. Data flows one way:
//! `boot/` → [`arch`] → [`platform`] (what hardware exists) → [`phb3`]/[`pci`] (bring it up)
//! → [`iommu`] (translate) ← [`hcall`] (the callers' interface).
//!
//! Resources: skiboot (hw/phb3.c, hw/xscom.c, hw/lpc.c), QEMU hw/ppc/pnv*.c and
//! hw/pci-host/pnv_phb3*.c, LoPAR (TCE hypercalls), Linux arch/powerpc/platforms/powernv.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

#[cfg(target_arch = "powerpc64")]
pub mod arch;
pub mod console;
pub mod devtree;
pub mod hcall;
pub mod hv;
pub mod hw;
pub mod iommu;
pub mod mm;
pub mod model;
pub mod papr;
pub mod pci;
pub mod phb3;
pub mod platform;
pub mod selftest;
#[cfg(target_arch = "powerpc64")]
pub mod startup;

/// The hook table through which arch's entry and trap code reach the layers above it (see
/// `arch::ppc64::hooks`): the crate root wires startup to it, and hands startup the in-image
/// runs of `selftest`, which sits above startup.
#[cfg(target_arch = "powerpc64")]
#[no_mangle]
static TCEFW_HOOKS: arch::ppc64::hooks::Hooks = arch::ppc64::hooks::Hooks {
    boot: boot_main_line,
    prepare_secondary: startup::prepare_secondary,
    report_exception: startup::report_exception,
    end_run_failed: startup::end_run_failed,
};

#[cfg(target_arch = "powerpc64")]
fn boot_main_line(handover: arch::ppc64::boot::Handover) -> ! {
    startup::boot(
        handover,
        &startup::InImage {
            tests: selftest::run_requested,
            test_word: selftest::plan::TEST_WORD,
            benchmarks: selftest::bench::run_all,
        },
    )
}
