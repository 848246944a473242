//! Host tests of the device-tree reader (`tcefw::devtree`) and the machine description it
//! feeds (`tcefw::platform::machine`).
//!
//! - The five fixture blobs decoded field by field. Expected values were worked out by hand
//!   from the `.dts` listings next to the fixtures (tests/fixtures): for example
//!   `reg = <0x3fc00 0x00 0x08 0x00>` under a root with 2+2 cells is base 0x3fc00_0000_0000,
//!   size 0x8_0000_0000.
//! - Free-memory arithmetic at its edges, and against a byte-map model.
//! - Broken trees, each an error and never a panic: the fixtures truncated at every length,
//!   patched headers, and trees made by the library's FDT writer with one thing wrong.
//! - A mutation run: thousands of deterministic corruptions per fixture under `catch_unwind`.
//!
//! Resources: Devicetree Specification v0.4, chapter 5 (the writer emits that layout);
//! skiboot core/init.c (`fdt_set_boot_cpuid_phys` with the boot thread's PIR; QEMU never
//! sets it) and hw/phb3.c (`phb3_add_properties`); QEMU hw/ppc/pnv.c and pnv_phb3_pbcq.c.

use std::panic::{catch_unwind, AssertUnwindSafe};
use tcefw::devtree::flat::{FDT_BEGIN_NODE, FDT_END, FDT_END_NODE, FDT_PROP};
use tcefw::devtree::writer::{assemble, cells, text_list, write_blocks, Node};
use tcefw::devtree::{
    blob_size, merge_spans, subtract_spans, DevTreeError, ExpectedLength, HeaderError, MemRange,
    PropertyError, Span, StructureError,
};
use tcefw::platform::machine::{
    LpcRange, LpcSpace, Machine, Opal, PcbRange, PciSpace, Reserved, ReservedSources,
};

const QEMU72: &[u8] = include_bytes!("fixtures/qemu72-powernv8.dtb");
const QEMU72_SMP4: &[u8] = include_bytes!("fixtures/qemu72-powernv8-2G-smp4.dtb");
const QEMU10: &[u8] = include_bytes!("fixtures/qemu10-powernv8.dtb");
const SKIBOOT: &[u8] = include_bytes!("fixtures/skiboot-powernv8-default.dtb");
const SKIBOOT_EDU: &[u8] = include_bytes!("fixtures/skiboot-powernv8-edu.dtb");

const FIXTURES: [(&str, &[u8]); 5] = [
    ("qemu72-powernv8", QEMU72),
    ("qemu72-powernv8-2G-smp4", QEMU72_SMP4),
    ("qemu10-powernv8", QEMU10),
    ("skiboot-powernv8-default", SKIBOOT),
    ("skiboot-powernv8-edu", SKIBOOT_EDU),
];

const GIB: u64 = 1 << 30;

fn parse(blob: &[u8]) -> Machine {
    match Machine::parse(blob) {
        Ok(machine) => machine,
        Err(error) => panic!("parse failed: {error}"),
    }
}

fn parse_err(blob: &[u8]) -> DevTreeError {
    match Machine::parse(blob) {
        Ok(machine) => panic!("expected an error, parsed {machine:?}"),
        Err(error) => error,
    }
}

// ---------------------------------------------------------------------------------------
// Trees written with the library's FDT writer (`tcefw::devtree::writer`), and the header
// fields the tests patch.
// ---------------------------------------------------------------------------------------

/// Header field indexes (each a big-endian u32).
const H_MAGIC: usize = 0;
const H_TOTALSIZE: usize = 1;
const H_OFF_STRUCT: usize = 2;
const H_OFF_STRINGS: usize = 3;
const H_OFF_RSVMAP: usize = 4;
const H_VERSION: usize = 5;
const H_LAST_COMP: usize = 6;
const H_SIZE_STRINGS: usize = 8;
const H_SIZE_STRUCT: usize = 9;

/// `node.at(path)`: the node a test breaks, which must exist in the test tree.
trait At {
    fn at(&mut self, path: &str) -> &mut Node;
}

impl At for Node {
    fn at(&mut self, path: &str) -> &mut Node {
        self.node_mut(path)
            .unwrap_or_else(|| panic!("no node {path} in the test tree"))
    }
}

fn build(root: &Node) -> Vec<u8> {
    root.to_blob(&[], 8)
}

fn header_field(blob: &[u8], index: usize) -> u32 {
    u32::from_be_bytes(blob[index * 4..index * 4 + 4].try_into().unwrap())
}

fn set_header_field(blob: &mut [u8], index: usize, value: u32) {
    blob[index * 4..index * 4 + 4].copy_from_slice(&value.to_be_bytes());
}

/// A small but complete POWER8 tree in QEMU's shape: 1 GiB, one core with four threads on
/// chip 0, XSCOM with LPC (UART, BT) and one PBCQ, and `/chosen`.
fn test_tree() -> Node {
    Node::new("")
        .cells("#address-cells", &[2])
        .cells("#size-cells", &[2])
        .text("model", "Test PowerNV")
        .prop("compatible", text_list(&["test,powernv8", "ibm,powernv"]))
        .child(
            Node::new("memory@0")
                .text("device_type", "memory")
                .cells("reg", &[0, 0, 0, 0x4000_0000]),
        )
        .child(
            Node::new("cpus")
                .cells("#address-cells", &[1])
                .cells("#size-cells", &[0])
                .child(
                    Node::new("cpu@8")
                        .text("device_type", "cpu")
                        .cells("reg", &[8])
                        .cells("ibm,ppc-interrupt-server#s", &[8, 9, 10, 11])
                        .cells("ibm,chip-id", &[0]),
                ),
        )
        .child(
            Node::new("xscom@3fc0000000000")
                .prop("compatible", text_list(&["ibm,power8-xscom", "ibm,xscom"]))
                .cells("ibm,chip-id", &[0])
                .cells("reg", &[0x3fc00, 0, 8, 0])
                .cells("#address-cells", &[1])
                .cells("#size-cells", &[1])
                .child(
                    Node::new("isa@b0020")
                        .text("compatible", "ibm,power8-lpc")
                        .cells("reg", &[0xb0020, 4])
                        .cells("#address-cells", &[2])
                        .cells("#size-cells", &[1])
                        .child(
                            Node::new("serial@i3f8")
                                .text("compatible", "ns16550")
                                .cells("reg", &[1, 0x3f8, 8]),
                        )
                        .child(
                            Node::new("bt@ie4")
                                .prop("compatible", text_list(&["bt", "ipmi-bt"]))
                                .cells("reg", &[1, 0xe4, 3]),
                        ),
                )
                .child(
                    Node::new("pbcq@2012000")
                        .text("compatible", "ibm,power8-pbcq")
                        .cells("ibm,phb-index", &[0])
                        .cells("reg", &[0x2012000, 0x46, 0x9012000, 0x15, 0x9013c00, 0x05]),
                ),
        )
        .child(Node::new("chosen").text("bootargs", "console=hvc0"))
}

// ---------------------------------------------------------------------------------------
// The fixtures.
// ---------------------------------------------------------------------------------------

/// What QEMU 7.2's default powernv8 tree says (qemu72-powernv8.dts).
fn check_qemu_default(machine: &Machine) {
    assert_eq!(
        machine.model.as_deref(),
        Some("IBM PowerNV (emulated by qemu)")
    );
    assert_eq!(
        machine.compatible,
        ["qemu,powernv8", "qemu,powernv", "ibm,powernv"]
    );
    // memory@0: reg = <0x00 0x00 0x00 0x40000000>.
    assert_eq!(machine.memory, [MemRange::new(0, GIB)]);
    assert_eq!(machine.total_ram(), GIB);
    assert_eq!(machine.ram_top(), GIB);
    // No /memreserve/, no reserved-ranges, no /reserved-memory.
    assert!(machine.reserved.is_empty());
    // PowerPC,POWER8@8: reg = <0x08>, ibm,ppc-interrupt-server#s = <0x08>, ibm,chip-id = <0>.
    assert_eq!(machine.cpus.len(), 1);
    assert_eq!(machine.cpus[0].pir, 0x8);
    assert_eq!(machine.cpus[0].threads, [0x8]);
    assert_eq!(machine.cpus[0].chip_id, Some(0));
    assert!(machine.cpus[0].available);
    // QEMU never sets boot_cpuid_phys: it stays 0, which is no CPU's PIR.
    assert_eq!(machine.boot_cpuid_phys, 0);
    assert!(machine.boot_cpu().is_none());

    // xscom@3fc0000000000: reg = <0x3fc00 0x00 0x08 0x00>, ibm,chip-id = <0>, primary.
    assert_eq!(machine.chips.len(), 1);
    let chip = &machine.chips[0];
    assert_eq!(chip.chip_id, 0);
    assert_eq!(chip.xscom, MemRange::new(0x3_fc00_0000_0000, 0x8_0000_0000));
    assert!(chip.primary);
    // isa@b0020: reg = <0xb0020 0x04> in the xscom's 1+1 cells.
    let lpc = chip.lpc.as_ref().expect("LPC node");
    assert_eq!(
        lpc.pcb,
        PcbRange {
            base: 0xb0020,
            size: 4
        }
    );
    assert!(lpc.primary);
    // isa-serial@i3f8: reg = <0x01 0x3f8 0x08>, clock-frequency 0x1c2000, current-speed 0x1c200.
    assert_eq!(lpc.uarts.len(), 1);
    let uart = &lpc.uarts[0];
    assert_eq!(
        uart.reg,
        LpcRange {
            space: LpcSpace::Io,
            address: 0x3f8,
            size: 8
        }
    );
    assert_eq!(uart.reg.io_port(), Some(0x3f8));
    assert_eq!(uart.clock_frequency, Some(1_843_200));
    assert_eq!(uart.current_speed, Some(115_200));
    assert!(uart.available);
    // isa-ipmi-bt@ie4: reg = <0x01 0xe4 0x03>.
    assert_eq!(
        lpc.ipmi_bt,
        Some(LpcRange {
            space: LpcSpace::Io,
            address: 0xe4,
            size: 3
        })
    );
    assert_eq!(machine.primary_uart(), Some(uart));
    // Everything bare-mode firmware needs for its console: XSCOM base, ECCB pcb, port.
    assert_eq!(
        machine.console_uart(),
        Some((0x3_fc00_0000_0000, 0xb0020, 0x3f8))
    );
    // timebase-frequency = <0x1e848000>.
    assert_eq!(machine.cpus[0].timebase_frequency, Some(512_000_000));
    assert_eq!(machine.timebase_hz(), Some(512_000_000));

    // pbcq@2012000/400/800: reg = <nest 0x46 pci 0x15 spci 0x05>, phb-index 0..2.
    assert_eq!(machine.pbcqs.len(), 3);
    for (index, pbcq) in machine.pbcqs.iter().enumerate() {
        let i = index as u64;
        assert_eq!(pbcq.chip_id, 0);
        assert_eq!(pbcq.phb_index, index as u32);
        assert_eq!(
            pbcq.nest,
            PcbRange {
                base: 0x2012000 + 0x400 * i,
                size: 0x46
            }
        );
        assert_eq!(
            pbcq.pci,
            PcbRange {
                base: 0x9012000 + 0x400 * i,
                size: 0x15
            }
        );
        assert_eq!(
            pbcq.spci,
            PcbRange {
                base: 0x9013c00 + 0x40 * i,
                size: 0x05
            }
        );
    }

    assert!(machine.pciex.is_empty());
    assert!(machine.opal.is_none());
    assert!(!machine.is_opal_payload());
    // chosen: bootargs = [00].
    assert_eq!(machine.bootargs, "");
    assert_eq!(machine.stdout_path, None);
}

#[test]
fn qemu72_default_tree() {
    let machine = parse(QEMU72);
    check_qemu_default(&machine);
    assert_eq!(machine.fdt_size, 3230);
}

#[test]
fn qemu10_tree_reads_like_qemu72() {
    // The two differ only in the cpu node's ibm,pa-features, which the reader ignores.
    let machine = parse(QEMU10);
    check_qemu_default(&machine);
    assert_eq!(machine, parse(QEMU72));
}

#[test]
fn qemu72_2g_smp4_tree() {
    let machine = parse(QEMU72_SMP4);
    assert_eq!(machine.memory, [MemRange::new(0, 2 * GIB)]);
    assert_eq!(machine.total_ram(), 2 * GIB);
    // PowerPC,POWER8@8, @20, @18, @10 (tree order), one thread each, sorted by PIR.
    let pirs: Vec<u32> = machine.cpus.iter().map(|cpu| cpu.pir).collect();
    assert_eq!(pirs, [0x8, 0x10, 0x18, 0x20]);
    for cpu in &machine.cpus {
        assert_eq!(cpu.threads, [cpu.pir]);
        assert_eq!(cpu.chip_id, Some(0));
    }
    assert_eq!(machine.chips.len(), 1);
    assert_eq!(machine.pbcqs.len(), 3);
    assert_eq!(machine.fdt_size, 5498);
}

/// The seven ranges of skiboot-powernv8-default.dts, with their reserved-names.
const SKIBOOT_RESERVED: [(u64, u64, &str); 7] = [
    (0x3000_0000, 0x60_0000, "ibm,firmware-code@30000000"),
    (0x3060_0000, 0xa0_0000, "ibm,firmware-heap@30600000"),
    (0x3100_0000, 0xc1_0000, "ibm,firmware-data@31000000"),
    (0x31c1_0000, 0x8_0000, "ibm,firmware-stacks@31c10000"),
    (
        0x31c9_0000,
        0x33_0000,
        "ibm,firmware-allocs-memory@31c90000",
    ),
    (0x7f_fd80_0000, 0x40_0000, "ibm,homer-image@7ffd800000"),
    (0x7f_ff80_0000, 0x80_0000, "ibm,occ-common-area@7fff800000"),
];

fn check_skiboot(machine: &Machine) {
    assert_eq!(
        machine.model.as_deref(),
        Some("IBM PowerNV (emulated by qemu)")
    );
    assert_eq!(machine.memory, [MemRange::new(0, GIB)]);
    assert!(machine.is_opal_payload());
    let opal = machine.opal.expect("/ibm,opal");
    assert_eq!(opal.base, 0x3000_0000);
    assert_eq!(opal.entry, 0x3000_3760);
    assert_eq!(opal.runtime_size, 0x1c9_0000);

    // Each range is in /memreserve/, reserved-ranges and /reserved-memory: listed once.
    let expected: Vec<Reserved> = SKIBOOT_RESERVED
        .iter()
        .map(|&(base, size, name)| Reserved {
            range: MemRange::new(base, size),
            name: Some(name.into()),
            sources: ReservedSources {
                header_block: true,
                reserved_ranges: true,
                reserved_memory: true,
            },
        })
        .collect();
    assert_eq!(machine.reserved, expected);

    // skiboot stores the boot thread's PIR in the header.
    assert_eq!(machine.boot_cpuid_phys, 8);
    assert_eq!(machine.boot_cpu().map(|cpu| cpu.pir), Some(8));
    // ibm,powerpc-cpu-features sits under /cpus too but is no CPU.
    assert_eq!(machine.cpus.len(), 1);

    assert_eq!(
        machine.stdout_path.as_deref(),
        Some("/ibm,opal/consoles/serial@0")
    );
    assert_eq!(machine.bootargs, "");

    // skiboot keeps QEMU's xscom subtree, so the PBCQs are there as well.
    assert_eq!(machine.pbcqs.len(), 3);
    // ...and its UART is status = "reserved": OPAL owns it.
    let uart = machine.primary_uart().expect("UART");
    assert_eq!(uart.reg.io_port(), Some(0x3f8));
    assert!(!uart.available);

    // pciex@3fffe40000000/100000/200000.
    assert_eq!(machine.pciex.len(), 3);
    let m32_cpu = [0x3_ff80_0000_0000, 0x3_ff80_8000_0000, 0x3_ff81_0000_0000];
    for (index, phb) in machine.pciex.iter().enumerate() {
        let i = index as u64;
        let regs = 0x3_fffe_4000_0000 + 0x10_0000 * i;
        // reg = <0x3fffe 0x4NN00000 0x00 0x1000>.
        assert_eq!(phb.regs, MemRange::new(regs, 0x1000));
        assert!(phb.ioda2);
        // ibm,opal-phbid = <0x00 i>, ibm,chip-id = <0>, ibm,phb-index = <i>.
        assert_eq!(phb.opal_phbid, Some(i));
        assert_eq!(phb.chip_id, Some(0));
        assert_eq!(phb.phb_index, Some(index as u32));
        // ranges = <0x2000000 0x00 0x80000000 hi lo 0x00 0x7fff0000>.
        assert_eq!(phb.windows.len(), 1);
        let m32 = phb.m32_window().expect("M32 window");
        assert_eq!(m32.space, PciSpace::Mem32);
        assert!(!m32.prefetchable);
        assert_eq!(m32.pci_address, 0x8000_0000);
        assert_eq!(m32.cpu_address, m32_cpu[index]);
        assert_eq!(m32.size, 0x7fff_0000);
        // ibm,opal-m64-window = <0x3d0N0 0 0x3d0N0 0 0x10 0>: PCI = CPU address, 64 GiB.
        let m64 = phb.m64_window.expect("M64 window");
        assert_eq!(m64.pci_address, 0x3_d000_0000_0000 + 0x10_0000_0000 * i);
        assert_eq!(m64.cpu_address, m64.pci_address);
        assert_eq!(m64.size, 64 * GIB);
        // ibm,opal-tce-kill = regs + 0x210; sizes <0x0c 0x10 0x18 0x1c>.
        assert_eq!(phb.tce_kill, Some(regs + 0x210));
        assert_eq!(phb.tce_page_shifts.as_deref(), Some(&[12, 16, 24, 28][..]));
        assert_eq!(phb.num_pes, Some(256));
        assert_eq!(phb.reserved_pe, Some(255));
    }
}

#[test]
fn skiboot_default_tree() {
    let machine = parse(SKIBOOT);
    check_skiboot(&machine);
    assert_eq!(machine.fdt_size, 17769);
}

#[test]
fn skiboot_edu_tree_differs_only_in_size() {
    // The edu and e1000e nodes sit below the root ports, which the reader does not walk.
    let mut machine = parse(SKIBOOT_EDU);
    check_skiboot(&machine);
    assert_eq!(machine.fdt_size, 18137);
    machine.fdt_size = 17769;
    assert_eq!(machine, parse(SKIBOOT));
}

#[test]
fn skiboot_free_ranges_skip_opal() {
    let machine = parse(SKIBOOT);
    // The five firmware ranges are back to back from 0x30000000 to 0x31fc0000; HOMER and the
    // OCC area lie above RAM and cut nothing.
    assert_eq!(
        machine.free_ranges(&[]),
        [(0, 0x3000_0000), (0x31fc_0000, GIB)]
    );
    // The blob and an image at 0 come out as well.
    let fdt = (0x3078_eb18, 0x3078_eb18 + u64::from(machine.fdt_size));
    assert_eq!(
        machine.free_ranges(&[(0, 0x20_0000), fdt]),
        [(0x20_0000, 0x3000_0000), (0x31fc_0000, GIB)]
    );
}

#[test]
fn blob_size_from_header_alone() {
    assert_eq!(blob_size(&QEMU72[..40]), Ok(3230));
    assert_eq!(blob_size(SKIBOOT), Ok(17769));
    assert_eq!(
        blob_size(&QEMU72[..39]),
        Err(DevTreeError::Header(HeaderError::TooShort { len: 39 }))
    );
    let mut header = QEMU72[..40].to_vec();
    header[0] = 0;
    assert!(matches!(
        blob_size(&header),
        Err(DevTreeError::Header(HeaderError::BadMagic { .. }))
    ));
}

// ---------------------------------------------------------------------------------------
// The boot summary.
// ---------------------------------------------------------------------------------------

#[test]
fn qemu72_summary_lines() {
    let machine = parse(QEMU72);
    let lines: Vec<String> = machine.summary().map(|line| line.to_string()).collect();
    assert_eq!(
        lines,
        [
            "DT: model IBM PowerNV (emulated by qemu) (qemu,powernv8)",
            "OPAL: none, bare metal",
            "MEM: 0x0000000000000000..0x000000003fffffff 1 GiB",
            "MEM: total 1 GiB, top 0x40000000",
            "CPU: PIR 0x0008 chip 0 threads 1",
            "XSCOM: chip 0 at 0x3fc0000000000 size 0x800000000 (primary)",
            "LPC: chip 0 pcb 0xb0020, UART io 0x3f8, BT io 0xe4",
            "PBCQ: chip 0 PHB0 nest 0x2012000 pci 0x9012000 spci 0x9013c00",
            "PBCQ: chip 0 PHB1 nest 0x2012400 pci 0x9012400 spci 0x9013c40",
            "PBCQ: chip 0 PHB2 nest 0x2012800 pci 0x9012800 spci 0x9013c80",
        ]
    );
    // Display writes the same lines.
    let mut expected = lines.join("\n");
    expected.push('\n');
    assert_eq!(machine.to_string(), expected);
    let mut written = String::new();
    machine.write_summary(&mut written).unwrap();
    assert_eq!(written, expected);
}

#[test]
fn skiboot_summary_lines() {
    let machine = parse(SKIBOOT);
    let lines: Vec<String> = machine.summary().map(|line| line.to_string()).collect();
    for line in [
        "OPAL: payload mode, base 0x30000000 entry 0x30003760 size 0x1c90000",
        "RSV: 0x0000000030000000..0x00000000305fffff ibm,firmware-code@30000000",
        "CPU: PIR 0x0008 chip 0 threads 1 (boot)",
        "LPC: chip 0 pcb 0xb0020, UART io 0x3f8 (reserved), BT io 0xe4",
        "PHB#0000[0:0]: regs 0x3fffe40000000 PEs 256 reserved PE 255",
        "PHB#0000[0:0]: M32 0x3ff8000000000 -> pci 0x80000000 size 0x7fff0000",
        "PHB#0002[0:2]: M32 0x3ff8100000000 -> pci 0x80000000 size 0x7fff0000",
    ] {
        assert!(
            lines.iter().any(|l| l == line),
            "missing {line:?} in {lines:#?}"
        );
    }
    assert_eq!(lines.iter().filter(|l| l.starts_with("RSV: ")).count(), 7);
    assert_eq!(lines.iter().filter(|l| l.starts_with("PHB#")).count(), 6);
}

#[test]
fn summary_lines_stay_short() {
    for (name, blob) in FIXTURES {
        for line in parse(blob).summary() {
            let line = line.to_string();
            assert!(
                line.len() <= 80,
                "{name}: {line:?} is {} characters",
                line.len()
            );
        }
    }
    // An empty machine still summarises without trouble.
    assert!(Machine::default()
        .to_string()
        .contains("MEM: total 0x0 bytes"));
}

// ---------------------------------------------------------------------------------------
// Free memory.
// ---------------------------------------------------------------------------------------

fn machine_with(memory: &[(u64, u64)], reserved: &[(u64, u64)]) -> Machine {
    Machine {
        memory: memory
            .iter()
            .map(|&(base, size)| MemRange::new(base, size))
            .collect(),
        reserved: reserved
            .iter()
            .map(|&(base, size)| Reserved {
                range: MemRange::new(base, size),
                ..Default::default()
            })
            .collect(),
        ..Machine::default()
    }
}

#[test]
fn free_ranges_edges() {
    // RAM 0x1000..0x5000 and 0x8000..0x9000; 0x2000..0x2100 reserved.
    let machine = machine_with(&[(0x1000, 0x4000), (0x8000, 0x1000)], &[(0x2000, 0x100)]);
    let base = [(0x1000, 0x2000), (0x2100, 0x5000), (0x8000, 0x9000)];
    assert_eq!(machine.free_ranges(&[]), base);
    // At the start of a range, at its end, and the whole of one.
    assert_eq!(
        machine.free_ranges(&[(0x1000, 0x1800)]),
        [(0x1800, 0x2000), (0x2100, 0x5000), (0x8000, 0x9000)]
    );
    assert_eq!(
        machine.free_ranges(&[(0x4f00, 0x5000)]),
        [(0x1000, 0x2000), (0x2100, 0x4f00), (0x8000, 0x9000)]
    );
    assert_eq!(machine.free_ranges(&[(0x8000, 0x9000)]), base[..2]);
    // Overlapping an edge from outside, spanning two ranges, overlapping the reservation.
    assert_eq!(
        machine.free_ranges(&[(0, 0x1001)]),
        [(0x1001, 0x2000), (0x2100, 0x5000), (0x8000, 0x9000)]
    );
    assert_eq!(
        machine.free_ranges(&[(0x4000, 0x8800)]),
        [(0x1000, 0x2000), (0x2100, 0x4000), (0x8800, 0x9000)]
    );
    assert_eq!(
        machine.free_ranges(&[(0x1f00, 0x2200)]),
        [(0x1000, 0x1f00), (0x2200, 0x5000), (0x8000, 0x9000)]
    );
    // Exclusions that touch each other, overlap each other, or come in any order.
    assert_eq!(
        machine.free_ranges(&[(0x3000, 0x3100), (0x2100, 0x3000), (0x3080, 0x3200)]),
        [(0x1000, 0x2000), (0x3200, 0x5000), (0x8000, 0x9000)]
    );
    // Outside RAM, empty or inverted: no effect.
    assert_eq!(
        machine.free_ranges(&[(0x6000, 0x7000), (0x3000, 0x3000), (0x4000, 0x3000)]),
        base
    );
    assert_eq!(machine.free_ranges(&[(u64::MAX - 1, u64::MAX)]), base);
    // Everything.
    assert!(machine.free_ranges(&[(0, u64::MAX)]).is_empty());
}

#[test]
fn free_ranges_keep_out_opal_runtime() {
    // Even when a tree does not list OPAL's runtime among its reserved ranges.
    let mut machine = machine_with(&[(0, GIB)], &[]);
    machine.opal = Some(Opal {
        base: 0x3000_0000,
        entry: 0x3000_3760,
        runtime_size: 0x1c9_0000,
    });
    assert_eq!(
        machine.free_ranges(&[]),
        [(0, 0x3000_0000), (0x31c9_0000, GIB)]
    );
}

#[test]
fn memory_helpers() {
    let machine = machine_with(&[(0x1000, 0x1000), (0x10_0000, 0x2000)], &[]);
    assert_eq!(machine.total_ram(), 0x3000);
    assert_eq!(machine.ram_top(), 0x10_2000);
    assert_eq!(Machine::default().ram_top(), 0);
    assert_eq!(Machine::default().total_ram(), 0);
    // A hand-made range that would wrap saturates instead of overflowing.
    assert_eq!(MemRange::new(u64::MAX - 1, 10).end(), u64::MAX);
}

#[test]
fn memory_nodes_are_merged_and_sorted() {
    let mut tree = test_tree();
    // Two nodes, out of order, one range overlapping and one touching the first node's.
    tree.at("memory@0").set(
        "reg",
        cells(&[0, 0x8000_0000, 0, 0x1000_0000, 0, 0, 0, 0x4000_0000]),
    );
    tree.insert_child(
        1,
        Node::new("memory@40000000")
            .text("device_type", "memory")
            .cells("reg", &[0, 0x3000_0000, 0, 0x2000_0000, 1, 0, 0, 0]),
    );
    let machine = parse(&build(&tree));
    assert_eq!(
        machine.memory,
        [
            MemRange::new(0, 0x5000_0000),
            MemRange::new(0x8000_0000, 0x1000_0000)
        ]
    );
    assert_eq!(machine.total_ram(), 0x6000_0000);
}

/// A tiny deterministic generator (xorshift64*), so every run tries the same cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn span_arithmetic_matches_a_byte_map() {
    // On a 256-byte universe, compare merge/subtract with a bitmap of which bytes are kept.
    let mut rng = Rng(0x5eed);
    for _ in 0..3000 {
        let mut spans = |count: u64| -> Vec<Span> {
            (0..rng.below(count))
                .map(|_| {
                    let start = rng.below(256);
                    (start, start + rng.below(64))
                })
                .collect()
        };
        let from = spans(5);
        let cuts = spans(6);
        let mut map = [false; 320];
        for &(start, end) in &from {
            (start..end).for_each(|b| map[b as usize] = true);
        }
        let merged = merge_spans(from.iter().copied());
        let mut merged_map = [false; 320];
        for &(start, end) in &merged {
            (start..end).for_each(|b| merged_map[b as usize] = true);
        }
        assert_eq!(map, merged_map, "merge of {from:?}");
        for &(start, end) in &cuts {
            (start..end).for_each(|b| map[b as usize] = false);
        }
        let free = subtract_spans(&from, &cuts);
        let mut free_map = [false; 320];
        for &(start, end) in &free {
            assert!(start < end, "empty span in {free:?}");
            (start..end).for_each(|b| free_map[b as usize] = true);
        }
        assert_eq!(map, free_map, "{from:?} minus {cuts:?} gave {free:?}");
        // Sorted, and neither overlapping nor touching (else they would have been merged).
        assert!(merged.windows(2).all(|w| w[0].1 < w[1].0), "{merged:?}");
        assert!(free.windows(2).all(|w| w[0].1 < w[1].0), "{free:?}");
    }
}

// ---------------------------------------------------------------------------------------
// The writer's trees, good and bad.
// ---------------------------------------------------------------------------------------

#[test]
fn written_tree_reads_back() {
    let (structure, strings) = write_blocks(&test_tree(), false);
    let machine = parse(&assemble(
        &structure,
        &strings,
        &[(0x2000_0000, 0x10_0000)],
        8,
    ));
    assert_eq!(machine.model.as_deref(), Some("Test PowerNV"));
    assert_eq!(machine.memory, [MemRange::new(0, GIB)]);
    assert_eq!(machine.reserved.len(), 1);
    assert_eq!(
        machine.reserved[0].range,
        MemRange::new(0x2000_0000, 0x10_0000)
    );
    assert!(machine.reserved[0].sources.header_block);
    assert_eq!(machine.cpus[0].threads, [8, 9, 10, 11]);
    assert_eq!(machine.boot_cpu().map(|cpu| cpu.pir), Some(8));
    assert_eq!(
        machine.pbcqs[0].chip_id, 0,
        "chip id inherited from the xscom node"
    );
    assert_eq!(machine.bootargs(), "console=hvc0");
    // The test tree gives no timebase-frequency at all.
    assert_eq!(machine.timebase_hz(), None);
    assert!(machine.to_string().contains("CMDLINE: console=hvc0"));
}

#[test]
fn nops_anywhere_change_nothing() {
    // The fdt crate's walker stops early (or asserts) on NOPs between properties and
    // children; the spec allows them wherever a token may be.
    let (plain_struct, strings) = write_blocks(&test_tree(), false);
    let (nop_struct, nop_strings) = write_blocks(&test_tree(), true);
    assert_eq!(strings, nop_strings);
    let plain = parse(&assemble(&plain_struct, &strings, &[], 8));
    let with_nops = parse(&assemble(&nop_struct, &strings, &[], 8));
    assert_eq!(
        with_nops.fdt_size - plain.fdt_size,
        nop_struct.len() as u32 - plain_struct.len() as u32
    );
    assert_eq!(
        Machine {
            fdt_size: 0,
            ..with_nops
        },
        Machine {
            fdt_size: 0,
            ..plain
        }
    );
}

#[test]
fn cpu_without_interrupt_servers_has_one_thread() {
    let mut tree = test_tree();
    tree.at("cpus/cpu@8").remove("ibm,ppc-interrupt-server#s");
    tree.at("cpus/cpu@8").remove("ibm,chip-id");
    let machine = parse(&build(&tree));
    assert_eq!(machine.cpus[0].threads, [8]);
    assert_eq!(machine.cpus[0].chip_id, None);
}

#[test]
fn timebase_from_cpus_node() {
    // The spec lets /cpus carry timebase-frequency for all its CPUs; 8 bytes is two cells.
    let mut tree = test_tree();
    tree.at("cpus")
        .set("timebase-frequency", cells(&[0, 512_000_000]));
    assert_eq!(parse(&build(&tree)).timebase_hz(), Some(512_000_000));
    tree.at("cpus/cpu@8")
        .set("timebase-frequency", cells(&[100_000_000]));
    assert_eq!(parse(&build(&tree)).timebase_hz(), Some(100_000_000));
}

#[test]
fn disabled_memory_node_is_skipped() {
    let mut tree = test_tree();
    tree.insert_child(
        1,
        Node::new("memory@80000000")
            .text("device_type", "memory")
            .text("status", "disabled")
            .cells("reg", &[0, 0x8000_0000, 0, 0x1000_0000]),
    );
    assert_eq!(parse(&build(&tree)).memory, [MemRange::new(0, GIB)]);
}

#[test]
fn error_messages_name_node_and_property() {
    let mut tree = test_tree();
    tree.at("cpus/cpu@8").remove("reg");
    let error = parse_err(&build(&tree));
    assert_eq!(
        error.to_string(),
        "node /cpus/cpu@8: property reg is missing"
    );

    let mut tree = test_tree();
    tree.at("memory@0").set("reg", cells(&[0, 0, 0]));
    assert_eq!(
        parse_err(&build(&tree)).to_string(),
        "node /memory@0: property reg: 12 bytes long, expected a non-zero multiple of 16"
    );
}

fn bad_property(node: &str, property: &'static str, problem: PropertyError) -> DevTreeError {
    DevTreeError::BadProperty {
        node: node.into(),
        property,
        problem,
    }
}

/// Applies `break_it` to the test tree and returns the reader's error.
fn broken(break_it: impl FnOnce(&mut Node)) -> DevTreeError {
    let mut tree = test_tree();
    break_it(&mut tree);
    let error = parse_err(&build(&tree));
    // Every error renders to a message.
    assert!(!error.to_string().is_empty());
    error
}

const XSCOM: &str = "xscom@3fc0000000000";
const PBCQ: &str = "xscom@3fc0000000000/pbcq@2012000";
const LPC: &str = "xscom@3fc0000000000/isa@b0020";
const SERIAL: &str = "xscom@3fc0000000000/isa@b0020/serial@i3f8";

/// A way to break the test tree.
type Breakage = fn(&mut Node);

#[test]
fn missing_nodes() {
    let cases: [(Breakage, &str); 4] = [
        (|t| t.remove_child("cpus"), "/cpus"),
        (|t| t.at("cpus").remove_child("cpu@8"), "cpu "),
        (|t| t.remove_child("memory@0"), "memory "),
        // A memory node whose only range is empty is no RAM either.
        (
            |t| t.at("memory@0").set("reg", cells(&[0, 0, 0, 0])),
            "memory ",
        ),
    ];
    for (break_it, what) in cases {
        match broken(break_it) {
            DevTreeError::MissingNode { what: found } => assert!(found.starts_with(what)),
            other => panic!("expected no {what} node, got {other:?}"),
        }
    }
}

#[test]
fn missing_essential_properties() {
    let serial = "/xscom@3fc0000000000/isa@b0020/serial@i3f8";
    let pbcq = "/xscom@3fc0000000000/pbcq@2012000";
    let cases: [(Breakage, &str, &str); 9] = [
        (|t| t.at("memory@0").remove("reg"), "/memory@0", "reg"),
        (|t| t.at("cpus/cpu@8").remove("reg"), "/cpus/cpu@8", "reg"),
        (|t| t.at(PBCQ).remove("reg"), pbcq, "reg"),
        (
            |t| t.at(PBCQ).remove("ibm,phb-index"),
            pbcq,
            "ibm,phb-index",
        ),
        (
            |t| t.at(XSCOM).remove("ibm,chip-id"),
            "/xscom@3fc0000000000",
            "ibm,chip-id",
        ),
        (|t| t.at(XSCOM).remove("reg"), "/xscom@3fc0000000000", "reg"),
        (|t| t.at(SERIAL).remove("reg"), serial, "reg"),
        // /ibm,opal without its entry point cannot be called.
        (
            |t| {
                t.add_child(
                    Node::new("ibm,opal")
                        .cells("opal-base-address", &[0, 0x3000_0000])
                        .cells("opal-runtime-size", &[0, 0x100_0000]),
                )
            },
            "/ibm,opal",
            "opal-entry-address",
        ),
        (
            |t| t.add_child(Node::new("pciex@0").text("compatible", "ibm,power8-pciex")),
            "/pciex@0",
            "reg",
        ),
    ];
    for (break_it, node, property) in cases {
        match broken(break_it) {
            DevTreeError::MissingProperty {
                node: found,
                property: name,
            } => {
                assert_eq!((found.as_str(), name), (node, property));
            }
            other => panic!("expected {node} to lack {property}, got {other:?}"),
        }
    }
}

#[test]
fn unsupported_cell_sizes() {
    let unsupported = |address_cells, size_cells| PropertyError::UnsupportedCells {
        address_cells,
        size_cells,
    };
    // The root's cells apply first to the memory node's reg: addresses need 1 or 2 cells...
    for cells_count in [0, 3, 4, 0xffff_ffff] {
        let mut tree = test_tree();
        tree.set("#address-cells", cells(&[cells_count]));
        let expected = bad_property("/memory@0", "reg", unsupported(cells_count, 2));
        assert_eq!(parse_err(&build(&tree)), expected);
    }
    // ...and memory needs sizes of 1 or 2 cells.
    for cells_count in [0, 3] {
        let mut tree = test_tree();
        tree.set("#size-cells", cells(&[cells_count]));
        let expected = bad_property("/memory@0", "reg", unsupported(2, cells_count));
        assert_eq!(parse_err(&build(&tree)), expected);
    }
    assert_eq!(
        broken(|t| t.at("cpus").set("#address-cells", cells(&[0]))),
        bad_property("/cpus/cpu@8", "reg", unsupported(0, 0))
    );
    assert_eq!(
        broken(|t| t.at(XSCOM).set("#address-cells", cells(&[3]))),
        bad_property("/xscom@3fc0000000000/isa@b0020", "reg", unsupported(3, 1))
    );
    // LPC children need <space address size>.
    let expected = PropertyError::Value {
        value: 1,
        expected: "2 (LPC space, address)",
    };
    assert_eq!(
        broken(|t| t.at(LPC).set("#address-cells", cells(&[1]))),
        bad_property("/xscom@3fc0000000000/isa@b0020", "#address-cells", expected)
    );
    // A cell count that is not one cell long.
    let expected = PropertyError::Length {
        len: 2,
        expected: ExpectedLength::Exactly(4),
    };
    assert_eq!(
        broken(|t| t.at("cpus").set("#address-cells", vec![0, 1])),
        bad_property("/cpus", "#address-cells", expected)
    );
}

#[test]
fn odd_property_lengths() {
    use ExpectedLength::{Exactly, MultipleOf, OneOrTwoCells};
    // reg not a non-zero multiple of the entry size (root 2+2 cells: 16 bytes).
    for len in [0, 1, 4, 12, 17, 20] {
        let mut tree = test_tree();
        tree.at("memory@0").set("reg", vec![0; len]);
        let expected = PropertyError::Length {
            len,
            expected: MultipleOf(16),
        };
        assert_eq!(
            parse_err(&build(&tree)),
            bad_property("/memory@0", "reg", expected)
        );
    }
    let opal_base_too_long = |t: &mut Node| {
        t.add_child(
            Node::new("ibm,opal")
                .cells("opal-base-address", &[0, 0x3000_0000, 0])
                .cells("opal-entry-address", &[0x3000_3760])
                .cells("opal-runtime-size", &[0, 0x100_0000]),
        )
    };
    let pbcq = "/xscom@3fc0000000000/pbcq@2012000";
    let cases: [(Breakage, &str, &str, usize, ExpectedLength); 6] = [
        (
            |t| t.at("cpus/cpu@8").set("reg", vec![0; 5]),
            "/cpus/cpu@8",
            "reg",
            5,
            MultipleOf(4),
        ),
        (
            |t| t.at("cpus/cpu@8").set("ibm,chip-id", vec![0; 8]),
            "/cpus/cpu@8",
            "ibm,chip-id",
            8,
            Exactly(4),
        ),
        (
            |t| {
                t.at("cpus/cpu@8")
                    .set("ibm,ppc-interrupt-server#s", vec![0; 6])
            },
            "/cpus/cpu@8",
            "ibm,ppc-interrupt-server#s",
            6,
            MultipleOf(4),
        ),
        // The PBCQ's xscom has 1+1 cells: 8-byte entries.
        (
            |t| t.at(PBCQ).set("reg", cells(&[0x2012000, 0x46, 0x9012000])),
            pbcq,
            "reg",
            12,
            MultipleOf(8),
        ),
        // reserved-ranges: 16-byte entries whatever the root's cells.
        (
            |t| t.set("reserved-ranges", vec![0; 24]),
            "/",
            "reserved-ranges",
            24,
            MultipleOf(16),
        ),
        // OPAL numbers: one or two cells.
        (
            opal_base_too_long,
            "/ibm,opal",
            "opal-base-address",
            12,
            OneOrTwoCells,
        ),
    ];
    for (break_it, node, property, len, expected) in cases {
        let problem = PropertyError::Length { len, expected };
        assert_eq!(broken(break_it), bad_property(node, property, problem));
    }
    // Well-formed entries, but not the three ranges a PBCQ has.
    let expected = PropertyError::Value {
        value: 2,
        expected: "3 ranges (nest, pci, spci)",
    };
    assert_eq!(
        broken(|t| t
            .at(PBCQ)
            .set("reg", cells(&[0x2012000, 0x46, 0x9012000, 0x15]))),
        bad_property(pbcq, "reg", expected)
    );
}

#[test]
fn bad_values() {
    // A range that wraps past 2^64.
    let wraps = PropertyError::Overflow {
        base: 0xffff_ffff_ffff_f000,
        size: 0x2000,
    };
    assert_eq!(
        broken(|t| t
            .at("memory@0")
            .set("reg", cells(&[0xffff_ffff, 0xffff_f000, 0, 0x2000]))),
        bad_property("/memory@0", "reg", wraps)
    );
    // Strings that are not NUL-terminated UTF-8.
    let not_string: [(Breakage, &str, &str); 3] = [
        (|t| t.set("model", b"no terminator".to_vec()), "/", "model"),
        (
            |t| t.at("chosen").set("bootargs", vec![0xff, 0xfe, 0]),
            "/chosen",
            "bootargs",
        ),
        (|t| t.set("compatible", b"a\0b".to_vec()), "/", "compatible"),
    ];
    for (break_it, node, property) in not_string {
        assert_eq!(
            broken(break_it),
            bad_property(node, property, PropertyError::NotString)
        );
    }
    // A PIR beyond 32 bits (with 2 address cells under /cpus).
    let too_wide = PropertyError::Value {
        value: 0x1_0000_0008,
        expected: "a 32-bit PIR",
    };
    let pir_too_wide = |t: &mut Node| {
        t.at("cpus").set("#address-cells", cells(&[2]));
        t.at("cpus/cpu@8").set("reg", cells(&[1, 8]));
    };
    assert_eq!(
        broken(pir_too_wide),
        bad_property("/cpus/cpu@8", "reg", too_wide)
    );
    // Two chips claiming one chip id.
    let second_chip_0 = |t: &mut Node| {
        let mut second = t.at(XSCOM).clone();
        second.set_name("xscom@3fc0800000000");
        t.add_child(second);
    };
    assert_eq!(
        broken(second_chip_0),
        bad_property(
            "/xscom@3fc0800000000",
            "ibm,chip-id",
            PropertyError::Duplicate { value: 0 }
        )
    );
    // A translating /reserved-memory ranges.
    let translating = |t: &mut Node| {
        t.add_child(
            Node::new("reserved-memory")
                .cells("#address-cells", &[2])
                .cells("#size-cells", &[2])
                .cells("ranges", &[0, 0, 0, 0x1000, 0, 0x1000]),
        )
    };
    let error = broken(translating);
    assert!(
        matches!(
            error,
            DevTreeError::BadProperty {
                property: "ranges",
                ..
            }
        ),
        "{error:?}"
    );
    // pciex ranges need 3 PCI address cells.
    let pciex_two_cells = |t: &mut Node| {
        t.add_child(
            Node::new("pciex@3fffe40000000")
                .text("compatible", "ibm,power8-pciex")
                .cells("reg", &[0x3fffe, 0x4000_0000, 0, 0x1000])
                .cells("#address-cells", &[2])
                .cells("ranges", &[0, 0, 0, 0, 0, 0x1000]),
        )
    };
    let error = broken(pciex_two_cells);
    assert!(
        matches!(
            error,
            DevTreeError::BadProperty {
                property: "#address-cells",
                ..
            }
        ),
        "{error:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Broken blobs: header and structure block.
// ---------------------------------------------------------------------------------------

fn header_err(blob: &[u8]) -> HeaderError {
    match parse_err(blob) {
        DevTreeError::Header(problem) => problem,
        other => panic!("expected a header error, got {other:?}"),
    }
}

#[test]
fn empty_and_truncated_fixtures() {
    assert_eq!(header_err(&[]), HeaderError::TooShort { len: 0 });
    for (name, blob) in FIXTURES {
        for len in 0..blob.len() {
            let expected = if len < 40 {
                HeaderError::TooShort { len }
            } else {
                HeaderError::TotalSizeBeyondBuffer {
                    totalsize: blob.len() as u32,
                    len,
                }
            };
            assert_eq!(
                header_err(&blob[..len]),
                expected,
                "{name} cut to {len} bytes"
            );
        }
        // A buffer larger than totalsize is fine: the reader stops at totalsize.
        let mut padded = blob.to_vec();
        padded.extend_from_slice(&[0xff; 64]);
        assert_eq!(parse(&padded), parse(blob), "{name} with trailing bytes");
    }
}

#[test]
fn truncated_blocks_with_consistent_headers() {
    // Cut the structure block (and then the strings block) at every length, with a header
    // that tells the truth about the cut sizes: the walker must notice by itself.
    let (structure, strings) = write_blocks(&test_tree(), true);
    for cut in 0..structure.len() {
        let blob = assemble(&structure[..cut], &strings, &[], 0);
        assert!(
            matches!(parse_err(&blob), DevTreeError::Structure { .. }),
            "structure cut to {cut} bytes"
        );
    }
    for cut in 0..strings.len() {
        let blob = assemble(&structure, &strings[..cut], &[], 0);
        assert!(
            matches!(parse_err(&blob), DevTreeError::Structure { .. }),
            "strings cut to {cut} bytes"
        );
    }
}

#[test]
fn bad_headers() {
    let patched = |index: usize, value: u32| {
        let mut blob = QEMU72.to_vec();
        set_header_field(&mut blob, index, value);
        header_err(&blob)
    };
    let size = QEMU72.len() as u32;
    assert_eq!(
        patched(H_MAGIC, 0xedfe_0dd0),
        HeaderError::BadMagic { found: 0xedfe_0dd0 }
    );
    assert_eq!(
        patched(H_TOTALSIZE, size + 1),
        HeaderError::TotalSizeBeyondBuffer {
            totalsize: size + 1,
            len: QEMU72.len()
        }
    );
    assert_eq!(
        patched(H_TOTALSIZE, 39),
        HeaderError::TotalSizeTooSmall { totalsize: 39 }
    );
    assert_eq!(
        patched(H_VERSION, 15),
        HeaderError::UnsupportedVersion {
            version: 15,
            last_comp_version: 16
        }
    );
    assert_eq!(
        patched(H_LAST_COMP, 18),
        HeaderError::UnsupportedVersion {
            version: 17,
            last_comp_version: 18
        }
    );
    // Blocks starting at totalsize, inside the header, misaligned or reaching past the end.
    let struct_size = header_field(QEMU72, H_SIZE_STRUCT);
    let last_word = size & !3;
    let outside = HeaderError::BlockOutside {
        block: "structure",
        offset: last_word,
        size: struct_size,
        totalsize: size,
    };
    assert_eq!(patched(H_OFF_STRUCT, last_word), outside);
    let cases = [
        (H_OFF_STRUCT, 0, "structure"),
        (H_OFF_STRUCT, 0xffff_fffc, "structure"),
        (H_SIZE_STRUCT, 0xffff_fff0, "structure"),
        (H_OFF_STRINGS, size, "strings"),
        (H_SIZE_STRINGS, size, "strings"),
        (H_OFF_RSVMAP, size & !7, "memory reservation"),
        (H_OFF_RSVMAP, 0, "memory reservation"),
    ];
    for (field, value, block) in cases {
        match patched(field, value) {
            HeaderError::BlockOutside { block: found, .. } => assert_eq!(found, block),
            other => panic!("field {field} = {value:#x}: {other:?}"),
        }
    }
    assert_eq!(
        patched(H_OFF_STRUCT, 0x3a),
        HeaderError::Misaligned {
            block: "structure",
            offset: 0x3a
        }
    );
    assert_eq!(
        patched(H_OFF_RSVMAP, 0x2c),
        HeaderError::Misaligned {
            block: "memory reservation",
            offset: 0x2c
        }
    );

    // Version 16 has no size_dt_struct: the walker is bounded by totalsize instead.
    let mut v16 = QEMU72.to_vec();
    set_header_field(&mut v16, H_VERSION, 16);
    set_header_field(&mut v16, H_SIZE_STRUCT, 0xdead_beef);
    assert_eq!(parse(&v16), parse(QEMU72));
}

#[test]
fn bad_reservation_block() {
    let (structure, strings) = write_blocks(&test_tree(), false);
    let wraps = assemble(&structure, &strings, &[(u64::MAX, 2)], 0);
    assert_eq!(
        header_err(&wraps),
        HeaderError::ReservationOverflow {
            address: u64::MAX,
            size: 2
        }
    );
    // No all-zero entry before totalsize: point the block at the strings block, whose text
    // holds no 16 zero bytes in a row, and put zeros after totalsize, where they must not count.
    let mut blob = assemble(&structure, &strings, &[], 0);
    let off_strings = header_field(&blob, H_OFF_STRINGS).next_multiple_of(8);
    set_header_field(&mut blob, H_OFF_RSVMAP, off_strings);
    blob.extend_from_slice(&[0; 16]);
    assert_eq!(
        header_err(&blob),
        HeaderError::ReservationUnterminated {
            offset: off_strings
        }
    );
}

/// The reader's error for a structure block that is `words` (big-endian u32s), with the
/// strings block `strings`.
fn structure_error(words: &[u32], strings: &[u8]) -> StructureError {
    let blob = assemble(&cells(words), strings, &[], 0);
    match parse_err(&blob) {
        DevTreeError::Structure { problem, .. } => problem,
        other => panic!("expected a structure error, got {other:?}"),
    }
}

#[test]
fn bad_structure_blocks() {
    use StructureError::*;
    const BEGIN: u32 = FDT_BEGIN_NODE;
    const END_NODE: u32 = FDT_END_NODE;
    const PROP: u32 = FDT_PROP;
    const END: u32 = FDT_END;
    const MODEL: &[u8] = b"model\0";
    // The root node's empty name is the single zero word after BEGIN.
    let cases: [(&[u32], &[u8], StructureError); 16] = [
        (&[], MODEL, UnexpectedEnd),
        (&[END], MODEL, NoRootNode),
        (&[BEGIN, 0, END], MODEL, UnclosedNode),
        (&[BEGIN, 0, END_NODE], MODEL, UnexpectedEnd),
        (
            &[BEGIN, 0, END_NODE, END_NODE, END],
            MODEL,
            UnbalancedEndNode,
        ),
        (
            &[BEGIN, 0, END_NODE, BEGIN, 0, END_NODE, END],
            MODEL,
            SecondRootNode,
        ),
        (&[BEGIN, 0, 0x77, END_NODE, END], MODEL, UnknownToken(0x77)),
        (&[PROP, 0, 0, END], MODEL, PropertyOutsideNode),
        (
            &[BEGIN, 0, END_NODE, PROP, 0, 0, END],
            MODEL,
            PropertyOutsideNode,
        ),
        // A name running to the end of the block without a NUL; one that is not UTF-8.
        (&[BEGIN, 0x6162_6364], MODEL, UnterminatedNodeName),
        (&[BEGIN, 0xff00_0000, END_NODE, END], MODEL, NodeNameNotUtf8),
        // A value running past the block (also with a length that overflows 32 bits).
        (
            &[BEGIN, 0, PROP, 0x100, 0, END_NODE, END],
            MODEL,
            PropertyPastEnd { len: 0x100 },
        ),
        (
            &[BEGIN, 0, PROP, u32::MAX, 0, END_NODE, END],
            MODEL,
            PropertyPastEnd { len: u32::MAX },
        ),
        // Name offsets outside the strings, to a name without NUL, to one that is not UTF-8.
        (
            &[BEGIN, 0, PROP, 0, 0x1000, END_NODE, END],
            MODEL,
            NameOffsetOutside {
                name_offset: 0x1000,
            },
        ),
        (
            &[BEGIN, 0, PROP, 0, 0, END_NODE, END],
            b"model",
            UnterminatedPropertyName { name_offset: 0 },
        ),
        (
            &[BEGIN, 0, PROP, 0, 0, END_NODE, END],
            b"\xff\0",
            PropertyNameNotUtf8 { name_offset: 0 },
        ),
    ];
    for (words, strings, expected) in cases {
        assert_eq!(structure_error(words, strings), expected, "{words:x?}");
    }
    // Nesting: 64 levels are fine for the walker (the tree then lacks /cpus), 65 are not.
    let nested = |depth: usize| {
        let mut words = Vec::new();
        for _ in 0..depth {
            words.extend_from_slice(&[BEGIN, 0x6100_0000]);
        }
        words.extend(std::iter::repeat_n(END_NODE, depth));
        words.push(END);
        words
    };
    let deepest = assemble(&cells(&nested(64)), MODEL, &[], 0);
    assert!(matches!(
        parse_err(&deepest),
        DevTreeError::MissingNode { .. }
    ));
    assert_eq!(structure_error(&nested(65), MODEL), TooDeep);
    assert_eq!(structure_error(&nested(100_000), MODEL), TooDeep);
}

// ---------------------------------------------------------------------------------------
// Mutations: no corruption may make the reader (or what firmware does next) panic.
// ---------------------------------------------------------------------------------------

/// Values that tend to find off-by-one and overflow bugs in offset and length fields.
fn boundary_value(rng: &mut Rng, len: usize) -> u32 {
    let len = len as u32;
    let values = [
        0,
        1,
        2,
        3,
        4,
        9,
        0x28,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_fff0,
        0xffff_fffc,
        0xffff_ffff,
        len.wrapping_sub(1),
        len,
        len.wrapping_add(4),
        0xd00d_feed,
    ];
    if rng.below(4) == 0 {
        rng.next() as u32
    } else {
        values[rng.below(values.len() as u64) as usize]
    }
}

/// Where each property value of a well-formed blob lies: `(offset, length)` in the blob.
/// The property-aware mutations below aim at these, the bytes the decoders interpret.
fn property_values(blob: &[u8]) -> Vec<(usize, usize)> {
    let word = |at: usize| u32::from_be_bytes(blob[at..at + 4].try_into().unwrap());
    let mut at = header_field(blob, H_OFF_STRUCT) as usize;
    let mut values = Vec::new();
    loop {
        let token = word(at);
        at += 4;
        match token {
            FDT_BEGIN_NODE => {
                let name_len = blob[at..].iter().position(|&b| b == 0).unwrap();
                at = (at + name_len + 1).next_multiple_of(4);
            }
            FDT_PROP => {
                let len = word(at) as usize;
                at += 8;
                values.push((at, len));
                at = (at + len).next_multiple_of(4);
            }
            FDT_END => return values,
            _ => {}
        }
    }
}

fn mutate(rng: &mut Rng, blob: &[u8], values: &[(usize, usize)]) -> Vec<u8> {
    let mut bytes = blob.to_vec();
    let len = bytes.len();
    for _ in 0..1 + rng.below(3) {
        match rng.below(10) {
            // Flip one bit anywhere.
            0 | 1 => {
                let at = rng.below(len as u64) as usize;
                bytes[at] ^= 1 << rng.below(8);
            }
            // Overwrite one byte.
            2 => {
                let at = rng.below(len as u64) as usize;
                bytes[at] = rng.next() as u8;
            }
            // Overwrite an aligned word (tokens, lengths, name offsets, cells).
            3 | 4 => {
                let at = rng.below(len as u64 / 4) as usize * 4;
                let value = boundary_value(rng, len);
                bytes[at..at + 4].copy_from_slice(&value.to_be_bytes());
            }
            // Overwrite the cells of one property value: wrapping ranges, huge cell counts,
            // zero sizes, 64-bit PIRs...
            5..=7 => {
                let (at, value_len) = values[rng.below(values.len() as u64) as usize];
                for cell in (at..at + value_len / 4 * 4).step_by(4) {
                    if rng.below(2) == 0 {
                        let value = boundary_value(rng, len);
                        bytes[cell..cell + 4].copy_from_slice(&value.to_be_bytes());
                    }
                }
            }
            // Overwrite a header field (except the magic, to get past the first check).
            8 => {
                let field = 1 + rng.below(9) as usize;
                let value = boundary_value(rng, len);
                set_header_field(&mut bytes, field, value);
            }
            // Cut the blob and make totalsize agree (or not).
            _ => {
                let cut = rng.below(len as u64) as usize;
                bytes.truncate(cut.max(1));
                if rng.below(2) == 0 && bytes.len() >= 8 {
                    let size = bytes.len() as u32;
                    set_header_field(&mut bytes, H_TOTALSIZE, size);
                }
                return bytes;
            }
        }
    }
    bytes
}

/// Everything firmware does with a tree after reading it.
fn exercise(blob: &[u8]) -> bool {
    match Machine::parse(blob) {
        Ok(machine) => {
            let text = machine.to_string();
            assert!(!text.is_empty());
            let _ = machine.free_ranges(&[
                (0, 0x100_0000),
                (0x3000_0000, 0x3100_0000),
                (u64::MAX - 1, u64::MAX),
            ]);
            let _ = (
                machine.total_ram(),
                machine.ram_top(),
                machine.boot_cpu(),
                machine.console_uart(),
                machine.timebase_hz(),
            );
            let _ = machine
                .pciex
                .iter()
                .filter_map(|phb| phb.m32_window())
                .count();
            true
        }
        Err(error) => {
            assert!(!error.to_string().is_empty());
            false
        }
    }
}

#[test]
fn mutated_fixtures_never_panic() {
    const MUTATIONS: usize = 4000;
    for (index, (name, blob)) in FIXTURES.into_iter().enumerate() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (index as u64 + 1));
        let values = property_values(blob);
        let (mut parsed, mut refused) = (0, 0);
        for case in 0..MUTATIONS {
            let mutated = mutate(&mut rng, blob, &values);
            match catch_unwind(AssertUnwindSafe(|| exercise(&mutated))) {
                Ok(true) => parsed += 1,
                Ok(false) => refused += 1,
                Err(_) => panic!("{name}: mutation {case} made the reader panic"),
            }
        }
        // Both outcomes must occur, or the mutations are not testing the reader.
        assert!(
            parsed > 100 && refused > 100,
            "{name}: {parsed} parsed, {refused} refused"
        );
    }
}

#[test]
fn mutated_written_tree_never_panics() {
    // The same on a small tree with NOPs and reservations, where each mutation is more
    // likely to land on a token, a length or a name offset.
    let (structure, strings) = write_blocks(&test_tree(), true);
    let blob = assemble(&structure, &strings, &[(0x2000_0000, 0x1000)], 8);
    let values = property_values(&blob);
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    for case in 0..20_000 {
        let mutated = mutate(&mut rng, &blob, &values);
        assert!(
            catch_unwind(AssertUnwindSafe(|| exercise(&mutated))).is_ok(),
            "mutation {case} panicked"
        );
    }
}

#[test]
fn random_bytes_never_panic() {
    // Random bodies behind a valid-looking header.
    let mut rng = Rng(0x1234_5678);
    for case in 0..5000 {
        let len = 40 + rng.below(400) as usize;
        let mut blob: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let header = [
            0xd00d_feed,
            len as u32,
            0x38,
            (len as u32) / 2,
            0x28,
            17,
            16,
        ];
        for (index, value) in header.into_iter().enumerate() {
            if rng.below(8) != 0 {
                set_header_field(&mut blob, index, value);
            }
        }
        assert!(
            catch_unwind(AssertUnwindSafe(|| exercise(&blob))).is_ok(),
            "case {case} panicked"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Every fixture blob has its listing, and the generic reader reads them all (the pseries
// trees QEMU hands a guest included).
// ---------------------------------------------------------------------------------------

#[test]
fn every_fixture_has_its_dts_with_the_same_nodes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut blobs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "dtb"))
        .collect();
    blobs.sort();
    assert_eq!(blobs.len(), 7, "{blobs:?}");
    for blob_path in blobs {
        let blob = std::fs::read(&blob_path).unwrap();
        let listing = std::fs::read_to_string(blob_path.with_extension("dts"))
            .unwrap_or_else(|e| panic!("{}: no .dts beside it: {e}", blob_path.display()));
        let tree = tcefw::devtree::flat::Tree::parse(&blob)
            .unwrap_or_else(|e| panic!("{}: {e}", blob_path.display()));
        let mut in_blob: Vec<String> = tree.nodes().map(|n| n.name().to_string()).collect();
        let mut in_listing: Vec<String> = listing
            .lines()
            .filter_map(|line| line.trim().strip_suffix(" {"))
            .map(|name| {
                if name == "/" {
                    String::new()
                } else {
                    name.to_string()
                }
            })
            .collect();
        in_blob.sort();
        in_listing.sort();
        assert_eq!(in_blob, in_listing, "{}", blob_path.display());
    }
}
