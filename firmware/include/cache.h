/*
 * ARMv7 cache maintenance. Range operations work on virtual addresses (by MVA, to the point
 * of coherency) over the smallest D-cache line from CTR, and end with DSB. For DMA:
 *   CPU wrote, device reads   -> dcache_clean_range() before starting the device;
 *   device wrote, CPU reads   -> dcache_inval_range() after the device finished (and before,
 *                                if the CPU may have dirtied the lines since).
 * dcache_inval_range() cleans and invalidates partial lines at either end instead of
 * discarding them, so neighbouring data sharing a line is never lost.
 * The set/way operations act on every cache level up to the level of coherency; use them
 * only around turning the MMU or caches on or off, never for DMA.
 */
#ifndef FW_CACHE_H
#define FW_CACHE_H

#include <stddef.h>
#include <stdint.h>

uint32_t dcache_line_size(void);
uint32_t icache_line_size(void);

void dcache_clean_range(uintptr_t start, size_t size);
void dcache_inval_range(uintptr_t start, size_t size);
void dcache_clean_inval_range(uintptr_t start, size_t size);

void dcache_clean_all(void);
void dcache_inval_all(void);
void dcache_clean_inval_all(void);

/* I-cache and branch predictor invalidation (after writing code), with DSB + ISB. */
void icache_inval_all(void);

#endif /* FW_CACHE_H */
