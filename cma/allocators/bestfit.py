"""``bf``: the best-fit allocator of the 2010 CMA patch series (the default).

Free space is a set of coalesced extents indexed by size and by address (the
patch used two red-black trees; a sorted list with bisection and two dicts give
the same answers). An allocation takes the *smallest* free extent that can
hold an aligned block of the requested size, at the lowest aligned address in
it, and splits off what is left on either side; a free merges the extent with
its neighbours. Best fit keeps the large extents intact for as long as
possible, which is what devices with big buffers need.

:class:`ExtentSet` is reusable by other extent-based allocators.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator
from itertools import islice
from typing import Any, ClassVar

from cma.allocators import (
    AllocationLedger,
    Allocator,
    align_down,
    align_up,
    check_region,
    check_request,
    parse_params,
    register,
)
from cma.errors import InvalidArgument

#: ``_by_size`` keys are ``size << _SHIFT | start``: one int orders by size, then address
_SHIFT = 64
_LOW = (1 << _SHIFT) - 1


class ExtentSet:
    """Disjoint, coalesced extents ``[start, start + size)``, by address and by size.

    Two dicts find an extent by its start and by its end, so a block coming back
    finds the free neighbours it merges with without a search; a sorted list of
    integer keys ``size << 64 | start`` orders the extents by size, then address
    (tuples would order the same, at several times the cost of every comparison).
    The address order itself is only needed to iterate and to check a new
    extent for overlaps; it is sorted again when asked for after a change.
    """

    def __init__(self) -> None:
        self._size_at: dict[int, int] = {}  # start -> size
        self._start_at: dict[int, int] = {}  # end -> start
        self._by_size: list[int] = []  # size << _SHIFT | start, ascending
        self._starts: list[int] | None = []  # address order; None: stale
        self.total = 0  #: sum of the extents' sizes

    def __len__(self) -> int:
        return len(self._size_at)

    def _ordered(self) -> list[int]:
        starts = self._starts
        if starts is None:
            starts = self._starts = sorted(self._size_at)
        return starts

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """The extents ``(start, size)`` in address order."""
        size_at = self._size_at
        return ((start, size_at[start]) for start in list(self._ordered()))

    def largest(self) -> int:
        """The size of the largest extent, 0 when empty."""
        return self._by_size[-1] >> _SHIFT if self._by_size else 0

    def add(self, start: int, size: int) -> None:
        """Add ``[start, start + size)``, merging it with touching neighbours.

        Raises :class:`InvalidArgument` if it overlaps an extent already present
        (the set is left unchanged).
        """
        starts, size_at = self._ordered(), self._size_at
        i = bisect_right(starts, start)
        end = start + size
        if i < len(starts) and starts[i] < end:
            raise InvalidArgument(
                f"extent {start:#x}+{size:#x} overlaps free extent "
                f"{starts[i]:#x}+{size_at[starts[i]]:#x}"
            )
        if i > 0:
            prev = starts[i - 1]
            prev_end = prev + size_at[prev]
            if prev_end > start:
                raise InvalidArgument(
                    f"extent {start:#x}+{size:#x} overlaps free extent "
                    f"{prev:#x}+{prev_end - prev:#x}"
                )
        self.merge(start, size)

    def merge(self, start: int, size: int) -> None:
        """:meth:`add` without the overlap check, for a block known to be outside the set
        (one the allocator handed out and its ledger just took back)."""
        size_at, start_at, by_size = self._size_at, self._start_at, self._by_size
        end = start + size
        after = size_at.pop(end, 0)
        if after:
            del start_at[end + after]
            del by_size[bisect_left(by_size, after << _SHIFT | end)]
            end += after
        before = start_at.pop(start, None)
        if before is not None:
            del size_at[before]
            del by_size[bisect_left(by_size, (start - before) << _SHIFT | before)]
            start = before
        size_at[start] = end - start
        start_at[end] = start
        insort(by_size, (end - start) << _SHIFT | start)
        self._starts = None
        self.total += size

    def take(self, hole: int, addr: int, size: int) -> None:
        """Remove ``[addr, addr + size)`` from the extent starting at ``hole``."""
        size_at, start_at, by_size = self._size_at, self._start_at, self._by_size
        hole_size = size_at.pop(hole)
        hole_end = hole + hole_size
        del by_size[bisect_left(by_size, hole_size << _SHIFT | hole)]
        if addr > hole:
            size_at[hole] = addr - hole
            start_at[addr] = hole
            insort(by_size, (addr - hole) << _SHIFT | hole)
        end = addr + size
        if end < hole_end:
            size_at[end] = hole_end - end
            start_at[hole_end] = end
            insort(by_size, (hole_end - end) << _SHIFT | end)
        else:
            del start_at[hole_end]
        self._starts = None
        self.total -= size

    def find_best(self, size: int, alignment: int, top: bool = False) -> tuple[int, int] | None:
        """Best fit: ``(hole, addr)`` in the smallest extent that holds an aligned block.

        Among equally small extents the lowest is taken and the block put at
        its bottom; with ``top`` the highest, and the block at its top.
        """
        by_size = self._by_size
        first = bisect_left(by_size, size << _SHIFT)
        low = -alignment
        for key in islice(by_size, first, None):
            hole = key & _LOW
            addr = (hole + alignment - 1) & low
            if addr + size <= hole + (key >> _SHIFT):
                break
        else:
            return None
        if not top:
            return hole, addr
        hole_size = key >> _SHIFT
        best = hole, align_down(hole + hole_size - size, alignment)
        for other_key in islice(by_size, bisect_right(by_size, key), None):
            if other_key >> _SHIFT != hole_size:
                break
            other = other_key & _LOW
            addr = align_down(other + hole_size - size, alignment)
            if addr >= other:
                best = other, addr
        return best

    def find_first(self, size: int, alignment: int, top: bool = False) -> tuple[int, int] | None:
        """First fit: the lowest extent that holds an aligned block, block at its bottom.

        With ``top`` the search starts at the highest extent and the block is
        put at its top.
        """
        size_at = self._size_at
        starts = reversed(self._ordered()) if top else iter(self._ordered())
        for hole in starts:
            hole_size = size_at[hole]
            if hole_size < size:
                continue
            if top:
                addr = align_down(hole + hole_size - size, alignment)
                if addr >= hole:
                    return hole, addr
            else:
                addr = align_up(hole, alignment)
                if addr + size <= hole + hole_size:
                    return hole, addr
        return None


@register
class BestFit(Allocator):
    """The smallest free extent that fits wins; split on alloc, coalesce on free."""

    name: ClassVar[str] = "bf"
    summary: ClassVar[str] = "best fit over coalesced free extents (the 2010 default)"
    #: the ``key=value`` parameters this allocator accepts
    param_names: ClassVar[tuple[str, ...]] = ()
    #: blocks of at least this size go to the top of their extent (None: none do)
    _top_from: int | None = None

    def __init__(self, start: int, size: int, page_size: int, params: str = "") -> None:
        super().__init__(start, size, page_size, params)
        check_region(self.name, start, size, page_size)
        self._configure(parse_params(self.name, params, self.param_names))
        self._free = ExtentSet()
        self._free.add(start, size)
        self._ledger = AllocationLedger(self.name, start, size)
        self._held = self._ledger.held

    def _configure(self, params: dict[str, str]) -> None:
        """Apply parsed parameters (none for plain best fit)."""

    def alloc(self, size: int, alignment: int) -> int | None:
        """Carve an aligned block out of the best-fitting free extent, or None."""
        page = self.page_size
        if size <= 0 or size % page or alignment < page or alignment & (alignment - 1):
            check_request(self.name, size, alignment, page)  # raises, naming the value
        top_from = self._top_from
        found = self._free.find_best(size, alignment, top_from is not None and size >= top_from)
        if found is None:
            return None
        hole, addr = found
        self._free.take(hole, addr, size)
        self._held[addr] = size  # AllocationLedger.record, without the call
        return addr

    def free(self, addr: int, size: int) -> None:
        """Return an allocated block, merging it with adjacent free space."""
        held = self._held
        if held.get(addr) == size > 0:  # exactly what was handed out
            del held[addr]
        else:
            self._ledger.release(addr, size)  # raises, saying what is wrong
        self._free.merge(addr, size)

    def cleanup(self) -> None:
        """Forget every allocation: the whole region is one free extent again."""
        self._free = ExtentSet()
        self._free.add(self.start, self.size)
        self._ledger = AllocationLedger(self.name, self.start, self.size)
        self._held = self._ledger.held

    def iter_free(self) -> Iterator[tuple[int, int]]:
        """The free extents in address order (always coalesced)."""
        return iter(self._free)

    def debug_view(self) -> dict[str, Any]:
        """Counts and sizes in bytes; ``waste`` is 0 since blocks are never rounded."""
        return {
            "free": self._free.total,
            "allocated": self._ledger.allocated,
            "waste": 0,
            "free_extents": len(self._free),
            "largest_free": self._free.largest(),
            "allocations": len(self._ledger),
        }
