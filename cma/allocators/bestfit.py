"""``bf``: the best-fit allocator of the 2010 CMA patch series (the default).

Free space is a set of coalesced extents kept sorted by address and indexed
by size (the patch used two red-black trees; sorted lists with bisection give
the same orders). An allocation takes the *smallest* free extent that can
hold an aligned block of the requested size, at the lowest aligned address in
it, and splits off what is left on either side; a free merges the extent with
its neighbours. Best fit keeps the large extents intact for as long as
possible, which is what devices with big buffers need.

:class:`ExtentSet` is reusable by other extent-based allocators.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
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


class ExtentSet:
    """Disjoint, coalesced extents ``[start, start + size)``, by address and by size."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._size_at: dict[int, int] = {}
        self._by_size: list[tuple[int, int]] = []  # (size, start), ascending
        self.total = 0  #: sum of the extents' sizes

    def __len__(self) -> int:
        return len(self._starts)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """The extents ``(start, size)`` in address order."""
        size_at = self._size_at
        return ((start, size_at[start]) for start in list(self._starts))

    def largest(self) -> int:
        """The size of the largest extent, 0 when empty."""
        return self._by_size[-1][0] if self._by_size else 0

    def _insert(self, start: int, size: int) -> None:
        self._starts.insert(bisect_left(self._starts, start), start)
        self._size_at[start] = size
        self._by_size.insert(bisect_left(self._by_size, (size, start)), (size, start))
        self.total += size

    def _remove(self, start: int) -> int:
        size = self._size_at.pop(start)
        del self._starts[bisect_left(self._starts, start)]
        del self._by_size[bisect_left(self._by_size, (size, start))]
        self.total -= size
        return size

    def add(self, start: int, size: int) -> None:
        """Add ``[start, start + size)``, merging it with touching neighbours.

        Raises :class:`InvalidArgument` if it overlaps an extent already present
        (the set is left unchanged).
        """
        starts = self._starts
        i = bisect_right(starts, start)
        end = start + size
        if i < len(starts) and starts[i] < end:
            raise InvalidArgument(
                f"extent {start:#x}+{size:#x} overlaps free extent "
                f"{starts[i]:#x}+{self._size_at[starts[i]]:#x}"
            )
        if i > 0:
            prev = starts[i - 1]
            prev_end = prev + self._size_at[prev]
            if prev_end > start:
                raise InvalidArgument(
                    f"extent {start:#x}+{size:#x} overlaps free extent "
                    f"{prev:#x}+{prev_end - prev:#x}"
                )
            if prev_end == start:
                start = prev
                self._remove(prev)
                i -= 1
        if i < len(starts) and starts[i] == end:
            end += self._remove(end)
        self._insert(start, end - start)

    def take(self, hole: int, addr: int, size: int) -> None:
        """Remove ``[addr, addr + size)`` from the extent starting at ``hole``."""
        hole_end = hole + self._remove(hole)
        if addr > hole:
            self._insert(hole, addr - hole)
        if addr + size < hole_end:
            self._insert(addr + size, hole_end - addr - size)

    def find_best(self, size: int, alignment: int, top: bool = False) -> tuple[int, int] | None:
        """Best fit: ``(hole, addr)`` in the smallest extent that holds an aligned block.

        Among equally small extents the lowest is taken and the block put at
        its bottom; with ``top`` the highest, and the block at its top.
        """
        by_size = self._by_size
        i = bisect_left(by_size, (size, -1))
        n = len(by_size)
        while i < n:
            hole_size, hole = by_size[i]
            addr = align_up(hole, alignment)
            if addr + size <= hole + hole_size:
                break
            i += 1
        else:
            return None
        if not top:
            return hole, addr
        best = hole, align_down(hole + hole_size - size, alignment)
        for j in range(i + 1, n):
            other_size, other = by_size[j]
            if other_size != hole_size:
                break
            addr = align_down(other + other_size - size, alignment)
            if addr >= other:
                best = other, addr
        return best

    def find_first(self, size: int, alignment: int, top: bool = False) -> tuple[int, int] | None:
        """First fit: the lowest extent that holds an aligned block, block at its bottom.

        With ``top`` the search starts at the highest extent and the block is
        put at its top.
        """
        size_at = self._size_at
        starts = reversed(self._starts) if top else iter(self._starts)
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

    def __init__(self, start: int, size: int, page_size: int, params: str = "") -> None:
        super().__init__(start, size, page_size, params)
        check_region(self.name, start, size, page_size)
        self._configure(parse_params(self.name, params, self.param_names))
        self._free = ExtentSet()
        self._free.add(start, size)
        self._ledger = AllocationLedger(self.name, start, size)

    def _configure(self, params: dict[str, str]) -> None:
        """Apply parsed parameters (none for plain best fit)."""

    def _find(self, size: int, alignment: int) -> tuple[int, int] | None:
        return self._free.find_best(size, alignment)

    def alloc(self, size: int, alignment: int) -> int | None:
        """Carve an aligned block out of the best-fitting free extent, or None."""
        check_request(self.name, size, alignment, self.page_size)
        found = self._find(size, alignment)
        if found is None:
            return None
        hole, addr = found
        self._free.take(hole, addr, size)
        self._ledger.record(addr, size)
        return addr

    def free(self, addr: int, size: int) -> None:
        """Return an allocated block, merging it with adjacent free space."""
        self._ledger.release(addr, size)
        self._free.add(addr, size)

    def cleanup(self) -> None:
        """Forget every allocation: the whole region is one free extent again."""
        self._free = ExtentSet()
        self._free.add(self.start, self.size)
        self._ledger = AllocationLedger(self.name, self.start, self.size)

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
