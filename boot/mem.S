/*
 * memcpy, memmove, memset, memcmp and bcmp for the prebuilt `core`, which calls them but
 * does not define them on a -linux-gnu target. Written in assembly so that the compiler
 * cannot turn their loops back into calls to themselves. Simple doubleword loops when both
 * pointers are 8-byte aligned, bytes otherwise (ELFv2 ABI: %r3..%r5 in, %r3 out).
 */
	.section .text.mem, "ax"

	.globl memcpy
memcpy:
	mr	%r6, %r3
	or	%r7, %r3, %r4
	andi.	%r7, %r7, 7
	bne	2f
1:	cmpldi	%r5, 8
	blt	2f
	ld	%r0, 0(%r4)
	std	%r0, 0(%r6)
	addi	%r4, %r4, 8
	addi	%r6, %r6, 8
	addi	%r5, %r5, -8
	b	1b
2:	cmpldi	%r5, 0
	beqlr
	mtctr	%r5
3:	lbz	%r0, 0(%r4)
	stb	%r0, 0(%r6)
	addi	%r4, %r4, 1
	addi	%r6, %r6, 1
	bdnz	3b
	blr

	.globl memmove
memmove:
	cmpld	%r3, %r4
	ble	memcpy			/* forward copy is safe when dst <= src */
	add	%r6, %r4, %r5
	cmpld	%r3, %r6
	bge	memcpy			/* no overlap */
	cmpldi	%r5, 0
	beqlr
	add	%r4, %r4, %r5
	add	%r6, %r3, %r5
	mtctr	%r5
1:	lbzu	%r0, -1(%r4)
	stbu	%r0, -1(%r6)
	bdnz	1b
	blr

	.globl memset
memset:
	mr	%r6, %r3
	rlwinm	%r4, %r4, 0, 24, 31
	andi.	%r7, %r3, 7
	bne	2f
	/* Replicate the byte into a doubleword. */
	rldimi	%r4, %r4, 8, 48
	rldimi	%r4, %r4, 16, 32
	rldimi	%r4, %r4, 32, 0
1:	cmpldi	%r5, 8
	blt	2f
	std	%r4, 0(%r6)
	addi	%r6, %r6, 8
	addi	%r5, %r5, -8
	b	1b
2:	cmpldi	%r5, 0
	beqlr
	mtctr	%r5
3:	stb	%r4, 0(%r6)
	addi	%r6, %r6, 1
	bdnz	3b
	blr

	.globl memcmp
	.globl bcmp
memcmp:
bcmp:
	cmpldi	%r5, 0
	beq	2f
	mtctr	%r5
1:	lbz	%r6, 0(%r3)
	lbz	%r7, 0(%r4)
	subf.	%r8, %r7, %r6
	bne	3f
	addi	%r3, %r3, 1
	addi	%r4, %r4, 1
	bdnz	1b
2:	li	%r3, 0
	blr
3:	extsw	%r3, %r8
	blr
