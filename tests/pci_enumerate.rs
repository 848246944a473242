//! Enumeration against a fake config space (routed by bridge bus numbers, like QEMU): a root
//! port, a bridge, an endpoint, and a two-function device with a 64-bit BAR. Checks bus
//! numbers, BAR addresses (aligned, non-overlapping, inside the window and inside the bridge
//! windows), bridge windows, command registers, PE assignment and the summary; then every
//! per-function error (BAR too big, malformed BARs, PE exhaustion, bus numbers, depth) and
//! the whole-enumeration errors.

#[path = "support/fakes/mod.rs"]
mod fakes;

use fakes::{sample_topology, BarSpec, FakeConfig, FnSpec};
use tcefw::hw::regio::Width;
use tcefw::pci::{
    enumerate, Bdf, ConfigError, ConfigSpace, EnumError, EnumOptions, FunctionKind, MemWindow,
    PeAssign, PeError, Problem, Topology,
};

const M32: MemWindow = MemWindow {
    base: 0x8000_0000,
    size: 0x8000_0000,
};

fn options() -> EnumOptions {
    EnumOptions {
        phb_index: 0,
        window: M32,
        first_pe: 0,
    }
}

fn bdf(bus: u8, device: u8, function: u8) -> Bdf {
    Bdf::new(bus, device, function).unwrap()
}

/// Every assigned memory BAR: naturally aligned, inside the window, inside every ancestor
/// bridge's window, and overlapping no other.
fn check_placement(topology: &Topology, config: &FakeConfig) {
    let mut placed: Vec<(u64, u64)> = Vec::new();
    for function in &topology.functions {
        for bar in &function.bars {
            let Some(address) = bar.address else { continue };
            assert_eq!(
                address % bar.size,
                0,
                "{} BAR{} aligned",
                function.bdf,
                bar.index
            );
            assert!(M32.contains(address, bar.size));
            // Every bridge whose bus range covers this function's bus must window it.
            for bridge in topology.functions.iter().filter(|f| f.is_bridge()) {
                let Some(buses) = bridge.buses else { continue };
                if (buses.secondary..=buses.subordinate).contains(&function.bdf.bus) {
                    let window = bridge
                        .window
                        .expect("bridge with devices behind has a window");
                    assert!(
                        window.contains(address, bar.size),
                        "{} inside {}",
                        function.bdf,
                        bridge.bdf
                    );
                }
            }
            placed.push((address, bar.size));
        }
    }
    placed.sort();
    for pair in placed.windows(2) {
        assert!(pair[0].0 + pair[0].1 <= pair[1].0, "no overlap: {pair:?}");
    }
    assert!(config.violations.is_empty(), "{:?}", config.violations);
}

#[test]
fn enumerates_the_sample_topology() {
    let (mut config, ids) = sample_topology();
    let topology = enumerate(&mut config, &options()).unwrap();
    assert!(topology.problems.is_empty(), "{:?}", topology.problems);

    let found: Vec<(Bdf, FunctionKind, u16, u16)> = topology
        .functions
        .iter()
        .map(|f| (f.bdf, f.kind, f.vendor, f.device))
        .collect();
    assert_eq!(
        found,
        vec![
            (bdf(0, 0, 0), FunctionKind::RootPort, 0x1014, 0x03DC),
            (bdf(1, 0, 0), FunctionKind::Bridge, 0x1B36, 0x0001),
            (bdf(1, 1, 0), FunctionKind::Endpoint, 0x1234, 0x11E8),
            (bdf(2, 0, 0), FunctionKind::Endpoint, 0x8086, 0x10D3),
            (bdf(2, 0, 1), FunctionKind::Endpoint, 0x8086, 0x10D4),
        ]
    );

    // Bus numbers, in config space and in the records.
    let root = config.function(ids.root_port);
    assert_eq!(
        (root.cfg8(0x18), root.cfg8(0x19), root.cfg8(0x1A)),
        (0, 1, 2)
    );
    let bridge = config.function(ids.bridge);
    assert_eq!(
        (bridge.cfg8(0x18), bridge.cfg8(0x19), bridge.cfg8(0x1A)),
        (1, 2, 2)
    );
    let buses = topology.functions[0].buses.unwrap();
    assert_eq!(
        (buses.primary, buses.secondary, buses.subordinate),
        (0, 1, 2)
    );
    // Bus numbers are written with 1-byte accesses, before anything behind is addressed.
    let log = &config.log;
    let bridges = [Some(ids.root_port), Some(ids.bridge)];
    for access in log
        .iter()
        .filter(|a| a.write && (0x18..=0x1A).contains(&a.offset))
    {
        if bridges.contains(&access.target) {
            assert_eq!(access.bytes, 1);
        }
    }
    let numbered = |bus: u8| {
        log.iter()
            .position(|a| a.write && a.offset == 0x19 && a.bytes == 1 && a.value == u32::from(bus))
            .unwrap()
    };
    let first_access = |bus: u8| log.iter().position(|a| a.bus == bus).unwrap();
    assert!(numbered(1) < first_access(1));
    assert!(numbered(2) < first_access(2));

    // BARs: largest first on each bus; bridge subtrees in 1 MiB aligned windows.
    let edu = topology.function(bdf(1, 1, 0)).unwrap();
    assert_eq!(edu.bar(0).unwrap().address, Some(0x8000_0000));
    let bridge_rec = topology.function(bdf(1, 0, 0)).unwrap();
    assert_eq!(bridge_rec.bar(0).unwrap().address, Some(0x8010_0000));
    let fn0 = topology.function(bdf(2, 0, 0)).unwrap();
    let fn1 = topology.function(bdf(2, 0, 1)).unwrap();
    assert_eq!(fn1.bar(2).unwrap().address, Some(0x8020_0000));
    assert_eq!(fn0.bar(2).unwrap().address, Some(0x8030_0000));
    assert_eq!(fn0.bar(0).unwrap().address, Some(0x8032_0000));
    assert_eq!(fn1.bar(0).unwrap().address, Some(0x8032_4000));
    assert_eq!(fn0.bar(4).unwrap().address, None, "no I/O space on PHB3");
    check_placement(&topology, &config);

    // The registers hold them (low flag bits are read-only: 64-bit prefetchable = 0xc).
    let multi0 = config.function(ids.multi0);
    assert_eq!((multi0.cfg32(0x10), multi0.cfg32(0x14)), (0x8032_000C, 0));
    assert_eq!(multi0.cfg32(0x18), 0x8030_0000);
    assert_eq!(multi0.cfg32(0x20), 0x1, "I/O BAR restored after sizing");
    let multi1 = config.function(ids.multi1);
    assert_eq!(
        (multi1.cfg32(0x10), multi1.cfg32(0x18), multi1.cfg32(0x1C)),
        (0x8032_4000, 0x8020_0004, 0)
    );
    assert_eq!(config.function(ids.edu).cfg32(0x10), 0x8000_0000);

    // Bridge windows: root port 0x8000_0000..0x803f_ffff, bridge 0x8020_0000..0x803f_ffff;
    // I/O and prefetchable windows off.
    assert_eq!(
        topology.functions[0].window,
        Some(MemWindow {
            base: 0x8000_0000,
            size: 0x40_0000
        })
    );
    assert_eq!(
        bridge_rec.window,
        Some(MemWindow {
            base: 0x8020_0000,
            size: 0x20_0000
        })
    );
    assert_eq!((root.cfg16(0x20), root.cfg16(0x22)), (0x8000, 0x8030));
    assert_eq!((bridge.cfg16(0x20), bridge.cfg16(0x22)), (0x8020, 0x8030));
    assert_eq!((root.cfg16(0x24), root.cfg16(0x26)), (0xFFF1, 0x0001));
    assert_eq!((root.cfg8(0x1C), root.cfg8(0x1D)), (0xF0, 0x00));

    // Memory decoding and bus mastering on everywhere; edu's stale I/O decode off.
    for id in [ids.root_port, ids.bridge, ids.edu, ids.multi0, ids.multi1] {
        assert_eq!(config.function(id).cfg16(0x04), 0x0006);
    }
    assert!(topology.functions.iter().all(|f| f.enabled()));

    // One PE per function, from 0, in discovery order.
    assert_eq!(
        config.pe_log,
        vec![
            (0x0000, 0),
            (0x0100, 1),
            (0x0108, 2),
            (0x0200, 3),
            (0x0201, 4)
        ]
    );
    let pes: Vec<Option<u16>> = topology.functions.iter().map(|f| f.pe).collect();
    assert_eq!(pes, vec![Some(0), Some(1), Some(2), Some(3), Some(4)]);

    // The summary, one skiboot-style line per function.
    let summary = topology.to_string();
    let lines: Vec<&str> = summary.lines().collect();
    assert_eq!(
        lines,
        vec![
            "PHB#0000:00:00.0 [ROOT] 1014 03dc R:00 C:060400 B:01..02 PE:0 MEM:80000000..803fffff",
            "PHB#0000:01:00.0 [PCIB] 1b36 0001 R:00 C:060400 B:02..02 PE:1 MEM:80200000..803fffff BAR0:80100000(0x100)",
            "PHB#0000:01:01.0 [PCID] 1234 11e8 R:10 C:00ff00 PE:2 BAR0:80000000(1M)",
            "PHB#0000:02:00.0 [EP  ] 8086 10d3 R:00 C:020000 PE:3 BAR0:80320000(16K,64,P) BAR2:80300000(128K) BAR4:io(0x20)",
            "PHB#0000:02:00.1 [EP  ] 8086 10d4 R:00 C:020000 PE:4 BAR0:80324000(4K) BAR2:80200000(1M,64)",
        ]
    );
}

#[test]
fn empty_slots_and_function_gaps() {
    let mut config = FakeConfig::new();
    let root = config.add_root(0, FnSpec::bridge(0x1014, 0x03DC).pcie(4));
    // A multi-function device with functions 0 and 3 only, and a single-function device
    // whose stray function 1 must not be scanned (skiboot: only multi-function devices).
    config.add_behind(
        root,
        0x00,
        FnSpec::endpoint(0x1AF4, 0x1000, 0x020000).multi(),
    );
    config.add_behind(root, 0x03, FnSpec::endpoint(0x1AF4, 0x1001, 0x010000));
    config.add_behind(root, 0x10, FnSpec::endpoint(0x1AF4, 0x1002, 0x010000));
    config.add_behind(root, 0x11, FnSpec::endpoint(0x1AF4, 0x1003, 0x010000));
    let topology = enumerate(&mut config, &options()).unwrap();
    let bdfs: Vec<Bdf> = topology.functions.iter().map(|f| f.bdf).collect();
    assert_eq!(
        bdfs,
        vec![bdf(0, 0, 0), bdf(1, 0, 0), bdf(1, 0, 3), bdf(1, 2, 0)]
    );
    assert!(topology.problems.is_empty());
    // Nothing behind the root port takes memory: its window is off (base above limit).
    assert_eq!(topology.functions[0].window, None);
    let root_fn = config.function(root);
    assert_eq!((root_fn.cfg16(0x20), root_fn.cfg16(0x22)), (0xFFF0, 0x0000));

    // A root port with nothing behind it at all.
    let mut lonely = FakeConfig::new();
    let port = lonely.add_root(0, FnSpec::bridge(0x1014, 0x03DC).pcie(4));
    let topology = enumerate(&mut lonely, &options()).unwrap();
    assert_eq!(topology.functions.len(), 1);
    let buses = topology.functions[0].buses.unwrap();
    assert_eq!((buses.secondary, buses.subordinate), (1, 1));
    assert_eq!(lonely.function(port).cfg8(0x1A), 1);
    // An empty bus 0.
    let topology = enumerate(&mut FakeConfig::new(), &options()).unwrap();
    assert!(topology.functions.is_empty() && topology.problems.is_empty());
}

#[test]
fn a_bar_that_does_not_fit_disables_only_its_function() {
    let mut config = FakeConfig::new();
    let root = config.add_root(0, FnSpec::bridge(0x1014, 0x03DC).pcie(4));
    let mem = |size: u64| BarSpec::Mem32 {
        index: 0,
        size,
        prefetchable: false,
    };
    let a = config.add_behind(root, 0x00, FnSpec::endpoint(0x1111, 1, 0).bar(mem(1 << 30)));
    let b = config.add_behind(root, 0x08, FnSpec::endpoint(0x1111, 2, 0).bar(mem(1 << 30)));
    let c = config.add_behind(
        root,
        0x10,
        FnSpec::endpoint(0x1111, 3, 0).bar(mem(1 << 30)).cmd(0x0002),
    );
    let huge = BarSpec::Mem64 {
        index: 2,
        size: 1 << 32,
        prefetchable: true,
    };
    let d = config.add_behind(root, 0x18, FnSpec::endpoint(0x1111, 4, 0).bar(huge));
    let topology = enumerate(&mut config, &options()).unwrap();
    assert_eq!(
        topology
            .problems
            .iter()
            .map(|p| (p.bdf, p.problem))
            .collect::<Vec<_>>(),
        vec![
            (
                bdf(1, 3, 0),
                Problem::BarDoesNotFit {
                    index: 2,
                    size: 1 << 32
                }
            ),
            (
                bdf(1, 2, 0),
                Problem::BarDoesNotFit {
                    index: 0,
                    size: 1 << 30
                }
            ),
        ]
    );
    // a and b take the 2 GiB; c and d are left with decoding and mastering off.
    assert_eq!(config.function(a).cfg32(0x10), 0x8000_0000);
    assert_eq!(config.function(b).cfg32(0x10), 0xC000_0000);
    for id in [a, b] {
        assert_eq!(config.function(id).cfg16(0x04), 0x0006);
    }
    for id in [c, d] {
        assert_eq!(config.function(id).cfg16(0x04), 0x0000);
    }
    assert_eq!(
        config.function(c).cfg32(0x10),
        0,
        "unassigned BAR left as found"
    );
    let c_rec = topology.function(bdf(1, 2, 0)).unwrap();
    assert!(!c_rec.enabled());
    assert!(
        c_rec.to_string().ends_with("BAR0:unassigned(1G) DISABLED"),
        "{c_rec}"
    );
    check_placement(&topology, &config);
    assert!(topology
        .to_string()
        .contains("PHB#0000:01:03.0 BAR2 (4G) does not fit the memory window"));
}

#[test]
fn malformed_bars_do_not_panic() {
    let mut config = FakeConfig::new();
    let root = config.add_root(0, FnSpec::bridge(0x1014, 0x03DC).pcie(4));
    // A 64-bit BAR in the last slot, a "below 1 MiB" BAR, a non-contiguous mask.
    let last64 = BarSpec::Raw {
        index: 5,
        value: 0x4,
        writable: 0xFFFF_F000,
    };
    let below1m = BarSpec::Raw {
        index: 0,
        value: 0x2,
        writable: 0xFFFF_F000,
    };
    let holes = BarSpec::Raw {
        index: 0,
        value: 0x0,
        writable: 0xFFF0_0F00,
    };
    let x = config.add_behind(root, 0x00, FnSpec::endpoint(0x2222, 1, 0).bar(last64));
    let y = config.add_behind(root, 0x08, FnSpec::endpoint(0x2222, 2, 0).bar(below1m));
    let z = config.add_behind(root, 0x10, FnSpec::endpoint(0x2222, 3, 0).bar(holes));
    let topology = enumerate(&mut config, &options()).unwrap();
    assert_eq!(
        topology
            .problems
            .iter()
            .map(|p| (p.bdf, p.problem))
            .collect::<Vec<_>>(),
        vec![
            (
                bdf(1, 0, 0),
                Problem::BarUnsupported {
                    index: 5,
                    flags: 0x4
                }
            ),
            (
                bdf(1, 1, 0),
                Problem::BarUnsupported {
                    index: 0,
                    flags: 0x2
                }
            ),
        ]
    );
    for id in [x, y] {
        assert_eq!(config.function(id).cfg16(0x04), 0);
    }
    // The lowest writable bit (0x100) gives the size.
    let z_rec = topology.function(bdf(1, 2, 0)).unwrap();
    assert_eq!(z_rec.bar(0).unwrap().size, 0x100);
    assert!(z_rec.enabled());
    assert_eq!(config.function(z).cfg16(0x04), 0x0006);
}

#[test]
fn pe_exhaustion_and_first_pe() {
    let (mut config, ids) = sample_topology();
    config.assignable = 3;
    let topology = enumerate(&mut config, &options()).unwrap();
    let pes: Vec<Option<u16>> = topology.functions.iter().map(|f| f.pe).collect();
    assert_eq!(pes, vec![Some(0), Some(1), Some(2), None, None]);
    assert_eq!(
        topology
            .problems
            .iter()
            .map(|p| (p.bdf, p.problem))
            .collect::<Vec<_>>(),
        vec![
            (bdf(2, 0, 0), Problem::NoFreePe),
            (bdf(2, 0, 1), Problem::NoFreePe)
        ]
    );
    // Without a PE they get neither decoding nor bus mastering.
    for id in [ids.multi0, ids.multi1] {
        assert_eq!(config.function(id).cfg16(0x04), 0);
    }
    assert!(topology
        .to_string()
        .contains("PHB#0000:02:00.0 [EP  ] 8086 10d3 R:00 C:020000 PE:- "));
    assert!(topology
        .to_string()
        .contains("PHB#0000:02:00.1 no free PE left"));

    // PEs may start elsewhere (e.g. to keep numbers distinct across PHBs).
    let (mut config, _) = sample_topology();
    let topology = enumerate(
        &mut config,
        &EnumOptions {
            first_pe: 250,
            ..options()
        },
    )
    .unwrap();
    let pes: Vec<Option<u16>> = topology.functions.iter().map(|f| f.pe).collect();
    assert_eq!(
        pes,
        vec![Some(250), Some(251), Some(252), Some(253), Some(254)]
    );
    assert!(topology.problems.is_empty());
}

#[test]
fn deep_chains_and_bus_exhaustion_are_contained() {
    // 20 nested bridges: scanning stops at depth 16.
    let mut config = FakeConfig::new();
    let mut parent = config.add_root(0, FnSpec::bridge(0x1014, 0x03DC).pcie(4));
    for _ in 0..20 {
        parent = config.add_behind(parent, 0, FnSpec::bridge(0x1B36, 0x0001));
    }
    let topology = enumerate(&mut config, &options()).unwrap();
    assert_eq!(topology.functions.len(), 17);
    assert_eq!(
        topology
            .problems
            .iter()
            .map(|p| p.problem)
            .collect::<Vec<_>>(),
        vec![Problem::TooDeep]
    );
    assert_eq!(topology.problems[0].bdf, bdf(16, 0, 0));
    assert!(
        topology.functions.iter().all(|f| f.enabled()),
        "bridges stay usable"
    );

    // 256 bridges on bus 0 (via a fake that puts bridges everywhere): bus 255 is the last.
    let mut config = FakeConfig::new();
    for devfn in 0..=255u8 {
        let spec = FnSpec::bridge(0x1B36, 0x0001);
        let spec = if devfn & 7 == 0 { spec.multi() } else { spec };
        config.add_root(devfn, spec);
    }
    config.assignable = 1000;
    let topology = enumerate(&mut config, &options()).unwrap();
    assert_eq!(topology.functions.len(), 256);
    assert_eq!(
        topology
            .problems
            .iter()
            .map(|p| (p.bdf, p.problem))
            .collect::<Vec<_>>(),
        vec![(bdf(0, 31, 7), Problem::OutOfBusNumbers)]
    );
    assert_eq!(topology.functions[254].buses.unwrap().secondary, 255);
}

#[test]
fn unusable_windows_are_refused_before_any_access() {
    for window in [
        MemWindow {
            base: 0x8000_1000,
            size: 0x10_0000,
        },
        MemWindow {
            base: 0x8000_0000,
            size: 0x1000,
        },
        MemWindow {
            base: 0x8000_0000,
            size: 0,
        },
        MemWindow {
            base: 0xC000_0000,
            size: 0x8000_0000,
        },
        MemWindow {
            base: !0xF_FFFF,
            size: 0x10_0000,
        },
    ] {
        let (mut config, _) = sample_topology();
        let error = enumerate(
            &mut config,
            &EnumOptions {
                window,
                ..options()
            },
        )
        .unwrap_err();
        assert_eq!(error, EnumError::BadWindow(window));
        assert!(config.log.is_empty());
        assert!(!error.to_string().is_empty());
    }
}

/// A host bridge that refuses every config access after the first `allowed`.
struct Refusing {
    inner: FakeConfig,
    allowed: usize,
}

impl ConfigSpace for Refusing {
    fn config_read(&mut self, bdf: Bdf, offset: u16, width: Width) -> Result<u32, ConfigError> {
        if self.allowed == 0 {
            return Err(ConfigError::OutOfRange { offset });
        }
        self.allowed -= 1;
        self.inner.config_read(bdf, offset, width)
    }
    fn config_write(
        &mut self,
        bdf: Bdf,
        offset: u16,
        width: Width,
        value: u32,
    ) -> Result<(), ConfigError> {
        if self.allowed == 0 {
            return Err(ConfigError::OutOfRange { offset });
        }
        self.allowed -= 1;
        self.inner.config_write(bdf, offset, width, value)
    }
}

impl PeAssign for Refusing {
    fn assignable_pes(&self) -> u16 {
        255
    }
    fn assign_pe(&mut self, rid: u16, pe: u16) -> Result<(), PeError> {
        self.inner.assign_pe(rid, pe)
    }
}

#[test]
fn a_refused_config_access_stops_enumeration_with_its_error() {
    let (config, _) = sample_topology();
    for allowed in [0, 1, 10, 100] {
        let mut host = Refusing {
            inner: config.clone(),
            allowed,
        };
        let error = enumerate(&mut host, &options()).unwrap_err();
        assert!(matches!(
            error,
            EnumError::Config(ConfigError::OutOfRange { .. })
        ));
    }
}
