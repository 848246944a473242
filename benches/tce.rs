//! Benchmark (not a test): kill stores per hypercall and host nanoseconds per H_PUT_TCE and
//! per page of H_PUT_TCE_INDIRECT, through the same dispatcher, iommu code and PHB3 model
//! the tests use. It prints figures and asserts nothing about time.
//!
//! Run: `cargo bench --target x86_64-unknown-linux-gnu --bench tce`.
//! Host instruction counts and guest (QEMU -icount) counts are not measured here: they need
//! perf counters or the QEMU run of the firmware image.

use std::time::Instant;
use tcefw::hcall::*;
use tcefw::iommu::WindowConfig;
use tcefw::model::Rig;
use tcefw::phb3::regio::RegIo;

fn args(words: &[u64]) -> [u64; HCALL_ARGS] {
    let mut a = [0; HCALL_ARGS];
    a[..words.len()].copy_from_slice(words);
    a
}

fn main() {
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
    let report = hv.audit();
    println!(
        "audit after the run: clean = {}, pins left = {}",
        report.is_clean(),
        rig.pages.total_pins()
    );
}
