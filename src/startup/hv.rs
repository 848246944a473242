//! The hypervisor on the running machine: page accounting over RAM, one TCE service per PHB
//! that came up, partitions carved from the partition pool, and the `sc 1` handler that
//! dispatches a partition's hypercalls.
//!
//! The caller of a hypercall is always a partition: the CPU's per-CPU area says which one
//! (test code "enters" a partition before it makes calls; a real guest will be named by its
//! LPID). Addresses in hypercalls are that partition's guest-real addresses.
//! Resources: LoPAR 14.5.4.2 (TCE hypercalls); Linux arch/powerpc/kvm/book3s_64_vio.c.

use super::pci::PciHost;
use super::{Platform, TABLE_BLOCKS};
use crate::arch::ppc64::percpu::{this_cpu, NO_PARTITION};
use crate::arch::ppc64::trap::set_hypercall_handler;
use crate::hcall::codes::{HCALL_ARGS, H_PRIVILEGE};
use crate::hcall::hypervisor::Hypervisor;
use crate::hcall::partition::Partition;
use crate::iommu::pages::PageAccounting;
use crate::iommu::ram::Ram;
use crate::mm::PhysAddr;
use alloc::format;
use alloc::string::String;
use core::sync::atomic::Ordering;
use spin::Once;

static PAGES: Once<PageAccounting> = Once::new();
static HYPERVISOR: Once<Hypervisor<'static>> = Once::new();

/// The hypervisor, once [`setup`] has run.
pub fn hypervisor() -> Option<&'static Hypervisor<'static>> {
    HYPERVISOR.get()
}

/// Builds the hypervisor over every PHB in `hosts` and installs the `sc 1` handler.
/// Everything outside the partition pool counts as firmware memory: no TCE can reach it.
pub fn setup(
    platform: &Platform,
    hosts: &'static [PciHost],
) -> Result<&'static Hypervisor<'static>, String> {
    if let Some(hv) = HYPERVISOR.get() {
        return Ok(hv);
    }
    let (pool_start, pool_end) = platform.partition_pool;
    if pool_end <= pool_start {
        return Err(String::from("no partition pool: too little RAM"));
    }
    let ram_top = platform.machine.ram_top();
    // Only partition memory can ever be behind a TCE, so only the pool is accounted: the
    // records stay small whatever the machine's RAM, and a TCE into firmware memory fails
    // the accounting's own range check as well as the firmware-range check.
    // Phase 2 of the restructuring gives iommu::ram::Ram a safe constructor from the pool's
    // OwnedRam; until then this is the one unsafe call outside arch/ and mm::phys.
    // SAFETY: the pool is RAM set aside at boot for partitions (claimed as owned RAM); it
    // stays mapped (the MMU is off) and the accounting only reads it through atomics and
    // copies.
    #[allow(unsafe_code)]
    let ram = unsafe { Ram::new(pool_start, pool_end - pool_start) };
    let pages = PageAccounting::new(ram).map_err(|e| format!("page accounting: {e:?}"))?;
    let pages = PAGES.call_once(|| pages);
    let firmware = [
        (0, pool_start),
        (pool_end, ram_top.saturating_sub(pool_end)),
    ];
    let mut hv = Hypervisor::new(pages, &firmware);
    // Lower TCE levels of 4 KiB (4K pages, 512 entries a level) are the common case; 64 KiB
    // levels serve large windows. The cache refills itself from freed levels.
    TABLE_BLOCKS.prefill(4096, 128);
    TABLE_BLOCKS.prefill(64 << 10, 8);
    for host in hosts {
        hv.add_phb(host.regs, &TABLE_BLOCKS)
            .map_err(|e| format!("PHB {}: {e:?}", host.number))?;
    }
    let hv = HYPERVISOR.call_once(|| hv);
    set_hypercall_handler(handle_hypercall);
    crate::log!(
        Notice,
        "HV",
        "hypervisor up: {} PHB(s), partition pool {:#x}..{:#x}",
        hosts.len(),
        pool_start,
        pool_end
    );
    Ok(hv)
}

/// Makes this CPU play `partition` for the hypercalls it makes from now on.
pub fn enter_partition(partition: &Partition) {
    this_cpu()
        .caller_partition
        .store(u64::from(partition.id()), Ordering::Release);
}

/// Makes this CPU the hypervisor again: its hypercalls are refused.
pub fn leave_partition() {
    this_cpu()
        .caller_partition
        .store(NO_PARTITION, Ordering::Release);
}

/// Adds a partition whose guest-real `[0, size)` lives at host `host_base` in the pool.
pub fn add_partition(size: u64, host_base: PhysAddr) -> Result<&'static Partition, String> {
    let hv = hypervisor().ok_or_else(|| String::from("no hypervisor"))?;
    hv.add_partition(0, size, host_base)
        .map_err(|e| format!("add_partition: {e:?}"))
}

/// The `sc 1` handler: r3 = opcode, r4.. = arguments; r3 = status, r4.. = outputs.
fn handle_hypercall(gpr: &mut [u64; 32]) {
    let hv = HYPERVISOR.get();
    let caller = this_cpu().caller_partition.load(Ordering::Acquire);
    let partition = hv.and_then(|hv| u32::try_from(caller).ok().and_then(|id| hv.partition(id)));
    let (Some(hv), Some(partition)) = (hv, partition) else {
        // Only a partition makes hypercalls; the hypervisor itself has nobody to call.
        gpr[3] = H_PRIVILEGE as u64;
        return;
    };
    let mut args = [0u64; HCALL_ARGS];
    args.copy_from_slice(&gpr[4..4 + HCALL_ARGS]);
    let result = hv.dispatch(partition, gpr[3], &args);
    gpr[3] = result.status as u64;
    for (slot, value) in gpr[4..].iter_mut().zip(result.out) {
        *slot = value;
    }
}

/// Copies `bytes` into partition memory at guest-real address `gra` (what a partition's
/// own stores would do; the test code plays the partition).
pub fn guest_write(partition: &Partition, gra: u64, bytes: &[u8]) -> Result<(), String> {
    let host = partition
        .to_host(gra, bytes.len() as u64)
        .ok_or_else(|| format!("guest {gra:#x}+{:#x} is outside the partition", bytes.len()))?;
    // `to_host` checked the whole range lies in the partition's memory, which is in the
    // partition pool, whose owned RAM checks it again.
    if !partition_ram()?.write(host, bytes) {
        return Err(format!(
            "host {host:#x}+{:#x} is outside the pool",
            bytes.len()
        ));
    }
    Ok(())
}

/// Copies partition memory at guest-real address `gra` into `out`.
pub fn guest_read(partition: &Partition, gra: u64, out: &mut [u8]) -> Result<(), String> {
    let host = partition
        .to_host(gra, out.len() as u64)
        .ok_or_else(|| format!("guest {gra:#x}+{:#x} is outside the partition", out.len()))?;
    if !partition_ram()?.read(host, out) {
        return Err(format!(
            "host {host:#x}+{:#x} is outside the pool",
            out.len()
        ));
    }
    Ok(())
}

fn partition_ram() -> Result<&'static crate::mm::phys::OwnedRam, String> {
    super::platform()
        .map(|platform| platform.partition_ram())
        .ok_or_else(|| String::from("no platform"))
}
