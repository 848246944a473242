/*
 * tcefw linked entry code: what runs at the link address once the low block has put the
 * image there. It sets up the stack, TOC and MSR, zeroes .bss and enters Rust; it also
 * holds the common exception entry/exit and the OPAL call trampoline.
 *
 * Sources: skiboot asm/head.S (boot_entry, exception entry, opal_entry), Linux
 * arch/powerpc/platforms/powernv/opal-call.c and opal-wrappers.S (OPAL calling convention:
 * %r0 = token, %r2 = OPAL base, MSR[LE] = 0 for the call, return by blr in big-endian),
 * ELFv2 ABI (TOC in %r2, 32-byte minimum stack frame).
 */
	.section .text.boot, "ax"

/* %r3 = FDT, %r4 = where the low block ran, %r5/%r6 = OPAL base/entry (payload mode). */
	.globl boot_linked
boot_linked:
	/* Zero .bss with plain stores: the stack lives there, so nothing may use it yet. */
	LOAD_ADDR %r7, __bss_start
	LOAD_ADDR %r8, __bss_end
	li	%r0, 0
1:	cmpld	%r7, %r8
	bge	2f
	std	%r0, 0(%r7)
	addi	%r7, %r7, 8
	b	1b
2:	LOAD_ADDR %r1, __boot_stack_top
	ENTER_RUST boot_rust

boot_rust:
	LOAD_ADDR %r12, tcefw_boot
	mtctr	%r12
	bctrl
3:	b	3b

/* Secondary threads released from the park loop come here with r3 = PIR. Each takes the
 * next CPU index atomically, and with it its own stack; a thread beyond the last stack stays
 * parked here for good. */
	.globl secondary_linked
secondary_linked:
	LOAD_ADDR %r4, secondary_next_index
1:	lwarx	%r5, 0, %r4
	addi	%r6, %r5, 1
	stwcx.	%r6, 0, %r4
	bne-	1b
	isync
	cmplwi	%r5, SECONDARY_STACKS
	bge	9f
	/* CPU index = slot + 1 (0 is the boot CPU); stack top = base + index * size. */
	addi	%r4, %r5, 1
	LOAD_ADDR %r1, __secondary_stacks
	sldi	%r6, %r4, SECONDARY_STACK_SHIFT
	add	%r1, %r1, %r6
	ENTER_RUST secondary_rust
secondary_rust:
	LOAD_ADDR %r12, tcefw_secondary
	mtctr	%r12
	bctrl
9:	or	1,1,1
	b	9b

	.section .data
	.balign 8
secondary_next_index:
	.long	0
	.long	0
	.section .text.boot, "ax"

/*
 * Common exception entry. On arrival: %r12 = vector, %r13 = per-CPU area,
 * SPRG1 = interrupted %r13, PC_R12/PC_R11/PC_CTR = interrupted %r12/%r11/CTR.
 *
 * The stack comes from the per-CPU area and the interrupted MSR, never from the interrupted
 * %r1: once partitions run, %r1 is theirs. The exception stack has two regions: the handler
 * of an interrupt from outside any handler takes the top one; the handler of an interrupt in
 * our own hypervisor code while a handler runs (a fault inside a handler, depth 1) takes the
 * nested one below it. Nothing deeper is served: a fault in a nested handler stops this CPU.
 * An interrupt from a partition (MSR[HV] = 0) or from problem state cannot come from inside a
 * handler, so it takes the top region whatever the depth says.
 */
	.globl exception_entry
exception_entry:
	/* Two scratch registers, and CR before the first compare changes it. */
	std	%r10, PC_R10(%r13)
	mfcr	%r10
	std	%r10, PC_CR(%r13)
	/* The interrupted MSR: HSRR1 when the stub marked the vector (bit 0, head.S), else
	 * SRR1; then the vector number proper. */
	andi.	%r11, %r12, 1
	mfspr	%r10, SPRN_SRR1
	beq	2f
	mfspr	%r10, SPRN_HSRR1
	xori	%r12, %r12, 1
2:	/* %r11 = MSR[HV] & ~MSR[PR]: the interrupted code is this hypervisor's. */
	rldicl	%r11, %r10, MSR_HV_ROTATE, 63
	rldicl	%r10, %r10, MSR_PR_ROTATE, 63
	andc.	%r11, %r11, %r10
	beq	3f				/* a partition or problem state: top region */
	ld	%r11, PC_EXC_DEPTH(%r13)
	cmpldi	%r11, 0
	beq	3f				/* our code outside any handler: top region */
	cmpldi	%r11, 1
	bne	exception_stop			/* a fault in a nested handler: no stack left */
	ld	%r11, PC_EXC_NESTED_TOP(%r13)
	li	%r10, 2
	b	4f
3:	ld	%r11, PC_EXC_STACK_TOP(%r13)
	li	%r10, 1
4:	std	%r10, PC_EXC_DEPTH(%r13)
	addi	%r11, %r11, -TF_SIZE
	/* %r11 = frame. Save GPRs. */
	.irp n, 0,1,2,3,4,5,6,7,8,9
	std	%r\n, TF_GPR+\n*8(%r11)
	.endr
	ld	%r10, PC_R10(%r13)
	std	%r10, TF_GPR+10*8(%r11)
	ld	%r10, PC_R11(%r13)
	std	%r10, TF_GPR+11*8(%r11)
	ld	%r10, PC_R12(%r13)
	std	%r10, TF_GPR+12*8(%r11)
	mfspr	%r10, SPRN_SPRG1
	std	%r10, TF_GPR+13*8(%r11)
	.irp n, 14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	std	%r\n, TF_GPR+\n*8(%r11)
	.endr
	ld	%r10, PC_CTR(%r13)
	std	%r10, TF_CTR(%r11)
	mflr	%r10
	std	%r10, TF_LR(%r11)
	ld	%r10, PC_CR(%r13)
	std	%r10, TF_CR(%r11)
	mfxer	%r10
	std	%r10, TF_XER(%r11)
	mfspr	%r10, SPRN_SRR0
	std	%r10, TF_SRR0(%r11)
	mfspr	%r10, SPRN_SRR1
	std	%r10, TF_SRR1(%r11)
	mfspr	%r10, SPRN_HSRR0
	std	%r10, TF_HSRR0(%r11)
	mfspr	%r10, SPRN_HSRR1
	std	%r10, TF_HSRR1(%r11)
	mfspr	%r10, SPRN_DAR
	std	%r10, TF_DAR(%r11)
	mfspr	%r10, SPRN_DSISR
	std	%r10, TF_DSISR(%r11)
	mfspr	%r10, SPRN_HDAR
	std	%r10, TF_HDAR(%r11)
	mfspr	%r10, SPRN_HDSISR
	std	%r10, TF_HDSISR(%r11)
	std	%r12, TF_VECTOR(%r11)
	mfmsr	%r10
	std	%r10, TF_MSR(%r11)
	/* A back chain to the interrupted frame, so a debugger can walk through. */
	std	%r1, 0(%r11)
	mr	%r1, %r11
	ld	%r2, PC_TOC(%r13)
	/* The handler is Rust: turn the FP and vector units on (mtmsrd L=0 may set them). */
	ori	%r10, %r10, MSR_FP_ME_RI_LO
	oris	%r10, %r10, MSR_VEC_VSX_HI
	mtmsrd	%r10
	isync
	SAVE_FP_VECTOR %r3
	addi	%r3, %r1, 0
	LOAD_ADDR %r12, tcefw_exception
	mtctr	%r12
	bctrl
	/* Returns with %r3 = 1 to leave by hrfid (HSRR0/1), 0 for rfid (SRR0/1). The handler may
	 * have changed the frame (hcall results, a skipped instruction). cr0 holds that choice
	 * until the final branch, so CR itself is restored last. */
	RESTORE_FP_VECTOR %r11
	mr	%r11, %r1
	ld	%r10, TF_MSR(%r11)
	mtmsrd	%r10				/* FP/vector units back off */
	isync
	cmpdi	%r3, 0
	beq	2f
	ld	%r10, TF_HSRR0(%r11)
	mtspr	SPRN_HSRR0, %r10
	ld	%r10, TF_HSRR1(%r11)
	mtspr	SPRN_HSRR1, %r10
	b	3f
2:	ld	%r10, TF_SRR0(%r11)
	mtspr	SPRN_SRR0, %r10
	ld	%r10, TF_SRR1(%r11)
	mtspr	SPRN_SRR1, %r10
3:	ld	%r10, TF_CTR(%r11)
	mtctr	%r10
	ld	%r10, TF_LR(%r11)
	mtlr	%r10
	ld	%r10, TF_XER(%r11)
	mtxer	%r10
	/* This handler is done (%r13 is still the per-CPU area; it is restored below). */
	ld	%r10, PC_EXC_DEPTH(%r13)
	addi	%r10, %r10, -1
	std	%r10, PC_EXC_DEPTH(%r13)
	/* Every GPR but r11 (the frame) and r12 (the return kind's scratch). */
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	ld	%r\n, TF_GPR+\n*8(%r11)
	.endr
	ld	%r12, TF_CR(%r11)
	beq	4f
	mtcr	%r12
	ld	%r12, TF_GPR+12*8(%r11)
	ld	%r11, TF_GPR+11*8(%r11)
	hrfid
4:	mtcr	%r12
	ld	%r12, TF_GPR+12*8(%r11)
	ld	%r11, TF_GPR+11*8(%r11)
	rfid

/* A fault while a nested handler runs: its stack is the last one, and the fault report is
 * what faulted. Stop this CPU quietly (the run's watchdog or timeout ends it). */
exception_stop:
	or	1,1,1
	b	exception_stop

/*
 * u64 opal_call_raw(u64 a0, a1, a2, a3, u64 token, u64 opal_base, u64 opal_entry)
 * Calls OPAL big-endian with the MMU off, and comes back little-endian. OPAL keeps %r1 and
 * returns with blr; it preserves the non-volatile registers we rely on (%r13..%r31).
 */
	.globl opal_call_raw
opal_call_raw:
	mflr	%r0
	std	%r0, 16(%r1)
	mfcr	%r12
	std	%r12, 8(%r1)
	stdu	%r1, -64(%r1)
	std	%r2, 24(%r1)
	/* skiboot uses the HSPRGs for itself: keep our per-CPU pointer across the call. */
	mfspr	%r12, SPRN_HSPRG0
	std	%r12, 40(%r1)
	mr	%r0, %r7				/* token */
	mr	%r2, %r8				/* OPAL base */
	mtspr	SPRN_HSRR0, %r9			/* OPAL entry */
	mfmsr	%r11
	std	%r11, 32(%r1)			/* our MSR, restored on return */
	li	%r12, 1
	andc	%r11, %r11, %r12			/* MSR[LE] = 0 for OPAL, the rest unchanged */
	mtspr	SPRN_HSRR1, %r11
	bl	1f
1:	mflr	%r12
	addi	%r12, %r12, (opal_return - 1b)
	mtlr	%r12
	hrfid

opal_return:
	/* OPAL returns here big-endian: flip back to little-endian first. */
	FIXUP_ENDIAN
	ld	%r11, 32(%r1)
	mtmsrd	%r11				/* FP/vector bits as before the call */
	isync
	ld	%r12, 40(%r1)
	mtspr	SPRN_HSPRG0, %r12
	ld	%r2, 24(%r1)
	addi	%r1, %r1, 64
	ld	%r12, 8(%r1)
	mtcr	%r12
	ld	%r0, 16(%r1)
	mtlr	%r0
	blr

/*
 * u64 vector_hypercall_probe(u64 opcode, const u128 in[64], u128 out[64])
 * For the in-image test of PAPR register preservation: loads VSR0..63 from `in`, makes
 * `sc 1` with r3 = opcode and zero arguments, stores VSR0..63 to `out`, and returns r3.
 * Keeps the ELFv2 non-volatile FPRs (f14..f31) and VRs (v20..v31) it overwrites.
 */
	.globl vector_hypercall_probe
vector_hypercall_probe:
	mflr	%r0
	std	%r0, 16(%r1)
	stdu	%r1, -512(%r1)
	std	%r5, 496(%r1)
	.irp n, 14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	stfd	\n, (32 + (\n - 14) * 8)(%r1)
	.endr
	addi	%r6, %r1, 192
	.irp n, 20,21,22,23,24,25,26,27,28,29,30,31
	stvx	\n, 0, %r6
	addi	%r6, %r6, 16
	.endr
	mr	%r6, %r4
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63
	lxvd2x	\n, 0, %r6
	addi	%r6, %r6, 16
	.endr
	li	%r4, 0
	li	%r5, 0
	li	%r6, 0
	li	%r7, 0
	sc	1
	ld	%r6, 496(%r1)
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33,34,35,36,37,38,39,40,41,42,43,44,45,46,47,48,49,50,51,52,53,54,55,56,57,58,59,60,61,62,63
	stxvd2x	\n, 0, %r6
	addi	%r6, %r6, 16
	.endr
	addi	%r6, %r1, 192
	.irp n, 20,21,22,23,24,25,26,27,28,29,30,31
	lvx	\n, 0, %r6
	addi	%r6, %r6, 16
	.endr
	.irp n, 14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	lfd	\n, (32 + (\n - 14) * 8)(%r1)
	.endr
	addi	%r1, %r1, 512
	ld	%r0, 16(%r1)
	mtlr	%r0
	blr

/*
 * u64 r1_hypercall_probe(u64 opcode, u64 r1, u64 after[2])
 * For the in-image test of exception entry: makes `sc 1` with r3 = opcode, zero arguments,
 * %r1 = the given value (a hostile partition's stack pointer) and CR = 0x2468ace1; stores
 * the %r1 and the CR the call came back with to after[0] and after[1], and returns r3 on the
 * real stack. Keeps the caller's CR (its non-volatile fields).
 */
	.globl r1_hypercall_probe
r1_hypercall_probe:
	mflr	%r0
	std	%r0, 16(%r1)
	mfcr	%r0
	std	%r0, 8(%r1)
	stdu	%r1, -64(%r1)
	std	%r5, 32(%r1)
	std	%r14, 40(%r1)
	mr	%r14, %r1			/* the real stack, in a register the call keeps */
	lis	%r0, 0x2468
	ori	%r0, %r0, 0xace1
	mtcrf	0xff, %r0
	mr	%r1, %r4
	li	%r4, 0
	li	%r5, 0
	li	%r6, 0
	li	%r7, 0
	sc	1
	mr	%r4, %r1
	mr	%r1, %r14
	mfcr	%r6
	ld	%r5, 32(%r1)
	std	%r4, 0(%r5)
	std	%r6, 8(%r5)
	ld	%r14, 40(%r1)
	addi	%r1, %r1, 64
	ld	%r0, 8(%r1)
	mtcrf	0xff, %r0
	ld	%r0, 16(%r1)
	mtlr	%r0
	blr
