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

    def compression(self) -> str | None:
        """"xz" or "gzip" for the first stream found in the image, None when none is."""
        xz = self.data.find(XZ_MAGIC)
        gz = self.data.find(GZIP_MAGIC)
        if xz >= 0 and (gz < 0 or xz < gz):
            return "xz"
        return "gzip" if gz >= 0 else None

    def decompress(self) -> bytes:
        """The kernel Image inside (raises :class:`ImageError` when no stream decodes)."""
        kind = self.compression()
        if kind == "xz":
            off = self.data.find(XZ_MAGIC)
            dec = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
            try:
                out = dec.decompress(self.data[off:])
            except lzma.LZMAError as exc:
                raise ImageError(f"{self.name}: XZ payload at 0x{off:x} is damaged: {exc}") \
                    from exc
        elif kind == "gzip":
            off = self.data.find(GZIP_MAGIC)
            d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                out = d.decompress(self.data[off:])
            except zlib.error as exc:
                raise ImageError(f"{self.name}: gzip payload at 0x{off:x} is damaged: {exc}") \
                    from exc
        else:
            raise ImageError(f"{self.name}: no XZ or gzip payload found to decompress "
                             "(LZO/LZ4/LZMA kernels need the guest decompressor)")
        if len(out) < 0x40:
            raise ImageError(f"{self.name}: decompressed payload is only {len(out)} bytes")
        return out
