/*
 * CRC-32 with the zlib polynomial (reflected 0xEDB88320, initial and final XOR 0xFFFFFFFF),
 * table-driven, one byte per step. crc32_update(0, p, n) equals zlib's crc32(0, p, n), and
 * runs can be chained: crc32_update(crc32_update(0, a, n), b, m) is the CRC of a then b.
 */
#ifndef CAPTURE_CRC32_H
#define CAPTURE_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Build the 256-entry table; call once before crc32_update(). */
void crc32_init(void);
uint32_t crc32_update(uint32_t crc, const void *data, size_t len);

#endif /* CAPTURE_CRC32_H */
