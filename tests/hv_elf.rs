//! Host tests of the guest kernel loader plan (`tcefw::hv::elf`): a vmlinux-shaped synthetic
//! ELF in both byte orders, every refusal, every truncation length, and thousands of random
//! mutations that must give a typed error or a plan whose every range is inside the file and
//! the partition — never a panic. (The real Debian vmlinux: tests/guest_vmlinux.rs.)

#[path = "support/hv_fakes.rs"]
mod hv_fakes;

use hv_fakes::Rng;
use std::panic::{catch_unwind, AssertUnwindSafe};
use tcefw::hv::elf::{ByteOrder, ElfError, LoadError, LoadPlan};
use tcefw::hv::memory::SliceGuestMemory;

const PARTITION: u64 = 1 << 20;

/// One program header to write.
#[derive(Clone, Copy)]
struct Phdr {
    kind: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    paddr: u64,
    filesz: u64,
    memsz: u64,
}

/// Builds an ELF64 for EM_PPC64: header, program headers at 64, then `body` from `body_at`.
fn build(order: ByteOrder, entry: u64, phdrs: &[Phdr], body_at: usize, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; body_at.max(64 + 56 * phdrs.len())];
    let put16 = |f: &mut Vec<u8>, at: usize, v: u16| {
        let b = match order {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        };
        f[at..at + 2].copy_from_slice(&b);
    };
    let put32 = |f: &mut Vec<u8>, at: usize, v: u32| {
        let b = match order {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        };
        f[at..at + 4].copy_from_slice(&b);
    };
    let put64 = |f: &mut Vec<u8>, at: usize, v: u64| {
        let b = match order {
            ByteOrder::Little => v.to_le_bytes(),
            ByteOrder::Big => v.to_be_bytes(),
        };
        f[at..at + 8].copy_from_slice(&b);
    };
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = 2;
    f[5] = if order == ByteOrder::Little { 1 } else { 2 };
    f[6] = 1;
    put16(&mut f, 16, 2); // ET_EXEC
    put16(&mut f, 18, 21); // EM_PPC64
    put32(&mut f, 20, 1);
    put64(&mut f, 24, entry);
    put64(&mut f, 32, 64);
    put32(&mut f, 48, 2); // ELFv2
    put16(&mut f, 52, 64);
    put16(&mut f, 54, 56);
    put16(&mut f, 56, phdrs.len() as u16);
    for (i, p) in phdrs.iter().enumerate() {
        let at = 64 + 56 * i;
        put32(&mut f, at, p.kind);
        put32(&mut f, at + 4, p.flags);
        put64(&mut f, at + 8, p.offset);
        put64(&mut f, at + 16, p.vaddr);
        put64(&mut f, at + 24, p.paddr);
        put64(&mut f, at + 32, p.filesz);
        put64(&mut f, at + 40, p.memsz);
        put64(&mut f, at + 48, 0x10000);
    }
    f.truncate(body_at);
    f.extend_from_slice(body);
    f
}

const KERNEL_BASE: u64 = 0xc000_0000_0000_0000;

fn body() -> Vec<u8> {
    (0..0x3000u32).map(|i| (i * 7 + 3) as u8).collect()
}

/// Like Debian's vmlinux: a PT_LOAD at virtual 0xc000..., physical 0, with bss, and a
/// PT_NOTE inside it.
fn vmlinux_like(order: ByteOrder) -> Vec<u8> {
    let load = Phdr {
        kind: 1,
        flags: 7,
        offset: 0x1000,
        vaddr: KERNEL_BASE,
        paddr: 0,
        filesz: 0x3000,
        memsz: 0x5000,
    };
    let note = Phdr {
        kind: 4,
        flags: 4,
        offset: 0x1800,
        vaddr: KERNEL_BASE + 0x800,
        paddr: 0x800,
        filesz: 0x80,
        memsz: 0x80,
    };
    build(order, KERNEL_BASE + 0x100, &[load, note], 0x1000, &body())
}

#[test]
fn plan_of_a_vmlinux_shaped_elf_in_both_byte_orders() {
    for order in [ByteOrder::Little, ByteOrder::Big] {
        let file = vmlinux_like(order);
        let plan = LoadPlan::new(&file, PARTITION).unwrap();
        assert_eq!(plan.byte_order, order);
        assert_eq!(plan.abi_version(), 2);
        assert_eq!(plan.entry_virtual, KERNEL_BASE + 0x100);
        assert_eq!(plan.entry_guest_real, 0x100);
        assert_eq!(plan.segments.len(), 1, "the PT_NOTE is not loaded");
        let s = plan.segments[0];
        assert_eq!(
            (s.file_offset, s.file_size, s.guest_real, s.memory_size),
            (0x1000, 0x3000, 0, 0x5000)
        );
        assert_eq!(s.zeroed(), (0x3000, 0x2000));
        assert_eq!(plan.guest_real_end(), 0x5000);
    }
}

#[test]
fn apply_copies_the_file_bytes_zeroes_bss_and_touches_nothing_else() {
    let file = vmlinux_like(ByteOrder::Little);
    let plan = LoadPlan::new(&file, PARTITION).unwrap();
    let mut guest = SliceGuestMemory::new(vec![0xaau8; PARTITION as usize]);
    plan.apply(&file, &mut guest).unwrap();
    let bytes = guest.bytes();
    assert_eq!(&bytes[..0x3000], &body()[..]);
    assert!(bytes[0x3000..0x5000].iter().all(|&b| b == 0));
    assert!(bytes[0x5000..].iter().all(|&b| b == 0xaa));
    // A guest smaller than the plan, or another (shorter) file: an error, not a panic.
    let mut small = SliceGuestMemory::new(vec![0u8; 0x4000]);
    assert!(matches!(
        plan.apply(&file, &mut small),
        Err(LoadError::GuestMemory(_))
    ));
    assert_eq!(
        plan.apply(&file[..0x2000], &mut guest),
        Err(LoadError::FileChanged)
    );
}

/// Writes `bytes` at `at` if the file is that long (a mutated file may be truncated).
fn set(file: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = file.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

#[test]
fn every_malformed_header_and_segment_is_a_typed_error() {
    let good = vmlinux_like(ByteOrder::Little);
    type Edit = fn(&mut Vec<u8>);
    let cases: Vec<(&str, Edit, ElfError)> = vec![
        ("magic", |f| f[1] = b'X', ElfError::BadMagic),
        ("32-bit", |f| f[4] = 1, ElfError::UnsupportedClass(1)),
        (
            "byte order 3",
            |f| f[5] = 3,
            ElfError::UnsupportedByteOrder(3),
        ),
        ("EI_VERSION", |f| f[6] = 0, ElfError::UnsupportedVersion),
        (
            "e_version",
            |f| set(f, 20, &2u32.to_le_bytes()),
            ElfError::UnsupportedVersion,
        ),
        (
            "ET_DYN",
            |f| set(f, 16, &3u16.to_le_bytes()),
            ElfError::UnsupportedType(3),
        ),
        (
            "x86-64",
            |f| set(f, 18, &62u16.to_le_bytes()),
            ElfError::UnsupportedMachine(62),
        ),
        (
            "e_ehsize",
            |f| set(f, 52, &52u16.to_le_bytes()),
            ElfError::BadHeaderSize(52),
        ),
        (
            "e_phentsize",
            |f| set(f, 54, &32u16.to_le_bytes()),
            ElfError::BadProgramHeaderSize(32),
        ),
        (
            "e_phnum 65",
            |f| set(f, 56, &65u16.to_le_bytes()),
            ElfError::TooManyProgramHeaders(65),
        ),
        (
            "PN_XNUM",
            |f| set(f, 56, &0xffffu16.to_le_bytes()),
            ElfError::TooManyProgramHeaders(0xffff),
        ),
        (
            "phoff past the end",
            |f| set(f, 32, &0x10_0000u64.to_le_bytes()),
            ElfError::ProgramHeadersOutsideFile,
        ),
        (
            "phoff overflows",
            |f| set(f, 32, &(u64::MAX - 8).to_le_bytes()),
            ElfError::ProgramHeadersOutsideFile,
        ),
        (
            "table past the end",
            |f| set(f, 54, &0xffffu16.to_le_bytes()),
            ElfError::ProgramHeadersOutsideFile,
        ),
        (
            "p_offset past the end",
            |f| set(f, 64 + 8, &0x10_0000u64.to_le_bytes()),
            ElfError::SegmentOutsideFile { index: 0 },
        ),
        (
            "p_offset + p_filesz overflows",
            |f| set(f, 64 + 8, &u64::MAX.to_le_bytes()),
            ElfError::SegmentOutsideFile { index: 0 },
        ),
        (
            "p_filesz past the end",
            |f| set(f, 64 + 32, &0x3001u64.to_le_bytes()),
            ElfError::SegmentOutsideFile { index: 0 },
        ),
        (
            "p_filesz > p_memsz",
            |f| set(f, 64 + 40, &0x2000u64.to_le_bytes()),
            ElfError::FileSizeAboveMemorySize { index: 0 },
        ),
        (
            "bss past the partition",
            |f| set(f, 64 + 40, &(PARTITION + 1).to_le_bytes()),
            ElfError::SegmentOutsidePartition { index: 0 },
        ),
        (
            "p_paddr past the partition",
            |f| set(f, 64 + 24, &PARTITION.to_le_bytes()),
            ElfError::SegmentOutsidePartition { index: 0 },
        ),
        (
            "p_paddr + p_memsz overflows",
            |f| set(f, 64 + 24, &(u64::MAX - 0x100).to_le_bytes()),
            ElfError::SegmentOutsidePartition { index: 0 },
        ),
        (
            "a hypervisor address as p_paddr",
            |f| set(f, 64 + 24, &0x2001_0000u64.to_le_bytes()),
            ElfError::SegmentOutsidePartition { index: 0 },
        ),
        (
            "no PT_LOAD",
            |f| set(f, 64, &6u32.to_le_bytes()),
            ElfError::NoLoadableSegment,
        ),
        (
            "only an empty PT_LOAD",
            |f| {
                set(f, 64 + 32, &0u64.to_le_bytes());
                set(f, 64 + 40, &0u64.to_le_bytes())
            },
            ElfError::NoLoadableSegment,
        ),
        (
            "overlapping PT_LOADs",
            |f| set(f, 64 + 56, &1u32.to_le_bytes()),
            ElfError::OverlappingSegments {
                first: 0,
                second: 1,
            },
        ),
        (
            "entry in the bss",
            |f| set(f, 24, &(KERNEL_BASE + 0x3000).to_le_bytes()),
            ElfError::EntryOutsideSegments {
                entry: KERNEL_BASE + 0x3000,
            },
        ),
        (
            "entry below the segment",
            |f| set(f, 24, &(KERNEL_BASE - 4).to_le_bytes()),
            ElfError::EntryOutsideSegments {
                entry: KERNEL_BASE - 4,
            },
        ),
        (
            "entry is a physical address",
            |f| set(f, 24, &0x100u64.to_le_bytes()),
            ElfError::EntryOutsideSegments { entry: 0x100 },
        ),
    ];
    for (what, edit, expected) in cases {
        let mut file = good.clone();
        edit(&mut file);
        assert_eq!(LoadPlan::new(&file, PARTITION), Err(expected), "{what}");
    }
}

#[test]
fn every_truncation_length_is_a_typed_error() {
    let file = vmlinux_like(ByteOrder::Little);
    for len in 0..file.len() {
        let result = LoadPlan::new(&file[..len], PARTITION);
        let expected = if len < 64 {
            ElfError::TruncatedHeader { len }
        } else if len < 64 + 2 * 56 {
            ElfError::ProgramHeadersOutsideFile
        } else {
            ElfError::SegmentOutsideFile { index: 0 }
        };
        assert_eq!(result, Err(expected), "length {len}");
    }
    assert!(LoadPlan::new(&file, PARTITION).is_ok());
}

/// The partition the mutated files are planned for (small: every plan is applied and the
/// whole memory compared).
const MUTATION_PARTITION: u64 = 64 << 10;

/// Checks a plan made from a mutated file: every range inside the file and the partition,
/// and applying it writes nothing outside its segments.
fn check_plan(plan: &LoadPlan, file: &[u8]) {
    for s in &plan.segments {
        assert!(s.file_offset + s.file_size <= file.len() as u64);
        assert!(s.file_size <= s.memory_size);
        assert!(s.guest_real_end() <= MUTATION_PARTITION);
    }
    assert!(plan
        .segments
        .iter()
        .any(|s| plan.entry_guest_real >= s.guest_real
            && plan.entry_guest_real < s.guest_real + s.file_size));
    let mut guest = SliceGuestMemory::new(vec![0xeeu8; MUTATION_PARTITION as usize]);
    plan.apply(file, &mut guest).unwrap();
    let mut covered = vec![false; MUTATION_PARTITION as usize];
    for s in &plan.segments {
        covered[s.guest_real as usize..s.guest_real_end() as usize].fill(true);
    }
    for (i, (&b, &inside)) in guest.bytes().iter().zip(&covered).enumerate() {
        assert!(
            inside || b == 0xee,
            "byte {i:#x} outside every segment was written"
        );
    }
}

#[test]
fn random_mutations_never_panic_and_any_plan_they_give_is_sound() {
    let seeds = std::env::var("TCEFW_ELF_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000u64);
    let mut rng = Rng(0xe1f0_5eed);
    let (mut ok, mut refused, mut panics) = (0u64, 0u64, 0u64);
    let fields = [
        4usize, 5, 16, 18, 24, 32, 52, 54, 56, 64, 72, 80, 88, 96, 104, 120, 128, 144, 152, 160,
    ];
    for _ in 0..seeds {
        let order = if rng.chance(50) {
            ByteOrder::Little
        } else {
            ByteOrder::Big
        };
        let mut file = vmlinux_like(order);
        for _ in 0..1 + rng.below(4) {
            match rng.below(4) {
                0 => {
                    if !file.is_empty() {
                        let at = rng.below(file.len() as u64) as usize;
                        file[at] ^= 1 << rng.below(8);
                    }
                }
                1 => {
                    let at = rng.pick(&fields);
                    let value = match rng.below(4) {
                        0 => rng.next_u64(),
                        1 => u64::MAX - rng.below(0x10000),
                        2 => rng.below(MUTATION_PARTITION * 2),
                        _ => KERNEL_BASE + rng.below(0x6000),
                    };
                    let bytes = match order {
                        ByteOrder::Little => value.to_le_bytes(),
                        ByteOrder::Big => value.to_be_bytes(),
                    };
                    set(&mut file, at, &bytes);
                }
                2 => {
                    let len = rng.below(file.len() as u64 + 1) as usize;
                    file.truncate(len);
                }
                _ => {
                    // Make the note a second PT_LOAD somewhere.
                    if file.len() >= 64 + 112 {
                        let kind = if order == ByteOrder::Little {
                            1u32.to_le_bytes()
                        } else {
                            1u32.to_be_bytes()
                        };
                        set(&mut file, 120, &kind);
                    }
                }
            }
        }
        match catch_unwind(AssertUnwindSafe(|| {
            LoadPlan::new(&file, MUTATION_PARTITION)
        })) {
            Ok(Ok(plan)) => {
                check_plan(&plan, &file);
                ok += 1;
            }
            Ok(Err(_)) => refused += 1,
            Err(_) => panics += 1,
        }
    }
    println!("ELF mutations: {seeds} files, {ok} planned and checked, {refused} refused, {panics} panics");
    assert_eq!(panics, 0);
    assert!(
        ok > 0 && refused > 0,
        "the mutations must exercise both outcomes"
    );
}
