"""Guest CPU throughput: the harness against bare Unicorn on the same instructions.

Two workloads, each run twice in the same process: once on a bare ``Uc`` (RAM mapped,
code written, one ``emu_start`` up to a stop address; no hooks, no devices) and once on
the ``virt`` machine (device tree, bus, GIC, timer, services, the run loop's slices of
virtual time). Both run exactly the same instruction stream; only the machine ends it
with a PSCI ``SYSTEM_OFF`` call, at the address where the bare run stops. A third run,
bare Unicorn with ``emu_start(count=N)``, shows what instruction counting alone costs:
the machine needs it for virtual time, and Unicorn implements it as a code hook called
before every instruction.

* ``alu-load-store``: a loop of eight instructions (load, two ALU, store, address
  arithmetic, loop control) over a 64 KiB buffer;
* ``firmware crc32``: our capture firmware's own hot loop, ``crc32_update`` from
  ``firmware/prebuilt/capture.elf`` (the CRC it runs over every captured byte), over
  4 MiB, after ``crc32_init`` builds its table.

``python -m emu.benchmarks.cpu [--scale N] [--repeat N] [--json]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from emu.benchmarks import emit, positive
from emu.loaders import read_image
from emu.loaders.boot import BootPlan
from emu.loaders.elf import ElfImage
from emu.machine import Machine

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "firmware" / "prebuilt" / "capture.elf"

RAM = 0x4000_0000
RAM_SIZE = 128 << 20  # the virt board's RAM
DRIVER = 0x4030_0000  # above the firmware image
BUFFER = 0x4040_0000
STACK_TOP = 0x402F_0000
PSCI_SYSTEM_OFF = 0x8400_0008


def _movw(rd: int, imm: int) -> int:
    return 0xE300_0000 | ((imm >> 12) & 0xF) << 16 | rd << 12 | (imm & 0xFFF)


def _movt(rd: int, imm: int) -> int:
    return 0xE340_0000 | ((imm >> 12) & 0xF) << 16 | rd << 12 | (imm & 0xFFF)


def load32(rd: int, value: int) -> list[int]:
    """``movw``/``movt`` putting the 32-bit ``value`` in register ``rd``."""
    return [_movw(rd, value & 0xFFFF), _movt(rd, value >> 16)]


def _call(addr: int) -> list[int]:
    return [*load32(12, addr), 0xE12F_FF3C]  # blx ip


#: the tail every workload ends with: r0 = SYSTEM_OFF; hvc #0 (the bare run stops there)
_OFF = [*load32(0, PSCI_SYSTEM_OFF), 0xE140_0070]


@dataclass(frozen=True)
class Workload:
    """A driver at :data:`DRIVER`, extra segments, and its instruction count."""

    name: str
    code: list[int]
    segments: list[tuple[int, bytes]]
    instructions: int
    symbols: Path | None = None

    @property
    def stop(self) -> int:
        """The address of the final ``hvc`` (not executed by the bare run)."""
        return DRIVER + 4 * (len(self.code) - 1)

    def image(self) -> bytes:
        return b"".join(w.to_bytes(4, "little") for w in self.code)


def alu_load_store(iterations: int) -> Workload:
    """Eight instructions a turn: ldr, add, eor, str, add, bic, subs, bne."""
    code = [
        *load32(0, iterations),
        *load32(1, BUFFER),
        0xE3A0_4000,  # mov r4, #0
        # loop:
        0xE791_2004,  # ldr r2, [r1, r4]
        0xE082_2000,  # add r2, r2, r0
        0xE022_3180,  # eor r3, r2, r0, lsl #3
        0xE781_3004,  # str r3, [r1, r4]
        0xE284_4004,  # add r4, r4, #4
        0xE3C4_4801,  # bic r4, r4, #0x10000 (stay in 64 KiB)
        0xE250_0001,  # subs r0, r0, #1
        0x1AFF_FFF7,  # bne loop
        *_OFF,
    ]
    return Workload("alu-load-store", code, [], 5 + 8 * iterations)


def firmware_crc(nbytes: int) -> Workload:
    """The capture firmware's ``crc32_init`` then ``crc32_update`` over ``nbytes``."""
    img = ElfImage(read_image(CAPTURE), str(CAPTURE))
    init, update = img.symbol("crc32_init"), img.symbol("crc32_update")
    if init is None or update is None:
        raise SystemExit(f"{CAPTURE}: no crc32_init/crc32_update symbols")
    code = [
        *load32(13, STACK_TOP),
        *_call(init),
        0xE3A0_0000,  # mov r0, #0
        *load32(1, BUFFER),
        *load32(2, nbytes),
        *_call(update),
        *_OFF,
    ]
    segments = [(s.address, s.data + bytes(s.size - len(s.data))) for s in img.segments()]
    segments.append((BUFFER, bytes((i * 31 + (i >> 8)) & 0xFF for i in range(nbytes))))
    # crc32_init: 256 entries x 8 bits; crc32_update: 7 per byte; plus the driver
    return Workload("firmware crc32", code, segments, 0, CAPTURE)


def bare(work: Workload, setup: Callable[[Any], None] | None = None,
         count: int = 0) -> tuple[float, Any]:
    """Seconds on a bare Unicorn: map RAM, write, one emu_start to the stop address.

    ``setup`` may map more (an ``mmio_map`` window) before the run. ``count`` > 0 asks
    Unicorn to count instructions as the machine's slices do (``emu_start(count=N)``).
    """
    import unicorn

    uc: Any = getattr(unicorn, "Uc")(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_ARM)  # noqa: B009
    uc.mem_map(RAM, RAM_SIZE)
    if setup is not None:
        setup(uc)
    for addr, data in work.segments:
        uc.mem_write(addr, data)
    uc.mem_write(DRIVER, work.image())
    t0 = time.perf_counter()
    uc.emu_start(DRIVER, work.stop, count=count)
    return time.perf_counter() - t0, uc


def machine(work: Workload, m: Machine | None = None,
            run: bool = True) -> tuple[float, Machine]:
    """Seconds on the ``virt`` machine (or ``m``), from the first instruction to SYSTEM_OFF.

    With ``run=False`` the machine is only loaded (0 seconds): the caller runs it.
    """
    m = m if m is not None else Machine("virt")
    if work.symbols is not None:
        m.load_elf(work.symbols)  # segments and symbols; the driver below is the entry
    for addr, data in work.segments:
        m.bus.write(addr, data)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "driver.bin"
        path.write_bytes(work.image())
        m.load_raw(path, DRIVER)
    m.boot = BootPlan(entry=DRIVER, placed=m.boot.placed if m.boot else [])
    if not run:
        return 0.0, m
    t0 = time.perf_counter()
    result = m.run(max_seconds=600)
    wall = time.perf_counter() - t0
    if result.reason != "poweroff":
        raise SystemExit(f"{work.name}: the machine run ended with {result.reason}: "
                         f"{result.message}")
    return wall, m


def measure(work: Workload, repeat: int) -> dict[str, Any]:
    """Best of ``repeat`` for both; the ratio machine / bare and the MIPS of each."""
    best_bare = best_counted = best_machine = float("inf")
    instructions = 0
    for _ in range(repeat):
        best_bare = min(best_bare, bare(work)[0])
        best_counted = min(best_counted, bare(work, count=1 << 62)[0])
        t, m = machine(work)
        best_machine = min(best_machine, t)
        instructions = m.instructions
    return {
        "workload": work.name, "instructions": instructions,
        "bare_s": best_bare, "counted_s": best_counted, "machine_s": best_machine,
        "bare_mips": instructions / best_bare / 1e6,
        "machine_mips": instructions / best_machine / 1e6,
        "counted_ratio": best_counted / best_bare,
        "ratio": best_machine / best_bare,
    }


def run(scale: int = 1, repeat: int = 3) -> dict[str, Any]:
    rows = [measure(alu_load_store(4_000_000 * scale), repeat),
            measure(firmware_crc((4 << 20) * scale), repeat)]
    return {"schema": "bench-cpu/1", "target_ratio": 1.25, "rows": rows}


def render(report: dict[str, Any], out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="guest CPU throughput: harness vs bare Unicorn (same instructions)")
    for col in ("workload", "instructions", "bare s", "bare MIPS", "bare+count= s",
                "count= / bare", "harness s", "harness MIPS", "harness / bare"):
        table.add_column(col, justify="left" if col == "workload" else "right")
    for r in report["rows"]:
        table.add_row(r["workload"], f"{r['instructions']:,}", f"{r['bare_s']:.3f}",
                      f"{r['bare_mips']:.0f}", f"{r['counted_s']:.3f}",
                      f"{r['counted_ratio']:.2f}x", f"{r['machine_s']:.3f}",
                      f"{r['machine_mips']:.0f}", f"{r['ratio']:.2f}x")
    Console(file=out, width=120).print(table)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench-cpu", description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=positive, default=1, help="multiply the work (default 1)")
    ap.add_argument("--repeat", type=positive, default=3, help="best of N runs (default 3)")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    args = ap.parse_args(argv)
    return emit(run(args.scale, args.repeat), args.json, render)


if __name__ == "__main__":
    sys.exit(main())
