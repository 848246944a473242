//! Placing and programming: memory BARs placed naturally aligned in the host's window,
//! largest first, each bridge's subtree in a 1 MiB aligned window; then BAR addresses and
//! bridge windows written, and decoding and bus mastering turned on, parents first.
//!
//! Resources: PCI-to-PCI Bridge 1.2 3.2.5 (memory base/limit, I/O and prefetchable windows
//! off); skiboot core/pci.c (bridge windows over what sits behind them).

use super::super::header::{
    bridge_memory_base, bridge_memory_limit, Command, BAR0, BRIDGE_IO_OFF_BASE,
    BRIDGE_IO_OFF_LIMIT, BRIDGE_WINDOW_GRANULE, BRIDGE_WINDOW_OFF_BASE, BRIDGE_WINDOW_OFF_LIMIT,
    COMMAND, HEADER_TYPE_BRIDGE, IO_BASE, IO_BASE_UPPER16, IO_LIMIT, IO_LIMIT_UPPER16, MEMORY_BASE,
    MEMORY_LIMIT, PREF_BASE_UPPER32, PREF_LIMIT_UPPER32, PREF_MEMORY_BASE, PREF_MEMORY_LIMIT,
};
use super::super::topology::{BarKind, EnumError, FunctionKind, MemWindow, Problem};
use super::Enumerator;
use alloc::vec::Vec;

const fn align_up(value: u64, align: u64) -> Option<u64> {
    match value.checked_add(align - 1) {
        Some(v) => Some(v & !(align - 1)),
        None => None,
    }
}

impl Enumerator<'_> {
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
    pub(super) fn place_bus(&mut self, members: &[usize]) {
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
    pub(super) fn program(&mut self) -> Result<(), EnumError> {
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
