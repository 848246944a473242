//! The state the vector code saves on entry to every interrupt, laid out as boot/defs.S
//! lays it out (`TF_*`): the assembly stores into it, the Rust handler reads and changes it,
//! and the exit path restores from it. The compiler checks every offset against the
//! assembly source itself (see the `const` block below), so the two cannot drift apart.
//!
//! Resources: POWER ISA 2.07 Book III chapter 6 (which interrupts use SRR0/1 and which
//! HSRR0/1); ELFv2 ABI 2.2.2 (the 32-byte stack frame header at the frame's base).

use super::asm::{asm_constant, DEFS_S};
use core::mem::{offset_of, size_of};

/// The state saved on entry to every interrupt (boot/defs.S `TF_*`).
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

/// The offset boot/defs.S gives `name`; a missing definition stops the build.
const fn defs_offset(name: &str) -> usize {
    match asm_constant(DEFS_S, name) {
        Some(value) => value as usize,
        None => panic!("boot/defs.S lacks a trap-frame offset TrapFrame needs"),
    }
}

// Every field the assembly touches, at the offset the assembly uses.
const _: () = {
    assert!(
        offset_of!(TrapFrame, gpr) == defs_offset("TF_GPR"),
        "TF_GPR"
    );
    assert!(
        offset_of!(TrapFrame, ctr) == defs_offset("TF_CTR"),
        "TF_CTR"
    );
    assert!(offset_of!(TrapFrame, lr) == defs_offset("TF_LR"), "TF_LR");
    assert!(offset_of!(TrapFrame, cr) == defs_offset("TF_CR"), "TF_CR");
    assert!(
        offset_of!(TrapFrame, xer) == defs_offset("TF_XER"),
        "TF_XER"
    );
    assert!(
        offset_of!(TrapFrame, srr0) == defs_offset("TF_SRR0"),
        "TF_SRR0"
    );
    assert!(
        offset_of!(TrapFrame, srr1) == defs_offset("TF_SRR1"),
        "TF_SRR1"
    );
    assert!(
        offset_of!(TrapFrame, hsrr0) == defs_offset("TF_HSRR0"),
        "TF_HSRR0"
    );
    assert!(
        offset_of!(TrapFrame, hsrr1) == defs_offset("TF_HSRR1"),
        "TF_HSRR1"
    );
    assert!(
        offset_of!(TrapFrame, dar) == defs_offset("TF_DAR"),
        "TF_DAR"
    );
    assert!(
        offset_of!(TrapFrame, dsisr) == defs_offset("TF_DSISR"),
        "TF_DSISR"
    );
    assert!(
        offset_of!(TrapFrame, hdar) == defs_offset("TF_HDAR"),
        "TF_HDAR"
    );
    assert!(
        offset_of!(TrapFrame, hdsisr) == defs_offset("TF_HDSISR"),
        "TF_HDSISR"
    );
    assert!(
        offset_of!(TrapFrame, vector) == defs_offset("TF_VECTOR"),
        "TF_VECTOR"
    );
    assert!(
        offset_of!(TrapFrame, msr) == defs_offset("TF_MSR"),
        "TF_MSR"
    );
    assert!(
        offset_of!(TrapFrame, fpscr) == defs_offset("TF_FPSCR"),
        "TF_FPSCR"
    );
    assert!(
        offset_of!(TrapFrame, vscr) == defs_offset("TF_VSCR"),
        "TF_VSCR"
    );
    assert!(
        offset_of!(TrapFrame, vsr) == defs_offset("TF_VSR"),
        "TF_VSR"
    );
    assert!(size_of::<TrapFrame>() == defs_offset("TF_SIZE"), "TF_SIZE");
    // stvx/lvx need 16-byte alignment; the frame sits on a 16-aligned stack.
    assert!(offset_of!(TrapFrame, vscr).is_multiple_of(16));
    assert!(offset_of!(TrapFrame, vsr).is_multiple_of(16));
    assert!(size_of::<TrapFrame>().is_multiple_of(16));
};

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
