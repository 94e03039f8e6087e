"""Boot-time placement: fixed, near-START, top-down, windows, reach, and every error."""

from __future__ import annotations

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from cma.config import RegionSpec
from cma.errors import CMAError, InvalidArgument, PlacementError
from cma.placement import fmt_range, reserve

MiB = 1 << 20
RAM = [(0x40000000, 256 * MiB)]  # 0x40000000-0x4fffffff


def place(*specs: RegionSpec, **kwargs: object) -> dict[str, tuple[int, int]]:
    return {p.name: (p.base, p.size) for p in reserve(specs, kwargs.pop("ram", RAM), **kwargs)}  # type: ignore[arg-type]


def test_top_down_like_memblock() -> None:
    placed = place(RegionSpec("a", 16 * MiB), RegionSpec("b", 8 * MiB))
    assert placed == {"a": (0x4F000000, 16 * MiB), "b": (0x4E800000, 8 * MiB)}


def test_result_keeps_the_given_order_and_is_deterministic() -> None:
    specs = (RegionSpec("z", MiB), RegionSpec("a", MiB, start=0x40000000), RegionSpec("m", MiB))
    first = reserve(specs, RAM)
    assert [p.name for p in first] == ["z", "a", "m"]
    assert first == reserve(specs, RAM)


def test_size_rounded_up_to_pages_and_alignment_defaults_to_a_page() -> None:
    (p,) = reserve([RegionSpec("a", 5000)], RAM)
    assert (p.size, p.alignment) == (8192, 4096)
    (q,) = reserve([RegionSpec("a", 5000, alignment=16)], RAM)
    assert q.alignment == 4096


def test_alignment_honoured_top_down() -> None:
    (p,) = reserve([RegionSpec("a", 3 * MiB, alignment=4 * MiB)], RAM)
    assert p.base % (4 * MiB) == 0
    assert p.base == 0x4FC00000  # highest 4 MiB boundary where 3 MiB still fits


def test_start_is_honoured_exactly_when_free() -> None:
    assert place(RegionSpec("a", MiB, start=0x44000000))["a"] == (0x44000000, MiB)


def test_start_means_as_near_as_possible() -> None:
    placed = place(
        RegionSpec("blocker", 2 * MiB, start=0x44000000, fixed=True),
        RegionSpec("a", MiB, start=0x44080000),
    )
    # 0x44000000-0x441fffff is taken: the nearest free spots are 0x43f00000
    # (distance 0x180000) and 0x44200000 (distance 0x180000): a tie, lower wins
    assert placed["a"] == (0x43F00000, MiB)


def test_start_rounded_to_alignment_nearest() -> None:
    placed = place(RegionSpec("a", MiB, start=0x44180000, alignment=MiB))
    assert placed["a"][0] in (0x44100000, 0x44200000)
    assert placed["a"][0] == 0x44100000  # tie -> lower address


def test_start_outside_ram_goes_to_the_nearest_edge() -> None:
    assert place(RegionSpec("a", MiB, start=0x10000000))["a"][0] == 0x40000000
    assert place(RegionSpec("a", MiB, start=0x90000000))["a"][0] == 0x4FF00000


def test_regions_with_a_start_are_placed_before_top_down_ones() -> None:
    placed = place(RegionSpec("top", 16 * MiB), RegionSpec("want", 8 * MiB, start=0x4F000000))
    assert placed["want"] == (0x4F000000, 8 * MiB)
    assert placed["top"][0] + 16 * MiB <= 0x4F000000


def test_fixed_regions_first_then_dynamic_avoid_them() -> None:
    placed = place(RegionSpec("dyn", 16 * MiB),
                   RegionSpec("fix", 16 * MiB, start=0x4F000000, fixed=True))
    assert placed["fix"] == (0x4F000000, 16 * MiB)
    assert placed["dyn"] == (0x4E000000, 16 * MiB)


def test_carveouts_are_avoided() -> None:
    placed = place(RegionSpec("a", 16 * MiB), reserved=[("fw", 0x4F800000, MiB)])
    assert placed["a"] == (0x4E800000, 16 * MiB)


def test_alloc_ranges_and_limit() -> None:
    placed = place(
        RegionSpec("a", MiB, alloc_ranges=((0x42000000, 4 * MiB), (0x48000000, 2 * MiB))),
        RegionSpec("b", MiB, limit=0x41000000),
    )
    assert placed["a"] == (0x48100000, MiB)  # top-down: highest window first
    assert placed["b"] == (0x40F00000, MiB)


def test_reach_windows_keep_a_region_where_its_devices_can_dma() -> None:
    placed = place(RegionSpec("cam", 4 * MiB), reach={"cam": [(0x40000000, 64 * MiB)]})
    assert placed["cam"] == (0x43C00000, 4 * MiB)


def test_region_never_straddles_two_reach_windows() -> None:
    reach = {"a": [(0x40000000, MiB), (0x40100000, MiB)]}
    with pytest.raises(PlacementError, match="no room for region 'a'"):
        place(RegionSpec("a", 2 * MiB), reach=reach)


def test_region_never_straddles_two_ram_banks() -> None:
    ram = [(0x40000000, MiB), (0x40100000, MiB)]
    with pytest.raises(PlacementError, match="no room"):
        place(RegionSpec("a", 2 * MiB), ram=ram)


def test_fixed_region_must_respect_reach() -> None:
    with pytest.raises(PlacementError, match=r"outside what RAM, the DMA reach"):
        place(RegionSpec("a", MiB, start=0x48000000, fixed=True),
              reach={"a": [(0x40000000, MiB)]})


def test_empty_reach_is_an_error() -> None:
    with pytest.raises(PlacementError, match="out of reach"):
        place(RegionSpec("a", MiB), reach={"a": []})


def test_address_limit_keeps_regions_below_4g() -> None:
    ram = [(0xF0000000, 512 * MiB)]
    placed = place(RegionSpec("a", MiB), ram=ram)
    assert placed["a"] == (0xFFF00000, MiB)
    with pytest.raises(PlacementError, match="ends past 0x100000000"):
        place(RegionSpec("b", 2 * MiB, start=0xFFF00000, fixed=True), ram=ram)


@pytest.mark.parametrize(
    ("spec", "kwargs", "error", "message"),
    [
        (RegionSpec("a", 0), {}, InvalidArgument, "size of region 'a' must be positive, not 0x0"),
        (RegionSpec("a", MiB, alignment=0x3000), {}, InvalidArgument,
         "power of two, not 0x3000"),
        (RegionSpec("a", MiB, fixed=True), {}, InvalidArgument, "has no start"),
        (RegionSpec("a", MiB, start=0x40000800, fixed=True), {}, PlacementError,
         "not aligned to 0x1000"),
        (RegionSpec("a", MiB, start=0x30000000, fixed=True), {}, PlacementError,
         "0x30000000-0x300fffff is not inside one RAM bank"),
        (RegionSpec("a", 2 * MiB, start=0x4FF00000, fixed=True), {}, PlacementError,
         "not inside one RAM bank"),
        (RegionSpec("a", MiB, start=0x40000000, fixed=True),
         {"reserved": [("fw", 0x400FF000, 0x1000)]}, PlacementError,
         "0x40000000-0x400fffff overlaps carve-out 'fw' at 0x400ff000-0x400fffff"),
        (RegionSpec("a", 512 * MiB), {}, PlacementError, "no room for region 'a'"),
        (RegionSpec("a", MiB, limit=0x40000000), {}, PlacementError, "its limit 0x40000000"),
        (RegionSpec("a", MiB), {"page_size": 3000}, InvalidArgument, "page size"),
        (RegionSpec("a", MiB), {"ram": []}, InvalidArgument, "no RAM"),
        (RegionSpec("a", MiB), {"ram": [(0, 0)]}, InvalidArgument, "size > 0"),
        (RegionSpec("a", MiB), {"ram": [(0, 2 * MiB), (MiB, 2 * MiB)]}, InvalidArgument,
         "RAM banks 0x00000000-0x001fffff and 0x00100000-0x002fffff overlap"),
        (RegionSpec("a", MiB), {"reserved": [("x", 0, 0)]}, InvalidArgument, "carve-out 'x'"),
    ],
)
def test_errors_name_the_value(spec: RegionSpec, kwargs: dict[str, object],
                               error: type[CMAError], message: str) -> None:
    with pytest.raises(error) as info:
        place(spec, **kwargs)
    assert message in str(info.value)


def test_overlapping_fixed_regions_name_both_ranges() -> None:
    with pytest.raises(PlacementError) as info:
        place(RegionSpec("a", 2 * MiB, start=0x40000000, fixed=True),
              RegionSpec("b", MiB, start=0x40100000, fixed=True))
    assert str(info.value) == ("region 'b' at 0x40100000-0x401fffff overlaps region 'a' at "
                               "0x40000000-0x401fffff")


def test_duplicate_names() -> None:
    with pytest.raises(InvalidArgument, match="'a' is defined twice"):
        place(RegionSpec("a", MiB), RegionSpec("a", MiB))


def test_fmt_range_is_inclusive() -> None:
    assert fmt_range(0x1000, 0x2000) == "0x00001000-0x00001fff"


# --- properties -------------------------------------------------------------------------------

PAGE = 4096


@st.composite
def layouts(draw: st.DrawFn) -> tuple[list[RegionSpec], list[tuple[int, int]],
                                      list[tuple[str, int, int]], dict[str, list[tuple[int, int]]]]:
    nbanks = draw(st.integers(1, 3))
    ram = []
    cursor = 0x40000000
    for _ in range(nbanks):
        cursor += draw(st.integers(0, 16)) * MiB
        size = draw(st.integers(1, 64)) * MiB
        ram.append((cursor, size))
        cursor += size
    lo, hi = ram[0][0], cursor
    reserved = [(f"c{i}", draw(st.integers(lo // PAGE, hi // PAGE)) * PAGE,
                 draw(st.integers(1, 256)) * PAGE) for i in range(draw(st.integers(0, 2)))]
    specs: list[RegionSpec] = []
    reach: dict[str, list[tuple[int, int]]] = {}
    for i in range(draw(st.integers(1, 5))):
        name = f"r{i}"
        size = draw(st.integers(1, 4 * MiB))
        align = draw(st.sampled_from([0, 512, PAGE, 64 * 1024, MiB, 2 * MiB]))
        start = draw(st.none() | st.integers(lo - MiB, hi))
        fixed = start is not None and draw(st.booleans())
        if fixed:
            assert start is not None
            start = start // max(align, PAGE) * max(align, PAGE)
        limit = draw(st.integers(lo, hi)) if draw(st.integers(0, 3)) == 0 else None
        ranges = tuple(
            (draw(st.integers(lo, hi)), draw(st.integers(PAGE, 64 * MiB)))
            for _ in range(int(draw(st.integers(0, 3)) == 0))
        )
        if draw(st.integers(0, 3)) == 0:
            reach[name] = [(draw(st.integers(lo - MiB, hi)), draw(st.integers(MiB, 128 * MiB)))]
        specs.append(RegionSpec(name, size, start=start, alignment=align, fixed=fixed,
                                limit=limit, alloc_ranges=ranges))
    return specs, ram, reserved, reach


@settings(max_examples=150, deadline=None)
@given(layouts())
def test_placement_invariants(layout: tuple[list[RegionSpec], list[tuple[int, int]],
                                            list[tuple[str, int, int]],
                                            dict[str, list[tuple[int, int]]]]) -> None:
    specs, ram, reserved, reach = layout
    try:
        placed = reserve(specs, ram, PAGE, reserved, reach)
    except (PlacementError, InvalidArgument) as exc:
        note(f"refused: {exc}")
        return
    assert [p.name for p in placed] == [s.name for s in specs]
    for p in placed:
        spec = p.spec
        assert p.size >= spec.size
        assert p.size % PAGE == 0
        assert p.size - spec.size < PAGE
        assert p.base % p.alignment == 0
        assert p.alignment >= PAGE
        assert any(s <= p.base and p.end <= s + n for s, n in ram), "inside one RAM bank"
        assert p.end <= 1 << 32
        if spec.fixed:
            assert p.base == spec.start
        if spec.limit is not None:
            assert p.end <= spec.limit
        if spec.alloc_ranges:
            assert any(s <= p.base and p.end <= s + n for s, n in spec.alloc_ranges)
        if spec.name in reach:
            assert any(s <= p.base and p.end <= s + n for s, n in reach[spec.name])
        for _name, start, size in reserved:
            assert p.end <= start or start + size <= p.base, "clear of carve-outs"
    for i, a in enumerate(placed):
        for b in placed[i + 1:]:
            assert a.end <= b.base or b.end <= a.base, "regions never overlap"
    assert placed == reserve(specs, ram, PAGE, reserved, reach), "deterministic"


@settings(max_examples=60, deadline=None)
@given(st.integers(0x40000000 // PAGE, 0x50000000 // PAGE), st.integers(1, 64))
def test_start_nearest_free_position(start_page: int, blocker_pages: int) -> None:
    """With one blocker in the way the region lands exactly next to it (or at START)."""
    start = start_page * PAGE
    blocker = ("b", 0x48000000, blocker_pages * PAGE)
    (p,) = reserve([RegionSpec("a", MiB, start=start)], RAM, PAGE, [blocker])
    best = min(
        (abs(c - start), c)
        for c in range(0x40000000, 0x50000000 - MiB + 1, PAGE)
        if c + MiB <= blocker[1] or blocker[1] + blocker[2] <= c
        if abs(c - start) <= abs(p.base - start) + PAGE
    )
    assert (abs(p.base - start), p.base) == best
