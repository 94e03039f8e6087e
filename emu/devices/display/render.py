"""Scan-out decoding for the PL111: framebuffer bytes to an RGB picture.

The PL111 reads its framebuffer as a stream of 32-bit little-endian words and
cuts each word into pixels according to LCDControl (TRM "pixel data
organisation" tables):

* ``LcdBpp`` selects the pixel size and packing (:class:`PixelMode`);
* ``BEBO`` (big-endian byte order) and ``BEPO`` (big-endian pixel order within
  a byte, only meaningful below 8 bpp) select where pixel *i* of a word sits.
  With both clear pixel 0 is in the least significant bits; with both set
  pixel 0 is in the most significant bits (so a 16 bpp word holds pixel 0 in
  bits [31:16]);
* in the direct-colour modes red is in the *low* bits of a pixel and blue in
  the high bits; ``BGR`` swaps red and blue. In DRM fourcc terms (which name
  channels from the high bit down) BGR=0 is ``XBGR8888`` / ``BGR565`` and BGR=1
  is ``XRGB8888`` / ``RGB565``, the pairing Linux's pl111 driver programs;
* 1/2/4/8 bpp pixels index the 256-entry palette, whose 16-bit entries hold
  red [4:0], green [9:5], blue [14:10] and an intensity bit [15] (ignored);
  ``BGR`` swaps red and blue there too.

Channels narrower than 8 bits are widened by bit replication (5-bit ``v`` to
``v << 3 | v >> 2``), so full scale maps to 255 and zero to 0.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from pathlib import Path

from PIL import Image

from emu.atomic import open_atomic
from emu.errors import ConfigurationError, EmuError

PALETTE_ENTRIES = 256


class PixelMode(IntEnum):
    """The LcdBpp field of LCDControl (bits [3:1])."""

    BPP1 = 0
    BPP2 = 1
    BPP4 = 2
    BPP8 = 3
    BPP16_1555 = 4
    BPP24 = 5
    BPP16_565 = 6
    BPP12_444 = 7

    @property
    def bits_per_pixel(self) -> int:
        """Bits one pixel occupies in memory (24 bpp pixels fill a 32-bit word)."""
        return _BITS[self]

    @property
    def palettised(self) -> bool:
        return self <= PixelMode.BPP8


_BITS = {
    PixelMode.BPP1: 1, PixelMode.BPP2: 2, PixelMode.BPP4: 4, PixelMode.BPP8: 8,
    PixelMode.BPP16_1555: 16, PixelMode.BPP24: 32, PixelMode.BPP16_565: 16,
    PixelMode.BPP12_444: 16,
}

# Memory layout names in DRM fourcc style (channels from the high bit down), for BGR=0 / BGR=1.
_DIRECT_NAMES = {
    PixelMode.BPP16_1555: ("XBGR1555", "XRGB1555"),
    PixelMode.BPP24: ("XBGR8888", "XRGB8888"),
    PixelMode.BPP16_565: ("BGR565", "RGB565"),
    PixelMode.BPP12_444: ("XBGR4444", "XRGB4444"),
}


@dataclass(frozen=True)
class ScanFormat:
    """How the controller interprets framebuffer bytes (from LCDControl)."""

    mode: PixelMode
    bgr: bool = False
    bebo: bool = False
    bepo: bool = False

    @property
    def bits_per_pixel(self) -> int:
        return self.mode.bits_per_pixel

    @property
    def name(self) -> str:
        """A short name: ``C8`` for palettised modes, a DRM fourcc name otherwise."""
        if self.mode.palettised:
            return f"C{self.bits_per_pixel}"
        return _DIRECT_NAMES[self.mode][int(self.bgr)]

    def frame_bytes(self, width: int, height: int) -> int:
        """Bytes the controller fetches for a ``width`` x ``height`` frame.

        Lines are packed back to back and the fetch is made of whole 32-bit words.
        """
        bits = width * height * self.bits_per_pixel
        return -(-bits // 32) * 4


def _widen(value: int, bits: int) -> int:
    """Widen a ``bits``-wide channel to 8 bits by replicating its top bits."""
    value <<= 8 - bits
    while bits < 8:
        value |= value >> bits
        bits *= 2
    return value & 0xFF


def _split(value: int, layout: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    return tuple(_widen((value >> lsb) & ((1 << width) - 1), width) for lsb, width in layout)


# (lsb, width) of the low-bits channel, green, high-bits channel.
_LAYOUTS: dict[PixelMode, tuple[tuple[int, int], ...]] = {
    PixelMode.BPP16_1555: ((0, 5), (5, 5), (10, 5)),
    PixelMode.BPP16_565: ((0, 5), (5, 6), (11, 5)),
    PixelMode.BPP12_444: ((0, 4), (4, 4), (8, 4)),
}
_PALETTE_LAYOUT = ((0, 5), (5, 5), (10, 5))


def decode_rgb(value: int, mode: PixelMode, bgr: bool) -> tuple[int, int, int]:
    """The (R, G, B) of one direct-colour pixel ``value`` (reference, one pixel at a time)."""
    if mode is PixelMode.BPP24:
        low, green, high = value & 0xFF, (value >> 8) & 0xFF, (value >> 16) & 0xFF
    elif mode in _LAYOUTS:
        low, green, high = _split(value, _LAYOUTS[mode])
    else:
        raise ConfigurationError(f"pixel mode must be a direct-colour mode, not {mode.name}")
    return (high, green, low) if bgr else (low, green, high)


def palette_rgb(entry: int, bgr: bool) -> tuple[int, int, int]:
    """The (R, G, B) a 16-bit palette ``entry`` produces (intensity bit ignored)."""
    low, green, high = _split(entry, _PALETTE_LAYOUT)
    return (high, green, low) if bgr else (low, green, high)


@lru_cache(maxsize=8)
def _lut16(mode: PixelMode, bgr: bool) -> tuple[bytes, ...]:
    return tuple(bytes(decode_rgb(v, mode, bgr)) for v in range(1 << 16))


@lru_cache(maxsize=16)
def _byte_to_indices(bpp: int, msb_first: bool) -> tuple[bytes, ...]:
    """For each byte value, the palette indices of its pixels in display order."""
    per_byte = 8 // bpp
    mask = (1 << bpp) - 1
    table = []
    for value in range(256):
        shifts = [i * bpp for i in range(per_byte)]
        if msb_first:
            shifts.reverse()
        table.append(bytes((value >> s) & mask for s in shifts))
    return tuple(table)


def _reverse_bytes_per_word(data: bytes) -> bytes:
    swapped = array("I", data)
    swapped.byteswap()
    return swapped.tobytes()


def _indices(data: bytes, fmt: ScanFormat) -> bytes:
    """One palette index per pixel, in display order."""
    if fmt.bebo:
        data = _reverse_bytes_per_word(data)
    bpp = fmt.bits_per_pixel
    if bpp == 8:
        return data
    # The bytes now run in display order; BEPO puts a byte's first pixel in its top bits.
    table = _byte_to_indices(bpp, msb_first=fmt.bepo)
    return b"".join(map(table.__getitem__, data))


def _pixels16(data: bytes, bebo: bool) -> array[int]:
    values = array("H", data)
    if sys.byteorder == "big":
        values.byteswap()
    if bebo:
        # Pixel 0 sits in bits [31:16] of each little-endian word.
        values[0::2], values[1::2] = values[1::2], values[0::2]
    return values


def decode_frame(data: bytes, width: int, height: int, fmt: ScanFormat,
                 palette: Sequence[int] = ()) -> Image.Image:
    """Decode one frame from ``data`` (see :meth:`ScanFormat.frame_bytes`) to an RGB image.

    ``palette`` holds the 16-bit palette entries (entry 0 first); missing
    entries read as 0 (black). Bytes past the frame are ignored. Raises
    :class:`ConfigurationError` when ``data`` is shorter than the frame: the
    caller fetches the frame, so a short buffer is a host bug.
    """
    if width <= 0 or height <= 0:
        raise ConfigurationError(f"frame size must be positive, not {width}x{height}")
    need = fmt.frame_bytes(width, height)
    if len(data) < need:
        raise ConfigurationError(
            f"a {width}x{height} {fmt.name} frame needs 0x{need:x} bytes, not 0x{len(data):x}"
        )
    data = bytes(data[:need])
    pixels = width * height
    if fmt.mode.palettised:
        rgb_palette = bytearray(3 * PALETTE_ENTRIES)
        for i, entry in enumerate(palette[:PALETTE_ENTRIES]):
            rgb_palette[3 * i: 3 * i + 3] = bytes(palette_rgb(entry, fmt.bgr))
        image = Image.frombytes("P", (width, height), _indices(data, fmt)[:pixels])
        image.putpalette(bytes(rgb_palette), rawmode="RGB")
        return image.convert("RGB")
    if fmt.mode is PixelMode.BPP24:
        rgb = bytearray(pixels * 3)
        red, blue = (2, 0) if fmt.bgr else (0, 2)
        rgb[0::3] = data[red::4]
        rgb[1::3] = data[1::4]
        rgb[2::3] = data[blue::4]
        return Image.frombytes("RGB", (width, height), bytes(rgb))
    lut = _lut16(fmt.mode, fmt.bgr)
    rgb16 = b"".join(map(lut.__getitem__, _pixels16(data, fmt.bebo)[:pixels]))
    return Image.frombytes("RGB", (width, height), rgb16)


def save_png(image: Image.Image, path: str | Path) -> Path:
    """Write ``image`` as a PNG file; host-side failures raise :class:`EmuError`."""
    target = Path(path)
    try:
        with open_atomic(target) as f:
            image.save(f, format="PNG")
    except OSError as exc:
        raise EmuError(f"cannot write PNG file {str(target)!r}: {exc}") from exc
    return target
