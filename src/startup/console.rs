//! Console wiring: which device prints the console's bytes. Payload mode: OPAL console 0
//! from the first instruction on. Bare mode: the ns16550 UART on LPC I/O, reached through
//! the chip's ECCB registers over XSCOM, once the device tree has said where it is.
//!
//! Resources: skiboot hw/lpc-uart.c (the UART as skiboot's console), core/console.c.
#![forbid(unsafe_code)]

use crate::arch::ppc64::opal::{Opal, OpalConsole};
use crate::arch::ppc64::xscom::ChipXscom;
use crate::console;
use crate::hw::console::Sink;
use crate::platform::lpc::{LpcBus, LpcUart};
use spin::Once;

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

/// Prints through OPAL's console (payload mode).
pub fn use_opal(opal: Opal) {
    console::set_sink(OPAL_CONSOLE.call_once(|| OpalConsole(opal)));
}

/// Prints through the UART at I/O `port` of the LPC bus whose ECCB registers are at PCB
/// `eccb_pcb` behind `xscom` (bare mode).
pub fn use_uart(xscom: ChipXscom, eccb_pcb: u64, port: u16) {
    console::set_sink(UART.call_once(|| UartConsole {
        xscom,
        eccb_pcb,
        port,
    }));
}
