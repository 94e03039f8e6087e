"""Random configurations and operation sequences against a simple model of the core.

Devices sit behind bus offsets and partial DMA windows, so every chunk's DMA
address is checked against the device's own view, not against physical memory.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cma import (
    CmaConfig,
    CMAError,
    ContiguousMemory,
    InvalidArgument,
    MapRule,
    NoMemory,
    NoRegion,
    NotReachable,
    Pattern,
    PlacementError,
    RegionSpec,
    TableTranslator,
    UnknownChunk,
    phys_to_dma,
)
from cma.allocators import allocator_names

PAGE = 4096
MiB = 1 << 20
RAM = [(0x40000000, 64 * MiB)]
DEVICES = ("d0", "d1", "d2", "d3")
#: the DMA views a device may have: identity, a bus offset, a low window with its own base
VIEWS: tuple[list[tuple[int, int, int]] | None, ...] = (
    None,
    [(0x40000000, 0xC0000000, 64 * MiB)],
    [(0x40000000, 0x0, 32 * MiB)],
    [(0x42000000, 0x10000000, 32 * MiB), (0x40000000, 0x20000000, 32 * MiB)],
)
ALIGNMENTS = (0, 1, 512, PAGE, 4 * PAGE, 64 * 1024, 3000, -PAGE)


@dataclass
class Setup:
    specs: tuple[RegionSpec, ...]
    rules: tuple[MapRule, ...]
    views: dict[str, list[tuple[int, int, int]] | None]
    ops: list[tuple[Any, ...]] = field(default_factory=list)


@st.composite
def setups(draw: st.DrawFn) -> Setup:
    names = [f"r{i}" for i in range(draw(st.integers(1, 4)))]
    specs = tuple(
        RegionSpec(name, draw(st.integers(1, 48)) * PAGE - draw(st.integers(0, PAGE - 1)),
                   alignment=draw(st.sampled_from([0, PAGE, 64 * 1024])),
                   allocator=draw(st.sampled_from(allocator_names())))
        for name in names
    )
    rules = []
    for device in DEVICES[:3]:
        chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
        if draw(st.booleans()):
            kinds = draw(st.lists(st.sampled_from(names), min_size=1, max_size=2, unique=True))
            rules.append(MapRule((Pattern(device, "k"),), tuple(kinds)))
        rules.append(MapRule((Pattern(device, None),), tuple(chosen)))
    # d3 has no rule: NoRegion
    views = {d: draw(st.sampled_from(VIEWS)) for d in DEVICES}
    size = st.integers(-1, 16 * PAGE + 1)
    align = st.sampled_from(ALIGNMENTS)
    good_lists = st.lists(st.sampled_from(names), min_size=1, max_size=3)
    region_lists = st.one_of(good_lists, good_lists, good_lists, st.just([]), st.just(["nope"]),
                             st.lists(st.sampled_from([*names, "nope"]), max_size=3))
    alloc = st.tuples(st.just("alloc"), st.sampled_from(DEVICES), st.sampled_from([None, "k"]),
                      size, align)
    alloc_from = st.tuples(st.just("from"), region_lists, size, align,
                           st.sampled_from([None, *DEVICES]))
    op = st.one_of(
        alloc, alloc, alloc, alloc_from, alloc_from,
        st.tuples(st.just("get"), st.integers(0, 7)),
        st.tuples(st.just("put"), st.integers(0, 7)),
        st.tuples(st.just("put-bad"), st.integers(0, 64 * MiB)),
    )
    ops = draw(st.lists(op, min_size=5, max_size=50))
    return Setup(specs, tuple(rules), views, ops)


def check_invariants(cma: ContiguousMemory, model: dict[int, int],
                     views: dict[str, list[tuple[int, int, int]] | None]) -> None:
    chunks = list(cma.iter_chunks())
    assert {c.phys: c.refcount for c in chunks} == model
    for a, b in itertools.pairwise(chunks):
        assert a.end <= b.phys, "chunks never overlap"
    for chunk in chunks:
        assert chunk.region.contains(chunk.phys, chunk.size)
        assert chunk.size % PAGE == 0
        if chunk.device is not None:
            dma = chunk.dma_addr
            assert dma == phys_to_dma(views[chunk.device], chunk.phys, chunk.size)
            assert dma is not None, "a chunk is only handed to a device that can reach it"
    for region in cma.regions:
        view = cma.view(region)
        assert view.waste >= 0
        if "order_per_bit" not in region.spec.params:
            assert view.used + view.free == region.size, "no rounding: nothing is wasted"
        assert view.used == sum(c.size for c in chunks if c.region is region)
        assert view.largest_free <= view.free


def expected_alignment(alignment: int) -> int | None:
    if alignment < 0 or (alignment and alignment & (alignment - 1)):
        return None
    return max(alignment, PAGE)


def apply(cma: ContiguousMemory, op: tuple[Any, ...], model: dict[int, int],
          order: list[int]) -> None:
    """Run one operation and update the model; CMA errors propagate."""
    kind = op[0]
    if kind in ("alloc", "from"):
        if kind == "alloc":
            _, device, req_kind, size, alignment = op
            chunk = cma.alloc(device, req_kind, size, alignment)
            allowed = cma.region_names_for(device, req_kind)
        else:
            _, names, size, alignment, device = op
            chunk = cma.alloc_from(names, size, alignment, device=device)
            allowed = tuple(names)
        align = expected_alignment(alignment)
        assert size > 0, "bad sizes must be refused"
        assert align is not None, "bad alignments must be refused"
        assert chunk.region.name in allowed
        assert chunk.phys % align == 0
        assert chunk.size >= size
        assert chunk.phys not in model
        model[chunk.phys] = 1
        order.append(chunk.phys)
    elif kind == "get":
        addr = order[op[1] % len(order)]
        assert cma.get(addr).refcount == model[addr] + 1
        model[addr] += 1
    elif kind == "put":
        addr = order[op[1] % len(order)]
        freed = cma.put(addr)
        model[addr] -= 1
        assert freed == (model[addr] == 0), "put is True exactly when the count reaches 0"
        if freed:
            del model[addr]
            order.remove(addr)
            assert cma.chunk_at(addr) is None
    elif kind == "put-bad":
        cma.put(0x40000000 + op[1])
        raise AssertionError("put of an unknown address must fail")


def check_error(error: CMAError, op: tuple[Any, ...]) -> None:
    """The error is the one the arguments call for, with a message."""
    kind = op[0]
    assert str(error), "every error carries a message"
    if isinstance(error, InvalidArgument):
        bad_size = op[2 if kind == "from" else 3]
        bad_align = op[3 if kind == "from" else 4]
        assert bad_size <= 0 or expected_alignment(bad_align) is None
    elif isinstance(error, NoRegion):
        assert (kind == "alloc" and op[1] == "d3") or (
            kind == "from" and (not op[1] or "nope" in op[1]))
    elif isinstance(error, UnknownChunk):
        assert kind == "put-bad"
    else:
        assert isinstance(error, (NoMemory, NotReachable))
        assert kind in ("alloc", "from")


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setups())
def test_random_operation_sequences(setup: Setup) -> None:
    translator = TableTranslator(setup.views, linear=(0x40000000, 0xC0000000, 64 * MiB))
    refused: PlacementError | None = None
    try:
        cma = ContiguousMemory.from_config(CmaConfig(setup.specs, setup.rules), RAM,
                                           translator=translator, devices=DEVICES[:3])
    except PlacementError as exc:
        refused = exc
    if refused is not None:
        assert "reach" in str(refused) or "no room" in str(refused)
        event("placement refused")
        return
    model: dict[int, int] = {}
    order: list[int] = []  # live chunk addresses in allocation order, for get/put by index
    for op in setup.ops:
        kind = op[0]
        if (kind in ("get", "put") and not order) or (
                kind == "put-bad" and 0x40000000 + op[1] in model):
            continue
        error: CMAError | None = None
        try:
            apply(cma, op, model, order)
        except CMAError as exc:
            error = exc
        if error is None:
            event(f"{kind} ok")
        else:
            event(f"{kind} -> {type(error).__name__}")
            check_error(error, op)
        check_invariants(cma, model, setup.views)
    for addr in list(model):
        while not cma.put(addr):
            pass
    assert list(cma.iter_chunks()) == []
    for region in cma.regions:
        assert cma.view(region).free == region.size, "everything comes back"
