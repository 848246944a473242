#!/usr/bin/env bash
# qemu-run.sh: build tcefw and boot it on QEMU powernv8, as the machine's firmware (bare
# mode, -bios) or as skiboot's payload (payload mode, -kernel). Installs what is missing.
#
# Usage: ./qemu-run.sh [OPTION]... [-- QEMU-ARGUMENT...]
#
# Boot:
#   --mode bare|payload   how to boot (default: bare)
#   --smp N               CPUs (threads) to give the machine
#   --mem SIZE            RAM size (QEMU -m syntax, e.g. 2G)
#   --bootargs STRING     boot arguments. Payload mode passes them with -append (skiboot
#                         puts them in /chosen/bootargs); bare mode writes them into the
#                         configuration blob at 0xf00000 (see the README)
#   --qemu PATH           another qemu-system-ppc64 binary
#   --timeout SECONDS     give up after this long (default 60 bare, 150 payload)
#   --log FILE            the serial log (default target/qemu-<mode>.log); --test writes
#                         the JUnit results beside it (FILE minus .log, plus .junit.xml)
#   -- ARGS               extra QEMU arguments, e.g. -- -device edu,bus=pcie.1,addr=0
#
# Tests:
#   --test                run the in-image tests; exit 0 only if the serial shows
#                         "N passed, 0 failed, N skipped" with N passed > 0, no test
#                         skipped for lack of a device the run was given, and a clean end
#   --only PATTERNS       run only these tests: names or globs, comma-separated (e.g.
#                         tce_4k_1level_window1 or 'tce_*'); implies --test
#   --tier TIERS          run only these tiers (boot, entry, pci, tce, kill, bulk: --list
#                         shows each test's); implies --test
#   --list                print the tests the image holds, one "TIER NAME" per line,
#                         honouring --only and --tier, then exit (boots to ask the image)
#   --devices LAYOUT      built-in test devices: default (edu on pcie.0, e1000e on pcie.1),
#                         moved (edu on pcie.2, e1000e on pcie.0) or none. --test uses
#                         default unless you give -device arguments after --: then yours
#                         replace it. A layout named together with a -device on one of its
#                         buses is a one-line error.
#   --expect-fault        build with a deliberate unexpected program check; succeed only
#                         if the fault is reported and the run ends as failed
#   --bench               build with the in-image benchmarks and print their figures
#   --icount              add -icount shift=0 (QEMU 8 or newer: 7.2 crashes powernv with it)
#
# Debugging:
#   --gdb                 start QEMU halted with a gdb stub on localhost:1234 and print the
#                         gdb command that attaches with the helpers of tools/tcefw.gdb
#   --gdb-port PORT       the stub's port instead of 1234 (implies --gdb)
#   --debug               build without optimisation
#
# Set-up:
#   --elf PATH            boot this ELF instead of building (cargo run passes it)
#   --no-install          do not install missing tools
#   --setup-only          install what is missing (QEMU, llvm, the rustup target, and for
#                         test.sh and --gdb also python3 and gdb-multiarch), then exit
#   -h, --help            this text
#
# A test whose device is absent prints "SKIP name (T s): needs DEVICE ..."; the run still
# passes unless it was given that device (by the layout or a -device of yours). QEMU 7.2
# prints "unknown isa device ib700@i0" (it has no device-tree node for the watchdog that
# ends bare-mode runs): harmless, and filtered out.
#
# Exit status: 0 success; 1 failed or unclean run; 2 bad usage, device collision or missing
# tool; 3 timeout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
# shellcheck source=tools/results.sh
. "$here/tools/results.sh"

mode=bare
test_mode=0
list_mode=0
bench_mode=0
icount=0
expect_fault=0
devices=""
bootargs=""
only=""
tiers=""
smp=""
mem=""
gdb=0
gdb_port=1234
qemu=""
timeout_s=""
log=""
elf=""
profile=release
install=1
setup_only=0
extra=()

die() { echo "qemu-run.sh: $*" >&2; exit 2; }
usage_error() {
    echo "qemu-run.sh: $*" >&2
    echo "Try './qemu-run.sh --help'." >&2
    exit 2
}
print_help() { awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; }

# --- Options ----------------------------------------------------------------------------------
value_options=" --mode --bootargs --devices --only --tier --smp --mem --qemu --timeout --log --elf --gdb-port "
argv=("$@")
i=0
while [ "$i" -lt ${#argv[@]} ]; do
    opt=${argv[i]}
    value=""
    i=$((i + 1))
    case "$opt" in
        --) extra=("${argv[@]:i}"); break ;;
        --*=*) value=${opt#*=}; opt=${opt%%=*}; given_inline=1 ;;
        *) given_inline=0 ;;
    esac
    if [[ "$value_options" == *" $opt "* ]]; then
        if [ "$given_inline" = 0 ]; then
            # A missing value, or the next option taken for one (--bootargs takes anything).
            if [ "$i" -ge ${#argv[@]} ] ||
                { [ "$opt" != --bootargs ] && [[ "${argv[i]}" == -* ]]; }; then
                usage_error "$opt needs a value"
            fi
            value=${argv[i]}
            i=$((i + 1))
        fi
        [ -n "$value" ] || [ "$opt" = --bootargs ] || usage_error "$opt needs a value"
    elif [ "$given_inline" = 1 ]; then
        case "$opt" in
            --test | --list | --bench | --icount | --expect-fault | --gdb | --debug | \
                --no-install | --setup-only | --help) usage_error "$opt takes no value" ;;
            *) usage_error "unknown option '$opt'" ;;
        esac
    fi
    case "$opt" in
        --mode) mode=$value ;;
        --bootargs) bootargs=$value ;;
        --devices) devices=$value ;;
        --only) only=${only:+$only,}$value; test_mode=1 ;;
        --tier) tiers=${tiers:+$tiers,}$value; test_mode=1 ;;
        --smp) smp=$value ;;
        --mem) mem=$value ;;
        --qemu) qemu=$value ;;
        --timeout) timeout_s=$value ;;
        --log) log=$value ;;
        --elf) elf=$value ;;
        --test) test_mode=1 ;;
        --list) list_mode=1 ;;
        --bench) bench_mode=1 ;;
        --icount) icount=1 ;;
        --expect-fault) expect_fault=1 ;;
        --gdb) gdb=1 ;;
        --gdb-port) gdb_port=$value; gdb=1 ;;
        --debug) profile=debug ;;
        --no-install) install=0 ;;
        --setup-only) setup_only=1 ;;
        -h | --help) print_help; exit 0 ;;
        *)
            # The cargo runner passes the ELF path as a plain argument after our flags.
            if [ -z "$elf" ] && [[ "$opt" != -* ]] && [ -f "$opt" ]; then
                elf=$opt
            else
                usage_error "unknown option '$opt'"
            fi ;;
    esac
done

case "$mode" in bare | payload) ;; *) usage_error "--mode must be bare or payload, not '$mode'" ;; esac
case "$devices" in "" | default | moved | none) ;;
    *) usage_error "--devices must be default, moved or none, not '$devices'" ;;
esac
[ -z "$smp" ] || [[ "$smp" =~ ^[1-9][0-9]*$ ]] || usage_error "--smp takes a number, not '$smp'"
[[ "$gdb_port" =~ ^[1-9][0-9]*$ ]] || usage_error "--gdb-port takes a port number, not '$gdb_port'"
[ -z "$timeout_s" ] || [[ "$timeout_s" =~ ^[1-9][0-9]*$ ]] ||
    usage_error "--timeout takes seconds, not '$timeout_s'"
[ -z "$only" ] || [[ "$only" =~ ^[A-Za-z0-9_*,]+$ ]] ||
    usage_error "--only takes test names or globs separated by commas, not '$only'"
[ -z "$tiers" ] || [[ "$tiers" =~ ^[a-z0-9_,]+$ ]] ||
    usage_error "--tier takes tier names separated by commas, not '$tiers'"
[[ "$bootargs" =~ ^[[:print:]]*$ ]] || usage_error "--bootargs must be printable ASCII"
[ $(((test_mode | list_mode) + bench_mode + expect_fault)) -le 1 ] ||
    usage_error "--test (or --list), --bench and --expect-fault do not combine"
if [ -z "$timeout_s" ]; then
    if [ "$mode" = payload ]; then timeout_s=150; else timeout_s=60; fi
fi

target=powerpc64le-unknown-linux-gnu

# --- Devices (checked before anything is installed or built) ---------------------------------
# The user's PCI devices (any -device but the generic loader, which only places bytes).
user_devices=()
for ((j = 0; j < ${#extra[@]}; j++)); do
    case "${extra[j]}" in
        -device | --device)
            spec=${extra[j + 1]:-}
            [ "${spec%%,*}" = loader ] || user_devices+=("$spec") ;;
    esac
done
# The value of option KEY in a -device SPEC ("edu,bus=pcie.1,addr=0").
spec_option() {
    local part
    local IFS=,
    for part in $1; do
        if [[ "$part" == "$2="* ]]; then echo "${part#*=}"; return; fi
    done
}
# The built-in layouts: "driver bus" pairs.
layout_devices() {
    case "$1" in
        default) echo "edu pcie.0 e1000e pcie.1" ;;
        moved) echo "edu pcie.2 e1000e pcie.0" ;;
        *) echo "" ;;
    esac
}
if [ -z "$devices" ]; then
    if [ ${#user_devices[@]} -gt 0 ]; then
        devices=none
        if [ "$test_mode" = 1 ] || [ "$bench_mode" = 1 ]; then
            echo "qemu-run.sh: your -device arguments replace the built-in test devices" \
                "(--devices default keeps them)" >&2
        fi
    elif [ "$test_mode" = 1 ] || [ "$bench_mode" = 1 ]; then
        devices=default
    else
        devices=none
    fi
fi
read -r -a layout <<<"$(layout_devices "$devices")"
# powernv8 has three PHB3s per chip, each with one root port: buses pcie.0 to pcie.2.
free_buses=""
for bus in pcie.0 pcie.1 pcie.2; do
    [[ " ${layout[*]:-} " == *" $bus "* ]] || free_buses+="${free_buses:+, }$bus"
done
for spec in "${user_devices[@]}"; do
    bus=$(spec_option "$spec" bus)
    for ((j = 0; j < ${#layout[@]}; j += 2)); do
        if [ -n "$bus" ] && [ "$bus" = "${layout[j + 1]}" ]; then
            die "-device $spec collides with --devices $devices, which puts ${layout[j]} on $bus: use a bus it leaves free (${free_buses:-none}) or --devices none"
        fi
    done
done
# The drivers this run was given: a test that skips for one of them fails the run.
given_drivers=""
described=()
for ((j = 0; j < ${#layout[@]}; j += 2)); do
    given_drivers+=" ${layout[j]}"
    described+=("${layout[j]} on ${layout[j + 1]}")
done
for spec in "${user_devices[@]}"; do
    given_drivers+=" ${spec%%,*}"
    described+=("$spec")
done
devices_text=$(IFS=';'; echo "${described[*]:-none}" | sed 's/;/, /g')

# --- Set-up: install what is missing -------------------------------------------------------
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        die "need root to run: $*"; fi
}
apt_updated=0
apt_install() {
    [ "$install" = 1 ] || die "missing $1 (and --no-install was given)"
    command -v apt-get >/dev/null || die "missing $1 and no apt-get to install it"
    if [ "$apt_updated" = 0 ]; then
        echo "qemu-run.sh: apt-get update" >&2
        as_root apt-get update -qq >&2
        apt_updated=1
    fi
    echo "qemu-run.sh: installing $*" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}
# gdb-multiarch, or a gdb that knows powerpc (Debian's plain gdb does not).
find_gdb() {
    if command -v gdb-multiarch >/dev/null; then
        echo gdb-multiarch
    elif command -v gdb >/dev/null &&
        ! gdb -nx -batch -ex 'set architecture powerpc:common64' 2>&1 | grep -q Undefined; then
        echo gdb
    fi
}

if [ -z "$qemu" ]; then
    command -v qemu-system-ppc64 >/dev/null || apt_install qemu-system-ppc
    qemu=qemu-system-ppc64
fi
command -v "$qemu" >/dev/null || die "QEMU binary '$qemu' not found"
if ! command -v llvm-objcopy >/dev/null || ! command -v llvm-nm >/dev/null; then
    apt_install llvm
fi
command -v cargo >/dev/null || die "cargo not found: install Rust with rustup first"
if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
    [ "$install" = 1 ] || die "missing rustup target $target"
    echo "qemu-run.sh: rustup target add $target" >&2
    rustup target add "$target" >&2
fi
if [ "$setup_only" = 1 ] || [ "$gdb" = 1 ]; then
    [ -n "$(find_gdb)" ] || apt_install gdb-multiarch
fi
if [ "$setup_only" = 1 ]; then
    command -v python3 >/dev/null || apt_install python3
    exit 0
fi

# --- Build ------------------------------------------------------------------------------------
# The boot arguments (bare mode: the configuration blob) ask for the in-image tests; the
# `selftest` feature builds in the hooks some of them read (and nothing runs without the
# boot arguments). The fault demonstration and the benchmarks are build features.
features=()
[ "$test_mode" = 0 ] && [ "$list_mode" = 0 ] || features+=(selftest)
[ "$expect_fault" = 0 ] || features+=(fault-demo)
[ "$bench_mode" = 0 ] || features+=(bench)
if [ -z "$elf" ]; then
    build=(cargo build --target "$target")
    [ "$profile" = debug ] || build+=(--release)
    [ ${#features[@]} = 0 ] || build+=(--features "${features[*]}")
    "${build[@]}" >&2
    elf=${CARGO_TARGET_DIR:-target}/$target/$profile/tcefw
fi
[ -f "$elf" ] || die "no ELF at $elf"

images=${CARGO_TARGET_DIR:-target}/images
mkdir -p "$images"
images=$(cd "$images" && pwd)

# Write the symbol table into the linked image (the .symtab_blob section the image reserves)
# so that fault reports can name functions: "<hex address> <name>" lines, sorted.
blob_hex=$(llvm-readelf -S --wide "$elf" | awk '{ for (i = 1; i < NF; i++) if ($i == ".symtab_blob") { print $(i + 4); exit } }')
[ -n "$blob_hex" ] || die "$elf has no .symtab_blob section"
blob_size=$((16#$blob_hex))
llvm-nm -n --defined-only -C "$elf" |
    awk -v max="$((blob_size - 1))" '
        $2 ~ /^[tTwW]$/ {
            name = $3; for (i = 4; i <= NF; i++) name = name " " $i
            address = $1; sub(/^0+/, "", address); if (address == "") address = "0"
            sub(/::h[0-9a-f]+$/, "", name)
            line = address " " substr(name, 1, 100)
            if (total + length(line) + 1 > max) { truncated = 1; exit }
            total += length(line) + 1; print line
        }
        END { if (truncated) print "qemu-run.sh: symbol table truncated" > "/dev/stderr" }' \
    > "$images/symbols.txt"
head -c "$blob_size" /dev/zero > "$images/symbols.bin"
dd if="$images/symbols.txt" of="$images/symbols.bin" conv=notrunc status=none
llvm-objcopy --update-section .symtab_blob="$images/symbols.bin" "$elf" "$images/tcefw.elf"
llvm-objcopy -O binary "$images/tcefw.elf" "$images/tcefw.bin"

# --- Boot arguments -------------------------------------------------------------------------
words=()
[ -z "$bootargs" ] || words+=("$bootargs")
if [ "$test_mode" = 1 ]; then words+=("tcefw.test${only:+=$only}"); fi
if [ -n "$tiers" ]; then words+=("tcefw.tier=$tiers"); fi
if [ "$list_mode" = 1 ]; then words+=(tcefw.list); fi
boot_text="${words[*]:-}"

# --- QEMU arguments ---------------------------------------------------------------------------
cleanup_files=()
cleanup() { [ ${#cleanup_files[@]} = 0 ] || rm -f "${cleanup_files[@]}"; }
trap cleanup EXIT

args=(-M powernv8 -nographic)
if [ "$mode" = bare ]; then
    args+=(-bios "$images/tcefw.bin" -device ib700 -action watchdog=poweroff)
    if [ -n "$boot_text" ]; then
        # The configuration blob (src/platform/config_blob.rs): magic, version 1, length,
        # text, all big-endian, placed at 0xf00000 by QEMU's generic loader.
        length=${#boot_text}
        [ "$length" -le 65520 ] || die "boot arguments longer than the blob's 65520 bytes"
        config=$(mktemp "$images/bootargs.XXXXXX")
        cleanup_files+=("$config")
        {
            printf 'TCEFWCFG\x00\x00\x00\x01'
            printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((length >> 24 & 255)) \
                $((length >> 16 & 255)) $((length >> 8 & 255)) $((length & 255)))"
            printf '%s' "$boot_text"
        } >"$config"
        args+=(-device "loader,file=${config//,/,,},addr=0xf00000,force-raw=on")
    fi
else
    args+=(-kernel "$images/tcefw.elf")
    [ -z "$boot_text" ] || args+=(-append "$boot_text")
fi
# edu needs a 64-bit DMA mask to reach DMA window 1 (bus address bit 59).
edu="edu,addr=0,dma_mask=0xffffffffffffffff"
for ((j = 0; j < ${#layout[@]}; j += 2)); do
    case "${layout[j]}" in
        edu) args+=(-device "$edu,bus=${layout[j + 1]}") ;;
        *) args+=(-device "${layout[j]},bus=${layout[j + 1]},addr=0") ;;
    esac
done
qemu_version=$("$qemu" --version | sed -n '1s/.*version \([0-9][0-9.]*\).*/\1/p')
if [ "$icount" = 1 ]; then
    if [ "${qemu_version%%.*}" -ge 8 ] 2>/dev/null; then
        args+=(-icount shift=0)
    else
        die "--icount needs QEMU 8 or newer (this is $qemu_version, whose powernv crashes with -icount)"
    fi
fi
if [ "$bench_mode" = 1 ]; then
    echo "qemu-run.sh: QEMU $qemu_version; -icount: $([ "$icount" = 1 ] && echo on || echo off);" \
        "guest instruction counts come from PMC5, exact under TCG either way" >&2
fi
[ -z "$smp" ] || args+=(-smp "$smp")
[ -z "$mem" ] || args+=(-m "$mem")
[ "$gdb" = 0 ] || args+=(-gdb "tcp:localhost:$gdb_port" -S)
args+=("${extra[@]}")

[ -n "$log" ] || log=${CARGO_TARGET_DIR:-target}/qemu-$mode.log
mkdir -p "$(dirname "$log")"
junit=${log%.log}.junit.xml

# QEMU's stderr, minus the harmless QEMU 7.2 watchdog warning, to our stderr and to $1.
filter_qemu_stderr() {
    local line
    while IFS= read -r line; do
        case "$line" in
            *"unknown isa device ib700@i0"*) ;;
            *) printf '%s\n' "$line" >&2; printf '%s\n' "$line" >>"$1" ;;
        esac
    done
}

# Runs QEMU with the serial output in $log (and on the terminal unless $1 is "quiet").
# Sets qemu_status, elapsed (seconds, 3 decimals) and qemu_error (QEMU's first complaint).
run_qemu() {
    local stderr_copy start_ns elapsed_ms limit=()
    stderr_copy=$(mktemp)
    cleanup_files+=("$stderr_copy")
    [ "$gdb" = 1 ] || limit=(timeout --foreground -k 5 "$timeout_s")
    start_ns=$(date +%s%N)
    set +e
    {
        "${limit[@]}" "$qemu" "${args[@]}" </dev/null 2>&1 1>&3 3>&- |
            filter_qemu_stderr "$stderr_copy" 3>&-
        exit "${PIPESTATUS[0]}"
    } 3>&1 | if [ "${1:-}" = quiet ]; then cat >"$log"; else tee "$log"; fi
    qemu_status=${PIPESTATUS[0]}
    set -e
    elapsed_ms=$((($(date +%s%N) - start_ns) / 1000000))
    elapsed=$((elapsed_ms / 1000)).$(printf '%03d' $((elapsed_ms % 1000)))
    qemu_error=$(grep -m1 . "$stderr_copy" || true)
    echo "qemu-run.sh: QEMU exited with status $qemu_status after ${elapsed}s" >&2
}

what="$mode mode, devices: $devices_text"
if [ "$test_mode" = 1 ]; then
    selection="${only:+--only $only}${only:+${tiers:+ }}${tiers:+--tier $tiers}"
    what+=", tests: ${selection:-all}"
fi

if [ "$gdb" = 1 ]; then
    gdb_bin=$(find_gdb)
    echo "qemu-run.sh: QEMU starts halted ($what) with a gdb stub on localhost:$gdb_port." >&2
    echo "qemu-run.sh: attach from another terminal with (the ELF keeps its symbol table):" >&2
    echo "  $gdb_bin -q $images/tcefw.elf -x $here/tools/tcefw.gdb -ex 'target remote localhost:$gdb_port'" >&2
    echo "qemu-run.sh: then e.g. 'break tcefw_boot', 'continue', 'tcefw-percpu', 'tcefw-tvt 0' (tcefw-help lists the helpers)" >&2
    echo "qemu-run.sh: $qemu ${args[*]}" >&2
    run_qemu
    exit 0
fi

if [ "$list_mode" = 1 ]; then
    echo "qemu-run.sh: listing the tests of $images/tcefw.elf ($mode mode)" >&2
    run_qemu quiet
    if grep -q '^FAIL selection: ' "$log"; then
        echo "qemu-run.sh: $(grep -m1 '^FAIL selection: ' "$log" | tr -d '\r' | sed 's/^FAIL selection: //')" >&2
        exit 1
    fi
    if ! grep -qE '^[0-9]+ test\(s\) listed' "$log"; then
        echo "qemu-run.sh: the image did not list its tests (see $log)${qemu_error:+: $qemu_error}" >&2
        exit 1
    fi
    grep '^TEST ' "$log" | tr -d '\r' | cut -d' ' -f2-
    exit 0
fi

echo "qemu-run.sh: booting $what; timeout ${timeout_s}s" >&2
echo "qemu-run.sh: $qemu ${args[*]}" >&2
run_qemu

# Why the run as a whole failed, apart from its tests (empty: it did not).
run_error=""
if [ "$qemu_status" = 124 ] || [ "$qemu_status" = 137 ]; then
    run_error="timeout: the run did not end within ${timeout_s}s"
elif [ "$qemu_status" != 0 ]; then
    run_error="QEMU failed with status $qemu_status${qemu_error:+: $qemu_error}"
fi
if [ -n "$run_error" ] && [ "$test_mode" = 0 ]; then
    echo "qemu-run.sh: $run_error" >&2
    if [ "$qemu_status" = 124 ] || [ "$qemu_status" = 137 ]; then exit 3; fi
    exit 1
fi

# QEMU exits 0 whichever way the run ended: the verdict comes from the serial output.
ended_pass=$(grep -c "tcefw: run ended: PASS" "$log" || true)
ended_fail=$(grep -c "tcefw: run ended: FAIL" "$log" || true)
if [ "$expect_fault" = 1 ]; then
    if grep -q "Fatal exception" "$log" && [ "$ended_fail" -ge 1 ]; then
        echo "qemu-run.sh: fault reported and run ended as failed, as expected" >&2
        exit 0
    fi
    echo "qemu-run.sh: expected a fault report and a failed run" >&2
    exit 1
fi
if [ "$test_mode" = 0 ]; then
    if [ "$ended_pass" -ge 1 ]; then exit 0; fi
    echo "qemu-run.sh: the run did not end cleanly" >&2
    exit 1
fi

# --- Verdict of a test run --------------------------------------------------------------------
count_lines() { grep -cE "$1" "$log" || true; }
passed=$(count_lines '^PASS [^ ]+ \([0-9.]+ s\)')
failed=$(count_lines '^(FAIL [^ ]+ \([0-9.]+ s\)|FAIL selection: )')
skipped=$(count_lines '^SKIP [^ ]+ \([0-9.]+ s\)')
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1 | tr -d '\r' || true)
if [ -z "$run_error" ]; then
    if [ -z "$summary" ] && grep -q "BOOT: boot complete" "$log"; then
        run_error="the image booted without running tests: its boot arguments had no 'tcefw.test' (bare mode: the configuration blob at 0xf00000)"
    elif [ -z "$summary" ]; then
        run_error="no 'N passed, N failed, N skipped' verdict line: the run ended early"
    elif [ "$summary" != "$passed passed, $failed failed, $skipped skipped" ]; then
        run_error="the verdict says '$summary' but the log has $passed PASS, $failed FAIL and $skipped SKIP lines"
    elif [ "$failed" = 0 ] && [ "$ended_pass" = 0 ]; then
        run_error="the run did not end cleanly (no 'tcefw: run ended: PASS')"
    fi
fi
# Skips for a device this run was given: the run fails, one line each.
unexpected=0
lacking=()
while IFS= read -r line; do
    name=${line#SKIP }
    name=${name%% *}
    reason=${line#*s): }
    device=${reason#needs }
    device=${device%%[ (:,]*}
    if [[ "$reason" == "needs "* ]] && [[ " $given_drivers " == *" $device "* ]]; then
        unexpected=$((unexpected + 1))
        echo "qemu-run.sh: FAIL $name skipped, but this run has the device it needs ($device): $reason" >&2
    else
        lacking+=("${device:-?}")
    fi
done < <(grep -E '^SKIP [^ ]+ \([0-9.]+ s\): ' "$log" | tr -d '\r' || true)
failed=$((failed + unexpected))
skipped=$((skipped - unexpected))
if [ -z "$run_error" ] && [ "$failed" = 0 ] && [ "$passed" = 0 ]; then
    run_error="no test passed ($skipped skipped): the run showed nothing"
fi
suite=$(basename "${log%.log}")
results_junit_serial "$log" "$suite" "$junit" "$given_drivers" "$elapsed" "$run_error"
[ -z "$run_error" ] || failed=$((failed + 1))
if [ ${#lacking[@]} -gt 0 ]; then
    reasons=$(printf '%s\n' "${lacking[@]}" | sort | uniq -c |
        awk '{ printf "%s%s: %d", (NR > 1 ? ", " : ""), $2, $1 }')
    echo "qemu-run.sh: ${#lacking[@]} test(s) skipped for lack of a device (needs $reasons); the SKIP lines say how to add one" >&2
fi
[ -z "$run_error" ] || echo "qemu-run.sh: $run_error" >&2
echo "qemu-run.sh: results: $passed passed, $failed failed, $skipped skipped in ${elapsed}s (serial log $log, JUnit $junit)" >&2
if [ "$qemu_status" = 124 ] || [ "$qemu_status" = 137 ]; then exit 3; fi
if [ "$failed" = 0 ] && [ "$passed" -gt 0 ]; then exit 0; fi
exit 1
