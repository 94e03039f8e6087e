"""``bf`` and ``twoended`` place every block exactly where a naive best-fit model does.

The model keeps the free extents in a plain list and searches it from scratch on every
request, the rule of docs/cma-allocators.md written out: the smallest extent that holds
an aligned block wins, the lowest among equals with the block at its bottom (for
``twoended``'s large blocks: the highest among equals, block at its top).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cma.allocators import get_allocator
from cma.allocators.bestfit import ExtentSet
from cma.errors import InvalidArgument

PAGE = 0x1000
START = 0x4010_C000  # 16 KiB aligned only: larger alignments leave misaligned holes
SIZE = 256 * PAGE
THRESHOLD = 16 * PAGE


class Model:
    def __init__(self) -> None:
        self.free = [(START, SIZE)]

    def alloc(self, size: int, alignment: int, top: bool) -> int | None:
        def fits(start: int, length: int) -> bool:
            return -(-start // alignment) * alignment + size <= start + length

        ranked = sorted(((length, start) for start, length in self.free if fits(start, length)))
        if not ranked:
            return None
        length, start = ranked[0]
        if top:
            start = max(s for n, s in ranked if n == length)
            addr = (start + length - size) // alignment * alignment
        else:
            addr = -(-start // alignment) * alignment
        self.free.remove((start, length))
        self.free += [(s, n) for s, n in ((start, addr - start),
                                          (addr + size, start + length - addr - size)) if n]
        return addr

    def release(self, addr: int, size: int) -> None:
        merged = sorted([*self.free, (addr, size)])
        out: list[tuple[int, int]] = []
        for start, length in merged:
            if out and out[-1][0] + out[-1][1] == start:
                out[-1] = (out[-1][0], out[-1][1] + length)
            else:
                out.append((start, length))
        self.free = out


ops = st.lists(st.tuples(st.booleans(), st.integers(1, 40),
                         st.sampled_from([PAGE, PAGE, 4 * PAGE, 16 * PAGE, 64 * PAGE]),
                         st.integers(0, 10**6)), min_size=1, max_size=120)


@pytest.mark.parametrize("name", ["bf", "twoended"])
@settings(max_examples=60, deadline=None)
@given(steps=ops)
def test_placement_matches_the_naive_model(name: str, steps: list[tuple[bool, int, int, int]]
                                           ) -> None:
    params = f"threshold={THRESHOLD}" if name == "twoended" else ""
    allocator = get_allocator(name)(START, SIZE, PAGE, params)
    model = Model()
    live: list[tuple[int, int]] = []
    for is_alloc, pages, alignment, pick in steps:
        if is_alloc or not live:
            size = pages * PAGE
            top = name == "twoended" and size >= THRESHOLD
            got = allocator.alloc(size, alignment)
            assert got == model.alloc(size, alignment, top)
            if got is not None:
                live.append((got, size))
        else:
            addr, size = live.pop(pick % len(live))
            allocator.free(addr, size)
            model.release(addr, size)
        assert list(allocator.iter_free()) == sorted(model.free)
        view = allocator.debug_view()
        assert view["free"] == sum(n for _, n in model.free)
        assert view["allocated"] == sum(n for _, n in live)
        assert view["largest_free"] == max((n for _, n in model.free), default=0)


def test_a_bad_free_leaves_the_extents_alone() -> None:
    allocator = get_allocator("bf")(START, SIZE, PAGE, "")
    a = allocator.alloc(4 * PAGE, PAGE)
    assert a is not None
    before = list(allocator.iter_free())
    for bad in ((a, 2 * PAGE), (a + PAGE, PAGE), (START + SIZE, PAGE)):
        with pytest.raises(InvalidArgument):
            allocator.free(*bad)
        assert list(allocator.iter_free()) == before
    allocator.free(a, 4 * PAGE)
    with pytest.raises(InvalidArgument, match="double free"):
        allocator.free(a, 4 * PAGE)
    assert list(allocator.iter_free()) == [(START, SIZE)]


def test_extent_set_checks_overlaps_after_changes() -> None:
    extents = ExtentSet()
    extents.add(0x10000, 0x8000)
    extents.take(0x10000, 0x12000, 0x1000)  # splits: [0x10000, 0x12000) and [0x13000, 0x18000)
    assert list(extents) == [(0x10000, 0x2000), (0x13000, 0x5000)]
    with pytest.raises(InvalidArgument, match="overlaps free extent 0x13000\\+0x5000"):
        extents.add(0x12000, 0x2000)
    extents.add(0x12000, 0x1000)
    assert list(extents) == [(0x10000, 0x8000)]
    assert extents.total == 0x8000
    assert extents.largest() == 0x8000
    assert len(extents) == 1
