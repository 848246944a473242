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
#[cfg(target_arch = "powerpc64")]
pub mod firmware;
#[cfg(target_arch = "powerpc64")]
pub use firmware::firmware_main;
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
