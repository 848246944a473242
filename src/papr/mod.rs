//! The PAPR platform a partition sees: the hypercall ABI and its dispatcher, RTAS, the
//! virtual terminal, H_SET_MODE, a small XICS interrupt controller, per-opcode call counts,
//! and the typed PAPR statuses every error below becomes.
//!
//! This layer calls `hv` (the partition's HPT and memory) and, through the exit path, the TCE
//! service; nothing below calls it. Everything is `no_std` + `alloc`, free of `unsafe`,
//! host-tested, and allocation-free on the hypercall path (storage is sized when a
//! partition is made). Platform effects (console, time, power, vCPU start/stop) go through
//! [`hcall::PaprPlatform`] and [`rtas::RtasPlatform`]. How the exit path wires it:
//! `docs/hv-papr-design.md`.
//!
//! Resources: LoPAR (PAPR) ch. 7 (RTAS), ch. 14 (hypervisor interface); QEMU hw/ppc/spapr*.c
//! and hw/intc/xics*.c; Linux arch/powerpc/platforms/pseries.
#![forbid(unsafe_code)]

pub mod counts;
pub mod hcall;
pub mod hvterm;
pub mod rtas;
pub mod set_mode;
pub mod status;
pub mod xics;

pub use hcall::{route, Caller, Papr, PaprPlatform, PaprRequest, PaprReturn, Route, VcpuEffect};
pub use status::{HStatus, RtasStatus};
