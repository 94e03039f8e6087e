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

static int test_dtb(uintptr_t dtb_addr, int rc)
{
    const void *dtb = (const void *)dtb_addr;
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
          && (uint64_t)(uintptr_t)__image_end <= plat->ram_base + plat->ram_size,
          "image %08x..%08x lies in RAM", IMAGE_BASE, (unsigned)(uintptr_t)__image_end);
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

/* The walker on selftest/testtree.dts, where every answer is known. */
static void test_fdt_walker(void)
{
    const void *t = testtree_dtb;
    struct fdt_resmem rm;
    struct fdt_irq irq;
    uint64_t a = 0, s = 0;
    int serial, bus, cam, n, off, rc;

    printf("fdt walker on the built-in test tree:\n");
    check(fdt_check_header(t) == 0, "test tree header valid");
    check(fdt_check_header((const uint8_t *)t + 4) == FDT_ERR_BADMAGIC,
          "a blob without the magic is refused");
    serial = fdt_path_offset(t, "/soc/bus@10000000/serial@2000");
    check(serial > 0 && fdt_path_offset(t, "/soc/bus/serial") == serial
          && fdt_path_offset(t, "serial0") == serial,
          "path lookup with and without unit addresses and through an alias");
    check(fdt_node_offset_by_compatible(t, -1, "arm,primecell") == serial
          && fdt_node_offset_by_compatible(t, serial, "arm,pl011") == FDT_ERR_NOTFOUND,
          "compatible search finds the one PL011");
    bus = fdt_parent_offset(t, serial);
    check(bus > 0 && !strcmp(fdt_get_name(t, bus), "bus@10000000")
          && fdt_parent_offset(t, 0) == FDT_ERR_NOTFOUND, "parent lookup");
    rc = fdt_get_reg(t, serial, 0, &a, &s);
    check(rc == 0 && a == 0x30002000u && s == 0x1000,
          "reg through two levels of ranges: %llx+%llx (want 30002000+1000)", a, s);
    cam = fdt_path_offset(t, "/soc/camera");
    rc = fdt_get_reg(t, cam, 1, &a, &s);
    check(rc == 0 && a == 0x20401000u && s == 0x100, "second reg entry: %llx+%llx", a, s);
    check(fdt_get_reg(t, cam, 2, &a, &s) == FDT_ERR_NOTFOUND, "reg past the end");
    rc = fdt_get_reg(t, fdt_path_offset(t, "/soc/identity/dev"), 0, &a, &s);
    check(rc == 0 && a == 0x20500000u, "empty ranges is identity: %llx", a);
    rc = fdt_get_reg(t, fdt_path_offset(t, "/soc/i2c/sensor"), 0, &a, 0);
    check(rc == FDT_ERR_NOTRANSLATION, "a bus without ranges is not translated (%s)",
          fdt_strerror(rc));
    check(fdt_memory_bank(t, 1, &a, &s) > 0 && a == 0x100000000ull && s == 0x1000000
          && fdt_memory_bank(t, 2, &a, &s) == FDT_ERR_NOTFOUND,
          "second memory bank above 4 GiB: %llx+%llx", a, s);
    n = 0;
    for (off = fdt_first_subnode(t, fdt_path_offset(t, "/reserved-memory")); off >= 0;
         off = fdt_next_subnode(t, off))
        n++;
    check(n == 3, "reserved-memory has 3 children (%d)", n);
    check(fdt_reserved_memory(t, 2, &rm) > 0 && rm.has_reg && rm.no_map
          && rm.base == 0x8f000000u && rm.size == 0x100000,
          "static no-map region %s", rm.name);
    check(fdt_memory_region(t, cam, 0, &rm) > 0 && rm.has_reg && rm.reusable
          && rm.base == 0x88000000u && rm.size == 0x400000
          && !strcmp(rm.compatible, "shared-dma-pool"),
          "memory-region 0 -> %s at %llx", rm.name, rm.base);
    check(fdt_memory_region(t, cam, 1, &rm) > 0 && !rm.has_reg && rm.cma_default
          && rm.size == 0x2000000 && rm.alignment == 0x400000,
          "memory-region 1 -> dynamic %s, size %llx", rm.name, rm.size);
    check(fdt_memory_region(t, cam, 2, &rm) == FDT_ERR_NOTFOUND, "memory-region past the end");
    check(fdt_get_interrupt(t, cam, 0, &irq) == 0 && irq.type == FDT_IRQ_TYPE_SPI
          && irq.id == 39 && irq.flags == 4, "interrupt 0: SPI 7 -> ID %u", irq.id);
    check(fdt_get_interrupt(t, cam, 1, &irq) == 0 && irq.type == FDT_IRQ_TYPE_PPI
          && irq.id == 25 && irq.flags == 0xf04, "interrupt 1: PPI 9 -> ID %u", irq.id);
    check(fdt_get_interrupt(t, serial, 0, &irq) == 0 && irq.id == 37
          && irq.parent == fdt_path_offset(t, "/interrupt-controller"),
          "interrupt-parent inherited from the root");
}

/* ---- PSCI ------------------------------------------------------------------------------ */

static void test_psci(void)
{
    uint32_t v = psci_version();

    printf("psci:\n");
    check(v >= 0x00000002u && PSCI_VERSION_MAJOR(v) < 16, "PSCI_VERSION %u.%u",
          PSCI_VERSION_MAJOR(v), PSCI_VERSION_MINOR(v));
    if (PSCI_VERSION_MAJOR(v) >= 1) {
        int32_t f = psci_features(PSCI_0_2_FN_SYSTEM_OFF);

        check(f >= 0, "PSCI_FEATURES(SYSTEM_OFF) = %d", (int)f);
    }
}

/* ---- MMU and caches -------------------------------------------------------------------- */

static uint32_t test_buf[256] __attribute__((aligned(256)));

static void test_mmu(uintptr_t dtb_addr)
{
    uint32_t ram_base = (uint32_t)plat->ram_base;
    uint32_t ram_size = (uint32_t)(plat->ram_size > LINEAR_VA_BASE ? LINEAR_VA_BASE : plat->ram_size);
    uint32_t pa = (uint32_t)(uintptr_t)test_buf, got = 0, last_pa, i;
    volatile uint32_t *lin, *ident = test_buf;
    int type = -2, ok;

    printf("mmu:\n");
    check(mmu_init(ram_base, ram_size) == 0, "tables built for RAM %08x+%08x", ram_base,
          ram_size);
    mmu_enable();
    check((read_sctlr() & (SCTLR_M | SCTLR_C | SCTLR_I)) == (SCTLR_M | SCTLR_C | SCTLR_I),
          "MMU, D-cache and I-cache on (SCTLR %08x)", read_sctlr());

    lin = phys_to_virt(pa);
    check((uint32_t)(uintptr_t)lin == LINEAR_VA_BASE + (pa - ram_base),
          "phys_to_virt(%08x) = %p", pa, (void *)lin);
    check(virt_to_phys(lin) == pa, "virt_to_phys(%p) = %08x", (void *)lin, virt_to_phys(lin));
    check(mmu_translate((uint32_t)(uintptr_t)lin, &got, &type) == 0 && got == pa
          && type == MMU_NORMAL_WB, "table walk agrees: %08x, write-back", got);
    for (i = 0; i < 256; i++)
        lin[i] = 0xa5000000u ^ (i * 0x01010101u);
    ok = 1;
    for (i = 0; i < 256; i++)
        ok &= ident[i] == (0xa5000000u ^ (i * 0x01010101u));
    for (i = 0; i < 256; i++)
        ident[i] = ~i;
    for (i = 0; i < 256; i++)
        ok &= lin[i] == ~i;
    check(ok, "writes through the linear map read back through the identity map and back");

    check(fdt32_ld(phys_to_virt((uint32_t)dtb_addr)) == FDT_MAGIC,
          "the DTB reads through the linear map");
    last_pa = ram_base + mmu_linear_size() - 4096;
    if (!in_reserved_region(plat->dtb, last_pa, 4096)) {
        volatile uint32_t *last = phys_to_virt(last_pa);

        last[0] = 0x1234abcdu;
        last[1023] = 0x5678ef01u;
        check(last[0] == 0x1234abcdu && last[1023] == 0x5678ef01u
              && *(volatile uint32_t *)(uintptr_t)last_pa == 0x1234abcdu,
              "last page of the linear map (%p -> %08x)", (void *)last, last_pa);
    }
    check(virt_to_phys((void *)(uintptr_t)pa) == MMU_BAD_ADDR && phys_to_virt(0x1000) == 0,
          "addresses outside the linear map are refused");
    check(mmu_translate(plat->uart_base, &got, &type) == 0 && got == plat->uart_base
          && type == MMU_DEVICE, "UART is identity-mapped as Device");
    check(mmu_translate(MMU_FAULT_VA, &got, &type) < 0 && mmu_translate(0, &got, 0) < 0,
          "the fault window and page 0 are unmapped");
}

static void test_cache(void)
{
    uint32_t line = dcache_line_size(), i;
    volatile uint32_t *lin = phys_to_virt((uint32_t)(uintptr_t)test_buf);
    /* The DMA-coherent test takes the first whole section of RAM after the image. */
    uint32_t pa = ALIGN_UP((uint32_t)(uintptr_t)__image_end, SECTION_SIZE);
    volatile uint32_t *unc, *alias;
    int ok = 1, type = -2;

    printf("cache:\n");
    check(line >= 16 && line <= 2048 && !(line & (line - 1)), "D-cache line %u bytes (CTR)",
          line);
    for (i = 0; i < 256; i++)
        lin[i] = i * 3u;
    dcache_clean_range((uintptr_t)lin, sizeof(test_buf));
    dcache_inval_range((uintptr_t)lin, sizeof(test_buf));
    dcache_clean_inval_range((uintptr_t)lin, sizeof(test_buf));
    for (i = 0; i < 256; i++)
        ok &= lin[i] == i * 3u;
    check(ok, "clean, invalidate, clean+invalidate keep cleaned data");
    lin[0] = 0x11111111u;
    lin[1] = 0x22222222u;
    lin[2] = 0x33333333u;
    dcache_inval_range((uintptr_t)&lin[1], 4);
    check(lin[0] == 0x11111111u && lin[1] == 0x22222222u && lin[2] == 0x33333333u,
          "a partial-line invalidate keeps the line's dirty neighbours");

    if (pa + SECTION_SIZE > mmu_ram_base() + mmu_linear_size()
        || in_reserved_region(plat->dtb, pa, SECTION_SIZE)) {
        check(0, "no free section after the image for the coherent mapping test");
        return;
    }
    unc = mmu_map_coherent(pa, SECTION_SIZE);
    check(unc && (uint32_t)(uintptr_t)unc >= UNCACHED_VA_BASE
          && (uint32_t)(uintptr_t)unc < UNCACHED_VA_END, "coherent mapping at %p",
          (void *)unc);
    if (!unc)
        return;
    alias = phys_to_virt(pa);
    check(mmu_translate((uint32_t)(uintptr_t)unc, &i, &type) == 0 && i == pa
          && type == MMU_NORMAL_NC, "window -> %08x, non-cacheable", i);
    check(mmu_translate((uint32_t)(uintptr_t)alias, &i, &type) == 0 && type == MMU_NORMAL_NC
          && mmu_translate(pa, &i, &type) == 0 && type == MMU_NORMAL_NC,
          "linear and identity aliases switched to non-cacheable");
    for (i = 0; i < 1024; i++)
        unc[i * 256] = 0xc0de0000u + i;
    ok = 1;
    for (i = 0; i < 1024; i++)
        ok &= alias[i * 256] == 0xc0de0000u + i;
    check(ok, "writes through the uncached window are seen through the linear map");
    check(mmu_translate(LINEAR_VA_BASE, &i, &type) == 0 && type == MMU_NORMAL_WB,
          "the rest of the linear map stays write-back");
}

/* ---- exceptions ------------------------------------------------------------------------ */

static volatile int svc_count, undef_count, dabt_count;
static volatile uint32_t svc_imm, svc_spsr, undef_insn, undef_pc, dabt_dfsr, dabt_dfar;

static int on_svc(struct exc_frame *f, int kind, uint32_t imm)
{
    svc_count++;
    svc_imm = imm;
    svc_spsr = f->spsr;
    f->r[0] = f->r[0] + f->r[1];
    return 1;
}

static int on_undef(struct exc_frame *f, int kind, uint32_t info)
{
    undef_count++;
    undef_pc = f->pc;
    undef_insn = *(const uint32_t *)(uintptr_t)f->pc;
    f->pc += exc_insn_size(f);
    return 1;
}

static int on_dabt(struct exc_frame *f, int kind, uint32_t dfsr)
{
    dabt_count++;
    dabt_dfsr = dfsr;
    dabt_dfar = read_dfar();
    f->pc += exc_insn_size(f);
    return 1;
}

extern const uint32_t selftest_udf_insn[];

static void test_exceptions(void)
{
    uint32_t v = 0x5555u, sum;

    printf("exceptions:\n");
    exc_set_handler(EXC_SVC, on_svc);
    /* SVC from SVC mode overwrites LR_svc: tell the compiler. */
    __asm__ volatile("mov r0, %1\n\tmov r1, %2\n\tsvc #0x5a\n\tmov %0, r0"
                     : "=r"(sum) : "r"(40), "r"(2) : "r0", "r1", "lr", "memory");
    check(svc_count == 1 && svc_imm == 0x5a && sum == 42,
          "SVC #0x5a taken and returned r0 + r1 = %u", sum);
    check((svc_spsr & CPSR_MODE_MASK) == CPSR_MODE_SVC && (svc_spsr & CPSR_I),
          "SPSR_svc %08x: caller was SVC mode with IRQs masked", svc_spsr);
    exc_set_handler(EXC_SVC, 0);

    exc_set_handler(EXC_UNDEF, on_undef);
    __asm__ volatile(".global selftest_udf_insn\n"
                     "selftest_udf_insn: udf #0x1234\n"
                     "mov %0, #0x77" : "+r"(v) : : "memory");
    check(undef_count == 1 && undef_pc == (uint32_t)(uintptr_t)selftest_udf_insn
          && undef_insn == 0xe7f123f4u && v == 0x77,
          "UDF at %08x (%08x) handled and skipped", undef_pc, undef_insn);
    exc_set_handler(EXC_UNDEF, 0);

    exc_set_handler(EXC_DABT, on_dabt);
    v = 0x5555u;
    __asm__ volatile("ldr %0, [%1]\n" : "+r"(v) : "r"(MMU_FAULT_VA + 0x124) : "memory");
    check(dabt_count == 1 && dabt_dfar == MMU_FAULT_VA + 0x124,
          "data abort on %08x reported DFAR %08x", MMU_FAULT_VA + 0x124, dabt_dfar);
    check((dabt_dfsr & 0x40f) == 0x5 && !(dabt_dfsr & (1u << 11)),
          "DFSR %08x: section translation fault on a read", dabt_dfsr);
    exc_set_handler(EXC_DABT, 0);
}

/* ---- timer and GIC --------------------------------------------------------------------- */

static void test_timer(void)
{
    const uint32_t hz = 1000;
    uint32_t freq = timer_freq();
    uint64_t start, elapsed, deadline;
    int rc;

    printf("timer:\n");
    start = timer_count();
    delay_us(1000);
    elapsed = timer_count() - start;
    check(elapsed >= freq / 1000, "delay_us(1000) waited %llu ticks (>= %u)", elapsed,
          freq / 1000);

    start = timer_count();
    rc = timer_tick_start(plat->timer_irq, hz, 0);
    check(rc == 0, "%u Hz tick on interrupt %u", hz, plat->timer_irq);
    if (rc)
        return;
    deadline = start + 2ull * freq;
    irq_enable();
    while (timer_ticks() < 5 && timer_count() < deadline)
        wfi();
    irq_disable();
    elapsed = timer_count() - start;
    timer_tick_stop();
    check(timer_ticks() >= 5, "%llu timer interrupts taken", timer_ticks());
    check(elapsed >= 5ull * (freq / hz), "they took %llu counter ticks (>= %u)", elapsed,
          5 * (freq / hz));
    check(gic_unhandled_count() == 0, "no interrupt without a handler");
}

int main(uintptr_t dtb)
{
    uint32_t cpsr = read_cpsr();
    /* First, so the console is the device tree's before anything is printed. */
    int rc = platform_init((const void *)dtb, &plat_storage);

    printf("\ncamsoc firmware selftest\n");
    printf("    MIDR %08x, CPSR %08x, DTB %08x, image %08x..%08x\n", read_midr(), cpsr,
           (unsigned)dtb, (unsigned)(uintptr_t)__image_start, (unsigned)(uintptr_t)__image_end);
    check((cpsr & CPSR_MODE_MASK) == CPSR_MODE_SVC, "running in SVC mode");
    check(read_vbar() == (uint32_t)(uintptr_t)__vectors, "VBAR points at the vectors");
    test_printf();
    if (test_dtb(dtb, rc) == 0) {
        test_fdt_walker();
        test_psci();
        test_mmu(dtb);
        test_cache();
        test_exceptions();
        test_timer();
    }
    printf("selftest: %d checks, %d failed\n", checks, failures);
    printf("selftest: %s\n", failures ? "FAIL" : "PASS");
    return failures ? FW_STATUS_FAIL : FW_STATUS_PASS;
}
