"""A DMA port onto a RAM array seen through one bus window: unit tests of DMA masters.

It implements the same ``DmaPort`` protocol as :class:`emu.bus.BusView`, with RAM at
``ram_phys`` that the master sees at ``bus_base``; accesses outside the window are
refused and recorded, so a device's bus-error handling can be checked at register level
without an emulator.
"""

from __future__ import annotations


class WindowPort:
    """RAM ``[ram_phys, ram_phys + size)`` seen by the master at ``bus_base``."""

    def __init__(self, ram_phys: int, bus_base: int, size: int) -> None:
        self.ram_phys = ram_phys
        self.bus_base = bus_base
        self.size = size
        self.ram = bytearray(size)
        self.refused: list[tuple[int, int]] = []
        self.reads: list[tuple[int, int]] = []

    def to_phys(self, bus: int) -> int | None:
        if self.bus_base <= bus < self.bus_base + self.size:
            return bus - self.bus_base + self.ram_phys
        return None

    def to_bus(self, phys: int) -> int | None:
        if self.ram_phys <= phys < self.ram_phys + self.size:
            return phys - self.ram_phys + self.bus_base
        return None

    def _offset(self, bus: int, size: int) -> int | None:
        phys = self.to_phys(bus)
        if phys is None or size <= 0 or self.to_phys(bus + size - 1) is None:
            self.refused.append((bus, size))
            return None
        return phys - self.ram_phys

    def read(self, bus: int, size: int) -> bytes | None:
        off = self._offset(bus, size)
        if off is None:
            return None
        self.reads.append((bus, size))
        return bytes(self.ram[off: off + size])

    def write(self, bus: int, data: bytes) -> bool:
        off = self._offset(bus, len(data))
        if off is None:
            return False
        self.ram[off: off + len(data)] = data
        return True

    def put(self, phys: int, data: bytes) -> None:
        """Fill RAM at a physical address, as the CPU would."""
        off = phys - self.ram_phys
        self.ram[off: off + len(data)] = data
