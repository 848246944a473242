//! POWER8 (ppc64le) support: the only place with assembly. It holds the boot and vector
//! code from `boot/`, the Rust entry points the assembly calls, SPR access, barriers,
//! cache-inhibited MMIO, XSCOM, OPAL calls, per-CPU areas, SMP release and the exception
//! dispatcher. It implements the interfaces of `crate::hw` and names nothing above itself:
//! it reaches the layers above only through the hook table of [`hooks`].
//!
//! Resources: POWER ISA 2.07 Book III; skiboot asm/head.S, include/processor.h, include/io.h.

pub mod boot;
pub mod cpu;
pub mod hooks;
pub mod mmio;
pub mod opal;
pub mod percpu;
mod rt;
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
