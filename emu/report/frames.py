"""Captured camera frames as PNG images."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from emu.atomic import open_atomic
from emu.devices.dma.testpattern import PixelFormat, decode_pixels
from emu.errors import EmuError


def frame_image(data: bytes, width: int, height: int, fmt: PixelFormat) -> Image.Image:
    """Decode one packed frame (``width * bpp`` bytes per line) to an RGB image."""
    line = width * fmt.bytes_per_pixel
    if len(data) < line * height:
        raise EmuError(f"frame data is {len(data)} bytes, {line * height} expected")
    if fmt is PixelFormat.RGB888:
        return Image.frombytes("RGB", (width, height), data[: line * height], "raw", "BGR")
    if fmt is PixelFormat.XRGB8888:
        return Image.frombytes("RGB", (width, height), data[: line * height], "raw", "BGRX")
    img = Image.new("RGB", (width, height))
    pixels: list[tuple[int, int, int]] = []
    for y in range(height):
        pixels += decode_pixels(data[y * line: (y + 1) * line], width, fmt)
    img.putdata(pixels)
    return img


def save_frame(path: Path, data: bytes, width: int, height: int, fmt: PixelFormat) -> Path:
    """Write one frame as PNG; errors name the file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        image = frame_image(data, width, height, fmt)
        with open_atomic(path) as fh:
            image.save(fh, format="PNG")
    except OSError as exc:
        raise EmuError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path
