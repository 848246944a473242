//! A minimal driver for QEMU's `edu` teaching device (1234:11e8): identification, the
//! liveness check, and DMA between its 4 KiB buffer and a bus address. Tests use it to make a
//! device DMA through the PHB's TCEs.
//!
//! Facts from QEMU hw/misc/edu.c:
//! - BAR0 is 1 MiB of 32-bit memory; registers below 0x80 take 4-byte accesses only, the DMA
//!   registers 4 or 8 bytes. Registers are `DEVICE_NATIVE_ENDIAN`, i.e. big-endian on the ppc64
//!   target: this driver byte-swaps what [`Mmio`] gives (little-endian).
//! - 0x00 identification 0x010000ed (major 1, minor 0, magic 0xed); 0x04 liveness returns the
//!   complement of what was last written.
//! - DMA: source 0x80, destination 0x88, count 0x90, command 0x98 with start = 1, direction =
//!   2 (set: edu buffer → RAM, "EDU_DMA_TO_PCI"), raise IRQ = 4. The buffer is at device
//!   address 0x40000, 4096 bytes. Writes to the DMA registers are ignored while a transfer
//!   runs, and a command without the start bit is ignored. The transfer happens on a 100 ms
//!   virtual timer, after which the start bit clears: that is how completion is seen.
//! - edu only logs an out-of-buffer transfer and then overruns its buffer, so the range is
//!   checked here. The bus address is masked with the device's `dma_mask` property (28 bits by
//!   default: use `dma_mask=0xffffffffffffffff` for window-1 addresses).

use crate::hw::mmio::Mmio;
use bitflags::bitflags;
use core::fmt;

/// Vendor id (PCI_VENDOR_ID_QEMU).
pub const EDU_VENDOR: u16 = 0x1234;
/// Device id.
pub const EDU_DEVICE: u16 = 0x11E8;
/// BAR0 size.
pub const EDU_BAR0_SIZE: u64 = 1 << 20;
/// What the identification register holds.
pub const EDU_IDENTIFICATION: u32 = 0x0100_00ED;
/// Device address of the DMA buffer (`DMA_START`).
pub const EDU_BUFFER_ADDRESS: u64 = 0x40000;
/// Size of the DMA buffer (`DMA_SIZE`).
pub const EDU_BUFFER_SIZE: u64 = 4096;

/// Register offsets in BAR0.
pub mod reg {
    /// Identification (read-only), 4 bytes.
    pub const IDENTIFICATION: u64 = 0x00;
    /// Liveness check: reads the complement of the last value written, 4 bytes.
    pub const LIVENESS: u64 = 0x04;
    /// Factorial computation, 4 bytes.
    pub const FACTORIAL: u64 = 0x08;
    /// Status, 4 bytes.
    pub const STATUS: u64 = 0x20;
    /// Interrupt status, 4 bytes.
    pub const IRQ_STATUS: u64 = 0x24;
    /// Raise interrupt, 4 bytes.
    pub const IRQ_RAISE: u64 = 0x60;
    /// Acknowledge interrupt, 4 bytes.
    pub const IRQ_ACK: u64 = 0x64;
    /// DMA source address, 8 bytes.
    pub const DMA_SOURCE: u64 = 0x80;
    /// DMA destination address, 8 bytes.
    pub const DMA_DESTINATION: u64 = 0x88;
    /// DMA byte count, 8 bytes.
    pub const DMA_COUNT: u64 = 0x90;
    /// DMA command, 8 bytes.
    pub const DMA_COMMAND: u64 = 0x98;
}

bitflags! {
    /// DMA command register bits (`EDU_DMA_RUN`, `EDU_DMA_DIR`, `EDU_DMA_IRQ`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct DmaCommand: u64 {
        /// Start; edu clears it when the transfer is done.
        const START = 1;
        /// Direction: set = from the edu buffer to RAM, clear = from RAM into the buffer.
        const TO_RAM = 2;
        /// Raise an interrupt on completion.
        const IRQ = 4;
    }
}

/// Which way a DMA goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaDirection {
    /// The device reads RAM (bus address) into its buffer.
    RamToBuffer,
    /// The device writes its buffer to RAM (bus address).
    BufferToRam,
}

/// What went wrong talking to edu.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EduError {
    /// The identification register does not carry edu's magic byte 0xed.
    NotEdu {
        /// What it read.
        identification: u32,
    },
    /// The liveness register did not return the complement.
    NotAlive {
        /// Value written.
        wrote: u32,
        /// Value read back.
        read: u32,
    },
    /// The transfer would leave the 4 KiB buffer (or is empty).
    OutsideBuffer {
        /// Offset in the buffer.
        offset: u64,
        /// Length.
        len: u64,
    },
    /// A transfer is already running (edu would ignore the new one).
    Busy,
    /// The caller stopped waiting before the transfer completed.
    Timeout,
}

impl fmt::Display for EduError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EduError::NotEdu { identification } => {
                write!(f, "identification {identification:#010x} is not edu's")
            }
            EduError::NotAlive { wrote, read } => {
                write!(f, "liveness: wrote {wrote:#010x}, read {read:#010x}")
            }
            EduError::OutsideBuffer { offset, len } => {
                write!(
                    f,
                    "DMA of {len:#x} bytes at buffer offset {offset:#x} leaves the buffer"
                )
            }
            EduError::Busy => f.write_str("a DMA is already running"),
            EduError::Timeout => f.write_str("DMA did not complete"),
        }
    }
}

/// One edu device, through its BAR0.
pub struct Edu<'a> {
    mmio: &'a dyn Mmio,
}

impl<'a> Edu<'a> {
    /// The edu behind `bar0`, after checking its identification register.
    pub fn new(bar0: &'a dyn Mmio) -> Result<Self, EduError> {
        let edu = Edu { mmio: bar0 };
        let identification = edu.identification();
        if identification & 0xFF != EDU_IDENTIFICATION & 0xFF {
            return Err(EduError::NotEdu { identification });
        }
        Ok(edu)
    }

    // edu's registers are big-endian; `Mmio` speaks little-endian: swap here, nowhere else.
    fn read32(&self, offset: u64) -> u32 {
        self.mmio.read32(offset).swap_bytes()
    }
    fn write32(&self, offset: u64, value: u32) {
        self.mmio.write32(offset, value.swap_bytes());
    }
    fn read64(&self, offset: u64) -> u64 {
        self.mmio.read64(offset).swap_bytes()
    }
    fn write64(&self, offset: u64, value: u64) {
        self.mmio.write64(offset, value.swap_bytes());
    }

    /// The identification register (0x010000ed).
    pub fn identification(&self) -> u32 {
        self.read32(reg::IDENTIFICATION)
    }

    /// Writes `value` to the liveness register and checks that it reads back inverted.
    pub fn check_liveness(&self, value: u32) -> Result<(), EduError> {
        self.write32(reg::LIVENESS, value);
        let read = self.read32(reg::LIVENESS);
        if read != !value {
            return Err(EduError::NotAlive { wrote: value, read });
        }
        Ok(())
    }

    /// Whether a DMA is running (the command's start bit is still set).
    pub fn dma_busy(&self) -> bool {
        DmaCommand::from_bits_retain(self.read64(reg::DMA_COMMAND)).contains(DmaCommand::START)
    }

    /// Starts a DMA of `len` bytes between `buffer_offset` in edu's buffer and `bus_address`
    /// (an IOVA the PHB translates). Source, destination and count are written before the
    /// command, since edu starts on the command write.
    pub fn start_dma(
        &self,
        direction: DmaDirection,
        bus_address: u64,
        buffer_offset: u64,
        len: u64,
        interrupt: bool,
    ) -> Result<(), EduError> {
        let outside = EduError::OutsideBuffer {
            offset: buffer_offset,
            len,
        };
        let end = buffer_offset.checked_add(len).ok_or(outside)?;
        if len == 0 || end > EDU_BUFFER_SIZE {
            return Err(outside);
        }
        if self.dma_busy() {
            return Err(EduError::Busy);
        }
        let buffer = EDU_BUFFER_ADDRESS + buffer_offset;
        let mut command = DmaCommand::START;
        let (source, destination) = match direction {
            DmaDirection::RamToBuffer => (bus_address, buffer),
            DmaDirection::BufferToRam => {
                command |= DmaCommand::TO_RAM;
                (buffer, bus_address)
            }
        };
        if interrupt {
            command |= DmaCommand::IRQ;
        }
        self.write64(reg::DMA_SOURCE, source);
        self.write64(reg::DMA_DESTINATION, destination);
        self.write64(reg::DMA_COUNT, len);
        self.write64(reg::DMA_COMMAND, command.bits());
        Ok(())
    }

    /// Polls until the running DMA completes, calling `keep_waiting` between polls (it may
    /// sleep; returning `false` gives up with [`EduError::Timeout`]). edu reports no transfer
    /// errors: a DMA refused by the IOMMU still "completes", so compare memory afterwards.
    pub fn wait_dma(&self, mut keep_waiting: impl FnMut() -> bool) -> Result<(), EduError> {
        while self.dma_busy() {
            if !keep_waiting() {
                return Err(EduError::Timeout);
            }
        }
        Ok(())
    }
}
