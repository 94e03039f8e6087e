"""Statistics and debug views of regions, in plain JSON-ready data.

The numbers mirror what the kernel shows under ``/sys/kernel/debug/cma/<name>``
(``base_pfn``, ``count``, ``order_per_bit``, ``used``, ``maxchunk``, the
bitmap) and the 2010 patch's per-region accounting, plus the success and
failure counters. Everything is read from a :class:`RegionView`, a consistent
copy taken under the region's and the core's locks, so a listing never shows
half an allocation.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from cma.errors import NotReachable
from cma.region import Chunk, Region


@dataclass(frozen=True)
class ChunkRecord:
    """A chunk as it was when the view was taken."""

    phys: int
    size: int
    device: str | None
    kind: str | None
    refcount: int
    dma_addr: int | None
    cpu_addr: int | None

    @classmethod
    def of(cls, chunk: Chunk) -> ChunkRecord:
        try:
            dma = chunk.dma_addr
        except NotReachable:
            dma = None
        return cls(chunk.phys, chunk.size, chunk.device, chunk.kind, chunk.refcount, dma,
                   chunk.cpu_addr)

    def as_dict(self, region: str) -> dict[str, Any]:
        return {
            "region": region,
            "phys": self.phys,
            "size": self.size,
            "device": self.device,
            "kind": self.kind,
            "refcount": self.refcount,
            "dma_addr": self.dma_addr,
            "cpu_addr": self.cpu_addr,
        }


@dataclass(frozen=True)
class RegionView:
    """A consistent copy of one region's state."""

    region: Region
    chunks: tuple[ChunkRecord, ...]
    free_extents: tuple[tuple[int, int], ...]
    allocator_view: dict[str, Any]
    alloc_success: int
    alloc_fail: int

    @classmethod
    def capture(cls, region: Region, core_lock: threading.Lock) -> RegionView:
        """Copy ``region`` under its lock and the core's (in that order, as the core does)."""
        with region.lock, core_lock:
            chunks = tuple(ChunkRecord.of(c) for _, c in sorted(region.chunks.items()))
            free = tuple(region.allocator.iter_free())
            extra = dict(region.allocator.debug_view())
            success, fail = region.alloc_success, region.alloc_fail
        return cls(region, chunks, free, extra, success, fail)

    @property
    def used(self) -> int:
        """Bytes held by chunks."""
        return sum(c.size for c in self.chunks)

    @property
    def free(self) -> int:
        """Bytes the allocator reports free."""
        return sum(size for _start, size in self.free_extents)

    @property
    def waste(self) -> int:
        """Bytes neither used nor free: an allocator's rounding (``bitmap(order_per_bit>0)``)."""
        return self.region.size - self.used - self.free

    @property
    def largest_free(self) -> int:
        """The largest free extent, in bytes (what the next allocation can get at most)."""
        return max((size for _start, size in self.free_extents), default=0)


def region_flags(region: Region) -> list[str]:
    """The region's properties as short words, sorted: ``default``, ``fixed``, ``no-map`` ..."""
    spec = region.spec
    flags = {
        "default": spec.default,
        "fixed": spec.fixed,
        "no-map": spec.no_map,
        "private": region.private,
        "reusable": spec.reusable and not spec.no_map,
    }
    return sorted(name for name, on in flags.items() if on)


def region_summary(view: RegionView) -> dict[str, Any]:
    """Layout and accounting of one region (JSON-ready)."""
    region = view.region
    return {
        "name": region.name,
        "base": region.base,
        "end": region.end,
        "size": region.size,
        "alignment": region.alignment,
        "allocator": region.allocator.name,
        "params": region.spec.params,
        "source": str(region.spec.source),
        "node": region.spec.node,
        "flags": region_flags(region),
        "used": view.used,
        "free": view.free,
        "waste": view.waste,
        "largest_free": view.largest_free,
        "chunk_count": len(view.chunks),
        "alloc_success": view.alloc_success,
        "alloc_fail": view.alloc_fail,
    }


def debug_view(view: RegionView) -> dict[str, Any]:
    """The kernel's debugfs view of one area, in pages, plus the chunk listing.

    ``order_per_bit`` and ``bitmap`` appear when the allocator reports them
    (the bitmap allocator does); the rest of the allocator's own view is
    under ``allocator``.
    """
    region = view.region
    page = region.page_size
    extra = dict(view.allocator_view)
    out: dict[str, Any] = {
        "name": region.name,
        "base_pfn": region.base // page,
        "count": region.size // page,
        "used": view.used // page,
        "maxchunk": view.largest_free // page,
        "alloc_success": view.alloc_success,
        "alloc_fail": view.alloc_fail,
    }
    for key in ("order_per_bit", "bitmap"):
        if key in extra:
            out[key] = extra.pop(key)
    out["allocator"] = {"name": region.allocator.name, **extra}
    out["chunks"] = [c.as_dict(region.name) for c in view.chunks]
    return out


def snapshot(views: list[RegionView], page_size: int) -> dict[str, Any]:
    """Every region and chunk, sorted by address: a deterministic, JSON-ready dict."""
    ordered = sorted(views, key=lambda v: (v.region.base, v.region.name))
    chunks = sorted(
        (c.as_dict(v.region.name) for v in ordered for c in v.chunks),
        key=lambda c: int(c["phys"]),
    )
    return {
        "page_size": page_size,
        "regions": [region_summary(v) for v in ordered],
        "chunks": chunks,
    }
