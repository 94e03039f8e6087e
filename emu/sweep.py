"""Sweeps: many scenarios on a local process pool or a Dask cluster, one aggregated report.

:func:`run_sweep` ships scenarios in batches to a :class:`concurrent.futures.Executor`
(a :class:`~concurrent.futures.ProcessPoolExecutor` by default, or the
``concurrent.futures``-compatible executor of a Dask ``distributed.Client``) and
aggregates the results into one report. Results are sorted by their position in
the input and carry no host timing, so the report (apart from its ``host`` part)
is the same whichever executor ran it.

Nothing is lost: a scenario that raises, or whose worker process dies, gets an
error row (:func:`error_row`) and every other scenario its result; an
interrupted sweep (``stop``) reports what finished and marks the rest.

:func:`random_cma_scenarios` makes seeded, valid ``cma=``/``cma_map=`` layouts as
``kind = "cma"`` scenarios: the showcase sweep.
"""

from __future__ import annotations

import html
import math
import multiprocessing
import os
import random
import signal
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    BrokenExecutor,
    Executor,
    Future,
    ProcessPoolExecutor,
    wait,
)
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from emu.errors import ConfigurationError
from emu.scenario import (
    CmaDevice,
    Expectations,
    Scenario,
    ScenarioResult,
    WorkloadSpec,
    load_scenario,
    run_scenario,
)

#: the ``schema`` of a sweep report
REPORT_SCHEMA = "emu-sweep/1"
_MIB = 1 << 20
RAM_BASE = 0x4000_0000
#: allocators (with parameters) random layouts choose from
RANDOM_ALLOCATORS = ("", "bf", "bitmap", "bitmap(order_per_bit=2)", "twoended")
#: the devices of a random layout: camera behind a 256 MiB bus offset, a display through a
#: 0xC0000000 alias, a codec with an identity view (as on camsoc)
RANDOM_DEVICES = ("camera", "clcd", "codec")

Progress = Callable[[int, int], None]


# --- random layouts ----------------------------------------------------------------------
def random_cma_scenario(seed: int, index: int, allocs: int = 400) -> Scenario:
    """One seeded, valid random layout; the same ``(seed, index)`` gives the same scenario.

    RAM is 256 MiB to 1 GiB at 0x40000000 (sometimes with a second bank); one to four
    regions of 1 to 32 MiB (sometimes with a START wish, an alignment, another
    allocator), each device mapped to one or two of them, sometimes a catch-all
    rule; one layout in eight uses the mainline ``cma=SIZE[@BASE-LIMIT]`` form.
    Every region fits where all its devices can reach, so placement must succeed.
    """
    rng = random.Random(seed * 1_000_003 + index)
    ram0 = rng.choice((256, 512, 1024)) * _MIB
    ram = [(RAM_BASE, ram0)]
    if rng.random() < 0.25:
        ram.append((0xA000_0000, 256 * _MIB))
    cam_window = min(ram0, 256 * _MIB)
    devices = (
        CmaDevice("camera", ((RAM_BASE, 0, cam_window),)),
        CmaDevice("clcd", ((RAM_BASE, 0xC000_0000, min(ram0, 0x3000_0000)),)),
        CmaDevice("codec", None),
    )
    if rng.random() < 0.125:
        size = rng.choice((8, 16, 32, 64)) * _MIB
        if rng.random() < 0.5:
            text = f"cma={size // _MIB}M"
        else:
            lo = RAM_BASE + rng.randrange(0, cam_window // 2, 16 * _MIB)
            text = f"cma={size // _MIB}M@0x{lo:x}-0x{lo + cam_window // 2:x}"
    else:
        count = rng.randint(1, 4)
        names = [f"r{i}" for i in range(count)]
        parts = []
        for name in names:
            part = f"{name}={rng.choice((1, 2, 4, 8, 16, 32))}M"
            if rng.random() < 0.25:
                part += f"@0x{RAM_BASE + rng.randrange(0, cam_window, _MIB):x}"
            if rng.random() < 0.3:
                part += "/" + rng.choice(("64K", "1M", "4M"))
            alloc = rng.choice(RANDOM_ALLOCATORS)
            if alloc:
                part += f":{alloc}"
            parts.append(part)
        rules = []
        for dev in rng.sample(RANDOM_DEVICES, len(RANDOM_DEVICES)):
            picked = rng.sample(names, min(len(names), rng.randint(1, 2)))
            rules.append(f"{dev}={','.join(picked)}")
        if rng.random() < 0.3:
            rules.append(f"*={rng.choice(names)}")
        text = f"cma={';'.join(parts)} cma_map={';'.join(rules)}"
    return Scenario(
        name=f"random-cma-{seed}-{index:05d}", kind="cma", cma=text, ram=tuple(ram),
        devices=devices, workload=WorkloadSpec(seed=seed * 7919 + index, allocs=allocs,
                                               devices=RANDOM_DEVICES),
        expect=Expectations(),
    )


def random_cma_scenarios(count: int, seed: int = 1, allocs: int = 400) -> list[Scenario]:
    """``count`` layouts from :func:`random_cma_scenario` (deterministic in ``seed``)."""
    if count <= 0:
        raise ConfigurationError(f"the number of random layouts must be positive, not {count}")
    return [random_cma_scenario(seed, i, allocs) for i in range(count)]


# --- executors -----------------------------------------------------------------------------
@contextmanager
def open_executor(jobs: int | None = None, scheduler: str | None = None
                  ) -> Iterator[tuple[Executor, str, int]]:
    """``(executor, description, workers)``: a local process pool, or Dask.

    ``scheduler`` is None (local processes), ``"local"`` (start a Dask
    LocalCluster on 127.0.0.1 with ``jobs`` single-threaded workers) or the
    address of a running Dask scheduler (``tcp://127.0.0.1:8786``).
    """
    if jobs is not None and jobs <= 0:
        raise ConfigurationError(f"--jobs must be positive, not {jobs}")
    if scheduler is None:
        workers = jobs or os.cpu_count() or 1
        with _local_pool(workers) as pool:
            yield pool, f"local process pool ({workers} workers)", workers
        return
    from distributed import Client, LocalCluster

    if scheduler == "local":
        workers = jobs or os.cpu_count() or 1
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers, threads_per_worker=1, host="127.0.0.1",
            dashboard_address=None, processes=True)
        with cluster, Client(cluster) as client:  # type: ignore[no-untyped-call]
            executor = client.get_executor()
            yield executor, f"dask LocalCluster ({workers} workers)", workers
        return
    if "://" not in scheduler:
        raise ConfigurationError(f"--scheduler must be 'local' or an address such as "
                                 f"tcp://127.0.0.1:8786, not {scheduler!r}")
    try:
        client = Client(scheduler, timeout=10)  # type: ignore[no-untyped-call]
    except OSError as exc:
        raise ConfigurationError(f"cannot reach the Dask scheduler at {scheduler}: "
                                 f"{exc}") from None
    with client:
        workers = max(sum(client.nthreads().values()), 1)  # type: ignore[no-untyped-call]
        executor = client.get_executor()  # type: ignore[no-untyped-call]
        yield executor, f"dask at {scheduler} ({workers} threads)", workers


#: what a sweep runs for each scenario in a worker (picklable: a module-level function)
Runner = Callable[[Scenario], ScenarioResult]


def _ignore_sigint() -> None:
    """Worker initializer: Ctrl-C in a terminal reaches the whole process group, but only
    the parent decides what an interruption means (it ends the workers itself)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def error_row(sc: Scenario, message: str) -> dict[str, Any]:
    """The report entry of a scenario that produced no result: a failed row with ``error``."""
    return {"name": sc.name, "kind": sc.kind, "source": sc.source, "passed": False,
            "failed": [f"error: {message}"], "error": message}


def _run_batch(batch: list[tuple[int, Scenario]], runner: Runner = run_scenario
               ) -> list[tuple[int, dict[str, Any], float]]:
    """Run a batch in a worker: ``(index, summary, seconds)`` per scenario.

    A scenario that raises becomes an error row; the rest of the batch still runs.
    """
    out = []
    for index, sc in batch:
        try:
            result = runner(sc)
        except Exception as exc:  # any failure of one scenario is its row
            out.append((index, error_row(sc, f"{type(exc).__name__}: {exc}"), 0.0))
            continue
        out.append((index, result.to_summary(), result.wall_seconds))
    return out


# --- the sweep -------------------------------------------------------------------------------
def load_all(paths: Sequence[str | Path]) -> list[Scenario]:
    """Load every file first, so a bad file stops the sweep before anything runs."""
    return [load_scenario(p) for p in paths]


def run_sweep(scenarios: Sequence[Scenario], *, jobs: int | None = None,
              scheduler: str | None = None, executor: Executor | None = None,
              batch_size: int | None = None, progress: Progress | None = None,
              runner: Runner = run_scenario, stop: Callable[[], bool] | None = None
              ) -> dict[str, Any]:
    """Run every scenario and return the aggregated report (see :func:`aggregate`).

    ``executor`` (any ``concurrent.futures.Executor``, e.g. a Dask client's
    ``get_executor()``) is used as given; otherwise one is opened from ``jobs``
    and ``scheduler`` (:func:`open_executor`). ``progress(done, total)`` is called
    as batches finish.

    Nothing is lost: a scenario that raises is an error row; when a worker dies
    (killed, crashed, ``os._exit``), every scenario it may have been running is
    run again on fresh local worker processes, the suspects one at a time, so
    every other scenario still gets its result and the one that kills its worker
    gets an error row. ``runner`` (picklable) runs one scenario in a worker:
    :func:`~emu.scenario.run_scenario` unless a test or an experiment wants
    another. ``stop()`` is polled a few times a second; once it returns True the
    sweep ends its workers and reports every unfinished scenario as an
    ``interrupted`` error row (``report["interrupted"]`` is True).
    """
    if not scenarios:
        raise ConfigurationError("a sweep needs at least one scenario")
    began = time.perf_counter()
    sweep = _Sweep(scenarios, runner, progress, stop or (lambda: False))
    if executor is not None:
        where, workers = type(executor).__name__, jobs or 0
        sweep.first_pass(executor, jobs or 2, batch_size, owned=False)
    else:
        with open_executor(jobs, scheduler) as (pool, where, workers):
            sweep.first_pass(pool, workers, batch_size, owned=scheduler is None)
    sweep.retry(max(jobs or workers or 1, 1))
    sweep.finish()
    wall = time.perf_counter() - began
    return aggregate(sweep.rows, executor=where, workers=workers, wall_seconds=wall,
                     interrupted=sweep.interrupted)


#: the most scenarios one task carries by default: an interruption loses at most the
#: unfinished batches, so a batch stays a few seconds of work
MAX_BATCH = 32
#: how often (seconds) a waiting sweep looks at ``stop()``
POLL_SECONDS = 0.2


class _Sweep:
    """The bookkeeping of one sweep: rows so far, scenarios to retry, interruption."""

    def __init__(self, scenarios: Sequence[Scenario], runner: Runner,
                 progress: Progress | None, stop: Callable[[], bool]) -> None:
        self.scenarios = list(scenarios)
        self.runner = runner
        self.progress = progress
        self.stop = stop
        self.rows: list[tuple[int, dict[str, Any], float]] = []
        self.suspects: list[int] = []
        self.interrupted = False

    def _add(self, rows: list[tuple[int, dict[str, Any], float]]) -> None:
        self.rows.extend(rows)
        if self.progress is not None:
            self.progress(len(self.rows), len(self.scenarios))

    def _error(self, index: int, message: str) -> None:
        self._add([(index, error_row(self.scenarios[index], message), 0.0)])

    def _wait(self, pending: set[Future[Any]]) -> set[Future[Any]]:
        """The futures done now; empty once ``stop()`` says so (``interrupted`` is set)."""
        while not self.interrupted:
            if self.stop():
                self.interrupted = True
                break
            done, _ = wait(pending, timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            if done:
                return done
        return set()

    def first_pass(self, executor: Executor, workers: int, batch_size: int | None,
                   owned: bool) -> None:
        """Every scenario in batches; batches whose worker died become suspects."""
        total = len(self.scenarios)
        size = batch_size or max(1, min(math.ceil(total / (max(workers, 1) * 8)), MAX_BATCH))
        indexed = list(enumerate(self.scenarios))
        batches = [indexed[i:i + size] for i in range(0, total, size)]
        if self.progress is not None:
            self.progress(0, total)
        futures = {executor.submit(_run_batch, b, self.runner): [i for i, _ in b]
                   for b in batches}
        pending = set(futures)
        while pending and not self.interrupted:
            for fut in self._wait(pending):
                pending.discard(fut)
                try:
                    self._add(fut.result())
                except Exception:  # a dead worker (BrokenProcessPool,
                    # Dask's KilledWorker, ...): the batch is run again in retry()
                    self.suspects.extend(futures[fut])
        if self.interrupted:
            self.suspects.clear()
            for fut in pending:
                fut.cancel()
            if owned:
                _end_workers(executor)

    def retry(self, workers: int) -> None:
        """Run the suspects alone or a few at a time on fresh local processes.

        ``workers`` at a time; when the pool breaks again, the ones it was running
        are run one per pool, so a death names exactly one scenario.
        """
        queue = sorted(self.suspects)
        self.suspects = []
        while queue and not self.interrupted:
            alone: list[int] = []
            with _local_pool(workers) as pool:
                running: dict[Future[Any], int] = {}
                broken = False
                while (queue or running) and not broken and not self.interrupted:
                    while queue and len(running) < workers:
                        i = queue.pop(0)
                        running[pool.submit(_run_batch, [(i, self.scenarios[i])],
                                            self.runner)] = i
                    for fut in self._wait(set(running)):
                        i = running.pop(fut)
                        try:
                            self._add(fut.result())
                        except BrokenExecutor:
                            alone.append(i)
                            broken = True
                        except Exception as exc:  # e.g. an unpicklable result
                            self._error(i, f"{type(exc).__name__}: {exc}")
                alone += running.values()
                if broken or self.interrupted:
                    _end_workers(pool)
            for i in sorted(alone):
                if self.interrupted:
                    break  # finish() reports what is left
                self._run_alone(i)

    def _run_alone(self, index: int) -> None:
        with _local_pool(1) as pool:
            fut = pool.submit(_run_batch, [(index, self.scenarios[index])], self.runner)
            done = self._wait({fut})
            if not done:
                _end_workers(pool)
                return
            try:
                self._add(fut.result())
            except BrokenExecutor as exc:
                self._error(index, f"the worker process running it died ({exc})")
            except Exception as exc:
                self._error(index, f"{type(exc).__name__}: {exc}")

    def finish(self) -> None:
        """After an interruption: an ``interrupted`` error row for every scenario left."""
        if not self.interrupted:
            return
        seen = {i for i, _, _ in self.rows}
        for i in range(len(self.scenarios)):
            if i not in seen:
                self._error(i, "interrupted before it finished")


@contextmanager
def _local_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    ctx = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                             initializer=_ignore_sigint) as pool:
        yield pool


def _end_workers(executor: Executor) -> None:
    """Stop a local pool at once: cancel what waits, terminate what runs.

    ``ProcessPoolExecutor`` has no public way to end running work; its
    ``_processes`` table is read when present (a Dask executor has none and
    needs nothing: its futures are cancelled).
    """
    executor.shutdown(wait=False, cancel_futures=True)
    processes = getattr(executor, "_processes", None) or {}
    for proc in list(processes.values()):
        if proc.is_alive():
            proc.terminate()


def _stats(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"min": round(min(values), 6), "mean": round(statistics.fmean(values), 6),
            "max": round(max(values), 6)}


def aggregate(rows: Sequence[tuple[int, dict[str, Any], float]], *, executor: str = "",
              workers: int = 0, wall_seconds: float = 0.0,
              interrupted: bool = False) -> dict[str, Any]:
    """One report from ``(index, summary, seconds)`` rows, in input order.

    Everything but ``host`` depends only on the scenarios, so the local pool and
    Dask give equal reports (compare :func:`comparable` of each). Error rows
    (:func:`error_row`) count as failed and stay out of the statistics.
    """
    ordered = sorted(rows, key=lambda r: r[0])
    results = [summary for _, summary, _ in ordered]
    passed = sum(1 for r in results if r["passed"])
    stats: dict[str, Any] = {}
    ran = [r for r in results if "error" not in r]
    cma = [r for r in ran if r["kind"] == "cma"]
    if cma:
        placed = [r for r in cma if "placement_error" not in r]
        by_alloc: dict[str, list[float]] = {}
        for r in placed:
            for region in r["regions"]:
                by_alloc.setdefault(region["allocator"], []).append(region["ext_frag"])
        stats["cma"] = {
            "scenarios": len(cma), "placed": len(placed),
            "regions": sum(len(r["regions"]) for r in placed),
            "attempts": sum(r["attempts"] for r in placed),
            "successes": sum(r["successes"] for r in placed),
            "success_rate": _stats([r["success_rate"] for r in placed]),
            "ext_frag": _stats([r["ext_frag"] for r in placed]),
            "ext_frag_by_allocator": {k: _stats(v) for k, v in sorted(by_alloc.items())},
        }
    machine = [r for r in ran if r["kind"] == "machine"]
    if machine:
        stats["machine"] = {
            "scenarios": len(machine),
            "stops": dict(sorted(Counter(r["stop"]["reason"] for r in machine).items())),
            "instructions": sum(r["instructions"] for r in machine),
            "frames_verified": sum(r["frames"]["verified"] for r in machine),
        }
    seconds = [s for _, _, s in ordered]
    return {
        "schema": REPORT_SCHEMA,
        "count": len(results), "passed": passed, "failed": len(results) - passed,
        "errors": len(results) - len(ran), "interrupted": interrupted,
        "statistics": stats,
        "failures": [{"name": r["name"], "failed": r["failed"]} for r in results
                     if not r["passed"]],
        "results": results,
        "host": {
            "executor": executor, "workers": workers,
            "wall_seconds": round(wall_seconds, 3),
            "scenarios_per_second": round(len(results) / wall_seconds, 1)
            if wall_seconds > 0 else 0.0,
            "scenario_seconds": _stats(seconds),
        },
    }


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """The report without its host part: what must not depend on the executor."""
    return {k: v for k, v in report.items() if k != "host"}


def render_html(report: dict[str, Any], title: str = "emu sweep") -> str:
    """A short standalone HTML page: summary statistics and a table of the scenarios."""
    e = html.escape
    host = report["host"]
    lines = [
        "<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\">",
        f"<title>{e(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #bbb;padding:2px 6px;font-size:90%}"
        ".fail{background:#fdd}.pass{background:#dfd}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p><b>{report['passed']}</b> of {report['count']} passed, "
        f"<b>{report['failed']}</b> failed. Ran on {e(str(host['executor']))} in "
        f"{host['wall_seconds']} s ({host['scenarios_per_second']} scenarios/s).</p>",
    ]
    for kind, stats in report["statistics"].items():
        lines.append(f"<h2>{e(kind)} scenarios</h2><table>")
        for key, value in stats.items():
            lines.append(f"<tr><th>{e(key)}</th><td>{e(format_value(value))}</td></tr>")
        lines.append("</table>")
    lines.append("<h2>Scenarios</h2><table><tr><th>#</th><th>name</th><th>kind</th>"
                 "<th>result</th><th>details</th></tr>")
    for n, r in enumerate(report["results"]):
        cls = "pass" if r["passed"] else "fail"
        lines.append(f"<tr class=\"{cls}\"><td>{n}</td><td>{e(r['name'])}</td>"
                     f"<td>{e(r['kind'])}</td><td>{'pass' if r['passed'] else 'FAIL'}</td>"
                     f"<td>{e(describe_result(r))}</td></tr>")
    lines += ["</table>", "</body></html>", ""]
    return "\n".join(lines)


def format_value(value: Any) -> str:
    """A statistic as text: ``min 0.1, mean 0.2, max 0.3``; nested groups in parentheses."""
    if isinstance(value, dict):
        return ", ".join(f"{k} ({format_value(v)})" if isinstance(v, dict)
                         else f"{k} {format_value(v)}" for k, v in value.items())
    return str(value)


def describe_result(r: dict[str, Any]) -> str:
    """One line about a scenario's outcome, for tables."""
    if r["failed"]:
        return "; ".join(r["failed"])
    if r["kind"] == "cma":
        regions = " ".join(f"{x['name']}@0x{x['base']:08x}+{x['size'] // _MIB}M"
                           for x in r["regions"])
        return (f"{r['cma']} | {regions} | success {100 * r['success_rate']:.1f}% "
                f"frag {r['ext_frag']:.3f}")
    stop = r["stop"]
    return (f"{stop['reason']}"
            + (f" ({stop['exit_status']})" if stop["exit_status"] is not None else "")
            + f", {r['instructions']} instructions, frames verified {r['frames']['verified']}")
