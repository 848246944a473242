//! The only way arch calls upward: a table of entry points that the crate root defines
//! (`TCEFW_HOOKS` in src/lib.rs) and arch finds by its link name, so that arch names nothing
//! above it. The boot CPU's entry, every released thread, every unexpected interrupt and the
//! unwinding stubs go through it.
//!
//! A link-time table rather than one registered at run time, because the first hook (the
//! boot CPU's main line) is needed before any code could register it.
//!
//! Resources: the hook style of tock's `kernel::platform` (the board wires chip code to the
//! kernel); Rust reference, "External blocks" (statics declared in `extern "Rust"`).

use super::boot::Handover;
use crate::hw::trap::TrapFrame;
use crate::mm::phys::BootAuthority;

/// Where arch hands control to the layers above.
pub struct Hooks {
    /// The boot CPU's main line, entered once with the per-CPU area set up, the values the
    /// boot protocol handed over, and the one boot authority. Never returns: the run ends
    /// with a verdict.
    pub boot: fn(Handover, BootAuthority) -> !,
    /// Run first on every released secondary thread, before its per-CPU area is set up and
    /// before it can take an interrupt (bare mode: HID0[HILE]).
    pub prepare_secondary: fn(),
    /// Reports an interrupt with its saved state: `fatal` when the run ends next, otherwise
    /// one that a test expected.
    pub report_exception: fn(frame: &TrapFrame, fatal: bool),
    /// Ends the run as failed (unexpected interrupts, unwinding).
    pub end_run_failed: fn(reason: &str) -> !,
}

extern "Rust" {
    /// Defined with `#[no_mangle]` in src/lib.rs, with exactly this type.
    static TCEFW_HOOKS: Hooks;
}

/// The hook table.
pub fn hooks() -> &'static Hooks {
    // SAFETY: the crate root defines TCEFW_HOOKS as a `Hooks` (the same type, from this
    // module); it is an immutable static, initialised at compile time.
    unsafe { &TCEFW_HOOKS }
}
