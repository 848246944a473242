//! The hypervisor state shared by every CPU, and the hypercall dispatcher for the TCE calls.
//!
//! Validation follows LoPAR and docs/papr-tce-hcalls.md (checked the way KVM's
//! arch/powerpc/kvm/book3s_64_vio.c and QEMU's hw/ppc/spapr_iommu.c do): every failure is
//! H_PARAMETER (H_P4 for an H_STUFF_TCE count over 512) and leaves nothing changed, because
//! every check runs before the first change and the IOMMU update itself is all-or-nothing.
//! Then every path goes through [`crate::iommu::TceService::update`], the one protocol.
//!
//! LIOBNs: each (PHB, PE, window) has one, `0x8000_0000 | phb << 16 | (PE * 2 + window)`; it is
//! owned by the partition the window was created for. Lookup decodes the number and reads the
//! window's lock-free slot: nothing on the hypercall path takes a lock or allocates (beyond
//! missing table levels).
//!
//! The firmware-private window-management opcodes (0xF200..=0xF20C) are dispatched here too;
//! their registers and semantics are in [`super::windows`].
//!
//! Resources: LoPAR ch_lpar_option (H_PUT_TCE, H_GET_TCE, H_STUFF_TCE, H_PUT_TCE_INDIRECT);
//! Linux arch/powerpc/kvm/book3s_64_vio.c; QEMU hw/ppc/spapr_iommu.c; docs/tce-protocol.md.

use super::codes::*;
use super::partition::Partition;
use crate::hw::regio::RegIo;
use crate::iommu::service::WindowRef;
use crate::iommu::tce::TCE_PERM_MASK;
use crate::iommu::{self, NewTces, PageAccounting, Perm, Tce, TceService, WindowConfig, MAX_BATCH};
use crate::mm::{FrameAllocator, PhysAddr};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};

/// Most partitions.
pub const MAX_PARTITIONS: usize = 16;
/// Most PHBs.
pub const MAX_PHBS: usize = 64;
/// The tag in the high half of every LIOBN this hypervisor hands out.
pub const LIOBN_TAG: u64 = 0x8000_0000;

/// Setup-time failures (boot code and window management), never seen by a hypercall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// A range is misaligned, empty, overflows, or lies outside RAM.
    BadRange,
    /// A partition's memory overlaps firmware memory or another partition.
    Overlap,
    /// No room for another partition or PHB.
    Full,
    /// No such PHB.
    NoPhb,
    /// No such LIOBN.
    NoLiobn,
    /// The PE belongs to another partition (granted to it, or holding its windows).
    Forbidden,
    /// The IOMMU refused.
    Iommu(iommu::Error),
}

/// The LIOBN of window `window` of PE `pe` on PHB `phb`.
pub const fn liobn(phb: usize, pe: u16, window: u8) -> u64 {
    LIOBN_TAG | ((phb as u64) << 16) | iommu::tve::tvt_index(pe, window) as u64
}

/// The (PHB, TVT index) a LIOBN names, if it is well formed.
pub const fn decode_liobn(liobn: u64) -> Option<(usize, usize)> {
    if liobn & !0xFFFF_FFFF != 0 || liobn & LIOBN_TAG == 0 {
        return None;
    }
    let phb = ((liobn >> 16) & 0x7FFF) as usize;
    let tvt = (liobn & 0xFFFF) as usize;
    if tvt >= iommu::tve::TVT_ENTRIES {
        return None;
    }
    Some((phb, tvt))
}

/// Deliberate validation bugs, for the tests that prove the fuzz run's "a rejected call
/// changes nothing" check can fail. Production code never sets anything but `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum HcallFault {
    /// Validate everything, then apply.
    None = 0,
    /// Bug: H_PUT_TCE_INDIRECT applies each entry as soon as it is validated, so a bad entry
    /// in the middle of the list is refused after the ones before it were applied.
    IndirectApplyBeforeValidate = 1,
}

/// Everything the hypercalls work on. `Sync`: one instance serves every CPU.
pub struct Hypervisor<'a> {
    phbs: Vec<TceService<'a>>,
    pages: &'a PageAccounting,
    firmware: Vec<(PhysAddr, u64)>,
    partitions: [spin::Once<Partition>; MAX_PARTITIONS],
    setup: spin::Mutex<()>,
    /// Per PHB, per PE: who the PE is granted to, and whether window 0 is its default window
    /// (see `windows`). Written under `windows`, read lock-free.
    pub(super) grants: Vec<Vec<AtomicU32>>,
    /// Serialises window management (grants, create, remove, reset). Never taken by the TCE
    /// hypercalls.
    pub(super) windows: spin::Mutex<()>,
    fault: AtomicU8,
}

fn overlaps(a: PhysAddr, a_len: u64, b: PhysAddr, b_len: u64) -> bool {
    a < b.saturating_add(b_len) && b < a.saturating_add(a_len)
}

impl<'a> Hypervisor<'a> {
    /// A hypervisor for partitions living in the RAM that `pages` accounts for.
    /// `firmware` lists the firmware's own memory (image, stacks, heap, table pool): no
    /// partition may overlap it, so no TCE can ever point into it.
    pub fn new(pages: &'a PageAccounting, firmware: &[(PhysAddr, u64)]) -> Self {
        Hypervisor {
            phbs: Vec::new(),
            pages,
            firmware: firmware.to_vec(),
            partitions: [const { spin::Once::new() }; MAX_PARTITIONS],
            setup: spin::Mutex::new(()),
            grants: Vec::new(),
            windows: spin::Mutex::new(()),
            fault: AtomicU8::new(HcallFault::None as u8),
        }
    }

    /// Adds the PHB behind `io`, whose TCE tables come from `frames`. Returns its index (the
    /// `phb` of [`liobn`]). Boot-time only (`&mut`).
    pub fn add_phb(
        &mut self,
        io: &'a dyn RegIo,
        frames: &'a dyn FrameAllocator,
    ) -> Result<usize, SetupError> {
        if self.phbs.len() >= MAX_PHBS {
            return Err(SetupError::Full);
        }
        self.phbs.push(TceService::new(io, frames));
        let mut grants = Vec::with_capacity(iommu::service::MAX_PES as usize);
        grants.resize_with(iommu::service::MAX_PES as usize, || AtomicU32::new(0));
        self.grants.push(grants);
        Ok(self.phbs.len() - 1)
    }

    /// Adds a partition whose guest-real `[guest_base, guest_base + size)` is host
    /// `[host_base, host_base + size)`. The host range must be 4 KiB aligned, inside RAM, and
    /// overlap neither firmware memory nor another partition.
    pub fn add_partition(
        &self,
        guest_base: u64,
        size: u64,
        host_base: PhysAddr,
    ) -> Result<&Partition, SetupError> {
        let _setup = self.setup.lock();
        let granule = 1u64 << iommu::pages::FRAME_SHIFT;
        if size == 0
            || (size | host_base | guest_base) & (granule - 1) != 0
            || guest_base.checked_add(size).is_none()
            || !self.pages.ram().contains(host_base, size)
        {
            return Err(SetupError::BadRange);
        }
        if self
            .firmware
            .iter()
            .any(|&(fw, len)| overlaps(host_base, size, fw, len))
            || self
                .partitions()
                .any(|p| overlaps(host_base, size, p.host_base(), p.size()))
        {
            return Err(SetupError::Overlap);
        }
        let (id, slot) = self
            .partitions
            .iter()
            .enumerate()
            .find(|(_, slot)| slot.get().is_none())
            .ok_or(SetupError::Full)?;
        Ok(slot.call_once(|| Partition::new(id as u32, guest_base, size, host_base)))
    }

    /// Every partition.
    pub fn partitions(&self) -> impl Iterator<Item = &Partition> {
        self.partitions.iter().filter_map(spin::Once::get)
    }

    /// The partition with id `id`.
    pub fn partition(&self, id: u32) -> Option<&Partition> {
        self.partitions.get(id as usize)?.get()
    }

    /// Creates a DMA window on PHB `phb` owned by `owner`, and returns its LIOBN. The
    /// firmware's own setup path (a partition uses the private hypercalls of
    /// [`super::windows`]); refused with `Forbidden` when the PE is granted to another
    /// partition.
    pub fn create_window(
        &self,
        phb: usize,
        config: WindowConfig,
        owner: &Partition,
    ) -> Result<u64, SetupError> {
        let service = self.phbs.get(phb).ok_or(SetupError::NoPhb)?;
        let _windows = self.windows.lock();
        if !self.may_own(phb, config.pe, owner.id()) {
            return Err(SetupError::Forbidden);
        }
        service
            .create_window(config, owner.id())
            .map_err(SetupError::Iommu)?;
        Ok(liobn(phb, config.pe, config.window))
    }

    /// Removes the window `liobn` names, releasing every page it mapped and freeing its table.
    /// Returns the number of entries released.
    pub fn remove_window(&self, liobn: u64) -> Result<usize, SetupError> {
        let (phb, tvt) = decode_liobn(liobn).ok_or(SetupError::NoLiobn)?;
        let service = self.phbs.get(phb).ok_or(SetupError::NoLiobn)?;
        let _windows = self.windows.lock();
        let released = service
            .remove_window(self.pages, tvt)
            .map_err(SetupError::Iommu)?;
        self.forget_default(phb, tvt);
        Ok(released)
    }

    /// The TCE service of PHB `phb`.
    pub fn phb(&self, phb: usize) -> Option<&TceService<'a>> {
        self.phbs.get(phb)
    }

    /// Every PHB's service.
    pub fn phbs(&self) -> &[TceService<'a>] {
        &self.phbs
    }

    /// The page accounting (pin counts, dirty bits).
    pub fn pages(&self) -> &'a PageAccounting {
        self.pages
    }

    /// The firmware ranges no TCE may reach.
    pub fn firmware(&self) -> &[(PhysAddr, u64)] {
        &self.firmware
    }

    /// Handles one hypercall: `opcode` from r3, `args` from r4 onward. Never panics on
    /// anything the caller controls; unknown opcodes get H_FUNCTION. Outputs are 0 unless the
    /// status is H_SUCCESS.
    pub fn dispatch(
        &self,
        caller: &Partition,
        opcode: u64,
        args: &[u64; HCALL_ARGS],
    ) -> HcallReturn {
        let result: Result<[u64; 4], i64> = match opcode {
            H_PUT_TCE => self
                .h_put_tce(caller, args[0], args[1], args[2])
                .map(|()| [0; 4]),
            H_GET_TCE => self
                .h_get_tce(caller, args[0], args[1])
                .map(|tce| [tce, 0, 0, 0]),
            H_STUFF_TCE => self
                .h_stuff_tce(caller, args[0], args[1], args[2], args[3])
                .map(|()| [0; 4]),
            H_PUT_TCE_INDIRECT => self
                .h_put_tce_indirect(caller, args[0], args[1], args[2], args[3])
                .map(|()| [0; 4]),
            H_TCEFW_QUERY_PE_DMA_WINDOW => self.h_query_pe_dma_window(caller, args[0]).map(|q| {
                [
                    q.windows_available,
                    q.largest_tces,
                    q.page_sizes,
                    q.max_levels,
                ]
            }),
            H_TCEFW_CREATE_PE_DMA_WINDOW => self
                .h_create_pe_dma_window(caller, args[0], args[1], args[2], args[3])
                .map(|w| [w.liobn, w.bus_start, w.window_size, 0]),
            H_TCEFW_REMOVE_PE_DMA_WINDOW => self
                .h_remove_pe_dma_window(caller, args[0])
                .map(|r| [r.unmapped, r.restored_liobn, 0, 0]),
            H_TCEFW_RESET_PE_DMA_WINDOWS => self
                .h_reset_pe_dma_windows(caller, args[0])
                .map(|r| [r.default_liobn, r.unmapped, 0, 0]),
            _ => Err(H_FUNCTION),
        };
        match result {
            Ok(values) => {
                let mut ret = HcallReturn::status(H_SUCCESS);
                ret.out[..values.len()].copy_from_slice(&values);
                ret
            }
            Err(status) => HcallReturn::status(status),
        }
    }

    /// The window `liobn` names, held for this call, if `caller` owns it.
    fn owned_window(
        &self,
        caller: &Partition,
        liobn: u64,
    ) -> Result<(&TceService<'a>, WindowRef<'_>), i64> {
        let (phb, tvt) = decode_liobn(liobn).ok_or(H_PARAMETER)?;
        let service = self.phbs.get(phb).ok_or(H_PARAMETER)?;
        let window = service.window(tvt).ok_or(H_PARAMETER)?;
        if window.owner() != caller.id() {
            return Err(H_PARAMETER);
        }
        Ok((service, window))
    }

    /// The host TCE for the caller's `tce` in `window`: permission 00 means unmapped (every
    /// other bit ignored); otherwise everything but the permission bits must be a guest-real
    /// address aligned to the IOMMU page (so reserved bits must be 0, as KVM's
    /// `iommu_tce_check_gpa` requires) whose whole page is the caller's memory, and whose
    /// HOST address is aligned to the IOMMU page too.
    ///
    /// The host check matters because a partition only needs 4 KiB alignment in host memory:
    /// with a 64K or 16M window over such a partition an aligned guest page lands on a
    /// misaligned host address, and the PHB drops the low bits of the TCE's address (QEMU
    /// `pnv_phb3_translate_tve` masks with the IOMMU page size), so the device would reach
    /// memory below the partition. KVM refuses the same case: `kvmppc_tce_validate` →
    /// `mm_iommu_ua_to_hpa` fails when the IOMMU page shift exceeds what the host backing
    /// provides (arch/powerpc/kvm/book3s_64_vio.c, arch/powerpc/mm/book3s64/iommu_api.c).
    fn host_tce(&self, caller: &Partition, page_size: u64, tce: u64) -> Result<Tce, i64> {
        let perm = Perm::from_bits(tce);
        if perm == Perm::None {
            return Ok(Tce::NONE);
        }
        let gra = tce & !TCE_PERM_MASK;
        if gra & (page_size - 1) != 0 {
            return Err(H_PARAMETER);
        }
        let host = caller.to_host(gra, page_size).ok_or(H_PARAMETER)?;
        if host & (page_size - 1) != 0 {
            return Err(H_PARAMETER);
        }
        // Guaranteed by add_partition; checked again because a TCE into firmware memory or
        // outside the accounted RAM must be impossible, not merely unlikely.
        if !self.pages.covers(host, page_size)
            || self
                .firmware
                .iter()
                .any(|&(fw, len)| overlaps(host, page_size, fw, len))
        {
            return Err(H_PARAMETER);
        }
        Ok(Tce::new(host, perm))
    }

    fn status_of(error: iommu::Error) -> i64 {
        match error {
            iommu::Error::NoMemory => H_NO_MEM,
            iommu::Error::PinOverflow => H_RESOURCE,
            iommu::Error::LevelMissing | iommu::Error::Corrupt => H_HARDWARE,
            error if error.is_hardware() => H_HARDWARE,
            _ => H_PARAMETER,
        }
    }

    /// H_PUT_TCE: map (or unmap) one IOMMU page; the replaced page is released after the kill.
    pub fn h_put_tce(
        &self,
        caller: &Partition,
        liobn: u64,
        ioba: u64,
        tce: u64,
    ) -> Result<(), i64> {
        let (service, window) = self.owned_window(caller, liobn)?;
        window.check_run(ioba, 1).map_err(|_| H_PARAMETER)?;
        let new = self.host_tce(caller, window.page_size(), tce)?;
        service
            .update(self.pages, &window, ioba, NewTces::Same(new, 1))
            .map(|_| ())
            .map_err(Self::status_of)
    }

    /// H_GET_TCE: the entry at `ioba`, translated back to the caller's address space.
    pub fn h_get_tce(&self, caller: &Partition, liobn: u64, ioba: u64) -> Result<u64, i64> {
        let (_, window) = self.owned_window(caller, liobn)?;
        let index = window.index_of(ioba).map_err(|_| H_PARAMETER)?;
        let tce = window.table().get(index);
        if !tce.is_valid() {
            return Ok(0);
        }
        let gra = caller.to_guest(tce.addr()).ok_or(H_HARDWARE)?;
        Ok(gra | (tce.raw() & TCE_PERM_MASK))
    }

    /// H_STUFF_TCE: the same value into `count` entries (≤ 512), one kill batch.
    pub fn h_stuff_tce(
        &self,
        caller: &Partition,
        liobn: u64,
        ioba: u64,
        tce: u64,
        count: u64,
    ) -> Result<(), i64> {
        let (service, window) = self.owned_window(caller, liobn)?;
        if count > MAX_BATCH as u64 {
            return Err(H_P4);
        }
        if count == 0 {
            return window.index_of(ioba).map(|_| ()).map_err(|_| H_PARAMETER);
        }
        window
            .check_run(ioba, count as usize)
            .map_err(|_| H_PARAMETER)?;
        let new = self.host_tce(caller, window.page_size(), tce)?;
        service
            .update(
                self.pages,
                &window,
                ioba,
                NewTces::Same(new, count as usize),
            )
            .map(|_| ())
            .map_err(Self::status_of)
    }

    /// H_PUT_TCE_INDIRECT: `count` (≤ 512) TCEs from the caller's 4 KiB-aligned list. The list
    /// is copied into firmware memory first, every entry validated, then all are applied in
    /// one update (one kill batch) or none.
    pub fn h_put_tce_indirect(
        &self,
        caller: &Partition,
        liobn: u64,
        ioba: u64,
        list: u64,
        count: u64,
    ) -> Result<(), i64> {
        let (service, window) = self.owned_window(caller, liobn)?;
        if count > MAX_BATCH as u64 || list & 0xFFF != 0 {
            return Err(H_PARAMETER);
        }
        if count == 0 {
            return window.index_of(ioba).map(|_| ()).map_err(|_| H_PARAMETER);
        }
        let count = count as usize;
        window.check_run(ioba, count).map_err(|_| H_PARAMETER)?;
        let host_list = caller.to_host(list, count as u64 * 8).ok_or(H_PARAMETER)?;
        let mut raw = [0u64; MAX_BATCH];
        if !self.pages.ram().copy_words(host_list, &mut raw[..count]) {
            return Err(H_PARAMETER);
        }
        if self.hcall_fault() == HcallFault::IndirectApplyBeforeValidate {
            return self.indirect_apply_before_validate(
                caller,
                service,
                &window,
                ioba,
                &raw[..count],
            );
        }
        let mut new = [Tce::NONE; MAX_BATCH];
        for (slot, stored) in new.iter_mut().zip(&raw[..count]) {
            *slot = self.host_tce(caller, window.page_size(), u64::from_be(*stored))?;
        }
        service
            .update(self.pages, &window, ioba, NewTces::List(&new[..count]))
            .map(|_| ())
            .map_err(Self::status_of)
    }

    fn hcall_fault(&self) -> HcallFault {
        match self.fault.load(Ordering::Relaxed) {
            1 => HcallFault::IndirectApplyBeforeValidate,
            _ => HcallFault::None,
        }
    }

    /// TEST ONLY: makes later hypercalls break validation in the given way, so tests can prove
    /// they detect it. Firmware never calls this; `HcallFault::None` restores it.
    #[doc(hidden)]
    pub fn inject_hcall_fault(&self, fault: HcallFault) {
        self.fault.store(fault as u8, Ordering::Relaxed);
    }

    /// The bug [`HcallFault::IndirectApplyBeforeValidate`] plants: entry by entry, validate
    /// then apply, so a bad entry is refused after the earlier ones took effect.
    fn indirect_apply_before_validate(
        &self,
        caller: &Partition,
        service: &TceService<'a>,
        window: &iommu::DmaWindow,
        ioba: u64,
        raw: &[u64],
    ) -> Result<(), i64> {
        for (i, stored) in raw.iter().enumerate() {
            let tce = self.host_tce(caller, window.page_size(), u64::from_be(*stored))?;
            let bus = ioba + ((i as u64) << window.page_shift());
            service
                .update(self.pages, window, bus, NewTces::Same(tce, 1))
                .map_err(Self::status_of)?;
        }
        Ok(())
    }
}
