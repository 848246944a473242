//! In-image benchmarks (build feature `bench`, `./qemu-run.sh --bench`): guest instructions,
//! kill stores and timebase time per TCE hypercall through the real `sc 1` path, measured on
//! the machine the firmware runs on. Figures, not assertions: each line is
//! `BENCH <name>: <value> <unit>`.
//!
//! Instruction counts come from PMC5 (instructions completed), which QEMU's TCG counts
//! exactly, so they are deterministic without `-icount`; timebase figures under TCG are
//! host-dependent and only indicative. Resources: POWER ISA 2.07 Book III 9.4 (PMC5);
//! QEMU target/ppc/power8-pmu.c.

use super::support::find_device;
use super::support::hcall;
use crate::arch::ppc64::cpu;
use crate::hcall::codes::{H_PUT_TCE, H_PUT_TCE_INDIRECT, H_STUFF_TCE};
use crate::iommu::service::WindowConfig;
use crate::pci::edu::{EDU_DEVICE, EDU_VENDOR};
use crate::startup::hv;
use crate::startup::Platform;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

const PAGE: u64 = 4096;
const CALLS: u64 = 512;
const PARTITION_BYTES: u64 = 32 << 20;

/// One measurement: instructions, timebase ticks and kill stores over `calls` calls.
struct Sample {
    instructions: u64,
    ticks: u64,
    kills: u64,
}

impl Sample {
    fn add(&mut self, other: &Sample) {
        self.instructions += other.instructions;
        self.ticks += other.ticks;
        self.kills += other.kills;
    }
}

fn measure(kill_stores: &dyn Fn() -> u64, body: &mut dyn FnMut()) -> Sample {
    let kills = kill_stores();
    let ticks = cpu::timebase();
    let instructions = cpu::instructions_completed();
    body();
    let instructions = cpu::instructions_completed().wrapping_sub(instructions);
    let ticks = cpu::timebase().wrapping_sub(ticks);
    Sample {
        instructions: u64::from(instructions),
        ticks,
        kills: kill_stores() - kills,
    }
}

fn report(name: &str, sample: &Sample, calls: u64, pages: u64) {
    let ns = sample.ticks as u128 * 1_000_000_000 / crate::console::timebase_hz().max(1) as u128;
    crate::println!(
        "BENCH {name}: {} guest instructions/call, {} guest instructions/page, {:.2} kill stores/call, {} ns/call (TCG, indicative)",
        sample.instructions / calls,
        sample.instructions / (calls * pages),
        sample.kills as f64 / calls as f64,
        ns / u128::from(calls)
    );
}

fn call(opcode: u64, args: [u64; 4]) -> u64 {
    hcall(opcode, args)[0]
}

/// Runs every benchmark and prints its figures. Returns false if one could not run.
pub fn run_all(platform: &Platform) -> bool {
    match run(platform) {
        Ok(()) => true,
        Err(why) => {
            crate::println!("BENCH failed: {why}");
            false
        }
    }
}

fn run(platform: &Platform) -> Result<(), String> {
    let hv = hv::hypervisor().ok_or("no hypervisor")?;
    let (host, edu) = find_device(EDU_VENDOR, EDU_DEVICE).ok_or("no edu device")?;
    let pe = edu.pe.ok_or("edu has no PE")?;
    let me = hv::add_partition(PARTITION_BYTES, platform.partition_pool.0)?;
    let config = WindowConfig {
        pe,
        window: 0,
        page_shift: 12,
        window_size: 1 << 30,
        levels: 1,
    };
    let liobn = hv
        .create_window(host.number, config, me)
        .map_err(|e| format!("create_window: {e:?}"))?;
    let service = hv.phb(host.number).ok_or("no TCE service")?;
    let kill_stores = || service.kill_counts().stores;
    cpu::start_instruction_counter();
    hv::enter_partition(me);
    crate::println!("BENCH setup: 4 KiB IOMMU pages, 1-level table, {CALLS} calls per figure");

    let mut failures = 0u64;
    let null = measure(&kill_stores, &mut || {
        for _ in 0..CALLS {
            failures += u64::from(call(0x7FF0, [0; 4]) as i64 != -2);
        }
    });
    report("sc1_round_trip_unknown_opcode", &null, CALLS, 1);

    let map = measure(&kill_stores, &mut || {
        for i in 0..CALLS {
            failures +=
                u64::from(call(H_PUT_TCE, [liobn, i * PAGE, ((1 << 20) + i * PAGE) | 3, 0]) != 0);
        }
    });
    report("h_put_tce_map_empty_entry", &map, CALLS, 1);

    let replace = measure(&kill_stores, &mut || {
        for i in 0..CALLS {
            failures +=
                u64::from(call(H_PUT_TCE, [liobn, i * PAGE, ((4 << 20) + i * PAGE) | 3, 0]) != 0);
        }
    });
    report("h_put_tce_replace_valid_entry", &replace, CALLS, 1);

    let clear = measure(&kill_stores, &mut || {
        for i in 0..CALLS {
            failures += u64::from(call(H_PUT_TCE, [liobn, i * PAGE, 0, 0]) != 0);
        }
    });
    report("h_put_tce_clear", &clear, CALLS, 1);

    // INDIRECT: two lists of 512 pages, alternated so that every call replaces 512 valid
    // entries (a call that changes nothing costs no kill and would flatter the figure).
    let lists = [8 << 20, (8 << 20) + PAGE];
    for (n, &list) in lists.iter().enumerate() {
        let mut entries = Vec::with_capacity(512 * 8);
        for i in 0..512u64 {
            let page = (1 << 20) + (n as u64 * 512 + i) * PAGE;
            entries.extend_from_slice(&(page | 3).to_be_bytes());
        }
        hv::guest_write(me, list, &entries)?;
    }
    let rounds = 8u64;
    let mut indirect = Sample {
        instructions: 0,
        ticks: 0,
        kills: 0,
    };
    let mut stuff = Sample {
        instructions: 0,
        ticks: 0,
        kills: 0,
    };
    for round in 0..rounds {
        let list = lists[(round % 2) as usize];
        let mapped = measure(&kill_stores, &mut || {
            failures += u64::from(call(H_PUT_TCE_INDIRECT, [liobn, 0, list, 512]) != 0);
        });
        indirect.add(&mapped);
    }
    for _ in 0..rounds {
        failures += u64::from(call(H_PUT_TCE_INDIRECT, [liobn, 0, lists[0], 512]) != 0);
        let cleared = measure(&kill_stores, &mut || {
            failures += u64::from(call(H_STUFF_TCE, [liobn, 0, 0, 512]) != 0);
        });
        stuff.add(&cleared);
    }
    report("h_put_tce_indirect_512_replace", &indirect, rounds, 512);
    report("h_stuff_tce_clear_512", &stuff, rounds, 512);

    hv::leave_partition();
    hv.remove_window(liobn)
        .map_err(|e| format!("remove_window: {e:?}"))?;
    if failures != 0 {
        return Err(format!(
            "{failures} hypercalls failed during the benchmarks"
        ));
    }
    crate::println!(
        "BENCH ratio: H_PUT_TCE {} vs H_PUT_TCE_INDIRECT {} guest instructions per mapped page",
        replace.instructions / CALLS,
        indirect.instructions / (rounds * 512)
    );
    Ok(())
}
