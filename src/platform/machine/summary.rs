//! The boot summary the firmware prints once it has read the tree: one short line per
//! memory range, reserved range, CPU, chip, LPC bus and PHB, in the spirit of skiboot's boot
//! log (`XSCOM: chip 0x0 at ...`, `PHB#0000[0:0]: ...`, `LPC: ...`).
//!
//! Lines come from an iterator of [`SummaryLine`] values that borrow the [`Machine`] and
//! implement `Display`, so firmware can print them with its own log prefix
//! (`[timebase,level]`) without allocating.
//!
//! Resources: skiboot hw/xscom.c, hw/lpc.c, hw/phb3.c and core/mem_region.c log messages.

use super::{Chip, Cpu, Lpc, LpcRange, LpcSpace, Machine, Opal, Pbcq, PciWindow, Pciex, Reserved};
use crate::devtree::MemRange;
use core::fmt;

/// One line of the boot summary.
#[derive(Clone, Copy, Debug)]
pub enum SummaryLine<'m> {
    /// `DT: model ...` with the most specific compatible string.
    Model(&'m Machine),
    /// `OPAL: ...`: payload mode and where OPAL lives, or bare mode.
    Opal(Option<&'m Opal>),
    /// `MEM: ...` one RAM range.
    Memory(&'m MemRange),
    /// `MEM: total ...` all RAM and its top.
    MemoryTotal {
        /// Bytes of RAM.
        total: u64,
        /// First byte above RAM.
        top: u64,
    },
    /// `RSV: ...` one reserved range.
    Reserved(&'m Reserved),
    /// `CPU: ...` one core.
    Cpu {
        /// The core.
        cpu: &'m Cpu,
        /// It holds the header's boot CPU.
        boot: bool,
    },
    /// `XSCOM: ...` one chip.
    Chip(&'m Chip),
    /// `LPC: ...` one chip's LPC bus and its devices.
    Lpc {
        /// The chip.
        chip_id: u32,
        /// Its LPC bus.
        lpc: &'m Lpc,
    },
    /// `PBCQ: ...` one bare-mode PHB.
    Pbcq(&'m Pbcq),
    /// `PHB#....: regs ...` one skiboot PHB.
    Pciex(&'m Pciex),
    /// `PHB#....: M32 ...` its 32-bit MMIO window.
    PciexM32 {
        /// The PHB.
        phb: &'m Pciex,
        /// Its M32 window.
        window: &'m PciWindow,
    },
    /// `CMDLINE: ...` when there are boot arguments.
    Bootargs(&'m str),
}

/// The parts of the summary in print order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Section {
    Model,
    Opal,
    Memory,
    MemoryTotal,
    Reserved,
    Cpus,
    Chips,
    Pbcqs,
    Pciex,
    Bootargs,
    Done,
}

impl Section {
    fn next(self) -> Section {
        match self {
            Section::Model => Section::Opal,
            Section::Opal => Section::Memory,
            Section::Memory => Section::MemoryTotal,
            Section::MemoryTotal => Section::Reserved,
            Section::Reserved => Section::Cpus,
            Section::Cpus => Section::Chips,
            Section::Chips => Section::Pbcqs,
            Section::Pbcqs => Section::Pciex,
            Section::Pciex => Section::Bootargs,
            Section::Bootargs | Section::Done => Section::Done,
        }
    }
}

/// The summary lines of a [`Machine`], from [`Machine::summary`].
#[derive(Clone, Debug)]
pub struct Summary<'m> {
    machine: &'m Machine,
    section: Section,
    slot: usize,
}

impl<'m> Summary<'m> {
    pub(super) fn new(machine: &'m Machine) -> Self {
        Summary {
            machine,
            section: Section::Model,
            slot: 0,
        }
    }

    /// How many slots `section` has; a slot may turn out empty (a chip without LPC).
    fn slots(&self, section: Section) -> usize {
        let m = self.machine;
        match section {
            Section::Model | Section::Opal | Section::MemoryTotal | Section::Bootargs => 1,
            Section::Memory => m.memory.len(),
            Section::Reserved => m.reserved.len(),
            Section::Cpus => m.cpus.len(),
            // Two lines per chip (XSCOM, LPC) and per PHB (registers, M32).
            Section::Chips => m.chips.len() * 2,
            Section::Pbcqs => m.pbcqs.len(),
            Section::Pciex => m.pciex.len() * 2,
            Section::Done => 0,
        }
    }

    fn line(&self, section: Section, slot: usize) -> Option<SummaryLine<'m>> {
        let m = self.machine;
        match section {
            Section::Model => Some(SummaryLine::Model(m)),
            Section::Opal => Some(SummaryLine::Opal(m.opal.as_ref())),
            Section::Memory => m.memory.get(slot).map(SummaryLine::Memory),
            Section::MemoryTotal => Some(SummaryLine::MemoryTotal {
                total: m.total_ram(),
                top: m.ram_top(),
            }),
            Section::Reserved => m.reserved.get(slot).map(SummaryLine::Reserved),
            Section::Cpus => m.cpus.get(slot).map(|cpu| SummaryLine::Cpu {
                cpu,
                boot: cpu.pir == m.boot_cpuid_phys || cpu.threads.contains(&m.boot_cpuid_phys),
            }),
            Section::Chips => {
                let chip = m.chips.get(slot / 2)?;
                if slot.is_multiple_of(2) {
                    Some(SummaryLine::Chip(chip))
                } else {
                    let lpc = chip.lpc.as_ref()?;
                    Some(SummaryLine::Lpc {
                        chip_id: chip.chip_id,
                        lpc,
                    })
                }
            }
            Section::Pbcqs => m.pbcqs.get(slot).map(SummaryLine::Pbcq),
            Section::Pciex => {
                let phb = m.pciex.get(slot / 2)?;
                if slot.is_multiple_of(2) {
                    Some(SummaryLine::Pciex(phb))
                } else {
                    let window = phb.m32_window()?;
                    Some(SummaryLine::PciexM32 { phb, window })
                }
            }
            Section::Bootargs => {
                (!m.bootargs.is_empty()).then_some(SummaryLine::Bootargs(&m.bootargs))
            }
            Section::Done => None,
        }
    }
}

impl<'m> Iterator for Summary<'m> {
    type Item = SummaryLine<'m>;

    fn next(&mut self) -> Option<SummaryLine<'m>> {
        while self.section != Section::Done {
            if self.slot < self.slots(self.section) {
                let line = self.line(self.section, self.slot);
                self.slot += 1;
                if line.is_some() {
                    return line;
                }
            } else {
                self.section = self.section.next();
                self.slot = 0;
            }
        }
        None
    }
}

/// A byte count in the largest binary unit that divides it exactly.
struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u32, &str); 4] = [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")];
        let bytes = self.0;
        for (shift, unit) in UNITS {
            if bytes != 0 && bytes.trailing_zeros() >= shift {
                return write!(f, "{} {unit}", bytes >> shift);
            }
        }
        write!(f, "{bytes:#x} bytes")
    }
}

/// An optional number, `?` when absent.
struct Maybe<T>(Option<T>);

impl<T: fmt::Display> fmt::Display for Maybe<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(value) => value.fmt(f),
            None => f.write_str("?"),
        }
    }
}

impl fmt::Display for LpcRange {
    /// `io 0x3f8`, `mem 0x...`, `fw 0x...` or `space N 0x...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.space {
            LpcSpace::Io => write!(f, "io {:#x}", self.address),
            LpcSpace::Memory => write!(f, "mem {:#x}", self.address),
            LpcSpace::Firmware => write!(f, "fw {:#x}", self.address),
            LpcSpace::Other(space) => write!(f, "space {space} {:#x}", self.address),
        }
    }
}

/// skiboot's PHB prefix: `PHB#<opal id>[<chip>:<index>]`.
struct PhbName<'m>(&'m Pciex);

impl fmt::Display for PhbName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phb = self.0;
        match phb.opal_phbid {
            Some(id) => write!(f, "PHB#{id:04x}")?,
            None => f.write_str("PHB#????")?,
        }
        write!(f, "[{}:{}]", Maybe(phb.chip_id), Maybe(phb.phb_index))
    }
}

impl fmt::Display for SummaryLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SummaryLine::Model(m) => {
                write!(f, "DT: model {}", m.model.as_deref().unwrap_or("(none)"))?;
                match m.compatible.first() {
                    Some(compatible) => write!(f, " ({compatible})"),
                    None => Ok(()),
                }
            }
            SummaryLine::Opal(None) => f.write_str("OPAL: none, bare metal"),
            SummaryLine::Opal(Some(opal)) => write!(
                f,
                "OPAL: payload mode, base {:#x} entry {:#x} size {:#x}",
                opal.base, opal.entry, opal.runtime_size
            ),
            SummaryLine::Memory(range) => write!(f, "MEM: {range} {}", Size(range.size)),
            SummaryLine::MemoryTotal { total, top } => {
                write!(f, "MEM: total {}, top {top:#x}", Size(total))
            }
            SummaryLine::Reserved(reserved) => {
                write!(
                    f,
                    "RSV: {} {}",
                    reserved.range,
                    reserved.name.as_deref().unwrap_or("(header)")
                )
            }
            SummaryLine::Cpu { cpu, boot } => {
                write!(
                    f,
                    "CPU: PIR {:#06x} chip {} threads {}",
                    cpu.pir,
                    Maybe(cpu.chip_id),
                    cpu.threads.len()
                )?;
                if boot {
                    f.write_str(" (boot)")?;
                }
                if !cpu.available {
                    f.write_str(" (disabled)")?;
                }
                Ok(())
            }
            SummaryLine::Chip(chip) => {
                write!(
                    f,
                    "XSCOM: chip {} at {:#x} size {:#x}",
                    chip.chip_id, chip.xscom.base, chip.xscom.size
                )?;
                if chip.primary {
                    f.write_str(" (primary)")?;
                }
                Ok(())
            }
            SummaryLine::Lpc { chip_id, lpc } => {
                write!(f, "LPC: chip {chip_id} pcb {:#x}", lpc.pcb.base)?;
                for uart in &lpc.uarts {
                    write!(f, ", UART {}", uart.reg)?;
                    if !uart.available {
                        f.write_str(" (reserved)")?;
                    }
                }
                if let Some(bt) = &lpc.ipmi_bt {
                    write!(f, ", BT {bt}")?;
                }
                Ok(())
            }
            SummaryLine::Pbcq(pbcq) => write!(
                f,
                "PBCQ: chip {} PHB{} nest {:#x} pci {:#x} spci {:#x}",
                pbcq.chip_id, pbcq.phb_index, pbcq.nest.base, pbcq.pci.base, pbcq.spci.base
            ),
            SummaryLine::Pciex(phb) => write!(
                f,
                "{}: regs {:#x} PEs {} reserved PE {}",
                PhbName(phb),
                phb.regs.base,
                Maybe(phb.num_pes),
                Maybe(phb.reserved_pe)
            ),
            SummaryLine::PciexM32 { phb, window } => write!(
                f,
                "{}: M32 {:#x} -> pci {:#x} size {:#x}",
                PhbName(phb),
                window.cpu_address,
                window.pci_address,
                window.size
            ),
            SummaryLine::Bootargs(args) => write!(f, "CMDLINE: {args}"),
        }
    }
}
