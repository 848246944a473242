# tools/tcefw.gdb: gdb helpers for tcefw on QEMU powernv8. qemu-run.sh --gdb prints the
# command line that loads this file; by hand:
#
#   gdb-multiarch -q target/images/tcefw.elf -x tools/tcefw.gdb -ex 'target remote :1234'
#
# The image carries an ELF symbol table but no DWARF, so these helpers read memory at the
# offsets the firmware's types fix (noted beside each) rather than through types. Stop the
# CPU in Rust code first (for example `break tcefw_boot`, then `continue`): QEMU enters at
# 0x10 in big-endian mode, where gdb shows every register byte-swapped.
#
#   tcefw-percpu [CPU]            the per-CPU area of CPU index CPU, or the one HSPRG0 names
#   tcefw-tvt PHB                 the valid TVEs of PHB number PHB (0 = first in the boot log)
#   tcefw-tces PHB PE WIN [FIRST [COUNT]]
#                                 the TCEs of PE's window WIN (0 or 1), COUNT entries from
#                                 index FIRST (default 0 and 16); only mapped ones print
#   tcefw-help                    this list
#
# tcefw-tvt and tcefw-tces call tcefw_gdb_snapshot_tvt in the image (src/selftest/gdb.rs):
# the TVT sits behind PHB registers, and QEMU's gdb stub cannot write MMIO.

set pagination off
set confirm off
set print pretty on

python
import gdb

# src/arch/ppc64/percpu.rs `PerCpu`, field by field (repr(C): 8 bytes each, in this order;
# the first ten are fixed by boot/defs.S PC_*). test.sh checks this list against the struct.
# The struct is aligned to 128 bytes, so the stride is its size rounded up to 128.
PERCPU_FIELDS = [
    "scratch_r11", "scratch_r12", "scratch_ctr", "handler", "exception_stack_top",
    "exception_nested_top", "toc", "scratch_r10", "scratch_cr", "exception_depth", "pir",
    "expected_vector", "caught_vector", "caught_address", "caught_depth", "caught_frame",
    "fault_in_next_hypercall", "last_hypercall_frame", "work_fn", "work_arg", "work_done",
    "caller_partition",
]
PERCPU_STRIDE = (len(PERCPU_FIELDS) * 8 + 127) // 128 * 128
NO_PARTITION = (1 << 64) - 1
# src/iommu/tve.rs: 512 TVEs (PE * 2 + window); IBM bit fields of the TVE.
TVT_ENTRIES = 512
WINDOW1_BUS = 1 << 59


def ibm_field(value, first, last):
    """Bits first..last of a 64-bit word in IBM numbering (bit 0 = most significant)."""
    width = last - first + 1
    return (value >> (63 - last)) & ((1 << width) - 1)


def decode_tve(value):
    """(table address, levels, bytes per level, page shift), or None if not translating."""
    tps = ibm_field(value, 59, 63)
    tts = ibm_field(value, 51, 55)
    lev = ibm_field(value, 48, 50)
    if tps == 0 or tts == 0 or lev > 4 or value == (1 << 64) - 1:
        return None
    return (ibm_field(value, 0, 47) << 12, lev + 1, 1 << (tts + 11), tps + 11)


def read_u64(address, big_endian=False):
    data = bytes(gdb.selected_inferior().read_memory(address, 8))
    return int.from_bytes(data, "big" if big_endian else "little")


def symbol_address(fragment):
    """Address of the ELF symbol whose (demangled) name contains fragment."""
    text = gdb.execute("info variables " + fragment, to_string=True)
    text += gdb.execute("info functions " + fragment, to_string=True)
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith("0x") and fragment in parts[1]:
            return int(parts[0], 16)
    raise gdb.GdbError("no symbol matching '%s' in the ELF" % fragment)


def snapshot_tvt(phb):
    """The TVT of PHB number phb, read by the image itself."""
    call = "((unsigned long (*)(unsigned long)) tcefw_gdb_snapshot_tvt)(%d)" % phb
    address = int(gdb.parse_and_eval(call)) & ((1 << 64) - 1)
    if address == 0:
        raise gdb.GdbError("no PHB %d (the boot log lists them in order)" % phb)
    data = bytes(gdb.selected_inferior().read_memory(address, TVT_ENTRIES * 8))
    return [int.from_bytes(data[i * 8:i * 8 + 8], "little") for i in range(TVT_ENTRIES)]


def parse_args(arg, names, defaults=()):
    words = gdb.string_to_argv(arg)
    needed = len(names) - len(defaults)
    if not needed <= len(words) <= len(names):
        raise gdb.GdbError("usage: " + " ".join(names))
    values = [int(gdb.parse_and_eval(w)) for w in words]
    return values + list(defaults[len(values) - needed:])


class TcefwPercpu(gdb.Command):
    """tcefw-percpu [CPU]: dump a per-CPU area (default: the one HSPRG0 points at)."""

    def __init__(self):
        super().__init__("tcefw-percpu", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        if arg.strip():
            (cpu,) = parse_args(arg, ["CPU"])
            base = symbol_address("percpu::AREAS") + cpu * PERCPU_STRIDE
            which = "CPU %d" % cpu
        else:
            base = int(gdb.parse_and_eval("$hsprg0")) & ((1 << 64) - 1)
            which = "HSPRG0"
        print("per-CPU area (%s) at %#x:" % (which, base))
        for index, name in enumerate(PERCPU_FIELDS):
            value = read_u64(base + index * 8)
            note = ""
            if name == "caller_partition" and value == NO_PARTITION:
                note = "  (no partition)"
            elif name in ("handler", "work_fn") and value:
                note = "  " + gdb.execute("info symbol %#x" % value, to_string=True).strip()
            print("  %-24s %#018x%s" % (name, value, note))


class TcefwTvt(gdb.Command):
    """tcefw-tvt PHB: the valid TVEs of a PHB (PE, window, table, levels, page size)."""

    def __init__(self):
        super().__init__("tcefw-tvt", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        (phb,) = parse_args(arg, ["PHB"])
        shown = 0
        for index, value in enumerate(snapshot_tvt(phb)):
            tve = decode_tve(value)
            if tve is None:
                continue
            table, levels, level_bytes, page_shift = tve
            print("TVE %3d  PE %3d window %d  %#018x  table %#x  %d level(s) of %d KiB"
                  "  %d KiB pages" % (index, index // 2, index % 2, value, table, levels,
                                      level_bytes >> 10, (1 << page_shift) >> 10))
            shown += 1
        print("PHB %d: %d valid TVE(s) of %d" % (phb, shown, TVT_ENTRIES))


class TcefwTces(gdb.Command):
    """tcefw-tces PHB PE WINDOW [FIRST [COUNT]]: the mapped TCEs of a window."""

    def __init__(self):
        super().__init__("tcefw-tces", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        phb, pe, window, first, count = parse_args(
            arg, ["PHB", "PE", "WINDOW", "FIRST", "COUNT"], (0, 16))
        index = pe * 2 + (window & 1)
        value = snapshot_tvt(phb)[index]
        tve = decode_tve(value)
        if tve is None:
            raise gdb.GdbError("PHB %d PE %d window %d: TVE %d is %#x, not translating"
                               % (phb, pe, window, index, value))
        table, levels, level_bytes, page_shift = tve
        level_shift = (level_bytes // 8).bit_length() - 1
        bus_base = WINDOW1_BUS if window & 1 else 0
        mapped = 0
        for entry in range(first, first + count):
            # The PHB's walk (src/iommu/table.rs): one digit of the index per level, an
            # indirect entry is the next level's address with R|W set.
            level_base = table
            tce = 0
            for depth in range(levels):
                digit = (entry >> ((levels - 1 - depth) * level_shift)) & ((1 << level_shift) - 1)
                tce = read_u64(level_base | (digit * 8), big_endian=True)
                if depth < levels - 1:
                    if tce == 0:
                        break
                    level_base = tce & ~0xfff
            if tce == 0:
                continue
            perms = ("R" if tce & 1 else "-") + ("W" if tce & 2 else "-")
            print("  [%6d] bus %#018x -> %#014x %s" % (
                entry, bus_base + (entry << page_shift), tce & ~0xfff, perms))
            mapped += 1
        print("PHB %d PE %d window %d: %d of entries %d..%d mapped (TVE %#x)"
              % (phb, pe, window, mapped, first, first + count - 1, value))


class TcefwHelp(gdb.Command):
    """tcefw-help: list the tcefw helpers."""

    def __init__(self):
        super().__init__("tcefw-help", gdb.COMMAND_SUPPORT)

    def invoke(self, arg, from_tty):
        for command in ("tcefw-percpu", "tcefw-tvt", "tcefw-tces"):
            print(gdb.execute("help " + command, to_string=True).strip())


TcefwPercpu()
TcefwTvt()
TcefwTces()
TcefwHelp()
end

# Rust symbols demangle with their hash; `info functions NAME` finds one.
set print asm-demangle on
echo tcefw helpers loaded: tcefw-percpu, tcefw-tvt, tcefw-tces (tcefw-help)\n
