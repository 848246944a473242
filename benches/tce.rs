//! Benchmark (not a test): kill stores per hypercall (per H_PUT_TCE_INDIRECT call by list
//! length, 512 included), host nanoseconds per mapped page for H_PUT_TCE and
//! H_PUT_TCE_INDIRECT, and host instructions per mapped page for both, through the same
//! dispatcher, iommu code and PHB3 model the tests use. It prints figures and asserts nothing
//! about time.
//!
//! Instruction counts: hardware counters are often not available to a container or VM
//! (`perf stat -e instructions` answers "<not supported>" on the machine this was written on),
//! so the bench runs itself again under `valgrind --tool=cachegrind --cache-sim=no`, which
//! counts every instruction executed, deterministically. Each child maps pages N1 and then N2
//! times in the same way; (I(N2) - I(N1)) / (pages(N2) - pages(N1)) cancels the setup. The
//! children drive a PHB that ignores register accesses, so the count is the firmware's own
//! path (dispatch, validation, the protocol, the page accounting), not the model's. Without
//! valgrind the section says so. Guest instruction counts (QEMU -icount) need the firmware
//! image and are not measured here.
//!
//! Run: `cargo bench --target x86_64-unknown-linux-gnu --bench tce`.

use std::process::Command;
use std::time::Instant;
use tcefw::hcall::*;
use tcefw::hw::regio::{RegIo, Width};
use tcefw::iommu::WindowConfig;
use tcefw::model::Rig;

fn args(words: &[u64]) -> [u64; HCALL_ARGS] {
    let mut a = [0; HCALL_ARGS];
    a[..words.len()].copy_from_slice(words);
    a
}

/// A PHB whose registers do nothing: what the instruction-count children drive, so that the
/// count is the firmware path's alone.
struct NullPhb;

impl RegIo for NullPhb {
    fn read64(&self, offset: u64) -> u64 {
        // The kill's DMA read sync completes at once (as on QEMU); everything else reads 0.
        if offset == tcefw::phb3::regs::PHB_DMARD_SYNC {
            tcefw::phb3::regs::PHB_DMARD_SYNC_COMPLETE
        } else {
            0
        }
    }
    fn now_ns(&self) -> u64 {
        static CLOCK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        CLOCK.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
    fn write64(&self, _offset: u64, _value: u64) {}
    fn read_le(&self, _offset: u64, _width: Width) -> u32 {
        u32::MAX
    }
    fn write_le(&self, _offset: u64, _width: Width, _value: u32) {}
}

/// The child of the instruction count: `rounds` rounds of 512 pages mapped by `mode`
/// ("put": 512 H_PUT_TCE; "indirect": one 512-entry H_PUT_TCE_INDIRECT), each replacing the
/// previous round's mappings, after one identical warm-up round.
fn icount_child(mode: &str, rounds: u64) {
    let rig = Rig::new(16 << 20, 64 << 20).expect("host memory");
    let phb = NullPhb;
    let hv = rig.hypervisor(&[&phb as &dyn RegIo]);
    let part = hv
        .add_partition(0, 64 << 20, rig.ram.base())
        .expect("partition");
    let cfg = WindowConfig {
        pe: 1,
        window: 1,
        page_shift: 12,
        window_size: 1 << 32,
        levels: 2,
    };
    let liobn = hv.create_window(0, cfg, part).expect("window");
    let bus = 1u64 << 59;
    let lists = [0x300_0000u64, 0x300_1000];
    for (n, &list) in lists.iter().enumerate() {
        let words: Vec<u8> = (0..512u64)
            .flat_map(|i| (((n as u64 * 512 + i) << 12) | 3).to_be_bytes())
            .collect();
        assert!(rig.device_memory().write(part.host_base() + list, &words));
    }
    for round in 0..rounds + 1 {
        let set = (round % 2) as usize;
        match mode {
            "put" => {
                for i in 0..512u64 {
                    let tce = ((set as u64 * 512 + i) << 12) | 3;
                    let r = hv.dispatch(part, H_PUT_TCE, &args(&[liobn, bus + (i << 12), tce]));
                    std::hint::black_box(r);
                }
            }
            _ => {
                let r = hv.dispatch(
                    part,
                    H_PUT_TCE_INDIRECT,
                    &args(&[liobn, bus, lists[set], 512]),
                );
                std::hint::black_box(r);
            }
        }
    }
}

/// Instructions cachegrind counted for `self --icount-child mode rounds`, or why not.
fn cachegrind(mode: &str, rounds: u64) -> Result<u64, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = Command::new("valgrind")
        .args([
            "--tool=cachegrind",
            "--cache-sim=no",
            "--cachegrind-out-file=/dev/null",
        ])
        .arg(me)
        .args(["--icount-child", mode, &rounds.to_string()])
        .output()
        .map_err(|e| format!("valgrind not runnable ({e})"))?;
    let text = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "valgrind failed: {}",
            text.lines().last().unwrap_or("")
        ));
    }
    // "==pid== I   refs:      1,234,567" (the spacing varies between versions).
    text.lines()
        .find_map(|line| {
            let (head, refs) = line.split_once("refs:")?;
            head.trim_end().ends_with(" I").then_some(())?;
            refs.trim().replace(',', "").parse().ok()
        })
        .ok_or_else(|| String::from("no \"I refs\" line in cachegrind's output"))
}

fn instruction_counts() {
    println!("host instructions per mapped page (valgrind cachegrind, null PHB, 4K pages):");
    let (short, long) = (4u64, 12u64);
    for (label, mode) in [
        ("H_PUT_TCE x512", "put"),
        ("H_PUT_TCE_INDIRECT 512", "indirect"),
    ] {
        let counts = (cachegrind(mode, short), cachegrind(mode, long));
        match counts {
            (Ok(a), Ok(b)) => {
                let pages = (long - short) * 512;
                println!(
                    "  {label:<24} {:>8.1} instructions/page ({} - {} instructions over {} pages)",
                    (b as f64 - a as f64) / pages as f64,
                    b,
                    a,
                    pages
                );
            }
            (Err(why), _) | (_, Err(why)) => {
                println!("  {label:<24} not available: {why}");
            }
        }
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if let Some(at) = argv.iter().position(|a| a == "--icount-child") {
        let mode = argv.get(at + 1).map_or("put", String::as_str);
        let rounds = argv.get(at + 2).and_then(|r| r.parse().ok()).unwrap_or(1);
        icount_child(mode, rounds);
        return;
    }
    let rig = Rig::new(64 << 20, 64 << 20).expect("host memory");
    // No pin watch: it scans the whole cache at every register access, which is a test
    // instrument, not part of the path being measured.
    let model = rig.model(false);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let part = hv
        .add_partition(0, 64 << 20, rig.ram.base())
        .expect("partition");
    let service = hv.phb(0).expect("phb");
    println!("tcefw TCE benchmark (host, PHB3 model, same code path as the firmware)");

    for (label, page_shift, levels) in [
        ("4K pages, 1 level", 12, 1),
        ("4K pages, 3 levels", 12, 3),
        ("64K pages, 2 levels", 16, 2),
    ] {
        let cfg = WindowConfig {
            pe: 1,
            window: 0,
            page_shift,
            window_size: 1 << 32,
            levels,
        };
        let liobn = hv.create_window(0, cfg, part).expect("window");
        let page = 1u64 << page_shift;
        let rounds = 200_000u64;
        // Warm up: allocate the levels of the 512 slots used.
        for slot in 0..512u64 {
            hv.dispatch(part, H_PUT_TCE, &args(&[liobn, slot * page, page | 3]));
        }
        let kills = service.kill_counts();
        let start = Instant::now();
        for i in 0..rounds {
            let slot = i % 512;
            // A different page from the one the slot holds, so every call replaces a valid entry.
            let gra = (((((i / 512) * 7 + i) % 256) * page) % (32 << 20)) | 3;
            let r = hv.dispatch(part, H_PUT_TCE, &args(&[liobn, slot * page, gra]));
            std::hint::black_box(r);
        }
        let elapsed = start.elapsed();
        let after = service.kill_counts();
        println!(
            "H_PUT_TCE ({label}, replacing a valid entry): {:.0} ns/call, {:.2} kill stores/call",
            elapsed.as_nanos() as f64 / rounds as f64,
            (after.stores - kills.stores) as f64 / rounds as f64
        );
        // Clears of never-mapped entries in absent levels.
        let kills = service.kill_counts();
        let start = Instant::now();
        for i in 0..rounds {
            let r = hv.dispatch(
                part,
                H_PUT_TCE,
                &args(&[liobn, (1 << 31) + (i % 4096) * page, 0]),
            );
            std::hint::black_box(r);
        }
        let elapsed = start.elapsed();
        let after = service.kill_counts();
        println!(
            "H_PUT_TCE ({label}, clearing an absent entry):   {:.0} ns/call, {:.2} kill stores/call",
            elapsed.as_nanos() as f64 / rounds as f64,
            (after.stores - kills.stores) as f64 / rounds as f64
        );
        hv.remove_window(liobn).expect("remove");
    }

    // H_PUT_TCE_INDIRECT with 512 entries, against 512 single H_PUT_TCEs.
    let cfg = WindowConfig {
        pe: 2,
        window: 1,
        page_shift: 12,
        window_size: 1 << 32,
        levels: 2,
    };
    let liobn = hv.create_window(0, cfg, part).expect("window");
    let list_gra = 0x3F0_0000u64;
    let calls = 2_000u64;
    let kills = service.kill_counts();
    let start = Instant::now();
    for c in 0..calls {
        let list: Vec<u8> = (0..512u64)
            .flat_map(|i| ((((c + i) % 4096) << 12) | 3).to_be_bytes())
            .collect();
        model.memory().write(part.host_base() + list_gra, &list);
        let r = hv.dispatch(
            part,
            H_PUT_TCE_INDIRECT,
            &args(&[liobn, (1 << 59) + (c % 64) * (512 << 12), list_gra, 512]),
        );
        assert_eq!(r.status, H_SUCCESS);
    }
    let elapsed = start.elapsed();
    let after = service.kill_counts();
    println!(
        "H_PUT_TCE_INDIRECT (512 entries): {:.0} ns/call, {:.1} ns/mapped page, {:.2} kill stores/call",
        elapsed.as_nanos() as f64 / calls as f64,
        elapsed.as_nanos() as f64 / (calls * 512) as f64,
        (after.stores - kills.stores) as f64 / calls as f64
    );
    let kills = service.kill_counts();
    let start = Instant::now();
    for c in 0..calls {
        for i in 0..512u64 {
            let gra = (((c + i) % 4096) << 12) | 3;
            hv.dispatch(
                part,
                H_PUT_TCE,
                &args(&[liobn, (1 << 59) + (c % 64) * (512 << 12) + (i << 12), gra]),
            );
        }
    }
    let elapsed = start.elapsed();
    let after = service.kill_counts();
    println!(
        "H_PUT_TCE x512 (same pages):      {:.0} ns/512 calls, {:.1} ns/mapped page, {:.2} kill stores/512 calls",
        elapsed.as_nanos() as f64 / calls as f64,
        elapsed.as_nanos() as f64 / (calls * 512) as f64,
        (after.stores - kills.stores) as f64 / calls as f64
    );
    hv.remove_window(liobn).expect("remove");

    // Kill stores per H_PUT_TCE_INDIRECT call, by list length: kill-one per changed entry up
    // to the threshold, one kill-PE beyond it.
    let liobn = hv.create_window(0, cfg, part).expect("window");
    let list: Vec<u8> = (0..512u64)
        .flat_map(|i| ((0x100_0000 + (i << 12)) | 3).to_be_bytes())
        .collect();
    model.memory().write(part.host_base() + list_gra, &list);
    println!("kill stores per H_PUT_TCE_INDIRECT call (every entry changing):");
    for count in [1u64, 8, 16, 17, 64, 512] {
        let bus = 1u64 << 59;
        hv.dispatch(part, H_STUFF_TCE, &args(&[liobn, bus, 0, 512]));
        let kills = service.kill_counts();
        let r = hv.dispatch(
            part,
            H_PUT_TCE_INDIRECT,
            &args(&[liobn, bus, list_gra, count]),
        );
        assert_eq!(r.status, H_SUCCESS);
        let after = service.kill_counts();
        println!(
            "  {count:>3} entries: {} kill store(s) ({} kill-one, {} kill-PE), {} batch",
            after.stores - kills.stores,
            after.kill_one - kills.kill_one,
            after.kill_pe - kills.kill_pe,
            after.batches - kills.batches
        );
    }
    hv.remove_window(liobn).expect("remove");
    let report = rig.audit(&hv);
    println!(
        "audit after the run: clean = {}, pins left = {}",
        report.is_clean(),
        rig.pages.total_pins()
    );
    instruction_counts();
}
