//! POWER8 (ppc64le) support: the only place with assembly. It holds the boot and vector
//! code from `boot/`, SPR access, barriers, cache-inhibited MMIO, XSCOM, OPAL calls, per-CPU
//! areas and the exception dispatcher.
//!
//! Resources: POWER ISA 2.07 Book III; skiboot asm/head.S, include/processor.h, include/io.h.

pub mod cpu;
pub mod mmio;
pub mod opal;
pub mod percpu;
pub mod smp;
pub mod trap;
pub mod xscom;

core::arch::global_asm!(
    concat!(
        include_str!("../../../boot/defs.S"),
        include_str!("../../../boot/head.S"),
        include_str!("../../../boot/entry.S"),
        include_str!("../../../boot/mem.S"),
    ),
    options(raw)
);
