//! BAR sizing (PCI Local Bus 3.0 6.2.5.1): write all-ones, read back what sticks, restore;
//! 32-bit, 64-bit (two registers) and I/O BARs; a BAR enumeration cannot use is recorded as
//! a problem of its function.
//!
//! Resources: PCI Local Bus 3.0 6.2.5.1; skiboot core/pci.c (`pci_scan_one` BAR probing).

use super::super::header::{
    BAR0, BAR_IO, BAR_IO_ADDRESS_MASK, BAR_MEM_ADDRESS_MASK, BAR_MEM_TYPE_32, BAR_MEM_TYPE_64,
    BAR_MEM_TYPE_MASK, BAR_PREFETCHABLE,
};
use super::super::topology::{Bar, BarKind, EnumError, Problem};
use super::super::Bdf;
use super::Enumerator;
use alloc::vec::Vec;

impl Enumerator<'_> {
    /// Writes all-ones to a BAR register, reads back what sticks, and restores it.
    fn probe_bar_register(
        &mut self,
        bdf: Bdf,
        offset: u16,
        original: u32,
    ) -> Result<u32, EnumError> {
        self.host.write32(bdf, offset, 0xFFFF_FFFF)?;
        let sized = self.host.read32(bdf, offset)?;
        self.host.write32(bdf, offset, original)?;
        Ok(sized)
    }

    /// Sizes BARs 0..count (PCI 3.0 6.2.5.1). Sizes come from the lowest writable address bit,
    /// so a device returning a non-contiguous mask still gets a power of two.
    pub(super) fn size_bars(&mut self, bdf: Bdf, count: u8) -> Result<Vec<Bar>, EnumError> {
        let mut bars = Vec::new();
        let mut index = 0;
        while index < count {
            let offset = BAR0 + 4 * u16::from(index);
            let original = self.host.read32(bdf, offset)?;
            if original & BAR_IO != 0 {
                let sized = self.probe_bar_register(bdf, offset, original)? & BAR_IO_ADDRESS_MASK;
                if sized != 0 {
                    let size = 1u64 << sized.trailing_zeros();
                    bars.push(Bar {
                        index,
                        kind: BarKind::Io,
                        prefetchable: false,
                        size,
                        address: None,
                    });
                }
                index += 1;
                continue;
            }
            let prefetchable = original & BAR_PREFETCHABLE != 0;
            match original & BAR_MEM_TYPE_MASK {
                BAR_MEM_TYPE_32 => {
                    let sized =
                        self.probe_bar_register(bdf, offset, original)? & BAR_MEM_ADDRESS_MASK;
                    if sized != 0 {
                        let size = 1u64 << sized.trailing_zeros();
                        bars.push(Bar {
                            index,
                            kind: BarKind::Memory32,
                            prefetchable,
                            size,
                            address: None,
                        });
                    }
                    index += 1;
                }
                BAR_MEM_TYPE_64 if index + 1 < count => {
                    let upper_offset = offset + 4;
                    let upper = self.host.read32(bdf, upper_offset)?;
                    self.host.write32(bdf, offset, 0xFFFF_FFFF)?;
                    self.host.write32(bdf, upper_offset, 0xFFFF_FFFF)?;
                    let low = self.host.read32(bdf, offset)? & BAR_MEM_ADDRESS_MASK;
                    let high = self.host.read32(bdf, upper_offset)?;
                    self.host.write32(bdf, offset, original)?;
                    self.host.write32(bdf, upper_offset, upper)?;
                    let sized = (u64::from(high) << 32) | u64::from(low);
                    if sized != 0 {
                        let size = 1u64 << sized.trailing_zeros();
                        bars.push(Bar {
                            index,
                            kind: BarKind::Memory64,
                            prefetchable,
                            size,
                            address: None,
                        });
                    }
                    index += 2;
                }
                _ => {
                    // A 64-bit BAR without a next register, "below 1 MiB" (cannot be placed in
                    // a window at 2 GiB) or the reserved type.
                    self.problem(
                        bdf,
                        Problem::BarUnsupported {
                            index,
                            flags: original & 0xF,
                        },
                    );
                    index += 1;
                }
            }
        }
        Ok(bars)
    }
}
