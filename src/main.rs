//! The tcefw firmware image: a thin binary over the library. On powerpc64le the entry points
//! live in `boot/` (assembly, pulled in by `tcefw::arch`) and `tcefw::arch::ppc64::boot`,
//! which hands over to `tcefw::startup`. Built for the host (plain `cargo run`), it hands
//! over to qemu-run.sh, which builds the firmware target and boots it under QEMU.
#![cfg_attr(target_arch = "powerpc64", no_std)]
#![forbid(unsafe_code)]
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
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/qemu-run.sh");
    let status = std::process::Command::new(script)
        .args(std::env::args_os().skip(1))
        .status();
    match status {
        Ok(status) => std::process::exit(status.code().unwrap_or(1)),
        Err(error) => {
            eprintln!("tcefw: cannot run {script}: {error}");
            std::process::exit(2);
        }
    }
}
