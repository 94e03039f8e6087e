/*
 * PL011 console. The base comes from the device tree (platform_init()); output before that
 * goes to the PL011 at 0x09000000 (both boards and QEMU virt have it there), enabled on
 * first use, so early messages are not lost. uart_init(0) silences the console.
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
