"""Raw binary images, and the :class:`Segment` every loader produces."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class Segment:
    """Bytes to place at a physical address (``size`` >= ``len(data)``: the rest is zeroed)."""

    address: int
    data: bytes
    size: int

    @property
    def end(self) -> int:
        return self.address + self.size


class RawImage:
    """A flat binary loaded at a given address and entered at its start."""

    kind: ClassVar[str] = "raw"

    def __init__(self, data: bytes, address: int, entry: int | None = None) -> None:
        self.data = data
        self.address = address
        self.entry = address if entry is None else entry

    @staticmethod
    def is_compatible(data: bytes) -> bool:
        """Anything is a raw binary: this loader is the last resort."""
        return True

    def segments(self) -> list[Segment]:
        return [Segment(self.address, self.data, len(self.data))]
