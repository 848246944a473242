//! A software PHB3 for host tests: registers, the TVT behind IODA_ADDR/IODA_DATA0, the RTT in
//! memory, a TCE cache that only kills invalidate, and a DMA engine that translates through
//! that cache and checks permissions.
//!
//! The translation is the hardware's (QEMU hw/pci-host/pnv_phb3.c `pnv_phb3_translate_iommu`
//! and `pnv_phb3_translate_tve`): RID → PE from the RTT (cached until RTC_INVALIDATE, as
//! QEMU does); DMA address bits 60..63 must be 0; TVT[PE * 2 + bit 59] → TVE; table base
//! `TABLE_ADDR << 12`, `tbl_shift = TCE_TABLE_SIZE + 8`, `tce_shift = IO_PSIZE + 11`; each
//! level's entry at `base | ((addr >> sh) & mask) << 3`, big-endian, an indirect entry needing
//! R or W. Unlike QEMU it CACHES the final TCEs: a miss fills from memory, later DMA uses the
//! cached value even when the table has changed, and only a TCE_KILL store (one: PE + page
//! bus address; PE; all, encodings from Linux `pnv_pci_phb3_tce_invalidate*`) removes
//! entries. So a missing or late kill is visible here, where QEMU cannot show it.
//!
//! Kill completion: a kill is performed only once no DMA is in flight and no cache fill is
//! half done (DMAs hold the in-flight lock shared, a kill holds it exclusively). Without this a
//! fill that read a TCE just before the CPU swapped it could land in the cache after the kill,
//! which real hardware must prevent (skiboot's PHB4 code makes it explicit with its "DMA sync"
//! after each kill); the concurrent tests found exactly that hole in an earlier model.
//!
//! Pin watch: given the page accounting, the model plays the most adversarial device: at every
//! register access (each kill store, each load back) it checks that every translation it has
//! cached lands on pinned frames, as if the device were DMAing through all of them at that
//! instant. Any cached translation to an unpinned frame is recorded as a violation.

use super::host::DeviceMemory;
use crate::iommu::kill::{KILL_ADDR_MASK, KILL_ALL, KILL_ONE, KILL_PE, KILL_PE_MASK};
use crate::iommu::pages::{PageAccounting, FRAME_SHIFT};
use crate::iommu::tce::{Tce, TCE_PERM_MASK};
use crate::iommu::tve::Tve;
use crate::mm::PhysAddr;
use crate::phb3::regio::{RegIo, Width};
use crate::phb3::regs::{
    ioda2_table, ppc_bit, ppc_bitmask, PHB_IODA_ADDR, PHB_IODA_AD_AUTOINC, PHB_IODA_AD_TADR,
    PHB_IODA_AD_TSEL, PHB_IODA_DATA0, PHB_RTC_INVALIDATE, PHB_RTT_BAR, PHB_TCE_KILL,
};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

/// Bytes of PHB register space modelled.
pub const REG_SPACE: u64 = 0x1000;
/// RTT_BAR enable bit (skiboot `PHB_RTT_BAR_ENABLE`).
pub const RTT_BAR_ENABLE: u64 = ppc_bit(0);
/// RTT_BAR base address field (skiboot `PHB_RTT_BASE_ADDRESS_MASK`).
pub const RTT_BASE_MASK: u64 = ppc_bitmask(14, 46);
/// PEs of a PHB3.
pub const NUM_PES: u16 = 256;

/// Why a DMA failed (the PHB would log an error and drop the access).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaFault {
    /// RTT_BAR not enabled, or the RTT entry unreadable.
    NoRtt,
    /// The RTT maps the RID to an invalid PE.
    BadPe(u16),
    /// DMA address bits 60..63 are not 0 (MSI or unsupported space).
    BadAddress(u64),
    /// The TVE does not translate (disabled, bypass, or invalid fields).
    TveInvalid(usize),
    /// A table word outside memory.
    TableOutsideMemory(PhysAddr),
    /// An indirect entry without R/W (level not allocated).
    NoLevel(u64),
    /// The final TCE does not allow the access.
    Permission {
        /// Bus address.
        addr: u64,
        /// The TCE used (possibly a cached, stale one).
        tce: u64,
        /// True for a device write.
        write: bool,
    },
    /// The translated address is not memory.
    TargetOutsideMemory(PhysAddr),
}

/// A translation the device could use right now through a cached TCE, to an unpinned frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaleReach {
    /// PE.
    pub pe: u16,
    /// Bus address of the page.
    pub bus: u64,
    /// Host frame that has no pin.
    pub frame: PhysAddr,
    /// The cached TCE.
    pub tce: u64,
}

#[derive(Clone, Copy, Debug)]
struct Cached {
    page_shift: u32,
    tce: u64,
}

#[derive(Default)]
struct State {
    /// (PE, page_shift, bus_addr >> page_shift) → TCE.
    tces: BTreeMap<(u16, u32, u64), Cached>,
    /// RID → PE, until RTC_INVALIDATE.
    rtc: BTreeMap<u16, u16>,
    first_violation: Option<StaleReach>,
}

/// Counters of what the model saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ModelStats {
    /// Kill-one stores.
    pub kill_one: u64,
    /// Kill-PE stores.
    pub kill_pe: u64,
    /// Kill-all stores.
    pub kill_all: u64,
    /// Cache fills (misses that found a valid TCE).
    pub fills: u64,
    /// Cache hits.
    pub hits: u64,
    /// DMA faults.
    pub faults: u64,
    /// Cached translations found pointing at unpinned frames (pin watch).
    pub violations: u64,
}

/// The software PHB3.
pub struct Phb3Model<'p> {
    memory: DeviceMemory,
    regs: Vec<AtomicU64>,
    tvt: Vec<AtomicU64>,
    state: spin::Mutex<State>,
    inflight: spin::RwLock<()>,
    watch: Option<&'p PageAccounting>,
    kill_one: AtomicU64,
    kill_pe: AtomicU64,
    kill_all: AtomicU64,
    fills: AtomicU64,
    hits: AtomicU64,
    faults: AtomicU64,
    violations: AtomicU64,
}

impl<'p> Phb3Model<'p> {
    /// A PHB in its reset state (every TVE 0, RTT disabled, empty cache) that may access
    /// `memory`. With `watch`, it checks at every register access that nothing it has cached
    /// reaches an unpinned frame.
    pub fn new(memory: DeviceMemory, watch: Option<&'p PageAccounting>) -> Self {
        let mut regs = Vec::new();
        regs.resize_with((REG_SPACE / 8) as usize, || AtomicU64::new(0));
        let mut tvt = Vec::new();
        tvt.resize_with(crate::iommu::tve::TVT_ENTRIES, || AtomicU64::new(0));
        Phb3Model {
            memory,
            regs,
            tvt,
            state: spin::Mutex::new(State::default()),
            inflight: spin::RwLock::new(()),
            watch,
            kill_one: AtomicU64::new(0),
            kill_pe: AtomicU64::new(0),
            kill_all: AtomicU64::new(0),
            fills: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            faults: AtomicU64::new(0),
            violations: AtomicU64::new(0),
        }
    }

    /// The memory the model may access.
    pub fn memory(&self) -> &DeviceMemory {
        &self.memory
    }

    /// TVT entry `index` as the PHB holds it.
    pub fn tve(&self, index: usize) -> u64 {
        self.tvt.get(index).map_or(0, |t| t.load(Ordering::Acquire))
    }

    /// Counters.
    pub fn stats(&self) -> ModelStats {
        ModelStats {
            kill_one: self.kill_one.load(Ordering::Relaxed),
            kill_pe: self.kill_pe.load(Ordering::Relaxed),
            kill_all: self.kill_all.load(Ordering::Relaxed),
            fills: self.fills.load(Ordering::Relaxed),
            hits: self.hits.load(Ordering::Relaxed),
            faults: self.faults.load(Ordering::Relaxed),
            violations: self.violations.load(Ordering::Relaxed),
        }
    }

    /// The first stale reach the pin watch found, if any.
    pub fn first_violation(&self) -> Option<StaleReach> {
        self.state.lock().first_violation
    }

    /// Number of TCEs in the cache.
    pub fn cached_tces(&self) -> usize {
        self.state.lock().tces.len()
    }

    /// Every translation the device could use from its cache right now:
    /// (PE, page bus address, page size, TCE).
    pub fn cached(&self) -> Vec<(u16, u64, u64, Tce)> {
        self.state
            .lock()
            .tces
            .iter()
            .map(|(&(pe, shift, page), c)| (pe, page << shift, 1u64 << shift, Tce::from_raw(c.tce)))
            .collect()
    }

    fn pe_of(&self, rid: u16) -> Result<u16, DmaFault> {
        if let Some(&pe) = self.state.lock().rtc.get(&rid) {
            return Ok(pe);
        }
        let bar = self.read_reg(PHB_RTT_BAR);
        if bar & RTT_BAR_ENABLE == 0 {
            return Err(DmaFault::NoRtt);
        }
        let entry = (bar & RTT_BASE_MASK) + 2 * rid as u64;
        let pe = self.memory.read_be16(entry).ok_or(DmaFault::NoRtt)?;
        if pe >= NUM_PES {
            return Err(DmaFault::BadPe(pe));
        }
        self.state.lock().rtc.insert(rid, pe);
        Ok(pe)
    }

    /// The TCE the PHB uses for `addr` of PE `pe`: from the cache, or walked from memory and
    /// then cached. Returns (page_shift, tce).
    fn lookup(&self, pe: u16, addr: u64) -> Result<(u32, u64), DmaFault> {
        if addr >> 60 != 0 {
            return Err(DmaFault::BadAddress(addr));
        }
        let tvt = pe as usize * 2 + ((addr >> 59) & 1) as usize;
        let tve = Tve::decode(self.tve(tvt)).ok_or(DmaFault::TveInvalid(tvt))?;
        let tce_shift = tve.page_shift;
        let key = (pe, tce_shift, addr >> tce_shift);
        if let Some(cached) = self.state.lock().tces.get(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok((tce_shift, cached.tce));
        }
        let tbl_shift = tve.level_bytes_log2 - 3;
        let mut base = tve.table_pa;
        let mut tce = 0;
        for level in (0..tve.levels).rev() {
            let sh = tbl_shift * level + tce_shift;
            let digit = if sh >= 64 {
                0
            } else {
                (addr >> sh) & ((1u64 << tbl_shift) - 1)
            };
            let word = base | (digit << 3);
            tce = self
                .memory
                .read_be64(word)
                .ok_or(DmaFault::TableOutsideMemory(word))?;
            if level > 0 {
                if tce & TCE_PERM_MASK == 0 {
                    return Err(DmaFault::NoLevel(addr));
                }
                base = tce & !0xFFF;
            }
        }
        if tce & TCE_PERM_MASK != 0 {
            self.fills.fetch_add(1, Ordering::Relaxed);
            self.state.lock().tces.insert(
                key,
                Cached {
                    page_shift: tce_shift,
                    tce,
                },
            );
        }
        Ok((tce_shift, tce))
    }

    /// Translates one access of the device `rid` at bus address `addr`, as the PHB does
    /// (through and into its TCE cache), and checks the permission.
    pub fn translate(&self, rid: u16, addr: u64, write: bool) -> Result<PhysAddr, DmaFault> {
        let _in_flight = self.inflight.read();
        self.translate_in_flight(rid, addr, write)
    }

    fn translate_in_flight(&self, rid: u16, addr: u64, write: bool) -> Result<PhysAddr, DmaFault> {
        let result = self.pe_of(rid).and_then(|pe| {
            let (shift, tce) = self.lookup(pe, addr)?;
            let allowed = if write { tce & 2 != 0 } else { tce & 1 != 0 };
            if !allowed {
                return Err(DmaFault::Permission { addr, tce, write });
            }
            Ok((tce & !((1u64 << shift) - 1)) | (addr & ((1u64 << shift) - 1)))
        });
        if result.is_err() {
            self.faults.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Splits `[iova, iova + len)` into accesses that stay within 4 KiB (no IOMMU page is
    /// smaller), translating each. All are translated before any byte moves.
    fn plan(
        &self,
        rid: u16,
        iova: u64,
        len: usize,
        write: bool,
    ) -> Result<Vec<(PhysAddr, usize)>, DmaFault> {
        let mut chunks = Vec::new();
        let mut done = 0usize;
        while done < len {
            let addr = iova
                .checked_add(done as u64)
                .ok_or(DmaFault::BadAddress(iova))?;
            let room = (0x1000 - (addr & 0xFFF)) as usize;
            let size = room.min(len - done);
            let host = self.translate_in_flight(rid, addr, write)?;
            if !self.memory.contains(host, size as u64) {
                self.faults.fetch_add(1, Ordering::Relaxed);
                return Err(DmaFault::TargetOutsideMemory(host));
            }
            chunks.push((host, size));
            done += size;
        }
        Ok(chunks)
    }

    /// The device `rid` writes `bytes` at bus address `iova`. A faulting DMA writes nothing.
    pub fn dma_write(&self, rid: u16, iova: u64, bytes: &[u8]) -> Result<(), DmaFault> {
        let _in_flight = self.inflight.read();
        let chunks = self.plan(rid, iova, bytes.len(), true)?;
        let mut offset = 0;
        for (host, size) in chunks {
            self.memory.write(host, &bytes[offset..offset + size]);
            offset += size;
        }
        Ok(())
    }

    /// The device `rid` reads `len` bytes at bus address `iova`.
    pub fn dma_read(&self, rid: u16, iova: u64, len: usize) -> Result<Vec<u8>, DmaFault> {
        let _in_flight = self.inflight.read();
        let chunks = self.plan(rid, iova, len, false)?;
        let mut data = alloc::vec![0u8; len];
        let mut offset = 0;
        for (host, size) in chunks {
            self.memory.read(host, &mut data[offset..offset + size]);
            offset += size;
        }
        Ok(data)
    }

    fn kill(&self, value: u64) {
        // Performed once every DMA and fill in flight has finished.
        let _no_dma_in_flight = self.inflight.write();
        let mut state = self.state.lock();
        if value & KILL_ALL != 0 {
            self.kill_all.fetch_add(1, Ordering::Relaxed);
            state.tces.clear();
        } else if value & KILL_PE != 0 {
            self.kill_pe.fetch_add(1, Ordering::Relaxed);
            let pe = (value & KILL_PE_MASK) as u16;
            state.tces.retain(|&(p, _, _), _| p != pe);
        } else if value & KILL_ONE != 0 {
            self.kill_one.fetch_add(1, Ordering::Relaxed);
            let pe = (value & KILL_PE_MASK) as u16;
            let addr = value & KILL_ADDR_MASK;
            state
                .tces
                .retain(|&(p, shift, page), _| p != pe || addr >> shift != page);
        }
        if state.tces.is_empty() {
            // An emptied BTreeMap keeps its root node; a fresh one holds no heap, so a test
            // that compares heap usage sees the model's cache take back everything it took.
            state.tces = BTreeMap::new();
        }
    }

    /// The pin watch, run now: the device may be using any cached TCE at this instant; every
    /// cached translation to an unpinned frame counts as a violation. Runs by itself at every
    /// register access when the model watches pins.
    pub fn watch_now(&self) {
        let Some(pages) = self.watch else { return };
        let mut state = self.state.lock();
        let mut found = None;
        let mut count = 0;
        for (&(pe, shift, page), cached) in &state.tces {
            let tce = Tce::from_raw(cached.tce);
            if !tce.is_valid() {
                continue;
            }
            let frames = 1u64 << (cached.page_shift.saturating_sub(FRAME_SHIFT));
            for f in 0..frames {
                let frame = tce.addr() + (f << FRAME_SHIFT);
                if pages.pins(frame) == 0 {
                    count += 1;
                    found.get_or_insert(StaleReach {
                        pe,
                        bus: page << shift,
                        frame,
                        tce: cached.tce,
                    });
                    break;
                }
            }
        }
        if count > 0 {
            self.violations.fetch_add(count, Ordering::Relaxed);
            if state.first_violation.is_none() {
                state.first_violation = found;
            }
        }
    }

    fn read_reg(&self, offset: u64) -> u64 {
        self.regs
            .get((offset / 8) as usize)
            .map_or(0, |r| r.load(Ordering::Acquire))
    }

    fn ioda_target(&self) -> Option<usize> {
        let select = self.read_reg(PHB_IODA_ADDR);
        let table = (select & PHB_IODA_AD_TSEL) >> PHB_IODA_AD_TSEL.trailing_zeros();
        let index = (select & PHB_IODA_AD_TADR) as usize;
        if select & PHB_IODA_AD_AUTOINC != 0 {
            let next = (select & !PHB_IODA_AD_TADR) | ((index as u64 + 1) & PHB_IODA_AD_TADR);
            self.regs[(PHB_IODA_ADDR / 8) as usize].store(next, Ordering::Release);
        }
        (table == ioda2_table::TVT).then_some(index)
    }
}

impl RegIo for Phb3Model<'_> {
    fn read64(&self, offset: u64) -> u64 {
        self.watch_now();
        if offset == PHB_IODA_DATA0 {
            return self.ioda_target().map_or(0, |i| self.tve(i));
        }
        self.read_reg(offset)
    }

    fn write64(&self, offset: u64, value: u64) {
        // The device may DMA through its cache right up to the moment this store lands.
        self.watch_now();
        if !offset.is_multiple_of(8) || offset >= REG_SPACE {
            return;
        }
        match offset {
            PHB_IODA_DATA0 => {
                if let Some(index) = self.ioda_target() {
                    if let Some(entry) = self.tvt.get(index) {
                        entry.store(value, Ordering::Release);
                    }
                }
            }
            PHB_TCE_KILL => self.kill(value),
            PHB_RTC_INVALIDATE => self.state.lock().rtc.clear(),
            _ => {}
        }
        // Like QEMU, every register (TCE_KILL included) reads back what was last written.
        self.regs[(offset / 8) as usize].store(value, Ordering::Release);
    }

    fn read_le(&self, _offset: u64, _width: Width) -> u32 {
        // No devices behind this model's config space.
        u32::MAX
    }

    fn write_le(&self, _offset: u64, _width: Width, _value: u32) {}
}
