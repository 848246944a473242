//! Constants that the assembly in `boot/` defines, read by the compiler: `.set NAME, VALUE`
//! lines are looked up in the assembly source at compile time, so a Rust layout can be
//! checked against the offsets the vector code really uses (see [`crate::hw::trap`]).
//!
//! Resources: GNU as manual, `.set symbol, expression` (only plain decimal or `0x` hex
//! values are recognised here, which is all boot/defs.S uses for layouts).

/// `boot/defs.S`, the assembler definitions shared by head.S and entry.S.
pub const DEFS_S: &str = include_str!("../../boot/defs.S");

/// The value of the line `.set NAME, VALUE` in `source` (VALUE decimal or `0x` hex, then
/// nothing but blanks or a comment), or `None` if no such line exists.
pub const fn asm_constant(source: &str, name: &str) -> Option<u64> {
    let text = source.as_bytes();
    let name = name.as_bytes();
    let mut start = 0;
    while start < text.len() {
        let mut end = start;
        while end < text.len() && text[end] != b'\n' {
            end += 1;
        }
        if let Some(value) = set_line_value(text, start, end, name) {
            return Some(value);
        }
        start = end + 1;
    }
    None
}

const fn skip_blanks(text: &[u8], mut at: usize, end: usize) -> usize {
    while at < end && (text[at] == b' ' || text[at] == b'\t') {
        at += 1;
    }
    at
}

const fn has_word_at(text: &[u8], at: usize, end: usize, word: &[u8]) -> bool {
    if at > end || end - at < word.len() {
        return false;
    }
    let mut i = 0;
    while i < word.len() {
        if text[at + i] != word[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// `Some(VALUE)` when `text[start..end]` is `.set NAME, VALUE`.
const fn set_line_value(text: &[u8], start: usize, end: usize, name: &[u8]) -> Option<u64> {
    let mut at = skip_blanks(text, start, end);
    if !has_word_at(text, at, end, b".set") {
        return None;
    }
    at += 4;
    let after_directive = skip_blanks(text, at, end);
    if after_directive == at || !has_word_at(text, after_directive, end, name) {
        return None;
    }
    at = skip_blanks(text, after_directive + name.len(), end);
    if at >= end || text[at] != b',' {
        return None;
    }
    parse_value(text, skip_blanks(text, at + 1, end), end)
}

const fn parse_value(text: &[u8], mut at: usize, end: usize) -> Option<u64> {
    let mut radix = 10;
    if has_word_at(text, at, end, b"0x") {
        radix = 16;
        at += 2;
    }
    let mut value: u64 = 0;
    let mut digits = 0;
    while at < end {
        let digit = match text[at] {
            c @ b'0'..=b'9' => (c - b'0') as u64,
            c @ b'a'..=b'f' if radix == 16 => (c - b'a' + 10) as u64,
            c @ b'A'..=b'F' if radix == 16 => (c - b'A' + 10) as u64,
            _ => break,
        };
        value = match value.checked_mul(radix) {
            Some(shifted) => match shifted.checked_add(digit) {
                Some(next) => next,
                None => return None,
            },
            None => return None,
        };
        digits += 1;
        at += 1;
    }
    let rest = skip_blanks(text, at, end);
    if digits == 0 || (rest < end && text[rest] != b'/' && text[rest] != b'#') {
        return None;
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_set_lines_and_nothing_else() {
        let source = "\t.set TF_VSR, 432\t\t/* 64 x 16 */\n  .set TF_VSRX,8\n\
                      .set SPRN_HID0, 1008\n.set MASK, 0x3002 # fp\n.setx NOPE, 1\n\
                      .set BAD, 12q\n\t/* .set TF_CTR, 1 */\n.set TF_CTR, 288";
        assert_eq!(asm_constant(source, "TF_VSR"), Some(432));
        assert_eq!(asm_constant(source, "TF_VSRX"), Some(8));
        assert_eq!(
            asm_constant(source, "TF_VS"),
            None,
            "a prefix is not the name"
        );
        assert_eq!(asm_constant(source, "SPRN_HID0"), Some(1008));
        assert_eq!(asm_constant(source, "MASK"), Some(0x3002));
        assert_eq!(asm_constant(source, "NOPE"), None);
        assert_eq!(asm_constant(source, "BAD"), None);
        assert_eq!(
            asm_constant(source, "TF_CTR"),
            Some(288),
            "comments are skipped"
        );
        assert_eq!(asm_constant(".set BIG, 0x1ffffffffffffffff", "BIG"), None);
    }

    #[test]
    fn finds_the_real_definitions() {
        assert_eq!(asm_constant(DEFS_S, "SPRN_HSPRG0"), Some(304));
        assert_eq!(asm_constant(DEFS_S, "TF_SIZE").map(|s| s % 16), Some(0));
    }
}
