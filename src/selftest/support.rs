//! Helpers the in-image tests and benchmarks share: hypercalls through `sc 1` with PAPR
//! status checks, edu DMA with a bounded wait, and reads of partition memory.
//!
//! Resources: LoPAR 14.5.3 (hypercall registers); QEMU hw/misc/edu.c (DMA engine).

use crate::arch::ppc64::cpu;
use crate::arch::ppc64::mmio::MmioWindow;
use crate::firmware::hv::guest_read;
use crate::firmware::pci::PciHost;
use crate::hcall::partition::Partition;
use crate::pci::edu::{DmaDirection, Edu, EDU_DEVICE, EDU_VENDOR};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

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
