"""Raw binary images, and the :class:`Segment` every loader produces."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

#: bytes a probe needs to recognise any supported format
PROBE_SIZE = 0x40


def probe_bytes(image: bytes | str | Path) -> bytes:
    """The head of an image given as bytes or as a path (unreadable files give b"")."""
    if isinstance(image, bytes | bytearray | memoryview):
        return bytes(image[:PROBE_SIZE])
    try:
        with open(image, "rb") as f:
            return f.read(PROBE_SIZE)
    except OSError:
        return b""


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
    def is_compatible(data: bytes | str | Path) -> bool:
        """Anything is a raw binary: this loader is the last resort."""
        return True

    def segments(self) -> list[Segment]:
        return [Segment(self.address, self.data, len(self.data))]
