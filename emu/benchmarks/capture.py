"""Capture throughput: frames per second and MB/s with firmware verification.

For each resolution the capture firmware runs on ``camsoc`` (the camera writes each
frame through its bus view, the guest invalidates and CRCs every byte through its
CPU addresses). Two baselines are measured in the same run:

* ``host memcpy``: copying one frame's bytes on the host (``bytearray`` slice), the
  bandwidth ceiling of the machine itself;
* ``guest memcpy``: bare Unicorn (no harness) running an ARM ``ldm/stm`` copy loop
  over the same number of bytes, the emulator's own ceiling for touching memory.

``python -m emu.benchmarks.capture [--frames N] [--json]``.
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from emu.benchmarks import emit
from emu.devices.dma.testpattern import PixelFormat
from emu.machine import Machine
from emu.system import System

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "firmware" / "prebuilt" / "capture.elf"
CMA = "cma=cam=48M cma_map=camera=cam"
RESOLUTIONS = ((640, 480), (1280, 720))


def host_memcpy(nbytes: int, repeat: int = 20) -> float:
    """MB/s of a host copy of ``nbytes`` (best of ``repeat``)."""
    src = bytearray(nbytes)
    dst = bytearray(nbytes)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        dst[:] = src
        best = min(best, time.perf_counter() - t0)
    return nbytes / best / 1e6


def guest_memcpy(nbytes: int) -> float:
    """MB/s of an ARM ldm/stm copy loop of ``nbytes`` on bare Unicorn."""
    import unicorn
    from unicorn.arm_const import UC_ARM_REG_R0, UC_ARM_REG_R1, UC_ARM_REG_R2

    uc_class: Any = getattr(unicorn, "Uc")  # noqa: B009 (the stub does not re-export it)

    code = b"".join(struct.pack("<I", w) for w in (
        0xE8B0_50F8,  # loop: ldmia r0!, {r3-r7, r12, lr}
        0xE8A1_50F8,  #       stmia r1!, {r3-r7, r12, lr}
        0xE252_201C,  #       subs r2, r2, #28
        0xCAFF_FFFB,  #       bgt loop
        0xE1A0_0000,  #       nop (the stop address)
    ))
    base, src, dst = 0x1000_0000, 0x2000_0000, 0x3000_0000
    size = (nbytes + 0xFFFFF) & ~0xFFFFF
    uc = uc_class(unicorn.UC_ARCH_ARM, unicorn.UC_MODE_ARM)
    uc.mem_map(base, 0x1000)
    uc.mem_map(src, size)
    uc.mem_map(dst, size)
    uc.mem_write(base, code)
    uc.reg_write(UC_ARM_REG_R0, src)
    uc.reg_write(UC_ARM_REG_R1, dst)
    uc.reg_write(UC_ARM_REG_R2, nbytes)
    t0 = time.perf_counter()
    uc.emu_start(base, base + 16)
    return nbytes / (time.perf_counter() - t0) / 1e6


def capture_run(width: int, height: int, frames: int) -> dict[str, Any]:
    """Run the capture firmware once; host time, frames verified, bytes moved."""
    machine = Machine("camsoc")
    machine.load_elf(CAPTURE)
    from emu.dt import guest

    guest.set_bootargs(machine.tree, f"frames={frames} width={width} height={height} "
                                     f"format=rgb565")
    system = System(machine, CMA)
    t0 = time.perf_counter()
    result = machine.run(max_seconds=600)
    wall = time.perf_counter() - t0
    records = system.frame_records()
    verified = sum(1 for r in records if r["verdict"] == "verified")
    frame_bytes = width * height * PixelFormat.RGB565.bytes_per_pixel
    return {
        "width": width, "height": height, "frames": frames, "verified": verified,
        "exit_status": result.exit_status, "wall_s": wall,
        "virtual_s": result.virtual_seconds, "instructions": result.instructions,
        "fps": verified / wall if wall else 0.0,
        "mb_per_s": verified * frame_bytes / wall / 1e6 if wall else 0.0,
        "frame_bytes": frame_bytes,
    }


def run(frames: int) -> dict[str, Any]:
    rows = []
    for width, height in RESOLUTIONS:
        row = capture_run(width, height, frames)
        row["host_memcpy_mb_s"] = host_memcpy(row["frame_bytes"])
        row["guest_memcpy_mb_s"] = guest_memcpy(row["frame_bytes"])
        row["vs_host_memcpy"] = row["mb_per_s"] / row["host_memcpy_mb_s"]
        row["vs_guest_memcpy"] = row["mb_per_s"] / row["guest_memcpy_mb_s"]
        rows.append(row)
    return {"schema": "bench-capture/1", "rows": rows}


def render(report: dict[str, Any], out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="capture with firmware verification (camsoc, RGB565)")
    for col in ("frames", "verified", "wall s", "fps", "MB/s", "host memcpy MB/s",
                "vs host", "guest memcpy MB/s", "vs guest"):
        table.add_column(col, justify="right")
    for r in report["rows"]:
        table.add_row(f"{r['width']}x{r['height']} x{r['frames']}", str(r["verified"]),
                      f"{r['wall_s']:.2f}", f"{r['fps']:.1f}", f"{r['mb_per_s']:.1f}",
                      f"{r['host_memcpy_mb_s']:.0f}", f"{r['vs_host_memcpy']:.4f}x",
                      f"{r['guest_memcpy_mb_s']:.0f}", f"{r['vs_guest_memcpy']:.3f}x")
    Console(file=out, width=140).print(table)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench-capture", description=__doc__)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    out = out or sys.stdout
    if args.frames < 1:
        print("bench-capture: --frames must be at least 1", file=sys.stderr)
        return 2
    report = run(args.frames)
    return emit(report, args.json, render, out)


if __name__ == "__main__":
    sys.exit(main())
