/*
 * Shared assembler definitions: SPR numbers (POWER ISA 2.07; skiboot include/processor.h),
 * MSR bits, the per-CPU area offsets (they must match `PerCpu` in src/arch/ppc64/percpu.rs)
 * and the trap-frame layout (`TrapFrame` in src/hw/trap.rs: the compiler checks that its
 * offsets equal the TF_* values here).
 */
	.set SPRN_DSISR, 18
	.set SPRN_DAR, 19
	.set SPRN_SRR0, 26
	.set SPRN_SRR1, 27
	.set SPRN_SPRG0, 272
	.set SPRN_SPRG1, 273
	.set SPRN_SPRG2, 274
	.set SPRN_HSPRG0, 304
	.set SPRN_HSPRG1, 305
	.set SPRN_HDSISR, 306
	.set SPRN_HDAR, 307
	.set SPRN_HSRR0, 314
	.set SPRN_HSRR1, 315
	.set SPRN_HMER, 336
	.set SPRN_PIR, 1023
	.set SPRN_HID0, 1008

	/* MSR: FP (bit 50), ME (bit 51), VEC (bit 38), VSX (bit 40), RI (bit 62). */
	.set MSR_FP_ME_RI_LO, 0x3002
	.set MSR_VEC_VSX_HI, 0x0280

	/* Secondary stacks (must match linker.ld and percpu::MAX_CPUS - 1). */
	.set SECONDARY_STACKS, 31
	.set SECONDARY_STACK_SHIFT, 16		/* 64 KiB each */

	/* PerCpu layout. */
	.set PC_R11, 0
	.set PC_R12, 8
	.set PC_CTR, 16
	.set PC_HANDLER, 24
	.set PC_EXC_STACK_TOP, 32	/* top of the exception stack: a handler's frame */
	.set PC_EXC_NESTED_TOP, 40	/* top of its nested region: a handler's handler */
	.set PC_TOC, 48
	.set PC_R10, 56
	.set PC_CR, 64
	.set PC_EXC_DEPTH, 72		/* handlers running on this CPU: 0, 1 or 2 */

	/* MSR bits of the interrupted context (SRR1/HSRR1), as rotate amounts that bring the
	 * bit to bit 63 (IBM numbering): HV is bit 3 (1 << 60), PR bit 49 (1 << 14). */
	.set MSR_HV_ROTATE, 4
	.set MSR_PR_ROTATE, 50

	/* TrapFrame layout: an ABI stack frame header (32 bytes), then the saved state. */
	.set TF_GPR, 32			/* 32 x 8 */
	.set TF_CTR, 288
	.set TF_LR, 296
	.set TF_CR, 304
	.set TF_XER, 312
	.set TF_SRR0, 320
	.set TF_SRR1, 328
	.set TF_HSRR0, 336
	.set TF_HSRR1, 344
	.set TF_DAR, 352
	.set TF_DSISR, 360
	.set TF_HDAR, 368
	.set TF_HDSISR, 376
	.set TF_VECTOR, 384
	.set TF_MSR, 392
	.set TF_FPSCR, 400
	.set TF_VSCR, 416		/* 16 bytes, 16-aligned (stvx) */
	.set TF_VSR, 432		/* 64 x 16 bytes: FPRs, VRs and the rest of VSX */
	.set TF_SIZE, 1456		/* a multiple of 16 */

	/* Load a link-time address (the image is linked below 2 GiB, see linker.ld). */
	.macro LOAD_ADDR reg, sym
	lis	\reg, (\sym)@ha
	addi	\reg, \reg, (\sym)@l
	.endm

	/* FIXUP_ENDIAN (skiboot asm/head.S, Linux ppc_asm.h): read big-endian, the first word is
	 * "b .+8" and the words after it are a byte-reversed trampoline that flips MSR[LE] with
	 * rfid; read little-endian, the first word is a harmless tdi and the trampoline is
	 * skipped. Clobbers r10 and r11 only. */
	.macro FIXUP_ENDIAN
	tdi	0,0,0x48
	b	191f
	.long	0xa600607d	/* mfmsr r11 */
	.long	0x01006b69	/* xori r11,r11,1 */
	.long	0x00004039	/* li r10,0 */
	.long	0x6401417d	/* mtmsrd r10,1 */
	.long	0x05009f42	/* bcl 20,31,$+4 */
	.long	0xa602487d	/* mflr r10 */
	.long	0x14004a39	/* addi r10,r10,20 */
	.long	0xa6035a7d	/* mtsrr0 r10 */
	.long	0xa6037b7d	/* mtsrr1 r11 */
	.long	0x2400004c	/* rfid */
191:
	.endm

	/* Continue at \target, in Rust, on the stack in r1 (a fresh 64-byte frame is made) with
	 * the TOC and MSR = current | ME | FP | VEC | VSX | RI, set by rfid: mtmsrd cannot set ME,
	 * and the FP/vector units must be on before any Rust code (core uses VSX). */
	.macro ENTER_RUST target
	li	%r0, 0
	stdu	%r0, -64(%r1)
	LOAD_ADDR %r2, .TOC.
	mfmsr	%r11
	ori	%r11, %r11, MSR_FP_ME_RI_LO
	oris	%r11, %r11, MSR_VEC_VSX_HI
	LOAD_ADDR %r12, \target
	mtspr	SPRN_SRR0, %r12
	mtspr	SPRN_SRR1, %r11
	rfid
	.endm

	/* Save / restore the whole FP, VMX and VSX state (VSR0..63, FPSCR, VSCR) in the trap
	 * frame at r1: PAPR has a hypercall preserve every register outside its volatile GPR
	 * set, and the Rust handler may use any of them. The argument is a scratch GPR. The FP and
	 * vector units must be on. */
	.macro SAVE_FP_VECTOR ptr
	addi	\ptr, %r1, TF_VSR
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63
	stxvd2x	\n, 0, \ptr
	addi	\ptr, \ptr, 16
	.endr
	mffs	0
	stfd	0, TF_FPSCR(%r1)
	mfvscr	0
	addi	\ptr, %r1, TF_VSCR
	stvx	0, 0, \ptr
	.endm

	.macro RESTORE_FP_VECTOR ptr
	addi	\ptr, %r1, TF_VSCR
	lvx	0, 0, \ptr
	mtvscr	0
	lfd	0, TF_FPSCR(%r1)
	mtfsf	0xff, 0
	addi	\ptr, %r1, TF_VSR
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63
	lxvd2x	\n, 0, \ptr
	addi	\ptr, \ptr, 16
	.endr
	.endm
