//! The PHB3 (POWER8 PCIe host bridge) in IODA2 mode: its registers, PBCQ bring-up over
//! XSCOM, IODA2 tables, config space and the TCE kill register.
//!
//! Resources: skiboot hw/phb3.c and include/phb3-regs.h; QEMU hw/pci-host/pnv_phb3.c.

pub mod regio;
pub mod regs;
