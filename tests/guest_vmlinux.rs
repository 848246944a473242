//! The loader plan of the real guest kernel: Debian's ppc64el vmlinux as
//! `tools/guest-images.sh` caches it in `target/guest/vmlinux` (or the file named by
//! `TCEFW_GUEST_VMLINUX`). Parses it with `tcefw::hv::elf`, prints the plan, checks it is the
//! kernel the pseries boot expects (ELFv2 little-endian, loaded at guest-real 0, entered at
//! guest-real 0, fits a 512 MiB partition), applies it into a 512 MiB guest memory and
//! compares the loaded bytes with the file.
//!
//! A custom harness (`harness = false` in Cargo.toml), because the file may be absent: then
//! the test is reported SKIPPED, with the reason, and counted in the "ignored" column of
//! the `test result:` line that `./test.sh` sums — never as passed.

use std::path::PathBuf;
use std::time::Instant;
use tcefw::hv::elf::{ByteOrder, LoadPlan};
use tcefw::hv::memory::SliceGuestMemory;

const NAME: &str = "guest_vmlinux_load_plan";
const PARTITION: u64 = 512 << 20;

fn vmlinux_path() -> PathBuf {
    if let Some(path) = std::env::var_os("TCEFW_GUEST_VMLINUX") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("guest").join("vmlinux")
}

fn check(file: &[u8]) -> Result<(), String> {
    let started = Instant::now();
    let plan = LoadPlan::new(file, PARTITION).map_err(|e| format!("plan refused: {e:?}"))?;
    let parse_us = started.elapsed().as_micros();
    println!(
        "  vmlinux: {} bytes, {:?}-endian, ELFv{}, entry {:#x} -> guest-real {:#x} (planned in {} us)",
        file.len(),
        plan.byte_order,
        plan.abi_version(),
        plan.entry_virtual,
        plan.entry_guest_real,
        parse_us
    );
    for s in &plan.segments {
        let (zero_at, zero_len) = s.zeroed();
        println!(
            "  PT_LOAD[{}]: file {:#x}+{:#x} -> guest-real {:#x} (virtual {:#x}), zero {:#x}+{:#x}, flags {:#x}",
            s.index, s.file_offset, s.file_size, s.guest_real, s.virtual_address, zero_at, zero_len, s.flags
        );
    }
    println!(
        "  guest-real end {:#x} ({} MiB of the {} MiB partition)",
        plan.guest_real_end(),
        plan.guest_real_end().div_ceil(1 << 20),
        PARTITION >> 20
    );
    if plan.byte_order != ByteOrder::Little || plan.abi_version() != 2 {
        return Err("not an ELFv2 little-endian kernel".into());
    }
    if plan.entry_guest_real != 0 || plan.segments[0].guest_real != 0 {
        return Err("the kernel is not loaded and entered at guest-real 0".into());
    }
    let mut guest = SliceGuestMemory::new(vec![0xa5u8; PARTITION as usize]);
    let started = Instant::now();
    plan.apply(file, &mut guest)
        .map_err(|e| format!("apply: {e:?}"))?;
    println!(
        "  applied into a 512 MiB guest in {} ms",
        started.elapsed().as_millis()
    );
    for s in &plan.segments {
        let at = s.guest_real as usize;
        let len = s.file_size as usize;
        let from = s.file_offset as usize;
        if guest.bytes()[at..at + len] != file[from..from + len] {
            return Err(format!("PT_LOAD[{}] bytes differ after loading", s.index));
        }
        let (zero_at, zero_len) = s.zeroed();
        if guest.bytes()[zero_at as usize..(zero_at + zero_len) as usize]
            .iter()
            .any(|&b| b != 0)
        {
            return Err(format!("PT_LOAD[{}] bss not zeroed", s.index));
        }
    }
    let end = plan.guest_real_end() as usize;
    if guest.bytes()[end..].iter().any(|&b| b != 0xa5) {
        return Err("bytes above the kernel were written".into());
    }
    Ok(())
}

fn main() {
    // `cargo test -- --list` and name filters: behave like libtest enough for both.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("{NAME}: test");
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if !filters.is_empty() && !filters.iter().any(|f| NAME.contains(f.as_str())) {
        println!("\nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 1 filtered out\n");
        return;
    }
    println!("\nrunning 1 test");
    let path = vmlinux_path();
    let file = match std::fs::read(&path) {
        Ok(file) => file,
        Err(e) => {
            println!(
                "SKIP {NAME}: {} not readable ({e}); fetch it with tools/guest-images.sh",
                path.display()
            );
            println!("test {NAME} ... ignored (skipped)\n");
            println!(
                "test result: ok. 0 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out\n"
            );
            return;
        }
    };
    println!("  file {}", path.display());
    match check(&file) {
        Ok(()) => {
            println!("test {NAME} ... ok\n");
            println!(
                "test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n"
            );
        }
        Err(why) => {
            println!("FAIL {NAME}: {why}");
            println!("test {NAME} ... FAILED\n");
            println!(
                "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out\n"
            );
            std::process::exit(101);
        }
    }
}
