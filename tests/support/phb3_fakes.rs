//! Host fakes shared by the PHB3 and PCI tests (included with `#[path] mod fakes;`): host RAM
//! behind the frame allocator, an XSCOM that fails on demand, a PCI config space with bus
//! routing, and a PHB3 register block that records every access and routes CONFIG_DATA into
//! that config space.
//!
//! The fakes behave like QEMU's models where the code under test depends on it: IODA_ADDR
//! auto-increment with QEMU's per-table index masks (hw/pci-host/pnv_phb3.c
//! `pnv_phb3_ioda_access`), config cycles routed by bridge bus numbers and absent functions
//! reading all-ones (`pnv_phb3_config_read`), CONFIG_ADDRESS decoded as
//! `bus = addr >> 52, devfn = addr >> 44, reg = (addr >> 32) & 0xffc`.
//!
//! Cargo also builds this file as a test crate of its own; it has no tests.
#![allow(dead_code)]

use std::alloc::{alloc, dealloc, Layout};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use tcefw::hw::regio::Width;
use tcefw::hw::xscom::{Xscom, XscomError};
use tcefw::mm::frame::BuddyAllocator;
use tcefw::mm::{FrameAllocator, PhysAddr};
use tcefw::pci::{check_config_access, Bdf, ConfigError, ConfigSpace, PeAssign, PeError};

// ---------------------------------------------------------------------------------------------
// Host RAM for the frame allocator.
// ---------------------------------------------------------------------------------------------

/// A 16 MiB-aligned host allocation used as "physical" memory.
pub struct Arena {
    pub base: *mut u8,
    layout: Layout,
}

impl Arena {
    pub fn new(size: usize) -> Self {
        let layout = Layout::from_size_align(size, 16 << 20).unwrap();
        // SAFETY: the layout has a non-zero size.
        let base = unsafe { alloc(layout) };
        assert!(!base.is_null());
        Arena { base, layout }
    }
}

impl Drop for Arena {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.base, self.layout) }
    }
}

/// A buddy allocator over a fresh 16 MiB arena. Keep the arena alive as long as the frames.
pub fn host_frames() -> (Arena, BuddyAllocator) {
    let arena = Arena::new(16 << 20);
    let frames = BuddyAllocator::new();
    let base = arena.base as u64;
    // SAFETY: the arena is ours and unused.
    unsafe { frames.add_range(base, base + (16 << 20)) };
    (arena, frames)
}

/// A frame allocator that refuses the `fail_on`-th allocation (1-based) and counts what is
/// outstanding, over a real buddy allocator.
pub struct CountingFrames<'a> {
    pub inner: &'a BuddyAllocator,
    pub fail_on: Option<usize>,
    state: Mutex<(usize, BTreeMap<PhysAddr, usize>)>,
}

impl<'a> CountingFrames<'a> {
    pub fn new(inner: &'a BuddyAllocator, fail_on: Option<usize>) -> Self {
        CountingFrames {
            inner,
            fail_on,
            state: Mutex::new((0, BTreeMap::new())),
        }
    }

    /// Blocks handed out and not yet freed.
    pub fn outstanding(&self) -> Vec<(PhysAddr, usize)> {
        self.state
            .lock()
            .unwrap()
            .1
            .iter()
            .map(|(&pa, &size)| (pa, size))
            .collect()
    }

    /// Allocation attempts so far.
    pub fn attempts(&self) -> usize {
        self.state.lock().unwrap().0
    }
}

impl FrameAllocator for CountingFrames<'_> {
    fn alloc(&self, size: usize) -> Option<PhysAddr> {
        let mut state = self.state.lock().unwrap();
        state.0 += 1;
        if Some(state.0) == self.fail_on {
            return None;
        }
        let pa = self.inner.alloc(size)?;
        state.1.insert(pa, size);
        Some(pa)
    }

    fn free(&self, pa: PhysAddr, size: usize) {
        let mut state = self.state.lock().unwrap();
        assert_eq!(
            state.1.remove(&pa),
            Some(size),
            "free of a block not handed out"
        );
        self.inner.free(pa, size);
    }
}

/// Reads the big-endian u16 at `pa` (host memory handed out by the fakes above).
pub fn peek_be16(pa: PhysAddr) -> u16 {
    let mut bytes = [0u8; 2];
    // SAFETY: tests only peek into blocks the allocator handed out and that are still live.
    unsafe { tcefw::mm::phys::read_bytes(pa, &mut bytes) };
    u16::from_be_bytes(bytes)
}

/// Reads `len` bytes at `pa`.
pub fn peek_bytes(pa: PhysAddr, len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    // SAFETY: as for `peek_be16`.
    unsafe { tcefw::mm::phys::read_bytes(pa, &mut bytes) };
    bytes
}

// ---------------------------------------------------------------------------------------------
// XSCOM.
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// PCI config space.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarSpec {
    Mem32 {
        index: u8,
        size: u64,
        prefetchable: bool,
    },
    Mem64 {
        index: u8,
        size: u64,
        prefetchable: bool,
    },
    Io {
        index: u8,
        size: u64,
    },
    /// Raw BAR: initial value and writable mask (for malformed BARs).
    Raw {
        index: u8,
        value: u32,
        writable: u32,
    },
}

#[derive(Clone, Debug)]
pub struct FnSpec {
    pub vendor: u16,
    pub device: u16,
    pub revision: u8,
    pub class: u32,
    pub bridge: bool,
    pub multifunction: bool,
    pub pcie_type: Option<u8>,
    pub command: u16,
    pub bars: Vec<BarSpec>,
}

impl FnSpec {
    pub fn endpoint(vendor: u16, device: u16, class: u32) -> Self {
        FnSpec {
            vendor,
            device,
            revision: 0,
            class,
            bridge: false,
            multifunction: false,
            pcie_type: None,
            command: 0,
            bars: Vec::new(),
        }
    }

    pub fn bridge(vendor: u16, device: u16) -> Self {
        FnSpec {
            bridge: true,
            class: 0x060400,
            ..Self::endpoint(vendor, device, 0x060400)
        }
    }

    pub fn pcie(mut self, port_type: u8) -> Self {
        self.pcie_type = Some(port_type);
        self
    }

    pub fn bar(mut self, bar: BarSpec) -> Self {
        self.bars.push(bar);
        self
    }

    pub fn multi(mut self) -> Self {
        self.multifunction = true;
        self
    }

    pub fn rev(mut self, revision: u8) -> Self {
        self.revision = revision;
        self
    }

    pub fn cmd(mut self, command: u16) -> Self {
        self.command = command;
        self
    }
}

#[derive(Clone, Debug)]
pub struct FakeFunction {
    pub config: Vec<u8>,
    writable: Vec<u8>,
    pub bridge: bool,
    pub children: Vec<(u8, usize)>,
}

impl FakeFunction {
    fn new(spec: &FnSpec) -> Self {
        let mut f = FakeFunction {
            config: vec![0; 4096],
            writable: vec![0; 4096],
            bridge: spec.bridge,
            children: Vec::new(),
        };
        f.set16(0x00, spec.vendor);
        f.set16(0x02, spec.device);
        f.set16(0x04, spec.command);
        f.mask16(0x04, 0x0547);
        f.set32(0x08, (spec.class << 8) | u32::from(spec.revision));
        f.config[0x0E] = u8::from(spec.bridge) | if spec.multifunction { 0x80 } else { 0 };
        if let Some(port_type) = spec.pcie_type {
            f.set16(0x06, 0x0010);
            f.config[0x34] = 0x40;
            f.config[0x40] = 0x10;
            f.config[0x41] = 0x00;
            f.set16(0x42, (u16::from(port_type) << 4) | 2);
        }
        if spec.bridge {
            for offset in 0x18..=0x1B {
                f.writable[offset] = 0xFF;
            }
            f.writable[0x1C] = 0xF0;
            f.writable[0x1D] = 0xF0;
            f.mask16(0x20, 0xFFF0);
            f.mask16(0x22, 0xFFF0);
            f.set16(0x24, 0x0001); // 64-bit capable prefetchable window.
            f.set16(0x26, 0x0001);
            f.mask16(0x24, 0xFFF0);
            f.mask16(0x26, 0xFFF0);
            f.mask32(0x28, 0xFFFF_FFFF);
            f.mask32(0x2C, 0xFFFF_FFFF);
            f.mask16(0x30, 0xFFFF);
            f.mask16(0x32, 0xFFFF);
            // Stale bus numbers and window from "a previous owner".
            f.config[0x18] = 0x07;
            f.config[0x19] = 0x08;
            f.config[0x1A] = 0x09;
        }
        for bar in &spec.bars {
            match *bar {
                BarSpec::Mem32 {
                    index,
                    size,
                    prefetchable,
                } => {
                    let offset = 0x10 + 4 * usize::from(index);
                    f.set32(offset, if prefetchable { 0x8 } else { 0 });
                    f.mask32(offset, !(size as u32 - 1) & !0xF);
                }
                BarSpec::Mem64 {
                    index,
                    size,
                    prefetchable,
                } => {
                    let offset = 0x10 + 4 * usize::from(index);
                    f.set32(offset, 0x4 | if prefetchable { 0x8 } else { 0 });
                    let mask = !(size - 1);
                    f.mask32(offset, (mask as u32) & !0xF);
                    f.mask32(offset + 4, (mask >> 32) as u32);
                }
                BarSpec::Io { index, size } => {
                    let offset = 0x10 + 4 * usize::from(index);
                    f.set32(offset, 0x1);
                    f.mask32(offset, !(size as u32 - 1) & !0x3);
                }
                BarSpec::Raw {
                    index,
                    value,
                    writable,
                } => {
                    let offset = 0x10 + 4 * usize::from(index);
                    f.set32(offset, value);
                    f.mask32(offset, writable);
                }
            }
        }
        f
    }

    fn set16(&mut self, offset: usize, value: u16) {
        self.config[offset..offset + 2].copy_from_slice(&value.to_le_bytes());
    }
    fn set32(&mut self, offset: usize, value: u32) {
        self.config[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    }
    fn mask16(&mut self, offset: usize, mask: u16) {
        self.writable[offset..offset + 2].copy_from_slice(&mask.to_le_bytes());
    }
    fn mask32(&mut self, offset: usize, mask: u32) {
        self.writable[offset..offset + 4].copy_from_slice(&mask.to_le_bytes());
    }

    pub fn read(&self, offset: usize, bytes: usize) -> u32 {
        let mut value = 0u32;
        for i in (0..bytes).rev() {
            value = (value << 8) | u32::from(self.config[offset + i]);
        }
        value
    }

    fn write(&mut self, offset: usize, bytes: usize, value: u32) {
        for i in 0..bytes {
            let byte = (value >> (8 * i)) as u8;
            let mask = self.writable[offset + i];
            self.config[offset + i] = (self.config[offset + i] & !mask) | (byte & mask);
        }
    }

    pub fn cfg8(&self, offset: usize) -> u8 {
        self.read(offset, 1) as u8
    }
    pub fn cfg16(&self, offset: usize) -> u16 {
        self.read(offset, 2) as u16
    }
    pub fn cfg32(&self, offset: usize) -> u32 {
        self.read(offset, 4)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigAccess {
    pub bus: u8,
    pub devfn: u8,
    pub offset: u16,
    pub bytes: usize,
    pub write: bool,
    pub value: u32,
    /// The fake function it reached, if any.
    pub target: Option<usize>,
}

/// A config space: functions on bus 0 and behind bridges, routed by the bridges' bus numbers.
/// Also a PE map, so it can stand in for a whole host bridge.
#[derive(Clone, Debug, Default)]
pub struct FakeConfig {
    pub functions: Vec<FakeFunction>,
    pub root: Vec<(u8, usize)>,
    pub log: Vec<ConfigAccess>,
    pub violations: Vec<String>,
    pub pes: BTreeMap<u16, u16>,
    pub assignable: u16,
    pub pe_log: Vec<(u16, u16)>,
}

impl FakeConfig {
    pub fn new() -> Self {
        FakeConfig {
            assignable: 255,
            ..Default::default()
        }
    }

    pub fn add_root(&mut self, devfn: u8, spec: FnSpec) -> usize {
        self.functions.push(FakeFunction::new(&spec));
        let id = self.functions.len() - 1;
        self.root.push((devfn, id));
        id
    }

    pub fn add_behind(&mut self, bridge: usize, devfn: u8, spec: FnSpec) -> usize {
        assert!(self.functions[bridge].bridge);
        self.functions.push(FakeFunction::new(&spec));
        let id = self.functions.len() - 1;
        self.functions[bridge].children.push((devfn, id));
        id
    }

    pub fn function(&self, id: usize) -> &FakeFunction {
        &self.functions[id]
    }

    fn find_in(&self, list: &[(u8, usize)], bus: u8, devfn: u8) -> Option<usize> {
        for &(_, id) in list {
            let f = &self.functions[id];
            if !f.bridge {
                continue;
            }
            let secondary = f.cfg8(0x19);
            let subordinate = f.cfg8(0x1A);
            if secondary == 0 {
                continue;
            }
            if bus == secondary {
                return f
                    .children
                    .iter()
                    .find(|(d, _)| *d == devfn)
                    .map(|&(_, id)| id);
            }
            if bus > secondary && bus <= subordinate {
                return self.find_in(&f.children, bus, devfn);
            }
        }
        None
    }

    /// The function a config cycle to `bus`/`devfn` reaches with the current bus numbers.
    pub fn route(&self, bus: u8, devfn: u8) -> Option<usize> {
        if bus == 0 {
            return self
                .root
                .iter()
                .find(|(d, _)| *d == devfn)
                .map(|&(_, id)| id);
        }
        self.find_in(&self.root, bus, devfn)
    }

    pub fn read_raw(&mut self, bus: u8, devfn: u8, offset: u16, bytes: usize) -> u32 {
        let target = self.route(bus, devfn);
        let value = match target {
            Some(id) => self.functions[id].read(usize::from(offset), bytes),
            None => (u64::MAX >> (64 - 8 * bytes)) as u32,
        };
        self.log.push(ConfigAccess {
            bus,
            devfn,
            offset,
            bytes,
            write: false,
            value,
            target,
        });
        value
    }

    pub fn write_raw(&mut self, bus: u8, devfn: u8, offset: u16, bytes: usize, value: u32) {
        let target = self.route(bus, devfn);
        self.log.push(ConfigAccess {
            bus,
            devfn,
            offset,
            bytes,
            write: true,
            value,
            target,
        });
        let Some(id) = target else { return };
        let function = &mut self.functions[id];
        let is_bar = (0x10..0x28).contains(&offset) && !(function.bridge && offset >= 0x18);
        if is_bar && value == 0xFFFF_FFFF && function.cfg16(0x04) & 0x3 != 0 {
            self.violations.push(format!(
                "BAR {offset:#x} of {bus:02x}:{devfn:02x} sized with decoding on"
            ));
        }
        function.write(usize::from(offset), bytes, value);
    }

    /// Accesses that reached function `id`.
    pub fn accesses_to(&self, id: usize) -> Vec<ConfigAccess> {
        self.log
            .iter()
            .filter(|a| a.target == Some(id))
            .copied()
            .collect()
    }
}

fn width_bytes(width: Width) -> usize {
    width.bytes() as usize
}

impl ConfigSpace for FakeConfig {
    fn config_read(&mut self, bdf: Bdf, offset: u16, width: Width) -> Result<u32, ConfigError> {
        check_config_access(offset, width)?;
        Ok(self.read_raw(bdf.bus, bdf.devfn, offset, width_bytes(width)))
    }

    fn config_write(
        &mut self,
        bdf: Bdf,
        offset: u16,
        width: Width,
        value: u32,
    ) -> Result<(), ConfigError> {
        check_config_access(offset, width)?;
        self.write_raw(bdf.bus, bdf.devfn, offset, width_bytes(width), value);
        Ok(())
    }
}

impl PeAssign for FakeConfig {
    fn assignable_pes(&self) -> u16 {
        self.assignable
    }

    fn assign_pe(&mut self, rid: u16, pe: u16) -> Result<(), PeError> {
        if pe >= self.assignable {
            return Err(PeError::OutOfRange { pe });
        }
        self.pes.insert(rid, pe);
        self.pe_log.push((rid, pe));
        Ok(())
    }
}

/// Ids of the functions in [`sample_topology`].
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub root_port: usize,
    pub bridge: usize,
    pub edu: usize,
    pub multi0: usize,
    pub multi1: usize,
}

/// The topology the enumeration tests use:
/// - 00:00.0 PHB3 root port 1014:03dc (PCIe type ROOT), no BARs;
/// - behind it (bus 1): 00.0 a PCI bridge 1b36:0001 (no PCIe capability) with a 256-byte
///   BAR0, and 01.0 edu 1234:11e8 rev 0x10 class 00ff00 with a 1 MiB BAR0;
/// - behind the bridge (bus 2): a multi-function device at 00.0/00.1:
///   fn0 8086:10d3 with a 64-bit prefetchable 16 KiB BAR0, a 32-bit 128 KiB BAR2 and a
///   32-byte I/O BAR4; fn1 8086:10d4 with a 4 KiB BAR0 and a 64-bit 1 MiB BAR2.
///   The edu starts with decoding on (command 0x0007), as if a previous owner left it so.
pub fn sample_topology() -> (FakeConfig, Sample) {
    let mut config = FakeConfig::new();
    let root_port = config.add_root(0x00, FnSpec::bridge(0x1014, 0x03DC).pcie(4));
    let bridge = config.add_behind(
        root_port,
        0x00,
        FnSpec::bridge(0x1B36, 0x0001).bar(BarSpec::Mem32 {
            index: 0,
            size: 256,
            prefetchable: false,
        }),
    );
    let edu = config.add_behind(
        root_port,
        0x08,
        FnSpec::endpoint(0x1234, 0x11E8, 0x00FF00)
            .rev(0x10)
            .cmd(0x0007)
            .bar(BarSpec::Mem32 {
                index: 0,
                size: 1 << 20,
                prefetchable: false,
            }),
    );
    let multi0 = config.add_behind(
        bridge,
        0x00,
        FnSpec::endpoint(0x8086, 0x10D3, 0x020000)
            .multi()
            .pcie(0)
            .bar(BarSpec::Mem64 {
                index: 0,
                size: 16 << 10,
                prefetchable: true,
            })
            .bar(BarSpec::Mem32 {
                index: 2,
                size: 128 << 10,
                prefetchable: false,
            })
            .bar(BarSpec::Io { index: 4, size: 32 }),
    );
    let multi1 = config.add_behind(
        bridge,
        0x01,
        FnSpec::endpoint(0x8086, 0x10D4, 0x020000)
            .pcie(0)
            .bar(BarSpec::Mem32 {
                index: 0,
                size: 4 << 10,
                prefetchable: false,
            })
            .bar(BarSpec::Mem64 {
                index: 2,
                size: 1 << 20,
                prefetchable: false,
            }),
    );
    (
        config,
        Sample {
            root_port,
            bridge,
            edu,
            multi0,
            multi1,
        },
    )
}

// ---------------------------------------------------------------------------------------------
// PHB3 register block.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Read64,
    Write64,
    ReadLe(Width),
    WriteLe(Width),
    Delay,
}

/// One recorded register access: offset, width (in `op`) and value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegAccess {
    pub op: Op,
    pub offset: u64,
    pub value: u64,
}

pub struct PhbState {
    pub regs: HashMap<u64, u64>,
    pub ioda: HashMap<(u64, u64), u64>,
    pub config: FakeConfig,
    pub log: Vec<RegAccess>,
    /// After this many accesses the PHB "falls off": reads all-ones, writes vanish.
    pub dead_after: Option<usize>,
    /// After this many accesses reads return all-ones (writes still land).
    pub reads_dead_after: Option<usize>,
}

/// A PHB3 register block: a register file, IODA tables behind IODA_ADDR/IODA_DATA0,
/// CONFIG_DATA routed into a [`FakeConfig`], and a log of every access.
pub struct FakePhb {
    pub state: Mutex<PhbState>,
}

const IODA_ADDR: u64 = 0x220;
const IODA_DATA0: u64 = 0x228;
const CONFIG_ADDRESS: u64 = 0x140;
const CONFIG_DATA: u64 = 0x130;
const DMARD_SYNC: u64 = 0x200;
const DMARD_SYNC_COMPLETE: u64 = 1 << 62;

/// QEMU `pnv_phb3_ioda_access` index masks.
fn ioda_mask(table: u64) -> u64 {
    match table {
        1 | 2 | 6 => 7,
        3 | 4 => 31,
        5 | 10 | 11 => 63,
        7 | 8 | 17 => 255,
        9 => 511,
        16 => 15,
        20 => 3,
        _ => 0,
    }
}

impl FakePhb {
    pub fn new(version: u64, config: FakeConfig) -> Self {
        let mut regs = HashMap::new();
        regs.insert(0x800, version);
        FakePhb {
            state: Mutex::new(PhbState {
                regs,
                ioda: HashMap::new(),
                config,
                log: Vec::new(),
                dead_after: None,
                reads_dead_after: None,
            }),
        }
    }

    /// A PHB that answers like QEMU's (VERSION 0x000000a300000005) with an empty bus 0.
    pub fn qemu() -> Self {
        Self::new(0x0000_00A3_0000_0005, FakeConfig::new())
    }

    pub fn log(&self) -> Vec<RegAccess> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn clear_log(&self) {
        self.state.lock().unwrap().log.clear();
    }

    pub fn writes(&self) -> Vec<(u64, u64)> {
        self.log()
            .iter()
            .filter(|a| a.op == Op::Write64)
            .map(|a| (a.offset, a.value))
            .collect()
    }

    pub fn reg(&self, offset: u64) -> u64 {
        self.state
            .lock()
            .unwrap()
            .regs
            .get(&offset)
            .copied()
            .unwrap_or(0)
    }

    pub fn ioda(&self, table: u64, index: u64) -> Option<u64> {
        self.state
            .lock()
            .unwrap()
            .ioda
            .get(&(table, index))
            .copied()
    }

    pub fn set_dead_after(&self, accesses: usize) {
        self.state.lock().unwrap().dead_after = Some(accesses);
    }

    pub fn set_reads_dead_after(&self, accesses: usize) {
        self.state.lock().unwrap().reads_dead_after = Some(accesses);
    }

    pub fn config(&self) -> FakeConfig {
        self.state.lock().unwrap().config.clone()
    }

    fn record(state: &mut PhbState, op: Op, offset: u64, value: u64) -> bool {
        state.log.push(RegAccess { op, offset, value });
        state.dead_after.is_some_and(|n| state.log.len() > n)
    }

    fn ioda_step(state: &mut PhbState) -> (u64, u64) {
        let address = state.regs.get(&IODA_ADDR).copied().unwrap_or(0);
        let table = (address >> 48) & 0x1F;
        let mask = ioda_mask(table);
        let index = address & 0x1FF & mask;
        if address >> 63 != 0 {
            let next = (index + 1) & mask;
            state.regs.insert(IODA_ADDR, (address & !0x1FF) | next);
        }
        (table, index)
    }

    fn config_target(state: &PhbState) -> Option<(u8, u8, u16)> {
        let address = state.regs.get(&CONFIG_ADDRESS).copied().unwrap_or(0);
        if address >> 63 == 0 {
            return None;
        }
        Some((
            (address >> 52) as u8,
            (address >> 44) as u8,
            ((address >> 32) & 0xFFC) as u16,
        ))
    }
}

impl tcefw::hw::regio::RegIo for FakePhb {
    fn now_ns(&self) -> u64 {
        static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_nanos() as u64
    }

    fn read64(&self, offset: u64) -> u64 {
        let mut state = self.state.lock().unwrap();
        let dead = Self::record(&mut state, Op::Read64, offset, 0);
        if dead || state.reads_dead_after.is_some_and(|n| state.log.len() > n) {
            state.log.last_mut().unwrap().value = u64::MAX;
            return u64::MAX;
        }
        let value = if offset == IODA_DATA0 {
            let key = Self::ioda_step(&mut state);
            state.ioda.get(&key).copied().unwrap_or(0)
        } else if offset == DMARD_SYNC {
            // As QEMU's PHB3: the DMA read sync always reads COMPLETE.
            DMARD_SYNC_COMPLETE
        } else {
            state.regs.get(&offset).copied().unwrap_or(0)
        };
        state.log.last_mut().unwrap().value = value;
        value
    }

    fn write64(&self, offset: u64, value: u64) {
        let mut state = self.state.lock().unwrap();
        if Self::record(&mut state, Op::Write64, offset, value) {
            return;
        }
        if offset == IODA_DATA0 {
            let key = Self::ioda_step(&mut state);
            state.ioda.insert(key, value);
        } else {
            state.regs.insert(offset, value);
        }
    }

    fn read_le(&self, offset: u64, width: Width) -> u32 {
        let mut state = self.state.lock().unwrap();
        let bytes = width.bytes() as usize;
        let ones = (u64::MAX >> (64 - 8 * bytes)) as u32;
        if Self::record(&mut state, Op::ReadLe(width), offset, 0) {
            return ones;
        }
        let value = match (offset & !3 == CONFIG_DATA, Self::config_target(&state)) {
            (true, Some((bus, devfn, reg))) => {
                state
                    .config
                    .read_raw(bus, devfn, reg | (offset & 3) as u16, bytes)
            }
            _ => ones,
        };
        state.log.last_mut().unwrap().value = u64::from(value);
        value
    }

    fn write_le(&self, offset: u64, width: Width, value: u32) {
        let mut state = self.state.lock().unwrap();
        if Self::record(&mut state, Op::WriteLe(width), offset, u64::from(value)) {
            return;
        }
        if let (true, Some((bus, devfn, reg))) =
            (offset & !3 == CONFIG_DATA, Self::config_target(&state))
        {
            let bytes = width.bytes() as usize;
            state
                .config
                .write_raw(bus, devfn, reg | (offset & 3) as u16, bytes, value);
        }
    }

    fn delay_ns(&self, ns: u64) {
        let mut state = self.state.lock().unwrap();
        Self::record(&mut state, Op::Delay, 0, ns);
    }
}
