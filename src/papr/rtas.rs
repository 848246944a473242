//! RTAS for a partition: the five-instruction stub the guest calls, the token table its
//! device tree's `/rtas` node lists, and the dispatcher behind hypercall 0xF000 (H_RTAS) that
//! reads the argument buffer from guest memory and writes the return cells back.
//!
//! The buffer (Linux's `struct rtas_args`) is big-endian 32-bit cells at a guest-real
//! address: token, nargs, nret, then nargs argument cells and nret return cells, at most
//! [`RTAS_MAX_CELLS`] of the two together. Before anything is read past the header, the whole
//! buffer must lie in the partition's memory and fit those 16 cells; otherwise the call fails
//! with H_PARAMETER and nothing is written. A call whose own nargs/nret are wrong, or whose
//! arguments are bad, gets RTAS status -3 in its first return cell (if it has one) and
//! nothing else; only return cells are ever written. An unknown token gets -3 and
//! H_PARAMETER, as QEMU's spapr_rtas_call answers.
//!
//! Effects outside the partition's memory go through [`RtasPlatform`] (console, time of
//! day, power, vCPU start/stop); the interrupt calls go to the partition's [`Xics`]. Nothing
//! here allocates.
//!
//! Resources: LoPAR ch. 7 (RTAS: argument buffer, status values; 7.3.x each call's
//! arguments); Linux arch/powerpc/kernel/rtas.c (rtas_call, struct rtas_args: 16 cells),
//! rtas_pci.c, platforms/pseries/{setup,hotplug-cpu,ras}.c (which calls, with which
//! nargs/nret); QEMU hw/ppc/spapr_rtas.c, spapr_rtc.c, spapr_events.c (event-scan),
//! spapr_pci.c (PCI config: RTAS_OUT_HW_ERROR without a device); kvmtool powerpc/spapr_rtas.c
//! and the stub in powerpc/kvm.c.

use super::status::{HStatus, RtasStatus};
use super::xics::Xics;
use crate::hv::memory::check_range;
use crate::hv::GuestMemory;

/// The RTAS entry code the hypervisor places in guest memory, big-endian (RTAS runs with
/// MSR[LE] = 0: Linux's enter_rtas clears it): `mr r4,r3; lis r3,0; ori r3,r3,0xf000;
/// sc 1; blr` — every RTAS call arrives as H_RTAS with r4 = the buffer's guest-real address.
pub const RTAS_STUB_WORDS: [u32; 5] = [
    0x7c64_1b78,
    0x3c60_0000,
    0x6063_f000,
    0x4400_0022,
    0x4e80_0020,
];

/// [`RTAS_STUB_WORDS`] as the bytes to copy into guest memory (`rtas-size` is their length).
pub const fn rtas_stub_bytes() -> [u8; 20] {
    let mut bytes = [0u8; 20];
    let mut i = 0;
    while i < 5 {
        let word = RTAS_STUB_WORDS[i].to_be_bytes();
        bytes[4 * i] = word[0];
        bytes[4 * i + 1] = word[1];
        bytes[4 * i + 2] = word[2];
        bytes[4 * i + 3] = word[3];
        i += 1;
    }
    bytes
}

/// Argument and return cells one buffer may hold together (Linux's `rtas_arg_t args[16]`).
pub const RTAS_MAX_CELLS: u32 = 16;
/// Bytes of the buffer header: token, nargs, nret.
const HEADER_BYTES: u64 = 12;

/// The RTAS services a partition gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RtasCall {
    /// display-character(char).
    DisplayCharacter,
    /// get-time-of-day() -> year, month, day, hour, minute, second, nanosecond.
    GetTimeOfDay,
    /// set-time-of-day(year, month, day, hour, minute, second, nanosecond).
    SetTimeOfDay,
    /// power-off(power-on mask high, low).
    PowerOff,
    /// system-reboot().
    SystemReboot,
    /// event-scan(mask, critical, buffer, length): nothing to report.
    EventScan,
    /// query-cpu-stopped-state(server) -> state.
    QueryCpuStoppedState,
    /// start-cpu(server, start address, r3).
    StartCpu,
    /// stop-self().
    StopSelf,
    /// ibm,get-system-parameter(parameter, buffer, length): none supported.
    GetSystemParameter,
    /// ibm,set-xive(source, server, priority).
    SetXive,
    /// ibm,get-xive(source) -> server, priority.
    GetXive,
    /// ibm,int-off(source).
    IntOff,
    /// ibm,int-on(source).
    IntOn,
    /// read-pci-config(address, size) -> value.
    ReadPciConfig,
    /// write-pci-config(address, size, value).
    WritePciConfig,
    /// ibm,read-pci-config(address, BUID high, low, size) -> value.
    IbmReadPciConfig,
    /// ibm,write-pci-config(address, BUID high, low, size, value).
    IbmWritePciConfig,
}

/// A token the guest's `/rtas` node lists: property `name` = `token`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtasToken {
    /// The property name (the RTAS service name).
    pub name: &'static str,
    /// The token value (a cell).
    pub token: u32,
    /// The service.
    pub call: RtasCall,
}

/// The first token (QEMU's RTAS_TOKEN_BASE; any values would do, the guest reads them).
pub const RTAS_TOKEN_BASE: u32 = 0x2000;

macro_rules! tokens {
    ($($name:literal => $call:ident),* $(,)?) => {
        /// Every RTAS service, with the token the device tree gives it.
        pub const RTAS_TOKENS: &[RtasToken] = &tokens!(@list 0u32; []; $($name => $call,)*);
    };
    (@list $n:expr; [$($done:expr,)*]; $name:literal => $call:ident, $($rest:tt)*) => {
        tokens!(@list $n + 1; [$($done,)* RtasToken { name: $name, token: RTAS_TOKEN_BASE + $n, call: RtasCall::$call },]; $($rest)*)
    };
    (@list $n:expr; [$($done:expr,)*];) => { [$($done,)*] };
}

tokens! {
    "display-character" => DisplayCharacter,
    "get-time-of-day" => GetTimeOfDay,
    "set-time-of-day" => SetTimeOfDay,
    "power-off" => PowerOff,
    "system-reboot" => SystemReboot,
    "event-scan" => EventScan,
    "query-cpu-stopped-state" => QueryCpuStoppedState,
    "start-cpu" => StartCpu,
    "stop-self" => StopSelf,
    "ibm,get-system-parameter" => GetSystemParameter,
    "ibm,set-xive" => SetXive,
    "ibm,get-xive" => GetXive,
    "ibm,int-off" => IntOff,
    "ibm,int-on" => IntOn,
    "read-pci-config" => ReadPciConfig,
    "write-pci-config" => WritePciConfig,
    "ibm,read-pci-config" => IbmReadPciConfig,
    "ibm,write-pci-config" => IbmWritePciConfig,
}

/// The service behind `token`.
pub fn call_for_token(token: u32) -> Option<RtasCall> {
    RTAS_TOKENS
        .iter()
        .find(|t| t.token == token)
        .map(|t| t.call)
}

/// The entry of a service in [`RTAS_TOKENS`].
pub fn token_of(call: RtasCall) -> &'static RtasToken {
    // Every RtasCall is in the table (a test checks it); the fallback is never taken.
    RTAS_TOKENS
        .iter()
        .find(|t| t.call == call)
        .unwrap_or(&RTAS_TOKENS[0])
}

/// Seconds and nanoseconds since 1970-01-01 00:00:00 UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnixTime {
    /// Whole seconds (negative before 1970).
    pub seconds: i64,
    /// 0..1_000_000_000.
    pub nanoseconds: u32,
}

/// A vCPU's state as query-cpu-stopped-state reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuRunState {
    /// Stopped (rets[1] = 0): start-cpu may start it.
    Stopped,
    /// Running (rets[1] = 2).
    Running,
}

/// The platform side of RTAS: what the hypervisor does when the guest asks.
pub trait RtasPlatform {
    /// The time of day now (from the machine's clock or the boot time plus the timebase).
    fn now(&mut self) -> UnixTime;
    /// Print one byte on the partition's console.
    fn display_character(&mut self, byte: u8);
    /// The partition asked to power off: stop it once the call returns.
    fn power_off(&mut self);
    /// The partition asked to reboot.
    fn reboot(&mut self);
    /// The state of the vCPU with interrupt server number `server`, `None` if none.
    fn cpu_state(&self, server: u32) -> Option<CpuRunState>;
    /// Start stopped vCPU `server` at guest-real `entry` in real mode with r3 = `r3`
    /// (MSR = SF | ME, as QEMU's rtas_start_cpu). Only called for a stopped vCPU and an entry
    /// inside the partition.
    fn start_cpu(&mut self, server: u32, entry: u64, r3: u64);
    /// The calling vCPU stops (until start-cpu).
    fn stop_self(&mut self);
}

/// The outcome of one H_RTAS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RtasOutcome {
    /// r3 of the hypercall.
    pub hcall: HStatus,
    /// The service called, if the token named one.
    pub call: Option<RtasCall>,
    /// The status written to the first return cell (`None` when nothing was written).
    pub status: Option<RtasStatus>,
}

/// A partition's RTAS state: the time-of-day offset set-time-of-day leaves, and the count of
/// every call, for the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RtasState {
    offset_ns: i128,
    counts: [u64; RTAS_CALLS],
    unknown_tokens: u64,
    refused_buffers: u64,
}

const RTAS_CALLS: usize = 18;

/// A call's arguments, read from the buffer.
struct Args {
    cells: [u32; RTAS_MAX_CELLS as usize],
    nargs: u32,
    nret: u32,
}

impl Args {
    fn arg(&self, i: usize) -> u32 {
        self.cells[i]
    }

    fn shape(&self, nargs: u32, nret: u32) -> Result<(), RtasStatus> {
        if self.nargs == nargs && self.nret == nret {
            Ok(())
        } else {
            Err(RtasStatus::ParameterError)
        }
    }
}

/// What a service returns: its status and return cells 1.. (written only on success).
struct Rets {
    status: RtasStatus,
    values: [u32; 7],
    count: usize,
}

impl Rets {
    fn status(status: RtasStatus) -> Self {
        Rets {
            status,
            values: [0; 7],
            count: 0,
        }
    }

    fn values(values: &[u32]) -> Self {
        let mut rets = Rets::status(RtasStatus::Success);
        rets.values[..values.len()].copy_from_slice(values);
        rets.count = values.len();
        rets
    }
}

impl RtasState {
    /// How many times the guest called `call`.
    pub fn count(&self, call: RtasCall) -> u64 {
        self.counts[call as usize]
    }

    /// Calls with a token that names no service.
    pub fn unknown_tokens(&self) -> u64 {
        self.unknown_tokens
    }

    /// Calls whose buffer was outside the partition or too long.
    pub fn refused_buffers(&self) -> u64 {
        self.refused_buffers
    }

    /// Every service called at least once, with its count (for the end-of-run log).
    pub fn calls(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        RTAS_TOKENS
            .iter()
            .filter(|t| self.counts[t.call as usize] != 0)
            .map(|t| (t.name, self.counts[t.call as usize]))
    }

    /// H_RTAS(buffer) from the vCPU with interrupt server number `caller`.
    pub fn call<G, P>(
        &mut self,
        buffer: u64,
        guest: &mut G,
        platform: &mut P,
        xics: &mut Xics,
    ) -> RtasOutcome
    where
        G: GuestMemory + ?Sized,
        P: RtasPlatform + ?Sized,
    {
        let refused = RtasOutcome {
            hcall: HStatus::Parameter,
            call: None,
            status: None,
        };
        let mut header = [0u8; HEADER_BYTES as usize];
        if guest.read(buffer, &mut header).is_err() {
            self.refused_buffers += 1;
            return refused;
        }
        let cell = |i: usize| {
            u32::from_be_bytes([
                header[4 * i],
                header[4 * i + 1],
                header[4 * i + 2],
                header[4 * i + 3],
            ])
        };
        let (token, nargs, nret) = (cell(0), cell(1), cell(2));
        let cells = u64::from(nargs) + u64::from(nret);
        if cells > u64::from(RTAS_MAX_CELLS)
            || check_range(buffer, HEADER_BYTES + 4 * cells, guest.size()).is_err()
        {
            self.refused_buffers += 1;
            return refused;
        }
        let mut args = Args {
            cells: [0; RTAS_MAX_CELLS as usize],
            nargs,
            nret,
        };
        let mut raw = [0u8; 4 * RTAS_MAX_CELLS as usize];
        let arg_bytes = 4 * nargs as usize;
        if guest
            .read(buffer + HEADER_BYTES, &mut raw[..arg_bytes])
            .is_err()
        {
            self.refused_buffers += 1;
            return refused;
        }
        for (i, chunk) in raw[..arg_bytes].chunks_exact(4).enumerate() {
            args.cells[i] = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        let rets_at = buffer + HEADER_BYTES + u64::from(arg_bytes as u32);

        let Some(call) = call_for_token(token) else {
            self.unknown_tokens += 1;
            let status = self.write_rets(
                guest,
                rets_at,
                nret,
                &Rets::status(RtasStatus::ParameterError),
            );
            return RtasOutcome {
                hcall: HStatus::Parameter,
                call: None,
                status,
            };
        };
        self.counts[call as usize] += 1;
        let rets = self
            .dispatch(call, &args, guest.size(), platform, xics)
            .unwrap_or_else(Rets::status);
        let status = self.write_rets(guest, rets_at, nret, &rets);
        RtasOutcome {
            hcall: HStatus::Success,
            call: Some(call),
            status,
        }
    }

    /// Writes the status and, on success, the values, into the `nret` return cells.
    fn write_rets<G: GuestMemory + ?Sized>(
        &self,
        guest: &mut G,
        at: u64,
        nret: u32,
        rets: &Rets,
    ) -> Option<RtasStatus> {
        if nret == 0 {
            return None;
        }
        let mut bytes = [0u8; 4 * RTAS_MAX_CELLS as usize];
        bytes[..4].copy_from_slice(&rets.status.code().to_be_bytes());
        let mut cells = 1;
        if rets.status == RtasStatus::Success || rets.status == RtasStatus::NoErrorsFound {
            for (i, value) in rets.values[..rets.count].iter().enumerate() {
                if i + 1 < nret as usize {
                    bytes[4 * (i + 1)..4 * (i + 2)].copy_from_slice(&value.to_be_bytes());
                    cells = i + 2;
                }
            }
        }
        // The range was checked against the buffer's bounds before dispatch.
        guest.write(at, &bytes[..4 * cells]).ok()?;
        Some(rets.status)
    }

    fn dispatch<P: RtasPlatform + ?Sized>(
        &mut self,
        call: RtasCall,
        args: &Args,
        memory_size: u64,
        platform: &mut P,
        xics: &mut Xics,
    ) -> Result<Rets, RtasStatus> {
        let xics_status = |_| RtasStatus::ParameterError;
        match call {
            RtasCall::DisplayCharacter => {
                args.shape(1, 1)?;
                platform.display_character(args.arg(0) as u8);
                Ok(Rets::values(&[]))
            }
            RtasCall::GetTimeOfDay => {
                args.shape(0, 8)?;
                let now = platform.now();
                let ns = i128::from(now.seconds) * 1_000_000_000
                    + i128::from(now.nanoseconds)
                    + self.offset_ns;
                let (date, nanoseconds) = civil_from_ns(ns).ok_or(RtasStatus::HardwareError)?;
                Ok(Rets::values(&[
                    date.year,
                    date.month,
                    date.day,
                    date.hour,
                    date.minute,
                    date.second,
                    nanoseconds,
                ]))
            }
            RtasCall::SetTimeOfDay => {
                args.shape(7, 1)?;
                let date = CivilTime {
                    year: args.arg(0),
                    month: args.arg(1),
                    day: args.arg(2),
                    hour: args.arg(3),
                    minute: args.arg(4),
                    second: args.arg(5),
                };
                let nanoseconds = args.arg(6);
                if nanoseconds >= 1_000_000_000 {
                    return Err(RtasStatus::ParameterError);
                }
                let seconds = seconds_from_civil(&date).ok_or(RtasStatus::ParameterError)?;
                let now = platform.now();
                let target = i128::from(seconds) * 1_000_000_000 + i128::from(nanoseconds);
                self.offset_ns = target
                    - (i128::from(now.seconds) * 1_000_000_000 + i128::from(now.nanoseconds));
                Ok(Rets::values(&[]))
            }
            RtasCall::PowerOff => {
                args.shape(2, 1)?;
                platform.power_off();
                Ok(Rets::values(&[]))
            }
            RtasCall::SystemReboot => {
                args.shape(0, 1)?;
                platform.reboot();
                Ok(Rets::values(&[]))
            }
            RtasCall::EventScan => {
                args.shape(4, 1)?;
                Ok(Rets::status(RtasStatus::NoErrorsFound))
            }
            RtasCall::QueryCpuStoppedState => {
                args.shape(1, 2)?;
                match platform.cpu_state(args.arg(0)) {
                    Some(CpuRunState::Stopped) => Ok(Rets::values(&[0])),
                    Some(CpuRunState::Running) => Ok(Rets::values(&[2])),
                    None => Err(RtasStatus::ParameterError),
                }
            }
            RtasCall::StartCpu => {
                args.shape(3, 1)?;
                let (server, entry, r3) =
                    (args.arg(0), u64::from(args.arg(1)), u64::from(args.arg(2)));
                match platform.cpu_state(server) {
                    None => Err(RtasStatus::ParameterError),
                    Some(CpuRunState::Running) => Err(RtasStatus::HardwareError),
                    Some(CpuRunState::Stopped) => {
                        if !entry.is_multiple_of(4) || check_range(entry, 4, memory_size).is_err() {
                            return Err(RtasStatus::ParameterError);
                        }
                        platform.start_cpu(server, entry, r3);
                        Ok(Rets::values(&[]))
                    }
                }
            }
            RtasCall::StopSelf => {
                if args.nargs != 0 || args.nret > 1 {
                    return Err(RtasStatus::ParameterError);
                }
                platform.stop_self();
                Ok(Rets::values(&[]))
            }
            RtasCall::GetSystemParameter => {
                args.shape(3, 1)?;
                Err(RtasStatus::NotSupported)
            }
            RtasCall::SetXive => {
                args.shape(3, 1)?;
                xics.set_xive(args.arg(0), args.arg(1), args.arg(2))
                    .map_err(xics_status)?;
                Ok(Rets::values(&[]))
            }
            RtasCall::GetXive => {
                args.shape(1, 3)?;
                let (server, priority) = xics.get_xive(args.arg(0)).map_err(xics_status)?;
                Ok(Rets::values(&[server, u32::from(priority)]))
            }
            RtasCall::IntOff => {
                args.shape(1, 1)?;
                xics.int_off(args.arg(0)).map_err(xics_status)?;
                Ok(Rets::values(&[]))
            }
            RtasCall::IntOn => {
                args.shape(1, 1)?;
                xics.int_on(args.arg(0)).map_err(xics_status)?;
                Ok(Rets::values(&[]))
            }
            RtasCall::ReadPciConfig => pci_config(args, 2, 2),
            RtasCall::WritePciConfig => pci_config(args, 3, 1),
            RtasCall::IbmReadPciConfig => pci_config(args, 4, 2),
            RtasCall::IbmWritePciConfig => pci_config(args, 5, 1),
        }
    }
}

/// The PCI config calls. The partition has no PCI devices yet, so every access finds no
/// device: RTAS_OUT_HW_ERROR, as QEMU's finish_read_pci_config / finish_write_pci_config
/// answer for a missing device, a size other than 1, 2 or 4, or (unlike the other calls) a
/// wrong nargs/nret. When a device is passed through, its address decoding goes here.
fn pci_config(args: &Args, nargs: u32, nret: u32) -> Result<Rets, RtasStatus> {
    args.shape(nargs, nret)
        .map_err(|_| RtasStatus::HardwareError)?;
    Err(RtasStatus::HardwareError)
}

/// A UTC calendar time, as the RTAS time-of-day cells carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CivilTime {
    /// e.g. 2026.
    pub year: u32,
    /// 1..=12.
    pub month: u32,
    /// 1..=31.
    pub day: u32,
    /// 0..=23.
    pub hour: u32,
    /// 0..=59.
    pub minute: u32,
    /// 0..=59.
    pub second: u32,
}

/// Days from 1970-01-01 to `year-month-day` in the proleptic Gregorian calendar (counting
/// eras of 400 years from March, so February's leap day falls at the end of a year).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = i64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        _ => 28,
    }
}

/// Seconds since the epoch of a valid calendar time from 1970 to 9999, else `None`.
pub fn seconds_from_civil(t: &CivilTime) -> Option<i64> {
    if !(1970..=9999).contains(&t.year)
        || !(1..=12).contains(&t.month)
        || t.day == 0
        || t.day > days_in_month(t.year, t.month)
        || t.hour > 23
        || t.minute > 59
        || t.second > 59
    {
        return None;
    }
    let days = days_from_civil(i64::from(t.year), t.month, t.day);
    Some(days * 86_400 + i64::from(t.hour) * 3600 + i64::from(t.minute) * 60 + i64::from(t.second))
}

/// The calendar time and nanoseconds of `ns` since the epoch, for years 1..=9999.
pub fn civil_from_ns(ns: i128) -> Option<(CivilTime, u32)> {
    let seconds = i64::try_from(ns.div_euclid(1_000_000_000)).ok()?;
    let nanoseconds = ns.rem_euclid(1_000_000_000) as u32;
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400) as u32;
    // The inverse of days_from_civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let year = u32::try_from(year)
        .ok()
        .filter(|y| (1..=9999).contains(y))?;
    Some((
        CivilTime {
            year,
            month,
            day,
            hour: second_of_day / 3600,
            minute: second_of_day / 60 % 60,
            second: second_of_day % 60,
        },
        nanoseconds,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn civil(year: u32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> CivilTime {
        CivilTime {
            year,
            month,
            day,
            hour,
            minute,
            second,
        }
    }

    #[test]
    fn calendar_matches_known_dates_both_ways() {
        // From `date -u -d ... +%s`.
        let known = [
            (civil(1970, 1, 1, 0, 0, 0), 0i64),
            (civil(2000, 3, 1, 0, 0, 0), 951_868_800),
            (civil(1999, 12, 31, 23, 59, 59), 946_684_799),
            (civil(2024, 2, 29, 12, 0, 0), 1_709_208_000),
            (civil(2026, 12, 2, 7, 12, 52), 1_796_195_572),
            (civil(9999, 12, 31, 23, 59, 59), 253_402_300_799),
        ];
        for (time, seconds) in known {
            assert_eq!(seconds_from_civil(&time), Some(seconds), "{time:?}");
            assert_eq!(
                civil_from_ns(i128::from(seconds) * 1_000_000_000 + 7),
                Some((time, 7))
            );
        }
        // Every day from 1970 to 2100 round-trips.
        for day in 0..47_847i64 {
            let (t, _) = civil_from_ns(i128::from(day * 86_400) * 1_000_000_000).unwrap();
            assert_eq!(seconds_from_civil(&t), Some(day * 86_400));
        }
    }

    #[test]
    fn invalid_dates_are_refused() {
        for t in [
            civil(2023, 2, 29, 0, 0, 0),
            civil(1900, 2, 29, 0, 0, 0),
            civil(2024, 4, 31, 0, 0, 0),
            civil(2024, 0, 1, 0, 0, 0),
            civil(2024, 13, 1, 0, 0, 0),
            civil(2024, 1, 0, 0, 0, 0),
            civil(2024, 1, 1, 24, 0, 0),
            civil(2024, 1, 1, 0, 60, 0),
            civil(2024, 1, 1, 0, 0, 60),
            civil(1969, 12, 31, 23, 59, 59),
            civil(10_000, 1, 1, 0, 0, 0),
            civil(u32::MAX, u32::MAX, u32::MAX, u32::MAX, u32::MAX, u32::MAX),
        ] {
            assert_eq!(seconds_from_civil(&t), None, "{t:?}");
        }
        // Century years are leap years only every 400 years.
        assert_eq!(seconds_from_civil(&civil(2100, 2, 29, 0, 0, 0)), None);
        assert_eq!(
            seconds_from_civil(&civil(2000, 2, 29, 0, 0, 0)),
            Some(951_782_400)
        );
        assert!(seconds_from_civil(&civil(2400, 2, 29, 0, 0, 0)).is_some());
        assert!(civil_from_ns(i128::MAX).is_none());
        assert!(civil_from_ns(i128::MIN).is_none());
    }

    #[test]
    fn stub_is_the_five_instructions_big_endian() {
        let bytes = rtas_stub_bytes();
        assert_eq!(
            &bytes[..4],
            &[0x7c, 0x64, 0x1b, 0x78],
            "mr r4,r3 (or r4,r3,r3)"
        );
        assert_eq!(&bytes[8..12], &[0x60, 0x63, 0xf0, 0x00], "ori r3,r3,0xf000");
        assert_eq!(&bytes[12..16], &[0x44, 0x00, 0x00, 0x22], "sc 1");
        assert_eq!(&bytes[16..], &[0x4e, 0x80, 0x00, 0x20], "blr");
    }

    #[test]
    fn every_service_has_one_distinct_token() {
        assert_eq!(RTAS_TOKENS.len(), RTAS_CALLS);
        for (i, t) in RTAS_TOKENS.iter().enumerate() {
            assert_eq!(t.token, RTAS_TOKEN_BASE + i as u32);
            assert_eq!(t.call as usize, i, "RtasCall order follows the table");
            assert_eq!(call_for_token(t.token), Some(t.call));
            assert_eq!(token_of(t.call).name, t.name);
        }
        assert_eq!(call_for_token(RTAS_TOKEN_BASE - 1), None);
        assert_eq!(call_for_token(0xa), None);
    }
}
