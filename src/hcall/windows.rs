//! DMA window management for partitions: the firmware-private hypercall equivalent of PAPR's
//! Dynamic DMA Windows (DDW) RTAS calls, and the grants that say which PEs a partition may use.
//!
//! Follows LoPAR "DMA Window Manipulation Calls" (sec_rtas_dma_window: ibm,query-pe-dma-window,
//! ibm,create-pe-dma-window, ibm,remove-pe-dma-window, ibm,reset-pe-dma-windows), QEMU
//! hw/ppc/spapr_rtas_ddw.c (the same calls for an emulated PHB) and Linux
//! drivers/vfio/vfio_iommu_spapr_tce.c (`tce_iommu_create_window`, `tce_iommu_remove_window`).
//!
//! # Registers
//!
//! `sc 1` with r3 = opcode and r4.. = arguments; on return r3 = status and r4.. = outputs
//! (every output is 0 unless the status is H_SUCCESS). A PE is named by the handle
//! [`Hypervisor::grant_pe`] returned, `0x4000_0000 | phb << 16 | pe` ([`pe_handle`]).
//!
//! | r3 (opcode) | r4 | r5 | r6 | r7 | r3 (status) | r4 | r5 | r6 | r7 |
//! |---|---|---|---|---|---|---|---|---|---|
//! | `0xF200` QUERY_PE_DMA_WINDOW | PE handle | | | | H_SUCCESS, H_PARAMETER | windows available (0..=2) | largest window in TCEs (2^47) | I/O page sizes the caller can use (LoPAR bits: 0x1 4K, 0x2 64K, 0x4 16M) | most levels (5) |
//! | `0xF204` CREATE_PE_DMA_WINDOW | PE handle | page shift (12, 16, 24) | window shift (log2 bytes, page shift..=59) | levels (1..=5) | H_SUCCESS, H_PARAMETER, H_P2, H_P3, H_P4, H_RESOURCE, H_NO_MEM | LIOBN | bus start (0 or 2^59) | window size in bytes | |
//! | `0xF208` REMOVE_PE_DMA_WINDOW | LIOBN | | | | H_SUCCESS, H_PARAMETER, H_NO_MEM | TCEs that were still mapped and got unmapped | LIOBN of the restored default window, or 0 | | |
//! | `0xF20C` RESET_PE_DMA_WINDOWS | PE handle | | | | H_SUCCESS, H_PARAMETER, H_NO_MEM | LIOBN of the default window | TCEs unmapped | | |
//!
//! Statuses: H_PARAMETER for a PE handle not granted to the caller (or malformed), or a LIOBN
//! the caller does not own; for create, H_P2 for a page size not in the query's mask, H_P3
//! for a window size outside page size..=2^59, H_P4 for a level count outside 1..=5 or too
//! small for the window (a level would exceed 16 MiB); H_RESOURCE when both TVEs of the PE
//! are in use (LoPAR answers -3 there; an hcall can say which resource); H_NO_MEM when the
//! frame allocator cannot hold the top level. Every rejected call changes nothing.
//!
//! # Semantics
//!
//! - Windows: PHB3 gives each PE two TVEs, window 0 at bus address 0 and window 1 at 2^59
//!   (DMA address bit 59). Create takes the lowest free one, as QEMU's DDW does.
//! - Default window (LoPAR DDW requirement 4: 4 KiB pages, below 4 GB): window 0, 2 GiB,
//!   4 KiB pages, 2 levels. [`Hypervisor::grant_pe`] creates it, reset restores it.
//! - Page sizes are the caller's: a partition needs only 4 KiB alignment in host memory, and
//!   a 64K or 16M TCE must be aligned in host memory as well as in guest-real memory (the
//!   PHB drops the low bits), so QUERY offers only the page sizes whose pages can map some of
//!   the caller's memory (`Partition::can_map_pages_of`: guest-to-host offset aligned to the
//!   page, and at least one whole page inside the partition) and CREATE refuses any other
//!   with H_P2. A window the partition asks for is then never one it cannot use; this is what
//!   QEMU's VFIO code does for a guest on small host pages (hw/vfio/spapr.c
//!   `vfio_spapr_create_window` caps the IOMMU page size at `qemu_minrampagesize()`). The
//!   firmware's own setup path ([`Hypervisor::create_window`]) does not filter: whatever made
//!   a window, H_PUT_TCE, H_STUFF_TCE and H_PUT_TCE_INDIRECT refuse every TCE whose host page
//!   is misaligned (H_PARAMETER, nothing changed).
//! - Remove **unmaps**. LoPAR's ibm,remove-pe-dma-window requirement 2 makes it the caller's
//!   job that the table holds no valid mapping, and leaves the platform's answer to a caller
//!   who breaks that open. We unmap every remaining TCE through the one protocol (TVE off,
//!   kill the PE, then release each page, dirty if it was writable) and free the table, and
//!   report how many there were in r4. QEMU's `rtas_ibm_remove_pe_dma_window` does the same
//!   (`spapr_tce_table_disable` drops the table whatever it holds), and so does Linux VFIO's
//!   `tce_iommu_remove_window` (`tce_iommu_clear` over the whole window, then unset). Refusing
//!   would let a crashed or hostile partition keep pages pinned for ever, and reset (and
//!   partition reboot, LoPAR DDW requirement 5) must unmap anyway.
//! - Remove of the last window of a PE, when that window is not the default one, restores the
//!   default window (LoPAR ibm,remove-pe-dma-window requirement 3; QEMU's `def_win`). The
//!   default's table is allocated before anything is removed, so H_NO_MEM leaves all as it was.
//! - Reset removes every window of the PE (unmapping) and creates a fresh default window
//!   (LoPAR ibm,reset-pe-dma-windows; QEMU `spapr_phb_dma_reset`), again allocating first.
//!
//! Window management is setup work that a partition asks for: it allocates (the top level,
//! the window record) and serialises on one spin lock. The TCE hypercalls never take that
//! lock; they find windows through the lock-free slots, and a removal waits for the calls
//! already inside the window before it releases anything.

use super::codes::*;
use super::hypervisor::{liobn, Hypervisor, SetupError};
use super::partition::Partition;
use crate::iommu::service::{MAX_PES, WINDOW1_BASE};
use crate::iommu::table::{TableGeometry, MAX_LEVELS, PAGE_SHIFTS};
use crate::iommu::tve::tvt_index;
use crate::iommu::{self, TceService, WindowConfig};
use core::sync::atomic::{AtomicU32, Ordering};

/// The tag of every PE handle (bit 30; LIOBNs carry bit 31, so the two never match).
pub const PE_HANDLE_TAG: u64 = 0x4000_0000;
/// log2 of the default window's IOMMU page: 4 KiB (LoPAR DDW requirement 4b).
pub const DEFAULT_WINDOW_PAGE_SHIFT: u32 = 12;
/// The default window's size: 2 GiB from bus address 0, below 4 GB (requirement 4c), the size
/// of Linux's 32-bit IODA2 default window.
pub const DEFAULT_WINDOW_SIZE: u64 = 1 << 31;
/// The default window's levels: 2 (an 8 KiB top level; lower levels come on demand).
pub const DEFAULT_WINDOW_LEVELS: u32 = 2;
/// Largest window: bus address bit 59 selects the TVE, so a window spans at most 2^59 bytes.
pub const MAX_WINDOW_SHIFT: u32 = 59;
/// The query's I/O page size mask, LoPAR bit layout (bit 31 = 4K, 30 = 64K, 29 = 16M).
pub const PAGE_SIZE_MASK: u64 = 0x1 | 0x2 | 0x4;

/// Grant word: bits 0..15 hold the grantee's partition id + 1 (0: not granted).
const GRANTEE_MASK: u32 = 0xFFFF;
/// Grant word: window 0 of the PE is its default window.
const DEFAULT_LIVE: u32 = 1 << 31;

/// The handle of PE `pe` on PHB `phb`.
pub const fn pe_handle(phb: usize, pe: u16) -> u64 {
    PE_HANDLE_TAG | ((phb as u64) << 16) | pe as u64
}

/// The (PHB, PE) a handle names, if it is well formed (nothing but the tag, a PHB index below
/// 64 and a PE below 256).
pub const fn decode_pe_handle(handle: u64) -> Option<(usize, u16)> {
    let fields = PE_HANDLE_TAG | (0x3F << 16) | 0xFF;
    if handle & !fields != 0 || handle & PE_HANDLE_TAG == 0 {
        return None;
    }
    Some((((handle >> 16) & 0x3F) as usize, (handle & 0xFF) as u16))
}

/// The default window of PE `pe`.
pub const fn default_window(pe: u16) -> WindowConfig {
    WindowConfig {
        pe,
        window: 0,
        page_shift: DEFAULT_WINDOW_PAGE_SHIFT,
        window_size: DEFAULT_WINDOW_SIZE,
        levels: DEFAULT_WINDOW_LEVELS,
    }
}

/// What QUERY returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeDmaQuery {
    /// Windows that can still be created for the PE (free TVEs).
    pub windows_available: u64,
    /// The most TCEs one window can have (2^59 bytes of 4 KiB pages).
    pub largest_tces: u64,
    /// Supported I/O page sizes, [`PAGE_SIZE_MASK`].
    pub page_sizes: u64,
    /// Most table levels.
    pub max_levels: u64,
}

/// What CREATE returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeDmaWindow {
    /// The new window's LIOBN.
    pub liobn: u64,
    /// Its first bus address.
    pub bus_start: u64,
    /// Its size in bytes.
    pub window_size: u64,
}

/// What REMOVE returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeDmaRemoved {
    /// TCEs that were still valid and were unmapped.
    pub unmapped: u64,
    /// The default window's LIOBN when it was restored (LoPAR remove requirement 3), else 0.
    pub restored_liobn: u64,
}

/// What RESET returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeDmaReset {
    /// The fresh default window's LIOBN.
    pub default_liobn: u64,
    /// TCEs that were still valid and were unmapped.
    pub unmapped: u64,
}

/// The query's page-size mask for `caller`: the sizes of [`PAGE_SIZE_MASK`] whose pages can
/// map some of the caller's memory ([`Partition::can_map_pages_of`]).
pub fn usable_page_sizes(caller: &Partition) -> u64 {
    PAGE_SHIFTS
        .iter()
        .enumerate()
        .filter(|&(_, &shift)| caller.can_map_pages_of(1 << shift))
        .fold(0, |mask, (bit, _)| mask | 1 << bit)
        & PAGE_SIZE_MASK
}

fn status_of(error: iommu::Error) -> i64 {
    match error {
        iommu::Error::NoMemory => H_NO_MEM,
        iommu::Error::Busy => H_RESOURCE,
        error if error.is_hardware() => H_HARDWARE,
        _ => H_PARAMETER,
    }
}

/// The service, unless a kill on it failed: then every window call answers H_HARDWARE at
/// once, before it prepares or removes anything (iommu::service, "a failed PHB changes
/// nothing any more").
fn working<'s, 'a>(service: &'s TceService<'a>) -> Result<&'s TceService<'a>, i64> {
    match service.failure() {
        None => Ok(service),
        Some(_) => Err(H_HARDWARE),
    }
}

impl<'a> Hypervisor<'a> {
    fn grant_word(&self, phb: usize, pe: u16) -> Option<&AtomicU32> {
        self.grants.get(phb)?.get(pe as usize)
    }

    /// The partition PE `pe` of PHB `phb` is granted to, if any.
    pub fn pe_grantee(&self, phb: usize, pe: u16) -> Option<u32> {
        let word = self.grant_word(phb, pe)?.load(Ordering::Acquire) & GRANTEE_MASK;
        word.checked_sub(1)
    }

    /// True when window 0 of the PE is its default window.
    pub fn has_default_window(&self, phb: usize, pe: u16) -> bool {
        self.grant_word(phb, pe)
            .is_some_and(|w| w.load(Ordering::Acquire) & DEFAULT_LIVE != 0)
    }

    fn set_default_live(&self, phb: usize, pe: u16, live: bool) {
        if let Some(word) = self.grant_word(phb, pe) {
            if live {
                word.fetch_or(DEFAULT_LIVE, Ordering::AcqRel);
            } else {
                word.fetch_and(!DEFAULT_LIVE, Ordering::AcqRel);
            }
        }
    }

    /// Grants PE `pe` of PHB `phb` to `partition`, which may then create, remove and reset the
    /// PE's DMA windows through the private hypercalls, and creates the PE's default window
    /// (every PE starts with one, LoPAR DDW requirement 4) unless window 0 already holds one of
    /// the partition's windows. Returns the PE handle to give the partition. Granting a PE
    /// the partition already holds returns the same handle and changes nothing.
    ///
    /// Refused (nothing changed) when the PE is granted to another partition or has a window
    /// of another partition (`Forbidden`), or when the default window's table cannot be
    /// allocated (`Iommu(NoMemory)`).
    pub fn grant_pe(&self, partition: &Partition, phb: usize, pe: u16) -> Result<u64, SetupError> {
        let service = self.phb(phb).ok_or(SetupError::NoPhb)?;
        if pe >= MAX_PES {
            return Err(SetupError::BadRange);
        }
        let _windows = self.windows.lock();
        let word = self.grant_word(phb, pe).ok_or(SetupError::NoPhb)?;
        match self.pe_grantee(phb, pe) {
            Some(id) if id == partition.id() => return Ok(pe_handle(phb, pe)),
            Some(_) => return Err(SetupError::Forbidden),
            None => {}
        }
        let mut foreign = false;
        for w in 0..2 {
            if let Some(window) = service.window(tvt_index(pe, w)) {
                foreign |= window.owner() != partition.id();
            }
        }
        if foreign {
            return Err(SetupError::Forbidden);
        }
        let mut default = false;
        if service.window(tvt_index(pe, 0)).is_none() {
            let prepared = service
                .prepare_window(default_window(pe), partition.id())
                .map_err(SetupError::Iommu)?;
            service
                .install_window(prepared)
                .map_err(|(error, prepared)| {
                    service.discard_window(prepared);
                    SetupError::Iommu(error)
                })?;
            default = true;
        }
        let id_field = (partition.id() + 1) & GRANTEE_MASK;
        word.store(
            id_field | if default { DEFAULT_LIVE } else { 0 },
            Ordering::Release,
        );
        Ok(pe_handle(phb, pe))
    }

    /// Takes PE `pe` of PHB `phb` back from whichever partition holds it: removes every window
    /// of the PE (unmapping what they still map, as removal always does) and clears the grant.
    /// Returns the number of TCEs unmapped. What a hot-unplug or a partition's destruction does.
    pub fn revoke_pe(&self, phb: usize, pe: u16) -> Result<usize, SetupError> {
        let service = self.phb(phb).ok_or(SetupError::NoPhb)?;
        if pe >= MAX_PES {
            return Err(SetupError::BadRange);
        }
        let _windows = self.windows.lock();
        let unmapped = self.remove_pe_windows(service, pe);
        if let Some(word) = self.grant_word(phb, pe) {
            word.store(0, Ordering::Release);
        }
        Ok(unmapped)
    }

    fn remove_pe_windows(&self, service: &TceService<'a>, pe: u16) -> usize {
        (0..2)
            .filter_map(|w| service.remove_window(self.pages(), tvt_index(pe, w)).ok())
            .sum()
    }

    /// The PHB, PE and service a handle names, if the PE is granted to `caller`.
    fn granted(&self, caller: &Partition, handle: u64) -> Result<(usize, u16), i64> {
        let (phb, pe) = decode_pe_handle(handle).ok_or(H_PARAMETER)?;
        if self.phb(phb).is_none() || self.pe_grantee(phb, pe) != Some(caller.id()) {
            return Err(H_PARAMETER);
        }
        Ok((phb, pe))
    }

    /// QUERY_PE_DMA_WINDOW (0xF200): the window resources of a PE granted to `caller`.
    pub fn h_query_pe_dma_window(
        &self,
        caller: &Partition,
        handle: u64,
    ) -> Result<PeDmaQuery, i64> {
        let (phb, pe) = self.granted(caller, handle)?;
        let service = self.phb(phb).ok_or(H_PARAMETER)?;
        Ok(PeDmaQuery {
            windows_available: (2 - service.windows_of(pe)) as u64,
            largest_tces: 1 << (MAX_WINDOW_SHIFT - PAGE_SHIFTS[0]),
            page_sizes: usable_page_sizes(caller),
            max_levels: MAX_LEVELS as u64,
        })
    }

    /// CREATE_PE_DMA_WINDOW (0xF204): a new window of `2^window_shift` bytes of
    /// `2^page_shift` pages in `levels` levels, in the PE's lowest free TVE.
    pub fn h_create_pe_dma_window(
        &self,
        caller: &Partition,
        handle: u64,
        page_shift: u64,
        window_shift: u64,
        levels: u64,
    ) -> Result<PeDmaWindow, i64> {
        // Arguments first, state second: none of these depend on what exists.
        let page_shift = PAGE_SHIFTS
            .iter()
            .copied()
            .find(|&s| s as u64 == page_shift && caller.can_map_pages_of(1 << s))
            .ok_or(H_P2);
        let window_shift_ok =
            |ps: u32| (ps as u64..=MAX_WINDOW_SHIFT as u64).contains(&window_shift);
        let _windows = self.windows.lock();
        let (phb, pe) = self.granted(caller, handle)?;
        let service = working(self.phb(phb).ok_or(H_PARAMETER)?)?;
        let page_shift = page_shift?;
        if !window_shift_ok(page_shift) {
            return Err(H_P3);
        }
        if !(1..=MAX_LEVELS as u64).contains(&levels) {
            return Err(H_P4);
        }
        let window_size = 1u64 << window_shift;
        // Page size and window size are valid, so a refusal here is the level count: one
        // level would have to exceed 16 MiB.
        TableGeometry::for_window(window_size, page_shift, levels as u32).map_err(|_| H_P4)?;
        let window = service.free_window_of(pe).ok_or(H_RESOURCE)?;
        let config = WindowConfig {
            pe,
            window,
            page_shift,
            window_size,
            levels: levels as u32,
        };
        let prepared = service
            .prepare_window(config, caller.id())
            .map_err(status_of)?;
        service
            .install_window(prepared)
            .map_err(|(error, prepared)| {
                service.discard_window(prepared);
                status_of(error)
            })?;
        Ok(PeDmaWindow {
            liobn: liobn(phb, pe, window),
            bus_start: if window == 1 { WINDOW1_BASE } else { 0 },
            window_size,
        })
    }

    /// REMOVE_PE_DMA_WINDOW (0xF208): removes a window `caller` owns, unmapping whatever it
    /// still maps, and restores the PE's default window when this was the last window and not
    /// the default one.
    pub fn h_remove_pe_dma_window(
        &self,
        caller: &Partition,
        window_liobn: u64,
    ) -> Result<PeDmaRemoved, i64> {
        let (phb, tvt) = super::hypervisor::decode_liobn(window_liobn).ok_or(H_PARAMETER)?;
        let service = working(self.phb(phb).ok_or(H_PARAMETER)?)?;
        let _windows = self.windows.lock();
        let owner = service.window(tvt).map(|w| w.owner()).ok_or(H_PARAMETER)?;
        if owner != caller.id() {
            return Err(H_PARAMETER);
        }
        let (pe, slot) = ((tvt / 2) as u16, (tvt % 2) as u8);
        let was_default = slot == 0 && self.has_default_window(phb, pe);
        let restore = !was_default
            && self.pe_grantee(phb, pe) == Some(caller.id())
            && service.windows_of(pe) == 1;
        // The replacement exists before anything goes: H_NO_MEM changes nothing.
        let replacement = if restore {
            Some(
                service
                    .prepare_window(default_window(pe), caller.id())
                    .map_err(status_of)?,
            )
        } else {
            None
        };
        // Cannot fail: the window exists and only changes under the lock we hold.
        let unmapped = service
            .remove_window(self.pages(), tvt)
            .map_err(status_of)?;
        if was_default {
            self.set_default_live(phb, pe, false);
        }
        let mut restored_liobn = 0;
        if let Some(prepared) = replacement {
            match service.install_window(prepared) {
                Ok(_) => {
                    self.set_default_live(phb, pe, true);
                    restored_liobn = liobn(phb, pe, 0);
                }
                Err((_, prepared)) => service.discard_window(prepared),
            }
        }
        Ok(PeDmaRemoved {
            unmapped: unmapped as u64,
            restored_liobn,
        })
    }

    /// RESET_PE_DMA_WINDOWS (0xF20C): removes every window of a PE granted to `caller`
    /// (unmapping) and gives it a fresh default window.
    pub fn h_reset_pe_dma_windows(
        &self,
        caller: &Partition,
        handle: u64,
    ) -> Result<PeDmaReset, i64> {
        let _windows = self.windows.lock();
        let (phb, pe) = self.granted(caller, handle)?;
        let service = working(self.phb(phb).ok_or(H_PARAMETER)?)?;
        let prepared = service
            .prepare_window(default_window(pe), caller.id())
            .map_err(status_of)?;
        let unmapped = self.remove_pe_windows(service, pe);
        self.set_default_live(phb, pe, false);
        service.install_window(prepared).map_err(|(_, prepared)| {
            // Unreachable: both TVEs were just emptied under the lock.
            service.discard_window(prepared);
            H_HARDWARE
        })?;
        self.set_default_live(phb, pe, true);
        Ok(PeDmaReset {
            default_liobn: liobn(phb, pe, 0),
            unmapped: unmapped as u64,
        })
    }

    /// Called by the setup API when it removes TVE `tvt` of PHB `phb`.
    pub(crate) fn forget_default(&self, phb: usize, tvt: usize) {
        if tvt.is_multiple_of(2) {
            self.set_default_live(phb, (tvt / 2) as u16, false);
        }
    }

    /// True when `owner` may have a window on PE `pe` of PHB `phb` (the PE is not granted to
    /// someone else).
    pub(crate) fn may_own(&self, phb: usize, pe: u16, owner: u32) -> bool {
        self.pe_grantee(phb, pe).is_none_or(|id| id == owner)
    }
}
