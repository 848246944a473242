//! The console: `print!`/`println!`, skiboot-style log lines `[timebase,level] SUBSYS: msg`,
//! and an early buffer that keeps what is printed before a sink (UART or OPAL) is known.
//!
//! Resources: skiboot core/console-log.c (`[%5lu.%09lu,%d]` prefix, log levels) and
//! core/console.c (early buffering before the console driver is up).
#![forbid(unsafe_code)]

use crate::hw::console::Sink;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use spin::{Mutex, Once};

/// Log levels, as skiboot numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// Emergency.
    Emerg = 0,
    /// Error.
    Error = 3,
    /// Warning.
    Warning = 4,
    /// Notice (the default for boot messages).
    Notice = 5,
    /// Informational.
    Info = 6,
    /// Debug.
    Debug = 7,
}

const EARLY_BUFFER_BYTES: usize = 8192;

struct EarlyBuffer {
    bytes: [u8; EARLY_BUFFER_BYTES],
    len: usize,
    dropped: usize,
}

struct Console {
    sink: Option<&'static dyn Sink>,
    early: EarlyBuffer,
}

impl Write for Console {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        match self.sink {
            Some(sink) => sink.write_bytes(text.as_bytes()),
            None => {
                let room = EARLY_BUFFER_BYTES - self.early.len;
                let taken = room.min(text.len());
                self.early.bytes[self.early.len..self.early.len + taken]
                    .copy_from_slice(&text.as_bytes()[..taken]);
                self.early.len += taken;
                self.early.dropped += text.len() - taken;
            }
        }
        Ok(())
    }
}

static CONSOLE: Mutex<Console> = Mutex::new(Console {
    sink: None,
    early: EarlyBuffer {
        bytes: [0; EARLY_BUFFER_BYTES],
        len: 0,
        dropped: 0,
    },
});

static TIME_SOURCE: Once<fn() -> u64> = Once::new();
static TIMEBASE_HZ: AtomicU64 = AtomicU64::new(512_000_000);

/// Sets the sink and flushes what was printed before it existed. (The emergency path keeps
/// the first sink set: boot sets one.)
pub fn set_sink(sink: &'static dyn Sink) {
    EMERGENCY_SINK.call_once(|| sink);
    let mut console = CONSOLE.lock();
    console.sink = Some(sink);
    let early_len = console.early.len;
    sink.write_bytes(&console.early.bytes[..early_len]);
    if console.early.dropped != 0 {
        let dropped = console.early.dropped;
        let _ = writeln!(console, "\n[console: {dropped} early bytes were dropped]");
    }
    console.early.len = 0;
    console.early.dropped = 0;
}

/// Sets the clock used for log prefixes: a timebase reader and its frequency (from the
/// device tree's `timebase-frequency`).
pub fn set_time_source(read_timebase: fn() -> u64, hz: u64) {
    TIME_SOURCE.call_once(|| read_timebase);
    if hz != 0 {
        TIMEBASE_HZ.store(hz, Ordering::Relaxed);
    }
}

/// The current timebase value, or 0 before a time source is set.
pub fn timebase() -> u64 {
    TIME_SOURCE.get().map_or(0, |read| read())
}

/// Timebase ticks per second.
pub fn timebase_hz() -> u64 {
    TIMEBASE_HZ.load(Ordering::Relaxed)
}

/// Writes formatted text to the console. Used by the macros.
pub fn print_fmt(args: fmt::Arguments<'_>) {
    with_console(|console| {
        let _ = console.write_fmt(args);
    });
}

/// Writes a whole log line with its prefix under one lock, so lines from different CPUs
/// never interleave.
pub fn log_fmt(level: Level, subsystem: &str, args: fmt::Arguments<'_>) {
    let ticks = timebase();
    with_console(|console| {
        let _ = write_prefix(console, ticks, timebase_hz(), level);
        let _ = write!(console, "{subsystem}: ");
        let _ = console.write_fmt(args);
        let _ = console.write_str("\n");
    });
}

/// Writes a whole log line whose text already names its subsystem (e.g. a device-tree
/// summary line "MEM: ..."), with the timestamp prefix.
pub fn log_line(level: Level, args: fmt::Arguments<'_>) {
    let ticks = timebase();
    with_console(|console| {
        let _ = write_prefix(console, ticks, timebase_hz(), level);
        let _ = console.write_fmt(args);
        let _ = console.write_str("\n");
    });
}

/// Writes to the console even if another context holds its lock (a fault report from an
/// exception that hit while the lock was held). If the lock stays taken, the console goes
/// into emergency mode for good: from then on every print bypasses the lock and writes
/// straight to the sink. Output may interleave; nothing deadlocks.
pub fn emergency_print(args: fmt::Arguments<'_>) {
    if !EMERGENCY.load(Ordering::Acquire) {
        for _ in 0..1_000_000 {
            if let Some(mut console) = CONSOLE.try_lock() {
                let _ = console.write_fmt(args);
                return;
            }
            core::hint::spin_loop();
        }
        // The holder of the lock is the context this exception interrupted; it cannot run
        // again before the run ends, so it will never let go.
        EMERGENCY.store(true, Ordering::Release);
    }
    let _ = SinkWriter.write_fmt(args);
}

/// Set once the console's lock was found stuck: prints go straight to the sink.
static EMERGENCY: AtomicBool = AtomicBool::new(false);
/// The sink as the emergency path sees it, without the console's lock.
static EMERGENCY_SINK: Once<&'static dyn Sink> = Once::new();

/// Writes straight to the sink (nowhere, before one is set).
struct SinkWriter;

impl Write for SinkWriter {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        if let Some(sink) = EMERGENCY_SINK.get() {
            sink.write_bytes(text.as_bytes());
        }
        Ok(())
    }
}

/// The console, or the bypass in emergency mode.
fn with_console(write: impl FnOnce(&mut dyn Write)) {
    if EMERGENCY.load(Ordering::Acquire) {
        write(&mut SinkWriter);
    } else {
        write(&mut *CONSOLE.lock());
    }
}

/// `[    1.234567890,5] ` as skiboot prints it: seconds, nanoseconds, level.
pub fn write_prefix(out: &mut dyn Write, ticks: u64, hz: u64, level: Level) -> fmt::Result {
    let hz = hz.max(1);
    let seconds = ticks / hz;
    let nanos = ((ticks % hz) as u128 * 1_000_000_000 / hz as u128) as u64;
    write!(out, "[{seconds:5}.{nanos:09},{}] ", level as u8)
}

/// Prints to the console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::console::print_fmt(format_args!($($arg)*)) };
}

/// Prints a line to the console.
#[macro_export]
macro_rules! println {
    () => { $crate::console::print_fmt(format_args!("\n")) };
    ($($arg:tt)*) => {
        $crate::console::print_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// A skiboot-style log line: `log!(Notice, "PHB3", "PHB#{} up", n)`.
#[macro_export]
macro_rules! log {
    ($level:ident, $subsystem:expr, $($arg:tt)*) => {
        $crate::console::log_fmt($crate::console::Level::$level, $subsystem, format_args!($($arg)*))
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    struct Recorder(spin::Mutex<Vec<u8>>);
    impl Sink for Recorder {
        fn write_bytes(&self, bytes: &[u8]) {
            self.0.lock().extend_from_slice(bytes);
        }
    }

    /// The only test that touches the global console: output before the sink exists is kept
    /// and flushed first, log lines carry their prefix, and an overflow is reported.
    #[test]
    fn early_output_is_kept_and_flushed_in_order() {
        crate::print!("before the sink; ");
        let filler = [b'x'; 1000];
        let filler = core::str::from_utf8(&filler).unwrap();
        for _ in 0..9 {
            crate::print!("{filler}");
        }
        static RECORDER: Recorder = Recorder(spin::Mutex::new(Vec::new()));
        set_sink(&RECORDER);
        crate::log!(Notice, "TEST", "after {}", 42);
        let text = String::from_utf8(RECORDER.0.lock().clone()).unwrap();
        assert!(text.starts_with("before the sink; xxx"), "{}", &text[..40]);
        assert!(
            text.contains("early bytes were dropped]"),
            "overflow not reported"
        );
        assert!(
            text.ends_with(",5] TEST: after 42\n"),
            "{}",
            &text[text.len() - 40..]
        );
        // Everything up to the buffer's size was kept, in order, before the notice.
        assert_eq!(text.find("\n[console: "), Some(EARLY_BUFFER_BYTES));

        // A report from a context that interrupted the lock's holder still gets out, and so
        // does everything printed after it, though the lock is never let go.
        let held = CONSOLE.lock();
        emergency_print(format_args!("fault while the lock is held\n"));
        crate::log!(Error, "TEST", "after the fault");
        let text = String::from_utf8(RECORDER.0.lock().clone()).unwrap();
        assert!(
            text.contains("after 42\nfault while the lock is held\n["),
            "{}",
            &text[text.len() - 80..]
        );
        assert!(
            text.ends_with(",3] TEST: after the fault\n"),
            "{}",
            &text[text.len() - 40..]
        );
        drop(held);
    }

    #[test]
    fn prefix_matches_skiboot_format() {
        let mut out = String::new();
        write_prefix(
            &mut out,
            512_000_000 + 256_000_000,
            512_000_000,
            Level::Notice,
        )
        .unwrap();
        assert_eq!(out, "[    1.500000000,5] ");
        out.clear();
        write_prefix(&mut out, 1, 512_000_000, Level::Error).unwrap();
        assert_eq!(out, "[    0.000000001,3] ");
        out.clear();
        write_prefix(&mut out, 7, 0, Level::Debug).unwrap();
        assert_eq!(out, "[    7.000000000,7] ");
    }
}
