"""The camera sensor's deterministic test pattern, and how to check a captured frame.

Every frame is eight colour bars scrolled one bar-width / 16 per frame, with the
frame number drawn in block digits, and a 16-byte header at the start of line 0:

    offset 0  u32  magic 0x464D4143 ("CAMF" little-endian)
    offset 4  u32  frame sequence number
    offset 8  u32  CRC-32 of the frame's payload: every byte of every line
                   (``width * bytes_per_pixel`` per line, stride padding excluded)
                   except these 16 header bytes
    offset 12 u32  format code | width << 4 ... packed geometry (see :func:`geometry_word`)

so any frame can be checked from its bytes alone: where it landed, which frame it
is, and whether a single byte is wrong. Everything is integer arithmetic on bytes;
the same (geometry, format, sequence) always gives the same bytes.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache

MAGIC = 0x464D4143
HEADER_SIZE = 16


class PixelFormat(IntEnum):
    """Pixel formats of the camera (the FORMAT register's values)."""

    RGB565 = 0
    RGB888 = 1
    YUYV = 2
    XRGB8888 = 3

    @property
    def bytes_per_pixel(self) -> int:
        return {0: 2, 1: 3, 2: 2, 3: 4}[int(self)]


BARS = (
    (255, 255, 255), (255, 255, 0), (0, 255, 255), (0, 255, 0),
    (255, 0, 255), (255, 0, 0), (0, 0, 255), (16, 16, 16),
)

# 3x5 block digits, one string of 15 bits per digit, row-major
_DIGITS = (
    "111101101101111", "010110010010111", "111001111100111", "111001111001111",
    "101101111001001", "111100111001111", "111100111101111", "111001001001001",
    "111101111101111", "111101111001111",
)


def _rgb_to_yuv(r: int, g: int, b: int) -> tuple[int, int, int]:
    y = (66 * r + 129 * g + 25 * b + 128) // 256 + 16
    u = (-38 * r - 74 * g + 112 * b + 128) // 256 + 128
    v = (112 * r - 94 * g - 18 * b + 128) // 256 + 128
    return (max(0, min(255, y)), max(0, min(255, u)), max(0, min(255, v)))


def encode_pixels(rgb: list[tuple[int, int, int]], fmt: PixelFormat) -> bytes:
    """Encode a row of RGB pixels in ``fmt`` (little-endian words, YUYV pairs)."""
    out = bytearray()
    if fmt is PixelFormat.RGB565:
        for r, g, b in rgb:
            out += struct.pack("<H", ((r >> 3) << 11) | ((g >> 2) << 5) | (b >> 3))
    elif fmt is PixelFormat.RGB888:
        for r, g, b in rgb:
            out += bytes((b, g, r))
    elif fmt is PixelFormat.XRGB8888:
        for r, g, b in rgb:
            out += bytes((b, g, r, 0xFF))
    else:
        for i in range(0, len(rgb), 2):
            y0, u0, v0 = _rgb_to_yuv(*rgb[i])
            y1, u1, v1 = _rgb_to_yuv(*rgb[i + 1]) if i + 1 < len(rgb) else (y0, u0, v0)
            out += bytes((y0, (u0 + u1) // 2, y1, (v0 + v1) // 2))
    return bytes(out)


def decode_pixels(data: bytes, width: int, fmt: PixelFormat) -> list[tuple[int, int, int]]:
    """Decode one line back to RGB (for PNG output)."""
    px: list[tuple[int, int, int]] = []
    if fmt is PixelFormat.RGB565:
        for (v,) in struct.iter_unpack("<H", data[: width * 2]):
            r, g, b = (v >> 11) & 0x1F, (v >> 5) & 0x3F, v & 0x1F
            px.append(((r << 3) | (r >> 2), (g << 2) | (g >> 4), (b << 3) | (b >> 2)))
    elif fmt is PixelFormat.RGB888:
        for i in range(width):
            b, g, r = data[3 * i: 3 * i + 3]
            px.append((r, g, b))
    elif fmt is PixelFormat.XRGB8888:
        for i in range(width):
            b, g, r = data[4 * i: 4 * i + 3]
            px.append((r, g, b))
    else:
        for i in range(0, width, 2):
            y0, u, y1, v = data[2 * i: 2 * i + 4]
            for y in (y0, y1)[: min(2, width - i)]:
                c, d, e = y - 16, u - 128, v - 128
                r = (298 * c + 409 * e + 128) >> 8
                g = (298 * c - 100 * d - 208 * e + 128) >> 8
                b = (298 * c + 516 * d + 128) >> 8
                px.append((max(0, min(255, r)), max(0, min(255, g)), max(0, min(255, b))))
    return px


@lru_cache(maxsize=16)
def _base_line(width: int, fmt: PixelFormat) -> bytes:
    """One line of bars, twice as wide so any scroll offset is a slice."""
    bar = max(1, width // len(BARS))
    rgb = [BARS[(x // bar) % len(BARS)] for x in range(width)]
    line = encode_pixels(rgb, fmt)
    return line + line


def _digit_cells(seq: int) -> list[tuple[int, int]]:
    cells: list[tuple[int, int]] = []
    for pos, ch in enumerate(str(seq)):
        bits = _DIGITS[int(ch)]
        for i, bit in enumerate(bits):
            if bit == "1":
                cells.append((pos * 4 + i % 3, i // 3))
    return cells


def geometry_word(width: int, height: int, fmt: PixelFormat) -> int:
    return (int(fmt) & 0xF) | ((width & 0x3FFF) << 4) | ((height & 0x3FFF) << 18)


def render_frame(width: int, height: int, fmt: PixelFormat, seq: int) -> list[bytes]:
    """The lines of frame ``seq`` (each ``width * bpp`` bytes), header included."""
    bpp = fmt.bytes_per_pixel
    line_len = width * bpp
    base = _base_line(width, fmt)
    step = max(1, width // (len(BARS) * 16))
    if fmt is PixelFormat.YUYV:
        step += step % 2  # keep YUYV pairs aligned
    shift = ((seq * step) % width) * bpp
    row = base[shift: shift + line_len]
    lines = [row] * height
    # frame number in block digits: each cell a square of `scale` pixels
    scale = max(2, min(width, height) // 40)
    if fmt is PixelFormat.YUYV and scale % 2:
        scale += 1
    black = encode_pixels([(0, 0, 0)] * scale, fmt)
    x0, y0 = scale * 2, scale * 2
    for cx, cy in _digit_cells(seq):
        x = x0 + cx * scale
        if x + scale > width:
            continue
        for y in range(y0 + cy * scale, min(height, y0 + (cy + 1) * scale)):
            ln = lines[y]
            lines[y] = ln[: x * bpp] + black + ln[(x + scale) * bpp:]
    payload_crc = _payload_crc(lines)
    header = struct.pack("<IIII", MAGIC, seq & 0xFFFF_FFFF, payload_crc,
                         geometry_word(width, height, fmt))
    if line_len >= HEADER_SIZE:
        lines[0] = header + lines[0][HEADER_SIZE:]
    return lines


def _payload_crc(lines: list[bytes]) -> int:
    crc = zlib.crc32(lines[0][HEADER_SIZE:])
    for ln in lines[1:]:
        crc = zlib.crc32(ln, crc)
    return crc & 0xFFFF_FFFF


@dataclass(frozen=True)
class FrameCheck:
    """What a captured frame's bytes say about themselves."""

    ok: bool
    seq: int | None
    crc: int | None
    reason: str


def check_frame(data: bytes, width: int, height: int, fmt: PixelFormat,
                stride: int = 0, expect_seq: int | None = None) -> FrameCheck:
    """Check a frame as read back from memory (``stride`` 0 = packed lines)."""
    line_len = width * fmt.bytes_per_pixel
    stride = stride or line_len
    need = stride * (height - 1) + line_len
    if len(data) < need:
        return FrameCheck(False, None, None, f"short buffer: {len(data)} < {need} bytes")
    lines = [data[y * stride: y * stride + line_len] for y in range(height)]
    magic, seq, crc, geo = struct.unpack_from("<IIII", lines[0])
    if magic != MAGIC:
        return FrameCheck(False, None, None, f"no frame header (magic 0x{magic:08x})")
    if geo != geometry_word(width, height, fmt):
        return FrameCheck(False, seq, crc, f"geometry word 0x{geo:08x} does not match")
    actual = _payload_crc(lines)
    if actual != crc:
        return FrameCheck(False, seq, crc,
                          f"payload CRC 0x{actual:08x} != header 0x{crc:08x} (corrupted frame)")
    if expect_seq is not None and seq != expect_seq:
        return FrameCheck(False, seq, crc, f"frame {seq} where frame {expect_seq} was expected")
    return FrameCheck(True, seq, crc, "ok")
