//! Host tests of the TCE kill against the PHB3 model's worst case (issue 8, items 2 and 3;
//! docs/phb3-dma-bounds-and-kill.md):
//! - aliased bus addresses: a DMA at an entry's address plus a multiple of the table's reach
//!   walks to the same entry and is cached under its own address; after `H_PUT_TCE(…, 0)`
//!   returns and the page is released, the device must not reach it through that alias;
//! - ordering: the table stores must be made visible (a barrier) before the kill;
//! - completion: the kill must be completed (DMA read sync) before the release, or a TCE
//!   fetch in flight lands after the kill and survives;
//! - failure: a fenced PHB or a sync that never completes is an H_HARDWARE the caller sees;
//!   the old pages stay pinned in the quarantine (the audit counts them, clean), and every
//!   later call on that PHB fails at once, changing nothing, while other PHBs carry on.
//!
//! Each protocol bug is also planted (`KillFault`) and must be caught by the same check.

use tcefw::hcall::*;
use tcefw::hw::regio::RegIo;
use tcefw::iommu::kill::KILL_SYNC_TIMEOUT_NS;
use tcefw::iommu::{KillFault, WindowConfig};
use tcefw::model::{Phb3Model, Rig};

const PAGE: u64 = 4096;
const PE: u16 = 4;
const RID: u16 = 4; // the rig's RTT maps RID r to PE r & 0xFF
const IOBA: u64 = 0x5000;
const PAGE_GRA: u64 = 0x7000;

fn args(words: &[u64]) -> [u64; HCALL_ARGS] {
    let mut a = [0; HCALL_ARGS];
    a[..words.len()].copy_from_slice(words);
    a
}

/// The default window's shape: 2 GiB of 4K pages in 2 levels of 1024 entries, so the table
/// decodes 32 address bits (reach 4 GiB) while 59 bits select its TVE.
fn default_like(window: u8) -> WindowConfig {
    WindowConfig {
        pe: PE,
        window,
        page_shift: 12,
        window_size: 2 << 30,
        levels: 2,
    }
}

const REACH: u64 = 1 << 32;

/// One PHB (its model watching pins), one partition, one window.
struct Setup<'h> {
    rig: &'h Rig,
    model: &'h Phb3Model<'h>,
    hv: &'h Hypervisor<'h>,
    part: &'h Partition,
    liobn: u64,
}

/// Runs `test` on a fresh [`Setup`] with a window of `config`.
fn with_setup<R>(config: WindowConfig, test: impl FnOnce(&Setup<'_>) -> R) -> R {
    let rig = Rig::new(32 << 20, 32 << 20).unwrap();
    let model = rig.model(true);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let part = hv.add_partition(0, 16 << 20, rig.ram.base()).unwrap();
    let liobn = hv.create_window(0, config, part).unwrap();
    test(&Setup {
        rig: &rig,
        model: &model,
        hv: &hv,
        part,
        liobn,
    })
}

impl Setup<'_> {
    fn put(&self, ioba: u64, tce: u64) -> i64 {
        self.hv
            .dispatch(self.part, H_PUT_TCE, &args(&[self.liobn, ioba, tce]))
            .status
    }

    fn host(&self, gra: u64) -> u64 {
        self.part.host_base() + gra
    }

    /// Where a device write at `bus` lands now, if anywhere.
    fn reach(&self, bus: u64) -> Option<u64> {
        self.model.translate(RID, bus, true).ok()
    }

    /// The first cached or walkable translation among `buses` to a frame with no pin, and
    /// anything the pin watch saw.
    fn stale(&self, buses: &[u64]) -> Option<String> {
        self.model.watch_now();
        for &bus in buses {
            if let Some(target) = self.reach(bus) {
                if self.rig.pages.pins(target) == 0 {
                    return Some(format!("bus {bus:#x} reaches released host {target:#x}"));
                }
            }
        }
        self.model
            .first_violation()
            .map(|v| format!("pin watch: {v:?}"))
    }
}

fn bus_of(config: WindowConfig, ioba_offset: u64) -> u64 {
    (if config.window == 1 { 1u64 << 59 } else { 0 }) + ioba_offset
}

/// Maps a page at IOBA, lets the device use it through its real address and two aliases,
/// clears it with H_PUT_TCE(…, 0) and returns a stale reach, if any.
fn clear_after_alias_dma(fault: KillFault, window: u8) -> Option<String> {
    let config = default_like(window);
    with_setup(config, |s| {
        let bus = bus_of(config, IOBA);
        assert_eq!(s.put(bus, PAGE_GRA | 3), H_SUCCESS);
        // The alias one reach up, and the last one below the window-select bit.
        let aliases = [bus, bus + REACH, bus + ((1u64 << 59) - REACH)];
        for &alias in &aliases {
            assert_eq!(s.reach(alias), Some(s.host(PAGE_GRA)), "alias {alias:#x}");
        }
        s.hv.phb(0).unwrap().inject_kill_fault(fault);
        assert_eq!(s.put(bus, 0), H_SUCCESS);
        assert_eq!(
            s.rig.pages.pins(s.host(PAGE_GRA)),
            0,
            "the page was released"
        );
        s.stale(&aliases)
    })
}

#[test]
fn an_alias_of_a_cleared_entry_reaches_nothing() {
    for window in [0, 1] {
        assert_eq!(clear_after_alias_dma(KillFault::None, window), None);
    }
}

#[test]
fn the_alias_check_catches_kill_one_despite_aliases() {
    let found = clear_after_alias_dma(KillFault::KillOneDespiteAliases, 0);
    eprintln!("kill-one despite aliases: {found:?}");
    assert!(found.is_some_and(|f| f.contains("released")));
}

/// Kill-one and kill-PE stores of one H_PUT_TCE that clears a mapped page.
fn kills_of_one_clear(config: WindowConfig) -> (u64, u64) {
    with_setup(config, |s| {
        let bus = bus_of(config, IOBA);
        assert_eq!(s.put(bus, PAGE_GRA | 3), H_SUCCESS);
        assert!(s.reach(bus).is_some());
        let before = s.hv.phb(0).unwrap().kill_counts();
        assert_eq!(s.put(bus, 0), H_SUCCESS);
        let after = s.hv.phb(0).unwrap().kill_counts();
        assert_eq!(s.stale(&[bus]), None);
        (
            after.kill_one - before.kill_one,
            after.kill_pe - before.kill_pe,
        )
    })
}

#[test]
fn kill_one_stays_where_the_table_decodes_every_address_bit() {
    // Window 1 of 2^59 bytes, 4K pages, 5 levels of 1024 entries: 50 index bits, reach 2^62.
    // No other address selects TVE 1 and lands on the entry: one kill-one per changed entry.
    let exact = WindowConfig {
        pe: PE,
        window: 1,
        page_shift: 12,
        window_size: 1 << 59,
        levels: 5,
    };
    assert_eq!(kills_of_one_clear(exact), (1, 0));
    // The default window's geometry pays a kill-PE instead.
    assert_eq!(kills_of_one_clear(default_like(0)), (0, 1));
}

/// Maps, lets the device cache the entry, clears it: with the barrier missing, the kill may
/// overtake the table store and the old entry stays cached.
fn clear_after_cached_dma(fault: KillFault) -> (Option<String>, u64) {
    with_setup(default_like(0), |s| {
        assert_eq!(s.put(IOBA, PAGE_GRA | 3), H_SUCCESS);
        assert_eq!(s.reach(IOBA), Some(s.host(PAGE_GRA)));
        s.hv.phb(0).unwrap().inject_kill_fault(fault);
        assert_eq!(s.put(IOBA, 0), H_SUCCESS);
        (s.stale(&[IOBA]), s.model.stats().unordered_kills)
    })
}

#[test]
fn every_kill_follows_a_barrier() {
    let (stale, unordered) = clear_after_cached_dma(KillFault::None);
    assert_eq!((stale, unordered), (None, 0));
}

#[test]
fn the_barrier_check_catches_a_missing_barrier() {
    let (stale, unordered) = clear_after_cached_dma(KillFault::SkipBarrier);
    eprintln!("missing barrier: {stale:?}, {unordered} unordered kill(s)");
    assert_eq!(unordered, 1);
    assert!(stale.is_some_and(|f| f.contains("released")));
}

/// A TCE fetch for the entry is in flight (it read the old value) when the CPU clears it;
/// the fetch lands after the call has returned.
fn clear_with_a_fill_in_flight(fault: KillFault) -> Option<String> {
    with_setup(default_like(0), |s| {
        assert_eq!(s.put(IOBA, PAGE_GRA | 3), H_SUCCESS);
        let fetched = s.model.park_fill(RID, IOBA).unwrap();
        assert_eq!(fetched, s.host(PAGE_GRA) | 3);
        s.hv.phb(0).unwrap().inject_kill_fault(fault);
        assert_eq!(s.put(IOBA, 0), H_SUCCESS);
        assert_eq!(
            s.rig.pages.pins(s.host(PAGE_GRA)),
            0,
            "the page was released"
        );
        s.model.land_fills();
        s.stale(&[IOBA])
    })
}

#[test]
fn a_fill_in_flight_during_the_kill_does_not_survive_it() {
    assert_eq!(clear_with_a_fill_in_flight(KillFault::None), None);
}

#[test]
fn the_fill_check_catches_a_missing_completion_step() {
    let found = clear_with_a_fill_in_flight(KillFault::SkipCompletion);
    eprintln!("missing completion: {found:?}");
    assert!(found.is_some_and(|f| f.contains("released")));
}

#[test]
fn one_kill_batch_one_sync_per_changing_call() {
    with_setup(default_like(0), |s| {
        let before = s.hv.phb(0).unwrap().kill_counts();
        let model_before = s.model.stats();
        for i in 0..10u64 {
            assert_eq!(s.put(IOBA + i * PAGE, (PAGE_GRA + i * PAGE) | 3), H_SUCCESS);
        }
        // A call that changes nothing kills nothing.
        assert_eq!(s.put(IOBA + 100 * PAGE, 0), H_SUCCESS);
        let after = s.hv.phb(0).unwrap().kill_counts();
        let seen = s.model.stats();
        assert_eq!(after.batches - before.batches, 10);
        assert_eq!(after.syncs - before.syncs, 10);
        assert_eq!(seen.syncs - model_before.syncs, 10);
        assert_eq!(seen.barriers - model_before.barriers, 10);
        assert_eq!(seen.unordered_kills, 0);
        assert_eq!(after.failures, 0);
    });
}

fn put_on(hv: &Hypervisor<'_>, part: &Partition, liobn: u64, ioba: u64, tce: u64) -> i64 {
    hv.dispatch(part, H_PUT_TCE, &args(&[liobn, ioba, tce]))
        .status
}

/// Maps a page, lets the device cache it, breaks the PHB with `break_it`, and replaces the
/// page: checks what a failed kill must give (H_HARDWARE), keep (the old page, pinned) and
/// refuse afterwards (every call on that PHB, changing nothing), while a second PHB carries on.
fn replace_on_a_broken_phb(break_it: &dyn Fn(&Phb3Model<'_>)) {
    let rig = Rig::new(32 << 20, 32 << 20).unwrap();
    let model = rig.model(true);
    let other = rig.model(true);
    let hv = rig.hypervisor(&[&model as &dyn RegIo, &other as &dyn RegIo]);
    let part = hv.add_partition(0, 16 << 20, rig.ram.base()).unwrap();
    let liobn = hv.create_window(0, default_like(0), part).unwrap();
    let other_liobn = hv.create_window(1, default_like(0), part).unwrap();
    let old = part.host_base() + PAGE_GRA;
    let new_gra = PAGE_GRA + PAGE;
    assert_eq!(put_on(&hv, part, liobn, IOBA, PAGE_GRA | 3), H_SUCCESS);
    assert_eq!(model.translate(RID, IOBA, true), Ok(old));

    break_it(&model);
    assert_eq!(put_on(&hv, part, liobn, IOBA, new_gra | 3), H_HARDWARE);
    // The entry was exchanged before the kill failed; the old page is kept, not released,
    // and the device, which may still hold it cached, reaches only pinned memory.
    assert_eq!(hv.h_get_tce(part, liobn, IOBA), Ok(new_gra | 3));
    assert_eq!(rig.pages.pins(old), 1);
    assert!(
        !rig.pages.is_dirty(old),
        "a kept page is not released, so not dirtied"
    );
    let service = hv.phb(0).unwrap();
    assert!(service.failure().is_some());
    assert_eq!(service.quarantine().pages, 1);
    assert_eq!(service.kill_counts().failures, 1);
    model.watch_now();
    assert_eq!(model.stats().violations, 0, "{:?}", model.first_violation());
    let report = rig.audit(&hv);
    assert!(report.is_clean(), "{:?}", report.violations);
    assert_eq!(
        (report.failed_phbs, report.quarantined_pages),
        (1, 1),
        "the audit reports the quarantine as such"
    );

    // Later calls on that PHB fail at once and change nothing, not even a register.
    let s = Setup {
        rig: &rig,
        model: &model,
        hv: &hv,
        part,
        liobn,
    };
    let before = state(&s);
    let seen_before = model.stats();
    for (op, words) in [
        (H_PUT_TCE, vec![liobn, IOBA + PAGE, new_gra | 3]),
        (H_PUT_TCE, vec![liobn, IOBA, 0]),
        (H_STUFF_TCE, vec![liobn, IOBA, 0, 8]),
    ] {
        assert_eq!(hv.dispatch(part, op, &args(&words)).status, H_HARDWARE);
    }
    assert!(hv.remove_window(liobn).is_err());
    assert_eq!(state(&s), before);
    assert_eq!(model.stats().barriers, seen_before.barriers);
    // The other PHB carries on.
    assert_eq!(
        put_on(&hv, part, other_liobn, IOBA, PAGE_GRA | 3),
        H_SUCCESS
    );
    assert_eq!(put_on(&hv, part, other_liobn, IOBA, 0), H_SUCCESS);
    assert!(hv.phb(1).unwrap().failure().is_none());
    let report = rig.audit(&hv);
    assert!(report.is_clean(), "{:?}", report.violations);
}

/// Everything a refused call must leave as it was.
fn state(s: &Setup<'_>) -> (Vec<u64>, u64, tcefw::iommu::KillCounts, u64) {
    let entries = (0..16)
        .map(|i| {
            s.hv.h_get_tce(s.part, s.liobn, IOBA + i * PAGE)
                .unwrap_or(u64::MAX)
        })
        .collect();
    (
        entries,
        s.rig.pages.total_pins(),
        s.hv.phb(0).unwrap().kill_counts(),
        s.rig.frames.stats().used_bytes,
    )
}

#[test]
fn a_fenced_phb_answers_h_hardware_and_keeps_the_old_page() {
    replace_on_a_broken_phb(&|model| model.set_fenced(true));
}

#[test]
fn a_sync_that_never_completes_answers_h_hardware_and_keeps_the_old_page() {
    replace_on_a_broken_phb(&|model| model.set_sync_stuck(true));
}

#[test]
fn the_wait_for_a_stuck_sync_is_bounded_by_time() {
    with_setup(default_like(0), |s| {
        s.model.set_sync_stuck(true);
        let t0 = s.model.now_ns();
        assert_eq!(s.put(IOBA, PAGE_GRA | 3), H_HARDWARE);
        let waited = s.model.now_ns() - t0;
        assert!(
            (KILL_SYNC_TIMEOUT_NS..KILL_SYNC_TIMEOUT_NS + 100_000).contains(&waited),
            "waited {waited} ns of PHB time"
        );
        assert_eq!(
            s.hv.phb(0).unwrap().failure(),
            Some(tcefw::iommu::Error::KillTimeout)
        );
    });
}

#[test]
fn a_removal_whose_kill_fails_keeps_the_window_and_its_pins() {
    with_setup(default_like(0), |s| {
        for i in 0..4 {
            assert_eq!(s.put(IOBA + i * PAGE, (PAGE_GRA + i * PAGE) | 3), H_SUCCESS);
        }
        let tables = s.rig.table_bytes_in_use();
        s.model.set_fenced(true);
        assert!(s.hv.remove_window(s.liobn).is_err());
        let service = s.hv.phb(0).unwrap();
        assert_eq!(service.failure(), Some(tcefw::iommu::Error::Fenced));
        assert_eq!(service.quarantine().windows, 1);
        assert_eq!(s.rig.pages.total_pins(), 4, "every page stays pinned");
        assert_eq!(
            s.rig.table_bytes_in_use(),
            tables,
            "the table stays allocated"
        );
        let report = s.rig.audit(s.hv);
        assert!(report.is_clean(), "{:?}", report.violations);
        assert_eq!(report.quarantined_windows, 1);
        // No window can be created there any more, and nothing is allocated trying.
        assert!(s.hv.create_window(0, default_like(1), s.part).is_err());
        assert_eq!(s.rig.table_bytes_in_use(), tables);
    });
}

#[test]
fn an_installation_whose_kill_fails_keeps_the_table() {
    let rig = Rig::new(32 << 20, 32 << 20).unwrap();
    let model = rig.model(true);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let part = hv.add_partition(0, 16 << 20, rig.ram.base()).unwrap();
    model.set_sync_stuck(true);
    assert!(hv.create_window(0, default_like(0), part).is_err());
    let service = hv.phb(0).unwrap();
    let tvt = tcefw::iommu::tve::tvt_index(PE, 0);
    assert_eq!(service.quarantine().windows, 1);
    assert!(service.window(tvt).is_none());
    assert_eq!(model.tve(tvt), 0, "TVE off");
    let report = rig.audit(&hv);
    assert!(report.is_clean(), "{:?}", report.violations);
    assert!(
        rig.table_bytes_in_use() > 0,
        "the table the PHB may walk is kept"
    );
}

#[test]
fn window_hypercalls_on_a_failed_phb_answer_h_hardware() {
    let rig = Rig::new(32 << 20, 32 << 20).unwrap();
    let model = rig.model(true);
    let hv = rig.hypervisor(&[&model as &dyn RegIo]);
    let part = hv.add_partition(0, 16 << 20, rig.ram.base()).unwrap();
    let handle = hv.grant_pe(part, 0, PE).unwrap();
    let default = liobn(0, PE, 0);
    assert_eq!(put_on(&hv, part, default, IOBA, PAGE_GRA | 3), H_SUCCESS);
    model.set_fenced(true);
    assert_eq!(put_on(&hv, part, default, IOBA, 0), H_HARDWARE);
    let pins = rig.pages.total_pins();
    let frames = rig.frames.stats().used_bytes;
    for (op, words) in [
        (H_TCEFW_CREATE_PE_DMA_WINDOW, vec![handle, 12, 32, 2]),
        (H_TCEFW_REMOVE_PE_DMA_WINDOW, vec![default]),
        (H_TCEFW_RESET_PE_DMA_WINDOWS, vec![handle]),
    ] {
        assert_eq!(
            hv.dispatch(part, op, &args(&words)).status,
            H_HARDWARE,
            "{op:#x}"
        );
    }
    assert_eq!(rig.pages.total_pins(), pins);
    assert_eq!(rig.frames.stats().used_bytes, frames);
    let report = rig.audit(&hv);
    assert!(report.is_clean(), "{:?}", report.violations);
}
