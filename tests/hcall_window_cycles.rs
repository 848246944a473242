//! Window create/remove cycled 100 times through the private hypercalls, each window mapping
//! 512 pages with H_PUT_TCE_INDIRECT (DMA checked at the first, middle and last page) before it
//! is removed (or the PE reset) with its pages still mapped: afterwards the frame allocator's
//! `stats()` and free bytes, the heap's used bytes, the pins and the tables are exactly where
//! they started. Every cycle also runs the audit with the allocator check (frame bytes = table
//! levels + RTT).
//!
//! One `#[test]` only: the heap is counted process-wide (`CountingAlloc`), so nothing else may
//! run meanwhile. The baseline is taken after a warm-up cycle of each shape and kind: the frame
//! allocator keeps its free lists in B-trees whose root nodes stay on the heap once used, and
//! its `peak_bytes` is a high-water mark.

use tcefw::hcall::*;
use tcefw::hw::regio::RegIo;
use tcefw::model::rig::RTT_BYTES;
use tcefw::model::{CountingAlloc, Rig};

#[global_allocator]
static HEAP: CountingAlloc<std::alloc::System> = CountingAlloc::new(std::alloc::System);

const PE: u16 = 6; // RTT maps RID r to PE r
const LIST_GRA: u64 = 0x1_0000;

fn args(words: &[u64]) -> [u64; HCALL_ARGS] {
    let mut a = [0; HCALL_ARGS];
    a[..words.len()].copy_from_slice(words);
    a
}

/// (page shift, window shift, levels) of the windows cycled.
const SHAPES: [(u64, u64, u64); 3] = [(12, 36, 3), (16, 32, 2), (12, 24, 1)];

#[test]
fn a_hundred_create_remove_cycles_leave_heap_and_frames_where_they_started() {
    let rig = Rig::new(16 << 20, 64 << 20).unwrap();
    let model = rig.model(true);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let part = hv.add_partition(0, 64 << 20, rig.ram.base()).unwrap();
    let handle = hv.grant_pe(part, 0, PE).unwrap();
    let mut unmapped_total = 0;

    let mut cycle = |n: u64| {
        let (page_shift, window_shift, levels) = SHAPES[n as usize % SHAPES.len()];
        let page = 1u64 << page_shift;
        let r = hv.dispatch(
            part,
            H_TCEFW_CREATE_PE_DMA_WINDOW,
            &args(&[handle, page_shift, window_shift, levels]),
        );
        assert_eq!(r.status, H_SUCCESS, "cycle {n}: create");
        let (liobn, bus) = (r.out[0], r.out[1]);
        // 512 pages from the list, written into the caller's memory as big-endian TCEs.
        let list: Vec<u8> = (0..512u64)
            .flat_map(|i| ((0x40_0000 + i * page) | 3).to_be_bytes())
            .collect();
        assert!(model.memory().write(part.host_base() + LIST_GRA, &list));
        let r = hv.dispatch(
            part,
            H_PUT_TCE_INDIRECT,
            &args(&[liobn, bus, LIST_GRA, 512]),
        );
        assert_eq!(r.status, H_SUCCESS, "cycle {n}: indirect");
        for i in [0u64, 255, 511] {
            let tag = (n << 16 | i).to_be_bytes();
            model.dma_write(PE, bus + i * page + 64, &tag).unwrap();
            let mut seen = [0u8; 8];
            model
                .memory()
                .read(part.host_base() + 0x40_0000 + i * page + 64, &mut seen);
            assert_eq!(seen, tag, "cycle {n}: DMA reaches page {i}");
        }
        let audit = rig.audit(&hv);
        assert!(audit.is_clean(), "cycle {n}: {audit:?}");
        assert_eq!(audit.valid_tces, 512);
        // Every 10th cycle resets the PE instead of removing the window.
        let r = if n % 10 == 9 {
            let r = hv.dispatch(part, H_TCEFW_RESET_PE_DMA_WINDOWS, &args(&[handle]));
            assert_eq!(r.out[0], liobn_of_default(), "cycle {n}: reset");
            r.out[1]
        } else {
            let r = hv.dispatch(part, H_TCEFW_REMOVE_PE_DMA_WINDOW, &args(&[liobn]));
            assert_eq!(r.status, H_SUCCESS, "cycle {n}: remove");
            r.out[0]
        };
        assert_eq!(r, 512, "cycle {n}: every mapping unmapped");
        assert!(model.dma_write(PE, bus, b"gone").is_err());
        unmapped_total += r;
    };

    // Warm-up: every shape removed and reset once (a reset allocates the fresh default before
    // it removes anything, so it sets the high-water mark `peak_bytes`).
    for n in [0, 1, 2, 9, 19, 29] {
        cycle(n);
    }
    let frames = rig.frames.stats();
    let free = rig.frames.free_bytes();
    let heap = HEAP.used();
    // What holds memory besides tables and window records: the RTT, and the rest of the heap.
    let others = AllocatorUsage {
        frame_bytes: RTT_BYTES as u64,
        heap_bytes: Some(heap - hv.window_heap_bytes()),
    };
    let table_bytes = rig.table_bytes_in_use();

    for n in 0..100 {
        cycle(n);
        assert_eq!(
            rig.frames.stats().used_bytes,
            frames.used_bytes,
            "cycle {n}"
        );
        assert_eq!(HEAP.used(), heap, "cycle {n}: heap");
    }

    assert_eq!(rig.frames.stats(), frames, "BuddyAllocator::stats()");
    assert_eq!(rig.frames.free_bytes(), free);
    assert_eq!(HEAP.used(), heap, "heap used bytes");
    assert_eq!(
        rig.table_bytes_in_use(),
        table_bytes,
        "only the default window"
    );
    assert_eq!(rig.pages.total_pins(), 0);
    let audit = hv.audit_with_usage(rig.usage(Some(HEAP.used())), others);
    assert!(audit.is_clean(), "{audit:?}");
    assert_eq!(audit.windows, 1, "the default window");
    assert_eq!(model.stats().violations, 0, "{:?}", model.first_violation());
    assert_eq!(unmapped_total, 106 * 512);
    eprintln!(
        "100 cycles: frames used {} B in {} blocks before and after, heap {} B before and after",
        frames.used_bytes, frames.used_blocks, heap
    );
}

fn liobn_of_default() -> u64 {
    liobn(0, PE, 0)
}
