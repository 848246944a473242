//! The TCE service of one PHB: its DMA windows (one TCE table per PE window), and the one
//! TCE update protocol that every TCE-changing path follows (docs/tce-protocol.md):
//! validate (the caller's job, before calling) → set aside blocks for missing levels → pin the
//! new pages → install the levels → exchange every entry → barrier, kill, DMA read sync →
//! release the old pages (dirty if W). Everything that can fail (memory, pin counts) happens
//! before the first visible change, so an `Err` leaves tables, pins and allocator usage as
//! they were, with one exception the hardware forces: a kill that does not complete (fenced
//! PHB, timeout) after the exchange. Then the device may still reach the old pages through
//! its cache, so they are not released: they stay pinned in the service's quarantine, the
//! PHB is marked failed, and every later call on it fails at once with nothing changed
//! (H_HARDWARE). The audit counts quarantined pages and windows as such.
//!
//! The kill (`iommu::kill`, docs/phb3-dma-bounds-and-kill.md): kill-one per changed entry only
//! where the table decodes every address bit below the window-select bit (no aliases); a
//! kill-PE otherwise, since an alias of the entry at `bus + k * reach` may be cached under
//! its own address. One kill batch per changing call either way.
//!
//! Windows: window 0 starts at bus address 0, window 1 at 1<<59; the TVT index is
//! PE * 2 + window (Linux `pnv_pci_ioda2_setup_dma_pe`, `pnv_pci_ioda2_set_window`).
//! A hypercall finds its window through a lock-free [`Slot`]; creating and removing windows
//! is setup work under a spin lock that the hypercall path never takes. A window is built
//! ([`TceService::prepare_window`]: every allocation) before it is installed
//! ([`TceService::install_window`]: TVE, kill, publish), so a caller can make sure a
//! replacement exists before it removes anything.
//!
//! Resources: docs/tce-protocol.md; Linux "powerpc/iommu/powernv: Release replaced TCE"
//! (2015: exchange, then release the replaced TCE);
//! Linux platforms/powernv/pci-ioda.c and kernel/iommu.c; skiboot hw/phb3.c.

use super::kill::{
    kill_one, kill_one_is_exact, kill_pe, sync_after_kill, FaultSwitch, KillCounts, KillError,
    KillFault, KillStats, KILL_ONE_THRESHOLD,
};
use super::pages::PageAccounting;
use super::slot::{Slot, SlotRef};
use super::table::{TableGeometry, TceTable};
use super::tce::Tce;
use super::tve::{tvt_index, Tve, TVT_ENTRIES};
use super::Error;
use crate::hw::regio::RegIo;
use crate::mm::{FrameAllocator, PhysAddr};
use crate::phb3::regs::PHB_TCE_KILL;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// Most entries one call may change: PAPR's limit for H_STUFF_TCE and H_PUT_TCE_INDIRECT.
pub const MAX_BATCH: usize = 512;
/// PEs of a PHB3.
pub const MAX_PES: u16 = 256;
/// Bus address where window 1 starts (selected by DMA address bit 59).
pub const WINDOW1_BASE: u64 = 1 << 59;

/// What a new window looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowConfig {
    /// The PE whose DMA the window translates.
    pub pe: u16,
    /// 0 (bus address 0) or 1 (bus address 1<<59).
    pub window: u8,
    /// log2 of the IOMMU page size: 12, 16 or 24.
    pub page_shift: u32,
    /// Window size in bytes, a power of two.
    pub window_size: u64,
    /// Table levels, 1..=5.
    pub levels: u32,
}

/// One DMA window: a TCE table behind one TVE.
#[derive(Debug)]
pub struct DmaWindow {
    pe: u16,
    window: u8,
    bus_start: u64,
    bus_size: u64,
    owner: u32,
    table: TceTable,
}

impl DmaWindow {
    /// The PE.
    pub fn pe(&self) -> u16 {
        self.pe
    }
    /// 0 or 1.
    pub fn window(&self) -> u8 {
        self.window
    }
    /// First bus address.
    pub fn bus_start(&self) -> u64 {
        self.bus_start
    }
    /// Size in bytes.
    pub fn bus_size(&self) -> u64 {
        self.bus_size
    }
    /// log2 of the IOMMU page size.
    pub fn page_shift(&self) -> u32 {
        self.table.geometry().page_shift
    }
    /// IOMMU page size in bytes.
    pub fn page_size(&self) -> u64 {
        1 << self.page_shift()
    }
    /// The opaque owner tag given at creation (the hypercall layer stores a partition id).
    pub fn owner(&self) -> u32 {
        self.owner
    }
    /// The TCE table.
    pub fn table(&self) -> &TceTable {
        &self.table
    }

    /// The table index of the page at `bus_addr`: strict, no masking of the caller's value,
    /// no overflow. `Misaligned` unless on a page boundary, `OutOfWindow` unless inside.
    pub fn index_of(&self, bus_addr: u64) -> Result<u64, Error> {
        if bus_addr & (self.page_size() - 1) != 0 {
            return Err(Error::Misaligned);
        }
        if bus_addr < self.bus_start || bus_addr - self.bus_start >= self.bus_size {
            return Err(Error::OutOfWindow);
        }
        Ok(self.table.geometry().index_of(bus_addr))
    }

    /// Checks that `count` pages from `bus_addr` lie inside the window (at least one page).
    pub fn check_run(&self, bus_addr: u64, count: usize) -> Result<(), Error> {
        self.index_of(bus_addr)?;
        let pages_left = (self.bus_start + self.bus_size - bus_addr) >> self.page_shift();
        if count == 0 || count as u64 > pages_left {
            return Err(Error::OutOfWindow);
        }
        Ok(())
    }
}

/// The new values of a batch, as host TCEs that the caller has already validated.
#[derive(Clone, Copy, Debug)]
pub enum NewTces<'x> {
    /// The same value `count` times (H_PUT_TCE: 1; H_STUFF_TCE).
    Same(Tce, usize),
    /// One value per entry (H_PUT_TCE_INDIRECT, from the firmware's private copy).
    List(&'x [Tce]),
}

impl NewTces<'_> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        match self {
            NewTces::Same(_, count) => *count,
            NewTces::List(list) => list.len(),
        }
    }
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn at(&self, i: usize) -> Tce {
        match self {
            NewTces::Same(tce, _) => *tce,
            NewTces::List(list) => list.get(i).copied().unwrap_or(Tce::NONE),
        }
    }
}

/// What an update did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Updated {
    /// Entries whose value changed.
    pub changed: usize,
    /// Old valid entries whose pages were released.
    pub released: usize,
}

/// A hold on a window for the length of one call (the window cannot be removed meanwhile).
pub type WindowRef<'s> = SlotRef<'s, DmaWindow>;

/// A window whose table is allocated but which no TVE points at yet.
#[derive(Debug)]
#[must_use = "install or discard it, or its table leaks"]
pub struct PreparedWindow {
    /// `None` once an install whose kill failed has moved the window into the quarantine.
    window: Option<Box<DmaWindow>>,
    tve: u64,
    index: usize,
}

impl PreparedWindow {
    /// The TVT index it will take.
    pub fn tvt_index(&self) -> usize {
        self.index
    }
}

/// A page an incomplete kill left reachable: still pinned, never released.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HeldPage {
    addr: PhysAddr,
    page_size: u64,
}

/// What a failed kill could not let go of.
#[derive(Debug, Default)]
struct Quarantine {
    /// Old pages of calls whose kill failed (each keeps the pin its TCE had).
    pages: Vec<HeldPage>,
    /// Windows whose removal (or installation) kill failed: their tables and pins stay.
    windows: Vec<DmaWindow>,
    /// Pages kept pinned that the list could not record (no heap): the audit reports them.
    untracked: u64,
}

/// What the quarantine of a PHB holds (see [`TceService::quarantine`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuarantineCounts {
    /// Old pages kept pinned.
    pub pages: usize,
    /// Windows kept with their tables and pins.
    pub windows: usize,
    /// Pages kept pinned but not recorded (the heap was full).
    pub untracked: u64,
}

const HEALTHY: u8 = 0;
const FAILED_FENCED: u8 = 1;
const FAILED_TIMEOUT: u8 = 2;

/// The TCE service of one PHB.
pub struct TceService<'a> {
    io: &'a dyn RegIo,
    frames: &'a dyn FrameAllocator,
    slots: Vec<Slot<DmaWindow>>,
    setup: spin::Mutex<()>,
    kills: KillStats,
    /// Held across one kill sequence (barrier, stores, sync, wait), as skiboot holds its PHB
    /// lock around `phb4_tce_kill`: DMARD_SYNC's START/COMPLETE is one state machine per PHB.
    /// A plain spin lock, not a ticket lock: in host tests threads outnumber cores, and a
    /// ticket lock then waits for whichever descheduled thread holds the next ticket (seen:
    /// 0.2 s became 60 s). The holder takes no other lock and waits at most
    /// `KILL_SYNC_TIMEOUT_NS`.
    kill_lock: spin::Mutex<()>,
    fault: FaultSwitch,
    table_bytes: AtomicU64,
    health: AtomicU8,
    quarantine: spin::Mutex<Quarantine>,
}

impl<'a> TceService<'a> {
    /// The service for the PHB behind `io`, with tables from `frames`. No window exists yet;
    /// the PHB's other IODA2 setup (RTT, PEs, ...) is the PHB3 bring-up's job.
    pub fn new(io: &'a dyn RegIo, frames: &'a dyn FrameAllocator) -> Self {
        let mut slots = Vec::with_capacity(TVT_ENTRIES);
        slots.resize_with(TVT_ENTRIES, Slot::empty);
        TceService {
            io,
            frames,
            slots,
            setup: spin::Mutex::new(()),
            kills: KillStats::default(),
            kill_lock: spin::Mutex::new(()),
            fault: FaultSwitch::default(),
            table_bytes: AtomicU64::new(0),
            health: AtomicU8::new(HEALTHY),
            quarantine: spin::Mutex::new(Quarantine::default()),
        }
    }

    /// How this PHB failed, if a kill on it ever did not complete: `Fenced` or `KillTimeout`.
    /// A failed PHB changes nothing any more.
    pub fn failure(&self) -> Option<Error> {
        match self.health.load(Ordering::Acquire) {
            HEALTHY => None,
            FAILED_FENCED => Some(Error::Fenced),
            _ => Some(Error::KillTimeout),
        }
    }

    fn mark_failed(&self, why: KillError) -> Error {
        let (code, error) = match why {
            KillError::Fenced => (FAILED_FENCED, Error::Fenced),
            KillError::Timeout => (FAILED_TIMEOUT, Error::KillTimeout),
        };
        // The first failure is the one reported.
        let _ = self
            .health
            .compare_exchange(HEALTHY, code, Ordering::AcqRel, Ordering::Acquire);
        error
    }

    /// What the quarantine holds now.
    pub fn quarantine(&self) -> QuarantineCounts {
        let held = self.quarantine.lock();
        QuarantineCounts {
            pages: held.pages.len(),
            windows: held.windows.len(),
            untracked: held.untracked,
        }
    }

    /// Calls `visit` with (host address, page size) of every quarantined page.
    pub fn for_each_quarantined_page(&self, visit: &mut dyn FnMut(PhysAddr, u64)) {
        for page in &self.quarantine.lock().pages {
            visit(page.addr, page.page_size);
        }
    }

    /// Calls `visit` for every quarantined window (tables and pins kept).
    pub fn for_each_quarantined_window(&self, visit: &mut dyn FnMut(&DmaWindow)) {
        for window in &self.quarantine.lock().windows {
            visit(window);
        }
    }

    /// Heap bytes the quarantine holds (its lists and the window records in it).
    pub fn quarantine_heap_bytes(&self) -> u64 {
        let held = self.quarantine.lock();
        (held.pages.capacity() * core::mem::size_of::<HeldPage>()
            + held.windows.capacity() * core::mem::size_of::<DmaWindow>()) as u64
    }

    /// Keeps the valid entries of `old` pinned for good: the kill that should have made them
    /// unreachable did not complete.
    fn quarantine_pages(&self, page_size: u64, old: &[Tce]) {
        let valid = old.iter().filter(|t| t.is_valid()).count();
        let mut held = self.quarantine.lock();
        if held.pages.try_reserve(valid).is_err() {
            held.untracked += valid as u64;
            return;
        }
        for tce in old.iter().filter(|t| t.is_valid()) {
            held.pages.push(HeldPage {
                addr: tce.addr(),
                page_size,
            });
        }
    }

    /// Keeps a whole window (its table and every pin its entries hold): the device may still
    /// walk the table or use its cached entries.
    fn quarantine_window(&self, window: Box<DmaWindow>) {
        let mut held = self.quarantine.lock();
        if held.windows.try_reserve(1).is_err() {
            // Without room for the record the window cannot be accounted; leaking it keeps
            // the device's memory safe, which matters more.
            held.untracked += 1;
            core::mem::forget(window);
            return;
        }
        held.windows.push(*window);
    }

    /// Creates a window: allocates its top level, programs the TVE, kills the PE's cached
    /// TCEs, then publishes it. Returns its TVT index. `owner` is an opaque tag.
    pub fn create_window(&self, config: WindowConfig, owner: u32) -> Result<usize, Error> {
        if self.failure().is_some() {
            return Err(Error::PhbFailed);
        }
        // A taken TVE is refused before anything is allocated (install checks again, locked).
        let taken = (config.pe < MAX_PES && config.window <= 1)
            && !self.slots[tvt_index(config.pe, config.window)].is_empty();
        if taken {
            return Err(Error::Busy);
        }
        let prepared = self.prepare_window(config, owner)?;
        self.install_window(prepared).map_err(|(error, prepared)| {
            self.discard_window(prepared);
            error
        })
    }

    /// Builds a window without touching the PHB: checks the configuration and allocates the
    /// top level and the window record. Nothing is visible until [`TceService::install_window`]
    /// (which refuses a taken TVE), so a window can be prepared for a TVE that is still in use
    /// and is about to be removed.
    pub fn prepare_window(
        &self,
        config: WindowConfig,
        owner: u32,
    ) -> Result<PreparedWindow, Error> {
        if config.pe >= MAX_PES || config.window > 1 {
            return Err(Error::BadConfig);
        }
        let geometry =
            TableGeometry::for_window(config.window_size, config.page_shift, config.levels)?;
        let table = TceTable::new(self.frames, geometry)?;
        let tve = Tve {
            table_pa: table.root(),
            levels: geometry.levels,
            level_bytes_log2: geometry.level_bytes().trailing_zeros(),
            page_shift: geometry.page_shift,
        };
        Ok(PreparedWindow {
            window: Some(Box::new(DmaWindow {
                pe: config.pe,
                window: config.window,
                bus_start: if config.window == 1 { WINDOW1_BASE } else { 0 },
                bus_size: config.window_size,
                owner,
                table,
            })),
            tve: tve.encode(),
            index: tvt_index(config.pe, config.window),
        })
    }

    /// Writes TVT entry `index` through the PHB3 code's IODA access (one home for the
    /// IODA_ADDR/IODA_DATA0 sequence; it refuses an index past the TVT rather than wrapping
    /// onto another PE's entry).
    fn set_tve(&self, index: usize, value: u64) -> Result<(), crate::phb3::Phb3Error> {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        crate::phb3::write_tve(self.io, index, value)
    }

    /// Turns TVT entry `index` off. `index` names an existing slot, so it is below
    /// `TVT_ENTRIES` (= the PHB3's 512 TVEs) and the write cannot be refused.
    fn clear_tve(&self, index: usize) {
        let cleared = self.set_tve(index, 0);
        debug_assert!(cleared.is_ok(), "slot index {index} outside the TVT");
    }

    /// Installs a prepared window: programs the TVE, kills the PE's cached TCEs, then
    /// publishes it. Returns its TVT index, or the window back when its TVE is taken or the
    /// PHB has failed. When the kill itself fails, the TVE is turned off but the table is
    /// kept in the quarantine (the PHB may have started walking it), and what comes back is
    /// empty: discarding it frees nothing.
    pub fn install_window(
        &self,
        mut prepared: PreparedWindow,
    ) -> Result<usize, (Error, PreparedWindow)> {
        let _setup = self.setup.lock();
        let index = prepared.index;
        let Some(window) = prepared.window.take() else {
            return Err((Error::BadConfig, prepared));
        };
        if self.failure().is_some() {
            prepared.window = Some(window);
            return Err((Error::PhbFailed, prepared));
        }
        if !self.slots[index].is_empty() {
            prepared.window = Some(window);
            return Err((Error::Busy, prepared));
        }
        let pe = window.pe;
        let root_bytes = window.table.geometry().level_bytes() as u64;
        if self.set_tve(index, prepared.tve).is_err() {
            prepared.window = Some(window);
            return Err((Error::BadConfig, prepared));
        }
        // Nothing of this PE may stay cached from an earlier table at this TVE.
        if let Err(error) = self.kill_whole_pe(pe) {
            self.clear_tve(index);
            self.table_bytes.fetch_add(root_bytes, Ordering::Relaxed);
            self.quarantine_window(window);
            return Err((error, prepared));
        }
        // Unreachable: the slot is empty and only changes under `setup`, which we hold. Should
        // it ever fail, the TVE must not keep pointing at a table about to be freed.
        if let Err(window) = self.slots[index].publish(window) {
            self.clear_tve(index);
            if let Err(error) = self.kill_whole_pe(pe) {
                self.table_bytes.fetch_add(root_bytes, Ordering::Relaxed);
                self.quarantine_window(window);
                return Err((error, prepared));
            }
            prepared.window = Some(window);
            return Err((Error::Busy, prepared));
        }
        self.table_bytes.fetch_add(root_bytes, Ordering::Relaxed);
        Ok(index)
    }

    /// Frees a prepared window that was never installed (nothing, when a failed install
    /// already moved it into the quarantine).
    pub fn discard_window(&self, prepared: PreparedWindow) {
        if let Some(window) = prepared.window {
            window.table.destroy(self.frames);
        }
    }

    /// The lowest free window (0 or 1) of PE `pe`, if any.
    pub fn free_window_of(&self, pe: u16) -> Option<u8> {
        if pe >= MAX_PES {
            return None;
        }
        (0..2u8).find(|&w| self.slots[tvt_index(pe, w)].is_empty())
    }

    /// How many windows PE `pe` has (0..=2).
    pub fn windows_of(&self, pe: u16) -> usize {
        if pe >= MAX_PES {
            return 0;
        }
        (0..2u8)
            .filter(|&w| !self.slots[tvt_index(pe, w)].is_empty())
            .count()
    }

    /// Removes the window at TVT `index`: unpublishes it and waits for calls inside it to
    /// finish, disables the TVE, kills the PE's cached TCEs, then releases every page the
    /// table still mapped (dirty where writable) and frees every level. Returns the number of
    /// entries released. Allocates nothing (but the quarantine's record, if the kill fails:
    /// then the window, its table and its pins are kept, and the error comes back). On a PHB
    /// that has already failed it does nothing and says so.
    pub fn remove_window(&self, pages: &PageAccounting, index: usize) -> Result<usize, Error> {
        let _setup = self.setup.lock();
        if self.failure().is_some() {
            return Err(Error::PhbFailed);
        }
        let window = self
            .slots
            .get(index)
            .and_then(Slot::retire)
            .ok_or(Error::NoWindow)?;
        self.clear_tve(index);
        if let Err(error) = self.kill_whole_pe(window.pe) {
            self.quarantine_window(window);
            return Err(error);
        }
        // No CPU (retire waited) and no device (TVE off, killed) can reach the table now.
        let mut released = 0;
        let page = window.page_size();
        let table = &window.table;
        table.for_each_valid(&mut |entry, _| {
            let old = table.clear(entry);
            if old.is_valid() {
                pages.unpin(old.addr(), page, old.writable());
                released += 1;
            }
        });
        let window = *window;
        let freed = window.table.destroy(self.frames);
        self.table_bytes.fetch_sub(freed as u64, Ordering::Relaxed);
        Ok(released)
    }

    /// A hold on the window at TVT `index`, or `None`. Lock-free.
    pub fn window(&self, index: usize) -> Option<WindowRef<'_>> {
        self.slots.get(index)?.acquire()
    }

    /// Calls `visit` for every window that exists.
    pub fn for_each_window(&self, visit: &mut dyn FnMut(usize, &DmaWindow)) {
        for (index, slot) in self.slots.iter().enumerate() {
            if let Some(window) = slot.acquire() {
                visit(index, &window);
            }
        }
    }

    /// Applies `new` to the run of entries starting at bus address `first` of `window`,
    /// following the protocol: reserve levels → pin → install levels → exchange → barrier +
    /// kill + DMA read sync → release.
    ///
    /// The caller has validated everything (ownership, range, and that every mapped TCE is a
    /// page-aligned host address inside the caller's RAM). An `Err` means nothing changed:
    /// no entry, no pin, no level, no allocator usage (the failures, out of memory, a pin
    /// count at its maximum and a PHB that failed earlier, are all found before the first
    /// installed level or exchanged entry) — except `Fenced` and `KillTimeout`: the kill after
    /// the exchange did not complete, the entries hold their new values and the old pages are
    /// quarantined, pinned. Takes no lock but the PHB's kill lock around the kill sequence;
    /// allocates only blocks for missing levels, before any exchange; the old values live on
    /// the stack (8 KiB for a 512-entry batch, 256 bytes for a short one: a single H_PUT_TCE
    /// must not pay for zeroing 512 entries).
    pub fn update(
        &self,
        pages: &PageAccounting,
        window: &DmaWindow,
        first: u64,
        new: NewTces<'_>,
    ) -> Result<Updated, Error> {
        let count = new.len();
        if count == 0 {
            return Ok(Updated::default());
        }
        if count > MAX_BATCH {
            return Err(Error::BatchTooLarge);
        }
        if self.failure().is_some() {
            return Err(Error::PhbFailed);
        }
        window.check_run(first, count)?;
        if count <= KILL_ONE_THRESHOLD {
            self.update_batch::<KILL_ONE_THRESHOLD>(pages, window, first, new)
        } else {
            self.update_batch::<MAX_BATCH>(pages, window, first, new)
        }
    }

    /// [`TceService::update`] for a checked run of at most `N` entries.
    fn update_batch<const N: usize>(
        &self,
        pages: &PageAccounting,
        window: &DmaWindow,
        first: u64,
        new: NewTces<'_>,
    ) -> Result<Updated, Error> {
        let count = new.len();
        if count > N {
            return Err(Error::BatchTooLarge);
        }
        let page = window.page_size();
        let geometry = window.table.geometry();
        let bus = |i: usize| first + ((i as u64) << geometry.page_shift);
        let index = |i: usize| geometry.index_of(bus(i));
        let mapped = |i: &usize| new.at(*i).is_valid();

        // Blocks for every missing level, all or nothing (a clear never needs a level).
        let mut reserve = window
            .table
            .reserve_levels(self.frames, &mut (0..count).filter(mapped).map(index))?;
        // Pins, before the device can reach the new pages.
        for i in 0..count {
            let tce = new.at(i);
            if tce.is_valid() {
                if let Err(error) = pages.pin(tce.addr(), page) {
                    Self::unpin_new(pages, page, &new, i);
                    reserve.release(self.frames);
                    return Err(error);
                }
            }
        }
        // Levels, from the reserve: nothing can run out any more.
        let mut last_leaf = None;
        for i in (0..count).filter(mapped) {
            let leaf = geometry.leaf_block(index(i));
            if last_leaf == Some(leaf) {
                continue;
            }
            last_leaf = Some(leaf);
            match window.table.install_levels(index(i), &mut reserve) {
                Ok(installed) => {
                    self.table_bytes
                        .fetch_add(installed as u64, Ordering::Relaxed);
                }
                Err(error) => {
                    // Only a miscounted reserve or a corrupt table gets here (a bug).
                    Self::unpin_new(pages, page, &new, count);
                    reserve.release(self.frames);
                    return Err(error);
                }
            }
        }
        reserve.release(self.frames);
        // Exchange: each old value goes to exactly one CPU, this one.
        let mut old = [Tce::NONE; N];
        let mut written = [Tce::NONE; N];
        for i in 0..count {
            let tce = new.at(i);
            match window.table.exchange(index(i), tce) {
                Ok(previous) => {
                    old[i] = previous;
                    written[i] = tce;
                }
                // Unreachable after the install (levels live as long as the window); if it
                // ever happens the entry is untouched, so its new pin must go.
                Err(_) => pages.unpin(tce.addr(), page, false),
            }
        }
        let old = &old[..count];
        let written = &written[..count];
        let mut outcome = Updated {
            changed: old.iter().zip(written).filter(|(o, n)| o != n).count(),
            released: 0,
        };
        let killed = match self.fault.get() {
            KillFault::SkipKill => Ok(()),
            KillFault::KillAfterRelease => {
                outcome.released = Self::release(pages, page, old);
                return self
                    .kill_batch(window, old, written, &bus)
                    .map(|()| outcome);
            }
            _ => self.kill_batch(window, old, written, &bus),
        };
        match killed {
            Ok(()) => {
                outcome.released = Self::release(pages, page, old);
                Ok(outcome)
            }
            Err(error) => {
                // The device may still hold any old entry in its cache: keep every old page.
                self.quarantine_pages(page, old);
                Err(error)
            }
        }
    }

    /// Drops the pins taken for the mapped entries among the first `upto` of `new`.
    fn unpin_new(pages: &PageAccounting, page: u64, new: &NewTces<'_>, upto: usize) {
        for j in (0..upto).filter(|&j| new.at(j).is_valid()) {
            pages.unpin(new.at(j).addr(), page, false);
        }
    }

    /// The kill batch of one call: for the entries that changed, kill-one each where that is
    /// exact and the run is short, else one kill-PE; then the completion step. When this
    /// returns `Ok` no cached TCE of those entries (or of any alias of them) survives.
    fn kill_batch(
        &self,
        window: &DmaWindow,
        old: &[Tce],
        new: &[Tce],
        bus: &dyn Fn(usize) -> u64,
    ) -> Result<(), Error> {
        let changed = old.iter().zip(new).filter(|(o, n)| o != n).count();
        if changed == 0 {
            return Ok(());
        }
        let geometry = window.table.geometry();
        // Kill-one leaves an alias cached under its own bus address unless the table decodes
        // every bit below the window-select bit (iommu::kill): only then is it exact.
        let exact = kill_one_is_exact(geometry.page_shift, geometry.index_bits())
            || self.fault.get() == KillFault::KillOneDespiteAliases;
        let pe = window.pe;
        self.kill_sequence(&mut |io, kills| {
            if exact && changed <= KILL_ONE_THRESHOLD {
                for (i, _) in old.iter().zip(new).enumerate().filter(|(_, (o, n))| o != n) {
                    io.write64(PHB_TCE_KILL, kill_one(pe, bus(i)));
                    kills.count_one();
                }
            } else {
                io.write64(PHB_TCE_KILL, kill_pe(pe));
                kills.count_pe();
            }
        })
    }

    fn kill_whole_pe(&self, pe: u16) -> Result<(), Error> {
        self.kill_sequence(&mut |io, kills| {
            io.write64(PHB_TCE_KILL, kill_pe(pe));
            kills.count_pe();
        })
    }

    /// One kill sequence under the PHB's kill lock: the barrier that makes the table stores
    /// visible to the PHB, the kill stores `store` makes, then the completion step (DMA read
    /// sync START, wait for COMPLETE, bounded in time). A failure marks the PHB failed.
    fn kill_sequence(&self, store: &mut dyn FnMut(&dyn RegIo, &KillStats)) -> Result<(), Error> {
        let fault = self.fault.get();
        let _turn = self.kill_lock.lock();
        // Another CPU's kill failed meanwhile: this one cannot be trusted either.
        if let Some(failed) = self.failure() {
            return Err(failed);
        }
        if fault != KillFault::SkipBarrier {
            self.io.barrier();
        }
        store(self.io, &self.kills);
        if fault == KillFault::SkipCompletion {
            self.kills.count_batch();
            return Ok(());
        }
        self.kills.count_sync();
        match sync_after_kill(self.io) {
            Ok(()) => {
                self.kills.count_batch();
                Ok(())
            }
            Err(why) => {
                self.kills.count_failure();
                Err(self.mark_failed(why))
            }
        }
    }

    fn release(pages: &PageAccounting, page: u64, old: &[Tce]) -> usize {
        let mut released = 0;
        for tce in old.iter().filter(|t| t.is_valid()) {
            pages.unpin(tce.addr(), page, tce.writable());
            released += 1;
        }
        released
    }

    /// Kill-register traffic so far.
    pub fn kill_counts(&self) -> KillCounts {
        self.kills.snapshot()
    }

    /// Bytes of TCE table levels this service holds (must equal what the frame allocator
    /// handed to it: the audit compares it with a walk of every table).
    pub fn table_bytes(&self) -> u64 {
        self.table_bytes.load(Ordering::Relaxed)
    }

    /// TEST ONLY: makes every later update break the protocol in the given way, so tests can
    /// prove they detect it. Firmware never calls this; `KillFault::None` restores it.
    #[doc(hidden)]
    pub fn inject_kill_fault(&self, fault: KillFault) {
        self.fault.set(fault);
    }
}
