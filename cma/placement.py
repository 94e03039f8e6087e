"""Boot-time placement of regions in RAM (what the kernel does with memblock).

:func:`reserve` turns :class:`~cma.config.RegionSpec` records into concrete
``[base, base + size)`` ranges. Fixed regions are taken first, exactly where
they are asked to be; then those with a desired start, then the rest, each
group in the order given:

* with a ``start`` (2010 ``@START``): the free, aligned position nearest
  ``start`` ("at START or at least as near as possible"), lower address on a tie;
* without: top-down, the highest fitting address, as memblock does.

Every region also honours its ``alloc_ranges``, its ``limit`` and the physical
windows its devices can reach through their DMA views (``reach``), and never
overlaps RAM carve-outs or another region. A region never straddles two RAM
banks or two reach windows: each of those is contiguous only on its own.
The result depends only on the inputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

from cma.config import RegionSpec
from cma.errors import InvalidArgument, PlacementError

#: physical addresses a 32-bit core without LPAE can use
ADDRESS_LIMIT = 1 << 32

_Interval = tuple[int, int]  # half-open [start, end)


@dataclass(frozen=True)
class PlacedRegion:
    """A region reserved at boot: its spec and where it ended up."""

    spec: RegionSpec
    base: int
    size: int
    alignment: int

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def end(self) -> int:
        """One past the last byte."""
        return self.base + self.size


def fmt_range(start: int, end: int) -> str:
    """``[start, end)`` written the kernel's way, inclusive: ``0x40000000-0x40ffffff``."""
    return f"{start:#010x}-{max(end - 1, start):#010x}"


def is_power_of_two(value: int) -> bool:
    return value > 0 and value & (value - 1) == 0


def round_up(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


def round_down(value: int, alignment: int) -> int:
    return value // alignment * alignment


def normalise_alignment(alignment: int, page_size: int, what: str = "alignment") -> int:
    """0 or anything below a page becomes a page; otherwise it must be a power of two."""
    if alignment < 0 or (alignment and not is_power_of_two(alignment)):
        raise InvalidArgument(f"{what} must be 0 or a power of two, not {alignment:#x}")
    return max(alignment, page_size)


def check_page_size(page_size: int) -> None:
    if not is_power_of_two(page_size):
        raise InvalidArgument(f"page size must be a power of two, not {page_size:#x}")


def check_ram(ram: Sequence[tuple[int, int]]) -> list[_Interval]:
    """Validate RAM banks ``(start, size)``; return them as sorted intervals."""
    if not ram:
        raise InvalidArgument("no RAM banks given")
    banks: list[_Interval] = []
    for start, size in ram:
        if start < 0 or size <= 0:
            raise InvalidArgument(f"RAM bank must have start >= 0 and size > 0, not "
                                  f"({start:#x}, {size:#x})")
        banks.append((start, start + size))
    banks.sort()
    for (a0, a1), (b0, b1) in pairwise(banks):
        if b0 < a1:
            raise InvalidArgument(f"RAM banks {fmt_range(a0, a1)} and {fmt_range(b0, b1)} overlap")
    return banks


def reserve(
    regions: Sequence[RegionSpec],
    ram: Sequence[tuple[int, int]],
    page_size: int = 4096,
    reserved: Sequence[tuple[str, int, int]] = (),
    reach: Mapping[str, Sequence[tuple[int, int]]] | None = None,
    *,
    address_limit: int = ADDRESS_LIMIT,
) -> list[PlacedRegion]:
    """Place ``regions`` in ``ram`` and return them in the order given.

    ``reserved`` are carve-outs ``(name, start, size)`` nobody may overlap;
    ``reach[name]`` are physical ``(start, size)`` windows region ``name`` must
    lie in (one of them, entirely). Raises :class:`InvalidArgument` for bad
    values and :class:`PlacementError` when a region cannot be placed.
    """
    check_page_size(page_size)
    banks = check_ram(ram)
    reach = reach or {}
    seen: set[str] = set()
    for spec in regions:
        if spec.name in seen:
            raise InvalidArgument(f"region {spec.name!r} is defined twice")
        seen.add(spec.name)

    occupied: list[tuple[str, int, int]] = []
    for name, start, size in reserved:
        if size <= 0 or start < 0:
            raise InvalidArgument(f"carve-out {name!r} must have start >= 0 and size > 0, not "
                                  f"({start:#x}, {size:#x})")
        occupied.append((f"carve-out {name!r}", start, start + size))

    shapes = {spec.name: _shape(spec, page_size) for spec in regions}
    placed: dict[str, PlacedRegion] = {}
    for spec in regions:
        if spec.fixed:
            size, align = shapes[spec.name]
            placed[spec.name] = _place_fixed(spec, size, align, banks, occupied, reach,
                                             address_limit)
            occupied.append((f"region {spec.name!r}", spec.start or 0, (spec.start or 0) + size))
    # regions asking for a start go before top-down ones, which could take that spot
    dynamic = [s for s in regions if not s.fixed and s.start is not None]
    dynamic += [s for s in regions if not s.fixed and s.start is None]
    for spec in dynamic:
        size, align = shapes[spec.name]
        region = _place_dynamic(spec, size, align, banks, occupied, reach, address_limit)
        placed[spec.name] = region
        occupied.append((f"region {spec.name!r}", region.base, region.end))
    return [placed[spec.name] for spec in regions]


def _shape(spec: RegionSpec, page_size: int) -> tuple[int, int]:
    if spec.size <= 0:
        raise InvalidArgument(f"size of region {spec.name!r} must be positive, not {spec.size:#x}")
    align = normalise_alignment(spec.alignment, page_size, f"alignment of region {spec.name!r}")
    return round_up(spec.size, page_size), align


def _constraints(
    spec: RegionSpec, banks: list[_Interval], reach: Mapping[str, Sequence[tuple[int, int]]],
    address_limit: int,
) -> list[_Interval]:
    """The windows the region may lie in (each alone; they are not merged)."""
    windows = _intersect(banks, [(0, address_limit)])
    if spec.alloc_ranges:
        windows = _intersect(windows, [(s, s + n) for s, n in spec.alloc_ranges])
    if spec.limit is not None:
        windows = _intersect(windows, [(0, spec.limit)])
    if spec.name in reach:
        views = [(s, s + n) for s, n in reach[spec.name] if n > 0]
        if not views:
            raise PlacementError(f"region {spec.name!r} is out of reach of the devices mapped "
                                 f"to it (their DMA views share no memory)")
        windows = _intersect(windows, views)
    return windows


def _place_fixed(
    spec: RegionSpec, size: int, align: int, banks: list[_Interval],
    occupied: list[tuple[str, int, int]], reach: Mapping[str, Sequence[tuple[int, int]]],
    address_limit: int,
) -> PlacedRegion:
    if spec.start is None:
        raise InvalidArgument(f"fixed region {spec.name!r} has no start address")
    start, end = spec.start, spec.start + size
    where = f"region {spec.name!r} at {fmt_range(start, end)}"
    if start % align:
        raise PlacementError(f"{where} is not aligned to {align:#x}")
    if end > address_limit:
        raise PlacementError(f"{where} ends past {address_limit:#x}")
    if not any(b0 <= start and end <= b1 for b0, b1 in banks):
        raise PlacementError(f"{where} is not inside one RAM bank ({_fmt_all(banks)})")
    windows = _constraints(spec, banks, reach, address_limit)
    if not any(w0 <= start and end <= w1 for w0, w1 in windows):
        why = _why_constrained(spec, reach)
        raise PlacementError(f"{where} is outside what {why} allows ({_fmt_all(windows)})")
    for label, o0, o1 in occupied:
        if start < o1 and o0 < end:
            raise PlacementError(f"{where} overlaps {label} at {fmt_range(o0, o1)}")
    return PlacedRegion(spec, start, size, align)


def _place_dynamic(
    spec: RegionSpec, size: int, align: int, banks: list[_Interval],
    occupied: list[tuple[str, int, int]], reach: Mapping[str, Sequence[tuple[int, int]]],
    address_limit: int,
) -> PlacedRegion:
    windows = _constraints(spec, banks, reach, address_limit)
    free = _subtract(windows, [(o0, o1) for _label, o0, o1 in occupied])
    best: tuple[int, int] | None = None  # (distance or -address, base)
    for a, b in free:
        lo, hi = round_up(a, align), round_down(b - size, align)
        if b - size < a or lo > hi:
            continue
        if spec.start is None:
            key, base = -hi, hi
        else:
            near = spec.start
            down = round_down(min(max(near, lo), hi), align)
            base = min((p for p in (down, down + align) if lo <= p <= hi),
                       key=lambda p: (abs(p - near), p))
            key = abs(base - near)
        if best is None or (key, base) < best:
            best = (key, base)
    if best is None:
        raise PlacementError(
            f"no room for region {spec.name!r} ({size:#x} bytes, alignment {align:#x}) in the "
            f"free part of {_why_constrained(spec, reach)}: {_fmt_all(free) or 'nothing'}"
        )
    return PlacedRegion(spec, best[1], size, align)


def _why_constrained(spec: RegionSpec, reach: Mapping[str, Sequence[tuple[int, int]]]) -> str:
    parts = ["RAM"]
    if spec.alloc_ranges:
        parts.append("its alloc-ranges")
    if spec.limit is not None:
        parts.append(f"its limit {spec.limit:#x}")
    if spec.name in reach:
        parts.append("the DMA reach of its devices")
    return ", ".join(parts)


def _fmt_all(intervals: Iterable[_Interval]) -> str:
    return ", ".join(fmt_range(a, b) for a, b in intervals)


def _intersect(a: Sequence[_Interval], b: Sequence[_Interval]) -> list[_Interval]:
    out = [(max(a0, b0), min(a1, b1)) for a0, a1 in a for b0, b1 in b]
    return sorted({(s, e) for s, e in out if s < e})


def _subtract(windows: Sequence[_Interval], holes: Sequence[_Interval]) -> list[_Interval]:
    out: list[_Interval] = []
    for w0, w1 in windows:
        pieces = [(w0, w1)]
        for h0, h1 in holes:
            nxt: list[_Interval] = []
            for p0, p1 in pieces:
                if h1 <= p0 or p1 <= h0:
                    nxt.append((p0, p1))
                    continue
                if p0 < h0:
                    nxt.append((p0, h0))
                if h1 < p1:
                    nxt.append((h1, p1))
            pieces = nxt
        out.extend(pieces)
    return sorted(set(out))
