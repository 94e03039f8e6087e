"""``emu dt map`` and ``emu dt dump`` through the real entry point."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from emu.cli import main


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), stdout=out)
    return code, out.getvalue()


def test_map_json_schema_on_camsoc() -> None:
    code, text = run("dt", "map", "camsoc", "--json")
    assert code == 0
    report = json.loads(text)
    assert report["schema"] == "emu.dt.map/1"
    assert report["board"] == "camsoc"
    devices = {d["path"]: d for d in report["devices"]}
    camera = devices["/soc/cambus@10000000/camera@0"]
    assert camera["compatible"] == ["camsoc,camera-dma"]
    assert camera["reg"] == [
        {
            "cpu_start": 0x10000000,
            "size": 0x1000,
            "cpu_start_hex": "0x10000000",
            "size_hex": "0x1000",
        }
    ]
    dma = camera["dma"]
    assert dma["kind"] == "windows"
    assert dma["windows"] == [
        {
            "dma_start": 0,
            "cpu_start": 0x40000000,
            "size": 0x10000000,
            "dma_start_hex": "0x0",
            "cpu_start_hex": "0x40000000",
            "size_hex": "0x10000000",
        }
    ]
    assert dma["source"] == "/soc/cambus@10000000"
    assert dma["bus_dma_limit"] == 0x0FFFFFFF
    assert devices["/soc/pl011@9000000"]["dma"]["kind"] == "identity"
    assert devices["/memory@40000000"]["dma"] == {"kind": "none"}
    assert devices["/cpus/cpu@0"]["reg_error"] is not None


def test_map_table_shows_both_offsets() -> None:
    code, text = run("dt", "map", "camsoc-alias")
    assert code == 0
    camera_line = next(line for line in text.splitlines() if "camera@0" in line)
    assert "0xc0000000 -> 0x40000000, 0x10000000" in camera_line
    assert "0x10000000 +0x1000" in camera_line


def test_dump_prints_dts_and_writes_dtb(tmp_path: Path) -> None:
    code, text = run("dt", "dump", "virt")
    assert code == 0
    assert "pl011@9000000 {" in text
    out = tmp_path / "virt.dtb"
    code, _ = run("dt", "dump", "virt", "--dtb", str(out))
    assert code == 0
    assert out.read_bytes()[:4] == b"\xd0\x0d\xfe\xed"


def test_user_errors_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _ = run("dt", "map", "nosuchboard")
    assert code == 2
    assert capsys.readouterr().err.startswith("emu: error: unknown board 'nosuchboard'")
    bad = tmp_path / "bad.dts"
    bad.write_text("/dts-v1/;\n/ { x = <1; };\n")
    code, _ = run("dt", "map", str(bad))
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"emu: error: dtc failed on {bad}")
    assert "Traceback" not in err
