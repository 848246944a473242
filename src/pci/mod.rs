//! PCI, independent of the host bridge: config-space access as a trait, enumeration with bus
//! numbering, BAR sizing and assignment, one PE per function, the summary, and drivers for
//! the devices tests use.
//!
//! A host bridge (the PHB3 in `crate::phb3`) implements [`ConfigSpace`] and [`PeAssign`];
//! [`enumerate::enumerate`] needs nothing else, so it runs unchanged against host fakes.
//!
//! Resources: PCI Local Bus 3.0 and PCI-to-PCI Bridge 1.2 (config header), PCIe Base 3.0
//! 7.8 (PCIe capability); skiboot core/pci.c (`pci_scan_bus`, summary lines) and
//! include/pci-cfg.h.
#![forbid(unsafe_code)]

pub mod edu;
pub mod enumerate;
pub mod header;
pub mod topology;

pub use enumerate::enumerate;
pub use topology::{
    Bar, BarKind, BusRange, EnumError, EnumOptions, FunctionKind, FunctionProblem, MemWindow,
    PciFunction, Problem, Topology,
};

use crate::hw::regio::Width;
use core::fmt;

/// A bus/device/function address; `bus << 8 | devfn` is the function's RID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bdf {
    /// Bus number.
    pub bus: u8,
    /// Device (bits 7..3) and function (bits 2..0).
    pub devfn: u8,
}

impl Bdf {
    /// The address of `bus`:`device`.`function`, or `None` if device > 31 or function > 7.
    pub const fn new(bus: u8, device: u8, function: u8) -> Option<Self> {
        if device > 31 || function > 7 {
            return None;
        }
        Some(Bdf {
            bus,
            devfn: (device << 3) | function,
        })
    }

    /// The function with requester id `rid`.
    pub const fn from_rid(rid: u16) -> Self {
        Bdf {
            bus: (rid >> 8) as u8,
            devfn: rid as u8,
        }
    }

    /// The requester id, `bus << 8 | devfn` (the RTT index).
    pub const fn rid(self) -> u16 {
        ((self.bus as u16) << 8) | self.devfn as u16
    }

    /// Device number, 0..=31.
    pub const fn device(self) -> u8 {
        self.devfn >> 3
    }

    /// Function number, 0..=7.
    pub const fn function(self) -> u8 {
        self.devfn & 7
    }
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02x}:{:02x}.{:x}",
            self.bus,
            self.device(),
            self.function()
        )
    }
}

/// Why a config access was refused (nothing was sent to the bus).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// The offset is not a multiple of the access width.
    Misaligned {
        /// Offset asked for.
        offset: u16,
        /// Width asked for.
        width: Width,
    },
    /// The offset is beyond the 4 KiB of PCIe extended config space.
    OutOfRange {
        /// Offset asked for.
        offset: u16,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Misaligned { offset, width } => {
                write!(
                    f,
                    "config offset {offset:#x} is not aligned to {} bytes",
                    width.bytes()
                )
            }
            ConfigError::OutOfRange { offset } => {
                write!(f, "config offset {offset:#x} is beyond 4 KiB")
            }
        }
    }
}

/// Extended config space size (PCIe): offsets 0..0x1000.
pub const CONFIG_SPACE_SIZE: u16 = 0x1000;

/// Checks a config access: aligned to its width and inside 4 KiB.
pub fn check_config_access(offset: u16, width: Width) -> Result<(), ConfigError> {
    if !u64::from(offset).is_multiple_of(width.bytes()) {
        return Err(ConfigError::Misaligned { offset, width });
    }
    if offset >= CONFIG_SPACE_SIZE {
        return Err(ConfigError::OutOfRange { offset });
    }
    Ok(())
}

/// The all-ones value an absent function returns for a read of `width`.
pub const fn all_ones(width: Width) -> u32 {
    match width {
        Width::U8 => 0xFF,
        Width::U16 => 0xFFFF,
        Width::U32 => 0xFFFF_FFFF,
    }
}

/// Config space of the functions below one host bridge. Reads of absent functions return
/// all-ones; writes to them vanish. Values are in CPU order (config space is little-endian on
/// the bus; implementations convert). Accesses take `&mut self` because a config access is
/// an address/data pair that must not interleave with another.
pub trait ConfigSpace {
    /// Reads `width` bytes at `offset` (aligned to `width`, below 4 KiB).
    fn config_read(&mut self, bdf: Bdf, offset: u16, width: Width) -> Result<u32, ConfigError>;
    /// Writes `width` bytes at `offset`; bits of `value` beyond `width` are ignored.
    fn config_write(
        &mut self,
        bdf: Bdf,
        offset: u16,
        width: Width,
        value: u32,
    ) -> Result<(), ConfigError>;

    /// One byte.
    fn read8(&mut self, bdf: Bdf, offset: u16) -> Result<u8, ConfigError> {
        Ok(self.config_read(bdf, offset, Width::U8)? as u8)
    }
    /// Two bytes.
    fn read16(&mut self, bdf: Bdf, offset: u16) -> Result<u16, ConfigError> {
        Ok(self.config_read(bdf, offset, Width::U16)? as u16)
    }
    /// Four bytes.
    fn read32(&mut self, bdf: Bdf, offset: u16) -> Result<u32, ConfigError> {
        self.config_read(bdf, offset, Width::U32)
    }
    /// One byte.
    fn write8(&mut self, bdf: Bdf, offset: u16, value: u8) -> Result<(), ConfigError> {
        self.config_write(bdf, offset, Width::U8, value.into())
    }
    /// Two bytes.
    fn write16(&mut self, bdf: Bdf, offset: u16, value: u16) -> Result<(), ConfigError> {
        self.config_write(bdf, offset, Width::U16, value.into())
    }
    /// Four bytes.
    fn write32(&mut self, bdf: Bdf, offset: u16, value: u32) -> Result<(), ConfigError> {
        self.config_write(bdf, offset, Width::U32, value)
    }
}

/// Why a PE could not be assigned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeError {
    /// The PE number is beyond what the host bridge has.
    OutOfRange {
        /// The PE asked for.
        pe: u16,
    },
    /// The PE number is the host bridge's reserved PE.
    Reserved {
        /// The PE asked for.
        pe: u16,
    },
}

impl fmt::Display for PeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeError::OutOfRange { pe } => write!(f, "PE#{pe} is out of range"),
            PeError::Reserved { pe } => write!(f, "PE#{pe} is reserved"),
        }
    }
}

/// Partitionable-endpoint assignment by requester id (the PHB3's RTT).
pub trait PeAssign {
    /// The PEs that may be assigned are `0..assignable_pes()`; the reserved PE is not among
    /// them (PHB3: 255, so 0..=254).
    fn assignable_pes(&self) -> u16;
    /// Puts the function `rid` in `pe`, with whatever cache invalidation the host needs
    /// before the next DMA.
    fn assign_pe(&mut self, rid: u16, pe: u16) -> Result<(), PeError>;
}

/// What enumeration needs from a host bridge.
pub trait HostBridge: ConfigSpace + PeAssign {}

impl<T: ConfigSpace + PeAssign + ?Sized> HostBridge for T {}
