//! XSCOM: the POWER8 path from the CPU to the PCB (pervasive) registers of each chip. The
//! access trait, its errors, and the two pieces of hardware layout an implementation needs
//! (where a PCB address sits in the chip's MMIO window; what HMER says after an access),
//! kept here so that the layout is host-tested while `arch` does the accesses.
//!
//! Resources: skiboot hw/xscom.c (xscom_addr, xscom_handle_error, HMER bits);
//! QEMU hw/ppc/pnv_xscom.c (pnv_xscom_pcba, HMER XSCOM_DONE/FAIL).

/// Errors from one XSCOM access, decoded from HMER.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XscomError {
    /// HMER\[XSCOM_FAIL\] was set; `status` is HMER bits 21..23 (1 = busy, 2..7 = errors).
    Failed {
        /// The PCB address accessed.
        pcb: u64,
        /// HMER bits 21..23.
        status: u8,
    },
    /// HMER\[XSCOM_DONE\] never came.
    Timeout {
        /// The PCB address accessed.
        pcb: u64,
    },
    /// The PCB address does not fit the 32-bit XSCOM address space.
    BadAddress {
        /// The PCB address asked for.
        pcb: u64,
    },
}

impl core::fmt::Display for XscomError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            XscomError::Failed { pcb, status } => {
                write!(
                    f,
                    "XSCOM access to pcb {pcb:#x} failed (HMER status {status})"
                )
            }
            XscomError::Timeout { pcb } => write!(f, "XSCOM access to pcb {pcb:#x} timed out"),
            XscomError::BadAddress { pcb } => write!(f, "pcb address {pcb:#x} is out of range"),
        }
    }
}

/// One chip's XSCOM: 64-bit reads and writes of PCB registers.
pub trait Xscom: Sync {
    /// Reads the PCB register `pcb`.
    fn read(&self, pcb: u64) -> Result<u64, XscomError>;
    /// Writes the PCB register `pcb`.
    fn write(&self, pcb: u64, value: u64) -> Result<(), XscomError>;
}

/// HMER bit 8: the last XSCOM access failed.
pub const HMER_XSCOM_FAIL: u64 = 1 << (63 - 8);
/// HMER bit 9: the last XSCOM access completed.
pub const HMER_XSCOM_DONE: u64 = 1 << (63 - 9);
/// HMER bits 21..23: status of the failed access.
pub const HMER_XSCOM_STATUS_SHIFT: u32 = 63 - 23;

/// The MMIO offset of PCB register `pcb` from the chip's XSCOM base (P8 layout: the PCB
/// address is split so that bits 0..3 select the 8-byte word inside a 128-byte block).
pub fn mmio_offset(pcb: u64) -> Result<u64, XscomError> {
    if pcb > 0xFFFF_FFFF {
        return Err(XscomError::BadAddress { pcb });
    }
    Ok(((pcb << 4) & !0xFF) | ((pcb << 3) & 0x78))
}

/// Decodes HMER after an access: `Ok` when DONE without FAIL.
pub fn check_hmer(hmer: u64, pcb: u64) -> Result<(), XscomError> {
    if hmer & HMER_XSCOM_FAIL != 0 {
        let status = ((hmer >> HMER_XSCOM_STATUS_SHIFT) & 0x7) as u8;
        return Err(XscomError::Failed { pcb, status });
    }
    if hmer & HMER_XSCOM_DONE == 0 {
        return Err(XscomError::Timeout { pcb });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcb_to_mmio_matches_skiboot_formula() {
        // LPC ECCB control at pcb 0xb0020: (0xb0020 << 4) & ~0xff = 0xb00200, + 0.
        assert_eq!(mmio_offset(0xb0020), Ok(0xb00200));
        // ECCB data at pcb 0xb0023: low 3 bits select word 3 -> +0x18.
        assert_eq!(mmio_offset(0xb0023), Ok(0xb00218));
        // PBCQ nest base 0x2012000 + 0x45 (BAR_EN): 0x20120450 & ~0xff | (5 << 3).
        assert_eq!(mmio_offset(0x2012045), Ok(0x20120428));
        assert_eq!(
            mmio_offset(0x1_0000_0000),
            Err(XscomError::BadAddress { pcb: 0x1_0000_0000 })
        );
    }

    #[test]
    fn hmer_decoding() {
        assert_eq!(check_hmer(HMER_XSCOM_DONE, 1), Ok(()));
        assert_eq!(check_hmer(0, 1), Err(XscomError::Timeout { pcb: 1 }));
        let fail = HMER_XSCOM_DONE | HMER_XSCOM_FAIL | (5 << HMER_XSCOM_STATUS_SHIFT);
        assert_eq!(
            check_hmer(fail, 7),
            Err(XscomError::Failed { pcb: 7, status: 5 })
        );
    }
}
