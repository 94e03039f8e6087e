"""Reusable regions: lending free pages to movable owners and migrating them out of the way."""

from __future__ import annotations

import io
import json
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cma import Cma, CmaConfig, ContiguousMemory, InvalidArgument, NoMemory, RegionSpec
from cma.movable import (
    CallbackMemory,
    CostModel,
    HostMemory,
    LendEnd,
    MovablePage,
    MovablePool,
)
from cma.workload import SCENARIOS, Scenario, make_workload, replay
from cma.workload import main as bench_main

PAGE = 4096
MiB = 1 << 20
RAM = [(0x40000000, 256 * MiB)]
#: ordinary RAM for migrated pages, clear of every region below (they sit at the top of RAM)
SYSTEM = (0x40000000, 16 * PAGE)


def make(*specs: RegionSpec) -> Cma:
    return ContiguousMemory.from_config(CmaConfig(specs), RAM)


def region_pages(cma: Cma, name: str) -> list[int]:
    region = cma.region(name)
    return list(range(region.base, region.end, PAGE))


class Moves:
    """Records ``on_migrate`` calls, checking the page already has its new address."""

    def __init__(self) -> None:
        self.calls: list[tuple[MovablePage, int, int]] = []

    def __call__(self, page: MovablePage, old: int, new: int) -> None:
        assert page.phys == new != old
        self.calls.append((page, old, new))


# --- lending --------------------------------------------------------------------------------------


@pytest.mark.parametrize("end", ["top", "bottom"])
def test_lend_takes_whole_free_pages_from_the_chosen_end(end: LendEnd) -> None:
    cma = make(RegionSpec("r", 16 * PAGE))
    pool = MovablePool(cma, lend_from=end)
    pages = pool.lend("pagecache:file1", 3)
    all_pages = region_pages(cma, "r")
    expected = all_pages[-3:][::-1] if end == "top" else all_pages[:3]
    assert [p.phys for p in pages] == expected
    assert all(p.owner == "pagecache:file1" and p.region == "r" and not p.pinned for p in pages)
    assert pool.pages_of("pagecache:file1") == sorted(pages, key=lambda p: p.phys)
    assert pool.free_pages("r") == 13
    assert pool.stats("r").lent_pages == 3
    assert pool.reclaimed() == 3 * PAGE


def test_lend_skips_chunks_and_lent_pages_and_is_all_or_nothing() -> None:
    cma = make(RegionSpec("r", 16 * PAGE))
    chunk = cma.alloc_from("r", 4 * PAGE)
    pool = MovablePool(cma)
    first = pool.lend("a", 5)
    second = pool.lend("b", 7)
    held = {p.phys for p in first + second}
    assert len(held) == 12
    assert all(not chunk.phys <= phys < chunk.end for phys in held)
    with pytest.raises(NoMemory, match=r"cannot lend 1 page\(s\) to 'c': only 0 free"):
        pool.lend("c", 1)
    assert pool.pages_of("c") == []
    assert pool.stats("r").lent_pages == 12


def test_release_gives_the_page_back_and_forgets_its_contents() -> None:
    cma = make(RegionSpec("r", 8 * PAGE))
    store = HostMemory(PAGE)
    pool = MovablePool(cma, store=store)
    (page,) = pool.lend("proc:1", 1)
    page.write(b"hello", 100)
    assert page.read(100, 5) == b"hello"
    assert store.pages_held == 1
    pool.release(page)
    assert not page.live
    assert pool.page_at(page.phys) is None
    assert store.pages_held == 0
    assert pool.free_pages("r") == 8
    with pytest.raises(InvalidArgument, match="not a live page"):
        pool.release(page)
    with pytest.raises(InvalidArgument, match="not a live page"):
        page.read()
    (again,) = pool.lend("proc:2", 1)
    assert again.phys == page.phys
    assert again.contents == bytes(PAGE)  # nothing of the old owner leaks


def test_pin_counts_and_pinned_pages_cannot_be_released() -> None:
    cma = make(RegionSpec("r", 8 * PAGE))
    pool = MovablePool(cma)
    page, other = pool.lend("gup:dev0", 2, pinned=True)
    pool.pin(page)
    assert page.pin_count == 2
    assert pool.stats("r").pinned_pages == 2
    pool.unpin(page)
    assert page.pinned
    with pytest.raises(InvalidArgument, match=r"is pinned \(1 pin\(s\)\); unpin it"):
        pool.release(page)
    pool.unpin(page)
    pool.release(page)
    with pytest.raises(InvalidArgument, match="is not pinned"):
        pool.unpin(pool.lend("x", 1)[0])
    assert pool.stats("r").pinned_pages == 1
    assert pool.release_owner("gup:dev0") == 1  # the owner went away: pins go with it
    assert not other.live
    assert pool.stats("r").pinned_pages == 0


def test_no_map_dedicated_and_private_regions_never_lend() -> None:
    cma = make(
        RegionSpec("n", 8 * PAGE, no_map=True, reusable=False),
        RegionSpec("d", 8 * PAGE, reusable=False),
    )
    cma.register_private("dsp", 0x48000000, 8 * PAGE)
    pool = MovablePool(cma)
    assert not any(pool.covers(r) for r in cma.regions)
    with pytest.raises(NoMemory, match=r"only 0 free in reusable region\(s\) none"):
        pool.lend("pagecache:f", 1)

    mixed = make(RegionSpec("n", 8 * PAGE, no_map=True, reusable=False),
                 RegionSpec("r", 8 * PAGE))
    mixed_pool = MovablePool(mixed)
    pages = mixed_pool.lend("pagecache:f", 8)
    assert all(mixed.region("r").contains(p.phys, PAGE) for p in pages)
    with pytest.raises(NoMemory):
        mixed_pool.lend("pagecache:f", 1)  # the no-map region's 8 free pages stay out of reach
    assert mixed_pool.free_pages("n") == 0


def test_bad_arguments_are_refused_with_the_value() -> None:
    cma = make(RegionSpec("r", 8 * PAGE))
    with pytest.raises(InvalidArgument, match="lend_from must be 'top' or 'bottom', not 'middle'"):
        MovablePool(cma, lend_from="middle")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="max_attempts must be a positive integer, not 0"):
        MovablePool(cma, max_attempts=0)
    region = cma.region("r")
    with pytest.raises(InvalidArgument, match=r"system memory .* overlaps region 'r'"):
        MovablePool(cma, system=(region.base, 4 * PAGE))
    with pytest.raises(InvalidArgument, match="copy_bytes_per_us must be positive, not 0"):
        CostModel(copy_bytes_per_us=0)
    pool = MovablePool(cma)
    with pytest.raises(InvalidArgument, match="pages must be a positive integer, not 0"):
        pool.lend("a", 0)
    with pytest.raises(InvalidArgument, match="owner must be a non-empty string, not ''"):
        pool.lend("", 1)
    with pytest.raises(InvalidArgument, match="already attached"):
        MovablePool(cma)
    (page,) = pool.lend("a", 1)
    with pytest.raises(InvalidArgument, match="does not fit a page"):
        page.write(b"xy", PAGE - 1)
    pool.close()
    assert cma.movable is None
    assert MovablePool(cma) is cma.movable


# --- migration ------------------------------------------------------------------------------------


def fill(pages: list[MovablePage]) -> dict[int, bytes]:
    """Give every page distinct contents; returns id(page) -> contents."""
    expected = {}
    for n, page in enumerate(pages):
        data = bytes((n * 7 + i) % 251 for i in range(PAGE))
        page.write(data)
        expected[id(page)] = data
    return expected


def test_allocation_over_lent_pages_migrates_them_within_the_region() -> None:
    cma = make(RegionSpec("r", 64 * PAGE))
    moves = Moves()
    pool = MovablePool(cma, on_migrate=moves, lend_from="bottom")
    pages = pool.lend("pagecache:file42", 8)
    expected = fill(pages)
    before = {id(p): p.phys for p in pages}
    chunk = cma.alloc_from("r", 8 * PAGE)
    assert chunk.phys == cma.region("r").base  # bf: the bottom, where the pages were
    assert len(moves.calls) == 8
    for page, old, new in moves.calls:
        assert old == before[id(page)]
        assert chunk.phys <= old < chunk.end
        assert not chunk.phys <= new < chunk.end
        assert cma.region("r").contains(new, PAGE)
    for page in pages:
        assert page.contents == expected[id(page)]
        assert page.region == "r"
        assert page.migrations == 1
        assert cma.chunk_at(page.phys) is None
    stats = pool.stats("r")
    assert (stats.pages_migrated_out, stats.pages_migrated_in) == (8, 8)
    assert stats.migration_bytes == 8 * PAGE
    assert stats.migration_cost_us == pytest.approx(CostModel().migration_us(8, PAGE))
    assert stats.evacuations == 1
    assert stats.lent_pages == 8


def test_migration_goes_to_another_reusable_region_then_to_system_memory() -> None:
    cma = make(RegionSpec("a", 8 * PAGE), RegionSpec("b", 4 * PAGE))
    moves = Moves()
    pool = MovablePool(cma, on_migrate=moves, system=SYSTEM)
    pages = pool.lend("proc:7", 12)  # every free page of both regions
    expected = fill(pages)
    chunk = cma.alloc_from("a", 8 * PAGE)  # all of a: its 8 pages must leave
    assert len(moves.calls) == 8
    assert all(pool.system is not None and pool.system.contains(p.phys)
               for p in pages if p.region is None)
    assert sum(1 for p in pages if p.region is None) == 8  # b was full too
    assert pool.system_stats.pages_migrated_in == 8
    assert all(p.contents == expected[id(p)] for p in pages)

    cma.put(chunk.phys)
    b_pages = [p for p in pages if p.region == "b"]
    for page in b_pages:
        pool.release(page)
    cma.alloc_from("a", 4 * PAGE)
    assert not moves.calls[8:]  # a was empty now: nothing to move


def test_migration_prefers_the_same_region_then_the_next_one() -> None:
    cma = make(RegionSpec("a", 8 * PAGE), RegionSpec("b", 8 * PAGE))
    pool = MovablePool(cma, system=SYSTEM)
    pages = pool.lend("x", 16)
    a_pages = sorted((p for p in pages if p.region == "a"), key=lambda p: p.phys)
    for page in [p for p in pages if p.region == "b"][:3]:
        pool.release(page)
    for page in [*a_pages[:2], *a_pages[-2:]]:  # a: pages 0, 1, 6 and 7 free
        pool.release(page)
    chunk = cma.alloc_from("a", 4 * PAGE)  # bf: pages 0 to 3 of a; 2 and 3 are lent
    # those two go to a's own free pages 7 and 6, so b keeps its 3 holes
    assert sorted(p.phys - chunk.phys for p in a_pages[2:4]) == [6 * PAGE, 7 * PAGE]
    assert pool.free_pages("b") == 3
    assert pool.system_stats.pages_migrated_in == 0
    assert pool.stats("a").pages_migrated_in == pool.stats("a").pages_migrated_out


def test_contents_in_guest_ram_are_copied_by_the_callbacks() -> None:
    cma = make(RegionSpec("r", 16 * PAGE))
    base = cma.region("r").base
    ram = bytearray(16 * PAGE)

    def read(phys: int, size: int) -> bytes:
        return bytes(ram[phys - base:phys - base + size])

    def write(phys: int, data: bytes) -> None:
        ram[phys - base:phys - base + len(data)] = data

    pool = MovablePool(cma, store=CallbackMemory(read, write), lend_from="bottom")
    (page,) = pool.lend("proc:3", 1)
    page.write(b"\xde\xad\xbe\xef" * 8)
    cma.alloc_from("r", PAGE)
    assert page.phys != base
    assert read(page.phys, 32) == b"\xde\xad\xbe\xef" * 8


def test_bitmap_blocks_are_cleared_whole() -> None:
    cma = make(RegionSpec("r", 32 * PAGE, allocator="bitmap", params="order_per_bit=2"))
    pool = MovablePool(cma, lend_from="bottom")
    pages = pool.lend("x", 4)  # exactly the first 4-page block
    chunk = cma.alloc_from("r", PAGE)  # rounded up to that whole block
    assert chunk.phys == cma.region("r").base
    assert all(p.phys >= chunk.phys + 4 * PAGE for p in pages)
    free = list(cma.region("r").allocator.iter_free())
    assert all(any(s <= p.phys < s + n for s, n in free) for p in pages)


# --- pinned pages ---------------------------------------------------------------------------------


def test_a_pinned_page_makes_the_allocator_offer_another_range() -> None:
    cma = make(RegionSpec("r", 32 * PAGE))
    moves = Moves()
    pool = MovablePool(cma, on_migrate=moves, lend_from="bottom")
    pinned = pool.lend("gup:dev0", 1, pinned=True)[0]
    base = cma.region("r").base
    assert pinned.phys == base
    chunk = cma.alloc_from("r", 8 * PAGE)
    assert chunk.phys == base + 8 * PAGE  # the first candidate (from base) was refused
    assert pinned.phys == base
    assert not moves.calls
    stats = pool.stats("r")
    assert stats.refused_ranges == 1
    assert stats.migration_cost_us == CostModel().refused_range_us
    assert sum(n for _s, n in cma.region("r").allocator.iter_free()) == 24 * PAGE  # no leak


def test_a_pinned_page_sends_the_request_to_the_next_region() -> None:
    cma = make(RegionSpec("a", 8 * PAGE), RegionSpec("b", 8 * PAGE))
    pool = MovablePool(cma)
    pool.lend("gup:dev0", 1, pinned=True)  # top of the highest region
    top = max(cma.regions, key=lambda r: r.base)
    other = min(cma.regions, key=lambda r: r.base)
    chunk = cma.alloc_from([top.name, other.name], 8 * PAGE)
    assert chunk.region is other
    assert top.alloc_fail == 1


def test_nomemory_names_the_pinned_pages_and_leaves_everything_as_it_was() -> None:
    cma = make(RegionSpec("r", 8 * PAGE))
    pool = MovablePool(cma, system=SYSTEM)
    loose = pool.lend("pagecache:file1", 3)
    expected = fill(loose)
    stuck = pool.lend("gup:camera-dma", 1, pinned=True)[0]
    before = [p.phys for p in loose]
    with pytest.raises(NoMemory) as info:
        cma.alloc_from("r", 8 * PAGE)
    message = str(info.value)
    assert f"pinned movable page(s) {stuck.phys:#x} ('gup:camera-dma')" in message
    assert "region(s) 'r'" in message
    assert [p.phys for p in loose] == before  # nothing moved for a refused range
    assert all(p.contents == expected[id(p)] for p in loose)
    assert sum(n for _s, n in cma.region("r").allocator.iter_free()) == 8 * PAGE
    pool.unpin(stuck)
    chunk = cma.alloc_from("r", 8 * PAGE)  # unpinned: now everything can move
    assert all(pool.system is not None and pool.system.contains(p.phys)
               for p in [*loose, stuck])
    assert all(p.contents == expected[id(p)] for p in loose)
    assert cma.chunk_at(stuck.phys) is None
    assert chunk.size == 8 * PAGE


def test_nomemory_when_lent_pages_have_nowhere_to_go() -> None:
    cma = make(RegionSpec("r", 8 * PAGE))
    pool = MovablePool(cma)  # no system memory
    pages = pool.lend("proc:1", 8)
    before = [p.phys for p in pages]
    with pytest.raises(NoMemory, match=r"4 lent page\(s\) to migrate but only 0 free page"):
        cma.alloc_from("r", 4 * PAGE)
    assert [p.phys for p in pages] == before
    assert pool.stats("r").refused_ranges == 2  # both halves of the region were tried


def test_a_failing_migrate_callback_leaves_no_half_allocated_chunk() -> None:
    cma = make(RegionSpec("r", 16 * PAGE))

    def explode(page: MovablePage, old: int, new: int) -> None:
        raise RuntimeError(f"cannot remap {old:#x}")

    pool = MovablePool(cma, on_migrate=explode, lend_from="bottom")
    pool.lend("proc:1", 2)
    with pytest.raises(RuntimeError, match="cannot remap"):
        cma.alloc_from("r", 4 * PAGE)
    assert list(cma.iter_chunks()) == []
    assert sum(n for _s, n in cma.region("r").allocator.iter_free()) == 16 * PAGE


def test_snapshot_reports_movable_accounting() -> None:
    cma = make(RegionSpec("r", 16 * PAGE))
    assert "movable" not in cma.snapshot()
    pool = MovablePool(cma, system=SYSTEM, lend_from="bottom")
    pool.lend("x", 4)
    cma.alloc_from("r", 16 * PAGE)
    snap = json.loads(json.dumps(cma.snapshot()))
    movable = snap["movable"]
    assert movable["regions"]["r"]["pages_migrated_out"] == 4
    assert movable["regions"]["r"]["reclaimed_bytes"] == 0
    assert movable["system"]["lent_pages"] == 4
    assert movable["system"]["reclaimed_bytes"] == 4 * PAGE
    assert movable["pages"] == 4
    assert movable["lend_from"] == "bottom"


def test_threads_lending_and_allocating_at_once_keep_every_page_intact() -> None:
    cma = make(RegionSpec("a", 64 * PAGE), RegionSpec("b", 32 * PAGE))
    pool = MovablePool(cma, system=(SYSTEM[0], 64 * PAGE))
    errors: list[BaseException] = []

    def lender(n: int) -> None:
        try:
            held: list[tuple[MovablePage, bytes]] = []
            for i in range(150):
                try:
                    (page,) = pool.lend(f"proc:{n}", 1)
                except NoMemory:
                    continue
                data = bytes([n, i % 256]) * 8
                page.write(data)
                held.append((page, data))
                if len(held) > 20:
                    old, expected = held.pop(0)
                    assert old.read(0, 16) == expected
                    pool.release(old)
            assert all(page.read(0, 16) == data for page, data in held)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def allocator(name: str) -> None:
        try:
            for i in range(60):
                try:
                    chunk = cma.alloc_from([name, "a", "b"], (1 + i % 8) * PAGE)
                except NoMemory:
                    continue
                with pool.lock:  # no migration while looking
                    assert all(cma.chunk_at(p.phys) is None for p in pool.pages())
                cma.put(chunk.phys)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=lender, args=(n,)) for n in range(3)]
    threads += [threading.Thread(target=allocator, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads)
    totals = pool.totals()
    assert totals.lent_pages == len(pool.pages())
    assert totals.pages_migrated_in == totals.pages_migrated_out


# --- the property ---------------------------------------------------------------------------------

OWNERS = ("pagecache:a", "pagecache:b", "proc:1", "gup:dev")

#: operation kinds, weighted so that regions fill up and pages have to move
KINDS = ("lend",) * 5 + ("alloc",) * 4 + ("release", "put", "write") * 2 + (
    "release_owner", "pin", "unpin")
ALLOC_FROM = (("a",), ("a", "b"), ("b",), ("n",), ("b", "a"))


@st.composite
def ops(draw: st.DrawFn) -> tuple[Any, ...]:
    kind = draw(st.sampled_from(KINDS))
    if kind == "lend":
        pinned = draw(st.integers(0, 3)) == 0
        return kind, draw(st.sampled_from(OWNERS)), draw(st.integers(1, 8)), pinned
    if kind == "alloc":
        return (kind, draw(st.sampled_from(ALLOC_FROM)), draw(st.integers(1, 8)),
                draw(st.sampled_from([0, 4 * PAGE])))
    if kind == "release_owner":
        return kind, draw(st.sampled_from(OWNERS))
    if kind == "write":
        return (kind, draw(st.integers(0, 200)), draw(st.integers(0, PAGE - 8)),
                draw(st.binary(min_size=8, max_size=8)))
    return kind, draw(st.integers(0, 200))


class Model:
    """The pool under test and what every page should hold."""

    def __init__(self, lend_from: LendEnd, system: bool) -> None:
        self.cma = make(
            RegionSpec("a", 16 * PAGE),
            RegionSpec("b", 8 * PAGE, allocator="bitmap", params="order_per_bit=1"),
            RegionSpec("n", 8 * PAGE, no_map=True, reusable=False),
        )
        self.moves = Moves()
        self.pool = MovablePool(self.cma, on_migrate=self.moves, lend_from=lend_from,
                                system=(SYSTEM[0], 8 * PAGE) if system else None, max_attempts=3)
        self.expected: dict[int, bytearray] = {}  # id(page) -> contents
        self.live: list[MovablePage] = []
        self.chunks: list[int] = []

    def pick(self, index: int) -> MovablePage | None:
        return self.live[index % len(self.live)] if self.live else None

    def apply(self, op: tuple[Any, ...]) -> None:
        pool = self.pool
        kind = op[0]
        if kind == "lend":
            try:
                pages = pool.lend(op[1], op[2], pinned=op[3])
            except NoMemory:
                return
            for new in pages:
                self.expected[id(new)] = bytearray(PAGE)
                self.live.append(new)
        elif kind == "release" and (page := self.pick(op[1])) is not None:
            while page.pinned:
                pool.unpin(page)
            pool.release(page)
            self.forget([page])
        elif kind == "release_owner":
            gone = [p for p in self.live if p.owner == op[1]]
            assert pool.release_owner(op[1]) == len(gone)
            self.forget(gone)
        elif kind == "pin" and (page := self.pick(op[1])) is not None:
            pool.pin(page)
        elif kind == "unpin" and (page := self.pick(op[1])) is not None and page.pinned:
            pool.unpin(page)
        elif kind == "write" and (page := self.pick(op[1])) is not None:
            page.write(op[3], op[2])
            self.expected[id(page)][op[2]:op[2] + 8] = op[3]
        elif kind == "alloc":
            try:
                chunk = self.cma.alloc_from(list(op[1]), op[2] * PAGE, op[3])
            except NoMemory:
                return
            self.chunks.append(chunk.phys)
        elif kind == "put" and self.chunks:
            self.cma.put(self.chunks.pop(op[1] % len(self.chunks)))

    def forget(self, pages: list[MovablePage]) -> None:
        for page in pages:
            assert not page.live
            self.live.remove(page)
            del self.expected[id(page)]

    def check(self) -> None:
        cma, pool = self.cma, self.pool
        assert {id(p) for p in pool.pages()} == {id(p) for p in self.live}
        seen: set[int] = set()
        per_area: dict[str | None, list[MovablePage]] = {}
        for page in self.live:
            assert page.contents == self.expected[id(page)], f"{page} lost its contents"
            assert page.phys not in seen, f"two movable pages at {page.phys:#x}"
            seen.add(page.phys)
            assert cma.chunk_at(page.phys) is None, f"{page} overlaps a chunk"
            per_area.setdefault(page.region, []).append(page)
            if page.region is None:
                assert pool.system is not None
                assert pool.system.contains(page.phys)
                continue
            region = cma.region(page.region)
            assert pool.covers(region)
            assert region.contains(page.phys, PAGE)
            free = region.allocator.iter_free()
            assert any(s <= page.phys < s + n for s, n in free), f"{page} is not free space"
        moved = len(self.moves.calls)
        totals = pool.totals()
        assert totals.pages_migrated_out == totals.pages_migrated_in == moved
        assert totals.migration_bytes == moved * PAGE
        areas: list[tuple[str | None, Any]] = [(r.name, pool.stats(r)) for r in cma.regions]
        areas.append((None, pool.system_stats))
        for name, stats in areas:
            mine = per_area.get(name, [])
            assert stats.lent_pages == len(mine)
            assert stats.pinned_pages == sum(1 for p in mine if p.pinned)
            assert stats.lent_pages == (stats.pages_lent - stats.pages_released
                                        + stats.pages_migrated_in - stats.pages_migrated_out)
            assert stats.peak_lent_pages >= stats.lent_pages
        assert pool.stats("n").pages_lent == 0
        assert pool.reclaimed() == sum(len(v) for k, v in per_area.items() if k) * PAGE


@settings(max_examples=60, deadline=None)
@given(st.lists(ops(), min_size=5, max_size=50), st.sampled_from(["top", "bottom"]), st.booleans())
def test_property_movable_pages_are_never_lost_corrupted_or_overlapped(
    sequence: list[tuple[Any, ...]], lend_from: LendEnd, system: bool
) -> None:
    model = Model(lend_from, system)
    for op in sequence:
        model.apply(op)
        model.check()


# --- the workload and the benchmark ---------------------------------------------------------------


def test_workload_is_deterministic_and_pins_change_only_pins() -> None:
    a = make_workload(3, 400)
    assert a == make_workload(3, 400)
    assert a != make_workload(4, 400)
    pinned = make_workload(3, 400, pin_share=0.5)
    lends = [op[:4] for op in a.ops if op[0] == "lend"]
    assert lends == [op[:4] for op in pinned.ops if op[0] == "lend"]
    assert any(op[4] for op in pinned.ops if op[0] == "lend")
    assert not any(op[4] for op in a.ops if op[0] == "lend")
    assert a.count("alloc") > 0
    assert a.count("tick") == 400


@pytest.fixture(scope="module")
def short_runs() -> dict[str, Any]:
    workload = make_workload(1, 800)
    pinned = make_workload(1, 800, pin_share=0.5)
    return {
        "dedicated": replay(Scenario("dedicated", reusable=False), workload),
        "reusable": replay(Scenario("reusable"), workload),
        "bottom": replay(Scenario("bottom", lend_from="bottom"), workload),
        "pinned": replay(Scenario("pinned", pin_share=0.5), pinned),
    }


def test_reusable_region_reclaims_idle_memory_without_losing_allocations(
    short_runs: dict[str, Any],
) -> None:
    dedicated, reusable = short_runs["dedicated"], short_runs["reusable"]
    assert dedicated.mean_reclaimed == 0
    assert dedicated.pages_refused == dedicated.pages_requested
    assert reusable.mean_reclaimed > 8 * MiB
    assert reusable.served == reusable.allocs == dedicated.allocs == dedicated.served
    assert reusable.pages_migrated > 0
    assert all(r.corrupt == 0 for r in short_runs.values())


def test_lending_from_the_top_moves_fewer_pages_than_from_the_bottom(
    short_runs: dict[str, Any],
) -> None:
    assert short_runs["reusable"].pages_migrated < short_runs["bottom"].pages_migrated


def test_the_benchmark_command_prints_json_and_a_table() -> None:
    out = io.StringIO()
    assert bench_main(["--bench", "--ticks", "150", "--json"], out) == 0
    doc = json.loads(out.getvalue())
    assert doc["schema"] == 1
    assert [r["scenario"] for r in doc["results"]] == [s.name for s in SCENARIOS]
    assert all(r["corrupt"] == 0 for r in doc["results"])
    table = io.StringIO()
    assert bench_main(["--bench", "--ticks", "100"], table) == 0
    assert "Reusable regions" in table.getvalue()
    assert "dedicated" in table.getvalue()
    assert bench_main([]) == 2
