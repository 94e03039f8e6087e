/* Generic timer (virtual view) and a periodic tick; see timer.h. */
#include "timer.h"
#include "arm.h"
#include "gic.h"

static uint32_t tick_id, tick_period;
static volatile uint64_t ticks;
static tick_fn_t tick_fn;

uint32_t timer_freq(void)
{
    return cp15_read(c14, c0, 0, 0);
}

uint64_t timer_count(void)
{
    isb();
    return cp15_read64(c14, 1);
}

void timer_set_tval(uint32_t t)
{
    cp15_write(c14, c3, 0, 0, t);
}

uint32_t timer_get_ctl(void)
{
    return cp15_read(c14, c3, 0, 1);
}

void timer_set_ctl(uint32_t ctl)
{
    cp15_write(c14, c3, 0, 1, ctl);
    isb();
}

uint64_t timer_us_to_ticks(uint32_t us)
{
    return ((uint64_t)timer_freq() * us + 999999u) / 1000000u;
}

void delay_us(uint32_t us)
{
    uint64_t start = timer_count();
    uint64_t wait = timer_us_to_ticks(us);

    while (timer_count() - start < wait)
        ;
}

static void tick_handler(uint32_t id, void *arg)
{
    /* Re-arm first: TVAL counts from now, so the period is kept up to the handler latency. */
    timer_set_tval(tick_period);
    ticks++;
    if (tick_fn)
        tick_fn(ticks);
}

int timer_tick_start(uint32_t irq_id, uint32_t hz, tick_fn_t fn)
{
    uint32_t freq = timer_freq();

    if (!hz || !freq || hz > freq)
        return -1;
    tick_id = irq_id;
    tick_period = freq / hz;
    tick_fn = fn;
    ticks = 0;
    if (gic_set_handler(irq_id, tick_handler, 0) < 0)
        return -1;
    timer_set_ctl(CNTV_CTL_IMASK);
    timer_set_tval(tick_period);
    if (gic_enable_irq(irq_id, GIC_PRIO_DEFAULT, 1, 0) < 0)
        return -1;
    timer_set_ctl(CNTV_CTL_ENABLE);
    return 0;
}

void timer_tick_stop(void)
{
    timer_set_ctl(CNTV_CTL_IMASK);
    gic_disable_irq(tick_id);
}

uint64_t timer_ticks(void)
{
    return ticks;
}
