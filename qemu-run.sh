#!/usr/bin/env bash
# qemu-run.sh: build tcefw and boot it on QEMU powernv8, as the firmware (bare mode, -bios)
# or as skiboot's payload (payload mode, -kernel). Installs what is missing first.
#
#   ./qemu-run.sh [options] [-- extra QEMU arguments]
#
#   --mode bare|payload   how to boot (default: bare)
#   --test                boot with the in-image tests; exit 0 only if the serial shows
#                         "N passed, 0 failed" with N > 0 and the run ended cleanly
#   --bench               build with the in-image benchmarks and print their figures
#   --icount              add -icount shift=0 (QEMU 8 or newer: 7.2 crashes powernv with it)
#   --bootargs STRING     boot arguments (payload mode only: QEMU passes -append to
#                         skiboot, never to -bios firmware)
#   --expect-fault        build with a deliberate unexpected program check; the run must
#                         end with a fatal exception report and a failed verdict
#   --devices LAYOUT      test devices: "default" (edu on pcie.0, e1000e on pcie.1),
#                         "moved" (edu on pcie.2, e1000e on pcie.0) or "none"; --test
#                         uses "default" unless told otherwise
#   --smp N               CPUs (threads) to give the machine
#   --mem SIZE            RAM size (QEMU -m syntax, e.g. 2G)
#   --gdb                 start QEMU halted with a gdb stub on :1234 (-s -S)
#   --qemu PATH           another qemu-system-ppc64 binary
#   --timeout SECONDS     give up after this long (default 60 bare, 150 payload)
#   --log FILE            keep the serial output here (default: target/qemu-<mode>.log)
#   --elf PATH            boot this ELF instead of building (cargo run passes it)
#   --debug               build without optimisation
#   --no-install          do not try to install missing tools
#   --setup-only          install what is missing, then exit
#
# Exit status: 0 on success; with --test, non-zero on any failure, hang or timeout.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

mode=bare
test_mode=0
bench_mode=0
icount=0
expect_fault=0
devices=""
bootargs=""
smp=""
mem=""
gdb=0
qemu=""
timeout_s=""
log=""
elf=""
profile=release
install=1
setup_only=0
extra=()

die() { echo "qemu-run.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --mode) mode=${2:-}; shift 2 ;;
        --mode=*) mode=${1#*=}; shift ;;
        --test) test_mode=1; shift ;;
        --bench) bench_mode=1; shift ;;
        --icount) icount=1; shift ;;
        --bootargs) bootargs=${2:-}; shift 2 ;;
        --expect-fault) expect_fault=1; shift ;;
        --devices) devices=${2:-}; shift 2 ;;
        --smp) smp=${2:-}; shift 2 ;;
        --mem) mem=${2:-}; shift 2 ;;
        --gdb) gdb=1; shift ;;
        --qemu) qemu=${2:-}; shift 2 ;;
        --timeout) timeout_s=${2:-}; shift 2 ;;
        --log) log=${2:-}; shift 2 ;;
        --elf) elf=${2:-}; shift 2 ;;
        --debug) profile=debug; shift ;;
        --no-install) install=0; shift ;;
        --setup-only) setup_only=1; shift ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,33p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *)
            # cargo run passes the ELF path as a plain argument after our runner flags.
            if [ -z "$elf" ] && [ -f "$1" ]; then elf=$1; shift; else die "unknown option '$1' (see --help)"; fi ;;
    esac
done

case "$mode" in bare|payload) ;; *) die "--mode must be bare or payload, not '$mode'" ;; esac
[ -z "$smp" ] || [[ "$smp" =~ ^[0-9]+$ ]] || die "--smp takes a number"
[ -z "$timeout_s" ] || [[ "$timeout_s" =~ ^[0-9]+$ ]] || die "--timeout takes seconds"
if [ -z "$timeout_s" ]; then
    if [ "$mode" = payload ]; then timeout_s=150; else timeout_s=60; fi
fi

target=powerpc64le-unknown-linux-gnu

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

[ "$setup_only" = 0 ] || exit 0

# --- Build ------------------------------------------------------------------------------------
# The in-image tests and the fault demonstration are build features: QEMU cannot hand boot
# arguments to -bios firmware, so bare mode cannot be told at run time.
features=()
[ "$test_mode" = 0 ] || features+=(selftest)
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

# --- Boot -------------------------------------------------------------------------------------
args=(-M powernv8 -nographic)
if [ "$mode" = bare ]; then
    args+=(-bios "$images/tcefw.bin" -device ib700 -action watchdog=poweroff)
else
    args+=(-kernel "$images/tcefw.elf")
fi
if [ -n "$bootargs" ]; then
    [ "$mode" = payload ] || die "--bootargs needs --mode payload (QEMU gives -append only to -kernel)"
    args+=(-append "$bootargs")
fi
# edu needs a 64-bit DMA mask to reach DMA window 1 (bus address bit 59).
edu="edu,addr=0,dma_mask=0xffffffffffffffff"
if [ -z "$devices" ]; then
    if [ "$test_mode" = 1 ] || [ "$bench_mode" = 1 ]; then devices=default; else devices=none; fi
fi
case "$devices" in
    default) args+=(-device "$edu,bus=pcie.0" -device e1000e,bus=pcie.1,addr=0) ;;
    moved) args+=(-device "$edu,bus=pcie.2" -device e1000e,bus=pcie.0,addr=0) ;;
    none) ;;
    *) die "--devices must be default, moved or none" ;;
esac
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
[ "$gdb" = 0 ] || args+=(-s -S)
args+=("${extra[@]}")

if [ "$gdb" = 1 ]; then
    echo "qemu-run.sh: QEMU waits for gdb on :1234, e.g.:" >&2
    echo "  gdb-multiarch $images/tcefw.elf -ex 'set arch powerpc:common64' -ex 'set endian little' -ex 'target remote :1234'" >&2
    exec "$qemu" "${args[@]}"
fi

[ -n "$log" ] || log=target/qemu-$mode.log
mkdir -p "$(dirname "$log")"
echo "qemu-run.sh: $qemu ${args[*]}" >&2
start_ns=$(date +%s%N)
set +e
timeout --foreground -k 5 "$timeout_s" "$qemu" "${args[@]}" </dev/null 2>&1 | tee "$log"
qemu_status=${PIPESTATUS[0]}
set -e
elapsed_ms=$((($(date +%s%N) - start_ns) / 1000000))
elapsed=$((elapsed_ms / 1000)).$(printf '%03d' $((elapsed_ms % 1000)))
echo "qemu-run.sh: QEMU exited with status $qemu_status after ${elapsed}s" >&2

if [ "$qemu_status" = 124 ] || [ "$qemu_status" = 137 ]; then
    echo "qemu-run.sh: TIMEOUT after ${timeout_s}s (the run never ended)" >&2
    exit 3
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
if [ "$test_mode" = 1 ]; then
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1 | tr -d '\r')
    if [ -z "$summary" ]; then
        echo "qemu-run.sh: no 'N passed, N failed' line in the serial output" >&2
        exit 1
    fi
    passed=${summary%% passed*}
    failed=${summary#*, }; failed=${failed%% failed*}
    echo "qemu-run.sh: in-image tests: $summary (${elapsed}s from QEMU start)" >&2
    if [ "$failed" = 0 ] && [ "$passed" -gt 0 ] && [ "$ended_pass" -ge 1 ]; then
        exit 0
    fi
    exit 1
fi
if [ "$ended_pass" -ge 1 ]; then exit 0; fi
echo "qemu-run.sh: the run did not end cleanly" >&2
exit 1
