"""Reusable regions: the free pages of CMA regions lent to movable owners, migrated on demand.

The 2010 review objected that memory set aside for devices is wasted while no
device uses it. Mainline CMA answered by making the areas *reusable*: their
pageblocks are ``MIGRATE_CMA``, which the page allocator fills with movable
pages (page cache, anonymous memory), and ``alloc_contig_range()`` migrates
those pages elsewhere when a device asks for a contiguous range. Pinned pages
cannot move, and make that range fail.

:class:`MovablePool` models this on top of :class:`cma.core.ContiguousMemory`:

* :meth:`MovablePool.lend` hands whole free pages of reusable regions (never
  ``no-map``, non-reusable or private ones) to an *owner* (``"pagecache:file42"``,
  ``"proc:17"``) as :class:`MovablePage` objects, from the top of the free space
  by default: the end opposite to where ``bf`` and ``bitmap`` place chunks, so
  fewer pages stand in the way of the next contiguous request.
* The allocator still counts lent pages as free (like ``MIGRATE_CMA``). When
  it picks a range holding lent pages, the core calls :meth:`MovablePool.evacuate`,
  which copies each page's contents to a free page elsewhere (the same region,
  else another reusable region, else :class:`SystemMemory` if configured),
  updates its address and calls ``on_migrate(page, old_phys, new_phys)``. If a
  page in the range is pinned, nothing moves and the core tries another range.
* Contents live in a :class:`PageStore` keyed by physical address
  (:class:`HostMemory` by default, :class:`CallbackMemory` to put them in guest
  RAM), so a migration really has to copy them to stay correct.
* Every migration is priced by a :class:`CostModel` and counted per region in
  :class:`MovableStats`.

The workload and benchmark (``python -m cma.movable --bench``,
``scripts/bench-reusable``) are in :mod:`cma.workload`.
"""

from __future__ import annotations

import contextlib
import threading
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from cma.core import ContiguousMemory
from cma.errors import InvalidArgument, NoMemory
from cma.placement import fmt_range
from cma.region import Region

__all__ = [
    "CallbackMemory",
    "CostModel",
    "HostMemory",
    "LendEnd",
    "MigrateCallback",
    "MovablePage",
    "MovablePool",
    "MovableStats",
    "PageStore",
    "SystemMemory",
]

#: which end of the free space :meth:`MovablePool.lend` takes pages from
LendEnd = Literal["top", "bottom"]
#: ``on_migrate(page, old_phys, new_phys)``, called after each page moved
MigrateCallback = Callable[["MovablePage", int, int], None]

#: the most pinned pages named in one refusal message
_NAMED_PINS = 4


# --- contents ------------------------------------------------------------------------------


class PageStore(Protocol):
    """Where the contents of movable pages live, addressed physically.

    Reads and writes never cross a page boundary. ``discard`` says a page no
    longer holds anything of value (released, or migrated away).
    """

    def read(self, phys: int, size: int) -> bytes:
        """``size`` bytes at physical address ``phys``."""
        ...

    def write(self, phys: int, data: bytes) -> None:
        """Store ``data`` at physical address ``phys``."""
        ...

    def discard(self, phys: int, size: int) -> None:
        """Forget ``[phys, phys + size)``."""
        ...


class HostMemory:
    """A sparse host-side :class:`PageStore`: pages never written read as zeros."""

    def __init__(self, page_size: int) -> None:
        self.page_size = page_size
        self._pages: dict[int, bytearray] = {}

    def _page(self, phys: int, size: int) -> tuple[int, int]:
        base = phys - phys % self.page_size
        offset = phys - base
        if size < 0 or offset + size > self.page_size:
            raise InvalidArgument(f"access {phys:#x}+{size:#x} crosses a page boundary "
                                  f"(page size {self.page_size:#x})")
        return base, offset

    def read(self, phys: int, size: int) -> bytes:
        """The bytes at ``phys`` (zeros where nothing was written)."""
        base, offset = self._page(phys, size)
        page = self._pages.get(base)
        return bytes(size) if page is None else bytes(page[offset:offset + size])

    def write(self, phys: int, data: bytes) -> None:
        """Store ``data`` at ``phys``, inside one page."""
        base, offset = self._page(phys, len(data))
        page = self._pages.setdefault(base, bytearray(self.page_size))
        page[offset:offset + len(data)] = data

    def discard(self, phys: int, size: int) -> None:
        """Forget the whole pages in ``[phys, phys + size)``."""
        for base in range(phys - phys % self.page_size, phys + size, self.page_size):
            self._pages.pop(base, None)

    @property
    def pages_held(self) -> int:
        """How many pages hold data (for tests: released pages are not kept)."""
        return len(self._pages)


class CallbackMemory:
    """A :class:`PageStore` over two callables, e.g. the machine's guest RAM accessors."""

    def __init__(self, read: Callable[[int, int], bytes],
                 write: Callable[[int, bytes], None]) -> None:
        self._read = read
        self._write = write

    def read(self, phys: int, size: int) -> bytes:
        """Whatever the read callable returns."""
        return bytes(self._read(phys, size))

    def write(self, phys: int, data: bytes) -> None:
        """Hand ``data`` to the write callable."""
        self._write(phys, data)

    def discard(self, phys: int, size: int) -> None:
        """Nothing to do: RAM keeps its stale bytes, as real memory does."""


# --- cost and accounting ---------------------------------------------------------------------


@dataclass(frozen=True)
class CostModel:
    """An estimate of the time migration adds to a contiguous allocation, in microseconds.

    ``page_us`` is the fixed work per page (isolate it from the LRU, unmap it
    from every page table, flush the TLB and caches, map the copy); the copy
    itself runs at ``copy_bytes_per_us``; a candidate range refused after
    being scanned costs ``refused_range_us``. The defaults (4 µs, 1000 bytes/µs
    i.e. 1 GB/s, 10 µs) are round figures for a Cortex-A class core, not
    measurements: change them to match a platform.
    """

    page_us: float = 4.0
    copy_bytes_per_us: float = 1000.0
    refused_range_us: float = 10.0

    def __post_init__(self) -> None:
        for name in ("page_us", "refused_range_us"):
            if getattr(self, name) < 0:
                raise InvalidArgument(f"{name} must not be negative, not {getattr(self, name)!r}")
        if self.copy_bytes_per_us <= 0:
            raise InvalidArgument(f"copy_bytes_per_us must be positive, "
                                  f"not {self.copy_bytes_per_us!r}")

    def migration_us(self, pages: int, page_size: int) -> float:
        """The cost of migrating ``pages`` pages of ``page_size`` bytes."""
        return pages * (self.page_us + page_size / self.copy_bytes_per_us)


@dataclass
class MovableStats:
    """Counters of one area (a reusable region, or system memory).

    ``lent_pages`` and ``pinned_pages`` are current values; the rest count
    since the pool was made. They always satisfy ``lent_pages == pages_lent -
    pages_released + pages_migrated_in - pages_migrated_out``.
    ``migration_bytes`` and ``migration_cost_us`` are charged to the area the
    pages left; ``refused_ranges`` and their cost to the area whose allocator
    offered the range.
    """

    lent_pages: int = 0
    pinned_pages: int = 0
    peak_lent_pages: int = 0
    pages_lent: int = 0
    pages_released: int = 0
    pages_migrated_in: int = 0
    pages_migrated_out: int = 0
    migration_bytes: int = 0
    migration_cost_us: float = 0.0
    evacuations: int = 0  #: ranges cleared that held lent pages
    refused_ranges: int = 0  #: candidate ranges refused (pinned pages, nowhere to move)

    def _gain(self, count: int) -> None:
        self.lent_pages += count
        self.peak_lent_pages = max(self.peak_lent_pages, self.lent_pages)

    def add(self, other: MovableStats) -> None:
        """Add ``other``'s counters to these (the peak becomes the sum of peaks)."""
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def as_dict(self, page_size: int) -> dict[str, Any]:
        """JSON-ready, with ``reclaimed_bytes``: memory a dedicated region would leave idle."""
        return {**asdict(self), "reclaimed_bytes": self.lent_pages * page_size}


# --- pages -----------------------------------------------------------------------------------


@dataclass(eq=False)
class MovablePage:
    """One physical page frame lent to ``owner``.

    ``phys`` changes when the page is migrated; ``region`` is the name of the
    region holding it, or None in system memory. Read and write its contents
    with :meth:`read` / :meth:`write` (they follow the page when it moves).
    """

    phys: int
    owner: str
    region: str | None
    pool: MovablePool = field(repr=False)
    pin_count: int = 0
    migrations: int = 0  #: how many times it moved
    live: bool = True  #: False once released

    @property
    def pinned(self) -> bool:
        """A pinned page cannot be migrated (``pin_user_pages``, DMA to the page)."""
        return self.pin_count > 0

    def read(self, offset: int = 0, size: int | None = None) -> bytes:
        """Bytes of the page from ``offset`` (to its end by default)."""
        return self.pool.read_page(self, offset, size)

    def write(self, data: bytes, offset: int = 0) -> None:
        """Store ``data`` in the page at ``offset``."""
        self.pool.write_page(self, data, offset)

    @property
    def contents(self) -> bytes:
        """The whole page."""
        return self.read()

    def __str__(self) -> str:
        where = f"region {self.region!r}" if self.region is not None else "system memory"
        pin = ", pinned" if self.pinned else ""
        return f"movable page {self.phys:#x} of {self.owner!r} in {where}{pin}"


# --- system memory ---------------------------------------------------------------------------


class SystemMemory:
    """Ordinary RAM outside every CMA region, the last resort for migrated pages.

    Only pages migrated out of a region land here (nothing is lent from it
    directly), lowest address first. They never move back: like mainline,
    nothing migrates a page *into* a CMA area once it has left.
    """

    def __init__(self, base: int, size: int, page_size: int) -> None:
        if base < 0 or size <= 0 or base % page_size or size % page_size:
            raise InvalidArgument(f"system memory {base:#x}+{size:#x} must be a positive, "
                                  f"page aligned ({page_size:#x}) range")
        self.base = base
        self.size = size
        self.page_size = page_size
        self._used: list[int] = []

    @property
    def end(self) -> int:
        """One past the last byte."""
        return self.base + self.size

    @property
    def used_pages(self) -> int:
        """Pages holding migrated movable pages."""
        return len(self._used)

    @property
    def free_pages(self) -> int:
        """Pages still available."""
        return self.size // self.page_size - len(self._used)

    def iter_free(self, limit: int) -> Iterator[int]:
        """Up to ``limit`` free page addresses, lowest first."""
        return _gaps([(self.base, self.size)], self._used, self.page_size, top=False,
                     limit=limit)

    def take(self, phys: int) -> None:
        """Mark the page at ``phys`` used."""
        insort(self._used, phys)

    def give(self, phys: int) -> None:
        """Mark the page at ``phys`` free again."""
        del self._used[bisect_left(self._used, phys)]

    def contains(self, phys: int) -> bool:
        return self.base <= phys < self.end

    def __str__(self) -> str:
        return f"system memory at {fmt_range(self.base, self.end)}"


def _gaps(extents: Iterable[tuple[int, int]], taken: Sequence[int], page: int, *, top: bool,
          limit: int) -> Iterator[int]:
    """Page addresses inside ``extents`` and not in ``taken`` (sorted), from one end.

    Extents entirely taken are skipped with two bisections, so the cost grows
    with the number of partly taken extents, not with the pages lent.
    """
    if limit <= 0:
        return
    found = 0
    ordered = list(extents)
    if top:
        ordered.reverse()
    for start, size in ordered:
        end = start + size
        lo, hi = bisect_left(taken, start), bisect_left(taken, end)
        if (hi - lo) * page >= size:
            continue
        if top:
            cursor = end
            for i in range(hi - 1, lo - 2, -1):
                stop = taken[i] if i >= lo else start - page
                for phys in range(cursor - page, stop, -page):
                    yield phys
                    found += 1
                    if found >= limit:
                        return
                cursor = stop
        else:
            cursor = start
            for i in range(lo, hi + 1):
                stop = taken[i] if i < hi else end
                for phys in range(cursor, stop, page):
                    yield phys
                    found += 1
                    if found >= limit:
                        return
                cursor = stop + page


# --- the pool --------------------------------------------------------------------------------


class MovablePool:
    """Lends free pages of reusable regions to movable owners and moves them out of the way.

    Attaches itself to ``cma`` (one pool per allocator); :meth:`close` detaches
    it. ``system`` is ``(base, size)`` of ordinary RAM outside every region
    that migrated pages may go to when no region has room. ``lend_from``
    chooses the end of the free space pages are lent from; ``max_attempts``
    bounds how many candidate ranges one region may offer a request before
    the core moves on to the next region.
    """

    def __init__(
        self,
        cma: ContiguousMemory,
        *,
        store: PageStore | None = None,
        system: tuple[int, int] | None = None,
        on_migrate: MigrateCallback | None = None,
        cost: CostModel | None = None,
        lend_from: LendEnd = "top",
        max_attempts: int = 8,
    ) -> None:
        if lend_from not in ("top", "bottom"):
            raise InvalidArgument(f"lend_from must be 'top' or 'bottom', not {lend_from!r}")
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) \
                or max_attempts < 1:
            raise InvalidArgument(f"max_attempts must be a positive integer, "
                                  f"not {max_attempts!r}")
        self.cma = cma
        self.page_size = cma.page_size
        self.store: PageStore = store if store is not None else HostMemory(cma.page_size)
        self.on_migrate = on_migrate
        self.cost = cost or CostModel()
        self.lend_from: LendEnd = lend_from
        self.max_attempts = max_attempts
        self.lock: threading.RLock = threading.RLock()
        self.system: SystemMemory | None = None
        if system is not None:
            self.system = SystemMemory(system[0], system[1], cma.page_size)
            self._check_system(self.system)
        self._lent: dict[str, list[int]] = {}  # region name -> sorted lent page addresses
        self._stats: dict[str, MovableStats] = {}
        self.system_stats = MovableStats()
        self._page_at: dict[int, MovablePage] = {}
        self._owners: dict[str, dict[int, MovablePage]] = {}  # owner -> id(page) -> page
        cma.attach_movable(self)

    def _check_system(self, system: SystemMemory) -> None:
        for region in self.cma.regions:
            if system.base < region.end and region.base < system.end:
                raise InvalidArgument(f"{system} overlaps {region}")
        if self.cma.ram and not any(s <= system.base and system.end <= s + n
                                    for s, n in self.cma.ram):
            raise InvalidArgument(f"{system} is not inside one RAM bank")

    def close(self) -> None:
        """Detach from the allocator (lent pages stay where they are)."""
        self.cma.detach_movable(self)

    # --- which regions -----------------------------------------------------------------------

    def covers(self, region: Region) -> bool:
        """Reusable, mapped, configured regions lend their pages; others never do."""
        return region.spec.reusable and not region.no_map and not region.private

    def lendable_regions(self) -> tuple[Region, ...]:
        """The covered regions, in the order pages are lent from them.

        With ``lend_from="top"`` the highest region first, else the lowest.
        """
        regions = sorted((r for r in self.cma.regions if self.covers(r)), key=lambda r: r.base)
        if self.lend_from == "top":
            regions.reverse()
        return tuple(regions)

    def _taken(self, region: Region) -> list[int]:
        return self._lent.setdefault(region.name, [])

    def stats(self, region: Region | str) -> MovableStats:
        """The live counters of one region (a copy)."""
        name = region if isinstance(region, str) else region.name
        self.cma.region(name)
        with self.lock:
            return MovableStats(**asdict(self._stats.setdefault(name, MovableStats())))

    def _stats_of(self, region: str | None) -> MovableStats:
        if region is None:
            return self.system_stats
        return self._stats.setdefault(region, MovableStats())

    def totals(self) -> MovableStats:
        """All regions' counters and system memory's added up."""
        with self.lock:
            total = MovableStats()
            for stats in self._stats.values():
                total.add(stats)
            total.add(self.system_stats)
            return total

    def reclaimed(self) -> int:
        """Bytes of reusable regions now serving movable pages (idle in a dedicated region)."""
        with self.lock:
            return sum(len(pages) for pages in self._lent.values()) * self.page_size

    def free_pages(self, region: Region | str) -> int:
        """Pages of ``region`` that are free and not lent (0 for a region not covered)."""
        target = region if isinstance(region, Region) else self.cma.region(region)
        if not self.covers(target):
            return 0
        with self.lock, target.lock:
            free = sum(size for _start, size in target.allocator.iter_free())
            taken = self._taken(target)
            return free // self.page_size - len(taken)

    # --- lending -----------------------------------------------------------------------------

    def _lendable(self, region: Region, limit: int, locked: bool = False) -> list[int]:
        """Up to ``limit`` free, unlent page addresses of ``region`` from the lending end."""
        with contextlib.nullcontext() if locked else region.lock:
            extents = list(region.allocator.iter_free())
        return list(_gaps(extents, self._taken(region), self.page_size,
                          top=self.lend_from == "top", limit=limit))

    def lend(self, owner: str, pages: int, *, pinned: bool = False) -> list[MovablePage]:
        """Lend ``pages`` free pages to ``owner``, all or none.

        Raises :class:`NoMemory` when the reusable regions hold fewer free,
        unlent pages (nothing is lent then).
        """
        _check_owner(owner)
        if isinstance(pages, bool) or not isinstance(pages, int) or pages <= 0:
            raise InvalidArgument(f"pages must be a positive integer, not {pages!r}")
        with self.lock:
            found: list[tuple[Region, int]] = []
            for region in self.lendable_regions():
                found += [(region, p) for p in self._lendable(region, pages - len(found))]
                if len(found) == pages:
                    break
            if len(found) < pages:
                names = ", ".join(repr(r.name) for r in self.lendable_regions()) or "none"
                raise NoMemory(f"cannot lend {pages} page(s) to {owner!r}: only {len(found)} "
                               f"free in reusable region(s) {names}")
            out = []
            for region, phys in found:
                page = MovablePage(phys, owner, region.name, self, 1 if pinned else 0)
                insort(self._taken(region), phys)
                self._page_at[phys] = page
                self._owners.setdefault(owner, {})[id(page)] = page
                stats = self._stats_of(region.name)
                stats.pages_lent += 1
                stats.pinned_pages += page.pinned
                stats._gain(1)
                out.append(page)
            return out

    def _check_live(self, page: MovablePage) -> None:
        if page.pool is not self or not page.live or self._page_at.get(page.phys) is not page:
            raise InvalidArgument(f"{page} is not a live page of this pool")

    def release(self, page: MovablePage) -> None:
        """Give the page back; it must not be pinned. Its contents are discarded."""
        with self.lock:
            self._check_live(page)
            if page.pinned:
                raise InvalidArgument(f"{page} is pinned ({page.pin_count} pin(s)); "
                                      f"unpin it before releasing it")
            self._drop(page)

    def _drop(self, page: MovablePage) -> None:
        if page.region is None:
            assert self.system is not None
            self.system.give(page.phys)
        else:
            taken = self._lent[page.region]
            del taken[bisect_left(taken, page.phys)]
        del self._page_at[page.phys]
        owned = self._owners[page.owner]
        del owned[id(page)]
        if not owned:
            del self._owners[page.owner]
        stats = self._stats_of(page.region)
        stats.pages_released += 1
        stats.lent_pages -= 1
        stats.pinned_pages -= page.pinned
        self.store.discard(page.phys, self.page_size)
        page.live = False
        page.pin_count = 0

    def release_owner(self, owner: str) -> int:
        """Release every page of ``owner``, pinned or not (the owner went away); how many."""
        with self.lock:
            pages = list(self._owners.get(owner, {}).values())
            for page in pages:
                self._drop(page)
            return len(pages)

    def pin(self, page: MovablePage) -> None:
        """Pin the page: it cannot be migrated until every pin is dropped."""
        with self.lock:
            self._check_live(page)
            if page.pin_count == 0:
                self._stats_of(page.region).pinned_pages += 1
            page.pin_count += 1

    def unpin(self, page: MovablePage) -> None:
        """Drop one pin."""
        with self.lock:
            self._check_live(page)
            if page.pin_count == 0:
                raise InvalidArgument(f"{page} is not pinned")
            page.pin_count -= 1
            if page.pin_count == 0:
                self._stats_of(page.region).pinned_pages -= 1

    def pages_of(self, owner: str) -> list[MovablePage]:
        """The live pages of ``owner``, in address order."""
        with self.lock:
            return sorted(self._owners.get(owner, {}).values(), key=lambda p: p.phys)

    def pages(self) -> list[MovablePage]:
        """Every live page, in address order."""
        with self.lock:
            return [self._page_at[p] for p in sorted(self._page_at)]

    def page_at(self, phys: int) -> MovablePage | None:
        """The live page containing physical address ``phys``, if any."""
        with self.lock:
            return self._page_at.get(phys - phys % self.page_size)

    def owners(self) -> list[str]:
        """Owners holding at least one page, sorted."""
        with self.lock:
            return sorted(self._owners)

    # --- contents ----------------------------------------------------------------------------

    def _span(self, offset: int, size: int) -> None:
        if offset < 0 or size < 0 or offset + size > self.page_size:
            raise InvalidArgument(f"access at offset {offset:#x} of {size:#x} bytes does not "
                                  f"fit a page of {self.page_size:#x} bytes")

    def read_page(self, page: MovablePage, offset: int = 0, size: int | None = None) -> bytes:
        """Bytes of ``page`` (under the pool's lock, so a migration cannot interleave)."""
        with self.lock:
            self._check_live(page)
            length = self.page_size - offset if size is None else size
            self._span(offset, length)
            return self.store.read(page.phys + offset, length)

    def write_page(self, page: MovablePage, data: bytes, offset: int = 0) -> None:
        """Store ``data`` in ``page`` at ``offset``."""
        with self.lock:
            self._check_live(page)
            self._span(offset, len(data))
            self.store.write(page.phys + offset, bytes(data))

    # --- migration (called by the core) ------------------------------------------------------

    def evacuate(self, region: Region, addr: int, size: int) -> str | None:
        """Clear ``[addr, addr + size)`` of lent pages, just allocated in ``region``.

        The range is widened to the allocator's block when it rounds requests
        up (``bitmap`` with ``order_per_bit``). Pinned pages refuse the range
        and nothing moves; so does a lack of free pages to move to.
        """
        with self.lock:
            end = min(region.end, addr + _round_up(size, _granule(region)))
            taken = self._taken(region)
            lo, hi = bisect_left(taken, addr), bisect_left(taken, end)
            if lo == hi:
                return None
            victims = [self._page_at[p] for p in taken[lo:hi]]
            stats = self._stats_of(region.name)
            pinned = [p for p in victims if p.pinned]
            if pinned:
                stats.refused_ranges += 1
                stats.migration_cost_us += self.cost.refused_range_us
                named = ", ".join(f"{p.phys:#x} ({p.owner!r})" for p in pinned[:_NAMED_PINS])
                more = len(pinned) - _NAMED_PINS
                return (f"pinned movable page(s) {named}" + (f" and {more} more" if more > 0
                                                              else ""))
            targets = self._targets(region, len(victims))
            if len(targets) < len(victims):
                stats.refused_ranges += 1
                stats.migration_cost_us += self.cost.refused_range_us
                return (f"{len(victims)} lent page(s) to migrate but only {len(targets)} free "
                        f"page(s) to move them to")
            for page, (dest, new) in zip(victims, targets, strict=True):
                self._migrate(page, dest, new)
            stats.evacuations += 1
            return None

    def _targets(self, source: Region, count: int) -> list[tuple[Region | None, int]]:
        """Up to ``count`` free pages: ``source`` first, other regions, then system memory."""
        out: list[tuple[Region | None, int]] = [
            (source, p) for p in self._lendable(source, count, locked=True)
        ]
        for region in self.lendable_regions():
            if len(out) >= count:
                return out
            if region is not source:
                out += [(region, p) for p in self._lendable(region, count - len(out))]
        if self.system is not None and len(out) < count:
            out += [(None, p) for p in self.system.iter_free(count - len(out))]
        return out

    def _migrate(self, page: MovablePage, dest: Region | None, new: int) -> None:
        old = page.phys
        data = self.store.read(old, self.page_size)
        self.store.write(new, data)
        self.store.discard(old, self.page_size)
        taken = self._lent[page.region] if page.region is not None else None
        if taken is not None:
            del taken[bisect_left(taken, old)]
        if dest is None:
            assert self.system is not None
            self.system.take(new)
        else:
            insort(self._taken(dest), new)
        del self._page_at[old]
        self._page_at[new] = page
        source_stats = self._stats_of(page.region)
        source_stats.pages_migrated_out += 1
        source_stats.lent_pages -= 1
        source_stats.migration_bytes += self.page_size
        source_stats.migration_cost_us += self.cost.migration_us(1, self.page_size)
        page.phys = new
        page.region = dest.name if dest is not None else None
        page.migrations += 1
        dest_stats = self._stats_of(page.region)
        dest_stats.pages_migrated_in += 1
        dest_stats._gain(1)
        if self.on_migrate is not None:
            self.on_migrate(page, old, new)

    # --- reports -----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Policy, cost model and per-area counters, JSON-ready and sorted."""
        with self.lock:
            regions = {name: stats.as_dict(self.page_size)
                       for name, stats in sorted(self._stats.items())}
            system: dict[str, Any] | None = None
            if self.system is not None:
                system = {"base": self.system.base, "size": self.system.size,
                          **self.system_stats.as_dict(self.page_size)}
            return {
                "page_size": self.page_size,
                "lend_from": self.lend_from,
                "max_attempts": self.max_attempts,
                "cost": asdict(self.cost),
                "pages": len(self._page_at),
                "owners": len(self._owners),
                "reclaimed_bytes": sum(len(p) for p in self._lent.values()) * self.page_size,
                "regions": regions,
                "system": system,
            }

    def __repr__(self) -> str:
        return f"<MovablePool pages={len(self._page_at)} lend_from={self.lend_from!r}>"


def _check_owner(owner: str) -> None:
    if not isinstance(owner, str) or not owner:
        raise InvalidArgument(f"owner must be a non-empty string, not {owner!r}")


def _round_up(value: int, step: int) -> int:
    return -(-value // step) * step


def _granule(region: Region) -> int:
    """The block the region's allocator hands out: a page, or ``2**order_per_bit`` pages."""
    order = getattr(region.allocator, "order_per_bit", 0)
    return region.page_size << (order if isinstance(order, int) else 0)

