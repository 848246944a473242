//! tcefw: bare-metal POWER8 firmware that owns a PHB3's DMA translation and serves the
//! PAPR TCE hypercalls.
//!
//! The library holds every piece of logic so that the host can test it; the `tcefw` binary
//! is a thin entry for the ppc64le image.
//!
//! **Layers.** The modules below are declared bottom to top, and that order is the layering:
//! a module may use the modules declared before it, never one declared after it.
//! tests/layering.rs reads this order from this file, prints every edge between top-level
//! modules, and fails on a cycle or an upward edge. arch reaches upward only through the
//! hook table at the end of this file.
//!
//! **Unsafe.** `unsafe_code` is denied crate-wide and forbidden in every logic module; it is
//! allowed only in `arch` and `mm::phys` (and, until phase 2 of the restructuring takes it
//! out, in `iommu` and `model`), and on three reviewed items: the hook table's `#[no_mangle]`
//! below, the gdb helpers' `#[no_mangle]` entry in `selftest::gdb`, and the partition pool's
//! `iommu::ram::Ram::new` call in `startup::hv`.
//!
//! Resources: skiboot (hw/phb3.c, hw/xscom.c, hw/lpc.c), QEMU hw/ppc/pnv*.c and
//! hw/pci-host/pnv_phb3*.c, LoPAR (TCE hypercalls), Linux arch/powerpc/platforms/powernv.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![forbid(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

extern crate alloc;

// Hardware interfaces and layouts shared with boot/; no logic, no unsafe.
pub mod hw;
// Generic flattened-device-tree reader and writer.
pub mod devtree;
// Physical memory, the frame allocator, the heap and the block cache.
pub mod mm;
// print!/log! and the early buffer, over a hw::console::Sink.
pub mod console;
// POWER8: assembly, entry points, MMIO, XSCOM, OPAL, per-CPU, SMP, traps.
#[cfg(target_arch = "powerpc64")]
#[allow(unsafe_code)]
pub mod arch;
// The powernv platform: the machine from its device tree, LPC, fault reports.
pub mod platform;
// PCI below any host bridge: config space, enumeration, BARs, PEs, the edu driver.
pub mod pci;
// The PHB3: registers, PBCQ, IODA2 tables, config space, sites.
pub mod phb3;
// TCE tables, windows, the update protocol, page accounting.
#[allow(unsafe_code)] // Phase 2 of the restructuring takes unsafe out of iommu/.
pub mod iommu;
// PAPR hypercalls over the IOMMU: partitions, LIOBNs, windows, audit.
pub mod hcall;
// Guest partitions: guest-real memory, LPIDs, the per-partition HPT, the ELF loader plan.
pub mod hv;
// The PAPR platform a partition sees: hcall routing and dispatch, RTAS, vty, XICS, statuses.
pub mod papr;
// The software PHB3 model and the fuzzer's driver, for host tests and benchmarks.
#[allow(unsafe_code)] // Phase 2 takes the model out of the image and unsafe out of it.
pub mod model;
// Starting and ending a run: entry main line, allocator statics, bring-up, main sequence.
#[cfg(target_arch = "powerpc64")]
pub mod startup;
// In-image tests and benchmarks run under QEMU (the test plan is host-tested too).
pub mod selftest;

/// The hook table through which arch's entry and trap code reach the layers above it (see
/// `arch::ppc64::hooks`): the crate root wires startup to it, and hands startup the in-image
/// runs of `selftest`, which sits above startup.
#[cfg(target_arch = "powerpc64")]
#[allow(unsafe_code)] // Reviewed: #[no_mangle] is how arch finds the table without naming it.
#[no_mangle]
static TCEFW_HOOKS: arch::ppc64::hooks::Hooks = arch::ppc64::hooks::Hooks {
    boot: boot_main_line,
    prepare_secondary: startup::prepare_secondary,
    report_exception: startup::report_exception,
    end_run_failed: startup::end_run_failed,
};

#[cfg(target_arch = "powerpc64")]
fn boot_main_line(handover: arch::ppc64::boot::Handover, authority: mm::phys::BootAuthority) -> ! {
    startup::boot(
        handover,
        authority,
        &startup::InImage {
            tests: selftest::run_requested,
            test_word: selftest::plan::TEST_WORD,
            benchmarks: selftest::bench::run_all,
        },
    )
}
