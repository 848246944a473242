//! PHB discovery from real device trees: QEMU's (bare mode, pbcq nodes) and skiboot's
//! (payload mode, pciex nodes). Expected values are read off the .dts files in
//! ../shared/fixtures (QEMU hw/pci-host/pnv_phb3_pbcq.c; skiboot hw/phb3.c).

use tcefw::phb3::site::{sites, PhbAccess};
use tcefw::platform::devtree::Machine;

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
