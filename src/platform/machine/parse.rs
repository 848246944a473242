//! From a checked [`Tree`] to a [`Machine`]: which nodes describe what, which properties are
//! essential (an error when missing) and which are optional (`None` when missing).
//!
//! Resources: Devicetree Specification v0.4 3.4 (memory), 3.5 (reserved-memory), 3.7-3.8
//! (cpus); skiboot core/mem_region.c (`reserved-ranges`/`reserved-names`), hw/xscom.c,
//! hw/lpc.c, hw/phb3.c (`phb3_add_properties`), core/opal.c (`/ibm,opal`); QEMU hw/ppc/pnv.c,
//! pnv_xscom.c, pnv_lpc.c, hw/pci-host/pnv_phb3_pbcq.c (`pnv_pbcq_dt_xscom`); Linux
//! arch/powerpc/kernel/prom.c (`early_reserve_mem_dt`), setup-common.c
//! (`smp_setup_cpu_maps`), platforms/powernv/pci-ioda.c (`pnv_ioda_parse_m64_window`).

use super::{
    Chip, Cpu, Lpc, LpcRange, LpcSpace, M64Window, Machine, Opal, Pbcq, PcbRange, PciSpace,
    PciWindow, Pciex, Reserved, ReservedSources, Uart,
};
use crate::devtree::error::{DevTreeError, ExpectedLength, HeaderError, PropertyError};
use crate::devtree::flat::{NodeRef, Tree};
use crate::devtree::memmap::{merge_spans, MemRange};
use crate::devtree::prop::{CellCursor, RegEntry, MAX_CELLS};
use alloc::{
    string::{String, ToString},
    vec,
    vec::Vec,
};

/// XSCOM nodes: "ibm,xscom" is skiboot's generic name, "ibm,power8-xscom" QEMU's and
/// skiboot's POWER8 one.
const XSCOM_COMPATIBLE: [&str; 2] = ["ibm,xscom", "ibm,power8-xscom"];

/// A second, independent opinion on the header from the `fdt` crate. Only `Fdt::new` is
/// used: it does checked reads, while the crate's accessors panic on malformed trees (a
/// property length past the block, a name offset outside the strings, nesting deeper than
/// 63), and miss POWER's `PowerPC,POWER8@8` cpu nodes, so the walking is ours.
fn cross_check_header(blob: &[u8]) -> Result<(), DevTreeError> {
    fdt::Fdt::new(blob).map(|_| ()).map_err(|error| {
        let reason = match error {
            fdt::FdtError::BadMagic => "bad magic",
            fdt::FdtError::BadPtr => "a block offset is out of bounds",
            fdt::FdtError::BufferTooSmall => "the buffer is smaller than totalsize",
        };
        DevTreeError::Header(HeaderError::FdtCrateRejected { reason })
    })
}

pub(super) fn machine(blob: &[u8]) -> Result<Machine, DevTreeError> {
    let tree = Tree::parse(blob)?;
    cross_check_header(blob)?;
    let root = tree.root();
    // Read in the order the firmware needs things (RAM, then CPUs, then devices), which is
    // also the order problems are reported in.
    let model = root.string_prop("model")?.map(String::from);
    let compatible = root.string_list("compatible")?.unwrap_or_default();
    let memory = memory(root)?;
    let reserved = reserved(&tree)?;
    let cpus = cpus(root)?;
    let (chips, pbcqs) = chips_and_pbcqs(root)?;
    let pciex = pciex(&tree)?;
    let opal = opal(root)?;
    let (bootargs, stdout_path) = chosen(root)?;
    Ok(Machine {
        model,
        compatible: compatible.into_iter().map(String::from).collect(),
        memory,
        reserved,
        boot_cpuid_phys: tree.header.boot_cpuid_phys,
        cpus,
        chips,
        pbcqs,
        pciex,
        opal,
        bootargs,
        stdout_path,
        fdt_size: tree.header.totalsize,
    })
}

/// RAM from the root's memory nodes (spec 3.4: `device_type = "memory"`, as Linux's
/// `early_init_dt_scan_memory` matches them), skipping disabled nodes and empty entries.
fn memory(root: NodeRef<'_, '_>) -> Result<Vec<MemRange>, DevTreeError> {
    let mut spans = Vec::new();
    for node in root.children() {
        if !node.device_type_is("memory") || !node.is_available() {
            continue;
        }
        for entry in node.required_reg(true)? {
            spans.push((entry.address, entry.address + entry.size));
        }
    }
    let memory: Vec<MemRange> = merge_spans(spans)
        .into_iter()
        .map(|(start, end)| MemRange::new(start, end - start))
        .collect();
    if memory.is_empty() {
        return Err(DevTreeError::MissingNode {
            what: "memory (device_type \"memory\" with a non-empty reg)",
        });
    }
    Ok(memory)
}

/// Every reserved range from the header block, `reserved-ranges` and `/reserved-memory`.
fn reserved(tree: &Tree<'_>) -> Result<Vec<Reserved>, DevTreeError> {
    let mut found: Vec<Reserved> = Vec::new();
    let mut add = |range: MemRange, name: Option<&str>, mark: fn(&mut ReservedSources)| {
        if range.size == 0 {
            return;
        }
        let index = match found.iter().position(|r| r.range == range) {
            Some(index) => index,
            None => {
                found.push(Reserved {
                    range,
                    ..Reserved::default()
                });
                found.len() - 1
            }
        };
        if let Some(entry) = found.get_mut(index) {
            if entry.name.is_none() {
                entry.name = name.map(String::from);
            }
            mark(&mut entry.sources);
        }
    };

    for &(address, size) in &tree.reservations {
        add(MemRange::new(address, size), None, |s| {
            s.header_block = true
        });
    }

    let root = tree.root();
    if let Some(value) = root.property("reserved-ranges") {
        // Linux's early_reserve_mem_dt and skiboot both use two cells for the address and
        // two for the size, whatever the root's cell sizes.
        if !value.len().is_multiple_of(16) {
            return Err(root.bad(
                "reserved-ranges",
                PropertyError::Length {
                    len: value.len(),
                    expected: ExpectedLength::MultipleOf(16),
                },
            ));
        }
        let names = root.string_list("reserved-names")?.unwrap_or_default();
        let mut cells = CellCursor::new(value);
        let mut index = 0;
        while let (Some(base), Some(size)) = (cells.take(2), cells.take(2)) {
            if base.checked_add(size).is_none() {
                return Err(root.bad("reserved-ranges", PropertyError::Overflow { base, size }));
            }
            add(MemRange::new(base, size), names.get(index).copied(), |s| {
                s.reserved_ranges = true
            });
            index += 1;
        }
    }

    if let Some(parent) = root.child("reserved-memory") {
        // Children's addresses are CPU addresses only through an identity `ranges`; a
        // translating one is not something firmware trees use, so refuse it rather than
        // reserve the wrong memory.
        if let Some(ranges) = parent.property("ranges") {
            if !ranges.is_empty() {
                return Err(parent.bad(
                    "ranges",
                    PropertyError::Value {
                        value: ranges.len() as u64,
                        expected: "empty (identity)",
                    },
                ));
            }
        }
        for child in parent.children().filter(|child| child.is_available()) {
            // A child without reg asks for a dynamic allocation (spec 3.5.2): nothing fixed.
            for entry in child.reg(true)?.unwrap_or_default() {
                add(
                    MemRange::new(entry.address, entry.size),
                    Some(child.name()),
                    |s| s.reserved_memory = true,
                );
            }
        }
    }

    found.sort_by_key(|r| r.range);
    Ok(found)
}

/// Every `device_type = "cpu"` node under `/cpus` (skipping e.g. skiboot's
/// `ibm,powerpc-cpu-features`, whose device_type is "cpu-features").
fn cpus(root: NodeRef<'_, '_>) -> Result<Vec<Cpu>, DevTreeError> {
    let parent = root
        .child("cpus")
        .ok_or(DevTreeError::MissingNode { what: "/cpus" })?;
    let mut cpus = Vec::new();
    for node in parent.children().filter(|node| node.device_type_is("cpu")) {
        let reg = node.required_reg(false)?;
        let first = reg.first().map_or(0, |entry| entry.address);
        let pir = u32::try_from(first).map_err(|_| {
            node.bad(
                "reg",
                PropertyError::Value {
                    value: first,
                    expected: "a 32-bit PIR",
                },
            )
        })?;
        let threads = node
            .u32_list("ibm,ppc-interrupt-server#s")?
            .unwrap_or_else(|| vec![pir]);
        let timebase_frequency = match node.number_prop("timebase-frequency")? {
            Some(hz) => Some(hz),
            None => parent.number_prop("timebase-frequency")?,
        };
        cpus.push(Cpu {
            pir,
            threads,
            chip_id: node.u32_prop("ibm,chip-id")?,
            available: node.is_available(),
            timebase_frequency,
        });
    }
    if cpus.is_empty() {
        return Err(DevTreeError::MissingNode {
            what: "cpu (device_type \"cpu\" under /cpus)",
        });
    }
    cpus.sort_by_key(|cpu| cpu.pir);
    Ok(cpus)
}

fn pcb_range(entry: &RegEntry) -> PcbRange {
    PcbRange {
        base: entry.address,
        size: entry.size,
    }
}

/// The chips (XSCOM nodes under the root), each with its LPC bus, and every PBCQ under them.
fn chips_and_pbcqs(root: NodeRef<'_, '_>) -> Result<(Vec<Chip>, Vec<Pbcq>), DevTreeError> {
    let mut chips: Vec<Chip> = Vec::new();
    let mut pbcqs = Vec::new();
    let xscoms = root.children().filter(|node| {
        XSCOM_COMPATIBLE
            .iter()
            .any(|compat| node.is_compatible(compat))
    });
    for xscom in xscoms {
        let chip_id = xscom.required_u32("ibm,chip-id")?;
        if chips.iter().any(|chip| chip.chip_id == chip_id) {
            return Err(xscom.bad(
                "ibm,chip-id",
                PropertyError::Duplicate {
                    value: chip_id.into(),
                },
            ));
        }
        let reg = xscom.required_reg(true)?;
        let xscom_window = reg
            .first()
            .map_or(MemRange::default(), |e| MemRange::new(e.address, e.size));
        let lpc = match xscom
            .children()
            .find(|node| node.is_compatible("ibm,power8-lpc"))
        {
            Some(node) => Some(lpc(node)?),
            None => None,
        };
        for node in xscom
            .children()
            .filter(|node| node.is_compatible("ibm,power8-pbcq"))
        {
            pbcqs.push(pbcq(node, chip_id)?);
        }
        chips.push(Chip {
            chip_id,
            xscom: xscom_window,
            primary: xscom.has_property("primary"),
            lpc,
        });
    }
    chips.sort_by_key(|chip| chip.chip_id);
    pbcqs.sort_by_key(|pbcq| (pbcq.chip_id, pbcq.phb_index));
    Ok((chips, pbcqs))
}

/// An LPC node: its PCB base, and its UARTs and BT interface.
fn lpc(node: NodeRef<'_, '_>) -> Result<Lpc, DevTreeError> {
    let reg = node.required_reg(true)?;
    // Children's reg is <space address size> (skiboot hw/lpc.c, QEMU pnv_lpc.c).
    let cells = node.child_cells()?;
    if cells.address != 2 {
        return Err(node.bad(
            "#address-cells",
            PropertyError::Value {
                value: cells.address.into(),
                expected: "2 (LPC space, address)",
            },
        ));
    }
    if cells.size != 1 {
        return Err(node.bad(
            "#size-cells",
            PropertyError::Value {
                value: cells.size.into(),
                expected: "1",
            },
        ));
    }
    let mut uarts = Vec::new();
    let mut ipmi_bt = None;
    for child in node.children() {
        if child.is_compatible("ns16550") {
            uarts.push(Uart {
                reg: lpc_range(child)?,
                clock_frequency: child.u32_prop("clock-frequency")?,
                current_speed: child.u32_prop("current-speed")?,
                available: child.is_available(),
            });
        } else if child.is_compatible("ipmi-bt") && ipmi_bt.is_none() {
            ipmi_bt = Some(lpc_range(child)?);
        }
    }
    Ok(Lpc {
        pcb: reg.first().map(pcb_range).unwrap_or_default(),
        primary: node.has_property("primary"),
        uarts,
        ipmi_bt,
    })
}

/// An LPC child's first `reg` entry; its parent's cell sizes were checked to be 2 and 1, so
/// the address is `space << 32 | address` and the size fits 32 bits.
fn lpc_range(node: NodeRef<'_, '_>) -> Result<LpcRange, DevTreeError> {
    let reg = node.required_reg(true)?;
    let entry = reg.first().copied().unwrap_or(RegEntry {
        address: 0,
        size: 0,
    });
    Ok(LpcRange {
        space: LpcSpace::from_cell((entry.address >> 32) as u32),
        address: entry.address as u32,
        size: entry.size as u32,
    })
}

/// A PBCQ node (QEMU `pnv_pbcq_dt_xscom`): `reg` holds exactly the nest, PCI and SPCI ranges.
fn pbcq(node: NodeRef<'_, '_>, xscom_chip_id: u32) -> Result<Pbcq, DevTreeError> {
    let reg = node.required_reg(true)?;
    let [nest, pci, spci] = reg.as_slice() else {
        return Err(node.bad(
            "reg",
            PropertyError::Value {
                value: reg.len() as u64,
                expected: "3 ranges (nest, pci, spci)",
            },
        ));
    };
    Ok(Pbcq {
        chip_id: node.u32_prop("ibm,chip-id")?.unwrap_or(xscom_chip_id),
        phb_index: node.required_u32("ibm,phb-index")?,
        nest: pcb_range(nest),
        pci: pcb_range(pci),
        spci: pcb_range(spci),
    })
}

/// Every "ibm,power8-pciex" node (skiboot `phb3_add_properties`).
fn pciex(tree: &Tree<'_>) -> Result<Vec<Pciex>, DevTreeError> {
    let mut phbs = Vec::new();
    for node in tree
        .nodes()
        .filter(|node| node.is_compatible("ibm,power8-pciex"))
    {
        let reg = node.required_reg(true)?;
        let m64_window = match node.property("ibm,opal-m64-window") {
            None => None,
            Some(value) if value.len() == 24 => {
                let mut cells = CellCursor::new(value);
                Some(M64Window {
                    pci_address: cells.take(2).unwrap_or_default(),
                    cpu_address: cells.take(2).unwrap_or_default(),
                    size: cells.take(2).unwrap_or_default(),
                })
            }
            Some(value) => {
                return Err(node.bad(
                    "ibm,opal-m64-window",
                    PropertyError::Length {
                        len: value.len(),
                        expected: ExpectedLength::Exactly(24),
                    },
                ))
            }
        };
        phbs.push(Pciex {
            regs: reg
                .first()
                .map_or(MemRange::default(), |e| MemRange::new(e.address, e.size)),
            ioda2: node.is_compatible("ibm,ioda2-phb"),
            windows: pci_windows(node)?,
            opal_phbid: node.number_prop("ibm,opal-phbid")?,
            chip_id: node.u32_prop("ibm,chip-id")?,
            phb_index: node.u32_prop("ibm,phb-index")?,
            num_pes: node.u32_prop("ibm,opal-num-pes")?,
            reserved_pe: node.u32_prop("ibm,opal-reserved-pe")?,
            tce_kill: node.number_prop("ibm,opal-tce-kill")?,
            tce_page_shifts: node.u32_list("ibm,supported-tce-sizes")?,
            m64_window,
        });
    }
    phbs.sort_by_key(|phb| phb.regs);
    Ok(phbs)
}

/// A PCI host bridge's `ranges`: `<phys.hi phys.mid phys.lo  cpu-address  size>` with the
/// bridge's 3 address cells, the parent's address cells and the bridge's size cells.
fn pci_windows(node: NodeRef<'_, '_>) -> Result<Vec<PciWindow>, DevTreeError> {
    let Some(value) = node.property("ranges") else {
        return Ok(Vec::new());
    };
    let own = node.child_cells()?;
    if own.address != 3 {
        return Err(node.bad(
            "#address-cells",
            PropertyError::Value {
                value: own.address.into(),
                expected: "3 (PCI address)",
            },
        ));
    }
    let parent = node.parent_cells()?;
    if !(1..=MAX_CELLS).contains(&parent.address) || !(1..=MAX_CELLS).contains(&own.size) {
        return Err(node.bad(
            "ranges",
            PropertyError::UnsupportedCells {
                address_cells: parent.address,
                size_cells: own.size,
            },
        ));
    }
    let entry_len = (3 + parent.address + own.size) as usize * 4;
    if !value.len().is_multiple_of(entry_len) {
        return Err(node.bad(
            "ranges",
            PropertyError::Length {
                len: value.len(),
                expected: ExpectedLength::MultipleOf(entry_len),
            },
        ));
    }
    let mut cells = CellCursor::new(value);
    let mut windows = Vec::new();
    while let (Some(phys_hi), Some(pci_address), Some(cpu_address), Some(size)) = (
        cells.take(1),
        cells.take(2),
        cells.take(parent.address),
        cells.take(own.size),
    ) {
        if cpu_address.checked_add(size).is_none() || pci_address.checked_add(size).is_none() {
            return Err(node.bad(
                "ranges",
                PropertyError::Overflow {
                    base: cpu_address,
                    size,
                },
            ));
        }
        windows.push(PciWindow {
            space: match (phys_hi >> 24) & 0x3 {
                0 => PciSpace::Config,
                1 => PciSpace::Io,
                2 => PciSpace::Mem32,
                _ => PciSpace::Mem64,
            },
            prefetchable: phys_hi & (1 << 30) != 0,
            pci_address,
            cpu_address,
            size,
        });
    }
    Ok(windows)
}

/// `/ibm,opal`, whose three addresses are all needed to call OPAL.
fn opal(root: NodeRef<'_, '_>) -> Result<Option<Opal>, DevTreeError> {
    let Some(node) = root.child("ibm,opal") else {
        return Ok(None);
    };
    Ok(Some(Opal {
        base: node.required_number("opal-base-address")?,
        entry: node.required_number("opal-entry-address")?,
        runtime_size: node.required_number("opal-runtime-size")?,
    }))
}

/// `/chosen`'s boot arguments and console path; an absent `/chosen` means neither.
fn chosen(root: NodeRef<'_, '_>) -> Result<(String, Option<String>), DevTreeError> {
    let Some(node) = root.child("chosen") else {
        return Ok((String::new(), None));
    };
    let bootargs = node
        .string_prop("bootargs")?
        .unwrap_or_default()
        .to_string();
    let stdout_path = match node.string_prop("linux,stdout-path")? {
        Some(path) => Some(path),
        None => node.string_prop("stdout-path")?,
    };
    Ok((bootargs, stdout_path.map(String::from)))
}
