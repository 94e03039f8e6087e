"""The PL111 CLCD controller at register level, scanning out through a port with a bus offset."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from emu.clock import VirtualClock
from emu.devices.base import DeviceContext, DeviceLog, IrqLine
from emu.devices.display.pl111 import Pl111
from emu.devices.display.render import PixelMode, ScanFormat, decode_frame
from emu.devices.regdoc import refresh
from emu.errors import ConfigurationError
from tests.emu.devices.ramport import WindowPort as RamPort

RAM_PHYS = 0x4000_0000
BUS_OFFSET = 0xC000_0000  # bus = phys - RAM_PHYS + BUS_OFFSET, like the Raspberry Pi alias
RAM_SIZE = 0x0040_0000
FB_PHYS = RAM_PHYS + 0x1_0000
FB_BUS = FB_PHYS - RAM_PHYS + BUS_OFFSET

# Register offsets as the Linux drivers name them (include/linux/amba/clcd-regs.h).
TIM0, TIM1, TIM2, TIM3 = 0x000, 0x004, 0x008, 0x00C
UBAS, LBAS, CNTL, IENB, RIS, MIS, ICR, UCUR, LCUR = (
    0x010, 0x014, 0x018, 0x01C, 0x020, 0x024, 0x028, 0x02C, 0x030)
PALETTE = 0x200

CNTL_LCDEN = 1 << 0
CNTL_TFT = 1 << 5
CNTL_BGR = 1 << 8
CNTL_BEBO = 1 << 9
CNTL_BEPO = 1 << 10
CNTL_PWR = 1 << 11
TIM2_BCD = 1 << 26

FUF, LNBU, VCOMP, MBERROR = 1 << 1, 1 << 2, 1 << 3, 1 << 4


def WindowPort() -> RamPort:
    return RamPort(RAM_PHYS, BUS_OFFSET, RAM_SIZE)



def make_clcd(hz: int = 25_000_000) -> tuple[Pl111, RamPort, IrqLine, VirtualClock]:
    """A PL111 whose virtual clock runs at CLCDCLK by default (one tick per CLCDCLK cycle)."""
    clock = VirtualClock(hz=hz)
    port = WindowPort()
    irq = IrqLine()
    clcd = Pl111(DeviceContext("clcd", clock, [irq], port, DeviceLog("clcd")))
    return clcd, port, irq, clock


def program_mode(clcd: Pl111, hdisplay: int, hsync_start: int, hsync_end: int, htotal: int,
                 vdisplay: int, vsync_start: int, vsync_end: int, vtotal: int,
                 div: int = 1) -> None:
    """Program the timing registers the way Linux's pl111 driver derives them from a mode."""
    clcd.write(TIM0, 4, ((hdisplay // 16 - 1) << 2) | ((hsync_end - hsync_start - 1) << 8)
               | ((hsync_start - hdisplay - 1) << 16) | ((htotal - hsync_end - 1) << 24))
    clcd.write(TIM1, 4, (vdisplay - 1) | ((vsync_end - vsync_start - 1) << 10)
               | ((vsync_start - vdisplay) << 16) | ((vtotal - vsync_end) << 24))
    tim2 = TIM2_BCD if div == 1 else ((div - 2) & 0x1F) | (((div - 2) >> 5) << 27)
    clcd.write(TIM2, 4, tim2 | ((hdisplay - 1) << 16))
    clcd.write(TIM3, 4, 0)


# A small mode: 32 px wide, line = 2 sync + 4 back porch + 32 + 3 front porch = 41 clocks;
# 10 lines, frame = 2 sync + 4 back porch + 10 + 3 front porch = 19 lines = 779 clocks.
SMALL = (32, 35, 37, 41, 10, 13, 15, 19)
SMALL_LINE = 41
SMALL_FRAME = 19 * 41


def setup_small(clcd: Pl111, bpp_mode: int, extra: int = 0, width: int = 32,
                height: int = 10) -> None:
    program_mode(clcd, width, width + 3, width + 5, width + 9, height, height + 3, height + 5,
                 height + 9)
    clcd.write(UBAS, 4, FB_BUS)
    clcd.write(CNTL, 4, CNTL_LCDEN | CNTL_TFT | (bpp_mode << 1) | extra)
    clcd.write(CNTL, 4, CNTL_LCDEN | CNTL_TFT | CNTL_PWR | (bpp_mode << 1) | extra)


def pixels(image: Image.Image) -> list[tuple[int, int, int]]:
    return [image.getpixel((x, y)) for y in range(image.height) for x in range(image.width)]


# identification and reset ---------------------------------------------------------------


def test_primecell_ids_identify_an_arm_pl111_revision_2() -> None:
    clcd, *_ = make_clcd()
    periph = [clcd.read(0xFE0 + 4 * i, 4) for i in range(4)]
    cell = [clcd.read(0xFF0 + 4 * i, 4) for i in range(4)]
    assert periph == [0x11, 0x11, 0x24, 0x00]
    assert cell == [0x0D, 0xF0, 0x05, 0xB1]
    # how Linux's AMBA bus assembles and matches them
    pid = sum((b & 0xFF) << (8 * i) for i, b in enumerate(periph))
    cid = sum((b & 0xFF) << (8 * i) for i, b in enumerate(cell))
    assert cid == 0xB105F00D
    assert pid == 0x0024_1111
    assert pid & 0xFFF == 0x111  # part: PL111, so the PL111 register layout is used
    assert (pid >> 12) & 0xFF == 0x41  # designer: ARM
    assert (pid >> 20) & 0xF == 2  # revision
    assert pid & 0x000F_FFFE == 0x0004_1110  # the amba id table entry of the pl111 drivers
    clcd.write(0xFE0, 4, 0)
    assert clcd.read(0xFE0, 4) == 0x11
    assert "read-only" in clcd.log.guest_errors[-1]


def test_reset_state_is_disabled_and_quiet() -> None:
    clcd, _port, irq, clock = make_clcd()
    for off in (TIM0, TIM1, TIM2, TIM3, UBAS, LBAS, CNTL, IENB, RIS, MIS, UCUR, LCUR):
        assert clcd.read(off, 4) == 0, hex(off)
    assert not irq.level
    assert clock.next_deadline() is None
    assert clcd.snapshot() is None
    assert clcd.log.guest_errors == []


# timing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("tim0", "tim1", "width", "height"), [
    (0x0000_0000, 0x0000_0000, 16, 1),
    (0x0000_009C, 0x0000_01DF, 640, 480),
    (0x0000_00FC, 0x0000_03FF, 1024, 1024),
    (0xFFFF_FFFF, 0x0000_0257, 1024, 600),
])
def test_timing_registers_decode_to_geometry(tim0: int, tim1: int, width: int,
                                             height: int) -> None:
    clcd, *_ = make_clcd()
    clcd.write(TIM0, 4, tim0)
    clcd.write(TIM1, 4, tim1)
    assert (clcd.width, clcd.height) == (width, height)
    assert clcd.read(TIM0, 4) == tim0 & ~3  # bits [1:0] are reserved


def test_vga_mode_programmed_like_linux_gives_60_hz_in_virtual_time() -> None:
    clcd, *_ = make_clcd(hz=100_000_000)
    program_mode(clcd, 640, 656, 752, 800, 480, 490, 492, 525)  # 25.175 MHz VGA, BCD
    assert (clcd.width, clcd.height) == (640, 480)
    assert clcd.line_clocks() == 800
    assert clcd.phase_lines() == (2, 33, 480, 10)
    assert clcd.pixel_clock_hz() == 25_000_000
    assert clcd.frame_period_ticks() == 800 * 525 * 4  # 16.8 ms at 100 ticks per microsecond
    # a divided clock: PCD = 34 (high and low fields) divides CLCDCLK by 36
    program_mode(clcd, 640, 656, 752, 800, 480, 490, 492, 525, div=36)
    assert clcd.read(TIM2, 4) & 0xF800_001F == (1 << 27) | 2
    assert clcd.pixel_clock_divisor() == 36
    assert clcd.frame_period_ticks() == 800 * 525 * 4 * 36


def test_frame_start_latches_bases_and_raises_lnbu_every_period() -> None:
    clcd, _port, irq, clock = make_clcd()
    clock.advance_to(1000)
    clcd.write(IENB, 4, LNBU)
    setup_small(clcd, 6)
    assert clcd.frame_period_ticks() == SMALL_FRAME
    assert clcd.read(UCUR, 4) == 0  # latched at the frame start, not at the write
    clock.advance_to(1000)  # the first frame starts at the enable tick
    assert clcd.read(RIS, 4) & LNBU
    assert irq.level
    assert clcd.read(UCUR, 4) == FB_BUS
    clcd.write(ICR, 4, LNBU)
    assert not irq.level
    clcd.write(UBAS, 4, FB_BUS + 0x8000)  # a page flip: shown from the next frame on
    clock.advance_to(1000 + SMALL_FRAME - 1)
    assert not irq.level
    assert clcd.read(UCUR, 4) == FB_BUS
    clock.advance_to(1000 + SMALL_FRAME)
    assert irq.level
    assert clcd.read(UCUR, 4) == FB_BUS + 0x8000
    clcd.write(ICR, 4, LNBU)
    clock.advance_to(1000 + 10 * SMALL_FRAME)  # one big step still runs each frame
    assert clcd.frame_count == 11
    assert clcd.read(RIS, 4) & LNBU


@pytest.mark.parametrize(("vcomp", "lines"), [(0, 0), (1, 2), (2, 2 + 4), (3, 2 + 4 + 10)])
def test_vertical_compare_fires_at_the_selected_phase(vcomp: int, lines: int) -> None:
    clcd, _port, irq, clock = make_clcd()
    clcd.write(IENB, 4, VCOMP)
    setup_small(clcd, 6, extra=vcomp << 12)
    start = clock.now
    offset = lines * SMALL_LINE
    if offset:
        clock.advance_to(start + offset - 1)
        assert not clcd.read(RIS, 4) & VCOMP
        assert not irq.level
    clock.advance_to(start + offset)
    assert clcd.read(RIS, 4) & VCOMP
    assert irq.level
    clcd.write(ICR, 4, VCOMP)
    clock.advance_to(start + SMALL_FRAME + offset - 1)
    assert not clcd.read(RIS, 4) & VCOMP
    clock.advance_to(start + SMALL_FRAME + offset)
    assert clcd.read(RIS, 4) & VCOMP


def test_disabling_stops_the_timing_generator() -> None:
    clcd, _port, irq, clock = make_clcd()
    clcd.write(IENB, 4, LNBU | VCOMP)
    setup_small(clcd, 6, extra=3 << 12)
    clock.advance_to(clock.now)
    clcd.write(CNTL, 4, clcd.read(CNTL, 4) & ~CNTL_PWR)
    clcd.write(CNTL, 4, clcd.read(CNTL, 4) & ~CNTL_LCDEN)
    clcd.write(ICR, 4, 0x1E)
    assert clock.next_deadline() is None
    clock.advance_by(100 * SMALL_FRAME)
    assert clcd.read(RIS, 4) == 0
    assert not irq.level
    assert clcd.frame_count == 1


@settings(max_examples=30, deadline=None)
@given(tim0=st.integers(0, 2**32 - 1), tim1=st.integers(0, 2**32 - 1),
       pcd=st.integers(0, 1023), frames=st.integers(1, 4))
def test_one_lnbu_and_one_vcomp_per_frame_for_any_timing(tim0: int, tim1: int, pcd: int,
                                                         frames: int) -> None:
    clcd, _port, _irq, clock = make_clcd()
    clcd.write(TIM0, 4, tim0)
    clcd.write(TIM1, 4, tim1)
    clcd.write(TIM2, 4, (pcd & 0x1F) | ((pcd >> 5) << 27))
    clcd.write(UBAS, 4, FB_BUS)
    clcd.write(CNTL, 4, CNTL_LCDEN | CNTL_TFT | (5 << 1) | (2 << 12))
    period = clcd.frame_period_ticks()
    lines = sum(clcd.phase_lines())
    assert period == lines * clcd.line_clocks() * (pcd + 2)
    start = clock.now
    seen = {"lnbu": 0, "vcomp": 0}
    while clock.now < start + frames * period:
        clock.advance_to(clock.next_deadline() or 0)
        ris = clcd.read(RIS, 4)
        seen["lnbu"] += bool(ris & LNBU)
        seen["vcomp"] += bool(ris & VCOMP)
        clcd.write(ICR, 4, ris)
    # frames + 1 frame starts in [start, start + frames * period]
    assert seen["lnbu"] == frames + 1
    assert seen["vcomp"] == frames
    assert clcd.frame_count == frames + 1


# interrupt registers ------------------------------------------------------------------------


def test_imsc_ris_mis_icr_semantics() -> None:
    clcd, _port, irq, clock = make_clcd()
    setup_small(clcd, 6)
    clock.advance_to(clock.now)
    assert clcd.read(RIS, 4) == LNBU | VCOMP  # raw status regardless of the mask
    assert clcd.read(MIS, 4) == 0
    assert not irq.level
    clcd.write(IENB, 4, 0xFFFF_FFFF)
    assert clcd.read(IENB, 4) == 0x1E  # only bits [4:1] exist
    assert clcd.read(MIS, 4) == LNBU | VCOMP
    assert irq.level
    clcd.write(IENB, 4, VCOMP)
    assert clcd.read(MIS, 4) == VCOMP
    assert irq.level
    clcd.write(ICR, 4, LNBU)  # clears only what is written
    assert clcd.read(RIS, 4) == VCOMP
    assert irq.level
    assert clcd.read(ICR, 4) == 0  # write-only
    clcd.write(RIS, 4, 0xFFFF_FFFF)  # read-only: ignored
    assert clcd.read(RIS, 4) == VCOMP
    assert "read-only" in clcd.log.guest_errors[-1]
    clcd.write(ICR, 4, VCOMP)
    assert clcd.read(RIS, 4) == 0
    assert not irq.level
    assert clcd.read(RIS, 4) & FUF == 0  # memory always keeps up


@settings(max_examples=40, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["imsc", "icr", "step"]),
                              st.integers(0, 0x3F)), max_size=25))
def test_irq_line_always_follows_mis(ops: list[tuple[str, int]]) -> None:
    clcd, _port, irq, clock = make_clcd()
    setup_small(clcd, 6, extra=1 << 12)
    for op, value in ops:
        if op == "imsc":
            clcd.write(IENB, 4, value)
        elif op == "icr":
            clcd.write(ICR, 4, value)
        else:
            clock.advance_by(value * 37)
        ris, imsc, mis = clcd.read(RIS, 4), clcd.read(IENB, 4), clcd.read(MIS, 4)
        assert mis == ris & imsc
        assert irq.level == bool(mis)


# scan-out -------------------------------------------------------------------------------------


def expand(value: int, bits: int) -> int:
    """A ``bits``-wide channel (4..8) widened to 8 bits by replicating its top bits."""
    return (value << (8 - bits)) | (value >> (2 * bits - 8))


def test_snapshot_xrgb8888_as_linux_programs_it() -> None:
    clcd, port, *_ = make_clcd()
    colours = [((x * 8) & 0xFF, (y * 25) & 0xFF, (x * y) & 0xFF) for y in range(10)
               for x in range(32)]
    port.put(FB_PHYS, b"".join(struct.pack("<I", 0xAB00_0000 | r << 16 | g << 8 | b)
                               for r, g, b in colours))
    setup_small(clcd, 5, extra=CNTL_BGR)  # DRM_FORMAT_XRGB8888: LCDBPP24 | BGR
    image = clcd.snapshot()
    assert image is not None
    assert image.mode == "RGB"
    assert image.size == (32, 10)
    assert pixels(image) == colours
    assert port.reads[-1] == (FB_BUS, 32 * 10 * 4)
    # without BGR the same words are XBGR8888: red in the low byte
    clcd.write(CNTL, 4, clcd.read(CNTL, 4) & ~CNTL_BGR)
    image = clcd.snapshot()
    assert image is not None
    assert pixels(image) == [(b, g, r) for r, g, b in colours]


def test_snapshot_rgb565_and_bgr565() -> None:
    clcd, port, *_ = make_clcd()
    values = [0xF800, 0x07E0, 0x001F, 0xFFFF, 0x0000, 0x8410, 0x0821, 0x1234] * 40
    port.put(FB_PHYS, struct.pack(f"<{len(values)}H", *values))
    setup_small(clcd, 6, extra=CNTL_BGR)  # DRM_FORMAT_RGB565: red in the top bits
    image = clcd.snapshot()
    assert image is not None
    got = pixels(image)
    assert got[:5] == [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)]
    assert got[5] == (132, 130, 132)  # 0b10000 / 0b100000 / 0b10000 widened by replication
    for v, (r, g, b) in zip(values, got, strict=True):
        assert (r >> 3, g >> 2, b >> 3) == (v >> 11, (v >> 5) & 0x3F, v & 0x1F)
        assert (r, g, b) == (expand(v >> 11, 5), expand((v >> 5) & 0x3F, 6),
                             expand(v & 0x1F, 5))
    clcd.write(CNTL, 4, clcd.read(CNTL, 4) & ~CNTL_BGR)  # BGR565: red in the low bits
    image = clcd.snapshot()
    assert image is not None
    assert pixels(image)[:3] == [(0, 0, 255), (0, 255, 0), (255, 0, 0)]
    assert clcd.framebuffer_info()["format"] == "BGR565"


def test_snapshot_1555_ignores_intensity_and_444() -> None:
    clcd, port, *_ = make_clcd()
    values = [0x001F, 0x03E0, 0x7C00, 0x8000, 0xFFFF, 0x0421] * 53 + [0, 0]
    port.put(FB_PHYS, struct.pack(f"<{len(values)}H", *values))
    setup_small(clcd, 4)  # 16 bpp 1:5:5:5, XBGR1555
    image = clcd.snapshot()
    assert image is not None
    assert pixels(image)[:6] == [(255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 0, 0),
                                 (255, 255, 255), (8, 8, 8)]
    clcd.write(CNTL, 4, clcd.read(CNTL, 4) | CNTL_BGR)  # XRGB1555
    image = clcd.snapshot()
    assert image is not None
    assert pixels(image)[:3] == [(0, 0, 255), (0, 255, 0), (255, 0, 0)]
    values = [0x000F, 0x00F0, 0x0F00, 0xF000, 0x0FFF, 0x0123] * 53 + [0, 0]
    port.put(FB_PHYS, struct.pack(f"<{len(values)}H", *values))
    clcd.write(CNTL, 4, CNTL_LCDEN | CNTL_TFT | (7 << 1))  # 12 bpp 4:4:4, XBGR4444
    image = clcd.snapshot()
    assert image is not None
    assert pixels(image)[:6] == [(255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 0, 0),
                                 (255, 255, 255), (0x33, 0x22, 0x11)]
    assert clcd.framebuffer_info()["format"] == "XBGR4444"


def test_bebo_puts_pixel_zero_in_the_high_half_of_each_word() -> None:
    clcd, port, *_ = make_clcd()
    values = [0x001F, 0x07E0] * 160  # LE memory: red, green, red, green...
    port.put(FB_PHYS, struct.pack(f"<{len(values)}H", *values))
    setup_small(clcd, 6, extra=CNTL_BEBO)
    image = clcd.snapshot()
    assert image is not None
    assert pixels(image)[:4] == [(0, 255, 0), (255, 0, 0), (0, 255, 0), (255, 0, 0)]


def write_palette(clcd: Pl111, entries: list[int]) -> None:
    """Two 16-bit entries per word, even entry in the low half (as amba-clcd writes them)."""
    padded = entries + [0] * (len(entries) % 2)
    for i in range(0, len(padded), 2):
        clcd.write(PALETTE + 2 * i, 4, padded[i] | padded[i + 1] << 16)


def test_snapshot_8bpp_palettised() -> None:
    clcd, port, *_ = make_clcd()
    palette = [(i & 0x1F) | ((i >> 2) & 0x1F) << 5 | ((255 - i) >> 3) << 10 for i in range(256)]
    palette[1] = 0x001F  # red (BGR clear)
    palette[2] = 0x8000 | 0x03E0  # green, intensity bit set
    palette[255] = 0x7C00  # blue
    write_palette(clcd, palette)
    assert clcd.read(PALETTE, 4) == palette[0] | palette[1] << 16
    indices = bytes((x + 7 * y) & 0xFF for y in range(10) for x in range(32))
    port.put(FB_PHYS, bytes([1, 2, 255, 0]) + indices[4:])
    setup_small(clcd, 3)
    image = clcd.snapshot()
    assert image is not None
    got = pixels(image)
    assert got[:3] == [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    for i, (r, g, b) in zip(indices[4:], got[4:], strict=True):
        e = palette[i]
        assert (r, g, b) == (expand(e & 0x1F, 5), expand((e >> 5) & 0x1F, 5),
                             expand((e >> 10) & 0x1F, 5))
    clcd.write(CNTL, 4, clcd.read(CNTL, 4) | CNTL_BGR)
    image = clcd.snapshot()
    assert image is not None
    assert pixels(image)[:3] == [(0, 0, 255), (0, 255, 0), (255, 0, 0)]
    assert clcd.framebuffer_info()["format"] == "C8"


@pytest.mark.parametrize(("extra", "order"), [
    (0, [0, 1, 2, 3, 4, 5, 6, 7]),  # LBLP: pixel 0 in bits [3:0] of byte 0
    (CNTL_BEPO, [1, 0, 3, 2, 5, 4, 7, 6]),  # LBBP: bytes in order, high nibble first
    (CNTL_BEBO | CNTL_BEPO, [7, 6, 5, 4, 3, 2, 1, 0]),  # BBBP: pixel 0 in bits [31:28]
    (CNTL_BEBO, [6, 7, 4, 5, 2, 3, 0, 1]),  # BBLP: byte 3 first, low nibble first
])
def test_4bpp_pixel_order_follows_bebo_and_bepo(extra: int, order: list[int]) -> None:
    clcd, port, *_ = make_clcd()
    # palette entry n is grey level n (5-bit), so a pixel's colour names its nibble
    write_palette(clcd, [n | n << 5 | n << 10 for n in range(16)])
    # the word 0x76543210: nibble k (bits [4k+3:4k]) holds the value k
    port.put(FB_PHYS, struct.pack("<I", 0x7654_3210) * (32 * 10 // 8))
    setup_small(clcd, 2, extra=extra)
    image = clcd.snapshot()
    assert image is not None
    assert [r for r, _g, _b in pixels(image)[:8]] == [expand(n, 5) for n in order]


def test_1bpp_frame_of_whole_words() -> None:
    clcd, port, *_ = make_clcd()
    write_palette(clcd, [0x0000, 0x7FFF])
    port.put(FB_PHYS, bytes([0b0000_0101, 0xFF, 0x00, 0x80]) * 10)  # 32 px per line
    setup_small(clcd, 0)
    image = clcd.snapshot()
    assert image is not None
    assert port.reads[-1] == (FB_BUS, 40)
    row = [r // 255 for r, _g, _b in pixels(image)[:32]]
    assert row == [1, 0, 1, 0, 0, 0, 0, 0] + [1] * 8 + [0] * 8 + [0] * 7 + [1]


@settings(max_examples=25, deadline=None)
@given(words=st.lists(st.integers(0, 2**32 - 1), min_size=8, max_size=8),
       mode=st.sampled_from([PixelMode.BPP16_1555, PixelMode.BPP16_565, PixelMode.BPP12_444,
                             PixelMode.BPP24]), bgr=st.booleans())
def test_direct_colour_channels_keep_their_raw_bits(words: list[int], mode: PixelMode,
                                                    bgr: bool) -> None:
    data = struct.pack("<8I", *words)
    fmt = ScanFormat(mode, bgr=bgr)
    width = 16 if mode is not PixelMode.BPP24 else 8
    image = decode_frame(data, width, 1, fmt)
    fields = {PixelMode.BPP16_1555: ((0, 5), (5, 5), (10, 5)),
              PixelMode.BPP16_565: ((0, 5), (5, 6), (11, 5)),
              PixelMode.BPP12_444: ((0, 4), (4, 4), (8, 4)),
              PixelMode.BPP24: ((0, 8), (8, 8), (16, 8))}[mode]
    step = 32 if mode is PixelMode.BPP24 else 16
    stream = int.from_bytes(data, "little")
    for x in range(width):
        value = (stream >> (x * step)) & ((1 << step) - 1)
        raw = [(value >> lsb) & ((1 << w) - 1) for lsb, w in fields]
        if bgr:
            raw.reverse()
        got = image.getpixel((x, 0))
        assert [c >> (8 - w) for c, (_l, w) in zip(got, fields, strict=True)] == raw


def test_decode_refuses_a_short_buffer() -> None:
    with pytest.raises(ConfigurationError, match="0x280"):
        decode_frame(bytes(16), 32, 10, ScanFormat(PixelMode.BPP16_565))


# bus errors --------------------------------------------------------------------------------


def test_physical_address_instead_of_bus_address_is_a_bus_error() -> None:
    clcd, port, irq, clock = make_clcd()
    port.put(FB_PHYS, b"\xFF" * 0x1000)
    clcd.write(IENB, 4, MBERROR)
    setup_small(clcd, 6)
    clcd.write(UBAS, 4, FB_PHYS)  # the classic bug: phys where the bus address belongs
    assert clcd.snapshot() is None
    assert clcd.read(RIS, 4) & MBERROR
    assert irq.level
    assert port.refused == [(FB_PHYS, 32 * 10 * 2)]
    assert port.reads == []  # nothing was read anywhere
    assert "0x40010000" in clcd.log.guest_errors[-1]
    info = clcd.framebuffer_info()
    assert info["bus_base"] == FB_PHYS
    assert info["phys_base"] is None
    # the per-frame fetch fails too: MBERROR each frame, logged once
    clcd.write(ICR, 4, MBERROR)
    clock.advance_to(clock.now)
    assert clcd.read(RIS, 4) & MBERROR
    clcd.write(ICR, 4, MBERROR)
    clock.advance_by(SMALL_FRAME)
    assert clcd.read(RIS, 4) & MBERROR
    errors = [e for e in clcd.log.guest_errors if "fetch" in e]
    assert len(errors) == 2  # the snapshot and the first frame fetch
    assert len(clcd.bus_errors) == 2


def test_frame_crossing_the_end_of_the_window_is_refused() -> None:
    clcd, port, irq, clock = make_clcd()
    clcd.write(IENB, 4, MBERROR)
    setup_small(clcd, 5)
    last = BUS_OFFSET + RAM_SIZE - 0x100  # 0x500 bytes of frame do not fit
    clcd.write(UBAS, 4, last)
    clock.advance_to(clock.now)
    assert irq.level
    assert port.refused == [(last, 0x500)]
    assert clcd.snapshot() is None


def test_good_frames_are_fetched_once_per_base() -> None:
    clcd, port, irq, clock = make_clcd()
    clcd.write(IENB, 4, MBERROR)
    setup_small(clcd, 6)
    clock.advance_by(5 * SMALL_FRAME)
    assert not irq.level
    assert port.reads == [(FB_BUS, 640)]
    assert clcd.bus_errors == []


# host side ----------------------------------------------------------------------------------


def test_framebuffer_info_gives_all_three_numbers_the_host_needs() -> None:
    clcd, *_ = make_clcd()
    setup_small(clcd, 5, extra=CNTL_BGR)
    info = clcd.framebuffer_info()
    assert info["bus_base"] == 0xC001_0000
    assert info["phys_base"] == 0x4001_0000
    assert (info["width"], info["height"], info["bpp"]) == (32, 10, 32)
    assert info["format"] == "XRGB8888"
    assert info["size"] == 32 * 10 * 4
    assert info["enabled"] is True
    assert info["powered"] is True
    assert info["frame_period_ticks"] == SMALL_FRAME
    assert clcd.describe()["framebuffer"] == info


def test_save_png_round_trips_the_pixels(tmp_path: Path) -> None:
    clcd, port, *_ = make_clcd()
    values = [(i * 2654435761) & 0xFFFF for i in range(320)]
    port.put(FB_PHYS, struct.pack("<320H", *values))
    setup_small(clcd, 6, extra=CNTL_BGR)
    target = tmp_path / "frame.png"
    image = clcd.save_png(str(target))
    assert image is not None
    with Image.open(target) as saved:
        assert saved.format == "PNG"
        assert pixels(saved.convert("RGB")) == pixels(image)
    clcd.write(CNTL, 4, 0)
    missing = tmp_path / "none.png"
    assert clcd.save_png(str(missing)) is None
    assert not missing.exists()


# guest mistakes and unmodelled features ---------------------------------------------------------


def test_unaligned_base_is_logged_and_truncated() -> None:
    clcd, *_ = make_clcd()
    clcd.write(UBAS, 4, FB_BUS | 2)
    assert clcd.read(UBAS, 4) == FB_BUS
    assert "not word aligned" in clcd.log.guest_errors[-1]


def test_unmodelled_features_are_logged_as_unimplemented() -> None:
    clcd, *_ = make_clcd()
    clcd.write(0xC00, 4, 1)  # cursor enable
    clcd.write(TIM3, 4, 1 << 16)  # line-end enable
    clcd.write(CNTL, 4, CNTL_LCDEN | (1 << 7))  # dual STN panel
    text = " ".join(clcd.log.unimplemented)
    for what in ("cursor", "LEE", "STN", "dual panel"):
        assert what in text
    assert clcd.read(0xC00, 4) == 1
    assert clcd.log.guest_errors == []


def test_docs_register_table_is_current() -> None:
    doc = Path(__file__).resolve().parents[3] / "docs" / "display.md"
    text = doc.read_text(encoding="utf-8")
    assert "<!-- registers:pl111:begin -->\n| offset" in text
    stale = "docs/display.md is stale: run scripts/gen-headers"
    assert refresh(text, {"pl111": Pl111}) == text, stale


def test_registered_for_its_compatible() -> None:
    from emu.devices.registry import device_class_for

    assert device_class_for(["arm,pl111", "arm,primecell"]) is Pl111


@pytest.mark.emulator
def test_scan_out_through_a_real_bus_view_with_the_alias_window() -> None:
    from emu.bus import Bus
    from emu.cpu.core import Cpu
    from emu.dt.dmamap import DmaWindow

    clock = VirtualClock(hz=25_000_000)
    bus = Bus(Cpu().uc, clock)
    bus.add_ram("ram", RAM_PHYS, 0x0100_0000)
    view = bus.view("/soc/dispbus@10100000/clcd@0",
                    [DmaWindow(cpu_start=RAM_PHYS, dma_start=BUS_OFFSET, size=0x0100_0000)])
    irq = IrqLine()
    clcd = Pl111(DeviceContext("clcd", clock, [irq], view, DeviceLog("clcd")))
    colours = [(x * 7 & 0xFF, y * 20, 0x5A) for y in range(10) for x in range(32)]
    bus.write(FB_PHYS, b"".join(struct.pack("<I", r << 16 | g << 8 | b) for r, g, b in colours))
    clcd.write(IENB, 4, MBERROR)
    setup_small(clcd, 5, extra=CNTL_BGR)
    clock.advance_by(3 * SMALL_FRAME)
    assert not irq.level
    image = clcd.snapshot()
    assert image is not None
    assert pixels(image) == colours
    assert clcd.framebuffer_info()["phys_base"] == FB_PHYS
    clcd.write(UBAS, 4, FB_PHYS)  # a physical address where the bus address belongs
    clock.advance_by(SMALL_FRAME)
    assert irq.level
    refused = bus.dma_log.refused()
    assert [(r.bus, r.size, r.access) for r in refused] == [(FB_PHYS, 32 * 10 * 4, "read")]
    assert bus.dma_log.writes() == []  # a display only reads
