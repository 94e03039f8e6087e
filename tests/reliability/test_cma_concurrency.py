"""Concurrency of the CMA API: many threads on one allocator, then the invariants.

Eight threads run seeded random alloc/get/put sequences on one
:class:`~cma.core.ContiguousMemory` with two regions and ``cma_map`` rules (one
region shared by two rules), while a checker thread takes consistent views. The
thread switch interval is made tiny so the interpreter interleaves threads
inside the core's methods. Each thread's operations come from
``random.Random(SEED + thread)``; the interleaving is up to the host.

The single-threaded API is also checked against a model with a hypothesis
state machine (``RuleBasedStateMachine``).
"""

from __future__ import annotations

import itertools
import os
import random
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
)

from cma import ContiguousMemory, NoMemory, NotReachable, TableTranslator, UnknownChunk
from cma.movable import MovablePool

PAGE = 4096
MiB = 1 << 20
RAM = [(0x4000_0000, 256 * MiB)]
#: region ``a`` serves the camera and (second choice) the display; ``b`` is 64 KiB aligned
CMDLINE = "cma=a=3M;b=2M/64K cma_map=camera=a;clcd=b,a;*=b"
DEVICES = ("camera", "clcd", "codec")
ALIGNMENTS = (0, PAGE, 16 * 1024, 64 * 1024)
THREADS = 8
OPS = 2000
#: operations per thread with a movable pool attached (migrations make each one dearer)
MOVABLE_OPS = 600
#: how many recently allocated chunks every thread may take references on
SHARED = 16
#: the seed of thread ``t`` is SEED + t
SEED = 20_100_719


def make_cma() -> ContiguousMemory:
    return ContiguousMemory.from_cmdline(CMDLINE, RAM, PAGE)


#: source files inside which threads are preempted at random lines
PREEMPT_IN = (f"{os.sep}cma{os.sep}",)
#: chance of giving up the GIL at each traced line
PREEMPT_CHANCE = 0.05


def preempting_tracer(seed: int) -> Callable[[FrameType, str, Any], Any]:
    """A ``sys.settrace`` function that yields the GIL at random lines of the CMA core.

    CPython switches threads only every few hundred microseconds in practice,
    so a race window of a few bytecodes would almost never be hit; sleeping 0 s
    at random lines (seeded, per thread) makes other threads run inside the
    core's methods, between any two of its lines.
    """
    rng = random.Random(seed)

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "line" and rng.random() < PREEMPT_CHANCE:
            time.sleep(0)
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "call" and any(p in frame.f_code.co_filename for p in PREEMPT_IN):
            return local
        return None

    return tracer


@pytest.fixture
def busy_switching() -> Iterator[None]:
    """Switch threads as often as the interpreter allows."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


@dataclass
class Tally:
    """What one thread did and what it saw going wrong."""

    allocated: int = 0
    freed: int = 0
    refused: int = 0
    problems: list[str] = field(default_factory=list)


def check_consistent(cma: ContiguousMemory) -> list[str]:
    """The invariants that must hold at any instant; the list of violations found.

    Reference counts are read from views (copied under the locks): a ``Chunk``
    object read later may already have been put by another thread.
    """
    problems = []
    chunks = list(cma.iter_chunks())
    for a, b in itertools.pairwise(chunks):
        if a.end > b.phys:
            problems.append(f"{a} overlaps {b}")
    for c in chunks:
        if not c.region.contains(c.phys, c.size):
            problems.append(f"{c} outside {c.region}")
    for region in cma.regions:
        view = cma.view(region)
        if view.used + view.free != region.size:
            problems.append(f"{region.name}: used {view.used:#x} + free {view.free:#x} != "
                            f"size {region.size:#x}")
        for rec in view.chunks:
            if not region.contains(rec.phys, rec.size):
                problems.append(f"{region.name}: chunk at {rec.phys:#x} outside")
            if rec.refcount < 1:
                problems.append(f"{region.name}: chunk at {rec.phys:#x} live with refcount "
                                f"{rec.refcount}")
        for lo, size in view.free_extents:
            if any(lo < r.phys + r.size and r.phys < lo + size for r in view.chunks):
                problems.append(f"{region.name}: free extent at {lo:#x} overlaps a chunk")
    return problems


def worker(cma: ContiguousMemory, index: int, shared: deque[int], tally: Tally,
           ops: int = OPS) -> None:
    """Random alloc/get/put; every reference taken is put back before the end."""
    sys.settrace(preempting_tracer(SEED + 100 + index))
    try:
        _work(cma, index, shared, tally, ops)
    finally:
        sys.settrace(None)


def _work(cma: ContiguousMemory, index: int, shared: deque[int], tally: Tally,
          ops: int) -> None:
    rng = random.Random(SEED + index)
    held: list[int] = []  # one entry per reference this thread holds
    for _ in range(ops):
        roll = rng.random()
        if roll < 0.45 or not held:
            device = rng.choice(DEVICES)
            alignment = rng.choice(ALIGNMENTS)
            size = rng.randint(1, 24) * PAGE - rng.randrange(PAGE)
            try:
                chunk = cma.alloc(device, None, size, alignment)
            except (NoMemory, NotReachable):
                tally.refused += 1
                continue
            tally.allocated += 1
            if chunk.phys % max(alignment, PAGE):
                tally.problems.append(f"{chunk} not aligned to {alignment:#x}")
            if chunk.size < size or chunk.size % PAGE:
                tally.problems.append(f"{chunk} is not {size:#x} rounded up to pages")
            want = {"camera": "a", "clcd": ("b", "a"), "codec": "b"}[device]
            if chunk.region.name not in want:
                tally.problems.append(f"{device} got a chunk of {chunk.region.name}")
            held.append(chunk.phys)
            shared.append(chunk.phys)
        elif roll < 0.65:
            addr = rng.choice(shared) if shared and rng.random() < 0.7 else rng.choice(held)
            try:
                got = cma.get(addr)
            except UnknownChunk:
                continue  # another thread freed it: a legitimate outcome for a stale address
            if got.refcount < 2:
                tally.problems.append(f"get returned {got} with refcount {got.refcount}")
            held.append(addr)
        else:
            addr = held.pop(rng.randrange(len(held)))
            try:
                if cma.put(addr):
                    tally.freed += 1
            except UnknownChunk:
                tally.problems.append(f"put of a held reference at {addr:#x} failed")
    for addr in held:
        try:
            if cma.put(addr):
                tally.freed += 1
        except UnknownChunk:
            tally.problems.append(f"final put of a held reference at {addr:#x} failed")


def run_threads(cma: ContiguousMemory, extra: list[threading.Thread] | None = None,
                ops: int = OPS) -> list[Tally]:
    shared: deque[int] = deque(maxlen=SHARED)  # recent chunks all threads get and put
    tallies = [Tally() for _ in range(THREADS)]
    threads = [threading.Thread(target=worker, args=(cma, i, shared, tallies[i], ops))
               for i in range(THREADS)]
    done = threading.Event()
    seen: list[str] = []

    def checker() -> None:
        while not done.is_set():
            seen.extend(check_consistent(cma))

    watch = threading.Thread(target=checker)
    watch.start()
    for t in threads + (extra or []):
        t.start()
    for t in threads + (extra or []):
        t.join()
    done.set()
    watch.join()
    tallies[0].problems += seen
    return tallies


def assert_empty(cma: ContiguousMemory, tallies: list[Tally]) -> None:
    assert [p for t in tallies for p in t.problems] == []
    assert sum(t.allocated for t in tallies) == sum(t.freed for t in tallies), \
        "every chunk allocated was freed exactly once"
    assert sum(t.allocated for t in tallies) > THREADS * 50
    assert sum(t.refused for t in tallies) > 0, "the regions were full at times"
    assert list(cma.iter_chunks()) == []
    for region in cma.regions:
        view = cma.view(region)
        assert (view.used, view.free) == (0, region.size), f"{region.name} is empty again"
        assert region.chunks == {}


def test_threads_on_one_allocator_keep_every_invariant(busy_switching: None) -> None:
    cma = make_cma()
    assert sorted(r.name for r in cma.regions) == ["a", "b"]
    tallies = run_threads(cma)
    assert_empty(cma, tallies)


def test_threads_with_a_movable_pool_lending_pages(busy_switching: None) -> None:
    """Allocations migrate lent pages while another thread lends and releases them."""
    cma = make_cma()
    pool = MovablePool(cma, system=(0x4000_0000, 64 * MiB), lend_from="bottom")
    problems: list[str] = []

    def lender() -> None:
        sys.settrace(preempting_tracer(SEED - 2))
        try:
            lend()
        finally:
            sys.settrace(None)

    def lend() -> None:
        rng = random.Random(SEED - 1)
        for n in range(MOVABLE_OPS // 4):
            owner = f"cache{n % 5}"
            try:
                pages = pool.lend(owner, rng.randint(1, 8))
            except NoMemory:
                continue
            for page in pages:
                if cma.chunk_at(page.phys) is not None:
                    problems.append(f"{page} lent inside a live chunk")
            if rng.random() < 0.6:
                pool.release_owner(owner)
        for n in range(5):
            pool.release_owner(f"cache{n}")

    tallies = run_threads(cma, [threading.Thread(target=lender)], ops=MOVABLE_OPS)
    assert problems == []
    assert pool.pages() == []
    totals = pool.totals()
    assert totals.pages_lent > 100
    assert totals.evacuations > 0, "allocations really met lent pages"
    assert_empty(cma, tallies)
    pool.close()


# --- the single-threaded API against a model ----------------------------------------------
class CmaModel(RuleBasedStateMachine):
    """alloc/get/put on the real core and on a dict of address → refcount."""

    chunks = Bundle("chunks")

    def __init__(self) -> None:
        super().__init__()
        self.cma = ContiguousMemory.from_cmdline(
            CMDLINE, RAM, PAGE,
            TableTranslator({"camera": [(0x4000_0000, 0, 256 * MiB)], "clcd": None,
                             "codec": None}))
        self.refs: dict[int, int] = {}
        self.sizes: dict[int, int] = {}

    @rule(target=chunks, device=st.sampled_from(DEVICES),
          pages=st.integers(1, 200), alignment=st.sampled_from(ALIGNMENTS))
    def alloc(self, device: str, pages: int, alignment: int) -> int:
        try:
            chunk = self.cma.alloc(device, None, pages * PAGE, alignment)
        except NoMemory:
            names = self.cma.region_names_for(device)
            room = [self.cma.view(n).largest_free for n in names]
            assert max(room) < pages * PAGE or alignment > PAGE, \
                f"refused {pages} pages although a region had {max(room):#x} free in one piece"
            return -1
        assert chunk.phys not in self.refs
        assert chunk.phys % max(alignment, PAGE) == 0
        assert chunk.size == pages * PAGE
        self.refs[chunk.phys] = 1
        self.sizes[chunk.phys] = chunk.size
        return chunk.phys

    @precondition(lambda self: bool(self.refs))
    @rule(addr=chunks)
    def get(self, addr: int) -> None:
        if addr not in self.refs:
            return
        assert self.cma.get(addr).refcount == self.refs[addr] + 1
        self.refs[addr] += 1

    @rule(addr=consumes(chunks))
    def put(self, addr: int) -> None:
        if addr not in self.refs:
            if addr >= 0:
                with pytest.raises(UnknownChunk):
                    self.cma.put(addr)
            return
        freed = self.cma.put(addr)
        self.refs[addr] -= 1
        assert freed == (self.refs[addr] == 0)
        if freed:
            del self.refs[addr]
            del self.sizes[addr]
            assert self.cma.chunk_at(addr) is None

    @invariant()
    def matches_the_model(self) -> None:
        assert {c.phys: c.refcount for c in self.cma.iter_chunks()} == self.refs
        assert check_consistent(self.cma) == []
        for region in self.cma.regions:
            assert self.cma.view(region).used == sum(
                size for addr, size in self.sizes.items() if region.contains(addr, size))

    def teardown(self) -> None:
        for addr, count in list(self.refs.items()):
            for _ in range(count):
                self.cma.put(addr)
        assert list(self.cma.iter_chunks()) == []
        for region in self.cma.regions:
            assert self.cma.view(region).free == region.size


CmaModel.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
test_cma_model = CmaModel.TestCase
