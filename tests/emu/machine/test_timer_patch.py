"""The timer intercept's ``patch`` mode: sites rewritten to UDF and emulated from the trap."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emu.cpu.cp15 import PATCH_BASE, udf_encoding, udf_immediate
from emu.machine import Machine


@given(st.integers(0, 0xFFFF), st.booleans())
def test_udf_immediate_round_trip(imm: int, thumb: bool) -> None:
    raw = udf_encoding(imm, thumb)
    assert len(raw) == 4
    assert udf_immediate(raw, thumb) == imm


def test_udf_encodings_are_the_architected_ones() -> None:
    assert udf_encoding(0x0012, False) == struct.pack("<I", 0xE7F001F2)  # Linux's BUG()
    assert udf_encoding(0x1234, True) == struct.pack("<HH", 0xF7F1, 0xA234)
    assert udf_immediate(struct.pack("<I", 0xEC532F1E), False) is None   # an mrrc is not UDF


@pytest.mark.emulator
def test_cntv_cval_write_reaches_the_timer_through_the_patched_site(tmp_path: Path) -> None:
    code = [0xE3010234,  # movw r0, #0x1234
            0xE3A01000,  # mov r1, #0
            0xEC410F3E,  # mcrr p15, 3, r0, r1, c14   (CNTV_CVAL; Unicorn alone drops it)
            0xEAFFFFFE]  # b .
    image = tmp_path / "cval.bin"
    image.write_bytes(struct.pack("<4I", *code))
    m = Machine("virt")
    assert m.intercept is not None
    assert m.intercept.mode == "patch"
    m.load_raw(image, 0x4001_0000)
    result = m.run(max_instructions=5000)
    assert result.reason == "max-instructions"
    assert m.timer is not None
    assert m.timer.read_cp15("CNTV_CVAL") == 0x1234
    patched = m.bus.read(0x4001_0008, 4)
    imm = udf_immediate(patched, False)
    assert imm is not None
    assert m.intercept.originals[imm - PATCH_BASE] == (0xEC410F3E, False)
    assert m.exceptions.counts.get("undef", 0) == 0  # handled, never a guest exception
