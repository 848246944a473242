//! The machine as its device tree describes it: turns the flattened device tree the
//! firmware is handed in r3 into an owned, typed [`Machine`], and never panics on what it
//! reads.
//!
//! Two kinds of tree reach us. In bare mode (`-bios`), QEMU's powernv8 tree describes chips
//! by their XSCOM nodes with `pbcq@` children for the PHB3s and no `pciex` nodes. In payload
//! mode skiboot has brought the PHBs up, and its tree adds `/ibm,opal`, `reserved-ranges`,
//! `/reserved-memory` and one `pciex@` node per PHB. [`Machine`] holds what both say.
//!
//! The blob itself is read by the generic reader in [`crate::devtree`], which checks every
//! offset and length; a malformed, truncated or unexpected tree gives a [`DevTreeError`]
//! naming the byte offset or the node and property and what is wrong.
//!
//! Resources: Devicetree Specification v0.4 (chapters 2, 3 and 5); skiboot core/device.c,
//! core/fdt.c, core/mem_region.c, hw/xscom.c, hw/lpc.c and hw/phb3.c (`phb3_add_properties`);
//! QEMU hw/ppc/pnv.c, pnv_xscom.c, pnv_lpc.c and hw/pci-host/pnv_phb3.c (the bare-mode tree);
//! Linux arch/powerpc/kernel/prom.c and platforms/powernv/pci-ioda.c (how an OS reads both).

mod parse;
pub mod summary;

pub use summary::{Summary, SummaryLine};

use crate::devtree::{merge_spans, subtract_spans, DevTreeError, MemRange, Span};
use alloc::{string::String, vec::Vec};

/// What the device tree says about the machine: memory, CPUs, chips and their XSCOM, LPC
/// and PHBs, and (in payload mode) OPAL. Built by [`Machine::parse`]; every field is owned so
/// the blob's memory can be reused afterwards.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Machine {
    /// Root `model` (spec 3.2), e.g. "IBM PowerNV (emulated by qemu)"; `None` when absent.
    pub model: Option<String>,
    /// Root `compatible`, most specific first (e.g. "qemu,powernv8"); empty when absent.
    pub compatible: Vec<String>,
    /// RAM: the `reg` ranges of every available root child with `device_type = "memory"`
    /// (spec 3.4), sorted and merged where they overlap or touch. Never empty after `parse`.
    pub memory: Vec<MemRange>,
    /// Ranges the firmware must leave alone, sorted by base; identical ranges given by several
    /// sources are listed once with all their sources. See [`Reserved`].
    pub reserved: Vec<Reserved>,
    /// The FDT header's `boot_cpuid_phys`: skiboot stores the booting thread's PIR there;
    /// QEMU's own tree leaves it 0, which need not match any CPU.
    pub boot_cpuid_phys: u32,
    /// Every node under `/cpus` with `device_type = "cpu"` (one per core on POWER8), sorted
    /// by PIR. Never empty after `parse`.
    pub cpus: Vec<Cpu>,
    /// Every XSCOM node under the root (compatible "ibm,xscom" or "ibm,power8-xscom"), one per
    /// chip, sorted by chip id.
    pub chips: Vec<Chip>,
    /// Bare mode: every "ibm,power8-pbcq" child of an XSCOM node (QEMU's tree, and skiboot's,
    /// which keeps them), sorted by chip id and PHB index.
    pub pbcqs: Vec<Pbcq>,
    /// Payload mode: every node compatible "ibm,power8-pciex" (skiboot's PHB nodes), sorted
    /// by register base.
    pub pciex: Vec<Pciex>,
    /// `/ibm,opal`, present when skiboot started us as its payload.
    pub opal: Option<Opal>,
    /// `/chosen` `bootargs`; empty when absent or a lone NUL (QEMU writes `[00]`).
    pub bootargs: String,
    /// `/chosen` `linux,stdout-path` (skiboot's name), else `stdout-path` (the spec's).
    pub stdout_path: Option<String>,
    /// The FDT header's `totalsize`: the bytes the blob occupies, to keep it out of the free
    /// memory while it is still needed.
    pub fdt_size: u32,
}

/// A range the firmware must not use, and who said so.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reserved {
    /// The physical range.
    pub range: MemRange,
    /// The name from `reserved-names` or the `/reserved-memory` child's node name.
    pub name: Option<String>,
    /// Which parts of the tree listed this range.
    pub sources: ReservedSources,
}

/// The places a reserved range can come from (skiboot fills all three with the same ranges).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReservedSources {
    /// The FDT header's memory reservation block (spec 5.3; `/memreserve/` in dts).
    pub header_block: bool,
    /// The root's `reserved-ranges` (skiboot core/mem_region.c; 2+2 cells per entry, read
    /// the way Linux's `early_reserve_mem_dt` does), named by `reserved-names`.
    pub reserved_ranges: bool,
    /// A child of `/reserved-memory` with a `reg` (spec 3.5).
    pub reserved_memory: bool,
}

/// One CPU node: a POWER8 core and its hardware threads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cpu {
    /// The first `reg` cell: the PIR of the core's first thread (QEMU: `reg = <0x8>` for
    /// chip 0 core 1).
    pub pir: u32,
    /// `ibm,ppc-interrupt-server#s`: the PIRs of every thread. When the property is absent this
    /// is `[pir]`, as Linux's `smp_setup_cpu_maps` falls back to one thread from `reg`.
    pub threads: Vec<u32>,
    /// `ibm,chip-id`, if present.
    pub chip_id: Option<u32>,
    /// `status` absent, "okay" or "ok".
    pub available: bool,
    /// `timebase-frequency` in Hz (one or two cells), from the node or else from `/cpus`
    /// (spec 3.7/3.8 allow either): QEMU's POWER8 gives 512 MHz.
    pub timebase_frequency: Option<u64>,
}

/// One chip, found through its XSCOM node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chip {
    /// `ibm,chip-id` of the XSCOM node.
    pub chip_id: u32,
    /// The XSCOM MMIO window: the first `reg` entry, in the root's address space
    /// (QEMU chip 0: 0x3fc0000000000 size 0x800000000).
    pub xscom: MemRange,
    /// The node has the `primary` flag (the chip the firmware boots on).
    pub primary: bool,
    /// The "ibm,power8-lpc" child, if any.
    pub lpc: Option<Lpc>,
}

/// A range of PCB (XSCOM) register addresses; `size` counts registers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PcbRange {
    /// First PCB address.
    pub base: u64,
    /// Number of registers.
    pub size: u64,
}

/// The LPC bus of a chip (skiboot hw/lpc.c; QEMU hw/ppc/pnv_lpc.c).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lpc {
    /// The first `reg` entry: the PCB address of the ECCB registers through which P8 reaches
    /// LPC (0xb0020), in the XSCOM node's address space.
    pub pcb: PcbRange,
    /// The node has the `primary` flag.
    pub primary: bool,
    /// Every "ns16550" child, in tree order.
    pub uarts: Vec<Uart>,
    /// The first "ipmi-bt" child (the BMC's block-transfer interface), if any.
    pub ipmi_bt: Option<LpcRange>,
}

/// The LPC address spaces, the first cell of an LPC child's `reg` (skiboot include/lpc.h,
/// `enum OpalLPCAddressType`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LpcSpace {
    /// 0: LPC memory space.
    #[default]
    Memory,
    /// 1: LPC I/O space (UARTs, BT).
    Io,
    /// 2: LPC firmware space.
    Firmware,
    /// Any other value.
    Other(u32),
}

impl LpcSpace {
    /// The space named by an LPC `reg` space cell.
    pub const fn from_cell(cell: u32) -> Self {
        match cell {
            0 => LpcSpace::Memory,
            1 => LpcSpace::Io,
            2 => LpcSpace::Firmware,
            other => LpcSpace::Other(other),
        }
    }
}

/// A device's range on the LPC bus: `reg = <space address size>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LpcRange {
    /// The address space.
    pub space: LpcSpace,
    /// The address within that space.
    pub address: u32,
    /// The size in bytes.
    pub size: u32,
}

impl LpcRange {
    /// The I/O port, when the range is in I/O space and within its 16 bits.
    pub fn io_port(&self) -> Option<u16> {
        match self.space {
            LpcSpace::Io => u16::try_from(self.address).ok(),
            _ => None,
        }
    }
}

/// An ns16550 UART on LPC (`isa-serial@i3f8` in QEMU's tree).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Uart {
    /// Its `reg` (QEMU: I/O 0x3f8, 8 bytes).
    pub reg: LpcRange,
    /// `clock-frequency`, the UART input clock in Hz, if present.
    pub clock_frequency: Option<u32>,
    /// `current-speed`, the baud rate already set up, if present.
    pub current_speed: Option<u32>,
    /// `status` absent or "okay". skiboot marks the UART "reserved" (spec 2.3.4: in use by
    /// firmware) because OPAL's console owns it; a payload must then go through OPAL.
    pub available: bool,
}

/// A PHB3's PBCQ as QEMU describes it (bare mode): the three PCB register ranges through
/// which the firmware programs the PHB's BARs (skiboot `phb3_probe_pbcq`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pbcq {
    /// The node's `ibm,chip-id`, else its XSCOM node's.
    pub chip_id: u32,
    /// `ibm,phb-index`: the PHB's number on its chip (0..2 on POWER8).
    pub phb_index: u32,
    /// `reg` entry 0: the nest (PowerBus) registers.
    pub nest: PcbRange,
    /// `reg` entry 1: the PCI-side registers.
    pub pci: PcbRange,
    /// `reg` entry 2: the SPCI registers (indirect PHB register access via ASB).
    pub spci: PcbRange,
}

/// The PCI address spaces of an OF PCI `phys.hi` cell (bits 24..25, "ss").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PciSpace {
    /// 0: configuration space.
    #[default]
    Config,
    /// 1: I/O space.
    Io,
    /// 2: 32-bit memory space (the PHB3's M32 window).
    Mem32,
    /// 3: 64-bit memory space.
    Mem64,
}

/// One `ranges` entry of a PCI host bridge: a window from CPU addresses to PCI addresses
/// (IEEE 1275 PCI binding, `ranges` with 3 child address cells).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PciWindow {
    /// Bits 24..25 of `phys.hi`.
    pub space: PciSpace,
    /// Bit 30 of `phys.hi` ("p").
    pub prefetchable: bool,
    /// `phys.mid`/`phys.lo`: the PCI address the window starts at.
    pub pci_address: u64,
    /// The CPU (parent) address the window starts at.
    pub cpu_address: u64,
    /// The window's size.
    pub size: u64,
}

/// `ibm,opal-m64-window = <pci-address(2) cpu-address(2) size(2)>` (skiboot hw/phb3.c; Linux
/// `pnv_ioda_parse_m64_window` reads the PCI address from cells 0..1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct M64Window {
    /// PCI address of the window.
    pub pci_address: u64,
    /// CPU address of the window.
    pub cpu_address: u64,
    /// Its size.
    pub size: u64,
}

/// A PHB3 as skiboot describes it to its payload: a `pciex@<regs>` node
/// (skiboot hw/phb3.c `phb3_add_properties`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pciex {
    /// The first `reg` entry: the PHB's register block (4 KiB).
    pub regs: MemRange,
    /// `compatible` also lists "ibm,ioda2-phb".
    pub ioda2: bool,
    /// `ranges`, decoded (skiboot gives one M32 window); empty when absent.
    pub windows: Vec<PciWindow>,
    /// `ibm,opal-phbid`: the PHB id for OPAL PCI calls.
    pub opal_phbid: Option<u64>,
    /// `ibm,chip-id`.
    pub chip_id: Option<u32>,
    /// `ibm,phb-index`.
    pub phb_index: Option<u32>,
    /// `ibm,opal-num-pes` (256 on PHB3).
    pub num_pes: Option<u32>,
    /// `ibm,opal-reserved-pe` (255 on PHB3).
    pub reserved_pe: Option<u32>,
    /// `ibm,opal-tce-kill`: the CPU address of the TCE kill register (regs + 0x210).
    pub tce_kill: Option<u64>,
    /// `ibm,supported-tce-sizes`: IOMMU page shifts (12, 16, 24, 28 on PHB3).
    pub tce_page_shifts: Option<Vec<u32>>,
    /// `ibm,opal-m64-window`.
    pub m64_window: Option<M64Window>,
}

impl Pciex {
    /// The first 32-bit memory window: the M32 space skiboot set up.
    pub fn m32_window(&self) -> Option<&PciWindow> {
        self.windows
            .iter()
            .find(|window| window.space == PciSpace::Mem32)
    }
}

/// `/ibm,opal`: where skiboot's runtime lives and how to call it (skiboot core/opal.c
/// `add_opal_node`; Linux `early_init_dt_scan_opal` reads the same three properties).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Opal {
    /// `opal-base-address`: start of OPAL's runtime image.
    pub base: u64,
    /// `opal-entry-address`: the OPAL call entry point.
    pub entry: u64,
    /// `opal-runtime-size`: bytes from `base` that OPAL keeps at runtime.
    pub runtime_size: u64,
}

impl Machine {
    /// Reads a flattened device tree. Any problem with the blob, or a missing or malformed
    /// node or property the firmware relies on, is an error; nothing read can panic.
    pub fn parse(blob: &[u8]) -> Result<Machine, DevTreeError> {
        parse::machine(blob)
    }

    /// Whether skiboot started us as its payload (`/ibm,opal` exists).
    pub fn is_opal_payload(&self) -> bool {
        self.opal.is_some()
    }

    /// The first byte above all RAM (the end of the highest memory range).
    pub fn ram_top(&self) -> u64 {
        self.memory.iter().map(MemRange::end).max().unwrap_or(0)
    }

    /// The bytes of RAM in all memory ranges.
    pub fn total_ram(&self) -> u64 {
        merge_spans(self.memory.iter().map(MemRange::span))
            .iter()
            .fold(0u64, |total, &(start, end)| {
                total.saturating_add(end - start)
            })
    }

    /// RAM the firmware may use: the memory ranges minus every reserved range, minus OPAL's
    /// runtime image (`/ibm,opal` base + runtime size: skiboot lists it in `reserved-ranges`
    /// too, and Linux's kexec keeps it out on its own as well), minus the `exclude` spans
    /// (half-open `(start, end)`: the image, its stack, the FDT blob...).
    /// The result is sorted, merged and free of empty spans; exclusions may overlap each
    /// other, the reserved ranges or the edges of RAM, or lie outside RAM altogether.
    pub fn free_ranges(&self, exclude: &[Span]) -> Vec<Span> {
        let memory: Vec<Span> = self.memory.iter().map(MemRange::span).collect();
        let mut cuts: Vec<Span> = self.reserved.iter().map(|r| r.range.span()).collect();
        if let Some(opal) = &self.opal {
            cuts.push(MemRange::new(opal.base, opal.runtime_size).span());
        }
        cuts.extend_from_slice(exclude);
        subtract_spans(&memory, &cuts)
    }

    /// The CPU whose PIR or one of whose threads is the header's `boot_cpuid_phys`.
    pub fn boot_cpu(&self) -> Option<&Cpu> {
        self.cpus.iter().find(|cpu| {
            cpu.pir == self.boot_cpuid_phys || cpu.threads.contains(&self.boot_cpuid_phys)
        })
    }

    /// The chip with XSCOM chip id `chip_id`.
    pub fn chip(&self, chip_id: u32) -> Option<&Chip> {
        self.chips.iter().find(|chip| chip.chip_id == chip_id)
    }

    /// Every chip's LPC bus, with its chip.
    pub fn lpcs(&self) -> impl Iterator<Item = (&Chip, &Lpc)> {
        self.chips
            .iter()
            .filter_map(|chip| Some((chip, chip.lpc.as_ref()?)))
    }

    /// The LPC bus flagged `primary` (skiboot picks the console's bus this way), else the
    /// first one, with its chip.
    pub fn primary_lpc(&self) -> Option<(&Chip, &Lpc)> {
        self.lpcs()
            .find(|(_, lpc)| lpc.primary)
            .or_else(|| self.lpcs().next())
    }

    /// The first UART on the primary LPC bus. In payload mode skiboot marks it reserved
    /// ([`Uart::available`] is false): OPAL's console owns it.
    pub fn primary_uart(&self) -> Option<&Uart> {
        self.primary_lpc()?.1.uarts.first()
    }

    /// What bare-mode firmware needs to reach the console: `(XSCOM MMIO base of the chip,
    /// PCB address of its LPC ECCB registers, I/O port of the UART)`; `None` when there is no
    /// LPC UART in I/O space.
    pub fn console_uart(&self) -> Option<(u64, u64, u16)> {
        let (chip, lpc) = self.primary_lpc()?;
        let port = lpc.uarts.first()?.reg.io_port()?;
        Some((chip.xscom.base, lpc.pcb.base, port))
    }

    /// The timebase frequency in Hz: the boot CPU's `timebase-frequency`, else the first
    /// CPU's that has one.
    pub fn timebase_hz(&self) -> Option<u64> {
        self.boot_cpu()
            .and_then(|cpu| cpu.timebase_frequency)
            .or_else(|| self.cpus.iter().find_map(|cpu| cpu.timebase_frequency))
    }

    /// The boot arguments from `/chosen` (empty when there are none).
    pub fn bootargs(&self) -> &str {
        &self.bootargs
    }

    /// Writes the boot summary into `out`, one line per [`SummaryLine`], each ended by a
    /// newline (the same text as `Display`).
    pub fn write_summary<W: core::fmt::Write + ?Sized>(&self, out: &mut W) -> core::fmt::Result {
        for line in self.summary() {
            writeln!(out, "{line}")?;
        }
        Ok(())
    }

    /// The boot summary, one line at a time (see [`SummaryLine`]); `Display` on the machine
    /// writes the same lines separated by newlines.
    pub fn summary(&self) -> Summary<'_> {
        Summary::new(self)
    }
}

impl core::fmt::Display for Machine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.write_summary(f)
    }
}
