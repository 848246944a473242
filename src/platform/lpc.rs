//! The POWER8 LPC bus reached through the ECCB registers over XSCOM, and the ns16550 UART and
//! the ib700 watchdog that sit on its I/O space.
//!
//! Resources: skiboot hw/lpc.c (ECCB_CTL/STAT/DATA, __lpc_read/__lpc_write, LPC_IO_OPB_ADDR);
//! QEMU hw/ppc/pnv_lpc.c (pnv_lpc_do_eccb: data in the high 32 bits, first byte in the top
//! byte; read data in STAT bits 6..37); QEMU hw/watchdog/wdt_ib700.c (port 0x443).

use crate::hw::xscom::{Xscom, XscomError};

/// ECCB control register, relative to the LPC node's PCB base (`reg` of `isa@b0020`).
pub const ECCB_CTL: u64 = 0;
/// ECCB status register.
pub const ECCB_STAT: u64 = 2;
/// ECCB data register.
pub const ECCB_DATA: u64 = 3;

const ECCB_CTL_MAGIC: u64 = 0xd000_0000_0000_0000;
const ECCB_CTL_DATASZ_SHIFT: u32 = 63 - 7;
const ECCB_CTL_READ: u64 = 1 << (63 - 15);
const ECCB_CTL_ADDRLEN_SHIFT: u32 = 63 - 25;
const ECCB_ADDRLEN_4B: u64 = 4;
const ECCB_STAT_PIB_ERR: u64 = 0xfc00_0000_0000_0000; // IBM bits 0..5
const ECCB_STAT_RD_DATA_SHIFT: u32 = 63 - 37;
const ECCB_STAT_BUSY: u64 = 1 << (63 - 44);
const ECCB_STAT_ERRORS1: u64 = 0x7f << (63 - 51); // IBM bits 45..51
const ECCB_STAT_OP_DONE: u64 = 1 << (63 - 52);
const ECCB_STAT_ERRORS2: u64 = 0x7 << (63 - 55); // IBM bits 53..55
const ECCB_STAT_ERRORS: u64 = ECCB_STAT_PIB_ERR | ECCB_STAT_ERRORS1 | ECCB_STAT_ERRORS2;

/// Where LPC I/O space appears on the OPB bus behind the ECCB.
pub const LPC_IO_OPB_ADDR: u32 = 0xd001_0000;

/// How many status polls before an LPC access is declared lost.
const ECCB_POLL_LIMIT: u32 = 100_000;

/// An LPC access failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LpcError {
    /// The XSCOM access to an ECCB register failed.
    Xscom(XscomError),
    /// The ECCB reported an error in its status register.
    Status(u64),
    /// The ECCB never reported completion.
    Timeout,
    /// Only 1-, 2- and 4-byte accesses exist.
    BadSize(u8),
}

impl From<XscomError> for LpcError {
    fn from(e: XscomError) -> Self {
        LpcError::Xscom(e)
    }
}

impl core::fmt::Display for LpcError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LpcError::Xscom(e) => write!(f, "LPC: {e}"),
            LpcError::Status(s) => write!(f, "LPC: ECCB error status {s:#018x}"),
            LpcError::Timeout => write!(f, "LPC: ECCB access never completed"),
            LpcError::BadSize(n) => write!(f, "LPC: {n}-byte access is not possible"),
        }
    }
}

/// The ECCB control word for an access of `size` bytes at OPB address `opb_addr`.
pub fn eccb_command(opb_addr: u32, size: u8, read: bool) -> u64 {
    let mut cmd = ECCB_CTL_MAGIC
        | (u64::from(size) << ECCB_CTL_DATASZ_SHIFT)
        | (ECCB_ADDRLEN_4B << ECCB_CTL_ADDRLEN_SHIFT)
        | u64::from(opb_addr);
    if read {
        cmd |= ECCB_CTL_READ;
    }
    cmd
}

/// The ECCB data word for writing the low `size` bytes of `value`: the first byte on the
/// bus is the most significant byte of the upper 32 bits.
pub fn eccb_write_data(value: u32, size: u8) -> u64 {
    let aligned = match size {
        1 => value << 24,
        2 => value << 16,
        _ => value,
    };
    u64::from(aligned) << 32
}

/// The value read, from an ECCB status word.
pub fn eccb_read_data(status: u64, size: u8) -> u32 {
    let data = (status >> ECCB_STAT_RD_DATA_SHIFT) as u32;
    match size {
        1 => data >> 24,
        2 => data >> 16,
        _ => data,
    }
}

/// The LPC bus of one chip.
pub struct LpcBus<'a> {
    xscom: &'a dyn Xscom,
    eccb_pcb: u64,
}

impl<'a> LpcBus<'a> {
    /// The LPC behind the ECCB at PCB address `eccb_pcb` (the LPC node's `reg`).
    pub fn new(xscom: &'a dyn Xscom, eccb_pcb: u64) -> Self {
        Self { xscom, eccb_pcb }
    }

    fn wait_done(&self) -> Result<u64, LpcError> {
        for _ in 0..ECCB_POLL_LIMIT {
            let status = self.xscom.read(self.eccb_pcb + ECCB_STAT)?;
            if status & ECCB_STAT_ERRORS != 0 {
                return Err(LpcError::Status(status));
            }
            if status & ECCB_STAT_OP_DONE != 0 && status & ECCB_STAT_BUSY == 0 {
                return Ok(status);
            }
        }
        Err(LpcError::Timeout)
    }

    fn check_size(size: u8) -> Result<(), LpcError> {
        match size {
            1 | 2 | 4 => Ok(()),
            other => Err(LpcError::BadSize(other)),
        }
    }

    /// Writes `size` bytes of `value` to LPC I/O port `port`.
    pub fn io_write(&self, port: u16, value: u32, size: u8) -> Result<(), LpcError> {
        Self::check_size(size)?;
        let addr = LPC_IO_OPB_ADDR + u32::from(port);
        self.xscom
            .write(self.eccb_pcb + ECCB_DATA, eccb_write_data(value, size))?;
        self.xscom
            .write(self.eccb_pcb + ECCB_CTL, eccb_command(addr, size, false))?;
        self.wait_done().map(|_| ())
    }

    /// Reads `size` bytes from LPC I/O port `port`.
    pub fn io_read(&self, port: u16, size: u8) -> Result<u32, LpcError> {
        Self::check_size(size)?;
        let addr = LPC_IO_OPB_ADDR + u32::from(port);
        self.xscom
            .write(self.eccb_pcb + ECCB_CTL, eccb_command(addr, size, true))?;
        self.wait_done().map(|status| eccb_read_data(status, size))
    }
}

/// ns16550 register offsets and the line-status bit we need.
const UART_THR: u16 = 0;
const UART_LSR: u16 = 5;
const UART_LSR_THRE: u32 = 0x20;
/// Polls of LSR before giving up on one character (keeps a dead UART from hanging boot).
const UART_TX_POLL_LIMIT: u32 = 10_000;

/// An ns16550 UART on LPC I/O space.
pub struct LpcUart<'a> {
    bus: LpcBus<'a>,
    port: u16,
}

impl<'a> LpcUart<'a> {
    /// The UART whose registers start at I/O port `port` (from the device tree).
    pub fn new(bus: LpcBus<'a>, port: u16) -> Self {
        Self { bus, port }
    }

    /// Sends one byte, waiting (bounded) for room in the transmitter.
    pub fn put_byte(&self, byte: u8) -> Result<(), LpcError> {
        for _ in 0..UART_TX_POLL_LIMIT {
            if self.bus.io_read(self.port + UART_LSR, 1)? & UART_LSR_THRE != 0 {
                break;
            }
        }
        self.bus.io_write(self.port + UART_THR, u32::from(byte), 1)
    }
}

/// ib700 watchdog: writing a timeout index to this port arms it; index 0x0f is 0 seconds,
/// so with `-action watchdog=poweroff` QEMU powers off at once.
pub const IB700_ARM_PORT: u16 = 0x443;
/// The ib700 timeout index for the shortest (zero) timeout.
pub const IB700_TIMEOUT_NOW: u32 = 0x0f;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::vec::Vec;

    #[test]
    fn eccb_command_encoding_matches_skiboot_fields() {
        // Worked by hand: magic 0xd in bits 0..3, size 1 in bits 4..7 -> 0xd1 in the top
        // byte; ADDRLEN 4 in bits 23..25 -> 4 << 38 = 0x100_0000_0000; address in 32..63.
        assert_eq!(eccb_command(0xd00103f8, 1, false), 0xd100_0100_d001_03f8);
        // READ is bit 15 -> 1 << 48.
        assert_eq!(eccb_command(0xd00103fd, 1, true), 0xd101_0100_d001_03fd);
        assert_eq!(eccb_command(0xd0010000, 4, false), 0xd400_0100_d001_0000);
    }

    #[test]
    fn eccb_data_lanes() {
        assert_eq!(eccb_write_data(0x41, 1), 0x4100_0000_0000_0000);
        assert_eq!(eccb_write_data(0x1234, 2), 0x1234_0000_0000_0000);
        assert_eq!(eccb_write_data(0xdeadbeef, 4), 0xdead_beef_0000_0000);
        // QEMU puts data[0] << 24 | ... into bits 6..37, i.e. << 26.
        let status = ECCB_STAT_OP_DONE | (0x6000_0000u64 << 26);
        assert_eq!(eccb_read_data(status, 1), 0x60);
        assert_eq!(eccb_read_data(status, 4), 0x6000_0000);
    }

    /// A fake XSCOM that models QEMU's ECCB: a write to CTL performs the access.
    struct FakeEccb {
        log: Mutex<Vec<(u64, u64)>>,
        data: Mutex<u64>,
        status: Mutex<u64>,
        fail_at: Option<usize>,
    }
    impl Xscom for FakeEccb {
        fn read(&self, pcb: u64) -> Result<u64, XscomError> {
            if pcb == 0xb0020 + ECCB_STAT {
                return Ok(core::mem::take(&mut *self.status.lock().unwrap()));
            }
            Ok(0)
        }
        fn write(&self, pcb: u64, value: u64) -> Result<(), XscomError> {
            let mut log = self.log.lock().unwrap();
            if Some(log.len()) == self.fail_at {
                return Err(XscomError::Failed { pcb, status: 7 });
            }
            log.push((pcb, value));
            match pcb - 0xb0020 {
                ECCB_DATA => *self.data.lock().unwrap() = value,
                ECCB_CTL => {
                    let lsr_thre = 0x20u64 << 24;
                    *self.status.lock().unwrap() = ECCB_STAT_OP_DONE
                        | if value & ECCB_CTL_READ != 0 {
                            lsr_thre << 26
                        } else {
                            0
                        };
                }
                _ => {}
            }
            Ok(())
        }
    }

    #[test]
    fn uart_byte_goes_through_data_then_control() {
        let fake = FakeEccb {
            log: Mutex::new(Vec::new()),
            data: Mutex::new(0),
            status: Mutex::new(0),
            fail_at: None,
        };
        let uart = LpcUart::new(LpcBus::new(&fake, 0xb0020), 0x3f8);
        uart.put_byte(b'A').unwrap();
        let log = fake.log.lock().unwrap();
        // LSR read (CTL write), then DATA write, then CTL write for THR.
        assert_eq!(log[0], (0xb0020, eccb_command(0xd00103fd, 1, true)));
        assert_eq!(log[1], (0xb0023, 0x4100_0000_0000_0000));
        assert_eq!(log[2], (0xb0020, eccb_command(0xd00103f8, 1, false)));
    }

    #[test]
    fn xscom_failure_and_bad_size_are_errors() {
        let fake = FakeEccb {
            log: Mutex::new(Vec::new()),
            data: Mutex::new(0),
            status: Mutex::new(0),
            fail_at: Some(0),
        };
        let bus = LpcBus::new(&fake, 0xb0020);
        assert!(matches!(
            bus.io_write(0x443, 0xf, 1),
            Err(LpcError::Xscom(_))
        ));
        assert_eq!(bus.io_write(0x443, 0xf, 3), Err(LpcError::BadSize(3)));
    }
}
