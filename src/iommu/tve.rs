//! IODA2 TVE (translation validation entry) encoding, and the TVT write through the PHB's
//! IODA_ADDR/IODA_DATA0 registers.
//!
//! TVE fields (IBM bit numbering): TABLE_ADDR 0..47 = table_pa >> 12; NUM_LEVELS 48..50 =
//! levels - 1; TCE_TABLE_SIZE 51..55 = log2(bytes per level) - 11; IO_PSIZE 59..63 =
//! log2(IOMMU page) - 11 (0 means "no translation"). The TVT has 512 entries, PE * 2 + window,
//! where the window is DMA address bit 59.
//!
//! Resources: skiboot include/phb3-regs.h (IODA2_TVT_*), hw/phb3.c `phb3_map_pe_dma_window`
//! and `phb3_ioda_sel`; Linux platforms/powernv/pci-ioda.c `pnv_pci_ioda2_set_window`; QEMU
//! hw/pci-host/pnv_phb3.c `pnv_phb3_translate_tve` (the decode the hardware does).
//! TVEs reach the hardware through `phb3::write_tve` (IODA_ADDR/IODA_DATA0).

use crate::mm::PhysAddr;
use crate::phb3::regs::ppc_bitmask;

/// TABLE_ADDR: IBM bits 0..47, the table address in 4 KiB units.
pub const TVE_TABLE_ADDR: u64 = ppc_bitmask(0, 47);
/// NUM_LEVELS: IBM bits 48..50, levels - 1.
pub const TVE_NUM_LEVELS: u64 = ppc_bitmask(48, 50);
/// TCE_TABLE_SIZE: IBM bits 51..55, log2(bytes per level) - 11.
pub const TVE_TCE_TABLE_SIZE: u64 = ppc_bitmask(51, 55);
/// IO_PSIZE: IBM bits 59..63, log2(IOMMU page size) - 11; 0 disables translation.
pub const TVE_IO_PSIZE: u64 = ppc_bitmask(59, 63);
/// Entries in the TVT: two windows for each of the 256 PEs.
pub const TVT_ENTRIES: usize = crate::phb3::regs::ioda2_entries::TVT as usize;

const fn shift_of(mask: u64) -> u32 {
    mask.trailing_zeros()
}

/// A translating TVE, in fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tve {
    /// Physical address of the top level (aligned to the level size).
    pub table_pa: PhysAddr,
    /// Number of table levels, 1..=5.
    pub levels: u32,
    /// log2 of the bytes in each level (every level has the same size), 12..=24 here.
    pub level_bytes_log2: u32,
    /// log2 of the IOMMU page size: 12, 16 or 24 (28 is also legal hardware).
    pub page_shift: u32,
}

impl Tve {
    /// The 64-bit TVE value.
    pub const fn encode(&self) -> u64 {
        (((self.table_pa >> 12) << shift_of(TVE_TABLE_ADDR)) & TVE_TABLE_ADDR)
            | ((((self.levels - 1) as u64) << shift_of(TVE_NUM_LEVELS)) & TVE_NUM_LEVELS)
            | ((((self.level_bytes_log2 - 11) as u64) << shift_of(TVE_TCE_TABLE_SIZE))
                & TVE_TCE_TABLE_SIZE)
            | ((((self.page_shift - 11) as u64) << shift_of(TVE_IO_PSIZE)) & TVE_IO_PSIZE)
    }

    /// The fields of a translating TVE, or `None` for a disabled/bypass/invalid one
    /// (the cases QEMU's `pnv_phb3_translate_tve` refuses: IO_PSIZE 0, TCE_TABLE_SIZE 0,
    /// more than 5 levels).
    pub const fn decode(value: u64) -> Option<Tve> {
        let tps = (value & TVE_IO_PSIZE) >> shift_of(TVE_IO_PSIZE);
        let tts = (value & TVE_TCE_TABLE_SIZE) >> shift_of(TVE_TCE_TABLE_SIZE);
        let lev = (value & TVE_NUM_LEVELS) >> shift_of(TVE_NUM_LEVELS);
        if tps == 0 || tts == 0 || lev > 4 {
            return None;
        }
        Some(Tve {
            table_pa: ((value & TVE_TABLE_ADDR) >> shift_of(TVE_TABLE_ADDR)) << 12,
            levels: lev as u32 + 1,
            level_bytes_log2: tts as u32 + 11,
            page_shift: tps as u32 + 11,
        })
    }
}

/// The TVT index of a PE's window: PE * 2 + window (window 1 is selected by DMA address bit 59).
pub const fn tvt_index(pe: u16, window: u8) -> usize {
    pe as usize * 2 + (window & 1) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_fact_sheet_examples() {
        // 2 MiB single-level table at 0x1000_0000, 4K pages.
        let tve = Tve {
            table_pa: 0x1000_0000,
            levels: 1,
            level_bytes_log2: 21,
            page_shift: 12,
        };
        assert_eq!(tve.encode(), 0x0000_0001_0000_0A01);
        // Observed on QEMU: two levels of 4 KiB, 4K pages, table at 0x2050000.
        let tve = Tve {
            table_pa: 0x0205_0000,
            levels: 2,
            level_bytes_log2: 12,
            page_shift: 12,
        };
        assert_eq!(tve.encode(), 0x2050_2101);
        assert_eq!(Tve::decode(0x2050_2101), Some(tve));
        // 8 KiB single level, 4K pages; and 64K pages.
        assert_eq!(Tve::decode(0x2040_0201).unwrap().level_bytes_log2, 13);
        assert_eq!(Tve::decode(0x2060_0205).unwrap().page_shift, 16);
        assert_eq!(Tve::decode(0), None);
    }
}
