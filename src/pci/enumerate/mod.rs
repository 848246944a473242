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
//! The walk and the PE assignment are here; `bars` sizes BARs and `program` places them
//! and programs the functions. The result types are in [`super::topology`].
//!
//! Resources: skiboot core/pci.c (`pci_scan_bus`, `pci_scan_one`, `pci_print_summary_line`);
//! PCI Local Bus 3.0 6.2.5.1 (BAR sizing); PCI-to-PCI Bridge 1.2 3.2.5 (bus numbers, windows).

use super::header::{
    Command, Status, BRIDGE_BARS, BRIDGE_WINDOW_GRANULE, CAP_ID_PCIE, CAP_POINTER, COMMAND,
    DEVICE_ID, HEADER_TYPE, HEADER_TYPE_BRIDGE, HEADER_TYPE_MULTIFUNCTION, HEADER_TYPE_NORMAL,
    MAX_CAPABILITIES, NORMAL_BARS, PCIE_CAPABILITIES, PCIE_TYPE_ROOT_PORT, PCIE_TYPE_SHIFT,
    PRIMARY_BUS, REVISION_CLASS, SECONDARY_BUS, STATUS, SUBORDINATE_BUS, VENDOR_ID,
};
use super::topology::{
    BusRange, EnumError, EnumOptions, FunctionKind, FunctionProblem, PciFunction, Problem, Topology,
};
use super::{Bdf, HostBridge};
use alloc::vec::Vec;

mod bars;
mod program;

/// Bridges nested deeper than this are left without a secondary bus: it bounds the
/// recursion (and the firmware stack) whatever the devices claim.
pub const MAX_BRIDGE_DEPTH: usize = 16;
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
}
