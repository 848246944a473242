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
//! Address decode, worst case (docs/phb3-dma-bounds-and-kill.md): like QEMU, a table decodes
//! only its index bits, so `addr + k * reach` walks to the same entry as `addr`; the cache
//! keys a translation by its full bus address, and a kill-one matches the full bus address it
//! carries. So a kill-one for an entry's real address leaves an alias the device filled,
//! which no source rules out for the real PHB3. Kill-PE and kill-all match by PE / everything.
//!
//! Kill ordering and completion, which the firmware must earn (docs/phb3-dma-bounds-and-kill.md):
//! - A kill store counts only after a barrier ([`RegIo::barrier`], `sync` on hardware) since
//!   the last completed sync: without one the PHB may perform the kill before the CPU's table
//!   stores reach memory and refill the entries from the old values, so the model leaves the
//!   cache as it was and counts an unordered kill.
//! - A kill store drops the matching entries at once but waits for nothing: a fill that read
//!   a TCE before the CPU swapped it and lands after the store survives. Only the completion
//!   step, a DMA read sync (DMARD_SYNC START written, then a read of the register), drains
//!   every DMA and fill in flight (DMAs hold the in-flight lock shared, the sync takes it
//!   exclusively), lands the fills the test parked ([`Phb3Model::park_fill`]), and then
//!   performs every kill stored since the last sync again. Before this step existed, the model
//!   waited for in-flight DMA at every kill store, which let the firmware skip the step unseen.
//! - [`Phb3Model::set_fenced`] makes every register read all-ones (a fenced PHB);
//!   [`Phb3Model::set_sync_stuck`] makes the sync never complete. Time is virtual: each
//!   [`RegIo::now_ns`] call advances a clock by a microsecond, so a bounded wait ends.
//!
//! Pin watch: given the page accounting, the model plays the most adversarial device: at every
//! register access (each kill store, each DMA read sync access) it checks that every
//! translation it has cached lands on pinned frames, as if the device were DMAing through all
//! of them at that instant. It checks the range the DMA engine would ACTUALLY reach through
//! the cached TCE (the TCE's address with the low bits of the IOMMU page dropped, as
//! `translate` computes it), not the address the firmware wrote, so a TCE whose host address
//! is not aligned to its page (which the PHB silently rounds down) is seen for what it
//! reaches. Any cached translation reaching an unpinned frame, or memory outside the
//! accounted RAM (firmware memory, say), is recorded as a violation.

use super::host::DeviceMemory;
use crate::hw::regio::{RegIo, Width};
use crate::iommu::kill::{KILL_ADDR_MASK, KILL_ALL, KILL_ONE, KILL_PE, KILL_PE_MASK};
use crate::iommu::pages::PageAccounting;
use crate::iommu::tce::{Tce, TCE_PERM_MASK};
use crate::iommu::tve::Tve;
use crate::mm::PhysAddr;
use crate::phb3::regs::{
    ioda2_table, ppc_bit, ppc_bitmask, PHB_DMARD_SYNC, PHB_DMARD_SYNC_COMPLETE,
    PHB_DMARD_SYNC_START, PHB_IODA_ADDR, PHB_IODA_AD_AUTOINC, PHB_IODA_AD_TADR, PHB_IODA_AD_TSEL,
    PHB_IODA_DATA0, PHB_RTC_INVALIDATE, PHB_RTT_BAR, PHB_TCE_KILL,
};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Virtual nanoseconds each [`RegIo::now_ns`] call of the model advances.
pub const CLOCK_STEP_NS: u64 = 1_000;

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

/// A cache key: (PE, page_shift, bus_addr >> page_shift), the full bus address (worst case).
type Key = (u16, u32, u64);

#[derive(Default)]
struct State {
    /// (PE, page_shift, bus_addr >> page_shift) → TCE.
    tces: BTreeMap<Key, Cached>,
    /// RID → PE, until RTC_INVALIDATE.
    rtc: BTreeMap<u16, u16>,
    first_violation: Option<StaleReach>,
    /// A barrier came since the last completed sync: kill stores now are ordered.
    barrier_armed: bool,
    /// Kill values stored since the last completed sync (performed again when it completes).
    pending_kills: Vec<u64>,
    /// Fills a test parked: walked, not yet in the cache (they land at the next sync or at
    /// [`Phb3Model::land_fills`]).
    parked: Vec<(Key, Cached)>,
    /// DMARD_SYNC START written and not completed yet.
    sync_started: bool,
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
    /// Barriers the firmware issued through [`RegIo::barrier`].
    pub barriers: u64,
    /// Kill stores with no barrier since the last completed sync (left without effect).
    pub unordered_kills: u64,
    /// DMA read syncs completed (the kill completion step).
    pub syncs: u64,
}

/// The host page a DMA through `tce` (of a `2^shift`-byte IOMMU page) reaches: the TCE's
/// address with the page's low bits dropped, as the PHB forms it (QEMU
/// `pnv_phb3_translate_tve`: `translated_addr = tce & ~(page_size - 1)`).
fn reached_page(tce: u64, shift: u32) -> PhysAddr {
    tce & !((1u64 << shift) - 1)
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
    barriers: AtomicU64,
    unordered_kills: AtomicU64,
    syncs: AtomicU64,
    clock: AtomicU64,
    fenced: AtomicBool,
    sync_stuck: AtomicBool,
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
            barriers: AtomicU64::new(0),
            unordered_kills: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            clock: AtomicU64::new(0),
            fenced: AtomicBool::new(false),
            sync_stuck: AtomicBool::new(false),
        }
    }

    /// Fences (or unfences) the PHB: every register read returns all-ones and writes are
    /// dropped, as a fenced PHB3 answers. DMA keeps working (the worst case for the firmware:
    /// it must not assume a fence stopped the device).
    pub fn set_fenced(&self, fenced: bool) {
        self.fenced.store(fenced, Ordering::Release);
    }

    /// Makes the DMA read sync never complete (reads show START, never COMPLETE).
    pub fn set_sync_stuck(&self, stuck: bool) {
        self.sync_stuck.store(stuck, Ordering::Release);
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
            barriers: self.barriers.load(Ordering::Relaxed),
            unordered_kills: self.unordered_kills.load(Ordering::Relaxed),
            syncs: self.syncs.load(Ordering::Relaxed),
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
        let (key, tce) = self.walk(pe, addr, true)?;
        if tce & TCE_PERM_MASK != 0 {
            self.fills.fetch_add(1, Ordering::Relaxed);
            self.state.lock().tces.insert(
                key,
                Cached {
                    page_shift: key.1,
                    tce,
                },
            );
        }
        Ok((key.1, tce))
    }

    /// The cache key of `addr` of PE `pe`, and its TCE: the cached one when `use_cache` and
    /// there is one, else walked from memory (not cached).
    fn walk(&self, pe: u16, addr: u64, use_cache: bool) -> Result<(Key, u64), DmaFault> {
        if addr >> 60 != 0 {
            return Err(DmaFault::BadAddress(addr));
        }
        let tvt = pe as usize * 2 + ((addr >> 59) & 1) as usize;
        let tve = Tve::decode(self.tve(tvt)).ok_or(DmaFault::TveInvalid(tvt))?;
        let tce_shift = tve.page_shift;
        let key = (pe, tce_shift, addr >> tce_shift);
        if use_cache {
            if let Some(cached) = self.state.lock().tces.get(&key) {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok((key, cached.tce));
            }
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
        Ok((key, tce))
    }

    /// Starts a TCE fetch for the device `rid` at bus address `addr` that is still in flight
    /// when this returns: the table is read now, the result lands in the cache only at the
    /// next completed DMA read sync or at [`Phb3Model::land_fills`]. This is the race a kill's
    /// completion step exists for, made deterministic: a fetch that read the old TCE just
    /// before the CPU swapped it. Returns the TCE read (0 when it maps nothing: nothing is
    /// parked then).
    pub fn park_fill(&self, rid: u16, addr: u64) -> Result<u64, DmaFault> {
        let pe = self.pe_of(rid)?;
        let (key, tce) = self.walk(pe, addr, false)?;
        if tce & TCE_PERM_MASK != 0 {
            self.state.lock().parked.push((
                key,
                Cached {
                    page_shift: key.1,
                    tce,
                },
            ));
        }
        Ok(tce)
    }

    /// Lets every parked fill land in the cache now (the fetches return).
    pub fn land_fills(&self) {
        let mut state = self.state.lock();
        let parked = core::mem::take(&mut state.parked);
        for (key, cached) in parked {
            self.fills.fetch_add(1, Ordering::Relaxed);
            state.tces.insert(key, cached);
        }
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
            // Each direction needs its own bit: a write-only TCE refuses device reads.
            let allowed = if write { tce & 2 != 0 } else { tce & 1 != 0 };
            if !allowed {
                return Err(DmaFault::Permission { addr, tce, write });
            }
            Ok(reached_page(tce, shift) | (addr & ((1u64 << shift) - 1)))
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

    /// A TCE_KILL store: ignored without a barrier since the last sync (it may have overtaken
    /// the table stores), else performed on the cache now and remembered until the next sync.
    fn kill_store(&self, value: u64) {
        if value & KILL_ALL != 0 {
            self.kill_all.fetch_add(1, Ordering::Relaxed);
        } else if value & KILL_PE != 0 {
            self.kill_pe.fetch_add(1, Ordering::Relaxed);
        } else if value & KILL_ONE != 0 {
            self.kill_one.fetch_add(1, Ordering::Relaxed);
        }
        let mut state = self.state.lock();
        if !state.barrier_armed {
            self.unordered_kills.fetch_add(1, Ordering::Relaxed);
            return;
        }
        Self::perform_kill(&mut state, value);
        state.pending_kills.push(value);
    }

    fn perform_kill(state: &mut State, value: u64) {
        if value & KILL_ALL != 0 {
            state.tces.clear();
        } else if value & KILL_PE != 0 {
            let pe = (value & KILL_PE_MASK) as u16;
            state.tces.retain(|&(p, _, _), _| p != pe);
        } else if value & KILL_ONE != 0 {
            // Worst case: the full bus address must match, so an alias survives.
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

    /// A read of DMARD_SYNC: with a sync started, completes it (drains every DMA and fill in
    /// flight, lands parked fills, performs the pending kills again) and answers COMPLETE.
    fn sync_read(&self) -> u64 {
        let started = self.state.lock().sync_started;
        if !started {
            return self.read_reg(PHB_DMARD_SYNC);
        }
        if self.sync_stuck.load(Ordering::Acquire) {
            return PHB_DMARD_SYNC_START;
        }
        {
            // Every DMA (and so every fill) in flight finishes first.
            let _drained = self.inflight.write();
            let mut state = self.state.lock();
            let parked = core::mem::take(&mut state.parked);
            for (key, cached) in parked {
                state.tces.insert(key, cached);
            }
            let kills = core::mem::take(&mut state.pending_kills);
            for &value in &kills {
                Self::perform_kill(&mut state, value);
            }
            state.barrier_armed = false;
            state.sync_started = false;
        }
        self.syncs.fetch_add(1, Ordering::Relaxed);
        self.regs[(PHB_DMARD_SYNC / 8) as usize].store(PHB_DMARD_SYNC_COMPLETE, Ordering::Release);
        PHB_DMARD_SYNC_COMPLETE
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
            let reached = reached_page(cached.tce, cached.page_shift);
            if let Some(frame) = pages.first_unpinned(reached, 1u64 << cached.page_shift) {
                count += 1;
                found.get_or_insert(StaleReach {
                    pe,
                    bus: page << shift,
                    frame,
                    tce: cached.tce,
                });
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
        if self.fenced.load(Ordering::Acquire) {
            return u64::MAX;
        }
        if offset == PHB_IODA_DATA0 {
            return self.ioda_target().map_or(0, |i| self.tve(i));
        }
        if offset == PHB_DMARD_SYNC {
            return self.sync_read();
        }
        self.read_reg(offset)
    }

    fn now_ns(&self) -> u64 {
        self.clock.fetch_add(CLOCK_STEP_NS, Ordering::Relaxed) + CLOCK_STEP_NS
    }

    fn barrier(&self) {
        core::sync::atomic::fence(Ordering::SeqCst);
        self.barriers.fetch_add(1, Ordering::Relaxed);
        self.state.lock().barrier_armed = true;
    }

    fn write64(&self, offset: u64, value: u64) {
        // The device may DMA through its cache right up to the moment this store lands.
        self.watch_now();
        if !offset.is_multiple_of(8) || offset >= REG_SPACE || self.fenced.load(Ordering::Acquire) {
            return;
        }
        if offset == PHB_DMARD_SYNC {
            if value & PHB_DMARD_SYNC_START != 0 {
                self.state.lock().sync_started = true;
                self.regs[(offset / 8) as usize].store(PHB_DMARD_SYNC_START, Ordering::Release);
            }
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
            PHB_TCE_KILL => self.kill_store(value),
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
