//! What enumeration finds below one host bridge: one record per function (role, ids, PE,
//! sized and placed BARs, bus numbers, bridge window), the per-function problems, and their
//! skiboot-style summary lines.
//!
//! Resources: skiboot core/pci.c (`pci_print_summary_line`: the `PHB#0000:01:00.0 [EP  ]`
//! format); PCI Local Bus 3.0 6.2.5.1 (BAR kinds).

use super::header::Command;
use super::{Bdf, ConfigError, PeError};
use alloc::vec::Vec;
use core::fmt;

/// A range of PCI memory addresses `[base, base + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemWindow {
    /// First PCI address.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}

impl MemWindow {
    /// The last address inside the window (the base itself for an empty window).
    pub const fn last(&self) -> u64 {
        self.base.saturating_add(self.size.saturating_sub(1))
    }

    /// Whether `[base, base + size)` lies inside this window.
    pub fn contains(&self, base: u64, size: u64) -> bool {
        let (Some(end), Some(self_end)) =
            (base.checked_add(size), self.base.checked_add(self.size))
        else {
            return false;
        };
        base >= self.base && end <= self_end
    }
}

/// What to enumerate with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnumOptions {
    /// The host bridge's index, for the summary (`PHB#xxxx`).
    pub phb_index: u32,
    /// PCI memory the host bridge forwards (the PHB3's M32 window): 1 MiB aligned, below
    /// 4 GiB, since bridge memory windows and 32-bit BARs need both.
    pub window: MemWindow,
    /// The first PE number to hand out; PEs go up from here in discovery order.
    pub first_pe: u16,
}

/// Role of a function, from its header layout and PCIe port type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FunctionKind {
    /// A PCIe root port (type 1 header, port type 4).
    RootPort,
    /// Any other bridge (type 1 header).
    Bridge,
    /// A device function (type 0 header).
    Endpoint,
    /// A header layout enumeration does not handle (e.g. CardBus); left disabled.
    Other {
        /// Header type bits 6..0.
        layout: u8,
    },
}

/// Address space of a BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    /// 32-bit memory.
    Memory32,
    /// 64-bit memory (the BAR and the next one).
    Memory64,
    /// I/O space (PHB3 has none: never assigned).
    Io,
}

/// One sized BAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bar {
    /// BAR number (0..=5); a 64-bit BAR also occupies `index + 1`.
    pub index: u8,
    /// Address space.
    pub kind: BarKind,
    /// Prefetchable memory.
    pub prefetchable: bool,
    /// Size in bytes (a power of two).
    pub size: u64,
    /// PCI address assigned, if any.
    pub address: Option<u64>,
}

/// A bridge's bus numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusRange {
    /// The bus the bridge sits on.
    pub primary: u8,
    /// The bus right behind it.
    pub secondary: u8,
    /// The highest bus behind it.
    pub subordinate: u8,
}

/// The summary record of one function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PciFunction {
    /// Host bridge index.
    pub phb_index: u32,
    /// Address.
    pub bdf: Bdf,
    /// Role.
    pub kind: FunctionKind,
    /// PCIe device/port type (capability register bits 7..4), if the function has the PCIe
    /// capability.
    pub pcie_type: Option<u8>,
    /// Vendor id.
    pub vendor: u16,
    /// Device id.
    pub device: u16,
    /// Revision id.
    pub revision: u8,
    /// Class code (base << 16 | sub << 8 | prog-if).
    pub class: u32,
    /// Its own PE, if one was assigned.
    pub pe: Option<u16>,
    /// Sized BARs (unimplemented BARs are not listed).
    pub bars: Vec<Bar>,
    /// Bus numbers, for bridges that got a secondary bus.
    pub buses: Option<BusRange>,
    /// Memory window, for bridges with something behind them.
    pub window: Option<MemWindow>,
    /// The command register as enumeration left it.
    pub command: u16,
}

impl PciFunction {
    /// Whether the function decodes memory and may master the bus.
    pub fn enabled(&self) -> bool {
        Command::from_bits_retain(self.command)
            .contains(Command::MEMORY_SPACE | Command::BUS_MASTER)
    }

    /// Whether the function has a type 1 (bridge) header.
    pub fn is_bridge(&self) -> bool {
        matches!(self.kind, FunctionKind::RootPort | FunctionKind::Bridge)
    }

    /// The BAR numbered `index`, if it was sized.
    pub fn bar(&self, index: u8) -> Option<&Bar> {
        self.bars.iter().find(|bar| bar.index == index)
    }

    /// skiboot's type tag (`pci_print_summary_line`): the PCIe port type, or PCIB/PCID.
    pub fn type_tag(&self) -> &'static str {
        const PCIE_TYPES: [&str; 11] = [
            "EP  ", "LGCY", "????", "????", "ROOT", "SWUP", "SWDN", "ETOX", "XTOE", "RINT", "EVTC",
        ];
        match self.pcie_type {
            Some(t) => PCIE_TYPES.get(usize::from(t)).copied().unwrap_or("????"),
            None if self.is_bridge() => "PCIB",
            None => "PCID",
        }
    }
}

/// A size as skiboot-ish text: the largest of K/M/G that divides it, else hex bytes.
struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shift, unit) in [(30, 'G'), (20, 'M'), (10, 'K')] {
            if self.0 >= 1 << shift && self.0.is_multiple_of(1 << shift) {
                return write!(f, "{}{unit}", self.0 >> shift);
            }
        }
        write!(f, "{:#x}", self.0)
    }
}

/// One line per function, in skiboot's format
/// (`PHB#0000:01:00.0 [EP  ] 1234 11e8 R:10 C:00ff00 ...`) followed by the PE and the
/// resources.
impl fmt::Display for PciFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PHB#{:04x}:{} [{}] {:04x} {:04x} R:{:02x} C:{:06x}",
            self.phb_index,
            self.bdf,
            self.type_tag(),
            self.vendor,
            self.device,
            self.revision,
            self.class
        )?;
        if let Some(buses) = self.buses {
            write!(f, " B:{:02x}..{:02x}", buses.secondary, buses.subordinate)?;
        }
        match self.pe {
            Some(pe) => write!(f, " PE:{pe}")?,
            None => f.write_str(" PE:-")?,
        }
        if let Some(window) = self.window {
            write!(f, " MEM:{:08x}..{:08x}", window.base, window.last())?;
        }
        for bar in &self.bars {
            write!(f, " BAR{}:", bar.index)?;
            match (bar.kind, bar.address) {
                (BarKind::Io, _) => write!(f, "io({})", Size(bar.size))?,
                (_, Some(address)) => write!(f, "{address:08x}({}", Size(bar.size))?,
                (_, None) => write!(f, "unassigned({}", Size(bar.size))?,
            }
            if bar.kind != BarKind::Io {
                if bar.kind == BarKind::Memory64 {
                    f.write_str(",64")?;
                }
                if bar.prefetchable {
                    f.write_str(",P")?;
                }
                f.write_str(")")?;
            }
        }
        if !self.enabled() {
            f.write_str(" DISABLED")?;
        }
        Ok(())
    }
}

/// Something wrong with one function; enumeration went on without it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The BAR does not fit what is left of the window.
    BarDoesNotFit {
        /// BAR number.
        index: u8,
        /// Its size.
        size: u64,
    },
    /// The BAR cannot be used: a 64-bit BAR in the last slot, a "below 1 MiB" or reserved
    /// memory type.
    BarUnsupported {
        /// BAR number.
        index: u8,
        /// The BAR's original low bits (type, prefetchable).
        flags: u32,
    },
    /// Every assignable PE is taken.
    NoFreePe,
    /// The host bridge refused the PE.
    PeRefused(PeError),
    /// Bus numbers ran out: nothing behind this bridge was scanned.
    OutOfBusNumbers,
    /// The bridge is nested deeper than
    /// [`MAX_BRIDGE_DEPTH`](super::enumerate::MAX_BRIDGE_DEPTH): nothing behind it was
    /// scanned.
    TooDeep,
    /// A header layout enumeration does not handle.
    UnsupportedHeader {
        /// Header type bits 6..0.
        layout: u8,
    },
}

impl Problem {
    /// Whether the function is left with decoding and bus mastering off.
    pub fn disables_function(&self) -> bool {
        !matches!(self, Problem::OutOfBusNumbers | Problem::TooDeep)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::BarDoesNotFit { index, size } => {
                write!(
                    f,
                    "BAR{index} ({}) does not fit the memory window",
                    Size(*size)
                )
            }
            Problem::BarUnsupported { index, flags } => {
                write!(f, "BAR{index} has an unsupported type (flags {flags:#x})")
            }
            Problem::NoFreePe => f.write_str("no free PE left"),
            Problem::PeRefused(error) => write!(f, "PE assignment refused: {error}"),
            Problem::OutOfBusNumbers => f.write_str("out of bus numbers, not scanned behind"),
            Problem::TooDeep => f.write_str("bridges nested too deep, not scanned behind"),
            Problem::UnsupportedHeader { layout } => {
                write!(f, "unsupported header layout {layout:#x}")
            }
        }
    }
}

/// A problem and the function it concerns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FunctionProblem {
    /// The function.
    pub bdf: Bdf,
    /// What went wrong.
    pub problem: Problem,
}

/// Everything found below one host bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    /// Host bridge index.
    pub phb_index: u32,
    /// Functions in discovery order (parents before what is behind them).
    pub functions: Vec<PciFunction>,
    /// What went wrong, per function.
    pub problems: Vec<FunctionProblem>,
}

impl Topology {
    /// The function at `bdf`.
    pub fn function(&self, bdf: Bdf) -> Option<&PciFunction> {
        self.functions.iter().find(|function| function.bdf == bdf)
    }

    /// The first function with this vendor and device id.
    pub fn find(&self, vendor: u16, device: u16) -> Option<&PciFunction> {
        self.functions
            .iter()
            .find(|f| f.vendor == vendor && f.device == device)
    }
}

/// The summary: one line per function, then one per problem.
impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for function in &self.functions {
            writeln!(f, "{function}")?;
        }
        for problem in &self.problems {
            writeln!(
                f,
                "PHB#{:04x}:{} {}",
                self.phb_index, problem.bdf, problem.problem
            )?;
        }
        Ok(())
    }
}

/// Why enumeration as a whole failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnumError {
    /// The host bridge refused a config access.
    Config(ConfigError),
    /// The memory window is not 1 MiB aligned, is empty, or reaches past 4 GiB.
    BadWindow(MemWindow),
}

impl From<ConfigError> for EnumError {
    fn from(error: ConfigError) -> Self {
        EnumError::Config(error)
    }
}

impl fmt::Display for EnumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnumError::Config(error) => write!(f, "config access refused: {error}"),
            EnumError::BadWindow(window) => write!(
                f,
                "memory window {:#x} size {:#x} is unusable (1 MiB aligned, below 4 GiB)",
                window.base, window.size
            ),
        }
    }
}
