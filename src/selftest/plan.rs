//! What the in-image test run was asked to do, and how it reports: the boot-argument words
//! that select tests (by name, prefix or tier) or list them, the outcome of one test
//! (pass, fail, or skip when the machine lacks what the test needs), and the exact text of
//! the result and verdict lines that qemu-run.sh and its JUnit writer read.
//!
//! Pure logic, host-tested (tests/selftest_plan.rs); the runner in `selftest/mod.rs` uses it
//! on the machine. The boot arguments come from `/chosen/bootargs` in payload mode and from
//! the configuration blob in bare mode (`platform::config_blob`).
//!
//! Resources: Linux's `key=value` kernel command-line convention (Documentation/admin-guide/
//! kernel-parameters.rst); the JUnit fields CI systems read (name, outcome, time, message).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Runs the in-image tests: alone every test, `=P1,P2` those matching a pattern.
pub const TEST_WORD: &str = "tcefw.test";
/// Restricts the run to the tests of these tiers (`=boot,pci`); implies a run.
pub const TIER_WORD: &str = "tcefw.tier";
/// Prints the selected tests (all by default) instead of running them.
pub const LIST_WORD: &str = "tcefw.list";

/// What the boot arguments ask of the test runner.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    /// Run tests (`tcefw.test`, `tcefw.test=...` or `tcefw.tier=...` was given).
    pub run: bool,
    /// List the selected tests and end the run (`tcefw.list`).
    pub list: bool,
    /// Name patterns: a test name, or one with `*` wildcards (`tce_*`). Empty: every test.
    pub patterns: Vec<String>,
    /// Tier names. Empty: every tier.
    pub tiers: Vec<String>,
}

impl Request {
    /// Reads the request from boot arguments (whitespace-separated words; words that are not
    /// ours are left to whoever owns them).
    pub fn from_boot_args(args: &str) -> Request {
        let mut request = Request::default();
        for word in args.split_whitespace() {
            let (key, value) = match word.split_once('=') {
                Some((key, value)) => (key, Some(value)),
                None => (word, None),
            };
            let items = || {
                value
                    .unwrap_or("")
                    .split(',')
                    .filter(|item| !item.is_empty())
                    .map(String::from)
            };
            match key {
                TEST_WORD => {
                    request.run = true;
                    request.patterns.extend(items());
                }
                TIER_WORD => {
                    request.run = true;
                    request.tiers.extend(items());
                }
                LIST_WORD => request.list = true,
                _ => {}
            }
        }
        request
    }

    /// Whether the runner has anything to do.
    pub fn wanted(&self) -> bool {
        self.run || self.list
    }

    /// The selection as boot-argument words, for the log ("every test" when unrestricted).
    pub fn describe(&self) -> String {
        let mut words = Vec::new();
        if !self.patterns.is_empty() {
            words.push(format!("{TEST_WORD}={}", self.patterns.join(",")));
        }
        if !self.tiers.is_empty() {
            words.push(format!("{TIER_WORD}={}", self.tiers.join(",")));
        }
        if words.is_empty() {
            String::from("every test")
        } else {
            words.join(" ")
        }
    }
}

/// Whether `pattern` selects the test called `name`: the exact name, or a pattern in which
/// `*` stands for any run of characters (`tce_*` is a prefix, `*_window1` a suffix).
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty(); // no `*`: the whole name
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// The tests `request` selects from `tests` (`(tier, name)` in run order), as indices, or
/// one message naming every pattern that matches no test and every unknown tier: a typo
/// must not turn into a run of nothing that passes.
pub fn select(request: &Request, tests: &[(&str, &str)]) -> Result<Vec<usize>, String> {
    let mut problems = Vec::new();
    for tier in &request.tiers {
        if !tests.iter().any(|(t, _)| t == tier) {
            let mut known: Vec<&str> = tests.iter().map(|(t, _)| *t).collect();
            known.dedup();
            problems.push(format!("no tier '{tier}' (tiers: {})", known.join(", ")));
        }
    }
    let in_tiers = |tier: &str| request.tiers.is_empty() || request.tiers.iter().any(|t| t == tier);
    for pattern in &request.patterns {
        if !tests
            .iter()
            .any(|(tier, name)| in_tiers(tier) && pattern_matches(pattern, name))
        {
            problems.push(format!("'{pattern}' matches no test"));
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Ok(tests
        .iter()
        .enumerate()
        .filter(|(_, (tier, name))| {
            in_tiers(tier)
                && (request.patterns.is_empty()
                    || request.patterns.iter().any(|p| pattern_matches(p, name)))
        })
        .map(|(index, _)| index)
        .collect())
}

/// Marks a test's error as a skip: see [`skip`].
const SKIP_MARK: &str = "\u{1}skip\u{1}";

/// The error a test returns when the machine lacks what it needs (a device, or a device
/// set up so that it cannot serve the test). The reason should start with `needs <device>`
/// (the QEMU driver name, e.g. `needs e1000e (8086:10d3): ...`): qemu-run.sh fails a run in
/// which a test skips for a device the run was given.
pub fn skip(reason: &str) -> String {
    format!("{SKIP_MARK}{reason}")
}

/// How one test ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every check held.
    Pass,
    /// A check failed, with the reason.
    Fail(String),
    /// The test could not run here, with the reason.
    Skip(String),
}

impl Outcome {
    /// The outcome of a test body's result: `Err` from [`skip`] is a skip, any other `Err`
    /// a failure.
    pub fn of(result: Result<(), String>) -> Outcome {
        match result {
            Ok(()) => Outcome::Pass,
            Err(reason) => match reason.strip_prefix(SKIP_MARK) {
                Some(reason) => Outcome::Skip(String::from(reason)),
                None => Outcome::Fail(reason),
            },
        }
    }
}

/// Seconds with microseconds, from timebase ticks.
pub fn seconds(ticks: u64, hz: u64) -> String {
    let hz = hz.max(1);
    let micros = (ticks as u128 * 1_000_000 / hz as u128) as u64;
    format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000)
}

/// The result line of one test, e.g. `PASS name (0.000512 s)`, `FAIL name (1.2 s): why`,
/// `SKIP name (0.000001 s): needs edu ...`. Reasons are kept on one line.
pub fn result_line(name: &str, outcome: &Outcome, ticks: u64, hz: u64) -> String {
    let time = seconds(ticks, hz);
    let one_line = |reason: &str| reason.replace(['\r', '\n'], " ");
    match outcome {
        Outcome::Pass => format!("PASS {name} ({time} s)"),
        Outcome::Fail(reason) => format!("FAIL {name} ({time} s): {}", one_line(reason)),
        Outcome::Skip(reason) => format!("SKIP {name} ({time} s): {}", one_line(reason)),
    }
}

/// The line that opens a tier's results: the JUnit writer files the tests that follow
/// under this tier.
pub fn tier_line(tier: &str, selected: usize) -> String {
    format!("TIER {tier}: {selected} test(s)")
}

/// The line a listing prints for one test.
pub fn list_line(tier: &str, name: &str) -> String {
    format!("TEST {tier} {name}")
}

/// Tallies of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Tests that passed.
    pub passed: usize,
    /// Tests that failed.
    pub failed: usize,
    /// Tests that could not run on this machine.
    pub skipped: usize,
}

impl Tally {
    /// Counts one outcome.
    pub fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Pass => self.passed += 1,
            Outcome::Fail(_) => self.failed += 1,
            Outcome::Skip(_) => self.skipped += 1,
        }
    }

    /// The verdict line qemu-run.sh reads: `N passed, N failed, N skipped`.
    pub fn verdict_line(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.passed, self.failed, self.skipped
        )
    }

    /// A run passes when nothing failed and something passed: a run in which every test
    /// skipped has shown nothing.
    pub fn passed_run(&self) -> bool {
        self.failed == 0 && self.passed > 0
    }
}
