//! The powernv platform: what hardware exists (from the device tree) and the firmware-level
//! services (XSCOM, LPC, console, OPAL in payload mode) that the rest of tcefw stands on.
//!
//! Resources: skiboot core/device.c, hw/xscom.c, hw/lpc.c; QEMU hw/ppc/pnv.c.
#![forbid(unsafe_code)]

pub mod config_blob;
pub mod fault;
pub mod lpc;
pub mod machine;
