/* Everything a program usually needs, in one include. */
#ifndef FW_FW_H
#define FW_FW_H

#include "arm.h"
#include "cache.h"
#include "exception.h"
#include "fdt.h"
#include "gic.h"
#include "mmu.h"
#include "platform.h"
#include "printf.h"
#include "psci.h"
#include "smccc.h"
#include "status.h"
#include "timer.h"
#include "uart.h"
#include "util.h"

/* Image bounds from lib/link.ld. */
extern char __image_start[], __image_end[];
extern char __vectors[];

/* Entry point every program defines; its return value is the SYSTEM_OFF exit status. */
int main(uintptr_t dtb);

#endif /* FW_FW_H */
