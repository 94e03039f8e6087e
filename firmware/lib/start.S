/*
 * Reset entry, exception vectors and exception entry/exit for every program.
 *
 * Boot protocol (Linux ARM): r0 = 0, r1 = ~0, r2 = physical address of the FDT, SVC mode,
 * MMU and D-cache off. If r2 does not point at an FDT (magic 0xd00dfeed) the DTB is assumed at
 * the start of RAM, where QEMU's virt machine puts it for bare-metal ELF images.
 *
 * A start in Hyp mode drops to SVC first. main(dtb) runs in SVC mode with IRQs masked; its
 * return value becomes the exit status of PSCI SYSTEM_OFF.
 */
#include "arm.h"
#include "exception.h"
#include "psci.h"
#include "smccc.h"
#include "status.h"

    .syntax unified
    .arm
    .arch_extension sec
    .arch_extension virt

#define SVC_STACK_SIZE  0x4000
#define IRQ_STACK_SIZE  0x1000
#define ABT_STACK_SIZE  0x1000
#define UND_STACK_SIZE  0x1000
#define FIQ_STACK_SIZE  0x400

/* FDT magic 0xd00dfeed as a little-endian load sees it. */
#define FDT_MAGIC_LE    0xedfe0dd0

    .section .text.start, "ax"
    .global _start
    .type _start, %function
_start:
    cpsid   aif
    mov     r4, r2

    /*
     * Started in Hyp mode (a loader with the virtualization extensions, e.g. QEMU's
     * virt,virtualization=on): give PL1 the timers with a zero virtual offset and drop to SVC.
     */
    mrs     r0, cpsr
    and     r0, r0, #CPSR_MODE_MASK
    cmp     r0, #CPSR_MODE_HYP
    bne     0f
    mov     r0, #0
    mov     r1, #0
    mcr     p15, 4, r0, c1, c1, 0       /* HCR: no traps */
    mcrr    p15, 4, r0, r1, c14         /* CNTVOFF = 0 */
    mov     r0, #3
    mcr     p15, 4, r0, c14, c1, 0      /* CNTHCTL: PL1 may use the physical counter/timer */
    ldr     r0, =0f
    msr     elr_hyp, r0
    mov     r0, #(CPSR_MODE_SVC | CPSR_I | CPSR_F | CPSR_A)
    msr     spsr_cxsf, r0             /* SPSR_hyp (banked access is Monitor-only) */
    eret
0:
    tst     r4, #3                      /* an FDT is at least 4-byte aligned */
    bne     1f
    cmp     r4, #0
    beq     1f
    ldr     r3, [r4]
    ldr     r5, =FDT_MAGIC_LE
    cmp     r3, r5
    beq     2f
1:  ldr     r4, =RAM_BASE_DEFAULT
2:
    /* MMU, caches and alignment checks off; exceptions through VBAR (V = 0), ARM state. */
    mrc     p15, 0, r0, c1, c0, 0
    bic     r0, r0, #(SCTLR_M | SCTLR_A | SCTLR_C)
    bic     r0, r0, #(SCTLR_I | SCTLR_V)
    bic     r0, r0, #(SCTLR_TE | SCTLR_TRE | SCTLR_AFE)
    mcr     p15, 0, r0, c1, c0, 0
    isb
    ldr     r0, =__vectors
    mcr     p15, 0, r0, c12, c0, 0
    isb

    /* One stack per exception mode, then back to SVC. */
    cps     #CPSR_MODE_IRQ
    ldr     sp, =__stack_irq_top
    cps     #CPSR_MODE_ABT
    ldr     sp, =__stack_abt_top
    cps     #CPSR_MODE_UND
    ldr     sp, =__stack_und_top
    cps     #CPSR_MODE_FIQ
    ldr     sp, =__stack_fiq_top
    cps     #CPSR_MODE_SVC
    ldr     sp, =__stack_svc_top

    /* Clear .bss (8-byte aligned at both ends by the linker script). */
    ldr     r0, =__bss_start
    ldr     r1, =__bss_end
    mov     r2, #0
    mov     r3, #0
3:  cmp     r0, r1
    strdlo  r2, r3, [r0], #8
    blo     3b

    mov     r0, r4
    bl      main
    mov     r1, r0
    ldr     r0, =PSCI_0_2_FN_SYSTEM_OFF
    bl      fw_power_off
    .size _start, . - _start
    .ltorg

/*
 * fw_power_off(fid, status): r0 = PSCI SYSTEM_OFF function ID, r1 = exit status. Calls it
 * over the configured SMCCC conduit with interrupts masked; never returns.
 */
    .section .text.fw_power_off, "ax"
    .global fw_power_off
    .type fw_power_off, %function
fw_power_off:
    cpsid   if
    ldr     r2, =smccc_conduit
    ldr     r2, [r2]
    cmp     r2, #SMCCC_CONDUIT_SMC
    beq     1f
    hvc     #0
    b       2f
1:  smc     #0
2:  wfi
    b       2b
    .size fw_power_off, . - fw_power_off
    .ltorg

/*
 * exc_banked_regs(mode, out): out[0] = SP, out[1] = LR of `mode` (USR reads as SYS), for
 * diagnostics. Runs with IRQs and FIQs masked while in the other mode.
 */
    .section .text.exc_banked_regs, "ax"
    .global exc_banked_regs
    .type exc_banked_regs, %function
exc_banked_regs:
    and     r0, r0, #CPSR_MODE_MASK
    cmp     r0, #CPSR_MODE_USR
    moveq   r0, #CPSR_MODE_SYS
    mrs     r2, cpsr
    bic     r3, r2, #CPSR_MODE_MASK
    orr     r3, r3, r0
    orr     r3, r3, #(CPSR_I | CPSR_F)
    msr     cpsr_c, r3
    str     sp, [r1]
    str     lr, [r1, #4]
    msr     cpsr_c, r2
    bx      lr
    .size exc_banked_regs, . - exc_banked_regs

/* Exception vectors. VBAR needs 32-byte alignment. */
    .section .vectors, "ax"
    .balign 32
    .global __vectors
__vectors:
    b       _start                      /* reset */
    b       vec_undef
    b       vec_svc
    b       vec_pabt
    b       vec_dabt
    b       vec_hyp
    b       vec_irq
    b       vec_fiq

/*
 * Save r0-r12, the return address (adjusted to the preferred return address) and SPSR as a
 * struct exc_frame (64 bytes, keeps the stack 8-byte aligned), call exc_dispatch(frame, kind),
 * restore the possibly edited frame and return.
 */
.macro exc_push
    push    {r0-r12, lr}
    sub     sp, sp, #8
    mrs     r0, spsr
    str     r0, [sp, #EXC_FRAME_SPSR]
.endm

.macro exc_call kind
    mov     r0, sp
    mov     r1, #\kind
    bl      exc_dispatch
    b       exc_restore
.endm

vec_undef:
    /* LR = instruction + 4 (ARM) or + 2 (Thumb); the frame gets the instruction itself. */
    exc_push
    ldr     r1, [sp, #EXC_FRAME_PC]
    tst     r0, #CPSR_T
    subne   r1, r1, #2
    subeq   r1, r1, #4
    str     r1, [sp, #EXC_FRAME_PC]
    exc_call EXC_UNDEF

vec_svc:
    exc_push
    exc_call EXC_SVC

vec_pabt:
    sub     lr, lr, #4
    exc_push
    exc_call EXC_PABT

vec_dabt:
    sub     lr, lr, #8
    exc_push
    exc_call EXC_DABT

vec_hyp:
    exc_push
    exc_call EXC_HYP

vec_fiq:
    sub     lr, lr, #4
    exc_push
    exc_call EXC_FIQ

exc_restore:
    ldr     r0, [sp, #EXC_FRAME_SPSR]
    msr     spsr_cxsf, r0
    add     sp, sp, #8
    ldm     sp!, {r0-r12, pc}^

/* IRQ: caller-saved registers only; the C dispatcher preserves the rest. */
vec_irq:
    sub     lr, lr, #4
    push    {r0-r3, r12, lr}
    bl      irq_dispatch
    ldm     sp!, {r0-r3, r12, pc}^

/* Stacks: NOLOAD, 8-byte aligned tops. */
    .section .stacks, "aw", %nobits
    .balign 16
    .space  SVC_STACK_SIZE
    .global __stack_svc_top
__stack_svc_top:
    .space  IRQ_STACK_SIZE
    .global __stack_irq_top
__stack_irq_top:
    .space  ABT_STACK_SIZE
    .global __stack_abt_top
__stack_abt_top:
    .space  UND_STACK_SIZE
    .global __stack_und_top
__stack_und_top:
    .space  FIQ_STACK_SIZE
    .global __stack_fiq_top
__stack_fiq_top:
