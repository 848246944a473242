//! Benchmark (not a test): the cost of pinning and releasing one IOMMU page in the page
//! accounting, per page size (4K, 64K, 16M), and of one H_STUFF_TCE of 512 × 16M pages plus
//! the clear that releases them, through the dispatcher and the protocol against the PHB3 model
//! (pin watch off). It prints figures and asserts nothing about time.
//!
//! Pin and release are O(1) per IOMMU page whatever its size: one record per page at the
//! page's own granule (src/iommu/pages.rs), so the 16M figure should be close to the 4K one.
//! Before that change a 16M page pinned its 4096 frames one by one.
//!
//! Run: `cargo bench --target x86_64-unknown-linux-gnu --bench pages`.

use std::hint::black_box;
use std::time::Instant;
use tcefw::hcall::*;
use tcefw::hw::regio::RegIo;
use tcefw::iommu::WindowConfig;
use tcefw::model::Rig;

fn args(words: &[u64]) -> [u64; HCALL_ARGS] {
    let mut a = [0; HCALL_ARGS];
    a[..words.len()].copy_from_slice(words);
    a
}

fn main() {
    let rig = Rig::new(16 << 20, 32 << 20).expect("host memory");
    println!("tcefw page accounting: pin + release of one IOMMU page (host, one thread)");
    for (name, shift, rounds) in [
        ("4K", 12u32, 2_000_000u64),
        ("64K", 16, 1_000_000),
        ("16M", 24, 20_000),
    ] {
        let pa = rig.ram.base() + (16 << 20);
        let bytes = 1u64 << shift;
        // Warm up, then measure.
        for _ in 0..rounds / 10 {
            rig.pages.pin(pa, bytes).expect("pin");
            rig.pages.unpin(pa, bytes, true);
        }
        let start = Instant::now();
        for _ in 0..rounds {
            rig.pages.pin(black_box(pa), bytes).expect("pin");
            rig.pages.unpin(black_box(pa), bytes, true);
        }
        let ns = start.elapsed().as_nanos() as f64 / rounds as f64;
        println!("  {name:>4} page: {ns:>10.1} ns per pin + release ({rounds} rounds)");
    }
    assert_eq!(rig.pages.total_pins(), 0);

    // The PHB3 model without the pin watch: its register accesses (one kill and one DMA read
    // sync per call) cost the same whatever the page size.
    let phb = rig.model(false);
    let hv = rig.hypervisor(&[&phb as &dyn RegIo]);
    let part = hv
        .add_partition(0, 32 << 20, rig.ram.base())
        .expect("partition");
    let liobn = hv
        .create_window(
            0,
            WindowConfig {
                pe: 1,
                window: 0,
                page_shift: 24,
                window_size: 512 << 24,
                levels: 1,
            },
            part,
        )
        .expect("window");
    let page = 16u64 << 20;
    let rounds = 50u64;
    let start = Instant::now();
    for _ in 0..rounds {
        let map = hv.dispatch(part, H_STUFF_TCE, &args(&[liobn, 0, page | 3, 512]));
        assert_eq!(map.status, H_SUCCESS);
        let clear = hv.dispatch(part, H_STUFF_TCE, &args(&[liobn, 0, 0, 512]));
        assert_eq!(clear.status, H_SUCCESS);
    }
    let us = start.elapsed().as_nanos() as f64 / rounds as f64 / 1000.0;
    println!(
        "  H_STUFF_TCE of 512 x 16M pages, then the clear that releases them: {us:.1} us per \
         pair ({:.1} ns per 16M page mapped and released; {rounds} rounds)",
        us * 1000.0 / 512.0
    );
    hv.remove_window(liobn).expect("remove");
    let report = rig.audit(&hv);
    println!(
        "audit after the run: clean = {}, pins left = {}",
        report.is_clean(),
        rig.pages.total_pins()
    );
}
