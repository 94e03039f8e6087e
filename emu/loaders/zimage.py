"""Linux ARM zImage: the self-decompressing kernel, or its payload decompressed on the host.

A zImage has the magic 0x016F2818 at offset 0x24 (start and end addresses at
0x28 and 0x2C). Loaded as is, it goes at RAM base + 0x8000 and is entered at
its first byte; the guest then decompresses itself (slow in emulation). With
``host_decompress`` the compressed payload (an XZ or gzip stream inside the
image) is decompressed here and the kernel Image is placed at RAM base + its
text offset and entered directly, as the decompressor would have done. The
text offset comes from the zImage's "KLSZ" tag table (0x208000 for Debian's
armmp kernels), 0x8000 when there is none; a wrong one makes the kernel
believe RAM starts elsewhere.
"""

from __future__ import annotations

import lzma
import struct
import zlib
from pathlib import Path
from typing import ClassVar

from emu.errors import ImageError
from emu.loaders.raw import probe_bytes

ZIMAGE_MAGIC = 0x016F2818
TEXT_OFFSET = 0x8000
XZ_MAGIC = b"\xfd7zXZ\x00"
TABLE_MAGIC = 0x45454545  # at 0x34: a tag table follows, its offset at 0x38
KLSZ_TAG = 0x5A534C4B  # "KLSZ": piggy size offset, bss size, TEXT_OFFSET, malloc size
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
    def is_compatible(data: bytes | str | Path) -> bool:
        """The zImage magic at 0x24 (bytes or a file path)."""
        head = probe_bytes(data)
        return len(head) >= 0x30 and struct.unpack_from("<I", head, 0x24)[0] == ZIMAGE_MAGIC

    def text_offset(self) -> int:
        """Where the decompressed kernel goes above the start of RAM.

        Read from the "KLSZ" entry of the zImage tag table when the image has
        one (multiplatform kernels with some platforms use 0x208000), else the
        usual 0x8000.
        """
        data = self.data
        if len(data) < 0x3C or struct.unpack_from("<I", data, 0x34)[0] != TABLE_MAGIC:
            return TEXT_OFFSET
        off = struct.unpack_from("<I", data, 0x38)[0]
        if off + 20 > len(data):
            return TEXT_OFFSET
        words = struct.unpack_from("<5I", data, off)
        if words[1] == KLSZ_TAG and words[0] & 0xFFFF >= 5:
            return int(words[4])
        return TEXT_OFFSET

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

