//! Where the PHB3s are: turns the device tree into one `PhbSite` per PHB, the same way in
//! both boot modes, so that everything after discovery runs one code path.
//!
//! Bare mode (QEMU's tree): the `ibm,power8-pbcq` nodes under each chip's xscom node give the
//! PBCQ's PCB bases; the register and MMIO windows come from the PBCQ BARs later. Payload
//! mode (skiboot's tree): the `ibm,power8-pciex` nodes give the register block and the M32
//! window directly; skiboot's tree also carries the pbcq nodes, but the pciex nodes win
//! because skiboot has already programmed (and may have moved) the BARs.
//! Resources: skiboot hw/phb3.c (phb3_probe_pbcq, phb3_add_properties); QEMU
//! hw/pci-host/pnv_phb3_pbcq.c (pnv_pbcq_dt_xscom).

use super::ioda::M32Window;
use super::pbcq::PbcqXscom;
use super::regs::{M32_PCI_SIZE, M32_PCI_START};
use crate::platform::machine::Machine;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// How to reach one PHB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PhbAccess {
    /// Bring the PBCQ up over XSCOM ourselves (bare mode).
    Pbcq {
        /// The chip's XSCOM MMIO base.
        xscom_base: u64,
        /// The PBCQ's nest/PCI/SPCI PCB bases.
        bases: PbcqXscom,
    },
    /// skiboot set the PBCQ up: take the registers and M32 window from its tree.
    Pciex {
        /// PHB register block (CPU address).
        regs: u64,
        /// The M32 window as the hardware is programmed (power-of-two size).
        m32: M32Window,
        /// The part of M32 BARs may use (skiboot keeps the top 64 KiB for MSIs).
        usable_m32_bytes: u64,
        /// skiboot's PHB id.
        opal_phbid: Option<u64>,
    },
}

/// One PHB3 found in the device tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhbSite {
    /// The chip it belongs to.
    pub chip_id: u32,
    /// Its index on the chip (0..=2 on POWER8).
    pub index: u32,
    /// How to reach it.
    pub access: PhbAccess,
}

impl PhbSite {
    /// A short name for logs: `PHB chip:index`.
    pub fn name(&self) -> String {
        format!("PHB{}:{}", self.chip_id, self.index)
    }
}

/// A PHB node the tree describes but that cannot be used, with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SiteProblem {
    /// Where in the tree (or which PHB).
    pub what: String,
    /// Why it is left out.
    pub why: String,
}

/// Every PHB the tree describes, and the ones it describes unusably.
pub fn sites(machine: &Machine) -> (Vec<PhbSite>, Vec<SiteProblem>) {
    let mut sites = Vec::new();
    let mut problems = Vec::new();
    if machine.is_opal_payload() {
        for (n, phb) in machine.pciex.iter().enumerate() {
            let what = format!("pciex@{:x}", phb.regs.base);
            let Some(window) = phb.m32_window() else {
                problems.push(SiteProblem {
                    what,
                    why: String::from("no 32-bit memory range"),
                });
                continue;
            };
            // skiboot programs a power-of-two M32 (2 GiB) and advertises it minus the MSI
            // window at its top; the hardware window is the power of two.
            let m32 = M32Window {
                cpu_base: window.cpu_address,
                pci_base: window.pci_address,
                size: window.size.checked_next_power_of_two().unwrap_or(0),
            };
            if window.pci_address != M32_PCI_START
                || m32.size == 0
                || m32.size > M32_PCI_SIZE
                || !m32.cpu_base.is_multiple_of(m32.size)
            {
                problems.push(SiteProblem {
                    what,
                    why: format!(
                        "unexpected M32 range: PCI {:#x} CPU {:#x} size {:#x}",
                        window.pci_address, window.cpu_address, window.size
                    ),
                });
                continue;
            }
            sites.push(PhbSite {
                chip_id: phb.chip_id.unwrap_or(0),
                index: phb.phb_index.unwrap_or(n as u32),
                access: PhbAccess::Pciex {
                    regs: phb.regs.base,
                    m32,
                    usable_m32_bytes: window.size & !0xF_FFFF,
                    opal_phbid: phb.opal_phbid,
                },
            });
        }
    } else {
        for pbcq in &machine.pbcqs {
            let Some(chip) = machine.chip(pbcq.chip_id) else {
                problems.push(SiteProblem {
                    what: format!("pbcq {}:{}", pbcq.chip_id, pbcq.phb_index),
                    why: String::from("its chip has no xscom node"),
                });
                continue;
            };
            sites.push(PhbSite {
                chip_id: pbcq.chip_id,
                index: pbcq.phb_index,
                access: PhbAccess::Pbcq {
                    xscom_base: chip.xscom.base,
                    bases: PbcqXscom {
                        nest: pbcq.nest.base,
                        pci: pbcq.pci.base,
                        spci: pbcq.spci.base,
                    },
                },
            });
        }
    }
    sites.sort_by_key(|site| (site.chip_id, site.index));
    (sites, problems)
}
