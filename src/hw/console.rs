//! Where console bytes go: the interface between the console (log lines, the early buffer)
//! and the device that prints them, the LPC UART in bare mode or OPAL's console in payload
//! mode.
//!
//! Resources: skiboot core/console.c (`struct con_ops`: the console core over a driver's
//! write); Linux drivers/tty/hvc/hvc_opal.c (OPAL console as a byte sink).

/// A console device. Implementations write as many bytes as the device takes and never fail
/// loudly: a console that cannot print has nobody to tell.
pub trait Sink: Sync {
    /// Writes every byte, or as many as the device takes.
    fn write_bytes(&self, bytes: &[u8]);
}
