//! Errors of the device-tree reader: one typed value for everything that can be wrong with a
//! blob, so that firmware reports a bad tree instead of panicking on it.
//!
//! Each variant names where the problem is (byte offset for the blob's layout, node path and
//! property name for its contents) and what is wrong, in the wording of the Devicetree
//! Specification v0.4 (chapter 5 for the blob layout, chapter 2 for properties).

use alloc::string::String;
use core::fmt;

/// Why a device-tree blob could not be read, or lacks a node or property that its reader
/// (e.g. the host's machine description) needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DevTreeError {
    /// The FDT header, its block offsets or the memory reservation block are unusable.
    Header(HeaderError),
    /// The structure block does not follow the token grammar (spec 5.4).
    Structure {
        /// Byte offset from the start of the blob where the problem was found.
        offset: usize,
        /// What is wrong there.
        problem: StructureError,
    },
    /// A node the firmware cannot do without is absent.
    MissingNode {
        /// The node (or kind of node) looked for, e.g. `/cpus`.
        what: &'static str,
    },
    /// A node lacks a property the firmware needs from it.
    MissingProperty {
        /// Full path of the node.
        node: String,
        /// The property looked for.
        property: &'static str,
    },
    /// A property is present but its value cannot be used.
    BadProperty {
        /// Full path of the node.
        node: String,
        /// The property's name.
        property: &'static str,
        /// What is wrong with its value.
        problem: PropertyError,
    },
}

/// Problems with the FDT header (spec 5.2) and the memory reservation block (spec 5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The buffer cannot even hold the 40-byte header.
    TooShort {
        /// Bytes available.
        len: usize,
    },
    /// `magic` is not 0xd00dfeed.
    BadMagic {
        /// The value found.
        found: u32,
    },
    /// `totalsize` is larger than the buffer handed over.
    TotalSizeBeyondBuffer {
        /// The header's `totalsize`.
        totalsize: u32,
        /// Bytes available.
        len: usize,
    },
    /// `totalsize` is smaller than the header itself.
    TotalSizeTooSmall {
        /// The header's `totalsize`.
        totalsize: u32,
    },
    /// The blob is older than version 16 or needs a reader newer than version 17.
    UnsupportedVersion {
        /// The header's `version`.
        version: u32,
        /// The header's `last_comp_version`.
        last_comp_version: u32,
    },
    /// A block does not lie inside `totalsize` (or overlaps the header).
    BlockOutside {
        /// Which block: "memory reservation", "structure" or "strings".
        block: &'static str,
        /// Its offset from the header.
        offset: u32,
        /// Its size (the reservation block has no size field: the bytes up to `totalsize`).
        size: u32,
        /// The header's `totalsize`.
        totalsize: u32,
    },
    /// A block offset lacks the alignment the spec requires (8 for reservations, 4 for structure).
    Misaligned {
        /// Which block.
        block: &'static str,
        /// Its offset from the header.
        offset: u32,
    },
    /// The memory reservation block runs to `totalsize` without its all-zero terminator.
    ReservationUnterminated {
        /// Offset of the block.
        offset: u32,
    },
    /// A memory reservation's address + size does not fit 64 bits.
    ReservationOverflow {
        /// The reservation's address.
        address: u64,
        /// The reservation's size.
        size: u64,
    },
    /// The `fdt` crate's own header check refused a blob our walker accepted.
    FdtCrateRejected {
        /// The crate's reason.
        reason: &'static str,
    },
}

/// Problems in the structure block (spec 5.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StructureError {
    /// The block ends before `FDT_END` (or in the middle of a token).
    UnexpectedEnd,
    /// A token value that is none of BEGIN_NODE, END_NODE, PROP, NOP or END.
    UnknownToken(u32),
    /// The first token is not `FDT_BEGIN_NODE` for the root node.
    NoRootNode,
    /// A second top-level node follows the root node.
    SecondRootNode,
    /// `FDT_END` or end of block while nodes are still open.
    UnclosedNode,
    /// `FDT_END_NODE` without an open node.
    UnbalancedEndNode,
    /// A property outside any node.
    PropertyOutsideNode,
    /// A node name without its NUL terminator inside the block.
    UnterminatedNodeName,
    /// A node name that is not UTF-8.
    NodeNameNotUtf8,
    /// A property value that runs past the end of the structure block.
    PropertyPastEnd {
        /// The property's declared length.
        len: u32,
    },
    /// A property name offset outside the strings block.
    NameOffsetOutside {
        /// The offset into the strings block.
        name_offset: u32,
    },
    /// A property name without its NUL terminator inside the strings block.
    UnterminatedPropertyName {
        /// The offset into the strings block.
        name_offset: u32,
    },
    /// A property name that is not UTF-8.
    PropertyNameNotUtf8 {
        /// The offset into the strings block.
        name_offset: u32,
    },
    /// Nodes nested deeper than [`super::flat::MAX_DEPTH`].
    TooDeep,
}

/// What is wrong with a property's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertyError {
    /// The value's length in bytes does not fit the property's format.
    Length {
        /// The length found.
        len: usize,
        /// The length the format allows.
        expected: ExpectedLength,
    },
    /// The `#address-cells` / `#size-cells` that apply to this property are unsupported:
    /// addresses must take 1 or 2 cells, sizes at most 2 (and at least 1 when a size is needed).
    UnsupportedCells {
        /// The `#address-cells` in force.
        address_cells: u32,
        /// The `#size-cells` in force.
        size_cells: u32,
    },
    /// Not a NUL-terminated UTF-8 string (or list of them).
    NotString,
    /// A value outside what this firmware accepts.
    Value {
        /// The value found.
        value: u64,
        /// What was expected instead.
        expected: &'static str,
    },
    /// An address + size that does not fit 64 bits.
    Overflow {
        /// The start address.
        base: u64,
        /// The size.
        size: u64,
    },
    /// The same value on two nodes that must differ (e.g. two chips with one chip id).
    Duplicate {
        /// The repeated value.
        value: u64,
    },
}

/// The lengths a property format allows, for [`PropertyError::Length`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedLength {
    /// Exactly this many bytes.
    Exactly(usize),
    /// A non-zero multiple of this many bytes.
    MultipleOf(usize),
    /// One or two 32-bit cells (4 or 8 bytes).
    OneOrTwoCells,
}

impl fmt::Display for DevTreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DevTreeError::Header(problem) => write!(f, "FDT header: {problem}"),
            DevTreeError::Structure { offset, problem } => {
                write!(f, "FDT structure block at byte {offset:#x}: {problem}")
            }
            DevTreeError::MissingNode { what } => write!(f, "no {what} node in the device tree"),
            DevTreeError::MissingProperty { node, property } => {
                write!(f, "node {node}: property {property} is missing")
            }
            DevTreeError::BadProperty {
                node,
                property,
                problem,
            } => {
                write!(f, "node {node}: property {property}: {problem}")
            }
        }
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            HeaderError::TooShort { len } => {
                write!(f, "{len} bytes cannot hold the 40-byte header")
            }
            HeaderError::BadMagic { found } => {
                write!(f, "magic {found:#010x} is not 0xd00dfeed")
            }
            HeaderError::TotalSizeBeyondBuffer { totalsize, len } => {
                write!(
                    f,
                    "totalsize {totalsize:#x} is larger than the {len:#x} bytes given"
                )
            }
            HeaderError::TotalSizeTooSmall { totalsize } => {
                write!(f, "totalsize {totalsize:#x} is smaller than the header")
            }
            HeaderError::UnsupportedVersion {
                version,
                last_comp_version,
            } => write!(
                f,
                "version {version} (last compatible {last_comp_version}) is not readable \
                 as version 16 or 17"
            ),
            HeaderError::BlockOutside {
                block,
                offset,
                size,
                totalsize,
            } => write!(
                f,
                "{block} block at {offset:#x} size {size:#x} lies outside the header's \
                 {totalsize:#x} bytes"
            ),
            HeaderError::Misaligned { block, offset } => {
                write!(f, "{block} block offset {offset:#x} is misaligned")
            }
            HeaderError::ReservationUnterminated { offset } => write!(
                f,
                "memory reservation block at {offset:#x} has no terminating entry"
            ),
            HeaderError::ReservationOverflow { address, size } => write!(
                f,
                "memory reservation {address:#x} size {size:#x} wraps past 2^64"
            ),
            HeaderError::FdtCrateRejected { reason } => {
                write!(f, "the fdt crate rejects the header: {reason}")
            }
        }
    }
}

impl fmt::Display for StructureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StructureError::UnexpectedEnd => write!(f, "block ends before FDT_END"),
            StructureError::UnknownToken(token) => write!(f, "unknown token {token:#x}"),
            StructureError::NoRootNode => write!(f, "does not start with the root node"),
            StructureError::SecondRootNode => write!(f, "a second node follows the root node"),
            StructureError::UnclosedNode => write!(f, "FDT_END inside an open node"),
            StructureError::UnbalancedEndNode => write!(f, "FDT_END_NODE without an open node"),
            StructureError::PropertyOutsideNode => write!(f, "property outside any node"),
            StructureError::UnterminatedNodeName => write!(f, "node name has no NUL terminator"),
            StructureError::NodeNameNotUtf8 => write!(f, "node name is not UTF-8"),
            StructureError::PropertyPastEnd { len } => {
                write!(f, "property value of {len:#x} bytes runs past the block")
            }
            StructureError::NameOffsetOutside { name_offset } => {
                write!(
                    f,
                    "property name offset {name_offset:#x} is outside the strings block"
                )
            }
            StructureError::UnterminatedPropertyName { name_offset } => write!(
                f,
                "property name at strings offset {name_offset:#x} has no NUL terminator"
            ),
            StructureError::PropertyNameNotUtf8 { name_offset } => write!(
                f,
                "property name at strings offset {name_offset:#x} is not UTF-8"
            ),
            StructureError::TooDeep => write!(
                f,
                "nodes nested deeper than {} levels",
                super::flat::MAX_DEPTH
            ),
        }
    }
}

impl fmt::Display for PropertyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PropertyError::Length { len, expected } => {
                write!(f, "{len} bytes long, expected {expected}")
            }
            PropertyError::UnsupportedCells {
                address_cells,
                size_cells,
            } => write!(
                f,
                "parent's #address-cells = {address_cells}, #size-cells = {size_cells} \
                 unsupported (address 1..=2 cells, size up to 2)"
            ),
            PropertyError::NotString => write!(f, "not a NUL-terminated UTF-8 string"),
            PropertyError::Value { value, expected } => {
                write!(f, "value {value:#x}, expected {expected}")
            }
            PropertyError::Overflow { base, size } => {
                write!(f, "range {base:#x} size {size:#x} wraps past 2^64")
            }
            PropertyError::Duplicate { value } => {
                write!(f, "value {value:#x} already used by another node")
            }
        }
    }
}

impl fmt::Display for ExpectedLength {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ExpectedLength::Exactly(bytes) => write!(f, "{bytes}"),
            ExpectedLength::MultipleOf(bytes) => write!(f, "a non-zero multiple of {bytes}"),
            ExpectedLength::OneOrTwoCells => write!(f, "4 or 8 (one or two cells)"),
        }
    }
}
