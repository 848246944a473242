//! Per-opcode call counts with no allocation: what the guest asked for, for the log. One
//! instance counts the hypercalls served, another the ones we do not implement (each of
//! those gets H_FUNCTION, and [`Recorded::First`] tells the caller to log it — once per
//! opcode — so the log says what a guest wanted without one line per call).
//!
//! A fixed table of opcodes in first-seen order: a guest calling more distinct opcodes than
//! it holds is counted in [`HcallCounts::overflow`], never dropped silently and never a
//! reason to allocate on the hypercall path.
//!
//! Resources: QEMU hw/ppc/spapr_hcall.c (spapr_hypercall: "Unimplemented SPAPR hcall"
//! logged per call, here per opcode).

/// Distinct opcodes one table holds (PAPR defines about a hundred; a Linux boot calls about
/// fifteen).
pub const COUNTED_OPCODES: usize = 64;

/// What [`HcallCounts::record`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// The first call of this opcode: log it.
    First,
    /// Seen before: counted.
    Again,
    /// The table is full: counted in the overflow only.
    Overflow,
}

/// Counts by opcode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HcallCounts {
    opcodes: [u64; COUNTED_OPCODES],
    counts: [u64; COUNTED_OPCODES],
    used: usize,
    overflow: u64,
}

impl Default for HcallCounts {
    fn default() -> Self {
        Self::new()
    }
}

impl HcallCounts {
    /// An empty table.
    pub const fn new() -> Self {
        HcallCounts {
            opcodes: [0; COUNTED_OPCODES],
            counts: [0; COUNTED_OPCODES],
            used: 0,
            overflow: 0,
        }
    }

    /// Counts one call of `opcode`.
    pub fn record(&mut self, opcode: u64) -> Recorded {
        if let Some(i) = self.opcodes[..self.used].iter().position(|&o| o == opcode) {
            self.counts[i] += 1;
            return Recorded::Again;
        }
        if self.used == COUNTED_OPCODES {
            self.overflow += 1;
            return Recorded::Overflow;
        }
        self.opcodes[self.used] = opcode;
        self.counts[self.used] = 1;
        self.used += 1;
        Recorded::First
    }

    /// Calls of `opcode` counted.
    pub fn count(&self, opcode: u64) -> u64 {
        self.iter()
            .find(|&(o, _)| o == opcode)
            .map_or(0, |(_, n)| n)
    }

    /// (opcode, calls) in first-seen order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.opcodes[..self.used]
            .iter()
            .copied()
            .zip(self.counts[..self.used].iter().copied())
    }

    /// Calls of opcodes that did not fit in the table.
    pub fn overflow(&self) -> u64 {
        self.overflow
    }

    /// Every call counted.
    pub fn total(&self) -> u64 {
        self.counts[..self.used].iter().sum::<u64>() + self.overflow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_call_of_each_opcode_is_reported_once_and_all_are_counted() {
        let mut counts = HcallCounts::new();
        assert_eq!(counts.record(0x1e0), Recorded::First);
        assert_eq!(counts.record(0x1e0), Recorded::Again);
        assert_eq!(counts.record(0x2c), Recorded::First);
        assert_eq!(counts.record(0x1e0), Recorded::Again);
        assert_eq!(counts.count(0x1e0), 3);
        assert_eq!(counts.count(0x2c), 1);
        assert_eq!(counts.count(0x99), 0);
        assert_eq!(
            counts.iter().collect::<alloc::vec::Vec<_>>(),
            [(0x1e0, 3), (0x2c, 1)]
        );
    }

    #[test]
    fn a_full_table_counts_the_rest_as_overflow() {
        let mut counts = HcallCounts::new();
        for opcode in 0..COUNTED_OPCODES as u64 {
            assert_eq!(counts.record(opcode * 4), Recorded::First);
        }
        assert_eq!(counts.record(0xf000_0000), Recorded::Overflow);
        assert_eq!(counts.record(u64::MAX), Recorded::Overflow);
        assert_eq!(counts.record(0), Recorded::Again);
        assert_eq!(counts.overflow(), 2);
        assert_eq!(counts.total(), COUNTED_OPCODES as u64 + 3);
    }
}
