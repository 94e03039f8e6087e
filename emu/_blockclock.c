/*
 * Instruction counting for the machine's virtual clock, one call per translated block.
 *
 * Unicorn's own counter (emu_start with count=N) is a code hook called before every
 * instruction; in a tight loop it costs two to four times the emulation itself. This
 * block hook is called once per block instead: it adds the block's instruction count to
 * a counter and stops the CPU at the first block boundary at or after the slice's budget.
 *
 * A block's instruction count comes from Unicorn's translation cache (uc_ctl with
 * UC_CTL_TB_REQUEST_CACHE: the block being entered is always there) and is remembered in
 * a direct-mapped table keyed by (address, size), so the cache is asked once per block.
 *
 * Python loads this file's shared object with ctypes, hands `emu_block_hook` to
 * uc_hook_add with a pointer to a struct emu_block_clock as user data, and reads and
 * writes the struct between slices. No Python API is used at run time; the module init
 * function only exists so that the extension can be built and found like any other.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#define EMU_MEMO_BITS 16
#define EMU_MEMO_SIZE (1u << EMU_MEMO_BITS)

typedef int (*uc_ctl_fn)(void *uc, int control, ...);
typedef int (*uc_stop_fn)(void *uc);

/* Unicorn's uc_tb */
struct emu_tb {
    uint64_t pc;
    uint16_t icount;
    uint16_t size;
};

struct emu_block_clock {
    uint64_t executed;  /* instructions of the blocks entered this slice */
    uint64_t budget;    /* no block is entered once executed >= budget */
    uint64_t blocks;    /* blocks entered (all slices) */
    uint64_t lookups;   /* translation-cache queries (memo misses) */
    uc_ctl_fn ctl;      /* uc_ctl */
    uc_stop_fn stop;    /* uc_emu_stop */
    int request_cache;  /* UC_CTL_READ_WRITE(UC_CTL_TB_REQUEST_CACHE, 2) */
    int stopped;        /* 1 when this hook ended the slice */
    uint64_t keys[EMU_MEMO_SIZE];
    uint16_t counts[EMU_MEMO_SIZE];
};

static inline uint32_t memo_slot(uint64_t key)
{
    key ^= key >> 29;
    key *= 0x9E3779B97F4A7C15ull;
    return (uint32_t)(key >> (64 - EMU_MEMO_BITS));
}

static uint16_t block_icount(struct emu_block_clock *c, void *uc, uint64_t address,
                             uint32_t size)
{
    uint64_t key = (address << 16) | (size & 0xFFFF) | 1; /* never 0: 0 marks an empty slot */
    uint32_t slot = memo_slot(key);
    if (c->keys[slot] == key)
        return c->counts[slot];
    struct emu_tb tb = {0, 0, 0};
    uint16_t icount;
    c->lookups++;
    if (c->ctl(uc, c->request_cache, address, &tb) == 0 && tb.icount > 0)
        icount = tb.icount;
    else
        icount = (uint16_t)(size >= 4 ? size / 4 : 1); /* ARM-sized guess; not expected */
    c->keys[slot] = key;
    c->counts[slot] = icount;
    return icount;
}

void emu_block_hook(void *uc, uint64_t address, uint32_t size, void *user)
{
    struct emu_block_clock *c = (struct emu_block_clock *)user;
    if (c->executed >= c->budget) {
        c->stopped = 1;
        c->stop(uc); /* takes effect before this block runs */
        return;
    }
    c->blocks++;
    c->executed += block_icount(c, uc, address, size);
}

/* Forget every remembered count (code at known addresses may have changed). */
void emu_block_clock_forget(struct emu_block_clock *c)
{
    memset(c->keys, 0, sizeof c->keys);
}

size_t emu_block_clock_size(void)
{
    return sizeof(struct emu_block_clock);
}

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_blockclock",
    "Native block hook for the virtual clock (used through ctypes).", -1, NULL,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__blockclock(void)
{
    return PyModule_Create(&module);
}
