/*
 * GICv2 distributor and CPU interface (single CPU, no security extension assumed: every
 * interrupt is Group 0 and signalled as IRQ). IDs: SGI 0-15, PPI 16-31, SPI 32+.
 */
#ifndef FW_GIC_H
#define FW_GIC_H

#include <stdint.h>

#define GIC_SPURIOUS        1023u
#define GIC_PRIO_DEFAULT    0xa0u
#define GIC_MAX_IRQS        1020u

typedef void (*irq_handler_t)(uint32_t id, void *arg);

/* Reset the distributor and this CPU's interface, all interrupts disabled. */
void gic_init(uintptr_t dist_base, uintptr_t cpu_base);
/* Number of interrupt IDs the distributor implements (GICD_TYPER). */
uint32_t gic_num_irqs(void);

/* Install a handler, set priority, target (SPIs; bit n = CPU n) and trigger, and enable. */
int gic_enable_irq(uint32_t id, uint32_t priority, uint32_t target_mask, int edge);
void gic_disable_irq(uint32_t id);
int gic_set_handler(uint32_t id, irq_handler_t handler, void *arg);
int gic_is_pending(uint32_t id);

/* Acknowledge (returns GICC_IAR; ID in bits 9:0) and end of interrupt. */
uint32_t gic_ack(void);
void gic_eoi(uint32_t iar);

/* Interrupts that arrived with no handler (they get disabled). */
uint32_t gic_unhandled_count(void);

#endif /* FW_GIC_H */
