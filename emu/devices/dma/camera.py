"""Camera capture DMA engine ("camsoc,camera-dma").

Interface:
  MMIO      0x1000 bytes, registers below (32-bit accesses)
  IRQ       one output: IRQ_STATUS & IRQ_ENABLE != 0 (level)
  DMA       one master port: every frame byte is written through the engine's bus
            view, so it is programmed with *bus* addresses (``dma_addr_t``)
  Clock     frames are produced every FRAME_INTERVAL microseconds of virtual time

The engine owns a ring of up to eight buffer slots. Software writes the bus
address of each buffer into BUF_ADDRn and hands slot n to the hardware by
writing 1 << n to BUF_READY (write-1-to-set). On each frame tick the engine
takes the next ready slot in ring order, writes the sensor's test pattern
(:mod:`emu.devices.dma.testpattern`) line by line at the programmed stride,
clears the slot's READY bit, records the frame sequence number in SLOT_SEQn,
increments FRAME_COUNT and sets FRAME_DONE. With no ready slot the frame is
dropped (DROP_COUNT, OVERFLOW); so is a frame whose geometry registers were
rewritten while running to values START would refuse (logged as a guest error).

A write the bus refuses (outside the engine's DMA window, outside reserved
memory, into a freed buffer) aborts the frame: BUS_ERROR is set, ERROR_ADDR
holds the refused bus address and ERROR_SLOT the slot, and the engine stops
(CTRL.ENABLE and STATUS.RUNNING clear). Nothing is written outside the view.
Not modelled (logged as unimplemented): scaling, cropping, other formats.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from emu.clock import Event
from emu.devices.base import Access, Device, DeviceContext, Field, Register
from emu.devices.dma.testpattern import PixelFormat, render_frame_bytes

ID_VALUE = 0x3143_4D43  # "CMC1"
VERSION_VALUE = 0x0001_0000
NUM_SLOTS = 8
MAX_WIDTH = 4096
MAX_HEIGHT = 4096

IRQ_FRAME_DONE = 1 << 0
IRQ_BUS_ERROR = 1 << 1
IRQ_OVERFLOW = 1 << 2


class CameraDma(Device):
    """The camera capture engine with its test-pattern sensor."""

    compatible = ("camsoc,camera-dma",)
    mmio_size = 0x1000
    registers = (
        Register(0x000, "ID", Access.R, ID_VALUE, doc="identification, reads 0x31434D43"),
        Register(0x004, "VERSION", Access.R, VERSION_VALUE, doc="major << 16 | minor"),
        Register(0x008, "CTRL", Access.RW, fields=(
            Field("ENABLE", 0, 1, Access.RW, doc="1 starts capturing, 0 stops"),
            Field("RESET", 31, 1, Access.W, doc="write 1: stop and reset the engine"),
        ), doc="control"),
        Register(0x00C, "STATUS", Access.R, fields=(
            Field("RUNNING", 0, 1, Access.R, doc="the engine is capturing"),
            Field("NEXT_SLOT", 8, 3, Access.R, doc="the slot the next frame will try first"),
        ), doc="status"),
        Register(0x010, "WIDTH", Access.RW, 640, doc="frame width in pixels (2..4096, even)"),
        Register(0x014, "HEIGHT", Access.RW, 480, doc="frame height in lines (1..4096)"),
        Register(0x018, "FORMAT", Access.RW, 0,
                 doc="pixel format: 0 RGB565, 1 RGB888, 2 YUYV, 3 XRGB8888"),
        Register(0x01C, "STRIDE", Access.RW, 0,
                 doc="bytes from one line to the next; 0 means width * bytes per pixel"),
        Register(0x020, "FRAME_INTERVAL", Access.RW, 33_333,
                 doc="microseconds of virtual time between frames (30 fps by default)"),
        Register(0x024, "RING_SIZE", Access.RW, 4, doc="number of ring slots in use (1..8)"),
        Register(0x030, "BUF_READY", Access.W1S,
                 doc="bit n set: slot n belongs to the hardware; cleared when its frame is done"),
        Register(0x034, "FRAME_COUNT", Access.R, doc="frames completed since reset"),
        Register(0x038, "DROP_COUNT", Access.R, doc="frames dropped for want of a ready slot"),
        Register(0x03C, "LAST_SLOT", Access.R, 0xFFFF_FFFF,
                 doc="slot of the last completed frame (0xFFFFFFFF: none yet)"),
        Register(0x040, "BUF_ADDR", Access.RW, count=NUM_SLOTS,
                 doc="bus address (dma_addr_t) of slot n's buffer"),
        Register(0x060, "IRQ_STATUS", Access.W1C, fields=(
            Field("FRAME_DONE", 0, 1, Access.W1C, doc="a frame completed"),
            Field("BUS_ERROR", 1, 1, Access.W1C, doc="a DMA write was refused; engine stopped"),
            Field("OVERFLOW", 2, 1, Access.W1C, doc="a frame was dropped"),
        ), doc="interrupt status, write 1 to clear"),
        Register(0x064, "IRQ_ENABLE", Access.RW, fields=(
            Field("FRAME_DONE", 0, 1), Field("BUS_ERROR", 1, 1), Field("OVERFLOW", 2, 1),
        ), doc="interrupt enable"),
        Register(0x068, "ERROR_ADDR", Access.R, doc="the bus address of the refused write"),
        Register(0x06C, "ERROR_SLOT", Access.R, 0xFFFF_FFFF, doc="slot of the aborted frame"),
        Register(0x080, "SLOT_SEQ", Access.R, 0xFFFF_FFFF, count=NUM_SLOTS,
                 doc="sequence number of the frame last written into slot n"),
    )

    def __init__(self, ctx: DeviceContext) -> None:
        #: called with every frame written in full and its bytes (lines joined, no padding)
        self.on_frame: Callable[[FrameRecord, bytes], None] | None = None
        self.frames: list[FrameRecord] = []
        self.errors: list[dict[str, Any]] = []
        self._event: Event | None = None
        self._seq = 0
        self._next_slot = 0
        self._running_problem: str | None = None
        super().__init__(ctx)
        self.hook("CTRL", write=self._write_ctrl)
        self.hook("STATUS", read=self._read_status)
        self.hook("IRQ_STATUS", write=lambda _i, _o, _n: self._update_irq())
        self.hook("IRQ_ENABLE", write=lambda _i, _o, _n: self._update_irq())

    # ------------------------------------------------------------------
    def reset(self) -> None:
        super().reset()
        if self._event is not None:
            self._event.cancel()
            self._event = None
        self._seq = 0
        self._next_slot = 0
        self._update_irq()

    @property
    def running(self) -> bool:
        return self._event is not None

    def _read_status(self, _index: int) -> int:
        return int(self.running) | (self._next_slot << 8)

    def _write_ctrl(self, _index: int, old: int, new: int) -> None:
        if new & (1 << 31):
            frames, errors = self.frames, self.errors
            self.reset()
            self.frames, self.errors = frames, errors
            return
        if (new & 1) and not (old & 1):
            self._start()
        elif not (new & 1) and (old & 1):
            self._stop()

    def _interval_ticks(self) -> int:
        us = self.get("FRAME_INTERVAL") or 1
        return max(1, self.clock.ticks_from_ns(us * 1000))

    def _start(self) -> None:
        problem = self._geometry_problem()
        if problem:
            self.log.guest_error(f"start refused: {problem}")
            self.set("CTRL", self.get("CTRL") & ~1)
            return
        self._event = self.clock.schedule_in(self._interval_ticks(), self._frame_tick,
                                             f"{self.ctx.name} frame")

    def _stop(self) -> None:
        if self._event is not None:
            self._event.cancel()
            self._event = None

    def _geometry_problem(self) -> str | None:
        width, height = self.get("WIDTH"), self.get("HEIGHT")
        fmt = self.get("FORMAT")
        if not 2 <= width <= MAX_WIDTH or width % 2:
            return f"WIDTH must be even and in 2..{MAX_WIDTH}, not {width}"
        if not 1 <= height <= MAX_HEIGHT:
            return f"HEIGHT must be in 1..{MAX_HEIGHT}, not {height}"
        if fmt not in {int(f) for f in PixelFormat}:
            self.log.unimp(f"pixel format {fmt}")
            return f"FORMAT must be 0..3, not {fmt}"
        ring = self.get("RING_SIZE")
        if not 1 <= ring <= NUM_SLOTS:
            return f"RING_SIZE must be in 1..{NUM_SLOTS}, not {ring}"
        stride = self.get("STRIDE")
        line = width * PixelFormat(fmt).bytes_per_pixel
        if stride and stride < line:
            return f"STRIDE 0x{stride:x} is shorter than a line (0x{line:x} bytes)"
        return None

    def frame_size(self) -> int:
        """Bytes one frame spans in memory with the current geometry."""
        fmt = PixelFormat(self.get("FORMAT"))
        line = self.get("WIDTH") * fmt.bytes_per_pixel
        stride = self.get("STRIDE") or line
        return stride * (self.get("HEIGHT") - 1) + line

    # ------------------------------------------------------------------
    def _frame_tick(self) -> None:
        self._event = self.clock.schedule_in(self._interval_ticks(), self._frame_tick,
                                             f"{self.ctx.name} frame")
        seq = self._seq
        self._seq += 1
        problem = self._geometry_problem()
        if problem:  # rewritten while running: this frame cannot be captured
            if problem != self._running_problem:
                self.log.guest_error(f"frame {seq} dropped: {problem} (set while running)")
            self._running_problem = problem
            self.set("DROP_COUNT", self.get("DROP_COUNT") + 1)
            self._raise(IRQ_OVERFLOW)
            return
        self._running_problem = None
        slot = self._take_slot()
        if slot is None:
            self.set("DROP_COUNT", self.get("DROP_COUNT") + 1)
            self._raise(IRQ_OVERFLOW)
            return
        self._capture(seq, slot)

    def _take_slot(self) -> int | None:
        ring = self.get("RING_SIZE")
        ready = self.get("BUF_READY")
        for i in range(ring):
            slot = (self._next_slot + i) % ring
            if ready & (1 << slot):
                self._next_slot = (slot + 1) % ring
                return slot
        return None

    def _capture(self, seq: int, slot: int) -> None:
        width, height = self.get("WIDTH"), self.get("HEIGHT")
        fmt = PixelFormat(self.get("FORMAT"))
        line_len = width * fmt.bytes_per_pixel
        stride = self.get("STRIDE") or line_len
        bus = self.get("BUF_ADDR", slot)
        port = self.ctx.dma
        record = FrameRecord(seq=seq, slot=slot, bus_addr=bus,
                             phys_addr=port.to_phys(bus) if port else None,
                             size=stride * (height - 1) + line_len, width=width,
                             height=height, format=fmt.name, stride=stride,
                             time=self.clock.now, ok=False)
        frame = render_frame_bytes(width, height, fmt, seq)
        if line_len >= 12:
            record.crc = struct.unpack_from("<I", frame, 8)[0]
        if port is None:
            self._bus_error(bus, slot, seq, "no DMA port connected")
            self.frames.append(record)
            return
        if stride == line_len:
            if not port.write(bus, frame):
                self._bus_error(bus, slot, seq, "frame write refused")
                self.frames.append(record)
                return
        else:
            for y in range(height):
                addr = (bus + y * stride) & 0xFFFF_FFFF
                if not port.write(addr, frame[y * line_len:(y + 1) * line_len]):
                    self._bus_error(addr, slot, seq, f"line {y} write refused")
                    self.frames.append(record)
                    return
        record.ok = True
        self.frames.append(record)
        if self.on_frame is not None:
            self.on_frame(record, frame)
        self.set("BUF_READY", self.get("BUF_READY") & ~(1 << slot))
        self.set("SLOT_SEQ", seq, slot)
        self.set("LAST_SLOT", slot)
        self.set("FRAME_COUNT", self.get("FRAME_COUNT") + 1)
        self._raise(IRQ_FRAME_DONE)

    def _bus_error(self, addr: int, slot: int, seq: int, why: str) -> None:
        self.errors.append({"bus_addr": addr, "slot": slot, "seq": seq, "reason": why,
                            "time": self.clock.now})
        self.log.guest_error(f"DMA bus error at bus address 0x{addr:08x} (slot {slot}): {why}")
        self.set("ERROR_ADDR", addr)
        self.set("ERROR_SLOT", slot)
        self.set("CTRL", self.get("CTRL") & ~1)
        self._stop()
        self._raise(IRQ_BUS_ERROR)

    def _raise(self, bits: int) -> None:
        self.set("IRQ_STATUS", self.get("IRQ_STATUS") | bits)
        self._update_irq()

    def _update_irq(self) -> None:
        if self.ctx.irqs:
            self.ctx.irqs[0].set(bool(self.get("IRQ_STATUS") & self.get("IRQ_ENABLE")))


@dataclass
class FrameRecord:
    """One frame the engine tried to write (for results and checks)."""

    seq: int
    slot: int
    bus_addr: int
    phys_addr: int | None
    size: int
    width: int
    height: int
    format: str
    stride: int
    time: int
    ok: bool
    crc: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
