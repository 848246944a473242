//! The PHB3 (POWER8 PCIe host bridge) in IODA2 mode: its registers, PBCQ bring-up over
//! XSCOM, IODA2 tables, config space and the TCE kill register.
//!
//! Bring-up order (what QEMU's model and skiboot both need):
//! 1. [`pbcq::bring_up`] programs or keeps the PBCQ BARs, checks them, then writes BAR_EN
//!    (bare mode only; in payload mode skiboot did it and the PHB registers come from `reg`);
//! 2. [`ioda::Phb3::init`] checks that the PHB answers, allocates and programs the RTT, PELTV
//!    and PEST, clears the on-chip IODA2 tables and opens the M32 window (QEMU only maps M32
//!    once BAR_EN is set, hence step 1 first);
//! 3. `crate::pci::enumerate` walks the buses through [`ioda::Phb3`]'s config space and gives
//!    each function its own PE.
//!
//! Resources: skiboot hw/phb3.c and include/phb3-regs.h; QEMU hw/pci-host/pnv_phb3.c.
#![forbid(unsafe_code)]

pub mod config;
pub mod ioda;
pub mod pbcq;
pub mod regs;
pub mod site;
mod tables;

pub use ioda::{read_tve, write_tve, M32Window, Phb3, Phb3Error, Phb3Table};
pub use pbcq::{BarPlan, PbcqError, PbcqRegister, PbcqWindows, PbcqXscom, Window, WindowKind};
