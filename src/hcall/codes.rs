//! PAPR hypercall opcodes and return codes, and the register interface of one call.
//!
//! Resources: LoPAR ch_lpar_option (hypercall list); Linux arch/powerpc/include/asm/hvcall.h
//! (values). H_TOO_HARD (9999) is KVM-internal and never returned here.
//!
//! The firmware-private opcodes (DMA window management, see [`super::windows`]) sit in the
//! range PAPR leaves to the platform (0xF000 and up, where KVM/QEMU put H_RTAS 0xF000,
//! H_LOGICAL_MEMOP 0xF001, H_CAS 0xF002, H_UPDATE_DT 0xF003, H_VOF_CLIENT 0xF005, and pHyp
//! H_GET_24X7_CATALOG_PAGE 0xF078, H_GET_24X7_DATA 0xF07C, H_GET_PERF_COUNTER_INFO 0xF080;
//! nested KVM starts at 0xF800). 0xF200..=0xF20C clashes with none of them.

/// H_GET_TCE(liobn, ioba) -> r4 = tce.
pub const H_GET_TCE: u64 = 0x1C;
/// H_PUT_TCE(liobn, ioba, tce).
pub const H_PUT_TCE: u64 = 0x20;
/// H_STUFF_TCE(liobn, ioba, tce_value, count).
pub const H_STUFF_TCE: u64 = 0x138;
/// H_PUT_TCE_INDIRECT(liobn, ioba, tce_list, count).
pub const H_PUT_TCE_INDIRECT: u64 = 0x13C;

/// First firmware-private opcode (tcefw's block in the platform-specific range).
pub const H_TCEFW_BASE: u64 = 0xF200;
/// Query the DMA window resources of a PE (ibm,query-pe-dma-window).
pub const H_TCEFW_QUERY_PE_DMA_WINDOW: u64 = H_TCEFW_BASE;
/// Create a DMA window for a PE (ibm,create-pe-dma-window).
pub const H_TCEFW_CREATE_PE_DMA_WINDOW: u64 = H_TCEFW_BASE + 0x4;
/// Remove a DMA window (ibm,remove-pe-dma-window).
pub const H_TCEFW_REMOVE_PE_DMA_WINDOW: u64 = H_TCEFW_BASE + 0x8;
/// Reset a PE to its default DMA window (ibm,reset-pe-dma-windows).
pub const H_TCEFW_RESET_PE_DMA_WINDOWS: u64 = H_TCEFW_BASE + 0xC;

/// Success.
pub const H_SUCCESS: i64 = 0;
/// Busy: retry.
pub const H_BUSY: i64 = 1;
/// Partially done.
pub const H_PARTIAL: i64 = 5;
/// Hardware error.
pub const H_HARDWARE: i64 = -1;
/// Unknown or unsupported function.
pub const H_FUNCTION: i64 = -2;
/// Caller not privileged.
pub const H_PRIVILEGE: i64 = -3;
/// Bad parameter.
pub const H_PARAMETER: i64 = -4;
/// Out of memory in the hypervisor.
pub const H_NO_MEM: i64 = -9;
/// A resource limit is reached.
pub const H_RESOURCE: i64 = -16;
/// Bad parameter 2.
pub const H_P2: i64 = -55;
/// Bad parameter 3.
pub const H_P3: i64 = -56;
/// Bad parameter 4.
pub const H_P4: i64 = -57;

/// Arguments of one call: r4..r12.
pub const HCALL_ARGS: usize = 9;
/// Outputs of one call: r4..r12 (as `plpar_hcall9`).
pub const HCALL_RETS: usize = 9;

/// What goes back to the caller: r3 = status, r4.. = outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HcallReturn {
    /// r3.
    pub status: i64,
    /// r4 onward; unused words are 0.
    pub out: [u64; HCALL_RETS],
}

impl HcallReturn {
    /// A status with no outputs.
    pub const fn status(status: i64) -> Self {
        HcallReturn {
            status,
            out: [0; HCALL_RETS],
        }
    }

    /// H_SUCCESS with r4 = `value`.
    pub const fn success_with(value: u64) -> Self {
        let mut out = [0; HCALL_RETS];
        out[0] = value;
        HcallReturn {
            status: H_SUCCESS,
            out,
        }
    }
}
