//! Helpers the in-image tests and benchmarks share: the devices a test needs (found by
//! vendor and device ID wherever the run put them, a skip naming the device when absent),
//! hypercalls through `sc 1` with PAPR status checks, edu DMA with a bounded wait, the probe
//! of edu's DMA mask, and reads of partition memory.
//!
//! Resources: LoPAR 14.5.3 (hypercall registers); QEMU hw/misc/edu.c (DMA engine, and
//! `edu_clamp_addr`: every DMA address is ANDed with the `dma_mask` property, 28 bits by
//! default, silently apart from a guest-error log line).

use super::plan::skip;
use crate::arch::ppc64::cpu;
use crate::arch::ppc64::mmio::MmioWindow;
use crate::hcall::codes::{H_PUT_TCE, H_SUCCESS};
use crate::hcall::hypervisor::Hypervisor;
use crate::hcall::partition::Partition;
use crate::iommu::service::WindowConfig;
use crate::pci::edu::{DmaDirection, Edu, EDU_DEVICE, EDU_VENDOR};
use crate::pci::topology::PciFunction;
use crate::startup::hv::{self, guest_read, guest_write};
use crate::startup::pci::{hosts, PciHost};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use spin::Once;

/// A PCI device some tests need, and how to tell the user to add one.
pub struct NeededDevice {
    /// QEMU's driver name: skip reasons start with `needs <driver>`, which qemu-run.sh
    /// matches against the devices the run was given.
    pub driver: &'static str,
    /// PCI vendor ID.
    pub vendor: u16,
    /// PCI device ID.
    pub device: u16,
    /// The `-device` options after the bus.
    pub options: &'static str,
}

/// QEMU's edu, with the DMA mask window 1 needs.
pub const EDU: NeededDevice = NeededDevice {
    driver: "edu",
    vendor: EDU_VENDOR,
    device: EDU_DEVICE,
    options: ",addr=0,dma_mask=0xffffffffffffffff",
};

/// An Intel 82574L (e1000e).
pub const E1000E: NeededDevice = NeededDevice {
    driver: "e1000e",
    vendor: 0x8086,
    device: 0x10d3,
    options: ",addr=0",
};

/// The first function with this vendor and device on any PHB.
pub fn find_device(vendor: u16, device: u16) -> Option<(&'static PciHost, &'static PciFunction)> {
    hosts()
        .iter()
        .find_map(|host| host.topology.find(vendor, device).map(|f| (host, f)))
}

/// The first `needed` device on any PHB, or a skip that names it and says how to add one
/// (on the root port of a PHB that has nothing behind it: QEMU names PHB N's `pcie.N`).
pub fn require(needed: &NeededDevice) -> Result<(&'static PciHost, &'static PciFunction), String> {
    find_device(needed.vendor, needed.device).ok_or_else(|| {
        let free = hosts()
            .iter()
            .find(|host| host.topology.functions.iter().all(|f| f.bdf.rid() == 0));
        let bus = free.map_or(String::from("pcie.N"), |host| {
            format!("pcie.{}", host.number)
        });
        skip(&format!(
            "needs {} ({:04x}:{:04x}): none found on any PHB; add one with -device {},bus={bus}{}",
            needed.driver, needed.vendor, needed.device, needed.driver, needed.options
        ))
    })
}

/// `sc 1` with `opcode` and up to four arguments; returns r3 (status) and r4.. (outputs).
pub fn hcall(opcode: u64, args: [u64; 4]) -> [u64; 9] {
    cpu::hypercall(opcode, &[args[0], args[1], args[2], args[3], 0, 0, 0, 0])
}

/// The PAPR status in r3.
pub fn status(out: [u64; 9]) -> i64 {
    out[0] as i64
}

/// `Ok` when a call returned the status wanted, else a message naming the call.
pub fn expect(what: &str, got: i64, wanted: i64) -> Result<(), String> {
    if got == wanted {
        Ok(())
    } else {
        Err(format!("{what}: status {got}, expected {wanted}"))
    }
}

/// edu's BAR0 on `host`, as the CPU sees it.
pub fn edu_bar0(host: &PciHost) -> Result<MmioWindow, String> {
    host.topology
        .find(EDU_VENDOR, EDU_DEVICE)
        .and_then(|f| host.bar_window(f, 0))
        .ok_or_else(|| String::from("edu BAR0 is not mapped"))
}

/// One edu DMA of `len` bytes between its buffer (offset 0) and bus address `bus`, waiting
/// at most five seconds for it. edu reports no IOMMU refusal: callers compare memory.
pub fn edu_dma(edu: &Edu<'_>, direction: DmaDirection, bus: u64, len: usize) -> Result<(), String> {
    edu.start_dma(direction, bus, 0, len as u64, false)
        .map_err(|e| format!("start DMA: {e:?}"))?;
    let deadline = cpu::timebase() + 5 * crate::console::timebase_hz();
    edu.wait_dma(|| cpu::timebase() < deadline)
        .map_err(|e| format!("DMA at {bus:#x}: {e:?}"))
}

/// `len` bytes of partition memory at guest-real `gra`.
pub fn read_guest(partition: &Partition, gra: u64, len: usize) -> Result<Vec<u8>, String> {
    let mut bytes = vec![0u8; len];
    guest_read(partition, gra, &mut bytes)?;
    Ok(bytes)
}

/// Bus offset of the probe's TCE, in window 0 and (with bit 59) in window 1.
const PROBE_IOBA: u64 = 0xc000;
const PROBE_BYTES: usize = 64;
/// Window 1 starts at bus address 2^59 (DMA address bit 59 selects the TVE).
pub const WINDOW1_BUS: u64 = 1 << 59;

static WINDOW1_PROBE: Once<Result<(), String>> = Once::new();

/// Whether the edu on `host` (PE `pe`) can reach window 1's bus addresses (and so any high
/// bus address, such as an alias above a table's reach), asked once per boot. QEMU's edu ANDs every DMA address with its `dma_mask` property (28 bits unless the
/// user sets it) and tells the guest nothing: the register reads back unmasked. What can be
/// seen is where a DMA lands. With a TCE at `PROBE_IOBA` of a window 0 mapping
/// `scratch_gra`, a device write to 2^59 + `PROBE_IOBA` lands in that page when the mask
/// drops bit 59, and goes to window 1 (where nothing is mapped) when it does not.
/// Call it as the hypervisor (outside a partition), before the caller creates windows on
/// `pe`: it creates and removes its own window 0 on it, owned by `partition`.
pub fn edu_reaches_window1(
    hv: &Hypervisor<'_>,
    host: &PciHost,
    pe: u16,
    partition: &Partition,
    scratch_gra: u64,
) -> Result<(), String> {
    WINDOW1_PROBE
        .call_once(|| probe_window1(hv, host, pe, partition, scratch_gra))
        .clone()
}

fn probe_window1(
    hv: &Hypervisor<'_>,
    host: &PciHost,
    pe: u16,
    partition: &Partition,
    scratch_gra: u64,
) -> Result<(), String> {
    let bar0 = edu_bar0(host)?;
    let edu = Edu::new(&bar0).map_err(|e| format!("{e:?}"))?;
    let config = WindowConfig {
        pe,
        window: 0,
        page_shift: 12,
        window_size: 1 << 30,
        levels: 1,
    };
    let liobn = hv
        .create_window(host.number, config, partition)
        .map_err(|e| format!("DMA-mask probe: create_window: {e:?}"))?;
    hv::enter_partition(partition);
    let landed_low = (|| {
        let put = |tce: u64| status(hcall(H_PUT_TCE, [liobn, PROBE_IOBA, tce, 0]));
        let marker: Vec<u8> = (0..PROBE_BYTES as u8)
            .map(|i| i.wrapping_mul(13) | 0x81)
            .collect();
        let zeros = vec![0u8; PROBE_BYTES];
        guest_write(partition, scratch_gra, &marker)?;
        expect("DMA-mask probe: map", put(scratch_gra | 3), H_SUCCESS)?;
        // Fill edu's buffer through window 0 (which any mask reaches), clear the page, then
        // write the buffer out to the same offset in window 1.
        edu_dma(&edu, DmaDirection::RamToBuffer, PROBE_IOBA, PROBE_BYTES)?;
        guest_write(partition, scratch_gra, &zeros)?;
        edu_dma(
            &edu,
            DmaDirection::BufferToRam,
            WINDOW1_BUS + PROBE_IOBA,
            PROBE_BYTES,
        )?;
        let landed_low = read_guest(partition, scratch_gra, PROBE_BYTES)? == marker;
        expect("DMA-mask probe: unmap", put(0), H_SUCCESS)?;
        Ok::<bool, String>(landed_low)
    })();
    hv::leave_partition();
    let removed = hv.remove_window(liobn);
    let landed_low = landed_low?;
    removed.map_err(|e| format!("DMA-mask probe: remove_window: {e:?}"))?;
    if landed_low {
        return Err(skip(&format!(
            "needs edu with a 64-bit DMA mask: a DMA to bus {:#x} (window 1) landed at bus \
             {PROBE_IOBA:#x} in window 0, so this edu's dma_mask (QEMU's default is 28 bits, \
             0xfffffff) drops the high bits of the bus addresses the test uses; give the \
             device dma_mask=0xffffffffffffffff",
            WINDOW1_BUS + PROBE_IOBA
        )));
    }
    Ok(())
}
