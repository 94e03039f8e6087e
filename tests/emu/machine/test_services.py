"""SMCCC dispatch and PSCI 1.0, from Python and from a guest over HVC and SMC."""

from __future__ import annotations

from pathlib import Path

import pytest

from emu.errors import ConfigurationError
from emu.machine import Machine
from emu.services import psci
from emu.services.smccc import Call, SmcccDispatcher, function_id
from tests.emu.machine import assemble


def _psci() -> tuple[SmcccDispatcher, list[tuple[str, int | None]]]:
    stops: list[tuple[str, int | None]] = []
    d = SmcccDispatcher()
    psci.Psci(lambda reason, status: stops.append((reason, status))).register(d)
    return d, stops


def test_unknown_call_is_not_supported() -> None:
    d, _ = _psci()
    assert d.dispatch(Call("hvc", 0x8200_0001, (0,) * 7)) == [0xFFFF_FFFF]


def test_register_rejects_overlap_and_routes() -> None:
    d, _ = _psci()
    sip = function_id(True, False, 2, 0)
    d.register((sip, sip + 0xFF), lambda call: [0, call.args[0] + 1], "CMA")
    assert d.dispatch(Call("smc", sip + 3, (41, 0, 0, 0, 0, 0, 0))) == [0, 42]
    with pytest.raises(ConfigurationError, match="overlaps"):
        d.register((0x8400_0005, 0x8400_0005), lambda call: [0])


def test_psci_answers() -> None:
    d, stops = _psci()
    call = lambda fid, *a: d.dispatch(Call("hvc", fid, (*a, *(0,) * (7 - len(a)))))[0]  # noqa: E731
    assert call(psci.PSCI_VERSION) == 0x0001_0000
    assert call(psci.PSCI_FEATURES, psci.SYSTEM_OFF) == 0
    assert call(psci.PSCI_FEATURES, psci.CPU_ON) == 0xFFFF_FFFF
    assert call(psci.CPU_ON, 1, 0x4000_0000, 0) == 0xFFFF_FFFF
    assert call(psci.MIGRATE_INFO_TYPE) == 2
    assert call(psci.AFFINITY_INFO, 0, 0) == 0
    assert stops == []
    call(psci.SYSTEM_OFF, 3)
    call(psci.SYSTEM_RESET)
    assert stops == [("poweroff", 3), ("reset", None)]


@pytest.mark.emulator
@pytest.mark.toolchain
def test_guest_psci_over_hvc_and_smc(tmp_path: Path) -> None:
    src = """
.syntax unified
.arm
.global _start
_start:
    ldr r0, =0x84000000
    hvc #0
    mov r4, r0
    ldr r0, =0x8400000a
    ldr r1, =0x84000008
    smc #0
    mov r5, r0
    ldr r0, =0x8400000a
    ldr r1, =0x84000003
    hvc #0
    mov r6, r0
    ldr r0, =0x12345678
    smc #0
    mov r7, r0
    ldr r0, =0x84000008
    mov r1, #42
    hvc #0
    b .
"""
    m = Machine("virt")
    m.load_elf(assemble(tmp_path, src, "psci"))
    result = m.run(max_instructions=100_000)
    assert (result.reason, result.exit_status) == ("poweroff", 42)
    assert [m.cpu.reg(n) for n in (4, 5, 6, 7)] == [0x10000, 0, 0xFFFF_FFFF, 0xFFFF_FFFF]
    assert [c for c, _f, _r in m.smccc.calls] == ["hvc", "smc", "hvc", "smc", "hvc"]


@pytest.mark.emulator
@pytest.mark.toolchain
def test_guest_reset_ends_the_run(tmp_path: Path) -> None:
    src = """
.syntax unified
.arm
.global _start
_start:
    ldr r0, =0x84000009
    hvc #0
    b .
"""
    m = Machine("virt")
    m.load_elf(assemble(tmp_path, src, "reset"))
    assert m.run(max_instructions=100_000).reason == "reset"
