//! The hypervisor's partition logic that needs no assembly: guest-real memory of a partition,
//! the per-partition hashed page table (HPT) with the PAPR HPT hypercalls' semantics, the
//! table that names a partition by its LPID, and the checked ELF loader plan for a guest
//! kernel.
//!
//! Everything here is `no_std` + `alloc`, free of `unsafe`, and host-tested. Hardware effects
//! go through small traits that `arch/` implements and host tests fake:
//! - [`hpt::HptMemory`]: the 64-bit stores and loads of the HPT the CPU walks;
//! - [`hpt::TlbInvalidate`]: `ptesync`, `eieio`, `tlbie`, `tlbsync`;
//! - [`memory::GuestMemory`]: bounds-checked copies into and out of a partition's memory.
//!
//! Layering: `hv` knows nothing of PAPR statuses, RTAS or the device tree; `papr/` calls `hv`
//! and maps its typed errors to PAPR statuses, never the other way round.
//! The design and the wiring contract for the exit path: `docs/hv-papr-design.md`.
//!
//! Resources: POWER ISA 2.07B Book III-S ch. 5 (storage control, hashed page table, VRMA);
//! LoPAR ch. 14 (hypervisor calls); Linux arch/powerpc/kvm/book3s_hv_rm_mmu.c and
//! book3s_64_mmu_hv.c (KVM HV); QEMU hw/ppc/spapr_softmmu.c and target/ppc/mmu-hash64.c.
#![forbid(unsafe_code)]

pub mod elf;
pub mod hpt;
pub mod lpid;
pub mod memory;

pub use lpid::{Lpid, LpidTable, LpidTableError};
pub use memory::{GuestMemory, GuestMemoryError, GuestRealMap, GuestRealMapError, HostAddr};
