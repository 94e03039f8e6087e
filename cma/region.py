"""Regions (reserved ranges with their allocator) and chunks (what a device got).

A :class:`Chunk` is known by its physical address, and answers for the two
others through the translator the core was built with: ``dma_addr`` for the
device that allocated it (``dma_addr_for`` for any other device), and
``cpu_addr`` through the guest's linear map. That is the answer to the 2010
review's second question: a ``dma_addr_t`` belongs to one device's bus, so the
core never hands out a bare number without saying whose it is.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from cma.allocators.base import Allocator
from cma.config import RegionSpec
from cma.errors import NotReachable
from cma.placement import fmt_range
from cma.translate import Translator, phys_to_dma


@dataclass(eq=False)
class Region:
    """A reserved range ``[base, base + size)`` and the allocator managing it.

    ``private`` regions were registered by a driver and are only served when
    asked for by name. ``alloc_success`` / ``alloc_fail`` count requests
    (like the kernel's ``alloc_pages_success`` / ``alloc_pages_fail``), and
    ``lock`` serialises every call into ``allocator``. ``chunks`` (start →
    chunk) is kept by the core under its own lock.
    """

    name: str
    base: int
    size: int
    allocator: Allocator
    spec: RegionSpec
    alignment: int
    page_size: int
    private: bool = False
    alloc_success: int = 0
    alloc_fail: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    chunks: dict[int, Chunk] = field(default_factory=dict, repr=False)

    @property
    def end(self) -> int:
        """One past the last byte."""
        return self.base + self.size

    @property
    def no_map(self) -> bool:
        """The OS keeps no linear mapping of this region (device tree ``no-map``)."""
        return self.spec.no_map

    def contains(self, addr: int, size: int = 1) -> bool:
        return self.base <= addr and addr + size <= self.end

    def __str__(self) -> str:
        return f"region {self.name!r} at {fmt_range(self.base, self.end)}"


@dataclass(eq=False)
class Chunk:
    """A contiguous allocation: its physical range, owner and reference count."""

    phys: int
    size: int
    region: Region
    device: str | None
    kind: str | None
    translator: Translator = field(repr=False)
    refcount: int = 1

    @property
    def end(self) -> int:
        """One past the last byte (physical)."""
        return self.phys + self.size

    @property
    def dma_addr(self) -> int | None:
        """The address the allocating device must be programmed with.

        None when the chunk was taken without naming a device (``alloc_from``
        with ``device=None``): there is no bus to speak of then.
        """
        if self.device is None:
            return None
        return self.dma_addr_for(self.device)

    def dma_addr_for(self, device: str) -> int:
        """The DMA address of this chunk as ``device`` sees it.

        Raises :class:`NotReachable` when the device's DMA view does not hold
        the whole chunk in one window.
        """
        dma = phys_to_dma(self.translator.dma_windows(device), self.phys, self.size)
        if dma is None:
            raise NotReachable(
                f"device {device!r} cannot reach chunk {fmt_range(self.phys, self.end)} "
                f"of region {self.region.name!r} through its DMA view"
            )
        return dma

    @property
    def cpu_addr(self) -> int | None:
        """The CPU's virtual address, or None (``no-map`` region, or outside the linear map)."""
        if self.region.no_map:
            return None
        first = self.translator.phys_to_virt(self.phys)
        last = self.translator.phys_to_virt(self.end - 1)
        if first is None or last is None or last - first != self.size - 1:
            return None  # not (contiguously) in the linear map
        return first

    def __str__(self) -> str:
        return (f"chunk {fmt_range(self.phys, self.end)} of region {self.region.name!r} "
                f"(device {self.device!r}, kind {self.kind!r}, refcount {self.refcount})")
