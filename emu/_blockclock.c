/*
 * Instruction counting for the machine's virtual clock, one call per translated block.
 *
 * Unicorn's own counter (emu_start with count=N) is a code hook called before every
 * instruction; in a tight loop it costs two to four times the emulation itself. This
 * block hook is called once per block instead: it adds the block's instruction count to
 * a counter and stops the CPU at the first block boundary at or after the slice's budget.
 *
 * A block's instruction count is worked out the first time the block is entered and then
 * remembered in a direct-mapped table keyed by (address, size): in the ARM state every
 * instruction is 4 bytes; in Thumb the block's bytes are read through the MMU
 * (uc_vmem_read) and its 32-bit instructions (first halfword 0b11101, 0b11110, 0b11111)
 * told from the 16-bit ones. Nothing here translates code or touches Unicorn's
 * translation cache, which must not change while the CPU runs.
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

#define EMU_MAX_BLOCK 8192 /* bytes: a translated block stays within a page or two */

typedef int (*uc_stop_fn)(void *uc);
typedef int (*uc_reg_read_fn)(void *uc, int regid, void *value);
typedef int (*uc_vmem_read_fn)(void *uc, uint64_t address, int prot, void *bytes, size_t size);

struct emu_block_clock {
    uint64_t executed;      /* instructions of the blocks entered this slice */
    uint64_t budget;        /* no block is entered once executed >= budget */
    uint64_t blocks;        /* blocks entered (all slices) */
    uint64_t lookups;       /* blocks whose count was worked out (memo misses) */
    uc_stop_fn stop;        /* uc_emu_stop */
    uc_reg_read_fn reg_read; /* uc_reg_read */
    uc_vmem_read_fn vmem_read; /* uc_vmem_read */
    int cpsr_id;            /* UC_ARM_REG_CPSR */
    int prot_exec;          /* UC_PROT_EXEC */
    int stopped;            /* 1 when this hook ended the slice */
    int unreadable;         /* Thumb blocks whose bytes could not be read (counted as halfwords) */
    uint64_t keys[EMU_MEMO_SIZE];
    uint16_t counts[EMU_MEMO_SIZE];
};

static inline uint32_t memo_slot(uint64_t key)
{
    key ^= key >> 29;
    key *= 0x9E3779B97F4A7C15ull;
    return (uint32_t)(key >> (64 - EMU_MEMO_BITS));
}

/* Kept out of line: its 8 KiB buffer would otherwise be reserved (and, with stack-clash
 * protection, probed page by page) on every call of the hot path. */
static __attribute__((noinline)) uint16_t count_block(struct emu_block_clock *c, void *uc,
                                                      uint64_t address, uint32_t size,
                                                      uint64_t key, uint32_t slot)
{
    uint32_t cpsr = 0;
    uint32_t icount = 0;
    c->lookups++;
    c->reg_read(uc, c->cpsr_id, &cpsr);
    if (!(cpsr & (1u << 5))) {
        icount = size / 4; /* ARM state */
    } else {
        uint8_t code[EMU_MAX_BLOCK];
        if (size <= EMU_MAX_BLOCK && c->vmem_read(uc, address, c->prot_exec, code, size) == 0) {
            uint32_t at = 0;
            while (at + 1 < size) {
                uint16_t first = (uint16_t)(code[at] | (code[at + 1] << 8));
                at += ((first >> 11) >= 0x1D) ? 4 : 2;
                icount++;
            }
        } else {
            c->unreadable++;
            icount = size / 2;
        }
    }
    if (icount == 0)
        icount = 1;
    if (icount > 0xFFFF)
        icount = 0xFFFF;
    c->keys[slot] = key;
    c->counts[slot] = (uint16_t)icount;
    return (uint16_t)icount;
}

static inline uint16_t block_icount(struct emu_block_clock *c, void *uc, uint64_t address,
                                    uint32_t size)
{
    uint64_t key = (address << 16) | (size & 0xFFFF) | 1; /* never 0: 0 marks an empty slot */
    uint32_t slot = memo_slot(key);
    if (c->keys[slot] == key)
        return c->counts[slot];
    return count_block(c, uc, address, size, key, slot);
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
