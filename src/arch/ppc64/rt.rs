//! Symbols the prebuilt `core` and `alloc` refer to even with panic=abort: the personality
//! routine and `_Unwind_Resume`. Nothing unwinds in this image, so neither is ever used;
//! reaching `_Unwind_Resume` is a broken invariant and ends the run.
//!
//! Resources: Itanium C++ ABI, "Exception Handling" (the two symbols' roles); the Rust
//! embedded book, "panic=abort and eh_personality".

/// The prebuilt `core` refers to this symbol even with panic=abort; it is never called.
#[no_mangle]
extern "C" fn rust_eh_personality() {}

/// The prebuilt `alloc` has landing pads that name this; with panic=abort nothing unwinds,
/// so reaching it is a broken invariant.
#[no_mangle]
extern "C" fn _Unwind_Resume() -> ! {
    (super::hooks::hooks().end_run_failed)("_Unwind_Resume reached: unwinding is not supported")
}
