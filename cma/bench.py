"""A fragmentation and speed benchmark of the registered allocators.

:func:`make_workload` builds a seeded, deterministic sequence of allocations
and frees that mixes camera and decoder streams (sets of 4 to 8 frame
buffers that live as long as their stream), a display (two framebuffers kept for
the whole run) and a video codec (many small and medium buffers that live a
few frames). :func:`run_bench` replays the same sequence against each
allocator and measures the host allocation rate, the share of requests
served, and how fragmented the free space is at the end and on average.

Command line (``scripts/bench-cma`` or ``python -m cma.bench``)::

    bench-cma [--seed N] [--seeds N] [--allocs N] [--region-size 64M]
              [--page-size 4K] [--repeat N] [--json] [SPEC ...]

where a SPEC is an allocator name with optional parameters, ``bitmap`` or
``'bitmap(order_per_bit=2)'``. The ``bf`` allocator is always measured and is
the baseline of the speed ratio. ``--seeds N`` runs seeds ``seed`` to
``seed + N - 1`` and reports means.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import platform
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from cma.allocators import (
    DEFAULT_ALLOCATOR,
    Allocator,
    align_up,
    get_allocator,
    parse_size,
)
from cma.errors import CMAError, InvalidArgument

#: version of the ``--json`` document
SCHEMA_VERSION = 1
#: the allocator whose speed the others are compared to
BASELINE = DEFAULT_ALLOCATOR
#: measured when no SPEC is given
DEFAULT_SPECS = ("bf", "bitmap", "bitmap(order_per_bit=2)", "twoended")
#: a fragmentation sample is taken every this many operations
SAMPLE_EVERY = 64

ALLOC, FREE = 0, 1
#: (ALLOC, id, size, alignment) or (FREE, id, 0, 0)
Op = tuple[int, int, int, int]

_KIB, _MIB = 1 << 10, 1 << 20
#: camera modes: (width, height, bytes per pixel) for YUYV and NV12 frames
_CAMERA_MODES = ((640, 480, 2.0), (640, 480, 1.5), (1280, 720, 2.0), (1280, 720, 1.5))
_CAMERA_PORTS, _DECODERS = 3, 2
#: decoder reference frames: NV12 only
_DECODER_MODES = ((640, 480, 1.5), (1280, 720, 1.5))


@dataclass(frozen=True)
class Workload:
    """A replayable sequence of allocations and frees in one region."""

    seed: int
    region_size: int
    page_size: int
    ops: tuple[Op, ...]

    @property
    def num_allocs(self) -> int:
        """How many allocation requests the sequence makes."""
        return sum(1 for op in self.ops if op[0] == ALLOC)


def make_workload(
    seed: int = 1, allocs: int = 20000, region_size: int = 64 * _MIB, page_size: int = 4 * _KIB
) -> Workload:
    """Generate the camera/display/codec workload; the same arguments give the same ops.

    Time advances in frame ticks. The display holds two 1280x720 32-bit
    framebuffers from the first tick on. Three camera ports start
    streams at random (1% a tick once idle for 200 ticks): 4 to 8 frame
    buffers of one mode (640x480 or 1280x720, YUYV or NV12), 64 KiB aligned,
    freed together after 1500 to 5000 ticks. Two video decoders open streams
    the same way with a pool of 4 to 8 NV12 reference frames. Meanwhile the
    codec asks for two short-lived buffers a tick, with exponentially
    distributed lifetimes: metadata (4 to 64 KiB, mean 30 ticks, 55%),
    bitstream (64 to 256 KiB, mean 60 ticks, 30%) and intermediate buffers
    (256 to 384 KiB, mean 20 ticks, 15%). Sizes scale with ``region_size``
    relative to 64 MiB so the pressure stays comparable. The sequence makes
    exactly ``allocs`` requests and ends live (nothing is freed at the end).
    """
    if allocs <= 0:
        raise InvalidArgument(f"allocation count must be positive, not {allocs}")
    rng = random.Random(seed)
    scale = region_size / (64 * _MIB)
    ops: list[Op] = []
    expiries: list[tuple[int, int]] = []  # (tick, id)
    next_id = 0
    made = 0
    tick = 0

    def request(size: float, alignment: int, lifetime: int | None) -> None:
        nonlocal next_id, made
        if made >= allocs:
            return
        pages = align_up(max(int(size * scale), 1), page_size)
        ops.append((ALLOC, next_id, pages, max(alignment, page_size)))
        if lifetime is not None:
            heapq.heappush(expiries, (tick + max(lifetime, 1), next_id))
        next_id += 1
        made += 1

    def stream_start(modes: Sequence[tuple[int, int, float]], alignment: int) -> int:
        width, height, bpp = rng.choice(modes)
        lifetime = rng.randint(1500, 5000)
        for _ in range(rng.randint(4, 8)):
            request(width * height * bpp, alignment, lifetime)
        return tick + lifetime

    for _ in range(2):
        request(1280 * 720 * 4, 4 * _KIB, None)
    # streams (camera ports, then decoder instances): idle until this tick
    busy_until = [0] * (_CAMERA_PORTS + _DECODERS)
    while made < allocs:
        tick += 1
        while expiries and expiries[0][0] <= tick:
            ops.append((FREE, heapq.heappop(expiries)[1], 0, 0))
        for stream, until in enumerate(busy_until):
            if tick >= until + 200 and rng.random() < 0.01:
                if stream < _CAMERA_PORTS:
                    busy_until[stream] = stream_start(_CAMERA_MODES, 64 * _KIB)
                else:
                    busy_until[stream] = stream_start(_DECODER_MODES, 4 * _KIB)
        for _ in range(2):
            kind = rng.random()
            if kind < 0.55:
                request(rng.randint(1, 16) * 4 * _KIB, 4 * _KIB, int(rng.expovariate(1 / 30)))
            elif kind < 0.85:
                request(rng.randint(16, 64) * 4 * _KIB, 4 * _KIB, int(rng.expovariate(1 / 60)))
            else:
                request(rng.randint(64, 96) * 4 * _KIB, 4 * _KIB, int(rng.expovariate(1 / 20)))
    return Workload(seed, region_size, page_size, tuple(ops))


@dataclass
class Result:
    """What one allocator did with the workload (over all seeds).

    Sizes are bytes; ``*_end`` values are taken when the sequence ends (with
    the long-lived buffers still held) and, like ``mean_ext_frag`` (sampled
    every :data:`SAMPLE_EVERY` operations), averaged over the seeds.
    """

    spec: str
    allocs_per_s: float
    ratio_to_baseline: float
    attempts: int
    successes: int
    success_rate: float
    free_end: float
    largest_free_end: float
    ext_frag_end: float
    mean_ext_frag: float
    waste_end: float


@dataclass
class Report:
    """The side-by-side comparison, plus what is needed to reproduce it."""

    seeds: list[int]
    allocs: int
    region_size: int
    page_size: int
    repeat: int
    results: list[Result] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (``schema`` versioned)."""
        return {"schema": SCHEMA_VERSION, **asdict(self)}


_SPEC_RE = re.compile(r"([A-Za-z0-9]+)(?:\((.*)\))?\Z")


def make_allocator(spec: str, start: int, size: int, page_size: int) -> Allocator:
    """Instantiate ``name`` or ``name(params)`` for a region."""
    match = _SPEC_RE.match(spec.strip())
    if not match:
        raise InvalidArgument(f"allocator spec must be NAME or NAME(PARAMS), not {spec!r}")
    name, params = match.groups()
    return get_allocator(name)(start, size, page_size, params or "")


def external_fragmentation(allocator: Allocator) -> tuple[int, int, float]:
    """``(free bytes, largest free extent, 1 - largest/free)``; 0.0 when nothing is free."""
    total = largest = 0
    for _, size in allocator.iter_free():
        total += size
        largest = max(largest, size)
    return total, largest, (1.0 - largest / total) if total else 0.0


def _replay(allocator: Allocator, ops: Sequence[Op], sample: bool) -> tuple[int, int, list[float]]:
    """Run the ops; returns (attempts, successes, fragmentation samples)."""
    live: dict[int, tuple[int, int]] = {}
    attempts = successes = 0
    samples: list[float] = []
    alloc, free = allocator.alloc, allocator.free
    for n, (kind, ident, size, alignment) in enumerate(ops):
        if kind == ALLOC:
            attempts += 1
            addr = alloc(size, alignment)
            if addr is not None:
                successes += 1
                live[ident] = (addr, size)
        else:
            block = live.pop(ident, None)
            if block is not None:
                free(*block)
        if sample and n % SAMPLE_EVERY == 0:
            samples.append(external_fragmentation(allocator)[2])
    return attempts, successes, samples


def _measure(spec: str, workloads: Sequence[Workload], region_start: int, repeat: int) -> Result:
    """Replay every workload against ``spec``; the ratio to the baseline is left at 1.0."""
    seconds = 0.0
    attempts = successes = 0
    free = largest = frag_end = frag_mean = waste = 0.0
    for workload in workloads:
        size, page = workload.region_size, workload.page_size
        best = float("inf")
        for _ in range(repeat):
            allocator = make_allocator(spec, region_start, size, page)
            began = time.perf_counter()
            _replay(allocator, workload.ops, sample=False)
            best = min(best, time.perf_counter() - began)
        seconds += best
        allocator = make_allocator(spec, region_start, size, page)
        tried, served, samples = _replay(allocator, workload.ops, sample=True)
        attempts += tried
        successes += served
        end_free, end_largest, end_frag = external_fragmentation(allocator)
        free += end_free
        largest += end_largest
        frag_end += end_frag
        frag_mean += sum(samples) / len(samples) if samples else 0.0
        waste += allocator.debug_view().get("waste", 0)
    n = len(workloads)
    rate = attempts / seconds if seconds > 0 else float("inf")
    return Result(
        spec=spec,
        allocs_per_s=rate,
        ratio_to_baseline=1.0,
        attempts=attempts,
        successes=successes,
        success_rate=successes / attempts if attempts else 1.0,
        free_end=free / n,
        largest_free_end=largest / n,
        ext_frag_end=frag_end / n,
        mean_ext_frag=frag_mean / n,
        waste_end=waste / n,
    )


def run_bench(
    specs: Sequence[str] = DEFAULT_SPECS,
    seeds: Sequence[int] = (1,),
    allocs: int = 20000,
    region_size: int = 64 * _MIB,
    page_size: int = 4 * _KIB,
    repeat: int = 3,
    region_start: int = 0x6000_0000,
) -> Report:
    """Replay the workload of each seed against each spec (``bf`` added first if missing).

    The rate is allocation requests divided by the host time of the whole
    replay (frees included), best of ``repeat`` timed runs per seed;
    fragmentation and success come from a separate, untimed run that also
    samples the free space every :data:`SAMPLE_EVERY` operations.
    """
    if repeat <= 0:
        raise InvalidArgument(f"repeat must be positive, not {repeat}")
    if not seeds:
        raise InvalidArgument("at least one seed is needed")
    ordered = list(dict.fromkeys(s.strip() for s in specs))
    if BASELINE not in ordered:
        ordered.insert(0, BASELINE)
    for spec in ordered:
        make_allocator(spec, region_start, region_size, page_size)  # fail early on a bad spec
    workloads = [make_workload(seed, allocs, region_size, page_size) for seed in seeds]
    report = Report(list(seeds), allocs, region_size, page_size, repeat)
    report.machine = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    rates: dict[str, float] = {}
    for spec in ordered:
        result = _measure(spec, workloads, region_start, repeat)
        rates[spec] = result.allocs_per_s
        result.ratio_to_baseline = result.allocs_per_s / rates[BASELINE]
        report.results.append(result)
    return report


def _seeds_text(seeds: Sequence[int]) -> str:
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    return f"seeds {seeds[0]}..{seeds[-1]} (means)"


def render_table(report: Report, out: IO[str]) -> None:
    """Print the side-by-side table with ``rich``."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=(
            f"CMA allocators: {_seeds_text(report.seeds)}, {report.allocs} allocations each, "
            f"region {report.region_size // _MIB} MiB, page {report.page_size // _KIB} KiB"
        )
    )
    for header in (
        "allocator",
        "allocs/s",
        f"vs {BASELINE}",
        "success",
        "largest free",
        "free",
        "ext. frag (end)",
        "ext. frag (mean)",
        "waste",
    ):
        table.add_column(header, justify="left" if header == "allocator" else "right")
    for r in report.results:
        table.add_row(
            r.spec,
            f"{r.allocs_per_s:,.0f}",
            f"{r.ratio_to_baseline:.2f}x",
            f"{100 * r.success_rate:.2f}%",
            f"{r.largest_free_end / _KIB:,.0f} KiB",
            f"{r.free_end / _KIB:,.0f} KiB",
            f"{r.ext_frag_end:.3f}",
            f"{r.mean_ext_frag:.3f}",
            f"{r.waste_end / _KIB:,.0f} KiB",
        )
    Console(file=out, width=160).print(table)


def main(argv: Sequence[str] | None = None, out: IO[str] | None = None) -> int:
    """Parse the command line, run the benchmark, print a table or JSON."""
    out = out if out is not None else sys.stdout
    parser = argparse.ArgumentParser(
        prog="bench-cma", description="Compare the CMA allocators on a fragmenting workload."
    )
    parser.add_argument("specs", nargs="*", metavar="SPEC", help="NAME or NAME(PARAMS)")
    parser.add_argument("--seed", type=int, default=1, help="first seed")
    parser.add_argument("--seeds", type=int, default=1, help="how many seeds, averaged")
    parser.add_argument("--allocs", type=int, default=20000, help="allocation requests")
    parser.add_argument("--region-size", default="64M")
    parser.add_argument("--page-size", default="4K")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs, best kept")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    return emit_report(
        "bench-cma", args,
        lambda: run_bench(
            specs=args.specs or DEFAULT_SPECS,
            seeds=range(args.seed, args.seed + max(args.seeds, 0)),
            allocs=args.allocs,
            region_size=parse_size(args.region_size),
            page_size=parse_size(args.page_size),
            repeat=args.repeat,
        ),
        render_table, out)


def emit_report(prog: str, args: argparse.Namespace, make: Callable[[], Any],
                render: Callable[[Any, IO[str]], None], out: IO[str]) -> int:
    """Build a benchmark report and print it (``--json`` or a table); a CMAError is one
    line on stderr and exit status 2 (``--debug`` re-raises it)."""
    try:
        report = make()
    except CMAError as err:
        if args.debug:
            raise
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    if args.json:
        json.dump(report.to_json(), out, indent=2)
        out.write("\n")
    else:
        render(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
