//! The generic flattened-device-tree code: a reader that checks every offset, length and
//! name of a blob it does not trust, decoders for property values, the span arithmetic on
//! physical ranges that `reg` properties describe, and a writer that builds blobs (for tests
//! today, and for the device trees the hypervisor will hand its guests).
//!
//! Nothing here knows about POWER or powernv: `platform::machine` reads the host's tree
//! with it.
//!
//! The `fdt` crate is deliberately not called past its header check: its accessors panic on
//! corrupt blobs (see [`flat`]), and checking a blob well enough to make them safe is the
//! whole work of a walker. So [`flat`] reads the blob with every offset checked and [`prop`]
//! decodes values with every length checked.
//!
//! Resources: Devicetree Specification v0.4 (chapters 2 and 5); dtc/libfdt (fdt.c,
//! fdt_ro.c, fdt_sw.c: the same checks and the same layout, in C).
#![forbid(unsafe_code)]

pub mod error;
pub mod flat;
pub mod memmap;
pub mod prop;
pub mod writer;

pub use error::{DevTreeError, ExpectedLength, HeaderError, PropertyError, StructureError};
pub use memmap::{merge_spans, subtract_spans, MemRange, Span};

/// The blob size a header announces, after checking its magic, version and block layout:
/// what boot code needs to turn the pointer in r3 into a slice to parse.
/// `header` needs only the first 40 bytes of the blob.
pub fn blob_size(header: &[u8]) -> Result<usize, DevTreeError> {
    Ok(flat::Header::decode(header)?.totalsize as usize)
}
