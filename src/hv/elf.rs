//! A checked ELF64 loader plan for a guest kernel: the header and program headers parsed with
//! every bound checked, and the plan that loads it into a partition — which file range goes
//! to which guest-real range, which tail is zeroed (.bss), and the guest-real entry point —
//! checked against the partition's size before a byte is copied.
//!
//! Debian's ppc64el vmlinux is an ELFv2 little-endian `ET_EXEC` for EM_PPC64 with one
//! PT_LOAD at virtual 0xc000000000000000, physical 0, and e_entry 0xc000000000000000: the
//! physical address (`p_paddr`) is where a segment goes in guest-real memory, and the entry
//! point is translated through the segment that holds it (guest-real 0 for that kernel). Both
//! byte orders are read; big-endian (ELFv1) kernels' e_entry is taken as an address, as for
//! ELFv2.
//!
//! A bad or truncated file is an [`ElfError`], never a panic and never a read outside the
//! file: every offset and size is added with overflow checks and compared with the file's
//! length before it is used.
//!
//! Resources: System V ABI gABI ch. 4 "ELF header" and 5 "Program header" (field layout,
//! PN_XNUM); 64-bit ELF V2 ABI for Power (e_flags ABI version); Linux
//! arch/powerpc/kernel/vmlinux.lds.S (AT(ADDR - LOAD_OFFSET): p_paddr is the real address);
//! kvmtool powerpc/kvm.c (a pseries guest kernel loaded at guest-real 0).

use super::memory::{GuestMemory, GuestMemoryError};
use alloc::vec::Vec;

/// ELF identification: `\x7fELF`.
const MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];
/// EI_CLASS: ELFCLASS64.
const CLASS_64: u8 = 2;
/// EI_DATA: little-endian.
const DATA_LSB: u8 = 1;
/// EI_DATA: big-endian.
const DATA_MSB: u8 = 2;
/// EV_CURRENT.
const VERSION_CURRENT: u8 = 1;
/// ET_EXEC.
const TYPE_EXEC: u16 = 2;
/// EM_PPC64.
const MACHINE_PPC64: u16 = 21;
/// PT_LOAD.
const PT_LOAD: u32 = 1;
/// e_phnum value meaning "the count is in section header 0" (refused: no kernel needs it).
const PN_XNUM: u16 = 0xffff;

/// Bytes of the ELF64 header.
pub const EHDR_BYTES: usize = 64;
/// Bytes of one ELF64 program header.
pub const PHDR_BYTES: usize = 56;
/// The most program headers a plan reads (a kernel has two to four).
pub const MAX_PROGRAM_HEADERS: u16 = 64;

/// Why a file is not a kernel we can load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// The file ends inside the ELF header.
    TruncatedHeader {
        /// Bytes in the file.
        len: usize,
    },
    /// Not `\x7fELF`.
    BadMagic,
    /// Not a 64-bit ELF.
    UnsupportedClass(u8),
    /// EI_DATA is neither little- nor big-endian.
    UnsupportedByteOrder(u8),
    /// EI_VERSION or e_version is not 1.
    UnsupportedVersion,
    /// e_type is not ET_EXEC.
    UnsupportedType(u16),
    /// e_machine is not EM_PPC64.
    UnsupportedMachine(u16),
    /// e_ehsize is not 64.
    BadHeaderSize(u16),
    /// e_phentsize is below 56.
    BadProgramHeaderSize(u16),
    /// e_phnum is above [`MAX_PROGRAM_HEADERS`] (or PN_XNUM).
    TooManyProgramHeaders(u16),
    /// The program header table is not inside the file.
    ProgramHeadersOutsideFile,
    /// A PT_LOAD's file range is not inside the file.
    SegmentOutsideFile {
        /// Program header index.
        index: u16,
    },
    /// A PT_LOAD's p_filesz exceeds its p_memsz.
    FileSizeAboveMemorySize {
        /// Program header index.
        index: u16,
    },
    /// A PT_LOAD's guest-real range (p_paddr + p_memsz) is not inside the partition.
    SegmentOutsidePartition {
        /// Program header index.
        index: u16,
    },
    /// Two PT_LOADs overlap in guest-real memory.
    OverlappingSegments {
        /// One program header index.
        first: u16,
        /// The other.
        second: u16,
    },
    /// No PT_LOAD with bytes to load.
    NoLoadableSegment,
    /// e_entry is not inside the file-backed part of a PT_LOAD.
    EntryOutsideSegments {
        /// e_entry.
        entry: u64,
    },
}

/// Why applying a plan failed (it was made for another file or a larger partition).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// The file is shorter than the plan says.
    FileChanged,
    /// The guest memory refused a range (it is smaller than the partition planned for).
    GuestMemory(GuestMemoryError),
}

/// The byte order of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteOrder {
    /// ELFDATA2LSB (ppc64el).
    Little,
    /// ELFDATA2MSB (ppc64).
    Big,
}

/// One PT_LOAD: copy `file_size` bytes from `file_offset` to `guest_real`, then zero up to
/// `memory_size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadSegment {
    /// Index of its program header.
    pub index: u16,
    /// p_offset.
    pub file_offset: u64,
    /// p_filesz.
    pub file_size: u64,
    /// p_paddr: where it goes in guest-real memory.
    pub guest_real: u64,
    /// p_memsz.
    pub memory_size: u64,
    /// p_vaddr (the kernel's linked address).
    pub virtual_address: u64,
    /// p_flags (PF_X 1, PF_W 2, PF_R 4).
    pub flags: u32,
}

impl LoadSegment {
    /// Guest-real `(start, bytes)` that the loader zeroes: the tail past the file bytes.
    pub fn zeroed(&self) -> (u64, u64) {
        (
            self.guest_real + self.file_size,
            self.memory_size - self.file_size,
        )
    }

    /// One past the last guest-real byte.
    pub fn guest_real_end(&self) -> u64 {
        self.guest_real + self.memory_size
    }
}

/// Everything needed to load a kernel into a partition, all checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadPlan {
    /// The file's byte order.
    pub byte_order: ByteOrder,
    /// e_flags (bits 0:1 are the Power ABI version: 1 ELFv1, 2 ELFv2).
    pub flags: u32,
    /// e_entry as linked.
    pub entry_virtual: u64,
    /// The guest-real address to start the kernel at.
    pub entry_guest_real: u64,
    /// The PT_LOADs with bytes, in program header order.
    pub segments: Vec<LoadSegment>,
}

/// Reads fixed-width fields of a byte order, never past the slice (callers check lengths
/// first; a short slice reads as an error value they never see).
#[derive(Clone, Copy)]
struct Reader<'a> {
    bytes: &'a [u8],
    order: ByteOrder,
}

impl Reader<'_> {
    fn field<const N: usize>(&self, at: usize) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(src) = self.bytes.get(at..at + N) {
            out.copy_from_slice(src);
        }
        out
    }

    fn u16(&self, at: usize) -> u16 {
        match self.order {
            ByteOrder::Little => u16::from_le_bytes(self.field(at)),
            ByteOrder::Big => u16::from_be_bytes(self.field(at)),
        }
    }

    fn u32(&self, at: usize) -> u32 {
        match self.order {
            ByteOrder::Little => u32::from_le_bytes(self.field(at)),
            ByteOrder::Big => u32::from_be_bytes(self.field(at)),
        }
    }

    fn u64(&self, at: usize) -> u64 {
        match self.order {
            ByteOrder::Little => u64::from_le_bytes(self.field(at)),
            ByteOrder::Big => u64::from_be_bytes(self.field(at)),
        }
    }
}

impl LoadPlan {
    /// Parses `file` and plans its load into a partition of `partition_size` bytes.
    pub fn new(file: &[u8], partition_size: u64) -> Result<Self, ElfError> {
        let header = file
            .get(..EHDR_BYTES)
            .ok_or(ElfError::TruncatedHeader { len: file.len() })?;
        if header[..4] != MAGIC {
            return Err(ElfError::BadMagic);
        }
        if header[4] != CLASS_64 {
            return Err(ElfError::UnsupportedClass(header[4]));
        }
        let byte_order = match header[5] {
            DATA_LSB => ByteOrder::Little,
            DATA_MSB => ByteOrder::Big,
            other => return Err(ElfError::UnsupportedByteOrder(other)),
        };
        if header[6] != VERSION_CURRENT {
            return Err(ElfError::UnsupportedVersion);
        }
        let ehdr = Reader {
            bytes: header,
            order: byte_order,
        };
        let e_type = ehdr.u16(16);
        if e_type != TYPE_EXEC {
            return Err(ElfError::UnsupportedType(e_type));
        }
        let machine = ehdr.u16(18);
        if machine != MACHINE_PPC64 {
            return Err(ElfError::UnsupportedMachine(machine));
        }
        if ehdr.u32(20) != u32::from(VERSION_CURRENT) {
            return Err(ElfError::UnsupportedVersion);
        }
        let entry = ehdr.u64(24);
        let phoff = ehdr.u64(32);
        let flags = ehdr.u32(48);
        let ehsize = ehdr.u16(52);
        if usize::from(ehsize) != EHDR_BYTES {
            return Err(ElfError::BadHeaderSize(ehsize));
        }
        let phentsize = ehdr.u16(54);
        if usize::from(phentsize) < PHDR_BYTES {
            return Err(ElfError::BadProgramHeaderSize(phentsize));
        }
        let phnum = ehdr.u16(56);
        if phnum > MAX_PROGRAM_HEADERS || phnum == PN_XNUM {
            return Err(ElfError::TooManyProgramHeaders(phnum));
        }
        let table_bytes = u64::from(phentsize) * u64::from(phnum);
        let table_end = phoff
            .checked_add(table_bytes)
            .ok_or(ElfError::ProgramHeadersOutsideFile)?;
        if table_end > file.len() as u64 {
            return Err(ElfError::ProgramHeadersOutsideFile);
        }

        let mut segments = Vec::new();
        for index in 0..phnum {
            // In the file: checked against table_end above.
            let at = (phoff + u64::from(index) * u64::from(phentsize)) as usize;
            let phdr = Reader {
                bytes: &file[at..at + PHDR_BYTES],
                order: byte_order,
            };
            if phdr.u32(0) != PT_LOAD {
                continue;
            }
            let segment = LoadSegment {
                index,
                flags: phdr.u32(4),
                file_offset: phdr.u64(8),
                virtual_address: phdr.u64(16),
                guest_real: phdr.u64(24),
                file_size: phdr.u64(32),
                memory_size: phdr.u64(40),
            };
            let file_end = segment
                .file_offset
                .checked_add(segment.file_size)
                .ok_or(ElfError::SegmentOutsideFile { index })?;
            if file_end > file.len() as u64 {
                return Err(ElfError::SegmentOutsideFile { index });
            }
            if segment.file_size > segment.memory_size {
                return Err(ElfError::FileSizeAboveMemorySize { index });
            }
            match segment.guest_real.checked_add(segment.memory_size) {
                Some(end) if end <= partition_size => {}
                _ => return Err(ElfError::SegmentOutsidePartition { index }),
            }
            if segment.memory_size != 0 {
                segments.push(segment);
            }
        }
        if segments.is_empty() {
            return Err(ElfError::NoLoadableSegment);
        }
        for (i, a) in segments.iter().enumerate() {
            for b in &segments[i + 1..] {
                if a.guest_real < b.guest_real_end() && b.guest_real < a.guest_real_end() {
                    return Err(ElfError::OverlappingSegments {
                        first: a.index,
                        second: b.index,
                    });
                }
            }
        }
        let entry_guest_real = segments
            .iter()
            .find_map(|s| {
                let offset = entry.checked_sub(s.virtual_address)?;
                (offset < s.file_size).then_some(s.guest_real + offset)
            })
            .ok_or(ElfError::EntryOutsideSegments { entry })?;
        Ok(LoadPlan {
            byte_order,
            flags,
            entry_virtual: entry,
            entry_guest_real,
            segments,
        })
    }

    /// The Power ABI version from e_flags (1 ELFv1, 2 ELFv2, 0 unspecified).
    pub fn abi_version(&self) -> u32 {
        self.flags & 3
    }

    /// One past the highest guest-real byte the kernel occupies (bss included): the device
    /// tree, RTAS and the initramfs go at or above it.
    pub fn guest_real_end(&self) -> u64 {
        self.segments
            .iter()
            .map(LoadSegment::guest_real_end)
            .max()
            .unwrap_or(0)
    }

    /// Copies each segment's file bytes into `guest` and zeroes its tail. `file` must be the
    /// file the plan was made from, and `guest` at least as large as the partition planned
    /// for; otherwise an error, after which the guest's memory is partly written.
    pub fn apply<G: GuestMemory + ?Sized>(
        &self,
        file: &[u8],
        guest: &mut G,
    ) -> Result<(), LoadError> {
        if self.guest_real_end() > guest.size() {
            return Err(LoadError::GuestMemory(GuestMemoryError {
                gra: 0,
                len: self.guest_real_end(),
            }));
        }
        for segment in &self.segments {
            let start = usize::try_from(segment.file_offset).map_err(|_| LoadError::FileChanged)?;
            let len = usize::try_from(segment.file_size).map_err(|_| LoadError::FileChanged)?;
            let bytes = start
                .checked_add(len)
                .and_then(|end| file.get(start..end))
                .ok_or(LoadError::FileChanged)?;
            guest
                .write(segment.guest_real, bytes)
                .map_err(LoadError::GuestMemory)?;
            let (zero_at, zero_len) = segment.zeroed();
            guest
                .fill(zero_at, zero_len, 0)
                .map_err(LoadError::GuestMemory)?;
        }
        Ok(())
    }
}
