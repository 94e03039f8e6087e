"""``emu run``: boot an image on a board, show the console live, summarise the run.

Exit status: 0 when the run ended as asked (the ``--until`` text was seen, or
the guest powered off with status 0, or the instruction budget ran out when
that was the only stop asked for), 1 when the scenario failed (fault, idle,
time limit, non-zero poweroff status, reset), 2 for usage errors, and 130
(SIGINT) or 143 (SIGTERM) when a signal interrupted it: the run stops between
two slices with reason ``interrupted``, and the JSON result and the trace are
still written whole. A second signal aborts at once (no JSON).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, TextIO

from emu.atomic import write_atomic
from emu.cpu.core import CPU_MODELS
from emu.diagnosis import Diagnosis, diagnose
from emu.errors import ConfigurationError
from emu.machine import COUNTING_MODES, DEFAULT_COUNTING, Machine, RunResult
from emu.system import System

#: version of the JSON result written by ``--json`` (see docs/machine.md)
RESULT_SCHEMA = "emu-run/1"
#: the stop reason of a run ended by SIGINT or SIGTERM
INTERRUPTED = "interrupted"
#: signals that end a run cleanly
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class SignalStop:
    """SIGINT and SIGTERM as a clean stop of the machines attached to it.

    Use as a context manager around a run: the handler only records the
    signal; each attached machine checks it between two slices (its
    ``between_slices`` callback) and calls ``request_stop("interrupted")``
    there, so no device model sees an access cut in half (``emu_stop`` inside
    an MMIO callback would replay the access). A signal that arrives before the
    run starts stops it at its first slice. A second signal raises
    :class:`KeyboardInterrupt` at once. Outside the main thread (where Python
    cannot install handlers) it does nothing.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> SignalStop:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._saved[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, old in self._saved.items():
            signal.signal(sig, old)
        self._saved.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            raise KeyboardInterrupt(f"{signal.Signals(signum).name} received twice")
        self.signum = signum

    @property
    def exit_code(self) -> int | None:
        """128 + the signal number once a signal arrived (130 SIGINT, 143 SIGTERM)."""
        return None if self.signum is None else 128 + self.signum

    def attach(self, machine: Machine) -> None:
        """Let a received signal stop ``machine`` at its next slice boundary."""
        before = machine.between_slices

        def check() -> None:
            if before is not None:
                before()
            if self.signum is not None:
                machine.request_stop(INTERRUPTED, None,
                                     f"{signal.Signals(self.signum).name} received")

        machine.between_slices = check


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("run", help="run an image on a board",
                              description="Run U-Boot, Linux or a bare-metal ELF on a board.")
    p.add_argument("scenario", nargs="?", metavar="SCENARIO.toml",
                   help="a scenario file (docs/scenarios.md) instead of --board and an image")
    p.add_argument("--board", help="virt, camsoc, camsoc-alias or a .dts/.dtb")
    img = p.add_mutually_exclusive_group()
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
    p.add_argument("--counting", default=DEFAULT_COUNTING, choices=COUNTING_MODES,
                   help="how virtual time counts instructions: 'blocks' (a native hook per "
                        "translated block, fast; slices may pass a deadline by part of a "
                        "block) or 'instructions' (Unicorn's per-instruction counter, exact "
                        "slices); docs/time.md")
    p.add_argument("--host-decompress", action="store_true",
                   help="decompress a zImage payload on the host and enter the kernel directly")
    p.add_argument("--cma", metavar="TEXT",
                   help="configuration of the CMA core: 2010 'cma=... cma_map=...' or modern "
                        "'cma=64M@...'; reserved at boot and published in the guest's DTB "
                        "(default: a 2010-style cma=/cma_map= found in --append)")
    p.add_argument("--cma-defaults", metavar="TEXT",
                   help="platform defaults used when the CMA configuration says nothing")
    p.add_argument("--page-offset", default="auto", metavar="ADDR",
                   help="the guest's linear map base (CPU address of RAM's start), 'none', or "
                        "'auto' (default: 0x80000000, our firmware's, or 0xC0000000, Linux's, "
                        "whichever the guest's page tables really map)")
    p.add_argument("--dma-policy", default="chunks", choices=("chunks", "reserved", "window"),
                   help="what DMA masters may write: live CMA chunks (default), anything in a "
                        "CMA region, or anything their bus window reaches")
    p.add_argument("--check-aliases", choices=("report", "fail"),
                   help="report (or fail on) physical pages mapped both cacheable and not "
                        "(docs/checkers.md)")
    p.add_argument("--check-coherency", choices=("report", "fail"),
                   help="model the data cache over CMA chunks; report (or fail on) stale reads "
                        "and DMA of dirty lines (docs/checkers.md)")
    p.add_argument("--png", metavar="DIR",
                   help="write captured frames and a picture of the memory map as PNG")
    p.add_argument("--keep-frames", type=int, default=8, metavar="N",
                   help="with --png, how many of the last frames to keep (default 8)")
    p.add_argument("--gdb", type=int, metavar="PORT",
                   help="serve the GDB remote protocol on 127.0.0.1:PORT (0: a free port); "
                        "see docs/gdb.md")
    p.add_argument("--gdb-wait", action=argparse.BooleanOptionalAction, default=True,
                   help="with --gdb, wait for the debugger before the first instruction "
                        "(default; --no-gdb-wait starts at once)")
    p.add_argument("--trace", metavar="CATS",
                   help="trace cpu,mmio,dma,irq,svc (comma list, or all); see docs/trace.md")
    p.add_argument("--trace-file", metavar="PATH", help="write the trace here (default stderr)")
    p.add_argument("--trace-range", metavar="START-END",
                   help="trace only virtual PCs (cpu) / physical addresses (mmio, dma) in "
                        "[START, END); START+SIZE also works")
    p.add_argument("--trace-window", metavar="T0-T1",
                   help="trace only virtual time [T0, T1): ticks or with s/ms/us/ns, e.g. 1ms-2ms")
    p.add_argument("--quiet", action="store_true", help="do not echo the console")
    p.add_argument("--verbose", action="store_true",
                   help="log guest errors and unimplemented features as they happen")
    p.set_defaults(func=cmd_run, run_parser=p)


def _exit_status(args: argparse.Namespace, result: RunResult,
                 system: System | None = None) -> int:
    if system is not None and system.failures():
        return 1
    if result.reason == "until":
        return 0
    if result.reason == "poweroff":
        return 0 if not result.exit_status else 1
    if result.reason == "max-instructions" and not args.until:
        return 0
    return 1


def result_json(machine: Machine, result: RunResult, args: argparse.Namespace,
                code: int, system: System | None = None, *,
                diagnosis: Diagnosis | None = None) -> dict[str, Any]:
    """The versioned JSON document of one run (schema in docs/machine.md).

    A failed run (``code`` not 0) carries its :mod:`emu.diagnosis` under ``diagnosis``.
    """
    if diagnosis is None and code != 0:
        diagnosis = diagnose(machine, result, system)
    doc = {
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
        "counting": machine.counting,
        "trace_digest": machine.trace_digest(),
        "memory_map": machine.describe()["memory_map"],
        "diagnosis": diagnosis.data if diagnosis is not None and code != 0 else None,
    }
    if system is not None:
        doc["system"] = system.describe()
        doc["frames"] = system.frame_records()
        doc["failures"] = system.failures()
    return doc


def cmd_run(args: argparse.Namespace) -> int:
    if args.scenario:
        from emu.scenario_cli import run_scenario_command

        return run_scenario_command(args)
    if not args.board or not (args.bios or args.kernel or args.elf):
        args.run_parser.error("--board and one of --bios, --kernel, --elf are required "
                              "(or a scenario file)")
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
        with SignalStop() as stopper:
            return _run(args, out, echo, stopper)
    finally:
        emu_log.setLevel(saved_level)


def _run(args: argparse.Namespace, out: TextIO, echo: Callable[[bytes], None],
         stopper: SignalStop) -> int:
    machine = Machine(args.board, cpu=args.cpu, console=None if args.quiet else echo,
                      counting=args.counting)
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
    system = _system(args, machine)
    for line in args.send:
        machine.send(line + "\r", after=args.prompt or None)
    err = getattr(args, "stderr", None) or sys.stderr
    stub = None
    if args.gdb is not None:
        from emu.gdbstub import GdbStub

        stub = GdbStub(machine, args.gdb, wait=args.gdb_wait)
        print(f"gdb: listening on {stub.address}", file=err, flush=True)
    tracer = None
    if args.trace or args.trace_file or args.trace_range or args.trace_window:
        from emu import trace

        tracer = trace.install(machine, args.trace, path=args.trace_file, stream=err,
                               addr_range=args.trace_range, window=args.trace_window)
    stopper.attach(machine)
    try:
        result = machine.run(max_instructions=args.max_instructions,
                             until_console=args.until, max_seconds=args.max_seconds)
    finally:
        if tracer is not None:
            tracer.close()  # whole and renamed into place however the run ended
    if stub is not None:
        stub.finish(result)
    code = _exit_status(args, result, system)
    if result.reason == INTERRUPTED and stopper.exit_code is not None:
        code = stopper.exit_code
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
    if system is not None:
        _summarise_system(system, err)
        if args.png:
            for path in system.write_pngs(Path(args.png)):
                print(f"wrote {path}", file=err)
    diagnosis = diagnose(machine, result, system) if code != 0 else None
    if diagnosis is not None:
        print(diagnosis.text, file=err)
    if args.json:
        write_atomic(args.json, json.dumps(result_json(machine, result, args, code, system,
                                                       diagnosis=diagnosis),
                                           indent=2) + "\n")
    return code


def _cma_text(args: argparse.Namespace) -> str:
    if args.cma is not None:
        return str(args.cma)
    if not args.append:
        return ""
    from cma.cmdline import is_modern_form, split_cmdline

    picked = [f"{k}={v}" for k, v in split_cmdline(args.append)
              if v is not None and (k == "cma_map" or (k == "cma" and not is_modern_form(v)))]
    return " ".join(picked)


def _system(args: argparse.Namespace, machine: Machine) -> System | None:
    """The CMA core, its service and the DMA checker (None only without any DMA master)."""
    text = _cma_text(args)
    checks = getattr(args, "check_aliases", None), getattr(args, "check_coherency", None)
    if not text and args.cma_defaults is None and not machine.views and checks == (None, None):
        return None
    raw = str(args.page_offset).lower()
    offset: int | str | None
    if raw in ("none", "auto"):
        offset = None if raw == "none" else "auto"
    else:
        try:
            offset = int(raw, 0)
        except ValueError:
            raise ConfigurationError(f"--page-offset must be an address, 'auto' or 'none', "
                                     f"not {args.page_offset!r}") from None
    system = System(machine, text, defaults=args.cma_defaults, page_offset=offset,
                    dma_policy=args.dma_policy)
    if args.png:
        system.keep_frames(args.keep_frames)
    if checks != (None, None):
        from emu.checkers import install

        system.checkers += install(machine, system.core, aliases=checks[0], coherency=checks[1])
    return system


def _summarise_system(system: System, err: TextIO) -> None:
    regions = system.core.regions
    if regions:
        print("cma regions: " + ", ".join(
            f"{r.name} 0x{r.base:08x}+0x{r.size:x}" for r in regions), file=err)
    frames = system.frame_records()
    if frames:
        landed = sum(1 for f in frames if f["landed"])
        verified = sum(1 for f in frames if f["guest_verified"])
        print(f"frames: {len(frames)} written, {landed} landed in live chunks, "
              f"{verified} verified by the guest", file=err)
    for failure in system.failures():
        print(f"FAIL: {failure}", file=err)
