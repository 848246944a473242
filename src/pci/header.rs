//! PCI config header offsets and bits (type 0 endpoints, type 1 bridges) and the PCIe
//! capability fields enumeration reads.
//!
//! Resources: PCI Local Bus 3.0 6.1-6.2, PCI-to-PCI Bridge Architecture 1.2 3.2, PCIe Base
//! 3.0 7.8.2; skiboot include/pci-cfg.h (`PCI_CFG_*`, `PCIECAP_EXP_CAPABILITY_REG`
//! `PCIECAP_EXP_CAP_TYPE`), which uses the same names.

use bitflags::bitflags;

/// Vendor id (16 bits); 0xFFFF reads from an absent function.
pub const VENDOR_ID: u16 = 0x00;
/// Device id (16 bits).
pub const DEVICE_ID: u16 = 0x02;
/// Command register (16 bits).
pub const COMMAND: u16 = 0x04;
/// Status register (16 bits).
pub const STATUS: u16 = 0x06;
/// Revision id (8 bits) followed by the 24-bit class code: read as one dword.
pub const REVISION_CLASS: u16 = 0x08;
/// Header type (8 bits): layout in bits 6..0, multi-function in bit 7.
pub const HEADER_TYPE: u16 = 0x0E;
/// First BAR; BAR n is at `BAR0 + 4 * n`.
pub const BAR0: u16 = 0x10;
/// Capabilities pointer (8 bits).
pub const CAP_POINTER: u16 = 0x34;

/// Type 1: primary bus number (8 bits).
pub const PRIMARY_BUS: u16 = 0x18;
/// Type 1: secondary bus number (8 bits).
pub const SECONDARY_BUS: u16 = 0x19;
/// Type 1: subordinate bus number (8 bits).
pub const SUBORDINATE_BUS: u16 = 0x1A;
/// Type 1: I/O base (8 bits).
pub const IO_BASE: u16 = 0x1C;
/// Type 1: I/O limit (8 bits).
pub const IO_LIMIT: u16 = 0x1D;
/// Type 1: memory base (16 bits; bits 15..4 are address bits 31..20).
pub const MEMORY_BASE: u16 = 0x20;
/// Type 1: memory limit (16 bits; bits 15..4 are address bits 31..20 of the last byte).
pub const MEMORY_LIMIT: u16 = 0x22;
/// Type 1: prefetchable memory base (16 bits).
pub const PREF_MEMORY_BASE: u16 = 0x24;
/// Type 1: prefetchable memory limit (16 bits).
pub const PREF_MEMORY_LIMIT: u16 = 0x26;
/// Type 1: prefetchable base, upper 32 bits.
pub const PREF_BASE_UPPER32: u16 = 0x28;
/// Type 1: prefetchable limit, upper 32 bits.
pub const PREF_LIMIT_UPPER32: u16 = 0x2C;
/// Type 1: I/O base, upper 16 bits.
pub const IO_BASE_UPPER16: u16 = 0x30;
/// Type 1: I/O limit, upper 16 bits.
pub const IO_LIMIT_UPPER16: u16 = 0x32;

/// Header type layout: general device.
pub const HEADER_TYPE_NORMAL: u8 = 0;
/// Header type layout: PCI-to-PCI bridge.
pub const HEADER_TYPE_BRIDGE: u8 = 1;
/// Header type bit 7: the device has functions 1..7.
pub const HEADER_TYPE_MULTIFUNCTION: u8 = 0x80;

/// BARs in a type 0 header.
pub const NORMAL_BARS: u8 = 6;
/// BARs in a type 1 header.
pub const BRIDGE_BARS: u8 = 2;

/// BAR bit 0: the BAR is in I/O space.
pub const BAR_IO: u32 = 0x1;
/// BAR bits 2..1: memory type (0 = 32-bit, 1 = below 1 MiB (legacy), 2 = 64-bit).
pub const BAR_MEM_TYPE_MASK: u32 = 0x6;
/// Memory type 32-bit.
pub const BAR_MEM_TYPE_32: u32 = 0x0;
/// Memory type "below 1 MiB" (PCI 2.x legacy).
pub const BAR_MEM_TYPE_1M: u32 = 0x2;
/// Memory type 64-bit (this BAR and the next hold the address).
pub const BAR_MEM_TYPE_64: u32 = 0x4;
/// BAR bit 3: prefetchable.
pub const BAR_PREFETCHABLE: u32 = 0x8;
/// Address bits of a memory BAR.
pub const BAR_MEM_ADDRESS_MASK: u32 = !0xF;
/// Address bits of an I/O BAR.
pub const BAR_IO_ADDRESS_MASK: u32 = !0x3;

/// Bridge memory windows are 1 MiB granular (base/limit hold address bits 31..20).
pub const BRIDGE_WINDOW_GRANULE: u64 = 1 << 20;
/// A memory base/limit pair that decodes nothing (base above limit).
pub const BRIDGE_WINDOW_OFF_BASE: u16 = 0xFFF0;
/// See [`BRIDGE_WINDOW_OFF_BASE`].
pub const BRIDGE_WINDOW_OFF_LIMIT: u16 = 0x0000;
/// An I/O base/limit pair that decodes nothing.
pub const BRIDGE_IO_OFF_BASE: u8 = 0xF0;
/// See [`BRIDGE_IO_OFF_BASE`].
pub const BRIDGE_IO_OFF_LIMIT: u8 = 0x00;

/// The MEMORY_BASE value for a window starting at `start` (1 MiB aligned, below 4 GiB).
pub const fn bridge_memory_base(start: u64) -> u16 {
    ((start >> 16) as u16) & 0xFFF0
}

/// The MEMORY_LIMIT value for a window whose last byte is `last`.
pub const fn bridge_memory_limit(last: u64) -> u16 {
    ((last >> 16) as u16) & 0xFFF0
}

bitflags! {
    /// Command register bits.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Command: u16 {
        /// Respond to I/O space accesses.
        const IO_SPACE = 1 << 0;
        /// Respond to memory space accesses.
        const MEMORY_SPACE = 1 << 1;
        /// May master the bus (DMA; for bridges, forward upstream requests).
        const BUS_MASTER = 1 << 2;
        /// Parity error response.
        const PARITY_ERROR_RESPONSE = 1 << 6;
        /// SERR# enable.
        const SERR = 1 << 8;
        /// INTx disable.
        const INTX_DISABLE = 1 << 10;
    }
}

bitflags! {
    /// Status register bits enumeration looks at.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct Status: u16 {
        /// The capabilities list at CAP_POINTER is valid.
        const CAP_LIST = 1 << 4;
    }
}

/// Capability id of the PCI Express capability.
pub const CAP_ID_PCIE: u8 = 0x10;
/// Offset of the PCIe capabilities register inside the capability.
pub const PCIE_CAPABILITIES: u16 = 0x2;
/// Device/port type field of the PCIe capabilities register (bits 7..4).
pub const PCIE_TYPE_SHIFT: u32 = 4;
/// Device/port type: root port.
pub const PCIE_TYPE_ROOT_PORT: u8 = 4;
/// Capability walks stop after this many entries, so a looping list cannot hang us
/// (48 = (256 - 64) / 4, the most non-overlapping capabilities that fit).
pub const MAX_CAPABILITIES: usize = 48;
