//! Config space through CONFIG_ADDRESS/CONFIG_DATA on a recording fake PHB: the address
//! encoding, the data lane for each width, the PE from the RTT, and refused accesses
//! (misaligned, beyond 4 KiB, bus 0 beyond device 0) that touch nothing. No access is ever
//! 8 bytes wide at CONFIG_DATA.

#[path = "support/fakes/mod.rs"]
mod fakes;

use fakes::{host_frames, FakeConfig, FakePhb, FnSpec, Op, RegAccess};
use tcefw::hw::regio::Width;
use tcefw::pci::{Bdf, ConfigError, ConfigSpace};
use tcefw::phb3::config;
use tcefw::phb3::pbcq::Window;
use tcefw::phb3::{M32Window, Phb3};

fn bdf(bus: u8, device: u8, function: u8) -> Bdf {
    Bdf::new(bus, device, function).unwrap()
}

/// A PHB with the PHB3 root port at 00:00.0 and one device behind it at 01:00.0.
fn phb_with_devices() -> FakePhb {
    let mut config = FakeConfig::new();
    let root = config.add_root(0, FnSpec::bridge(0x1014, 0x03DC).pcie(4).rev(0x01));
    config.add_behind(
        root,
        0,
        FnSpec::endpoint(0x1234, 0x11E8, 0x00FF00).rev(0x10),
    );
    FakePhb::new(0x0000_00A3_0000_0005, config)
}

fn no_wide_config_data(phb: &FakePhb) {
    for access in phb.log() {
        if (0x130..0x138).contains(&access.offset) {
            assert!(
                matches!(access.op, Op::ReadLe(_) | Op::WriteLe(_)),
                "{access:?}"
            );
        }
    }
}

#[test]
fn address_then_data_with_the_right_lane() {
    let phb = phb_with_devices();
    let root = bdf(0, 0, 0);
    assert_eq!(config::read(&phb, root, 0x00, Width::U16, 255), Ok(0x1014));
    assert_eq!(
        phb.log(),
        vec![
            // enable | bus 0 | devfn 0 | reg 0 | PE 255 << 16
            RegAccess {
                op: Op::Write64,
                offset: 0x140,
                value: 0x8000_0000_00FF_0000
            },
            RegAccess {
                op: Op::ReadLe(Width::U16),
                offset: 0x130,
                value: 0x1014
            },
        ]
    );
    phb.clear_log();
    // Device id: halfword at 0x02 -> register 0x00, lane 0x132.
    assert_eq!(config::read(&phb, root, 0x02, Width::U16, 0), Ok(0x03DC));
    // Header type: byte at 0x0e -> register 0x0c, lane 0x132.
    assert_eq!(config::read(&phb, root, 0x0E, Width::U8, 0), Ok(0x01));
    // Revision/class: dword at 0x08 -> lane 0x130.
    assert_eq!(
        config::read(&phb, root, 0x08, Width::U32, 0),
        Ok(0x0604_0001)
    );
    let log = phb.log();
    assert_eq!(log[0].value, 0x8000_0000_0000_0000);
    assert_eq!(log[1].offset, 0x132);
    assert_eq!(log[2].value, 0x8000_000C_0000_0000);
    assert_eq!((log[3].op, log[3].offset), (Op::ReadLe(Width::U8), 0x132));
    assert_eq!(log[4].value, 0x8000_0008_0000_0000);
    assert_eq!((log[5].op, log[5].offset), (Op::ReadLe(Width::U32), 0x130));

    // Secondary bus number: byte write at 0x19 -> register 0x18, lane 0x131.
    phb.clear_log();
    config::write(&phb, root, 0x19, Width::U8, 0x101, 0).unwrap();
    assert_eq!(
        phb.log(),
        vec![
            RegAccess {
                op: Op::Write64,
                offset: 0x140,
                value: 0x8000_0018_0000_0000
            },
            // Bits beyond the width are dropped.
            RegAccess {
                op: Op::WriteLe(Width::U8),
                offset: 0x131,
                value: 0x01
            },
        ]
    );
    config::write(&phb, root, 0x1A, Width::U8, 1, 0).unwrap();
    // Now 01:00.0 is routed: bus 1 << 52, register 0.
    phb.clear_log();
    assert_eq!(
        config::read(&phb, bdf(1, 0, 0), 0, Width::U32, 3),
        Ok(0x11E8_1234)
    );
    assert_eq!(phb.log()[0].value, 0x8010_0000_0003_0000);
    no_wide_config_data(&phb);
}

#[test]
fn refused_accesses_touch_nothing() {
    let phb = phb_with_devices();
    let root = bdf(0, 0, 0);
    let cases = [
        (
            0x01,
            Width::U16,
            ConfigError::Misaligned {
                offset: 0x01,
                width: Width::U16,
            },
        ),
        (
            0x02,
            Width::U32,
            ConfigError::Misaligned {
                offset: 0x02,
                width: Width::U32,
            },
        ),
        (
            0x1000,
            Width::U8,
            ConfigError::OutOfRange { offset: 0x1000 },
        ),
        (
            0xFFFE,
            Width::U16,
            ConfigError::OutOfRange { offset: 0xFFFE },
        ),
    ];
    for (offset, width, error) in cases {
        assert_eq!(config::read(&phb, root, offset, width, 0), Err(error));
        assert_eq!(config::write(&phb, root, offset, width, 0, 0), Err(error));
        assert!(!error.to_string().is_empty());
    }
    // Extended config space below 4 KiB is fine.
    assert_eq!(config::read(&phb, root, 0xFFC, Width::U32, 0), Ok(0));
    phb.clear_log();
    // skiboot: bus 0 has only device 0; the others read as absent without a bus cycle.
    assert_eq!(
        config::read(&phb, bdf(0, 1, 0), 0, Width::U32, 0),
        Ok(0xFFFF_FFFF)
    );
    assert_eq!(
        config::read(&phb, bdf(0, 0, 1), 0, Width::U16, 0),
        Ok(0xFFFF)
    );
    config::write(&phb, bdf(0, 2, 0), 4, Width::U16, 6, 0).unwrap();
    assert!(phb.log().is_empty());
}

#[test]
fn the_phb3_puts_each_functions_pe_in_config_address() {
    let (_arena, frames) = host_frames();
    let phb = phb_with_devices();
    let m32 = M32Window::inside_mmio1(Window::new(0x3_FF80_0000_0000, 2 << 30)).unwrap();
    let mut phb3 = Phb3::init(&phb, &frames, 0, m32).unwrap();
    let root = bdf(0, 0, 0);
    phb3.write8(root, 0x19, 1).unwrap();
    phb3.write8(root, 0x1A, 1).unwrap();
    phb3.set_pe(0x100..=0x100, 7).unwrap();
    phb.clear_log();
    assert_eq!(phb3.read16(bdf(1, 0, 0), 0x02), Ok(0x11E8));
    // PE 7 << 16 from the RTT entry of RID 0x100.
    assert_eq!(phb.log()[0].value, 0x8010_0000_0007_0000);
    phb.clear_log();
    // An unassigned RID carries the reserved PE.
    assert_eq!(phb3.read16(bdf(1, 1, 0), 0x00), Ok(0xFFFF));
    assert_eq!(phb.log()[0].value, 0x8010_8000_00FF_0000);
    no_wide_config_data(&phb);
}
