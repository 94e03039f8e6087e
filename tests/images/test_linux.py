"""Debian's armmp Linux on board ``virt`` to a busybox shell, with the CMA pools we publish.

Each boot goes through ``emu run`` (the JSON result is what is checked) with the
initramfs built by ``scripts/build-initramfs``. ``cryptomgr.notests=1`` skips the
kernel's crypto self-tests (RSA alone is over a second of virtual time), which keeps a
boot to ``poweroff`` near ten seconds of wall time.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest

from emu.cli import main
from emu.loaders.initramfs import READY_MARKER
from tests.conftest import need_image

pytestmark = [pytest.mark.emulator, pytest.mark.images, pytest.mark.slow]

APPEND = "console=ttyAMA0 earlycon=pl011,0x9000000 cryptomgr.notests=1"
POOL = re.compile(r"Reserved memory: created CMA memory pool at (0x[0-9a-f]+), size (\d+) MiB")
KERNEL_CMA = re.compile(r"cma: Reserved (\d+) MiB at (0x[0-9a-f]+)")
CMA_TOTAL = re.compile(r"CmaTotal:\s+(\d+) kB")
MIB = 1 << 20


def boot(tmp_path: Path, append: str, cma: str | None = None,
         commands: tuple[str, ...] = ("cat /proc/meminfo",), board: str = "virt",
         extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """Boot to the shell, type ``commands`` and ``poweroff -f``; the JSON result.

    ``extra`` are more ``emu run`` options (``--dma-policy``, ``--png`` ...).
    """
    out = tmp_path / "run.json"
    argv = ["run", "--board", board, "--kernel", str(need_image("vmlinuz")),
            "--host-decompress", "--initrd", str(need_image("initramfs.cpio.gz")),
            "--append", append, "--prompt", "# ", "--max-seconds", "240", "--quiet",
            *extra, "--json", str(out)]
    if cma is not None:
        argv += ["--cma", cma]
    for c in (*commands, "poweroff -f"):
        argv += ["--send", c]
    code = main(argv, stdout=io.StringIO())
    doc: dict[str, Any] = json.loads(out.read_text())
    assert code == doc["exit_code"]
    return doc


def cma_total(console: str) -> int:
    found = CMA_TOTAL.findall(console)
    assert found, "no CmaTotal line: /proc/meminfo was not printed"
    return int(found[-1]) * 1024


@pytest.fixture(scope="module")
def shell_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    # 2010 syntax for our core; cma=0 stops the kernel adding its own 16 MiB default area
    return boot(tmp_path_factory.mktemp("linux"), APPEND + " cma=0",
                cma="cma=cam=16M cma_map=camera=cam",
                commands=("cat /proc/meminfo", "cat /proc/iomem"))


def test_boots_to_the_shell_and_powers_off(shell_run: dict[str, Any]) -> None:
    console = shell_run["console"]
    assert READY_MARKER in console
    assert "BusyBox v1." in console
    assert "built-in shell (ash)" in console
    assert shell_run["result"]["reason"] == "poweroff"
    assert shell_run["result"]["exit_status"] == 0
    assert shell_run["exit_code"] == 0
    assert "reboot: Power down" in console
    assert "overlaps in-use memory region" not in console  # the initrd was kept


def test_proc_iomem_shows_the_board(shell_run: dict[str, Any]) -> None:
    console = shell_run["console"].replace("\r", "")
    ram = [r for r in shell_run["memory_map"] if r["kind"] == "ram"]
    assert len(ram) == 1
    start, size = ram[0]["start"], ram[0]["size"]
    assert f"{start:08x}-{start + size - 1:08x} : System RAM" in console
    assert re.search(r"^\s+09000000-09000fff : 9000000\.pl011", console, re.M)
    assert re.search(r"^\s+402[0-9a-f]{5}-[0-9a-f]{8} : Kernel code", console, re.M)


def test_cma_total_is_our_pool(shell_run: dict[str, Any]) -> None:
    regions = shell_run["system"]["cma"]["regions"]
    assert [r["name"] for r in regions] == ["cam"]
    assert cma_total(shell_run["console"]) == regions[0]["size"] == 16 * MIB
    assert not KERNEL_CMA.search(shell_run["console"])


def test_linux_creates_the_pool_at_our_address(shell_run: dict[str, Any]) -> None:
    (region,) = shell_run["system"]["cma"]["regions"]
    pools = [(int(a, 16), int(s) * MIB) for a, s in POOL.findall(shell_run["console"])]
    assert pools == [(region["base"], region["size"])]
    (published,) = shell_run["system"]["pools"]
    assert (published["base"], published["size"]) == (region["base"], region["size"])


def test_modern_cma_is_the_default_pool(tmp_path: Path) -> None:
    doc = boot(tmp_path, APPEND, cma="cma=16M")
    (region,) = doc["system"]["cma"]["regions"]
    (published,) = doc["system"]["pools"]
    assert published["default"]
    console = doc["console"]
    assert [(int(a, 16), int(s) * MIB) for a, s in POOL.findall(console)] \
        == [(region["base"], region["size"])]
    # linux,cma-default: the kernel takes our pool as its default and reserves no other
    assert not KERNEL_CMA.search(console)
    assert cma_total(console) == region["size"]
    assert doc["exit_code"] == 0


def test_kernel_cma_is_left_to_the_kernel(tmp_path: Path) -> None:
    doc = boot(tmp_path, APPEND + " cma=32M")
    console = doc["console"]
    assert "system" not in doc or not doc["system"]["pools"]  # we publish nothing
    assert not POOL.search(console)
    (size_mib, _at), = KERNEL_CMA.findall(console)
    assert int(size_mib) * MIB == cma_total(console) == 32 * MIB
    assert doc["exit_code"] == 0
