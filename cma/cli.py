"""``python -m cma`` and ``emu cma``: show where a configuration puts its regions.

A thin layer over :class:`cma.core.ContiguousMemory`: parse the options, build
the allocator exactly as the machine would at boot, print the region layout
(and, per ``--device``, which regions that device is served from) as a table
or JSON. User errors end with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from rich.console import Console
from rich.table import Table

from cma.core import ContiguousMemory
from cma.errors import CMAError, InvalidArgument, NoRegion
from cma.memparse import format_size, memparse
from cma.stats import region_flags
from cma.translate import DmaWindow, TableTranslator

__all__ = ["add_arguments", "main", "register", "run"]

DESCRIPTION = (
    "Reserve contiguous memory regions from a kernel command line (cma=, cma_map=, or the "
    "modern cma=SIZE@BASE-LIMIT) and/or a device tree's /reserved-memory, and show the layout."
)


class UsageError(Exception):
    """A bad command-line option (argparse's complaint, as one line)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _number(text: str, what: str) -> int:
    try:
        value, end = memparse(text.strip())
    except CMAError:
        end = -1
        value = 0
    if end != len(text.strip()):
        raise InvalidArgument(f"{what} must be a number like 0x40000000 or 512M, not {text!r}")
    return value


def parse_ram(text: str) -> tuple[int, int]:
    """``START:SIZE`` (memparse numbers) → ``(start, size)``."""
    start, sep, size = text.partition(":")
    if not sep:
        raise InvalidArgument(f"--ram must be START:SIZE (e.g. 0x40000000:512M), not {text!r}")
    return _number(start, "RAM start"), _number(size, "RAM size")


def parse_dma_window(text: str) -> tuple[str, DmaWindow]:
    """``DEVICE=CPU:DMA:SIZE`` → ``(device, (cpu, dma, size))``."""
    device, sep, rest = text.rpartition("=")
    parts = rest.split(":")
    if not sep or not device or len(parts) != 3:
        raise InvalidArgument(f"--dma-window must be DEVICE=CPU:DMA:SIZE, not {text!r}")
    cpu, dma, size = (_number(p, "DMA window field") for p in parts)
    return device, (cpu, dma, size)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared by ``python -m cma`` and ``emu cma``."""
    parser.add_argument("--cmdline", default="", metavar="TEXT",
                        help="a whole kernel command line; only cma= and cma_map= are read")
    parser.add_argument("--ram", action="append", default=[], metavar="START:SIZE",
                        help="a RAM bank, e.g. 0x40000000:512M (repeatable; default: the DTB's)")
    parser.add_argument("--dtb", type=Path, metavar="FILE",
                        help="a device tree blob: /reserved-memory pools, carve-outs, /memory")
    parser.add_argument("--page-size", default="4K", metavar="SIZE", help="page size (4K)")
    parser.add_argument("--defaults", default="", metavar="TEXT",
                        help="platform defaults (cma= and cma_map=), used when the command "
                             "line and device tree configure nothing")
    parser.add_argument("--device", action="append", default=[], metavar="NAME",
                        help="show which regions NAME is served from (repeatable)")
    parser.add_argument("--kind", default=None, metavar="KIND",
                        help="the kind to ask for with --device (default: none)")
    parser.add_argument("--dma-window", action="append", default=[],
                        metavar="DEVICE=CPU:DMA:SIZE",
                        help="a region of DEVICE's DMA view (repeatable); regions are then "
                             "placed where their devices can reach")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def register(subparsers: Any) -> None:
    """Add the ``cma`` sub-command to the ``emu`` command."""
    parser = subparsers.add_parser("cma", help="show a contiguous memory layout",
                                   description=DESCRIPTION)
    add_arguments(parser)
    parser.set_defaults(func=run)


def build(args: argparse.Namespace) -> ContiguousMemory:
    """The allocator the options describe."""
    page_size = _number(args.page_size, "page size")
    ram = [parse_ram(text) for text in args.ram]
    windows: dict[str, list[DmaWindow]] = {}
    for text in args.dma_window:
        device, window = parse_dma_window(text)
        windows.setdefault(device, []).append(window)
    translator = TableTranslator(windows)
    devices = list(dict.fromkeys([*args.device, *windows]))
    defaults = args.defaults or None
    if args.dtb is not None:
        return ContiguousMemory.from_dtb(args.dtb.read_bytes(), args.cmdline, ram or None,
                                         page_size, translator, defaults, devices=devices)
    if not ram:
        raise InvalidArgument("give the RAM with --ram START:SIZE or a device tree with --dtb")
    return ContiguousMemory.from_cmdline(args.cmdline, ram, page_size, translator, defaults,
                                         devices=devices)


def _device_rows(cma: ContiguousMemory, devices: Sequence[str], kind: str | None
                 ) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for device in devices:
        try:
            names = cma.region_names_for(device, kind)
            info = cma.info(device, kind)
        except NoRegion:
            rows.append({"device": device, "kind": kind, "regions": [], "info": None})
            continue
        rows.append({
            "device": device,
            "kind": kind,
            "regions": list(names),
            "info": {"lower": info.lower, "upper": info.upper, "total_size": info.total_size,
                     "count": info.count},
        })
    return rows


def run(args: argparse.Namespace) -> int:
    """Build and print; CMA errors propagate to the caller, which prints one line."""
    out: TextIO = getattr(args, "stdout", None) or sys.stdout
    cma = build(args)
    snap = cma.snapshot()
    devices = _device_rows(cma, args.device, args.kind)
    if args.json:
        doc = {
            "page_size": cma.page_size,
            "ram": [{"start": s, "size": n} for s, n in cma.ram],
            "regions": snap["regions"],
            "devices": devices,
        }
        out.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        return 0
    console = Console(file=out, width=None if out.isatty() else 160, highlight=False)
    table = Table(title="CMA regions")
    for column in ("name", "base", "end", "size", "alignment", "allocator", "source", "flags"):
        table.add_column(column, no_wrap=True)
    for region in sorted(cma.regions, key=lambda r: r.base):
        allocator = region.allocator.name
        if region.spec.params:
            allocator += f"({region.spec.params})"
        table.add_row(region.name, f"{region.base:#010x}", f"{region.end:#010x}",
                      format_size(region.size), format_size(region.alignment), allocator,
                      str(region.spec.source), " ".join(region_flags(region)))
    console.print(table)
    if not cma.regions:
        console.print("no regions configured")
    if devices:
        dev_table = Table(title=f"devices (kind {args.kind!r})")
        for column in ("device", "regions", "lower", "upper", "total"):
            dev_table.add_column(column, no_wrap=True)
        for row in devices:
            info = row["info"]
            if info is None:
                dev_table.add_row(row["device"], "none (no rule, no default)", "-", "-", "-")
            else:
                dev_table.add_row(row["device"], ", ".join(row["regions"]),
                                  f"{info['lower']:#010x}", f"{info['upper']:#010x}",
                                  format_size(info["total_size"]))
        console.print(dev_table)
    return 0


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None,
         stderr: TextIO | None = None) -> int:
    """``python -m cma``: 0 on success, 2 on a usage or configuration error."""
    err = stderr or sys.stderr
    parser = _Parser(prog="python -m cma", description=DESCRIPTION)
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"cma: error: {exc}", file=err)
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    args.stdout = stdout or sys.stdout
    try:
        return run(args)
    except (CMAError, OSError) as exc:
        if args.debug:
            raise
        lines = str(exc).splitlines() or [type(exc).__name__]
        print(f"cma: error: {lines[0]}", file=err)
        return 2
