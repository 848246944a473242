#!/usr/bin/env bash
# tools/guest-images.sh: fetches the Linux guest images from Debian's package archive and
# builds the initramfs, all cached under target/guest/. Nothing is installed on the host and
# the host's apt state and architecture list stay untouched: apt runs with a private
# configuration (its own sources list, lists, cache and an empty dpkg status) that knows
# only the ppc64el architecture.
#
#   tools/guest-images.sh [--refresh] [--print]
#
#   --refresh   fetch and build again even if the cache is complete
#   --print     print "KERNEL=... INITRD=... VERSION=..." (shell-sourceable) and nothing else
#               on stdout (progress goes to stderr)
#
# Environment:
#   TCEFW_DEBIAN_MIRROR   archive to use (default http://deb.debian.org/debian)
#   TCEFW_DEBIAN_SUITE    suite (default bookworm)
#   TCEFW_GUEST_KERNEL    kernel package to use, e.g. linux-image-6.1.0-28-powerpc64le
#                         (default: the newest linux-image-6.1.0-N-powerpc64le on offer)
#
# Results (target/guest/):
#   vmlinux      the kernel ELF from /boot/vmlinux-* of the package, unmodified
#   initrd.gz    gzip'd newc cpio: busybox (static) and /init, which mounts proc, sys and
#                devtmpfs, prints the sentinel line and /proc/cpuinfo, and powers off
#   versions     the package names and versions used, and sha256 of both images
#
# The sentinel printed by /init is "TCEFW-GUEST-INIT: hello from /init" (qemu-run.sh
# --guest linux waits for it).
#
# Sources: Debian's apt(8) and apt.conf(5) (Dir::*, APT::Architecture(s)); the kernel's
# Documentation/filesystems/ramfs-rootfs-initramfs.rst (newc cpio, /init, initial console).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

refresh=0
print=0
while [ $# -gt 0 ]; do
    case "$1" in
        --refresh) refresh=1 ;;
        --print) print=1 ;;
        -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "guest-images.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { echo "guest-images.sh: $*" >&2; }
die() { say "$*"; exit 2; }

mirror=${TCEFW_DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=${TCEFW_DEBIAN_SUITE:-bookworm}
out=${CARGO_TARGET_DIR:-target}/guest
sentinel="TCEFW-GUEST-INIT: hello from /init"

report() {
    if [ "$print" = 1 ]; then
        printf 'KERNEL=%q INITRD=%q VERSION=%q\n' "$out/vmlinux" "$out/initrd.gz" \
            "$(sed -n 's/^kernel-package //p' "$out/versions")"
    fi
}

if [ "$refresh" = 0 ] && [ -s "$out/vmlinux" ] && [ -s "$out/initrd.gz" ] && [ -s "$out/versions" ]; then
    report
    exit 0
fi

# --- Host tools (apt, dpkg-deb, cpio, gzip, a keyring for the Debian archive) --------------
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        die "need root to install: $*"; fi
}
need=()
command -v cpio >/dev/null || need+=(cpio)
command -v gzip >/dev/null || need+=(gzip)
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$keyring" ] || need+=(debian-archive-keyring)
command -v apt-get >/dev/null || die "apt-get is needed to fetch Debian's packages"
command -v dpkg-deb >/dev/null || die "dpkg-deb is needed to unpack Debian's packages"
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    as_root apt-get update -qq >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi

# --- A private apt for ppc64el --------------------------------------------------------------
apt_root=$(realpath -m "$out/apt")
mkdir -p "$apt_root"/{lists/partial,cache/archives/partial,parts,prefs,debs}
: > "$apt_root/status"
echo "deb [arch=ppc64el signed-by=$keyring] $mirror $suite main" > "$apt_root/sources.list"
apt_opts=(
    -o "Dir::Etc::SourceList=$apt_root/sources.list"
    -o "Dir::Etc::SourceParts=$apt_root/parts"
    -o "Dir::Etc::Preferences=$apt_root/preferences"
    -o "Dir::Etc::PreferencesParts=$apt_root/prefs"
    -o "Dir::State::Lists=$apt_root/lists"
    -o "Dir::State::status=$apt_root/status"
    -o "Dir::Cache=$apt_root/cache"
    -o "Debug::NoLocking=1"
    -o "APT::Architecture=ppc64el"
    -o "APT::Architectures::=ppc64el"
    -o "Acquire::Languages=none"
    -o "APT::Sandbox::User=root"
)
say "apt-get update ($mirror $suite, ppc64el, private state in $apt_root)"
apt-get "${apt_opts[@]}" update -qq >&2 || die "apt-get update failed for $mirror $suite"

kernel_pkg=${TCEFW_GUEST_KERNEL:-}
if [ -z "$kernel_pkg" ]; then
    # The ABI number N in linux-image-6.1.0-N-powerpc64le grows with every kernel update.
    kernel_pkg=$(apt-cache "${apt_opts[@]}" pkgnames linux-image-6.1.0- 2>/dev/null |
        grep -E '^linux-image-6\.1\.0-[0-9]+-powerpc64le$' | sort -t- -k5,5n | tail -n 1)
    [ -n "$kernel_pkg" ] || die "no linux-image-6.1.0-*-powerpc64le in $mirror $suite"
fi
say "kernel package: $kernel_pkg"

debs="$apt_root/debs"
rm -f "$debs"/*.deb
(cd "$debs" && apt-get "${apt_opts[@]}" download "$kernel_pkg:ppc64el" busybox-static:ppc64el >&2) ||
    die "apt-get download of $kernel_pkg and busybox-static failed"
kernel_deb=$(ls "$debs"/"${kernel_pkg}"_*_ppc64el.deb 2>/dev/null | head -n 1)
busybox_deb=$(ls "$debs"/busybox-static_*_ppc64el.deb 2>/dev/null | head -n 1)
[ -n "$kernel_deb" ] && [ -n "$busybox_deb" ] || die "downloaded packages not found in $debs"

# --- Unpack ------------------------------------------------------------------------------------
unpack=$(realpath -m "$out/unpack")
rm -rf "$unpack"
mkdir -p "$unpack/kernel" "$unpack/busybox"
dpkg-deb -x "$kernel_deb" "$unpack/kernel"
dpkg-deb -x "$busybox_deb" "$unpack/busybox"
vmlinux=$(ls "$unpack"/kernel/boot/vmlinux-* 2>/dev/null | head -n 1)
[ -n "$vmlinux" ] || die "$kernel_deb has no /boot/vmlinux-*"
[ -x "$unpack/busybox/bin/busybox" ] || die "$busybox_deb has no /bin/busybox"
# A little-endian 64-bit ELF: "\x7fELF", class 2 (64-bit), data 1 (little-endian).
[ "$(head -c 6 "$vmlinux" | od -An -tx1 | tr -d ' \n')" = 7f454c460201 ] ||
    die "$vmlinux is not a 64-bit little-endian ELF"

# --- initramfs ---------------------------------------------------------------------------------
root="$unpack/initramfs"
mkdir -p "$root"/{bin,dev,proc,sys}
cp "$unpack/busybox/bin/busybox" "$root/bin/busybox"
# The kernel opens /dev/console before running /init; the cpio carries no device nodes (that
# would need root), so init mounts devtmpfs and takes the console itself.
cat > "$root/init" <<EOF
#!/bin/busybox sh
/bin/busybox mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
echo "$sentinel"
/bin/busybox cat /proc/cpuinfo
echo "TCEFW-GUEST-INIT: powering off"
/bin/busybox poweroff -f
EOF
chmod 755 "$root/init"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) |
    gzip -9 -n > "$out/initrd.gz.new"
cp "$vmlinux" "$out/vmlinux.new"
mv "$out/vmlinux.new" "$out/vmlinux"
mv "$out/initrd.gz.new" "$out/initrd.gz"

{
    echo "kernel-package $kernel_pkg $(dpkg-deb -f "$kernel_deb" Version)"
    echo "busybox-package busybox-static $(dpkg-deb -f "$busybox_deb" Version)"
    echo "archive $mirror $suite"
    (cd "$out" && sha256sum vmlinux initrd.gz)
} > "$out/versions"
rm -rf "$unpack"
say "cached in $out: $(sed -n 's/^kernel-package //p' "$out/versions")"
report
