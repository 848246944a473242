//! The bottom layer: the interfaces through which logic reaches hardware, and the layouts
//! that Rust shares with the assembly in `boot/`. No logic lives here and no unsafe: `arch`
//! implements these traits for the real machine, host fakes and the software PHB3 model
//! implement them for tests, and every layer above codes against them.
//!
//! - [`regio`]: a PHB's register space (64-bit big-endian registers, little-endian
//!   config-data lanes) and the access [`regio::Width`];
//! - [`mmio`]: a PCI device's memory BAR as the CPU sees it (what drivers use);
//! - [`console`]: a console device that takes bytes (UART, OPAL console);
//! - [`trap`]: the trap frame the vector code saves, checked at compile time against the
//!   offsets in boot/defs.S (read by [`asm`]);
//! - [`xscom`]: one chip's XSCOM (PCB register) access, with the P8 address layout and the
//!   HMER status bits its implementation decodes.
//!
//! Resources: the style of tock's `kernel::hil` (hardware interface traits that chips
//! implement); skiboot include/io.h (what a register access is on POWER).
#![forbid(unsafe_code)]

pub mod asm;
pub mod console;
pub mod mmio;
pub mod regio;
pub mod trap;
pub mod xscom;
