//! The edu driver against a fake BAR0 that behaves like QEMU hw/misc/edu.c on a ppc64 target:
//! big-endian registers (so a little-endian load sees them byte-swapped), identification
//! 0x010000ed, liveness returning the complement, 4-byte-only registers below 0x80, DMA
//! registers frozen while a transfer runs, and completion signalled by the start bit clearing.

use std::sync::Mutex;
use tcefw::hw::mmio::Mmio;
use tcefw::pci::edu::{reg, DmaDirection, Edu, EduError, EDU_BUFFER_ADDRESS};

#[derive(Default)]
struct EduState {
    identification: u32,
    liveness: u32,
    broken_liveness: bool,
    dma: [u64; 4],
    /// Polls of the command register left before the running DMA completes.
    polls_to_completion: usize,
    transfers: Vec<[u64; 4]>,
    /// (offset, width, device value) of every write.
    writes: Vec<(u64, u8, u64)>,
}

struct FakeEdu {
    state: Mutex<EduState>,
}

impl FakeEdu {
    fn new() -> Self {
        FakeEdu {
            state: Mutex::new(EduState {
                identification: 0x0100_00ED,
                ..Default::default()
            }),
        }
    }

    fn running(state: &EduState) -> bool {
        state.dma[3] & 1 != 0
    }

    fn read(&self, offset: u64, width: u8) -> u64 {
        let mut state = self.state.lock().unwrap();
        if offset < 0x80 && width != 4 {
            return u64::MAX;
        }
        match offset {
            0x00 => u64::from(state.identification),
            0x04 => u64::from(state.liveness),
            0x80 | 0x88 | 0x90 => state.dma[((offset - 0x80) / 8) as usize],
            0x98 => {
                if Self::running(&state) {
                    if state.polls_to_completion == 0 {
                        let transfer = state.dma;
                        state.transfers.push(transfer);
                        state.dma[3] &= !1;
                    } else {
                        state.polls_to_completion -= 1;
                    }
                }
                state.dma[3]
            }
            _ => 0,
        }
    }

    fn write(&self, offset: u64, width: u8, value: u64) {
        let mut state = self.state.lock().unwrap();
        state.writes.push((offset, width, value));
        if offset < 0x80 && width != 4 {
            return;
        }
        match offset {
            0x04 => {
                state.liveness = if state.broken_liveness {
                    value as u32
                } else {
                    !(value as u32)
                }
            }
            0x80 | 0x88 | 0x90 if !Self::running(&state) => {
                state.dma[((offset - 0x80) / 8) as usize] = value
            }
            0x98 if value & 1 != 0 && !Self::running(&state) => {
                state.dma[3] = value;
                state.polls_to_completion = 3;
            }
            _ => {}
        }
    }
}

// Big-endian device, little-endian CPU: what a load returns is the device value swapped.
impl Mmio for FakeEdu {
    fn read32(&self, offset: u64) -> u32 {
        (self.read(offset, 4) as u32).swap_bytes()
    }
    fn write32(&self, offset: u64, value: u32) {
        self.write(offset, 4, u64::from(value.swap_bytes()));
    }
    fn read64(&self, offset: u64) -> u64 {
        self.read(offset, 8).swap_bytes()
    }
    fn write64(&self, offset: u64, value: u64) {
        self.write(offset, 8, value.swap_bytes());
    }
}

#[test]
fn identification_and_liveness() {
    let bar0 = FakeEdu::new();
    // The raw little-endian load shows the big-endian register byte-swapped.
    assert_eq!(bar0.read32(reg::IDENTIFICATION), 0xED00_0001);
    let edu = Edu::new(&bar0).unwrap();
    assert_eq!(edu.identification(), 0x0100_00ED);
    edu.check_liveness(0x1234_5678).unwrap();
    assert_eq!(bar0.state.lock().unwrap().liveness, !0x1234_5678);
    edu.check_liveness(0).unwrap();

    bar0.state.lock().unwrap().broken_liveness = true;
    assert_eq!(
        edu.check_liveness(0xA5A5_0F0F),
        Err(EduError::NotAlive {
            wrote: 0xA5A5_0F0F,
            read: 0xA5A5_0F0F
        })
    );
}

#[test]
fn something_else_is_not_edu() {
    // An unassigned M32 address reads 0 on QEMU; a dead device all-ones.
    for identification in [0, 0xFFFF_FFFF] {
        let bar0 = FakeEdu::new();
        bar0.state.lock().unwrap().identification = identification;
        assert_eq!(
            Edu::new(&bar0).err(),
            Some(EduError::NotEdu { identification })
        );
    }
}

#[test]
fn dma_buffer_to_ram_then_completion() {
    let bar0 = FakeEdu::new();
    let edu = Edu::new(&bar0).unwrap();
    edu.start_dma(DmaDirection::BufferToRam, 0x0800_1000, 0x10, 0x100, false)
        .unwrap();
    // Source, destination, count, then the command (start | to-RAM), all 8-byte writes.
    assert_eq!(
        bar0.state.lock().unwrap().writes,
        vec![
            (0x80, 8, EDU_BUFFER_ADDRESS + 0x10),
            (0x88, 8, 0x0800_1000),
            (0x90, 8, 0x100),
            (0x98, 8, 0x3),
        ]
    );
    assert!(edu.dma_busy());
    // A second DMA while the first runs would be ignored by edu: refused, nothing written.
    let writes_before = bar0.state.lock().unwrap().writes.len();
    assert_eq!(
        edu.start_dma(DmaDirection::RamToBuffer, 0, 0, 8, false),
        Err(EduError::Busy)
    );
    assert_eq!(bar0.state.lock().unwrap().writes.len(), writes_before);

    let mut polls = 0;
    edu.wait_dma(|| {
        polls += 1;
        true
    })
    .unwrap();
    assert!(polls >= 1);
    assert!(!edu.dma_busy());
    assert_eq!(
        bar0.state.lock().unwrap().transfers,
        vec![[EDU_BUFFER_ADDRESS + 0x10, 0x0800_1000, 0x100, 0x3]]
    );
}

#[test]
fn dma_ram_to_buffer_with_interrupt_and_timeout() {
    let bar0 = FakeEdu::new();
    let edu = Edu::new(&bar0).unwrap();
    edu.start_dma(
        DmaDirection::RamToBuffer,
        0x0800_0000_0000_2000,
        0,
        4096,
        true,
    )
    .unwrap();
    let state = bar0.state.lock().unwrap();
    // Window-1 bus address as source, the buffer start as destination, start | irq.
    assert_eq!(
        state.dma,
        [0x0800_0000_0000_2000, EDU_BUFFER_ADDRESS, 4096, 0x5]
    );
    drop(state);
    // The caller gives up: typed timeout.
    assert_eq!(edu.wait_dma(|| false), Err(EduError::Timeout));
}

#[test]
fn transfers_outside_the_buffer_are_refused() {
    let bar0 = FakeEdu::new();
    let edu = Edu::new(&bar0).unwrap();
    for (offset, len) in [(0xF00, 0x200), (0, 0), (0, 4097), (u64::MAX, 2), (4096, 1)] {
        assert_eq!(
            edu.start_dma(DmaDirection::BufferToRam, 0x1000, offset, len, false),
            Err(EduError::OutsideBuffer { offset, len })
        );
    }
    assert!(bar0.state.lock().unwrap().writes.is_empty());
    assert!(EduError::OutsideBuffer { offset: 1, len: 2 }
        .to_string()
        .contains("leaves the buffer"));
}
