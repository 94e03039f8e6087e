"""The contiguous memory allocator: regions reserved at boot, chunks handed to devices.

:class:`ContiguousMemory` (also exported as ``Cma``) is built from a
:class:`~cma.config.CmaConfig` (or a command line, or a device tree), places
the regions in RAM with :func:`cma.placement.reserve`, gives each its
allocator, and serves requests:

* :meth:`~ContiguousMemory.alloc` for any device and kind, the map rules
  choosing the regions (tried in order);
* :meth:`~ContiguousMemory.alloc_from` / :meth:`~ContiguousMemory.alloc_from_region`
  by region name, which also reaches private regions;
* :meth:`~ContiguousMemory.get` / :meth:`~ContiguousMemory.put`: reference counts,
  the chunk freed when the count reaches zero (there is no ``free``);
* :meth:`~ContiguousMemory.info` / :meth:`~ContiguousMemory.info_about`.

Reusable regions: a :class:`MovableHook` attached with :meth:`~ContiguousMemory.attach_movable`
(:class:`cma.movable.MovablePool`) lends the free pages of reusable regions to
movable owners; when an allocation lands on lent pages the core asks the hook
to migrate them away, and tries another range when pinned pages block it.

Locking: ``_lock`` guards the chunk table and the map; each region's ``lock``
serialises its allocator. When both are held the region lock is taken first.
An attached hook's ``lock`` comes before any region lock; only a thread holding
it may hold two region locks at once.
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from cma.allocators import get_allocator
from cma.allocators.base import Allocator
from cma.config import CmaConfig, MapRule, RegionSpec, Source
from cma.errors import (
    ConfigError,
    InvalidArgument,
    NoMemory,
    NoRegion,
    NotReachable,
    PlacementError,
    UnknownChunk,
)
from cma.patterns import match_pattern, select_regions
from cma.placement import (
    ADDRESS_LIMIT,
    PlacedRegion,
    check_page_size,
    check_ram,
    fmt_range,
    is_power_of_two,
    normalise_alignment,
    reserve,
    round_up,
)
from cma.region import Chunk, Region
from cma.stats import RegionView
from cma.stats import debug_view as _debug_view
from cma.stats import snapshot as _snapshot
from cma.translate import IdentityTranslator, Translator, phys_to_dma, reachable_phys

__all__ = ["AllocatorLookup", "Cma", "CmaInfo", "ContiguousMemory", "MovableHook"]

#: resolves an allocator name (None: the default) to its class
AllocatorLookup = Callable[[str | None], type[Allocator]]


@dataclasses.dataclass(frozen=True)
class CmaInfo:
    """What ``cma_info()`` reports about a set of regions."""

    lower: int  #: lowest address of any of them
    upper: int  #: one past the highest
    total_size: int
    count: int  #: number of regions


class MovableHook(Protocol):
    """What the core asks of the keeper of movable pages (see :mod:`cma.movable`).

    For a region the hook ``covers``, :meth:`ContiguousMemory.alloc` and
    friends take ``lock`` before the region's lock, ask the allocator for a
    range and call ``evacuate``; a range it refuses stays held (so the
    allocator offers another) for at most ``max_attempts`` tries, then every
    held range is given back.
    """

    @property
    def lock(self) -> contextlib.AbstractContextManager[Any]:
        """Taken before the region lock of a covered region."""
        ...

    @property
    def max_attempts(self) -> int:
        """How many candidate ranges one region may offer per request."""
        ...

    def covers(self, region: Region) -> bool:
        """True when pages of ``region`` may be lent (allocations there need ``evacuate``)."""
        ...

    def evacuate(self, region: Region, addr: int, size: int) -> str | None:
        """Move every lent page out of ``[addr, addr + size)``, just allocated in ``region``.

        Called with the hook's and the region's locks held. None when the range
        is clear; otherwise nothing was moved and the text says why (pinned
        pages, nowhere to move them).
        """
        ...

    def snapshot(self) -> dict[str, Any]:
        """The hook's accounting, JSON-ready (added to :meth:`ContiguousMemory.snapshot`)."""
        ...


class ContiguousMemory:
    """Regions, their allocators, the device map and the table of live chunks."""

    def __init__(
        self,
        regions: Sequence[PlacedRegion],
        rules: Sequence[MapRule] = (),
        *,
        page_size: int = 4096,
        translator: Translator | None = None,
        links: Mapping[str, Sequence[str]] | None = None,
        ram: Sequence[tuple[int, int]] = (),
        allocator_lookup: AllocatorLookup | None = None,
    ) -> None:
        """Take already placed regions (see :meth:`from_config` for the usual way in).

        ``links`` are device-tree ``memory-region`` links: an exact device
        name → region names; they win over the map rules for that device.
        """
        check_page_size(page_size)
        self.page_size = page_size
        self.translator: Translator = translator or IdentityTranslator()
        if ram:
            check_ram(ram)
        self.ram: tuple[tuple[int, int], ...] = tuple(ram)
        self._lookup: AllocatorLookup = allocator_lookup or get_allocator
        self._lock = threading.Lock()
        self._regions: dict[str, Region] = {}
        self._chunks: dict[int, Chunk] = {}
        #: the live chunks' starts in order, rebuilt on demand (None: stale since the last
        #: alloc or free; keeping it sorted on every call cost more than the allocator)
        self._starts: list[int] | None = []
        for placed in regions:
            self._add_region(placed.spec, placed.base, placed.size, placed.alignment, False)
        self._links: dict[str, tuple[str, ...]] = {}
        for device, names in (links or {}).items():
            self._check_names(names, f"memory-region link of {device!r}")
            self._links[device] = tuple(names)
        self._rules: tuple[MapRule, ...] = self._checked_rules(rules)
        self._movable: MovableHook | None = None
        #: (device, kind) -> the regions alloc() tries; cleared whenever the map changes
        self._routes: dict[tuple[str | None, str | None], tuple[Region, ...]] = {}

    # --- construction -------------------------------------------------------------------

    @classmethod
    def from_config(
        cls,
        config: CmaConfig,
        ram: Sequence[tuple[int, int]],
        page_size: int = 4096,
        translator: Translator | None = None,
        defaults: CmaConfig | None = None,
        reserved: Sequence[tuple[str, int, int]] = (),
        devices: Sequence[str] = (),
        *,
        allocator_lookup: AllocatorLookup | None = None,
        address_limit: int = ADDRESS_LIMIT,
    ) -> ContiguousMemory:
        """Place ``config``'s regions in ``ram`` and build the allocator.

        ``defaults`` (the platform's ``cma_set_defaults``) replace ``config``
        when it has neither regions nor rules. ``devices`` are the device names
        the machine knows: each region is kept within the physical memory that
        every known device mapped to it can reach through its DMA view.
        """
        if defaults is not None and not config.regions and not config.rules:
            config = dataclasses.replace(defaults, links=config.links + defaults.links)
        translator = translator or IdentityTranslator()
        links = {device: tuple(names) for device, names in config.links}
        known = {spec.name for spec in config.regions}
        for rule in config.rules:
            _check_rule_names(rule, known)
        for device, names in links.items():
            for name in names:
                if name not in known:
                    raise ConfigError(f"device {device!r} links to unknown region {name!r}")
        reach = _reach(config, links, translator, devices)
        placed = reserve(config.regions, ram, page_size, reserved, reach,
                         address_limit=address_limit)
        return cls(placed, config.rules, page_size=page_size, translator=translator,
                   links=links, ram=ram, allocator_lookup=allocator_lookup)

    @classmethod
    def from_cmdline(
        cls,
        cmdline: str,
        ram: Sequence[tuple[int, int]],
        page_size: int = 4096,
        translator: Translator | None = None,
        defaults: CmaConfig | str | None = None,
        reserved: Sequence[tuple[str, int, int]] = (),
        devices: Sequence[str] = (),
        **kwargs: Any,
    ) -> ContiguousMemory:
        """Parse a whole kernel command line (2010 or modern ``cma=``) and build."""
        from cma.cmdline import parse_cmdline

        if isinstance(defaults, str):
            defaults = parse_cmdline(defaults)
        return cls.from_config(parse_cmdline(cmdline), ram, page_size, translator, defaults,
                               reserved, devices, **kwargs)

    @classmethod
    def from_dtb(
        cls,
        dtb: bytes,
        cmdline: str = "",
        ram: Sequence[tuple[int, int]] | None = None,
        page_size: int = 4096,
        translator: Translator | None = None,
        defaults: CmaConfig | str | None = None,
        reserved: Sequence[tuple[str, int, int]] = (),
        devices: Sequence[str] = (),
        **kwargs: Any,
    ) -> ContiguousMemory:
        """Combine a device tree's ``/reserved-memory`` pools with a command line.

        RAM defaults to the tree's ``/memory`` nodes; the tree's other
        reservations become carve-outs. As in Linux, a size given on the
        command line (modern ``cma=``) replaces the tree's ``linux,cma-default``
        pool, and links to that pool follow it to the command-line area.
        """
        from cma.cmdline import parse_cmdline
        from cma.devicetree import parse_carveouts, parse_memory, parse_reserved_memory

        tree = parse_reserved_memory(dtb)
        command = parse_cmdline(cmdline) if cmdline.strip() else CmaConfig()
        if isinstance(defaults, str):
            defaults = parse_cmdline(defaults)
        if ram is None:
            ram = tuple(parse_memory(dtb))
            if not ram:
                raise InvalidArgument("the device tree has no /memory node with a reg")
        pools = list(tree.regions)
        links = list(tree.links)
        cmd_default = next((spec for spec in command.regions if spec.default), None)
        if cmd_default is not None:
            dropped = {spec.name for spec in pools if spec.default}
            pools = [spec for spec in pools if not spec.default]
            links = [(dev, tuple(cmd_default.name if n in dropped else n for n in names))
                     for dev, names in links]
        by_name = {spec.name: spec for spec in pools}
        for spec in command.regions:
            if spec.name in by_name:
                raise ConfigError(f"region {spec.name!r} is defined both by device-tree node "
                                  f"{by_name[spec.name].node!r} and on the command line")
        carveouts = parse_carveouts(dtb)
        config = CmaConfig(tuple(pools) + command.regions, command.rules, tuple(links))
        return cls.from_config(config, ram, page_size, translator, defaults,
                               tuple(reserved) + tuple(carveouts), devices, **kwargs)

    def _add_region(self, spec: RegionSpec, base: int, size: int, alignment: int,
                    private: bool) -> Region:
        page = self.page_size
        where = f"region {spec.name!r} at {fmt_range(base, base + size)}"
        if spec.name in self._regions:
            raise InvalidArgument(f"region {spec.name!r} is defined twice")
        if base < 0 or size <= 0 or base % page or size % page:
            raise InvalidArgument(f"{where} must start and end on a page ({page:#x}) boundary")
        if not is_power_of_two(alignment) or base % alignment:
            raise InvalidArgument(f"{where} is not aligned to {alignment:#x}")
        for other in self._regions.values():
            if base < other.end and other.base < base + size:
                raise PlacementError(f"{where} overlaps {other}")
        try:
            allocator = self._lookup(spec.allocator)(base, size, page, spec.params)
        except InvalidArgument as exc:
            raise InvalidArgument(f"region {spec.name!r}: {exc}") from exc
        region = Region(spec.name, base, size, allocator, spec, alignment, page, private)
        self._regions[spec.name] = region
        self._routes = {}
        return region

    # --- the map --------------------------------------------------------------------------

    def _check_names(self, names: Sequence[str], what: str) -> None:
        if not names:
            raise ConfigError(f"{what} names no region")
        for name in names:
            region = self._regions.get(name)
            if region is None:
                known = ", ".join(self._regions) or "none"
                raise ConfigError(f"{what} names unknown region {name!r} (known: {known})")
            if region.private:
                raise ConfigError(f"{what} names private region {name!r}; private regions "
                                  f"are only served by name")

    def _checked_rules(self, rules: Sequence[MapRule]) -> tuple[MapRule, ...]:
        for rule in rules:
            self._check_names(rule.regions, f"map rule {_rule_text(rule)!r}")
        return tuple(rules)

    def set_map(self, rules: Sequence[MapRule]) -> None:
        """Replace the map rules at run time (the later patch's sysfs file).

        Every rule must name known, non-private regions; on error the old map stays.
        """
        checked = self._checked_rules(rules)
        with self._lock:
            self._rules = checked
            self._routes = {}

    def set_map_text(self, text: str) -> None:
        """:meth:`set_map` from ``cma_map=`` syntax (without the ``cma_map=``)."""
        from cma.cmdline import parse_map

        self.set_map(parse_map(text))

    @property
    def rules(self) -> tuple[MapRule, ...]:
        with self._lock:
            return self._rules

    @property
    def links(self) -> dict[str, tuple[str, ...]]:
        return dict(self._links)

    def region_names_for(self, device: str | None, kind: str | None = None) -> tuple[str, ...]:
        """The regions ``alloc(device, kind, ...)`` would try, in order.

        A device-tree link for the device wins; then the first matching map
        rule; then the default region (modern ``cma=``, ``linux,cma-default``)
        if there is one. Raises :class:`NoRegion` otherwise.
        """
        with self._lock:
            rules = self._rules
        if device is not None and device in self._links:
            return self._links[device]
        names = select_regions(rules, device, kind)
        if names is not None:
            return names
        default = next((r for r in self._regions.values() if r.spec.default and not r.private),
                       None)
        if default is not None:
            return (default.name,)
        raise NoRegion(f"no map rule or default region serves device {device!r} kind {kind!r}")

    # --- regions --------------------------------------------------------------------------

    @property
    def regions(self) -> tuple[Region, ...]:
        """Every region, configured ones first (in configuration order), then private ones."""
        with self._lock:
            return tuple(self._regions.values())

    def region(self, name: str) -> Region:
        """The region called ``name``; :class:`NoRegion` if there is none."""
        with self._lock:
            region = self._regions.get(name)
        if region is None:
            known = ", ".join(self._regions) or "none"
            raise NoRegion(f"unknown region {name!r} (known: {known})")
        return region

    def register_private(
        self,
        spec_or_name: RegionSpec | str,
        base: int,
        size: int,
        allocator: str | None = None,
    ) -> Region:
        """Add a driver's private region ``[base, base + size)``.

        It is served only when asked for by name (:meth:`alloc_from`,
        :meth:`alloc_from_region`), never by the map. The size is rounded up to
        a page; the range must be page aligned, inside one RAM bank when the
        core knows the RAM, and clear of every other region.
        """
        if isinstance(spec_or_name, RegionSpec):
            spec = dataclasses.replace(spec_or_name, start=base, size=size, fixed=True,
                                       source=Source.PRIVATE,
                                       allocator=allocator or spec_or_name.allocator)
        else:
            spec = RegionSpec(spec_or_name, size, start=base, fixed=True, allocator=allocator,
                              source=Source.PRIVATE)
        if size <= 0:
            raise InvalidArgument(f"size of private region {spec.name!r} must be positive, "
                                  f"not {size:#x}")
        size = round_up(size, self.page_size)
        alignment = normalise_alignment(spec.alignment, self.page_size,
                                        f"alignment of region {spec.name!r}")
        if self.ram and not any(s <= base and base + size <= s + n for s, n in self.ram):
            banks = ", ".join(fmt_range(s, s + n) for s, n in self.ram)
            raise PlacementError(f"private region {spec.name!r} at "
                                 f"{fmt_range(base, base + size)} is not inside one RAM bank "
                                 f"({banks})")
        with self._lock:
            return self._add_region(spec, base, size, alignment, True)

    # --- movable pages ----------------------------------------------------------------------

    def attach_movable(self, hook: MovableHook) -> None:
        """Let ``hook`` lend the free pages of reusable regions (one hook at a time)."""
        with self._lock:
            if self._movable is not None and self._movable is not hook:
                raise InvalidArgument(f"a movable page pool is already attached: "
                                      f"{self._movable!r}")
            self._movable = hook

    def detach_movable(self, hook: MovableHook) -> None:
        """Undo :meth:`attach_movable` (the pages it lent are its own business)."""
        with self._lock:
            if self._movable is not hook:
                raise InvalidArgument(f"{hook!r} is not the attached movable page pool")
            self._movable = None

    @property
    def movable(self) -> MovableHook | None:
        """The attached movable page pool, if any."""
        with self._lock:
            return self._movable

    # --- allocation -----------------------------------------------------------------------

    def _request(self, size: int, alignment: int) -> tuple[int, int]:
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise InvalidArgument(f"size must be a positive number of bytes, not {size!r}")
        if isinstance(alignment, bool) or not isinstance(alignment, int):
            raise InvalidArgument(f"alignment must be an integer, not {alignment!r}")
        return round_up(size, self.page_size), normalise_alignment(alignment, self.page_size)

    def alloc(self, device: str | None, kind: str | None, size: int, alignment: int = 0) -> Chunk:
        """A chunk of ``size`` bytes for ``device`` (any device) and ``kind``.

        The size is rounded up to whole pages; ``alignment`` is 0 (a page) or a
        power of two. Raises :class:`InvalidArgument`, :class:`NoRegion` (no
        rule or region), :class:`NoMemory` (no room), or :class:`NotReachable`
        (room only where the device cannot reach).
        """
        page = self.page_size
        if (type(size) is int and size > 0 and type(alignment) is int and alignment >= 0
                and not alignment & (alignment - 1)):
            size = (size + page - 1) & -page  # a well-formed request, as _request makes it
            alignment = max(alignment, page)
        else:
            size, alignment = self._request(size, alignment)
        regions = self._routes.get((device, kind))
        if regions is None:
            regions = self._route(device, kind)
        return self._alloc_in(regions, size, alignment, device, kind)

    def _route(self, device: str | None, kind: str | None) -> tuple[Region, ...]:
        """The regions for (device, kind), resolved once per map (rule matching is slow)."""
        with self._lock:
            routes = self._routes
        regions = tuple(self.region(n) for n in self.region_names_for(device, kind))
        with self._lock:
            if self._routes is routes:  # the map did not change meanwhile
                routes[(device, kind)] = regions
        return regions

    def alloc_from(
        self,
        region_names: Sequence[str] | str,
        size: int,
        alignment: int = 0,
        device: str | None = None,
        kind: str | None = None,
    ) -> Chunk:
        """A chunk from the first of ``region_names`` with room (private regions too)."""
        size, alignment = self._request(size, alignment)
        names = [region_names] if isinstance(region_names, str) else list(region_names)
        if not names:
            raise NoRegion("no region names given")
        return self._alloc_in([self.region(n) for n in names], size, alignment, device, kind)

    def alloc_from_region(
        self,
        region: Region | str,
        size: int,
        alignment: int = 0,
        device: str | None = None,
        kind: str | None = None,
    ) -> Chunk:
        """A chunk from exactly this region."""
        if isinstance(region, Region):
            if self._regions.get(region.name) is not region:
                raise NoRegion(f"{region} does not belong to this allocator")
            name = region.name
        else:
            name = region
        return self.alloc_from([name], size, alignment, device, kind)

    def _alloc_in(self, regions: Sequence[Region], size: int, alignment: int,
                  device: str | None, kind: str | None) -> Chunk:
        windows = self.translator.dma_windows(device) if device is not None else None
        unreachable: list[str] = []
        blocked: list[str] = []
        movable = self._movable  # one reference read: atomic, no lock needed
        for region in regions:
            if movable is None:  # the plain path: no pages lent, one candidate per region
                with region.lock:
                    addr = region.allocator.alloc(size, alignment)
                    if addr is not None:
                        if not region.base <= addr <= region.end - size or addr % alignment:
                            region.allocator.free(addr, size)
                            raise _bad_block(region, addr, size, alignment)
                        if windows is None or phys_to_dma(windows, addr, size) is not None:
                            return self._register(region, addr, size, device, kind)
                        region.allocator.free(addr, size)
                        unreachable.append(region.name)
                    region.alloc_fail += 1
                continue
            hook = movable if movable.covers(region) else None
            hook_lock = hook.lock if hook is not None else contextlib.nullcontext()
            attempts = max(1, hook.max_attempts) if hook is not None else 1
            with hook_lock, region.lock:
                held: list[int] = []
                try:
                    for _attempt in range(attempts):
                        addr = region.allocator.alloc(size, alignment)
                        if addr is None:
                            break
                        if not region.contains(addr, size) or addr % alignment:
                            region.allocator.free(addr, size)
                            raise _bad_block(region, addr, size, alignment)
                        if device is not None and phys_to_dma(windows, addr, size) is None:
                            region.allocator.free(addr, size)
                            unreachable.append(region.name)
                            break
                        if hook is not None:
                            try:
                                reason = hook.evacuate(region, addr, size)
                            except BaseException:
                                region.allocator.free(addr, size)
                                raise
                            if reason is not None:
                                held.append(addr)  # keep it so the allocator offers another
                                blocked.append(f"{fmt_range(addr, addr + size)} of "
                                               f"{region.name!r}: {reason}")
                                continue
                        return self._register(region, addr, size, device, kind)
                    region.alloc_fail += 1
                finally:
                    for addr in held:
                        region.allocator.free(addr, size)
        names = ", ".join(repr(r.name) for r in regions)
        who = f"device {device!r} kind {kind!r}" if device is not None else f"kind {kind!r}"
        if unreachable and len(unreachable) == len(regions):
            raise NotReachable(
                f"no room for {size:#x} bytes (alignment {alignment:#x}) that {who} can reach "
                f"through its DMA view in region(s) {names}"
            )
        message = (f"no room for {size:#x} bytes (alignment {alignment:#x}) for {who} in "
                   f"region(s) {names}")
        if blocked:
            message += "; ranges refused: " + "; ".join(blocked)
        raise NoMemory(message)

    def _register(self, region: Region, addr: int, size: int, device: str | None,
                  kind: str | None) -> Chunk:
        """Enter a block just allocated in ``region`` (its lock held) as a live chunk."""
        region.alloc_success += 1
        chunk = Chunk(addr, size, region, device, kind, self.translator)
        with self._lock:
            self._chunks[addr] = chunk
            self._starts = None
            region.chunks[addr] = chunk
        return chunk

    # --- reference counts -----------------------------------------------------------------

    def get(self, addr: int) -> Chunk:
        """Take one more reference on the chunk starting at ``addr``."""
        with self._lock:
            chunk = self._chunks.get(addr)
            if chunk is None:
                raise UnknownChunk(f"no chunk starts at {addr:#x}")
            chunk.refcount += 1
            return chunk

    def put(self, addr: int) -> bool:
        """Drop one reference; True when that freed the chunk (``cma_put`` returning 1)."""
        chunk = self._chunks.get(addr)  # a single dict read is atomic; checked again below
        if chunk is None:
            raise UnknownChunk(f"no chunk starts at {addr:#x}")
        region = chunk.region
        with region.lock:
            with self._lock:
                chunk = self._chunks.get(addr)
                if chunk is None:  # freed by another thread in between
                    raise UnknownChunk(f"no chunk starts at {addr:#x}")
                chunk.refcount -= 1
                if chunk.refcount > 0:
                    return False
                del self._chunks[addr]
                self._starts = None
                del region.chunks[addr]
            region.allocator.free(addr, chunk.size)
        return True

    def chunk_at(self, addr: int) -> Chunk | None:
        """The live chunk containing physical address ``addr``, if any."""
        with self._lock:
            starts = self._sorted_starts()
            index = bisect.bisect_right(starts, addr) - 1
            if index < 0:
                return None
            chunk = self._chunks[starts[index]]
            return chunk if addr < chunk.end else None

    def _sorted_starts(self) -> list[int]:
        """The live chunks' starts in address order (call with ``_lock`` held)."""
        starts = self._starts
        if starts is None:
            starts = self._starts = sorted(self._chunks)
        return starts

    def iter_chunks(self) -> Iterator[Chunk]:
        """The live chunks in address order (a copy: safe while others allocate)."""
        with self._lock:
            chunks = [self._chunks[a] for a in self._sorted_starts()]
        return iter(chunks)

    # --- information ----------------------------------------------------------------------

    def info(self, device: str | None, kind: str | None = None) -> CmaInfo:
        """``cma_info()``: the extent of the regions ``device`` and ``kind`` may use."""
        return _info([self.region(n) for n in self.region_names_for(device, kind)])

    def info_about(self, region_names: Sequence[str] | str) -> CmaInfo:
        """``cma_info_about()``: the extent of the named regions."""
        names = [region_names] if isinstance(region_names, str) else list(region_names)
        if not names:
            raise NoRegion("no region names given")
        return _info([self.region(n) for n in names])

    def view(self, region: Region | str) -> RegionView:
        """A consistent copy of one region's accounting."""
        target = region if isinstance(region, Region) else self.region(region)
        return RegionView.capture(target, self._lock)

    def debug_view(self, region: Region | str) -> dict[str, Any]:
        """The kernel's debugfs view of one region (pages, bitmap, chunks)."""
        return _debug_view(self.view(region))

    def snapshot(self) -> dict[str, Any]:
        """Every region and chunk, sorted, JSON-ready (plus ``movable`` with a pool attached)."""
        out = _snapshot([self.view(r) for r in self.regions], self.page_size)
        movable = self.movable
        if movable is not None:
            out["movable"] = movable.snapshot()
        return out

    def __repr__(self) -> str:
        names = ", ".join(self._regions)
        return f"<ContiguousMemory regions=[{names}] chunks={len(self._chunks)}>"


#: the short name
Cma = ContiguousMemory


def _info(regions: list[Region]) -> CmaInfo:
    return CmaInfo(
        lower=min(r.base for r in regions),
        upper=max(r.end for r in regions),
        total_size=sum(r.size for r in regions),
        count=len(regions),
    )


def _rule_text(rule: MapRule) -> str:
    def one(p: Any) -> str:
        dev = "*" if p.device is None else p.device
        return dev if p.kind is None else f"{dev}/{p.kind}"

    return ",".join(one(p) for p in rule.patterns) + "=" + ",".join(rule.regions)


def _check_rule_names(rule: MapRule, known: set[str]) -> None:
    if not rule.regions:
        raise ConfigError(f"map rule {_rule_text(rule)!r} names no region")
    for name in rule.regions:
        if name not in known:
            listed = ", ".join(sorted(known)) or "none"
            raise ConfigError(f"map rule {_rule_text(rule)!r} names unknown region {name!r} "
                              f"(known: {listed})")


def _device_regions(config: CmaConfig, links: Mapping[str, tuple[str, ...]],
                    default: str | None, device: str) -> set[str]:
    """Every region ``device`` may be served from, whatever the kind."""
    if device in links:
        return set(links[device])
    names: set[str] = set()
    for rule in config.rules:
        matching = [p for p in rule.patterns
                    if p.device is None or match_pattern(p.device, device)]
        if not matching:
            continue
        names.update(rule.regions)
        if any(p.kind is None for p in matching):
            return names  # this rule catches every kind: later rules never apply
    if default is not None:
        names.add(default)
    return names


def _reach(config: CmaConfig, links: Mapping[str, tuple[str, ...]], translator: Translator,
           devices: Sequence[str]) -> dict[str, list[tuple[int, int]]]:
    """Physical windows each region must lie in so that all its known devices reach it."""
    default = next((spec.name for spec in config.regions if spec.default), None)
    users: dict[str, list[str]] = {}
    for device in devices:
        for name in sorted(_device_regions(config, links, default, device)):
            users.setdefault(name, []).append(device)
    reach: dict[str, list[tuple[int, int]]] = {}
    for name, devs in users.items():
        windows: list[tuple[int, int]] | None = None
        blind: list[str] = []
        for device in devs:
            view = reachable_phys(translator.dma_windows(device))
            if view is None:
                continue
            if not view:
                blind.append(device)
                continue
            windows = view if windows is None else _intersect(windows, view)
            if not windows:
                raise PlacementError(
                    f"region {name!r} cannot be reached by all of its devices "
                    f"({', '.join(devs)}): their DMA views share no memory"
                )
        if windows is None and blind and len(blind) == len(devs):
            raise PlacementError(f"region {name!r} is mapped only to devices that can do no "
                                 f"DMA: {', '.join(blind)}")
        if windows is not None:
            reach[name] = windows
    return reach


def _intersect(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out = set()
    for a0, an in a:
        for b0, bn in b:
            lo, hi = max(a0, b0), min(a0 + an, b0 + bn)
            if lo < hi:
                out.add((lo, hi - lo))
    return sorted(out)


def _bad_block(region: Region, addr: int, size: int, alignment: int) -> InvalidArgument:
    return InvalidArgument(
        f"allocator {region.allocator.name!r} of {region} returned "
        f"{fmt_range(addr, addr + size)}, outside the region or not aligned to {alignment:#x}"
    )
