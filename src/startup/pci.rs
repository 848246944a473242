//! PCI host bring-up on the running machine: every PHB3 the device tree names is brought up
//! (PBCQ over XSCOM in bare mode, skiboot's registers in payload mode), its IODA2 state is
//! initialised by us in both modes, and its devices are enumerated, given BARs and PEs.
//! A PHB that fails is reported and left disabled; the others go on.
//!
//! Resources: skiboot hw/phb3.c (phb3_probe_pbcq, phb3_init_ioda2, PCI summary); QEMU
//! hw/pci-host/pnv_phb3.c.
#![forbid(unsafe_code)]

use super::{Platform, FRAMES};
use crate::arch::ppc64::mmio::{MmioRegs, MmioWindow};
use crate::mm::phys::BootAuthority;
use crate::mm::PhysAddr;
use crate::pci::enumerate::enumerate;
use crate::pci::topology::{EnumOptions, MemWindow, PciFunction, Topology};
use crate::phb3::pbcq::{self, BarPlan};
use crate::phb3::regs::PHB_REGS_SIZE;
use crate::phb3::site::{sites, PhbAccess, PhbSite};
use crate::phb3::{M32Window, Phb3};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;
use spin::{Mutex, Once};

/// One PHB that came up: its registers, its IODA2 state and the devices behind it.
pub struct PciHost {
    /// Where the device tree put it.
    pub site: PhbSite,
    /// Its position in [`hosts`] (the hypervisor's PHB number too).
    pub number: usize,
    /// The PHB register block.
    pub regs: &'static MmioRegs,
    /// The PHB's IODA2 state; config cycles and PE changes go through it.
    pub phb: Mutex<Phb3<'static>>,
    /// The M32 window.
    pub m32: M32Window,
    /// The functions found behind it.
    pub topology: Topology,
    authority: &'static BootAuthority,
}

impl PciHost {
    /// The CPU mapping of a function's memory BAR `index`, if it was assigned.
    pub fn bar_window(&self, function: &PciFunction, index: u8) -> Option<MmioWindow> {
        let bar = function.bar(index)?;
        let cpu = self.m32.cpu_address(bar.address?)?;
        // The BAR was assigned inside this PHB's M32 window by enumeration, so the range is
        // device MMIO that nothing maps as memory.
        Some(MmioWindow::new(self.authority, cpu, bar.size))
    }
}

static HOSTS: Once<Vec<PciHost>> = Once::new();

/// The PHBs that came up (empty before [`bring_up_all`]).
pub fn hosts() -> &'static [PciHost] {
    HOSTS.get().map_or(&[], Vec::as_slice)
}

/// Brings up every PHB the tree describes and enumerates its devices. PE numbers run on
/// across PHBs so that a PE number names one function machine-wide in logs and tests.
pub fn bring_up_all(platform: &Platform) -> &'static [PciHost] {
    HOSTS.call_once(|| {
        let (found, problems) = sites(&platform.machine);
        for problem in problems {
            crate::log!(Error, "PHB3", "{}: {}", problem.what, problem.why);
        }
        let ram: Vec<Range<PhysAddr>> = platform
            .machine
            .memory
            .iter()
            .map(|m| m.base..m.base.saturating_add(m.size))
            .collect();
        let mut hosts = Vec::new();
        let mut next_pe = 0u16;
        for site in found {
            match bring_up(platform, &site, hosts.len(), &ram, next_pe) {
                Ok(host) => {
                    next_pe = host
                        .topology
                        .functions
                        .iter()
                        .filter_map(|f| f.pe)
                        .map(|pe| pe + 1)
                        .max()
                        .unwrap_or(next_pe)
                        .max(next_pe);
                    hosts.push(host);
                }
                Err(why) => crate::log!(Error, "PHB3", "{}: left disabled: {why}", site.name()),
            }
        }
        crate::log!(Notice, "PCI", "{} PHB(s) up", hosts.len());
        hosts
    })
}

fn bring_up(
    platform: &Platform,
    site: &PhbSite,
    number: usize,
    ram: &[Range<PhysAddr>],
    first_pe: u16,
) -> Result<PciHost, String> {
    let (regs_base, m32, usable_m32) = match &site.access {
        PhbAccess::Pbcq { xscom_base, bases } => {
            let xscom = platform
                .xscom_at(*xscom_base)
                .ok_or_else(|| format!("no chip has its XSCOM at {xscom_base:#x}"))?;
            let windows = pbcq::bring_up(&xscom, bases, &BarPlan::KeepPreset, ram)
                .map_err(|e| format!("PBCQ: {e}"))?;
            let m32 = M32Window::inside_mmio1(windows.mmio1).map_err(|e| format!("{e}"))?;
            (windows.phb_regs, m32, m32.size)
        }
        PhbAccess::Pciex {
            regs,
            m32,
            usable_m32_bytes,
            ..
        } => (*regs, *m32, *usable_m32_bytes),
    };
    // The register block comes from the PBCQ BAR we just enabled or from skiboot's `reg`;
    // it is device MMIO that nothing else maps.
    let regs: &'static MmioRegs = Box::leak(Box::new(MmioRegs::new(
        platform.authority(),
        regs_base,
        PHB_REGS_SIZE,
    )));
    let mut phb = Phb3::init(regs, &FRAMES, number as u32, m32).map_err(|e| format!("{e}"))?;
    crate::log!(
        Notice,
        "PHB3",
        "{}: regs {:#x} version {:#x}, M32 PCI {:#x} at CPU {:#x} ({} MiB)",
        site.name(),
        regs_base,
        phb.version(),
        m32.pci_base,
        m32.cpu_base,
        m32.size >> 20
    );
    let options = EnumOptions {
        phb_index: number as u32,
        window: MemWindow {
            base: m32.pci_base,
            size: usable_m32,
        },
        first_pe,
    };
    let topology = enumerate(&mut phb, &options).map_err(|e| format!("enumeration: {e}"))?;
    for function in &topology.functions {
        crate::log!(Notice, "PCI", "{function}");
    }
    for problem in &topology.problems {
        crate::log!(Warning, "PCI", "{}: {:?}", problem.bdf, problem.problem);
    }
    Ok(PciHost {
        site: site.clone(),
        number,
        regs,
        phb: Mutex::new(phb),
        m32,
        topology,
        authority: platform.authority(),
    })
}
