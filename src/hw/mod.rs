//! The bottom layer: the interfaces through which logic reaches hardware, and the layouts
//! that Rust shares with the assembly in `boot/`. No logic lives here and no unsafe: `arch`
//! implements these traits for the real machine, host fakes and the software PHB3 model
//! implement them for tests, and every layer above codes against them.
//!
//! - [`regio`]: a PHB's register space (64-bit big-endian registers, little-endian
//!   config-data lanes) and the access [`regio::Width`];
//!
//! Resources: the style of tock's `kernel::hil` (hardware interface traits that chips
//! implement); skiboot include/io.h (what a register access is on POWER).
#![forbid(unsafe_code)]

pub mod regio;
