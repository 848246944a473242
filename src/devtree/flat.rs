//! The flattened device-tree blob, read with every offset, length and name checked, into a
//! small tree of borrowed nodes and properties.
//!
//! This does the work of the `fdt` crate's walker, which firmware cannot use on a blob it
//! does not trust: `Fdt::new` checks only magic and `totalsize`, and then its accessors slice
//! with offsets from the header (`structs_block`, `strings_block`, `memory_reservations`) and
//! lengths from the blob (`NodeProperty::parse`), `expect` NUL-terminated UTF-8 names
//! (`str_at_offset`), `assert` tokens (`skip_current_node`), index a 64-entry parent array by
//! nesting depth (`all_nodes`), and stop at an `FDT_NOP` before a node's first child (so
//! `find_node` misses nodes of a valid tree). Here every token is checked once, and the result
//! is an index-free tree that the property decoders ([`super::prop`]) read.
//!
//! Resources: Devicetree Specification v0.4, chapter 5 (header, memory reservation block,
//! structure block tokens, strings block); libfdt `fdt_check_header` and `fdt_next_tag`
//! (dtc/libfdt/fdt.c), which make the same checks in C.

use super::error::{DevTreeError, HeaderError, StructureError};
use alloc::{string::String, vec::Vec};

/// `magic` of every FDT header.
pub const FDT_MAGIC: u32 = 0xd00d_feed;
/// Bytes in a version 17 header (ten big-endian u32 fields).
pub const HEADER_LEN: usize = 40;
/// Deepest node nesting accepted (the root is depth 1). Real PowerNV trees stay under 8; the
/// limit only bounds the work a hostile blob can ask for.
pub const MAX_DEPTH: usize = 64;

/// Structure-block token: a node begins (its name follows, NUL-terminated, padded to 4).
pub const FDT_BEGIN_NODE: u32 = 0x1;
/// Structure-block token: the current node ends.
pub const FDT_END_NODE: u32 = 0x2;
/// Structure-block token: a property (length, name offset, value padded to 4) follows.
pub const FDT_PROP: u32 = 0x3;
/// Structure-block token: nothing; allowed wherever a token may be (spec 5.4.1).
pub const FDT_NOP: u32 = 0x4;
/// Structure-block token: the end of the structure block.
pub const FDT_END: u32 = 0x9;

/// The fields of the FDT header (spec 5.2) that locate the blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Total size of the blob in bytes.
    pub totalsize: u32,
    /// Offset of the structure block.
    pub off_dt_struct: u32,
    /// Offset of the strings block.
    pub off_dt_strings: u32,
    /// Offset of the memory reservation block.
    pub off_mem_rsvmap: u32,
    /// Layout version.
    pub version: u32,
    /// Oldest version this layout is compatible with.
    pub last_comp_version: u32,
    /// Physical id (PIR on POWER) of the CPU that boots.
    pub boot_cpuid_phys: u32,
    /// Size of the strings block.
    pub size_dt_strings: u32,
    /// Size of the structure block (version 17; for version 16 the bytes up to `totalsize`).
    pub size_dt_struct: u32,
}

/// The big-endian u32 at byte `offset` of `bytes`, if all four bytes are there.
pub fn be32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    let word = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
}

/// The big-endian u64 at byte `offset` of `bytes`, if all eight bytes are there.
fn be64_at(bytes: &[u8], offset: usize) -> Option<u64> {
    let high = be32_at(bytes, offset)?;
    let low = be32_at(bytes, offset.checked_add(4)?)?;
    Some(u64::from(high) << 32 | u64::from(low))
}

fn header_error(problem: HeaderError) -> DevTreeError {
    DevTreeError::Header(problem)
}

impl Header {
    /// Reads and validates the header of `blob`: magic, `totalsize` within the buffer, a
    /// version this reader understands, and each block inside `totalsize` and aligned.
    pub fn read(blob: &[u8]) -> Result<Header, DevTreeError> {
        let header = Header::decode(blob)?;
        if header.totalsize as usize > blob.len() {
            return Err(header_error(HeaderError::TotalSizeBeyondBuffer {
                totalsize: header.totalsize,
                len: blob.len(),
            }));
        }
        Ok(header)
    }

    /// Validates the 40 header bytes at the start of `bytes` on their own: everything
    /// [`Header::read`] checks except that the blob really is `totalsize` long.
    pub fn decode(bytes: &[u8]) -> Result<Header, DevTreeError> {
        let field = |index: usize| be32_at(bytes, index * 4);
        let (
            Some(magic),
            Some(totalsize),
            Some(off_dt_struct),
            Some(off_dt_strings),
            Some(off_mem_rsvmap),
            Some(version),
            Some(last_comp_version),
            Some(boot_cpuid_phys),
            Some(size_dt_strings),
            Some(size_dt_struct),
        ) = (
            field(0),
            field(1),
            field(2),
            field(3),
            field(4),
            field(5),
            field(6),
            field(7),
            field(8),
            field(9),
        )
        else {
            return Err(header_error(HeaderError::TooShort { len: bytes.len() }));
        };
        if magic != FDT_MAGIC {
            return Err(header_error(HeaderError::BadMagic { found: magic }));
        }
        if (totalsize as usize) < HEADER_LEN {
            return Err(header_error(HeaderError::TotalSizeTooSmall { totalsize }));
        }
        // Version 16 lacks only size_dt_struct; anything that cannot be read as 16 or 17
        // (spec 5.2: last_comp_version) is refused rather than guessed at.
        if version < 16 || last_comp_version > 17 {
            return Err(header_error(HeaderError::UnsupportedVersion {
                version,
                last_comp_version,
            }));
        }
        let size_dt_struct = if version >= 17 {
            size_dt_struct
        } else {
            totalsize.saturating_sub(off_dt_struct)
        };
        let header = Header {
            totalsize,
            off_dt_struct,
            off_dt_strings,
            off_mem_rsvmap,
            version,
            last_comp_version,
            boot_cpuid_phys,
            size_dt_strings,
            size_dt_struct,
        };
        header.check_block("memory reservation", off_mem_rsvmap, 16, 8)?;
        header.check_block("structure", off_dt_struct, size_dt_struct, 4)?;
        header.check_block("strings", off_dt_strings, size_dt_strings, 1)?;
        Ok(header)
    }

    /// Checks that `[offset, offset + size)` lies after the header and inside `totalsize`,
    /// with `offset` aligned to `align`.
    fn check_block(
        &self,
        block: &'static str,
        offset: u32,
        size: u32,
        align: u32,
    ) -> Result<(), DevTreeError> {
        if !offset.is_multiple_of(align) {
            return Err(header_error(HeaderError::Misaligned { block, offset }));
        }
        let end = u64::from(offset) + u64::from(size);
        if (offset as usize) < HEADER_LEN || end > u64::from(self.totalsize) {
            return Err(header_error(HeaderError::BlockOutside {
                block,
                offset,
                size,
                totalsize: self.totalsize,
            }));
        }
        Ok(())
    }
}

/// One property: its name from the strings block and its raw big-endian value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Property<'a> {
    /// The property name.
    pub name: &'a str,
    /// The value bytes, exactly as long as the property's `len`.
    pub value: &'a [u8],
}

/// One node: its name, where it hangs and what it holds. Nodes refer to each other by their
/// index in [`Tree::nodes`].
#[derive(Clone, Debug)]
struct Node<'a> {
    /// The unit name (`name@unit-address`); empty for the root.
    name: &'a str,
    /// Index of the parent node; `None` for the root.
    parent: Option<usize>,
    /// Properties in blob order.
    properties: Vec<Property<'a>>,
    /// Indexes of the child nodes in blob order.
    children: Vec<usize>,
}

/// A whole blob, checked and indexed: header, memory reservations and nodes.
#[derive(Clone, Debug)]
pub struct Tree<'a> {
    /// The validated header.
    pub header: Header,
    /// The memory reservation block as `(address, size)` pairs (size-0 entries dropped).
    pub reservations: Vec<(u64, u64)>,
    /// Every node, the root first, in blob (depth-first) order.
    nodes: Vec<Node<'a>>,
}

impl<'a> Tree<'a> {
    /// Checks `blob` from header to `FDT_END` and indexes its nodes.
    pub fn parse(blob: &'a [u8]) -> Result<Tree<'a>, DevTreeError> {
        let header = Header::read(blob)?;
        let blob = blob.get(..header.totalsize as usize).unwrap_or_default();
        let reservations = read_reservations(blob, &header)?;
        let nodes = read_structure(blob, &header)?;
        Ok(Tree {
            header,
            reservations,
            nodes,
        })
    }

    /// The root node.
    pub fn root(&self) -> NodeRef<'_, 'a> {
        // read_structure only returns with a root node in place.
        self.node(0).unwrap_or(NodeRef {
            tree: self,
            node: &EMPTY_ROOT,
        })
    }

    /// Every node, the root first, depth-first in blob order.
    pub fn nodes(&self) -> impl Iterator<Item = NodeRef<'_, 'a>> + '_ {
        self.nodes
            .iter()
            .map(move |node| NodeRef { tree: self, node })
    }

    fn node(&self, index: usize) -> Option<NodeRef<'_, 'a>> {
        self.nodes
            .get(index)
            .map(|node| NodeRef { tree: self, node })
    }
}

/// Stands in for the root of a tree without nodes, which [`Tree::parse`] never produces.
static EMPTY_ROOT: Node<'static> = Node {
    name: "",
    parent: None,
    properties: Vec::new(),
    children: Vec::new(),
};

/// A node of a [`Tree`], with the tree at hand to walk to its parent and children.
#[derive(Clone, Copy)]
pub struct NodeRef<'t, 'a> {
    tree: &'t Tree<'a>,
    node: &'t Node<'a>,
}

impl<'t, 'a> NodeRef<'t, 'a> {
    /// The unit name (`name@unit-address`), empty for the root.
    pub fn name(&self) -> &'a str {
        self.node.name
    }

    /// The parent node; `None` for the root.
    pub fn parent(&self) -> Option<NodeRef<'t, 'a>> {
        self.tree.node(self.node.parent?)
    }

    /// The child nodes in blob order.
    pub fn children(&self) -> impl Iterator<Item = NodeRef<'t, 'a>> + 't {
        let tree = self.tree;
        self.node
            .children
            .iter()
            .filter_map(move |&index| tree.node(index))
    }

    /// The first child called `name`: an exact match of the unit name, or, when `name` has
    /// no `@`, of the part before the `@` (spec 2.2.1 node names).
    pub fn child(&self, name: &str) -> Option<NodeRef<'t, 'a>> {
        self.children().find(|child| {
            let full = child.name();
            full == name || (!name.contains('@') && full.split('@').next() == Some(name))
        })
    }

    /// The raw value of the first property called `name`.
    pub fn property(&self, name: &str) -> Option<&'a [u8]> {
        self.node
            .properties
            .iter()
            .find(|property| property.name == name)
            .map(|p| p.value)
    }

    /// Whether the node has a property called `name` (empty flag properties included).
    pub fn has_property(&self, name: &str) -> bool {
        self.property(name).is_some()
    }

    /// Whether `compatible` lists `compat`. A malformed list simply does not match: the
    /// comparison is bytewise on the NUL-separated pieces, so no string decoding can fail.
    pub fn is_compatible(&self, compat: &str) -> bool {
        self.property("compatible").is_some_and(|value| {
            value
                .split(|&b| b == 0)
                .any(|piece| piece == compat.as_bytes())
        })
    }

    /// Whether `device_type` is `device_type` (trailing NULs ignored).
    pub fn device_type_is(&self, device_type: &str) -> bool {
        self.property("device_type")
            .is_some_and(|value| trim_nuls(value) == device_type.as_bytes())
    }

    /// Whether `status` is absent, "okay" or "ok" (spec 2.3.4): the node is in use.
    pub fn is_available(&self) -> bool {
        self.property("status").is_none_or(|value| {
            let status = trim_nuls(value);
            status == b"okay" || status == b"ok"
        })
    }

    /// The full path, `/` for the root, for messages.
    pub fn path(&self) -> String {
        let mut names = Vec::new();
        let mut cursor = Some(*self);
        // Parents always come earlier in the node list, so this walk ends; the depth bound
        // keeps it finite even if that ever stopped being true.
        while let Some(node) = cursor {
            if node.node.parent.is_none() || names.len() > MAX_DEPTH {
                break;
            }
            names.push(node.name());
            cursor = node.parent();
        }
        if names.is_empty() {
            return String::from("/");
        }
        let mut path = String::new();
        for name in names.iter().rev() {
            path.push('/');
            path.push_str(name);
        }
        path
    }
}

fn trim_nuls(value: &[u8]) -> &[u8] {
    let end = value
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |last| last + 1);
    value.get(..end).unwrap_or_default()
}

/// Reads the memory reservation block (spec 5.3): 16-byte `(address, size)` entries up to an
/// all-zero one, which must come before `totalsize`.
fn read_reservations(blob: &[u8], header: &Header) -> Result<Vec<(u64, u64)>, DevTreeError> {
    let mut reservations = Vec::new();
    let mut offset = header.off_mem_rsvmap as usize;
    loop {
        let (Some(address), Some(size)) = (
            be64_at(blob, offset),
            offset.checked_add(8).and_then(|at| be64_at(blob, at)),
        ) else {
            return Err(header_error(HeaderError::ReservationUnterminated {
                offset: header.off_mem_rsvmap,
            }));
        };
        if address == 0 && size == 0 {
            return Ok(reservations);
        }
        if address.checked_add(size).is_none() {
            return Err(header_error(HeaderError::ReservationOverflow {
                address,
                size,
            }));
        }
        if size != 0 {
            reservations.push((address, size));
        }
        offset += 16;
    }
}

/// A NUL-terminated UTF-8 name at the start of `bytes`, and its length without the NUL.
fn c_name(bytes: &[u8]) -> Option<Result<&str, core::str::Utf8Error>> {
    let len = bytes.iter().position(|&b| b == 0)?;
    Some(core::str::from_utf8(bytes.get(..len).unwrap_or_default()))
}

/// Walks the structure block token by token (spec 5.4) and builds the node list.
fn read_structure<'a>(blob: &'a [u8], header: &Header) -> Result<Vec<Node<'a>>, DevTreeError> {
    let base = header.off_dt_struct as usize;
    let block = blob
        .get(base..base.saturating_add(header.size_dt_struct as usize))
        .unwrap_or_default();
    let strings_base = header.off_dt_strings as usize;
    let strings = blob
        .get(strings_base..strings_base.saturating_add(header.size_dt_strings as usize))
        .unwrap_or_default();

    let mut nodes: Vec<Node<'a>> = Vec::new();
    let mut open: Vec<usize> = Vec::new();
    let mut root_closed = false;
    let mut pos = 0usize;
    loop {
        let error = |at: usize, problem| DevTreeError::Structure {
            offset: base + at,
            problem,
        };
        let token_at = pos;
        let token = be32_at(block, pos).ok_or(error(pos, StructureError::UnexpectedEnd))?;
        pos += 4;
        match token {
            FDT_BEGIN_NODE => {
                if root_closed {
                    return Err(error(token_at, StructureError::SecondRootNode));
                }
                if open.len() >= MAX_DEPTH {
                    return Err(error(token_at, StructureError::TooDeep));
                }
                let name = match c_name(block.get(pos..).unwrap_or_default()) {
                    None => return Err(error(pos, StructureError::UnterminatedNodeName)),
                    Some(Err(_)) => return Err(error(pos, StructureError::NodeNameNotUtf8)),
                    Some(Ok(name)) => name,
                };
                pos = (pos + name.len() + 1).next_multiple_of(4);
                let index = nodes.len();
                let parent = open.last().copied();
                if let Some(parent_node) = parent.and_then(|p| nodes.get_mut(p)) {
                    parent_node.children.push(index);
                }
                nodes.push(Node {
                    name,
                    parent,
                    properties: Vec::new(),
                    children: Vec::new(),
                });
                open.push(index);
            }
            FDT_END_NODE => {
                if open.pop().is_none() {
                    return Err(error(token_at, StructureError::UnbalancedEndNode));
                }
                root_closed = open.is_empty();
            }
            FDT_PROP => {
                let (Some(len), Some(name_offset)) = (be32_at(block, pos), be32_at(block, pos + 4))
                else {
                    return Err(error(pos, StructureError::UnexpectedEnd));
                };
                pos += 8;
                let Some(&owner) = open.last() else {
                    return Err(error(token_at, StructureError::PropertyOutsideNode));
                };
                let value = pos
                    .checked_add(len as usize)
                    .and_then(|end| block.get(pos..end))
                    .ok_or(error(pos, StructureError::PropertyPastEnd { len }))?;
                let name = match strings.get(name_offset as usize..).map(c_name) {
                    None => {
                        return Err(error(
                            token_at,
                            StructureError::NameOffsetOutside { name_offset },
                        ))
                    }
                    Some(None) => {
                        return Err(error(
                            token_at,
                            StructureError::UnterminatedPropertyName { name_offset },
                        ))
                    }
                    Some(Some(Err(_))) => {
                        return Err(error(
                            token_at,
                            StructureError::PropertyNameNotUtf8 { name_offset },
                        ))
                    }
                    Some(Some(Ok(name))) => name,
                };
                pos = (pos + value.len()).next_multiple_of(4);
                if let Some(node) = nodes.get_mut(owner) {
                    node.properties.push(Property { name, value });
                }
            }
            FDT_NOP => {}
            FDT_END => {
                if !open.is_empty() {
                    return Err(error(token_at, StructureError::UnclosedNode));
                }
                if nodes.is_empty() {
                    return Err(error(token_at, StructureError::NoRootNode));
                }
                return Ok(nodes);
            }
            other => return Err(error(token_at, StructureError::UnknownToken(other))),
        }
    }
}
