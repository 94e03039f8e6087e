"""The ``emu`` command: a thin layer over the library.

Each sub-command lives with the code it drives and exposes
``register(subparsers)``, which adds its parser and sets ``func(args) -> int``.
User errors end with one line on stderr and exit status 2 (``--debug`` shows
the traceback); a scenario that ran and failed exits 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import TextIO

from cma.errors import CMAError
from emu.errors import EmuError

#: modules that contribute sub-commands, in the order they appear in ``--help``
SUBCOMMAND_MODULES = ("emu.run_cli", "emu.scenario_cli", "emu.dt.cli", "cma.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emu",
        description="An ARMv7-A SoC on Unicorn for contiguous memory and DMA address translation.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(stdout or sys.stdout)
        return 2
    args.stdout = stdout or sys.stdout
    try:
        return int(args.func(args))
    except (EmuError, CMAError, OSError) as exc:
        if args.debug:
            raise
        first = str(exc).splitlines() or [type(exc).__name__]
        rest = str(exc).splitlines()[1:]
        print(f"emu: error: {first[0]}", file=sys.stderr)
        for line in rest:
            print(f"  {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
