/*
 * selftest: checks the firmware library on a real or emulated board, with the MMU and caches
 * on: device tree discovery, PSCI, the linear map and virt_to_phys, cache maintenance, a
 * DMA-coherent uncached mapping, SVC / undefined instruction / data abort round trips and
 * five timer interrupts through the GIC. Prints one line per check and "selftest: PASS",
 * and powers off with status 0 (FW_STATUS_FAIL if any check failed).
 */
#include <stdarg.h>

#include "fw.h"
#include "testtree.h"

static int checks, failures;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int ok, const char *fmt, ...)
{
    va_list ap;

    checks++;
    if (!ok)
        failures++;
    printf("  [%s] ", ok ? " ok " : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

/* ---- printf ---------------------------------------------------------------------------- */

static void test_printf(void)
{
    char buf[96];
    int n;

    printf("printf:\n");
    n = snprintf(buf, sizeof(buf), "%08x|%-4s|%llx|%d|%u|%c|%5d|%p|%X|%%", 0xbeefu, "ab",
                 0x123456789abcdefull, -42, 4000000000u, 'z', -7, (void *)0x40200000, 0xabcu);
    check(!strcmp(buf, "0000beef|ab  |123456789abcdef|-42|4000000000|z|   -7|0x40200000|ABC|%"),
          "snprintf formats: %s", buf);
    check(n == (int)strlen(buf), "snprintf returns the length (%d)", n);
    n = snprintf(buf, 4, "%s", "truncated");
    check(n == 9 && !strcmp(buf, "tru"), "snprintf truncates and reports %d", n);
    snprintf(buf, sizeof(buf), "%lld|%05d|%llu", -1234567890123ll, -12, 18446744073709551615ull);
    check(!strcmp(buf, "-1234567890123|-0012|18446744073709551615"), "64-bit and signed: %s",
          buf);
}

/* ---- device tree ----------------------------------------------------------------------- */

static const struct platform *plat;
static struct platform plat_storage;

static int in_reserved_region(const void *dtb, uint64_t pa, uint64_t size)
{
    struct fdt_resmem rm;
    int i;

    for (i = 0; fdt_reserved_memory(dtb, i, &rm) >= 0; i++)
        if (rm.has_reg && pa < rm.base + rm.size && rm.base < pa + size)
            return 1;
    return 0;
}

static void print_reserved_memory(const void *dtb)
{
    struct fdt_resmem rm;
    int i, off, n = 0;

    for (i = 0; fdt_reserved_memory(dtb, i, &rm) >= 0; i++) {
        n++;
        if (rm.has_reg)
            printf("    reserved-memory %s: %llx..%llx", rm.name, rm.base, rm.base + rm.size);
        else
            printf("    reserved-memory %s: dynamic, size %llx align %llx", rm.name, rm.size,
                   rm.alignment);
        printf("%s%s%s%s%s\n", rm.compatible[0] ? " " : "", rm.compatible,
               rm.no_map ? " no-map" : "", rm.reusable ? " reusable" : "",
               rm.cma_default ? " linux,cma-default" : "");
    }
    if (!n)
        printf("    reserved-memory: none\n");
    for (off = fdt_next_node(dtb, -1, 0); off >= 0; off = fdt_next_node(dtb, off, 0)) {
        for (i = 0; fdt_memory_region(dtb, off, i, &rm) >= 0; i++)
            printf("    %s: memory-region %d -> %s\n", fdt_get_name(dtb, off), i, rm.name);
    }
}

static int test_dtb(uintptr_t dtb_addr)
{
    const void *dtb = (const void *)dtb_addr;
    int rc = platform_init(dtb, &plat_storage);
    uint64_t base, size;
    int node, i;

    printf("device tree at %08x:\n", (unsigned)dtb_addr);
    check(rc == 0, "FDT header valid (%s)", fdt_strerror(rc));
    if (rc)
        return -1;
    plat = &plat_storage;
    printf("    model \"%s\", %u bytes\n", plat->model, plat->dtb_size);
    for (i = 0; fdt_memory_bank(dtb, i, &base, &size) >= 0; i++)
        printf("    memory bank %d: %llx..%llx (%llu MiB)\n", i, base, base + size, size >> 20);
    printf("    uart %08x (%s), gic dist %08x cpu %08x\n", (unsigned)plat->uart_base,
           plat->uart_from_stdout_path ? "stdout-path" : "first arm,pl011",
           (unsigned)plat->gicd_base, (unsigned)plat->gicc_base);
    printf("    timer: virtual PPI id %u, %u Hz; psci %s, method %s\n", plat->timer_irq,
           plat->timer_freq, plat->has_psci_node ? "node" : "(no node)",
           plat->conduit == SMCCC_CONDUIT_SMC ? "smc" : "hvc");
    print_reserved_memory(dtb);

    check(plat->num_banks >= 1 && plat->ram_size >= 16u << 20,
          "memory node: %d bank(s), first %llu MiB", plat->num_banks, plat->ram_size >> 20);
    check(IS_ALIGNED(plat->ram_base | plat->ram_size, (uint64_t)SECTION_SIZE)
          && plat->ram_base + plat->ram_size <= 0x100000000ull,
          "RAM %llx+%llx is section aligned and below 4 GiB", plat->ram_base, plat->ram_size);
    check(plat->ram_base <= IMAGE_BASE
          && (uint64_t)(uintptr_t)&__image_end <= plat->ram_base + plat->ram_size,
          "image %08x..%08x lies in RAM", IMAGE_BASE, (unsigned)(uintptr_t)&__image_end);
    check(plat->uart_base != 0, "PL011 found at %08x", (unsigned)plat->uart_base);
    check(plat->gicd_base && plat->gicc_base, "GICv2 found");
    check(plat->timer_irq >= 16 && plat->timer_irq < 32 && plat->timer_freq > 0,
          "generic timer: PPI %u at %u Hz", plat->timer_irq, plat->timer_freq);
    node = fdt_node_offset_by_compatible(dtb, -1, "arm,pl011");
    {
        struct fdt_irq irq = { 0 };

        check(node > 0 && fdt_get_interrupt(dtb, node, 0, &irq) == 0
              && irq.type == FDT_IRQ_TYPE_SPI && irq.id == irq.number + 32
              && fdt_node_offset_by_phandle(dtb, fdt_get_phandle(dtb, irq.parent)) == irq.parent,
              "PL011 interrupt: SPI %u (ID %u) through %s", irq.number, irq.id,
              irq.parent > 0 ? fdt_get_name(dtb, irq.parent) : "?");
    }
    return 0;
}
