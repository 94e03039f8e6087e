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

import math
import struct
import zlib
from collections.abc import Callable
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


#: per digit, per cell row: the columns (0..2) drawn black
_CELL_COLUMNS = tuple(
    tuple(tuple(i for i in range(3) if bits[cy * 3 + i] == "1") for cy in range(5))
    for bits in _DIGITS
)


@lru_cache(maxsize=16)
def _base_line(width: int, fmt: PixelFormat) -> bytes:
    """One line of bars, twice as wide so any scroll offset is a slice."""
    bar = max(1, width // len(BARS))
    rgb = [BARS[(x // bar) % len(BARS)] for x in range(width)]
    line = encode_pixels(rgb, fmt)
    return line + line


def geometry_word(width: int, height: int, fmt: PixelFormat) -> int:
    return (int(fmt) & 0xF) | ((width & 0x3FFF) << 4) | ((height & 0x3FFF) << 18)


def render_frame(width: int, height: int, fmt: PixelFormat, seq: int) -> list[bytes]:
    """The lines of frame ``seq`` (each ``width * bpp`` bytes), header included."""
    frame = render_frame_bytes(width, height, fmt, seq)
    n = width * fmt.bytes_per_pixel
    return [frame[i:i + n] for i in range(0, len(frame), n)]


def render_frame_bytes(width: int, height: int, fmt: PixelFormat, seq: int) -> bytes:
    """Frame ``seq`` as one packed buffer (the lines of :func:`render_frame`, joined).

    Only the digit band (five cell rows near the top) and the header change from
    one frame to the next at a given scroll phase. The plain line and the CRC-32 of
    the plain lines before and after the band are cached per phase, so a frame costs
    one join of the lines, the CRC-32 of one line per digit-cell row, and a few table
    look-ups that splice the CRCs together (CRC-32 is linear, see :func:`_crc32_combine`).
    """
    lay = _layout(width, height, fmt)
    bpp, scale, n, black = lay.bpp, lay.scale, lay.line_len, lay.black
    row, before_crc, after_crc = _phase(width, height, fmt, ((seq * lay.step) % width) * bpp)
    digits = [_CELL_COLUMNS[int(ch)] for ch in str(seq)]
    pieces = [row] * height
    crc = before_crc
    for cy in range(5):
        lo = lay.band_lo + cy * scale
        hi = min(height, lo + scale)
        if lo >= hi:
            break
        line = bytearray(row)
        for pos, columns in enumerate(digits):
            for i in columns[cy]:
                x = lay.x0 + (pos * 4 + i) * scale
                if x + scale <= width:
                    line[x * bpp:(x + scale) * bpp] = black
        count = hi - lo
        crc = _crc32_combine(crc, _apply(_repeat_tables(n, count), zlib.crc32(line)),
                             count * n)
        pieces[lo:hi] = [bytes(line)] * count
    crc = _crc32_combine(crc, after_crc, lay.after_len)
    if lay.line_len >= HEADER_SIZE:
        header = struct.pack("<IIII", MAGIC, seq & 0xFFFF_FFFF, crc,
                             geometry_word(width, height, fmt))
        pieces[0] = header + row[HEADER_SIZE:]
    return b"".join(pieces)


@dataclass(frozen=True)
class _Layout:
    """What every frame of one geometry shares."""

    line_len: int
    bpp: int
    step: int  # pixels the bars scroll per frame
    scale: int  # pixels per digit cell
    x0: int  # first digit column, in pixels
    black: bytes  # one digit cell's run of black pixels
    band_lo: int  # first line of the digit band (>= 1, so line 0 is always plain)
    band_hi: int  # the line after the band
    after_len: int  # bytes after the band


def _scroll_step(width: int, fmt: PixelFormat) -> int:
    step = max(1, width // (len(BARS) * 16))
    if fmt is PixelFormat.YUYV:
        step += step % 2  # keep YUYV pairs aligned
    return step


def scroll_period(width: int, fmt: PixelFormat) -> int:
    """Frames until the bars are back where they started (the pattern's cache period)."""
    return width // math.gcd(width, _scroll_step(width, fmt))


def clear_caches() -> None:
    """Forget every cached line and CRC (to measure a cold start)."""
    for cached in (_base_line, _layout, _phase, _x8n, _append_tables, _repeat_tables):
        cached.cache_clear()


@lru_cache(maxsize=64)
def _layout(width: int, height: int, fmt: PixelFormat) -> _Layout:
    bpp = fmt.bytes_per_pixel
    step = _scroll_step(width, fmt)
    scale = max(2, min(width, height) // 40)
    if fmt is PixelFormat.YUYV:
        scale += scale % 2  # keep YUYV pairs aligned
    band_lo = min(height, scale * 2)
    band_hi = min(height, band_lo + 5 * scale)
    return _Layout(
        line_len=width * bpp, bpp=bpp, step=step, scale=scale, x0=scale * 2,
        black=encode_pixels([(0, 0, 0)] * scale, fmt), band_lo=band_lo, band_hi=band_hi,
        after_len=(height - band_hi) * width * bpp,
    )


@lru_cache(maxsize=1024)
def _phase(width: int, height: int, fmt: PixelFormat, shift: int) -> tuple[bytes, int, int]:
    """The plain line at byte ``shift`` of the bars, the payload CRC of the lines
    before the digit band, and the CRC of the lines after it (from 0)."""
    lay = _layout(width, height, fmt)
    n = lay.line_len
    row = _base_line(width, fmt)[shift:shift + n]
    row_crc = zlib.crc32(row)
    before = _crc32_combine(zlib.crc32(row[HEADER_SIZE:]),
                            _crc32_repeat(row_crc, n, lay.band_lo - 1), (lay.band_lo - 1) * n)
    return row, before, _crc32_repeat(row_crc, n, height - lay.band_hi)


# CRC-32 algebra (the zlib polynomial, bit-reflected). Appending ``k`` bytes to a
# message multiplies its CRC register by x^(8k) modulo the polynomial, so the CRC
# of a concatenation follows from the CRCs of its parts without reading the bytes.
_POLY = 0xEDB8_8320
_ONE = 1 << 31  # the polynomial 1 in the reflected representation


def _mulmod(a: int, b: int) -> int:
    """a * b modulo the CRC-32 polynomial (reflected bit order)."""
    product = 0
    mask = _ONE
    while a:
        if a & mask:
            product ^= b
            a ^= mask
        mask >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1
    return product


def _square_powers() -> tuple[int, ...]:
    powers = [_ONE >> 1]  # x^(2^0)
    for _ in range(31):
        powers.append(_mulmod(powers[-1], powers[-1]))
    return tuple(powers)


_X_2K = _square_powers()  # x^(2^k) mod P for k in 0..31


@lru_cache(maxsize=256)
def _x8n(nbytes: int) -> int:
    """x^(8 * nbytes) mod P: the factor that appends ``nbytes`` bytes to a CRC."""
    power, k, n = _ONE, 3, nbytes
    while n:
        if n & 1:
            power = _mulmod(_X_2K[k % 32], power)
        n >>= 1
        k += 1
    return power


Tables = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]


def _linear_tables(fn: Callable[[int], int]) -> Tables:
    """Four byte-indexed tables of a GF(2)-linear map of 32-bit values (see :func:`_apply`)."""
    lanes = []
    for lane in range(4):
        table = [0] * 256
        for bit in range(8):
            table[1 << bit] = fn(1 << (8 * lane + bit))
        for b in range(3, 256):
            low = b & -b
            if b != low:
                table[b] = table[b ^ low] ^ table[low]
        lanes.append(tuple(table))
    return (lanes[0], lanes[1], lanes[2], lanes[3])


def _apply(tables: Tables, value: int) -> int:
    t0, t1, t2, t3 = tables
    return t0[value & 0xFF] ^ t1[(value >> 8) & 0xFF] ^ t2[(value >> 16) & 0xFF] ^ t3[value >> 24]


@lru_cache(maxsize=256)
def _append_tables(nbytes: int) -> Tables:
    """``crc -> crc * x^(8 * nbytes) mod P``: what appending ``nbytes`` bytes does to a CRC."""
    factor = _x8n(nbytes)
    return _linear_tables(lambda crc: _mulmod(factor, crc))


@lru_cache(maxsize=256)
def _repeat_tables(nbytes: int, count: int) -> Tables:
    """CRC-32 of one ``nbytes`` block -> CRC-32 of ``count`` copies (a linear map too)."""
    return _linear_tables(lambda crc: _crc32_repeat(crc, nbytes, count))


def _crc32_combine(crc_a: int, crc_b: int, len_b: int) -> int:
    """CRC-32 of A + B from the CRC-32 of A, of B and the length of B."""
    return _apply(_append_tables(len_b), crc_a) ^ crc_b


def _crc32_repeat(crc: int, length: int, count: int) -> int:
    """CRC-32 of ``count`` copies of a ``length``-byte block whose CRC-32 is ``crc``."""
    total = 0
    while count:
        if count & 1:
            total = _crc32_combine(total, crc, length)
        count >>= 1
        if count:
            crc = _crc32_combine(crc, crc, length)
            length *= 2
    return total


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
