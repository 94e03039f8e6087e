/* C side of exception entry: per-kind handlers, diagnostics and power-off on failure. */
#include <stdarg.h>

#include "exception.h"
#include "arm.h"
#include "printf.h"
#include "psci.h"
#include "status.h"
#include "util.h"

static exc_handler_t handlers[EXC_FIQ + 1];

exc_handler_t exc_set_handler(int kind, exc_handler_t handler)
{
    exc_handler_t old;

    if (kind < EXC_UNDEF || kind > EXC_FIQ)
        return 0;
    old = handlers[kind];
    handlers[kind] = handler;
    return old;
}

const char *exc_name(int kind)
{
    switch (kind) {
    case EXC_UNDEF: return "undefined instruction";
    case EXC_SVC:   return "supervisor call";
    case EXC_PABT:  return "prefetch abort";
    case EXC_DABT:  return "data abort";
    case EXC_HYP:   return "hyp trap";
    case EXC_IRQ:   return "irq";
    case EXC_FIQ:   return "fiq";
    default:        return "unknown exception";
    }
}

uint32_t exc_insn_size(const struct exc_frame *frame)
{
    uint16_t hw;

    if (!(frame->spsr & CPSR_T))
        return 4;
    /* Thumb: 32-bit encodings start with 0b11101, 0b11110 or 0b11111. */
    hw = *(const uint16_t *)(uintptr_t)frame->pc;
    return (hw >> 11) >= 0x1d ? 4 : 2;
}

static uint32_t svc_immediate(const struct exc_frame *frame)
{
    if (frame->spsr & CPSR_T)
        return *(const uint16_t *)(uintptr_t)(frame->pc - 2) & 0xffu;
    return *(const uint32_t *)(uintptr_t)(frame->pc - 4) & 0xffffffu;
}

void exc_banked_regs(uint32_t mode, uint32_t out[2]);

static void dump(const struct exc_frame *f, int kind)
{
    uint32_t banked[2];
    int i;

    printf("\n*** %s at pc %08x (spsr %08x)\n", exc_name(kind), f->pc, f->spsr);
    if (kind == EXC_DABT)
        printf("*** DFSR %08x DFAR %08x\n", read_dfsr(), read_dfar());
    if (kind == EXC_PABT)
        printf("*** IFSR %08x IFAR %08x\n", read_ifsr(), read_ifar());
    if (kind == EXC_UNDEF && !(f->spsr & CPSR_T))
        printf("*** instruction %08x\n", *(const uint32_t *)(uintptr_t)f->pc);
    for (i = 0; i < 13; i++)
        printf("r%-2d %08x%s", i, f->r[i], (i % 4 == 3) ? "\n" : "  ");
    exc_banked_regs(f->spsr, banked);
    printf("sp  %08x  lr  %08x  (mode %02x)\n", banked[0], banked[1], f->spsr & CPSR_MODE_MASK);
    printf("*** powering off with status %d\n", FW_STATUS_EXCEPTION_BASE + kind);
}

void exc_dispatch(struct exc_frame *frame, int kind)
{
    uint32_t info = 0;

    if (kind == EXC_SVC)
        info = svc_immediate(frame);
    else if (kind == EXC_DABT)
        info = read_dfsr();
    else if (kind == EXC_PABT)
        info = read_ifsr();
    if (kind >= EXC_UNDEF && kind <= EXC_FIQ && handlers[kind]
        && handlers[kind](frame, kind, info))
        return;
    if (kind == EXC_SVC) {
        /* An unknown SVC is not fatal: it returns SMCCC_NOT_SUPPORTED-like -1 in r0. */
        printf("svc: no handler for svc #%x\n", info);
        frame->r[0] = 0xffffffffu;
        return;
    }
    dump(frame, kind);
    psci_system_off(FW_STATUS_EXCEPTION_BASE + (uint32_t)kind);
}

void panic(const char *fmt, ...)
{
    va_list ap;

    printf("\npanic: ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    psci_system_off(FW_STATUS_PANIC);
}
