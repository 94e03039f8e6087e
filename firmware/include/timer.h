/*
 * ARMv7 generic timer, virtual view (CNTVCT, CNTV_TVAL, CNTV_CTL). Only TVAL is written to
 * arm the timer. The periodic tick uses the virtual timer PPI (ID 27 unless the device tree's
 * "arm,armv7-timer" node says otherwise) through the GIC.
 */
#ifndef FW_TIMER_H
#define FW_TIMER_H

#include <stdint.h>

#define TIMER_VIRT_PPI_DEFAULT  27u

#define CNTV_CTL_ENABLE   (1u << 0)
#define CNTV_CTL_IMASK    (1u << 1)
#define CNTV_CTL_ISTATUS  (1u << 2)

typedef void (*tick_fn_t)(uint64_t ticks);

uint32_t timer_freq(void);            /* CNTFRQ, Hz */
uint64_t timer_count(void);           /* CNTVCT */
void timer_set_tval(uint32_t ticks);
uint32_t timer_get_ctl(void);
void timer_set_ctl(uint32_t ctl);

/* Busy-wait on the counter. */
void delay_us(uint32_t us);
uint64_t timer_us_to_ticks(uint32_t us);

/*
 * Periodic tick of `hz` on the virtual timer PPI `irq_id` (needs gic_init() first); fn (may be
 * NULL) is called from the IRQ handler with the number of ticks so far.
 */
int timer_tick_start(uint32_t irq_id, uint32_t hz, tick_fn_t fn);
void timer_tick_stop(void);
uint64_t timer_ticks(void);

#endif /* FW_TIMER_H */
