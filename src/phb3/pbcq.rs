//! PBCQ bring-up over XSCOM: the three windows through which the CPU reaches one PHB3 (its
//! 4 KiB register block and the MMIO0/MMIO1 windows onto PCI), checked, then enabled.
//!
//! The sequence follows skiboot's `phb3_probe_pbcq` (CAPP check, BAR read-out, PCI BAR2
//! double-check with the HW275117 ASB-status read, BAR_EN last) and what QEMU's
//! `pnv_pbcq_nest_xscom_write` accepts: BARs are refused while enabled ("Changing enabled BAR
//! unsupported"), so BARs are written first with their enables off, and BAR_EN last. Every
//! XSCOM error stops the sequence and names the register; since BAR_EN is written last, a
//! failure leaves nothing new decoded.
//!
//! Resources: skiboot hw/phb3.c `phb3_probe_pbcq`; QEMU hw/pci-host/pnv_phb3_pbcq.c
//! (`pnv_pbcq_default_bars`, `pnv_pbcq_update_map`) and include/hw/pci-host/pnv_phb3_regs.h.

use super::regs::{
    pbcq_bar_address, pbcq_bar_value, pbcq_mask_size, pbcq_mask_value, PbcqBarEnable,
    PBCQ_ADDRESS_LIMIT, PBCQ_NEST_BAR_EN, PBCQ_NEST_MMIO_BAR0, PBCQ_NEST_MMIO_BAR1,
    PBCQ_NEST_MMIO_MASK0, PBCQ_NEST_MMIO_MASK1, PBCQ_NEST_PHB_BAR, PBCQ_PCI_BAR2,
    PBCQ_SPCI_AIB_CAPP_EN, PBCQ_SPCI_ASB_STATUS, PHB_REGS_SIZE,
};
use crate::hw::xscom::{Xscom, XscomError};
use crate::mm::PhysAddr;
use core::fmt;
use core::ops::Range;

/// Smallest MMIO window the PBCQ mask can describe: QEMU keeps mask bits 30..63 of the
/// register (`val & 0xffffffffc0000000`), i.e. address bits 16 and up.
pub const MIN_MMIO_WINDOW: u64 = 64 << 10;

/// A range of real (CPU physical) addresses `[base, base + size)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// First address.
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
}

impl Window {
    /// The window `[base, base + size)`.
    pub const fn new(base: u64, size: u64) -> Self {
        Self { base, size }
    }

    /// The first address past the window, or `None` if it would wrap around.
    pub const fn end(&self) -> Option<u64> {
        self.base.checked_add(self.size)
    }

    /// Whether `[start, end)` shares an address with the window (empty ranges share none).
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        let self_end = self.end().unwrap_or(u64::MAX);
        self.size != 0 && start < end && start < self_end && self.base < end
    }

    /// Whether `address` lies inside the window.
    pub fn contains(&self, address: u64) -> bool {
        address >= self.base && address - self.base < self.size
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.base.saturating_add(self.size.saturating_sub(1));
        write!(f, "{:#x}..{:#x}", self.base, last)
    }
}

/// The PCB base addresses of one PBCQ, from its `ibm,power8-pbcq` node's `reg`
/// (`<nest 0x46 pci 0x15 spci 0x05>`, QEMU `pnv_pbcq_dt_xscom`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PbcqXscom {
    /// Nest (PowerBus-side) registers: BARs, masks, BAR_EN, interrupt routing.
    pub nest: u64,
    /// PCI-side registers: BAR2 (copy of the PHB BAR).
    pub pci: u64,
    /// SPCI registers: ASB indirect access, CAPP enable.
    pub spci: u64,
}

/// Which of a PHB's CPU windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowKind {
    /// The 4 KiB PHB register block.
    PhbRegisters,
    /// MMIO window 0 (the large one; M64 lives here).
    Mmio0,
    /// MMIO window 1 (M32 lives here).
    Mmio1,
}

impl fmt::Display for WindowKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WindowKind::PhbRegisters => "PHB registers",
            WindowKind::Mmio0 => "MMIO0",
            WindowKind::Mmio1 => "MMIO1",
        })
    }
}

/// The windows one PBCQ decodes for its PHB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PbcqWindows {
    /// Base of the PHB register block (always [`PHB_REGS_SIZE`] bytes).
    pub phb_regs: u64,
    /// MMIO window 0, if it is used (skiboot uses a window only if its BAR is non-zero).
    pub mmio0: Option<Window>,
    /// MMIO window 1: the M32 window is carved from it, so it is required.
    pub mmio1: Window,
}

impl PbcqWindows {
    /// The PHB register block as a window.
    pub const fn phb_regs_window(&self) -> Window {
        Window::new(self.phb_regs, PHB_REGS_SIZE)
    }

    /// Every window that will be enabled, with its kind.
    fn each(&self) -> impl Iterator<Item = (WindowKind, Window)> {
        [
            Some((WindowKind::PhbRegisters, self.phb_regs_window())),
            self.mmio0.map(|w| (WindowKind::Mmio0, w)),
            Some((WindowKind::Mmio1, self.mmio1)),
        ]
        .into_iter()
        .flatten()
    }

    /// The BAR_EN bits that enable these windows.
    pub fn enables(&self) -> PbcqBarEnable {
        let mut bits = PbcqBarEnable::PHB | PbcqBarEnable::MMIO1;
        if self.mmio0.is_some() {
            bits |= PbcqBarEnable::MMIO0;
        }
        bits
    }
}

/// What to do with the BAR values the PBCQ holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarPlan {
    /// Keep the values already in the BAR registers (QEMU presets them; Hostboot programs
    /// them on real machines), after checking them.
    KeepPreset,
    /// Program these windows.
    Program(PbcqWindows),
}

/// A PBCQ register the bring-up touches, to name it in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PbcqRegister {
    /// SPCI 0x03, AIB CAPP enable.
    CappEnable,
    /// SPCI 0x01, ASB status (read before PCI-side accesses, HW275117).
    AsbStatus,
    /// PCI 0x0B, BAR2 (copy of the PHB BAR).
    PciBar2,
    /// Nest 0x40.
    MmioBar0,
    /// Nest 0x41.
    MmioBar1,
    /// Nest 0x42.
    PhbBar,
    /// Nest 0x43.
    MmioMask0,
    /// Nest 0x44.
    MmioMask1,
    /// Nest 0x45.
    BarEnable,
}

impl PbcqRegister {
    /// The register's PCB address for the PBCQ at `bases`.
    pub const fn pcb(self, bases: &PbcqXscom) -> u64 {
        match self {
            PbcqRegister::CappEnable => bases.spci + PBCQ_SPCI_AIB_CAPP_EN,
            PbcqRegister::AsbStatus => bases.spci + PBCQ_SPCI_ASB_STATUS,
            PbcqRegister::PciBar2 => bases.pci + PBCQ_PCI_BAR2,
            PbcqRegister::MmioBar0 => bases.nest + PBCQ_NEST_MMIO_BAR0,
            PbcqRegister::MmioBar1 => bases.nest + PBCQ_NEST_MMIO_BAR1,
            PbcqRegister::PhbBar => bases.nest + PBCQ_NEST_PHB_BAR,
            PbcqRegister::MmioMask0 => bases.nest + PBCQ_NEST_MMIO_MASK0,
            PbcqRegister::MmioMask1 => bases.nest + PBCQ_NEST_MMIO_MASK1,
            PbcqRegister::BarEnable => bases.nest + PBCQ_NEST_BAR_EN,
        }
    }

    /// The register's name as in QEMU's pnv_phb3_regs.h.
    pub const fn name(self) -> &'static str {
        match self {
            PbcqRegister::CappEnable => "SPCI_AIB_CAPP_EN",
            PbcqRegister::AsbStatus => "SPCI_ASB_STATUS",
            PbcqRegister::PciBar2 => "PCI_BAR2",
            PbcqRegister::MmioBar0 => "NEST_MMIO_BAR0",
            PbcqRegister::MmioBar1 => "NEST_MMIO_BAR1",
            PbcqRegister::PhbBar => "NEST_PHB_BAR",
            PbcqRegister::MmioMask0 => "NEST_MMIO_MASK0",
            PbcqRegister::MmioMask1 => "NEST_MMIO_MASK1",
            PbcqRegister::BarEnable => "NEST_BAR_EN",
        }
    }
}

/// Why a PBCQ was not brought up. In every case BAR_EN was not written with new enables
/// (except [`PbcqError::Xscom`] on BAR_EN itself), so the PHB stays unreachable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PbcqError {
    /// An XSCOM access failed.
    Xscom {
        /// The register accessed.
        register: PbcqRegister,
        /// Whether it was a write.
        write: bool,
        /// What HMER reported.
        error: XscomError,
    },
    /// The PHB is in CAPP (CAPI) mode; skiboot leaves such a PHB alone, so do we.
    CappMode,
    /// A required preset BAR is zero (no PHB register BAR or no MMIO1 window).
    Missing(WindowKind),
    /// A window the PBCQ cannot decode: misaligned, not a power of two, too small, or beyond
    /// the 50 bits a BAR register holds.
    BadWindow {
        /// Which window.
        kind: WindowKind,
        /// The window.
        window: Window,
    },
    /// A window overlaps RAM.
    OverlapsRam {
        /// Which window.
        kind: WindowKind,
        /// The window.
        window: Window,
        /// The RAM range it overlaps.
        ram: Range<PhysAddr>,
    },
    /// Two windows overlap each other.
    Overlap {
        /// The first window.
        first: WindowKind,
        /// The second window.
        second: WindowKind,
    },
}

impl fmt::Display for PbcqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PbcqError::Xscom {
                register,
                write,
                error,
            } => write!(
                f,
                "XSCOM {} of {} failed: {error}",
                if *write { "write" } else { "read" },
                register.name()
            ),
            PbcqError::CappMode => f.write_str("PHB is in CAPP mode, ignoring it"),
            PbcqError::Missing(kind) => write!(f, "no {kind} BAR set"),
            PbcqError::BadWindow { kind, window } => write!(
                f,
                "{kind} window {window} cannot be decoded (alignment, size or address)"
            ),
            PbcqError::OverlapsRam { kind, window, ram } => write!(
                f,
                "{kind} window {window} overlaps RAM {:#x}..{:#x}",
                ram.start, ram.end
            ),
            PbcqError::Overlap { first, second } => {
                write!(f, "{first} window overlaps {second} window")
            }
        }
    }
}

struct Access<'a> {
    xscom: &'a dyn Xscom,
    bases: &'a PbcqXscom,
}

impl Access<'_> {
    fn read(&self, register: PbcqRegister) -> Result<u64, PbcqError> {
        self.xscom
            .read(register.pcb(self.bases))
            .map_err(|error| PbcqError::Xscom {
                register,
                write: false,
                error,
            })
    }

    fn write(&self, register: PbcqRegister, value: u64) -> Result<(), PbcqError> {
        self.xscom
            .write(register.pcb(self.bases), value)
            .map_err(|error| PbcqError::Xscom {
                register,
                write: true,
                error,
            })
    }
}

/// Whether the PBCQ can decode `window` as `kind`: the PHB block 4 KiB aligned; MMIO windows
/// a power of two of at least 64 KiB, naturally aligned; everything below 2^50.
fn decodable(kind: WindowKind, window: Window) -> bool {
    let Some(end) = window.end() else {
        return false;
    };
    if window.base == 0 || end > PBCQ_ADDRESS_LIMIT {
        return false;
    }
    match kind {
        WindowKind::PhbRegisters => {
            window.size == PHB_REGS_SIZE && window.base.is_multiple_of(PHB_REGS_SIZE)
        }
        WindowKind::Mmio0 | WindowKind::Mmio1 => {
            window.size.is_power_of_two()
                && window.size >= MIN_MMIO_WINDOW
                && window.base.is_multiple_of(window.size)
        }
    }
}

/// Checks the windows: each decodable, none overlapping RAM, none overlapping another.
pub fn check_windows(windows: &PbcqWindows, ram: &[Range<PhysAddr>]) -> Result<(), PbcqError> {
    for (kind, window) in windows.each() {
        if !decodable(kind, window) {
            return Err(PbcqError::BadWindow { kind, window });
        }
        if let Some(range) = ram.iter().find(|r| window.overlaps(r.start, r.end)) {
            return Err(PbcqError::OverlapsRam {
                kind,
                window,
                ram: range.clone(),
            });
        }
    }
    for (i, (first, a)) in windows.each().enumerate() {
        for (second, b) in windows.each().skip(i + 1) {
            // `decodable` has ruled out wrapping windows.
            if a.overlaps(b.base, b.end().unwrap_or(u64::MAX)) {
                return Err(PbcqError::Overlap { first, second });
            }
        }
    }
    Ok(())
}

/// Reads the windows preset in the BAR registers (skiboot: a window is used only if its BAR is
/// non-zero; the masks give the sizes).
fn read_presets(access: &Access<'_>) -> Result<PbcqWindows, PbcqError> {
    let phb_bar = access.read(PbcqRegister::PhbBar)?;
    let bar0 = access.read(PbcqRegister::MmioBar0)?;
    let mask0 = access.read(PbcqRegister::MmioMask0)?;
    let bar1 = access.read(PbcqRegister::MmioBar1)?;
    let mask1 = access.read(PbcqRegister::MmioMask1)?;
    let phb_regs = pbcq_bar_address(phb_bar);
    if phb_regs == 0 {
        return Err(PbcqError::Missing(WindowKind::PhbRegisters));
    }
    let mmio1 = pbcq_bar_address(bar1);
    if mmio1 == 0 {
        return Err(PbcqError::Missing(WindowKind::Mmio1));
    }
    let mmio0 = pbcq_bar_address(bar0);
    Ok(PbcqWindows {
        phb_regs,
        mmio0: (mmio0 != 0).then(|| Window::new(mmio0, pbcq_mask_size(mask0))),
        mmio1: Window::new(mmio1, pbcq_mask_size(mask1)),
    })
}

/// Brings up one PBCQ: reads its state, settles the windows (`plan`), checks them against
/// each other and against `ram`, programs the BARs if asked, makes PCI BAR2 agree with the
/// PHB BAR, and finally enables the windows in BAR_EN. Interrupt routing (IRSN, LSI source
/// id) is left alone: tcefw takes no PHB interrupts.
///
/// Returns the windows now decoded. On error BAR_EN was not written with new enables, except
/// when writing BAR_EN itself failed; if `plan` had to disable windows that were already
/// enabled, they stay disabled.
pub fn bring_up(
    xscom: &dyn Xscom,
    bases: &PbcqXscom,
    plan: &BarPlan,
    ram: &[Range<PhysAddr>],
) -> Result<PbcqWindows, PbcqError> {
    let access = Access { xscom, bases };

    // skiboot: "Check if CAPP mode" -- a PHB given to the CAPI unit is not ours.
    if access.read(PbcqRegister::CappEnable)? & (1 << 63) != 0 {
        return Err(PbcqError::CappMode);
    }
    let bar_en = PbcqBarEnable::from_bits_retain(access.read(PbcqRegister::BarEnable)?);
    let windows = match plan {
        BarPlan::KeepPreset => read_presets(&access)?,
        BarPlan::Program(windows) => *windows,
    };
    check_windows(&windows, ram)?;

    let window_bits = PbcqBarEnable::MMIO0 | PbcqBarEnable::MMIO1 | PbcqBarEnable::PHB;
    let kept = bar_en.difference(window_bits);
    if let BarPlan::Program(_) = plan {
        // QEMU does not remap an enabled BAR ("Changing enabled BAR unsupported") and moving
        // a live window is asking for trouble on hardware: turn the windows off first.
        if bar_en.intersects(window_bits) {
            access.write(PbcqRegister::BarEnable, kept.bits())?;
        }
        access.write(PbcqRegister::PhbBar, pbcq_bar_value(windows.phb_regs))?;
        if let Some(mmio0) = windows.mmio0 {
            access.write(PbcqRegister::MmioBar0, pbcq_bar_value(mmio0.base))?;
            access.write(PbcqRegister::MmioMask0, pbcq_mask_value(mmio0.size))?;
        }
        access.write(PbcqRegister::MmioBar1, pbcq_bar_value(windows.mmio1.base))?;
        access.write(PbcqRegister::MmioMask1, pbcq_mask_value(windows.mmio1.size))?;
    }

    // skiboot "Dbl check PHB BAR": the PCI side keeps its own copy; the ASB status read before
    // each PCI-side access is the HW275117 workaround.
    let phb_bar = pbcq_bar_value(windows.phb_regs);
    access.read(PbcqRegister::AsbStatus)?;
    if access.read(PbcqRegister::PciBar2)? != phb_bar {
        access.read(PbcqRegister::AsbStatus)?;
        access.write(PbcqRegister::PciBar2, phb_bar)?;
    }

    access.write(
        PbcqRegister::BarEnable,
        kept.union(windows.enables()).bits(),
    )?;
    Ok(windows)
}

/// The windows QEMU's powernv8 presets for `chip`'s PHB `index` (`pnv_pbcq_default_bars`):
/// useful for tests and as a plan on machines without Hostboot.
pub const fn qemu_default_windows(chip: u64, index: u64) -> PbcqWindows {
    PbcqWindows {
        phb_regs: 0x3_FFFE_4000_0000 + 0x40_0000 * chip + 0x10_0000 * index,
        mmio0: Some(Window::new(
            0x3_D000_0000_0000 + 0x40_0000_0000 * chip + 0x10_0000_0000 * index,
            0x10_0000_0000,
        )),
        mmio1: Window::new(
            0x3_FF80_0000_0000 + 0x2_0000_0000 * chip + 0x8000_0000 * index,
            0x8000_0000,
        ),
    }
}
