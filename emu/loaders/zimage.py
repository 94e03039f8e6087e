"""Linux ARM zImage: the self-decompressing kernel, or its payload decompressed on the host.

A zImage has the magic 0x016F2818 at offset 0x24 (start and end addresses at
0x28 and 0x2C). Loaded as is, it goes at RAM base + 0x8000 and is entered at
its first byte; the guest then decompresses itself (slow in emulation). With
``host_decompress`` the compressed payload (an XZ or gzip stream inside the
image; the last four bytes of the payload hold the decompressed size) is
decompressed here and the kernel Image is placed at RAM base + text offset
(0x8000) and entered directly, as the decompressor would have done.
"""

from __future__ import annotations

import lzma
import struct
import zlib
from typing import ClassVar

from emu.errors import ImageError

ZIMAGE_MAGIC = 0x016F2818
TEXT_OFFSET = 0x8000
XZ_MAGIC = b"\xfd7zXZ\x00"
GZIP_MAGIC = b"\x1f\x8b\x08"


class ZImage:
    """A Linux ARM zImage."""

    kind: ClassVar[str] = "zimage"

    def __init__(self, data: bytes, name: str = "<zImage>") -> None:
        if not self.is_compatible(data):
            raise ImageError(f"{name}: no zImage magic 0x{ZIMAGE_MAGIC:08x} at offset 0x24")
        self.name = name
        self.data = data
        self.start, self.end = struct.unpack_from("<II", data, 0x28)

    @staticmethod
    def is_compatible(data: bytes) -> bool:
        return len(data) >= 0x30 and struct.unpack_from("<I", data, 0x24)[0] == ZIMAGE_MAGIC

    def _streams(self) -> list[tuple[int, str]]:
        """Offsets of every XZ and gzip header in the image, in order.

        The decompressor itself holds the XZ magic as a constant, so a header
        is only a candidate until it decodes.
        """
        found: list[tuple[int, str]] = []
        for magic, kind in ((XZ_MAGIC, "xz"), (GZIP_MAGIC, "gzip")):
            at = self.data.find(magic)
            while at >= 0:
                found.append((at, kind))
                at = self.data.find(magic, at + 1)
        return sorted(found)

    def compression(self) -> str | None:
        """"xz" or "gzip": the kind of the first header found, None when there is none."""
        streams = self._streams()
        return streams[0][1] if streams else None

    def decompress(self) -> bytes:
        """The kernel Image inside (raises :class:`ImageError` when no stream decodes)."""
        problems: list[str] = []
        for off, kind in self._streams():
            try:
                if kind == "xz":
                    dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
                    out = dec.decompress(self.data[off:])
                    complete = dec.eof
                else:
                    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    out = d.decompress(self.data[off:])
                    complete = d.eof
            except (lzma.LZMAError, zlib.error) as exc:
                problems.append(f"{kind} at 0x{off:x}: {exc}")
                continue
            if complete and len(out) >= 0x40:
                return out
            problems.append(f"{kind} at 0x{off:x}: truncated stream")
        if not problems:
            raise ImageError(f"{self.name}: no XZ or gzip payload found to decompress "
                             "(LZO/LZ4/LZMA kernels need the guest decompressor)")
        raise ImageError(f"{self.name}: no payload decodes ({'; '.join(problems)})")

