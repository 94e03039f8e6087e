"""The camera test pattern stays byte-identical, however it is produced.

The digests were taken from the straightforward line-by-line renderer before frames
were cached per scroll phase and CRCs spliced with CRC-32 algebra; the reference
renderer below is that straightforward algorithm, written plainly, for random
geometries.
"""

from __future__ import annotations

import hashlib
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.devices.dma import testpattern
from emu.devices.dma.testpattern import (
    BARS,
    HEADER_SIZE,
    MAGIC,
    PixelFormat,
    check_frame,
    encode_pixels,
    geometry_word,
    render_frame,
    render_frame_bytes,
)

DIGESTS = [  # format, width, height, seq, sha256 of the packed frame (first 16 hex digits)
    ("RGB565", 640, 480, 0, "eeaf0efd78b37292"),
    ("RGB565", 640, 480, 345, "755599b73f2f7f5c"),
    ("RGB565", 1280, 720, 7, "1afe63c37aba5a77"),
    ("RGB565", 1280, 720, 99999, "8e772cab89410e32"),
    ("RGB565", 98, 50, 1000, "0e19272b93c186b2"),
    ("RGB565", 6, 3, 12, "881e259e9e6283e8"),
    ("RGB565", 2, 1, 1, "a8ae466621133768"),
    ("RGB565", 4096, 8, 4294967301, "c7095ee31d62340b"),
    ("RGB888", 640, 480, 0, "e203466e30257cff"),
    ("RGB888", 640, 480, 345, "33440b53e35d18ac"),
    ("RGB888", 1280, 720, 7, "d230c84b329a499b"),
    ("RGB888", 1280, 720, 99999, "3e77dac3fb31fdfb"),
    ("RGB888", 98, 50, 1000, "1642d84f3c807bf2"),
    ("RGB888", 6, 3, 12, "9a2722e31194024e"),
    ("RGB888", 2, 1, 1, "c2b3cfc5b54854d5"),
    ("RGB888", 4096, 8, 4294967301, "35fdb5aa9532671e"),
    ("YUYV", 640, 480, 0, "4dcc3083f6e01ed5"),
    ("YUYV", 640, 480, 345, "c1131b85b8e83fbd"),
    ("YUYV", 1280, 720, 7, "557b1c043a7dae3d"),
    ("YUYV", 1280, 720, 99999, "ab83a485b76da5a2"),
    ("YUYV", 98, 50, 1000, "88aca54438b8bc5e"),
    ("YUYV", 6, 3, 12, "bf39eb4919f32b66"),
    ("YUYV", 2, 1, 1, "b0aac2a4fd1ebdd1"),
    ("YUYV", 4096, 8, 4294967301, "cdc114ef92f44d35"),
    ("XRGB8888", 640, 480, 0, "8c959cb46d4b3438"),
    ("XRGB8888", 640, 480, 345, "952ec57d9da8bee9"),
    ("XRGB8888", 1280, 720, 7, "fbc0334b92862a89"),
    ("XRGB8888", 1280, 720, 99999, "469be82f26e7abff"),
    ("XRGB8888", 98, 50, 1000, "d5b958724e28e144"),
    ("XRGB8888", 6, 3, 12, "f409d9abfe2411e1"),
    ("XRGB8888", 2, 1, 1, "67e33075aaaf3e21"),
    ("XRGB8888", 4096, 8, 4294967301, "7ed7f2d78744bffc"),
]

DIGIT_BITS = (
    "111101101101111", "010110010010111", "111001111100111", "111001111001111",
    "101101111001001", "111100111001111", "111100111101111", "111001001001001",
    "111101111101111", "111101111001111",
)


def reference_frame(width: int, height: int, fmt: PixelFormat, seq: int) -> bytes:
    """The pattern as docs/camera.md describes it, one pixel row and one cell at a time."""
    bpp = fmt.bytes_per_pixel
    bar = max(1, width // len(BARS))
    line = encode_pixels([BARS[(x // bar) % len(BARS)] for x in range(width)], fmt)
    step = max(1, width // (len(BARS) * 16))
    scale = max(2, min(width, height) // 40)
    if fmt is PixelFormat.YUYV:
        step += step % 2
        scale += scale % 2
    shift = ((seq * step) % width) * bpp
    row = (line + line)[shift:shift + width * bpp]
    lines = [bytearray(row) for _ in range(height)]
    black = encode_pixels([(0, 0, 0)] * scale, fmt)
    for pos, ch in enumerate(str(seq)):
        for i, bit in enumerate(DIGIT_BITS[int(ch)]):
            x = 2 * scale + (pos * 4 + i % 3) * scale
            if bit == "0" or x + scale > width:
                continue
            for y in range(2 * scale + (i // 3) * scale,
                           min(height, 2 * scale + (i // 3 + 1) * scale)):
                lines[y][x * bpp:(x + scale) * bpp] = black
    crc = zlib.crc32(bytes(lines[0][HEADER_SIZE:]))
    for ln in lines[1:]:
        crc = zlib.crc32(ln, crc)
    if width * bpp >= HEADER_SIZE:
        lines[0][:HEADER_SIZE] = struct.pack("<IIII", MAGIC, seq & 0xFFFF_FFFF, crc,
                                             geometry_word(width, height, fmt))
    return b"".join(bytes(ln) for ln in lines)


@pytest.mark.parametrize(("fmt", "width", "height", "seq", "digest"), DIGESTS)
def test_frames_match_their_recorded_digests(fmt: str, width: int, height: int, seq: int,
                                             digest: str) -> None:
    frame = render_frame_bytes(width, height, PixelFormat[fmt], seq)
    assert len(frame) == width * height * PixelFormat[fmt].bytes_per_pixel
    assert hashlib.sha256(frame).hexdigest()[:16] == digest
    assert b"".join(render_frame(width, height, PixelFormat[fmt], seq)) == frame


@settings(max_examples=60, deadline=None)
@given(width=st.integers(1, 160).map(lambda w: 2 * w), height=st.integers(1, 120),
       fmt=st.sampled_from(list(PixelFormat)), seq=st.integers(0, 10**7))
def test_frames_equal_the_reference_renderer(width: int, height: int, fmt: PixelFormat,
                                             seq: int) -> None:
    frame = render_frame_bytes(width, height, fmt, seq)
    assert frame == reference_frame(width, height, fmt, seq)
    if width * fmt.bytes_per_pixel >= HEADER_SIZE:
        assert check_frame(frame, width, height, fmt, expect_seq=seq).ok


def test_cold_and_warm_caches_give_the_same_frames() -> None:
    warm = [render_frame_bytes(320, 200, PixelFormat.YUYV, seq) for seq in range(40, 44)]
    testpattern.clear_caches()
    assert [render_frame_bytes(320, 200, PixelFormat.YUYV, seq)
            for seq in range(40, 44)] == warm
    assert len(set(warm)) == 4


def test_scroll_period_returns_to_the_same_bars() -> None:
    period = testpattern.scroll_period(640, PixelFormat.RGB888)
    assert period == 128
    a = render_frame(640, 480, PixelFormat.RGB888, 3)
    b = render_frame(640, 480, PixelFormat.RGB888, 3 + period)
    c = render_frame(640, 480, PixelFormat.RGB888, 4)
    assert a[-1] == b[-1] != c[-1]  # the last line has no digits: bars only


@settings(max_examples=50, deadline=None)
@given(a=st.binary(max_size=300), b=st.binary(max_size=300), count=st.integers(0, 40))
def test_crc_algebra_agrees_with_zlib(a: bytes, b: bytes, count: int) -> None:
    assert testpattern._crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)
    assert testpattern._crc32_repeat(zlib.crc32(b), len(b), count) == zlib.crc32(b * count)
