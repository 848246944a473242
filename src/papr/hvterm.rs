//! The hypervisor virtual terminal (hvterm1, `/vdevice/vty@...`): H_PUT_TERM_CHAR and
//! H_GET_TERM_CHAR register packing.
//!
//! Up to 16 bytes travel in two registers, big-endian packed: the first byte is the most
//! significant byte of the first register (Linux's hvc_put_chars stores the buffer's first
//! eight bytes with `cpu_to_be64` into r6, the next eight into r7). H_PUT_TERM_CHAR(termno,
//! len, r6, r7) returns nothing; H_GET_TERM_CHAR(termno) returns r4 = len, r5/r6 = bytes.
//! The terminal number is the vty's `reg`; any other is H_PARAMETER, as is a length above
//! 16 (QEMU hw/char/spapr_vty.c).
//!
//! Resources: LoPAR 14.5.4.6 (virtual terminal hcalls); Linux
//! arch/powerpc/platforms/pseries/hvconsole.c (hvc_get_chars, hvc_put_chars) and
//! drivers/tty/hvc/hvc_vio.c; QEMU hw/char/spapr_vty.c (h_put_term_char, h_get_term_char).

/// Bytes one call carries.
pub const MAX_TERM_CHARS: usize = 16;

/// Why a terminal call was refused (H_PARAMETER).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HvtermError {
    /// The terminal number is not the vty's.
    UnknownTerminal,
    /// More than 16 bytes.
    TooLong,
}

/// Bytes carried by one call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TermChars {
    bytes: [u8; MAX_TERM_CHARS],
    len: usize,
}

impl TermChars {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Up to 16 bytes of `bytes` (the rest is left for the next call).
    pub fn from_slice(bytes: &[u8]) -> Self {
        let len = bytes.len().min(MAX_TERM_CHARS);
        let mut out = TermChars {
            bytes: [0; MAX_TERM_CHARS],
            len,
        };
        out.bytes[..len].copy_from_slice(&bytes[..len]);
        out
    }

    /// Unpacks H_PUT_TERM_CHAR's `len`, r6 and r7.
    pub fn unpack(len: u64, high: u64, low: u64) -> Result<Self, HvtermError> {
        let len = usize::try_from(len)
            .ok()
            .filter(|&len| len <= MAX_TERM_CHARS)
            .ok_or(HvtermError::TooLong)?;
        let mut bytes = [0u8; MAX_TERM_CHARS];
        bytes[..8].copy_from_slice(&high.to_be_bytes());
        bytes[8..].copy_from_slice(&low.to_be_bytes());
        Ok(TermChars { bytes, len })
    }

    /// Packs for H_GET_TERM_CHAR: (r4 = len, r5, r6); unused bytes are zero.
    pub fn pack(&self) -> (u64, u64, u64) {
        let mut bytes = [0u8; MAX_TERM_CHARS];
        bytes[..self.len].copy_from_slice(self.as_slice());
        let mut high = [0u8; 8];
        let mut low = [0u8; 8];
        high.copy_from_slice(&bytes[..8]);
        low.copy_from_slice(&bytes[8..]);
        (
            self.len as u64,
            u64::from_be_bytes(high),
            u64::from_be_bytes(low),
        )
    }
}

/// The partition's one vty.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vterm {
    /// The terminal number: the vty node's `reg` (QEMU uses 0x71000000).
    pub reg: u32,
}

impl Vterm {
    /// Checks `termno` is this vty.
    pub fn check(&self, termno: u64) -> Result<(), HvtermError> {
        if termno == u64::from(self.reg) {
            Ok(())
        } else {
            Err(HvtermError::UnknownTerminal)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_pack_big_endian_first_byte_most_significant() {
        // Linux: lbuf[0] = cpu_to_be64(((u64 *)buf)[0]) for "hello, world!\r\n".
        let text = b"hello, world!\r\n";
        let high = u64::from_be_bytes(*b"hello, w");
        let low = u64::from_be_bytes(*b"orld!\r\n\0");
        let chars = TermChars::unpack(15, high, low).unwrap();
        assert_eq!(chars.as_slice(), text);
        assert_eq!(TermChars::from_slice(text).pack(), (15, high, low));
        assert_eq!(TermChars::unpack(0, high, low).unwrap().as_slice(), b"");
        assert_eq!(TermChars::unpack(16, 1, 2).unwrap().pack(), (16, 1, 2));
        assert_eq!(TermChars::unpack(17, 0, 0), Err(HvtermError::TooLong));
        assert_eq!(TermChars::unpack(u64::MAX, 0, 0), Err(HvtermError::TooLong));
        // A short get leaves no stale bytes in the registers.
        assert_eq!(TermChars::from_slice(b"ab").pack(), (2, 0x6162 << 48, 0));
        assert_eq!(TermChars::from_slice(&[7u8; 40]).as_slice().len(), 16);
    }

    #[test]
    fn only_the_vtys_own_number_is_accepted() {
        let vty = Vterm { reg: 0x7100_0000 };
        assert_eq!(vty.check(0x7100_0000), Ok(()));
        assert_eq!(vty.check(0), Err(HvtermError::UnknownTerminal));
        assert_eq!(vty.check(0x1_7100_0000), Err(HvtermError::UnknownTerminal));
    }
}
