//! The hypercall layer: PAPR opcodes and status codes, partitions, the LIOBN registry, the
//! dispatcher of the TCE hypercalls, DMA window management for partitions (PE grants and the
//! firmware-private DDW hypercalls, registers documented in [`windows`]), and the audit of
//! every table against the page accounting and the allocators.
//!
//! The `sc 1` handler (`startup::hv`) calls [`Hypervisor::dispatch`] with r3 and r4.. and
//! writes the returned status to r3 and the outputs to r4...
//!
//! Resources: LoPAR ch_lpar_option; Linux arch/powerpc/include/asm/hvcall.h and
//! arch/powerpc/kvm/book3s_64_vio.c; QEMU hw/ppc/spapr_iommu.c; docs/tce-protocol.md.

pub mod audit;
pub mod codes;
pub mod hypervisor;
pub mod partition;
pub mod windows;

pub use audit::{AllocatorUsage, AuditReport, Violation};
pub use codes::*;
pub use hypervisor::{decode_liobn, liobn, HcallFault, Hypervisor, SetupError};
pub use partition::Partition;
pub use windows::{
    decode_pe_handle, default_window, pe_handle, PeDmaQuery, PeDmaRemoved, PeDmaReset, PeDmaWindow,
};
