"""The camera DMA engine at register level, with a RAM-backed port that has a bus offset."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.clock import VirtualClock
from emu.devices.base import DeviceContext, DeviceLog, IrqLine
from emu.devices.dma.camera import CameraDma
from emu.devices.dma.testpattern import PixelFormat, check_frame, render_frame
from tests.emu.devices.ramport import WindowPort as RamPort

RAM_PHYS = 0x4000_0000
BUS_OFFSET = 0xC000_0000  # bus = phys - RAM_PHYS + BUS_OFFSET
RAM_SIZE = 0x0040_0000


def WindowPort() -> RamPort:
    return RamPort(RAM_PHYS, BUS_OFFSET, RAM_SIZE)


def make_camera() -> tuple[CameraDma, RamPort, IrqLine, VirtualClock]:
    clock = VirtualClock(hz=1_000_000)  # one tick per microsecond
    port = WindowPort()
    irq = IrqLine()
    cam = CameraDma(DeviceContext("camera", clock, [irq], port, DeviceLog("camera")))
    return cam, port, irq, clock


def regs(cam: CameraDma, name: str, index: int = 0) -> int:
    reg = next(r for r in cam.registers if r.name == name)
    return cam.read(reg.offset + index * reg.stride, 4)


def wreg(cam: CameraDma, name: str, value: int, index: int = 0) -> None:
    reg = next(r for r in cam.registers if r.name == name)
    cam.write(reg.offset + index * reg.stride, 4, value)


def setup_ring(cam: CameraDma, width: int, height: int, fmt: PixelFormat,
               phys: list[int], stride: int = 0) -> None:
    wreg(cam, "WIDTH", width)
    wreg(cam, "HEIGHT", height)
    wreg(cam, "FORMAT", int(fmt))
    wreg(cam, "STRIDE", stride)
    wreg(cam, "FRAME_INTERVAL", 1000)
    for i, p in enumerate(phys):
        wreg(cam, "BUF_ADDR", p - RAM_PHYS + BUS_OFFSET, i)
    wreg(cam, "RING_SIZE", len(phys))
    wreg(cam, "BUF_READY", (1 << len(phys)) - 1)
    wreg(cam, "IRQ_ENABLE", 0b111)


def test_identification_and_reset_values() -> None:
    cam, *_ = make_camera()
    assert regs(cam, "ID") == 0x3143_4D43
    assert regs(cam, "WIDTH") == 640
    assert regs(cam, "LAST_SLOT") == 0xFFFF_FFFF
    assert regs(cam, "STATUS") & 1 == 0


def test_frames_land_at_bus_addresses_in_ring_order() -> None:
    cam, port, irq, clock = make_camera()
    bufs = [RAM_PHYS + 0x10000 * (i + 1) for i in range(4)]
    setup_ring(cam, 64, 16, PixelFormat.RGB565, bufs)
    wreg(cam, "CTRL", 1)
    assert regs(cam, "STATUS") & 1
    clock.advance_by(999)
    assert regs(cam, "FRAME_COUNT") == 0
    assert not irq.level
    for expected_slot in range(4):
        clock.advance_by(1000)
        assert irq.level
        assert regs(cam, "LAST_SLOT") == expected_slot
        assert regs(cam, "SLOT_SEQ", expected_slot) == expected_slot
        wreg(cam, "IRQ_STATUS", 1)
        assert not irq.level
    assert regs(cam, "FRAME_COUNT") == 4
    assert regs(cam, "BUF_READY") == 0
    for i, p in enumerate(bufs):
        data = bytes(port.ram[p - RAM_PHYS: p - RAM_PHYS + 64 * 16 * 2])
        assert check_frame(data, 64, 16, PixelFormat.RGB565, expect_seq=i).ok
    assert [f.phys_addr for f in cam.frames] == bufs
    assert [f.bus_addr for f in cam.frames] == [p - RAM_PHYS + BUS_OFFSET for p in bufs]


def test_no_ready_slot_drops_frame_and_raises_overflow() -> None:
    cam, _port, irq, clock = make_camera()
    setup_ring(cam, 32, 4, PixelFormat.RGB888, [RAM_PHYS + 0x1000])
    wreg(cam, "CTRL", 1)
    clock.advance_by(1000)
    assert regs(cam, "FRAME_COUNT") == 1
    wreg(cam, "IRQ_STATUS", 0b111)
    clock.advance_by(1000)
    assert regs(cam, "DROP_COUNT") == 1
    assert regs(cam, "IRQ_STATUS") == 0b100
    assert irq.level
    wreg(cam, "BUF_READY", 1)
    clock.advance_by(1000)
    assert regs(cam, "FRAME_COUNT") == 2
    assert regs(cam, "SLOT_SEQ", 0) == 2  # frame 1 was dropped


def test_physical_address_instead_of_bus_address_is_a_bus_error() -> None:
    cam, port, irq, clock = make_camera()
    setup_ring(cam, 32, 4, PixelFormat.RGB565, [RAM_PHYS + 0x2000])
    wreg(cam, "BUF_ADDR", RAM_PHYS + 0x2000, 0)  # the classic bug: phys where bus belongs
    wreg(cam, "CTRL", 1)
    clock.advance_by(1000)
    assert regs(cam, "IRQ_STATUS") & 0b10
    assert irq.level
    assert regs(cam, "ERROR_ADDR") == RAM_PHYS + 0x2000
    assert regs(cam, "ERROR_SLOT") == 0
    assert regs(cam, "STATUS") & 1 == 0
    assert regs(cam, "CTRL") & 1 == 0
    assert port.ram == bytearray(RAM_SIZE)  # nothing written anywhere
    assert cam.errors
    assert "bus error" in cam.log.guest_errors[0]
    clock.advance_by(10_000)
    assert regs(cam, "FRAME_COUNT") == 0


def test_stride_leaves_padding_untouched() -> None:
    cam, port, _irq, clock = make_camera()
    base = RAM_PHYS + 0x4000
    port.ram[0x4000:0x4000 + 0x2000] = b"\xAA" * 0x2000
    setup_ring(cam, 16, 8, PixelFormat.XRGB8888, [base], stride=128)
    wreg(cam, "CTRL", 1)
    clock.advance_by(1000)
    data = bytes(port.ram[0x4000:0x4000 + 128 * 8])
    assert check_frame(data, 16, 8, PixelFormat.XRGB8888, stride=128, expect_seq=0).ok
    for y in range(8):
        assert data[y * 128 + 64: (y + 1) * 128] == b"\xAA" * 64


@pytest.mark.parametrize(("reg", "value", "why"), [
    ("WIDTH", 3, "WIDTH must be even"),
    ("HEIGHT", 0, "HEIGHT must be"),
    ("FORMAT", 9, "FORMAT must be"),
    ("RING_SIZE", 0, "RING_SIZE must be"),
])
def test_bad_geometry_refuses_to_start(reg: str, value: int, why: str) -> None:
    cam, *_ = make_camera()
    wreg(cam, reg, value)
    wreg(cam, "CTRL", 1)
    assert regs(cam, "CTRL") & 1 == 0
    assert why in cam.log.guest_errors[-1]


def test_reset_stops_the_engine() -> None:
    cam, _port, _irq, clock = make_camera()
    setup_ring(cam, 16, 2, PixelFormat.YUYV, [RAM_PHYS])
    wreg(cam, "CTRL", 1)
    wreg(cam, "CTRL", 1 << 31)
    clock.advance_by(5000)
    assert regs(cam, "FRAME_COUNT") == 0
    assert regs(cam, "WIDTH") == 640


@settings(max_examples=40, deadline=None)
@given(width=st.integers(1, 64).map(lambda w: w * 2), height=st.integers(1, 40),
       fmt=st.sampled_from(list(PixelFormat)), seq=st.integers(0, 2**32 - 1))
def test_pattern_checks_itself_and_detects_any_flipped_byte(width: int, height: int,
                                                            fmt: PixelFormat, seq: int) -> None:
    lines = render_frame(width, height, fmt, seq)
    data = b"".join(lines)
    if width * fmt.bytes_per_pixel < 16:
        return  # no room for the header on such a narrow line
    assert check_frame(data, width, height, fmt, expect_seq=seq).ok
    assert render_frame(width, height, fmt, seq) == lines  # deterministic
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x01
    assert not check_frame(bytes(flipped), width, height, fmt).ok
