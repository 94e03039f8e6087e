"""Debian's armmp Linux on board ``camsoc``: amba-clcd drives the PL111, fbcon draws into it.

The board's panel node lets Linux's fbdev ``amba-clcd`` driver probe; it takes the
framebuffer from ``dma_alloc_coherent`` and programs its *bus* address, which on
``dispbus`` is the RAM alias at 0xC0000000. The display model scans it out through
that view, so a picture of the console proves the whole chain: DT, driver, DMA
address translation and scan-out.

``--cma cma=16M`` publishes a pool Linux takes as its default CMA area, so the
framebuffer lands in a region the DMA checker knows; ``--dma-policy reserved``
accepts it there (Linux allocates without our CMA service, so no chunk is live).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from emu.devices.display.pl111 import Pl111
from emu.devices.display.render import decode_frame
from emu.loaders.initramfs import READY_MARKER
from emu.machine import Machine
from emu.system import System
from tests.conftest import need_image
from tests.images.test_linux import boot

pytestmark = [pytest.mark.emulator, pytest.mark.images, pytest.mark.slow]

APPEND = "console=tty0 console=ttyAMA0 cryptomgr.notests=1"
#: dispbus: bus 0xC0000000 is RAM 0x40000000
ALIAS_OFFSET = 0x8000_0000
WIDTH, HEIGHT = 640, 480
#: fbcon's 8x16 font on a 640x480 panel
CELL_W, CELL_H = 8, 16
TEXT = "HELLO"


def lit(image: Image.Image) -> list[tuple[int, int]]:
    """Coordinates of every pixel that is not black."""
    rgb = image.convert("RGB")
    w, h = rgb.size
    px = rgb.load()
    assert px is not None
    return [(x, y) for y in range(h) for x in range(w) if px[x, y] != (0, 0, 0)]


def boot_cli(tmp_path: Path, cma: str | None, policy: str,
             commands: tuple[str, ...]) -> dict[str, Any]:
    """``emu run --board camsoc`` to the shell with ``--png``; the JSON result."""
    return boot(tmp_path, APPEND, cma, commands, board="camsoc",
                extra=("--dma-policy", policy, "--png", str(tmp_path / "png")))


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    tmp = tmp_path_factory.mktemp("camsoc-cli")
    doc = boot_cli(tmp, "cma=16M", "reserved",
                   ("cat /proc/fb", "echo HELLO > /dev/tty0"))
    return doc, tmp / "png"


def test_boots_on_camsoc_and_probes_the_clcd(cli_run: tuple[dict[str, Any], Path]) -> None:
    doc, _ = cli_run
    console = doc["console"].replace("\r", "")
    assert READY_MARKER in console
    assert "clcd-pl11x 10100000.clcd: PL111 designer 41 rev2 at 0x10100000" in console
    assert f"clcd@0 hardware, {WIDTH}x{HEIGHT}@59 display" in console
    assert "switching to colour frame buffer device 80x30" in console
    assert "0 CLCD FB" in console  # /proc/fb
    assert doc["result"]["reason"] == "poweroff"
    assert doc["exit_code"] == 0


def test_framebuffer_is_read_through_the_alias(cli_run: tuple[dict[str, Any], Path]) -> None:
    doc, _ = cli_run
    info = doc["system"]["displays"]["clcd"]
    assert info["enabled"]
    assert info["powered"]
    assert (info["width"], info["height"], info["bpp"]) == (WIDTH, HEIGHT, 32)
    assert info["bus_base"] != info["phys_base"]
    assert info["bus_base"] - info["phys_base"] == ALIAS_OFFSET
    assert 0xC000_0000 <= info["bus_base"] < 0xE000_0000
    # dma_alloc_coherent took it from the pool we published as the default CMA area
    (region,) = doc["system"]["cma"]["regions"]
    assert region["base"] <= info["phys_base"] < region["base"] + region["size"]
    assert info["frames"] > 0
    assert info["bus_errors"] == 0
    assert doc["system"]["dma"]["violations"] == []


def test_png_shows_the_console(cli_run: tuple[dict[str, Any], Path]) -> None:
    _, png = cli_run
    with Image.open(png / "display.png") as image:
        assert image.size == (WIDTH, HEIGHT)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is not None
        assert len(colours) >= 2
        # console text all over the screen, not one stray pixel
        points = lit(image)
        assert len(points) > WIDTH * HEIGHT // 100
        assert len({y // CELL_H for _, y in points}) > 10


def test_kernel_cma_area_is_outside_every_region(tmp_path: Path) -> None:
    """Without a published pool the framebuffer comes from the kernel's own CMA area,
    which the default policy names: the checker does look at the display's fetches."""
    doc = boot_cli(tmp_path, None, "chunks", ("cat /proc/fb",))
    info = doc["system"]["displays"]["clcd"]
    assert info["bus_base"] - info["phys_base"] == ALIAS_OFFSET
    violations = doc["system"]["dma"]["violations"]
    assert violations
    assert {v["master"] for v in violations} == {"clcd"}
    assert {v["verdict"] for v in violations} == {"outside-reserved"}
    assert violations[0]["bus_addr"] == info["bus_base"]


def test_fbcon_draws_what_the_shell_writes() -> None:
    """Two snapshots around a write to /dev/tty0: the screen is cleared and the text drawn."""
    machine = Machine("camsoc")
    machine.load_kernel(need_image("vmlinuz"), host_decompress=True,
                        initrd=need_image("initramfs.cpio.gz"), append=APPEND)
    system = System(machine, "cma=16M", dma_policy="reserved")
    display = system.displays["clcd"]
    assert isinstance(display, Pl111)

    # $((...)) makes the marker appear only in the shell's output, not in the echo
    machine.send("echo $((40+2))A\r", after="# ")
    assert machine.run(until_console="42A", max_seconds=240).reason == "until"
    before = display.snapshot()
    assert before is not None
    assert before.size == (WIDTH, HEIGHT)
    before_lit = lit(before)
    assert len({y // CELL_H for _, y in before_lit}) > 10  # the kernel log fills the screen

    # the scan-out is the RAM at the physical address behind the bus address
    info = display.framebuffer_info()
    assert info["bus_base"] == info["phys_base"] + ALIAS_OFFSET
    raw = machine.bus.read(info["phys_base"], info["size"])
    assert decode_frame(raw, WIDTH, HEIGHT, display.scan_format()).tobytes() \
        == before.tobytes()

    machine.send(f"echo -e '\\033[2J\\033[H{TEXT}' > /dev/tty0; echo $((40+3))B\r",
                 after="# ")
    assert machine.run(until_console="43B", max_seconds=60).reason == "until"
    after = display.snapshot()
    assert after is not None
    after_lit = lit(after)
    assert after_lit != before_lit
    # cleared screen: only the text's cells (and the cursor on the next line) are lit
    assert after_lit
    assert max(y for _, y in after_lit) < 2 * CELL_H
    text_row = [(x, y) for x, y in after_lit if y < CELL_H]
    assert text_row
    assert max(x for x, _ in text_row) < CELL_W * len(TEXT)
    # every letter of the text has ink in its own cell
    assert {x // CELL_W for x, _ in text_row} == set(range(len(TEXT)))

    machine.send("poweroff -f\r", after="# ")
    end = machine.run(max_seconds=60)
    assert end.reason == "poweroff"
    assert system.checker.violations == []
    assert display.bus_errors == []
