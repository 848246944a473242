//! TCE (translation control entry) values: the 64-bit words of a PHB3 TCE table.
//!
//! Layout (IODA2, and PAPR's TCE for the hypercalls): bits 0..51 (IBM numbering) hold the
//! real page number, 52..61 are reserved, 62..63 are the permissions: 0x1 the device may read,
//! 0x2 it may write, 00 unmapped. In memory each entry is big-endian whatever the CPU's
//! endianness (the PHB fetches them big-endian).
//!
//! The permission bits are kept exactly as the caller gave them: a write-only TCE stays
//! write-only, so a device may write the page but not read it. That is what a pseries guest
//! asks for (Linux arch/powerpc/kernel/iommu.c `iommu_direction_to_tce_perm` maps
//! DMA_FROM_DEVICE to TCE_PCI_WRITE alone, and platforms/pseries/iommu.c passes it to
//! H_PUT_TCE unchanged), what KVM stores (book3s_64_vio.c `kvmppc_tce_put` keeps the guest's
//! value) and what QEMU's sPAPR model keeps (hw/ppc/spapr_iommu.c `put_tce_emu`). Linux's
//! bare-metal powernv driver adds READ to WRITE in its own tables (pci-ioda-tce.c
//! `pnv_tce_build`); a hypervisor serving a guest must not widen what the guest granted.
//!
//! Resources: LoPAR "TCE" format (ch_address_map); Linux arch/powerpc/include/asm/tce.h
//! (TCE_PCI_READ/TCE_PCI_WRITE); QEMU hw/pci-host/pnv_phb3.c `pnv_phb3_translate_tve` (the PHB
//! checks R for a device read and W for a device write, separately).

use crate::mm::PhysAddr;

/// The device may read the page.
pub const TCE_READ: u64 = 0x1;
/// The device may write the page.
pub const TCE_WRITE: u64 = 0x2;
/// Both permission bits.
pub const TCE_PERM_MASK: u64 = TCE_READ | TCE_WRITE;
/// The real-page-number field (IBM bits 0..51), in 4 KiB units.
pub const TCE_RPN_MASK: u64 = !0xFFF;

/// What a device may do through an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Perm {
    /// Unmapped: every DMA through the entry faults.
    None,
    /// Device reads (memory to device) only.
    Read,
    /// Device writes (device to memory) only: a device read through it faults.
    Write,
    /// Both directions.
    ReadWrite,
}

impl Perm {
    /// The permission in the two low bits of a TCE.
    pub const fn from_bits(bits: u64) -> Perm {
        match bits & TCE_PERM_MASK {
            0 => Perm::None,
            TCE_READ => Perm::Read,
            TCE_WRITE => Perm::Write,
            _ => Perm::ReadWrite,
        }
    }

    /// The two permission bits of this permission.
    pub const fn bits(self) -> u64 {
        match self {
            Perm::None => 0,
            Perm::Read => TCE_READ,
            Perm::Write => TCE_WRITE,
            Perm::ReadWrite => TCE_READ | TCE_WRITE,
        }
    }
}

/// A TCE in CPU byte order. Convert with [`Tce::to_be`]/[`Tce::from_be`] at the table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tce(u64);

impl Tce {
    /// The unmapped entry.
    pub const NONE: Tce = Tce(0);

    /// A mapping of the page at `page` (at least 4 KiB aligned) with exactly `perm`
    /// (write-only stays write-only). `Perm::None` gives [`Tce::NONE`].
    pub const fn new(page: PhysAddr, perm: Perm) -> Tce {
        if let Perm::None = perm {
            return Tce::NONE;
        }
        Tce((page & TCE_RPN_MASK) | perm.bits())
    }

    /// The entry whose CPU-order value is `raw`.
    pub const fn from_raw(raw: u64) -> Tce {
        Tce(raw)
    }

    /// The CPU-order value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// The value as stored in memory (big-endian), for the atomic word of a table.
    pub const fn to_be(self) -> u64 {
        self.0.to_be()
    }

    /// The entry stored in memory as `stored` (big-endian).
    pub const fn from_be(stored: u64) -> Tce {
        Tce(u64::from_be(stored))
    }

    /// True when a DMA may use the entry in some direction.
    pub const fn is_valid(self) -> bool {
        self.0 & TCE_PERM_MASK != 0
    }

    /// True when the device may write through the entry.
    pub const fn writable(self) -> bool {
        self.0 & TCE_WRITE != 0
    }

    /// True when the device may read through the entry.
    pub const fn readable(self) -> bool {
        self.0 & TCE_READ != 0
    }

    /// The permission bits.
    pub const fn perm(self) -> Perm {
        Perm::from_bits(self.0)
    }

    /// The page address (the RPN field as an address).
    pub const fn addr(self) -> PhysAddr {
        self.0 & TCE_RPN_MASK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_are_kept_and_none_is_zero() {
        let write_only = Tce::new(0x1234_5000, Perm::Write);
        assert_eq!(write_only.raw(), 0x1234_5002);
        assert!(write_only.writable() && !write_only.readable());
        assert_eq!(write_only.perm(), Perm::Write);
        assert_eq!(Tce::new(0x1234_5000, Perm::Read).raw(), 0x1234_5001);
        assert_eq!(Tce::new(0x1234_5000, Perm::None), Tce::NONE);
        let tce = Tce::new(0x1234_5000, Perm::ReadWrite);
        assert_eq!(Tce::from_be(tce.to_be()), tce);
        assert_eq!(
            tce.to_be().to_ne_bytes()[0],
            0,
            "the high byte comes first in memory"
        );
    }
}
