"""Tests of emu.dt: device trees, address translation, DMA views, guest DTBs, boards."""

from __future__ import annotations

import subprocess

from emu.dt.tree import DeviceTree
from tests.conftest import need_tool


def dts(text: str) -> DeviceTree:
    """Compile a DTS snippet (``/dts-v1/;`` is prepended) with dtc."""
    need_tool("dtc")
    return DeviceTree.from_dts("/dts-v1/;\n" + text)


def dtc_decompile(blob: bytes) -> str:
    """What ``dtc -I dtb -O dts`` makes of ``blob``; fails the test if dtc rejects it."""
    dtc = need_tool("dtc")
    result = subprocess.run(
        [dtc, "-I", "dtb", "-O", "dts", "-"], input=blob, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()
