//! PAPR return codes as types, and the one place every error of the layers below becomes
//! one: hypercall statuses ([`HStatus`], r3) and RTAS statuses ([`RtasStatus`], the first
//! return cell).
//!
//! Every conversion is an exhaustive `match` with no wildcard arm, so a new error variant in
//! `hv` or `papr` does not compile until someone decides its status here. (The TCE calls'
//! statuses live in `hcall::codes` today; the restructure's typed ABI unifies the two.)
//!
//! Resources: LoPAR 14.5.4 (hcall return codes), 7.2.8 (RTAS status values); Linux
//! arch/powerpc/include/asm/hvcall.h and asm/rtas.h (values); QEMU include/hw/ppc/spapr.h
//! (H_UNSUPPORTED_FLAG = -256, RTAS_OUT_*).

use super::hvterm::HvtermError;
use super::xics::XicsError;
use crate::hv::hpt::HptError;

/// A hypercall status (r3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HStatus {
    /// H_SUCCESS (0).
    Success,
    /// H_BUSY (1): retry.
    Busy,
    /// H_HARDWARE (-1).
    Hardware,
    /// H_FUNCTION (-2): not supported.
    Function,
    /// H_PRIVILEGE (-3): the caller may not.
    Privilege,
    /// H_PARAMETER (-4).
    Parameter,
    /// H_PTEG_FULL (-6).
    PtegFull,
    /// H_NOT_FOUND (-7).
    NotFound,
    /// H_P2 (-55): the second parameter.
    P2,
    /// H_P3 (-56).
    P3,
    /// H_P4 (-57).
    P4,
    /// H_UNSUPPORTED_FLAG (-256, the start of the unsupported-flag range).
    UnsupportedFlag,
}

impl HStatus {
    /// The value for r3.
    pub const fn code(self) -> i64 {
        match self {
            HStatus::Success => 0,
            HStatus::Busy => 1,
            HStatus::Hardware => -1,
            HStatus::Function => -2,
            HStatus::Privilege => -3,
            HStatus::Parameter => -4,
            HStatus::PtegFull => -6,
            HStatus::NotFound => -7,
            HStatus::P2 => -55,
            HStatus::P3 => -56,
            HStatus::P4 => -57,
            HStatus::UnsupportedFlag => -256,
        }
    }

    /// Every status, for tables and tests.
    pub const ALL: [HStatus; 12] = [
        HStatus::Success,
        HStatus::Busy,
        HStatus::Hardware,
        HStatus::Function,
        HStatus::Privilege,
        HStatus::Parameter,
        HStatus::PtegFull,
        HStatus::NotFound,
        HStatus::P2,
        HStatus::P3,
        HStatus::P4,
        HStatus::UnsupportedFlag,
    ];
}

impl From<HptError> for HStatus {
    /// QEMU and KVM answer H_PARAMETER for every malformed HPT argument (Linux tells only
    /// H_PTEG_FULL and H_NOT_FOUND apart); a table that no longer decodes is H_HARDWARE.
    fn from(error: HptError) -> Self {
        match error {
            HptError::SlotOutOfRange
            | HptError::BadSegmentSize
            | HptError::BadPageSize
            | HptError::BadAvpn
            | HptError::ReservedVsid
            | HptError::BadRealPageBits
            | HptError::OutsidePartition
            | HptError::BadStorageAttributes
            | HptError::BadSpecifier => HStatus::Parameter,
            HptError::PtegFull => HStatus::PtegFull,
            HptError::NotFound => HStatus::NotFound,
            HptError::GuestMemoryFault | HptError::CorruptEntry => HStatus::Hardware,
        }
    }
}

impl From<XicsError> for HStatus {
    /// QEMU's xics_spapr.c answers H_PARAMETER for a server that does not exist; values
    /// that do not fit their field (QEMU truncates them) are H_PARAMETER here.
    fn from(error: XicsError) -> Self {
        match error {
            XicsError::BadServer | XicsError::BadSource | XicsError::BadValue => HStatus::Parameter,
        }
    }
}

impl From<HvtermError> for HStatus {
    /// QEMU's spapr_vty.c: H_PARAMETER for an unknown terminal or more than 16 bytes.
    fn from(error: HvtermError) -> Self {
        match error {
            HvtermError::UnknownTerminal | HvtermError::TooLong => HStatus::Parameter,
        }
    }
}

/// An RTAS status (the first return cell).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RtasStatus {
    /// 0.
    Success,
    /// 1: event-scan found nothing to report.
    NoErrorsFound,
    /// -1: hardware error (also QEMU's answer for PCI config without a device).
    HardwareError,
    /// -2: busy, retry.
    Busy,
    /// -3: parameter error.
    ParameterError,
    /// -3 as well: the parameter (e.g. a system parameter) is not supported.
    NotSupported,
    /// -9002: not authorised.
    NotAuthorized,
}

impl RtasStatus {
    /// The value for the first return cell.
    pub const fn code(self) -> i32 {
        match self {
            RtasStatus::Success => 0,
            RtasStatus::NoErrorsFound => 1,
            RtasStatus::HardwareError => -1,
            RtasStatus::Busy => -2,
            RtasStatus::ParameterError | RtasStatus::NotSupported => -3,
            RtasStatus::NotAuthorized => -9002,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_linuxs_values() {
        let codes: alloc::vec::Vec<i64> = HStatus::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(codes, [0, 1, -1, -2, -3, -4, -6, -7, -55, -56, -57, -256]);
        assert_eq!(RtasStatus::ParameterError.code(), -3);
        assert_eq!(RtasStatus::NoErrorsFound.code(), 1);
    }

    #[test]
    fn hpt_errors_map_as_qemu_and_kvm_answer() {
        assert_eq!(HStatus::from(HptError::PtegFull), HStatus::PtegFull);
        assert_eq!(HStatus::from(HptError::NotFound), HStatus::NotFound);
        assert_eq!(
            HStatus::from(HptError::OutsidePartition),
            HStatus::Parameter
        );
        assert_eq!(HStatus::from(HptError::SlotOutOfRange), HStatus::Parameter);
        assert_eq!(HStatus::from(HptError::CorruptEntry), HStatus::Hardware);
    }
}
