//! Enumeration below one host bridge: find every function, number the buses, size the BARs,
//! place them naturally aligned inside the host's memory window, open the bridges' windows
//! over what sits behind them, enable decoding and bus mastering, and put each function in its
//! own PE. The result is one summary record per function, printable skiboot-style.
//!
//! Order matters on real buses and in QEMU, which routes config cycles by bus number: a
//! bridge gets its primary/secondary/subordinate numbers (subordinate 0xFF while its subtree
//! is scanned, then the last bus found) before anything behind it is addressed; every bus is
//! scanned fully before descending (skiboot `pci_scan_bus`). Decoding is off while BARs are
//! sized (all-ones written, read back, restored) and moved; it is turned on last, parents
//! first.
//!
//! Device input never panics: an empty slot (vendor 0xFFFF) is skipped; a BAR that does not
//! fit, a malformed BAR, or no PE left is recorded against that function, which is left with
//! decoding and bus mastering off, and enumeration goes on.
//!
//! Resources: skiboot core/pci.c (`pci_scan_bus`, `pci_scan_one`, `pci_print_summary_line`);
//! PCI Local Bus 3.0 6.2.5.1 (BAR sizing); PCI-to-PCI Bridge 1.2 3.2.5 (bus numbers, windows).

use super::header::{
    bridge_memory_base, bridge_memory_limit, Command, Status, BAR0, BAR_IO, BAR_IO_ADDRESS_MASK,
    BAR_MEM_ADDRESS_MASK, BAR_MEM_TYPE_32, BAR_MEM_TYPE_64, BAR_MEM_TYPE_MASK, BAR_PREFETCHABLE,
    BRIDGE_BARS, BRIDGE_IO_OFF_BASE, BRIDGE_IO_OFF_LIMIT, BRIDGE_WINDOW_GRANULE,
    BRIDGE_WINDOW_OFF_BASE, BRIDGE_WINDOW_OFF_LIMIT, CAP_ID_PCIE, CAP_POINTER, COMMAND, DEVICE_ID,
    HEADER_TYPE, HEADER_TYPE_BRIDGE, HEADER_TYPE_MULTIFUNCTION, HEADER_TYPE_NORMAL, IO_BASE,
    IO_BASE_UPPER16, IO_LIMIT, IO_LIMIT_UPPER16, MAX_CAPABILITIES, MEMORY_BASE, MEMORY_LIMIT,
    NORMAL_BARS, PCIE_CAPABILITIES, PCIE_TYPE_ROOT_PORT, PCIE_TYPE_SHIFT, PREF_BASE_UPPER32,
    PREF_LIMIT_UPPER32, PREF_MEMORY_BASE, PREF_MEMORY_LIMIT, PRIMARY_BUS, REVISION_CLASS,
    SECONDARY_BUS, STATUS, SUBORDINATE_BUS, VENDOR_ID,
};
use super::{Bdf, ConfigError, HostBridge, PeError};
use alloc::vec::Vec;
use core::fmt;

/// Bridges nested deeper than this are left without a secondary bus: it bounds the
/// recursion (and the firmware stack) whatever the devices claim.
pub const MAX_BRIDGE_DEPTH: usize = 16;

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
    /// The bridge is nested deeper than [`MAX_BRIDGE_DEPTH`]: nothing behind it was scanned.
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

/// A function while it is being enumerated.
struct Node {
    function: PciFunction,
    /// Header layout (bits 6..0 of the header type).
    layout: u8,
    /// Command register as found, with the decode/master bits to be set at the end.
    original_command: u16,
    /// Functions on this bridge's secondary bus.
    children: Vec<usize>,
}

struct Enumerator<'h> {
    host: &'h mut dyn HostBridge,
    options: EnumOptions,
    nodes: Vec<Node>,
    problems: Vec<FunctionProblem>,
    /// Next unused bus number (256 when none is left).
    next_bus: u16,
    next_pe: u16,
    /// Next free PCI address, and the end of the window.
    cursor: u64,
    end: u64,
}

/// Enumerates everything below `host`: see the module documentation. Fails only if the host
/// refuses a config access or the window is unusable; per-function trouble is in
/// [`Topology::problems`].
pub fn enumerate(host: &mut dyn HostBridge, options: &EnumOptions) -> Result<Topology, EnumError> {
    let window = options.window;
    let end = window.base.checked_add(window.size);
    if window.size == 0
        || !window.base.is_multiple_of(BRIDGE_WINDOW_GRANULE)
        || !window.size.is_multiple_of(BRIDGE_WINDOW_GRANULE)
        || end.is_none_or(|end| end > 1 << 32)
    {
        return Err(EnumError::BadWindow(window));
    }
    let mut walk = Enumerator {
        host,
        options: *options,
        nodes: Vec::new(),
        problems: Vec::new(),
        next_bus: 1,
        next_pe: options.first_pe,
        cursor: window.base,
        end: window.base + window.size,
    };
    let (root, _) = walk.scan_bus(0, 0)?;
    walk.place_bus(&root);
    walk.program()?;
    Ok(Topology {
        phb_index: options.phb_index,
        functions: walk.nodes.into_iter().map(|node| node.function).collect(),
        problems: walk.problems,
    })
}

const fn align_up(value: u64, align: u64) -> Option<u64> {
    match value.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

impl Enumerator<'_> {
    fn problem(&mut self, bdf: Bdf, problem: Problem) {
        self.problems.push(FunctionProblem { bdf, problem });
    }

    /// Scans every device and function on `bus`, then descends into its bridges. Returns the
    /// functions found on `bus` and the highest bus number behind it.
    fn scan_bus(&mut self, bus: u8, depth: usize) -> Result<(Vec<usize>, u8), EnumError> {
        let mut found = Vec::new();
        for device in 0..32u8 {
            let mut functions = 1;
            let mut function = 0;
            while function < functions {
                let bdf = Bdf {
                    bus,
                    devfn: (device << 3) | function,
                };
                let vendor = self.host.read16(bdf, VENDOR_ID)?;
                if vendor == 0xFFFF || vendor == 0 {
                    if function == 0 {
                        break; // An empty slot: normal.
                    }
                    function += 1;
                    continue;
                }
                let header = self.host.read8(bdf, HEADER_TYPE)?;
                if function == 0 && header & HEADER_TYPE_MULTIFUNCTION != 0 {
                    functions = 8;
                }
                found.push(self.probe(bdf, vendor, header & !HEADER_TYPE_MULTIFUNCTION)?);
                function += 1;
            }
        }
        let mut highest = bus;
        for &index in &found {
            if self.nodes[index].layout == HEADER_TYPE_BRIDGE {
                highest = highest.max(self.descend(index, bus, depth)?);
            }
        }
        Ok((found, highest))
    }

    /// Numbers the bridge `index` on `bus` and scans behind it; returns its subordinate bus.
    fn descend(&mut self, index: usize, bus: u8, depth: usize) -> Result<u8, EnumError> {
        let bdf = self.nodes[index].function.bdf;
        if depth >= MAX_BRIDGE_DEPTH {
            self.problem(bdf, Problem::TooDeep);
            return Ok(bus);
        }
        let Ok(secondary) = u8::try_from(self.next_bus) else {
            self.problem(bdf, Problem::OutOfBusNumbers);
            return Ok(bus);
        };
        self.next_bus += 1;
        // Subordinate 0xFF while scanning, so every bus number handed out below is routed.
        self.host.write8(bdf, PRIMARY_BUS, bus)?;
        self.host.write8(bdf, SECONDARY_BUS, secondary)?;
        self.host.write8(bdf, SUBORDINATE_BUS, 0xFF)?;
        let (children, subordinate) = self.scan_bus(secondary, depth + 1)?;
        self.host.write8(bdf, SUBORDINATE_BUS, subordinate)?;
        let node = &mut self.nodes[index];
        node.children = children;
        node.function.buses = Some(BusRange {
            primary: bus,
            secondary,
            subordinate,
        });
        Ok(subordinate)
    }

    /// Reads one present function, turns its decoding off, sizes its BARs and gives it a PE.
    fn probe(&mut self, bdf: Bdf, vendor: u16, layout: u8) -> Result<usize, EnumError> {
        let device = self.host.read16(bdf, DEVICE_ID)?;
        let revision_class = self.host.read32(bdf, REVISION_CLASS)?;
        let command = self.host.read16(bdf, COMMAND)?;
        let decode = Command::IO_SPACE | Command::MEMORY_SPACE | Command::BUS_MASTER;
        let quiet = command & !decode.bits();
        self.host.write16(bdf, COMMAND, quiet)?;

        let pcie_type = self.pcie_type(bdf)?;
        let (kind, bar_count) = match layout {
            HEADER_TYPE_NORMAL => (FunctionKind::Endpoint, NORMAL_BARS),
            HEADER_TYPE_BRIDGE => {
                // Forget stale bus numbers so this bridge claims no config cycle meant for a
                // sibling until it is numbered.
                self.host.write8(bdf, PRIMARY_BUS, 0)?;
                self.host.write8(bdf, SECONDARY_BUS, 0)?;
                self.host.write8(bdf, SUBORDINATE_BUS, 0)?;
                if pcie_type == Some(PCIE_TYPE_ROOT_PORT) {
                    (FunctionKind::RootPort, BRIDGE_BARS)
                } else {
                    (FunctionKind::Bridge, BRIDGE_BARS)
                }
            }
            _ => {
                self.problem(bdf, Problem::UnsupportedHeader { layout });
                (FunctionKind::Other { layout }, 0)
            }
        };
        let bars = self.size_bars(bdf, bar_count)?;
        let pe = self.assign_pe(bdf);
        self.nodes.push(Node {
            function: PciFunction {
                phb_index: self.options.phb_index,
                bdf,
                kind,
                pcie_type,
                vendor,
                device,
                revision: revision_class as u8,
                class: revision_class >> 8,
                pe,
                bars,
                buses: None,
                window: None,
                command: quiet,
            },
            layout,
            original_command: command,
            children: Vec::new(),
        });
        Ok(self.nodes.len() - 1)
    }

    /// The PCIe device/port type, from the PCIe capability if the function has one.
    fn pcie_type(&mut self, bdf: Bdf) -> Result<Option<u8>, EnumError> {
        let status = Status::from_bits_retain(self.host.read16(bdf, STATUS)?);
        if !status.contains(Status::CAP_LIST) {
            return Ok(None);
        }
        let mut pointer = self.host.read8(bdf, CAP_POINTER)? & 0xFC;
        for _ in 0..MAX_CAPABILITIES {
            // Capabilities live after the 64-byte header; anything else ends the list.
            if pointer < 0x40 {
                break;
            }
            let at = u16::from(pointer);
            if self.host.read8(bdf, at)? == CAP_ID_PCIE {
                let capabilities = self.host.read16(bdf, at + PCIE_CAPABILITIES)?;
                return Ok(Some(((capabilities >> PCIE_TYPE_SHIFT) & 0xF) as u8));
            }
            pointer = self.host.read8(bdf, at + 1)? & 0xFC;
        }
        Ok(None)
    }

    /// Writes all-ones to a BAR register, reads back what sticks, and restores it.
    fn probe_bar_register(
        &mut self,
        bdf: Bdf,
        offset: u16,
        original: u32,
    ) -> Result<u32, EnumError> {
        self.host.write32(bdf, offset, 0xFFFF_FFFF)?;
        let sized = self.host.read32(bdf, offset)?;
        self.host.write32(bdf, offset, original)?;
        Ok(sized)
    }

    /// Sizes BARs 0..count (PCI 3.0 6.2.5.1). Sizes come from the lowest writable address bit,
    /// so a device returning a non-contiguous mask still gets a power of two.
    fn size_bars(&mut self, bdf: Bdf, count: u8) -> Result<Vec<Bar>, EnumError> {
        let mut bars = Vec::new();
        let mut index = 0;
        while index < count {
            let offset = BAR0 + 4 * u16::from(index);
            let original = self.host.read32(bdf, offset)?;
            if original & BAR_IO != 0 {
                let sized = self.probe_bar_register(bdf, offset, original)? & BAR_IO_ADDRESS_MASK;
                if sized != 0 {
                    let size = 1u64 << sized.trailing_zeros();
                    bars.push(Bar {
                        index,
                        kind: BarKind::Io,
                        prefetchable: false,
                        size,
                        address: None,
                    });
                }
                index += 1;
                continue;
            }
            let prefetchable = original & BAR_PREFETCHABLE != 0;
            match original & BAR_MEM_TYPE_MASK {
                BAR_MEM_TYPE_32 => {
                    let sized =
                        self.probe_bar_register(bdf, offset, original)? & BAR_MEM_ADDRESS_MASK;
                    if sized != 0 {
                        let size = 1u64 << sized.trailing_zeros();
                        bars.push(Bar {
                            index,
                            kind: BarKind::Memory32,
                            prefetchable,
                            size,
                            address: None,
                        });
                    }
                    index += 1;
                }
                BAR_MEM_TYPE_64 if index + 1 < count => {
                    let upper_offset = offset + 4;
                    let upper = self.host.read32(bdf, upper_offset)?;
                    self.host.write32(bdf, offset, 0xFFFF_FFFF)?;
                    self.host.write32(bdf, upper_offset, 0xFFFF_FFFF)?;
                    let low = self.host.read32(bdf, offset)? & BAR_MEM_ADDRESS_MASK;
                    let high = self.host.read32(bdf, upper_offset)?;
                    self.host.write32(bdf, offset, original)?;
                    self.host.write32(bdf, upper_offset, upper)?;
                    let sized = (u64::from(high) << 32) | u64::from(low);
                    if sized != 0 {
                        let size = 1u64 << sized.trailing_zeros();
                        bars.push(Bar {
                            index,
                            kind: BarKind::Memory64,
                            prefetchable,
                            size,
                            address: None,
                        });
                    }
                    index += 2;
                }
                _ => {
                    // A 64-bit BAR without a next register, "below 1 MiB" (cannot be placed in
                    // a window at 2 GiB) or the reserved type.
                    self.problem(
                        bdf,
                        Problem::BarUnsupported {
                            index,
                            flags: original & 0xF,
                        },
                    );
                    index += 1;
                }
            }
        }
        Ok(bars)
    }

    fn assign_pe(&mut self, bdf: Bdf) -> Option<u16> {
        if self.next_pe >= self.host.assignable_pes() {
            self.problem(bdf, Problem::NoFreePe);
            return None;
        }
        match self.host.assign_pe(bdf.rid(), self.next_pe) {
            Ok(()) => {
                self.next_pe += 1;
                Some(self.next_pe - 1)
            }
            Err(error) => {
                self.problem(bdf, Problem::PeRefused(error));
                None
            }
        }
    }

    /// Takes `size` bytes aligned to `align` from the window, if they fit.
    fn take(&mut self, size: u64, align: u64) -> Option<u64> {
        let start = align_up(self.cursor, align)?;
        let stop = start.checked_add(size)?;
        if stop > self.end {
            return None;
        }
        self.cursor = stop;
        Some(start)
    }

    /// Places the memory BARs of the functions on one bus, largest first (so natural alignment
    /// leaves no gaps between them), then each bridge's subtree inside a 1 MiB aligned window.
    fn place_bus(&mut self, members: &[usize]) {
        let mut wanted: Vec<(usize, usize, u64)> = Vec::new();
        for &node in members {
            for (slot, bar) in self.nodes[node].function.bars.iter().enumerate() {
                if bar.kind != BarKind::Io {
                    wanted.push((node, slot, bar.size));
                }
            }
        }
        wanted.sort_by_key(|&(_, _, size)| core::cmp::Reverse(size));
        for (node, slot, size) in wanted {
            match self.take(size, size) {
                Some(address) => self.nodes[node].function.bars[slot].address = Some(address),
                None => {
                    let bdf = self.nodes[node].function.bdf;
                    let index = self.nodes[node].function.bars[slot].index;
                    self.problem(bdf, Problem::BarDoesNotFit { index, size });
                }
            }
        }
        for &node in members {
            if self.nodes[node].children.is_empty() {
                continue;
            }
            let before = self.cursor;
            let start =
                align_up(self.cursor, BRIDGE_WINDOW_GRANULE).map_or(self.end, |s| s.min(self.end));
            self.cursor = start;
            let children = core::mem::take(&mut self.nodes[node].children);
            self.place_bus(&children);
            self.nodes[node].children = children;
            if self.cursor == start {
                self.cursor = before; // Nothing behind it took memory: no window.
                continue;
            }
            // `end` is 1 MiB aligned, so rounding up stays inside the window.
            let stop = align_up(self.cursor, BRIDGE_WINDOW_GRANULE)
                .unwrap_or(self.end)
                .min(self.end);
            self.nodes[node].function.window = Some(MemWindow {
                base: start,
                size: stop - start,
            });
            self.cursor = stop;
        }
    }

    /// Writes the BAR addresses and bridge windows, then turns decoding and bus mastering on
    /// for every function without a disabling problem, parents first.
    fn program(&mut self) -> Result<(), EnumError> {
        for index in 0..self.nodes.len() {
            let bdf = self.nodes[index].function.bdf;
            for bar in self.nodes[index].function.bars.clone() {
                let Some(address) = bar.address else { continue };
                let offset = BAR0 + 4 * u16::from(bar.index);
                self.host.write32(bdf, offset, address as u32)?;
                if bar.kind == BarKind::Memory64 {
                    self.host.write32(bdf, offset + 4, (address >> 32) as u32)?;
                }
            }
            if self.nodes[index].layout == HEADER_TYPE_BRIDGE {
                self.program_bridge_windows(index)?;
            }
        }
        let decode = Command::IO_SPACE | Command::MEMORY_SPACE | Command::BUS_MASTER;
        for index in 0..self.nodes.len() {
            let bdf = self.nodes[index].function.bdf;
            let disabled = matches!(self.nodes[index].function.kind, FunctionKind::Other { .. })
                || self
                    .problems
                    .iter()
                    .any(|p| p.bdf == bdf && p.problem.disables_function());
            let mut command = self.nodes[index].original_command & !decode.bits();
            if !disabled {
                command |= (Command::MEMORY_SPACE | Command::BUS_MASTER).bits();
                self.host.write16(bdf, COMMAND, command)?;
            }
            self.nodes[index].function.command = command;
        }
        Ok(())
    }

    /// Memory window over what is behind the bridge (or off); I/O and prefetchable windows
    /// off: PHB3 has no I/O space, and prefetchable BARs live in the memory window.
    fn program_bridge_windows(&mut self, index: usize) -> Result<(), EnumError> {
        let bdf = self.nodes[index].function.bdf;
        let (base, limit) = match self.nodes[index].function.window {
            Some(window) => (
                bridge_memory_base(window.base),
                bridge_memory_limit(window.last()),
            ),
            None => (BRIDGE_WINDOW_OFF_BASE, BRIDGE_WINDOW_OFF_LIMIT),
        };
        self.host.write16(bdf, MEMORY_BASE, base)?;
        self.host.write16(bdf, MEMORY_LIMIT, limit)?;
        self.host.write8(bdf, IO_BASE, BRIDGE_IO_OFF_BASE)?;
        self.host.write8(bdf, IO_LIMIT, BRIDGE_IO_OFF_LIMIT)?;
        self.host.write16(bdf, IO_BASE_UPPER16, 0)?;
        self.host.write16(bdf, IO_LIMIT_UPPER16, 0)?;
        self.host.write32(bdf, PREF_BASE_UPPER32, 0)?;
        self.host.write32(bdf, PREF_LIMIT_UPPER32, 0)?;
        self.host
            .write16(bdf, PREF_MEMORY_BASE, BRIDGE_WINDOW_OFF_BASE)?;
        self.host
            .write16(bdf, PREF_MEMORY_LIMIT, BRIDGE_WINDOW_OFF_LIMIT)?;
        Ok(())
    }
}
