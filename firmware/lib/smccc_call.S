/*
 * smccc_hvc / smccc_smc(fid, a1, a2, a3, a4, a5, a6, a7, res): AAPCS puts fid..a3 in r0-r3
 * and a4..a7, res on the stack; the call wants them in r0-r7 and returns r0-r3.
 */
    .syntax unified
    .arm
    .arch_extension sec
    .arch_extension virt

.macro smccc_stub name, insn
    .section .text.\name, "ax"
    .global \name
    .type \name, %function
\name:
    push    {r4-r7}
    ldr     r4, [sp, #16]
    ldr     r5, [sp, #20]
    ldr     r6, [sp, #24]
    ldr     r7, [sp, #28]
    \insn   #0
    ldr     r12, [sp, #32]
    stm     r12, {r0-r3}
    pop     {r4-r7}
    bx      lr
    .size \name, . - \name
.endm

    smccc_stub smccc_hvc, hvc
    smccc_stub smccc_smc, smc
