"""Machine construction from device trees: CPU models, DMA views, determinism of a guest."""

from __future__ import annotations

from pathlib import Path

import pytest

from emu.errors import ConfigurationError
from emu.machine import Machine
from tests.emu.machine import assemble

pytestmark = pytest.mark.emulator


@pytest.mark.parametrize(("cpu", "midr_part"), [("cortex-a15", 0xC0F), ("cortex-a9", 0xC09),
                                                ("cortex-a7", 0xC07)])
def test_cpu_models(cpu: str, midr_part: int) -> None:
    m = Machine("virt", cpu=cpu)
    assert (m.cpu.read_cp15(0, 0, 0, 0) >> 4) & 0xFFF == midr_part


def test_unknown_cpu_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="not 'cortex-m0'"):
        Machine("virt", cpu="cortex-m0")


def test_virt_map_matches_the_board() -> None:
    m = Machine("virt")
    kinds = {r.name: (r.start, r.kind) for r in m.bus.regions}
    assert kinds["/memory@40000000"] == (0x4000_0000, "ram")
    assert kinds["/pl011@9000000"] == (0x0900_0000, "mmio")
    assert kinds["/flash@0#0"] == (0, "flash")
    assert kinds["/flash@0#1"] == (0x0400_0000, "flash")
    assert m.gic is not None
    assert m.timer is not None
    assert m.uart is not None
    assert m.timer.frequency == 62_500_000


def test_camsoc_masters_get_their_own_views() -> None:
    m = Machine("camsoc")
    cam = next(v for k, v in m.views.items() if "camera" in k)
    disp = next(v for k, v in m.views.items() if "clcd" in k)
    # the same physical byte has two different bus addresses
    assert cam.to_bus(0x4000_1000) != disp.to_bus(0x4000_1000)
    assert cam.to_phys(cam.to_bus(0x4000_1000) or 0) == 0x4000_1000
    assert disp.to_phys(disp.to_bus(0x4000_1000) or 0) == 0x4000_1000


@pytest.mark.toolchain
def test_same_guest_same_trace(tmp_path: Path) -> None:
    src = """
.syntax unified
.arm
.global _start
_start:
    ldr r4, =0x09000000
    mov r5, #0
1:  mrrc p15, 1, r2, r3, c14     @ the counter: answered from virtual time
    and r2, r2, #0x3f
    add r2, r2, #0x30
    str r2, [r4]
    add r5, r5, #1
    cmp r5, #40
    bne 1b
    ldr r0, =0x84000008
    mov r1, #0
    hvc #0
"""
    elf = assemble(tmp_path, src, "det")
    runs = []
    for _ in range(2):
        m = Machine("virt")
        m.load_elf(elf)
        r = m.run(max_instructions=1_000_000)
        assert r.reason == "poweroff"
        runs.append((bytes(m.console), r.instructions, m.trace_digest()))
    assert runs[0] == runs[1]
    assert len(runs[0][0]) == 40
