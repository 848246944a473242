//! The audit: walks every TCE table and checks it against the page accounting and the
//! partitions (DESIGN.md "Invariants the audit checks"):
//! - every valid TCE points at host memory inside its window owner's memory, never into
//!   firmware memory, and holds exactly one pin on each frame of its page;
//! - pins equal the number of valid TCEs over each frame: no pin without a TCE;
//! - no release of an unpinned frame ever happened;
//! - each PHB's table-byte counter matches the levels that exist.
//!
//! Run it when no hypercall is in flight (tests, boot self-test); it allocates a map, so it
//! is never on the hypercall path.

use super::hypervisor::{liobn, Hypervisor};
use crate::iommu::pages::FRAME_SHIFT;
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
    /// A frame whose pin count differs from the number of valid TCEs covering it.
    PinMismatch {
        /// The frame.
        frame: PhysAddr,
        /// Its pin count.
        pins: u32,
        /// Valid TCEs covering it.
        tces: u32,
    },
    /// Releases of unpinned or unaccounted frames happened.
    Anomalies(u64),
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
    /// Broken invariants (empty when clean).
    pub violations: Vec<Violation>,
}

impl AuditReport {
    /// True when no invariant is broken.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }
}

impl Hypervisor<'_> {
    /// Walks every table and checks every invariant. Call it with no hypercall in flight.
    pub fn audit(&self) -> AuditReport {
        let mut report = AuditReport::default();
        let mut expected: BTreeMap<PhysAddr, u32> = BTreeMap::new();
        for (phb, service) in self.phbs().iter().enumerate() {
            let mut walked = 0u64;
            service.for_each_window(&mut |tvt, window| {
                report.windows += 1;
                let id = liobn(phb, (tvt / 2) as u16, (tvt % 2) as u8);
                walked += window.table().allocated_bytes() as u64;
                let owner = self.partition(window.owner());
                if owner.is_none() {
                    report
                        .violations
                        .push(Violation::UnknownOwner { liobn: id });
                }
                let page = window.page_size();
                window.table().for_each_valid(&mut |index, tce| {
                    report.valid_tces += 1;
                    let host = tce.addr();
                    if let Some(owner) = owner {
                        if !owner.owns_host(host, page) {
                            report.violations.push(Violation::OutsideOwner {
                                liobn: id,
                                index,
                                host,
                            });
                        }
                    }
                    if self.firmware().iter().any(|&(fw, len)| {
                        host < fw.saturating_add(len) && fw < host.saturating_add(page)
                    }) {
                        report.violations.push(Violation::IntoFirmware {
                            liobn: id,
                            index,
                            host,
                        });
                    }
                    let frames = (page >> FRAME_SHIFT).max(1);
                    for f in 0..frames {
                        *expected.entry(host + (f << FRAME_SHIFT)).or_insert(0) += 1;
                    }
                });
            });
            report.table_bytes += walked;
            if walked != service.table_bytes() {
                report.violations.push(Violation::TableBytes {
                    phb,
                    walked,
                    counted: service.table_bytes(),
                });
            }
        }
        let pages = self.pages();
        report.total_pins = pages.total_pins();
        pages.for_each_pinned(&mut |frame, pins| {
            let tces = expected.get(&frame).copied().unwrap_or(0);
            if tces != pins {
                report
                    .violations
                    .push(Violation::PinMismatch { frame, pins, tces });
            }
        });
        for (&frame, &tces) in &expected {
            let pins = pages.pins(frame);
            if pins == 0 {
                report
                    .violations
                    .push(Violation::PinMismatch { frame, pins, tces });
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
