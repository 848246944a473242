//! PBCQ bring-up over a fake XSCOM: keeping QEMU's presets, programming new windows, window
//! checks, and an XSCOM failure at every step (each gives the typed error naming the register,
//! and BAR_EN is never left enabling a window).

#[path = "support/fakes/mod.rs"]
mod fakes;

use fakes::{FakeXscom, NEST, PCI, SPCI};
use tcefw::hw::xscom::XscomError;
use tcefw::phb3::pbcq::{
    bring_up, qemu_default_windows, BarPlan, PbcqError, PbcqRegister, PbcqWindows, PbcqXscom,
    Window, WindowKind,
};

const BASES: PbcqXscom = PbcqXscom {
    nest: NEST,
    pci: PCI,
    spci: SPCI,
};
const BAR_EN: u64 = NEST + 0x45;
const ONE_GIB: u64 = 1 << 30;

/// QEMU's default 1 GiB of RAM at 0.
fn ram() -> Vec<core::ops::Range<u64>> {
    std::iter::once(0..ONE_GIB).collect()
}

/// Whether a successful BAR_EN write turned any window on.
fn enabled_a_window(xscom: &FakeXscom) -> bool {
    xscom
        .log()
        .iter()
        .any(|a| a.write && !a.failed && a.pcb == BAR_EN && a.value & 0xE000_0000_0000_0000 != 0)
}

#[test]
fn keeps_qemu_presets_and_enables_them_last() {
    let xscom = FakeXscom::qemu_phb0(None);
    let windows = bring_up(&xscom, &BASES, &BarPlan::KeepPreset, &ram()).unwrap();
    assert_eq!(windows, qemu_default_windows(0, 0));
    assert_eq!(windows.phb_regs, 0x3_FFFE_4000_0000);
    assert_eq!(
        windows.mmio0,
        Some(Window::new(0x3_D000_0000_0000, 64 << 30))
    );
    assert_eq!(windows.mmio1, Window::new(0x3_FF80_0000_0000, 2 << 30));

    let log = xscom.log();
    let pcbs: Vec<(bool, u64)> = log.iter().map(|a| (a.write, a.pcb)).collect();
    assert_eq!(
        pcbs,
        vec![
            (false, SPCI + 3),    // CAPP enable
            (false, NEST + 0x45), // BAR_EN
            (false, NEST + 0x42),
            (false, NEST + 0x40),
            (false, NEST + 0x43),
            (false, NEST + 0x41),
            (false, NEST + 0x44),
            (false, SPCI + 1), // HW275117 ASB status read
            (false, PCI + 0x0B),
            (true, NEST + 0x45),
        ]
    );
    // MMIO0 | MMIO1 | PHB.
    assert_eq!(xscom.reg(BAR_EN), 0xE000_0000_0000_0000);
    assert!(xscom.violations().is_empty());
}

#[test]
fn programs_chosen_windows_before_enabling() {
    let xscom = FakeXscom::qemu_phb0(None);
    // As if skiboot had enabled everything, IRSN included.
    xscom.write_raw(BAR_EN, 0xF800_0000_0000_0000);
    let chosen = PbcqWindows {
        phb_regs: 0x3_FFFF_0000_0000,
        mmio0: None,
        mmio1: Window::new(0x3_FF90_0000_0000, ONE_GIB),
    };
    let windows = bring_up(&xscom, &BASES, &BarPlan::Program(chosen), &ram()).unwrap();
    assert_eq!(windows, chosen);
    let writes: Vec<(u64, u64)> = xscom
        .log()
        .iter()
        .filter(|a| a.write)
        .map(|a| (a.pcb, a.value))
        .collect();
    assert_eq!(
        writes,
        vec![
            // Windows off first (IRSN kept), since an enabled BAR may not move.
            (NEST + 0x45, 0x1800_0000_0000_0000),
            // 0x3ffff00000000 << 14 = 0xffffc000_00000000.
            (NEST + 0x42, 0xFFFF_C000_0000_0000),
            // 0x3ff9000000000 << 14 = 0xffe4_0000_0000_0000; 1 GiB mask = 0xffff_f000... .
            (NEST + 0x41, 0xFFE4_0000_0000_0000),
            (NEST + 0x44, 0xFFFF_F000_0000_0000),
            // PCI BAR2 differed from the new PHB BAR: fixed up.
            (PCI + 0x0B, 0xFFFF_C000_0000_0000),
            // MMIO1 | PHB, IRSN kept.
            (NEST + 0x45, 0x7800_0000_0000_0000),
        ]
    );
    assert!(xscom.violations().is_empty(), "{:?}", xscom.violations());
}

#[test]
fn an_unset_mmio0_is_left_out() {
    let xscom = FakeXscom::qemu_phb0(None);
    xscom.write_raw(NEST + 0x40, 0);
    let windows = bring_up(&xscom, &BASES, &BarPlan::KeepPreset, &ram()).unwrap();
    assert_eq!(windows.mmio0, None);
    assert_eq!(xscom.reg(BAR_EN), 0x6000_0000_0000_0000);
}

#[test]
fn missing_required_bars_are_errors() {
    for (pcb, kind) in [
        (NEST + 0x42, WindowKind::PhbRegisters),
        (NEST + 0x41, WindowKind::Mmio1),
    ] {
        let xscom = FakeXscom::qemu_phb0(None);
        xscom.write_raw(pcb, 0);
        let error = bring_up(&xscom, &BASES, &BarPlan::KeepPreset, &ram()).unwrap_err();
        assert_eq!(error, PbcqError::Missing(kind));
        assert!(xscom.log().iter().all(|a| !a.write), "nothing written");
    }
}

#[test]
fn capp_mode_phb_is_left_alone() {
    let xscom = FakeXscom::qemu_phb0(None);
    xscom.write_raw(SPCI + 3, 1 << 63);
    let error = bring_up(&xscom, &BASES, &BarPlan::KeepPreset, &ram()).unwrap_err();
    assert_eq!(error, PbcqError::CappMode);
    assert!(xscom.log().iter().all(|a| !a.write));
}

#[test]
fn windows_overlapping_ram_or_each_other_are_refused_before_any_write() {
    let good = qemu_default_windows(0, 0);
    let cases = [
        (
            PbcqWindows {
                mmio1: Window::new(0x2000_0000, 0x1000_0000),
                ..good
            },
            PbcqError::OverlapsRam {
                kind: WindowKind::Mmio1,
                window: Window::new(0x2000_0000, 0x1000_0000),
                ram: 0..ONE_GIB,
            },
        ),
        (
            PbcqWindows {
                phb_regs: good.mmio1.base + 0x1000,
                ..good
            },
            PbcqError::Overlap {
                first: WindowKind::PhbRegisters,
                second: WindowKind::Mmio1,
            },
        ),
        (
            PbcqWindows {
                mmio0: Some(Window::new(good.mmio1.base + (2 << 30), 4 << 30)),
                ..good
            },
            // 0x3ff8080000000 is not a multiple of 4 GiB.
            PbcqError::BadWindow {
                kind: WindowKind::Mmio0,
                window: Window::new(good.mmio1.base + (2 << 30), 4 << 30),
            },
        ),
        (
            PbcqWindows {
                mmio1: Window::new(good.mmio1.base, 3 << 30),
                ..good
            },
            PbcqError::BadWindow {
                kind: WindowKind::Mmio1,
                window: Window::new(good.mmio1.base, 3 << 30),
            },
        ),
        (
            PbcqWindows {
                phb_regs: 1 << 50,
                ..good
            },
            PbcqError::BadWindow {
                kind: WindowKind::PhbRegisters,
                window: Window::new(1 << 50, 0x1000),
            },
        ),
        (
            PbcqWindows {
                mmio0: Some(good.mmio1),
                ..good
            },
            PbcqError::Overlap {
                first: WindowKind::Mmio0,
                second: WindowKind::Mmio1,
            },
        ),
    ];
    for (windows, expected) in cases {
        let xscom = FakeXscom::qemu_phb0(None);
        let error = bring_up(&xscom, &BASES, &BarPlan::Program(windows), &ram()).unwrap_err();
        assert_eq!(error, expected);
        assert!(
            xscom.log().iter().all(|a| !a.write),
            "{expected:?}: nothing written"
        );
        assert!(!error.to_string().is_empty());
    }
    // The presets themselves are refused when RAM reaches them (RAM here ends inside MMIO0).
    let xscom = FakeXscom::qemu_phb0(None);
    let huge_ram = 0..0x3_D000_0000_1000u64;
    let error = bring_up(
        &xscom,
        &BASES,
        &BarPlan::KeepPreset,
        std::slice::from_ref(&huge_ram),
    )
    .unwrap_err();
    assert!(matches!(
        error,
        PbcqError::OverlapsRam {
            kind: WindowKind::Mmio0,
            ..
        }
    ));
    assert!(!enabled_a_window(&xscom));
}

/// Runs a bring-up that fails at each XSCOM access in turn.
fn fail_at_every_step(plan: BarPlan, prepare: impl Fn(&FakeXscom)) {
    let clean = FakeXscom::qemu_phb0(None);
    prepare(&clean);
    bring_up(&clean, &BASES, &plan, &ram()).unwrap();
    let steps = clean.log().len();
    assert!(steps >= 10);
    for step in 1..=steps {
        let xscom = FakeXscom::qemu_phb0(Some(step));
        prepare(&xscom);
        let error = bring_up(&xscom, &BASES, &plan, &ram()).unwrap_err();
        let failed = *xscom.log().last().unwrap();
        assert!(failed.failed);
        let PbcqError::Xscom {
            register,
            write,
            error: cause,
        } = error
        else {
            panic!("step {step}: {error:?}")
        };
        assert_eq!(
            register.pcb(&BASES),
            failed.pcb,
            "step {step} names the register"
        );
        assert_eq!(write, failed.write);
        assert_eq!(
            cause,
            XscomError::Failed {
                pcb: failed.pcb,
                status: 4
            }
        );
        assert!(!enabled_a_window(&xscom), "step {step}: no window enabled");
        assert!(error_text(register).contains(register.name()));
    }
}

fn error_text(register: PbcqRegister) -> String {
    PbcqError::Xscom {
        register,
        write: true,
        error: XscomError::Timeout { pcb: 0 },
    }
    .to_string()
}

#[test]
fn xscom_failure_at_each_step_keeping_presets() {
    fail_at_every_step(BarPlan::KeepPreset, |_| {});
}

#[test]
fn xscom_failure_at_each_step_programming() {
    let chosen = PbcqWindows {
        phb_regs: 0x3_FFFF_0000_0000,
        mmio0: Some(Window::new(0x3_E000_0000_0000, 1 << 36)),
        mmio1: Window::new(0x3_FF90_0000_0000, ONE_GIB),
    };
    fail_at_every_step(BarPlan::Program(chosen), |x| {
        x.write_raw(BAR_EN, 0xE000_0000_0000_0000);
    });
}
