//! A flattened-device-tree writer: build a tree of nodes and properties in memory, then lay
//! it out as a version 17 blob the way dtc does (header, memory reservation block, structure
//! block, strings block). Host tests build good and broken trees with it; the hypervisor
//! will build its guests' trees with it.
//!
//! Property values are raw bytes; [`cells`], [`text`] and [`text_list`] encode the common
//! forms (big-endian u32 cells, a NUL-terminated string, a string list). Property names are
//! stored once in the strings block, in order of first use.
//!
//! Resources: Devicetree Specification v0.4, chapter 5 (5.2 header, 5.3 memory reservation
//! block, 5.4 structure block and its tokens, 5.5 strings block); dtc flattree.c and libfdt
//! fdt_sw.c (the same layout: reservation block at 40, then structure, then strings).

use super::flat::{
    FDT_BEGIN_NODE, FDT_END, FDT_END_NODE, FDT_MAGIC, FDT_NOP, FDT_PROP, HEADER_LEN,
};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

/// The version this writer emits (the header's `version`).
pub const VERSION: u32 = 17;
/// The oldest version a reader may know and still read the blob (`last_comp_version`).
pub const LAST_COMPATIBLE_VERSION: u32 = 16;

/// Big-endian u32 cells, the `<u32 u32 ...>` form of a property value.
pub fn cells(values: &[u32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_be_bytes()).collect()
}

/// A NUL-terminated string value.
pub fn text(value: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(value.len() + 1);
    bytes.extend_from_slice(value.as_bytes());
    bytes.push(0);
    bytes
}

/// A string list: each string NUL-terminated, one after the other (`compatible`).
pub fn text_list(values: &[&str]) -> Vec<u8> {
    values.iter().flat_map(|v| text(v)).collect()
}

/// One node: a name (`""` for the root, `name@unit` below it), its properties in order, and
/// its children in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Node {
    name: String,
    props: Vec<(String, Vec<u8>)>,
    children: Vec<Node>,
}

impl Node {
    /// A node with no properties and no children.
    pub fn new(name: &str) -> Node {
        Node {
            name: name.into(),
            props: Vec::new(),
            children: Vec::new(),
        }
    }

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames the node.
    pub fn set_name(&mut self, name: &str) {
        self.name = name.into();
    }

    /// Adds a property with a raw value (builder form).
    pub fn prop(mut self, name: &str, value: Vec<u8>) -> Node {
        self.props.push((name.into(), value));
        self
    }

    /// Adds a property of big-endian u32 cells.
    pub fn cells(self, name: &str, values: &[u32]) -> Node {
        self.prop(name, cells(values))
    }

    /// Adds a string property.
    pub fn text(self, name: &str, value: &str) -> Node {
        self.prop(name, text(value))
    }

    /// Adds a child node.
    pub fn child(mut self, node: Node) -> Node {
        self.children.push(node);
        self
    }

    /// Appends a child node.
    pub fn add_child(&mut self, node: Node) {
        self.children.push(node);
    }

    /// Inserts a child node at position `index` among the children (at the end if `index` is
    /// past it).
    pub fn insert_child(&mut self, index: usize, node: Node) {
        let index = index.min(self.children.len());
        self.children.insert(index, node);
    }

    /// The value of property `name`, if the node has it.
    pub fn property(&self, name: &str) -> Option<&[u8]> {
        self.props
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.as_slice())
    }

    /// The node at `path` relative to this one (`""` is this node, `"cpus/cpu@8"` a
    /// grandchild), or `None` if a step is missing.
    pub fn node_mut(&mut self, path: &str) -> Option<&mut Node> {
        let mut node = self;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            node = node.children.iter_mut().find(|c| c.name == part)?;
        }
        Some(node)
    }

    /// Sets property `name` to `value`, replacing its value where it is or adding it last.
    pub fn set(&mut self, name: &str, value: Vec<u8>) {
        match self.props.iter_mut().find(|(n, _)| n == name) {
            Some(prop) => prop.1 = value,
            None => self.props.push((name.into(), value)),
        }
    }

    /// Removes property `name` (nothing happens if there is none).
    pub fn remove(&mut self, name: &str) {
        self.props.retain(|(n, _)| n != name);
    }

    /// Removes every child named `name`.
    pub fn remove_child(&mut self, name: &str) {
        self.children.retain(|c| c.name != name);
    }

    /// This node as the root of a complete blob, with the given memory reservations and
    /// `boot_cpuid_phys` in the header.
    pub fn to_blob(&self, reservations: &[(u64, u64)], boot_cpuid_phys: u32) -> Vec<u8> {
        let (structure, strings) = write_blocks(self, false);
        assemble(&structure, &strings, reservations, boot_cpuid_phys)
    }
}

/// Builds the structure and strings blocks.
#[derive(Default)]
struct BlockWriter {
    structure: Vec<u8>,
    strings: Vec<u8>,
    offsets: BTreeMap<String, u32>,
    nops: bool,
}

impl BlockWriter {
    fn word(&mut self, value: u32) {
        self.structure.extend_from_slice(&value.to_be_bytes());
    }

    /// A token, preceded by an FDT_NOP when the writer sprinkles them.
    fn token(&mut self, token: u32) {
        if self.nops {
            self.word(FDT_NOP);
        }
        self.word(token);
    }

    fn pad(&mut self) {
        while !self.structure.len().is_multiple_of(4) {
            self.structure.push(0);
        }
    }

    fn name_offset(&mut self, name: &str) -> u32 {
        if let Some(&offset) = self.offsets.get(name) {
            return offset;
        }
        let offset = self.strings.len() as u32;
        self.strings.extend_from_slice(&text(name));
        self.offsets.insert(name.into(), offset);
        offset
    }

    fn node(&mut self, node: &Node) {
        self.token(FDT_BEGIN_NODE);
        self.structure.extend_from_slice(&text(&node.name));
        self.pad();
        for (name, value) in &node.props {
            self.token(FDT_PROP);
            self.word(value.len() as u32);
            let offset = self.name_offset(name);
            self.word(offset);
            self.structure.extend_from_slice(value);
            self.pad();
        }
        for child in &node.children {
            self.node(child);
        }
        self.token(FDT_END_NODE);
    }
}

/// The structure block and the strings block of the tree under `root`. With `nops`, an
/// FDT_NOP precedes every token (spec 5.4.1 allows one wherever a token may be), which a
/// reader must skip: tests use it to check that one does.
pub fn write_blocks(root: &Node, nops: bool) -> (Vec<u8>, Vec<u8>) {
    let mut writer = BlockWriter {
        nops,
        ..BlockWriter::default()
    };
    writer.node(root);
    writer.token(FDT_END);
    (writer.structure, writer.strings)
}

/// A version 17 blob from its blocks, laid out the way dtc does: the 40-byte header, the
/// memory reservation block (`reservations`, then the all-zero terminator), the structure
/// block, the strings block. The blocks are copied as given, so a test can hand over a
/// truncated or patched one.
pub fn assemble(
    structure: &[u8],
    strings: &[u8],
    reservations: &[(u64, u64)],
    boot_cpuid_phys: u32,
) -> Vec<u8> {
    let off_rsvmap = HEADER_LEN;
    let off_struct = off_rsvmap + 16 * (reservations.len() + 1);
    let off_strings = off_struct + structure.len();
    let totalsize = off_strings + strings.len();
    let header = [
        FDT_MAGIC,
        totalsize as u32,
        off_struct as u32,
        off_strings as u32,
        off_rsvmap as u32,
        VERSION,
        LAST_COMPATIBLE_VERSION,
        boot_cpuid_phys,
        strings.len() as u32,
        structure.len() as u32,
    ];
    let mut blob = cells(&header);
    for &(address, size) in reservations.iter().chain(&[(0, 0)]) {
        blob.extend_from_slice(&address.to_be_bytes());
        blob.extend_from_slice(&size.to_be_bytes());
    }
    blob.extend_from_slice(structure);
    blob.extend_from_slice(strings);
    debug_assert_eq!(blob.len(), totalsize);
    blob
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devtree::flat::Tree;

    /// A two-node tree laid out by hand from spec chapter 5.
    #[test]
    fn layout_matches_the_spec_byte_for_byte() {
        let root = Node::new("")
            .cells("#size-cells", &[1])
            .child(Node::new("a@1").text("x", "ok").cells("#size-cells", &[2]));
        let blob = root.to_blob(&[(0x1000, 0x20)], 3);
        let strings = b"#size-cells\0x\0";
        #[rustfmt::skip]
        let structure: Vec<u8> = cells(&[
            FDT_BEGIN_NODE, 0,                          // "" padded to 4
            FDT_PROP, 4, 0, 1,                          // #size-cells = <1>
            FDT_BEGIN_NODE, 0x6140_3100,                // "a@1\0"
            FDT_PROP, 3, 12, 0x6f6b_0000,               // x = "ok" (name offset 12)
            FDT_PROP, 4, 0, 2,                          // #size-cells reuses offset 0
            FDT_END_NODE, FDT_END_NODE, FDT_END,
        ]);
        let off_struct = 40 + 2 * 16;
        let mut expected = cells(&[
            FDT_MAGIC,
            (off_struct + structure.len() + strings.len()) as u32,
            off_struct as u32,
            (off_struct + structure.len()) as u32,
            40,
            17,
            16,
            3,
            strings.len() as u32,
            structure.len() as u32,
        ]);
        for word in [0x1000u64, 0x20, 0, 0] {
            expected.extend_from_slice(&word.to_be_bytes());
        }
        expected.extend_from_slice(&structure);
        expected.extend_from_slice(strings);
        assert_eq!(blob, expected);
    }

    #[test]
    fn the_reader_reads_back_what_was_written_with_or_without_nops() {
        let mut root = Node::new("")
            .text("model", "m")
            .child(Node::new("cpus").child(Node::new("cpu@8").cells("reg", &[8])));
        root.node_mut("cpus/cpu@8").unwrap().set("reg", cells(&[9]));
        assert!(root.node_mut("cpus/cpu@9").is_none());
        // Nine tokens (3 BEGIN_NODE, 2 PROP, 3 END_NODE, END): nine NOPs when asked for.
        let plain = write_blocks(&root, false).0;
        let sprinkled = write_blocks(&root, true).0;
        assert_eq!(sprinkled.len(), plain.len() + 9 * 4);
        assert_eq!(&sprinkled[..8], &cells(&[FDT_NOP, FDT_BEGIN_NODE])[..]);
        for nops in [false, true] {
            let (structure, strings) = write_blocks(&root, nops);
            let blob = assemble(&structure, &strings, &[], 0);
            let tree = Tree::parse(&blob).unwrap();
            let cpu = tree.root().child("cpus").and_then(|c| c.child("cpu@8"));
            assert_eq!(cpu.and_then(|c| c.property("reg")), Some(&[0, 0, 0, 9][..]));
            assert_eq!(tree.root().property("model"), Some(&b"m\0"[..]));
        }
    }
}
