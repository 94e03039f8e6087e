"""Tests of the machine (bus, CPU services, loaders, run loop) and a guest assembler helper."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import need_tool

RAM_BASE = 0x4000_0000


def assemble(tmp_path: Path, source: str, name: str = "guest", base: int = RAM_BASE) -> Path:
    """Assemble and link ``source`` (GNU as syntax) into an ELF at ``base``; returns its path."""
    gas = need_tool("arm-none-eabi-as")
    ld = need_tool("arm-none-eabi-ld")
    src = tmp_path / f"{name}.s"
    obj = tmp_path / f"{name}.o"
    elf = tmp_path / f"{name}.elf"
    src.write_text(source)
    for cmd in ([gas, "-march=armv7ve", "-o", str(obj), str(src)],
                [ld, "-N", "-e", "_start", f"-Ttext=0x{base:x}", "-o", str(elf), str(obj)]):
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode:
            raise AssertionError(f"{cmd[0]} failed:\n{done.stderr}")
    return elf
