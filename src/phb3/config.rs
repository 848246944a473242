//! PCI config space through a PHB3's CONFIG_ADDRESS/CONFIG_DATA pair, and the PHB3 as a
//! `pci::HostBridge` (config space + PE assignment in the RTT).
//!
//! One access is: CONFIG_ADDRESS = enable | bus | devfn | (offset & 0xFFC) | PE, then a 1, 2
//! or 4-byte access to CONFIG_DATA at 0x130 + (offset & 3), + (offset & 2), or + 0. The data
//! lane is little-endian (RegIo::read_le/write_le); an 8-byte CONFIG_DATA access is never
//! made (QEMU 7.2 aborts on it). The PE in CONFIG_ADDRESS is the function's PE from the RTT,
//! as skiboot puts it there (errors are charged to that PE).
//!
//! Resources: skiboot hw/phb3.c `PHB3_PCI_CFG_READ`/`PHB3_PCI_CFG_WRITE` and
//! `phb3_pcicfg_check` (alignment, bus 0 has only device 0); QEMU hw/pci-host/pnv_phb3.c
//! `pnv_phb3_config_read`/`write` (absent device reads all-ones).

use super::ioda::Phb3;
use super::regs::{
    config_address, PHB3_NUM_PES, PHB3_RESERVED_PE, PHB_CONFIG_ADDRESS, PHB_CONFIG_DATA,
};
use crate::hw::regio::{RegIo, Width};
use crate::pci::{all_ones, check_config_access, Bdf, ConfigError, ConfigSpace, PeAssign, PeError};

/// The CONFIG_DATA byte lane of an access (skiboot `offset & (4 - sizeof(type))`).
const fn data_offset(offset: u16, width: Width) -> u64 {
    let lane = match width {
        Width::U8 => offset & 3,
        Width::U16 => offset & 2,
        Width::U32 => 0,
    };
    PHB_CONFIG_DATA + lane as u64
}

const fn width_mask(width: Width) -> u32 {
    all_ones(width)
}

/// skiboot `phb3_pcicfg_check`: "The root bus only has a device at 0 and we get into an
/// error state if we try to probe beyond that". Such functions read as absent.
const fn beyond_root_device(bdf: Bdf) -> bool {
    bdf.bus == 0 && bdf.devfn != 0
}

/// Reads `width` bytes of config space of `bdf` at `offset`, charging errors to `pe`.
pub fn read(
    io: &dyn RegIo,
    bdf: Bdf,
    offset: u16,
    width: Width,
    pe: u8,
) -> Result<u32, ConfigError> {
    check_config_access(offset, width)?;
    if beyond_root_device(bdf) {
        return Ok(all_ones(width));
    }
    io.write64(
        PHB_CONFIG_ADDRESS,
        config_address(bdf.bus, bdf.devfn, offset, pe),
    );
    Ok(io.read_le(data_offset(offset, width), width) & width_mask(width))
}

/// Writes `width` bytes of config space of `bdf` at `offset`, charging errors to `pe`.
pub fn write(
    io: &dyn RegIo,
    bdf: Bdf,
    offset: u16,
    width: Width,
    value: u32,
    pe: u8,
) -> Result<(), ConfigError> {
    check_config_access(offset, width)?;
    if beyond_root_device(bdf) {
        return Ok(());
    }
    io.write64(
        PHB_CONFIG_ADDRESS,
        config_address(bdf.bus, bdf.devfn, offset, pe),
    );
    io.write_le(data_offset(offset, width), width, value & width_mask(width));
    Ok(())
}

impl Phb3<'_> {
    /// The PE to put in CONFIG_ADDRESS for `bdf`: its RTT entry.
    fn config_pe(&self, bdf: Bdf) -> u8 {
        u8::try_from(self.pe_of(bdf.rid())).unwrap_or(PHB3_RESERVED_PE as u8)
    }
}

impl ConfigSpace for Phb3<'_> {
    fn config_read(&mut self, bdf: Bdf, offset: u16, width: Width) -> Result<u32, ConfigError> {
        read(self.regs(), bdf, offset, width, self.config_pe(bdf))
    }

    fn config_write(
        &mut self,
        bdf: Bdf,
        offset: u16,
        width: Width,
        value: u32,
    ) -> Result<(), ConfigError> {
        write(self.regs(), bdf, offset, width, value, self.config_pe(bdf))
    }
}

impl PeAssign for Phb3<'_> {
    fn assignable_pes(&self) -> u16 {
        // PEs 0..=254: the reserved PE is the last one.
        PHB3_NUM_PES - 1
    }

    fn assign_pe(&mut self, rid: u16, pe: u16) -> Result<(), PeError> {
        if pe == PHB3_RESERVED_PE {
            return Err(PeError::Reserved { pe });
        }
        self.set_pe(rid..=rid, pe)
            .map_err(|_| PeError::OutOfRange { pe })
    }
}
