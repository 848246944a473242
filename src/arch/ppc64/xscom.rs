//! XSCOM through the chip's MMIO window, with HMER checked after every access.
//!
//! Resources: skiboot hw/xscom.c (__xscom_read/__xscom_write: clear HMER, access with
//! ldcix/stdcix, poll HMER[XSCOM_DONE], decode XSCOM_FAIL and status).

use super::cpu::{mfspr, mtspr, spr};
use super::mmio::{ld_ci, st_ci};
use crate::hw::xscom::{
    check_hmer, mmio_offset, Xscom, XscomError, HMER_XSCOM_DONE, HMER_XSCOM_FAIL,
};
use crate::mm::phys::BootAuthority;

/// How many HMER polls before an XSCOM access is declared timed out.
const HMER_POLL_LIMIT: u32 = 100_000;
/// HMER writes AND into the register: this clears the XSCOM bits and keeps the others.
const HMER_CLEAR_XSCOM: u64 = !(HMER_XSCOM_DONE | HMER_XSCOM_FAIL | (0x7 << (63 - 23)));

/// One chip's XSCOM MMIO window.
pub struct ChipXscom {
    base: u64,
}

impl ChipXscom {
    /// The XSCOM window at `base`: the chip's XSCOM MMIO base, from its xscom node's `reg`
    /// (the boot authority's holder vouches for it).
    pub const fn new(_authority: &BootAuthority, base: u64) -> Self {
        Self { base }
    }

    fn wait(&self, pcb: u64) -> Result<(), XscomError> {
        let mut hmer = 0;
        for _ in 0..HMER_POLL_LIMIT {
            hmer = mfspr::<{ spr::HMER }>();
            if hmer & (HMER_XSCOM_DONE | HMER_XSCOM_FAIL) != 0 {
                break;
            }
        }
        clear_hmer();
        check_hmer(hmer, pcb)
    }
}

fn clear_hmer() {
    // SAFETY: HMER writes are ANDed in; this clears only the XSCOM status bits.
    unsafe { mtspr::<{ spr::HMER }>(HMER_CLEAR_XSCOM) };
}

impl Xscom for ChipXscom {
    fn read(&self, pcb: u64) -> Result<u64, XscomError> {
        let addr = self.base + mmio_offset(pcb)?;
        clear_hmer();
        // SAFETY: `addr` lies in this chip's XSCOM window (formula from skiboot xscom_addr).
        let value = u64::from_be(unsafe { ld_ci(addr) });
        self.wait(pcb).map(|()| value)
    }

    fn write(&self, pcb: u64, value: u64) -> Result<(), XscomError> {
        let addr = self.base + mmio_offset(pcb)?;
        clear_hmer();
        // SAFETY: `addr` lies in this chip's XSCOM window (formula from skiboot xscom_addr).
        unsafe { st_ci(addr, value.to_be()) };
        self.wait(pcb)
    }
}
