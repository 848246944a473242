//! The boot sequence shared by both modes, and the end of a run.
//!
//! Bare mode (`-bios`): QEMU hands us its device tree; the console is the LPC UART through
//! XSCOM, HID0[HILE] is ours to set, the boot arguments come from the configuration blob
//! (`config_blob`), and the run ends through the ib700 watchdog.
//! Payload mode (`-kernel` under skiboot): skiboot's tree has `/ibm,opal`; the console and
//! HILE go through OPAL, our vectors replace skiboot's at 0 (as Linux does), and the run
//! ends with OPAL_CEC_POWER_DOWN. Nothing above this module cares which mode it is.
//!
//! Resources: skiboot core/init.c (what a payload receives: r3 = FDT, r8/r9 = OPAL),
//! Linux arch/powerpc/kernel/setup_64.c (copying vectors to 0), QEMU hw/ppc/pnv.c.

use super::config_blob::{self, CONFIG_BLOB_ADDRESS, CONFIG_BLOB_WINDOW};
use super::fault::TextSymbols;
use super::lpc::{LpcBus, LpcUart, IB700_ARM_PORT, IB700_TIMEOUT_NOW};
use super::machine::Machine;
use crate::arch::ppc64::{cpu, opal::Opal, opal::OpalConsole, percpu, smp, xscom::ChipXscom};
use crate::console;
use crate::hw::console::Sink;
use crate::mm::{
    block_cache::BlockCache, frame::BuddyAllocator, heap::TwoRegionHeap, phys, PhysAddr,
};
use alloc::vec::Vec;
use core::cell::UnsafeCell;
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

/// What the low block handed over (see boot/head.S).
#[derive(Clone, Copy, Debug)]
pub struct Handover {
    /// r3 at entry: the flattened device tree.
    pub fdt: PhysAddr,
    /// Where the low block ran: 0 in bare mode, the link address under skiboot.
    pub low_block: PhysAddr,
    /// r8 at entry under skiboot: OPAL base.
    pub opal_base: u64,
    /// r9 at entry under skiboot: OPAL entry.
    pub opal_entry: u64,
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
    /// text in bare mode (see [`super::config_blob`]); empty when there are none.
    pub boot_args: alloc::string::String,
    opal: Option<Opal>,
    lpc: Option<(ChipXscom, u64)>,
}

extern "C" {
    static __head_start: u8;
    static __head_end: u8;
    static __image_end: u8;
}

/// Bytes reserved for the symbol table that qemu-run.sh writes into the linked image.
pub const SYMBOL_TABLE_BYTES: usize = 96 * 1024;
#[used]
#[link_section = ".tcefw.symbols"]
static SYMBOL_TABLE: [u8; SYMBOL_TABLE_BYTES] = [0; SYMBOL_TABLE_BYTES];

const EARLY_HEAP_BYTES: usize = 2 << 20;
const MAIN_HEAP_BYTES: u64 = 64 << 20;
/// RAM kept apart for partitions, so that firmware memory and partition memory never mix.
const PARTITION_POOL_BYTES: u64 = 128 << 20;
/// The first 64 KiB hold the live low block (vectors, park loop) in both modes.
const LOW_RESERVED: PhysAddr = 0x1_0000;
/// skiboot loads the payload file from here; our segment starts 64 KiB in.
const PAYLOAD_LOAD_BASE: PhysAddr = 0x2000_0000;

#[repr(C, align(4096))]
struct EarlyArena(UnsafeCell<[u8; EARLY_HEAP_BYTES]>);
// SAFETY: handed to the heap once, which then owns it.
unsafe impl Sync for EarlyArena {}
static EARLY_ARENA: EarlyArena = EarlyArena(UnsafeCell::new([0; EARLY_HEAP_BYTES]));

/// The firmware heap (the global allocator).
#[cfg_attr(not(test), global_allocator)]
pub static HEAP: TwoRegionHeap = TwoRegionHeap::new();
/// The frame allocator for hardware tables.
pub static FRAMES: BuddyAllocator = BuddyAllocator::new();
/// TCE table levels come through this lock-free cache in front of [`FRAMES`], so that a
/// hypercall that needs a new level takes no lock while the cache has blocks.
pub static TABLE_BLOCKS: BlockCache<'static> = BlockCache::new(&FRAMES, 256);
static PLATFORM: Once<Platform> = Once::new();
static OPAL_CONSOLE: Once<OpalConsole> = Once::new();
static UART: Once<UartConsole> = Once::new();

/// The LPC UART as a console sink.
struct UartConsole {
    xscom: ChipXscom,
    eccb_pcb: u64,
    port: u16,
}

impl Sink for UartConsole {
    fn write_bytes(&self, bytes: &[u8]) {
        let uart = LpcUart::new(LpcBus::new(&self.xscom, self.eccb_pcb), self.port);
        for &byte in bytes {
            if byte == b'\n' && uart.put_byte(b'\r').is_err() {
                return;
            }
            if uart.put_byte(byte).is_err() {
                return;
            }
        }
    }
}

/// The platform, once boot has described it.
pub fn platform() -> Option<&'static Platform> {
    PLATFORM.get()
}

/// The image's symbol table, for fault reports.
pub fn symbols() -> TextSymbols<'static> {
    // SAFETY: the table is a static of that size, only ever read.
    TextSymbols::new(unsafe { phys::bytes(phys::addr_of(&SYMBOL_TABLE), SYMBOL_TABLE_BYTES) })
}

fn linker_address(symbol: &u8) -> PhysAddr {
    symbol as *const u8 as PhysAddr
}

/// The Rust entry, called by boot/entry.S on the boot CPU with the stack, TOC and MSR set.
#[no_mangle]
extern "C" fn tcefw_boot(fdt: u64, low_block: u64, opal_base: u64, opal_entry: u64) -> ! {
    let handover = Handover {
        fdt,
        low_block,
        opal_base,
        opal_entry,
    };
    // SAFETY: the early arena is a static used by nothing else.
    unsafe { HEAP.add_region(EARLY_ARENA.0.get() as usize, EARLY_HEAP_BYTES) };
    percpu::init_this_cpu(0, cpu::pir());
    let ran_in_place = low_block != 0;
    if ran_in_place {
        // Under skiboot: OPAL's console works before we read anything.
        // SAFETY: r8/r9 as skiboot handed them over.
        let opal = unsafe { Opal::new(opal_base, opal_entry) };
        console::set_sink(OPAL_CONSOLE.call_once(|| OpalConsole(opal)));
    }
    match bring_up(handover) {
        Ok(platform) => crate::firmware_main(platform),
        Err(message) => {
            crate::println!("tcefw: boot failed: {message}");
            end_run_failed("boot failed")
        }
    }
}

fn bring_up(handover: Handover) -> Result<&'static Platform, alloc::string::String> {
    use alloc::format;
    let fdt_size = {
        let mut header = [0u8; 8];
        // SAFETY: r3 points at the device tree; its header is at least 8 bytes.
        unsafe { phys::read_bytes(handover.fdt, &mut header) };
        if header[..4] != [0xd0, 0x0d, 0xfe, 0xed] {
            return Err(format!(
                "no device tree at r3 = {:#x} (bad magic)",
                handover.fdt
            ));
        }
        u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize
    };
    if fdt_size > 16 << 20 {
        return Err(format!(
            "device tree at {:#x} claims {fdt_size} bytes",
            handover.fdt
        ));
    }
    // SAFETY: the tree lies in RAM that nothing writes while we run; we exclude it from
    // every allocator below.
    let blob = unsafe { phys::bytes(handover.fdt, fdt_size) };
    let machine = Machine::parse(blob).map_err(|e| format!("device tree: {e}"))?;
    let mode = if machine.is_opal_payload() {
        BootMode::Payload
    } else {
        BootMode::Bare
    };
    if (mode == BootMode::Payload) != (handover.low_block != 0) {
        return Err(format!(
            "device tree says {} mode but the image ran from {:#x}",
            mode.name(),
            handover.low_block
        ));
    }
    console::set_time_source(cpu::timebase, machine.timebase_hz().unwrap_or(512_000_000));

    let mut opal = None;
    let mut lpc = None;
    match mode {
        BootMode::Payload => {
            // SAFETY: r8/r9 as skiboot handed them over (checked against the tree below).
            let handle = unsafe { Opal::new(handover.opal_base, handover.opal_entry) };
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
                .ok_or_else(|| alloc::string::String::from("device tree has no LPC UART"))?;
            let uart = UART.call_once(|| UartConsole {
                // SAFETY: the XSCOM base comes from the chip's xscom node.
                xscom: unsafe { ChipXscom::new(xscom_base) },
                eccb_pcb,
                port,
            });
            console::set_sink(uart);
            // SAFETY: as above.
            lpc = Some((unsafe { ChipXscom::new(xscom_base) }, eccb_pcb));
        }
    }

    // SAFETY: linker symbols; only their addresses are used.
    let (head_start, image_end) =
        unsafe { (linker_address(&__head_start), linker_address(&__image_end)) };
    let image_low = if mode == BootMode::Payload {
        PAYLOAD_LOAD_BASE
    } else {
        head_start
    };
    let boot_args = match mode {
        BootMode::Payload => alloc::string::String::from(machine.bootargs()),
        BootMode::Bare => bare_boot_args(&machine),
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
    let exclude = [
        (0, LOW_RESERVED),
        (image_low, image_end),
        (handover.fdt, handover.fdt + fdt_size as u64),
        config_window,
    ];
    let mut free = machine.free_ranges(&exclude);
    // The heap takes the top of the largest free range; the frame allocator the rest.
    let largest = free
        .iter()
        .enumerate()
        .max_by_key(|(_, (start, end))| end - start)
        .map(|(i, _)| i)
        .ok_or_else(|| alloc::string::String::from("no free RAM"))?;
    let (start, end) = free[largest];
    let heap_bytes = MAIN_HEAP_BYTES.min((end - start) / 2) & !0xfff;
    let heap_start = (end - heap_bytes) & !0xfff;
    // SAFETY: the range is free RAM (device tree memory minus reserved, image and tree).
    unsafe { HEAP.add_region(heap_start as usize, heap_bytes as usize) };
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
        // SAFETY: each range is free RAM that nothing else uses.
        unsafe { FRAMES.add_range(start, end) };
    }
    Ok(PLATFORM.call_once(|| Platform {
        mode,
        machine,
        free_ranges: free,
        partition_pool,
        boot_args,
        opal,
        lpc,
    }))
}

/// The text of the bare-mode configuration blob, if the harness placed a valid one; a blob
/// with the magic but a bad header is reported and ignored.
fn bare_boot_args(machine: &Machine) -> alloc::string::String {
    let window_in_ram = machine.memory.iter().any(|range| {
        range.base <= CONFIG_BLOB_ADDRESS && CONFIG_BLOB_ADDRESS + CONFIG_BLOB_WINDOW <= range.end()
    });
    if !window_in_ram {
        return alloc::string::String::new();
    }
    // SAFETY: the window is RAM (checked against the device tree's memory ranges) and no
    // allocator hands it out (it is excluded from all of them); it is only read.
    let window = unsafe { phys::bytes(CONFIG_BLOB_ADDRESS, CONFIG_BLOB_WINDOW as usize) };
    match config_blob::parse(window) {
        Ok(Some(text)) => {
            crate::log!(
                Notice,
                "CFG",
                "boot arguments from the blob at {CONFIG_BLOB_ADDRESS:#x}: {text}"
            );
            alloc::string::String::from(text)
        }
        Ok(None) => alloc::string::String::new(),
        Err(e) => {
            crate::log!(
                Warning,
                "CFG",
                "configuration blob at {CONFIG_BLOB_ADDRESS:#x} ignored: {e}"
            );
            alloc::string::String::new()
        }
    }
}

/// Under skiboot the vectors at 0 are skiboot's: put ours there, as Linux does.
fn install_vectors_at_zero() {
    // SAFETY: linker symbols; only their addresses are used.
    let (start, end) = unsafe { (linker_address(&__head_start), linker_address(&__head_end)) };
    let len = (end - start) as usize;
    // SAFETY: the low block is part of our image; physical 0..len is the vector area, which
    // skiboot gives up to its payload (it is outside skiboot's reserved ranges).
    unsafe { cpu::copy_to_real(0, phys::bytes(start, len)) };
    cpu::flush_icache_range(0, len as u64);
}

impl Platform {
    /// The XSCOM window at `base`, if the device tree names a chip whose XSCOM is there.
    pub fn xscom_at(&self, base: u64) -> Option<ChipXscom> {
        self.machine
            .chips
            .iter()
            .any(|chip| chip.xscom.base == base)
            // SAFETY: `base` is a chip's XSCOM base as the device tree gives it.
            .then(|| unsafe { ChipXscom::new(base) })
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
        halt()
    }
}

/// Ends the run as failed, from anywhere (panics, unexpected exceptions).
pub fn end_run_failed(reason: &str) -> ! {
    console::emergency_print(format_args!("tcefw: {reason}\n"));
    match PLATFORM.get() {
        Some(platform) => platform.end_run(false),
        None => {
            console::emergency_print(format_args!("tcefw: run ended: FAIL\n"));
            halt()
        }
    }
}

fn halt() -> ! {
    loop {
        cpu::relax();
    }
}
