//! The tcefw firmware image: a thin entry that hands over to the library.
#![cfg_attr(target_arch = "powerpc64", no_std)]
#![cfg_attr(target_arch = "powerpc64", no_main)]

#[cfg(not(target_arch = "powerpc64"))]
fn main() {
    eprintln!("tcefw is POWER8 firmware: build it for powerpc64le-unknown-linux-gnu (plain `cargo build`).");
}
