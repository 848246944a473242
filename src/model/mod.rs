//! A software PHB3 and host rig for tests and benchmarks: the same iommu and hcall code runs
//! against it unchanged, and its TCE cache (which only kills invalidate) makes a missing or
//! late kill observable, which QEMU cannot (it caches nothing and ignores kills).
//!
//! - [`phb3`]: the PHB model (registers, TVT, RTT, TCE cache, DMA engine, pin watch);
//! - [`host`]: host memory as physical memory, and a counting allocator (the model's unsafe
//!   leaf);
//! - [`rig`]: wiring for tests;
//! - [`fuzz`]: a hostile caller that throws random hypercalls at a rig and proves that every
//!   rejected call changed nothing (shared by `benches/fuzz_hcall.rs` and `tests/hcall_fuzz.rs`).
//!
//! Resources: QEMU hw/pci-host/pnv_phb3.c; skiboot include/phb3-regs.h; Linux
//! arch/powerpc/platforms/powernv/pci-ioda.c (kill encodings); docs/tce-protocol.md ("The
//! PHB3 model used by host tests").

pub mod fuzz;
pub mod host;
pub mod phb3;
pub mod rig;

pub use host::{Arena, CountingAlloc, DeviceMemory};
pub use phb3::{DmaFault, ModelStats, Phb3Model, StaleReach};
pub use rig::Rig;
