/*
 * Exception entry shared by every program: lib/start.S saves the interrupted state into a
 * struct exc_frame on the mode's own stack and calls exc_dispatch(). A program may register a
 * handler per exception kind; a handler returns nonzero when it dealt with the exception, and
 * the (possibly edited) frame is then restored. Unhandled undefined instructions, aborts and
 * FIQs print a diagnostic and power the system off with FW_STATUS_EXCEPTION_BASE + kind.
 */
#ifndef FW_EXCEPTION_H
#define FW_EXCEPTION_H

/* Exception kinds: the vector slot number (offset / 4). Used by start.S too. */
#define EXC_UNDEF   1
#define EXC_SVC     2
#define EXC_PABT    3
#define EXC_DABT    4
#define EXC_HYP     5
#define EXC_IRQ     6
#define EXC_FIQ     7

/* Layout of struct exc_frame, for start.S. */
#define EXC_FRAME_SPSR   0
#define EXC_FRAME_R0     8
#define EXC_FRAME_PC     60
#define EXC_FRAME_SIZE   64

#ifndef __ASSEMBLY__
#include <stdint.h>

/*
 * Saved state. pc is the preferred return address: the faulting instruction for undefined
 * instructions and aborts, the instruction after SVC. A handler that wants to skip the
 * faulting instruction adds its size (4 in ARM state, see exc_insn_size()).
 */
struct exc_frame {
    uint32_t spsr;
    uint32_t pad;
    uint32_t r[13];
    uint32_t pc;
};

/* info: the SVC immediate for EXC_SVC, the fault status (DFSR/IFSR) for aborts, else 0. */
typedef int (*exc_handler_t)(struct exc_frame *frame, int kind, uint32_t info);

/* Install (or with NULL remove) the handler for one kind; returns the previous one. */
exc_handler_t exc_set_handler(int kind, exc_handler_t handler);

/* Size of the instruction at frame->pc (2 or 4), for handlers that skip it. */
uint32_t exc_insn_size(const struct exc_frame *frame);

/* Name of an exception kind, for messages. */
const char *exc_name(int kind);

/* Called from start.S; not for programs. */
void exc_dispatch(struct exc_frame *frame, int kind);
void irq_dispatch(void);

#endif
#endif /* FW_EXCEPTION_H */
