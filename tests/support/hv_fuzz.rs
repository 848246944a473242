//! The hostile-guest fuzz of the HPT and RTAS calls, shared by the CI-sized test
//! (`tests/hv_fuzz.rs`) and the long run (`benches/fuzz_hv.rs`).
//!
//! Two partitions side by side in host memory (A at 0x1000_0000, B right after it, 32 MiB
//! each, each with its own 256 KiB HPT and LPID). Partition A makes random hypercalls through
//! the full path (`papr::route` + `Papr::handle`): H_ENTER, H_REMOVE, H_READ, H_PROTECT,
//! H_BULK_REMOVE and H_RTAS with arguments that are sometimes right and mostly hostile —
//! real page numbers past its memory, at B's host base, at the HPTs, bad L/LP/B/WIMG, the
//! VRMA VSID and slots, indexes past the table, malformed bulk specifiers, RTAS buffers
//! across the end of memory or claiming too many cells. After every call:
//! - no panic (caught and counted);
//! - a refused HPT call stored nothing in A's HPT (its store log is empty, and every 64th
//!   refusal the whole table is compared word for word), wrote no guest memory and issued
//!   no barrier or tlbie; H_READ never changes anything;
//! - an RTAS call wrote guest memory only inside its return cells, and a refused buffer
//!   nothing at all;
//! - a call the generator built to be invalid was not accepted;
//! - every tlbie carried A's LPID; B's HPT saw no event and B's memory no write;
//! - every 500 calls and at the end: both audits clean, and (checked here, independently of
//!   the audit) every valid HPTE of each table names host memory inside its own partition.
//!
//! Deterministic: one seed gives one run.

use super::hv_fakes::*;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use tcefw::hv::hpt::*;
use tcefw::hv::{GuestMemory, GuestRealMap, Lpid};
use tcefw::papr::hcall::{hcall_name, opcode::*, HCALL_ARGS};
use tcefw::papr::rtas::RTAS_TOKENS;
use tcefw::papr::*;

pub const SIZE: u64 = 32 << 20;
pub const A_HOST: u64 = 0x1000_0000;
pub const B_HOST: u64 = A_HOST + SIZE;
pub const A_HPT: u64 = 0x8000_0000;
pub const B_HPT: u64 = 0x8004_0000;
pub const ORDER: u32 = 18;
const ENTRIES: u64 = 1 << (ORDER - 4);
const GROUPS: u64 = 1 << (ORDER - 7);
const A_LPID: u32 = 1;
const B_LPID: u32 = 2;

/// One partition of the rig.
pub struct Side {
    pub log: Log,
    pub words: Words,
    pub hpt: Hpt<FakeHptMemory>,
    pub tlb: RecordingTlb,
    pub mem: CountingMemory,
    pub papr: Papr,
    pub platform: FakePlatform,
    pub host: u64,
}

fn side(host: u64, hpt_base: u64, lpid: u32) -> Side {
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let mem = FakeHptMemory::new(hpt_base, ORDER, log.clone());
    let words = mem.words.clone();
    let mut tlb = RecordingTlb::new(log.clone());
    let map = GuestRealMap::new(host, SIZE).unwrap();
    let hpt = Hpt::new(mem, ORDER, Lpid::new(lpid).unwrap(), map, &mut tlb).unwrap();
    log.borrow_mut().clear();
    Side {
        log,
        words,
        hpt,
        tlb,
        mem: CountingMemory::new(SIZE as usize),
        papr: Papr::new(2, 8, 0x3000_0000),
        platform: FakePlatform::new(),
        host,
    }
}

/// The outcome of a run.
#[derive(Debug, Default)]
pub struct Report {
    pub calls: u64,
    pub panics: u64,
    pub audits: u64,
    /// (accepted, refused) by opcode name.
    pub by_opcode: BTreeMap<&'static str, (u64, u64)>,
    /// Human-readable failures (empty when the run is clean).
    pub failures: Vec<String>,
    /// Valid guest entries in A's table at the end.
    pub final_guest_entries: usize,
}

impl Report {
    fn fail(&mut self, message: String) {
        if self.failures.len() < 20 {
            self.failures.push(message);
        }
    }
}

/// What the generator built.
struct Built {
    opcode: u64,
    args: [u64; HCALL_ARGS],
    /// The generator made it invalid on purpose: it must be refused.
    must_refuse: bool,
    /// For H_RTAS: the buffer's return cells (start, end) if the header is readable.
    rtas_rets: Option<(u64, u64)>,
}

struct Generator {
    rng: Rng,
    /// Slots of A's entries that should be valid (may be stale: the fuzz removes them).
    slots: Vec<u64>,
}

const PAGES: [PageSize; 3] = [PageSize::Page4K, PageSize::Page64K, PageSize::Page16M];

impl Generator {
    fn segment(&mut self, page: PageSize) -> Segment {
        let b = self.rng.below(2);
        let vsid = if b == 1 {
            self.rng.below(1 << 24)
        } else {
            self.rng.below(1 << 36)
        };
        Segment { b, vsid, page }
    }

    fn slot(&mut self) -> (u64, bool) {
        match self.rng.below(10) {
            0..=4 if !self.slots.is_empty() => (self.rng.pick(&self.slots), false),
            5 => (vrma_ptex(self.rng.below(SIZE >> 24), GROUPS) as u64, false),
            6 => (ENTRIES + self.rng.below(1 << 20), true),
            7 => (u64::MAX - self.rng.below(8), true),
            _ => (self.rng.below(ENTRIES), false),
        }
    }

    fn enter(&mut self) -> Built {
        let page = self.rng.pick(&PAGES);
        let seg = self.segment(page);
        let offset = self.rng.below(1 << (seg.shift() - page.shift())) << page.shift();
        let secondary = self.rng.chance(30);
        let mut v = encode_v(&seg, offset, secondary);
        let mut must_refuse = false;
        let gra = match self.rng.below(10) {
            0..=4 => self.rng.below(SIZE / page.bytes()) * page.bytes(),
            5 => {
                must_refuse = true;
                SIZE + self.rng.below(64) * page.bytes()
            }
            6 => {
                must_refuse = true;
                self.rng.pick(&[B_HOST, A_HOST, A_HPT, B_HPT]) & page.rpn_mask()
            }
            7 => {
                must_refuse = true;
                page.rpn_mask() - self.rng.below(16) * page.bytes()
            }
            _ => self.rng.next_u64() & page.rpn_mask(),
        };
        let mut r = encode_r(page, gra);
        match self.rng.below(12) {
            0 => {
                r |= self.rng.pick(&[0x20u64, 0x08, 0x40, 0x28]);
                must_refuse = true;
            }
            1 => {
                v |= V_LARGE;
                r = (r & !0xff000)
                    | (self.rng.pick(&[0x07u64, 0x08, 0x38, 0x03, 0x10, 0xf0]) << 12);
                must_refuse = true;
            }
            2 => {
                v |= self.rng.pick(&[2u64, 3]) << 62;
                must_refuse = true;
            }
            3 => {
                v = 0x4001_ffff_ff00_0000 | (self.rng.below(4) << 8) | V_LARGE | V_VALID;
                r = encode_r(PageSize::Page16M, gra & !0xff_ffff);
                must_refuse = true;
            }
            4 => {
                v ^= 1 << self.rng.below(64);
                r ^= 1 << self.rng.below(64);
                must_refuse = false;
            }
            5 => {
                v = self.rng.next_u64();
                r = self.rng.next_u64();
                must_refuse = false;
            }
            _ => {}
        }
        let flags = match self.rng.below(10) {
            0..=5 => 0,
            6 | 7 => H_EXACT,
            8 => H_ZERO_PAGE,
            _ => self.rng.next_u64() & !H_ZERO_PAGE,
        };
        let (ptex, bad_slot) = if self.rng.chance(85) {
            (
                group_ptex(&seg, offset, GROUPS, secondary) + self.rng.below(8),
                false,
            )
        } else {
            self.slot()
        };
        let mut args = [0u64; HCALL_ARGS];
        args[..4].copy_from_slice(&[flags, ptex, v, r]);
        Built {
            opcode: H_ENTER,
            args,
            must_refuse: must_refuse || bad_slot,
            rtas_rets: None,
        }
    }

    fn remove_like(&mut self, opcode: u64) -> Built {
        let (ptex, bad) = self.slot();
        let flags = match self.rng.below(5) {
            0 => 0,
            1 => H_AVPN,
            2 if opcode == H_REMOVE => H_ANDCOND,
            _ => self.rng.next_u64(),
        };
        let avpn = match self.rng.below(3) {
            0 => V_BOLTED,
            1 => self.rng.next_u64() & !0x7f,
            _ => self.rng.next_u64(),
        };
        let flags = if opcode == H_PROTECT {
            flags | self.rng.below(0x4000)
        } else {
            flags
        };
        let mut args = [0u64; HCALL_ARGS];
        args[..3].copy_from_slice(&[flags, ptex, avpn]);
        Built {
            opcode,
            args,
            must_refuse: bad,
            rtas_rets: None,
        }
    }

    fn read(&mut self) -> Built {
        let (ptex, bad) = self.slot();
        let flags = if self.rng.chance(50) {
            H_READ_4
        } else {
            self.rng.next_u64()
        };
        let mut args = [0u64; HCALL_ARGS];
        args[..2].copy_from_slice(&[flags, ptex]);
        Built {
            opcode: H_READ,
            args,
            must_refuse: bad,
            rtas_rets: None,
        }
    }

    fn bulk(&mut self) -> Built {
        let mut args = [0u64; HCALL_ARGS];
        let mut must_refuse = false;
        let mut ended = false;
        for i in 0..4 {
            let (ptex, bad) = self.slot();
            let ts = match self.rng.below(10) {
                0..=5 => bulk_request(self.rng.below(3), ptex & TS_PTEX),
                6 => BULK_END,
                7 => bulk_request(3, ptex),
                8 => (self.rng.pick(&[0u64, 2]) << 62) | (ptex & TS_PTEX),
                _ => self.rng.next_u64(),
            };
            if !ended {
                let kind = ts >> 62;
                if kind == 3 {
                    ended = true;
                } else if kind != 1 || (ts >> 56) & 3 == 3 || (ts & TS_PTEX) >= ENTRIES {
                    must_refuse = true;
                }
                let _ = bad;
            }
            args[2 * i] = ts;
            args[2 * i + 1] = match self.rng.below(3) {
                0 => V_BOLTED,
                1 => self.rng.next_u64() & !0x7f,
                _ => 0,
            };
        }
        Built {
            opcode: H_BULK_REMOVE,
            args,
            must_refuse,
            rtas_rets: None,
        }
    }

    fn rtas(&mut self, mem: &mut CountingMemory) -> Built {
        let at = match self.rng.below(8) {
            0 => SIZE - self.rng.below(80),
            1 => u64::MAX - self.rng.below(16),
            2 => A_HOST + self.rng.below(0x1000),
            _ => 0x10_0000 + 4 * self.rng.below(256),
        };
        let token = if self.rng.chance(85) {
            RTAS_TOKENS[self.rng.below(RTAS_TOKENS.len() as u64) as usize].token
        } else {
            self.rng.next_u64() as u32
        };
        let (nargs, nret) = match self.rng.below(6) {
            0 => (self.rng.below(20) as u32, self.rng.below(20) as u32),
            1 => (self.rng.next_u64() as u32, self.rng.next_u64() as u32),
            _ => {
                let nargs = self.rng.below(8) as u32;
                (nargs, self.rng.below(9) as u32)
            }
        };
        let cells: Vec<u32> = [token, nargs, nret]
            .into_iter()
            .chain((0..nargs.min(16)).map(|_| match self.rng.below(3) {
                0 => self.rng.below(8) as u32,
                1 => 0x1000 + self.rng.below(12) as u32,
                _ => self.rng.next_u64() as u32,
            }))
            .collect();
        for (i, c) in cells.iter().enumerate() {
            for (j, b) in c.to_be_bytes().iter().enumerate() {
                if let Some(addr) = at.checked_add(4 * i as u64 + j as u64) {
                    let _ = mem.inner.write(addr, &[*b]);
                }
            }
        }
        let total = u64::from(nargs) + u64::from(nret);
        let fits = total <= 16
            && at
                .checked_add(12 + 4 * total)
                .is_some_and(|end| end <= SIZE);
        let rets = at
            .checked_add(12 + 4 * u64::from(nargs))
            .map(|start| (start, start.saturating_add(4 * u64::from(nret))));
        let mut args = [0u64; HCALL_ARGS];
        args[0] = at;
        Built {
            opcode: H_RTAS,
            args,
            must_refuse: !fits,
            rtas_rets: if fits { rets } else { None },
        }
    }
}

fn own_partition_check(side: &Side, name: &str, report: &mut Report) {
    let audit = side.hpt.audit();
    if !audit.is_clean() {
        report.fail(format!(
            "{name}: audit: {:?}",
            &audit.violations[..audit.violations.len().min(4)]
        ));
    }
    for ptex in 0..side.hpt.entries() {
        let e = side.hpt.raw_entry(ptex).unwrap();
        if e.v & V_VALID == 0 {
            continue;
        }
        let size = match decode_page_size(e.v, e.r) {
            Some(size) => size,
            None => {
                report.fail(format!("{name}: slot {ptex} does not decode"));
                continue;
            }
        };
        let host = e.r & size.rpn_mask();
        if host < side.host || host + size.bytes() > side.host + SIZE {
            report.fail(format!(
                "{name}: slot {ptex} maps host {host:#x} outside its partition"
            ));
        }
    }
}

/// Runs `calls` hostile hypercalls from partition A with `seed`.
pub fn run(calls: u64, seed: u64) -> Report {
    let mut a = side(A_HOST, A_HPT, A_LPID);
    let b = side(B_HOST, B_HPT, B_LPID);
    let b_words = b.words.borrow().clone();
    let mut gen = Generator {
        rng: Rng(seed),
        slots: Vec::new(),
    };
    let mut report = Report::default();
    let mut refusals = 0u64;
    for call in 0..calls {
        let built = match gen.rng.below(20) {
            0..=6 => gen.enter(),
            7..=9 => gen.remove_like(H_REMOVE),
            10 | 11 => gen.remove_like(H_PROTECT),
            12 | 13 => gen.read(),
            14 | 15 => gen.bulk(),
            _ => gen.rtas(&mut a.mem),
        };
        let before = if refusals.is_multiple_of(64) {
            Some(a.words.borrow().clone())
        } else {
            None
        };
        a.log.borrow_mut().clear();
        a.mem.ranges.clear();
        let writes = a.mem.writes;
        let route = route(built.opcode, &built.args);
        let Route::Papr(request) = route else {
            report.fail(format!("{:#x} routed away", built.opcode));
            continue;
        };
        let result = catch_unwind(AssertUnwindSafe(|| {
            a.papr.handle(
                request,
                Caller {
                    hpt: &mut a.hpt,
                    tlb: &mut a.tlb,
                    guest: &mut a.mem,
                    platform: &mut a.platform,
                    server: 0,
                },
            )
        }));
        report.calls += 1;
        let ret = match result {
            Ok(ret) => ret,
            Err(_) => {
                report.panics += 1;
                report.fail(format!(
                    "call {call}: {:#x} {:x?} panicked",
                    built.opcode, built.args
                ));
                continue;
            }
        };
        let name = hcall_name(built.opcode).unwrap_or("?");
        let accepted = ret.status == HStatus::Success;
        let entry = report.by_opcode.entry(name).or_default();
        if accepted {
            entry.0 += 1;
        } else {
            entry.1 += 1;
        }
        let events: Vec<Event> = a.log.borrow().clone();
        for e in &events {
            if let Event::Tlbie { lpid, .. } = e {
                if *lpid != A_LPID {
                    report.fail(format!("call {call}: tlbie with LPID {lpid}"));
                }
            }
        }
        if built.must_refuse && accepted {
            report.fail(format!(
                "call {call}: {name} {:x?} was built invalid but accepted",
                built.args
            ));
        }
        if built.opcode == H_RTAS {
            let bounds = built.rtas_rets;
            for &(start, len) in &a.mem.ranges {
                let inside = bounds.is_some_and(|(lo, hi)| start >= lo && start + len <= hi);
                if !inside {
                    report.fail(format!("call {call}: RTAS wrote {start:#x}+{len:#x} outside its return cells {bounds:x?}"));
                }
            }
            if !events.is_empty() {
                report.fail(format!("call {call}: RTAS touched the HPT"));
            }
        } else {
            let stored = events.iter().any(|e| matches!(e, Event::Store { .. }));
            let refused = !accepted;
            if refused || built.opcode == H_READ {
                if !events.is_empty() || a.mem.writes != writes {
                    report.fail(format!(
                        "call {call}: refused {name} {:x?} ({:?}) changed something: {events:?}",
                        built.args, ret.status
                    ));
                }
                if let Some(before) = &before {
                    if *a.words.borrow() != *before {
                        report.fail(format!("call {call}: refused {name} changed the HPT words"));
                    }
                }
                if refused {
                    refusals += 1;
                }
            }
            if built.opcode == H_ENTER && accepted {
                gen.slots.push(ret.out[0]);
                if gen.slots.len() > 512 {
                    gen.slots.swap_remove(0);
                }
                if !stored {
                    report.fail(format!("call {call}: an accepted H_ENTER stored nothing"));
                }
            }
        }
        if !b.log.borrow().is_empty() || b.mem.writes != 0 {
            report.fail(format!("call {call}: partition B changed"));
        }
        if call % 500 == 499 {
            own_partition_check(&a, "A", &mut report);
            report.audits += 1;
        }
    }
    own_partition_check(&a, "A", &mut report);
    own_partition_check(&b, "B", &mut report);
    if *b.words.borrow() != b_words {
        report.fail("partition B's HPT words changed".into());
    }
    report.audits += 1;
    report.final_guest_entries = a.hpt.audit().guest_entries;
    if b.platform.effects() != FakePlatform::new().effects() {
        report.fail("partition B's platform saw an effect".into());
    }
    report
}
