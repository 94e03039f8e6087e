/*
 * Short-descriptor translation with 1 MiB sections, one level, TTBR0 only (TTBCR = 0), all
 * domains client, TEX remap off (classic TEX/C/B attributes).
 *
 * Virtual memory map after mmu_init(ram_base, ram_size):
 *   0x00000000-0x000fffff  unmapped (catches NULL pointers)
 *   0x00100000-0x7fffffff  identity: RAM as Normal write-back cacheable, everything else
 *                          Device (shareable), execute-never
 *   0x80000000-0xefffffff  linear map of RAM: VA LINEAR_VA_BASE + n -> ram_base + n
 *                          (Normal write-back cacheable), at most LINEAR_VA_MAX bytes.
 *                          Like Linux with CONFIG_VMSPLIT_2G (PAGE_OFFSET 0x80000000), so no
 *                          CPU address of RAM equals a bus address on camsoc's two buses
 *                          (0x0 and 0xC0000000) or the physical address (0x40000000).
 *   0xf0000000-0xffefffff  uncached window, filled by mmu_map_uncached() / mmu_map_coherent()
 *   0xfff00000-0xffffffff  unmapped (MMU_FAULT_VA: a VA guaranteed to abort)
 */
#ifndef FW_MMU_H
#define FW_MMU_H

#include <stdint.h>

#define SECTION_SHIFT       20
#define SECTION_SIZE        (1u << SECTION_SHIFT)
#define LINEAR_VA_BASE      0x80000000u
#define LINEAR_VA_MAX       0x70000000u
#define UNCACHED_VA_BASE    0xf0000000u
#define UNCACHED_VA_END     0xfff00000u
#define MMU_FAULT_VA        0xfff00000u
#define MMU_BAD_ADDR        0xffffffffu

/* Memory types. */
#define MMU_STRONGLY_ORDERED  0
#define MMU_DEVICE            1
#define MMU_NORMAL_WB         2   /* inner/outer write-back write-allocate, shareable */
#define MMU_NORMAL_NC         3   /* inner/outer non-cacheable, shareable */
#define MMU_UNMAPPED          (-1)

/* Build the tables (MMU off). RAM must be section aligned; returns 0 or -1 on bad input. */
int mmu_init(uint32_t ram_base, uint32_t ram_size);
/* Clean/invalidate caches and TLBs, load TTBR0/TTBCR/DACR, turn MMU, I, D and Z on. */
void mmu_enable(void);
/* Clean the D-cache and turn MMU and caches off (identity addresses keep working). */
void mmu_disable(void);
int mmu_is_enabled(void);

uint32_t mmu_ram_base(void);
uint32_t mmu_ram_size(void);
/* Bytes of RAM the linear map covers (min(ram_size, LINEAR_VA_MAX)). */
uint32_t mmu_linear_size(void);

/* Map [va, va + size) to pa as sections of one type; updates TLBs if the MMU is on. */
int mmu_map(uint32_t va, uint32_t pa, uint32_t size, int type, int exec);
void mmu_unmap(uint32_t va, uint32_t size);

/* The linear map (like Linux's __va/__pa): MMU_BAD_ADDR / NULL outside it. */
uint32_t virt_to_phys(const volatile void *va);
void *phys_to_virt(uint32_t pa);

/* Walk the tables in software: 0 and *pa (and *type if not NULL), or -1 if unmapped. */
int mmu_translate(uint32_t va, uint32_t *pa, int *type);

/*
 * Map a physical range Normal non-cacheable in the uncached window; returns the VA of pa or
 * NULL if the window is full. The cacheable identity and linear aliases are left alone: use
 * this for memory the CPU reaches through the window only (e.g. no-map reserved regions).
 */
void *mmu_map_uncached(uint32_t pa, uint32_t size);
/*
 * A DMA-coherent mapping: clean and invalidate the range from the caches, switch its
 * identity and linear-map sections to Normal non-cacheable (no mismatched cacheable alias
 * remains, as the architecture requires), and map it in the uncached window. Whole sections
 * change type, so keep coherent buffers in section-aligned regions of their own.
 */
void *mmu_map_coherent(uint32_t pa, uint32_t size);

#endif /* FW_MMU_H */
