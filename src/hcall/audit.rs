//! The audit: walks every TCE table and checks it against the page accounting, the
//! partitions, the PE grants and the allocators (docs/tce-protocol.md, "Invariants the
//! audit checks"):
//! - every valid TCE is a page-aligned address with no reserved bit, points at host memory
//!   inside its window owner's memory, never into firmware memory, and holds exactly one pin
//!   on its page (the page accounting's record for that page size and address);
//! - every page's pin count equals the number of valid TCEs of that size that point at it: no
//!   pin without a TCE (so the pins on any frame are the TCEs covering it);
//! - no release of an unpinned frame ever happened;
//! - every table level lies in firmware memory (never in a partition's);
//! - every window of a granted PE belongs to the grantee, and a PE marked as having its
//!   default window has one in TVE 0;
//! - each PHB's table-byte counter matches the levels that exist, and, given the allocators'
//!   readings ([`Hypervisor::audit_with_usage`]), the frame allocator's used bytes are the
//!   table levels plus what else the caller says it holds, and the heap's are the window
//!   records plus the rest.
//!
//! A PHB whose kill failed (fenced, timeout) keeps what the device might still reach in its
//! quarantine: old pages with their pins, whole windows with their tables and pins. The audit
//! counts them as such ([`AuditReport::quarantined_pages`], ...): their pins are expected, their
//! levels count as table bytes, and a failed PHB's PEs need no default window any more.
//!
//! Run it when no hypercall is in flight (tests, boot self-test); it allocates a map, so it
//! is never on the hypercall path.

use super::hypervisor::{liobn, Hypervisor};
use crate::iommu::tce::{TCE_PERM_MASK, TCE_RPN_MASK};
use crate::iommu::DmaWindow;
use crate::mm::PhysAddr;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// One broken invariant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Violation {
    /// A window whose owner is not a known partition.
    UnknownOwner {
        /// The window.
        liobn: u64,
    },
    /// A valid TCE whose page is not (entirely) its owner's memory.
    OutsideOwner {
        /// The window.
        liobn: u64,
        /// Table index.
        index: u64,
        /// Host page address.
        host: PhysAddr,
    },
    /// A valid TCE whose page overlaps firmware memory.
    IntoFirmware {
        /// The window.
        liobn: u64,
        /// Table index.
        index: u64,
        /// Host page address.
        host: PhysAddr,
    },
    /// An IOMMU page whose pin count differs from the number of valid TCEs pointing at it.
    PinMismatch {
        /// The page.
        page: PhysAddr,
        /// Its size.
        bytes: u64,
        /// Its pin count.
        pins: u32,
        /// Valid TCEs of that size pointing at it.
        tces: u32,
    },
    /// Releases of unpinned or unaccounted frames happened.
    Anomalies(u64),
    /// A valid TCE with reserved bits set or an address not aligned to the IOMMU page: a value
    /// the firmware never writes.
    Malformed {
        /// The window.
        liobn: u64,
        /// Table index.
        index: u64,
        /// The raw entry (CPU order).
        tce: u64,
    },
    /// A table level outside firmware memory (the device walks it: a partition must never be
    /// able to write it).
    LevelOutsideFirmware {
        /// The window.
        liobn: u64,
        /// The level's address.
        level: PhysAddr,
    },
    /// A window on a PE granted to another partition.
    ForeignPe {
        /// The window.
        liobn: u64,
        /// Its owner.
        owner: u32,
        /// The PE's grantee.
        grantee: u32,
    },
    /// A PE marked as having its default window has no window of its grantee in TVE 0.
    DefaultWindowMissing {
        /// PHB index.
        phb: usize,
        /// PE.
        pe: u16,
    },
    /// The frame allocator's used bytes are not the table levels plus the other users.
    FrameUsage {
        /// Bytes the allocator has handed out.
        used: u64,
        /// Bytes of table levels found by walking.
        tables: u64,
        /// Bytes the caller says other users hold.
        others: u64,
    },
    /// The heap's used bytes are not the window records plus the other users.
    HeapUsage {
        /// Bytes the heap has handed out.
        used: u64,
        /// Bytes of window records ([`Hypervisor::window_heap_bytes`]).
        windows: u64,
        /// Bytes the caller says other users hold.
        others: u64,
    },
    /// Pages (or windows) a failed kill had to keep pinned that its quarantine could not
    /// record (the heap was full): their pins cannot be checked.
    QuarantineUntracked {
        /// PHB index.
        phb: usize,
        /// Entries not recorded.
        count: u64,
    },
    /// A PHB's table-byte counter differs from the levels that exist.
    TableBytes {
        /// PHB index.
        phb: usize,
        /// Bytes of levels found by walking.
        walked: u64,
        /// Bytes the service counted.
        counted: u64,
    },
}

/// What the audit found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditReport {
    /// Windows walked.
    pub windows: usize,
    /// Valid TCEs found.
    pub valid_tces: u64,
    /// Sum of all pin counts.
    pub total_pins: u64,
    /// Bytes of table levels found.
    pub table_bytes: u64,
    /// PHBs whose kill failed (they change nothing any more).
    pub failed_phbs: usize,
    /// Old pages kept pinned by failed kills.
    pub quarantined_pages: u64,
    /// Windows kept, with their tables and pins, by failed kills.
    pub quarantined_windows: usize,
    /// Broken invariants (empty when clean).
    pub violations: Vec<Violation>,
}

impl AuditReport {
    /// True when no invariant is broken.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Allocator readings for [`Hypervisor::audit_with_usage`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllocatorUsage {
    /// Bytes of the frame allocator(s) the PHBs take their tables from.
    pub frame_bytes: u64,
    /// Bytes of heap, when the caller can read it exactly (requested sizes, no rounding).
    pub heap_bytes: Option<u64>,
}

impl Hypervisor<'_> {
    /// Heap bytes the hypervisor holds for its windows: one record per window, and what a
    /// failed kill's quarantine holds (tables come from the frame allocator; the grant words
    /// are allocated with the PHB).
    pub fn window_heap_bytes(&self) -> u64 {
        let mut windows = 0u64;
        let mut quarantine = 0u64;
        for service in self.phbs() {
            service.for_each_window(&mut |_, _| windows += 1);
            quarantine += service.quarantine_heap_bytes();
        }
        windows * core::mem::size_of::<DmaWindow>() as u64 + quarantine
    }

    /// [`Hypervisor::audit`], plus the allocator check: `used` are the allocators' readings
    /// now, `others` what holds allocator memory besides TCE tables and window records (on
    /// the host rig: the RTT; on the firmware: whatever boot allocated before any window).
    /// Read `used` before calling: the audit itself allocates.
    pub fn audit_with_usage(&self, used: AllocatorUsage, others: AllocatorUsage) -> AuditReport {
        let windows = self.window_heap_bytes();
        let mut report = self.audit();
        if used.frame_bytes != report.table_bytes + others.frame_bytes {
            report.violations.push(Violation::FrameUsage {
                used: used.frame_bytes,
                tables: report.table_bytes,
                others: others.frame_bytes,
            });
        }
        if let (Some(used), Some(others)) = (used.heap_bytes, others.heap_bytes) {
            if used != windows + others {
                report.violations.push(Violation::HeapUsage {
                    used,
                    windows,
                    others,
                });
            }
        }
        report
    }

    /// Walks every table and checks every invariant. Call it with no hypercall in flight.
    pub fn audit(&self) -> AuditReport {
        let mut report = AuditReport::default();
        let mut expected: BTreeMap<(PhysAddr, u64), u32> = BTreeMap::new();
        let in_firmware = |pa: PhysAddr, len: u64| {
            self.firmware()
                .iter()
                .any(|&(fw, fw_len)| pa < fw.saturating_add(fw_len) && fw < pa.saturating_add(len))
        };
        let inside_firmware = |pa: PhysAddr, len: u64| {
            self.firmware().iter().any(|&(fw, fw_len)| {
                pa >= fw
                    && pa
                        .checked_add(len)
                        .is_some_and(|end| end <= fw.saturating_add(fw_len))
            })
        };
        for (phb, service) in self.phbs().iter().enumerate() {
            let mut walked = 0u64;
            service.for_each_window(&mut |tvt, window| {
                report.windows += 1;
                let (pe, slot) = ((tvt / 2) as u16, (tvt % 2) as u8);
                let id = liobn(phb, pe, slot);
                walked += window.table().allocated_bytes() as u64;
                let owner = self.partition(window.owner());
                if owner.is_none() {
                    report
                        .violations
                        .push(Violation::UnknownOwner { liobn: id });
                }
                if let Some(grantee) = self.pe_grantee(phb, pe) {
                    if grantee != window.owner() {
                        report.violations.push(Violation::ForeignPe {
                            liobn: id,
                            owner: window.owner(),
                            grantee,
                        });
                    }
                }
                if !self.firmware().is_empty() {
                    let level_bytes = window.table().geometry().level_bytes() as u64;
                    window.table().for_each_level(&mut |level| {
                        if !inside_firmware(level, level_bytes) {
                            report
                                .violations
                                .push(Violation::LevelOutsideFirmware { liobn: id, level });
                        }
                    });
                }
                let page = window.page_size();
                window.table().for_each_valid(&mut |index, tce| {
                    report.valid_tces += 1;
                    let host = tce.addr();
                    let reserved = tce.raw() & !(TCE_RPN_MASK | TCE_PERM_MASK);
                    if reserved != 0 || host & (page - 1) != 0 {
                        report.violations.push(Violation::Malformed {
                            liobn: id,
                            index,
                            tce: tce.raw(),
                        });
                    }
                    if let Some(owner) = owner {
                        if !owner.owns_host(host, page) {
                            report.violations.push(Violation::OutsideOwner {
                                liobn: id,
                                index,
                                host,
                            });
                        }
                    }
                    if in_firmware(host, page) {
                        report.violations.push(Violation::IntoFirmware {
                            liobn: id,
                            index,
                            host,
                        });
                    }
                    *expected.entry((host, page)).or_insert(0) += 1;
                });
            });
            // What a failed kill kept: pinned pages, and windows with tables and pins.
            if service.failure().is_some() {
                report.failed_phbs += 1;
            }
            service.for_each_quarantined_page(&mut |host, page| {
                report.quarantined_pages += 1;
                *expected.entry((host, page)).or_insert(0) += 1;
            });
            service.for_each_quarantined_window(&mut |window| {
                report.quarantined_windows += 1;
                walked += window.table().allocated_bytes() as u64;
                let page = window.page_size();
                window.table().for_each_valid(&mut |_, tce| {
                    *expected.entry((tce.addr(), page)).or_insert(0) += 1;
                });
            });
            let untracked = service.quarantine().untracked;
            if untracked != 0 {
                report.violations.push(Violation::QuarantineUntracked {
                    phb,
                    count: untracked,
                });
            }
            report.table_bytes += walked;
            if walked != service.table_bytes() {
                report.violations.push(Violation::TableBytes {
                    phb,
                    walked,
                    counted: service.table_bytes(),
                });
            }
            // A failed PHB may have kept a default window in its quarantine: nothing to check.
            let pes = if service.failure().is_some() {
                0
            } else {
                crate::iommu::service::MAX_PES
            };
            for pe in 0..pes {
                if self.has_default_window(phb, pe) {
                    let grantee = self.pe_grantee(phb, pe);
                    let present = service
                        .window(crate::iommu::tve::tvt_index(pe, 0))
                        .is_some_and(|w| Some(w.owner()) == grantee);
                    if !present {
                        report
                            .violations
                            .push(Violation::DefaultWindowMissing { phb, pe });
                    }
                }
            }
        }
        let pages = self.pages();
        report.total_pins = pages.total_pins();
        pages.for_each_pinned_page(&mut |page, bytes, pins| {
            let tces = expected.get(&(page, bytes)).copied().unwrap_or(0);
            if tces != pins {
                report.violations.push(Violation::PinMismatch {
                    page,
                    bytes,
                    pins,
                    tces,
                });
            }
        });
        for (&(page, bytes), &tces) in &expected {
            let pins = pages.page_pins(page, bytes);
            if pins == 0 {
                report.violations.push(Violation::PinMismatch {
                    page,
                    bytes,
                    pins,
                    tces,
                });
            }
        }
        if pages.anomalies() != 0 {
            report
                .violations
                .push(Violation::Anomalies(pages.anomalies()));
        }
        report
    }
}
