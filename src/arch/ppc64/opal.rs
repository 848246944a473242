//! Calls into OPAL (skiboot's runtime services) when tcefw runs as skiboot's payload.
//!
//! Resources: skiboot include/opal-api.h (tokens, return codes, OPAL_REINIT_CPUS flags);
//! Linux arch/powerpc/platforms/powernv/opal.c (console write loop, pnv_power_off).

use crate::hw::console::Sink;
use crate::mm::phys::addr_of;

extern "C" {
    fn opal_call_raw(a0: u64, a1: u64, a2: u64, a3: u64, token: u64, base: u64, entry: u64) -> i64;
}

/// OPAL call tokens we use.
pub mod token {
    /// Write to a console.
    pub const CONSOLE_WRITE: u64 = 1;
    /// Power the machine off.
    pub const CEC_POWER_DOWN: u64 = 5;
    /// Run OPAL's pollers (flushes the console, drives the BMC).
    pub const POLL_EVENTS: u64 = 10;
    /// Reconfigure CPUs (HILE).
    pub const REINIT_CPUS: u64 = 70;
}

/// OPAL return codes we act on.
pub mod status {
    /// Done.
    pub const SUCCESS: i64 = 0;
    /// Busy: try again.
    pub const BUSY: i64 = -2;
    /// Busy: poll events, then try again.
    pub const BUSY_EVENT: i64 = -12;
}

/// OPAL_REINIT_CPUS flag: take hypervisor interrupts little-endian.
pub const REINIT_CPUS_HILE_LE: u64 = 1 << 1;

/// OPAL's base and entry, from r8/r9 at entry (and `/ibm,opal` in the tree).
#[derive(Clone, Copy, Debug)]
pub struct Opal {
    base: u64,
    entry: u64,
}

impl Opal {
    /// OPAL at `base` with its entry point at `entry`.
    ///
    /// # Safety
    /// `base`/`entry` must be the values skiboot handed over.
    pub const unsafe fn new(base: u64, entry: u64) -> Self {
        Self { base, entry }
    }

    /// Makes an OPAL call with up to four arguments.
    pub fn call(&self, token: u64, args: [u64; 4]) -> i64 {
        // SAFETY: OPAL's calling convention is implemented by opal_call_raw; the arguments
        // are plain values or physical addresses of live buffers chosen by our callers.
        unsafe {
            opal_call_raw(
                args[0], args[1], args[2], args[3], token, self.base, self.entry,
            )
        }
    }

    /// Asks OPAL to take hypervisor interrupts little-endian on every CPU.
    pub fn set_hile_le(&self) -> i64 {
        self.call(token::REINIT_CPUS, [REINIT_CPUS_HILE_LE, 0, 0, 0])
    }

    /// Powers the machine off; does not return while OPAL makes progress.
    pub fn power_down(&self) {
        for _ in 0..1000 {
            match self.call(token::CEC_POWER_DOWN, [0; 4]) {
                status::BUSY | status::BUSY_EVENT => {
                    self.call(token::POLL_EVENTS, [0; 4]);
                }
                _ => break,
            }
        }
        // The BMC powers us off asynchronously: keep OPAL's pollers running meanwhile.
        loop {
            self.call(token::POLL_EVENTS, [0; 4]);
        }
    }
}

/// OPAL console 0 as a console sink.
pub struct OpalConsole(pub Opal);

impl Sink for OpalConsole {
    fn write_bytes(&self, mut bytes: &[u8]) {
        let mut busy_rounds = 0;
        while !bytes.is_empty() && busy_rounds < 10_000 {
            // OPAL reads and updates the length as a big-endian u64 in memory.
            let length = (bytes.len() as u64).to_be();
            let rc = self.0.call(
                token::CONSOLE_WRITE,
                [0, addr_of(&length), bytes.as_ptr() as u64, 0],
            );
            let written = (u64::from_be(core::hint::black_box(length)) as usize).min(bytes.len());
            if rc == status::SUCCESS && written > 0 {
                bytes = &bytes[written..];
            } else {
                busy_rounds += 1;
                self.0.call(token::POLL_EVENTS, [0; 4]);
            }
        }
    }
}
