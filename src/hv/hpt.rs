//! The per-partition hashed page table (HPT) and the semantics of the PAPR HPT hypercalls:
//! H_ENTER, H_REMOVE, H_READ (one entry or four), H_PROTECT and H_BULK_REMOVE.
//!
//! The table is the one the CPU walks for the partition (SDR1 names it): HPTEs are 16 bytes,
//! big-endian, 8 to a PTEG, and hold HOST real page numbers. The guest hands us and reads
//! back guest-real page numbers; every one is checked against the partition's memory with
//! the page size decoded from the HPTE's L and LP bits, translated on the way in and back on
//! the way out. The hypervisor's own entries — the bolted VRMA entries that map guest real
//! mode (VSID 0x1ffffff, 1 TiB segment, 16 MiB pages, slot 7 of their PTEG, as KVM places
//! them) — are invisible to the guest: they read as empty, cannot be removed or changed, and
//! their slots are never handed out.
//!
//! Every call checks everything before it stores anything, so a refused call changes nothing.
//! Updates follow the ISA's sequences (Book III-S 5.10.1 "Page Table Update Synchronization
//! Requirements"), through [`TlbInvalidate`] so a host fake can record and check them:
//! - add: store the second doubleword; `eieio`; store the first with V=1; `ptesync`;
//! - delete: clear V; `ptesync`; `tlbie` (with the entry's page size encoding and the
//!   partition's LPID); `eieio`; `tlbsync`; `ptesync` — and only then read R and C back;
//! - modify: delete's sequence, then the add sequence with the new second doubleword.
//!
//! Which page sizes exist is one table, [`SUPPORTED_PAGE_SIZES`]: the decoder refuses what it
//! does not list, and [`segment_page_sizes_cells`] builds the guest's
//! `ibm,segment-page-sizes` from it, so the two cannot disagree. No MPSS (mixed page sizes in
//! one segment) and no 16 GiB pages.
//!
//! Concurrency: one `&mut Hpt` per call. The caller serialises a partition's HPT calls with
//! one lock (e.g. `spin::Mutex<Hpt<_>>`); that also serialises its tlbie sequences, as KVM's
//! per-VM tlbie lock does. The CPU may set R and C in valid entries at any time; the code
//! reads them only after an invalidation has completed.
//!
//! Resources: POWER ISA 2.07B Book III-S 5.7.7 (hashed page table, HPTE format, hash
//! functions), 5.7.3.3 (VRMA), 5.9.3.3 (tlbie RB), 5.10.1 (update sequences); LoPAR 14.5.4.1
//! (H_ENTER, H_REMOVE, H_READ, H_PROTECT, H_BULK_REMOVE); Linux
//! arch/powerpc/kvm/book3s_hv_rm_mmu.c (kvmppc_do_h_enter, kvmppc_do_h_remove,
//! kvmppc_h_bulk_remove, kvmppc_h_protect, kvmppc_h_read), book3s_64_mmu_hv.c
//! (kvmppc_map_vrma), asm/kvm_book3s_64.h (compute_tlbie_rb, kvmppc_hpte_page_shifts),
//! platforms/pseries/lpar.c (how Linux calls these); QEMU hw/ppc/spapr_softmmu.c (h_enter,
//! remove_hpte, h_bulk_remove, h_protect, h_read), hw/ppc/spapr.c
//! (spapr_hpt_shift_for_ramsize).

use super::lpid::Lpid;
use super::memory::{GuestMemory, GuestRealMap, HostAddr, PARTITION_GRANULE, REAL_ADDRESS_LIMIT};
use alloc::vec::Vec;

// ---- Geometry -------------------------------------------------------------------------------

/// Bytes of one HPTE.
pub const HPTE_BYTES: u64 = 16;
/// HPTEs in one PTEG.
pub const HPTES_PER_PTEG: usize = 8;
/// The smallest HPT: 256 KiB, 2048 PTEGs (SDR1 HTABSIZE = 0).
pub const MIN_HPT_ORDER: u32 = 18;
/// The largest HPT: HTABSIZE = 28 (ISA 2.07B 5.7.7.1).
pub const MAX_HPT_ORDER: u32 = 46;

/// The HPT size (log2 bytes) for a partition of `ram_bytes`: 1/128 of RAM rounded up to a
/// power of two, clamped to 256 KiB..64 TiB — QEMU's spapr_hpt_shift_for_ramsize, which gives
/// `ibm,pft-size = <0 0x17>` (8 MiB) for 1 GiB.
pub fn hpt_order_for_ram(ram_bytes: u64) -> u32 {
    let ram_order = match ram_bytes {
        0 | 1 => 0,
        n => 64 - (n - 1).leading_zeros(),
    };
    ram_order
        .saturating_sub(7)
        .clamp(MIN_HPT_ORDER, MAX_HPT_ORDER)
}

/// The guest's `ibm,pft-size` for an HPT of `2^order` bytes: `<0 order>`.
pub const fn pft_size_cells(order: u32) -> [u32; 2] {
    [0, order]
}

/// SDR1 for an HPT of `2^order` bytes at host `base`: HTABORG (base, which must be aligned to
/// the table's size) | HTABSIZE (order - 18). ISA 2.07B 5.7.7.1.
pub fn sdr1_value(base: HostAddr, order: u32) -> Result<u64, HptSetupError> {
    if !(MIN_HPT_ORDER..=MAX_HPT_ORDER).contains(&order) {
        return Err(HptSetupError::OrderOutOfRange);
    }
    if base & ((1u64 << order) - 1) != 0 {
        return Err(HptSetupError::MisalignedTable);
    }
    match base.checked_add(1u64 << order) {
        Some(end) if end <= REAL_ADDRESS_LIMIT => Ok(base | u64::from(order - MIN_HPT_ORDER)),
        _ => Err(HptSetupError::TableTooHigh),
    }
}

// ---- HPTE format (ISA 2.07B 5.7.7.2; IBM bit numbers in the comments) -----------------------

/// First doubleword, bit 63: valid.
pub const V_VALID: u64 = 0x1;
/// Bit 62, H: the entry sits in the secondary PTEG of its hash.
pub const V_SECONDARY: u64 = 0x2;
/// Bit 61, L: a large page (size from LP in the second doubleword).
pub const V_LARGE: u64 = 0x4;
/// Bits 57:60, SW: software bits. Linux uses 0x10 (bolted) and 0x08 (lock); they are kept.
pub const V_SOFTWARE: u64 = 0x78;
/// Bit 59 (a SW bit): Linux's and PAPR's "bolted" marker (H_REMOVE with H_ANDCOND 0x10
/// skips bolted entries).
pub const V_BOLTED: u64 = 0x10;
/// Bits 57:58 (SW): reserved to the hypervisor (KVM's HVLOCK and ABSENT); cleared from
/// guest entries, as QEMU's h_enter does.
pub const V_HYPERVISOR_SOFTWARE: u64 = 0x60;
/// Bits 2:56: AVPN, the abbreviated virtual page number (VA bits 0:54 of the 78-bit VA).
pub const V_AVPN: u64 = 0x3fff_ffff_ffff_ff80;
/// Bits 0:1: B, the segment size.
pub const V_SEGMENT_SHIFT: u32 = 62;
/// B = 0b01: 1 TiB segment.
pub const V_SEGMENT_1T: u64 = 1 << V_SEGMENT_SHIFT;

/// Second doubleword, bit 0: PP0 (the high bit of the page protection).
pub const R_PP0: u64 = 1 << 63;
/// Bit 1: reserved in ISA 2.07 (ISA 3.0's TS); cleared from guest entries, as KVM does.
pub const R_RESERVED: u64 = 1 << 62;
/// Bits 2:3: the high bits of the storage key.
pub const R_KEY_HI: u64 = 0x3000_0000_0000_0000;
/// Bits 4:51: ARPN || LP: the real page number, whose low-order bits below the page size
/// hold the LP page size encoding.
pub const R_RPN: u64 = 0x0fff_ffff_ffff_f000;
/// Bits 52:54: the low bits of the storage key.
pub const R_KEY_LO: u64 = 0xe00;
/// Bit 55: referenced (set by the CPU).
pub const R_REFERENCED: u64 = 0x100;
/// Bit 56: changed (set by the CPU).
pub const R_CHANGED: u64 = 0x80;
/// Bits 57:60: WIMG storage attributes.
pub const R_WIMG: u64 = 0x78;
/// M: memory coherence required — the one WIMG value RAM may have (W, I, G clear).
pub const R_M: u64 = 0x10;
/// Bit 61: no-execute.
pub const R_N: u64 = 0x4;
/// Bits 62:63: PP1:2.
pub const R_PP: u64 = 0x3;

/// The page-protection bits H_PROTECT may change (PP0, PP, N, key): nothing that names
/// memory or its attributes.
pub const R_PROTECTION: u64 = R_PP0 | R_KEY_HI | R_KEY_LO | R_N | R_PP;

/// The segment size of an HPTE (its B field).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegmentSize {
    /// B = 0b00.
    Segment256M,
    /// B = 0b01.
    Segment1T,
}

impl SegmentSize {
    /// The B field of first doubleword `v`; `None` for the reserved 0b10 and 0b11.
    pub const fn of(v: u64) -> Option<Self> {
        match v >> V_SEGMENT_SHIFT {
            0 => Some(SegmentSize::Segment256M),
            1 => Some(SegmentSize::Segment1T),
            _ => None,
        }
    }

    /// log2 of the segment's bytes.
    pub const fn shift(self) -> u32 {
        match self {
            SegmentSize::Segment256M => 28,
            SegmentSize::Segment1T => 40,
        }
    }
}

/// The guest's `ibm,processor-segment-sizes`: 256 MiB and 1 TiB.
pub const PROCESSOR_SEGMENT_SIZES: [u32; 2] = [28, 40];

/// A page size the partition may map. Base and actual size are always equal (no MPSS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSize {
    /// 4 KiB: L = 0.
    Page4K,
    /// 64 KiB: L = 1, LP = `rrrr_0001` (the `r` are real address bits 16:19).
    Page64K,
    /// 16 MiB: L = 1, LP = `0000_0000`.
    Page16M,
}

/// Every page size the HPT accepts and the guest is told about, smallest first.
pub const SUPPORTED_PAGE_SIZES: [PageSize; 3] =
    [PageSize::Page4K, PageSize::Page64K, PageSize::Page16M];

impl PageSize {
    /// log2 of the page's bytes.
    pub const fn shift(self) -> u32 {
        match self {
            PageSize::Page4K => 12,
            PageSize::Page64K => 16,
            PageSize::Page16M => 24,
        }
    }

    /// Bytes of one page.
    pub const fn bytes(self) -> u64 {
        1 << self.shift()
    }

    /// The LP encoding (`penc`) of this size as its own base size, as
    /// `ibm,segment-page-sizes` states it.
    pub const fn lp_encoding(self) -> u32 {
        match self {
            PageSize::Page4K | PageSize::Page16M => 0,
            PageSize::Page64K => 1,
        }
    }

    /// The SLB L||LP encoding of a segment with this base page size (SLB VSID word bits
    /// 55:59 as Linux's SLB_VSID_L | SLB_VSID_LP_xx).
    pub const fn slb_encoding(self) -> u32 {
        match self {
            PageSize::Page4K => 0x000,
            PageSize::Page64K => 0x110,
            PageSize::Page16M => 0x100,
        }
    }

    /// The bits of the RPN field that lie inside the page, as an HPTE of this size must
    /// carry them: the LP encoding where LP overlaps the page offset, zero elsewhere.
    const fn in_page_rpn_bits(self) -> u64 {
        match self {
            PageSize::Page4K | PageSize::Page16M => 0,
            PageSize::Page64K => 0x1000,
        }
    }

    /// The AVPN bits of the first doubleword that fall inside the page (pages above 8 MiB):
    /// they must be zero (Linux's avpnm).
    const fn in_page_avpn_bits(self) -> u64 {
        match self {
            PageSize::Page4K | PageSize::Page64K => 0,
            PageSize::Page16M => 0x80,
        }
    }

    /// The RPN field bits that name the page (above the page offset).
    pub const fn rpn_mask(self) -> u64 {
        R_RPN & !(self.bytes() - 1)
    }
}

/// The page size of an HPTE from L (first doubleword) and LP (second), if it is one of
/// [`SUPPORTED_PAGE_SIZES`] (POWER8's decoding, as KVM's kvmppc_hpte_page_shifts; the MPSS
/// encodings 0x7, 0x8, 0x38 and 16 GiB's 0x3 are refused).
pub const fn decode_page_size(v: u64, r: u64) -> Option<PageSize> {
    if v & V_LARGE == 0 {
        return Some(PageSize::Page4K);
    }
    let lp = (r >> 12) & 0xff;
    match lp & 0xf {
        0x1 => Some(PageSize::Page64K),
        0x0 if lp == 0 => Some(PageSize::Page16M),
        _ => None,
    }
}

/// The guest's `ibm,segment-page-sizes`, built from [`SUPPORTED_PAGE_SIZES`]: for each base
/// size `<shift slb-encoding 1 shift lp-encoding>` (one actual size per base: no MPSS).
pub fn segment_page_sizes_cells() -> [u32; 5 * SUPPORTED_PAGE_SIZES.len()] {
    let mut cells = [0u32; 5 * SUPPORTED_PAGE_SIZES.len()];
    for (chunk, size) in cells.chunks_exact_mut(5).zip(SUPPORTED_PAGE_SIZES) {
        chunk.copy_from_slice(&[
            size.shift(),
            size.slb_encoding(),
            1,
            size.shift(),
            size.lp_encoding(),
        ]);
    }
    cells
}

// ---- Hypercall flags (LoPAR 14.5.4.1; Linux asm/hvcall.h) -----------------------------------

/// H_ENTER: use exactly the slot named, or fail with H_PTEG_FULL.
pub const H_EXACT: u64 = 1 << (63 - 24);
/// H_READ: return logical page numbers (we always do).
pub const H_R_XLATE: u64 = 1 << (63 - 25);
/// H_READ: return the four HPTEs of the aligned group of four.
pub const H_READ_4: u64 = 1 << (63 - 26);
/// H_REMOVE / H_PROTECT: remove only if the AVPN matches.
pub const H_AVPN: u64 = 1 << (63 - 32);
/// H_REMOVE: remove only if `v & avpn == 0` (Linux passes 0x10: not bolted).
pub const H_ANDCOND: u64 = 1 << (63 - 33);
/// H_ENTER: zero the page before mapping it.
pub const H_ZERO_PAGE: u64 = 1 << (63 - 48);

/// H_PROTECT flags: PP1:2 in bits 62:63, N in 61, PP0 in 55, key bits in 50:54 (low three
/// in 52:54, high two in 50:51), as QEMU's h_protect and KVM's kvmppc_h_protect take them.
pub const fn protection_from_flags(flags: u64) -> u64 {
    ((flags << 55) & R_PP0) | ((flags << 48) & R_KEY_HI) | (flags & (R_PP | R_N | R_KEY_LO))
}

/// H_BULK_REMOVE translation specifier, bits 0:1: the type.
const TS_TYPE_SHIFT: u32 = 62;
/// Type 0b01: a request.
const TS_REQUEST: u64 = 1;
/// Type 0b10: a response.
const TS_RESPONSE: u64 = 2;
/// Type 0b11: end of the list.
const TS_END: u64 = 3;
/// Bits 2:3 of a response: its code (0 success, 1 not found, 2 parameter, 3 hardware).
const TS_CODE_SHIFT: u32 = 60;
/// Bits 4:5 of a response: R and C of the removed entry.
const TS_RC_SHIFT: u32 = 58;
/// Bits 6:7: flags (0 absolute, 1 andcond, 2 AVPN, 3 invalid).
const TS_FLAGS_SHIFT: u32 = 56;
/// Bits 8:63: the PTE index.
pub const TS_PTEX: u64 = 0x00ff_ffff_ffff_ffff;
/// Translation specifier pairs in one H_BULK_REMOVE.
pub const BULK_REMOVE_PAIRS: usize = 4;

/// A request translation specifier for H_BULK_REMOVE: `flags` 0 (absolute), 1 (andcond) or
/// 2 (AVPN), as Linux's HBR_REQUEST | HBR_AVPN | slot.
pub const fn bulk_request(flags: u64, ptex: u64) -> u64 {
    (TS_REQUEST << TS_TYPE_SHIFT) | ((flags & 3) << TS_FLAGS_SHIFT) | (ptex & TS_PTEX)
}

/// The end marker of an H_BULK_REMOVE list (Linux's HBR_END).
pub const BULK_END: u64 = TS_END << TS_TYPE_SHIFT;

/// Response codes of H_BULK_REMOVE (bits 2:3 of a response).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BulkCode {
    /// Removed; R and C are in bits 4:5.
    Success = 0,
    /// No entry matched.
    NotFound = 1,
    /// The specifier was malformed.
    Parameter = 2,
}

const fn bulk_response(request: u64, code: BulkCode, rc: u64) -> u64 {
    (TS_RESPONSE << TS_TYPE_SHIFT)
        | ((code as u64) << TS_CODE_SHIFT)
        | ((rc & 3) << TS_RC_SHIFT)
        | (request & ((3 << TS_FLAGS_SHIFT) | TS_PTEX))
}

// ---- VRMA (ISA 2.07B 5.7.3.3; KVM kvmppc_map_vrma) ------------------------------------------

/// The VSID the CPU uses for guest real mode under VRMA, in a 1 TiB segment.
pub const VRMA_VSID: u64 = 0x1ff_ffff;
/// The page size of the VRMA entries (LPCR[VRMASD] says the same: [`LPCR_VRMASD_16M`]).
pub const VRMA_PAGE: PageSize = PageSize::Page16M;
/// The PTEG slot a VRMA entry takes (KVM: one per PTEG, slot 7, leaving 0..6 to the guest).
pub const VRMA_SLOT: usize = 7;
/// B, VSID and AVPN-above-the-page of every VRMA entry: what [`is_vrma`] matches.
const VRMA_V_PREFIX: u64 = V_SEGMENT_1T | (VRMA_VSID << 24);
/// LPCR[VRMASD] (bits 12:16) for 16 MiB VRMA pages: the SLB L||LP encoding of 16 MiB placed
/// as KVM does (`senc << (LPCR_VRMASD_SH - 4)`, LPCR_VRMASD_SH = 47): 0x0008_0000_0000_0000.
pub const LPCR_VRMASD_16M: u64 = (VRMA_PAGE.slb_encoding() as u64) << (47 - 4);

/// True when first doubleword `v` belongs to the VRMA's VSID (a hypervisor entry).
pub const fn is_vrma(v: u64) -> bool {
    v & !0xff_ffff == VRMA_V_PREFIX
}

/// The HPTE that maps guest-real VRMA page `page` (16 MiB each) to `host`: bolted, valid,
/// R and C set (no reference/change traffic), M, PP = 00 (with key 0 that is read/write, as
/// KVM's PP_RWXX; PP = 10 would be equivalent).
pub const fn vrma_hpte(page: u64, host: HostAddr) -> Hpte {
    Hpte {
        v: VRMA_V_PREFIX | (page << 8) | V_BOLTED | V_LARGE | V_VALID,
        r: host | R_REFERENCED | R_CHANGED | R_M,
    }
}

/// The PTE index of VRMA page `page` in a table with `groups` PTEGs: primary hash of VSID
/// 0x1ffffff in a 1 TiB segment, `(vsid ^ (vsid << 25) ^ page) & mask`, slot 7.
pub const fn vrma_ptex(page: u64, groups: u64) -> usize {
    let hash = (VRMA_VSID ^ (VRMA_VSID << 25) ^ page) & (groups - 1);
    (hash as usize) * HPTES_PER_PTEG + VRMA_SLOT
}

// ---- tlbie ----------------------------------------------------------------------------------

/// The RB operand of `tlbie` that invalidates the translation HPTE `(v, r)` at `ptex` of a
/// `size` page may have left (ISA 2.07B 5.9.3.3; KVM's compute_tlbie_rb without MPSS): the
/// VA bits 14:77-p (the AVPN gives those above 2^23, the PTEG index un-hashed with the VSID
/// gives the rest), B, and for large pages L = 1 and LP.
pub const fn tlbie_rb(v: u64, r: u64, ptex: usize, size: PageSize) -> u64 {
    let mut rb = (v & !0x7f) << 16;
    let mut va_low = (ptex as u64) >> 3;
    if v & V_SECONDARY != 0 {
        va_low = !va_low;
    }
    // The hash XORed the VSID's low bits into the page index: undo it.
    va_low ^= if v >> V_SEGMENT_SHIFT == 1 {
        v >> (40 - 16)
    } else {
        v >> (28 - 16)
    };
    va_low &= 0x7ff;
    let shift = size.shift();
    if shift == 12 {
        rb |= va_low << 12;
    } else {
        rb |= (va_low << shift) & 0x7f_f000;
        rb &= !((1u64 << shift) - 1);
        // AVAL: VA bits 58:77-p, for pages smaller than 2^20.
        rb |= (va_low << (64 - (77 - shift) + 1)) & 0xfe;
        rb |= 1;
        rb |= r & 0xf_f000 & ((1u64 << shift) - 1);
    }
    rb | ((v >> V_SEGMENT_SHIFT) << 8)
}

// ---- Hardware interfaces ------------------------------------------------------------------

/// The memory of one HPT, as 64-bit words in memory order (`arch/` implements it over the
/// host physical block; host tests over a slice).
///
/// Values are raw: what a native 64-bit load from that doubleword returns. The HPT code does
/// the one big-endian conversion itself. Every store must be a single 64-bit store (the CPU
/// walking the table must never see half a doubleword).
pub trait HptMemory {
    /// Host real address of the table (HTABORG): aligned to its size, outside every partition.
    fn host_address(&self) -> HostAddr;
    /// Doublewords in the table (2 per HPTE).
    fn doublewords(&self) -> usize;
    /// The raw doubleword at `index`; `index < doublewords()` is the caller's guarantee.
    fn load(&self, index: usize) -> u64;
    /// Stores raw `value` at doubleword `index`.
    fn store(&mut self, index: usize, value: u64);
}

/// The storage-synchronisation and TLB-invalidation instructions of the update sequences
/// (`arch/` implements each with the one instruction of its name; host fakes record them).
pub trait TlbInvalidate {
    /// `ptesync`.
    fn ptesync(&mut self);
    /// `eieio`.
    fn eieio(&mut self);
    /// `tlbie RB,RS` with RS = `lpid`: invalidate, on every thread, the translations of
    /// partition `lpid` that RB names. The caller runs with LPIDR = `lpid` (the hypercall
    /// path has not switched away from the guest), so the entries of that partition go
    /// whether the implementation takes the LPID from RS (as KVM's PPC_TLBIE on P7/P8) or
    /// from LPIDR.
    fn tlbie(&mut self, rb: u64, lpid: Lpid);
    /// `tlbsync`.
    fn tlbsync(&mut self);
}

// ---- Errors ---------------------------------------------------------------------------------

/// Why an HPT cannot be set up for a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HptSetupError {
    /// The order is outside 18..=46.
    OrderOutOfRange,
    /// The memory does not hold `2^order` bytes.
    SizeMismatch,
    /// The table is not aligned to its size.
    MisalignedTable,
    /// The table would end above the real address limit.
    TableTooHigh,
    /// The table overlaps the partition's memory (the guest could rewrite its own HPT).
    TableInsidePartition,
    /// The partition has more 16 MiB pages than the table has PTEGs (one VRMA entry each).
    TooSmallForVrma,
}

/// Why an HPT hypercall was refused (mapped to PAPR statuses in `papr::status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HptError {
    /// The PTE index is beyond the table.
    SlotOutOfRange,
    /// B is a reserved segment size.
    BadSegmentSize,
    /// L/LP encode a page size we do not advertise.
    BadPageSize,
    /// AVPN bits inside a large page are set.
    BadAvpn,
    /// The entry uses the VRMA's VSID, which only the hypervisor maps.
    ReservedVsid,
    /// The RPN bits inside the page are not the page size's LP encoding.
    BadRealPageBits,
    /// The real page is not all inside the partition's memory.
    OutsidePartition,
    /// WIMG is not M (RAM must be cacheable, coherent, not guarded, not write-through).
    BadStorageAttributes,
    /// No free slot (or the exact slot is taken).
    PtegFull,
    /// No valid guest entry there, or its AVPN / ANDCOND test failed.
    NotFound,
    /// An H_BULK_REMOVE translation specifier is neither a request nor the end, or has
    /// flags 0b11.
    BadSpecifier,
    /// H_ZERO_PAGE could not reach the page through guest memory (an inconsistent
    /// [`GuestMemory`]: its size is not the partition's).
    GuestMemoryFault,
    /// An entry the hypervisor wrote no longer decodes: the table is corrupt.
    CorruptEntry,
}

// ---- The table ------------------------------------------------------------------------------

/// One HPTE: first doubleword `v`, second `r` (values, not raw memory).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hpte {
    /// First doubleword: AVPN, SW, L, H, V.
    pub v: u64,
    /// Second doubleword: PP0, key, RPN||LP, R, C, WIMG, N, PP.
    pub r: u64,
}

/// H_READ's answer: the entries read (1, or 4 with H_READ_4), guest view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadEntries {
    /// The entries; only the first `count` are meaningful.
    pub entries: [Hpte; 4],
    /// 1 or 4.
    pub count: usize,
}

/// H_BULK_REMOVE's answer: the eight output registers (responses in place of the requests
/// processed, the rest as given) and the status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BulkRemoveOutcome {
    /// r4..r11 after the call.
    pub out: [u64; 2 * BULK_REMOVE_PAIRS],
    /// `Ok` for H_SUCCESS (individual misses are in the responses).
    pub result: Result<(), HptError>,
}

/// Who a slot belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Free,
    Guest,
    Hypervisor,
}

/// The HPT of one partition.
#[derive(Debug)]
pub struct Hpt<M> {
    mem: M,
    order: u32,
    lpid: Lpid,
    map: GuestRealMap,
}

impl<M: HptMemory> Hpt<M> {
    /// Sets up the HPT of partition `lpid` with memory `map` in `mem` (`2^order` bytes):
    /// clears every entry and inserts the bolted VRMA entries for all of the partition's
    /// memory. The partition must not run yet; if `lpid` ran before, the caller flushes its
    /// old translations (tlbiel of every set, or tlbie by LPID) before it runs again.
    pub fn new<T: TlbInvalidate>(
        mem: M,
        order: u32,
        lpid: Lpid,
        map: GuestRealMap,
        tlb: &mut T,
    ) -> Result<Self, HptSetupError> {
        sdr1_value(mem.host_address(), order)?;
        if mem.doublewords() as u64 != (1u64 << order) / 8 {
            return Err(HptSetupError::SizeMismatch);
        }
        if map.overlaps_host(mem.host_address(), 1 << order) {
            return Err(HptSetupError::TableInsidePartition);
        }
        let mut hpt = Hpt {
            mem,
            order,
            lpid,
            map,
        };
        if hpt.vrma_pages() > hpt.groups() {
            return Err(HptSetupError::TooSmallForVrma);
        }
        for index in 0..hpt.mem.doublewords() {
            hpt.mem.store(index, 0);
        }
        for page in 0..hpt.vrma_pages() {
            let entry = vrma_hpte(page, map.host_base() + page * VRMA_PAGE.bytes());
            let ptex = vrma_ptex(page, hpt.groups());
            hpt.store_r(ptex, entry.r);
            tlb.eieio();
            hpt.store_v(ptex, entry.v);
        }
        tlb.ptesync();
        Ok(hpt)
    }

    /// log2 of the table's bytes (the guest's `ibm,pft-size` second cell).
    pub fn order(&self) -> u32 {
        self.order
    }

    /// HPTEs in the table.
    pub fn entries(&self) -> usize {
        1 << (self.order - 4)
    }

    /// PTEGs in the table.
    pub fn groups(&self) -> u64 {
        1 << (self.order - 7)
    }

    /// SDR1 for this table (checked when it was set up).
    pub fn sdr1(&self) -> u64 {
        self.mem.host_address() | u64::from(self.order - MIN_HPT_ORDER)
    }

    /// The partition's LPID.
    pub fn lpid(&self) -> Lpid {
        self.lpid
    }

    /// The partition's memory.
    pub fn map(&self) -> GuestRealMap {
        self.map
    }

    /// Number of VRMA entries (16 MiB pages of the partition).
    pub fn vrma_pages(&self) -> u64 {
        self.map.size() / VRMA_PAGE.bytes()
    }

    /// The table's memory (for audits and snapshots).
    pub fn memory(&self) -> &M {
        &self.mem
    }

    /// HPTE `ptex` as stored (host real page numbers), or `None` past the end.
    pub fn raw_entry(&self, ptex: usize) -> Option<Hpte> {
        (ptex < self.entries()).then(|| self.load(ptex))
    }

    fn load(&self, ptex: usize) -> Hpte {
        Hpte {
            v: u64::from_be(self.mem.load(2 * ptex)),
            r: u64::from_be(self.mem.load(2 * ptex + 1)),
        }
    }

    fn load_r(&self, ptex: usize) -> u64 {
        u64::from_be(self.mem.load(2 * ptex + 1))
    }

    fn store_v(&mut self, ptex: usize, v: u64) {
        self.mem.store(2 * ptex, v.to_be());
    }

    fn store_r(&mut self, ptex: usize, r: u64) {
        self.mem.store(2 * ptex + 1, r.to_be());
    }

    fn owner(v: u64) -> Owner {
        if v & V_VALID == 0 {
            Owner::Free
        } else if is_vrma(v) {
            Owner::Hypervisor
        } else {
            Owner::Guest
        }
    }

    fn check_ptex(&self, ptex: u64) -> Result<usize, HptError> {
        if ptex < self.entries() as u64 {
            Ok(ptex as usize)
        } else {
            Err(HptError::SlotOutOfRange)
        }
    }

    /// Checks a guest's `(pteh, ptel)` and returns the entry to store (host RPN, V set, the
    /// hypervisor's SW bits and the reserved bit cleared), its size and guest-real page.
    fn check_guest_entry(&self, pteh: u64, ptel: u64) -> Result<(Hpte, PageSize, u64), HptError> {
        SegmentSize::of(pteh).ok_or(HptError::BadSegmentSize)?;
        let size = decode_page_size(pteh, ptel).ok_or(HptError::BadPageSize)?;
        if pteh & size.in_page_avpn_bits() != 0 {
            return Err(HptError::BadAvpn);
        }
        if is_vrma(pteh) {
            return Err(HptError::ReservedVsid);
        }
        if ptel & R_RPN & (size.bytes() - 1) != size.in_page_rpn_bits() {
            return Err(HptError::BadRealPageBits);
        }
        let gra = ptel & size.rpn_mask();
        let host = self
            .map
            .to_host(gra, size.bytes())
            .ok_or(HptError::OutsidePartition)?;
        if ptel & R_WIMG != R_M {
            return Err(HptError::BadStorageAttributes);
        }
        let entry = Hpte {
            v: (pteh & !V_HYPERVISOR_SOFTWARE) | V_VALID,
            r: (ptel & !size.rpn_mask() & !R_RESERVED) | host,
        };
        Ok((entry, size, gra))
    }

    /// The guest's view of a valid guest entry's second doubleword: the host RPN translated
    /// back to guest-real. A corrupt entry shows no address at all.
    fn guest_view(&self, v: u64, r: u64) -> u64 {
        match decode_page_size(v, r) {
            Some(size) => match self.map.to_guest(r & size.rpn_mask(), size.bytes()) {
                Some(gra) => (r & !size.rpn_mask()) | gra,
                None => r & !size.rpn_mask(),
            },
            None => r & !R_RPN,
        }
    }

    /// The invalidation half of the delete and modify sequences, for entries whose first
    /// doublewords the caller has already cleared of V: `ptesync; tlbie...; eieio; tlbsync;
    /// ptesync`.
    fn invalidate<T: TlbInvalidate>(&self, tlb: &mut T, rbs: &[u64]) {
        tlb.ptesync();
        for &rb in rbs {
            tlb.tlbie(rb, self.lpid);
        }
        tlb.eieio();
        tlb.tlbsync();
        tlb.ptesync();
    }

    /// H_ENTER(flags, ptex, pteh, ptel): inserts the guest's entry in the first free slot of
    /// `ptex`'s PTEG, or exactly at `ptex` with H_EXACT, and returns the PTE index used.
    /// With H_ZERO_PAGE the page is zeroed (through `guest`) before the entry is valid.
    pub fn enter<T: TlbInvalidate, G: GuestMemory + ?Sized>(
        &mut self,
        tlb: &mut T,
        guest: &mut G,
        flags: u64,
        ptex: u64,
        pteh: u64,
        ptel: u64,
    ) -> Result<usize, HptError> {
        let ptex = self.check_ptex(ptex)?;
        let (entry, size, gra) = self.check_guest_entry(pteh, ptel)?;
        let slot = if flags & H_EXACT != 0 {
            if Self::owner(self.load(ptex).v) != Owner::Free {
                return Err(HptError::PtegFull);
            }
            ptex
        } else {
            let group = ptex & !(HPTES_PER_PTEG - 1);
            (group..group + HPTES_PER_PTEG)
                .find(|&slot| Self::owner(self.load(slot).v) == Owner::Free)
                .ok_or(HptError::PtegFull)?
        };
        if flags & H_ZERO_PAGE != 0 {
            guest
                .fill(gra, size.bytes(), 0)
                .map_err(|_| HptError::GuestMemoryFault)?;
        }
        self.store_r(slot, entry.r);
        tlb.eieio();
        self.store_v(slot, entry.v);
        tlb.ptesync();
        Ok(slot)
    }

    /// The valid guest entry at `ptex` that passes H_REMOVE's tests, with its page size.
    fn removable(&self, ptex: usize, flags: u64, avpn: u64) -> Result<(Hpte, PageSize), HptError> {
        let entry = self.load(ptex);
        if Self::owner(entry.v) != Owner::Guest
            || (flags & H_AVPN != 0 && entry.v & !0x7f != avpn)
            || (flags & H_ANDCOND != 0 && entry.v & avpn != 0)
        {
            return Err(HptError::NotFound);
        }
        let size = decode_page_size(entry.v, entry.r).ok_or(HptError::CorruptEntry)?;
        Ok((entry, size))
    }

    /// H_REMOVE(flags, ptex, avpn): removes the guest entry at `ptex` (with H_AVPN only if its
    /// AVPN is `avpn`; with H_ANDCOND only if `v & avpn == 0`) and returns it, guest view,
    /// with the R and C the CPU left in it.
    pub fn remove<T: TlbInvalidate>(
        &mut self,
        tlb: &mut T,
        flags: u64,
        ptex: u64,
        avpn: u64,
    ) -> Result<Hpte, HptError> {
        let ptex = self.check_ptex(ptex)?;
        let (entry, size) = self.removable(ptex, flags, avpn)?;
        self.store_v(ptex, 0);
        self.invalidate(tlb, &[tlbie_rb(entry.v, entry.r, ptex, size)]);
        let r = self.load_r(ptex);
        self.store_r(ptex, 0);
        Ok(Hpte {
            v: entry.v,
            r: self.guest_view(entry.v, r),
        })
    }

    /// H_READ(flags, ptex): the entry at `ptex`, or with H_READ_4 the four from `ptex & !3`,
    /// guest view. Free slots and the hypervisor's entries read as zero.
    pub fn read(&self, flags: u64, ptex: u64) -> Result<ReadEntries, HptError> {
        let ptex = self.check_ptex(ptex)?;
        let (first, count) = if flags & H_READ_4 != 0 {
            (ptex & !3, 4)
        } else {
            (ptex, 1)
        };
        let mut entries = [Hpte::default(); 4];
        for (i, out) in entries.iter_mut().take(count).enumerate() {
            let entry = self.load(first + i);
            if Self::owner(entry.v) == Owner::Guest {
                *out = Hpte {
                    v: entry.v,
                    r: self.guest_view(entry.v, entry.r),
                };
            }
        }
        Ok(ReadEntries { entries, count })
    }

    /// H_PROTECT(flags, ptex, avpn): sets the page protection of the guest entry at `ptex`
    /// (PP0, PP, N, key from `flags`; with H_AVPN only if its AVPN is `avpn`). Nothing else of
    /// the entry can change.
    pub fn protect<T: TlbInvalidate>(
        &mut self,
        tlb: &mut T,
        flags: u64,
        ptex: u64,
        avpn: u64,
    ) -> Result<(), HptError> {
        let ptex = self.check_ptex(ptex)?;
        let entry = self.load(ptex);
        if Self::owner(entry.v) != Owner::Guest || (flags & H_AVPN != 0 && entry.v & !0x7f != avpn)
        {
            return Err(HptError::NotFound);
        }
        let size = decode_page_size(entry.v, entry.r).ok_or(HptError::CorruptEntry)?;
        let protection = protection_from_flags(flags);
        if (entry.r & !R_PROTECTION) | protection == entry.r {
            return Ok(());
        }
        self.store_v(ptex, entry.v & !V_VALID);
        self.invalidate(tlb, &[tlbie_rb(entry.v, entry.r, ptex, size)]);
        // R and C are final only now; keep what the CPU set.
        let r = (self.load_r(ptex) & !R_PROTECTION) | protection;
        self.store_r(ptex, r);
        tlb.eieio();
        self.store_v(ptex, entry.v);
        tlb.ptesync();
        Ok(())
    }

    /// H_BULK_REMOVE(ts0h, ts0l, ... ts3h, ts3l): up to four removals, each a request
    /// specifier (type 0b01, flags, PTE index) and its AVPN / ANDCOND operand, ended early by
    /// a specifier of type 0b11. Each request processed becomes a response (type 0b10, code,
    /// R and C). Malformed specifiers (type 0b00/0b10, flags 0b11, a PTE index past the
    /// table) are found before anything is removed: the call then removes nothing, marks
    /// that specifier with the parameter code and fails with H_PARAMETER (QEMU and KVM
    /// process the requests before it first; all-or-nothing keeps "a refused call changes
    /// nothing" true, and Linux treats any failure as fatal either way). The tlbies of all
    /// removals are batched into one sequence, as KVM does.
    pub fn bulk_remove<T: TlbInvalidate>(
        &mut self,
        tlb: &mut T,
        args: &[u64; 2 * BULK_REMOVE_PAIRS],
    ) -> BulkRemoveOutcome {
        let mut out = *args;
        let mut requests = 0;
        while requests < BULK_REMOVE_PAIRS {
            let ts = args[2 * requests];
            match ts >> TS_TYPE_SHIFT {
                TS_END => break,
                TS_REQUEST
                    if (ts >> TS_FLAGS_SHIFT) & 3 != 3
                        && (ts & TS_PTEX) < self.entries() as u64 => {}
                _ => {
                    out[2 * requests] = bulk_response(ts, BulkCode::Parameter, 0);
                    return BulkRemoveOutcome {
                        out,
                        result: Err(HptError::BadSpecifier),
                    };
                }
            }
            requests += 1;
        }
        let mut found = [(0usize, 0usize); BULK_REMOVE_PAIRS];
        let mut rbs = [0u64; BULK_REMOVE_PAIRS];
        let mut removed = 0;
        for i in 0..requests {
            let ts = args[2 * i];
            let operand = args[2 * i + 1];
            let ptex = (ts & TS_PTEX) as usize;
            let flags = match (ts >> TS_FLAGS_SHIFT) & 3 {
                1 => H_ANDCOND,
                2 => H_AVPN,
                _ => 0,
            };
            match self.removable(ptex, flags, operand) {
                Ok((entry, size)) => {
                    // Clear V now so a repeated index in the same call finds nothing.
                    self.store_v(ptex, 0);
                    rbs[removed] = tlbie_rb(entry.v, entry.r, ptex, size);
                    found[removed] = (i, ptex);
                    removed += 1;
                    out[2 * i] = bulk_response(ts, BulkCode::Success, 0);
                }
                Err(HptError::CorruptEntry) => {
                    out[2 * i] = bulk_response(ts, BulkCode::Parameter, 0);
                    return self.finish_bulk(
                        tlb,
                        out,
                        &found[..removed],
                        &rbs[..removed],
                        Err(HptError::CorruptEntry),
                    );
                }
                Err(_) => out[2 * i] = bulk_response(ts, BulkCode::NotFound, 0),
            }
        }
        self.finish_bulk(tlb, out, &found[..removed], &rbs[..removed], Ok(()))
    }

    fn finish_bulk<T: TlbInvalidate>(
        &mut self,
        tlb: &mut T,
        mut out: [u64; 2 * BULK_REMOVE_PAIRS],
        found: &[(usize, usize)],
        rbs: &[u64],
        result: Result<(), HptError>,
    ) -> BulkRemoveOutcome {
        if !found.is_empty() {
            self.invalidate(tlb, rbs);
            for &(i, ptex) in found {
                let r = self.load_r(ptex);
                let rc = u64::from(r & R_REFERENCED != 0) << 1 | u64::from(r & R_CHANGED != 0);
                out[2 * i] |= rc << TS_RC_SHIFT;
                self.store_r(ptex, 0);
            }
        }
        BulkRemoveOutcome { out, result }
    }

    /// Checks every entry: guest entries decode to a supported size, name host memory wholly
    /// inside this partition, are coherent RAM (WIMG = M) and carry no hypervisor SW bits; the
    /// VRMA entries are exactly the ones set up, where they were set up; free slots hold no
    /// leftover words (no stale host address for anyone to read).
    pub fn audit(&self) -> HptAudit {
        let mut audit = HptAudit::default();
        let groups = self.groups();
        for ptex in 0..self.entries() {
            let entry = self.load(ptex);
            match Self::owner(entry.v) {
                Owner::Free => {
                    if entry.v != 0 || entry.r != 0 {
                        audit.violation(ptex, HptViolation::StaleFreeSlot);
                    }
                }
                Owner::Hypervisor => {
                    audit.vrma_entries += 1;
                    let page = (entry.v >> 8) & 0xffff;
                    let expected = vrma_hpte(page, self.map.host_base() + page * VRMA_PAGE.bytes());
                    if page >= self.vrma_pages()
                        || vrma_ptex(page, groups) != ptex
                        || entry != expected
                    {
                        audit.violation(ptex, HptViolation::VrmaMismatch);
                    }
                }
                Owner::Guest => {
                    audit.guest_entries += 1;
                    if let Some(kind) = self.check_stored_guest_entry(entry) {
                        audit.violation(ptex, kind);
                    }
                }
            }
        }
        if audit.vrma_entries as u64 != self.vrma_pages() {
            audit.violation(usize::MAX, HptViolation::VrmaMissing);
        }
        audit
    }

    fn check_stored_guest_entry(&self, entry: Hpte) -> Option<HptViolation> {
        if SegmentSize::of(entry.v).is_none() {
            return Some(HptViolation::BadSegmentSize);
        }
        let Some(size) = decode_page_size(entry.v, entry.r) else {
            return Some(HptViolation::UnsupportedPageSize);
        };
        let host = entry.r & size.rpn_mask();
        let inside = host >= self.map.host_base()
            && host
                .checked_add(size.bytes())
                .is_some_and(|end| end <= self.map.host_end());
        if !inside {
            return Some(HptViolation::OutsidePartition { host });
        }
        if entry.r & R_WIMG != R_M {
            return Some(HptViolation::BadStorageAttributes);
        }
        if entry.v & V_HYPERVISOR_SOFTWARE != 0 || entry.r & R_RESERVED != 0 {
            return Some(HptViolation::ReservedBits);
        }
        None
    }
}

/// What [`Hpt::audit`] found wrong with one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HptViolation {
    /// A guest entry with a reserved segment size.
    BadSegmentSize,
    /// A guest entry whose L/LP is not a supported size.
    UnsupportedPageSize,
    /// A guest entry naming host memory outside its partition.
    OutsidePartition {
        /// The host real page it names.
        host: HostAddr,
    },
    /// A guest entry that is not coherent RAM.
    BadStorageAttributes,
    /// A guest entry with the hypervisor's SW bits or the reserved bit set.
    ReservedBits,
    /// A VRMA entry that is not the one set up for its page and slot.
    VrmaMismatch,
    /// Fewer or more VRMA entries than the partition has 16 MiB pages (slot `usize::MAX`).
    VrmaMissing,
    /// A free slot with words left in it.
    StaleFreeSlot,
}

/// The result of [`Hpt::audit`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HptAudit {
    /// Valid guest entries.
    pub guest_entries: usize,
    /// Valid VRMA entries.
    pub vrma_entries: usize,
    /// Slots with a violation (empty when the table is sound).
    pub violations: Vec<(usize, HptViolation)>,
}

impl HptAudit {
    fn violation(&mut self, ptex: usize, kind: HptViolation) {
        self.violations.push((ptex, kind));
    }

    /// True when nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }
}

/// The granule a partition's memory comes in, restated for users of the HPT: VRMA pages.
pub const VRMA_GRANULE: u64 = PARTITION_GRANULE;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hpt_order_follows_qemu_for_common_ram_sizes() {
        // QEMU's pseries: ibm,pft-size = <0 0x17> for 1 GiB (fixtures/qemu72-pseries-*.dts).
        assert_eq!(hpt_order_for_ram(1 << 30), 0x17);
        assert_eq!(hpt_order_for_ram(512 << 20), 22);
        assert_eq!(hpt_order_for_ram((1 << 30) + 1), 24);
        assert_eq!(hpt_order_for_ram(16 << 20), MIN_HPT_ORDER);
        assert_eq!(hpt_order_for_ram(0), MIN_HPT_ORDER);
        assert_eq!(hpt_order_for_ram(u64::MAX), MAX_HPT_ORDER);
        assert_eq!(pft_size_cells(23), [0, 0x17]);
    }

    #[test]
    fn sdr1_is_base_or_size_code_and_refuses_misalignment() {
        assert_eq!(sdr1_value(0x1000_0000, 18), Ok(0x1000_0000));
        assert_eq!(sdr1_value(0x1080_0000, 23), Ok(0x1080_0005));
        assert_eq!(
            sdr1_value(0x1004_0000, 19),
            Err(HptSetupError::MisalignedTable)
        );
        assert_eq!(sdr1_value(0, 17), Err(HptSetupError::OrderOutOfRange));
        assert_eq!(sdr1_value(0, 47), Err(HptSetupError::OrderOutOfRange));
        assert_eq!(
            sdr1_value(REAL_ADDRESS_LIMIT, 18),
            Err(HptSetupError::TableTooHigh)
        );
    }

    #[test]
    fn page_size_decoding_accepts_exactly_the_advertised_encodings() {
        assert_eq!(
            decode_page_size(0, 0xffff_ffff_ffff_ffff),
            Some(PageSize::Page4K)
        );
        let mut seen = [0usize; 3];
        for lp in 0u64..256 {
            match decode_page_size(V_LARGE, lp << 12) {
                Some(PageSize::Page64K) => {
                    assert_eq!(lp & 0xf, 1);
                    seen[1] += 1;
                }
                Some(PageSize::Page16M) => {
                    assert_eq!(lp, 0);
                    seen[2] += 1;
                }
                Some(PageSize::Page4K) => panic!("L=1 decoded as 4K"),
                None => assert!(lp & 0xf != 1 && lp != 0, "lp {lp:#x} refused"),
            }
        }
        // 64K: rrrr_0001 for every rrrr; 16M: only 0000_0000. MPSS 0x07, 0x08, 0x38 and
        // 16G's 0x03 are refused.
        assert_eq!(seen, [0, 16, 1]);
        for lp in [0x07u64, 0x08, 0x38, 0x03] {
            assert_eq!(decode_page_size(V_LARGE, lp << 12), None);
        }
    }

    #[test]
    fn segment_page_sizes_match_power8_encodings() {
        // POWER8's own values for these sizes (QEMU target/ppc POWER7/8 sps table, Linux's
        // mmu_psize_defs): 4K slb 0x000 penc 0; 64K slb 0x110 penc 1; 16M slb 0x100 penc 0.
        assert_eq!(
            segment_page_sizes_cells(),
            [12, 0x000, 1, 12, 0, 16, 0x110, 1, 16, 1, 24, 0x100, 1, 24, 0]
        );
        // QEMU 7.2 pseries (4K and 64K only) gives the first ten cells exactly.
        assert_eq!(
            segment_page_sizes_cells()[..10],
            [0x0c, 0x00, 0x01, 0x0c, 0x00, 0x10, 0x110, 0x01, 0x10, 0x01]
        );
    }

    #[test]
    fn vrma_encoding_matches_kvm_and_the_lpcr() {
        // KVM: hp0 = 1TB | VRMA_VSID << 24 | BOLTED | LARGE, | (addr >> 16) & ~0x7f | VALID.
        let e = vrma_hpte(3, 0x1000_0000 + (3 << 24));
        assert_eq!(e.v, 0x4001_ffff_ff00_0000 | 0x300 | 0x10 | 0x4 | 0x1);
        assert_eq!(e.r, 0x1300_0000 | 0x100 | 0x80 | 0x10);
        assert!(is_vrma(e.v));
        assert!(!is_vrma(e.v & !V_SEGMENT_1T));
        assert!(!is_vrma(0x4001_fffe_ff00_0000));
        assert_eq!(LPCR_VRMASD_16M, 0x0008_0000_0000_0000);
        // The hash of VSID 0x1ffffff XOR page: with 2048 PTEGs page 0 is in group 0x7ff.
        assert_eq!(vrma_ptex(0, 2048), 0x7ff * 8 + 7);
        assert_eq!(vrma_ptex(5, 2048), (0x7ff ^ 5) * 8 + 7);
    }

    #[test]
    fn protection_flags_land_on_the_protection_bits_only() {
        assert_eq!(protection_from_flags(0x3), R_PP);
        assert_eq!(protection_from_flags(0x4), R_N);
        assert_eq!(protection_from_flags(0x100), R_PP0);
        assert_eq!(protection_from_flags(0xe00), R_KEY_LO);
        assert_eq!(protection_from_flags(0x3000), R_KEY_HI);
        assert_eq!(protection_from_flags(u64::MAX) & !R_PROTECTION, 0);
        assert_eq!(protection_from_flags(H_AVPN), 0);
    }

    #[test]
    fn tlbie_rb_of_a_4k_page_holds_its_va_and_b() {
        // VSID 0x123, EA page 0x45 of a 256M segment, primary PTEG.
        let vsid = 0x123u64;
        let page = 0x45u64;
        let va = (vsid << 28) | (page << 12);
        let v = ((va >> 23) << 7) | V_VALID;
        let group = (vsid ^ page) & 0x7ff;
        let rb = tlbie_rb(v, 0, (group * 8) as usize, PageSize::Page4K);
        assert_eq!(rb & !0xfff, va);
        assert_eq!(rb & 0xfff, 0);
    }
}
