"""The registry of free-space allocators, and the building blocks for writing one.

An allocator is a subclass of :class:`cma.allocators.base.Allocator` whose
``name`` is what follows ``:`` in ``cma=`` (``r=64M:bitmap(order_per_bit=2)``).
:func:`register` (usable as a class decorator) makes it known;
:func:`get_allocator` looks it up, ``None`` meaning :data:`DEFAULT_ALLOCATOR`.

The functions and classes below are shared by the built-in allocators and offered to
plug-in authors: :func:`parse_params` for the ``(...)`` text,
:func:`parse_size` for sizes in it, :func:`check_region` for the region handed
to ``__init__``, and :class:`AllocationLedger`, which turns a bad ``free()``
(double free, unknown or overlapping extent) into
:class:`cma.errors.InvalidArgument` before any state is touched.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from typing import TypeVar

from cma.allocators.base import Allocator
from cma.errors import ConfigError, InvalidArgument
from cma.memparse import memparse

__all__ = [
    "DEFAULT_ALLOCATOR",
    "AllocationLedger",
    "Allocator",
    "align_down",
    "align_up",
    "allocator_names",
    "check_region",
    "check_request",
    "get_allocator",
    "parse_params",
    "parse_size",
    "register",
]

#: the allocator a region gets when ``cma=`` names none (the 2010 default)
DEFAULT_ALLOCATOR = "bf"

_NAME_RE = re.compile(r"[A-Za-z0-9]+\Z")
_registry: dict[str, type[Allocator]] = {}
_A = TypeVar("_A", bound=Allocator)


def register(cls: type[_A]) -> type[_A]:
    """Make ``cls`` available under ``cls.name``; returns ``cls`` (a class decorator).

    The name must be letters and digits (what ``cma=`` can spell) and not
    taken yet: two plug-ins silently shadowing each other would make a
    configuration mean different things depending on import order.
    """
    if not (isinstance(cls, type) and issubclass(cls, Allocator)):
        raise InvalidArgument(f"an allocator must subclass Allocator, not {cls!r}")
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise InvalidArgument(
            f"allocator name must be letters and digits, not {name!r} (class {cls.__qualname__})"
        )
    if name in _registry:
        raise InvalidArgument(
            f"allocator name {name!r} is already registered by "
            f"{_registry[name].__module__}.{_registry[name].__qualname__}"
        )
    _registry[name] = cls
    return cls


def get_allocator(name: str | None) -> type[Allocator]:
    """Return the allocator class registered as ``name`` (None: the default)."""
    key = DEFAULT_ALLOCATOR if name is None else name
    try:
        return _registry[key]
    except KeyError:
        known = ", ".join(allocator_names())
        raise InvalidArgument(f"unknown allocator {key!r}; known: {known}") from None


def allocator_names() -> list[str]:
    """The registered names, sorted."""
    return sorted(_registry)


def align_up(value: int, alignment: int) -> int:
    """``value`` rounded up to a multiple of ``alignment`` (a power of two)."""
    return (value + alignment - 1) & -alignment


def align_down(value: int, alignment: int) -> int:
    """``value`` rounded down to a multiple of ``alignment`` (a power of two)."""
    return value & -alignment


def check_region(owner: str, start: int, size: int, page_size: int) -> None:
    """Reject a region an allocator cannot manage (the core should never pass one)."""
    if page_size <= 0 or page_size & (page_size - 1):
        raise InvalidArgument(f"{owner}: page size must be a power of two, not {page_size:#x}")
    if start < 0 or start % page_size:
        raise InvalidArgument(
            f"{owner}: region start must be page aligned ({page_size:#x}), not {start:#x}"
        )
    if size <= 0 or size % page_size:
        raise InvalidArgument(
            f"{owner}: region size must be a positive multiple of the page size "
            f"({page_size:#x}), not {size:#x}"
        )


def check_request(owner: str, size: int, alignment: int, page_size: int) -> None:
    """Reject an ``alloc(size, alignment)`` that would corrupt the free lists.

    The core validates requests first; this keeps a direct caller (a test, a
    benchmark, a buggy core) from creating empty or misaligned extents.
    """
    if size <= 0 or size % page_size:
        raise InvalidArgument(
            f"{owner}: size must be a positive multiple of the page size ({page_size:#x}), "
            f"not {size:#x}"
        )
    if alignment < page_size or alignment & (alignment - 1):
        raise InvalidArgument(
            f"{owner}: alignment must be a power of two of at least a page ({page_size:#x}), "
            f"not {alignment:#x}"
        )


def parse_size(text: str) -> int:
    """A size as the kernel's ``memparse`` reads it: ``4096``, ``0x1000``, ``64K``, ``1M``."""
    stripped = text.strip()
    try:
        value, end = memparse(stripped)
    except ConfigError:
        end = -1
    if end != len(stripped):
        raise InvalidArgument(f"size must be a number with an optional K/M/G suffix, not {text!r}")
    return value


def parse_params(owner: str, text: str, allowed: Collection[str]) -> dict[str, str]:
    """Split ``key=value,key=value`` into a dict, rejecting unknown or repeated keys.

    ``owner`` (the allocator's name) starts every message. Blank text means
    no parameters; spaces around items are ignored.
    """
    result: dict[str, str] = {}
    if not text.strip():
        return result
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise InvalidArgument(f"{owner}: parameter must be key=value, not {item.strip()!r}")
        if key not in allowed:
            names = ", ".join(sorted(allowed)) or "none"
            raise InvalidArgument(f"{owner}: unknown parameter {key!r}; accepted: {names}")
        if key in result:
            raise InvalidArgument(f"{owner}: parameter {key!r} given twice")
        result[key] = value
    return result


class AllocationLedger:
    """The extents an allocator has handed out and not yet taken back.

    :meth:`release` validates a ``free(addr, size)`` against what
    :meth:`record` saw, so a host bug (double free, a free of something never
    allocated, a free that overlaps another extent or has the wrong size)
    raises :class:`InvalidArgument` and leaves the allocator untouched.
    """

    def __init__(self, owner: str, start: int, size: int) -> None:
        self._owner = owner
        self._start = start
        self._end = start + size
        #: start -> size of every extent handed out. An allocator's hot path may enter
        #: and drop extents here itself (as :meth:`record` does, and as :meth:`release`
        #: does after its checks) to save the calls.
        self.held: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.held)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """The allocated extents ``(start, size)`` in address order."""
        return iter(sorted(self.held.items()))

    @property
    def allocated(self) -> int:
        """Bytes currently handed out."""
        return sum(self.held.values())

    def record(self, addr: int, size: int) -> None:
        """Note that ``[addr, addr + size)`` was just handed out."""
        self.held[addr] = size

    def release(self, addr: int, size: int) -> None:
        """Check that ``[addr, addr + size)`` is exactly one allocated extent, then forget it."""
        held = self.held.get(addr)
        if held == size > 0:
            del self.held[addr]
            return
        where = f"{self._owner}: free of {addr:#x}+{size:#x}"
        if size <= 0:
            raise InvalidArgument(f"{where}: the size must be positive")
        if addr < self._start or addr + size > self._end:
            raise InvalidArgument(f"{where} is outside the region {self._start:#x}-{self._end:#x}")
        if held is None:
            for start, length in self.held.items():
                if start < addr + size and addr < start + length:
                    raise InvalidArgument(
                        f"{where} overlaps the allocated extent {start:#x}+{length:#x}"
                    )
            raise InvalidArgument(f"{where}: nothing is allocated there (double free?)")
        raise InvalidArgument(f"{where}: the extent allocated there is {held:#x} bytes")


# The built-in allocators register themselves on import; they import the
# definitions above, so these imports come last.
from cma.allocators import bestfit, bitmap, twoended  # noqa: E402, F401
