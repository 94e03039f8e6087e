/*
 * PL011 console. The base comes from the device tree (platform_init()); until then output
 * goes to QEMU virt's PL011 at 0x09000000 so early messages are not lost there.
 */
#ifndef FW_UART_H
#define FW_UART_H

#include <stdint.h>

#define UART_BASE_DEFAULT   0x09000000u

void uart_init(uintptr_t base);
uintptr_t uart_base(void);
void uart_putc(char c);
void uart_puts(const char *s);

#endif /* FW_UART_H */
