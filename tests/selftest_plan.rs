//! The in-image test plan on the host: which tests the boot-argument words select (names,
//! prefixes, tiers, unknown ones refused), how a test's result becomes pass, fail or skip,
//! and the exact result and verdict lines that qemu-run.sh and its JUnit writer parse.

use tcefw::selftest::plan::{pattern_matches, result_line, select, skip, Outcome, Request, Tally};

const TESTS: &[(&str, &str)] = &[
    ("boot", "heap_alloc_and_free"),
    ("boot", "every_thread_runs_work"),
    ("pci", "edu_found_with_bar0_and_answers"),
    ("tce", "tce_4k_1level_window0"),
    ("tce", "tce_4k_1level_window1"),
    ("bulk", "hostile_random_hypercalls_change_nothing"),
];

fn selected(args: &str) -> Result<Vec<&'static str>, String> {
    let request = Request::from_boot_args(args);
    select(&request, TESTS).map(|indices| indices.iter().map(|&i| TESTS[i].1).collect())
}

#[test]
fn no_word_asks_for_nothing() {
    let quiet = Request::from_boot_args("console=hvc0 quiet tcefw.testing tcefw.tests=x");
    assert!(!quiet.wanted(), "only our exact words count");
    assert_eq!(selected("").unwrap().len(), TESTS.len());
}

#[test]
fn the_bare_word_runs_every_test() {
    let request = Request::from_boot_args("quiet tcefw.test");
    assert!(request.run && request.patterns.is_empty() && request.tiers.is_empty());
    assert_eq!(selected("tcefw.test").unwrap().len(), TESTS.len());
    assert_eq!(request.describe(), "every test");
}

#[test]
fn a_name_selects_only_that_test() {
    assert_eq!(
        selected("tcefw.test=tce_4k_1level_window1").unwrap(),
        ["tce_4k_1level_window1"]
    );
}

#[test]
fn a_name_is_not_a_prefix_without_the_star() {
    assert!(!pattern_matches("tce_4k", "tce_4k_1level_window0"));
    assert!(pattern_matches("tce_4k*", "tce_4k_1level_window0"));
    assert!(pattern_matches("*", "anything"));
    assert!(pattern_matches("*window1", "tce_4k_1level_window1"));
    assert!(pattern_matches("tce_*_window1", "tce_4k_1level_window1"));
    assert!(!pattern_matches("tce_*_window1", "tce_4k_1level_window0"));
    assert!(pattern_matches("t*e*1", "tce_4k_1level_window1"));
    assert!(!pattern_matches("*window1*x", "tce_4k_1level_window1"));
    // A piece must not be matched twice over the same characters.
    assert!(!pattern_matches("ab*ba", "aba"));
    assert!(selected("tcefw.test=tce_4k").is_err());
}

#[test]
fn prefixes_and_names_combine_in_run_order() {
    assert_eq!(
        selected("tcefw.test=hostile*,tce_4k*").unwrap(),
        [
            "tce_4k_1level_window0",
            "tce_4k_1level_window1",
            "hostile_random_hypercalls_change_nothing"
        ]
    );
    // Repeated words add up.
    assert_eq!(
        selected("tcefw.test=heap_alloc_and_free tcefw.test=edu*").unwrap(),
        ["heap_alloc_and_free", "edu_found_with_bar0_and_answers"]
    );
}

#[test]
fn tiers_select_and_intersect_with_patterns() {
    assert_eq!(
        selected("tcefw.tier=boot,bulk").unwrap(),
        [
            "heap_alloc_and_free",
            "every_thread_runs_work",
            "hostile_random_hypercalls_change_nothing"
        ]
    );
    let tier_alone = Request::from_boot_args("tcefw.tier=pci");
    assert!(tier_alone.run, "a tier word runs tests by itself");
    assert_eq!(
        selected("tcefw.tier=tce tcefw.test=*window1").unwrap(),
        ["tce_4k_1level_window1"]
    );
    assert_eq!(
        Request::from_boot_args("tcefw.tier=tce tcefw.test=*window1").describe(),
        "tcefw.test=*window1 tcefw.tier=tce"
    );
}

#[test]
fn unknown_patterns_and_tiers_are_refused_by_name() {
    let error = selected("tcefw.test=nosuch,heap_alloc_and_free,also_missing*").unwrap_err();
    assert!(error.contains("'nosuch' matches no test"), "{error}");
    assert!(error.contains("'also_missing*' matches no test"), "{error}");
    assert!(!error.contains("heap_alloc"), "{error}");
    let error = selected("tcefw.tier=network").unwrap_err();
    assert!(error.contains("no tier 'network'"), "{error}");
    assert!(error.contains("boot, pci, tce, bulk"), "{error}");
    // A pattern that matches only outside the chosen tiers selects nothing: refused.
    let error = selected("tcefw.tier=boot tcefw.test=tce_4k*").unwrap_err();
    assert!(error.contains("'tce_4k*' matches no test"), "{error}");
}

#[test]
fn list_word_lists_the_selection() {
    let request = Request::from_boot_args("tcefw.list tcefw.tier=pci");
    assert!(request.list && request.wanted());
    assert_eq!(
        select(&request, TESTS).unwrap(),
        [2],
        "listing honours the selection"
    );
    let list_all = Request::from_boot_args("tcefw.list");
    assert!(list_all.list && !list_all.run);
}

#[test]
fn only_marked_errors_are_skips() {
    assert_eq!(Outcome::of(Ok(())), Outcome::Pass);
    assert_eq!(
        Outcome::of(Err(String::from("needs edu: said plainly"))),
        Outcome::Fail(String::from("needs edu: said plainly")),
        "a failure whose text looks like a skip is still a failure"
    );
    assert_eq!(
        Outcome::of(Err(skip("needs e1000e (8086:10d3): none"))),
        Outcome::Skip(String::from("needs e1000e (8086:10d3): none"))
    );
    // A skip wrapped into another message (a failure that mentions it) is a failure.
    let wrapped = format!("setup: {}", skip("needs edu"));
    assert!(matches!(Outcome::of(Err(wrapped)), Outcome::Fail(_)));
}

#[test]
fn result_lines_carry_name_time_and_reason_on_one_line() {
    let hz = 512_000_000;
    assert_eq!(
        result_line("heap_alloc_and_free", &Outcome::Pass, 262_144, hz),
        "PASS heap_alloc_and_free (0.000512 s)"
    );
    assert_eq!(
        result_line(
            "tce_4k_1level_window1",
            &Outcome::Fail(String::from("did not land\nin A")),
            3 * hz + hz / 2,
            hz
        ),
        "FAIL tce_4k_1level_window1 (3.500000 s): did not land in A"
    );
    assert_eq!(
        result_line(
            "e1000e_found_with_bars",
            &Outcome::Skip(String::from("needs e1000e")),
            0,
            hz
        ),
        "SKIP e1000e_found_with_bars (0.000000 s): needs e1000e"
    );
}

#[test]
fn verdict_counts_all_three_and_needs_a_pass() {
    let mut tally = Tally::default();
    assert!(!tally.passed_run(), "nothing ran");
    tally.add(&Outcome::Skip(String::from("needs edu")));
    assert!(!tally.passed_run(), "everything skipped shows nothing");
    tally.add(&Outcome::Pass);
    tally.add(&Outcome::Pass);
    assert!(tally.passed_run());
    assert_eq!(tally.verdict_line(), "2 passed, 0 failed, 1 skipped");
    tally.add(&Outcome::Fail(String::from("x")));
    assert!(!tally.passed_run());
    assert_eq!(tally.verdict_line(), "2 passed, 1 failed, 1 skipped");
}
