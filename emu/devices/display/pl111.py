"""ARM PrimeCell PL111 colour LCD controller ("arm,pl111").

Interface:
  MMIO      0x1000 bytes, registers below (32-bit accesses); the PL111 layout
            (LCDControl at 0x018, LCDIMSC at 0x01C), PrimeCell ID 0x00241111
  IRQ       one output (``ctx.irqs[0]``): high while LCDRIS & LCDIMSC (level)
  DMA       one master port: the framebuffer is read through the controller's
            bus view, so LCDUPBASE holds a *bus* address (``dma_addr_t``)
  Clock     CLCDCLK (``clcdclk_hz``, 25 MHz by default) divided per LCDTiming2
            (PCD + 2, or 1 with BCD) is the pixel clock; one frame lasts
            (HSW+1 + HBP+1 + 16*(PPL+1) + HFP+1) x (VSW+1 + VBP + LPP+1 + VFP)
            pixel clocks of *virtual* time

While LcdEn is set a frame starts every frame period. At the start of a frame
(the start of vertical sync) LCDUPBASE/LCDLPBASE are copied into
LCDUPCURR/LCDLPCURR and the next-base-update interrupt (LNBU) is raised; the
vertical compare interrupt (VComp) is raised at the start of the phase
LcdVComp selects (vertical sync, back porch, active video, front porch). The
frame is then fetched through the DMA port: a fetch the bus refuses raises the
master bus error interrupt (MBERROR) every frame it is tried (logged once per
base address and size); nothing outside the view is read. The host takes a
picture with :meth:`Pl111.snapshot` (decoding in :mod:`emu.devices.display.render`).

Modelled: timing decode, the 1/2/4/8 bpp palettised and 12/15/16/24 bpp
direct-colour TFT formats with BGR, BEBO and BEPO, the palette, the interrupts.
FIFO underflow (FUF) is never raised: memory always keeps up. Logged as
unimplemented: STN panels (LcdTFT clear: decoded as TFT, no grey-scaler),
dual-panel mode (only the upper panel is shown), line-end signal (LEE),
CLKSEL (CLCDCLK is always the source), and the hardware cursor (its registers
store values but nothing is drawn).
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from emu.clock import Event
from emu.devices.base import Access, Device, DeviceContext, Field, IrqLine, Register
from emu.devices.display.render import PixelMode, ScanFormat, decode_frame, save_png
from emu.errors import ConfigurationError

DEFAULT_CLCDCLK_HZ = 25_000_000

PERIPH_ID = (0x11, 0x11, 0x24, 0x00)  # part 0x111, designer 0x41 (ARM), revision 2
CELL_ID = (0x0D, 0xF0, 0x05, 0xB1)

CTRL_LCDEN = 1 << 0
CTRL_BW = 1 << 4
CTRL_TFT = 1 << 5
CTRL_DUAL = 1 << 7
CTRL_BGR = 1 << 8
CTRL_BEBO = 1 << 9
CTRL_BEPO = 1 << 10
CTRL_PWR = 1 << 11

INT_FUF = 1 << 1
INT_LNBU = 1 << 2
INT_VCOMP = 1 << 3
INT_MBERROR = 1 << 4
INT_ALL = INT_FUF | INT_LNBU | INT_VCOMP | INT_MBERROR

VCOMP_PHASES = ("vertical sync", "back porch", "active video", "front porch")

_INT_FIELDS = ("FUF", "LNBU", "VCOMP", "MBERROR")
_INT_DOCS = (
    "FIFO underflow (never raised)",
    "next base address update (every frame start)",
    "vertical compare (phase per LcdVComp)",
    "master bus error (framebuffer fetch refused)",
)


def _int_fields(access: Access) -> tuple[Field, ...]:
    return tuple(Field(name, 1 + i, 1, access, doc=doc)
                 for i, (name, doc) in enumerate(zip(_INT_FIELDS, _INT_DOCS, strict=True)))


_CURSOR_REGS = (
    (0xC00, "CLCDCRSRCTRL", "cursor control"),
    (0xC04, "CLCDCRSRCONFIG", "cursor configuration"),
    (0xC08, "CLCDCRSRPALETTE0", "cursor palette 0"),
    (0xC0C, "CLCDCRSRPALETTE1", "cursor palette 1"),
    (0xC10, "CLCDCRSRXY", "cursor position"),
    (0xC14, "CLCDCRSRCLIP", "cursor clip position"),
    (0xC20, "CLCDCRSRIMSC", "cursor interrupt mask"),
    (0xC24, "CLCDCRSRICR", "cursor interrupt clear"),
    (0xC28, "CLCDCRSRRIS", "cursor raw interrupt status"),
    (0xC2C, "CLCDCRSRMIS", "cursor masked interrupt status"),
)


class Pl111(Device):
    """The PL111 CLCD controller: frame timing, interrupts and scan-out through its DMA port."""

    compatible = ("arm,pl111", "arm,primecell")
    mmio_size = 0x1000
    registers = (
        Register(0x000, "LCDTIMING0", Access.RESERVED, fields=(
            Field("PPL", 2, 6, doc="pixels per line / 16, minus 1"),
            Field("HSW", 8, 8, doc="horizontal sync width in pixel clocks, minus 1"),
            Field("HFP", 16, 8, doc="horizontal front porch in pixel clocks, minus 1"),
            Field("HBP", 24, 8, doc="horizontal back porch in pixel clocks, minus 1"),
        ), doc="horizontal axis panel control"),
        Register(0x004, "LCDTIMING1", Access.RW, fields=(
            Field("LPP", 0, 10, doc="lines per panel, minus 1"),
            Field("VSW", 10, 6, doc="vertical sync width in lines, minus 1"),
            Field("VFP", 16, 8, doc="vertical front porch in lines"),
            Field("VBP", 24, 8, doc="vertical back porch in lines"),
        ), doc="vertical axis panel control"),
        Register(0x008, "LCDTIMING2", Access.RESERVED, fields=(
            Field("PCD_LO", 0, 5, doc="pixel clock divisor, low bits (divide by PCD + 2)"),
            Field("CLKSEL", 5, 1, doc="clock source (only CLCDCLK is modelled)"),
            Field("ACB", 6, 5, doc="AC bias pin frequency (STN)"),
            Field("IVS", 11, 1, doc="invert vertical sync"),
            Field("IHS", 12, 1, doc="invert horizontal sync"),
            Field("IPC", 13, 1, doc="invert panel clock"),
            Field("IOE", 14, 1, doc="invert output enable"),
            Field("CPL", 16, 10, doc="clocks per line, minus 1"),
            Field("BCD", 26, 1, doc="bypass the pixel clock divider"),
            Field("PCD_HI", 27, 5, doc="pixel clock divisor, high bits"),
        ), doc="clock and signal polarity control"),
        Register(0x00C, "LCDTIMING3", Access.RESERVED, fields=(
            Field("LED", 0, 7, doc="line-end signal delay"),
            Field("LEE", 16, 1, doc="line-end signal enable (not modelled)"),
        ), doc="line end control"),
        Register(0x010, "LCDUPBASE", Access.RW,
                 doc="upper panel frame base: a bus address, word aligned"),
        Register(0x014, "LCDLPBASE", Access.RW,
                 doc="lower panel frame base (dual panel only): a bus address, word aligned"),
        Register(0x018, "LCDCONTROL", Access.RESERVED, fields=(
            Field("LCDEN", 0, 1, doc="enable: timing runs and frames are fetched"),
            Field("LCDBPP", 1, 3, doc="0-3: 1/2/4/8 bpp palettised, 4: 16 bpp 1:5:5:5, "
                                      "5: 24 bpp (32-bit words), 6: 16 bpp 5:6:5, 7: 12 bpp 4:4:4"),
            Field("LCDBW", 4, 1, doc="STN monochrome"),
            Field("LCDTFT", 5, 1, doc="TFT panel (STN is not modelled)"),
            Field("LCDMONO8", 6, 1, doc="8-bit monochrome STN interface"),
            Field("LCDDUAL", 7, 1, doc="dual panel STN (not modelled)"),
            Field("BGR", 8, 1, doc="swap red and blue"),
            Field("BEBO", 9, 1, doc="big-endian byte order"),
            Field("BEPO", 10, 1, doc="big-endian pixel order within a byte"),
            Field("LCDPWR", 11, 1, doc="panel power"),
            Field("LCDVCOMP", 12, 2, doc="VComp at: 0 vsync, 1 back porch, 2 active video, "
                                         "3 front porch"),
            Field("LDMAFIFOTIME", 15, 1, doc="DMA FIFO request timing (no effect here)"),
            Field("WATERMARK", 16, 1, doc="DMA FIFO watermark (no effect here)"),
        ), doc="control"),
        Register(0x01C, "LCDIMSC", Access.RESERVED, fields=_int_fields(Access.RW),
                 doc="interrupt mask set/clear (1: enabled)"),
        Register(0x020, "LCDRIS", Access.R, fields=_int_fields(Access.R),
                 doc="raw interrupt status"),
        Register(0x024, "LCDMIS", Access.R, fields=_int_fields(Access.R),
                 doc="masked interrupt status: LCDRIS & LCDIMSC"),
        Register(0x028, "LCDICR", Access.W, fields=_int_fields(Access.W),
                 doc="interrupt clear: write 1 to clear"),
        Register(0x02C, "LCDUPCURR", Access.R,
                 doc="upper panel base latched at the last frame start"),
        Register(0x030, "LCDLPCURR", Access.R,
                 doc="lower panel base latched at the last frame start"),
        Register(0x200, "LCDPALETTE", Access.RW, count=128,
                 doc="palette: entry 2n in bits [15:0], 2n+1 in [31:16]; "
                     "R [4:0], G [9:5], B [14:10], I [15]"),
        Register(0x800, "CLCDCRSRIMAGE", Access.RW, count=256,
                 doc="cursor image (not drawn)"),
        *(Register(off, name, Access.RW, doc=f"{doc} (not modelled)")
          for off, name, doc in _CURSOR_REGS),
        *(Register(0xFE0 + 4 * i, f"PERIPHID{i}", Access.R, v, doc="peripheral identification")
          for i, v in enumerate(PERIPH_ID)),
        *(Register(0xFF0 + 4 * i, f"CELLID{i}", Access.R, v, doc="PrimeCell identification")
          for i, v in enumerate(CELL_ID)),
    )

    def __init__(self, ctx: DeviceContext, *, clcdclk_hz: int = DEFAULT_CLCDCLK_HZ) -> None:
        if clcdclk_hz <= 0:
            raise ConfigurationError(f"CLCDCLK frequency must be positive, not {clcdclk_hz!r}")
        self.clcdclk_hz = clcdclk_hz
        self.irq = ctx.irqs[0] if ctx.irqs else IrqLine(name=f"{ctx.name}.irq")
        self.frame_count = 0
        self.bus_errors: list[dict[str, Any]] = []
        self._ris = 0
        self._frame_event: Event | None = None
        self._vcomp_event: Event | None = None
        self._fetch_verdicts: dict[tuple[int, int], bool] = {}
        super().__init__(ctx)
        self.hook("LCDCONTROL", write=self._write_control)
        self.hook("LCDUPBASE", write=lambda _i, _o, new: self._write_base("LCDUPBASE", new))
        self.hook("LCDLPBASE", write=lambda _i, _o, new: self._write_base("LCDLPBASE", new))
        self.hook("LCDTIMING2", write=self._write_timing2)
        self.hook("LCDTIMING3", write=self._write_timing3)
        self.hook("LCDIMSC", write=lambda _i, _o, _n: self._update_irq())
        self.hook("LCDRIS", read=lambda _i: self._ris)
        self.hook("LCDMIS", read=lambda _i: self._ris & self.get("LCDIMSC"))
        self.hook("LCDICR", write=self._write_icr)
        for _off, name, _doc in _CURSOR_REGS:
            self.hook(name, write=self._cursor_write)
        self.hook("CLCDCRSRIMAGE", write=self._cursor_write)

    # lifecycle ----------------------------------------------------------
    def reset(self) -> None:
        super().reset()
        self._stop()
        self._ris = 0
        self._fetch_verdicts.clear()
        self._update_irq()

    @property
    def enabled(self) -> bool:
        """LcdEn: the timing generator runs and frames are fetched."""
        return bool(self.get("LCDCONTROL") & CTRL_LCDEN)

    # geometry and timing -------------------------------------------------
    @property
    def width(self) -> int:
        """Pixels per line: 16 * (PPL + 1)."""
        return 16 * (((self.get("LCDTIMING0") >> 2) & 0x3F) + 1)

    @property
    def height(self) -> int:
        """Lines per panel: LPP + 1."""
        return (self.get("LCDTIMING1") & 0x3FF) + 1

    def scan_format(self) -> ScanFormat:
        """The pixel format LCDControl selects."""
        ctrl = self.get("LCDCONTROL")
        return ScanFormat(PixelMode((ctrl >> 1) & 7), bgr=bool(ctrl & CTRL_BGR),
                          bebo=bool(ctrl & CTRL_BEBO), bepo=bool(ctrl & CTRL_BEPO))

    def pixel_clock_divisor(self) -> int:
        """CLCDCLK cycles per pixel clock: 1 with BCD, else PCD + 2."""
        tim2 = self.get("LCDTIMING2")
        if tim2 & (1 << 26):
            return 1
        return (((tim2 >> 27) & 0x1F) << 5 | (tim2 & 0x1F)) + 2

    def pixel_clock_hz(self) -> float:
        return self.clcdclk_hz / self.pixel_clock_divisor()

    def line_clocks(self) -> int:
        """Pixel clocks per line: sync, back porch, active pixels, front porch."""
        tim0 = self.get("LCDTIMING0")
        hsw, hfp, hbp = ((tim0 >> 8) & 0xFF) + 1, ((tim0 >> 16) & 0xFF) + 1, (tim0 >> 24) + 1
        return hsw + hbp + self.width + hfp

    def phase_lines(self) -> tuple[int, int, int, int]:
        """Lines of vertical sync, back porch, active video and front porch."""
        tim1 = self.get("LCDTIMING1")
        vsw, vfp, vbp = ((tim1 >> 10) & 0x3F) + 1, (tim1 >> 16) & 0xFF, tim1 >> 24
        return vsw, vbp, self.height, vfp

    def _ticks_for_clocks(self, pixel_clocks: int) -> int:
        """Virtual-time ticks for ``pixel_clocks`` pixel clocks, rounded up."""
        cycles = pixel_clocks * self.pixel_clock_divisor() * self.clock.hz
        return -(-cycles // self.clcdclk_hz)

    def frame_period_ticks(self) -> int:
        """Ticks from one frame start to the next with the current timing."""
        return max(1, self._ticks_for_clocks(sum(self.phase_lines()) * self.line_clocks()))

    def vcomp_offset_ticks(self) -> int:
        """Ticks from frame start to the phase LcdVComp selects."""
        phase = (self.get("LCDCONTROL") >> 12) & 3
        lines = sum(self.phase_lines()[:phase])
        return self._ticks_for_clocks(lines * self.line_clocks())

    # register side effects ----------------------------------------------
    def _write_control(self, _index: int, old: int, new: int) -> None:
        if new & CTRL_LCDEN:
            self._note_unmodelled(new)
        if new & CTRL_LCDEN and not old & CTRL_LCDEN:
            self._start()
        elif old & CTRL_LCDEN and not new & CTRL_LCDEN:
            self._stop()

    def _note_unmodelled(self, ctrl: int) -> None:
        if not ctrl & CTRL_TFT:
            self.log.unimp("STN panel (LcdTFT clear): frames are decoded as TFT, "
                           "no grey-scaler or STN timing")
        if ctrl & CTRL_BW:
            self.log.unimp("STN monochrome (LcdBW)")
        if ctrl & CTRL_DUAL:
            self.log.unimp("dual panel (LcdDual): only the upper panel is shown")

    def _write_base(self, name: str, new: int) -> None:
        if new & 3:
            self.log.guest_error(f"{name} 0x{new:08x} is not word aligned; bits [1:0] ignored")
            self.set(name, new & ~3)

    def _write_timing2(self, _index: int, _old: int, new: int) -> None:
        if new & (1 << 5):
            self.log.unimp("LCDTiming2.CLKSEL (HCLK as pixel clock source): CLCDCLK is used")

    def _write_timing3(self, _index: int, _old: int, new: int) -> None:
        if new & (1 << 16):
            self.log.unimp("LCDTiming3.LEE (line-end signal)")

    def _write_icr(self, _index: int, _old: int, new: int) -> None:
        self._ris &= ~new
        self._update_irq()

    def _cursor_write(self, _index: int, _old: int, _new: int) -> None:
        self.log.unimp("hardware cursor (CLCDCRSR* registers): values stored, nothing drawn")

    # interrupts -----------------------------------------------------------
    def _raise(self, bits: int) -> None:
        self._ris |= bits & INT_ALL
        self._update_irq()

    def _update_irq(self) -> None:
        self.irq.set(bool(self._ris & self.get("LCDIMSC")))

    # frame timing -----------------------------------------------------------
    def _start(self) -> None:
        self._frame_event = self.clock.schedule_at(self.clock.now, self._frame,
                                                   f"{self.ctx.name} frame")

    def _stop(self) -> None:
        for ev in (self._frame_event, self._vcomp_event):
            if ev is not None:
                ev.cancel()
        self._frame_event = self._vcomp_event = None

    def _frame(self) -> None:
        """A frame starts: latch the bases, raise LNBU, fetch, schedule VComp and the next."""
        start = self.clock.now  # the clock runs each event at its own deadline
        self.frame_count += 1
        self.set("LCDUPCURR", self.get("LCDUPBASE"))
        self.set("LCDLPCURR", self.get("LCDLPBASE"))
        bits = INT_LNBU
        offset = self.vcomp_offset_ticks()
        if offset == 0:
            bits |= INT_VCOMP
        else:
            self._vcomp_event = self.clock.schedule_at(start + offset, self._vcomp,
                                                       f"{self.ctx.name} vcomp")
        self._frame_event = self.clock.schedule_at(start + self.frame_period_ticks(), self._frame,
                                                   f"{self.ctx.name} frame")
        if not self._fetch_ok(self.get("LCDUPCURR")):
            bits |= INT_MBERROR
        self._raise(bits)

    def _vcomp(self) -> None:
        self._vcomp_event = None
        self._raise(INT_VCOMP)

    def _fetch_ok(self, bus: int) -> bool:
        """Whether the bus serves this frame's fetch (the verdict is kept per base and size)."""
        size = self.scan_format().frame_bytes(self.width, self.height)
        key = (bus, size)
        verdict = self._fetch_verdicts.get(key)
        if verdict is None:
            if len(self._fetch_verdicts) >= 64:
                self._fetch_verdicts.clear()
            verdict = self._read_frame(bus, size) is not None
            self._fetch_verdicts[key] = verdict
        return verdict

    def _read_frame(self, bus: int, size: int) -> bytes | None:
        port = self.ctx.dma
        data = port.read(bus, size) if port is not None else None
        if data is None:
            why = "refused by the bus" if port is not None else "no DMA port connected"
            self.bus_errors.append({"bus_addr": bus, "size": size, "reason": why,
                                    "time": self.clock.now})
            self.log.guest_error(
                f"framebuffer fetch at bus address 0x{bus:08x} (+0x{size:x}) {why}"
            )
        return data

    # host side ---------------------------------------------------------------
    def snapshot(self) -> Image.Image | None:
        """The picture at LCDUPBASE, read through the DMA port, or None.

        None when the controller is disabled or the bus refuses the read; a
        refused read raises the master bus error interrupt, like a fetch.
        """
        if not self.enabled:
            return None
        fmt = self.scan_format()
        bus = self.get("LCDUPBASE")
        data = self._read_frame(bus, fmt.frame_bytes(self.width, self.height))
        if data is None:
            self._raise(INT_MBERROR)
            return None
        palette: list[int] = []
        if fmt.mode.palettised:
            for word in self.values["LCDPALETTE"]:
                palette += (word & 0xFFFF, word >> 16)
        return decode_frame(data, self.width, self.height, fmt, palette)

    def save_png(self, path: str) -> Image.Image | None:
        """Take a :meth:`snapshot` and write it to ``path`` as PNG; None (no file) without one."""
        image = self.snapshot()
        if image is not None:
            save_png(image, path)
        return image

    def framebuffer_info(self) -> dict[str, Any]:
        """Where the framebuffer is and how it is read, for run results (JSON-ready)."""
        fmt = self.scan_format()
        bus = self.get("LCDUPBASE")
        port = self.ctx.dma
        return {
            "bus_base": bus,
            "phys_base": port.to_phys(bus) if port is not None else None,
            "width": self.width,
            "height": self.height,
            "bpp": fmt.bits_per_pixel,
            "format": fmt.name,
            "size": fmt.frame_bytes(self.width, self.height),
            "enabled": self.enabled,
            "powered": bool(self.get("LCDCONTROL") & CTRL_PWR),
            "pixel_clock_hz": self.pixel_clock_hz(),
            "frame_period_ticks": self.frame_period_ticks(),
            "frames": self.frame_count,
            "bus_errors": len(self.bus_errors),
        }

    def describe(self) -> dict[str, object]:
        info = super().describe()
        info["framebuffer"] = self.framebuffer_info()
        return info
