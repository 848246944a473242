//! Host tests of the PAPR platform layer (`tcefw::papr`): RTAS calls through H_RTAS with the
//! argument buffer in guest memory (each service, and hostile buffers that must be refused
//! with nothing written outside the return cells), and the hypercall dispatcher (routing,
//! output registers, effects, the unimplemented-hcall tracker, the hypertas sets).

#[path = "support/hv_fakes.rs"]
mod hv_fakes;

use hv_fakes::*;
use std::cell::RefCell;
use std::rc::Rc;
use tcefw::hv::hpt::*;
use tcefw::hv::{GuestMemory, GuestRealMap, Lpid};
use tcefw::papr::hcall::{opcode::*, HCALL_ARGS, HYPERTAS_FUNCTIONS};
use tcefw::papr::rtas::{token_of, CpuRunState, RtasCall, RTAS_TOKENS};
use tcefw::papr::set_mode::{SetModeEffect, RESOURCE_LE};
use tcefw::papr::xics::{XICS_IPI, XICS_IRQ_BASE};
use tcefw::papr::*;

const SIZE: u64 = 32 << 20;
const VTY: u32 = 0x3000_0000;
const BUF: u64 = 0x10_0000;

struct Guest {
    papr: Papr,
    hpt: Hpt<FakeHptMemory>,
    tlb: RecordingTlb,
    mem: CountingMemory,
    platform: FakePlatform,
}

fn guest() -> Guest {
    let log: Log = Rc::new(RefCell::new(Vec::new()));
    let hpt_mem = FakeHptMemory::new(0x8000_0000, 18, log.clone());
    let mut tlb = RecordingTlb::new(log);
    let map = GuestRealMap::new(0x1000_0000, SIZE).unwrap();
    let hpt = Hpt::new(hpt_mem, 18, Lpid::new(3).unwrap(), map, &mut tlb).unwrap();
    Guest {
        papr: Papr::new(2, 8, VTY),
        hpt,
        tlb,
        mem: CountingMemory::new(SIZE as usize),
        platform: FakePlatform::new(),
    }
}

impl Guest {
    fn hcall(&mut self, opcode: u64, args: &[u64]) -> PaprReturn {
        self.hcall_from(0, opcode, args)
    }

    fn hcall_from(&mut self, server: u32, opcode: u64, args: &[u64]) -> PaprReturn {
        let mut regs = [0u64; HCALL_ARGS];
        regs[..args.len()].copy_from_slice(args);
        let Route::Papr(request) = route(opcode, &regs) else {
            panic!("{opcode:#x} routed to the TCE service");
        };
        self.papr.handle(
            request,
            Caller {
                hpt: &mut self.hpt,
                tlb: &mut self.tlb,
                guest: &mut self.mem,
                platform: &mut self.platform,
                server,
            },
        )
    }

    /// Calls RTAS `call` with `args` and `nret` return cells at [`BUF`]; returns the hcall
    /// status and the return cells.
    fn rtas(&mut self, call: RtasCall, args: &[u32], nret: u32) -> (HStatus, Vec<u32>) {
        write_rtas_buffer(&mut self.mem, BUF, token_of(call).token, args, nret);
        let ret = self.hcall(H_RTAS, &[BUF]);
        (
            ret.status,
            read_rets(&self.mem, BUF, args.len() as u32, nret),
        )
    }
}

// ---- RTAS services -------------------------------------------------------------------------

#[test]
fn time_of_day_reads_the_platform_clock_and_set_time_moves_it() {
    let mut g = guest();
    let (status, rets) = g.rtas(RtasCall::GetTimeOfDay, &[], 8);
    assert_eq!(status, HStatus::Success);
    assert_eq!(rets, [0, 2026, 12, 2, 7, 12, 52, 250]);
    let (_, rets) = g.rtas(RtasCall::SetTimeOfDay, &[2030, 1, 31, 23, 59, 58, 0], 1);
    assert_eq!(rets, [0]);
    g.platform.now.seconds += 3;
    let (_, rets) = g.rtas(RtasCall::GetTimeOfDay, &[], 8);
    assert_eq!(rets, [0, 2030, 2, 1, 0, 0, 1, 0]);
    // A date that does not exist is refused and changes nothing.
    let (_, rets) = g.rtas(RtasCall::SetTimeOfDay, &[2030, 2, 30, 0, 0, 0, 0], 1);
    assert_eq!(rets, [-3i32 as u32]);
    let (_, rets) = g.rtas(
        RtasCall::SetTimeOfDay,
        &[2030, 1, 1, 0, 0, 0, 1_000_000_000],
        1,
    );
    assert_eq!(rets, [-3i32 as u32]);
    let (_, rets) = g.rtas(RtasCall::GetTimeOfDay, &[], 8);
    assert_eq!(rets[1..4], [2030, 2, 1]);
}

#[test]
fn power_reboot_console_and_event_scan() {
    let mut g = guest();
    assert_eq!(
        g.rtas(RtasCall::DisplayCharacter, &[u32::from(b'X')], 1).1,
        [0]
    );
    assert_eq!(g.platform.displayed, b"X");
    assert_eq!(
        g.rtas(RtasCall::EventScan, &[0, 0, BUF as u32 + 0x100, 0x100], 1)
            .1,
        [1]
    );
    assert_eq!(g.rtas(RtasCall::SystemReboot, &[], 1).1, [0]);
    assert!(g.platform.rebooted);
    // Linux: rtas_call(power-off, 2, 1, NULL, -1, -1).
    assert!(!g.platform.powered_off);
    assert_eq!(g.rtas(RtasCall::PowerOff, &[u32::MAX, u32::MAX], 1).1, [0]);
    assert!(g.platform.powered_off);
    assert_eq!(g.papr.rtas.count(RtasCall::PowerOff), 1);
    assert!(g
        .papr
        .rtas
        .calls()
        .any(|(name, n)| name == "power-off" && n == 1));
}

#[test]
fn cpu_start_stop_and_query() {
    let mut g = guest();
    assert_eq!(g.rtas(RtasCall::QueryCpuStoppedState, &[0], 2).1, [0, 2]);
    assert_eq!(g.rtas(RtasCall::QueryCpuStoppedState, &[1], 2).1, [0, 0]);
    assert_eq!(
        g.rtas(RtasCall::QueryCpuStoppedState, &[9], 2).1,
        [-3i32 as u32, 0xdead_beef]
    );
    // Running: hardware error (QEMU); outside memory or misaligned: parameter error.
    assert_eq!(
        g.rtas(RtasCall::StartCpu, &[0, 0x100, 0], 1).1,
        [-1i32 as u32]
    );
    assert_eq!(
        g.rtas(RtasCall::StartCpu, &[1, SIZE as u32, 0], 1).1,
        [-3i32 as u32]
    );
    assert_eq!(
        g.rtas(RtasCall::StartCpu, &[1, 0x102, 0], 1).1,
        [-3i32 as u32]
    );
    assert_eq!(
        g.rtas(RtasCall::StartCpu, &[7, 0x100, 0], 1).1,
        [-3i32 as u32]
    );
    assert!(g.platform.started.is_empty());
    assert_eq!(g.rtas(RtasCall::StartCpu, &[1, 0x1000, 0xabc], 1).1, [0]);
    assert_eq!(g.platform.started, [(1, 0x1000, 0xabc)]);
    assert_eq!(g.platform.cpu_state_of(1), Some(CpuRunState::Running));
    // Linux's rtas_stop_self: nargs 0, nret 0.
    let (status, rets) = g.rtas(RtasCall::StopSelf, &[], 0);
    assert_eq!((status, rets.len()), (HStatus::Success, 0));
    assert_eq!(g.platform.stopped_self, 1);
}

trait CpuStateOf {
    fn cpu_state_of(&self, server: u32) -> Option<CpuRunState>;
}

impl CpuStateOf for FakePlatform {
    fn cpu_state_of(&self, server: u32) -> Option<CpuRunState> {
        self.cpus.iter().find(|c| c.0 == server).map(|c| c.1)
    }
}

#[test]
fn xive_calls_reach_the_interrupt_controller() {
    let mut g = guest();
    let nr = XICS_IRQ_BASE + 3;
    assert_eq!(g.rtas(RtasCall::SetXive, &[nr, 1, 5], 1).1, [0]);
    assert_eq!(g.rtas(RtasCall::GetXive, &[nr], 3).1, [0, 1, 5]);
    assert_eq!(g.rtas(RtasCall::IntOff, &[nr], 1).1, [0]);
    assert_eq!(g.rtas(RtasCall::GetXive, &[nr], 3).1, [0, 1, 0xff]);
    assert_eq!(g.rtas(RtasCall::IntOn, &[nr], 1).1, [0]);
    assert_eq!(g.rtas(RtasCall::GetXive, &[nr], 3).1, [0, 1, 5]);
    for bad in [[nr + 8, 0, 5], [nr, 2, 5], [nr, 0, 0x100], [0, 0, 5]] {
        assert_eq!(
            g.rtas(RtasCall::SetXive, &bad, 1).1,
            [-3i32 as u32],
            "{bad:x?}"
        );
    }
    assert_eq!(
        g.rtas(RtasCall::GetXive, &[nr], 3).1,
        [0, 1, 5],
        "refusals changed nothing"
    );
}

#[test]
fn system_parameters_and_pci_config_are_not_there() {
    let mut g = guest();
    assert_eq!(
        g.rtas(
            RtasCall::GetSystemParameter,
            &[44, BUF as u32 + 0x100, 0x400],
            1
        )
        .1,
        [-3i32 as u32]
    );
    let hw = -1i32 as u32;
    assert_eq!(
        g.rtas(RtasCall::ReadPciConfig, &[0x100, 4], 2).1,
        [hw, 0xdead_beef]
    );
    assert_eq!(g.rtas(RtasCall::WritePciConfig, &[0x100, 4, 7], 1).1, [hw]);
    assert_eq!(
        g.rtas(RtasCall::IbmReadPciConfig, &[0x100, 0, 0, 2], 2).1,
        [hw, 0xdead_beef]
    );
    assert_eq!(
        g.rtas(RtasCall::IbmWritePciConfig, &[0x100, 0, 0, 1, 7], 1)
            .1,
        [hw]
    );
    assert_eq!(
        g.rtas(RtasCall::IbmReadPciConfig, &[0x100, 0, 2], 2).1,
        [hw, 0xdead_beef]
    );
}

#[test]
fn a_wrong_shape_gets_minus_three_in_the_first_cell_only() {
    let mut g = guest();
    // get-time-of-day with 2 return cells: -3, and the second cell untouched.
    assert_eq!(
        g.rtas(RtasCall::GetTimeOfDay, &[], 2).1,
        [-3i32 as u32, 0xdead_beef]
    );
    assert_eq!(g.rtas(RtasCall::PowerOff, &[0], 1).1, [-3i32 as u32]);
    assert!(!g.platform.powered_off);
    assert_eq!(g.rtas(RtasCall::DisplayCharacter, &[], 1).1, [-3i32 as u32]);
    assert!(g.platform.displayed.is_empty());
    // No return cell: nothing written at all, the call still refused.
    let before = g.mem.bytes().to_vec();
    write_rtas_buffer(&mut g.mem, BUF, token_of(RtasCall::PowerOff).token, &[], 0);
    let written = g.mem.bytes().to_vec();
    assert_eq!(g.hcall(H_RTAS, &[BUF]).status, HStatus::Success);
    assert_eq!(g.mem.bytes(), &written[..]);
    assert!(!g.platform.powered_off);
    drop(before);
}

#[test]
fn an_unknown_token_is_minus_three_and_h_parameter() {
    let mut g = guest();
    write_rtas_buffer(&mut g.mem, BUF, 0xa, &[u32::from(b'!')], 1);
    assert_eq!(g.hcall(H_RTAS, &[BUF]).status, HStatus::Parameter);
    assert_eq!(read_rets(&g.mem, BUF, 1, 1), [-3i32 as u32]);
    assert!(g.platform.displayed.is_empty());
    assert_eq!(g.papr.rtas.unknown_tokens(), 1);
}

#[test]
fn hostile_buffers_are_refused_and_nothing_is_written() {
    let mut g = guest();
    let token = token_of(RtasCall::GetTimeOfDay).token;
    // Buffers whose header or cells leave the partition, or that claim more than 16 cells.
    let cases: Vec<(&str, u64, u32, u32)> = vec![
        ("header straddles the end", SIZE - 8, 0, 8),
        ("header at the end", SIZE, 0, 8),
        ("header at u64::MAX", u64::MAX - 3, 0, 8),
        ("a host-looking address", 0x1000_0000 + BUF, 0, 8),
        ("cells past the end", SIZE - 12 - 16, 0, 8),
        ("17 cells", BUF, 9, 8),
        ("nret 2^32-1", BUF, 0, u32::MAX),
        ("nargs 2^32-1", BUF, u32::MAX, 1),
    ];
    for (what, at, nargs, nret) in cases {
        let header: Vec<u8> = [token, nargs, nret]
            .iter()
            .flat_map(|c| c.to_be_bytes())
            .collect();
        // Write what of the header fits.
        for (i, b) in header.iter().enumerate() {
            if let Some(addr) = at.checked_add(i as u64) {
                let _ = g.mem.write(addr, &[*b]);
            }
        }
        let snapshot = g.mem.bytes().to_vec();
        let writes = g.mem.writes;
        let effects = g.platform.effects();
        let ret = g.hcall(H_RTAS, &[at]);
        assert_eq!(ret.status, HStatus::Parameter, "{what}");
        assert_eq!(g.mem.writes, writes, "{what}: guest memory written");
        assert!(g.mem.bytes() == &snapshot[..], "{what}");
        assert_eq!(g.platform.effects(), effects, "{what}");
    }
    assert_eq!(g.papr.rtas.refused_buffers(), 8);
    // The largest valid buffer ends exactly at the end of memory.
    let at = SIZE - 12 - 4 * 8;
    write_rtas_buffer(&mut g.mem, at, token, &[], 8);
    assert_eq!(g.hcall(H_RTAS, &[at]).status, HStatus::Success);
    assert_eq!(read_rets(&g.mem, at, 0, 8)[..2], [0, 2026]);
}

#[test]
fn every_call_writes_only_its_return_cells() {
    let mut g = guest();
    let mut rng = Rng(0x47a5);
    for round in 0..3000 {
        let token = if rng.chance(90) {
            RTAS_TOKENS[rng.below(RTAS_TOKENS.len() as u64) as usize].token
        } else {
            rng.next_u64() as u32
        };
        let nargs = rng.below(9) as u32;
        let nret = rng.below(17 - u64::from(nargs).min(16)) as u32;
        let args: Vec<u32> = (0..nargs)
            .map(|_| match rng.below(4) {
                0 => rng.below(8) as u32,
                1 => XICS_IRQ_BASE + rng.below(10) as u32,
                2 => rng.next_u64() as u32,
                _ => 2000 + rng.below(40) as u32,
            })
            .collect();
        let at = BUF + 4 * rng.below(64);
        write_rtas_buffer(&mut g.mem, at, token, &args, nret);
        g.mem.ranges.clear();
        g.hcall(H_RTAS, &[at]);
        let rets_start = at + 12 + 4 * u64::from(nargs);
        let rets_end = rets_start + 4 * u64::from(nret);
        for &(start, len) in &g.mem.ranges {
            assert!(
                start >= rets_start && start + len <= rets_end,
                "round {round}: token {token:#x} nargs {nargs} nret {nret} wrote {start:#x}+{len:#x} outside its return cells"
            );
        }
    }
}

// ---- The dispatcher -------------------------------------------------------------------------

#[test]
fn tce_calls_route_to_the_tce_service_and_everything_else_here() {
    let regs = [0u64; HCALL_ARGS];
    for opcode in [
        H_GET_TCE,
        H_PUT_TCE,
        H_STUFF_TCE,
        H_PUT_TCE_INDIRECT,
        0xf200,
        0xf204,
        0xf20c,
    ] {
        assert_eq!(route(opcode, &regs), Route::Tce { opcode });
    }
    assert_eq!(route(H_XIRR, &regs), Route::Papr(PaprRequest::Xirr));
    assert_eq!(
        route(0xf210, &regs),
        Route::Papr(PaprRequest::Unimplemented { opcode: 0xf210 })
    );
    assert_eq!(
        route(u64::MAX, &regs),
        Route::Papr(PaprRequest::Unimplemented { opcode: u64::MAX })
    );
}

#[test]
fn every_advertised_hcall_is_served() {
    for (set, opcodes) in HYPERTAS_FUNCTIONS {
        for &opcode in *opcodes {
            let mut g = guest();
            let ret = g.hcall(opcode, &[]);
            assert_ne!(ret.status, HStatus::Function, "{set}: {opcode:#x}");
            assert_eq!(ret.first_unimplemented, None);
            assert_eq!(g.papr.served.count(opcode), 1);
            assert_eq!(g.papr.unimplemented.total(), 0);
        }
    }
}

#[test]
fn unimplemented_hcalls_get_h_function_and_are_reported_once_each() {
    let mut g = guest();
    let calls = [
        H_REGISTER_VPA,
        H_SET_DABR,
        H_REGISTER_VPA,
        0x1234,
        H_REGISTER_VPA,
    ];
    let mut reported = vec![];
    for opcode in calls {
        let ret = g.hcall(opcode, &[1, 2, 3]);
        assert_eq!(ret.status, HStatus::Function);
        assert_eq!(ret.out, [0; HCALL_ARGS]);
        reported.extend(ret.first_unimplemented);
    }
    assert_eq!(reported, [H_REGISTER_VPA, H_SET_DABR, 0x1234]);
    assert_eq!(g.papr.unimplemented.count(H_REGISTER_VPA), 3);
    assert_eq!(g.papr.unimplemented.total(), 5);
    assert_eq!(g.papr.served.total(), 0);
}

#[test]
fn hpt_calls_through_the_registers() {
    let mut g = guest();
    let v = 0x0000_0000_0012_3001u64; // 256M segment, AVPN, valid
    let r = 0x0000_0000_0004_5012u64; // guest-real 0x45000, M, PP 2
    let ret = g.hcall(H_ENTER, &[0, 0x80, v, r]);
    assert_eq!(ret.status, HStatus::Success);
    let slot = ret.out[0];
    assert_eq!(slot, 0x80);
    let ret = g.hcall(H_READ, &[H_READ_4, slot]);
    assert_eq!(ret.out[..2], [v, r]);
    assert_eq!(ret.out[2..8], [0; 6]);
    let ret = g.hcall(H_PROTECT, &[H_AVPN | 3, slot, v & !0x7f]);
    assert_eq!(ret.status, HStatus::Success);
    let ret = g.hcall(H_REMOVE, &[H_AVPN, slot, v & !0x7f]);
    assert_eq!(ret.status, HStatus::Success);
    assert_eq!(ret.out[..2], [v, (r & !3) | 3]);
    assert_eq!(g.hcall(H_REMOVE, &[0, slot, 0]).status, HStatus::NotFound);
    assert_eq!(
        g.hcall(H_ENTER, &[0, 1 << 40, v, r]).status,
        HStatus::Parameter
    );
    assert_eq!(
        g.hcall(H_ENTER, &[0, 0, v, r | 0x20]).status,
        HStatus::Parameter
    );
    // A failing H_BULK_REMOVE still returns its responses.
    let ret = g.hcall(H_BULK_REMOVE, &[bulk_request(3, 0), 0, BULK_END]);
    assert_eq!(ret.status, HStatus::Parameter);
    assert_eq!(ret.out[0] >> 60, 0b1010);
    assert_eq!(ret.out[2], BULK_END);
}

#[test]
fn the_vty_prints_and_reads_through_packed_registers() {
    let mut g = guest();
    let high = u64::from_be_bytes(*b"GUEST sa");
    let low = u64::from_be_bytes(*b"ys hi\n\0\0");
    assert_eq!(
        g.hcall(H_PUT_TERM_CHAR, &[u64::from(VTY), 14, high, low])
            .status,
        HStatus::Success
    );
    assert_eq!(g.platform.console, b"GUEST says hi\n");
    for (termno, len) in [(0u64, 4u64), (u64::from(VTY) + 1, 4), (u64::from(VTY), 17)] {
        assert_eq!(
            g.hcall(H_PUT_TERM_CHAR, &[termno, len, high, low]).status,
            HStatus::Parameter
        );
    }
    assert_eq!(
        g.platform.console, b"GUEST says hi\n",
        "refused calls print nothing"
    );
    g.platform.input = b"ls\n".to_vec();
    let ret = g.hcall(H_GET_TERM_CHAR, &[u64::from(VTY)]);
    assert_eq!(ret.out[..3], [3, u64::from_be_bytes(*b"ls\n\0\0\0\0\0"), 0]);
    let ret = g.hcall(H_GET_TERM_CHAR, &[u64::from(VTY)]);
    assert_eq!((ret.status, ret.out[0]), (HStatus::Success, 0));
    assert_eq!(g.hcall(H_GET_TERM_CHAR, &[0]).status, HStatus::Parameter);
}

#[test]
fn set_mode_and_cede_return_their_effects() {
    let mut g = guest();
    let ret = g.hcall(H_SET_MODE, &[1, RESOURCE_LE, 0, 0]);
    assert_eq!(ret.status, HStatus::Success);
    assert_eq!(
        ret.effect,
        VcpuEffect::SetLpcr(SetModeEffect::InterruptsLittleEndian(true))
    );
    let ret = g.hcall(H_SET_MODE, &[3, 3, 0, 0]);
    assert_eq!((ret.status, ret.effect), (HStatus::P2, VcpuEffect::None));
    let ret = g.hcall(H_CEDE, &[]);
    assert_eq!(
        (ret.status, ret.effect),
        (HStatus::Success, VcpuEffect::Cede)
    );
}

#[test]
fn interrupt_hcalls_use_the_callers_server() {
    let mut g = guest();
    assert_eq!(g.hcall_from(1, H_CPPR, &[0xff]).status, HStatus::Success);
    // vCPU 0 sends an IPI to server 1.
    assert_eq!(g.hcall_from(0, H_IPI, &[1, 4]).status, HStatus::Success);
    assert!(g.papr.xics.output(1));
    assert!(!g.papr.xics.output(0));
    let ret = g.hcall_from(1, H_XIRR_X, &[]);
    assert_eq!(
        ret.out[..2],
        [0xff00_0000 | u64::from(XICS_IPI), 0x1234_5678]
    );
    let ret = g.hcall_from(1, H_IPOLL, &[]);
    assert_eq!(ret.out[..2], [0x0400_0000, 4]);
    assert_eq!(g.hcall_from(1, H_IPI, &[1, 0xff]).status, HStatus::Success);
    assert_eq!(
        g.hcall_from(1, H_EOI, &[0xff00_0000 | u64::from(XICS_IPI)])
            .status,
        HStatus::Success
    );
    assert_eq!(g.hcall_from(1, H_XIRR, &[]).out[0], 0xff00_0000);
    assert_eq!(g.hcall_from(0, H_IPI, &[2, 4]).status, HStatus::Parameter);
    assert_eq!(g.hcall_from(0, H_CPPR, &[0x100]).status, HStatus::Parameter);
}
