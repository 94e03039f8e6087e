"""A seeded workload for reusable regions: page-cache pressure against camera and codec buffers.

:func:`make_workload` builds a deterministic sequence of operations in frame
ticks: page-cache reads lend batches of pages (evicted oldest first past a
cache limit), some batches pinned for a while (direct I/O), processes lend
anonymous memory and give it back when they exit, and two camera ports and a
codec allocate contiguous buffers from the same 64 MiB region. The sequence
does not depend on outcomes, so every :class:`Scenario` (a dedicated region,
a reusable one with or without system memory to migrate to, more or fewer
pinned pages, lending from either end) replays the very same requests.

:func:`replay` runs one scenario and measures what the review's "waste"
objection is about: the memory a dedicated region would have left idle that
served movable pages instead (``reclaimed``), the share of contiguous requests
served, and what it cost them in migrated pages and modelled latency. Every
movable page carries a signature that is checked when it is released, so a
migration that lost a byte would show up as ``corrupt``.

Command line (``scripts/bench-reusable`` or ``python -m cma.movable --bench``)::

    bench-reusable [--seed N] [--seeds N] [--ticks N] [--allocator NAME] [--json]
"""

from __future__ import annotations

import argparse
import heapq
import random
import struct
import sys
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from cma.bench import emit_report
from cma.config import CmaConfig, RegionSpec
from cma.core import ContiguousMemory
from cma.errors import InvalidArgument, NoMemory
from cma.movable import CostModel, LendEnd, MovablePage, MovablePool

__all__ = [
    "SCENARIOS",
    "Op",
    "Scenario",
    "ScenarioResult",
    "Workload",
    "main",
    "make_workload",
    "render_table",
    "replay",
    "run_bench",
]

_KIB, _MIB = 1 << 10, 1 << 20
PAGE = 4 * _KIB
RAM_BASE, RAM_SIZE = 0x40000000, 256 * _MIB
REGION_SIZE = 64 * _MIB
#: ordinary RAM that migrated pages may go to, clear of the region (placed at the top of RAM)
SYSTEM_BASE, SYSTEM_SIZE = 0x44000000, 32 * _MIB
#: the page cache evicts its oldest batches beyond this many pages (40 MiB)
CACHE_PAGES = 40 * _MIB // PAGE
#: the schema version of ``--json``
SCHEMA_VERSION = 1

LEND, RELEASE, ALLOC, PUT, TICK = "lend", "release", "alloc", "put", "tick"
#: (LEND, batch, owner, pages, pinned) | (RELEASE, batch) | (ALLOC, id, device, size, align)
#: | (PUT, id) | (TICK,)
Op = tuple[Any, ...]

_CAMERA_FRAMES = (1280 * 720 * 3 // 2, 1920 * 1080 * 3 // 2)  # NV12 frame buffers
_SIGNATURE = struct.Struct("<QQ")  # batch id, page index: written into every lent page


@dataclass(frozen=True)
class Workload:
    """A replayable operation sequence."""

    seed: int
    ticks: int
    pin_share: float
    ops: tuple[Op, ...]

    def count(self, kind: str) -> int:
        """How many operations of one kind (``"alloc"``, ``"lend"`` ...)."""
        return sum(1 for op in self.ops if op[0] == kind)


def make_workload(seed: int = 1, ticks: int = 3000, pin_share: float = 0.0) -> Workload:
    """The mixed sequence; the same arguments give the same operations.

    Per tick: with probability 0.7 a page-cache read lends 1 to 32 pages for
    one of 64 files; a share ``pin_share`` of these batches is pinned (direct
    I/O into the page) and released 50 to 400 ticks later, the rest stay in
    the cache until it exceeds 40 MiB and the oldest batches are evicted.
    With probability 0.02 a process starts with 32 to 256 pages of anonymous
    memory and exits 100 to 1500 ticks later. Each of two camera ports, when
    idle, starts streaming with probability 0.004: 4 to 6 NV12 frames
    (1280x720 or 1920x1080), 64 KiB aligned, kept 300 to 1200 ticks. With
    probability 0.25 the codec takes a 64 to 384 KiB buffer for 5 to 60 ticks.
    Each activity draws from its own random stream, so ``pin_share`` changes
    which batches are pinned and nothing else.
    """
    if ticks <= 0:
        raise InvalidArgument(f"ticks must be positive, not {ticks}")
    if not 0.0 <= pin_share <= 1.0:
        raise InvalidArgument(f"pin_share must be between 0 and 1, not {pin_share}")
    cache_rng, pin_rng, proc_rng, cam_rng, codec_rng = (
        random.Random(f"{seed}:{name}") for name in ("cache", "pin", "proc", "camera", "codec")
    )
    ops: list[Op] = []
    due: list[tuple[int, int, Op]] = []  # (tick, sequence, op) to emit later
    sequence = 0
    batch = 0
    chunk = 0
    cache: deque[tuple[int, int]] = deque()  # (batch, pages), oldest first
    cached = 0
    port_busy = [0, 0]

    def later(tick: int, op: Op) -> None:
        nonlocal sequence
        heapq.heappush(due, (tick, sequence, op))
        sequence += 1

    for tick in range(ticks):
        while due and due[0][0] <= tick:
            ops.append(heapq.heappop(due)[2])
        if cache_rng.random() < 0.7:
            pages = cache_rng.randint(1, 32)
            owner = f"pagecache:file{cache_rng.randrange(64)}"
            pinned = pin_rng.random() < pin_share
            ops.append((LEND, batch, owner, pages, pinned))
            if pinned:
                later(tick + pin_rng.randint(50, 400), (RELEASE, batch))
            else:
                cache.append((batch, pages))
                cached += pages
                while cached > CACHE_PAGES:
                    old, count = cache.popleft()
                    ops.append((RELEASE, old))
                    cached -= count
            batch += 1
        if proc_rng.random() < 0.02:
            ops.append((LEND, batch, f"proc:{batch}", proc_rng.randint(32, 256), False))
            later(tick + proc_rng.randint(100, 1500), (RELEASE, batch))
            batch += 1
        for port in range(len(port_busy)):
            if tick >= port_busy[port] and cam_rng.random() < 0.004:
                size = cam_rng.choice(_CAMERA_FRAMES)
                lifetime = cam_rng.randint(300, 1200)
                for _ in range(cam_rng.randint(4, 6)):
                    ops.append((ALLOC, chunk, f"camera{port}", size, 64 * _KIB))
                    later(tick + lifetime, (PUT, chunk))
                    chunk += 1
                port_busy[port] = tick + lifetime + 1
        if codec_rng.random() < 0.25:
            ops.append((ALLOC, chunk, "codec", codec_rng.randint(16, 96) * PAGE, PAGE))
            later(tick + codec_rng.randint(5, 60), (PUT, chunk))
            chunk += 1
        ops.append((TICK,))
    return Workload(seed, ticks, pin_share, tuple(ops))


@dataclass(frozen=True)
class Scenario:
    """One way to run the region: dedicated or reusable, and how."""

    name: str
    reusable: bool = True
    system: bool = True  #: migrated pages may go to 32 MiB of ordinary RAM
    pin_share: float = 0.0
    lend_from: LendEnd = "top"


#: the scenarios the benchmark compares, in table order
SCENARIOS = (
    Scenario("dedicated", reusable=False),
    Scenario("reusable, no system RAM", system=False),
    Scenario("reusable"),
    Scenario("reusable, lend from bottom", lend_from="bottom"),
    Scenario("reusable, 2% pinned", pin_share=0.02),
    Scenario("reusable, 10% pinned", pin_share=0.10),
    Scenario("reusable, 30% pinned", pin_share=0.30),
)


@dataclass
class ScenarioResult:
    """What one replay measured (means over seeds when merged)."""

    scenario: str
    allocs: int = 0
    served: int = 0
    blocked_by_pins: int = 0  #: failed allocations whose refusal named a pinned page
    pages_requested: int = 0  #: movable pages asked for
    pages_refused: int = 0  #: movable pages the region could not lend (served elsewhere)
    mean_reclaimed: float = 0.0  #: bytes lent, averaged over ticks
    peak_reclaimed: int = 0
    mean_idle: float = 0.0  #: bytes of the region not in chunks, averaged over ticks
    pages_migrated: int = 0
    max_pages_per_alloc: int = 0
    to_system: int = 0  #: pages migrated out to system memory
    refused_ranges: int = 0
    cost_us: float = 0.0  #: modelled migration cost of all allocations
    max_cost_us: float = 0.0
    corrupt: int = 0  #: released pages whose signature did not survive (must be 0)
    seeds: int = 1

    @property
    def success_rate(self) -> float:
        return self.served / self.allocs if self.allocs else 1.0

    @property
    def reclaimed_share(self) -> float:
        """Of the memory a dedicated region leaves idle, the share that served movable pages."""
        return self.mean_reclaimed / self.mean_idle if self.mean_idle else 0.0

    @property
    def mean_pages_per_alloc(self) -> float:
        return self.pages_migrated / self.allocs if self.allocs else 0.0

    @property
    def mean_cost_us(self) -> float:
        return self.cost_us / self.allocs if self.allocs else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "success_rate": self.success_rate,
                "reclaimed_share": self.reclaimed_share,
                "mean_pages_per_alloc": self.mean_pages_per_alloc,
                "mean_cost_us": self.mean_cost_us}


def build(scenario: Scenario, allocator: str = "bf",
          cost: CostModel | None = None) -> tuple[ContiguousMemory, MovablePool]:
    """The allocator and pool a scenario runs on: one 64 MiB region ``cma`` at the top of RAM."""
    spec = RegionSpec("cma", REGION_SIZE, allocator=allocator, reusable=scenario.reusable)
    cma = ContiguousMemory.from_config(CmaConfig((spec,)), [(RAM_BASE, RAM_SIZE)], PAGE)
    system = (SYSTEM_BASE, SYSTEM_SIZE) if scenario.system else None
    pool = MovablePool(cma, system=system, lend_from=scenario.lend_from, cost=cost)
    return cma, pool


def replay(scenario: Scenario, workload: Workload, allocator: str = "bf",
           cost: CostModel | None = None) -> ScenarioResult:
    """Run ``workload`` on a fresh allocator configured as ``scenario`` says."""
    cma, pool = build(scenario, allocator, cost)
    region = cma.region("cma")
    result = ScenarioResult(scenario.name)
    batches: dict[int, list[MovablePage]] = {}
    chunks: dict[int, tuple[int, int]] = {}  # id -> (phys, size)
    used = 0
    reclaimed_sum = 0
    idle_sum = 0
    ticks = 0
    for op in workload.ops:
        kind = op[0]
        if kind == LEND:
            _, batch, owner, count, pinned = op
            result.pages_requested += count
            try:
                pages = pool.lend(owner, count, pinned=pinned)
            except NoMemory:
                result.pages_refused += count
                continue
            for index, page in enumerate(pages):
                page.write(_SIGNATURE.pack(batch, index))
            batches[batch] = pages
        elif kind == RELEASE:
            for index, page in enumerate(batches.pop(op[1], ())):
                if page.read(0, _SIGNATURE.size) != _SIGNATURE.pack(op[1], index):
                    result.corrupt += 1
                if page.pinned:
                    pool.unpin(page)
                pool.release(page)
        elif kind == ALLOC:
            _, ident, device, size, align = op
            before = pool.totals()
            result.allocs += 1
            try:
                chunk = cma.alloc_from("cma", size, align, device=device)
            except NoMemory as err:
                if "pinned" in str(err):
                    result.blocked_by_pins += 1
            else:
                result.served += 1
                chunks[ident] = (chunk.phys, chunk.size)
                used += chunk.size
            after = pool.totals()
            moved = after.pages_migrated_out - before.pages_migrated_out
            cost_us = after.migration_cost_us - before.migration_cost_us
            result.pages_migrated += moved
            result.max_pages_per_alloc = max(result.max_pages_per_alloc, moved)
            result.cost_us += cost_us
            result.max_cost_us = max(result.max_cost_us, cost_us)
        elif kind == PUT:
            held = chunks.pop(op[1], None)
            if held is not None:
                cma.put(held[0])
                used -= held[1]
        else:
            lent = pool.stats(region).lent_pages * PAGE
            reclaimed_sum += lent
            result.peak_reclaimed = max(result.peak_reclaimed, lent)
            idle_sum += region.size - used
            ticks += 1
    result.mean_reclaimed = reclaimed_sum / max(ticks, 1)
    result.mean_idle = idle_sum / max(ticks, 1)
    result.to_system = pool.system_stats.pages_migrated_in
    result.refused_ranges = pool.stats(region).refused_ranges
    pool.close()
    return result


def _merge(results: list[ScenarioResult]) -> ScenarioResult:
    """Sum counts, average the means, keep the maxima."""
    out = ScenarioResult(results[0].scenario, seeds=len(results))
    n = len(results)
    for r in results:
        for name in ("allocs", "served", "blocked_by_pins", "pages_requested", "pages_refused",
                     "pages_migrated", "to_system", "refused_ranges", "corrupt"):
            setattr(out, name, getattr(out, name) + getattr(r, name))
        out.cost_us += r.cost_us
        out.mean_reclaimed += r.mean_reclaimed / n
        out.mean_idle += r.mean_idle / n
        out.peak_reclaimed = max(out.peak_reclaimed, r.peak_reclaimed)
        out.max_pages_per_alloc = max(out.max_pages_per_alloc, r.max_pages_per_alloc)
        out.max_cost_us = max(out.max_cost_us, r.max_cost_us)
    return out


@dataclass
class Report:
    """Every scenario's result for one set of seeds."""

    seeds: list[int]
    ticks: int
    allocator: str
    cost: CostModel
    results: list[ScenarioResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "seeds": self.seeds,
            "ticks": self.ticks,
            "allocator": self.allocator,
            "region_size": REGION_SIZE,
            "system_size": SYSTEM_SIZE,
            "page_size": PAGE,
            "cost": asdict(self.cost),
            "results": [r.to_json() for r in self.results],
        }


def run_bench(seeds: Sequence[int] = (1,), ticks: int = 3000, allocator: str = "bf",
              scenarios: Sequence[Scenario] = SCENARIOS,
              cost: CostModel | None = None) -> Report:
    """Replay every scenario on the workload of every seed."""
    if not seeds:
        raise InvalidArgument("at least one seed is needed")
    cost = cost or CostModel()
    report = Report(list(seeds), ticks, allocator, cost)
    workloads: dict[tuple[int, float], Workload] = {}
    for scenario in scenarios:
        runs = []
        for seed in seeds:
            key = (seed, scenario.pin_share)
            if key not in workloads:
                workloads[key] = make_workload(seed, ticks, scenario.pin_share)
            runs.append(replay(scenario, workloads[key], allocator, cost))
        report.results.append(_merge(runs))
    return report


def render_table(report: Report, out: IO[str]) -> None:
    """Print the scenarios side by side with ``rich``."""
    from rich.console import Console
    from rich.table import Table

    seeds = (f"seed {report.seeds[0]}" if len(report.seeds) == 1
             else f"seeds {report.seeds[0]}..{report.seeds[-1]}")
    table = Table(title=(f"Reusable regions: {seeds}, {report.ticks} ticks, "
                         f"{REGION_SIZE // _MIB} MiB region ({report.allocator}), "
                         f"{SYSTEM_SIZE // _MIB} MiB system RAM"))
    headers = ("scenario", "success", "pin fails", "reclaimed", "of idle", "lends refused",
               "moved/alloc", "max moved", "to system", "ranges refused", "µs/alloc", "max µs",
               "corrupt")
    for header in headers:
        table.add_column(header, justify="left" if header == "scenario" else "right")
    for r in report.results:
        refused = r.pages_refused / r.pages_requested if r.pages_requested else 0.0
        table.add_row(
            r.scenario,
            f"{100 * r.success_rate:.2f}%",
            f"{r.blocked_by_pins}",
            f"{r.mean_reclaimed / _MIB:.1f} MiB",
            f"{100 * r.reclaimed_share:.1f}%",
            f"{100 * refused:.1f}%",
            f"{r.mean_pages_per_alloc:.1f}",
            f"{r.max_pages_per_alloc}",
            f"{r.to_system}",
            f"{r.refused_ranges}",
            f"{r.mean_cost_us:,.0f}",
            f"{r.max_cost_us:,.0f}",
            f"{r.corrupt}",
        )
    Console(file=out, width=200).print(table)


def main(argv: Sequence[str] | None = None, out: IO[str] | None = None) -> int:
    """Parse the command line, run the benchmark, print a table or JSON."""
    out = out if out is not None else sys.stdout
    parser = argparse.ArgumentParser(
        prog="bench-reusable",
        description="Lend a reusable CMA region to movable pages and measure the cost.")
    parser.add_argument("--bench", action="store_true", help="run the benchmark")
    parser.add_argument("--seed", type=int, default=1, help="first seed")
    parser.add_argument("--seeds", type=int, default=1, help="how many seeds, pooled")
    parser.add_argument("--ticks", type=int, default=3000, help="frame ticks per run")
    parser.add_argument("--allocator", default="bf", help="allocator of the region")
    parser.add_argument("--page-us", type=float, default=CostModel.page_us,
                        help="modelled fixed cost per migrated page (µs)")
    parser.add_argument("--copy-bytes-per-us", type=float,
                        default=CostModel.copy_bytes_per_us, help="modelled copy speed")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    if not args.bench:
        parser.print_usage(sys.stderr)
        print("bench-reusable: error: nothing to do (use --bench)", file=sys.stderr)
        return 2
    return emit_report(
        "bench-reusable", args,
        lambda: run_bench(range(args.seed, args.seed + max(args.seeds, 0)), args.ticks,
                          args.allocator,
                          cost=CostModel(page_us=args.page_us,
                                         copy_bytes_per_us=args.copy_bytes_per_us)),
        render_table, out)


if __name__ == "__main__":
    sys.exit(main())
