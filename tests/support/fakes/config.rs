//! A PCI config space with functions on bus 0 and behind bridges, routed by the bridges'
//! bus numbers as QEMU routes config cycles (`pnv_phb3_config_read`: absent functions read
//! all-ones), with a PE map so that it can stand in for a whole host bridge; and the sample
//! topology the enumeration tests use.

use std::collections::BTreeMap;
use tcefw::hw::regio::Width;
use tcefw::pci::{check_config_access, Bdf, ConfigError, ConfigSpace, PeAssign, PeError};

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
