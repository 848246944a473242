//! Bare-mode boot arguments: a small configuration blob that the harness places in RAM
//! before the machine starts, because QEMU gives `-append` only to `-kernel` images, never
//! to `-bios` firmware.
//!
//! The blob lives at [`CONFIG_BLOB_ADDRESS`] (put there with QEMU's generic loader:
//! `-device loader,file=F,addr=0xf00000,force-raw=on`), and the firmware keeps the
//! [`CONFIG_BLOB_WINDOW`] bytes from there out of every allocator in bare mode. Layout, all
//! big-endian like the rest of the platform:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `TCEFWCFG` |
//! | 8 | 4 | version, 1 |
//! | 12 | 4 | length of the text in bytes, at most [`CONFIG_TEXT_MAX`] |
//! | 16 | length | the boot arguments: printable ASCII, the words of `/chosen/bootargs` |
//!
//! Without the magic the bytes are whatever RAM held, and they are ignored; with it, any
//! other field out of bounds is an error the firmware reports and then ignores the blob.
//!
//! Resources: QEMU docs/system/generic-loader.rst (raw file at an address, `force-raw`);
//! QEMU hw/ppc/pnv.c (firmware at 0 up to 4 MiB, device tree at 0x1000000: the window
//! lies between them).

/// Where the blob is read (physical address, inside the first GiB that every powernv
/// machine has; above the 4 MiB QEMU allows `-bios` firmware, below the device tree).
pub const CONFIG_BLOB_ADDRESS: u64 = 0x00f0_0000;
/// Bytes kept out of the allocators from [`CONFIG_BLOB_ADDRESS`].
pub const CONFIG_BLOB_WINDOW: u64 = 0x1_0000;
// QEMU loads -bios firmware at 0 (at most 4 MiB) and writes its device tree at 16 MiB
// (hw/ppc/pnv.c FW_MAX_SIZE, PNV_FDT_ADDR): the window must not overlap either.
const _: () = assert!(
    CONFIG_BLOB_ADDRESS >= 4 << 20 && CONFIG_BLOB_ADDRESS + CONFIG_BLOB_WINDOW <= 0x100_0000
);
/// The blob's first eight bytes.
pub const CONFIG_BLOB_MAGIC: [u8; 8] = *b"TCEFWCFG";
/// The only layout version there is.
pub const CONFIG_BLOB_VERSION: u32 = 1;
/// Bytes before the text.
pub const CONFIG_HEADER_BYTES: usize = 16;
/// The longest text the window holds.
pub const CONFIG_TEXT_MAX: usize = CONFIG_BLOB_WINDOW as usize - CONFIG_HEADER_BYTES;

/// Why a blob that starts with the magic was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigBlobError {
    /// A version this firmware does not know.
    Version(u32),
    /// A text length past [`CONFIG_TEXT_MAX`] or past the bytes given.
    Length(u32),
    /// The text has a byte that is not printable ASCII (offset in the text).
    Text(usize),
}

impl core::fmt::Display for ConfigBlobError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ConfigBlobError::Version(version) => {
                write!(f, "version {version}, this firmware reads version 1")
            }
            ConfigBlobError::Length(length) => write!(
                f,
                "text length {length} is past the {CONFIG_TEXT_MAX} bytes of the window"
            ),
            ConfigBlobError::Text(offset) => {
                write!(f, "text byte {offset} is not printable ASCII")
            }
        }
    }
}

/// The boot arguments in `window` (the bytes at [`CONFIG_BLOB_ADDRESS`]): `Ok(None)` when
/// there is no blob (no magic), `Err` when a blob is there but malformed.
pub fn parse(window: &[u8]) -> Result<Option<&str>, ConfigBlobError> {
    if window.len() < CONFIG_HEADER_BYTES || window[..8] != CONFIG_BLOB_MAGIC {
        return Ok(None);
    }
    let word = |at: usize| {
        u32::from_be_bytes([window[at], window[at + 1], window[at + 2], window[at + 3]])
    };
    let version = word(8);
    if version != CONFIG_BLOB_VERSION {
        return Err(ConfigBlobError::Version(version));
    }
    let length = word(12);
    let text = window
        .get(CONFIG_HEADER_BYTES..)
        .and_then(|rest| rest.get(..length as usize))
        .filter(|_| length as usize <= CONFIG_TEXT_MAX)
        .ok_or(ConfigBlobError::Length(length))?;
    if let Some(offset) = text
        .iter()
        .position(|&b| !(b == b' ' || b.is_ascii_graphic()))
    {
        return Err(ConfigBlobError::Text(offset));
    }
    // Printable ASCII is UTF-8.
    core::str::from_utf8(text)
        .map(Some)
        .map_err(|e| ConfigBlobError::Text(e.valid_up_to()))
}
