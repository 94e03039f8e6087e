"""``emu sweep`` and ``emu run SCENARIO.toml``: scenarios from the command line.

Exit status: 0 when every scenario passed, 1 when any failed, 2 for usage and
input errors (a scenario file that does not load, a scheduler that cannot be
reached), 130 (SIGINT) or 143 (SIGTERM) when a signal interrupted the run. An
interrupted scenario stops between two slices with reason ``interrupted``; an
interrupted sweep ends its workers and reports every unfinished scenario as an
error row. Their JSON (and HTML) reports are still written, whole.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any, TextIO

from emu.atomic import write_atomic
from emu.errors import ConfigurationError
from emu.run_cli import SignalStop
from emu.scenario import ScenarioResult, load_scenario, run_scenario, with_outputs
from emu.sweep import (
    describe_result,
    format_value,
    load_all,
    random_cma_scenarios,
    render_html,
    run_sweep,
)

#: a sweep lists every scenario in its table up to this many, else only the failed ones
TABLE_ROWS = 30


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sweep", help="run many scenarios in parallel and aggregate the results",
        description="Run scenario files (or random CMA layouts) on a local process pool or "
                    "a Dask cluster; print a summary and write one report.")
    p.add_argument("files", nargs="*", metavar="SCENARIO.toml", help="scenario files")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="worker processes (default: one per CPU)")
    p.add_argument("--scheduler", metavar="ADDR",
                   help="run on Dask: a scheduler address (tcp://127.0.0.1:8786) or 'local' "
                        "to start a LocalCluster on 127.0.0.1")
    p.add_argument("--random-cma", type=int, metavar="N",
                   help="add N random, valid cma=/cma_map= layouts as kind=\"cma\" scenarios")
    p.add_argument("--seed", type=int, default=1, help="seed of --random-cma (default 1)")
    p.add_argument("--allocs", type=int, default=400, metavar="N",
                   help="allocations per random layout (default 400)")
    p.add_argument("--json", metavar="FILE", help="write the aggregated report as JSON")
    p.add_argument("--html", metavar="FILE", help="write a short HTML report")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)


def _stderr(args: argparse.Namespace) -> TextIO:
    return getattr(args, "stderr", None) or sys.stderr


def cmd_sweep(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    out: TextIO = getattr(args, "stdout", None) or sys.stdout
    scenarios = load_all(args.files)
    if args.random_cma is not None:
        if args.allocs <= 0:
            raise ConfigurationError(f"--allocs must be positive, not {args.allocs}")
        scenarios += random_cma_scenarios(args.random_cma, args.seed, args.allocs)
    if not scenarios:
        raise ConfigurationError("nothing to run: give scenario files or --random-cma N")
    console = Console(file=_stderr(args))
    with SignalStop() as stopper, Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console, disable=args.quiet) as bar:
        task = bar.add_task("scenarios", total=len(scenarios))

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = run_sweep(scenarios, jobs=args.jobs, scheduler=args.scheduler,
                           progress=progress, stop=lambda: stopper.signum is not None)
        print_summary(report, out)
        if args.json:
            write_atomic(args.json, json.dumps(report, indent=2) + "\n")
        if args.html:
            write_atomic(args.html, render_html(report))
    if stopper.exit_code is not None:
        return stopper.exit_code
    return 0 if report["failed"] == 0 else 1


def print_summary(report: dict[str, Any], out: TextIO) -> None:
    """A rich table of the scenarios (or only the failed ones) and the statistics."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(file=out, width=140)
    rows = report["results"]
    shown = rows if len(rows) <= TABLE_ROWS else [r for r in rows if not r["passed"]]
    if shown:
        table = Table(title="scenarios" if shown is rows else "failed scenarios")
        for col in ("name", "kind", "result", "details"):
            table.add_column(col)
        for r in shown[:TABLE_ROWS]:
            table.add_row(escape(r["name"]), r["kind"],
                          "pass" if r["passed"] else "[red]FAIL[/red]", escape(describe_result(r)))
        console.print(table)
    for kind, stats in report["statistics"].items():
        table = Table(title=f"{kind} scenarios")
        table.add_column("statistic")
        table.add_column("value")
        for key, value in stats.items():
            table.add_row(key, escape(format_value(value)))
        console.print(table)
    host = report["host"]
    console.print(f"{report['passed']} passed, {report['failed']} failed of {report['count']} "
                  f"on {escape(host['executor'])} in {host['wall_seconds']} s "
                  f"({host['scenarios_per_second']} scenarios/s)", highlight=False)


def run_scenario_command(args: argparse.Namespace) -> int:
    """``emu run SCENARIO.toml``: run one scenario, echo its console, list failed checks."""
    clash = [f"--{k}" for k in ("board", "bios", "kernel", "elf") if getattr(args, k, None)]
    if clash:
        raise ConfigurationError(f"a scenario file describes the run; drop {', '.join(clash)}")
    out: TextIO = getattr(args, "stdout", None) or sys.stdout
    err = _stderr(args)
    sc = with_outputs(load_scenario(args.scenario), json_out=getattr(args, "json", None),
                      png_out=getattr(args, "png", None))

    def echo(data: bytes) -> None:
        out.write(data.decode("utf-8", errors="replace"))
        out.flush()

    with SignalStop() as stopper:
        result = run_scenario(dataclasses.replace(sc, json_out=None),
                              console=None if getattr(args, "quiet", False) else echo,
                              on_machine=stopper.attach)
        if sc.json_out:
            write_atomic(sc.json_out, json.dumps(result.to_json(), indent=2) + "\n")
        print_result(result, err)
    if stopper.exit_code is not None:
        return stopper.exit_code
    return result.exit_code


def print_result(result: ScenarioResult, err: TextIO) -> None:
    """The stop, the counters and every failed check, one per line."""
    s = result.summary
    print(file=err)
    if result.kind == "machine":
        stop = s["stop"]
        print(f"stop: {stop['reason']}" + (f" (status {stop['exit_status']})"
                                           if stop["exit_status"] is not None else "")
              + f"  instructions: {s['instructions']}  wall: {result.wall_seconds:.2f} s",
              file=err)
    print(f"scenario {result.name}: {len(result.checks)} checks, {len(result.failed)} failed",
          file=err)
    for line in result.failed:
        print(f"FAIL: {line}", file=err)
    if result.passed:
        print("PASS", file=err)
