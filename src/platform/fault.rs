//! Exception reports: the names of the POWER8 interrupt vectors and a readable report of an
//! interrupted context (the trap frame of `crate::hw::trap`), with the faulting address as
//! symbol + offset from the image's own symbol table.
//!
//! Resources: POWER ISA 2.07 Book III chapter 6 (vector offsets, SRR/HSRR use); skiboot
//! core/exceptions.c (dump_regs: the report layout engineers are used to).

use crate::hw::trap::TrapFrame;
use core::fmt::{self, Write};

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
}
