//! Host fakes for the hypervisor logic (`tcefw::hv`, `tcefw::papr`), included with
//! `#[path = "support/hv_fakes.rs"] mod hv_fakes;`:
//! - [`FakeHptMemory`] and [`RecordingTlb`], which share one event log, so a test sees every
//!   HPTE store and every `ptesync`/`eieio`/`tlbie`/`tlbsync` in program order;
//! - [`Mmu`]: an independent model of the POWER8 MMU written from the ISA (the hash, the PTEG
//!   search with AVPN/B/L/LP/H matching, VRMA's implicit segment) and of a TLB that `tlbie`
//!   invalidates by decoding RB (ISA 2.07B 5.9.3.3) on its own, so a wrong RB leaves a stale
//!   translation the test finds; a `tlbie` may also set R/C in the entry it invalidates, as a
//!   CPU finishing a store may until the sequence completes;
//! - [`CountingMemory`]: guest memory that counts every write, so a test can prove a refused
//!   call wrote nothing.
//!
//! Resources: POWER ISA 2.07B Book III-S 5.7.7 (hash functions, PTE search), 5.7.3.3 (VRMA),
//! 5.9.3.3 (tlbie), 5.10.1 (update synchronisation).
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;
use tcefw::hv::hpt::{
    HptMemory, PageSize, TlbInvalidate, R_CHANGED, R_REFERENCED, R_RPN, VRMA_VSID,
};
use tcefw::hv::memory::SliceGuestMemory;
use tcefw::hv::{GuestMemory, GuestMemoryError, Lpid};

/// One step of an update sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// A store of `value` (the big-endian-decoded doubleword) to doubleword `index`.
    Store {
        index: usize,
        value: u64,
    },
    Ptesync,
    Eieio,
    Tlbie {
        rb: u64,
        lpid: u32,
    },
    Tlbsync,
}

pub type Log = Rc<RefCell<Vec<Event>>>;

/// The words of an HPT, raw (as memory holds them: big-endian), shared with the MMU model.
pub type Words = Rc<RefCell<Vec<u64>>>;

/// HPT memory over a shared word vector that logs every store.
pub struct FakeHptMemory {
    pub words: Words,
    pub base: u64,
    pub log: Log,
}

impl FakeHptMemory {
    pub fn new(base: u64, order: u32, log: Log) -> Self {
        FakeHptMemory {
            words: Rc::new(RefCell::new(vec![
                0xdead_beef_dead_beef;
                (1usize << order) / 8
            ])),
            base,
            log,
        }
    }
}

impl HptMemory for FakeHptMemory {
    fn host_address(&self) -> u64 {
        self.base
    }
    fn doublewords(&self) -> usize {
        self.words.borrow().len()
    }
    fn load(&self, index: usize) -> u64 {
        self.words.borrow()[index]
    }
    fn store(&mut self, index: usize, value: u64) {
        self.words.borrow_mut()[index] = value;
        self.log.borrow_mut().push(Event::Store {
            index,
            value: u64::from_be(value),
        });
    }
}

/// A cached translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbEntry {
    pub lpid: u32,
    /// B of the segment.
    pub segment: u64,
    /// The 78-bit virtual address of the page (page-aligned).
    pub va: u128,
    pub shift: u32,
    /// The PTE index it came from (for the R/C side effect of tlbie).
    pub ptex: usize,
}

/// The barrier/tlbie side: logs, and keeps the TLB model that tlbie invalidates.
pub struct RecordingTlb {
    pub log: Log,
    pub tlb: Rc<RefCell<Vec<TlbEntry>>>,
    /// When set, a tlbie that invalidates an entry first sets these R/C bits in its HPTE.
    pub set_rc_on_tlbie: u64,
    pub words: Option<Words>,
}

impl RecordingTlb {
    pub fn new(log: Log) -> Self {
        RecordingTlb {
            log,
            tlb: Rc::new(RefCell::new(Vec::new())),
            set_rc_on_tlbie: 0,
            words: None,
        }
    }
}

/// The entries RB names (ISA 2.07B 5.9.3.3, decoded here independently of the encoder):
/// L = RB[63]; B = RB[54:55]; for L = 0 a 4K page (AP = 0) with VA bits 14:65 in RB[0:51];
/// for L = 1 the size from LP = RB[44:51] (xxxx_0001 64K, 0000_0000 16M) and VA bits
/// 14:77-p in RB[0:63-p]. The top 14 VA bits are not compared.
pub fn rb_matches(rb: u64, lpid: u32, entry: &TlbEntry, rs_lpid: u32) -> bool {
    if entry.lpid != rs_lpid || lpid != rs_lpid {
        return false;
    }
    if (rb >> 8) & 3 != entry.segment {
        return false;
    }
    let shift = if rb & 1 == 0 {
        if (rb >> 5) & 7 != 0 {
            return false;
        }
        12
    } else {
        let lp = (rb >> 12) & 0xff;
        if lp & 0xf == 1 {
            16
        } else if lp == 0 {
            24
        } else {
            return false;
        }
    };
    if shift != entry.shift {
        return false;
    }
    let va_low64 = entry.va as u64;
    let mask = !((1u64 << shift) - 1);
    rb & mask == va_low64 & mask
}

impl TlbInvalidate for RecordingTlb {
    fn ptesync(&mut self) {
        self.log.borrow_mut().push(Event::Ptesync);
    }
    fn eieio(&mut self) {
        self.log.borrow_mut().push(Event::Eieio);
    }
    fn tlbie(&mut self, rb: u64, lpid: Lpid) {
        self.log.borrow_mut().push(Event::Tlbie {
            rb,
            lpid: lpid.get(),
        });
        let mut tlb = self.tlb.borrow_mut();
        let hit: Vec<TlbEntry> = tlb
            .iter()
            .filter(|e| rb_matches(rb, lpid.get(), e, lpid.get()))
            .copied()
            .collect();
        if let Some(words) = &self.words {
            for entry in &hit {
                let mut w = words.borrow_mut();
                let r = u64::from_be(w[2 * entry.ptex + 1]) | self.set_rc_on_tlbie;
                w[2 * entry.ptex + 1] = r.to_be();
            }
        }
        tlb.retain(|e| !rb_matches(rb, lpid.get(), e, lpid.get()));
    }
    fn tlbsync(&mut self) {
        self.log.borrow_mut().push(Event::Tlbsync);
    }
}

/// A segment as the SLB would describe it.
#[derive(Clone, Copy, Debug)]
pub struct Segment {
    /// B: 0 = 256M, 1 = 1T.
    pub b: u64,
    pub vsid: u64,
    /// The base page size of the segment.
    pub page: PageSize,
}

impl Segment {
    pub fn shift(&self) -> u32 {
        if self.b == 1 {
            40
        } else {
            28
        }
    }
}

/// The MMU model: walks an HPT's raw words like the CPU and fills the TLB.
pub struct Mmu {
    pub words: Words,
    pub tlb: Rc<RefCell<Vec<TlbEntry>>>,
    pub lpid: u32,
}

/// Where a walk found its entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Walk {
    pub real: u64,
    pub ptex: usize,
    pub r: u64,
}

impl Mmu {
    pub fn groups(&self) -> u64 {
        (self.words.borrow().len() / 16) as u64
    }

    /// The primary hash of `offset` (within the segment) in `seg` (ISA 2.07B 5.7.7.3).
    pub fn hash(seg: &Segment, offset: u64) -> u64 {
        let p = seg.page.shift();
        let page = offset >> p;
        if seg.b == 1 {
            (seg.vsid ^ (seg.vsid << 25) ^ page) & ((1u64 << 39) - 1)
        } else {
            (seg.vsid ^ page) & ((1u64 << 39) - 1)
        }
    }

    /// The 78-bit VA.
    pub fn va(seg: &Segment, offset: u64) -> u128 {
        ((seg.vsid as u128) << seg.shift()) | offset as u128
    }

    /// Translates `offset` in `seg`: searches the primary then the secondary PTEG for a valid
    /// entry with the same B, AVPN (bits above the page), L/LP of the segment's base page
    /// size and the right H bit. On a hit caches the translation.
    pub fn translate(&self, seg: &Segment, offset: u64) -> Option<Walk> {
        let p = seg.page.shift();
        let va = Self::va(seg, offset);
        let mask = self.groups() - 1;
        let want_avpn = ((va >> 23) as u64) & ((1u64 << 55) - 1);
        let ignore = if p > 23 { (1u64 << (p - 23)) - 1 } else { 0 };
        let words = self.words.borrow();
        for h in 0..2u64 {
            let hash = Self::hash(seg, offset);
            let group = if h == 0 { hash & mask } else { !hash & mask };
            for slot in 0..8 {
                let ptex = (group as usize) * 8 + slot;
                let v = u64::from_be(words[2 * ptex]);
                let r = u64::from_be(words[2 * ptex + 1]);
                if v & 1 == 0 || (v >> 1) & 1 != h || v >> 62 != seg.b {
                    continue;
                }
                let avpn = (v >> 7) & ((1u64 << 55) - 1);
                if avpn & !ignore != want_avpn & !ignore {
                    continue;
                }
                let large = v & 4 != 0;
                let lp = (r >> 12) & 0xff;
                let size_ok = match seg.page {
                    PageSize::Page4K => !large,
                    PageSize::Page64K => large && lp & 0xf == 1,
                    PageSize::Page16M => large && lp == 0,
                };
                if !size_ok {
                    continue;
                }
                let real = (r & R_RPN & !((1u64 << p) - 1)) | (offset & ((1u64 << p) - 1));
                drop(words);
                self.tlb.borrow_mut().push(TlbEntry {
                    lpid: self.lpid,
                    segment: seg.b,
                    va: va & !((1u128 << p) - 1),
                    shift: p,
                    ptex,
                });
                return Some(Walk { real, ptex, r });
            }
        }
        None
    }

    /// A guest real-mode access at `ra` under VRMA (LPCR[VRMASD] = 16M).
    pub fn translate_real(&self, ra: u64) -> Option<u64> {
        if ra >> 40 != 0 {
            return None;
        }
        let seg = Segment {
            b: 1,
            vsid: VRMA_VSID,
            page: PageSize::Page16M,
        };
        self.translate(&seg, ra).map(|w| w.real)
    }

    /// True when the TLB still caches a translation of the page holding `offset` in `seg`.
    pub fn cached(&self, seg: &Segment, offset: u64) -> bool {
        let p = seg.page.shift();
        let va = Self::va(seg, offset) & !((1u128 << p) - 1);
        self.tlb
            .borrow()
            .iter()
            .any(|e| e.va == va && e.segment == seg.b && e.shift == p)
    }
}

/// The first doubleword Linux builds for `offset` in `seg` (hpte_encode_v): AVPN of the
/// page, B, L for large pages, V; `secondary` sets H.
pub fn encode_v(seg: &Segment, offset: u64, secondary: bool) -> u64 {
    let p = seg.page.shift();
    let va = Mmu::va(seg, offset);
    let mut avpn = ((va >> 23) as u64) & ((1u64 << 55) - 1);
    if p > 23 {
        avpn &= !((1u64 << (p - 23)) - 1);
    }
    let mut v = (avpn << 7) | (seg.b << 62) | 1;
    if p != 12 {
        v |= 4;
    }
    if secondary {
        v |= 2;
    }
    v
}

/// The second doubleword Linux builds for guest-real page `gra` (hpte_encode_r) with M and
/// PP = 0b10.
pub fn encode_r(page: PageSize, gra: u64) -> u64 {
    let lp = u64::from(page.lp_encoding()) << 12;
    let rpn = match page {
        PageSize::Page4K => gra & R_RPN,
        _ => (gra & !(page.bytes() - 1)) | lp,
    };
    rpn | 0x10 | 0x2
}

/// The PTE index of the first slot of the PTEG for `offset` in `seg`.
pub fn group_ptex(seg: &Segment, offset: u64, groups: u64, secondary: bool) -> u64 {
    let hash = Mmu::hash(seg, offset);
    let group = if secondary { !hash } else { hash } & (groups - 1);
    group * 8
}

/// Guest memory that counts writes (a refused call must not make any) and keeps the range of
/// each (guest-real start, bytes).
pub struct CountingMemory {
    pub inner: SliceGuestMemory<Vec<u8>>,
    pub writes: usize,
    pub ranges: Vec<(u64, u64)>,
}

impl CountingMemory {
    pub fn new(bytes: usize) -> Self {
        CountingMemory {
            inner: SliceGuestMemory::new(vec![0u8; bytes]),
            writes: 0,
            ranges: Vec::new(),
        }
    }
    pub fn bytes(&self) -> &[u8] {
        self.inner.bytes()
    }
}

impl GuestMemory for CountingMemory {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn read(&self, gra: u64, dst: &mut [u8]) -> Result<(), GuestMemoryError> {
        self.inner.read(gra, dst)
    }
    fn write(&mut self, gra: u64, src: &[u8]) -> Result<(), GuestMemoryError> {
        self.writes += 1;
        self.ranges.push((gra, src.len() as u64));
        self.inner.write(gra, src)
    }
    fn fill(&mut self, gra: u64, len: u64, byte: u8) -> Result<(), GuestMemoryError> {
        self.writes += 1;
        self.ranges.push((gra, len));
        self.inner.fill(gra, len, byte)
    }
}

/// R and C as a 2-bit value (R high), as H_BULK_REMOVE reports them.
pub fn rc_bits(r: u64) -> u64 {
    (u64::from(r & R_REFERENCED != 0) << 1) | u64::from(r & R_CHANGED != 0)
}

/// A small deterministic generator (SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A platform that records what the PAPR layer asked of it.
pub struct FakePlatform {
    pub now: tcefw::papr::rtas::UnixTime,
    pub displayed: Vec<u8>,
    pub console: Vec<u8>,
    pub input: Vec<u8>,
    pub powered_off: bool,
    pub rebooted: bool,
    /// (server, state) of each vCPU.
    pub cpus: Vec<(u32, tcefw::papr::rtas::CpuRunState)>,
    pub started: Vec<(u32, u64, u64)>,
    pub stopped_self: usize,
    pub timebase: u64,
}

impl FakePlatform {
    pub fn new() -> Self {
        FakePlatform {
            now: tcefw::papr::rtas::UnixTime {
                seconds: 1_796_195_572,
                nanoseconds: 250,
            },
            displayed: vec![],
            console: vec![],
            input: vec![],
            powered_off: false,
            rebooted: false,
            cpus: vec![
                (0, tcefw::papr::rtas::CpuRunState::Running),
                (1, tcefw::papr::rtas::CpuRunState::Stopped),
            ],
            started: vec![],
            stopped_self: 0,
            timebase: 0x1234_5678,
        }
    }

    /// Everything a call could have changed, for before/after comparisons.
    pub fn effects(&self) -> (Vec<u8>, Vec<u8>, bool, bool, usize, usize) {
        (
            self.displayed.clone(),
            self.console.clone(),
            self.powered_off,
            self.rebooted,
            self.started.len(),
            self.stopped_self,
        )
    }
}

impl Default for FakePlatform {
    fn default() -> Self {
        Self::new()
    }
}

impl tcefw::papr::rtas::RtasPlatform for FakePlatform {
    fn now(&mut self) -> tcefw::papr::rtas::UnixTime {
        self.now
    }
    fn display_character(&mut self, byte: u8) {
        self.displayed.push(byte);
    }
    fn power_off(&mut self) {
        self.powered_off = true;
    }
    fn reboot(&mut self) {
        self.rebooted = true;
    }
    fn cpu_state(&self, server: u32) -> Option<tcefw::papr::rtas::CpuRunState> {
        self.cpus.iter().find(|c| c.0 == server).map(|c| c.1)
    }
    fn start_cpu(&mut self, server: u32, entry: u64, r3: u64) {
        self.started.push((server, entry, r3));
        for cpu in &mut self.cpus {
            if cpu.0 == server {
                cpu.1 = tcefw::papr::rtas::CpuRunState::Running;
            }
        }
    }
    fn stop_self(&mut self) {
        self.stopped_self += 1;
    }
}

impl tcefw::papr::PaprPlatform for FakePlatform {
    fn console_write(&mut self, bytes: &[u8]) {
        self.console.extend_from_slice(bytes);
    }
    fn console_read(&mut self, buffer: &mut [u8; 16]) -> usize {
        let n = self.input.len().min(16);
        buffer[..n].copy_from_slice(&self.input[..n]);
        self.input.drain(..n);
        n
    }
    fn timebase(&self) -> u64 {
        self.timebase
    }
}

/// Writes an RTAS argument buffer (big-endian cells) at `at`.
pub fn write_rtas_buffer(mem: &mut impl GuestMemory, at: u64, token: u32, args: &[u32], nret: u32) {
    let mut cells = vec![token, args.len() as u32, nret];
    cells.extend_from_slice(args);
    cells.extend(std::iter::repeat_n(0xdead_beef, nret as usize));
    for (i, c) in cells.iter().enumerate() {
        mem.write_be32(at + 4 * i as u64, *c).unwrap();
    }
}

/// The `nret` return cells of the buffer at `at` with `nargs` arguments.
pub fn read_rets(mem: &impl GuestMemory, at: u64, nargs: u32, nret: u32) -> Vec<u32> {
    (0..nret)
        .map(|i| mem.read_be32(at + 12 + 4 * u64::from(nargs + i)).unwrap())
        .collect()
}
