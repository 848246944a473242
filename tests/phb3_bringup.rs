//! The whole bring-up of one PHB on fakes, in the order the firmware runs it: PBCQ over
//! XSCOM (QEMU presets), IODA2 init with the M32 window carved from MMIO1, then enumeration
//! through the PHB's own config space. Checks that PE assignment lands in the RTT (one
//! RTC invalidate per assignment) and that config cycles carry each function's PE.

#[path = "support/fakes/mod.rs"]
mod fakes;

use fakes::{host_frames, peek_bytes, sample_topology, FakePhb, FakeXscom, Op, NEST, PCI, SPCI};
use tcefw::pci::edu::{EDU_DEVICE, EDU_VENDOR};
use tcefw::pci::{enumerate, Bdf, EnumOptions, MemWindow};
use tcefw::phb3::pbcq::{bring_up, BarPlan, PbcqXscom};
use tcefw::phb3::{M32Window, Phb3};

#[test]
fn pbcq_then_ioda_then_enumeration() {
    let xscom = FakeXscom::qemu_phb0(None);
    let bases = PbcqXscom {
        nest: NEST,
        pci: PCI,
        spci: SPCI,
    };
    let ram = 0..1u64 << 30;
    let windows = bring_up(
        &xscom,
        &bases,
        &BarPlan::KeepPreset,
        std::slice::from_ref(&ram),
    )
    .unwrap();
    let m32 = M32Window::inside_mmio1(windows.mmio1).unwrap();

    let (config, _) = sample_topology();
    let phb = FakePhb::new(0x0000_00A3_0000_0005, config);
    let (_arena, frames) = host_frames();
    let mut phb3 = Phb3::init(&phb, &frames, 0, m32).unwrap();
    phb.clear_log();

    let options = EnumOptions {
        phb_index: phb3.index(),
        window: MemWindow {
            base: m32.pci_base,
            size: m32.size,
        },
        first_pe: 0,
    };
    let topology = enumerate(&mut phb3, &options).unwrap();
    assert!(topology.problems.is_empty());

    // RTT: each function's RID maps to its own PE; everything else stays reserved.
    let expected = [
        (0x0000u16, 0u16),
        (0x0100, 1),
        (0x0108, 2),
        (0x0200, 3),
        (0x0201, 4),
    ];
    for (rid, pe) in expected {
        assert_eq!(phb3.pe_of(rid), pe, "RID {rid:#06x}");
        assert_eq!(topology.function(Bdf::from_rid(rid)).unwrap().pe, Some(pe));
    }
    let rtt = peek_bytes(phb3.rtt_base(), 0x2_0000);
    let reserved = rtt
        .chunks(2)
        .enumerate()
        .filter(|(rid, _)| !expected.iter().any(|(r, _)| usize::from(*r) == *rid))
        .all(|(_, entry)| entry == [0x00, 0xFF]);
    assert!(reserved);

    // One RTC invalidate per assignment, and nothing else but config accesses.
    let log = phb.log();
    let invalidates = log
        .iter()
        .filter(|a| a.op == Op::Write64 && a.offset == 0x208)
        .count();
    assert_eq!(invalidates, expected.len());
    assert!(log
        .iter()
        .all(|a| matches!(a.offset, 0x130..=0x133 | 0x140 | 0x208)));
    assert!(log
        .iter()
        .all(|a| !(0x130..0x138).contains(&a.offset) || !matches!(a.op, Op::Read64 | Op::Write64)));

    // Once edu (01:01.0) has PE 2, its config cycles carry PE 2 << 16.
    let edu_cycles: Vec<u64> = log
        .iter()
        .filter(|a| a.op == Op::Write64 && a.offset == 0x140 && (a.value >> 44) & 0xFFFF == 0x108)
        .map(|a| (a.value >> 16) & 0xFF)
        .collect();
    assert_eq!(
        edu_cycles.first(),
        Some(&255),
        "before assignment: reserved PE"
    );
    assert_eq!(edu_cycles.last(), Some(&2), "after assignment: its own PE");

    // edu's BAR0 as the CPU sees it through M32.
    let edu = topology.find(EDU_VENDOR, EDU_DEVICE).unwrap();
    let bar0 = edu.bar(0).unwrap().address.unwrap();
    assert_eq!(m32.cpu_address(bar0), Some(0x3_FF80_0000_0000));
}
