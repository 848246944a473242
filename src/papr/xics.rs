//! A minimal XICS for a partition: one presentation controller (ICP) per vCPU and one source
//! controller (ICS) of numbered sources from [`XICS_IRQ_BASE`], with the hypercall side
//! (H_CPPR, H_IPI, H_XIRR, H_XIRR_X, H_EOI, H_IPOLL) and the RTAS side (ibm,set-xive,
//! ibm,get-xive, ibm,int-on, ibm,int-off).
//!
//! The state machine is QEMU's (hw/intc/xics.c): an ICP holds XIRR (CPPR in the top byte,
//! XISR below), the priority of the pending interrupt, MFRR for IPIs, and an output line; a
//! source that cannot be presented (priority not better than CPPR, or a better one pending)
//! is rejected and resent when the CPPR drops or an EOI arrives. Priorities: 0 most favoured,
//! 0xff masked. The IPI presents as source number 2.
//!
//! The caller's server number comes from the vCPU that made the call, never from an
//! argument; the server an H_IPI or set-xive names is checked against the servers that exist.
//! [`Xics::output`] tells the exit path whether that vCPU has an external interrupt to take.
//! All storage is allocated by [`Xics::new`]; no call allocates.
//!
//! Resources: LoPAR ch. 6 (interrupt controller), 14.5.4.5 (interrupt hcalls), 7.3.10 (XICS
//! RTAS calls); QEMU hw/intc/xics.c (icp_*/ics_* logic), hw/intc/xics_spapr.c (hcalls and
//! RTAS); Linux arch/powerpc/sysdev/xics/icp-hv.c (how a guest calls them).

use alloc::vec::Vec;

/// The first source number (QEMU's XICS_IRQ_BASE).
pub const XICS_IRQ_BASE: u32 = 0x1000;
/// The source number an IPI presents as.
pub const XICS_IPI: u32 = 0x2;
/// The masked / least favoured priority.
pub const PRIORITY_MASKED: u8 = 0xff;

const XISR_MASK: u32 = 0x00ff_ffff;
const CPPR_MASK: u32 = 0xff00_0000;

/// Why an XICS call was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XicsError {
    /// No such interrupt server.
    BadServer,
    /// No such source.
    BadSource,
    /// A priority, CPPR or MFRR above 0xff, or an XIRR above 32 bits.
    BadValue,
}

/// One presentation controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Icp {
    /// CPPR (bits 24:31) and XISR (bits 0:23).
    pub xirr: u32,
    /// Priority of the interrupt in XISR (0xff when none).
    pub pending_priority: u8,
    /// IPI request priority (0xff: none).
    pub mfrr: u8,
    /// The external interrupt line to the vCPU.
    pub output: bool,
}

impl Icp {
    const RESET: Icp = Icp {
        xirr: 0,
        pending_priority: PRIORITY_MASKED,
        mfrr: PRIORITY_MASKED,
        output: false,
    };

    fn cppr(&self) -> u8 {
        (self.xirr >> 24) as u8
    }

    fn xisr(&self) -> u32 {
        self.xirr & XISR_MASK
    }
}

/// One interrupt source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Source {
    /// The server it is routed to.
    pub server: u32,
    /// Its priority (0xff: masked).
    pub priority: u8,
    /// The priority ibm,int-on restores.
    pub saved_priority: u8,
    /// Level-sensitive (else message-signalled / edge).
    pub lsi: bool,
    asserted: bool,
    sent: bool,
    rejected: bool,
    masked_pending: bool,
}

/// The partition's XICS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Xics {
    icps: Vec<Icp>,
    sources: Vec<Source>,
}

fn byte(value: u64) -> Result<u8, XicsError> {
    u8::try_from(value).map_err(|_| XicsError::BadValue)
}

impl Xics {
    /// An XICS with servers `0..servers` and `sources` message-signalled sources from
    /// [`XICS_IRQ_BASE`], all masked and routed to server 0.
    pub fn new(servers: u32, sources: u32) -> Self {
        let source = Source {
            server: 0,
            priority: PRIORITY_MASKED,
            saved_priority: PRIORITY_MASKED,
            lsi: false,
            asserted: false,
            sent: false,
            rejected: false,
            masked_pending: false,
        };
        Xics {
            icps: alloc::vec![Icp::RESET; servers as usize],
            sources: alloc::vec![source; sources as usize],
        }
    }

    /// Number of servers (the guest's `ibm,interrupt-server-ranges` is `<0 servers>`).
    pub fn servers(&self) -> u32 {
        self.icps.len() as u32
    }

    /// The ICP of `server`.
    pub fn icp(&self, server: u32) -> Option<&Icp> {
        self.icps.get(server as usize)
    }

    /// The source `nr`.
    pub fn source(&self, nr: u32) -> Option<&Source> {
        self.sources.get(self.source_index(nr).ok()?)
    }

    /// True when `server` has an interrupt pending for its vCPU to take.
    pub fn output(&self, server: u32) -> bool {
        self.icp(server).is_some_and(|icp| icp.output)
    }

    fn server(&self, server: u64) -> Result<usize, XicsError> {
        usize::try_from(server)
            .ok()
            .filter(|&s| s < self.icps.len())
            .ok_or(XicsError::BadServer)
    }

    fn source_index(&self, nr: u32) -> Result<usize, XicsError> {
        nr.checked_sub(XICS_IRQ_BASE)
            .map(|i| i as usize)
            .filter(|&i| i < self.sources.len())
            .ok_or(XicsError::BadSource)
    }

    /// Makes source `nr` level-sensitive (`true`) or message-signalled.
    pub fn set_source_type(&mut self, nr: u32, lsi: bool) -> Result<(), XicsError> {
        let i = self.source_index(nr)?;
        self.sources[i].lsi = lsi;
        Ok(())
    }

    // ---- ICS ----------------------------------------------------------------------------

    fn reject(&mut self, nr: u32) {
        if let Ok(i) = self.source_index(nr) {
            let source = &mut self.sources[i];
            source.rejected = true;
            source.sent = false;
        }
    }

    fn resend_source(&mut self, i: usize) {
        let source = self.sources[i];
        let nr = XICS_IRQ_BASE + i as u32;
        if source.lsi {
            if source.priority != PRIORITY_MASKED && source.asserted && !source.sent {
                self.sources[i].sent = true;
                self.present(source.server as usize, nr, source.priority);
            }
        } else if source.rejected {
            self.sources[i].rejected = false;
            if source.priority != PRIORITY_MASKED {
                self.present(source.server as usize, nr, source.priority);
            }
        }
    }

    fn resend_all(&mut self) {
        for i in 0..self.sources.len() {
            self.resend_source(i);
        }
    }

    /// A device raises (`true`) or lowers source `nr`.
    pub fn set_irq(&mut self, nr: u32, level: bool) -> Result<(), XicsError> {
        let i = self.source_index(nr)?;
        let source = self.sources[i];
        if source.lsi {
            self.sources[i].asserted = level;
            self.resend_source(i);
        } else if level {
            if source.priority == PRIORITY_MASKED {
                self.sources[i].masked_pending = true;
            } else {
                self.present(source.server as usize, nr, source.priority);
            }
        }
        Ok(())
    }

    fn write_xive(&mut self, i: usize, server: u32, priority: u8, saved: u8) {
        let source = &mut self.sources[i];
        source.server = server;
        source.priority = priority;
        source.saved_priority = saved;
        if source.lsi {
            self.resend_source(i);
        } else if source.masked_pending && priority != PRIORITY_MASKED {
            self.sources[i].masked_pending = false;
            self.present(server as usize, XICS_IRQ_BASE + i as u32, priority);
        }
    }

    /// ibm,set-xive(nr, server, priority).
    pub fn set_xive(&mut self, nr: u32, server: u32, priority: u32) -> Result<(), XicsError> {
        let i = self.source_index(nr)?;
        let server = self.server(u64::from(server))? as u32;
        let priority = byte(u64::from(priority))?;
        self.write_xive(i, server, priority, priority);
        Ok(())
    }

    /// ibm,get-xive(nr) -> (server, priority).
    pub fn get_xive(&self, nr: u32) -> Result<(u32, u8), XicsError> {
        let source = &self.sources[self.source_index(nr)?];
        Ok((source.server, source.priority))
    }

    /// ibm,int-off(nr): masks the source, remembering its priority.
    pub fn int_off(&mut self, nr: u32) -> Result<(), XicsError> {
        let i = self.source_index(nr)?;
        let source = self.sources[i];
        self.write_xive(i, source.server, PRIORITY_MASKED, source.priority);
        Ok(())
    }

    /// ibm,int-on(nr): restores the priority ibm,int-off saved.
    pub fn int_on(&mut self, nr: u32) -> Result<(), XicsError> {
        let i = self.source_index(nr)?;
        let source = self.sources[i];
        self.write_xive(
            i,
            source.server,
            source.saved_priority,
            source.saved_priority,
        );
        Ok(())
    }

    // ---- ICP ----------------------------------------------------------------------------

    fn present(&mut self, server: usize, nr: u32, priority: u8) {
        let Some(&icp) = self.icps.get(server) else {
            self.reject(nr);
            return;
        };
        if priority >= icp.cppr() || (icp.xisr() != 0 && icp.pending_priority <= priority) {
            self.reject(nr);
        } else {
            if icp.xisr() != 0 {
                self.reject(icp.xisr());
            }
            let icp = &mut self.icps[server];
            icp.xirr = (icp.xirr & !XISR_MASK) | (nr & XISR_MASK);
            icp.pending_priority = priority;
            icp.output = true;
        }
    }

    fn check_ipi(&mut self, server: usize) {
        let icp = self.icps[server];
        if icp.xisr() != 0 && icp.pending_priority <= icp.mfrr {
            return;
        }
        if icp.xisr() != 0 {
            self.reject(icp.xisr());
        }
        let icp = &mut self.icps[server];
        icp.xirr = (icp.xirr & !XISR_MASK) | XICS_IPI;
        icp.pending_priority = icp.mfrr;
        icp.output = true;
    }

    fn resend(&mut self, server: usize) {
        let icp = self.icps[server];
        if icp.mfrr < icp.cppr() {
            self.check_ipi(server);
        }
        self.resend_all();
    }

    /// H_CPPR(cppr) from the vCPU of `server`.
    pub fn h_cppr(&mut self, server: u32, cppr: u64) -> Result<(), XicsError> {
        let server = self.server(u64::from(server))?;
        let cppr = byte(cppr)?;
        let old = self.icps[server].cppr();
        let icp = &mut self.icps[server];
        icp.xirr = (icp.xirr & !CPPR_MASK) | (u32::from(cppr) << 24);
        if cppr < old {
            let icp = self.icps[server];
            if icp.xisr() != 0 && cppr <= icp.pending_priority {
                let old_xisr = icp.xisr();
                let icp = &mut self.icps[server];
                icp.xirr &= !XISR_MASK;
                icp.pending_priority = PRIORITY_MASKED;
                icp.output = false;
                self.reject(old_xisr);
            }
        } else if self.icps[server].xisr() == 0 {
            self.resend(server);
        }
        Ok(())
    }

    /// H_IPI(server, mfrr).
    pub fn h_ipi(&mut self, server: u64, mfrr: u64) -> Result<(), XicsError> {
        let server = self.server(server)?;
        let mfrr = byte(mfrr)?;
        self.icps[server].mfrr = mfrr;
        if mfrr < self.icps[server].cppr() {
            self.check_ipi(server);
        }
        Ok(())
    }

    /// H_XIRR from the vCPU of `server`: accepts the pending interrupt and returns the XIRR
    /// it had (CPPR becomes the accepted interrupt's priority).
    pub fn h_xirr(&mut self, server: u32) -> Result<u32, XicsError> {
        let server = self.server(u64::from(server))?;
        let icp = &mut self.icps[server];
        let xirr = icp.xirr;
        icp.output = false;
        icp.xirr = u32::from(icp.pending_priority) << 24;
        icp.pending_priority = PRIORITY_MASKED;
        Ok(xirr)
    }

    /// H_EOI(xirr) from the vCPU of `server`: restores CPPR from `xirr`, ends the source.
    pub fn h_eoi(&mut self, server: u32, xirr: u64) -> Result<(), XicsError> {
        let server = self.server(u64::from(server))?;
        let xirr = u32::try_from(xirr).map_err(|_| XicsError::BadValue)?;
        let icp = &mut self.icps[server];
        icp.xirr = (icp.xirr & !CPPR_MASK) | (xirr & CPPR_MASK);
        if let Ok(i) = self.source_index(xirr & XISR_MASK) {
            if self.sources[i].lsi {
                self.sources[i].sent = false;
            }
        }
        if self.icps[server].xisr() == 0 {
            self.resend(server);
        }
        Ok(())
    }

    /// H_IPOLL from the vCPU of `server`: (XIRR, MFRR) without accepting.
    pub fn h_ipoll(&self, server: u32) -> Result<(u32, u8), XicsError> {
        let icp = &self.icps[self.server(u64::from(server))?];
        Ok((icp.xirr, icp.mfrr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipi_is_presented_accepted_and_ended() {
        let mut xics = Xics::new(2, 4);
        xics.h_cppr(1, 0xff).unwrap();
        xics.h_ipi(1, 5).unwrap();
        assert!(xics.output(1));
        assert!(!xics.output(0));
        let xirr = xics.h_xirr(1).unwrap();
        assert_eq!(xirr, 0xff00_0000 | XICS_IPI);
        assert!(!xics.output(1));
        assert_eq!(
            xics.icp(1).unwrap().xirr >> 24,
            5,
            "CPPR is the accepted priority"
        );
        xics.h_ipi(1, 0xff).unwrap();
        xics.h_eoi(1, xirr.into()).unwrap();
        assert_eq!(xics.h_ipoll(1).unwrap(), (0xff00_0000, 0xff));
    }

    #[test]
    fn a_source_waits_for_a_lower_cppr_and_is_resent() {
        let mut xics = Xics::new(1, 4);
        let nr = XICS_IRQ_BASE + 2;
        xics.set_xive(nr, 0, 5).unwrap();
        // CPPR 0 (reset) masks everything: the MSI is rejected, not lost.
        xics.set_irq(nr, true).unwrap();
        assert!(!xics.output(0));
        xics.h_cppr(0, 0xff).unwrap();
        assert!(xics.output(0), "resent when CPPR opened");
        assert_eq!(xics.h_xirr(0).unwrap(), 0xff00_0000 | nr);
        xics.h_eoi(0, u64::from(0xff00_0000 | nr)).unwrap();
        assert!(!xics.output(0));
    }

    #[test]
    fn a_masked_msi_is_remembered_until_unmasked_and_int_off_on_round_trips() {
        let mut xics = Xics::new(1, 2);
        let nr = XICS_IRQ_BASE;
        xics.h_cppr(0, 0xff).unwrap();
        xics.set_irq(nr, true).unwrap();
        assert!(!xics.output(0));
        xics.set_xive(nr, 0, 3).unwrap();
        assert!(xics.output(0));
        xics.int_off(nr).unwrap();
        assert_eq!(xics.get_xive(nr), Ok((0, 0xff)));
        xics.int_on(nr).unwrap();
        assert_eq!(xics.get_xive(nr), Ok((0, 3)));
    }

    #[test]
    fn a_level_source_is_presented_again_after_eoi_while_asserted() {
        let mut xics = Xics::new(1, 1);
        let nr = XICS_IRQ_BASE;
        xics.set_source_type(nr, true).unwrap();
        xics.set_xive(nr, 0, 4).unwrap();
        xics.h_cppr(0, 0xff).unwrap();
        xics.set_irq(nr, true).unwrap();
        let xirr = xics.h_xirr(0).unwrap();
        assert_eq!(xirr & XISR_MASK, nr);
        xics.h_eoi(0, u64::from(xirr)).unwrap();
        assert!(xics.output(0), "still asserted: presented again");
        xics.h_xirr(0).unwrap();
        xics.set_irq(nr, false).unwrap();
        xics.h_eoi(0, u64::from(xirr)).unwrap();
        assert!(!xics.output(0));
    }

    #[test]
    fn hostile_arguments_are_refused_without_change() {
        let mut xics = Xics::new(2, 2);
        let before = xics.clone();
        assert_eq!(xics.h_ipi(2, 0), Err(XicsError::BadServer));
        assert_eq!(xics.h_ipi(u64::MAX, 0), Err(XicsError::BadServer));
        assert_eq!(xics.h_ipi(0, 0x100), Err(XicsError::BadValue));
        assert_eq!(xics.h_cppr(0, 0x1ff), Err(XicsError::BadValue));
        assert_eq!(xics.h_cppr(7, 0), Err(XicsError::BadServer));
        assert_eq!(xics.h_eoi(0, 1 << 32), Err(XicsError::BadValue));
        assert_eq!(
            xics.set_xive(XICS_IRQ_BASE + 2, 0, 1),
            Err(XicsError::BadSource)
        );
        assert_eq!(
            xics.set_xive(XICS_IRQ_BASE - 1, 0, 1),
            Err(XicsError::BadSource)
        );
        assert_eq!(
            xics.set_xive(XICS_IRQ_BASE, 2, 1),
            Err(XicsError::BadServer)
        );
        assert_eq!(
            xics.set_xive(XICS_IRQ_BASE, 0, 0x100),
            Err(XicsError::BadValue)
        );
        assert_eq!(xics.get_xive(0), Err(XicsError::BadSource));
        assert_eq!(xics.int_on(u32::MAX), Err(XicsError::BadSource));
        assert_eq!(xics, before);
        // An EOI naming an IPI or a source that does not exist is harmless.
        xics.h_eoi(0, u64::from(XICS_IPI)).unwrap();
        xics.h_eoi(0, 0x00ff_ffff).unwrap();
    }
}
