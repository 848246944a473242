//! Host tests of the per-partition HPT (`tcefw::hv::hpt`): VRMA set-up checked by an
//! independent MMU model, H_ENTER / H_REMOVE / H_READ / H_PROTECT / H_BULK_REMOVE against
//! QEMU's and KVM's semantics, the ISA update sequences event by event, tlbie's RB checked by
//! a TLB model that must lose the translation, and hostile arguments that must change nothing.

#[path = "support/hv_fakes.rs"]
mod hv_fakes;

use hv_fakes::*;
use std::cell::RefCell;
use std::rc::Rc;
use tcefw::hv::hpt::*;
use tcefw::hv::{GuestRealMap, Lpid};

const HOST_BASE: u64 = 0x1000_0000;
const SIZE: u64 = 32 << 20;
const HPT_BASE: u64 = 0x8000_0000;
const ORDER: u32 = 18;
const GROUPS: u64 = 1 << (ORDER - 7);
const LPID: u32 = 5;

struct Rig {
    log: Log,
    words: Words,
    hpt: Hpt<FakeHptMemory>,
    tlb: RecordingTlb,
    mmu: Mmu,
    guest: CountingMemory,
}

fn rig_at(host_base: u64, size: u64, hpt_base: u64, order: u32) -> Rig {
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let mem = FakeHptMemory::new(hpt_base, order, log.clone());
    let words = mem.words.clone();
    let mut tlb = RecordingTlb::new(log.clone());
    tlb.words = Some(words.clone());
    let map = GuestRealMap::new(host_base, size).unwrap();
    let hpt = Hpt::new(mem, order, Lpid::new(LPID).unwrap(), map, &mut tlb).unwrap();
    let mmu = Mmu {
        words: words.clone(),
        tlb: tlb.tlb.clone(),
        lpid: LPID,
    };
    log.borrow_mut().clear();
    Rig {
        log,
        words,
        hpt,
        tlb,
        mmu,
        guest: CountingMemory::new(size as usize),
    }
}

fn rig() -> Rig {
    rig_at(HOST_BASE, SIZE, HPT_BASE, ORDER)
}

impl Rig {
    fn snapshot(&self) -> Vec<u64> {
        self.words.borrow().clone()
    }
    fn events(&self) -> Vec<Event> {
        self.log.borrow_mut().drain(..).collect()
    }
    fn enter(&mut self, flags: u64, ptex: u64, v: u64, r: u64) -> Result<usize, HptError> {
        self.hpt
            .enter(&mut self.tlb, &mut self.guest, flags, ptex, v, r)
    }
    /// Maps `offset` of `seg` to guest-real `gra` as Linux would and returns the slot.
    fn map(&mut self, seg: &Segment, offset: u64, gra: u64, secondary: bool) -> usize {
        let v = encode_v(seg, offset, secondary);
        let r = encode_r(seg.page, gra);
        let group = group_ptex(seg, offset, GROUPS, secondary);
        self.enter(0, group, v, r).expect("H_ENTER")
    }
    fn assert_refused_without_change(
        &mut self,
        what: &str,
        result: Result<usize, HptError>,
        expected: HptError,
        before: &[u64],
        writes: usize,
    ) {
        assert_eq!(result, Err(expected), "{what}");
        assert_eq!(self.snapshot(), before, "{what}: the HPT changed");
        assert_eq!(
            self.events(),
            vec![],
            "{what}: stores or barriers were issued"
        );
        assert_eq!(
            self.guest.writes, writes,
            "{what}: guest memory was written"
        );
    }
}

fn seg256(vsid: u64, page: PageSize) -> Segment {
    Segment { b: 0, vsid, page }
}

fn seg1t(vsid: u64, page: PageSize) -> Segment {
    Segment { b: 1, vsid, page }
}

// ---- Set-up and VRMA ------------------------------------------------------------------------

#[test]
fn setup_clears_the_table_and_vrma_maps_all_guest_real_memory_and_nothing_else() {
    let rig = rig();
    let audit = rig.hpt.audit();
    assert!(audit.is_clean(), "{:?}", audit.violations);
    assert_eq!(audit.vrma_entries, 2);
    assert_eq!(audit.guest_entries, 0);
    // The CPU model (independent of the encoder) finds guest real memory through VRMA.
    for ra in [0u64, 0x1234, 0xff_ffff, 0x100_0000, 0x1ab_cdef, SIZE - 1] {
        assert_eq!(
            rig.mmu.translate_real(ra),
            Some(HOST_BASE + ra),
            "ra {ra:#x}"
        );
    }
    for ra in [SIZE, SIZE + 0x1000, 0x4000_0000, 1 << 39] {
        assert_eq!(
            rig.mmu.translate_real(ra),
            None,
            "ra {ra:#x} must fault (HDSI)"
        );
    }
    assert_eq!(rig.hpt.sdr1(), HPT_BASE);
    assert_eq!(rig.hpt.entries(), 1 << 14);
}

#[test]
fn setup_writes_each_vrma_entry_second_doubleword_first() {
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let mem = FakeHptMemory::new(HPT_BASE, ORDER, log.clone());
    let mut tlb = RecordingTlb::new(log.clone());
    let map = GuestRealMap::new(HOST_BASE, SIZE).unwrap();
    Hpt::new(mem, ORDER, Lpid::new(1).unwrap(), map, &mut tlb).unwrap();
    let events = log.borrow().clone();
    let clears = (1usize << ORDER) / 8;
    assert!(events[..clears]
        .iter()
        .all(|e| matches!(e, Event::Store { value: 0, .. })));
    let p0 = vrma_ptex(0, GROUPS);
    let p1 = vrma_ptex(1, GROUPS);
    let e0 = vrma_hpte(0, HOST_BASE);
    let e1 = vrma_hpte(1, HOST_BASE + (16 << 20));
    assert_eq!(
        events[clears..],
        [
            Event::Store {
                index: 2 * p0 + 1,
                value: e0.r
            },
            Event::Eieio,
            Event::Store {
                index: 2 * p0,
                value: e0.v
            },
            Event::Store {
                index: 2 * p1 + 1,
                value: e1.r
            },
            Event::Eieio,
            Event::Store {
                index: 2 * p1,
                value: e1.v
            },
            Event::Ptesync,
        ]
    );
}

#[test]
fn hptes_are_big_endian_in_memory() {
    let rig = rig();
    let p0 = vrma_ptex(0, GROUPS);
    let raw = rig.words.borrow()[2 * p0];
    // The first byte in memory of doubleword 0 is the most significant: B = 01 -> 0x40.
    assert_eq!(raw.to_ne_bytes()[0], 0x40);
    assert_eq!(
        u64::from_be_bytes(raw.to_ne_bytes()),
        vrma_hpte(0, HOST_BASE).v
    );
}

#[test]
fn setup_refuses_tables_the_guest_could_reach_or_the_cpu_could_not_use() {
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let mut tlb = RecordingTlb::new(log.clone());
    let lpid = Lpid::new(1).unwrap();
    let map = GuestRealMap::new(HOST_BASE, SIZE).unwrap();
    let cases = [
        (
            HOST_BASE + (1 << 20),
            ORDER,
            HptSetupError::TableInsidePartition,
        ),
        (
            HOST_BASE + SIZE - (1 << ORDER),
            ORDER,
            HptSetupError::TableInsidePartition,
        ),
        (HPT_BASE + 0x1000, ORDER, HptSetupError::MisalignedTable),
        (HPT_BASE, 17, HptSetupError::OrderOutOfRange),
    ];
    for (base, order, expected) in cases {
        let mem = FakeHptMemory::new(base, order.max(ORDER), log.clone());
        assert_eq!(
            Hpt::new(mem, order, lpid, map, &mut tlb).err(),
            Some(expected),
            "base {base:#x} order {order}"
        );
    }
    // 2^18 bytes of memory presented as a 2^19 table.
    let mem = FakeHptMemory::new(HPT_BASE, ORDER, log.clone());
    assert_eq!(
        Hpt::new(mem, ORDER + 1, lpid, map, &mut tlb).err(),
        Some(HptSetupError::SizeMismatch)
    );
    // 2048 PTEGs hold the VRMA of 32 GiB at most.
    let big = GuestRealMap::new(1 << 36, 64 << 30).unwrap();
    let mem = FakeHptMemory::new(HPT_BASE, ORDER, log.clone());
    assert_eq!(
        Hpt::new(mem, ORDER, lpid, big, &mut tlb).err(),
        Some(HptSetupError::TooSmallForVrma)
    );
    // Every refusal came before the first store.
    assert!(log.borrow().is_empty());
}

// ---- H_ENTER ----------------------------------------------------------------------------------

#[test]
fn enter_maps_each_page_size_and_segment_to_the_partitions_host_memory() {
    let mut rig = rig();
    let cases = [
        (
            seg256(0x1234, PageSize::Page4K),
            0x0345_6000u64,
            0x0012_3000u64,
            false,
        ),
        (
            seg256(0x1234, PageSize::Page4K),
            0x0345_7000,
            0x0012_4000,
            true,
        ),
        (
            seg256(0x5_5555, PageSize::Page64K),
            0x0abc_0000,
            0x0040_0000,
            false,
        ),
        (
            seg1t(0x77_7777, PageSize::Page64K),
            0x12_3456_0000,
            0x01ff_0000,
            true,
        ),
        (
            seg256(0x999, PageSize::Page16M),
            0x0500_0000,
            0x0100_0000,
            false,
        ),
        (seg1t(0x42, PageSize::Page16M), 0xab_0000_0000, 0, true),
    ];
    for (seg, offset, gra, secondary) in cases {
        let slot = rig.map(&seg, offset, gra, secondary);
        let walk = rig
            .mmu
            .translate(&seg, offset + 0x123)
            .expect("the CPU finds it");
        assert_eq!(walk.ptex, slot);
        assert_eq!(walk.real, HOST_BASE + gra + 0x123, "{seg:?}");
    }
    let audit = rig.hpt.audit();
    assert!(audit.is_clean(), "{:?}", audit.violations);
    assert_eq!(audit.guest_entries, 6);
}

#[test]
fn enter_stores_the_second_doubleword_then_eieio_then_the_valid_first_then_ptesync() {
    let mut rig = rig();
    let seg = seg256(0x10, PageSize::Page4K);
    let v = encode_v(&seg, 0x5000, false);
    let r = encode_r(PageSize::Page4K, 0x7000);
    let group = group_ptex(&seg, 0x5000, GROUPS, false);
    let slot = rig.enter(0, group + 3, v, r).unwrap();
    assert_eq!(
        slot as u64, group,
        "non-exact takes the PTEG's first free slot"
    );
    assert_eq!(
        rig.events(),
        vec![
            Event::Store {
                index: 2 * slot + 1,
                value: (r & !R_RPN) | (HOST_BASE + 0x7000)
            },
            Event::Eieio,
            Event::Store {
                index: 2 * slot,
                value: v
            },
            Event::Ptesync,
        ]
    );
}

#[test]
fn enter_exact_uses_that_slot_or_fails_with_pteg_full() {
    let mut rig = rig();
    let seg = seg256(0x10, PageSize::Page4K);
    let v = encode_v(&seg, 0x5000, false);
    let r = encode_r(PageSize::Page4K, 0x7000);
    let group = group_ptex(&seg, 0x5000, GROUPS, false);
    assert_eq!(rig.enter(H_EXACT, group + 5, v, r), Ok(group as usize + 5));
    let before = rig.snapshot();
    rig.events();
    let result = rig.enter(H_EXACT, group + 5, v, r);
    rig.assert_refused_without_change("exact slot taken", result, HptError::PtegFull, &before, 0);
}

#[test]
fn enter_never_takes_or_reveals_the_vrma_slot() {
    let mut rig = rig();
    let vrma = vrma_ptex(0, GROUPS) as u64;
    let group = vrma & !7;
    let v = encode_v(&seg256(0x3, PageSize::Page4K), 0, false);
    let r = encode_r(PageSize::Page4K, 0x1000);
    for i in 0..7 {
        assert_eq!(rig.enter(0, group, v, r), Ok((group + i) as usize));
    }
    let before = rig.snapshot();
    rig.events();
    let result = rig.enter(0, group, v, r);
    rig.assert_refused_without_change(
        "PTEG full but for VRMA",
        result,
        HptError::PtegFull,
        &before,
        0,
    );
    let result = rig.enter(H_EXACT, vrma, v, r);
    rig.assert_refused_without_change("exact VRMA slot", result, HptError::PtegFull, &before, 0);
    let read = rig.hpt.read(0, vrma).unwrap();
    assert_eq!(
        read.entries[0],
        Hpte::default(),
        "the VRMA entry reads as empty"
    );
}

#[test]
fn enter_refuses_every_hostile_entry_and_changes_nothing() {
    let mut rig = rig();
    let seg = seg256(0x10, PageSize::Page4K);
    let v4k = encode_v(&seg, 0x5000, false);
    let r4k = encode_r(PageSize::Page4K, 0x7000);
    let v64k = encode_v(&seg256(0x10, PageSize::Page64K), 0x5_0000, false);
    let v16m = encode_v(&seg256(0x10, PageSize::Page16M), 0x500_0000, false);
    let other_partition_host = 0x2000_0000u64;
    let vrma_like = 0x4001_ffff_ff00_0000u64 | 1 | 4;
    let cases: Vec<(&str, u64, u64, u64, u64, HptError)> = vec![
        (
            "4K page just past the end",
            0,
            0,
            v4k,
            encode_r(PageSize::Page4K, SIZE),
            HptError::OutsidePartition,
        ),
        (
            "64K page past the end",
            0,
            0,
            v64k,
            encode_r(PageSize::Page64K, SIZE),
            HptError::OutsidePartition,
        ),
        (
            "16M page past the end",
            0,
            0,
            v16m,
            encode_r(PageSize::Page16M, SIZE),
            HptError::OutsidePartition,
        ),
        (
            "the host address of our own memory",
            0,
            0,
            v4k,
            encode_r(PageSize::Page4K, HOST_BASE),
            HptError::OutsidePartition,
        ),
        (
            "another partition's host memory",
            0,
            0,
            v4k,
            encode_r(PageSize::Page4K, other_partition_host),
            HptError::OutsidePartition,
        ),
        (
            "the hypervisor's HPT",
            0,
            0,
            v4k,
            encode_r(PageSize::Page4K, HPT_BASE),
            HptError::OutsidePartition,
        ),
        (
            "the top of the real address space",
            0,
            0,
            v4k,
            R_RPN | 0x12,
            HptError::OutsidePartition,
        ),
        (
            "MPSS 64K in 4K (LP 0x07)",
            0,
            0,
            v4k | V_LARGE,
            0x7000 | 0x12,
            HptError::BadPageSize,
        ),
        (
            "MPSS 16M in 64K (LP 0x08)",
            0,
            0,
            v4k | V_LARGE,
            0x8000 | 0x12,
            HptError::BadPageSize,
        ),
        (
            "MPSS 16M in 4K (LP 0x38)",
            0,
            0,
            v4k | V_LARGE,
            0x3_8000 | 0x12,
            HptError::BadPageSize,
        ),
        (
            "16G (LP 0x03)",
            0,
            0,
            v4k | V_LARGE,
            0x3000 | 0x12,
            HptError::BadPageSize,
        ),
        (
            "LP 0x10",
            0,
            0,
            v4k | V_LARGE,
            0x1_0000 | 0x12,
            HptError::BadPageSize,
        ),
        (
            "segment size 0b10",
            0,
            0,
            v4k | (2 << 62),
            r4k,
            HptError::BadSegmentSize,
        ),
        (
            "segment size 0b11",
            0,
            0,
            v4k | (3 << 62),
            r4k,
            HptError::BadSegmentSize,
        ),
        (
            "16M with AVPN bit 2^23 set",
            0,
            0,
            v16m | 0x80,
            encode_r(PageSize::Page16M, 0),
            HptError::BadAvpn,
        ),
        (
            "16M with RPN bits inside the page",
            0,
            0,
            v16m,
            encode_r(PageSize::Page16M, 0) | 0x10_0000,
            HptError::BadRealPageBits,
        ),
        (
            "the VRMA VSID",
            0,
            0,
            vrma_like,
            encode_r(PageSize::Page16M, 0),
            HptError::ReservedVsid,
        ),
        (
            "cache-inhibited RAM",
            0,
            0,
            v4k,
            r4k | 0x20,
            HptError::BadStorageAttributes,
        ),
        (
            "guarded RAM",
            0,
            0,
            v4k,
            r4k | 0x08,
            HptError::BadStorageAttributes,
        ),
        (
            "write-through RAM",
            0,
            0,
            v4k,
            r4k | 0x40,
            HptError::BadStorageAttributes,
        ),
        (
            "not coherent (WIMG 0)",
            0,
            0,
            v4k,
            r4k & !0x10,
            HptError::BadStorageAttributes,
        ),
        (
            "slot past the table",
            0,
            1 << 14,
            v4k,
            r4k,
            HptError::SlotOutOfRange,
        ),
        (
            "slot u64::MAX",
            0,
            u64::MAX,
            v4k,
            r4k,
            HptError::SlotOutOfRange,
        ),
        (
            "zero page of a page outside",
            H_ZERO_PAGE,
            0,
            v4k,
            encode_r(PageSize::Page4K, SIZE),
            HptError::OutsidePartition,
        ),
    ];
    let before = rig.snapshot();
    for (what, flags, ptex, v, r, expected) in cases {
        let result = rig.enter(flags, ptex, v, r);
        rig.assert_refused_without_change(what, result, expected, &before, 0);
    }
    // The last byte of the partition is mappable, for every page size.
    assert!(rig
        .enter(0, 0, v4k, encode_r(PageSize::Page4K, SIZE - 0x1000))
        .is_ok());
    assert!(rig
        .enter(0, 0, v64k, encode_r(PageSize::Page64K, SIZE - 0x1_0000))
        .is_ok());
    assert!(rig
        .enter(0, 0, v16m, encode_r(PageSize::Page16M, SIZE - 0x100_0000))
        .is_ok());
    assert!(rig.hpt.audit().is_clean());
}

#[test]
fn enter_keeps_the_guests_software_bits_but_not_the_hypervisors() {
    let mut rig = rig();
    let v = encode_v(&seg256(0x10, PageSize::Page4K), 0x5000, false) | V_BOLTED | 0x08 | 0x60;
    let r = encode_r(PageSize::Page4K, 0x7000) | R_RESERVED;
    let slot = rig.enter(0, 0, v, r).unwrap();
    let stored = rig.hpt.raw_entry(slot).unwrap();
    assert_eq!(stored.v, v & !0x60);
    assert_eq!(stored.r & R_RESERVED, 0);
    assert_eq!(stored.r & R_RPN, HOST_BASE + 0x7000);
    // A V bit left clear by the guest is set: an H_ENTER always makes a valid entry (KVM).
    let slot = rig.enter(0, 0, v & !1, r).unwrap();
    assert_eq!(rig.hpt.raw_entry(slot).unwrap().v & 1, 1);
}

#[test]
fn enter_zero_page_zeroes_exactly_that_page_before_the_entry_is_valid() {
    let mut rig = rig();
    rig.guest.inner = tcefw::hv::memory::SliceGuestMemory::new(vec![0x5au8; SIZE as usize]);
    let v = encode_v(&seg256(0x10, PageSize::Page64K), 0x5_0000, false);
    let r = encode_r(PageSize::Page64K, 0x12_0000);
    rig.enter(H_ZERO_PAGE, 0, v, r).unwrap();
    let bytes = rig.guest.bytes();
    assert!(bytes[0x12_0000..0x13_0000].iter().all(|&b| b == 0));
    assert_eq!(bytes[0x11_ffff], 0x5a);
    assert_eq!(bytes[0x13_0000], 0x5a);
    // A full PTEG refuses the call before anything is zeroed.
    let v4 = encode_v(&seg256(0x10, PageSize::Page4K), 0x5000, false);
    for _ in 0..7 {
        rig.enter(0, 0, v4, encode_r(PageSize::Page4K, 0x1000))
            .unwrap();
    }
    let before = rig.snapshot();
    rig.events();
    let writes = rig.guest.writes;
    let result = rig.enter(H_ZERO_PAGE, 0, v4, encode_r(PageSize::Page4K, 0x2000));
    rig.assert_refused_without_change(
        "zero page into a full PTEG",
        result,
        HptError::PtegFull,
        &before,
        writes,
    );
}

// ---- H_REMOVE ---------------------------------------------------------------------------------

#[test]
fn remove_follows_the_delete_sequence_and_returns_the_guest_view_with_final_rc() {
    let mut rig = rig();
    rig.tlb.set_rc_on_tlbie = R_CHANGED | R_REFERENCED;
    let seg = seg256(0x4321, PageSize::Page4K);
    let slot = rig.map(&seg, 0x0123_4000, 0x0055_5000, false);
    let entry = rig.hpt.raw_entry(slot).unwrap();
    rig.mmu.translate(&seg, 0x0123_4000).unwrap();
    rig.events();
    let old = rig.hpt.remove(&mut rig.tlb, 0, slot as u64, 0).unwrap();
    assert_eq!(old.v, entry.v);
    assert_eq!(old.r & R_RPN, 0x0055_5000, "guest-real RPN, not host");
    assert_eq!(
        old.r & (R_CHANGED | R_REFERENCED),
        R_CHANGED | R_REFERENCED,
        "R/C read after the invalidation completed"
    );
    let rb = tlbie_rb(entry.v, entry.r, slot, PageSize::Page4K);
    assert_eq!(
        rig.events(),
        vec![
            Event::Store {
                index: 2 * slot,
                value: 0
            },
            Event::Ptesync,
            Event::Tlbie { rb, lpid: LPID },
            Event::Eieio,
            Event::Tlbsync,
            Event::Ptesync,
            Event::Store {
                index: 2 * slot + 1,
                value: 0
            },
        ]
    );
    assert!(
        !rig.mmu.cached(&seg, 0x0123_4000),
        "tlbie left the translation cached"
    );
    assert_eq!(rig.mmu.translate(&seg, 0x0123_4000), None);
    assert!(rig.hpt.audit().is_clean());
}

#[test]
fn remove_tests_avpn_and_andcond_as_linux_uses_them() {
    let mut rig = rig();
    let seg = seg256(0x4321, PageSize::Page4K);
    let v = encode_v(&seg, 0x1000, false);
    let r = encode_r(PageSize::Page4K, 0x2000);
    let bolted = rig.enter(0, 0, v | V_BOLTED, r).unwrap();
    let plain = rig.enter(0, 0, v, r).unwrap();
    let before = rig.snapshot();
    rig.events();
    // Linux's pSeries_lpar_hpte_remove: H_ANDCOND with 0x10 never removes a bolted entry.
    assert_eq!(
        rig.hpt
            .remove(&mut rig.tlb, H_ANDCOND, bolted as u64, V_BOLTED),
        Err(HptError::NotFound)
    );
    // pSeries_lpar_hpte_invalidate: H_AVPN must match (v & !0x7f).
    assert_eq!(
        rig.hpt
            .remove(&mut rig.tlb, H_AVPN, plain as u64, (v & !0x7f) ^ 0x80),
        Err(HptError::NotFound)
    );
    assert_eq!(rig.snapshot(), before);
    assert_eq!(rig.events(), vec![]);
    assert!(rig
        .hpt
        .remove(&mut rig.tlb, H_ANDCOND, plain as u64, V_BOLTED)
        .is_ok());
    assert!(rig
        .hpt
        .remove(&mut rig.tlb, H_AVPN, bolted as u64, v & !0x7f)
        .is_ok());
    assert_eq!(rig.hpt.audit().guest_entries, 0);
}

#[test]
fn remove_refuses_free_slots_hypervisor_entries_and_bad_indexes() {
    let mut rig = rig();
    let before = rig.snapshot();
    let vrma = vrma_ptex(1, GROUPS) as u64;
    for (ptex, flags, expected) in [
        (3u64, 0u64, HptError::NotFound),
        (vrma, 0, HptError::NotFound),
        (vrma, H_AVPN, HptError::NotFound),
        (1 << 14, 0, HptError::SlotOutOfRange),
        (u64::MAX, 0, HptError::SlotOutOfRange),
    ] {
        assert_eq!(rig.hpt.remove(&mut rig.tlb, flags, ptex, 0), Err(expected));
        assert_eq!(rig.snapshot(), before);
        assert_eq!(rig.events(), vec![]);
    }
    assert!(rig.hpt.audit().is_clean());
}

#[test]
fn tlbie_rb_drops_the_cached_translation_for_every_size_segment_and_hash() {
    let mut rig = rig();
    let mut rng = Rng(0x7c3e_f00d);
    for round in 0..2000 {
        let page = rng.pick(&SUPPORTED_PAGE_SIZES);
        let b = rng.below(2);
        let vsid = if b == 1 {
            rng.below(1 << 24)
        } else {
            rng.below(1 << 36)
        };
        let seg = Segment { b, vsid, page };
        let pages_in_segment = 1u64 << (seg.shift() - page.shift());
        let offset = rng.below(pages_in_segment) << page.shift();
        let gra = rng.below(SIZE / page.bytes()) * page.bytes();
        let secondary = rng.chance(40);
        let v = encode_v(&seg, offset, secondary);
        let r = encode_r(page, gra);
        let Ok(slot) = rig.enter(0, group_ptex(&seg, offset, GROUPS, secondary), v, r) else {
            continue; // a full PTEG
        };
        let walk = rig.mmu.translate(&seg, offset);
        assert_eq!(walk.map(|w| w.real), Some(HOST_BASE + gra), "round {round}");
        assert!(rig.mmu.cached(&seg, offset));
        rig.hpt
            .remove(&mut rig.tlb, H_AVPN, slot as u64, v & !0x7f)
            .unwrap();
        assert!(
            !rig.mmu.cached(&seg, offset),
            "round {round}: {seg:?} offset {offset:#x} secondary {secondary}: stale TLB entry"
        );
    }
    assert!(rig.hpt.audit().is_clean());
}

// ---- H_READ -----------------------------------------------------------------------------------

#[test]
fn read_returns_guest_views_and_read4_the_aligned_four() {
    let mut rig = rig();
    let seg = seg256(0x4321, PageSize::Page64K);
    let v = encode_v(&seg, 0x1_0000, false);
    let r = encode_r(PageSize::Page64K, 0x33_0000);
    let base = 0x40u64;
    rig.enter(H_EXACT, base + 1, v, r).unwrap();
    rig.enter(H_EXACT, base + 3, v | V_BOLTED, r).unwrap();
    rig.events();
    let one = rig.hpt.read(0, base + 1).unwrap();
    assert_eq!(one.count, 1);
    assert_eq!(one.entries[0], Hpte { v, r });
    let four = rig.hpt.read(H_READ_4, base + 2).unwrap();
    assert_eq!(four.count, 4);
    assert_eq!(
        four.entries,
        [
            Hpte::default(),
            Hpte { v, r },
            Hpte::default(),
            Hpte { v: v | V_BOLTED, r }
        ]
    );
    assert_eq!(rig.hpt.read(0, 1 << 14), Err(HptError::SlotOutOfRange));
    // VRMA entries hide inside a READ_4 too.
    let vrma = vrma_ptex(0, GROUPS) as u64;
    let group = rig.hpt.read(H_READ_4, vrma).unwrap();
    assert!(group.entries.iter().all(|e| *e == Hpte::default()));
    assert_eq!(rig.events(), vec![], "H_READ stores nothing");
}

// ---- H_PROTECT --------------------------------------------------------------------------------

#[test]
fn protect_changes_only_protection_with_the_modify_sequence_and_keeps_rc() {
    let mut rig = rig();
    rig.tlb.set_rc_on_tlbie = R_CHANGED;
    let seg = seg1t(0x1_2345, PageSize::Page16M);
    let slot = rig.map(&seg, 0x300_0000, 0x100_0000, true);
    let entry = rig.hpt.raw_entry(slot).unwrap();
    rig.mmu.translate(&seg, 0x300_0000).unwrap();
    rig.events();
    // Every flag bit set: only PP0/PP/N/key may change; with H_AVPN matching.
    let flags = u64::MAX;
    rig.hpt
        .protect(&mut rig.tlb, flags, slot as u64, entry.v & !0x7f)
        .unwrap();
    let after = rig.hpt.raw_entry(slot).unwrap();
    assert_eq!(after.v, entry.v);
    assert_eq!(
        after.r & !R_PROTECTION & !R_CHANGED,
        entry.r & !R_PROTECTION
    );
    assert_eq!(after.r & R_PROTECTION, R_PROTECTION);
    assert_eq!(
        after.r & R_CHANGED,
        R_CHANGED,
        "R/C set by the CPU during the invalidation is kept"
    );
    let rb = tlbie_rb(entry.v, entry.r, slot, PageSize::Page16M);
    let new_r = after.r;
    assert_eq!(
        rig.events(),
        vec![
            Event::Store {
                index: 2 * slot,
                value: entry.v & !1
            },
            Event::Ptesync,
            Event::Tlbie { rb, lpid: LPID },
            Event::Eieio,
            Event::Tlbsync,
            Event::Ptesync,
            Event::Store {
                index: 2 * slot + 1,
                value: new_r
            },
            Event::Eieio,
            Event::Store {
                index: 2 * slot,
                value: entry.v
            },
            Event::Ptesync,
        ]
    );
    assert!(!rig.mmu.cached(&seg, 0x300_0000));
    // Unchanged protection: nothing is stored or invalidated.
    rig.hpt
        .protect(&mut rig.tlb, flags & !H_AVPN, slot as u64, 0)
        .unwrap();
    assert_eq!(rig.events(), vec![]);
    assert!(rig.hpt.audit().is_clean());
}

#[test]
fn protect_refuses_what_is_not_the_guests_or_does_not_match() {
    let mut rig = rig();
    let v = encode_v(&seg256(0x10, PageSize::Page4K), 0x5000, false);
    let slot = rig
        .enter(0, 0, v, encode_r(PageSize::Page4K, 0x7000))
        .unwrap() as u64;
    let before = rig.snapshot();
    rig.events();
    for (flags, ptex, avpn, expected) in [
        (H_AVPN | 3, slot, (v & !0x7f) ^ 0x1000, HptError::NotFound),
        (3, slot + 1, 0, HptError::NotFound),
        (3, vrma_ptex(0, GROUPS) as u64, 0, HptError::NotFound),
        (3, 1 << 14, 0, HptError::SlotOutOfRange),
    ] {
        assert_eq!(
            rig.hpt.protect(&mut rig.tlb, flags, ptex, avpn),
            Err(expected)
        );
        assert_eq!(rig.snapshot(), before);
        assert_eq!(rig.events(), vec![]);
    }
}

// ---- H_BULK_REMOVE ----------------------------------------------------------------------------

#[test]
fn bulk_remove_answers_each_request_and_batches_the_invalidations() {
    let mut rig = rig();
    rig.tlb.set_rc_on_tlbie = R_REFERENCED;
    let seg = seg256(0x777, PageSize::Page4K);
    let mut slots = vec![];
    let mut vs = vec![];
    for i in 0..3u64 {
        let offset = 0x10_0000 + i * 0x1000;
        slots.push(rig.map(&seg, offset, 0x20_0000 + i * 0x1000, false));
        vs.push(encode_v(&seg, offset, false));
        rig.mmu.translate(&seg, offset).unwrap();
    }
    let entries: Vec<Hpte> = slots
        .iter()
        .map(|&s| rig.hpt.raw_entry(s).unwrap())
        .collect();
    rig.events();
    let args = [
        bulk_request(2, slots[0] as u64), // AVPN, matches
        vs[0] & !0x7f,
        bulk_request(1, slots[1] as u64), // ANDCOND 0x10, not bolted: removed
        V_BOLTED,
        bulk_request(0, 9), // absolute, free slot: not found
        0,
        bulk_request(0, slots[2] as u64), // absolute
        0,
    ];
    let outcome = rig.hpt.bulk_remove(&mut rig.tlb, &args);
    assert_eq!(outcome.result, Ok(()));
    let response = |code: u64, rc: u64, request: u64| {
        (2u64 << 62) | (code << 60) | (rc << 58) | (request & 0x03ff_ffff_ffff_ffff)
    };
    assert_eq!(outcome.out[0], response(0, 0b10, args[0]));
    assert_eq!(outcome.out[2], response(0, 0b10, args[2]));
    assert_eq!(outcome.out[4], response(1, 0, args[4]));
    assert_eq!(outcome.out[6], response(0, 0b10, args[6]));
    for i in [1, 3, 5, 7] {
        assert_eq!(outcome.out[i], args[i], "operands are left as given");
    }
    let rbs: Vec<Event> = slots
        .iter()
        .zip(&entries)
        .map(|(&s, e)| Event::Tlbie {
            rb: tlbie_rb(e.v, e.r, s, PageSize::Page4K),
            lpid: LPID,
        })
        .collect();
    let mut expected: Vec<Event> = slots
        .iter()
        .map(|&s| Event::Store {
            index: 2 * s,
            value: 0,
        })
        .collect();
    expected.push(Event::Ptesync);
    expected.extend(rbs);
    expected.extend([Event::Eieio, Event::Tlbsync, Event::Ptesync]);
    expected.extend(slots.iter().map(|&s| Event::Store {
        index: 2 * s + 1,
        value: 0,
    }));
    assert_eq!(rig.events(), expected);
    for i in 0..3u64 {
        assert!(!rig.mmu.cached(&seg, 0x10_0000 + i * 0x1000));
    }
    assert!(rig.hpt.audit().is_clean());
    assert_eq!(rig.hpt.audit().guest_entries, 0);
}

#[test]
fn bulk_remove_stops_at_end_and_finds_a_repeated_index_once() {
    let mut rig = rig();
    let seg = seg256(0x777, PageSize::Page4K);
    let slot = rig.map(&seg, 0x1000, 0x2000, false) as u64;
    rig.events();
    let args = [
        bulk_request(0, slot),
        0,
        bulk_request(0, slot),
        0,
        BULK_END,
        0x1234,
        bulk_request(0, 1 << 20), // after END: never looked at
        0,
    ];
    let outcome = rig.hpt.bulk_remove(&mut rig.tlb, &args);
    assert_eq!(outcome.result, Ok(()));
    assert_eq!(outcome.out[0] >> 60, 0b1000, "response, success");
    assert_eq!(outcome.out[2] >> 60, 0b1001, "response, not found");
    assert_eq!(outcome.out[4..], args[4..]);
    let tlbies = rig
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Tlbie { .. }))
        .count();
    assert_eq!(tlbies, 1);
}

#[test]
fn bulk_remove_with_a_malformed_specifier_removes_nothing() {
    let mut rig = rig();
    let seg = seg256(0x777, PageSize::Page4K);
    let slot = rig.map(&seg, 0x1000, 0x2000, false) as u64;
    rig.events();
    let before = rig.snapshot();
    let bad = [
        slot,                     // type 0b00
        (2u64 << 62) | slot,      // a response as a request
        bulk_request(3, slot),    // flags 0b11
        bulk_request(0, 1 << 14), // PTE index past the table
        bulk_request(0, TS_PTEX), // the largest index
    ];
    for ts in bad {
        let args = [bulk_request(0, slot), 0, ts, 0, BULK_END, 0, 0, 0];
        let outcome = rig.hpt.bulk_remove(&mut rig.tlb, &args);
        assert_eq!(outcome.result, Err(HptError::BadSpecifier), "ts {ts:#x}");
        assert_eq!(
            outcome.out[0], args[0],
            "the valid request before it was not processed"
        );
        assert_eq!(outcome.out[2] >> 60, 0b1010, "marked: response, parameter");
        assert_eq!(rig.snapshot(), before);
        assert_eq!(rig.events(), vec![]);
    }
}

// ---- Isolation and the audit ------------------------------------------------------------------

#[test]
fn two_partitions_never_map_each_others_memory() {
    let mut a = rig_at(0x1000_0000, SIZE, 0x8000_0000, ORDER);
    let mut b = rig_at(0x1000_0000 + SIZE, SIZE, 0x8004_0000, ORDER);
    let mut rng = Rng(99);
    for _ in 0..3000 {
        let page = rng.pick(&SUPPORTED_PAGE_SIZES);
        let seg = seg256(rng.below(1 << 30), page);
        let offset = rng.below(1 << (28 - page.shift())) << page.shift();
        // Guest RPNs anywhere: inside, at the other's base, past the end, wild.
        let gra = match rng.below(4) {
            0 => rng.below(SIZE / page.bytes()) * page.bytes(),
            1 => 0x1000_0000 + SIZE,
            2 => SIZE + rng.below(1 << 30) * page.bytes(),
            _ => rng.next_u64() & page.rpn_mask(),
        };
        let v = encode_v(&seg, offset, false);
        let r = encode_r(page, gra);
        let ptex = rng.below(1 << 14);
        let _ = a.enter(0, ptex, v, r);
        let _ = b.enter(0, ptex, v, r);
    }
    for (rig, base) in [(&a, 0x1000_0000u64), (&b, 0x1000_0000 + SIZE)] {
        let audit = rig.hpt.audit();
        assert!(audit.is_clean(), "{:?}", audit.violations);
        assert!(audit.guest_entries > 100);
        for ptex in 0..rig.hpt.entries() {
            let e = rig.hpt.raw_entry(ptex).unwrap();
            if e.v & 1 == 1 {
                let host = e.r & R_RPN & !0xfff;
                assert!(host >= base && host < base + SIZE, "{host:#x}");
            }
        }
    }
}

#[test]
fn audit_finds_planted_violations() {
    let mut rig = rig();
    let v = encode_v(&seg256(0x10, PageSize::Page4K), 0x5000, false);
    let slot = rig
        .enter(0, 0, v, encode_r(PageSize::Page4K, 0x7000))
        .unwrap();
    let plant = |rig: &Rig, index: usize, value: u64| rig.words.borrow_mut()[index] = value.to_be();
    let clean = rig.snapshot();
    let cases: Vec<(usize, u64, HptViolation)> = vec![
        (
            2 * slot + 1,
            (HOST_BASE + SIZE) | 0x10,
            HptViolation::OutsidePartition {
                host: HOST_BASE + SIZE,
            },
        ),
        (
            2 * slot + 1,
            (HOST_BASE - 0x1000) | 0x10,
            HptViolation::OutsidePartition {
                host: HOST_BASE - 0x1000,
            },
        ),
        (
            2 * slot + 1,
            (HOST_BASE + 0x7000) | 0x30,
            HptViolation::BadStorageAttributes,
        ),
        (2 * slot, v | V_LARGE, HptViolation::UnsupportedPageSize),
        (2 * slot, v | 0x40, HptViolation::ReservedBits),
        (2 * 9 + 1, 0x1234, HptViolation::StaleFreeSlot),
        (
            2 * vrma_ptex(0, GROUPS) + 1,
            vrma_hpte(0, 0x2000_0000).r,
            HptViolation::VrmaMismatch,
        ),
    ];
    for (index, value, expected) in cases {
        *rig.words.borrow_mut() = clean.clone();
        plant(&rig, index, value);
        let audit = rig.hpt.audit();
        assert!(
            audit.violations.iter().any(|&(_, k)| k == expected),
            "{expected:?} not found in {:?}",
            audit.violations
        );
    }
    *rig.words.borrow_mut() = clean.clone();
    plant(&rig, 2 * vrma_ptex(1, GROUPS), 0);
    assert!(rig
        .hpt
        .audit()
        .violations
        .iter()
        .any(|&(_, k)| k == HptViolation::VrmaMissing));
    *rig.words.borrow_mut() = clean;
    assert!(rig.hpt.audit().is_clean());
}
