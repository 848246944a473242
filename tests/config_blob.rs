//! The bare-mode configuration blob on the host: a blob laid out as the README documents
//! (and as qemu-run.sh writes it) gives its text; RAM without the magic is ignored; a blob
//! with the magic but a bad version, length or text is refused with the reason.

use tcefw::platform::config_blob::{
    parse, ConfigBlobError, CONFIG_BLOB_ADDRESS, CONFIG_BLOB_WINDOW, CONFIG_TEXT_MAX,
};

/// The documented layout, written out field by field (not through the parser's constants).
fn blob(version: u32, length: u32, text: &[u8]) -> Vec<u8> {
    let mut window = vec![0u8; CONFIG_BLOB_WINDOW as usize];
    window[..8].copy_from_slice(b"TCEFWCFG");
    window[8..12].copy_from_slice(&version.to_be_bytes());
    window[12..16].copy_from_slice(&length.to_be_bytes());
    window[16..16 + text.len()].copy_from_slice(text);
    window
}

#[test]
fn documented_address_and_window() {
    // README: "0xf00000, 64 KiB" (config_blob.rs asserts at compile time that it lies
    // between QEMU's 4 MiB -bios limit and its device tree at 16 MiB).
    assert_eq!(CONFIG_BLOB_ADDRESS, 0xf0_0000);
    assert_eq!(CONFIG_BLOB_WINDOW, 64 << 10);
}

#[test]
fn a_valid_blob_gives_its_text() {
    let text = b"tcefw.test=tce_4k_1level_window1 tcefw.tier=tce";
    let window = blob(1, text.len() as u32, text);
    assert_eq!(
        parse(&window),
        Ok(Some("tcefw.test=tce_4k_1level_window1 tcefw.tier=tce"))
    );
    // Bytes after the text are not part of it.
    let mut trailing = window.clone();
    trailing[16 + text.len()] = b'X';
    assert_eq!(
        parse(&trailing),
        Ok(Some(core::str::from_utf8(text).unwrap()))
    );
    assert_eq!(parse(&blob(1, 0, b"")), Ok(Some("")));
}

#[test]
fn ram_without_the_magic_is_ignored() {
    assert_eq!(parse(&vec![0u8; CONFIG_BLOB_WINDOW as usize]), Ok(None));
    assert_eq!(parse(&[0xffu8; 64]), Ok(None));
    let mut near_miss = blob(1, 4, b"test");
    near_miss[7] = b'g';
    assert_eq!(parse(&near_miss), Ok(None));
    assert_eq!(parse(b"TCEFW"), Ok(None), "shorter than a header");
}

#[test]
fn a_bad_header_is_refused_with_the_reason() {
    assert_eq!(
        parse(&blob(2, 4, b"test")),
        Err(ConfigBlobError::Version(2))
    );
    let too_long = CONFIG_TEXT_MAX as u32 + 1;
    assert_eq!(
        parse(&blob(1, too_long, b"")),
        Err(ConfigBlobError::Length(too_long))
    );
    assert_eq!(
        parse(&blob(1, u32::MAX, b"")),
        Err(ConfigBlobError::Length(u32::MAX))
    );
    // A length past the bytes actually given (a short read) is refused too.
    let short = &blob(1, 100, b"x")[..40];
    assert_eq!(parse(short), Err(ConfigBlobError::Length(100)));
    assert_eq!(
        parse(&blob(1, 6, b"ab\ncd!")),
        Err(ConfigBlobError::Text(2))
    );
    assert_eq!(parse(&blob(1, 3, b"a\0b")), Err(ConfigBlobError::Text(1)));
    assert_eq!(
        parse(&blob(1, 2, &[b'a', 0xc3])),
        Err(ConfigBlobError::Text(1))
    );
    let message = ConfigBlobError::Length(too_long).to_string();
    assert!(message.contains("65520"), "{message}");
}
