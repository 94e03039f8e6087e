"""The allocator registry, the built-in allocators, and the benchmark's report."""

from __future__ import annotations

import io
import json
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cma.allocators as registry
from cma import bench
from cma.allocators import (
    DEFAULT_ALLOCATOR,
    Allocator,
    allocator_names,
    get_allocator,
    parse_params,
    parse_size,
    register,
)
from cma.allocators.bestfit import BestFit, ExtentSet
from cma.allocators.bitmap import Bitmap
from cma.allocators.twoended import DEFAULT_THRESHOLD, TwoEnded
from cma.errors import InvalidArgument

PAGE = 0x1000
#: 12 pages past a 1 MiB boundary: aligned to 16 KiB, not to 64 KiB, so
#: alignment has to be computed on absolute addresses
START = 0x4010_C000
PAGES = 64
SIZE = PAGES * PAGE

#: every registered allocator with its default parameters, plus variants that
#: reach other code paths (coarse bitmaps, a threshold the requests can cross)
VARIANTS = [(name, "") for name in allocator_names()] + [
    ("bitmap", "order_per_bit=1"),
    ("bitmap", "order_per_bit=2"),
    ("twoended", "threshold=16K"),
]


def make(name: str, params: str = "", start: int = START, size: int = SIZE) -> Allocator:
    return get_allocator(name)(start, size, PAGE, params)


def free_list(allocator: Allocator) -> list[tuple[int, int]]:
    return list(allocator.iter_free())


def footprint(allocator: Allocator, size: int) -> int:
    """The bytes an allocation really covers (bitmaps round up to whole bits)."""
    block = allocator.block if isinstance(allocator, Bitmap) else PAGE
    return -(-size // block) * block


# --- registry and utilities -------------------------------------------------------------------


def test_builtins_are_registered_and_bf_is_the_default() -> None:
    assert {"bf", "bitmap", "twoended"} <= set(allocator_names())
    assert allocator_names() == sorted(allocator_names())
    assert DEFAULT_ALLOCATOR == "bf"
    assert get_allocator(None) is BestFit
    assert get_allocator("bitmap") is Bitmap
    assert get_allocator("twoended") is TwoEnded


def test_unknown_allocator_lists_the_known_names() -> None:
    with pytest.raises(InvalidArgument, match=r"unknown allocator 'buddy'; known: bf, bitmap"):
        get_allocator("buddy")


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))


@pytest.mark.usefixtures("scratch_registry")
def test_register_as_decorator_and_duplicates_rejected() -> None:
    @register
    class Mine(BestFit):
        name = "mine"

    assert get_allocator("mine") is Mine
    assert "mine" in allocator_names()

    class Again(BestFit):
        name = "mine"

    with pytest.raises(InvalidArgument, match=r"'mine' is already registered by .*Mine"):
        register(Again)


@pytest.mark.usefixtures("scratch_registry")
@pytest.mark.parametrize("bad_name", ["", "with-dash", "sp ace"])
def test_register_rejects_names_cma_cannot_spell(bad_name: str) -> None:
    class Bad(BestFit):
        name = bad_name

    with pytest.raises(InvalidArgument, match="letters and digits"):
        register(Bad)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4096", 4096),
        ("0x1000", 4096),
        ("010", 8),
        ("64K", 65536),
        ("1M", 1 << 20),
        ("2g", 2 << 30),
    ],
)
def test_parse_size_reads_memparse_syntax(text: str, value: int) -> None:
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "12Q", "-1", "0x", "1.5M"])
def test_parse_size_rejects_garbage(text: str) -> None:
    with pytest.raises(InvalidArgument, match="size must be a number"):
        parse_size(text)


def test_parse_params() -> None:
    assert parse_params("x", " a=1 , b=2 ", ("a", "b")) == {"a": "1", "b": "2"}
    assert parse_params("x", "  ", ()) == {}
    with pytest.raises(InvalidArgument, match=r"x: unknown parameter 'c'; accepted: a, b"):
        parse_params("x", "c=1", ("a", "b"))
    with pytest.raises(InvalidArgument, match="given twice"):
        parse_params("x", "a=1,a=2", ("a",))
    with pytest.raises(InvalidArgument, match="must be key=value, not 'a'"):
        parse_params("x", "a", ("a",))


@pytest.mark.parametrize(("name", "params"), VARIANTS)
def test_bad_region_and_request_are_rejected(name: str, params: str) -> None:
    with pytest.raises(InvalidArgument, match="region start must be page aligned"):
        make(name, params, start=START + 0x800)
    with pytest.raises(InvalidArgument, match="region size must be a positive multiple"):
        make(name, params, size=0)
    allocator = make(name, params)
    with pytest.raises(InvalidArgument, match="size must be a positive multiple"):
        allocator.alloc(0x1800, PAGE)
    with pytest.raises(InvalidArgument, match="alignment must be a power of two"):
        allocator.alloc(PAGE, 0x3000)
    assert free_list(allocator) == [(START, SIZE)]


# --- misuse of free() -------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "params"), VARIANTS)
def test_bad_free_raises_and_changes_nothing(name: str, params: str) -> None:
    allocator = make(name, params)
    a = allocator.alloc(4 * PAGE, PAGE)
    b = allocator.alloc(4 * PAGE, PAGE)
    assert a is not None
    assert b is not None
    allocator.free(a, 4 * PAGE)
    before = free_list(allocator)
    view = allocator.debug_view()
    cases = [
        ((a, 4 * PAGE), "nothing is allocated there"),  # double free
        ((START + 40 * PAGE, PAGE), "nothing is allocated there"),  # never allocated
        ((b + PAGE, PAGE), "overlaps the allocated extent"),
        ((b, 2 * PAGE), "the extent allocated there is 0x4000 bytes"),
        ((START - PAGE, PAGE), "outside the region"),
        ((START + SIZE, PAGE), "outside the region"),
    ]
    for (addr, size), message in cases:
        with pytest.raises(InvalidArgument, match=message):
            allocator.free(addr, size)
        assert free_list(allocator) == before
        assert allocator.debug_view() == view
    allocator.free(b, 4 * PAGE)
    assert free_list(allocator) == [(START, SIZE)]


# --- bf ---------------------------------------------------------------------------------------


def test_bf_rejects_any_parameter() -> None:
    with pytest.raises(InvalidArgument, match=r"bf: parameter must be key=value, not 'x'"):
        make("bf", "x")
    with pytest.raises(
        InvalidArgument, match=r"bf: unknown parameter 'order_per_bit'; accepted: none"
    ):
        make("bf", "order_per_bit=1")


def test_bf_exact_fit_uses_the_whole_region() -> None:
    allocator = make("bf")
    assert allocator.alloc(SIZE, PAGE) == START
    assert free_list(allocator) == []
    assert allocator.alloc(PAGE, PAGE) is None
    allocator.free(START, SIZE)
    assert free_list(allocator) == [(START, SIZE)]


def test_bf_picks_the_smallest_extent_that_fits() -> None:
    allocator = make("bf")
    blocks = [allocator.alloc(n * PAGE, PAGE) for n in (3, 1, 2, 1, 57)]
    assert blocks[4] is not None
    allocator.free(START, 3 * PAGE)  # a 3-page hole at the bottom
    allocator.free(START + 4 * PAGE, 2 * PAGE)  # a 2-page hole above it
    # one page: both holes fit; the higher 2-page one is the best fit
    assert allocator.alloc(PAGE, PAGE) == START + 4 * PAGE
    # two pages: the remaining 1-page hole is too small, so the 3-page one
    assert allocator.alloc(2 * PAGE, PAGE) == START
    assert free_list(allocator) == [(START + 2 * PAGE, PAGE), (START + 5 * PAGE, PAGE)]


def test_bf_alignment_is_of_the_absolute_address() -> None:
    allocator = make("bf")
    addr = allocator.alloc(PAGE, 0x10000)
    assert addr == 0x4011_0000  # the first 64 KiB boundary above START
    assert free_list(allocator) == [
        (START, addr - START),
        (addr + PAGE, START + SIZE - addr - PAGE),
    ]
    # a region too small to contain an aligned block refuses even though space is free
    small = make("bf", size=4 * PAGE)
    assert small.alloc(PAGE, 0x10000) is None
    assert free_list(small) == [(START, 4 * PAGE)]


def test_bf_fragments_then_coalesces_back_to_one_extent() -> None:
    allocator = make("bf")
    blocks = [allocator.alloc(PAGE, PAGE) for _ in range(PAGES)]
    assert blocks == [START + i * PAGE for i in range(PAGES)]
    for addr in blocks[::2]:
        assert addr is not None
        allocator.free(addr, PAGE)
    assert len(free_list(allocator)) == PAGES // 2
    assert allocator.debug_view()["largest_free"] == PAGE
    assert allocator.alloc(2 * PAGE, PAGE) is None  # 32 free pages, none adjacent
    for addr in blocks[1::2]:
        assert addr is not None
        allocator.free(addr, PAGE)
    assert free_list(allocator) == [(START, SIZE)]
    assert allocator.debug_view()["free_extents"] == 1


def test_extent_set_merges_and_refuses_overlap() -> None:
    extents = ExtentSet()
    extents.add(0x1000, 0x1000)
    extents.add(0x3000, 0x1000)
    extents.add(0x2000, 0x1000)
    assert list(extents) == [(0x1000, 0x3000)]
    with pytest.raises(InvalidArgument, match="overlaps free extent 0x1000\\+0x3000"):
        extents.add(0x3000, 0x2000)
    assert list(extents) == [(0x1000, 0x3000)]
    assert extents.total == 0x3000


def test_cleanup_frees_everything() -> None:
    for name, params in VARIANTS:
        allocator = make(name, params)
        assert allocator.alloc(8 * PAGE, PAGE) is not None
        allocator.cleanup()
        assert free_list(allocator) == [(START, SIZE)], name
        assert allocator.alloc(SIZE, PAGE) == START, name


# --- bitmap -----------------------------------------------------------------------------------


def test_bitmap_is_first_fit() -> None:
    allocator = make("bitmap")
    for n in (3, 1, 1, 59):
        assert allocator.alloc(n * PAGE, PAGE) is not None
    allocator.free(START, 3 * PAGE)
    allocator.free(START + 4 * PAGE, PAGE)
    # bf would take the exact 1-page hole; the kernel's bitmap takes the lowest one
    assert allocator.alloc(PAGE, PAGE) == START


def test_bitmap_order_per_bit_rounds_up_and_reports_waste() -> None:
    allocator = make("bitmap", "order_per_bit=2")  # one bit per 16 KiB
    first = allocator.alloc(PAGE, PAGE)
    second = allocator.alloc(5 * PAGE, PAGE)
    assert first == START
    assert second == START + 4 * PAGE
    view = allocator.debug_view()
    assert view["waste"] == 3 * PAGE + 3 * PAGE
    assert view["used"] == 12  # pages covered by the three set bits
    assert view["allocated"] == 6 * PAGE
    assert free_list(allocator) == [(START + 12 * PAGE, SIZE - 12 * PAGE)]
    allocator.free(second, 5 * PAGE)
    allocator.free(first, PAGE)
    assert allocator.debug_view()["waste"] == 0
    assert free_list(allocator) == [(START, SIZE)]


def test_bitmap_region_must_fit_whole_bits() -> None:
    with pytest.raises(InvalidArgument, match="must start and end on a multiple of 0x10000"):
        make("bitmap", "order_per_bit=4")  # START is not 64 KiB aligned
    with pytest.raises(InvalidArgument, match="order_per_bit must be an integer from 0 to 20"):
        make("bitmap", "order_per_bit=-1")
    with pytest.raises(InvalidArgument, match="unknown parameter 'order'"):
        make("bitmap", "order=1")


def test_bitmap_alignment_counts_absolute_page_frames() -> None:
    allocator = make("bitmap", "order_per_bit=1")
    assert isinstance(allocator, Bitmap)
    addr = allocator.alloc(PAGE, 0x10000)
    assert addr == 0x4011_0000
    # the bit index is not a multiple of 64 KiB / 8 KiB: the offset came from base_pfn
    assert (addr - START) // allocator.block % 8 != 0


def test_bitmap_debug_view_matches_the_kernel_fields() -> None:
    allocator = make("bitmap")
    assert allocator.alloc(3 * PAGE, PAGE) == START  # bits 0-2
    assert allocator.alloc(PAGE, 0x8000) == START + 4 * PAGE  # 0x40110000 is 32 KiB aligned
    assert allocator.alloc(PAGE, 0x10000) == 0x4012_0000  # 0x40110000 is taken: bit 20
    view = allocator.debug_view()
    assert view["base_pfn"] == START // PAGE
    assert view["count"] == PAGES
    assert view["order_per_bit"] == 0
    # word 0: bits 0, 1, 2 and 4 set -> 0x17, and bit 20
    assert view["bitmap"] == f"{0x17 | 1 << 20:08x} 00000000"
    assert view["used"] == 5
    assert view["maxchunk"] == PAGES - 21
    assert view["free"] == (PAGES - 5) * PAGE


# --- te ---------------------------------------------------------------------------------------


def test_twoended_puts_large_blocks_at_the_top_and_small_at_the_bottom() -> None:
    allocator = make("twoended", "threshold=32K")
    assert allocator.debug_view()["threshold"] == 0x8000
    small = allocator.alloc(2 * PAGE, PAGE)
    big = allocator.alloc(8 * PAGE, 0x10000)
    assert small == START
    assert big == 0x4014_0000  # highest 64 KiB boundary with 32 KiB above it in the region
    assert free_list(allocator) == [
        (START + 2 * PAGE, big - START - 2 * PAGE),
        (big + 0x8000, 0x4000),
    ]
    # the small hole above the big block is the best fit for a small block
    assert allocator.alloc(4 * PAGE, PAGE) == big + 0x8000


def test_twoended_threshold_parameter() -> None:
    assert make("twoended").debug_view()["threshold"] == DEFAULT_THRESHOLD
    assert make("twoended", "threshold=1M").debug_view()["threshold"] == 1 << 20
    with pytest.raises(InvalidArgument, match="threshold must be positive"):
        make("twoended", "threshold=0")
    with pytest.raises(InvalidArgument, match="size must be a number"):
        make("twoended", "threshold=big")


# --- invariants for every allocator -----------------------------------------------------------

operations = st.lists(
    st.one_of(
        st.tuples(st.just("alloc"), st.integers(1, 24), st.integers(0, 5)),
        st.tuples(st.just("free"), st.integers(0, 10_000), st.just(0)),
    ),
    max_size=50,
)


def check_invariants(allocator: Allocator, live: dict[int, int]) -> None:
    extents = free_list(allocator)
    for start, size in extents:
        assert size > 0
        assert start >= START
        assert start + size <= START + SIZE
    for (a, a_size), (b, _) in pairwise(extents):
        assert a + a_size < b, "free extents must be sorted and coalesced"
    used = sorted((addr, footprint(allocator, size)) for addr, size in live.items())
    spans = sorted(used + extents)
    for (a, a_size), (b, _) in pairwise(spans):
        assert a + a_size <= b, "blocks overlap each other or free space"
    waste = allocator.debug_view().get("waste", 0)
    assert sum(s for _, s in extents) + sum(live.values()) + waste == SIZE


def fits_somewhere(allocator: Allocator, size: int, alignment: int) -> bool:
    need = footprint(allocator, size)
    for start, length in allocator.iter_free():
        addr = -(-start // alignment) * alignment
        if addr + need <= start + length:
            return True
    return False


@pytest.mark.parametrize(("name", "params"), VARIANTS)
@settings(max_examples=150, deadline=None)
@given(ops=operations)
def test_invariants_hold_under_any_operation_sequence(
    name: str, params: str, ops: list[tuple[str, int, int]]
) -> None:
    allocator = make(name, params)
    live: dict[int, int] = {}
    for op, amount, order in ops:
        if op == "alloc":
            size, alignment = amount * PAGE, PAGE << order
            could = fits_somewhere(allocator, size, alignment)
            addr = allocator.alloc(size, alignment)
            if addr is None:
                assert not could, "refused although an aligned fit was free"
            else:
                assert addr % alignment == 0
                assert addr >= START
                assert addr + size <= START + SIZE
                assert addr not in live
                live[addr] = size
        elif live:
            addr = sorted(live)[amount % len(live)]
            allocator.free(addr, live.pop(addr))
        check_invariants(allocator, live)
    for addr, size in list(live.items()):
        allocator.free(addr, size)
    assert free_list(allocator) == [(START, SIZE)]
    assert allocator.debug_view().get("waste", 0) == 0


#: small blocks and many steps, so that several holes of different sizes coexist
many_small_operations = st.lists(
    st.one_of(
        st.tuples(st.just("alloc"), st.integers(1, 6), st.integers(0, 2)),
        st.tuples(st.just("free"), st.integers(0, 10_000), st.just(0)),
    ),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(ops=many_small_operations)
def test_bf_always_takes_a_smallest_fitting_extent(ops: list[tuple[str, int, int]]) -> None:
    allocator = make("bf")
    live: dict[int, int] = {}
    for op, amount, order in ops:
        if op == "alloc":
            size, alignment = amount * PAGE, PAGE << order
            fitting = [
                (start, length)
                for start, length in allocator.iter_free()
                if -(-start // alignment) * alignment + size <= start + length
            ]
            addr = allocator.alloc(size, alignment)
            if addr is not None:
                smallest = min(length for _, length in fitting)
                hole = next(e for e in fitting if e[0] <= addr < e[0] + e[1])
                assert hole[1] == smallest
                live[addr] = size
        elif live:
            addr = sorted(live)[amount % len(live)]
            allocator.free(addr, live.pop(addr))


# --- benchmark --------------------------------------------------------------------------------


def test_workload_is_deterministic_and_well_formed() -> None:
    one = bench.make_workload(seed=7, allocs=400, region_size=4 << 20)
    assert one == bench.make_workload(seed=7, allocs=400, region_size=4 << 20)
    assert one.ops != bench.make_workload(seed=8, allocs=400, region_size=4 << 20).ops
    assert one.num_allocs == 400
    allocated: set[int] = set()
    for kind, ident, size, alignment in one.ops:
        if kind == bench.ALLOC:
            assert size > 0
            assert size % PAGE == 0
            assert alignment >= PAGE
            allocated.add(ident)
        else:
            assert ident in allocated
            allocated.remove(ident)
    assert allocated, "the sequence ends with long-lived buffers still held"


def test_bench_report_structure() -> None:
    report = bench.run_bench(
        ("bitmap", "twoended"), seeds=(1, 2), allocs=300, region_size=4 << 20, repeat=1
    )
    assert [r.spec for r in report.results] == ["bf", "bitmap", "twoended"]
    assert report.results[0].ratio_to_baseline == 1.0
    for result in report.results:
        assert result.attempts == 600
        assert 0 < result.success_rate <= 1
        assert result.successes <= result.attempts
        assert 0 <= result.ext_frag_end < 1
        assert 0 <= result.largest_free_end <= result.free_end <= 4 << 20
        assert result.allocs_per_s > 0
        assert result.ratio_to_baseline == pytest.approx(
            result.allocs_per_s / report.results[0].allocs_per_s
        )


def test_bench_cli_json_table_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    args = ["--allocs", "200", "--region-size", "4M", "--repeat", "1"]
    assert bench.main([*args, "--json", "bitmap(order_per_bit=1)"], out=out) == 0
    doc: dict[str, Any] = json.loads(out.getvalue())
    assert doc["schema"] == bench.SCHEMA_VERSION
    assert doc["seeds"] == [1]
    assert [r["spec"] for r in doc["results"]] == ["bf", "bitmap(order_per_bit=1)"]
    assert {"allocs_per_s", "success_rate", "largest_free_end", "ext_frag_end"} <= set(
        doc["results"][1]
    )
    table = io.StringIO()
    assert bench.main(args, out=table) == 0
    for spec in bench.DEFAULT_SPECS:
        assert spec in table.getvalue()
    assert bench.main([*args, "nosuch"], out=io.StringIO()) == 2
    assert "unknown allocator 'nosuch'" in capsys.readouterr().err
