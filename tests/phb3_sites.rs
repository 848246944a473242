//! PHB discovery from real device trees: QEMU's (bare mode, pbcq nodes) and skiboot's
//! (payload mode, pciex nodes). Expected values are read off the .dts files in
//! tests/fixtures (QEMU hw/pci-host/pnv_phb3_pbcq.c; skiboot hw/phb3.c).

use tcefw::phb3::site::{sites, PhbAccess};
use tcefw::platform::machine::Machine;

fn machine(name: &str) -> Machine {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    Machine::parse(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn qemu_tree_gives_three_pbcq_sites() {
    let (found, problems) = sites(&machine("qemu72-powernv8.dtb"));
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(found.len(), 3);
    for (i, site) in found.iter().enumerate() {
        assert_eq!((site.chip_id, site.index), (0, i as u32));
        let PhbAccess::Pbcq { xscom_base, bases } = &site.access else {
            panic!("bare mode must use the PBCQ: {site:?}");
        };
        assert_eq!(*xscom_base, 0x3fc0000000000);
        // pbcq@2012000 + 0x400 * index: reg = <nest 0x46 pci 0x15 spci 0x05>.
        assert_eq!(bases.nest, 0x2012000 + 0x400 * i as u64);
        assert_eq!(bases.pci, 0x9012000 + 0x400 * i as u64);
        assert_eq!(bases.spci, 0x9013c00 + 0x40 * i as u64);
    }
}

#[test]
fn skiboot_tree_gives_three_pciex_sites() {
    let (found, problems) = sites(&machine("skiboot-powernv8-edu.dtb"));
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(found.len(), 3);
    for (i, site) in found.iter().enumerate() {
        assert_eq!((site.chip_id, site.index), (0, i as u32));
        let PhbAccess::Pciex {
            regs,
            m32,
            usable_m32_bytes,
            opal_phbid,
        } = &site.access
        else {
            panic!("payload mode must use skiboot's pciex nodes: {site:?}");
        };
        // pciex@3fffe40000000 + 0x100000 * index; ranges <0x2000000 0 0x80000000
        // 0x3ff80 0 0 0x7fff0000> for PHB0, MMIO1 bases 0x80000000 apart.
        assert_eq!(*regs, 0x3fffe40000000 + 0x100000 * i as u64);
        assert_eq!(m32.pci_base, 0x8000_0000);
        assert_eq!(m32.cpu_base, 0x3ff8000000000 + 0x8000_0000 * i as u64);
        assert_eq!(
            m32.size, 0x8000_0000,
            "the hardware window is the power of two"
        );
        assert_eq!(
            *usable_m32_bytes, 0x7ff0_0000,
            "BARs stay clear of the MSI window"
        );
        assert_eq!(*opal_phbid, Some(i as u64));
    }
}

use tcefw::devtree::MemRange;
use tcefw::platform::machine::{Opal, Pbcq, PciSpace, PciWindow, Pciex};

fn pciex_with(window: Option<PciWindow>) -> Pciex {
    Pciex {
        regs: MemRange {
            base: 0x3fffe40000000,
            size: 0x1000,
        },
        windows: window.into_iter().collect(),
        ..Pciex::default()
    }
}

#[test]
fn unusable_phb_nodes_are_reported_and_skipped() {
    // Payload mode: one PHB without a 32-bit range, one whose M32 does not start at PCI
    // 0x8000_0000, one whose CPU base is not aligned to the window, and one good one.
    let good = PciWindow {
        space: PciSpace::Mem32,
        prefetchable: false,
        pci_address: 0x8000_0000,
        cpu_address: 0x3ff8000000000,
        size: 0x7fff_0000,
    };
    let machine = Machine {
        opal: Some(Opal::default()),
        pciex: vec![
            pciex_with(None),
            pciex_with(Some(PciWindow {
                pci_address: 0x4000_0000,
                ..good
            })),
            pciex_with(Some(PciWindow {
                cpu_address: 0x3ff8000001000,
                ..good
            })),
            pciex_with(Some(good)),
        ],
        ..Machine::default()
    };
    let (found, problems) = sites(&machine);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(
        problems[0].why.contains("no 32-bit memory range"),
        "{problems:?}"
    );
    assert!(
        problems[1].why.contains("unexpected M32 range"),
        "{problems:?}"
    );

    // Bare mode: a PBCQ whose chip has no xscom node is reported, not guessed at.
    let machine = Machine {
        pbcqs: vec![Pbcq {
            chip_id: 7,
            ..Pbcq::default()
        }],
        ..Machine::default()
    };
    let (found, problems) = sites(&machine);
    assert!(found.is_empty());
    assert!(problems[0].why.contains("no xscom node"), "{problems:?}");
}
