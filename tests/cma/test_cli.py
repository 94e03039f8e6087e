"""``python -m cma`` and the ``emu cma`` sub-command."""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cma.cli import main, register
from tests.conftest import need_tool

CMDLINE = "console=ttyAMA0 cma=r=16M;v=8M@0x48000000/1M:bitmap cma_map=camera=r,v;*=v"


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), stdout=out), out.getvalue()


def test_table_shows_the_layout() -> None:
    status, text = run("--cmdline", CMDLINE, "--ram", "0x40000000:256M")
    assert status == 0
    header = next(line for line in text.splitlines() if "name" in line)
    for column in ("name", "base", "end", "size", "alignment", "allocator", "source", "flags"):
        assert column in header
    row_v = next(line for line in text.splitlines() if " v " in line)
    assert "0x48000000" in row_v
    assert "0x48800000" in row_v
    assert "8 MiB" in row_v
    assert "bitmap" in row_v
    assert "1 MiB" in row_v
    assert "cmdline" in row_v
    row_r = next(line for line in text.splitlines() if " r " in line)
    assert "0x4f000000" in row_r
    assert "0x50000000" in row_r
    assert "bf" in row_r


def test_json_output() -> None:
    status, text = run("--cmdline", CMDLINE, "--ram", "0x40000000:256M", "--device", "camera",
                       "--device", "uart", "--kind", "preview", "--json")
    assert status == 0
    doc = json.loads(text)
    assert doc["page_size"] == 4096
    assert doc["ram"] == [{"start": 0x40000000, "size": 256 << 20}]
    assert [r["name"] for r in doc["regions"]] == ["v", "r"]  # sorted by address
    assert doc["regions"][0]["base"] == 0x48000000
    camera, uart = doc["devices"]
    assert camera["regions"] == ["r", "v"]
    assert camera["info"]["count"] == 2
    assert camera["kind"] == "preview"
    assert uart["regions"] == ["v"]
    assert uart["info"]["total_size"] == 8 << 20


def test_device_table_and_unserved_devices() -> None:
    status, text = run("--cmdline", "cma=r=1M cma_map=camera=r", "--ram", "0x40000000:64M",
                       "--device", "camera", "--device", "gpu")
    assert status == 0
    assert any("camera" in line and "r" in line and "1 MiB" in line
               for line in text.splitlines())
    assert any("gpu" in line and "none" in line for line in text.splitlines())


def test_dma_window_constrains_placement() -> None:
    status, text = run("--cmdline", "cma=r=1M cma_map=cam=r", "--ram", "0x40000000:256M",
                       "--device", "cam", "--dma-window", "cam=0x40000000:0xc0000000:16M",
                       "--json")
    assert status == 0
    (region,) = json.loads(text)["regions"]
    assert region["end"] == 0x41000000


def test_defaults_used_when_the_command_line_is_silent() -> None:
    status, text = run("--cmdline", "quiet", "--defaults", "cma=d=2M cma_map=*=d",
                       "--ram", "0x40000000:64M", "--json")
    assert status == 0
    assert [r["name"] for r in json.loads(text)["regions"]] == ["d"]


def test_page_size_option() -> None:
    status, text = run("--cmdline", "cma=r=5K", "--ram", "0x40000000:64M", "--page-size", "64K",
                       "--json")
    assert status == 0
    assert json.loads(text)["regions"][0]["size"] == 64 * 1024


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cmdline", "cma=r=16M/3K", "--ram", "0x40000000:256M"],
         "alignment must be a power of two"),
        (["--cmdline", "cma=r=1G", "--ram", "0x40000000:256M"], "no room for region 'r'"),
        (["--cmdline", "cma=r=1M"], "give the RAM with --ram"),
        (["--ram", "0x40000000"], "--ram must be START:SIZE"),
        (["--ram", "0x40000000:lots"], "RAM size must be a number"),
        (["--ram", "0x40000000:1M", "--page-size", "3000"], "page size must be a power of two"),
        (["--ram", "0x40000000:1M", "--dma-window", "cam=1:2"], "DEVICE=CPU:DMA:SIZE"),
        (["--dtb", "/nonexistent/board.dtb"], "No such file"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--cmdline", "cma=r=1M cma_map=x=nope", "--ram", "0x40000000:64M"],
         "unknown region 'nope'"),
    ],
)
def test_errors_are_one_line_with_status_2(argv: list[str], message: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    assert main(argv, stdout=out) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("cma: error: ")
    assert message in err
    assert out.getvalue() == ""


def test_debug_shows_the_traceback() -> None:
    from cma.errors import PlacementError

    with pytest.raises(PlacementError):
        main(["--debug", "--cmdline", "cma=r=1G", "--ram", "0x40000000:256M"],
             stdout=io.StringIO())


def test_help_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"], stdout=io.StringIO()) == 0
    assert "--cmdline" in capsys.readouterr().out


def test_dtb_input(tmp_path: Path) -> None:
    need_tool("dtc")
    dts = """/dts-v1/;
/ {
    #address-cells = <1>; #size-cells = <1>;
    memory@40000000 { device_type = "memory"; reg = <0x40000000 0x8000000>; };
    reserved-memory {
        #address-cells = <1>; #size-cells = <1>; ranges;
        pool@44000000 { compatible = "shared-dma-pool"; no-map; reg = <0x44000000 0x200000>; };
    };
};
"""
    blob = tmp_path / "board.dtb"
    subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(blob)], input=dts.encode(),
                   check=True)
    status, text = run("--dtb", str(blob), "--cmdline", "cma=4M", "--json")
    assert status == 0
    doc = json.loads(text)
    assert doc["ram"] == [{"start": 0x40000000, "size": 0x8000000}]
    regions = {r["name"]: r for r in doc["regions"]}
    assert regions["pool@44000000"]["base"] == 0x44000000
    assert regions["pool@44000000"]["flags"] == ["fixed", "no-map"]
    assert regions["pool@44000000"]["source"] == "devicetree"
    assert sum(r["size"] == 4 << 20 for r in regions.values()) == 1


def test_register_adds_an_emu_subcommand() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["cma", "--cmdline", "cma=r=1M", "--ram", "0x40000000:64M",
                              "--json"])
    args.stdout = io.StringIO()
    assert args.func(args) == 0
    assert json.loads(args.stdout.getvalue())["regions"][0]["name"] == "r"


def test_python_dash_m() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cma", "--cmdline", "cma=r=1M", "--ram", "0x40000000:64M",
         "--json"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["regions"][0]["size"] == 1 << 20
    bad = subprocess.run([sys.executable, "-m", "cma", "--ram", "nope"], capture_output=True,
                         text=True, check=False)
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1
    assert "Traceback" not in bad.stderr
