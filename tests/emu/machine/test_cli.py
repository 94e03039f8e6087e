"""``emu run``: exit statuses, the JSON result, usage errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from emu.cli import main
from emu.run_cli import RESULT_SCHEMA
from tests.emu.machine import assemble

OFF = """
.syntax unified
.arm
.global _start
_start:
    ldr r0, =0x84000008
    mov r1, #{status}
    hvc #0
    b .
"""


@pytest.mark.emulator
@pytest.mark.toolchain
@pytest.mark.parametrize(("status", "code"), [(0, 0), (3, 1)])
def test_poweroff_status_sets_the_exit_code(tmp_path: Path, status: int, code: int) -> None:
    elf = assemble(tmp_path, OFF.format(status=status), "off")
    out = tmp_path / "r.json"
    rc = main(["run", "--board", "virt", "--elf", str(elf), "--json", str(out),
               "--max-instructions", "100000"], stdout=io.StringIO())
    assert rc == code
    doc = json.loads(out.read_text())
    assert doc["schema"] == RESULT_SCHEMA
    assert doc["exit_code"] == code
    assert doc["result"]["reason"] == "poweroff"
    assert doc["result"]["exit_status"] == status
    assert doc["smccc_calls"][-1]["fid"] == 0x84000008
    assert len(doc["trace_digest"]) == 64
    assert any(r["kind"] == "ram" and r["start"] == 0x4000_0000 for r in doc["memory_map"])


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--board", "virt", "--elf", str(tmp_path / "x.elf"),
                 "--initrd", "rd"]) == 2
    assert "--initrd needs --kernel" in capsys.readouterr().err
    assert main(["run", "--board", "nosuchboard", "--elf", "x"]) == 2
    assert "unknown board" in capsys.readouterr().err
    assert main(["run", "--board", "virt", "--elf", str(tmp_path / "missing.elf")]) == 2
    assert "missing.elf" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["run", "--board", "virt"])
    assert exc.value.code == 2


@pytest.mark.emulator
@pytest.mark.images
def test_uboot_session_from_the_command_line(uboot_bin: Path, tmp_path: Path) -> None:
    console = io.StringIO()
    out = tmp_path / "u.json"
    rc = main(["run", "--board", "virt", "--bios", str(uboot_bin), "--send", "version",
               "--until", "GNU ld", "--max-seconds", "120", "--json", str(out)], stdout=console)
    assert rc == 0
    assert "=> version" in console.getvalue()
    doc = json.loads(out.read_text())
    assert doc["result"]["reason"] == "until"
    assert doc["boot"]["placed"][-1] == {"what": "dtb", "start": 0x4000_0000,
                                         "size": doc["boot"]["placed"][-1]["size"]}


@pytest.mark.emulator
@pytest.mark.images
def test_time_limit_is_a_failure(uboot_bin: Path) -> None:
    rc = main(["run", "--board", "virt", "--bios", str(uboot_bin), "--until", "never printed",
               "--max-instructions", "2000000", "--quiet"], stdout=io.StringIO())
    assert rc == 1


def test_a_dtb_that_is_not_a_device_tree_is_refused(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.dtb"
    bad.write_bytes(b"garbage, not a flattened device tree")
    elf = Path(__file__).resolve().parents[3] / "firmware" / "prebuilt" / "selftest.elf"
    code = main(["run", "--board", "camsoc", "--elf", str(elf), "--dtb", str(bad), "--quiet"],
                stdout=io.StringIO())
    assert code == 2
    err = capsys.readouterr().err
    assert "bad.dtb: not a usable device tree blob" in err
    assert "Traceback" not in err
