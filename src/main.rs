//! The tcefw firmware image: a thin binary over the library. The entry points live in
//! `boot/` (assembly, pulled in by `tcefw::arch`) and `tcefw::platform::boot`.
#![cfg_attr(target_arch = "powerpc64", no_std)]
#![cfg_attr(target_arch = "powerpc64", no_main)]

#[cfg(target_arch = "powerpc64")]
extern crate tcefw;

/// Keeps the library's entry code in the link (the linker starts from `_start`).
#[cfg(target_arch = "powerpc64")]
#[used]
static ENTRY: unsafe extern "C" fn() = {
    extern "C" {
        fn _start();
    }
    _start
};

#[cfg(not(target_arch = "powerpc64"))]
fn main() {
    eprintln!("tcefw is POWER8 firmware: build it for powerpc64le-unknown-linux-gnu (plain `cargo build`).");
}
