"""The allocator plug-in contract.

The core owns regions and chunks; an allocator only manages free space inside
one region. The core serialises every call on a region, so an allocator needs
no locking. Sizes handed to ``alloc`` are whole pages and alignments are powers
of two of at least a page, both already checked by the core; alignment is of
the *absolute* address, as in the kernel.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar


class Allocator(ABC):
    """Manages the free space of one region ``[start, start + size)``."""

    #: the name used after ``:`` in ``cma=`` (``r=64M:bf``)
    name: ClassVar[str]
    #: one line for listings and docs
    summary: ClassVar[str] = ""

    def __init__(self, start: int, size: int, page_size: int, params: str = "") -> None:
        """Take the region (the 2010 ``init(region)``); reject bad ``params``
        with :class:`cma.errors.InvalidArgument` naming the parameter."""
        self.start = start
        self.size = size
        self.page_size = page_size
        self.params = params

    @abstractmethod
    def alloc(self, size: int, alignment: int) -> int | None:
        """Return the start of a free, aligned extent of ``size`` bytes, or None."""

    @abstractmethod
    def free(self, addr: int, size: int) -> None:
        """Give back an extent earlier returned by :meth:`alloc`."""

    def cleanup(self) -> None:  # noqa: B027 - optional hook
        """Release whatever the allocator holds (the 2010 ``cleanup(region)``)."""

    @abstractmethod
    def iter_free(self) -> Iterator[tuple[int, int]]:
        """Yield the free extents ``(start, size)`` in address order, coalesced."""

    def debug_view(self) -> dict[str, Any]:
        """Allocator-specific state for debug listings (e.g. the bitmap)."""
        return {}
