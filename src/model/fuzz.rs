//! A hostile caller: random hypercalls (every opcode, the private window ones, and unknown
//! ones) with hostile arguments, thrown through [`Hypervisor::dispatch`] at a rig of two PHB3
//! models, with the checks that prove the interface survives it:
//! - no call panics (the harness catches unwinds: [`FuzzHooks::guard`]);
//! - every REJECTED call leaves everything bit-for-bit as it was: every table level's bytes,
//!   the TVTs, the PE grants, every page-accounting record (pins, dirty marks), the kill counters of the
//!   service and of the model, the frame allocator's used bytes/blocks and free bytes, and the
//!   heap's used bytes; and returns no output;
//! - accepted read-only calls (H_GET_TCE, QUERY) change nothing either;
//! - no call the generator built to be invalid (another partition's LIOBN or PE, a TCE or a
//!   list outside the caller's memory, into firmware memory, misaligned, ...) is accepted;
//! - the audit (tables against pins, owners, grants, firmware memory and the allocators) is
//!   clean periodically and at the end, the model never caches a translation that REACHES an
//!   unpinned frame (the pin watch checks the address the model translates to, not the one the
//!   firmware wrote), and tearing everything down gives back every pin, frame and heap byte.
//!
//! The rig ([`layout`]): four partitions whose guest bases, sizes and host offsets the seed
//! picks at 4 KiB granularity: one only 4K-aligned in host memory (no 64K or 16M page can map
//! it), one 64K- but not 16M-aligned, one 16M-aligned, one anywhere; RAM between them is
//! nobody's, and the TCE table pool is firmware memory. Each partition holds two or three
//! granted PEs over two PHBs (with their default 4K windows), PE 7 is nobody's, and PE
//! `8 + i` of PHB 0 carries a 64K and a 16M window the firmware made for partition `i`
//! without a grant, so every page size meets every partition whatever its placement. A TCE
//! counts as valid only when its guest page AND its host page are aligned to the IOMMU page.
//! The device DMAs through live windows and outside every window: at aliases (an address plus
//! a multiple of the bytes the table decodes, which walks to the same entry), past a window's
//! end, in the other TVE's half, and anywhere.
//!
//! The state check copies the whole state after every call (one copy per call: after an
//! accepted call it becomes the reference, after a rejected one it is compared with it), so
//! it is exact rather than sampled. Deterministic: one seed gives one run.
//!
//! Resources: docs/papr-tce-hcalls.md (the hostile cases upstream met);
//! LoPAR ch_lpar_option and sec_rtas_dma_window; KVM arch/powerpc/kvm/book3s_64_vio.c (the
//! validation each argument gets); SplitMix64 (Steele, Lea, Flood 2014) for the generator.

use super::phb3::Phb3Model;
use super::rig::{Rig, RTT_BYTES};
use crate::hcall::hypervisor::LIOBN_TAG;
use crate::hcall::windows::PE_HANDLE_TAG;
use crate::hcall::*;
use crate::hw::regio::RegIo;
use crate::iommu::service::MAX_PES;
use crate::iommu::tve::TVT_ENTRIES;
use crate::iommu::{WindowConfig, MAX_BATCH};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// A small deterministic generator (SplitMix64): no dependency, same sequence everywhere.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub const fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// True `percent` times out of 100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `items` (the default value for an empty slice).
    pub fn pick<T: Copy + Default>(&mut self, items: &[T]) -> T {
        items
            .get(self.below(items.len() as u64) as usize)
            .copied()
            .unwrap_or_default()
    }
}

/// What the harness provides: panic catching and the heap reading need `std`.
pub trait FuzzHooks {
    /// Runs `call`; `None` when it panicked (the harness catches the unwind).
    fn guard(&self, call: &mut dyn FnMut() -> HcallReturn) -> Option<HcallReturn>;
    /// Heap bytes in use now, if the harness counts them (exact, process-wide).
    fn heap_used(&self) -> Option<u64>;
}

/// How to run.
#[derive(Clone, Copy, Debug)]
pub struct FuzzConfig {
    /// Seed of the generator.
    pub seed: u64,
    /// Hypercalls to make (about 1 device DMA per 11 hypercalls comes on top).
    pub hypercalls: u64,
    /// Run the full audit every this many hypercalls (and at the end).
    pub audit_every: u64,
    /// A deliberate validation bug to plant ([`HcallFault::None`] for the real run).
    pub fault: HcallFault,
}

/// Opcodes the report counts separately (index = position; the last is "unknown").
pub const OPCODES: [(&str, u64); 9] = [
    ("H_PUT_TCE", H_PUT_TCE),
    ("H_GET_TCE", H_GET_TCE),
    ("H_STUFF_TCE", H_STUFF_TCE),
    ("H_PUT_TCE_INDIRECT", H_PUT_TCE_INDIRECT),
    ("QUERY_PE_DMA_WINDOW", H_TCEFW_QUERY_PE_DMA_WINDOW),
    ("CREATE_PE_DMA_WINDOW", H_TCEFW_CREATE_PE_DMA_WINDOW),
    ("REMOVE_PE_DMA_WINDOW", H_TCEFW_REMOVE_PE_DMA_WINDOW),
    ("RESET_PE_DMA_WINDOWS", H_TCEFW_RESET_PE_DMA_WINDOWS),
    ("unknown opcodes", u64::MAX),
];

/// Statuses the report counts separately (the last counts any other value).
pub const STATUSES: [(&str, i64); 11] = [
    ("H_SUCCESS", H_SUCCESS),
    ("H_PARAMETER", H_PARAMETER),
    ("H_P2", H_P2),
    ("H_P3", H_P3),
    ("H_P4", H_P4),
    ("H_FUNCTION", H_FUNCTION),
    ("H_RESOURCE", H_RESOURCE),
    ("H_NO_MEM", H_NO_MEM),
    ("H_HARDWARE", H_HARDWARE),
    ("H_BUSY", H_BUSY),
    ("other", i64::MIN),
];

fn opcode_slot(opcode: u64) -> usize {
    OPCODES
        .iter()
        .position(|&(_, op)| op == opcode)
        .unwrap_or(OPCODES.len() - 1)
}

fn status_slot(status: i64) -> usize {
    STATUSES
        .iter()
        .position(|&(_, s)| s == status)
        .unwrap_or(STATUSES.len() - 1)
}

/// What a run found. Fixed-size counters, so the run's own bookkeeping does not move the heap
/// it measures.
#[derive(Clone, Debug, Default)]
pub struct FuzzReport {
    /// Cases run: hypercalls plus DMAs.
    pub cases: u64,
    /// Hypercalls made.
    pub hypercalls: u64,
    /// Device DMAs made between them.
    pub dmas: u64,
    /// Of those, DMAs at an alias of a window's address (a multiple of the table's reach
    /// above it).
    pub alias_dmas: u64,
    /// Mapping TCEs generated, per caller and IOMMU page size (4K, 64K, 16M).
    pub mapping_tces: [[u64; 3]; PARTITIONS],
    /// Of those, TCEs of a page-aligned guest-real page of the caller's whose host address is
    /// not aligned to the page (the caller's placement cannot map that page size): each must
    /// be refused.
    pub misaligned_host_tces: u64,
    /// Accepted calls per [`OPCODES`] entry.
    pub accepted: [u64; OPCODES.len()],
    /// Rejected calls per [`OPCODES`] entry.
    pub rejected: [u64; OPCODES.len()],
    /// Calls per [`STATUSES`] entry.
    pub by_status: [u64; STATUSES.len()],
    /// Calls that panicked.
    pub crashes: u64,
    /// Rejected calls that changed the state (or the heap).
    pub state_changing_rejections: u64,
    /// Rejected calls that returned outputs.
    pub outputs_on_rejection: u64,
    /// Accepted read-only calls that changed the state.
    pub read_only_changes: u64,
    /// Calls built to be invalid that were accepted.
    pub hostile_accepted: u64,
    /// Calls built to be valid that were refused for a reason other than memory or a full PE
    /// (a hint that the generator or the code is wrong).
    pub valid_refused: u64,
    /// H_GET_TCE answers outside the caller's memory.
    pub bad_outputs: u64,
    /// Audits run.
    pub audits: u64,
    /// Audits that found a violation.
    pub audit_failures: u64,
    /// Cached translations the model found pointing at unpinned frames.
    pub stale_reaches: u64,
    /// Teardown gave back every pin, frame, table byte and heap byte.
    pub teardown_clean: bool,
    /// Whether the heap was measured (the harness counts it).
    pub heap_checked: bool,
    /// The most table bytes seen at once.
    pub peak_table_bytes: u64,
    /// The first problem, described.
    pub first_problem: Option<String>,
    /// What the teardown found left over, when it was not clean.
    pub teardown_problem: Option<String>,
}

impl FuzzReport {
    /// True when nothing went wrong.
    pub fn is_clean(&self) -> bool {
        self.crashes == 0
            && self.state_changing_rejections == 0
            && self.outputs_on_rejection == 0
            && self.read_only_changes == 0
            && self.hostile_accepted == 0
            && self.valid_refused == 0
            && self.bad_outputs == 0
            && self.audit_failures == 0
            && self.stale_reaches == 0
            && self.teardown_clean
    }

    /// Records `what` if it is the first problem. While the heap is measured the text goes
    /// into a buffer allocated before the measurement began ([`PROBLEM_BYTES`], truncated to
    /// fit), so reporting a problem does not itself move the heap the teardown compares.
    fn problem(&mut self, what: String) {
        match &mut self.first_problem {
            Some(buffer) if buffer.is_empty() => {
                let mut end = what.len().min(buffer.capacity());
                while !what.is_char_boundary(end) {
                    end -= 1;
                }
                buffer.push_str(&what[..end]);
            }
            Some(_) => {}
            None => self.first_problem = Some(what),
        }
    }
}

/// Bytes kept for the first problem's description during a run.
const PROBLEM_BYTES: usize = 2048;

/// Everything a rejected call must leave unchanged, copied exactly.
#[derive(Default, PartialEq, Eq)]
struct Snapshot {
    /// Counters, TVTs, grants, window shapes and level addresses.
    words: Vec<u64>,
    /// The bytes of every table level.
    levels: Vec<u8>,
    /// Every frame's pin count and dirty bit.
    records: Vec<u32>,
}

impl Snapshot {
    fn difference(&self, other: &Snapshot) -> String {
        let first = |a: &[u64], b: &[u64]| a.iter().zip(b).position(|(x, y)| x != y);
        if self.words != other.words {
            return format!(
                "counters/TVT/grants/windows differ at word {:?} (lengths {} vs {})",
                first(&self.words, &other.words),
                self.words.len(),
                other.words.len()
            );
        }
        if self.records != other.records {
            let at = self
                .records
                .iter()
                .zip(&other.records)
                .position(|(a, b)| a != b);
            return format!("pin/dirty records differ at frame {at:?}");
        }
        let at = self
            .levels
            .iter()
            .zip(&other.levels)
            .position(|(a, b)| a != b);
        format!(
            "table level bytes differ at byte {at:?} (lengths {} vs {})",
            self.levels.len(),
            other.levels.len()
        )
    }
}

/// Partitions in the rig.
pub const PARTITIONS: usize = 4;
const RAM_BYTES: usize = 64 << 20;
const TABLE_POOL_BYTES: usize = 4 << 20;
const MIB: u64 = 1 << 20;
/// (PHB, PE, partition index) of every grant.
const GRANTS: [(usize, u16, usize); 9] = [
    (0, 1, 0),
    (0, 2, 0),
    (1, 5, 0),
    (0, 4, 1),
    (1, 6, 1),
    (0, 3, 2),
    (1, 2, 2),
    (1, 3, 3),
    (1, 4, 3),
];
/// The first of the PEs (one per partition, on PHB 0) with windows the firmware made for the
/// partition without a grant: window 0 of 64K pages, window 1 of 16M pages, whatever the
/// partition's placement, so every page size meets every partition.
const SETUP_PE: u16 = 8;
/// PEs the generator aims at (granted, nobody's (7), the setup ones).
const PES: [u16; 11] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

/// How a partition sits in host memory relative to its guest-real addresses: which IOMMU page
/// sizes its placement allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Guest-to-host offset 4 KiB aligned only: no 64K or 16M page can map it.
    Only4K,
    /// Offset 64 KiB aligned, not 16 MiB: 64K pages map it, 16M ones cannot.
    Only64K,
    /// Offset 16 MiB aligned (and mostly room for a whole 16M page).
    Aligned16M,
    /// Wherever the random gap puts it.
    Any,
}

/// Where one partition lives: guest-real base, size, host offset from the rig's RAM base
/// (which is 16 MiB aligned). All 4 KiB granular.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionLayout {
    /// Its placement class.
    pub placement: Placement,
    /// First guest-real address.
    pub guest: u64,
    /// Bytes.
    pub size: u64,
    /// Host offset from the RAM base.
    pub host_offset: u64,
}

/// The partitions of the run of `seed`: random guest bases, sizes and host offsets at 4 KiB
/// granularity, one of each placement class (in an order the seed picks), packed into the
/// rig's RAM with random gaps of memory that is nobody's.
pub fn layout(seed: u64) -> [PartitionLayout; PARTITIONS] {
    let mut rng = Rng::new(seed ^ 0x9A87_17E5_0F0F_1234);
    let classes = [
        Placement::Aligned16M,
        Placement::Only4K,
        Placement::Only64K,
        Placement::Any,
    ];
    let turn = rng.below(PARTITIONS as u64) as usize;
    let mut out = [PartitionLayout {
        placement: Placement::Any,
        guest: 0,
        size: 0,
        host_offset: 0,
    }; PARTITIONS];
    // Placed in class order (the 16M-aligned one first, where aligning wastes least).
    let mut cursor = 0u64;
    for (k, &placement) in classes.iter().enumerate() {
        let guest = match rng.below(4) {
            0 => 0,
            1 => rng.below(64) << 24,
            _ if placement == Placement::Aligned16M && rng.percent(75) => rng.below(64) << 24,
            _ => rng.below(1 << 24) << 12,
        };
        let size = match placement {
            Placement::Aligned16M => (16 * MIB) + (rng.below(1024) << 12),
            _ => (1 + rng.below(1536)) << 12,
        };
        let start = cursor + (rng.below(256) << 12);
        let up_to = |from: u64, modulus: u64, residue: u64| {
            from + (guest.wrapping_add(residue).wrapping_sub(from) & (modulus - 1))
        };
        let host = match placement {
            Placement::Aligned16M => up_to(start, 16 * MIB, 0),
            Placement::Only64K => {
                let host = up_to(start, 64 << 10, 0);
                if host.wrapping_sub(guest) & (16 * MIB - 1) == 0 {
                    host + (64 << 10)
                } else {
                    host
                }
            }
            Placement::Only4K => up_to(start, 64 << 10, (1 + rng.below(15)) << 12),
            Placement::Any => start,
        };
        cursor = host + size;
        out[(k + turn) % PARTITIONS] = PartitionLayout {
            placement,
            guest,
            size,
            host_offset: host,
        };
    }
    out
}

#[derive(Clone, Copy, Debug, Default)]
struct Win {
    start: u64,
    size: u64,
    page_shift: u32,
    /// log2 of the bytes the table decodes (index bits + page shift): a bus address plus a
    /// multiple of 2^reach_shift walks to the same entry.
    reach_shift: u32,
}

impl Win {
    fn page(&self) -> u64 {
        1 << self.page_shift
    }
    fn entries(&self) -> u64 {
        self.size >> self.page_shift
    }
    /// True when `count` pages from `ioba` are inside (one page for a count of 0).
    fn run_ok(&self, ioba: u64, count: u64) -> bool {
        ioba & (self.page() - 1) == 0
            && ioba >= self.start
            && ioba - self.start < self.size
            && ((ioba - self.start) >> self.page_shift).saturating_add(count.max(1))
                <= self.entries()
    }
}

/// The default shape assumed for a LIOBN with no window (its arguments are moot anyway).
const NO_WINDOW: Win = Win {
    start: 0,
    size: 1 << 31,
    page_shift: 12,
    reach_shift: 32,
};

struct Fuzzer<'r> {
    rig: &'r Rig,
    models: [&'r Phb3Model<'r>; 2],
    hv: &'r Hypervisor<'r>,
    parts: [&'r Partition; PARTITIONS],
    rng: Rng,
    reference: Snapshot,
    now: Snapshot,
    list: Vec<u8>,
    report: FuzzReport,
}

/// Runs the fuzz: builds the rig, throws `config.cases` cases at it, audits, tears down, and
/// reports. Never panics itself; a panic in the code under test is caught by `hooks`.
pub fn run(config: &FuzzConfig, hooks: &dyn FuzzHooks) -> FuzzReport {
    let mut report = FuzzReport::default();
    let Some(rig) = Rig::new(TABLE_POOL_BYTES, RAM_BYTES) else {
        report.problem(String::from("no host memory for the rig"));
        return report;
    };
    let models = [rig.model(true), rig.model(true)];
    let hv = rig.hypervisor(&[&models[0] as &dyn RegIo, &models[1] as &dyn RegIo]);
    let Some(parts) = add_partitions(&rig, &hv, config.seed) else {
        report.problem(format!("partitions {:?} refused", layout(config.seed)));
        return report;
    };
    // The model remembers RID -> PE once it has looked it up (heap); look every RID up now so
    // the heap measured at the end can equal the heap measured here.
    for model in &models {
        for pe in 0..16u16 {
            let _ = model.translate(pe, 0, false);
        }
    }
    // Likewise the frame allocator keeps its free lists in B-trees whose root nodes stay once
    // used: touch every order the run can use (a 4 KiB block splits them all) before reading.
    if let Some(block) = crate::mm::FrameAllocator::alloc(&rig.frames, 4096) {
        crate::mm::FrameAllocator::free(&rig.frames, block, 4096);
    }
    report.first_problem = Some(String::with_capacity(PROBLEM_BYTES));
    let heap_start = hooks.heap_used();
    for &(phb, pe, part) in &GRANTS {
        if hv.grant_pe(parts[part], phb, pe).is_err() {
            report.problem(format!("grant of PHB {phb} PE {pe} refused"));
            return report;
        }
    }
    if let Err(what) = setup_windows(&hv, &parts) {
        report.problem(what);
        return report;
    }
    hv.inject_hcall_fault(config.fault);
    let mut fuzz = Fuzzer {
        rig: &rig,
        models: [&models[0], &models[1]],
        hv: &hv,
        parts,
        rng: Rng::new(config.seed),
        reference: Snapshot::default(),
        now: Snapshot::default(),
        list: Vec::new(),
        report,
    };
    fuzz.capture_reference();
    while fuzz.report.hypercalls < config.hypercalls {
        if fuzz.case(hooks)
            && config.audit_every != 0
            && fuzz.report.hypercalls.is_multiple_of(config.audit_every)
        {
            fuzz.audit();
        }
    }
    fuzz.audit();
    let mut report = fuzz.finish();
    hv.inject_hcall_fault(HcallFault::None);
    report.stale_reaches = models.iter().map(|m| m.stats().violations).sum();
    if report.stale_reaches != 0 {
        report.problem(format!(
            "the device could reach an unpinned frame: {:?}",
            models[0].first_violation().or(models[1].first_violation())
        ));
    }
    // Teardown: every grant back, the setup windows gone; nothing may remain.
    for &(phb, pe, _) in &GRANTS {
        let _ = hv.revoke_pe(phb, pe);
    }
    for phb in 0..2 {
        for pe in PES {
            let _ = hv.revoke_pe(phb, pe);
        }
    }
    let audit = rig.audit(&hv);
    let heap_end = hooks.heap_used();
    if report.first_problem.as_ref().is_some_and(String::is_empty) {
        report.first_problem = None;
    }
    report.heap_checked = heap_start.is_some();
    report.teardown_clean = audit.is_clean()
        && audit.windows == 0
        && rig.pages.total_pins() == 0
        && rig.table_bytes_in_use() == 0
        && hv.phbs().iter().all(|s| s.table_bytes() == 0)
        && heap_end == heap_start;
    if !report.teardown_clean {
        report.teardown_problem = Some(format!(
            "teardown: audit {:?}, windows {}, cached TCEs {}, pins {}, table bytes {}, heap \
             {:?} -> {:?}",
            audit.violations,
            audit.windows,
            models[0].cached_tces() + models[1].cached_tces(),
            rig.pages.total_pins(),
            rig.table_bytes_in_use(),
            heap_start,
            heap_end
        ));
        if let Some(what) = report.teardown_problem.clone() {
            report.problem(what);
        }
    }
    report
}

/// Adds the partitions of `layout(seed)` to `hv`.
fn add_partitions<'h>(
    rig: &Rig,
    hv: &'h Hypervisor<'_>,
    seed: u64,
) -> Option<[&'h Partition; PARTITIONS]> {
    let base = rig.ram.base();
    let mut parts = Vec::with_capacity(PARTITIONS);
    for p in layout(seed) {
        parts.push(
            hv.add_partition(p.guest, p.size, base + p.host_offset)
                .ok()?,
        );
    }
    parts.try_into().ok()
}

/// The firmware's own windows for every partition, on PE `SETUP_PE + i` of PHB 0: 64K pages
/// in window 0 and 16M pages in window 1, whether or not the partition's placement can use
/// them (the setup path does not filter; the hypercalls must refuse what cannot be mapped).
fn setup_windows(hv: &Hypervisor<'_>, parts: &[&Partition; PARTITIONS]) -> Result<(), String> {
    for (i, part) in parts.iter().enumerate() {
        for (window, page_shift, window_size, levels) in
            [(0u8, 16, 1 << 28, 2), (1, 24, 1 << 30, 1)]
        {
            let config = WindowConfig {
                pe: SETUP_PE + i as u16,
                window,
                page_shift,
                window_size,
                levels,
            };
            hv.create_window(0, config, part)
                .map_err(|e| format!("setup window {config:?}: {e:?}"))?;
        }
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TceKind {
    Valid,
    Clear,
    Bad,
}

impl<'r> Fuzzer<'r> {
    fn finish(self) -> FuzzReport {
        self.report
    }

    fn capture(&self, into: &mut Snapshot) {
        let Snapshot {
            words,
            levels,
            records,
        } = into;
        words.clear();
        levels.clear();
        let memory = self.models[0].memory();
        for (phb, model) in self.models.iter().enumerate() {
            let Some(service) = self.hv.phb(phb) else {
                continue;
            };
            let kills = service.kill_counts();
            let seen = model.stats();
            words.extend([
                kills.stores,
                kills.kill_one,
                kills.kill_pe,
                kills.batches,
                service.table_bytes(),
                seen.kill_one,
                seen.kill_pe,
                seen.kill_all,
                seen.violations,
            ]);
            words.extend((0..TVT_ENTRIES).map(|i| model.tve(i)));
            words.extend((0..MAX_PES).map(|pe| {
                let grantee = self.hv.pe_grantee(phb, pe).map_or(u64::MAX, u64::from);
                grantee << 1 | self.hv.has_default_window(phb, pe) as u64
            }));
            service.for_each_window(&mut |tvt, window| {
                let geometry = window.table().geometry();
                words.extend([
                    tvt as u64,
                    window.owner() as u64,
                    window.bus_start(),
                    window.bus_size(),
                    geometry.page_shift as u64,
                    geometry.levels as u64,
                ]);
                let bytes = geometry.level_bytes();
                window.table().for_each_level(&mut |level| {
                    words.push(level);
                    let at = levels.len();
                    levels.resize(at + bytes, 0);
                    if !memory.read(level, &mut levels[at..]) {
                        // A level outside device memory is itself a change worth seeing.
                        words.push(u64::MAX);
                    }
                });
            });
        }
        let frames = self.rig.frames.stats();
        words.extend([
            frames.used_bytes,
            frames.used_blocks,
            self.rig.frames.free_bytes(),
            self.rig.pages.anomalies(),
        ]);
        self.rig.pages.copy_records(records);
    }

    fn capture_reference(&mut self) {
        let mut snapshot = core::mem::take(&mut self.reference);
        self.capture(&mut snapshot);
        self.reference = snapshot;
    }

    /// Captures the state now into `self.now`; true when it equals the reference.
    fn unchanged(&mut self) -> bool {
        let mut snapshot = core::mem::take(&mut self.now);
        self.capture(&mut snapshot);
        self.now = snapshot;
        self.now == self.reference
    }

    fn adopt_now(&mut self) {
        core::mem::swap(&mut self.now, &mut self.reference);
    }

    fn audit(&mut self) {
        self.report.audits += 1;
        let table_bytes = self.rig.table_bytes_in_use();
        self.report.peak_table_bytes = self.report.peak_table_bytes.max(table_bytes);
        let audit = self.rig.audit(self.hv);
        if !audit.is_clean() {
            self.report.audit_failures += 1;
            self.report.problem(format!(
                "audit after case {}: {:?}",
                self.report.cases, audit.violations
            ));
        }
    }

    /// One case: a DMA, or a hypercall and its checks. True for a hypercall.
    fn case(&mut self, hooks: &dyn FuzzHooks) -> bool {
        self.report.cases += 1;
        if self.rng.below(12) == 0 {
            self.dma();
            // A DMA changes nothing a hypercall snapshot holds, but keep the reference exact.
            self.capture_reference();
            return false;
        }
        let caller = self.rng.below(PARTITIONS as u64) as usize;
        let (opcode, args, must_reject) = self.generate(caller);
        let part = self.parts[caller];
        let hv = self.hv;
        let heap_before = hooks.heap_used();
        let returned = hooks.guard(&mut || hv.dispatch(part, opcode, &args));
        let heap_after = hooks.heap_used();
        self.report.hypercalls += 1;
        let slot = opcode_slot(opcode);
        let Some(ret) = returned else {
            self.report.crashes += 1;
            self.report.problem(format!(
                "panic in opcode {opcode:#x} args {args:x?} from partition {caller}"
            ));
            self.capture_reference();
            return true;
        };
        self.report.by_status[status_slot(ret.status)] += 1;
        let unchanged = self.unchanged();
        if ret.status != H_SUCCESS {
            self.report.rejected[slot] += 1;
            if !unchanged || heap_before != heap_after {
                self.report.state_changing_rejections += 1;
                let what = if unchanged {
                    format!("heap {heap_before:?} -> {heap_after:?}")
                } else {
                    self.reference.difference(&self.now)
                };
                self.report.problem(format!(
                    "rejected opcode {opcode:#x} ({}) args {args:x?} from partition {caller} \
                     changed state: {what}",
                    ret.status
                ));
            }
            if ret.out != [0; HCALL_RETS] {
                self.report.outputs_on_rejection += 1;
                self.report.problem(format!(
                    "rejected opcode {opcode:#x} returned {:x?}",
                    ret.out
                ));
            }
            if !must_reject && !matches!(ret.status, H_NO_MEM | H_RESOURCE) {
                self.report.valid_refused += 1;
                self.report.problem(format!(
                    "valid opcode {opcode:#x} args {args:x?} from partition {caller} refused \
                     with {}",
                    ret.status
                ));
            }
        } else {
            self.report.accepted[slot] += 1;
            if must_reject {
                self.report.hostile_accepted += 1;
                self.report.problem(format!(
                    "hostile opcode {opcode:#x} args {args:x?} from partition {caller} accepted"
                ));
            }
            let read_only = matches!(opcode, H_GET_TCE | H_TCEFW_QUERY_PE_DMA_WINDOW);
            if read_only && !unchanged {
                self.report.read_only_changes += 1;
                self.report.problem(format!(
                    "read-only opcode {opcode:#x} changed state: {}",
                    self.reference.difference(&self.now)
                ));
            }
            if opcode == H_GET_TCE && ret.out[0] & 3 != 0 {
                let gra = ret.out[0] & !0xFFF;
                if part.to_host(gra, 1).is_none() {
                    self.report.bad_outputs += 1;
                    self.report.problem(format!(
                        "H_GET_TCE returned {:#x} outside the caller",
                        ret.out[0]
                    ));
                }
            }
        }
        if !unchanged {
            self.adopt_now();
        }
        true
    }

    // ---- generation ------------------------------------------------------------------

    fn window(&self, liobn: u64) -> Option<Win> {
        let (phb, tvt) = decode_liobn(liobn)?;
        let window = self.hv.phb(phb)?.window(tvt)?;
        let geometry = window.table().geometry();
        Some(Win {
            start: window.bus_start(),
            size: window.bus_size(),
            page_shift: window.page_shift(),
            reach_shift: geometry.index_bits() + geometry.page_shift,
        })
    }

    /// True when entry `index` of the window `liobn` names holds a valid TCE.
    fn is_mapped(&self, liobn: u64, index: u64) -> bool {
        decode_liobn(liobn)
            .and_then(|(phb, tvt)| self.hv.phb(phb)?.window(tvt))
            .is_some_and(|w| w.table().get(index).is_valid())
    }

    fn owner_of(&self, liobn: u64) -> Option<u32> {
        let (phb, tvt) = decode_liobn(liobn)?;
        Some(self.hv.phb(phb)?.window(tvt)?.owner())
    }

    /// A LIOBN for `caller`: mostly one of its live windows; else another partition's, a dead
    /// one, or a malformed one. Returns it, its window, and whether it is invalid.
    fn liobn(&mut self, caller: usize) -> (u64, Win, bool) {
        let me = self.parts[caller].id();
        let mut live = [(0u64, false); 3 * PES.len() * 2];
        let mut n = 0;
        for phb in 0..3 {
            for pe in PES {
                for w in 0..2 {
                    let id = liobn(phb, pe, w);
                    live[n] = (id, self.owner_of(id) == Some(me));
                    n += 1;
                }
            }
        }
        let roll = self.rng.below(100);
        let wanted = |(id, mine): (u64, bool), fuzz: &Self| match roll {
            0..=71 => mine,
            72..=83 => fuzz.owner_of(id).is_some() && !mine,
            _ => fuzz.owner_of(id).is_none(),
        };
        if roll < 92 {
            let count = live.iter().filter(|&&c| wanted(c, self)).count() as u64;
            if count > 0 {
                let k = self.rng.below(count) as usize;
                if let Some(&(id, mine)) = live.iter().filter(|&&c| wanted(c, self)).nth(k) {
                    return (id, self.window(id).unwrap_or(NO_WINDOW), !mine);
                }
            }
        }
        let some = liobn(0, 1, 0);
        let (r1, r2) = (self.rng.next_u64(), self.rng.next_u64());
        let bad = self.rng.pick(&[
            0,
            u64::MAX,
            some | 1 << 32,
            some & !LIOBN_TAG,
            LIOBN_TAG | 0x200,
            LIOBN_TAG | 0xFFFF,
            liobn(63, 1, 0),
            liobn(2, 1, 0),
            r1,
            r2 & 0xFFFF_FFFF,
        ]);
        let invalid = self.owner_of(bad) != Some(me);
        (bad, self.window(bad).unwrap_or(NO_WINDOW), invalid)
    }

    /// A bus address in `w` for a run of `count` entries, or a hostile one. Returns it and
    /// whether the run is outside the window.
    fn ioba(&mut self, w: Win, count: u64) -> (u64, bool) {
        let n = w.entries();
        let near = n.min(64);
        let index = match self.rng.below(100) {
            0..=54 => self.rng.below(near),
            55..=69 => n - near + self.rng.below(near),
            70..=77 => self.rng.below(n),
            _ => {
                let page = w.page();
                let (r1, r2) = (self.rng.next_u64(), self.rng.next_u64());
                let ioba = self.rng.pick(&[
                    w.start.wrapping_add(w.size),
                    w.start.wrapping_sub(page),
                    w.start + 1,
                    w.start + page / 2,
                    w.start + 8,
                    w.start ^ (1 << 59),
                    w.start.wrapping_add(w.size).wrapping_sub(page) + 0x800,
                    u64::MAX,
                    !0xFFF,
                    1 << 63,
                    r1,
                    r2 & !0xFFF,
                ]);
                return (ioba, !w.run_ok(ioba, count));
            }
        };
        let ioba = w.start + (index << w.page_shift);
        (ioba, !w.run_ok(ioba, count))
    }

    /// Another partition than `caller`, at random.
    fn other(&mut self, caller: usize) -> &'r Partition {
        let k = 1 + self.rng.below(PARTITIONS as u64 - 1) as usize;
        self.parts[(caller + k) % PARTITIONS]
    }

    /// What the hypervisor must make of `tce` from `caller` in a window of `2^page_shift`
    /// pages: a clear (permission 00), a valid mapping (a guest-real page aligned to the IOMMU
    /// page, all of it the caller's, with a host address aligned to the page too), or a TCE
    /// it must refuse.
    fn classify(&self, caller: usize, page_shift: u32, tce: u64) -> TceKind {
        if tce & 3 == 0 {
            return TceKind::Clear;
        }
        let page = 1u64 << page_shift;
        let gra = tce & !3;
        let valid = gra & (page - 1) == 0
            && self.parts[caller]
                .to_host(gra, page)
                .is_some_and(|host| host & (page - 1) == 0 && self.rig.pages.covers(host, page));
        if valid {
            TceKind::Valid
        } else {
            TceKind::Bad
        }
    }

    /// A TCE for a window of `2^page_shift` pages, from `caller`: mostly a page-aligned
    /// guest-real page of the caller's (valid, or to be refused when the caller's placement
    /// puts it on a misaligned host address), a clear, or hostile.
    fn tce(&mut self, caller: usize, page_shift: u32) -> (u64, TceKind) {
        let me = self.parts[caller];
        let other = self.other(caller);
        let page = 1u64 << page_shift;
        let perm = 1 + self.rng.below(3);
        let end = me.guest_base() + me.size();
        // The first page-aligned guest-real page at or above the base, and how many fit.
        let first = me.guest_base().next_multiple_of(page);
        let pages = end.saturating_sub(first) / page;
        let tce = match self.rng.below(100) {
            // A few pages shared by many TCEs (exchange, repin), or any page of the caller's.
            0..=29 if pages > 0 => (first + self.rng.below(pages.min(48)) * page) | perm,
            30..=59 if pages > 0 => (first + self.rng.below(pages) * page) | perm,
            0..=71 => return (self.rng.next_u64() & !3, TceKind::Clear),
            _ => {
                let valid = me.guest_base();
                let tables = self.rig.tables.base();
                let ram_end = self.rig.ram.base() + self.rig.ram.bytes();
                let (r1, r2) = (self.rng.below(4), self.rng.next_u64());
                let gra = self.rng.pick(&[
                    end,
                    end.next_multiple_of(page),
                    end.wrapping_sub(page),
                    end - 0x1000,
                    end + 0x10_0000,
                    other.guest_base() + page * r1,
                    other.guest_base().next_multiple_of(page),
                    valid.wrapping_sub(page),
                    first + page / 2,
                    first + 0x1000,
                    tables,
                    tables + page,
                    self.rig.ram.base(),
                    ram_end,
                    ram_end - page,
                    valid + 0x10,
                    !0xFFF,
                    !(page - 1),
                    1 << 63,
                    (r2 | 0x8000_0000_0000) & !0xFFF,
                ]);
                (gra & !3) | perm
            }
        };
        let kind = self.classify(caller, page_shift, tce);
        let size = match page_shift {
            12 => 0,
            16 => 1,
            _ => 2,
        };
        self.report.mapping_tces[caller][size] += 1;
        let gra = tce & !3;
        let misaligned_host = gra & (page - 1) == 0
            && me
                .to_host(gra, page)
                .is_some_and(|host| host & (page - 1) != 0);
        if misaligned_host {
            self.report.misaligned_host_tces += 1;
        }
        (tce, kind)
    }

    fn handle(&mut self, caller: usize) -> (u64, bool) {
        let me = self.parts[caller].id();
        let mine: [(u64, bool); GRANTS.len()] =
            GRANTS.map(|(phb, pe, p)| (pe_handle(phb, pe), self.parts[p].id() == me));
        match self.rng.below(100) {
            0..=64 => {
                let own = mine.iter().filter(|m| m.1).count() as u64;
                let k = self.rng.below(own) as usize;
                let handle = mine.iter().filter(|m| m.1).nth(k).map_or(0, |m| m.0);
                (handle, false)
            }
            65..=79 => {
                let theirs = mine.iter().filter(|m| !m.1).count() as u64;
                let k = self.rng.below(theirs) as usize;
                let handle = mine.iter().filter(|m| !m.1).nth(k).map_or(0, |m| m.0);
                (handle, true)
            }
            _ => {
                let r = self.rng.next_u64();
                let bad = self.rng.pick(&[
                    0,
                    u64::MAX,
                    PE_HANDLE_TAG,
                    pe_handle(0, 7),
                    pe_handle(0, SETUP_PE),
                    pe_handle(63, 1),
                    pe_handle(2, 1),
                    pe_handle(0, 1) | 1 << 32,
                    pe_handle(0, 1) | 0x100,
                    liobn(0, 1, 0),
                    r,
                ]);
                let valid = decode_pe_handle(bad)
                    .is_some_and(|(phb, pe)| self.hv.pe_grantee(phb, pe) == Some(me));
                (bad, !valid)
            }
        }
    }

    /// One hypercall for `caller`: (opcode, args, whether it must be rejected).
    fn generate(&mut self, caller: usize) -> (u64, [u64; HCALL_ARGS], bool) {
        let mut args = [0u64; HCALL_ARGS];
        // Registers the call does not use carry garbage: they must not matter.
        for a in args.iter_mut() {
            *a = self.rng.next_u64();
        }
        let roll = self.rng.below(100);
        let (opcode, must_reject) = match roll {
            0..=29 => self.put(caller, &mut args),
            30..=39 => self.get(caller, &mut args),
            40..=51 => self.stuff(caller, &mut args),
            52..=66 => self.indirect(caller, &mut args),
            67..=71 => {
                let (handle, bad) = self.handle(caller);
                args[0] = handle;
                (H_TCEFW_QUERY_PE_DMA_WINDOW, bad)
            }
            72..=81 => self.create(caller, &mut args),
            82..=88 => {
                let (id, _, bad) = self.liobn(caller);
                args[0] = id;
                (H_TCEFW_REMOVE_PE_DMA_WINDOW, bad)
            }
            89..=91 => {
                let (handle, bad) = self.handle(caller);
                args[0] = handle;
                (H_TCEFW_RESET_PE_DMA_WINDOWS, bad)
            }
            _ => {
                let r = self.rng.next_u64();
                let opcode = self.rng.pick(&[
                    0,
                    4,
                    0x18,
                    0x1D,
                    0x24,
                    0x134,
                    0x140,
                    0xF000,
                    0xF1FC,
                    0xF201,
                    0xF210,
                    0xF3FC,
                    u64::MAX,
                    H_PUT_TCE | 1 << 32,
                    r,
                ]);
                let known = OPCODES[..OPCODES.len() - 1]
                    .iter()
                    .any(|&(_, op)| op == opcode);
                if known {
                    // A random value that happens to be an opcode: its random arguments are
                    // not a meaningful test of anything; make it an unknown one.
                    (0x4, true)
                } else {
                    (opcode, true)
                }
            }
        };
        (opcode, args, must_reject)
    }

    fn put(&mut self, caller: usize, args: &mut [u64; HCALL_ARGS]) -> (u64, bool) {
        let (id, w, bad_liobn) = self.liobn(caller);
        let (ioba, bad_ioba) = self.ioba(w, 1);
        let (tce, kind) = self.tce(caller, w.page_shift);
        args[..3].copy_from_slice(&[id, ioba, tce]);
        (H_PUT_TCE, bad_liobn || bad_ioba || kind == TceKind::Bad)
    }

    fn get(&mut self, caller: usize, args: &mut [u64; HCALL_ARGS]) -> (u64, bool) {
        let (id, w, bad_liobn) = self.liobn(caller);
        let (ioba, bad_ioba) = self.ioba(w, 1);
        args[..2].copy_from_slice(&[id, ioba]);
        (H_GET_TCE, bad_liobn || bad_ioba)
    }

    fn count(&mut self) -> (u64, bool) {
        // Pinning is O(1) per page whatever its size, so 16M runs are as long as any.
        let cap = MAX_BATCH as u64;
        match self.rng.below(100) {
            0..=54 => (1 + self.rng.below(16.min(cap)), false),
            55..=74 => (1 + self.rng.below(cap), false),
            75..=81 => (cap, false),
            82..=87 => (0, false),
            _ => {
                let count = self.rng.pick(&[513, 1024, u64::MAX, 1 << 32 | 1, 1 << 63]);
                (count, true)
            }
        }
    }

    fn stuff(&mut self, caller: usize, args: &mut [u64; HCALL_ARGS]) -> (u64, bool) {
        let (id, w, bad_liobn) = self.liobn(caller);
        let (count, too_many) = self.count();
        let (ioba, bad_run) = self.ioba(w, count);
        let (tce, kind) = self.tce(caller, w.page_shift);
        args[..4].copy_from_slice(&[id, ioba, tce, count]);
        let bad = bad_liobn || too_many || bad_run || (count > 0 && kind == TceKind::Bad);
        (H_STUFF_TCE, bad)
    }

    fn indirect(&mut self, caller: usize, args: &mut [u64; HCALL_ARGS]) -> (u64, bool) {
        let (id, w, bad_liobn) = self.liobn(caller);
        let (count, too_many) = self.count();
        let (ioba, bad_run) = self.ioba(w, count);
        let me = self.parts[caller];
        let other = self.other(caller);
        let first_pages = (me.size() / 4096).min(64);
        let list = match self.rng.below(100) {
            0..=54 => me.guest_base() + 4096 * self.rng.below(first_pages),
            // The last page of the partition: the list ends exactly at its end.
            55..=64 => me.guest_base() + me.size() - 4096,
            _ => {
                let valid = me.guest_base() + 4096 * self.rng.below(first_pages);
                let r = self.rng.next_u64();
                self.rng.pick(&[
                    valid + 8,
                    valid + 0x800,
                    // Across a page boundary: the last word of one page onward.
                    valid + 4096 - 8,
                    me.guest_base() + me.size(),
                    me.guest_base() + me.size() - 2048,
                    other.guest_base(),
                    self.rig.tables.base(),
                    self.rig.ram.base(),
                    !0xFFF,
                    me.guest_base().wrapping_sub(4096),
                    r & !0xFFF,
                ])
            }
        };
        let entries = count.min(MAX_BATCH as u64) as usize;
        let aligned = list & 0xFFF == 0;
        let inside = me.to_host(list, entries as u64 * 8).is_some();
        let mut bad_entry = false;
        if aligned && inside && entries > 0 {
            let poison = self.rng.percent(15);
            let at = self.rng.below(entries as u64) as usize;
            let mut bytes = core::mem::take(&mut self.list);
            bytes.clear();
            for i in 0..entries {
                let (mut tce, mut kind) = self.tce(caller, w.page_shift);
                while kind == TceKind::Bad && !(poison && i == at) {
                    (tce, kind) = self.tce(caller, w.page_shift);
                }
                if poison && i == at && kind != TceKind::Bad {
                    // Into firmware memory: the list entry that must sink the whole call.
                    tce = self.rig.tables.base() | 3;
                    kind = TceKind::Bad;
                }
                bad_entry |= kind == TceKind::Bad;
                bytes.extend_from_slice(&tce.to_be_bytes());
            }
            if let Some(host) = me.to_host(list, 0) {
                self.models[0].memory().write(host, &bytes);
            }
            self.list = bytes;
        }
        args[..4].copy_from_slice(&[id, ioba, list, count]);
        let bad =
            bad_liobn || too_many || !aligned || bad_run || (count > 0 && (!inside || bad_entry));
        (H_PUT_TCE_INDIRECT, bad)
    }

    fn create(&mut self, caller: usize, args: &mut [u64; HCALL_ARGS]) -> (u64, bool) {
        let (handle, bad_handle) = self.handle(caller);
        let (page_shift, bad_page) = if self.rng.percent(80) {
            let shift = self.rng.pick(&[12u64, 12, 16, 24]);
            // A page size the caller's placement cannot map is refused (H_P2).
            (shift, !self.parts[caller].can_map_pages_of(1 << shift))
        } else {
            let ps = self
                .rng
                .pick(&[0, 11, 13, 20, 28, 64, u64::MAX, 12 | 1 << 32]);
            (ps, true)
        };
        let (window_shift, bad_window) = if self.rng.percent(85) {
            let ps = page_shift.min(24);
            (ps + 4 + self.rng.below(17), false)
        } else {
            let ws = self
                .rng
                .pick(&[0, 11, page_shift.wrapping_sub(1), 60, 63, 64, u64::MAX]);
            (ws, true)
        };
        let (levels, bad_levels) = if self.rng.percent(85) {
            (1 + self.rng.below(5), false)
        } else {
            (self.rng.pick(&[0, 6, 255, u64::MAX]), true)
        };
        args[..4].copy_from_slice(&[handle, page_shift, window_shift, levels]);
        let geometry_ok = !bad_page
            && window_shift <= 59
            && window_shift >= page_shift
            && (1..=5).contains(&levels)
            && crate::iommu::table::TableGeometry::for_window(
                1 << window_shift,
                page_shift as u32,
                levels as u32,
            )
            .is_ok();
        let bad = bad_handle || bad_page || bad_window || bad_levels || !geometry_ok;
        (H_TCEFW_CREATE_PE_DMA_WINDOW, bad)
    }

    /// A device DMA through one of the models: mostly at an address of a live window, else
    /// outside every window: at an alias of a window's address (plus a multiple of the bytes
    /// the table decodes, which walks to the same entry), past the window's end, in the other
    /// half of the PE's bus space, or anywhere. It exercises the TCE cache, which the pin watch
    /// then checks at every register access.
    fn dma(&mut self) {
        self.report.dmas += 1;
        let phb = self.rng.below(2) as usize;
        let pe = self.rng.pick(&PES);
        let w = self.rng.below(2) as u8;
        let id = liobn(phb, pe, w);
        let win = self.window(id).unwrap_or(NO_WINDOW);
        // Mostly an entry that maps something (so the alias, if any, gets cached), else any.
        let mut index = self.rng.below(win.entries().min(64));
        for _ in 0..8 {
            if self.is_mapped(id, index) {
                break;
            }
            index = self.rng.below(win.entries().min(64));
        }
        let inside = win.start + (index << win.page_shift) + self.rng.below(win.page() / 8) * 8;
        // The end of the window's half of the bus space (bit 59 selects the TVE; bits
        // 60..63 must be 0).
        let half_end = if win.start >= 1 << 59 {
            1 << 60
        } else {
            1 << 59
        };
        let bus = match self.rng.below(100) {
            0..=54 => inside,
            55..=74 => {
                // An alias: only meaningful while it stays in the window's half.
                let k = 1 + self.rng.below(4);
                match k.checked_shl(win.reach_shift) {
                    Some(step) if inside.checked_add(step).is_some_and(|a| a < half_end) => {
                        self.report.alias_dmas += 1;
                        inside + step
                    }
                    _ => inside,
                }
            }
            75..=84 => win.start + win.size + self.rng.below(win.size) / 8 * 8,
            85..=92 => inside ^ (1 << 59),
            _ => self.rng.next_u64() & !7,
        };
        let model = self.models[phb];
        if self.rng.percent(50) {
            let _ = model.dma_write(pe, bus, &self.rng.next_u64().to_be_bytes());
        } else {
            let _ = model.dma_read(pe, bus, 8);
        }
    }
}

/// Proves that the state comparison sees each kind of change it claims to cover: on a small
/// rig it makes one change of each kind behind the hypervisor's back (a table level's word, a
/// pin, a dirty bit, a kill store, a TVT entry, a frame allocation, a grant, a refused
/// release) and checks that the comparison reports it. `Err` names the first change missed.
pub fn detector_self_test() -> Result<(), String> {
    use crate::iommu::kill::kill_pe;
    use crate::mm::FrameAllocator;
    use crate::phb3::regs::PHB_TCE_KILL;
    use crate::phb3::write_tve;

    let rig = Rig::new(TABLE_POOL_BYTES, RAM_BYTES).ok_or("no host memory")?;
    let models = [rig.model(false), rig.model(false)];
    let hv = rig.hypervisor(&[&models[0] as &dyn RegIo, &models[1] as &dyn RegIo]);
    let base = rig.ram.base();
    let mut parts = Vec::new();
    for (guest, size, offset) in [
        (0, 16 * MIB, 0),
        (0x1000_0000, 8 * MIB, 24 * MIB),
        (0x2000_0000, 4 * MIB, 40 * MIB),
        (0x3000_0000, 4 * MIB, 48 * MIB),
    ] {
        parts.push(
            hv.add_partition(guest, size, base + offset)
                .map_err(|e| format!("{e:?}"))?,
        );
    }
    let parts: [&Partition; PARTITIONS] = parts.try_into().map_err(|_| "partitions")?;
    let (a, b) = (parts[0], parts[1]);
    hv.grant_pe(a, 0, 1).map_err(|e| format!("{e:?}"))?;
    hv.h_put_tce(a, liobn(0, 1, 0), 0, 0x5000 | 3)
        .map_err(|e| format!("put {e}"))?;
    let mut fuzz = Fuzzer {
        rig: &rig,
        models: [&models[0], &models[1]],
        hv: &hv,
        parts,
        rng: Rng::new(0),
        reference: Snapshot::default(),
        now: Snapshot::default(),
        list: Vec::new(),
        report: FuzzReport::default(),
    };
    fuzz.capture_reference();
    if !fuzz.unchanged() {
        return Err(String::from(
            "the comparison sees a change where there is none",
        ));
    }
    let root = hv
        .phb(0)
        .and_then(|s| {
            s.window(crate::iommu::tve::tvt_index(1, 0))
                .map(|w| w.table().root())
        })
        .ok_or("no default window")?;
    let frame = base + 0x9000;
    let memory = models[0].memory();
    let mut check = |what: &str, change: &mut dyn FnMut(), undo: &mut dyn FnMut()| {
        change();
        let seen = !fuzz.unchanged();
        undo();
        let back = fuzz.unchanged();
        if !back {
            // A change that cannot be undone (a counter): it becomes the reference.
            fuzz.adopt_now();
        }
        seen.then_some(()).ok_or(format!("missed: {what}"))
    };
    check(
        "a table level word",
        &mut || {
            memory.write(root + 8 * 77, &0xDEADu64.to_be_bytes());
        },
        &mut || {
            memory.write(root + 8 * 77, &0u64.to_be_bytes());
        },
    )?;
    check(
        "a pin",
        &mut || {
            let _ = rig.pages.pin(frame, 4096);
        },
        &mut || rig.pages.unpin(frame, 4096, false),
    )?;
    check(
        "a dirty bit",
        &mut || {
            let _ = rig.pages.pin(frame, 4096);
            rig.pages.unpin(frame, 4096, true);
        },
        &mut || {
            rig.pages.take_dirty(frame);
        },
    )?;
    check(
        "a kill store",
        &mut || models[1].write64(PHB_TCE_KILL, kill_pe(3)),
        &mut || {},
    )?;
    let tve = models[0].tve(40);
    check(
        "a TVT entry",
        &mut || {
            let _ = write_tve(&models[0], 40, 0x1234_5000_0A01);
        },
        &mut || {
            let _ = write_tve(&models[0], 40, tve);
        },
    )?;
    let block = core::cell::Cell::new(None);
    check(
        "a frame allocation",
        &mut || block.set(rig.frames.alloc(4096)),
        &mut || {
            if let Some(taken) = block.take() {
                rig.frames.free(taken, 4096);
            }
        },
    )?;
    check(
        "a grant",
        &mut || {
            let _ = hv.grant_pe(b, 1, 9);
        },
        &mut || {
            let _ = hv.revoke_pe(1, 9);
        },
    )?;
    check(
        "a refused release",
        &mut || rig.pages.unpin(base + 0x7F_0000, 4096, false),
        &mut || {},
    )?;
    Ok(())
}

/// The RTT maps RID r to PE r, so the DMA above uses the PE number as its RID.
const _: () = assert!(RTT_BYTES >= 2 * 16);
