//! IODA2 initialisation against a recording fake PHB and host RAM: the register sequence
//! (table BARs, M32, PHB3_CONFIG, TVT and the other on-chip tables cleared, RTC invalidate),
//! the table contents, PE assignment, TVT access, and every error path (PHB not answering,
//! allocation failure at each table, a table the BAR cannot hold, a PHB that stops answering
//! half-way), each leaving the tables freed and nothing half-programmed.

#[path = "support/fakes/mod.rs"]
mod fakes;

use fakes::{host_frames, peek_be16, peek_bytes, CountingFrames, FakePhb, Op, RegAccess};
use std::sync::Mutex;
use tcefw::mm::{FrameAllocator, PhysAddr};
use tcefw::phb3::pbcq::Window;
use tcefw::phb3::{read_tve, write_tve, M32Window, Phb3, Phb3Error, Phb3Table};

/// QEMU's MMIO1 for chip 0 PHB 0.
const MMIO1: Window = Window {
    base: 0x3_FF80_0000_0000,
    size: 2 << 30,
};

fn m32() -> M32Window {
    M32Window::inside_mmio1(MMIO1).unwrap()
}

fn w(offset: u64, value: u64) -> RegAccess {
    RegAccess {
        op: Op::Write64,
        offset,
        value,
    }
}

#[test]
fn init_programs_the_phb_in_skiboot_order() {
    let (_arena, buddy) = host_frames();
    let frames = CountingFrames::new(&buddy, None);
    let phb = FakePhb::qemu();
    let phb3 = Phb3::init(&phb, &frames, 0, m32()).unwrap();
    assert_eq!(phb3.revision(), 0xA3_0005);

    let rtt = phb3.rtt_base();
    let peltv = phb3.peltv_base();
    let pest = phb3.pest_base();
    assert_eq!(rtt % 0x2_0000, 0, "RTT 128 KiB aligned");
    assert_eq!(peltv % 0x2000, 0);
    assert_eq!(pest % 0x1000, 0);
    let mut blocks = frames.outstanding();
    blocks.sort_by_key(|b| b.1);
    assert_eq!(
        blocks,
        vec![(pest, 0x1000), (peltv, 0x2000), (rtt, 0x2_0000)]
    );

    let log = phb.log();
    assert_eq!(
        log[0],
        RegAccess {
            op: Op::Read64,
            offset: 0x800,
            value: 0x0000_00A3_0000_0005
        }
    );
    let mut expected = vec![
        w(0x168, rtt | 1 << 63),
        w(0x188, peltv | 1 << 63),
        w(0x150, 0),
        w(0x158, 0),
        // M32: CPU base = MMIO1, mask ~(2 GiB - 1), PCI start 0x8000_0000.
        w(0x190, 0x3_FF80_0000_0000),
        w(0x198, 0xFFFF_FFFF_8000_0000),
        w(0x1A0, 0x8000_0000),
        w(0x1A8, pest | 1 << 63),
        // Init_25: 64B_TCE_EN alone (clears the TCE cache), then M32_EN.
        w(0x160, 0x2000_0000_0000_0000),
        w(0x160, 0x0000_8000_0000_0000),
        RegAccess {
            op: Op::Delay,
            offset: 0,
            value: 512,
        },
    ];
    // The TVT clear: IODA_ADDR = AUTOINC | TVT(9) << 48 | 0, then 512 zero data writes.
    expected.push(w(0x220, 0x8009_0000_0000_0000));
    expected.extend((0..512).map(|_| w(0x228, 0)));
    // M64BT (16 = 0x10): 16 entries; M32DT (17 = 0x11): 256 entries.
    expected.push(w(0x220, 0x8010_0000_0000_0000));
    expected.extend((0..16).map(|_| w(0x228, 0)));
    expected.push(w(0x220, 0x8011_0000_0000_0000));
    expected.extend((0..256).map(|_| w(0x228, 0)));
    // PESTA (7) and PESTB (8), one selected entry at a time as skiboot does.
    for pe in 0..256u64 {
        expected.push(w(0x220, 0x0007_0000_0000_0000 | pe));
        expected.push(w(0x228, 0));
        expected.push(w(0x220, 0x0008_0000_0000_0000 | pe));
        expected.push(w(0x228, 0));
    }
    // PEEV (20 = 0x14): 4 doublewords.
    expected.push(w(0x220, 0x8014_0000_0000_0000));
    expected.extend((0..4).map(|_| w(0x228, 0)));
    expected.push(w(0x208, 0x8000_0000_0000_0000));
    expected.push(w(0x210, 0x8000_0000_0000_0000));
    expected.push(RegAccess {
        op: Op::Read64,
        offset: 0x168,
        value: rtt | 1 << 63,
    });
    expected.push(RegAccess {
        op: Op::Read64,
        offset: 0x160,
        value: 0x0000_8000_0000_0000,
    });
    assert_eq!(log.len(), expected.len() + 1);
    for (i, (got, want)) in log[1..].iter().zip(&expected).enumerate() {
        assert_eq!(got, want, "access {}", i + 1);
    }
    // Every TVT entry now reads 0.
    for index in 0..512 {
        assert_eq!(phb.ioda(9, index), Some(0));
    }

    // RTT: 65536 big-endian 0x00ff.
    let table = peek_bytes(rtt, 0x2_0000);
    assert!(table.chunks(2).all(|e| e == [0x00, 0xFF]));
    for rid in [0u16, 0x100, 0xFFFF] {
        assert_eq!(phb3.pe_of(rid), 255);
    }
    // PELTV: entry p (32 bytes) has only bit p (byte p / 8, mask 0x80 >> p % 8).
    let peltv_bytes = peek_bytes(peltv, 0x2000);
    for pe in 0..256usize {
        let entry = &peltv_bytes[pe * 32..pe * 32 + 32];
        for (byte, &value) in entry.iter().enumerate() {
            let want = if byte == pe / 8 {
                0x80u8 >> (pe % 8)
            } else {
                0
            };
            assert_eq!(value, want, "PELTV[{pe}] byte {byte}");
        }
    }
    assert!(peek_bytes(pest, 0x1000).iter().all(|&b| b == 0));
}

#[test]
fn set_pe_updates_the_rtt_then_invalidates() {
    let (_arena, buddy) = host_frames();
    let phb = FakePhb::qemu();
    let mut phb3 = Phb3::init(&phb, &buddy, 0, m32()).unwrap();
    phb.clear_log();

    // Bus 1 device 0, all 8 functions: RIDs 0x100..=0x107.
    phb3.set_pe(0x100..=0x107, 3).unwrap();
    assert_eq!(phb.log(), vec![w(0x208, 0x8000_0000_0000_0000)]);
    for rid in 0x100..=0x107u16 {
        assert_eq!(phb3.pe_of(rid), 3);
        assert_eq!(peek_be16(phb3.rtt_base() + 2 * u64::from(rid)), 3);
    }
    assert_eq!(phb3.pe_of(0x0FF), 255);
    assert_eq!(phb3.pe_of(0x108), 255);
    // Big-endian in memory: bytes 00 03 at RID 0x100.
    assert_eq!(peek_bytes(phb3.rtt_base() + 0x200, 2), vec![0x00, 0x03]);

    phb.clear_log();
    assert_eq!(phb3.set_pe(0x200..=0x200, 255), Err(Phb3Error::ReservedPe));
    assert_eq!(
        phb3.set_pe(0x200..=0x200, 256),
        Err(Phb3Error::PeOutOfRange { pe: 256 })
    );
    assert!(phb.log().is_empty(), "a refused PE touches nothing");
    assert_eq!(phb3.pe_of(0x200), 255);

    phb3.set_pe(0xFFFF..=0xFFFF, 254).unwrap();
    assert_eq!(phb3.pe_of(0xFFFF), 254);
    phb3.unassign(0x100..=0x103);
    assert_eq!(phb3.pe_of(0x100), 255);
    assert_eq!(phb3.pe_of(0x104), 3);
    assert_eq!(phb.log().last(), Some(&w(0x208, 0x8000_0000_0000_0000)));
}

#[test]
fn dropping_the_phb_turns_it_off_then_frees_the_tables() {
    let (_arena, buddy) = host_frames();
    let frames = CountingFrames::new(&buddy, None);
    let phb = FakePhb::qemu();
    let phb3 = Phb3::init(&phb, &frames, 0, m32()).unwrap();
    phb.clear_log();
    drop(phb3);
    assert_eq!(
        phb.writes(),
        vec![
            (0x160, 0),
            (0x168, 0),
            (0x188, 0),
            (0x1A8, 0),
            (0x208, 0x8000_0000_0000_0000)
        ]
    );
    assert!(frames.outstanding().is_empty());
}

#[test]
fn a_phb_that_does_not_answer_is_left_untouched() {
    for version in [0, u64::MAX] {
        let (_arena, buddy) = host_frames();
        let frames = CountingFrames::new(&buddy, None);
        let phb = FakePhb::new(version, Default::default());
        let error = Phb3::init(&phb, &frames, 0, m32()).unwrap_err();
        assert_eq!(error, Phb3Error::NotAnswering { version });
        assert_eq!(
            phb.log(),
            vec![RegAccess {
                op: Op::Read64,
                offset: 0x800,
                value: version
            }]
        );
        assert_eq!(frames.attempts(), 0);
        assert!(error.to_string().contains("PHB appears broken"));
    }
}

#[test]
fn allocation_failure_at_each_table_frees_the_others_and_writes_nothing() {
    for (fail_on, table) in [
        (1, Phb3Table::Rtt),
        (2, Phb3Table::Peltv),
        (3, Phb3Table::Pest),
    ] {
        let (_arena, buddy) = host_frames();
        let frames = CountingFrames::new(&buddy, Some(fail_on));
        let phb = FakePhb::qemu();
        let error = Phb3::init(&phb, &frames, 0, m32()).unwrap_err();
        assert_eq!(error, Phb3Error::OutOfMemory { table });
        assert!(frames.outstanding().is_empty(), "{table}: everything freed");
        assert_eq!(buddy.stats().used_bytes, 0);
        assert!(phb.writes().is_empty(), "{table}: no register written");
    }
}

/// Hands out scripted addresses (never touched by the code under test when they are refused).
struct ScriptedFrames {
    answers: Mutex<Vec<Option<PhysAddr>>>,
    freed: Mutex<Vec<(PhysAddr, usize)>>,
}

impl FrameAllocator for ScriptedFrames {
    fn alloc(&self, _size: usize) -> Option<PhysAddr> {
        self.answers.lock().unwrap().remove(0)
    }
    fn free(&self, pa: PhysAddr, size: usize) {
        self.freed.lock().unwrap().push((pa, size));
    }
}

#[test]
fn tables_the_bars_cannot_hold_are_refused() {
    // An RTT above the 50 address bits of PHB_RTT_BASE_ADDRESS_MASK.
    let frames = ScriptedFrames {
        answers: Mutex::new(vec![Some(1 << 50)]),
        freed: Mutex::default(),
    };
    let phb = FakePhb::qemu();
    let error = Phb3::init(&phb, &frames, 0, m32()).unwrap_err();
    assert_eq!(
        error,
        Phb3Error::TableOutOfReach {
            table: Phb3Table::Rtt,
            pa: 1 << 50
        }
    );
    assert_eq!(*frames.freed.lock().unwrap(), vec![(1 << 50, 0x2_0000)]);
    assert!(phb.writes().is_empty());
    // A misaligned block from a broken allocator is given back and counts as no memory.
    let frames = ScriptedFrames {
        answers: Mutex::new(vec![Some(0x1000)]),
        freed: Mutex::default(),
    };
    let error = Phb3::init(&phb, &frames, 0, m32()).unwrap_err();
    assert_eq!(
        error,
        Phb3Error::OutOfMemory {
            table: Phb3Table::Rtt
        }
    );
    assert_eq!(*frames.freed.lock().unwrap(), vec![(0x1000, 0x2_0000)]);
    assert!(phb.writes().is_empty());
}

#[test]
fn a_phb_that_stops_answering_is_turned_off_and_its_tables_freed() {
    let (_arena, buddy) = host_frames();
    let frames = CountingFrames::new(&buddy, None);
    let phb = FakePhb::qemu();
    // Reads die after VERSION: the read-back of RTT_BAR at the end gives all-ones.
    phb.set_reads_dead_after(1);
    let error = Phb3::init(&phb, &frames, 0, m32()).unwrap_err();
    let Phb3Error::Readback { register, read, .. } = error else {
        panic!("{error:?}")
    };
    assert_eq!((register, read), (0x168, 0x0003_FFFF_FFFE_0000 | 1 << 63));
    assert!(frames.outstanding().is_empty());
    for offset in [0x160, 0x168, 0x188, 0x1A8] {
        assert_eq!(phb.reg(offset), 0, "register {offset:#x} turned off");
    }
}

#[test]
fn m32_window_checks_and_translation() {
    let window = m32();
    assert_eq!(
        window,
        M32Window {
            cpu_base: 0x3_FF80_0000_0000,
            pci_base: 0x8000_0000,
            size: 2 << 30
        }
    );
    assert_eq!(window.cpu_address(0x8000_1000), Some(0x3_FF80_0000_1000));
    assert_eq!(window.cpu_address(0xFFFF_FFFF), Some(0x3_FF80_7FFF_FFFF));
    assert_eq!(window.cpu_address(0x7FFF_FFFF), None);
    assert_eq!(window.cpu_address(0x1_0000_0000), None);
    // A 4 GiB MMIO1 gives a 2 GiB M32 window (M32_PCI_SIZE).
    let big = M32Window::inside_mmio1(Window::new(0x3_FF00_0000_0000, 4 << 30)).unwrap();
    assert_eq!(big.size, 2 << 30);
    // A 1 GiB MMIO1 gives PCI 0x8000_0000..0xC000_0000.
    let small = M32Window::inside_mmio1(Window::new(0x3_FF80_0000_0000, 1 << 30)).unwrap();
    assert_eq!(small.size, 1 << 30);
    // Misaligned or tiny windows cannot be decoded by the M32 mask.
    for mmio1 in [
        Window::new(0x3_FF80_1000_0000, 2 << 30),
        Window::new(0x3_FF80_0000_0000, 0x8000),
    ] {
        let error = M32Window::inside_mmio1(mmio1).unwrap_err();
        assert_eq!(
            error,
            Phb3Error::BadM32Window {
                cpu_base: mmio1.base,
                size: mmio1.size.min(2 << 30)
            }
        );
    }
    // An M32 window built by hand is checked again at init, before anything is touched.
    let (_arena, buddy) = host_frames();
    let frames = CountingFrames::new(&buddy, None);
    let phb = FakePhb::qemu();
    let bad = M32Window {
        cpu_base: 0x3_FF80_0000_0000,
        pci_base: 0x4000_0000,
        size: 1 << 30,
    };
    assert!(matches!(
        Phb3::init(&phb, &frames, 0, bad),
        Err(Phb3Error::BadM32Window { .. })
    ));
    assert!(phb.writes().is_empty());
    assert_eq!(frames.attempts(), 0);
}

#[test]
fn tvt_entries_through_ioda_addr_and_data() {
    let phb = FakePhb::qemu();
    write_tve(&phb, 5, 0x0000_0000_2040_0201).unwrap();
    // IODA_ADDR = TVT(9) << 48 | 5 without auto-increment, then the data.
    assert_eq!(
        phb.writes(),
        vec![
            (0x220, 0x0009_0000_0000_0005),
            (0x228, 0x0000_0000_2040_0201)
        ]
    );
    assert_eq!(phb.ioda(9, 5), Some(0x2040_0201));
    assert_eq!(read_tve(&phb, 5), Ok(0x2040_0201));
    phb.clear_log();
    assert_eq!(
        write_tve(&phb, 512, 1),
        Err(Phb3Error::TvtIndexOutOfRange { index: 512 })
    );
    assert_eq!(
        read_tve(&phb, 600),
        Err(Phb3Error::TvtIndexOutOfRange { index: 600 })
    );
    assert!(
        phb.log().is_empty(),
        "an out-of-range index touches nothing"
    );
}
