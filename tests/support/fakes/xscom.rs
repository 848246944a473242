//! An XSCOM with a register file that fails on demand and flags BAR writes while the BAR is
//! enabled (QEMU hw/pci-host/pnv_phb3_pbcq.c: "Changing enabled BAR unsupported").

use std::collections::HashMap;
use std::sync::Mutex;
use tcefw::hw::xscom::{Xscom, XscomError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XscomAccess {
    pub write: bool,
    pub pcb: u64,
    pub value: u64,
    pub failed: bool,
}

/// PBCQ PCB bases of chip 0 PHB 0, from QEMU's device tree (tests/fixtures): `reg =
/// <0x2012000 0x46 0x9012000 0x15 0x9013c00 0x05>`.
pub const NEST: u64 = 0x2012000;
pub const PCI: u64 = 0x9012000;
pub const SPCI: u64 = 0x9013C00;

struct XscomState {
    regs: HashMap<u64, u64>,
    fail_on: Option<usize>,
    count: usize,
    log: Vec<XscomAccess>,
    violations: Vec<String>,
}

/// An XSCOM with a register file, that fails the `fail_on`-th access (1-based) and flags BAR
/// writes while the BAR is enabled (QEMU: "Changing enabled BAR unsupported").
pub struct FakeXscom {
    state: Mutex<XscomState>,
}

impl FakeXscom {
    pub fn new(regs: &[(u64, u64)], fail_on: Option<usize>) -> Self {
        FakeXscom {
            state: Mutex::new(XscomState {
                regs: regs.iter().copied().collect(),
                fail_on,
                count: 0,
                log: Vec::new(),
                violations: Vec::new(),
            }),
        }
    }

    /// QEMU's presets for chip 0 PHB 0 (`pnv_pbcq_default_bars`), BAR_EN 0, worked out by hand:
    /// MMIO0 0x3d00000000000 << 14 = 0xf400000000000000; MMIO1 0x3ff8000000000 << 14 =
    /// 0xffe0000000000000; PHB 0x3fffe40000000 << 14 = 0xffff900000000000;
    /// MASK0 0x3fff000000000 << 14 = 0xfffc000000000000; MASK1 0x3ffff80000000 << 14 =
    /// 0xffffe00000000000; PCI BAR2 = PHB BAR.
    pub fn qemu_phb0(fail_on: Option<usize>) -> Self {
        Self::new(
            &[
                (NEST + 0x40, 0xF400_0000_0000_0000),
                (NEST + 0x41, 0xFFE0_0000_0000_0000),
                (NEST + 0x42, 0xFFFF_9000_0000_0000),
                (NEST + 0x43, 0xFFFC_0000_0000_0000),
                (NEST + 0x44, 0xFFFF_E000_0000_0000),
                (NEST + 0x45, 0),
                (PCI + 0x0B, 0xFFFF_9000_0000_0000),
                (SPCI + 0x01, 0),
                (SPCI + 0x03, 0),
            ],
            fail_on,
        )
    }

    pub fn log(&self) -> Vec<XscomAccess> {
        self.state.lock().unwrap().log.clone()
    }

    /// Sets a register without logging or failing (the state "a previous owner" left).
    pub fn write_raw(&self, pcb: u64, value: u64) {
        self.state.lock().unwrap().regs.insert(pcb, value);
    }

    pub fn reg(&self, pcb: u64) -> u64 {
        self.state
            .lock()
            .unwrap()
            .regs
            .get(&pcb)
            .copied()
            .unwrap_or(0)
    }

    pub fn violations(&self) -> Vec<String> {
        self.state.lock().unwrap().violations.clone()
    }

    /// Whether any successful write went to `pcb`.
    pub fn wrote(&self, pcb: u64) -> bool {
        self.log()
            .iter()
            .any(|a| a.write && a.pcb == pcb && !a.failed)
    }

    fn access(&self, write: bool, pcb: u64, value: u64) -> Result<u64, XscomError> {
        let mut state = self.state.lock().unwrap();
        state.count += 1;
        if Some(state.count) == state.fail_on {
            state.log.push(XscomAccess {
                write,
                pcb,
                value,
                failed: true,
            });
            return Err(XscomError::Failed { pcb, status: 4 });
        }
        state.log.push(XscomAccess {
            write,
            pcb,
            value,
            failed: false,
        });
        if write {
            let bar_en = state.regs.get(&(NEST + 0x45)).copied().unwrap_or(0);
            let enabled_bit = match pcb {
                p if p == NEST + 0x40 || p == NEST + 0x43 => Some(0),
                p if p == NEST + 0x41 || p == NEST + 0x44 => Some(1),
                p if p == NEST + 0x42 => Some(2),
                _ => None,
            };
            if let Some(bit) = enabled_bit {
                if bar_en & (1 << (63 - bit)) != 0 {
                    state
                        .violations
                        .push(format!("BAR {pcb:#x} written while enabled"));
                }
            }
            state.regs.insert(pcb, value);
            Ok(0)
        } else {
            Ok(state.regs.get(&pcb).copied().unwrap_or(0))
        }
    }
}

impl Xscom for FakeXscom {
    fn read(&self, pcb: u64) -> Result<u64, XscomError> {
        self.access(false, pcb, 0)
    }
    fn write(&self, pcb: u64, value: u64) -> Result<(), XscomError> {
        self.access(true, pcb, value).map(|_| ())
    }
}
