"""The memory map over time: every chunk's lifetime inside its region.

One panel per CMA region: the horizontal axis is virtual time, the vertical axis
the physical address inside the region; each chunk is a bar from its allocation
to its release (or the end of the run), coloured by owning device.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from emu.atomic import open_atomic
from emu.errors import EmuError
from emu.report.memmap import PALETTE

WIDTH = 1200
PANEL = 160
MARGIN = 60


@dataclass(frozen=True)
class Lifetime:
    """One chunk from ``start`` to ``end`` (ticks; None: still live at the end)."""

    region: str
    phys: int
    size: int
    device: str
    start: int
    end: int | None


def render_timeline(regions: list[tuple[str, int, int]], lifetimes: list[Lifetime],
                    end_time: int, hz: int, title: str = "") -> Image.Image:
    """``regions`` are ``(name, base, size)``; times are virtual ticks at ``hz``."""
    owners = sorted({lt.device for lt in lifetimes})
    colour = {o: PALETTE[i % len(PALETTE)] for i, o in enumerate(owners)}
    height = MARGIN + len(regions) * (PANEL + 30) + 20 * (len(owners) + 1)
    img = Image.new("RGB", (WIDTH, max(height, 120)), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    draw.text((10, 6), title or "chunks over virtual time", fill=(0, 0, 0), font=font)
    span_t = max(end_time, 1)
    plot_w = WIDTH - MARGIN - 20
    y = MARGIN
    for name, base, size in regions:
        draw.rectangle((MARGIN, y, MARGIN + plot_w, y + PANEL), outline=(0, 0, 0),
                       fill=(248, 248, 248))
        draw.text((4, y), name, fill=(0, 0, 0), font=font)
        draw.text((4, y + 12), f"{base:08x}", fill=(90, 90, 90), font=font)
        draw.text((4, y + PANEL - 12), f"{base + size:08x}", fill=(90, 90, 90), font=font)
        for lt in lifetimes:
            if lt.region != name:
                continue
            x0 = MARGIN + lt.start * plot_w / span_t
            x1 = MARGIN + (lt.end if lt.end is not None else end_time) * plot_w / span_t
            y0 = y + (lt.phys - base) * PANEL / size
            y1 = y + (lt.phys + lt.size - base) * PANEL / size
            draw.rectangle((x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)), fill=colour[lt.device],
                           outline=(0, 0, 0))
        y += PANEL + 30
    seconds = end_time / hz if hz else 0.0
    draw.text((MARGIN, y - 26), "0 s", fill=(0, 0, 0), font=font)
    draw.text((MARGIN + plot_w - 80, y - 26), f"{seconds:.3f} s", fill=(0, 0, 0), font=font)
    for owner in owners:
        draw.rectangle((MARGIN, y + 3, MARGIN + 10, y + 13), fill=colour[owner])
        draw.text((MARGIN + 16, y), owner, fill=(0, 0, 0), font=font)
        y += 20
    return img


def save_timeline(path: Path, regions: list[tuple[str, int, int]], lifetimes: list[Lifetime],
                  end_time: int, hz: int, title: str = "") -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        image = render_timeline(regions, lifetimes, end_time, hz, title)
        with open_atomic(path) as fh:
            image.save(fh, format="PNG")
    except OSError as exc:
        raise EmuError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path
