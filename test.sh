#!/usr/bin/env bash
# test.sh: runs every tcefw test on a fresh Debian/Ubuntu machine and prints one combined
# "N passed, N failed" line: the host tests (cargo test on the build machine), then the
# in-image tests under QEMU powernv8 in bare mode and in payload mode (under skiboot), and
# the boot checks that only the serial log can show (one banner with -smp 4, 2 GiB seen as
# 2 GiB, an unexpected exception reported and the run failed).
#
#   ./test.sh            everything
#   ./test.sh --host     host tests only
#   ./test.sh --qemu     QEMU tests only
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

run_host=1
run_qemu=1
case "${1:-}" in
    --host) run_qemu=0 ;;
    --qemu) run_host=0 ;;
    "") ;;
    *) echo "usage: $0 [--host|--qemu]" >&2; exit 2 ;;
esac

passed=0
failed=0
failures=()
logs=target/test-logs
mkdir -p "$logs"

note_pass() { passed=$((passed + 1)); echo "PASS $1"; }
note_fail() { failed=$((failed + 1)); failures+=("$1"); echo "FAIL $1${2:+: $2}"; }

# Set-up: QEMU, llvm (objcopy, nm) and the rustup target, installed if missing.
./qemu-run.sh --setup-only || { echo "test.sh: set-up failed" >&2; exit 2; }
host_target=$(rustc -vV | sed -n 's/^host: //p')

if [ "$run_host" = 1 ]; then
    echo "== host tests (cargo test --target $host_target)"
    cargo test --target "$host_target" 2>&1 | tee "$logs/host.log"
    host_status=${PIPESTATUS[0]}
    host_passed=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($(i+1) ~ /^passed/) s += $i } END { print s + 0 }' "$logs/host.log")
    host_failed=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($(i+1) ~ /^failed/) s += $i } END { print s + 0 }' "$logs/host.log")
    passed=$((passed + host_passed))
    failed=$((failed + host_failed))
    if [ "$host_status" != 0 ] && [ "$host_failed" = 0 ]; then
        note_fail "host tests" "cargo test exited with $host_status (build failure?)"
    fi
    [ "$host_failed" = 0 ] || failures+=("host tests ($host_failed failed)")
fi

# One QEMU boot with the in-image tests: their PASS/FAIL lines count one by one.
qemu_suite() {
    local name=$1; shift
    local log="$logs/$name.log"
    echo "== $name: ./qemu-run.sh --test $*"
    ./qemu-run.sh --test --log "$log" "$@"
    local status=$?
    local summary
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" 2>/dev/null | tail -n 1 | tr -d '\r')
    if [ -n "$summary" ]; then
        local p=${summary%% passed*} f=${summary#*, }
        f=${f%% failed*}
        passed=$((passed + p))
        failed=$((failed + f))
        [ "$f" = 0 ] || failures+=("$name ($f in-image failures)")
    fi
    if [ "$status" != 0 ] && { [ -z "$summary" ] || [ "${f:-0}" = 0 ]; }; then
        note_fail "$name" "qemu-run.sh exited with $status (hang, timeout or unclean end)"
    fi
    return 0
}

if [ "$run_qemu" = 1 ]; then
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

    for mode in bare payload; do
        log="$logs/fault-$mode.log"
        echo "== fault-$mode: ./qemu-run.sh --expect-fault --mode $mode"
        if ./qemu-run.sh --expect-fault --mode "$mode" --log "$log" &&
            grep -q "Fatal exception 0x700: Program" "$log" &&
            grep -q "<tcefw::arch::ppc64::cpu::trigger_program_check" "$log"; then
            note_pass "unexpected_program_check_reported_$mode"
        else
            note_fail "unexpected_program_check_reported_$mode" "see $log"
        fi
    done
fi

echo
if [ ${#failures[@]} -gt 0 ]; then
    echo "Failures:"
    printf '  %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
