"""A picture of physical memory: RAM, the CMA regions, and the chunks with their owners.

One horizontal band per RAM bank, addresses growing to the right; regions are
outlined, chunks filled with one colour per owning device, and a legend lists
each chunk's physical, bus and CPU addresses. Deterministic for the same input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from emu.atomic import open_atomic
from emu.errors import EmuError

WIDTH = 1200
BAND = 70
MARGIN = 20
PALETTE = [(230, 85, 13), (49, 130, 189), (49, 163, 84), (117, 107, 177), (214, 39, 40),
           (140, 86, 75), (227, 119, 194), (127, 127, 127)]


def render_memory_map(ram: list[tuple[int, int]], snapshot: dict[str, Any],
                      title: str = "") -> Image.Image:
    """Draw ``ram`` banks, then each region zoomed in with its chunks.

    ``snapshot`` is shaped like :meth:`cma.core.ContiguousMemory.snapshot`: ``regions``
    (name, base, end, size, flags) and ``chunks`` (phys, size, device, dma_addr,
    cpu_addr, and optionally ``state`` such as "live" or "freed at 0.12 s").
    """
    regions = snapshot.get("regions", [])
    chunks = snapshot.get("chunks", [])
    owners = sorted({str(c.get("device")) for c in chunks})
    colour = {o: PALETTE[i % len(PALETTE)] for i, o in enumerate(owners)}
    legend_lines = 2 + len(regions) + len(chunks)
    bands = len(ram) + len(regions)
    height = MARGIN * 3 + bands * (BAND + 40) + 16 * legend_lines
    img = Image.new("RGB", (WIDTH, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    draw.text((MARGIN, 4), title or "physical memory", fill=(0, 0, 0), font=font)
    y = MARGIN + 10
    span = WIDTH - 2 * MARGIN

    def band(base: int, size: int, label: str, y: int, zoomed: bool) -> None:
        def x(addr: int) -> float:
            return MARGIN + (addr - base) * span / size

        draw.rectangle((MARGIN, y, MARGIN + span, y + BAND), outline=(0, 0, 0),
                       fill=(255, 250, 205) if zoomed else (240, 240, 240))
        draw.text((MARGIN, y + BAND + 2), f"0x{base:08x}", fill=(0, 0, 0), font=font)
        draw.text((MARGIN + span // 2 - 40, y + BAND + 2), label, fill=(0, 0, 0), font=font)
        draw.text((MARGIN + span - 70, y + BAND + 2), f"0x{base + size:08x}", fill=(0, 0, 0),
                  font=font)
        if not zoomed:
            for r in regions:
                if base <= r["base"] < base + size:
                    x0, x1 = x(r["base"]), max(x(r["end"]), x(r["base"]) + 2)
                    draw.rectangle((x0, y + 4, x1, y + BAND - 4), outline=(0, 0, 0),
                                   fill=(255, 250, 205))
                    draw.text((x0 + 2, y + BAND + 14), r["name"], fill=(0, 0, 0), font=font)
        for c in chunks:
            if not base <= c["phys"] < base + size:
                continue
            x0 = x(c["phys"])
            x1 = max(x(c["phys"] + c["size"]), x0 + 1)
            freed = str(c.get("state", "live")) != "live"
            draw.rectangle((x0, y + 12, x1, y + BAND - 12),
                           fill=None if freed else colour[str(c.get("device"))],
                           outline=colour[str(c.get("device"))] if freed else (0, 0, 0))

    for base, size in ram:
        band(base, size, "RAM", y, zoomed=False)
        y += BAND + 40
    for r in regions:
        band(r["base"], r["size"], f"region {r['name']}", y, zoomed=True)
        y += BAND + 40
    draw.text((MARGIN, y), "regions:", fill=(0, 0, 0), font=font)
    y += 16
    for r in regions:
        draw.text((MARGIN, y), f"  {r['name']}: 0x{r['base']:08x}-0x{r['end']:08x} "
                  f"({r['size'] >> 10} KiB, {', '.join(r.get('flags', []))})",
                  fill=(0, 0, 0), font=font)
        y += 16
    draw.text((MARGIN, y), "chunks (physical / bus for the owner / CPU virtual), filled = live "
              "at the end, outlined = freed:", fill=(0, 0, 0), font=font)
    y += 16
    for c in chunks:
        dma = c.get("dma_addr")
        cpu = c.get("cpu_addr")
        owner = str(c.get("device"))
        draw.rectangle((MARGIN, y + 3, MARGIN + 10, y + 13), fill=colour[owner])
        draw.text((MARGIN + 16, y),
                  f"{owner}: phys 0x{c['phys']:08x}  bus "
                  + (f"0x{dma:08x}" if dma is not None else "-")
                  + "  cpu " + (f"0x{cpu:08x}" if cpu is not None else "-")
                  + f"  {c['size'] >> 10} KiB  {c.get('state', 'live')}",
                  fill=(0, 0, 0), font=font)
        y += 16
    return img


def save_memory_map(path: Path, ram: list[tuple[int, int]], snapshot: dict[str, Any],
                    title: str = "") -> Path:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        image = render_memory_map(ram, snapshot, title)
        with open_atomic(path) as fh:
            image.save(fh, format="PNG")
    except OSError as exc:
        raise EmuError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return path
