"""Address translation as the core sees it: physical → DMA (per device) and physical → CPU.

The 2010 review asked which address a chunk is, and how the CPU gets its own.
The answer here is that a chunk is known by its *physical* address and asks a
:class:`Translator` (implemented by the machine) for the other two:

* ``dma_windows(device)`` is the device's DMA view as Linux builds it from
  ``dma-ranges``: a list of ``(cpu_start, dma_start, size)`` regions.
  ``None`` means no map (identity), an empty list means the device can do no
  DMA at all.
* ``phys_to_virt(phys)`` is the guest's linear map; ``None`` when the address
  is not mapped.

:func:`phys_to_dma` and :func:`dma_to_phys` apply a window list the way
``translate_phys_to_dma`` / ``translate_dma_to_phys`` do, except that the
*whole* range must fit one window (a buffer straddling two windows is not
contiguous for the device). This module has no knowledge of the emulator.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from cma.errors import InvalidArgument

#: ``(cpu_start, dma_start, size)``: one region of a device's DMA view
DmaWindow = tuple[int, int, int]


@runtime_checkable
class Translator(Protocol):
    """What the core needs to know about the machine's address spaces."""

    def dma_windows(self, device: str) -> list[DmaWindow] | None:
        """The DMA view of ``device``: None = identity, [] = no DMA."""
        ...

    def phys_to_virt(self, phys: int) -> int | None:
        """The CPU virtual address of ``phys`` in the linear map, or None."""
        ...


def phys_to_dma(windows: Sequence[DmaWindow] | None, phys: int, size: int = 1) -> int | None:
    """The DMA address of ``[phys, phys + size)``, or None (``DMA_MAPPING_ERROR``).

    The first window holding the whole range wins; ``windows`` None is identity.
    """
    if windows is None:
        return phys
    for cpu, dma, length in windows:
        if cpu <= phys and phys + size <= cpu + length:
            return phys - cpu + dma
    return None


def dma_to_phys(windows: Sequence[DmaWindow] | None, dma: int, size: int = 1) -> int | None:
    """The physical address behind DMA address range ``[dma, dma + size)``, or None."""
    if windows is None:
        return dma
    for cpu, start, length in windows:
        if start <= dma and dma + size <= start + length:
            return dma - start + cpu
    return None


def reachable_phys(windows: Sequence[DmaWindow] | None) -> list[tuple[int, int]] | None:
    """The physical ``(start, size)`` windows a device can reach; None = everything."""
    if windows is None:
        return None
    return sorted((cpu, length) for cpu, _dma, length in windows if length > 0)


class IdentityTranslator:
    """Every device sees physical memory 1:1, and the CPU runs with a flat map."""

    def dma_windows(self, device: str) -> list[DmaWindow] | None:
        return None

    def phys_to_virt(self, phys: int) -> int | None:
        return phys


class TableTranslator:
    """A translator from plain data, for tests, the command line and experiments.

    ``windows`` maps a device name to its DMA view; devices not listed get
    ``default`` (None = identity). ``linear`` is the CPU's linear map as
    ``(phys_base, virt_base, size)``; None means the MMU is off (virtual =
    physical), and addresses outside the map have no CPU address.
    """

    def __init__(
        self,
        windows: Mapping[str, Sequence[DmaWindow] | None] | None = None,
        linear: tuple[int, int, int] | None = None,
        default: Sequence[DmaWindow] | None = None,
    ) -> None:
        self._windows: dict[str, list[DmaWindow] | None] = {}
        for device, view in (windows or {}).items():
            self._windows[device] = None if view is None else _checked(device, view)
        self._default = None if default is None else _checked("default", default)
        if linear is not None:
            phys_base, virt_base, size = linear
            if size <= 0 or phys_base < 0 or virt_base < 0:
                raise InvalidArgument(
                    f"linear map must be (phys_base, virt_base, size > 0), not {linear!r}"
                )
        self._linear = linear

    def dma_windows(self, device: str) -> list[DmaWindow] | None:
        view = self._windows.get(device, self._default)
        return None if view is None else list(view)

    def phys_to_virt(self, phys: int) -> int | None:
        if self._linear is None:
            return phys
        phys_base, virt_base, size = self._linear
        if phys_base <= phys < phys_base + size:
            return phys - phys_base + virt_base
        return None


def offset_windows(offset: int, size: int = 1 << 32, cpu_start: int = 0) -> list[DmaWindow]:
    """One window where the device sees ``cpu_start..`` at ``cpu_start + offset``.

    ``offset_windows(0xC0000000, 0x3F000000)`` is Raspberry Pi 2's view of RAM.
    """
    if size <= 0:
        raise InvalidArgument(f"window size must be positive, not {size:#x}")
    if cpu_start + offset < 0:
        raise InvalidArgument(f"offset {offset:#x} puts {cpu_start:#x} below bus address 0")
    return [(cpu_start, cpu_start + offset, size)]


def _checked(device: str, view: Sequence[DmaWindow]) -> list[DmaWindow]:
    out: list[DmaWindow] = []
    for window in view:
        cpu, dma, size = window
        if cpu < 0 or dma < 0 or size <= 0:
            raise InvalidArgument(
                f"DMA window of {device!r} must be (cpu >= 0, dma >= 0, size > 0), not {window!r}"
            )
        out.append((cpu, dma, size))
    return out
