//! Bring-up of the platform, shared by both modes: read the device tree, set the console
//! and HILE the way the mode needs, find the boot arguments (bare mode: the configuration
//! blob), carve free RAM into the heap, the partition pool and the
//! frame allocator, and describe the result as a [`Platform`]. Also the end of a run.
//!
//! Resources: skiboot core/init.c (what a payload receives) and core/mem_region.c (free RAM
//! is the memory nodes minus every reserved range); Linux arch/powerpc/kernel/setup_64.c
//! (copying vectors to 0); QEMU hw/ppc/pnv.c.
#![forbid(unsafe_code)]

use super::{console, FRAMES, HEAP};
use crate::arch::ppc64::boot::{image_span, install_vectors_at_zero, Handover};
use crate::arch::ppc64::{cpu, opal::Opal, smp, xscom::ChipXscom};
use crate::mm::phys::{BootAuthority, OwnedRam};
use crate::mm::PhysAddr;
use crate::platform::config_blob::{self, CONFIG_BLOB_ADDRESS, CONFIG_BLOB_WINDOW};
use crate::platform::lpc::{LpcBus, IB700_ARM_PORT, IB700_TIMEOUT_NOW};
use crate::platform::machine::Machine;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use spin::Once;

/// How the image was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootMode {
    /// As the machine's firmware (`-bios`).
    Bare,
    /// As skiboot's payload (`-kernel`).
    Payload,
}

impl BootMode {
    /// Lower-case name, as qemu-run.sh spells it.
    pub fn name(self) -> &'static str {
        match self {
            BootMode::Bare => "bare",
            BootMode::Payload => "payload",
        }
    }
}

/// Everything the rest of the firmware may ask of the platform.
pub struct Platform {
    /// The boot mode.
    pub mode: BootMode,
    /// The machine as the device tree describes it.
    pub machine: Machine,
    /// Free RAM left for the frame allocator, after the heap took its part.
    pub free_ranges: Vec<(PhysAddr, PhysAddr)>,
    /// RAM set aside for partitions (`[start, end)`): the only memory a TCE may point at.
    /// Empty when the machine has too little RAM to spare it.
    pub partition_pool: (PhysAddr, PhysAddr),
    /// The boot arguments: `/chosen/bootargs` in payload mode, the configuration blob's
    /// text in bare mode (see [`crate::platform::config_blob`]); empty when there are none.
    pub boot_args: String,
    partition_ram: OwnedRam,
    opal: Option<Opal>,
    lpc: Option<(ChipXscom, u64)>,
    authority: &'static BootAuthority,
}

const MAIN_HEAP_BYTES: u64 = 64 << 20;
/// RAM kept apart for partitions, so that firmware memory and partition memory never mix.
const PARTITION_POOL_BYTES: u64 = 128 << 20;
/// The first 64 KiB hold the live low block (vectors, park loop) in both modes.
const LOW_RESERVED: PhysAddr = 0x1_0000;
/// skiboot loads the payload file from here; our segment starts 64 KiB in.
const PAYLOAD_LOAD_BASE: PhysAddr = 0x2000_0000;

static PLATFORM: Once<Platform> = Once::new();

/// The platform, once boot has described it.
pub fn platform() -> Option<&'static Platform> {
    PLATFORM.get()
}

/// Reads the tree, sets the console and HILE, and gives free RAM to the allocators.
pub(super) fn bring_up(
    handover: &Handover,
    authority: &'static BootAuthority,
) -> Result<&'static Platform, String> {
    let blob = handover.device_tree()?;
    let fdt_size = blob.len();
    let machine = Machine::parse(blob).map_err(|e| format!("device tree: {e}"))?;
    let mode = if machine.is_opal_payload() {
        BootMode::Payload
    } else {
        BootMode::Bare
    };
    if (mode == BootMode::Payload) != (handover.low_block() != 0) {
        return Err(format!(
            "device tree says {} mode but the image ran from {:#x}",
            mode.name(),
            handover.low_block()
        ));
    }
    crate::console::set_time_source(cpu::timebase, machine.timebase_hz().unwrap_or(512_000_000));

    let mut opal = None;
    let mut lpc = None;
    match mode {
        BootMode::Payload => {
            let handle = handover
                .opal()
                .ok_or_else(|| String::from("payload mode without OPAL's entry"))?;
            install_vectors_at_zero();
            let rc = handle.set_hile_le();
            if rc != 0 {
                return Err(format!("OPAL_REINIT_CPUS(HILE_LE) failed: {rc}"));
            }
            opal = Some(handle);
        }
        BootMode::Bare => {
            cpu::set_hile();
            let (xscom_base, eccb_pcb, port) = machine
                .console_uart()
                .ok_or_else(|| String::from("device tree has no LPC UART"))?;
            // The XSCOM base comes from the chip's xscom node.
            console::use_uart(ChipXscom::new(authority, xscom_base), eccb_pcb, port);
            lpc = Some((ChipXscom::new(authority, xscom_base), eccb_pcb));
        }
    }

    let (head_start, image_end) = image_span();
    let image_low = if mode == BootMode::Payload {
        PAYLOAD_LOAD_BASE
    } else {
        head_start
    };
    let boot_args = match mode {
        BootMode::Payload => String::from(machine.bootargs()),
        BootMode::Bare => bare_boot_args(&machine, authority),
    };
    // In bare mode the configuration blob's window stays out of the allocators (whether a
    // blob is there or not), so that nothing the firmware allocates lands on it.
    let config_window = match mode {
        BootMode::Bare => (
            CONFIG_BLOB_ADDRESS,
            CONFIG_BLOB_ADDRESS + CONFIG_BLOB_WINDOW,
        ),
        BootMode::Payload => (0, 0),
    };
    let fdt = handover.fdt_address();
    let exclude = [
        (0, LOW_RESERVED),
        (image_low, image_end),
        (fdt, fdt + fdt_size as u64),
        config_window,
    ];
    let mut free = machine.free_ranges(&exclude);
    // The heap takes the top of the largest free range; the frame allocator the rest.
    let largest = free
        .iter()
        .enumerate()
        .max_by_key(|(_, (start, end))| end - start)
        .map(|(i, _)| i)
        .ok_or_else(|| String::from("no free RAM"))?;
    let (start, end) = free[largest];
    let heap_bytes = MAIN_HEAP_BYTES.min((end - start) / 2) & !0xfff;
    let heap_start = (end - heap_bytes) & !0xfff;
    // Free RAM: device tree memory minus reserved ranges, the image and the tree.
    HEAP.add_ram(authority.claim_ram(heap_start, heap_start + heap_bytes));
    free[largest].1 = heap_start;
    // The partition pool comes from the top of what is left of that range, 16 MiB aligned
    // so that 16 MiB IOMMU pages can map it.
    let partition_pool = {
        let (start, end) = free[largest];
        let pool_start = end.saturating_sub(PARTITION_POOL_BYTES) & !((16 << 20) - 1);
        if pool_start > start && end - pool_start >= PARTITION_POOL_BYTES {
            free[largest].1 = pool_start;
            (pool_start, pool_start + PARTITION_POOL_BYTES)
        } else {
            (0, 0)
        }
    };
    for &(start, end) in &free {
        // Each range is free RAM that nothing else uses.
        FRAMES.add_ram(authority.claim_ram(start, end));
    }
    Ok(PLATFORM.call_once(|| Platform {
        mode,
        machine,
        free_ranges: free,
        partition_pool,
        boot_args,
        partition_ram: authority.claim_ram(partition_pool.0, partition_pool.1),
        opal,
        lpc,
        authority,
    }))
}

/// The text of the bare-mode configuration blob, if the harness placed a valid one; a blob
/// with the magic but a bad header is reported and ignored.
fn bare_boot_args(machine: &Machine, authority: &BootAuthority) -> String {
    let window_in_ram = machine.memory.iter().any(|range| {
        range.base <= CONFIG_BLOB_ADDRESS && CONFIG_BLOB_ADDRESS + CONFIG_BLOB_WINDOW <= range.end()
    });
    if !window_in_ram {
        return String::new();
    }
    // The window is RAM (checked against the device tree's memory ranges) and no allocator
    // hands it out (it is excluded from all of them); it is only read.
    let end = CONFIG_BLOB_ADDRESS + CONFIG_BLOB_WINDOW;
    let mut window = alloc::vec![0u8; CONFIG_BLOB_WINDOW as usize];
    if !authority
        .claim_ram(CONFIG_BLOB_ADDRESS, end)
        .read(CONFIG_BLOB_ADDRESS, &mut window)
    {
        return String::new();
    }
    match config_blob::parse(&window) {
        Ok(Some(text)) => {
            crate::log!(
                Notice,
                "CFG",
                "boot arguments from the blob at {CONFIG_BLOB_ADDRESS:#x}: {text}"
            );
            String::from(text)
        }
        Ok(None) => String::new(),
        Err(e) => {
            crate::log!(
                Warning,
                "CFG",
                "configuration blob at {CONFIG_BLOB_ADDRESS:#x} ignored: {e}"
            );
            String::new()
        }
    }
}

impl Platform {
    /// The XSCOM window at `base`, if the device tree names a chip whose XSCOM is there.
    pub fn xscom_at(&self, base: u64) -> Option<ChipXscom> {
        self.machine
            .chips
            .iter()
            .any(|chip| chip.xscom.base == base)
            // `base` is a chip's XSCOM base as the device tree gives it.
            .then(|| ChipXscom::new(self.authority, base))
    }

    /// The boot authority, for the device handles bring-up makes.
    pub(super) fn authority(&self) -> &'static BootAuthority {
        self.authority
    }

    /// The partition pool as owned RAM (empty when there is none).
    pub(super) fn partition_ram(&self) -> &OwnedRam {
        &self.partition_ram
    }

    /// Releases every other hardware thread the device tree lists, each with its own stack
    /// and per-CPU area, and returns how many came online.
    pub fn start_secondaries(&self) -> usize {
        let me = cpu::pir();
        let others: Vec<u32> = self
            .machine
            .cpus
            .iter()
            .filter(|c| c.available)
            .flat_map(|c| {
                if c.threads.is_empty() {
                    alloc::vec![c.pir]
                } else {
                    c.threads.clone()
                }
            })
            .filter(|&pir| pir != me)
            .collect();
        // Generous: under TCG on a loaded host a thread can take a while to be scheduled, and
        // the wait ends as soon as every thread has checked in.
        let five_seconds = 5 * self.machine.timebase_hz().unwrap_or(512_000_000);
        smp::release_secondaries(self.opal.as_ref(), &others, others.len(), five_seconds)
    }

    /// Ends the run: prints the verdict line qemu-run.sh looks for and powers off.
    pub fn end_run(&self, passed: bool) -> ! {
        crate::println!("tcefw: run ended: {}", if passed { "PASS" } else { "FAIL" });
        if let Some(opal) = &self.opal {
            opal.power_down();
        }
        if let Some((xscom, eccb_pcb)) = &self.lpc {
            // QEMU runs with `-device ib700 -action watchdog=poweroff`: arming it with the
            // zero timeout powers the machine off.
            if let Err(e) =
                LpcBus::new(xscom, *eccb_pcb).io_write(IB700_ARM_PORT, IB700_TIMEOUT_NOW, 1)
            {
                crate::println!("tcefw: cannot arm the ib700 watchdog: {e}");
            }
        }
        super::halt()
    }
}
