/* PL011 transmit path (polled). */
#include "uart.h"
#include "arm.h"

#define UARTDR      0x00
#define UARTFR      0x18
#define UARTLCR_H   0x2c
#define UARTCR      0x30
#define UARTIMSC    0x38

#define FR_TXFF     (1u << 5)
#define LCR_H_WLEN8 (3u << 5)
#define LCR_H_FEN   (1u << 4)
#define CR_UARTEN   (1u << 0)
#define CR_TXE      (1u << 8)
#define CR_RXE      (1u << 9)

static uintptr_t uart = UART_BASE_DEFAULT;
static int configured;

void uart_init(uintptr_t base)
{
    uart = base;
    configured = 1;
    if (!uart)
        return;
    /* Leave a UART the loader already set up alone (its baud rate is right). */
    if ((mmio_read32(uart + UARTCR) & (CR_UARTEN | CR_TXE)) == (CR_UARTEN | CR_TXE))
        return;
    mmio_write32(uart + UARTCR, 0);
    mmio_write32(uart + UARTIMSC, 0);
    mmio_write32(uart + UARTLCR_H, LCR_H_WLEN8 | LCR_H_FEN);
    mmio_write32(uart + UARTCR, CR_UARTEN | CR_TXE | CR_RXE);
}

uintptr_t uart_base(void)
{
    return uart;
}

static void uart_tx(char c)
{
    unsigned spins = 1000000;

    while ((mmio_read32(uart + UARTFR) & FR_TXFF) && --spins)
        ;
    mmio_write32(uart + UARTDR, (uint8_t)c);
}

void uart_putc(char c)
{
    if (!configured)
        uart_init(uart);
    if (!uart)
        return;
    if (c == '\n')
        uart_tx('\r');
    uart_tx(c);
}

void uart_puts(const char *s)
{
    while (*s)
        uart_putc(*s++);
}
