/*
 * tcefw low block (.head): the entry at 0x10, the exception vectors and the code that
 * must run from wherever the block sits (physical 0 in bare mode, the link address in
 * payload mode until it is copied to 0).
 *
 * Sources: skiboot asm/head.S (entry, FIXUP_ENDIAN, vector layout), Linux
 * arch/powerpc/include/asm/ppc_asm.h (FIXUP_ENDIAN), arch/powerpc/kernel/exceptions-64s.S,
 * POWER ISA 2.07 Book III chapter 6 (interrupts). Everything here is position-independent:
 * only relative branches inside the block, and absolute targets loaded from symbols.
 */

	.section .head, "ax"
	.globl __head_start
__head_start:
	.space 0x10

/* 0x10: QEMU and skiboot both enter here (or at link address + 0x10), big-endian. */
	.globl _start
_start:
	FIXUP_ENDIAN
	b	boot_low

/* Vector stubs: save %r13 in SPRG1 and %r12 in the per-CPU area, then go to the common
 * path with the vector number in %r12, plus 1 for the interrupts that save the context in
 * HSRR0/1 (hsrr=1; the set platform::fault::uses_hsrr names): the entry code reads the
 * interrupted MSR from there. Five instructions fit every slot, including the 0x20-byte
 * hypervisor slots at 0xE00..0xF80. */
	.macro VECTOR addr, hsrr=0
	. = __head_start + \addr
	mtspr	SPRN_SPRG1, %r13
	mfspr	%r13, SPRN_HSPRG0
	std	%r12, PC_R12(%r13)
	li	%r12, \addr + \hsrr
	b	vector_common
	.endm

	VECTOR 0x100	/* system reset */
	VECTOR 0x200	/* machine check */
	VECTOR 0x300	/* data storage */
	VECTOR 0x380	/* data segment */
	VECTOR 0x400	/* instruction storage */
	VECTOR 0x480	/* instruction segment */
	VECTOR 0x500	/* external */
	VECTOR 0x600	/* alignment */
	VECTOR 0x700	/* program */
	VECTOR 0x800	/* floating-point unavailable */
	VECTOR 0x900	/* decrementer */
	VECTOR 0x980, 1	/* hypervisor decrementer */
	VECTOR 0xa00	/* directed privileged doorbell */
	VECTOR 0xc00	/* system call (sc 1 = hypercall) */
	VECTOR 0xd00	/* trace */
	VECTOR 0xe00, 1	/* hypervisor data storage */
	VECTOR 0xe20, 1	/* hypervisor instruction storage */
	VECTOR 0xe40, 1	/* hypervisor emulation assistance */
	VECTOR 0xe60, 1	/* hypervisor maintenance */
	VECTOR 0xe80, 1	/* directed hypervisor doorbell */
	VECTOR 0xf00	/* performance monitor */
	VECTOR 0xf20	/* vector unavailable */
	VECTOR 0xf40	/* VSX unavailable */
	VECTOR 0xf60	/* facility unavailable */
	VECTOR 0xf80, 1	/* hypervisor facility unavailable */
	VECTOR 0x1500	/* denormalisation */
	VECTOR 0x1600	/* (reserved on P8, caught anyway) */
	VECTOR 0x1700	/* (reserved on P8, caught anyway) */

	. = __head_start + 0x1800
/* %r12 = vector, %r13 = per-CPU area, SPRG1 = interrupted %r13, PC_R12 = interrupted %r12.
 * Saves %r11 and CTR, then jumps to the absolute handler the per-CPU area names. */
vector_common:
	std	%r11, PC_R11(%r13)
	mfctr	%r11
	std	%r11, PC_CTR(%r13)
	ld	%r11, PC_HANDLER(%r13)
	mtctr	%r11
	bctr

/* First code after the endian fix, for every thread that enters. %r3 = FDT, %r8/%r9 = OPAL
 * base/entry under skiboot. One thread wins the boot lock; the others park. */
boot_low:
	bcl	20,31,2f
2:	mflr	%r30
	addi	%r30, %r30, (__head_start - 2b)	/* %r30 = where this block runs now */
	addi	%r4, %r30, (boot_lock - __head_start)
3:	lwarx	%r5, 0, %r4
	cmpwi	%r5, 0
	bne	park_secondary
	li	%r5, 1
	stwcx.	%r5, 0, %r4
	bne-	3b
	isync

	/* Bare mode runs the flat image from 0; move it to its link address. Under skiboot it
	 * already runs at the link address. */
	LOAD_ADDR %r31, __head_start
	cmpld	%r30, %r31
	beq	4f
	LOAD_ADDR %r5, __image_file_end
	subf	%r5, %r31, %r5			/* bytes to copy */
	addi	%r5, %r5, 7
	srdi	%r5, %r5, 3
	mtctr	%r5
	mr	%r6, %r30
	mr	%r7, %r31
5:	ld	%r0, 0(%r6)
	std	%r0, 0(%r7)
	addi	%r6, %r6, 8
	addi	%r7, %r7, 8
	bdnz	5b
	/* Make the copied instructions visible to instruction fetch (Book II 1.8). */
	sync
	mr	%r7, %r31
	LOAD_ADDR %r5, __image_file_end
6:	dcbst	0, %r7
	addi	%r7, %r7, 128
	cmpld	%r7, %r5
	blt	6b
	sync
	mr	%r7, %r31
7:	icbi	0, %r7
	addi	%r7, %r7, 128
	cmpld	%r7, %r5
	blt	7b
	sync
	isync
4:	LOAD_ADDR %r12, boot_linked
	mtctr	%r12
	mr	%r4, %r30				/* %r4 = where the low block ran */
	mr	%r5, %r8				/* %r5/%r6 = OPAL base/entry (junk in bare mode) */
	mr	%r6, %r9
	bctr

/* Secondary threads wait here, by PIR, until a later stage writes an entry address into
 * release_entry (in the copy of this block at physical 0). They leave with %r3 = PIR. */
park_secondary:
	mfspr	%r3, SPRN_PIR
	addi	%r4, %r30, (release_entry - __head_start)
8:	or	1,1,1				/* low SMT priority while spinning */
	ld	%r5, 0(%r4)
	cmpdi	%r5, 0
	beq	8b
	or	2,2,2
	isync
	mtctr	%r5
	bctr

	.balign 8
	.globl boot_lock
boot_lock:
	.long	0
	.long	0
	.globl release_entry
release_entry:
	.quad	0
	.globl __head_end
__head_end:
