//! PHB3 and PBCQ register encodings, checked against values worked out by hand from the
//! hardware sources (skiboot include/phb3-regs.h, hw/phb3.c; QEMU pnv_phb3_regs.h,
//! pnv_phb3_pbcq.c). Each test shows its working.

use tcefw::phb3::pbcq::qemu_default_windows;
use tcefw::phb3::regs::*;

#[test]
fn ibm_bit_helpers() {
    // IBM bit 0 is the MSB; bit 63 the LSB.
    assert_eq!(ppc_bit(0), 0x8000_0000_0000_0000);
    assert_eq!(ppc_bit(63), 1);
    // PPC_BITMASK(4,11): bits 52..59 in LSB-0 numbering = 0x0ff0_0000_0000_0000.
    assert_eq!(ppc_bitmask(4, 11), 0x0FF0_0000_0000_0000);
    assert_eq!(ppc_bitlshift(11), 52);
    // SETFIELD drops what does not fit: 0x1ff into an 8-bit field keeps 0xff.
    assert_eq!(set_field(PHB_CA_BUS, 0, 0x1FF), 0x0FF0_0000_0000_0000);
    assert_eq!(get_field(PHB_CA_BUS, 0x0120_0000_0000_0000), 0x12);
    assert!(fits_field(PHB_IODA_AD_TADR, 511));
    assert!(!fits_field(PHB_IODA_AD_TADR, 512));
}

#[test]
fn phb_register_fields_match_skiboot() {
    // PHB_PHB3C_*: PPC_BIT(2) = 1 << 61, PPC_BIT(8) = 1 << 55, PPC_BIT(14) = 1 << 49,
    // PPC_BIT(16) = 1 << 47.
    assert_eq!(Phb3Config::TCE_64B_EN.bits(), 0x2000_0000_0000_0000);
    assert_eq!(Phb3Config::MSI_32BIT_EN.bits(), 0x0080_0000_0000_0000);
    assert_eq!(Phb3Config::MSI_64BIT_EN.bits(), 0x0002_0000_0000_0000);
    assert_eq!(Phb3Config::M32_EN.bits(), 0x0000_8000_0000_0000);
    assert_eq!(PHB_RTC_INVALIDATE_ALL, 0x8000_0000_0000_0000);
    assert_eq!(PHB_TCE_KILL_ALL, 0x8000_0000_0000_0000);
    // PHB_RTT_BASE_ADDRESS_MASK PPC_BITMASK(14,46) = address bits 17..49.
    assert_eq!(PHB_RTT_BASE_ADDRESS_MASK, 0x0003_FFFF_FFFE_0000);
    // PELTV PPC_BITMASK(14,50) = bits 13..49; PEST PPC_BITMASK(14,51) = bits 12..49.
    assert_eq!(PHB_PELTV_BASE_ADDRESS_MASK, 0x0003_FFFF_FFFF_E000);
    assert_eq!(PHB_PEST_BASE_ADDRESS_MASK, 0x0003_FFFF_FFFF_F000);
    // Offsets from phb3-regs.h.
    assert_eq!(
        [
            PHB_CONFIG_DATA,
            PHB_CONFIG_ADDRESS,
            PHB_PHB3_CONFIG,
            PHB_RTT_BAR,
            PHB_PELTV_BAR
        ],
        [0x130, 0x140, 0x160, 0x168, 0x188]
    );
    assert_eq!(
        [
            PHB_M32_BASE_ADDR,
            PHB_M32_BASE_MASK,
            PHB_M32_START_ADDR,
            PHB_PEST_BAR
        ],
        [0x190, 0x198, 0x1A0, 0x1A8]
    );
    assert_eq!(
        [
            PHB_RTC_INVALIDATE,
            PHB_TCE_KILL,
            PHB_IODA_ADDR,
            PHB_IODA_DATA0,
            PHB_VERSION
        ],
        [0x208, 0x210, 0x220, 0x228, 0x800]
    );
}

#[test]
fn config_address_encoding() {
    // bus 1, devfn 0, reg 0x10, PE 0:
    //   PHB_CA_ENABLE  PPC_BIT(0)            = 0x8000_0000_0000_0000
    //   bus 1 in PPC_BITMASK(4,11), << 52    = 0x0010_0000_0000_0000
    //   reg 0x10 in PPC_BITMASK(20,31), << 32 = 0x0000_0010_0000_0000
    assert_eq!(config_address(1, 0x00, 0x10, 0), 0x8010_0010_0000_0000);
    // Same with the reserved PE 255 in PPC_BITMASK(40,47), << 16 = 0xff_0000.
    assert_eq!(config_address(1, 0x00, 0x10, 255), 0x8010_0010_00FF_0000);
    // bus 2, device 3 function 1 (devfn 0x19 << 44 = 0x0001_9000_0000_0000), reg 0x0e
    // (dword 0x0c << 32), PE 5 (5 << 16).
    assert_eq!(config_address(2, 0x19, 0x0E, 5), 0x8021_900C_0005_0000);
    // skiboot phb3.c root-complex init writes these literals for bus 0, devfn 0:
    // reg 0x1c, 0x50 and the AER register 0x104 (extended config space).
    assert_eq!(config_address(0, 0, 0x1C, 0), 0x8000_001C_0000_0000);
    assert_eq!(config_address(0, 0, 0x50, 0), 0x8000_0050_0000_0000);
    assert_eq!(config_address(0, 0, 0x104, 0), 0x8000_0104_0000_0000);
    // The field split of QEMU's decoder: bus = addr >> 52, devfn = addr >> 44.
    let a = config_address(0xAB, 0xCD, 0x7FC, 0x12);
    assert_eq!((a >> 52) as u8, 0xAB);
    assert_eq!((a >> 44) as u8, 0xCD);
    assert_eq!((a >> 32) & 0xFFC, 0x7FC);
}

#[test]
fn ioda_addr_encoding() {
    // TVT (table 9) index 5 with auto-increment:
    //   PHB_IODA_AD_AUTOINC PPC_BIT(0)          = 0x8000_0000_0000_0000
    //   table 9 in PPC_BITMASK(11,15), << 48    = 0x0009_0000_0000_0000
    //   index 5 in PPC_BITMASK(55,63), << 0     = 5
    assert_eq!(
        ioda_addr(ioda2_table::TVT, 5, true),
        Some(0x8009_0000_0000_0005)
    );
    // The TVT clear starts at index 0 with auto-increment.
    assert_eq!(
        ioda_addr(ioda2_table::TVT, 0, true),
        Some(0x8009_0000_0000_0000)
    );
    // Last TVT entry, no auto-increment; PEEV (20 = 0x14) entry 3.
    assert_eq!(
        ioda_addr(ioda2_table::TVT, 511, false),
        Some(0x0009_0000_0000_01FF)
    );
    assert_eq!(
        ioda_addr(ioda2_table::PEEV, 3, true),
        Some(0x8014_0000_0000_0003)
    );
    // 512 would wrap onto entry 0 in the 9-bit field: refused.
    assert_eq!(ioda_addr(ioda2_table::TVT, 512, false), None);
    assert_eq!(ioda_addr(32, 0, false), None);
}

#[test]
fn table_bars_and_m32() {
    // RTT at 0x0102_0000 (a multiple of 128 KiB) | PHB_RTT_BAR_ENABLE.
    assert_eq!(
        table_bar(0x0102_0000, PHB_RTT_BASE_ADDRESS_MASK),
        Some(0x8000_0000_0102_0000)
    );
    // 64 KiB aligned only: bit 16 is outside PPC_BITMASK(14,46).
    assert_eq!(table_bar(0x0101_0000, PHB_RTT_BASE_ADDRESS_MASK), None);
    // 2^50 is beyond the 50 address bits.
    assert_eq!(table_bar(1 << 50, PHB_RTT_BASE_ADDRESS_MASK), None);
    // PEST 4 KiB aligned is fine.
    assert_eq!(
        table_bar(0x3000, PHB_PEST_BASE_ADDRESS_MASK),
        Some(0x8000_0000_0000_3000)
    );
    // M32 mask, skiboot: ~(M32_PCI_SIZE - 1) = ~0x7fff_ffff.
    assert_eq!(m32_mask(M32_PCI_SIZE), 0xFFFF_FFFF_8000_0000);
    // QEMU decodes ~(mask | 0xfffc000000000000) + 1 = 0x8000_0000 from it, and the same from
    // the 0x0003ffff80000000 that the reference experiment used.
    assert_eq!(m32_size(0xFFFF_FFFF_8000_0000), 0x8000_0000);
    assert_eq!(m32_size(0x0003_FFFF_8000_0000), 0x8000_0000);
    assert_eq!(M32_PCI_START, 0x8000_0000);
}

#[test]
fn pbcq_bar_encodings() {
    // QEMU pnv_pbcq_default_bars, chip 0 PHB 0, and the register values worked out by hand:
    //   MMIO1 0x3ff8000000000 << 14 = 0x3ff8 << 50 = 0xffe0_0000_0000_0000
    //   MMIO0 0x3d00000000000 << 14 = 0x3d0  << 54 = 0xf400_0000_0000_0000
    //   PHB   0x3fffe40000000 << 14 = 0x3fffe4 << 42 = 0xffff_9000_0000_0000
    assert_eq!(pbcq_bar_value(0x3_FF80_0000_0000), 0xFFE0_0000_0000_0000);
    assert_eq!(pbcq_bar_value(0x3_D000_0000_0000), 0xF400_0000_0000_0000);
    assert_eq!(pbcq_bar_value(0x3_FFFE_4000_0000), 0xFFFF_9000_0000_0000);
    assert_eq!(pbcq_bar_address(0xFFE0_0000_0000_0000), 0x3_FF80_0000_0000);
    // MMIO1 of chip 1 PHB 2: 0x3ff8000000000 + 0x200000000 + 2 * 0x80000000
    //   = 0x3ff8300000000; << 14 = 0xffe0_c000_0000_0000.
    assert_eq!(pbcq_bar_value(0x3_FF83_0000_0000), 0xFFE0_C000_0000_0000);
    // Masks: MASK1 0x3ffff80000000 << 14 = 0xffff_e000_0000_0000 -> 2 GiB;
    // MASK0 0x3fff000000000 << 14 = 0xfffc_0000_0000_0000 -> 64 GiB
    // (skiboot: size = ((~mask) >> 14) + 1).
    assert_eq!(pbcq_mask_size(0xFFFF_E000_0000_0000), 0x8000_0000);
    assert_eq!(pbcq_mask_size(0xFFFC_0000_0000_0000), 0x10_0000_0000);
    assert_eq!(pbcq_mask_value(0x8000_0000), 0xFFFF_E000_0000_0000);
    assert_eq!(pbcq_mask_value(0x10_0000_0000), 0xFFFC_0000_0000_0000);
    // BAR_EN: MMIO0 | MMIO1 | PHB = 0xe000..., as the reference experiment wrote; skiboot's
    // IRSN bits are 0x1800....
    let enable = PbcqBarEnable::MMIO0 | PbcqBarEnable::MMIO1 | PbcqBarEnable::PHB;
    assert_eq!(enable.bits(), 0xE000_0000_0000_0000);
    assert_eq!(
        (PbcqBarEnable::IRSN_RX | PbcqBarEnable::IRSN_TX).bits(),
        0x1800_0000_0000_0000
    );
    // The library's copy of the QEMU presets agrees.
    let w = qemu_default_windows(1, 2);
    assert_eq!(w.mmio1.base, 0x3_FF83_0000_0000);
    assert_eq!(w.phb_regs, 0x3_FFFE_4000_0000 + 0x40_0000 + 0x20_0000);
    assert_eq!(
        w.mmio0.unwrap().base,
        0x3_D000_0000_0000 + 0x40_0000_0000 + 0x20_0000_0000
    );
}

#[test]
fn version_decoding() {
    // skiboot: rev = ((val >> 16) & 0x00ff0000) | (val & 0xffff); QEMU's 0x000000a300000005
    // gives 0xa30005 = PHB3_REV_VENICE_DD20.
    assert_eq!(phb_revision(PHB_VERSION_QEMU), 0xA3_0005);
}
