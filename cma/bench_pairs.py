"""Steady-state speed of the CMA core: alloc/put pairs per second with 1,000 live chunks.

For every allocator, one region (256 MiB, 4 KiB pages) is first filled with 1,000
live chunks of mixed, seeded sizes (4 KiB to 1 MiB, log-uniform, page and sometimes
64 KiB aligned). Then, for at least ``--seconds`` of CPU time (``time.process_time``,
so load from other processes does not count), pairs run through the public API
as a driver would call it: ``ContiguousMemory.alloc(device, None, size, alignment)``
(map rules, reachability, the region's allocator, the chunk table) and
``ContiguousMemory.put(phys)`` of a randomly chosen live chunk, so the population
stays at 1,000. Sizes and victims are drawn beforehand from a seeded sequence
and replayed, so every allocator sees the same requests and the random
number generator is not timed.

Two references are measured in the same run with the same driver loop and the same
sequence:

* ``dict``: the loop with a plain ``dict`` insert and delete in place of alloc and
  put, the Python floor of a pair (the baseline of the ratio);
* ``bare``: the region's allocator alone (``Allocator.alloc`` / ``free``), without
  the core around it: what the core itself adds is the difference.

The report also carries each allocator's success rate on the fragmenting
camera/codec workload of :mod:`cma.bench` (same seed), so speed and quality
are read side by side.

``python -m cma.bench_pairs [--seconds S] [--live N] [--seed N] [--json] [SPEC ...]``
(``scripts/bench-cma-pairs``).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from cma.bench import DEFAULT_SPECS, emit_report, make_allocator, run_bench
from cma.config import CmaConfig, MapRule, Pattern, RegionSpec
from cma.core import ContiguousMemory
from cma.errors import InvalidArgument, NoMemory

SCHEMA = "bench-cma-pairs/1"
TARGET_PAIRS_PER_S = 200_000
_KIB, _MIB = 1 << 10, 1 << 20
REGION_SIZE = 256 * _MIB
RAM = ((0x4000_0000, 512 * _MIB),)
DEVICE = "camera"
#: pairs drawn beforehand; the timed loop cycles through them
SEQUENCE = 1 << 16
BATCH = 2048


@dataclass(frozen=True)
class PairPlan:
    """The seeded requests: the initial population and the steady-state pairs."""

    initial: tuple[tuple[int, int], ...]  # (size, alignment)
    pairs: tuple[tuple[int, int, int], ...]  # (size, alignment, victim index)


def _request(rng: random.Random) -> tuple[int, int]:
    size = int(math.exp(rng.uniform(math.log(4 * _KIB), math.log(1 * _MIB))))
    size = (size + 4 * _KIB - 1) & ~(4 * _KIB - 1)
    return size, (64 * _KIB if rng.random() < 0.25 else 0)


def make_sequence(seed: int, live: int, pairs: int = SEQUENCE) -> PairPlan:
    """The same ``seed`` and counts give the same requests."""
    if live <= 0:
        raise InvalidArgument(f"live chunk count must be positive, not {live}")
    rng = random.Random(seed)
    initial = tuple(_request(rng) for _ in range(live))
    steady = tuple((*_request(rng), rng.randrange(live)) for _ in range(pairs))
    return PairPlan(initial, steady)


@dataclass
class PairsResult:
    """One allocator's pairs per second through the core and bare, with references."""

    spec: str
    pairs_per_s: float
    bare_pairs_per_s: float
    vs_dict: float
    core_share: float  #: of a pair's time, the part spent outside the bare allocator
    failed: int  #: allocations refused during the timed pairs (NoMemory)
    pairs: int
    seconds: float
    success_rate: float  #: on the :mod:`cma.bench` fragmenting workload


@dataclass
class PairsReport:
    seed: int
    live: int
    region_size: int
    min_seconds: float
    dict_pairs_per_s: float
    target_pairs_per_s: int = TARGET_PAIRS_PER_S
    results: list[PairsResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, **asdict(self)}


def make_core(spec: str) -> ContiguousMemory:
    """A core with one 256 MiB region managed by ``spec``, mapped to every device."""
    name, _, params = spec.partition("(")
    region = RegionSpec("bench", REGION_SIZE, allocator=name.strip(),
                        params=params.rstrip(")") if params else "")
    rule = MapRule((Pattern("*", None),), ("bench",))
    return ContiguousMemory.from_config(CmaConfig((region,), (rule,)), RAM)


def _timed(step: Callable[[int], int], min_seconds: float) -> tuple[float, int, int]:
    """Run ``step(count)`` batches for at least ``min_seconds`` of this process's CPU time
    (not wall time: other processes on a shared machine would count otherwise):
    (seconds, pairs, failures)."""
    pairs = failures = 0
    began = time.process_time()
    elapsed = 0.0
    while elapsed < min_seconds:
        failures += step(BATCH)
        pairs += BATCH
        elapsed = time.process_time() - began
    return elapsed, pairs, failures


def _core_pairs(spec: str, seq: PairPlan, min_seconds: float) -> tuple[float, int, int]:
    core = make_core(spec)
    alloc, put = core.alloc, core.put
    live = [alloc(DEVICE, None, size, align).phys for size, align in seq.initial]
    todo = seq.pairs
    n = len(todo)
    cursor = 0

    def step(count: int) -> int:
        nonlocal cursor
        failed = 0
        for i in range(cursor, cursor + count):
            size, align, victim = todo[i % n]
            try:
                phys = alloc(DEVICE, None, size, align).phys
            except NoMemory:
                failed += 1
                continue
            put(live[victim])
            live[victim] = phys
        cursor += count
        return failed

    return _timed(step, min_seconds)


def _bare_pairs(spec: str, seq: PairPlan, min_seconds: float) -> tuple[float, int, int]:
    allocator = make_allocator(spec, RAM[0][0], REGION_SIZE, 4 * _KIB)
    alloc, free = allocator.alloc, allocator.free
    live: list[tuple[int, int]] = []
    for size, align in seq.initial:
        addr = alloc(size, align or 4 * _KIB)
        if addr is None:
            raise InvalidArgument(f"{spec}: the initial population does not fit")
        live.append((addr, size))
    todo = seq.pairs
    n = len(todo)
    cursor = 0

    def step(count: int) -> int:
        nonlocal cursor
        failed = 0
        for i in range(cursor, cursor + count):
            size, align, victim = todo[i % n]
            addr = alloc(size, align or 4 * _KIB)
            if addr is None:
                failed += 1
                continue
            free(*live[victim])
            live[victim] = (addr, size)
        cursor += count
        return failed

    return _timed(step, min_seconds)


def _dict_pairs(seq: PairPlan, min_seconds: float) -> tuple[float, int, int]:
    table: dict[int, tuple[int, int]] = {}
    live = list(range(len(seq.initial)))
    for key, request in enumerate(seq.initial):
        table[key] = request
    todo = seq.pairs
    n = len(todo)
    cursor = 0
    next_key = len(live)

    def step(count: int) -> int:
        nonlocal cursor, next_key
        for i in range(cursor, cursor + count):
            size, align, victim = todo[i % n]
            table[next_key] = (size, align)
            del table[live[victim]]
            live[victim] = next_key
            next_key += 1
        cursor += count
        return 0

    return _timed(step, min_seconds)


def run_pairs(specs: Sequence[str] = DEFAULT_SPECS, seed: int = 1, live: int = 1000,
              min_seconds: float = 1.0) -> PairsReport:
    """Measure every spec (the default allocator first) and the dict reference."""
    if min_seconds <= 0:
        raise InvalidArgument(f"seconds must be positive, not {min_seconds}")
    ordered = list(dict.fromkeys(s.strip() for s in specs))
    if "bf" not in ordered:
        ordered.insert(0, "bf")
    seq = make_sequence(seed, live)
    seconds, pairs, _ = _dict_pairs(seq, min_seconds)
    report = PairsReport(seed, live, REGION_SIZE, min_seconds, pairs / seconds)
    quality = {r.spec: r.success_rate
               for r in run_bench(ordered, seeds=(seed,), repeat=1).results}
    for spec in ordered:
        seconds, pairs, failed = _core_pairs(spec, seq, min_seconds)
        bare_seconds, bare_pairs, _ = _bare_pairs(spec, seq, min_seconds)
        rate, bare = pairs / seconds, bare_pairs / bare_seconds
        report.results.append(PairsResult(
            spec=spec, pairs_per_s=rate, bare_pairs_per_s=bare,
            vs_dict=rate / report.dict_pairs_per_s, core_share=1 - rate / bare,
            failed=failed, pairs=pairs, seconds=seconds, success_rate=quality[spec]))
    return report


def render_table(report: PairsReport, out: IO[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=(f"CMA alloc/put pairs with {report.live} live chunks "
                         f"(region {report.region_size // _MIB} MiB, seed {report.seed}); "
                         f"dict insert/delete reference: {report.dict_pairs_per_s:,.0f}/s"))
    for header in ("allocator", "pairs/s (core)", "vs dict", "pairs/s (bare allocator)",
                   "core share", "refused", "success (bench-cma workload)"):
        table.add_column(header, justify="left" if header == "allocator" else "right")
    for r in report.results:
        rate = f"{r.pairs_per_s:,.0f}"
        if r.spec == "bf" and r.pairs_per_s < report.target_pairs_per_s:
            rate = f"[red]{rate}[/red]"
        table.add_row(r.spec, rate, f"{r.vs_dict:.3f}x", f"{r.bare_pairs_per_s:,.0f}",
                      f"{100 * r.core_share:.0f}%", str(r.failed),
                      f"{100 * r.success_rate:.2f}%")
    Console(file=out, width=160).print(table)


def main(argv: Sequence[str] | None = None, out: IO[str] | None = None) -> int:
    out = out if out is not None else sys.stdout
    parser = argparse.ArgumentParser(
        prog="bench-cma-pairs",
        description="alloc/put pairs per second through the CMA core with N live chunks")
    parser.add_argument("specs", nargs="*", metavar="SPEC", help="NAME or NAME(PARAMS)")
    parser.add_argument("--seconds", type=float, default=1.0,
                        help="minimum timed seconds per allocator")
    parser.add_argument("--live", type=int, default=1000, help="live chunks")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    return emit_report(
        "bench-cma-pairs", args,
        lambda: run_pairs(args.specs or DEFAULT_SPECS, args.seed, args.live, args.seconds),
        render_table, out)


if __name__ == "__main__":
    sys.exit(main())
