//! In-image tests of PHB3 bring-up and enumeration on the running machine, with QEMU's edu
//! device and an e1000e wherever the run put them (nothing assumes pcie.0); a test whose
//! device the machine lacks skips, naming it.
//!
//! Resources: QEMU hw/misc/edu.c (identification 0x010000ed, liveness = !x);
//! skiboot hw/phb3.c (RTT: RID -> PE).

use super::support::{require, E1000E, EDU};
use super::Test;
use crate::pci::edu::{Edu, EDU_IDENTIFICATION};
use crate::phb3::site::sites;
use crate::startup::pci::hosts;
use crate::startup::Platform;
use alloc::format;
use alloc::string::String;

/// The PCI tests, in order.
pub const TESTS: &[Test] = &[
    Test {
        name: "every_phb_comes_up",
        run: every_phb_comes_up,
    },
    Test {
        name: "edu_found_with_bar0_and_answers",
        run: edu_found_with_bar0_and_answers,
    },
    Test {
        name: "e1000e_found_with_bars",
        run: e1000e_found_with_bars,
    },
    Test {
        name: "rtt_gives_devices_their_own_pes",
        run: rtt_gives_devices_their_own_pes,
    },
    Test {
        name: "failed_xscom_is_reported_not_fatal",
        run: failed_xscom_is_reported,
    },
];

fn every_phb_comes_up(platform: &Platform) -> Result<(), String> {
    let (described, _) = sites(&platform.machine);
    let up = hosts().len();
    if described.is_empty() || up != described.len() {
        return Err(format!("{} PHBs described, {up} up", described.len()));
    }
    for host in hosts() {
        let root = host
            .topology
            .functions
            .iter()
            .find(|f| f.bdf.rid() == 0)
            .ok_or_else(|| format!("{}: no root port at 00:00.0", host.site.name()))?;
        if (root.vendor, root.device) != (0x1014, 0x03dc) {
            return Err(format!(
                "{}: root port is {:04x}:{:04x}",
                host.site.name(),
                root.vendor,
                root.device
            ));
        }
    }
    Ok(())
}

fn edu_found_with_bar0_and_answers(_: &Platform) -> Result<(), String> {
    let (host, edu) = require(&EDU)?;
    if edu.bdf.rid() != 0x0100 {
        return Err(format!(
            "edu at {}, expected 01:00.0 behind the root port",
            edu.bdf
        ));
    }
    let bar0 = host
        .bar_window(edu, 0)
        .ok_or_else(|| String::from("edu BAR0 not assigned"))?;
    let driver = Edu::new(&bar0).map_err(|e| format!("{e:?}"))?;
    if driver.identification() != EDU_IDENTIFICATION {
        return Err(format!("identification {:#010x}", driver.identification()));
    }
    for value in [0x1234_5678u32, 0, 0xffff_ffff, 0xa5a5_5a5a] {
        driver.check_liveness(value).map_err(|e| format!("{e:?}"))?;
    }
    Ok(())
}

fn e1000e_found_with_bars(_: &Platform) -> Result<(), String> {
    let (host, nic) = require(&E1000E)?;
    let assigned = nic.bars.iter().filter(|bar| bar.address.is_some()).count();
    let memory_bars = (0..6)
        .filter_map(|i| nic.bar(i))
        .filter(|bar| host.bar_window(nic, bar.index).is_some())
        .count();
    if assigned == 0 || memory_bars == 0 {
        return Err(format!(
            "e1000e on {} has {assigned} BARs assigned",
            host.site.name()
        ));
    }
    if !nic.enabled() {
        return Err(String::from("e1000e decoding/bus mastering not enabled"));
    }
    Ok(())
}

fn rtt_gives_devices_their_own_pes(_: &Platform) -> Result<(), String> {
    let mut seen = alloc::vec::Vec::new();
    for host in hosts() {
        let phb = host.phb.lock();
        for function in &host.topology.functions {
            let pe = function
                .pe
                .ok_or_else(|| format!("{} has no PE", function.bdf))?;
            let in_rtt = phb.pe_of(function.bdf.rid());
            if in_rtt != pe {
                return Err(format!(
                    "{}: RTT says PE {in_rtt}, enumeration PE {pe}",
                    function.bdf
                ));
            }
            if pe == crate::phb3::regs::PHB3_RESERVED_PE {
                return Err(format!("{} got the reserved PE", function.bdf));
            }
            seen.push((pe, host.number, function.bdf));
        }
    }
    // PE numbers run on across PHBs (startup::pci), so no two functions anywhere share
    // one, whatever devices the run has.
    seen.sort_unstable_by_key(|&(pe, number, _)| (pe, number));
    if let Some(pair) = seen.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(format!(
            "PE {} is shared by PHB{} {} and PHB{} {}",
            pair[0].0, pair[0].1, pair[0].2, pair[1].1, pair[1].2
        ));
    }
    Ok(())
}

/// An XSCOM access to a PCB address nothing answers sets HMER[XSCOM_FAIL] (QEMU models this
/// as real chips do): it must come back as a typed error, and a PBCQ bring-up that meets one
/// must stop with an error naming the register, with nothing enabled and no panic.
fn failed_xscom_is_reported(platform: &Platform) -> Result<(), String> {
    use crate::hw::xscom::{Xscom, XscomError};
    use crate::phb3::pbcq::{bring_up, BarPlan, PbcqError, PbcqXscom};
    let chip = platform.machine.chips.first().ok_or("no chip")?;
    let xscom = platform.xscom_at(chip.xscom.base).ok_or("no XSCOM")?;
    let nowhere = 0x0dea_d000;
    match xscom.read(nowhere) {
        Err(XscomError::Failed { pcb, .. }) if pcb == nowhere => {}
        other => return Err(format!("read of pcb {nowhere:#x} gave {other:?}")),
    }
    match xscom.write(nowhere, 1) {
        Err(XscomError::Failed { .. }) => {}
        other => return Err(format!("write of pcb {nowhere:#x} gave {other:?}")),
    }
    let bogus = PbcqXscom {
        nest: nowhere,
        pci: nowhere + 0x100,
        spci: nowhere + 0x200,
    };
    match bring_up(&xscom, &bogus, &BarPlan::KeepPreset, &[]) {
        Err(PbcqError::Xscom { register, .. }) => {
            crate::log!(
                Notice,
                "TEST",
                "bring-up on a bogus PBCQ stopped: {}",
                register.name()
            );
            Ok(())
        }
        other => Err(format!("bring-up on a bogus PBCQ gave {other:?}")),
    }
}
