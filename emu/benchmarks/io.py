"""Device access costs: MMIO through the bus, and interrupt delivery.

* ``mmio``: a guest loop of one load and one store of a PL011 register (``UARTIBRD``,
  plain storage in the register table, no side effect) on the ``virt`` machine, against
  bare Unicorn running the same loop over an ``mmio_map`` window whose Python callbacks
  do nothing (the least any Python device can cost). Reported per access, with the ratio.
* ``irq``: a guest that arms the virtual timer (``CNTV_TVAL``), enables PPI 27 at the GIC
  and sleeps in WFI; each interrupt's handler acknowledges it (``GICC_IAR``), re-arms the
  timer and ends it (``GICC_EOIR``). Reported as host time per interrupt: the WFI exit,
  the clock jump, the timer event, the GIC, exception entry and the handler with its
  two MMIO accesses and its trapped timer write (bare Unicorn has no interrupts, so
  there is no baseline but the target).

``python -m emu.benchmarks.io [--accesses N] [--interrupts N] [--json]``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from emu.benchmarks import emit, positive
from emu.benchmarks.cpu import DRIVER, Workload, bare, load32, machine

UART = 0x0900_0000
IRQ_TARGET_US = 20.0
MMIO_TARGET_RATIO = 2.0


def mmio_workload(iterations: int) -> Workload:
    code = [
        0xE300_4000, 0xE340_4900,  # r4 = 0x09000000 (PL011)
        *load32(0, iterations),
        0xE594_2024,               # loop: ldr r2, [r4, #0x24]   UARTIBRD
        0xE584_2024,               #       str r2, [r4, #0x24]   UARTIBRD
        0xE250_0001,               #       subs r0, r0, #1
        0x1AFF_FFFB,               #       bne loop
        0xE300_0008, 0xE348_0400,  # r0 = PSCI SYSTEM_OFF
        0xE140_0070,               # hvc #0
    ]
    return Workload("mmio", code, [], 4 + 4 * iterations)


def irq_workload(interrupts: int, period: int) -> Workload:
    code = [
        0xE300_D000, 0xE344_D02F,  # sp = 0x402f0000
        0xE28F_0090,               # adr r0, vectors
        0xEE0C_0F10,               # mcr VBAR
        0xE300_4000, 0xE340_4800,  # r4 = GICD (0x08000000)
        0xE3A0_0001, 0xE584_0000,  # GICD_CTLR = 1
        0xE3A0_1302, 0xE584_1100,  # GICD_ISENABLER0 = 1 << 27 (virtual timer PPI)
        0xE300_5000, 0xE340_5801,  # r5 = GICC (0x08010000)
        0xE3A0_00FF, 0xE585_0004,  # GICC_PMR = 0xff
        0xE3A0_0001, 0xE585_0000,  # GICC_CTLR = 1
        *load32(6, period),
        0xEE0E_6F13,               # mcr CNTV_TVAL, r6
        0xE3A0_0001, 0xEE0E_0F33,  # CNTV_CTL = 1
        0xE3A0_7000,               # r7 = 0 (interrupts taken)
        *load32(8, interrupts),  # interrupts wanted
        0xF108_0080,               # cpsie i
        0xE320_F003,               # loop: wfi
        0xE157_0008,               #       cmp r7, r8
        0x3AFF_FFFC,               #       blo loop
        0xF10C_0080,               # cpsid i
        0xE300_0008, 0xE348_0400,  # r0 = PSCI SYSTEM_OFF
        0xE140_0070,               # hvc #0
        0xE595_000C,               # irq: ldr r0, [r5, #0xc]   GICC_IAR
        0xEE0E_6F13,               #      mcr CNTV_TVAL, r6
        0xE585_0010,               #      str r0, [r5, #0x10]  GICC_EOIR
        0xE287_7001,               #      add r7, r7, #1
        0xE25E_F004,               #      subs pc, lr, #4
        0xE320_F000, 0xE320_F000, 0xE320_F000,  # nop (vectors are 32-byte aligned)
        0xEAFF_FFD6,               # vectors: b _start
        0xEAFF_FFFE, 0xEAFF_FFFE, 0xEAFF_FFFE, 0xEAFF_FFFE, 0xEAFF_FFFE,
        0xEAFF_FFF0,               # irq vector: b irq
        0xEAFF_FFFE,
    ]
    return Workload("irq", code, [], 0)


def _null_mmio(uc: Any) -> None:
    uc.mmio_map(UART, 0x1000, lambda uc, off, size, user: 0x90, None,
                lambda uc, off, size, value, user: None, None)


def measure_mmio(iterations: int, repeat: int) -> dict[str, Any]:
    work = mmio_workload(iterations)
    best_bare = best_machine = float("inf")
    for _ in range(repeat):
        best_bare = min(best_bare, bare(work, _null_mmio)[0])
        best_machine = min(best_machine, machine(work)[0])
    accesses = 2 * iterations
    return {"accesses": accesses,
            "bare_us": best_bare / accesses * 1e6, "machine_us": best_machine / accesses * 1e6,
            "ratio": best_machine / best_bare, "target_ratio": MMIO_TARGET_RATIO}


def measure_irq(interrupts: int, period: int, repeat: int) -> dict[str, Any]:
    work = irq_workload(interrupts, period)
    best = float("inf")
    taken = 0
    for _ in range(repeat):
        wall, m = machine(work)
        best = min(best, wall)
        taken = sum(1 for _t, kind in m.irq_deliveries if kind == "irq")
    if taken != interrupts:
        raise SystemExit(f"irq: {taken} interrupts delivered, {interrupts} expected")
    return {"interrupts": taken, "period_ticks": period, "wall_s": best,
            "us_per_irq": best / taken * 1e6, "target_us": IRQ_TARGET_US}


def run(accesses: int = 200_000, interrupts: int = 20_000, repeat: int = 3) -> dict[str, Any]:
    return {"schema": "bench-io/1", "driver": DRIVER,
            "mmio": measure_mmio(accesses // 2, repeat),
            "irq": measure_irq(interrupts, 10_000, repeat)}


def render(report: dict[str, Any], out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    mm, irq = report["mmio"], report["irq"]
    table = Table(title="device access costs (virt)")
    for col in ("what", "count", "harness", "baseline", "ratio", "target"):
        table.add_column(col, justify="left" if col == "what" else "right")
    table.add_row("MMIO access (PL011 IBRD ldr/str)", f"{mm['accesses']:,}",
                  f"{mm['machine_us']:.2f} µs", f"{mm['bare_us']:.2f} µs (bare mmio_map)",
                  f"{mm['ratio']:.2f}x", f"≤ {mm['target_ratio']:.0f}x")
    table.add_row("timer interrupt, WFI to handler end", f"{irq['interrupts']:,}",
                  f"{irq['us_per_irq']:.1f} µs", "-", "-", f"< {irq['target_us']:.0f} µs")
    Console(file=out, width=120).print(table)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench-io", description=__doc__.split("\n\n")[0])
    ap.add_argument("--accesses", type=positive, default=200_000)
    ap.add_argument("--interrupts", type=positive, default=20_000)
    ap.add_argument("--repeat", type=positive, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    return emit(run(args.accesses, args.interrupts, args.repeat), args.json, render)


if __name__ == "__main__":
    sys.exit(main())
