/* Cache maintenance by MVA and by set/way; see cache.h. */
#include "cache.h"
#include "arm.h"

uint32_t dcache_line_size(void)
{
    return 4u << ((cp15_read(c0, c0, 0, 1) >> 16) & 0xf);     /* CTR.DminLine */
}

uint32_t icache_line_size(void)
{
    return 4u << (cp15_read(c0, c0, 0, 1) & 0xf);             /* CTR.IminLine */
}

#define DCCMVAC(a)   cp15_write(c7, c10, 0, 1, a)
#define DCIMVAC(a)   cp15_write(c7, c6, 0, 1, a)
#define DCCIMVAC(a)  cp15_write(c7, c14, 0, 1, a)

void dcache_clean_range(uintptr_t start, size_t size)
{
    uint32_t line = dcache_line_size();
    uintptr_t a, end = start + size;

    if (!size)
        return;
    dsb();
    for (a = start & ~(uintptr_t)(line - 1); a < end; a += line)
        DCCMVAC(a);
    dsb();
}

void dcache_clean_inval_range(uintptr_t start, size_t size)
{
    uint32_t line = dcache_line_size();
    uintptr_t a, end = start + size;

    if (!size)
        return;
    dsb();
    for (a = start & ~(uintptr_t)(line - 1); a < end; a += line)
        DCCIMVAC(a);
    dsb();
}

void dcache_inval_range(uintptr_t start, size_t size)
{
    uint32_t line = dcache_line_size();
    uintptr_t mask = line - 1;
    uintptr_t a, end = start + size;

    if (!size)
        return;
    dsb();
    if (start & mask) {
        DCCIMVAC(start & ~mask);
        start = (start & ~mask) + line;
    }
    if ((end & mask) && end > start) {
        DCCIMVAC(end & ~mask);
        end &= ~mask;
    }
    for (a = start; a < end; a += line)
        DCIMVAC(a);
    dsb();
}

enum setway_op { SW_CLEAN, SW_INVAL, SW_CLEAN_INVAL };

static void dcache_setway(enum setway_op op)
{
    uint32_t clidr = cp15_read(c0, c0, 1, 1);
    uint32_t loc = (clidr >> 24) & 7;
    uint32_t level;

    dsb();
    for (level = 0; level < loc; level++) {
        uint32_t ctype = (clidr >> (3 * level)) & 7;
        uint32_t ccsidr, line_shift, ways, sets, way_shift, way, set;

        if (ctype < 2)              /* no data or unified cache at this level */
            continue;
        cp15_write(c0, c0, 2, 0, level << 1);                   /* CSSELR */
        isb();
        ccsidr = cp15_read(c0, c0, 1, 0);
        line_shift = (ccsidr & 7) + 4;
        ways = ((ccsidr >> 3) & 0x3ff) + 1;
        sets = ((ccsidr >> 13) & 0x7fff) + 1;
        way_shift = ways > 1 ? (uint32_t)__builtin_clz(ways - 1) : 0;
        for (way = 0; way < ways; way++) {
            for (set = 0; set < sets; set++) {
                uint32_t sw = (ways > 1 ? way << way_shift : 0) | (set << line_shift)
                              | (level << 1);

                if (op == SW_CLEAN)
                    cp15_write(c7, c10, 0, 2, sw);              /* DCCSW */
                else if (op == SW_INVAL)
                    cp15_write(c7, c6, 0, 2, sw);               /* DCISW */
                else
                    cp15_write(c7, c14, 0, 2, sw);              /* DCCISW */
            }
        }
    }
    cp15_write(c0, c0, 2, 0, 0);
    dsb();
    isb();
}

void dcache_clean_all(void)
{
    dcache_setway(SW_CLEAN);
}

void dcache_inval_all(void)
{
    dcache_setway(SW_INVAL);
}

void dcache_clean_inval_all(void)
{
    dcache_setway(SW_CLEAN_INVAL);
}

void icache_inval_all(void)
{
    cp15_write(c7, c5, 0, 0, 0);    /* ICIALLU */
    cp15_write(c7, c5, 0, 6, 0);    /* BPIALL */
    dsb();
    isb();
}
