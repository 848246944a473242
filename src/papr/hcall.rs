//! The PAPR hypercall ABI of a partition: opcodes, the decoding of r3/r4.. into a typed
//! request (once), and the dispatcher that serves each request from the partition's HPT,
//! XICS, RTAS and vty and returns the status, the output registers and what the vCPU must do.
//!
//! The exit path (issue 10/11's `sc 1` handler) does, per hypercall:
//! 1. refuse a call from guest problem state (SRR1[PR]) with H_PRIVILEGE;
//! 2. find the partition from LPIDR ([`crate::hv::LpidTable::get`]) and take its lock;
//! 3. [`route`] the opcode: the TCE calls go to the TCE service (`hcall::Hypervisor`), the
//!    rest to [`Papr::handle`] with a [`Caller`] naming the partition's HPT, the TLB
//!    instructions, its guest memory, the platform and the calling vCPU's server number;
//! 4. write [`PaprReturn::status`] to r3 and [`PaprReturn::out`] to r4..r12, and carry out
//!    [`PaprReturn::effect`] (LPCR[ILE] on every vCPU, cede).
//!
//! An opcode we do not implement gets H_FUNCTION and is counted; the first call of each is
//! reported in [`PaprReturn::first_unimplemented`] so the caller logs it once.
//!
//! Resources: LoPAR 14.5.4 (hypercall interface, opcodes); Linux
//! arch/powerpc/include/asm/hvcall.h (opcode values), platforms/pseries/firmware.c
//! (hypertas-functions names → features); QEMU hw/ppc/spapr_hcall.c (spapr_hypercall,
//! hypertas strings in spapr.c).

use super::counts::{HcallCounts, Recorded};
use super::hvterm::{TermChars, Vterm, MAX_TERM_CHARS};
use super::rtas::{RtasPlatform, RtasState};
use super::set_mode::{set_mode, SetModeEffect};
use super::status::HStatus;
use super::xics::Xics;
use crate::hv::hpt::{Hpt, HptMemory, TlbInvalidate, BULK_REMOVE_PAIRS};
use crate::hv::GuestMemory;

/// Hypercall opcodes (r3), Linux's asm/hvcall.h values.
pub mod opcode {
    /// H_REMOVE.
    pub const H_REMOVE: u64 = 0x04;
    /// H_ENTER.
    pub const H_ENTER: u64 = 0x08;
    /// H_READ.
    pub const H_READ: u64 = 0x0c;
    /// H_CLEAR_MOD.
    pub const H_CLEAR_MOD: u64 = 0x10;
    /// H_CLEAR_REF.
    pub const H_CLEAR_REF: u64 = 0x14;
    /// H_PROTECT.
    pub const H_PROTECT: u64 = 0x18;
    /// H_GET_TCE (the TCE service).
    pub const H_GET_TCE: u64 = 0x1c;
    /// H_PUT_TCE (the TCE service).
    pub const H_PUT_TCE: u64 = 0x20;
    /// H_SET_SPRG0.
    pub const H_SET_SPRG0: u64 = 0x24;
    /// H_SET_DABR.
    pub const H_SET_DABR: u64 = 0x28;
    /// H_PAGE_INIT.
    pub const H_PAGE_INIT: u64 = 0x2c;
    /// H_GET_TERM_CHAR.
    pub const H_GET_TERM_CHAR: u64 = 0x54;
    /// H_PUT_TERM_CHAR.
    pub const H_PUT_TERM_CHAR: u64 = 0x58;
    /// H_EOI.
    pub const H_EOI: u64 = 0x64;
    /// H_CPPR.
    pub const H_CPPR: u64 = 0x68;
    /// H_IPI.
    pub const H_IPI: u64 = 0x6c;
    /// H_IPOLL.
    pub const H_IPOLL: u64 = 0x70;
    /// H_XIRR.
    pub const H_XIRR: u64 = 0x74;
    /// H_REGISTER_VPA.
    pub const H_REGISTER_VPA: u64 = 0xdc;
    /// H_CEDE.
    pub const H_CEDE: u64 = 0xe0;
    /// H_CONFER.
    pub const H_CONFER: u64 = 0xe4;
    /// H_PROD.
    pub const H_PROD: u64 = 0xe8;
    /// H_BULK_REMOVE.
    pub const H_BULK_REMOVE: u64 = 0x124;
    /// H_STUFF_TCE (the TCE service).
    pub const H_STUFF_TCE: u64 = 0x138;
    /// H_PUT_TCE_INDIRECT (the TCE service).
    pub const H_PUT_TCE_INDIRECT: u64 = 0x13c;
    /// H_XIRR_X.
    pub const H_XIRR_X: u64 = 0x2fc;
    /// H_SET_MODE.
    pub const H_SET_MODE: u64 = 0x31c;
    /// H_RTAS (KVMPPC_H_RTAS): the RTAS stub's call.
    pub const H_RTAS: u64 = 0xf000;
    /// The first of tcefw's DMA-window calls (the TCE service), 0xF200..=0xF20C.
    pub const H_TCEFW_FIRST: u64 = 0xf200;
    /// The last of them.
    pub const H_TCEFW_LAST: u64 = 0xf20c;
}

use opcode::*;

/// The name of a hypercall opcode for the log, if we know it.
pub fn hcall_name(opcode: u64) -> Option<&'static str> {
    Some(match opcode {
        H_REMOVE => "H_REMOVE",
        H_ENTER => "H_ENTER",
        H_READ => "H_READ",
        H_CLEAR_MOD => "H_CLEAR_MOD",
        H_CLEAR_REF => "H_CLEAR_REF",
        H_PROTECT => "H_PROTECT",
        H_GET_TCE => "H_GET_TCE",
        H_PUT_TCE => "H_PUT_TCE",
        H_SET_SPRG0 => "H_SET_SPRG0",
        H_SET_DABR => "H_SET_DABR",
        H_PAGE_INIT => "H_PAGE_INIT",
        H_GET_TERM_CHAR => "H_GET_TERM_CHAR",
        H_PUT_TERM_CHAR => "H_PUT_TERM_CHAR",
        H_EOI => "H_EOI",
        H_CPPR => "H_CPPR",
        H_IPI => "H_IPI",
        H_IPOLL => "H_IPOLL",
        H_XIRR => "H_XIRR",
        H_REGISTER_VPA => "H_REGISTER_VPA",
        H_CEDE => "H_CEDE",
        H_CONFER => "H_CONFER",
        H_PROD => "H_PROD",
        H_BULK_REMOVE => "H_BULK_REMOVE",
        H_STUFF_TCE => "H_STUFF_TCE",
        H_PUT_TCE_INDIRECT => "H_PUT_TCE_INDIRECT",
        H_XIRR_X => "H_XIRR_X",
        H_SET_MODE => "H_SET_MODE",
        H_RTAS => "H_RTAS",
        _ => return None,
    })
}

/// The hcall sets the PAPR layer serves, as `ibm,hypertas-functions` names them, with their
/// opcodes. The device tree builder lists these names (and "hcall-tce hcall-multi-tce" for
/// the TCE service); a test checks every opcode listed is served, not H_FUNCTION.
pub const HYPERTAS_FUNCTIONS: &[(&str, &[u64])] = &[
    ("hcall-pft", &[H_ENTER, H_REMOVE, H_READ, H_PROTECT]),
    ("hcall-bulk", &[H_BULK_REMOVE]),
    ("hcall-term", &[H_GET_TERM_CHAR, H_PUT_TERM_CHAR]),
    (
        "hcall-interrupt",
        &[H_EOI, H_CPPR, H_IPI, H_IPOLL, H_XIRR, H_XIRR_X],
    ),
    ("hcall-set-mode", &[H_SET_MODE]),
];

/// Argument registers r4..r12.
pub const HCALL_ARGS: usize = 9;

/// A decoded hypercall served by the PAPR layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaprRequest {
    /// H_ENTER(flags, ptex, pteh, ptel) -> r4 = PTE index.
    Enter {
        /// Flags (H_EXACT, H_ZERO_PAGE, ...).
        flags: u64,
        /// The PTE index (its PTEG, or the exact slot).
        ptex: u64,
        /// First doubleword.
        pteh: u64,
        /// Second doubleword (guest-real RPN).
        ptel: u64,
    },
    /// H_REMOVE(flags, ptex, avpn) -> r4, r5 = the old HPTE.
    Remove {
        /// H_AVPN / H_ANDCOND.
        flags: u64,
        /// The PTE index.
        ptex: u64,
        /// AVPN or ANDCOND operand.
        avpn: u64,
    },
    /// H_READ(flags, ptex) -> r4.. = one HPTE, or four with H_READ_4.
    Read {
        /// H_READ_4.
        flags: u64,
        /// The PTE index.
        ptex: u64,
    },
    /// H_PROTECT(flags, ptex, avpn).
    Protect {
        /// Protection bits and H_AVPN.
        flags: u64,
        /// The PTE index.
        ptex: u64,
        /// AVPN operand.
        avpn: u64,
    },
    /// H_BULK_REMOVE(four translation specifier pairs) -> r4..r11 = the responses.
    BulkRemove([u64; 2 * BULK_REMOVE_PAIRS]),
    /// H_PUT_TERM_CHAR(termno, len, chars 0..7, chars 8..15).
    PutTermChar {
        /// Terminal number.
        termno: u64,
        /// Bytes (at most 16).
        len: u64,
        /// Bytes 0..7, big-endian packed.
        high: u64,
        /// Bytes 8..15.
        low: u64,
    },
    /// H_GET_TERM_CHAR(termno) -> r4 = len, r5, r6 = bytes.
    GetTermChar {
        /// Terminal number.
        termno: u64,
    },
    /// H_SET_MODE(mflags, resource, value1, value2).
    SetMode {
        /// Mode flags.
        mflags: u64,
        /// Resource.
        resource: u64,
        /// First value.
        value1: u64,
        /// Second value.
        value2: u64,
    },
    /// H_CPPR(cppr).
    Cppr {
        /// New CPPR.
        cppr: u64,
    },
    /// H_IPI(server, mfrr).
    Ipi {
        /// Target server.
        server: u64,
        /// New MFRR.
        mfrr: u64,
    },
    /// H_XIRR -> r4 = XIRR.
    Xirr,
    /// H_XIRR_X -> r4 = XIRR, r5 = timebase.
    XirrX,
    /// H_EOI(xirr).
    Eoi {
        /// The XIRR being ended.
        xirr: u64,
    },
    /// H_IPOLL -> r4 = XIRR, r5 = MFRR.
    Ipoll,
    /// H_CEDE.
    Cede,
    /// H_RTAS(buffer).
    Rtas {
        /// Guest-real address of the RTAS argument buffer.
        buffer: u64,
    },
    /// An opcode the partition gets H_FUNCTION for.
    Unimplemented {
        /// r3.
        opcode: u64,
    },
}

/// Where a hypercall goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// The TCE service (H_GET_TCE, H_PUT_TCE, H_STUFF_TCE, H_PUT_TCE_INDIRECT, the DMA
    /// window calls): `hcall::Hypervisor::dispatch` with the same registers.
    Tce {
        /// r3.
        opcode: u64,
    },
    /// [`Papr::handle`].
    Papr(PaprRequest),
}

/// Decodes r3 and r4..r12 once.
pub fn route(opcode: u64, args: &[u64; HCALL_ARGS]) -> Route {
    let [a0, a1, a2, a3, ..] = *args;
    let request = match opcode {
        H_GET_TCE | H_PUT_TCE | H_STUFF_TCE | H_PUT_TCE_INDIRECT => return Route::Tce { opcode },
        H_TCEFW_FIRST..=H_TCEFW_LAST => return Route::Tce { opcode },
        H_ENTER => PaprRequest::Enter {
            flags: a0,
            ptex: a1,
            pteh: a2,
            ptel: a3,
        },
        H_REMOVE => PaprRequest::Remove {
            flags: a0,
            ptex: a1,
            avpn: a2,
        },
        H_READ => PaprRequest::Read {
            flags: a0,
            ptex: a1,
        },
        H_PROTECT => PaprRequest::Protect {
            flags: a0,
            ptex: a1,
            avpn: a2,
        },
        H_BULK_REMOVE => {
            let mut specifiers = [0u64; 2 * BULK_REMOVE_PAIRS];
            specifiers.copy_from_slice(&args[..2 * BULK_REMOVE_PAIRS]);
            PaprRequest::BulkRemove(specifiers)
        }
        H_PUT_TERM_CHAR => PaprRequest::PutTermChar {
            termno: a0,
            len: a1,
            high: a2,
            low: a3,
        },
        H_GET_TERM_CHAR => PaprRequest::GetTermChar { termno: a0 },
        H_SET_MODE => PaprRequest::SetMode {
            mflags: a0,
            resource: a1,
            value1: a2,
            value2: a3,
        },
        H_CPPR => PaprRequest::Cppr { cppr: a0 },
        H_IPI => PaprRequest::Ipi {
            server: a0,
            mfrr: a1,
        },
        H_XIRR => PaprRequest::Xirr,
        H_XIRR_X => PaprRequest::XirrX,
        H_EOI => PaprRequest::Eoi { xirr: a0 },
        H_IPOLL => PaprRequest::Ipoll,
        H_CEDE => PaprRequest::Cede,
        H_RTAS => PaprRequest::Rtas { buffer: a0 },
        _ => PaprRequest::Unimplemented { opcode },
    };
    Route::Papr(request)
}

impl PaprRequest {
    /// The opcode this request was decoded from.
    pub fn opcode(&self) -> u64 {
        match self {
            PaprRequest::Enter { .. } => H_ENTER,
            PaprRequest::Remove { .. } => H_REMOVE,
            PaprRequest::Read { .. } => H_READ,
            PaprRequest::Protect { .. } => H_PROTECT,
            PaprRequest::BulkRemove(_) => H_BULK_REMOVE,
            PaprRequest::PutTermChar { .. } => H_PUT_TERM_CHAR,
            PaprRequest::GetTermChar { .. } => H_GET_TERM_CHAR,
            PaprRequest::SetMode { .. } => H_SET_MODE,
            PaprRequest::Cppr { .. } => H_CPPR,
            PaprRequest::Ipi { .. } => H_IPI,
            PaprRequest::Xirr => H_XIRR,
            PaprRequest::XirrX => H_XIRR_X,
            PaprRequest::Eoi { .. } => H_EOI,
            PaprRequest::Ipoll => H_IPOLL,
            PaprRequest::Cede => H_CEDE,
            PaprRequest::Rtas { .. } => H_RTAS,
            PaprRequest::Unimplemented { opcode } => *opcode,
        }
    }
}

/// The platform side of the PAPR layer: RTAS's effects, the console and the timebase.
pub trait PaprPlatform: RtasPlatform {
    /// The partition's vty wrote `bytes` (the console adds the partition's prefix).
    fn console_write(&mut self, bytes: &[u8]);
    /// Up to 16 bytes of console input for the partition; returns how many.
    fn console_read(&mut self, buffer: &mut [u8; MAX_TERM_CHARS]) -> usize;
    /// The timebase now (H_XIRR_X).
    fn timebase(&self) -> u64;
}

/// What the vCPU or partition must do after the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcpuEffect {
    /// Nothing.
    None,
    /// Change LPCR on every vCPU of the partition.
    SetLpcr(SetModeEffect),
    /// H_CEDE: idle until an interrupt (external or decrementer) is pending with MSR[EE].
    Cede,
}

/// The answer to one hypercall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PaprReturn {
    /// r3.
    pub status: HStatus,
    /// r4..r12 (zero unless the call returns values; H_BULK_REMOVE's responses even when it
    /// fails).
    pub out: [u64; HCALL_ARGS],
    /// What the exit path must do.
    pub effect: VcpuEffect,
    /// The opcode, when this was the first call of an opcode we do not implement.
    pub first_unimplemented: Option<u64>,
}

impl PaprReturn {
    fn status(status: HStatus) -> Self {
        PaprReturn {
            status,
            out: [0; HCALL_ARGS],
            effect: VcpuEffect::None,
            first_unimplemented: None,
        }
    }

    fn values(values: &[u64]) -> Self {
        let mut ret = Self::status(HStatus::Success);
        ret.out[..values.len()].copy_from_slice(values);
        ret
    }

    fn from_result(result: Result<PaprReturn, HStatus>) -> Self {
        result.unwrap_or_else(Self::status)
    }
}

/// Everything one call may touch besides the partition's PAPR state.
pub struct Caller<'a, M, T, G: ?Sized, P: ?Sized> {
    /// The partition's HPT.
    pub hpt: &'a mut Hpt<M>,
    /// The TLB instructions.
    pub tlb: &'a mut T,
    /// The partition's memory.
    pub guest: &'a mut G,
    /// The platform.
    pub platform: &'a mut P,
    /// The calling vCPU's interrupt server number (from the vCPU, not the guest).
    pub server: u32,
}

/// A partition's PAPR state.
#[derive(Clone, Debug)]
pub struct Papr {
    /// The interrupt controller.
    pub xics: Xics,
    /// RTAS (time offset, call counts).
    pub rtas: RtasState,
    /// The vty.
    pub vterm: Vterm,
    /// Hypercalls served, by opcode.
    pub served: HcallCounts,
    /// Hypercalls answered H_FUNCTION, by opcode.
    pub unimplemented: HcallCounts,
}

impl Papr {
    /// A partition with `servers` vCPUs, `sources` interrupt sources and its vty at
    /// `vterm_reg`.
    pub fn new(servers: u32, sources: u32, vterm_reg: u32) -> Self {
        Papr {
            xics: Xics::new(servers, sources),
            rtas: RtasState::default(),
            vterm: Vterm { reg: vterm_reg },
            served: HcallCounts::new(),
            unimplemented: HcallCounts::new(),
        }
    }

    /// Serves `request` for the vCPU `caller.server`.
    pub fn handle<M, T, G, P>(
        &mut self,
        request: PaprRequest,
        caller: Caller<'_, M, T, G, P>,
    ) -> PaprReturn
    where
        M: HptMemory,
        T: TlbInvalidate,
        G: GuestMemory + ?Sized,
        P: PaprPlatform + ?Sized,
    {
        if let PaprRequest::Unimplemented { opcode } = request {
            let mut ret = PaprReturn::status(HStatus::Function);
            if self.unimplemented.record(opcode) == Recorded::First {
                ret.first_unimplemented = Some(opcode);
            }
            return ret;
        }
        self.served.record(request.opcode());
        let Caller {
            hpt,
            tlb,
            guest,
            platform,
            server,
        } = caller;
        PaprReturn::from_result(match request {
            PaprRequest::Enter {
                flags,
                ptex,
                pteh,
                ptel,
            } => hpt
                .enter(tlb, guest, flags, ptex, pteh, ptel)
                .map(|slot| PaprReturn::values(&[slot as u64]))
                .map_err(HStatus::from),
            PaprRequest::Remove { flags, ptex, avpn } => hpt
                .remove(tlb, flags, ptex, avpn)
                .map(|old| PaprReturn::values(&[old.v, old.r]))
                .map_err(HStatus::from),
            PaprRequest::Read { flags, ptex } => hpt
                .read(flags, ptex)
                .map(|read| {
                    let mut out = [0u64; 8];
                    for (i, e) in read.entries.iter().take(read.count).enumerate() {
                        out[2 * i] = e.v;
                        out[2 * i + 1] = e.r;
                    }
                    PaprReturn::values(&out[..2 * read.count])
                })
                .map_err(HStatus::from),
            PaprRequest::Protect { flags, ptex, avpn } => hpt
                .protect(tlb, flags, ptex, avpn)
                .map(|()| PaprReturn::values(&[]))
                .map_err(HStatus::from),
            PaprRequest::BulkRemove(specifiers) => {
                let outcome = hpt.bulk_remove(tlb, &specifiers);
                let mut ret = PaprReturn::values(&outcome.out);
                if let Err(error) = outcome.result {
                    ret.status = error.into();
                }
                Ok(ret)
            }
            PaprRequest::PutTermChar {
                termno,
                len,
                high,
                low,
            } => self
                .vterm
                .check(termno)
                .and_then(|()| TermChars::unpack(len, high, low))
                .map(|chars| {
                    platform.console_write(chars.as_slice());
                    PaprReturn::values(&[])
                })
                .map_err(HStatus::from),
            PaprRequest::GetTermChar { termno } => self
                .vterm
                .check(termno)
                .map(|()| {
                    let mut buffer = [0u8; MAX_TERM_CHARS];
                    let n = platform.console_read(&mut buffer).min(MAX_TERM_CHARS);
                    let (len, high, low) = TermChars::from_slice(&buffer[..n]).pack();
                    PaprReturn::values(&[len, high, low])
                })
                .map_err(HStatus::from),
            PaprRequest::SetMode {
                mflags,
                resource,
                value1,
                value2,
            } => set_mode(mflags, resource, value1, value2).map(|effect| {
                let mut ret = PaprReturn::values(&[]);
                ret.effect = VcpuEffect::SetLpcr(effect);
                ret
            }),
            PaprRequest::Cppr { cppr } => self
                .xics
                .h_cppr(server, cppr)
                .map(|()| PaprReturn::values(&[]))
                .map_err(HStatus::from),
            PaprRequest::Ipi {
                server: target,
                mfrr,
            } => self
                .xics
                .h_ipi(target, mfrr)
                .map(|()| PaprReturn::values(&[]))
                .map_err(HStatus::from),
            PaprRequest::Xirr => self
                .xics
                .h_xirr(server)
                .map(|xirr| PaprReturn::values(&[u64::from(xirr)]))
                .map_err(HStatus::from),
            PaprRequest::XirrX => self
                .xics
                .h_xirr(server)
                .map(|xirr| PaprReturn::values(&[u64::from(xirr), platform.timebase()]))
                .map_err(HStatus::from),
            PaprRequest::Eoi { xirr } => self
                .xics
                .h_eoi(server, xirr)
                .map(|()| PaprReturn::values(&[]))
                .map_err(HStatus::from),
            PaprRequest::Ipoll => self
                .xics
                .h_ipoll(server)
                .map(|(xirr, mfrr)| PaprReturn::values(&[u64::from(xirr), u64::from(mfrr)]))
                .map_err(HStatus::from),
            PaprRequest::Cede => {
                let mut ret = PaprReturn::values(&[]);
                ret.effect = VcpuEffect::Cede;
                Ok(ret)
            }
            PaprRequest::Rtas { buffer } => {
                let outcome = self.rtas.call(buffer, guest, platform, &mut self.xics);
                Ok(PaprReturn::status(outcome.hcall))
            }
            PaprRequest::Unimplemented { .. } => Err(HStatus::Function),
        })
    }
}
