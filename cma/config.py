"""Configuration of the contiguous memory allocator, as plain data.

The parsers (:mod:`cma.cmdline`, :mod:`cma.devicetree`) turn text into these
records; :mod:`cma.core` places and serves them. Nothing here knows about text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Source(StrEnum):
    """Where a region's description came from."""

    CMDLINE = "cmdline"  # the 2010 ``cma=`` list
    MODERN = "modern"  # the mainline ``cma=nn[MG][@start[-end]]`` default area
    DEVICETREE = "devicetree"  # a ``/reserved-memory`` child
    DEFAULTS = "defaults"  # platform defaults (``cma_set_defaults``)
    PRIVATE = "private"  # registered by a driver at run time


@dataclass(frozen=True)
class RegionSpec:
    """One region to reserve at boot.

    ``start`` is the desired physical start: with ``fixed`` the region must be
    exactly there, otherwise it is placed as near as possible (2010 semantics).
    ``alloc_ranges`` are ``(start, size)`` windows the region must lie in
    (device tree ``alloc-ranges``; the modern ``cma=size@lo-hi`` window).
    ``limit`` is one past the highest address the region may use, e.g. the top
    of what the device meant to use it can reach through its DMA view.
    ``alignment`` 0 means one page. ``allocator`` None means the default one;
    ``params`` is the text between the parentheses, verbatim.
    """

    name: str
    size: int
    start: int | None = None
    alignment: int = 0
    allocator: str | None = None
    params: str = ""
    fixed: bool = False
    alloc_ranges: tuple[tuple[int, int], ...] = ()
    limit: int | None = None
    reusable: bool = True
    no_map: bool = False
    default: bool = False
    source: Source = Source.CMDLINE
    node: str | None = None  # device-tree node path for DT regions
    phandle: int | None = None


@dataclass(frozen=True)
class Pattern:
    """A ``cma_map=`` pattern: ``device`` and ``kind`` with ``?`` and a trailing ``*``.

    ``device`` None means "any device" (a pattern that is only ``/KIND``
    after reuse is resolved still has a device part; None only appears for
    rules built from code). ``kind`` None means the pattern named no kind.
    """

    device: str | None
    kind: str | None


@dataclass(frozen=True)
class MapRule:
    """``patterns = regions``: the first rule with a matching pattern wins."""

    patterns: tuple[Pattern, ...]
    regions: tuple[str, ...]


@dataclass(frozen=True)
class CmaConfig:
    """Everything parsed from a command line, a device tree or platform defaults."""

    regions: tuple[RegionSpec, ...] = ()
    rules: tuple[MapRule, ...] = ()
    # device-tree ``memory-region`` links: device node path -> region names, in order
    links: tuple[tuple[str, tuple[str, ...]], ...] = field(default_factory=tuple)

    @property
    def is_empty(self) -> bool:
        return not self.regions and not self.rules and not self.links
