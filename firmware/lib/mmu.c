/* One-level short-descriptor page tables; see mmu.h for the virtual memory map. */
#include "mmu.h"
#include "arm.h"
#include "cache.h"
#include "util.h"

#define L1_ENTRIES      4096
#define SECT_TYPE       (2u << 0)
#define SECT_B          (1u << 2)
#define SECT_C          (1u << 3)
#define SECT_XN         (1u << 4)
#define SECT_AP_PL1_RW  (1u << 10)          /* AP[2:0] = 0b001 */
#define SECT_TEX(x)     ((uint32_t)(x) << 12)
#define SECT_S          (1u << 16)
#define SECT_BASE_MASK  0xfff00000u

/* TTBR0 walk attributes: inner WB-WA (IRGN = 0b01), outer WB-WA (RGN = 0b01), shareable. */
#define TTBR_IRGN_WBWA  (1u << 6)
#define TTBR_RGN_WBWA   (1u << 3)
#define TTBR_S          (1u << 1)

static uint32_t l1_table[L1_ENTRIES] __attribute__((aligned(16384)));
static uint32_t ram_base, ram_size, linear_size;
static uint32_t uncached_next = UNCACHED_VA_BASE;

static uint32_t type_bits(int type)
{
    switch (type) {
    case MMU_STRONGLY_ORDERED: return 0;
    case MMU_DEVICE:           return SECT_B;
    case MMU_NORMAL_WB:        return SECT_TEX(1) | SECT_C | SECT_B | SECT_S;
    case MMU_NORMAL_NC:        return SECT_TEX(1) | SECT_S;
    default:                   return 0;
    }
}

static int bits_type(uint32_t desc)
{
    uint32_t tex = (desc >> 12) & 7, cb = (desc >> 2) & 3;

    if (tex == 0 && cb == 0)
        return MMU_STRONGLY_ORDERED;
    if (tex == 0 && cb == 1)
        return MMU_DEVICE;
    if (tex == 1 && cb == 3)
        return MMU_NORMAL_WB;
    if (tex == 1 && cb == 0)
        return MMU_NORMAL_NC;
    return MMU_UNMAPPED;
}

static uint32_t section(uint32_t pa, int type, int exec)
{
    return (pa & SECT_BASE_MASK) | SECT_TYPE | SECT_AP_PL1_RW | type_bits(type)
           | (exec ? 0 : SECT_XN);
}

int mmu_is_enabled(void)
{
    return (read_sctlr() & SCTLR_M) != 0;
}

/* Make table edits visible to the walker and drop stale translations. */
static void tables_changed(uint32_t first, uint32_t count)
{
    if (!mmu_is_enabled())
        return;
    dcache_clean_range((uintptr_t)&l1_table[first], count * sizeof(uint32_t));
    cp15_write(c8, c7, 0, 0, 0);    /* TLBIALL */
    cp15_write(c7, c5, 0, 6, 0);    /* BPIALL */
    dsb();
    isb();
}

static void set_sections(uint32_t va, uint32_t pa, uint32_t count, uint32_t attrs_pa_step,
                         int type, int exec)
{
    uint32_t i, idx = va >> SECTION_SHIFT;

    for (i = 0; i < count; i++)
        l1_table[idx + i] = type == MMU_UNMAPPED
                            ? 0 : section(pa + i * attrs_pa_step, type, exec);
}

int mmu_map(uint32_t va, uint32_t pa, uint32_t size, int type, int exec)
{
    uint32_t count;

    if ((va | pa | size) & (SECTION_SIZE - 1) || !size)
        return -1;
    count = size >> SECTION_SHIFT;
    if ((va >> SECTION_SHIFT) + count > L1_ENTRIES)
        return -1;
    set_sections(va, pa, count, SECTION_SIZE, type, exec);
    tables_changed(va >> SECTION_SHIFT, count);
    return 0;
}

void mmu_unmap(uint32_t va, uint32_t size)
{
    uint32_t first = va >> SECTION_SHIFT;
    uint32_t count = ALIGN_UP(size, SECTION_SIZE) >> SECTION_SHIFT;

    if (first + count > L1_ENTRIES)
        count = L1_ENTRIES - first;
    set_sections(va & SECT_BASE_MASK, 0, count, 0, MMU_UNMAPPED, 0);
    tables_changed(first, count);
}

int mmu_init(uint32_t base, uint32_t size)
{
    uint32_t i, end;

    if ((base | size) & (SECTION_SIZE - 1) || !size || base < SECTION_SIZE
        || base >= LINEAR_VA_BASE)
        return -1;
    ram_base = base;
    ram_size = size;
    linear_size = size < LINEAR_VA_MAX ? size : LINEAR_VA_MAX;
    uncached_next = UNCACHED_VA_BASE;
    end = base + (size < LINEAR_VA_BASE - base ? size : LINEAR_VA_BASE - base);

    memset(l1_table, 0, sizeof(l1_table));
    for (i = 1; i < (LINEAR_VA_BASE >> SECTION_SHIFT); i++) {
        uint32_t pa = i << SECTION_SHIFT;

        if (pa >= base && pa < end)
            l1_table[i] = section(pa, MMU_NORMAL_WB, 1);
        else
            l1_table[i] = section(pa, MMU_DEVICE, 0);
    }
    set_sections(LINEAR_VA_BASE, base, linear_size >> SECTION_SHIFT, SECTION_SIZE,
                 MMU_NORMAL_WB, 1);
    tables_changed(0, L1_ENTRIES);
    return 0;
}

void mmu_enable(void)
{
    uint32_t sctlr;

    dcache_clean_inval_all();
    icache_inval_all();
    cp15_write(c8, c7, 0, 0, 0);                            /* TLBIALL */
    cp15_write(c2, c0, 0, 2, 0);                            /* TTBCR: N = 0, short format */
    cp15_write(c2, c0, 0, 0, (uint32_t)(uintptr_t)l1_table
               | TTBR_IRGN_WBWA | TTBR_RGN_WBWA | TTBR_S);  /* TTBR0 */
    cp15_write(c3, c0, 0, 0, 0x55555555u);                  /* DACR: all client */
    dsb();
    isb();
    sctlr = read_sctlr();
    sctlr &= ~(SCTLR_A | SCTLR_TRE | SCTLR_AFE);
    sctlr |= SCTLR_M | SCTLR_C | SCTLR_I | SCTLR_Z;
    write_sctlr(sctlr);
    isb();
}

void mmu_disable(void)
{
    uint32_t sctlr = read_sctlr();

    write_sctlr(sctlr & ~SCTLR_C);
    isb();
    dcache_clean_inval_all();
    write_sctlr(sctlr & ~(SCTLR_C | SCTLR_M | SCTLR_I));
    isb();
    icache_inval_all();
    cp15_write(c8, c7, 0, 0, 0);
    dsb();
    isb();
}

uint32_t mmu_ram_base(void)
{
    return ram_base;
}

uint32_t mmu_ram_size(void)
{
    return ram_size;
}

uint32_t mmu_linear_size(void)
{
    return linear_size;
}

uint32_t virt_to_phys(const volatile void *va)
{
    uint32_t v = (uint32_t)(uintptr_t)va;

    if (v < LINEAR_VA_BASE || v - LINEAR_VA_BASE >= linear_size)
        return MMU_BAD_ADDR;
    return v - LINEAR_VA_BASE + ram_base;
}

void *phys_to_virt(uint32_t pa)
{
    if (pa < ram_base || pa - ram_base >= linear_size)
        return 0;
    return (void *)(uintptr_t)(pa - ram_base + LINEAR_VA_BASE);
}

int mmu_translate(uint32_t va, uint32_t *pa, int *type)
{
    uint32_t desc = l1_table[va >> SECTION_SHIFT];

    if ((desc & 3) != 2 || (desc & (1u << 18)))     /* not a section (or a supersection) */
        return -1;
    *pa = (desc & SECT_BASE_MASK) | (va & (SECTION_SIZE - 1));
    if (type)
        *type = bits_type(desc);
    return 0;
}

void *mmu_map_uncached(uint32_t pa, uint32_t size)
{
    uint32_t first = pa & SECT_BASE_MASK;
    uint32_t span = ALIGN_UP(pa + size, SECTION_SIZE) - first;
    uint32_t va = uncached_next;

    if (!size || pa + size < pa || span > UNCACHED_VA_END - va)
        return 0;
    if (mmu_map(va, first, span, MMU_NORMAL_NC, 0) < 0)
        return 0;
    uncached_next = va + span;
    return (void *)(uintptr_t)(va + (pa - first));
}

void *mmu_map_coherent(uint32_t pa, uint32_t size)
{
    uint32_t first = pa & SECT_BASE_MASK;
    uint32_t span = ALIGN_UP(pa + size, SECTION_SIZE) - first;
    uint32_t s;

    if (!size || pa + size < pa)
        return 0;
    for (s = first; s - first < span; s += SECTION_SIZE) {
        uint32_t lin = s - ram_base + LINEAR_VA_BASE;
        int in_linear = s >= ram_base && s - ram_base < linear_size;
        int in_identity = s >= ram_base && s - ram_base < ram_size && s < LINEAR_VA_BASE;

        if (in_identity)
            dcache_clean_inval_range(s, SECTION_SIZE);
        if (in_linear)
            dcache_clean_inval_range(lin, SECTION_SIZE);
        if (in_identity)
            mmu_map(s, s, SECTION_SIZE, MMU_NORMAL_NC, 1);
        if (in_linear)
            mmu_map(lin, s, SECTION_SIZE, MMU_NORMAL_NC, 1);
    }
    return mmu_map_uncached(pa, size);
}
