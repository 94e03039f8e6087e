"""``emu run``: boot an image on a board, show the console live, summarise the run.

Exit status: 0 when the run ended as asked (the ``--until`` text was seen, or
the guest powered off with status 0, or the instruction budget ran out when
that was the only stop asked for), 1 when the scenario failed (fault, idle,
time limit, non-zero poweroff status, reset), 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from emu.cpu.core import CPU_MODELS
from emu.errors import ConfigurationError
from emu.machine import Machine, RunResult

#: version of the JSON result written by ``--json`` (see docs/machine.md)
RESULT_SCHEMA = "emu-run/1"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("run", help="run an image on a board",
                              description="Run U-Boot, Linux or a bare-metal ELF on a board.")
    p.add_argument("--board", required=True, help="virt, camsoc, camsoc-alias or a .dts/.dtb")
    img = p.add_mutually_exclusive_group(required=True)
    img.add_argument("--bios", metavar="FILE", help="firmware loaded into flash at 0")
    img.add_argument("--kernel", metavar="FILE", help="Linux zImage or Image")
    img.add_argument("--elf", metavar="FILE", help="bare-metal ELF image")
    p.add_argument("--dtb", metavar="FILE", help="DTB handed to the guest instead of the board's")
    p.add_argument("--append", metavar="ARGS", help="kernel command line (/chosen/bootargs)")
    p.add_argument("--initrd", metavar="FILE", help="initial ramdisk (with --kernel)")
    p.add_argument("--send", metavar="TEXT", action="append", default=[],
                   help="a console line to type (Enter appended) when --prompt appears; repeat")
    p.add_argument("--prompt", default="=> ",
                   help="text that must appear before each --send line (default '=> '; '' "
                        "types at once)")
    p.add_argument("--until", metavar="TEXT",
                   help="stop (success) when TEXT appears after the input was typed")
    p.add_argument("--max-seconds", type=float, metavar="N", help="host wall-clock limit")
    p.add_argument("--max-instructions", type=int, metavar="N", help="instruction budget")
    p.add_argument("--json", metavar="FILE", help="write the run result as JSON")
    p.add_argument("--cpu", default="cortex-a15", choices=sorted(CPU_MODELS))
    p.add_argument("--host-decompress", action="store_true",
                   help="decompress a zImage payload on the host and enter the kernel directly")
    p.add_argument("--quiet", action="store_true", help="do not echo the console")
    p.add_argument("--verbose", action="store_true",
                   help="log guest errors and unimplemented features as they happen")
    p.set_defaults(func=cmd_run)


def _exit_status(args: argparse.Namespace, result: RunResult) -> int:
    if result.reason == "until":
        return 0
    if result.reason == "poweroff":
        return 0 if not result.exit_status else 1
    if result.reason == "max-instructions" and not args.until:
        return 0
    return 1


def result_json(machine: Machine, result: RunResult, args: argparse.Namespace,
                code: int) -> dict[str, Any]:
    """The versioned JSON document of one run (schema in docs/machine.md)."""
    return {
        "schema": RESULT_SCHEMA,
        "board": args.board,
        "image": {"kind": "bios" if args.bios else "kernel" if args.kernel else "elf",
                  "path": args.bios or args.kernel or args.elf},
        "cpu": machine.cpu.model,
        "exit_code": code,
        "result": result.describe(),
        "idle_ticks": machine.idle_ticks,
        "clock_hz": machine.clock.hz,
        "boot": machine.boot.describe() if machine.boot else None,
        "console": machine.console.decode("utf-8", errors="replace"),
        "stubs_touched": machine.touched_stubs(),
        "guest_errors": machine.guest_errors(),
        "unimplemented": machine.unimplemented(),
        "exceptions": dict(machine.exceptions.counts),
        "irq_deliveries": len(machine.irq_deliveries),
        "smccc_calls": [{"conduit": c, "fid": f, "r0": r} for c, f, r in machine.smccc.calls],
        "dma_log": [r.describe() for r in machine.bus.dma_log.records],
        "timer_intercept": dict(machine.intercept.stats) if machine.intercept else None,
        "trace_digest": machine.trace_digest(),
        "memory_map": machine.describe()["memory_map"],
    }


def cmd_run(args: argparse.Namespace) -> int:
    out: TextIO = getattr(args, "stdout", None) or sys.stdout
    if args.initrd and not args.kernel:
        raise ConfigurationError("--initrd needs --kernel")
    if args.host_decompress and not args.kernel:
        raise ConfigurationError("--host-decompress needs --kernel")
    if args.append is not None and not args.kernel and not args.elf:
        raise ConfigurationError("--append needs --kernel or --elf")

    def echo(data: bytes) -> None:
        out.write(data.decode("utf-8", errors="replace"))
        out.flush()

    emu_log = logging.getLogger("emu")
    saved_level = emu_log.level
    if not args.verbose:  # the summary lists them; do not interleave them with the console
        emu_log.setLevel(logging.ERROR)
    try:
        return _run(args, out, echo)
    finally:
        emu_log.setLevel(saved_level)


def _run(args: argparse.Namespace, out: TextIO, echo: Callable[[bytes], None]) -> int:
    machine = Machine(args.board, cpu=args.cpu, console=None if args.quiet else echo)
    if args.bios:
        machine.load_bios(args.bios)
    elif args.kernel:
        machine.load_kernel(args.kernel, host_decompress=args.host_decompress,
                            initrd=args.initrd, append=args.append)
    else:
        machine.load_elf(args.elf)
        if args.append is not None:
            from emu.dt import guest
            guest.set_bootargs(machine.tree, args.append)
    if args.dtb:
        machine.set_dtb(args.dtb)
    for line in args.send:
        machine.send(line + "\r", after=args.prompt or None)
    result = machine.run(max_instructions=args.max_instructions, until_console=args.until,
                         max_seconds=args.max_seconds)
    code = _exit_status(args, result)
    err = getattr(args, "stderr", None) or sys.stderr
    print(file=err)
    print(f"stop: {result.reason}" + (f" (status {result.exit_status})"
                                      if result.exit_status is not None else "")
          + (f": {result.message}" if result.message else ""), file=err)
    print(f"instructions: {result.instructions}  virtual: {result.virtual_seconds:.3f} s  "
          f"wall: {result.wall_seconds:.2f} s  {result.mips:.1f} MIPS", file=err)
    stubs = machine.touched_stubs()
    if stubs:
        print("stubs touched: " + ", ".join(
            f"{s['name']} @0x{s['start']:x} ({s['accesses']}x)" for s in stubs), file=err)
    errors = machine.guest_errors()
    if errors:
        print(f"guest errors: {len(errors)}", file=err)
        for e in errors[:10]:
            print(f"  {e}", file=err)
    if args.json:
        Path(args.json).write_text(json.dumps(result_json(machine, result, args, code),
                                              indent=2) + "\n")
    return code
