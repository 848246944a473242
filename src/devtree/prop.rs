//! Checked decoding of property values: big-endian cells, numbers of one or two cells,
//! strings and string lists, and `reg` honouring the parent's `#address-cells` /
//! `#size-cells`.
//!
//! Every decoder checks the value's length against the format before reading it and returns
//! a [`DevTreeError`] naming the node and property otherwise; nothing here indexes a slice
//! with a length taken from the blob.
//!
//! Resources: Devicetree Specification v0.4, 2.2.4 (property values: `<u32>`, `<u64>`,
//! `<string>`, `<stringlist>`, `<prop-encoded-array>`), 2.3.5 (`#address-cells` defaults
//! to 2, `#size-cells` to 1) and 2.3.6 (`reg`).

use super::error::{DevTreeError, ExpectedLength, PropertyError};
use super::flat::NodeRef;
use alloc::vec::Vec;

/// Most cells an address or a size may take here: the firmware is 64-bit and every
/// address it uses from the tree fits two cells.
pub const MAX_CELLS: u32 = 2;

/// The `#address-cells` / `#size-cells` a node declares for its children's `reg`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellSizes {
    /// Cells per address.
    pub address: u32,
    /// Cells per size.
    pub size: u32,
}

/// One `(address, size)` entry of a `reg` property.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegEntry {
    /// The address (up to two cells).
    pub address: u64,
    /// The size (0 when the parent's `#size-cells` is 0).
    pub size: u64,
}

/// Reads big-endian cells off the front of a value whose length has been checked.
pub struct CellCursor<'a> {
    bytes: &'a [u8],
}

impl<'a> CellCursor<'a> {
    /// A cursor at the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        CellCursor { bytes }
    }

    /// The next `cells` cells as one number (callers keep `cells <= 2`; with more, only the
    /// low 64 bits survive), or `None` when the value is too short.
    pub fn take(&mut self, cells: u32) -> Option<u64> {
        let (head, rest) = self
            .bytes
            .split_at_checked((cells as usize).checked_mul(4)?)?;
        self.bytes = rest;
        Some(head.chunks_exact(4).fold(0u64, |acc, cell| {
            let cell = u32::from_be_bytes([cell[0], cell[1], cell[2], cell[3]]);
            acc.wrapping_shl(32) | u64::from(cell)
        }))
    }
}

/// Decodes a `<string>`: UTF-8 up to a single NUL that ends the value. An empty value and
/// a lone NUL (QEMU's `bootargs = [00]`) both give `""`.
pub fn decode_string(value: &[u8]) -> Option<&str> {
    match value.split_last() {
        None => Some(""),
        Some((0, text)) if !text.contains(&0) => core::str::from_utf8(text).ok(),
        Some(_) => None,
    }
}

/// Decodes a `<stringlist>`: NUL-terminated UTF-8 strings back to back.
pub fn decode_string_list(value: &[u8]) -> Option<Vec<&str>> {
    match value.split_last() {
        None => Some(Vec::new()),
        Some((0, body)) => body
            .split(|&b| b == 0)
            .map(|s| core::str::from_utf8(s).ok())
            .collect(),
        Some(_) => None,
    }
}

impl<'a> NodeRef<'_, 'a> {
    /// The error "`property` of this node: `problem`".
    pub fn bad(&self, property: &'static str, problem: PropertyError) -> DevTreeError {
        DevTreeError::BadProperty {
            node: self.path(),
            property,
            problem,
        }
    }

    /// The error "this node lacks `property`".
    pub fn missing(&self, property: &'static str) -> DevTreeError {
        DevTreeError::MissingProperty {
            node: self.path(),
            property,
        }
    }

    fn length_error(
        &self,
        property: &'static str,
        len: usize,
        expected: ExpectedLength,
    ) -> DevTreeError {
        self.bad(property, PropertyError::Length { len, expected })
    }

    /// A `<u32>` property, if present.
    pub fn u32_prop(&self, name: &'static str) -> Result<Option<u32>, DevTreeError> {
        let Some(value) = self.property(name) else {
            return Ok(None);
        };
        if value.len() != 4 {
            return Err(self.length_error(name, value.len(), ExpectedLength::Exactly(4)));
        }
        Ok(CellCursor::new(value).take(1).map(|v| v as u32))
    }

    /// A `<u32>` property the firmware cannot do without.
    pub fn required_u32(&self, name: &'static str) -> Result<u32, DevTreeError> {
        self.u32_prop(name)?.ok_or_else(|| self.missing(name))
    }

    /// A number of one or two cells (`<u32>` or `<u64>`), if present: skiboot writes 64-bit
    /// values as two cells, and Linux reads them with `of_read_number(p, len / 4)`.
    pub fn number_prop(&self, name: &'static str) -> Result<Option<u64>, DevTreeError> {
        let Some(value) = self.property(name) else {
            return Ok(None);
        };
        if value.len() != 4 && value.len() != 8 {
            return Err(self.length_error(name, value.len(), ExpectedLength::OneOrTwoCells));
        }
        Ok(CellCursor::new(value).take(value.len() as u32 / 4))
    }

    /// A number of one or two cells the firmware cannot do without.
    pub fn required_number(&self, name: &'static str) -> Result<u64, DevTreeError> {
        self.number_prop(name)?.ok_or_else(|| self.missing(name))
    }

    /// A non-empty list of `<u32>` cells, if present.
    pub fn u32_list(&self, name: &'static str) -> Result<Option<Vec<u32>>, DevTreeError> {
        let Some(value) = self.property(name) else {
            return Ok(None);
        };
        if value.is_empty() || !value.len().is_multiple_of(4) {
            return Err(self.length_error(name, value.len(), ExpectedLength::MultipleOf(4)));
        }
        let mut cells = CellCursor::new(value);
        Ok(Some(
            (0..value.len() / 4)
                .filter_map(|_| cells.take(1).map(|v| v as u32))
                .collect(),
        ))
    }

    /// A `<string>` property, if present.
    pub fn string_prop(&self, name: &'static str) -> Result<Option<&'a str>, DevTreeError> {
        let Some(value) = self.property(name) else {
            return Ok(None);
        };
        decode_string(value)
            .map(Some)
            .ok_or_else(|| self.bad(name, PropertyError::NotString))
    }

    /// A `<stringlist>` property, if present.
    pub fn string_list(&self, name: &'static str) -> Result<Option<Vec<&'a str>>, DevTreeError> {
        let Some(value) = self.property(name) else {
            return Ok(None);
        };
        decode_string_list(value)
            .map(Some)
            .ok_or_else(|| self.bad(name, PropertyError::NotString))
    }

    /// The `#address-cells` / `#size-cells` this node declares for its children, with the
    /// spec's defaults (2 and 1) for absent ones. The values are not range-checked here:
    /// a `pciex` node legitimately has 3 address cells; the consumer checks what it needs.
    pub fn child_cells(&self) -> Result<CellSizes, DevTreeError> {
        Ok(CellSizes {
            address: self.u32_prop("#address-cells")?.unwrap_or(2),
            size: self.u32_prop("#size-cells")?.unwrap_or(1),
        })
    }

    /// The cell sizes that apply to this node's own `reg`: its parent's (the root's `reg`
    /// takes the defaults).
    pub fn parent_cells(&self) -> Result<CellSizes, DevTreeError> {
        match self.parent() {
            Some(parent) => parent.child_cells(),
            None => Ok(CellSizes {
                address: 2,
                size: 1,
            }),
        }
    }

    /// The `reg` entries, if `reg` is present, decoded with the parent's cell sizes.
    ///
    /// Errors when the cell sizes are out of range (address 1..=2 cells, size 0..=2 and at
    /// least 1 when `needs_size`), when the length is not a non-zero multiple of an entry,
    /// or when an address + size wraps past 2^64.
    pub fn reg(&self, needs_size: bool) -> Result<Option<Vec<RegEntry>>, DevTreeError> {
        let Some(value) = self.property("reg") else {
            return Ok(None);
        };
        let cells = self.parent_cells()?;
        let min_size = u32::from(needs_size);
        if !(1..=MAX_CELLS).contains(&cells.address)
            || !(min_size..=MAX_CELLS).contains(&cells.size)
        {
            return Err(self.bad(
                "reg",
                PropertyError::UnsupportedCells {
                    address_cells: cells.address,
                    size_cells: cells.size,
                },
            ));
        }
        let entry_len = (cells.address + cells.size) as usize * 4;
        if value.is_empty() || !value.len().is_multiple_of(entry_len) {
            return Err(self.length_error(
                "reg",
                value.len(),
                ExpectedLength::MultipleOf(entry_len),
            ));
        }
        let mut cursor = CellCursor::new(value);
        let mut entries = Vec::with_capacity(value.len() / entry_len);
        while let (Some(address), Some(size)) =
            (cursor.take(cells.address), cursor.take(cells.size))
        {
            if address.checked_add(size).is_none() {
                return Err(self.bad(
                    "reg",
                    PropertyError::Overflow {
                        base: address,
                        size,
                    },
                ));
            }
            entries.push(RegEntry { address, size });
        }
        Ok(Some(entries))
    }

    /// The `reg` entries of a node that must have them.
    pub fn required_reg(&self, needs_size: bool) -> Result<Vec<RegEntry>, DevTreeError> {
        self.reg(needs_size)?.ok_or_else(|| self.missing("reg"))
    }
}
