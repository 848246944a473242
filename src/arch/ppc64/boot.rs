//! The boot CPU's way into Rust, and what the boot protocol hands over. boot/entry.S calls
//! `tcefw_boot` with the stack, TOC and MSR set; it sets up this CPU's per-CPU area, wraps
//! the raw register values in a [`Handover`] and calls the boot hook. Also the image's own
//! facts that only the linker knows: where it lies, its low block, and the symbol table that
//! qemu-run.sh writes into it after linking.
//!
//! Resources: skiboot core/init.c (what a payload receives: r3 = FDT, r8/r9 = OPAL base and
//! entry); Linux arch/powerpc/kernel/setup_64.c (copying the vectors to 0); linker.ld.

use super::opal::Opal;
use super::{cpu, hooks, percpu};
use crate::mm::phys::{self, BootAuthority};
use crate::mm::PhysAddr;
use alloc::format;
use alloc::string::String;

/// The device tree may not claim more than this (QEMU's is 3 KiB, skiboot's 18 KiB).
const MAX_FDT_BYTES: usize = 16 << 20;

/// What the boot protocol handed over, as the boot CPU's registers held it. Only the entry
/// below makes one, so its accessors may trust the values.
pub struct Handover {
    fdt: PhysAddr,
    low_block: PhysAddr,
    opal: Option<Opal>,
}

impl Handover {
    /// r3 at entry: the physical address of the flattened device tree.
    pub fn fdt_address(&self) -> PhysAddr {
        self.fdt
    }

    /// Where the low block ran: 0 in bare mode (QEMU's `-bios` at 0), the link address
    /// under skiboot, which runs a payload in place.
    pub fn low_block(&self) -> PhysAddr {
        self.low_block
    }

    /// OPAL's entry (r8/r9 at entry), when the image ran in place under skiboot.
    pub fn opal(&self) -> Option<Opal> {
        self.opal
    }

    /// The device tree blob at r3, once its magic is checked and its `totalsize` is sane.
    pub fn device_tree(&self) -> Result<&'static [u8], String> {
        let mut header = [0u8; 8];
        // SAFETY: r3 points at the device tree (the boot protocol); its header is at least
        // 8 bytes of RAM.
        unsafe { phys::read_bytes(self.fdt, &mut header) };
        if header[..4] != [0xd0, 0x0d, 0xfe, 0xed] {
            return Err(format!(
                "no device tree at r3 = {:#x} (bad magic)",
                self.fdt
            ));
        }
        let size = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if size > MAX_FDT_BYTES {
            return Err(format!(
                "device tree at {:#x} claims {size} bytes",
                self.fdt
            ));
        }
        // SAFETY: the tree lies in RAM that nothing writes while we run (boot code keeps it
        // out of every allocator).
        Ok(unsafe { phys::bytes(self.fdt, size) })
    }
}

/// The Rust entry, called by boot/entry.S on the boot CPU with the stack, TOC and MSR set.
#[no_mangle]
extern "C" fn tcefw_boot(fdt: u64, low_block: u64, opal_base: u64, opal_entry: u64) -> ! {
    percpu::init_this_cpu(0, cpu::pir());
    // SAFETY: r8/r9 as skiboot handed them over; in bare mode they are junk and unused.
    let opal = (low_block != 0).then(|| unsafe { Opal::new(opal_base, opal_entry) });
    // SAFETY: the one authority, made here, goes to the boot hook: startup, which takes its
    // addresses from the device tree, the boot protocol and the hardware it programs.
    let authority = unsafe { BootAuthority::new() };
    let handover = Handover {
        fdt,
        low_block,
        opal,
    };
    (hooks::hooks().boot)(handover, authority)
}

extern "C" {
    static __head_start: u8;
    static __head_end: u8;
    static __image_end: u8;
}

fn linker_address(symbol: &u8) -> PhysAddr {
    symbol as *const u8 as PhysAddr
}

/// Where the linked image lies: from its low block to the end of .bss (the stacks included).
pub fn image_span() -> (PhysAddr, PhysAddr) {
    // SAFETY: linker symbols; only their addresses are used.
    unsafe { (linker_address(&__head_start), linker_address(&__image_end)) }
}

/// Under skiboot the vectors at physical 0 are skiboot's: put ours there, as Linux does.
pub fn install_vectors_at_zero() {
    // SAFETY: linker symbols; only their addresses are used.
    let (start, end) = unsafe { (linker_address(&__head_start), linker_address(&__head_end)) };
    let len = (end - start) as usize;
    // SAFETY: the low block is part of our image; physical 0..len is the vector area, which
    // skiboot gives up to its payload (it is outside skiboot's reserved ranges) and which
    // boot code keeps out of every allocator.
    unsafe { cpu::copy_to_real(0, phys::bytes(start, len)) };
    cpu::flush_icache_range(0, len as u64);
}

/// Bytes reserved for the symbol table that qemu-run.sh writes into the linked image.
pub const SYMBOL_TABLE_BYTES: usize = 96 * 1024;
#[used]
#[link_section = ".tcefw.symbols"]
static SYMBOL_TABLE: [u8; SYMBOL_TABLE_BYTES] = [0; SYMBOL_TABLE_BYTES];

/// The image's symbol table: `<hex address> <name>` lines sorted by address, NUL-padded.
pub fn symbol_table() -> &'static [u8] {
    // SAFETY: the table is a static of that size, only ever read (phys::bytes hides the
    // address from the optimiser, which would otherwise read the zeros it was linked with).
    unsafe { phys::bytes(phys::addr_of(&SYMBOL_TABLE), SYMBOL_TABLE_BYTES) }
}
