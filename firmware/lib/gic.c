/* GICv2 driver and the C side of the IRQ vector; see gic.h. */
#include "gic.h"
#include "arm.h"
#include "exception.h"
#include "printf.h"

#define GICD_CTLR           0x000
#define GICD_TYPER          0x004
#define GICD_ISENABLER      0x100
#define GICD_ICENABLER      0x180
#define GICD_ISPENDR        0x200
#define GICD_ICPENDR        0x280
#define GICD_ICACTIVER      0x380
#define GICD_IPRIORITYR     0x400
#define GICD_ITARGETSR      0x800
#define GICD_ICFGR          0xc00

#define GICC_CTLR           0x00
#define GICC_PMR            0x04
#define GICC_BPR            0x08
#define GICC_IAR            0x0c
#define GICC_EOIR           0x10

#define MAX_HANDLERS        256

static uintptr_t gicd, gicc;
static uint32_t num_irqs;
static uint32_t unhandled;
static struct {
    irq_handler_t fn;
    void *arg;
} handlers[MAX_HANDLERS];

static void byte_write(uintptr_t reg_base, uint32_t id, uint32_t val)
{
    uintptr_t reg = reg_base + (id & ~3u);
    uint32_t shift = (id & 3) * 8;
    uint32_t v = mmio_read32(reg);

    /* Word accesses only: byte accesses to the GIC are optional for some registers. */
    mmio_write32(reg, (v & ~(0xffu << shift)) | ((val & 0xff) << shift));
}

void gic_init(uintptr_t dist_base, uintptr_t cpu_base)
{
    uint32_t i;

    gicd = dist_base;
    gicc = cpu_base;
    mmio_write32(gicd + GICD_CTLR, 0);
    num_irqs = ((mmio_read32(gicd + GICD_TYPER) & 0x1f) + 1) * 32;
    if (num_irqs > GIC_MAX_IRQS)
        num_irqs = GIC_MAX_IRQS;
    for (i = 0; i < num_irqs; i += 32) {
        mmio_write32(gicd + GICD_ICENABLER + i / 8, 0xffffffffu);
        mmio_write32(gicd + GICD_ICPENDR + i / 8, 0xffffffffu);
        mmio_write32(gicd + GICD_ICACTIVER + i / 8, 0xffffffffu);
    }
    for (i = 0; i < num_irqs; i += 4)
        mmio_write32(gicd + GICD_IPRIORITYR + i, GIC_PRIO_DEFAULT * 0x01010101u);
    for (i = 32; i < num_irqs; i += 4)
        mmio_write32(gicd + GICD_ITARGETSR + i, 0x01010101u);
    for (i = 32; i < num_irqs; i += 16)
        mmio_write32(gicd + GICD_ICFGR + i / 4, 0);         /* level-sensitive */
    mmio_write32(gicd + GICD_CTLR, 3);                      /* enable group 0 and 1 */

    mmio_write32(gicc + GICC_PMR, 0xf0);
    mmio_write32(gicc + GICC_BPR, 0);
    mmio_write32(gicc + GICC_CTLR, 3);
}

uint32_t gic_num_irqs(void)
{
    return num_irqs;
}

int gic_set_handler(uint32_t id, irq_handler_t handler, void *arg)
{
    if (id >= MAX_HANDLERS)
        return -1;
    handlers[id].fn = handler;
    handlers[id].arg = arg;
    return 0;
}

int gic_enable_irq(uint32_t id, uint32_t priority, uint32_t target_mask, int edge)
{
    if (!gicd || id >= num_irqs)
        return -1;
    byte_write(gicd + GICD_IPRIORITYR, id, priority);
    if (id >= 32) {
        uintptr_t cfg = gicd + GICD_ICFGR + (id / 16) * 4;
        uint32_t shift = (id % 16) * 2 + 1;
        uint32_t v = mmio_read32(cfg);

        byte_write(gicd + GICD_ITARGETSR, id, target_mask);
        mmio_write32(cfg, edge ? v | (1u << shift) : v & ~(1u << shift));
    }
    mmio_write32(gicd + GICD_ISENABLER + (id / 32) * 4, 1u << (id % 32));
    return 0;
}

void gic_disable_irq(uint32_t id)
{
    if (!gicd || id >= num_irqs)
        return;
    mmio_write32(gicd + GICD_ICENABLER + (id / 32) * 4, 1u << (id % 32));
}

int gic_is_pending(uint32_t id)
{
    if (!gicd || id >= num_irqs)
        return 0;
    return (mmio_read32(gicd + GICD_ISPENDR + (id / 32) * 4) >> (id % 32)) & 1;
}

uint32_t gic_ack(void)
{
    return mmio_read32(gicc + GICC_IAR);
}

void gic_eoi(uint32_t iar)
{
    mmio_write32(gicc + GICC_EOIR, iar);
}

uint32_t gic_unhandled_count(void)
{
    return unhandled;
}

/* Called from the IRQ vector with IRQs masked: serve every pending interrupt. */
void irq_dispatch(void)
{
    if (!gicc)
        return;
    for (;;) {
        uint32_t iar = gic_ack();
        uint32_t id = iar & 0x3ff;

        if (id >= 1020)
            break;
        if (id < MAX_HANDLERS && handlers[id].fn) {
            handlers[id].fn(id, handlers[id].arg);
        } else {
            unhandled++;
            gic_disable_irq(id);
            printf("irq: no handler for interrupt %u, disabled it\n", id);
        }
        gic_eoi(iar);
    }
}
