#!/usr/bin/env bash
# test.sh: runs every tcefw test on a fresh Debian/Ubuntu machine and prints one combined
# "N passed, N failed, N skipped" line: the host tests (cargo test on the build machine),
# the in-image tests under QEMU powernv8 in bare and payload mode (under skiboot) on the
# built-in device layouts and on a user-style one, and the boot checks that only the serial
# log or the harness can show (one banner with -smp 4, 2 GiB seen as 2 GiB, an unexpected
# exception reported, a missing device skipped and named, edu's DMA mask explained, a
# colliding -device refused, one test selected by name, the gdb helpers, the JUnit file).
# A built-in layout fails if a test that needs one of its devices skips.
#
# Results: target/test-logs/ holds each run's serial log and JUnit file, and results.xml,
# the JUnit file of the whole run (checked with Python's xml.etree).
#
#   ./test.sh            everything
#   ./test.sh --host     host tests only
#   ./test.sh --qemu     QEMU tests and boot checks only
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
# shellcheck source=tools/results.sh
. tools/results.sh

run_host=1
run_qemu=1
case "${1:-}" in
    --host) run_qemu=0 ;;
    --qemu) run_host=0 ;;
    -h | --help) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 0 ;;
    "") ;;
    *) echo "test.sh: unknown option '$1' (usage: ./test.sh [--host|--qemu])" >&2; exit 2 ;;
esac
[ $# -le 1 ] || { echo "test.sh: one option at most (usage: ./test.sh [--host|--qemu])" >&2; exit 2; }

passed=0
failed=0
skipped=0
failures=()
logs=target/test-logs
mkdir -p "$logs"
rm -f "$logs"/*.junit.xml "$logs"/results.xml "$logs"/checks.tsv
checks=$logs/checks.tsv
: >"$checks"
suites=()
start_s=$(date +%s)

since_start() {
    local s=$(($(date +%s) - start_s))
    printf '%dm%02ds' $((s / 60)) $((s % 60))
}
# A boot check: note_pass NAME [SECONDS]; note_fail NAME REASON [SECONDS].
note_pass() {
    passed=$((passed + 1))
    printf 'PASS\t%s\t%s\t\n' "$1" "${2:-0}" >>"$checks"
    echo "PASS $1"
}
note_fail() {
    failed=$((failed + 1))
    failures+=("$1")
    printf 'FAIL\t%s\t%s\t%s\n' "$1" "${3:-0}" "$2" >>"$checks"
    echo "FAIL $1${2:+: $2}"
}
# Runs "$@" with its stderr also copied to $1's file; sets status.
capture_stderr() {
    local file=$1
    shift
    ("$@" 2>&1 1>&3 3>&- | tee "$file" >&2 3>&-; exit "${PIPESTATUS[0]}") 3>&1
    status=$?
}

# Set-up: QEMU, llvm (objcopy, nm), the rustup target, python3 and gdb-multiarch.
./qemu-run.sh --setup-only || { echo "test.sh: set-up failed" >&2; exit 2; }
host_target=$(rustc -vV | sed -n 's/^host: //p')

if [ "$run_host" = 1 ]; then
    echo "== [$(since_start)] host tests (cargo test --target $host_target)"
    cargo test --target "$host_target" 2>&1 | tee "$logs/host.log"
    host_status=${PIPESTATUS[0]}
    count_host() {
        awk -v word="$1" '/^test result:/ { for (i = 1; i < NF; i++) if ($(i + 1) ~ "^" word) s += $i }
            END { print s + 0 }' "$logs/host.log"
    }
    host_passed=$(count_host passed)
    host_failed=$(count_host failed)
    host_ignored=$(count_host ignored)
    passed=$((passed + host_passed))
    failed=$((failed + host_failed))
    skipped=$((skipped + host_ignored))
    results_junit_cargo "$logs/host.log" "$logs/host.junit.xml"
    suites+=("$logs/host.junit.xml")
    if [ "$host_status" != 0 ] && [ "$host_failed" = 0 ]; then
        note_fail "host_tests_build" "cargo test exited with $host_status (build failure?)"
    fi
    [ "$host_failed" = 0 ] || failures+=("host tests ($host_failed failed)")
    echo "== [$(since_start)] host tests: $host_passed passed, $host_failed failed, $host_ignored ignored"
fi

# One QEMU boot with the in-image tests; its results (qemu-run.sh's own count, which also
# fails a skip for a device the run was given) count one by one, and its JUnit file joins
# results.xml.
qemu_suite() {
    local name=$1
    shift
    local log=$logs/$name.log
    echo "== [$(since_start)] $name: ./qemu-run.sh --test $*"
    capture_stderr "$logs/$name.stderr" ./qemu-run.sh --test --log "$log" "$@"
    local results p f s
    results=$(grep -E '^qemu-run.sh: results: ' "$logs/$name.stderr" | tail -n 1)
    if [ -z "$results" ]; then
        note_fail "$name" "qemu-run.sh exited with $status before any results (see $logs/$name.stderr)"
        return 0
    fi
    read -r p f s <<<"$(echo "$results" | sed -E 's/.*results: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped.*/\1 \2 \3/')"
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
    [ "$f" = 0 ] || failures+=("$name ($f failed)")
    suites+=("${log%.log}.junit.xml")
    if [ "$status" != 0 ] && [ "$f" = 0 ]; then
        note_fail "$name" "qemu-run.sh exited with $status but counted no failure"
    fi
    echo "== [$(since_start)] $name: $p passed, $f failed, $s skipped in $(sed -E 's/.* skipped in ([0-9.]+s).*/\1/' <<<"$results")"
}

# The number of result lines in log $1 (PASS, FAIL and SKIP).
result_lines() { grep -cE '^(PASS|FAIL|SKIP) [^ ]+ \(' "$1" || true; }

if [ "$run_qemu" = 1 ]; then
    # --- The built-in layouts: every test runs, none may skip -------------------------------
    qemu_suite qemu-bare --mode bare
    qemu_suite qemu-payload --mode payload
    qemu_suite qemu-bare-moved --mode bare --devices moved
    qemu_suite qemu-payload-moved --mode payload --devices moved
    qemu_suite qemu-bare-smp4 --mode bare --smp 4
    banners=$(grep -c "^tcefw .* - POWER8" "$logs/qemu-bare-smp4.log" 2>/dev/null)
    if [ "$banners" = 1 ]; then note_pass "smp4_exactly_one_banner"; else
        note_fail "smp4_exactly_one_banner" "$banners banners"; fi
    cpus=$(grep -cE "CPU: PIR" "$logs/qemu-bare-smp4.log" 2>/dev/null)
    if [ "$cpus" = 4 ]; then note_pass "smp4_summary_lists_4_cpus"; else
        note_fail "smp4_summary_lists_4_cpus" "$cpus CPUs listed"; fi
    qemu_suite qemu-payload-smp4 --mode payload --smp 4
    qemu_suite qemu-bare-2g --mode bare --mem 2G
    if grep -qE "MEM: total 2 GiB" "$logs/qemu-bare-2g.log"; then
        note_pass "ram_2g_reported_as_2g"
    else
        note_fail "ram_2g_reported_as_2g" "no 'MEM: total 2 GiB' in the summary"
    fi
    if grep -q "unknown isa device" "$logs/qemu-bare.stderr"; then
        note_fail "qemu_ib700_warning_filtered" "$(grep -m1 'unknown isa device' "$logs/qemu-bare.stderr")"
    else
        note_pass "qemu_ib700_warning_filtered"
    fi

    # --- A machine of the user's: their devices replace the layout -------------------------
    qemu_suite qemu-bare-user-edu --mode bare --devices none -- \
        -device edu,bus=pcie.1,addr=0,dma_mask=0xffffffffffffffff
    user_log=$logs/qemu-bare-user-edu.log
    user_skips=$(grep -E '^SKIP ' "$user_log" | tr -d '\r' | cut -d' ' -f2 | sort | tr '\n' ' ')
    if [ "$user_skips" = "e1000e_found_with_bars " ] &&
        grep -qE '^SKIP e1000e_found_with_bars \(.*\): needs e1000e \(8086:10d3\)' "$user_log" &&
        grep -qE '^[0-9]+ passed, 0 failed, 1 skipped' "$user_log"; then
        note_pass "user_edu_run_skips_only_the_e1000e_test_naming_it"
    else
        note_fail "user_edu_run_skips_only_the_e1000e_test_naming_it" "skipped: ${user_skips:-none}"
    fi

    # An edu without dma_mask cannot reach window 1: the run fails and says why. These runs
    # are meant to fail, so their results stay out of the tally and of results.xml.
    mkdir -p "$logs/expected-failures"
    mask_log=$logs/expected-failures/edu-default-dma-mask.log
    echo "== [$(since_start)] edu without dma_mask (must fail, saying why)"
    t0=$(date +%s)
    capture_stderr "${mask_log%.log}.stderr" ./qemu-run.sh --test --log "$mask_log" \
        --only tce_4k_1level_window1,window_hypercalls_query_create_remove_reset,alias_above_the_table_reach_decodes_onto_the_entry \
        --devices none -- -device edu,bus=pcie.1,addr=0 >/dev/null
    mask_skips=$(grep -cE '^SKIP [^ ]+ \(.*\): needs edu with a 64-bit DMA mask: .*28 bits.*dma_mask=0xffffffffffffffff' "$mask_log")
    if [ "$status" = 1 ] && [ "$mask_skips" = 3 ] &&
        grep -q "FAIL tce_4k_1level_window1 skipped, but this run has the device it needs (edu)" \
            "${mask_log%.log}.stderr"; then
        note_pass "edu_without_dma_mask_says_why_window1_cannot_run" $(($(date +%s) - t0))
    else
        note_fail "edu_without_dma_mask_says_why_window1_cannot_run" \
            "status $status, $mask_skips DMA-mask skips (see $mask_log)" $(($(date +%s) - t0))
    fi

    # A -device on a bus the named layout uses: one line, exit 2, before anything boots.
    capture_stderr "$logs/expected-failures/collision.stderr" \
        ./qemu-run.sh --test --devices default -- -device edu,bus=pcie.0,addr=0
    collision=$(cat "$logs/expected-failures/collision.stderr")
    if [ "$status" = 2 ] && [ "$(printf '%s\n' "$collision" | wc -l)" = 1 ] &&
        [[ "$collision" == *"collides with --devices default, which puts edu on pcie.0"* ]]; then
        note_pass "colliding_device_is_a_one_line_error"
    else
        note_fail "colliding_device_is_a_one_line_error" "status $status: $collision"
    fi

    # --- Selection and listing ------------------------------------------------------------
    for mode in bare payload; do
        name=qemu-$mode-only-one
        qemu_suite "$name" --mode "$mode" --only tce_4k_1level_window1
        if [ "$(result_lines "$logs/$name.log")" = 1 ] &&
            grep -qE '^PASS tce_4k_1level_window1 \(' "$logs/$name.log" &&
            grep -qE '^1 passed, 0 failed, 0 skipped' "$logs/$name.log"; then
            note_pass "select_one_test_by_name_$mode"
        else
            note_fail "select_one_test_by_name_$mode" \
                "$(result_lines "$logs/$name.log") results (see $logs/$name.log)"
        fi
    done
    listed=$(./qemu-run.sh --list --log "$logs/list-bare.log" 2>/dev/null | cut -d' ' -f2 | sort)
    ran=$(grep -E '^(PASS|FAIL|SKIP) [^ ]+ \(' "$logs/qemu-bare.log" | tr -d '\r' | cut -d' ' -f2 | sort)
    if [ -n "$listed" ] && [ "$listed" = "$ran" ]; then
        note_pass "list_names_every_test_the_image_runs"
    else
        note_fail "list_names_every_test_the_image_runs" \
            "$(echo "$listed" | grep -c .) listed, $(echo "$ran" | grep -c .) ran in qemu-bare"
    fi
    listed=$(./qemu-run.sh --list --mode payload --only 'tce_4k*' --tier tce \
        --log "$logs/list-payload.log" 2>/dev/null | tr '\n' ' ')
    expected_list="tce tce_4k_1level_window0 tce tce_4k_2level_window0 tce tce_4k_1level_window1 "
    if [ "$listed" = "$expected_list" ]; then
        note_pass "list_by_glob_and_tier_payload"
    else
        note_fail "list_by_glob_and_tier_payload" "listed: $listed"
    fi
    capture_stderr "$logs/expected-failures/nosuch.stderr" \
        ./qemu-run.sh --test --only no_such_test --log "$logs/expected-failures/nosuch.log" >/dev/null
    if [ "$status" = 1 ] &&
        grep -q "^FAIL selection: 'no_such_test' matches no test" "$logs/expected-failures/nosuch.log"; then
        note_pass "unknown_test_name_is_refused"
    else
        note_fail "unknown_test_name_is_refused" "status $status"
    fi
    # A blob with the magic but a bad header is reported and the boot goes on.
    bad_blob=$logs/expected-failures/bad-blob.bin
    printf 'TCEFWCFG\x00\x00\x00\x02\x00\x00\x00\x0atcefw.test' >"$bad_blob"
    # (--elf: the image the test runs built, so that no plain build is needed.)
    ./qemu-run.sh --elf target/powerpc64le-unknown-linux-gnu/release/tcefw \
        --log "$logs/bad-blob.log" -- \
        -device "loader,file=$bad_blob,addr=0xf00000,force-raw=on" >/dev/null 2>&1
    status=$?
    if [ "$status" = 0 ] &&
        grep -q "CFG: configuration blob at 0xf00000 ignored: version 2" "$logs/bad-blob.log" &&
        ! grep -q "TEST: running" "$logs/bad-blob.log"; then
        note_pass "bad_configuration_blob_is_reported_and_ignored"
    else
        note_fail "bad_configuration_blob_is_reported_and_ignored" "status $status (see $logs/bad-blob.log)"
    fi

    # --- The script itself -----------------------------------------------------------------
    help=$(./qemu-run.sh --help)
    status=$?
    options=$(grep -oE '^ +(--[a-z-]+ \| )?--[a-z-]+\)' qemu-run.sh | grep -oE -- '--[a-z-]+' | sort -u)
    missing=""
    for option in $options; do
        grep -qE -- "(^| )$option( |,|$)" <<<"$help" || missing+=" $option"
        grep -qE -- "\`$option" README.md || missing+=" $option(README)"
    done
    if [ "$status" = 0 ] && [ -z "$missing" ] && ! grep -qE '^(set |here=|cd )' <<<"$help"; then
        note_pass "help_and_readme_name_every_option"
    else
        note_fail "help_and_readme_name_every_option" "status $status, missing:${missing:- none}"
    fi
    usage_ok=1
    for bad in "--mode" "--only" "--frobnicate" "--test=yes"; do
        message=$(./qemu-run.sh $bad 2>&1 >/dev/null)
        code=$?
        case "$bad" in
            --frobnicate) want="unknown option '--frobnicate'" ;;
            --test=yes) want="--test takes no value" ;;
            *) want="$bad needs a value" ;;
        esac
        if [ "$code" != 2 ] || [[ "$message" != *"$want"* ]]; then
            usage_ok=0
            echo "test.sh: ./qemu-run.sh $bad: status $code: $message"
        fi
    done
    if [ "$usage_ok" = 1 ]; then note_pass "bad_usage_exits_2_with_a_message"; else
        note_fail "bad_usage_exits_2_with_a_message" "see above"; fi

    # --- Debugging: the gdb helpers load, and read a live machine ----------------------------
    gdb_bin=$(command -v gdb-multiarch >/dev/null && echo gdb-multiarch || echo gdb)
    loaded=$("$gdb_bin" -nx -batch -x tools/tcefw.gdb -ex 'help tcefw-tces' \
        target/images/tcefw.elf 2>&1)
    if [[ "$loaded" == *"tcefw helpers loaded"* ]] && [[ "$loaded" == *"tcefw-tces PHB PE WINDOW"* ]] &&
        ! grep -qiE 'error|exception|undefined' <<<"$loaded"; then
        note_pass "gdb_loads_tools_tcefw_gdb"
    else
        note_fail "gdb_loads_tools_tcefw_gdb" "$(head -n 3 <<<"$loaded" | tr '\n' ' ')"
    fi
    # The helpers read the per-CPU area by offset: their field list must be the struct's.
    struct_fields=$(sed -n '/^pub struct PerCpu {/,/^}/p' src/arch/ppc64/percpu.rs |
        sed -nE 's/^    (pub )?([a-z0-9_]+): .*/\2/p' | tr '\n' ' ')
    gdb_fields=$(sed -n '/^PERCPU_FIELDS = \[/,/^\]/p' tools/tcefw.gdb | grep -oE '"[a-z0-9_]+"' |
        tr -d '"' | tr '\n' ' ')
    if [ -n "$struct_fields" ] && [ "$struct_fields" = "$gdb_fields" ]; then
        note_pass "gdb_percpu_fields_match_the_struct"
    else
        note_fail "gdb_percpu_fields_match_the_struct" "struct: $struct_fields; tools/tcefw.gdb: $gdb_fields"
    fi
    # Stop at the third hypercall of tce_4k_1level_window0, which has just mapped bus 0x3000
    # (TCE 3 of edu's window 0) onto guest page 0x4000, writable.
    port=$((20000 + $$ % 20000))
    gdb_log=$logs/gdb-live.log
    gdb_out=$logs/gdb-live.gdb.txt
    timeout 90 ./qemu-run.sh --test --gdb-port "$port" --only tce_4k_1level_window0 \
        --log "$gdb_log" >/dev/null 2>"$logs/gdb-live.stderr" &
    qemu_job=$!
    for _ in $(seq 50); do
        grep -q "target remote" "$logs/gdb-live.stderr" 2>/dev/null && break
        sleep 0.2
    done
    command_line=$(grep -m1 "target remote localhost:$port" "$logs/gdb-live.stderr")
    handler=$(llvm-nm target/images/tcefw.elf | awk '/handle_hypercall/ { print "0x" $1; exit }')
    if [ -n "$command_line" ] && [ -n "$handler" ]; then
        eval "timeout 60 $command_line -nx -batch -ex 'break *$handler' \
            -ex continue -ex continue -ex continue \
            -ex tcefw-percpu -ex 'tcefw-tvt 0' -ex 'tcefw-tces 0 1 0 0 8' -ex kill" >"$gdb_out" 2>&1
    fi
    wait "$qemu_job" 2>/dev/null
    pool=$(sed -n 's/.*HV: hypervisor up: .*partition pool \(0x[0-9a-f]*\)\.\..*/\1/p' "$gdb_log" | head -n 1)
    pir=$(sed -n 's/.*CPU: PIR \(0x[0-9a-f]*\) .*/\1/p' "$gdb_log" | head -n 1)
    want_tce=$(printf '%#014x' $((${pool:-0} + 0x4000)))
    if [[ "$command_line" == *"$gdb_bin"*tcefw.elf*tools/tcefw.gdb* ]] && [ -n "$pool" ] &&
        grep -qE "^  pir +$(printf '%#018x' $((${pir:-0})))\$" "$gdb_out" &&
        grep -qE "^  caller_partition +0x0+[0-9a-f]\$" "$gdb_out" &&
        grep -qE "^TVE +2  PE +1 window 0 " "$gdb_out" &&
        grep -qE "^  \[ +3\] bus 0x0000000000003000 -> $want_tce RW\$" "$gdb_out"; then
        note_pass "gdb_helpers_show_percpu_tvt_and_tces"
    else
        note_fail "gdb_helpers_show_percpu_tvt_and_tces" "see $gdb_out"
    fi

    # --- The deliberate fault (a build feature: last, so the runs above share one build) ----
    for mode in bare payload; do
        log="$logs/fault-$mode.log"
        echo "== [$(since_start)] fault-$mode: ./qemu-run.sh --expect-fault --mode $mode"
        if ./qemu-run.sh --expect-fault --mode "$mode" --log "$log" &&
            grep -q "Fatal exception 0x700: Program" "$log" &&
            grep -q "<tcefw::arch::ppc64::cpu::trigger_program_check" "$log"; then
            note_pass "unexpected_program_check_reported_$mode"
        else
            note_fail "unexpected_program_check_reported_$mode" "see $log"
        fi
    done
fi

# --- One JUnit file for the whole run, read back with a standard XML parser --------------------
# First the writers on logs made to be awkward: markup and control characters in reasons, a
# skip for a device the run was given, a host test that failed with its captured output.
hostile=$logs/expected-failures/junit-hostile
mkdir -p "$hostile"
printf '%s\r\n' 'TIER pci: 3 test(s)' 'PASS a_test (0.5 s)' \
    "FAIL b_test (0.25 s): 1 < 2 & \"quoted\" <tag> $(printf '\001\033')[0m" \
    'SKIP c_test (0.000001 s): needs e1000e (8086:10d3): none' \
    'SKIP d_test (0.1 s): needs edu with a DMA mask that covers window 1' \
    '2 passed, 1 failed, 2 skipped' >"$hostile/serial.log"
printf '%s\n' '     Running tests/x.rs (target/x)' '' 'running 3 tests' 'test m::ok ... ok' \
    'test m::bad ... FAILED' 'test m::later ... ignored' '' 'failures:' '' \
    '---- m::bad stdout ----' "thread 'm::bad' panicked at tests/x.rs:1:1:" \
    'assertion failed: a < b && c > "d"' '' '' 'failures:' '    m::bad' '' \
    'test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s' \
    >"$hostile/cargo.log"
results_junit_serial "$hostile/serial.log" hostile "$hostile/serial.junit.xml" "edu" 1 ""
results_junit_cargo "$hostile/cargo.log" "$hostile/cargo.junit.xml"
if command -v python3 >/dev/null &&
    python3 tools/check-junit.py "$hostile/serial.junit.xml" --expect 1 2 1 >"$hostile/check.txt" &&
    python3 tools/check-junit.py "$hostile/cargo.junit.xml" --expect 1 1 1 >>"$hostile/check.txt" &&
    grep -q 'message="1 &lt; 2 &amp; &quot;quoted&quot; &lt;tag&gt; \[0m"' "$hostile/serial.junit.xml"; then
    note_pass "junit_writers_escape_and_count_awkward_logs"
else
    note_fail "junit_writers_escape_and_count_awkward_logs" "$(tr '\n' ' ' <"$hostile/check.txt" 2>/dev/null)"
fi
write_results() {
    results_junit_checks "$checks" boot-checks "$logs/checks.junit.xml"
    results_junit_merge "$logs/results.xml" "tcefw ./test.sh" "${suites[@]}" "$logs/checks.junit.xml"
}
write_results
if command -v python3 >/dev/null; then
    if verdict=$(python3 tools/check-junit.py "$logs/results.xml" --expect "$passed" "$failed" "$skipped"); then
        note_pass "junit_results_parse_and_match_the_tally"
    else
        note_fail "junit_results_parse_and_match_the_tally" "$(tr '\n' ' ' <<<"$verdict")"
    fi
else
    note_fail "junit_results_parse_and_match_the_tally" "no python3 to read $logs/results.xml"
fi
write_results

echo
echo "Results: $logs/results.xml (JUnit), serial logs in $logs/ ($(since_start))"
if [ ${#failures[@]} -gt 0 ]; then
    echo "Failures:"
    printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
