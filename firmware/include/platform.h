/*
 * What a program needs to know about the board, read once from the device tree:
 * RAM, console UART, GIC, the virtual timer interrupt and the SMCCC conduit.
 * platform_init() also sets up the console and (when found) the GIC.
 */
#ifndef FW_PLATFORM_H
#define FW_PLATFORM_H

#include <stdint.h>

#define PLATFORM_MAX_RESMEM  8

struct platform {
    const void *dtb;
    uint32_t dtb_size;
    const char *model;             /* /model or "" */
    uint64_t ram_base, ram_size;   /* first memory bank */
    int num_banks;
    uintptr_t uart_base;           /* 0 if none */
    int uart_from_stdout_path;     /* found through /chosen stdout-path */
    uintptr_t gicd_base, gicc_base;/* 0 if no GICv2 */
    uint32_t timer_irq;            /* virtual timer interrupt ID */
    uint32_t timer_freq;           /* CNTFRQ (or the node's clock-frequency if CNTFRQ is 0) */
    uint32_t conduit;              /* SMCCC_CONDUIT_* from /psci method */
    int has_psci_node;
};

/* Parse the DTB (0 on success, an FDT_ERR_* value if it is unusable) and set up devices. */
int platform_init(const void *dtb, struct platform *out);

/* The platform last set up by platform_init(), or NULL. */
const struct platform *platform(void);

#endif /* FW_PLATFORM_H */
