/*
 * A small printf on the console: %d %i %u %x %X %p %s %c %%, the l and ll length modifiers,
 * field width and '0' / '-' flags (e.g. %08x, %-10s, %llx). No floating point.
 */
#ifndef FW_PRINTF_H
#define FW_PRINTF_H

#include <stdarg.h>
#include <stddef.h>

int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);
/* Bounded formatting into buf; returns the length the full output would have had. */
int snprintf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

#endif /* FW_PRINTF_H */
