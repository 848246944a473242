//! Host fakes shared by the PHB3 and PCI tests (included with
//! `#[path = "support/fakes/mod.rs"] mod fakes;`), one per file:
//! - [`frames`]: host RAM behind the frame allocator, a counting and failing frame allocator;
//! - [`xscom`]: an XSCOM that fails on demand;
//! - [`config`]: a PCI config space with bus routing, and the sample topology;
//! - [`phb`]: a PHB3 register block that records every access and routes CONFIG_DATA into
//!   a [`config::FakeConfig`].
//!
//! The fakes behave like QEMU's models where the code under test depends on it (each file
//! names the QEMU function it follows).
// Each test uses a part of the fakes.
#![allow(dead_code, unused_imports)]

pub mod config;
pub mod frames;
pub mod phb;
pub mod xscom;

pub use config::*;
pub use frames::*;
pub use phb::*;
pub use xscom::*;
