//! H_SET_MODE(mflags, resource, value1, value2): the one resource a little-endian Linux
//! needs is 4, the endianness of interrupts taken in the guest, which the hypervisor keeps
//! in the partition's LPCR[ILE] (Linux panics "Could not enable little endian exceptions"
//! without it). Other resources are answered as QEMU answers what it does not support:
//! H_P2. That includes 3 (address translation mode, LPCR[AIL]: Linux then prints
//! "Relocation on exceptions not supported" and goes on) and 1/2 (CIABR, DAWR).
//!
//! The call changes no state itself: it returns the LPCR change for the exit path to apply
//! to every vCPU of the partition (QEMU's spapr_set_all_lpcrs).
//!
//! Resources: LoPAR 14.5.4.3.x (H_SET_MODE); QEMU hw/ppc/spapr_hcall.c (h_set_mode,
//! h_set_mode_resource_le); Linux arch/powerpc/include/asm/plpar_wrappers.h
//! (pseries_little_endian_exceptions: H_SET_MODE(1, 4, 0, 0)), platforms/pseries/setup.c.

use super::status::HStatus;

/// Resource 1: the completed-instruction address breakpoint register.
pub const RESOURCE_SET_CIABR: u64 = 1;
/// Resource 2: the data address watchpoint.
pub const RESOURCE_SET_DAWR: u64 = 2;
/// Resource 3: LPCR[AIL] (interrupts with relocation on).
pub const RESOURCE_ADDR_TRANS_MODE: u64 = 3;
/// Resource 4: LPCR[ILE].
pub const RESOURCE_LE: u64 = 4;
/// mflags for resource 4: big-endian interrupts.
pub const ENDIAN_BIG: u64 = 0;
/// mflags for resource 4: little-endian interrupts.
pub const ENDIAN_LITTLE: u64 = 1;

/// LPCR[ILE], bit 38: interrupts delivered to the guest are taken little-endian.
pub const LPCR_ILE: u64 = 1 << (63 - 38);

/// What an accepted H_SET_MODE asks of the partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetModeEffect {
    /// Set (true) or clear LPCR[ILE] on every vCPU.
    InterruptsLittleEndian(bool),
}

impl SetModeEffect {
    /// The LPCR value after the change.
    pub const fn apply_to_lpcr(self, lpcr: u64) -> u64 {
        match self {
            SetModeEffect::InterruptsLittleEndian(true) => lpcr | LPCR_ILE,
            SetModeEffect::InterruptsLittleEndian(false) => lpcr & !LPCR_ILE,
        }
    }
}

/// H_SET_MODE's checks and effect.
pub fn set_mode(
    mflags: u64,
    resource: u64,
    value1: u64,
    value2: u64,
) -> Result<SetModeEffect, HStatus> {
    match resource {
        RESOURCE_LE => {
            if value1 != 0 {
                return Err(HStatus::P3);
            }
            if value2 != 0 {
                return Err(HStatus::P4);
            }
            match mflags {
                ENDIAN_BIG => Ok(SetModeEffect::InterruptsLittleEndian(false)),
                ENDIAN_LITTLE => Ok(SetModeEffect::InterruptsLittleEndian(true)),
                _ => Err(HStatus::UnsupportedFlag),
            }
        }
        _ => Err(HStatus::P2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_little_endian_request_sets_ile_and_big_clears_it() {
        let effect = set_mode(1, RESOURCE_LE, 0, 0).unwrap();
        assert_eq!(effect, SetModeEffect::InterruptsLittleEndian(true));
        assert_eq!(
            effect.apply_to_lpcr(0x8008_0000_0000_0000),
            0x8008_0000_0200_0000
        );
        let effect = set_mode(0, RESOURCE_LE, 0, 0).unwrap();
        assert_eq!(
            effect.apply_to_lpcr(0x8008_0000_0200_0000),
            0x8008_0000_0000_0000
        );
    }

    #[test]
    fn bad_arguments_get_qemus_statuses() {
        assert_eq!(set_mode(1, RESOURCE_LE, 1, 0), Err(HStatus::P3));
        assert_eq!(set_mode(1, RESOURCE_LE, 0, 1), Err(HStatus::P4));
        assert_eq!(
            set_mode(2, RESOURCE_LE, 0, 0),
            Err(HStatus::UnsupportedFlag)
        );
        assert_eq!(
            set_mode(u64::MAX, RESOURCE_LE, 0, 0),
            Err(HStatus::UnsupportedFlag)
        );
        for resource in [
            0,
            RESOURCE_SET_CIABR,
            RESOURCE_SET_DAWR,
            RESOURCE_ADDR_TRANS_MODE,
            5,
            u64::MAX,
        ] {
            assert_eq!(
                set_mode(3, resource, 0, 0),
                Err(HStatus::P2),
                "resource {resource}"
            );
        }
    }
}
