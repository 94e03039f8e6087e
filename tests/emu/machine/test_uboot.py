"""Debian's stock U-Boot (qemu_arm) on board ``virt``: prompt, commands, determinism, QEMU."""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
from pathlib import Path

import pytest

from emu.devices.mtd.cfi_flash import CMD_QUERY, CfiFlash
from emu.machine import Machine, RunResult
from tests.conftest import need_image, need_tool

pytestmark = [pytest.mark.emulator, pytest.mark.images]

BANNER = re.compile(r"U-Boot 20\d\d\.\d\d\S* \(.*\)")


def _boot(uboot: Path, commands: tuple[str, ...] = (),
          until: str = "=> ") -> tuple[Machine, RunResult]:
    m = Machine("virt")
    m.load_bios(uboot)
    for c in commands:
        m.send(c + "\r", after="=> ")
    return m, m.run(until_console=until, max_seconds=120)


@pytest.fixture(scope="module")
def session() -> tuple[Machine, RunResult, str]:
    m, r = _boot(need_image("u-boot-qemu-arm.bin"), ("version", "bdinfo"), until="sp start")
    return m, r, m.console.decode(errors="replace")


def test_reaches_the_prompt_and_runs_commands(session: tuple[Machine, RunResult, str]) -> None:
    _m, r, text = session
    assert r.reason == "until"
    assert BANNER.search(text)
    assert "DRAM:  128 MiB" in text
    assert "=> version" in text
    # `version` prints the banner again plus the toolchain
    assert len(BANNER.findall(text)) == 2
    assert "arm-linux-gnueabihf-gcc" in text


def test_bdinfo_matches_the_memory_node(session: tuple[Machine, RunResult, str]) -> None:
    m, _r, text = session
    (start, size), = m.tree.memory_banks()
    assert re.search(rf"-> start\s+= 0x{start:08x}", text)
    assert re.search(rf"-> size\s+= 0x{size:08x}", text)
    assert (start, size) == (0x4000_0000, 0x0800_0000)
    # U-Boot found the DTB the machine put at the start of RAM
    assert "devicetree  = board" in text


def test_flash_is_read_only_for_the_guest(session: tuple[Machine, RunResult, str]) -> None:
    m, _r, _text = session
    image = need_image("u-boot-qemu-arm.bin").read_bytes()
    # U-Boot probed the flash with CFI commands; the bytes did not change
    assert m.bus.read(0, len(image)) == image
    parts = [p for _r, p in m.bus.flash_parts() if isinstance(p, CfiFlash)]
    assert len(parts) == 2
    assert all(p.reads_array for p in parts)
    assert CMD_QUERY in parts[0].commands


def test_timer_was_intercepted(session: tuple[Machine, RunResult, str]) -> None:
    m, _r, _text = session
    assert m.intercept is not None
    assert m.intercept.stats["sites"] >= 2  # counter reads before and after relocation
    assert m.intercept.stats["emulated"] > 100
    # the 2 s autoboot countdown ran on virtual time
    assert m.clock.now / m.clock.hz >= 2.0


@pytest.mark.slow
def test_two_runs_are_identical(uboot_bin: Path) -> None:
    m1, r1 = _boot(uboot_bin)
    m2, r2 = _boot(uboot_bin)
    assert r1.reason == r2.reason == "until"
    assert r1.instructions == r2.instructions
    assert m1.console == m2.console
    assert m1.trace_digest() == m2.trace_digest()


@pytest.mark.slow
def test_prompt_wall_time(uboot_bin: Path) -> None:
    t0 = time.perf_counter()
    _m, r = _boot(uboot_bin)
    assert r.reason == "until"
    assert time.perf_counter() - t0 < 30  # measured ~0.6 s; a generous ceiling for busy hosts


def _qemu_transcript(uboot: Path) -> str:
    qemu = need_tool("qemu-system-arm")
    proc = subprocess.Popen(
        [qemu, "-M", "virt", "-m", "128M", "-bios", str(uboot), "-nographic",
         "-monitor", "none", "-serial", "stdio", "-nic", "none"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    out = b""
    deadline = time.monotonic() + 60
    sent = 0
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if ready:
                out += os.read(fd, 65536)
            prompts = out.count(b"=> ")
            if prompts > sent and sent < 2:
                proc.stdin.write([b"version\r", b"bdinfo\r"][sent])
                proc.stdin.flush()
                sent += 1
            if b"sp start" in out:
                time.sleep(0.3)
                break
    finally:
        proc.kill()
        proc.wait()
    return out.decode(errors="replace")


@pytest.mark.slow
def test_console_matches_qemu(uboot_bin: Path, session: tuple[Machine, RunResult, str]) -> None:
    ours = session[2].replace("\r", "")
    theirs = _qemu_transcript(uboot_bin).replace("\r", "")
    assert "sp start" in theirs, theirs[-2000:]

    def lines(text: str, start: str, end: str) -> list[str]:
        block = text[text.index(start):]
        return block[: block.index(end)].splitlines()

    # the `version` answer is identical
    assert lines(ours, "=> version", "=> bdinfo") == lines(theirs, "=> version", "=> bdinfo")
    # bdinfo: the lines that describe the machine (not the emulator's devices) are identical
    keys = ("DRAM bank", "-> start", "-> size", "flashstart", "baudrate", "relocaddr",
            "reloc off", "Build", "arch_number", "TLB addr", "boot_params", " memory[0]")

    def pick(text: str) -> list[str]:
        return [ln for ln in text[text.index("=> bdinfo"):].splitlines() if ln.startswith(keys)]

    assert pick(ours) == pick(theirs)
    # the boot banner up to DRAM is identical, and so is the flash size U-Boot found
    assert lines(ours, "U-Boot", "Core:") == lines(theirs, "U-Boot", "Core:")
    flash = [ln for ln in ours.splitlines() if ln.startswith("Flash:")]
    assert flash == [ln for ln in theirs.splitlines() if ln.startswith("Flash:")] != []


def test_interactive_session_in_steps() -> None:
    m = Machine("virt")
    m.load_bios(need_image("u-boot-qemu-arm.bin"))
    assert m.run(until_console="=> ", max_seconds=120).reason == "until"
    before = len(m.console)
    # the prompt is already on screen: a new run must not stop on it again
    m.send("echo hello-from-the-harness\r")
    r = m.run(until_console="=> ", max_seconds=120)
    assert r.reason == "until"
    tail = m.console[before:].decode(errors="replace")
    assert "\nhello-from-the-harness" in tail.replace("\r", "")
