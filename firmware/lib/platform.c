/* Device tree discovery shared by every program; see platform.h. */
#include "platform.h"
#include "fdt.h"
#include "gic.h"
#include "smccc.h"
#include "timer.h"
#include "uart.h"
#include "util.h"

static struct platform *current;

static const char *const gic_compatibles[] = {
    "arm,cortex-a15-gic", "arm,gic-400", "arm,cortex-a9-gic", "arm,cortex-a7-gic",
    "arm,arm11mp-gic", "arm,pl390",
};

/* The stdout-path node ("serial0:115200n8", "/pl011@9000000"), if it is a PL011. */
static int stdout_uart(const void *dtb)
{
    char path[128];
    int chosen = fdt_path_offset(dtb, "/chosen");
    int len, n, node;
    const char *p;

    if (chosen < 0)
        return FDT_ERR_NOTFOUND;
    p = fdt_getprop(dtb, chosen, "stdout-path", &len);
    if (!p)
        p = fdt_getprop(dtb, chosen, "linux,stdout-path", &len);
    if (!p || len < 2)
        return FDT_ERR_NOTFOUND;
    for (n = 0; n < len && p[n] && p[n] != ':' && n < (int)sizeof(path) - 1; n++)
        path[n] = p[n];
    path[n] = '\0';
    node = fdt_path_offset(dtb, path);
    if (node < 0 || !fdt_node_check_compatible(dtb, node, "arm,pl011"))
        return FDT_ERR_NOTFOUND;
    return node;
}

int platform_init(const void *dtb, struct platform *out)
{
    static struct platform storage;
    int err, node, len;
    uint64_t a, s;
    const char *str;
    size_t i;

    if (!out)
        out = &storage;
    memset(out, 0, sizeof(*out));
    out->dtb = dtb;
    out->model = "";
    out->timer_irq = TIMER_VIRT_PPI_DEFAULT;
    out->conduit = SMCCC_CONDUIT_HVC;
    err = fdt_check_header(dtb);
    if (err < 0)
        return err;
    out->dtb_size = fdt_totalsize(dtb);
    str = fdt_getprop(dtb, 0, "model", &len);
    if (str && len > 0)
        out->model = str;

    while (fdt_memory_bank(dtb, out->num_banks, &a, &s) >= 0) {
        if (out->num_banks == 0) {
            out->ram_base = a;
            out->ram_size = s;
        }
        out->num_banks++;
    }

    node = stdout_uart(dtb);
    out->uart_from_stdout_path = node >= 0;
    if (node < 0)
        node = fdt_node_offset_by_compatible(dtb, -1, "arm,pl011");
    if (node >= 0 && fdt_get_reg(dtb, node, 0, &a, 0) == 0)
        out->uart_base = (uintptr_t)a;
    uart_init(out->uart_base);

    for (i = 0; i < ARRAY_SIZE(gic_compatibles); i++) {
        node = fdt_node_offset_by_compatible(dtb, -1, gic_compatibles[i]);
        if (node >= 0)
            break;
    }
    if (node >= 0 && fdt_get_reg(dtb, node, 0, &a, 0) == 0
        && fdt_get_reg(dtb, node, 1, &s, 0) == 0) {
        out->gicd_base = (uintptr_t)a;
        out->gicc_base = (uintptr_t)s;
        gic_init(out->gicd_base, out->gicc_base);
    }

    node = fdt_node_offset_by_compatible(dtb, -1, "arm,armv7-timer");
    if (node >= 0) {
        struct fdt_irq irq;

        /* interrupts: secure phys, non-secure phys, virtual, hyp. */
        if (fdt_get_interrupt(dtb, node, 2, &irq) == 0 && irq.type == FDT_IRQ_TYPE_PPI)
            out->timer_irq = irq.id;
    }
    out->timer_freq = timer_freq();
    if (!out->timer_freq && node >= 0)
        out->timer_freq = fdt_getprop_u32(dtb, node, "clock-frequency", 0);

    node = fdt_path_offset(dtb, "/psci");
    if (node < 0)
        node = fdt_node_offset_by_compatible(dtb, -1, "arm,psci-0.2");
    if (node >= 0) {
        out->has_psci_node = 1;
        str = fdt_getprop(dtb, node, "method", &len);
        if (str && len >= 4 && !strcmp(str, "smc"))
            out->conduit = SMCCC_CONDUIT_SMC;
    }
    smccc_set_conduit(out->conduit);
    current = out;
    return 0;
}

const struct platform *platform(void)
{
    return current;
}
