//! Exception reports: the saved state of an interrupted context (the trap frame the vector
//! code builds), the names of the POWER8 interrupt vectors, and a readable report with the
//! faulting address as symbol + offset.
//!
//! Resources: POWER ISA 2.07 Book III chapter 6 (vector offsets, SRR/HSRR use); skiboot
//! core/exceptions.c (dump_regs: the report layout engineers are used to).

use core::fmt::{self, Write};

/// The state saved on entry to every interrupt. The layout is shared with boot/defs.S
/// (`TF_*` offsets): change both together.
#[repr(C)]
#[derive(Clone, Debug)]
pub struct TrapFrame {
    /// ELFv2 stack frame header (back chain, CR save, LR save, TOC save).
    pub abi_header: [u64; 4],
    /// r0..r31 of the interrupted context.
    pub gpr: [u64; 32],
    /// Count register.
    pub ctr: u64,
    /// Link register.
    pub lr: u64,
    /// Condition register.
    pub cr: u64,
    /// Fixed-point exception register.
    pub xer: u64,
    /// SRR0: where an SRR-type interrupt happened (or the instruction after `sc`).
    pub srr0: u64,
    /// SRR1: the interrupted MSR plus interrupt-specific bits.
    pub srr1: u64,
    /// HSRR0: as SRR0, for hypervisor interrupts.
    pub hsrr0: u64,
    /// HSRR1: as SRR1, for hypervisor interrupts.
    pub hsrr1: u64,
    /// Data address register.
    pub dar: u64,
    /// Data storage interrupt status register.
    pub dsisr: u64,
    /// Hypervisor data address register.
    pub hdar: u64,
    /// Hypervisor data storage interrupt status register.
    pub hdsisr: u64,
    /// Vector offset (0x100..0x1700).
    pub vector: u64,
    /// The handler's own MSR on entry.
    pub msr: u64,
    /// FPSCR of the interrupted context.
    pub fpscr: u64,
    /// Keeps `vscr` 16-byte aligned, as `stvx` needs.
    pub pad: u64,
    /// VSCR of the interrupted context (in the low word of the 16 bytes `stvx` stores).
    pub vscr: [u64; 2],
    /// VSR0..63 of the interrupted context (FPRs are VSR0..31's high halves, VRs VSR32..63).
    pub vsr: [[u64; 2]; 64],
}

impl Default for TrapFrame {
    fn default() -> Self {
        Self {
            abi_header: [0; 4],
            gpr: [0; 32],
            ctr: 0,
            lr: 0,
            cr: 0,
            xer: 0,
            srr0: 0,
            srr1: 0,
            hsrr0: 0,
            hsrr1: 0,
            dar: 0,
            dsisr: 0,
            hdar: 0,
            hdsisr: 0,
            vector: 0,
            msr: 0,
            fpscr: 0,
            pad: 0,
            vscr: [0; 2],
            vsr: [[0; 2]; 64],
        }
    }
}

/// Name of an interrupt vector.
pub fn vector_name(vector: u64) -> &'static str {
    match vector {
        0x100 => "System Reset",
        0x200 => "Machine Check",
        0x300 => "Data Storage",
        0x380 => "Data Segment",
        0x400 => "Instruction Storage",
        0x480 => "Instruction Segment",
        0x500 => "External",
        0x600 => "Alignment",
        0x700 => "Program",
        0x800 => "Floating-Point Unavailable",
        0x900 => "Decrementer",
        0x980 => "Hypervisor Decrementer",
        0xa00 => "Directed Privileged Doorbell",
        0xc00 => "System Call",
        0xd00 => "Trace",
        0xe00 => "Hypervisor Data Storage",
        0xe20 => "Hypervisor Instruction Storage",
        0xe40 => "Hypervisor Emulation Assistance",
        0xe60 => "Hypervisor Maintenance",
        0xe80 => "Directed Hypervisor Doorbell",
        0xf00 => "Performance Monitor",
        0xf20 => "Vector Unavailable",
        0xf40 => "VSX Unavailable",
        0xf60 => "Facility Unavailable",
        0xf80 => "Hypervisor Facility Unavailable",
        0x1500 => "Denormalisation",
        _ => "Unknown",
    }
}

/// Whether the vector saves state in HSRR0/1 and returns with `hrfid` (ISA 2.07 6.5).
pub fn uses_hsrr(vector: u64) -> bool {
    matches!(
        vector,
        0x980 | 0xe00 | 0xe20 | 0xe40 | 0xe60 | 0xe80 | 0xf80
    )
}

impl TrapFrame {
    /// The address of the interrupted instruction (or the one after it for `sc`).
    pub fn fault_address(&self) -> u64 {
        if uses_hsrr(self.vector) {
            self.hsrr0
        } else {
            self.srr0
        }
    }

    /// Resumes after the interrupted instruction (used when a test expected the fault).
    pub fn skip_instruction(&mut self) {
        if uses_hsrr(self.vector) {
            self.hsrr0 = self.hsrr0.wrapping_add(4);
        } else {
            self.srr0 = self.srr0.wrapping_add(4);
        }
    }
}

/// Looks up the symbol containing an address: `Some((name, offset))`.
pub trait SymbolLookup {
    /// The symbol that contains `address`, and the offset into it.
    fn lookup(&self, address: u64) -> Option<(&str, u64)>;
}

struct Symbolized<'a>(u64, &'a dyn SymbolLookup);

impl fmt::Display for Symbolized<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1.lookup(self.0) {
            Some((name, offset)) => write!(f, "{:#018x} <{name}+{offset:#x}>", self.0),
            None => write!(f, "{:#018x}", self.0),
        }
    }
}

/// Writes a readable report of an interrupt: `fatal` for one that ends the run, otherwise
/// one a test expected.
pub fn write_report(
    out: &mut dyn Write,
    frame: &TrapFrame,
    symbols: &dyn SymbolLookup,
    fatal: bool,
) -> fmt::Result {
    writeln!(out, "***********************************************")?;
    let kind = if fatal {
        "Fatal exception"
    } else {
        "Expected exception"
    };
    writeln!(
        out,
        "{kind} {:#x}: {}",
        frame.vector,
        vector_name(frame.vector)
    )?;
    writeln!(out, " at {}", Symbolized(frame.fault_address(), symbols))?;
    writeln!(out, " LR  {}", Symbolized(frame.lr, symbols))?;
    writeln!(out, " SRR0 {:#018x}  SRR1 {:#018x}", frame.srr0, frame.srr1)?;
    writeln!(
        out,
        " HSRR0 {:#018x}  HSRR1 {:#018x}",
        frame.hsrr0, frame.hsrr1
    )?;
    writeln!(out, " DAR {:#018x}  DSISR {:#010x}", frame.dar, frame.dsisr)?;
    writeln!(
        out,
        " HDAR {:#018x}  HDSISR {:#010x}",
        frame.hdar, frame.hdsisr
    )?;
    writeln!(
        out,
        " CTR {:#018x}  CR {:#010x}  XER {:#018x}",
        frame.ctr, frame.cr, frame.xer
    )?;
    for row in 0..8 {
        let r = row * 4;
        writeln!(
            out,
            " R{:<2} {:#018x}  R{:<2} {:#018x}  R{:<2} {:#018x}  R{:<2} {:#018x}",
            r,
            frame.gpr[r],
            r + 1,
            frame.gpr[r + 1],
            r + 2,
            frame.gpr[r + 2],
            r + 3,
            frame.gpr[r + 3]
        )?;
    }
    Ok(())
}

/// A symbol table in the image: text lines `<hex address> <name>` sorted by address, as
/// qemu-run.sh writes them after linking (from `llvm-nm -n`). NUL bytes end it.
pub struct TextSymbols<'a> {
    table: &'a [u8],
}

impl<'a> TextSymbols<'a> {
    /// Wraps a table (possibly empty or padded with NULs).
    pub fn new(table: &'a [u8]) -> Self {
        let end = table.iter().position(|&b| b == 0).unwrap_or(table.len());
        Self {
            table: &table[..end],
        }
    }

    fn entries(&self) -> impl Iterator<Item = (u64, &'a str)> + '_ {
        let table: &'a [u8] = self.table;
        table.split(|&b| b == b'\n').filter_map(|line| {
            let line = core::str::from_utf8(line).ok()?;
            let (address, name) = line.split_once(' ')?;
            Some((u64::from_str_radix(address, 16).ok()?, name))
        })
    }
}

impl SymbolLookup for TextSymbols<'_> {
    fn lookup(&self, address: u64) -> Option<(&str, u64)> {
        // Sorted by address: the last entry at or below `address` contains it.
        self.entries()
            .take_while(|&(start, _)| start <= address)
            .last()
            .map(|(start, name)| (name, address - start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::String;

    #[test]
    fn symbol_lookup_finds_the_enclosing_symbol() {
        let table = b"20012000 boot_linked\n20012400 tcefw_boot\n20013000 memcpy\n\0\0\0";
        let symbols = TextSymbols::new(table);
        assert_eq!(symbols.lookup(0x20012404), Some(("tcefw_boot", 4)));
        assert_eq!(symbols.lookup(0x20012000), Some(("boot_linked", 0)));
        assert_eq!(symbols.lookup(0x20000000), None);
        assert_eq!(TextSymbols::new(b"garbage\n\xff\xfe").lookup(5), None);
    }

    #[test]
    fn report_names_vector_and_symbol() {
        let mut frame = TrapFrame {
            vector: 0x700,
            srr0: 0x20012404,
            ..Default::default()
        };
        frame.gpr[3] = 0xdead;
        let table = b"20012400 tcefw_boot\n";
        let mut out = String::new();
        write_report(&mut out, &frame, &TextSymbols::new(table), true).unwrap();
        assert!(out.contains("Fatal exception 0x700: Program"), "{out}");
        assert!(out.contains("<tcefw_boot+0x4>"), "{out}");
        assert!(out.contains("R3  0x000000000000dead"), "{out}");
    }

    #[test]
    fn hypervisor_vectors_use_hsrr() {
        let mut frame = TrapFrame {
            vector: 0xe40,
            hsrr0: 0x100,
            srr0: 0x200,
            ..Default::default()
        };
        assert_eq!(frame.fault_address(), 0x100);
        frame.skip_instruction();
        assert_eq!(frame.hsrr0, 0x104);
        assert!(!uses_hsrr(0xc00));
        // Must match the TF_* offsets in boot/defs.S.
        assert_eq!(core::mem::size_of::<TrapFrame>(), 1456);
        assert_eq!(core::mem::offset_of!(TrapFrame, vector), 384);
        assert_eq!(core::mem::offset_of!(TrapFrame, srr0), 320);
        assert_eq!(core::mem::offset_of!(TrapFrame, fpscr), 400);
        assert_eq!(core::mem::offset_of!(TrapFrame, vscr), 416);
        assert_eq!(core::mem::offset_of!(TrapFrame, vsr), 432);
    }
}
