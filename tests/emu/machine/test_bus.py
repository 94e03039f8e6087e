"""The bus: RAM/MMIO map with overlap checks, DMA views that refuse and record, MMIO stubs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.boards import load_board
from emu.bus import Bus
from emu.clock import VirtualClock
from emu.cpu.core import Cpu
from emu.dt.dmamap import DmaWindow
from emu.errors import ConfigurationError
from emu.machine import Machine
from tests.emu.machine import assemble

RAM = 0x4000_0000
RAM_SIZE = 0x0100_0000


@pytest.fixture
def bus() -> Bus:
    b = Bus(Cpu().uc, VirtualClock())
    b.add_ram("ram", RAM, RAM_SIZE)
    return b


def test_overlap_names_both_ranges(bus: Bus) -> None:
    with pytest.raises(ConfigurationError) as exc:
        bus.add_ram("extra", RAM + 0x80_0000, 0x100_0000)
    msg = str(exc.value)
    assert "extra [0x40800000, 0x41800000)" in msg
    assert "ram [0x40000000, 0x41000000)" in msg


def test_dma_write_translated_and_logged(bus: Bus) -> None:
    cam = bus.view("/soc/camera", [DmaWindow(cpu_start=RAM, dma_start=0, size=0x10_0000)])
    assert cam.to_phys(0x10) == RAM + 0x10
    assert cam.to_bus(RAM + 0x10) == 0x10
    assert cam.write(0x10, b"frame")
    assert bus.read(RAM + 0x10, 5) == b"frame"
    assert cam.read(0x10, 5) == b"frame"
    (rec,) = bus.dma_log.writes()
    assert (rec.master, rec.bus, rec.phys, rec.size) == ("/soc/camera", 0x10, RAM + 0x10, 5)


def test_dma_outside_window_refused_and_recorded(bus: Bus) -> None:
    cam = bus.view("cam", [DmaWindow(cpu_start=RAM, dma_start=0, size=0x10_0000)])
    bus.clock.advance_to(1234)
    # a CPU physical address programmed where a bus address belongs
    assert not cam.write(RAM + 0x10, b"x" * 4)
    # crossing the end of the window
    assert not cam.write(0x10_0000 - 2, b"abcd")
    assert cam.read(0x20_0000, 4) is None
    refused = bus.dma_log.refused()
    assert [(r.bus, r.size, r.access) for r in refused] == [
        (RAM + 0x10, 4, "write"), (0x10_0000 - 2, 4, "write"), (0x20_0000, 4, "read")]
    assert all(r.time == 1234 for r in refused)
    assert "outside" in refused[0].reason
    assert "crosses" in refused[1].reason
    assert bus.read(RAM + 0x10_0000 - 2, 4) == bytes(4)  # nothing written


def test_window_onto_non_ram_is_refused(bus: Bus) -> None:
    v = bus.view("dev", [DmaWindow(cpu_start=0x2000_0000, dma_start=0, size=0x1000)])
    assert not v.write(0, b"\1")
    assert "not RAM" in bus.dma_log.refused()[0].reason
    ident = bus.view("plain")
    assert ident.write(RAM, b"\1")
    assert not ident.write(RAM + RAM_SIZE, b"\1")


@settings(max_examples=60, deadline=None)
@given(bus_addr=st.integers(0, 0x30_0000), size=st.integers(1, 0x2000))
def test_dma_accepted_iff_inside_one_window(bus_addr: int, size: int) -> None:
    b = Bus(Cpu().uc, VirtualClock())
    b.add_ram("ram", RAM, RAM_SIZE)
    v = b.view("m", [DmaWindow(RAM + 0x1000, 0x10_0000, 0x10_0000)])
    inside = bus_addr >= 0x10_0000 and bus_addr + size <= 0x20_0000
    assert v.write(bus_addr, b"\xaa" * size) == inside
    assert len(b.dma_log.records) == 1
    rec = b.dma_log.records[0]
    assert rec.kind == ("write" if inside else "refused")
    if inside:
        assert rec.phys == RAM + 0x1000 + bus_addr - 0x10_0000
        assert rec.phys is not None
        assert b.read(rec.phys, size) == b"\xaa" * size


@pytest.mark.emulator
@pytest.mark.toolchain
def test_unmodelled_node_is_a_listed_stub(tmp_path: Path) -> None:
    tree = load_board("virt")
    node = tree.ensure_node("/mystery@a000000")
    node.set_prop("compatible", "acme,mystery")
    node.set_prop("reg", [0, 0x0A00_0000, 0, 0x200])
    src = """
.syntax unified
.arm
.global _start
_start:
    ldr r0, =0x0a000010
    ldr r1, [r0]
    str r0, [r0, #4]
    mov r2, r1
    ldr r0, =0x84000008
    mov r1, r2
    hvc #0
"""
    m = Machine(tree)
    m.load_elf(assemble(tmp_path, src, "stub"))
    result = m.run(max_instructions=100_000)
    assert result.reason == "poweroff"
    assert result.exit_status == 0  # the stub read as zero
    (stub,) = m.touched_stubs()
    assert stub["name"] == "/mystery@a000000"
    assert stub["start"] == 0x0A00_0000
    assert stub["accesses"] == 2
    assert any("mystery" in u for u in m.unimplemented())
