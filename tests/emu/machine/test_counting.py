"""Virtual time counted per translated block (native hook) against Unicorn's own counter."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from emu.benchmarks.cpu import BUFFER, DRIVER, alu_load_store, machine
from emu.cpu import blockclock
from emu.errors import ConfigurationError
from emu.loaders.boot import BootPlan
from emu.machine import Machine
from tests.conftest import _missing


def _need_native() -> None:
    if not blockclock.available():
        _missing("emu._blockclock is not built; run scripts/bootstrap")


def _final_state(m: Machine) -> tuple[list[int], str]:
    regs = [m.cpu.reg(i) for i in range(9)]
    return regs, hashlib.sha256(m.bus.read(BUFFER, 0x10000)).hexdigest()


def test_the_native_counter_is_built_and_is_the_default() -> None:
    _need_native()
    assert Machine("virt").counting == "blocks"
    assert Machine("virt", counting="instructions").block_clock is None


def test_an_unknown_counting_mode_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="'cycles'"):
        Machine("virt", counting="cycles")


@pytest.mark.emulator
def test_both_modes_end_in_the_same_state_and_blocks_count_exactly() -> None:
    _need_native()
    work = alu_load_store(20_000)
    states: dict[str, tuple[list[int], str]] = {}
    counts: dict[str, int] = {}
    for mode in ("blocks", "instructions"):
        m = Machine("virt", counting=mode)
        _wall, m = machine(work, m)
        states[mode] = _final_state(m)
        counts[mode] = m.instructions
    assert states["blocks"] == states["instructions"]
    # 5 set-up instructions, 8 per turn, then movw/movt/hvc: every one counted, no more
    assert counts["blocks"] == 5 + 8 * 20_000 + 3
    # Unicorn's counter runs whole slices and counts the last one whole
    assert counts["instructions"] >= counts["blocks"]


@pytest.mark.emulator
def test_a_slice_passes_its_budget_by_less_than_a_block() -> None:
    _need_native()
    work = alu_load_store(1_000_000)
    m = Machine("virt")
    _wall, m = machine(work, m, run=False)
    result = m.run(max_instructions=10_000)
    assert result.reason == "max-instructions"
    assert 10_000 <= result.instructions < 10_000 + 8  # the loop block is 8 instructions


@pytest.mark.emulator
def test_single_steps_stay_exact_in_block_mode() -> None:
    _need_native()
    work = alu_load_store(1_000)
    m = Machine("virt")
    _wall, m = machine(work, m, run=False)
    m.run(max_instructions=20)  # into the loop
    for _ in range(10):
        pc = m.cpu.pc
        result = m.run(max_instructions=1)
        assert result.instructions == 1
        assert m.cpu.pc in (pc + 4, pc - 28)  # the next instruction, or back to the loop top
    result = m.run(max_instructions=1_000_000)
    assert result.reason == "poweroff"


#: Thumb-2: movs r0, #200; loop: adds r1, #1; add.w r2, r2, #3; subs r0, #1; bne loop;
#: movw r0, #8; movt r0, #0x8400; hvc #0 (16- and 32-bit instructions mixed)
THUMB = bytes.fromhex("c820013102f103020138fad140f20800c8f20040e0f70080")


@pytest.mark.emulator
@pytest.mark.parametrize("mode", ["blocks", "instructions"])
def test_thumb_blocks_are_counted_by_instruction_not_by_halfword(tmp_path: Any,
                                                                 mode: str) -> None:
    _need_native()
    image = tmp_path / "thumb.bin"
    image.write_bytes(THUMB)
    m = Machine("virt", counting=mode)
    m.load_raw(image, DRIVER)
    m.boot = BootPlan(entry=DRIVER, thumb=True, placed=m.boot.placed if m.boot else [])
    result = m.run(max_instructions=10_000_000)
    assert result.reason == "poweroff"
    regs = m.boot.regs if m.boot else {}
    start = [regs.get(1, 0), regs.get(2, 0)]  # the boot protocol's r1 and r2
    assert [m.cpu.reg(1), m.cpu.reg(2)] == [(start[0] + 200) & 0xFFFF_FFFF,
                                            (start[1] + 600) & 0xFFFF_FFFF]
    expected = 1 + 4 * 200 + 3  # 805 instructions in 50 bytes of loop and 20 of the rest
    if mode == "blocks":
        assert result.instructions == expected
    else:
        assert result.instructions >= expected
