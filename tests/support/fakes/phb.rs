//! A PHB3 register block that records every access: a register file, the IODA tables
//! behind IODA_ADDR/IODA_DATA0 with QEMU's auto-increment and per-table index masks
//! (hw/pci-host/pnv_phb3.c `pnv_phb3_ioda_access`), and CONFIG_DATA routed into a
//! [`FakeConfig`] with CONFIG_ADDRESS decoded as `bus = addr >> 52, devfn = addr >> 44,
//! reg = (addr >> 32) & 0xffc`.

use super::config::FakeConfig;
use std::collections::HashMap;
use std::sync::Mutex;
use tcefw::hw::regio::Width;

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
