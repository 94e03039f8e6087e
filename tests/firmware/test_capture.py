"""The prebuilt capture firmware end to end: CMA buffers, bus addresses, IRQ-driven frames.

Every test runs ``firmware/prebuilt/capture.elf`` through ``emu run`` (``emu.cli.main``) with
a JSON result and checks both sides: what the guest printed (three addresses per buffer, one
verdict per frame) and what the harness saw (every frame landing in a live chunk, or the DMA
checker naming the exact driver bug).
"""

from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need_tool

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "firmware" / "prebuilt" / "capture.elf"
BOARDS_DIR = ROOT / "emu" / "boards"

RAM_BASE = 0x4000_0000
LINEAR_VA = 0x8000_0000  # the firmware's linear map (docs/firmware.md)
#: where the camera sees RAM_BASE on each board (its cambus dma-ranges)
CAMERA_BUS_BASE = {"camsoc": 0x0000_0000, "camsoc-alias": 0xC000_0000}
BOARDS = sorted(CAMERA_BUS_BASE)

CMA_2010 = "cma=cam=16M cma_map=camera=cam"
CMA_2010_FIXED = "cma=cam=8M@0x48000000;other=4M cma_map=camera=cam"
CMA_MODERN = "cma=32M"
SMALL = "width=160 height=120"

BUFFER_LINE = re.compile(r"^buffer (\d+) phys 0x([0-9a-f]{8}) bus 0x([0-9a-f]{8}) "
                         r"va 0x([0-9a-f]{8})\r?$", re.MULTILINE)
FRAME_LINE = re.compile(r"^frame (\d+) slot (\d+) bus 0x([0-9a-f]{8}) phys 0x([0-9a-f]{8}) "
                        r"va 0x([0-9a-f]{8}) crc 0x([0-9a-f]{8}) (ok|BAD \(.*\))\r?$",
                        re.MULTILINE)
SUMMARY = re.compile(r"^capture: (\d+) frames verified, (\d+) dropped, (\d+) errors\r?$",
                     re.MULTILINE)

def run_capture(tmp_path: Path, board: str, append: str, cma: str = CMA_2010,
                png: bool = False) -> tuple[int, dict[str, Any]]:
    """Run the prebuilt capture firmware; returns ``emu run``'s exit code and its JSON."""
    from emu.cli import main

    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "run.json"
    argv = ["run", "--board", board, "--elf", str(CAPTURE), "--append", append,
            "--cma", cma, "--json", str(out), "--quiet", "--max-seconds", "120"]
    if png:
        argv += ["--png", str(tmp_path / "png")]
    code = main(argv, stdout=io.StringIO())
    return code, json.loads(out.read_text())


def buffers(doc: dict[str, Any]) -> list[tuple[int, int, int]]:
    """(phys, bus, va) of every buffer the guest printed, in order."""
    lines = BUFFER_LINE.findall(doc["console"])
    assert [int(n) for n, *_ in lines] == list(range(len(lines)))
    return [(int(p, 16), int(b, 16), int(v, 16)) for _, p, b, v in lines]


def violations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(doc["system"]["dma"]["violations"])


def assert_good_capture(doc: dict[str, Any], code: int, board: str, frames: int,
                        nbuf: int) -> None:
    console = doc["console"]
    assert code == 0, console[-1500:]
    assert doc["result"]["reason"] == "poweroff"
    assert doc["result"]["exit_status"] == 0
    assert "capture: PASS" in console
    assert doc["failures"] == []
    assert violations(doc) == []
    assert doc["guest_errors"] == []

    offset = CAMERA_BUS_BASE[board]
    bufs = buffers(doc)
    assert len(bufs) == nbuf
    for phys, bus, va in bufs:
        assert bus == (phys - RAM_BASE + offset) & 0xFFFF_FFFF, (hex(phys), hex(bus))
        assert bus != phys
        assert va == phys - RAM_BASE + LINEAR_VA
        assert va not in (phys, bus)

    records = doc["frames"]
    assert [r["seq"] for r in records] == list(range(frames))
    assert all(r["verdict"] == "verified" for r in records), records
    assert all(r["landed"] and r["guest_verified"] for r in records)
    by_phys = {phys: (bus, va) for phys, bus, va in bufs}
    for rec in records:
        assert rec["master"] == "camera"
        assert (rec["bus_addr"], rec["cpu_addr"]) == by_phys[rec["phys_addr"]]

    printed = FRAME_LINE.findall(console)
    assert len(printed) == frames
    for (seq, slot, bus, phys, va, crc, verdict), rec in zip(printed, records, strict=True):
        assert verdict == "ok"
        assert (int(seq), int(slot)) == (rec["seq"], rec["slot"])
        assert (int(bus, 16), int(phys, 16), int(va, 16)) == \
            (rec["bus_addr"], rec["phys_addr"], rec["cpu_addr"])
        assert int(crc, 16) == rec["crc"], "the guest's CRC-32 equals the sensor's"

    summary = SUMMARY.search(console)
    assert summary is not None
    assert int(summary.group(1)) == frames
    assert int(summary.group(3)) == 0

    calls = doc["system"]["cma_calls"]
    allocs = [c for c in calls if c["call"] == "ALLOC"]
    puts = [c for c in calls if c["call"] == "PUT"]
    assert [c["results"][0] for c in allocs] == [0] * nbuf
    assert all(c["device"] == "camera" for c in allocs)
    assert sorted(c["args"][0] for c in puts) == sorted(p for p, _, _ in bufs)
    assert all(c["results"][0] == 1 for c in puts), "every buffer freed at the end"
    assert doc["system"]["cma"]["chunks"] == []


@pytest.mark.emulator
@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("cma", [CMA_2010, CMA_2010_FIXED, CMA_MODERN],
                         ids=["2010", "2010-fixed", "modern"])
def test_capture_verifies_every_frame(tmp_path: Path, board: str, cma: str) -> None:
    code, doc = run_capture(tmp_path, board, f"frames=6 {SMALL}", cma)
    assert_good_capture(doc, code, board, frames=6, nbuf=4)
    regions = {r["name"]: r for r in doc["system"]["cma"]["regions"]}
    phys = [p for p, _, _ in buffers(doc)]
    if cma == CMA_2010_FIXED:
        assert all(0x4800_0000 <= p < 0x4880_0000 for p in phys), [hex(p) for p in phys]
        assert set(regions) == {"cam", "other"}
    else:
        (region,) = regions.values()
        assert all(region["base"] <= p < region["end"] for p in phys)


@pytest.mark.emulator
def test_capture_full_vga_frames_and_pictures(tmp_path: Path) -> None:
    from PIL import Image

    code, doc = run_capture(tmp_path, "camsoc", "frames=4 width=640 height=480", png=True)
    assert_good_capture(doc, code, "camsoc", frames=4, nbuf=4)
    assert all(r["size"] == 640 * 480 * 2 for r in doc["frames"])
    with Image.open(tmp_path / "png" / "camera-frame0003.png") as img:
        assert img.size == (640, 480)
        colours = img.convert("RGB").getcolors(maxcolors=4096)
    assert colours is not None
    assert len(colours) >= 8, "eight colour bars and the digits"


@pytest.mark.emulator
@pytest.mark.parametrize("fmt", ["rgb888", "yuyv", "xrgb8888"])
def test_capture_other_pixel_formats(tmp_path: Path, fmt: str) -> None:
    code, doc = run_capture(tmp_path, "camsoc", f"frames=3 {SMALL} format={fmt} buffers=2",
                            CMA_MODERN)
    assert_good_capture(doc, code, "camsoc", frames=3, nbuf=2)
    assert {r["format"] for r in doc["frames"]} == {fmt.upper()}


@pytest.mark.emulator
def test_capture_one_buffer_ring(tmp_path: Path) -> None:
    code, doc = run_capture(tmp_path, "camsoc-alias", f"frames=3 {SMALL} buffers=1")
    assert_good_capture(doc, code, "camsoc-alias", frames=3, nbuf=1)
    assert {r["slot"] for r in doc["frames"]} == {0}


BUGS = {"phys": "phys-for-bus", "virt": "virt-for-bus", "alias": "wrong-alias",
        "use-after-put": "use-after-put"}


@pytest.mark.emulator
@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("bug", sorted(BUGS))
def test_capture_bug_variant_is_named(tmp_path: Path, board: str, bug: str) -> None:
    code, doc = run_capture(tmp_path, board, f"frames=6 {SMALL} bug={bug}")
    console = doc["console"]
    assert code == 1
    assert doc["result"]["reason"] == "poweroff"
    assert doc["result"]["exit_status"] == 3, "the guest saw the bus error"
    assert "capture: FAIL (bus error" in console

    found = violations(doc)
    assert [v["verdict"] for v in found] == [BUGS[bug]], found
    assert any(f"[{BUGS[bug]}]" in f for f in doc["failures"])
    bad = found[0]
    assert f"bus error at bus 0x{bad['bus_addr']:08x} slot" in console

    bufs = buffers(doc)
    phys, bus, va = bufs[0]
    if bug == "phys":
        assert bad["bus_addr"] == phys
    elif bug == "virt":
        assert bad["bus_addr"] == va
    elif bug == "alias":
        assert bad["bus_addr"] == bus ^ 0xC000_0000
    if bug == "use-after-put":
        verdicts = [r["verdict"] for r in doc["frames"]]
        assert verdicts[0] == "verified", verdicts
        assert verdicts[-1] == "refused", verdicts
        freed = next(c for c in doc["system"]["cma_calls"] if c["call"] == "PUT")
        assert freed["results"][0] == 1
        assert bad["phys"] is not None
        assert freed["args"][0] <= bad["phys"] < freed["args"][0] + 0xA000
    else:
        assert [r["verdict"] for r in doc["frames"]] == ["refused"]
        assert bad["phys"] is None, "refused by the bus view: nothing was written"
    assert doc["system"]["cma"]["chunks"] == [], "every buffer is freed even after an error"


@pytest.mark.emulator
def test_capture_names_the_camera_by_path_or_phandle(tmp_path: Path) -> None:
    code, doc = run_capture(tmp_path / "path", "camsoc", f"frames=2 {SMALL}")
    assert code == 0
    info = next(c for c in doc["system"]["cma_calls"] if c["call"] == "INFO")
    assert info["args"][4] == 1, "CMA_FLAG_DEVICE_PATH"
    assert RAM_BASE <= info["args"][0] < RAM_BASE + (512 << 20), "a physical address"
    assert info["device"] == "camera"

    dts = tmp_path / "camph.dts"
    dts.write_text(f'/include/ "{BOARDS_DIR / "camsoc.dts"}"\n'
                   "/ {\n\tcamera-user {\n\t\tcompatible = \"camsoc,test-consumer\";\n"
                   "\t\tcamera = <&{/soc/cambus@10000000/camera@0}>;\n\t};\n};\n")
    code, doc = run_capture(tmp_path / "phandle", str(dts), f"frames=2 {SMALL}")
    assert code == 0, doc["console"][-1500:]
    match = re.search(r"phandle 0x([0-9a-f]+)", doc["console"])
    assert match is not None
    info = next(c for c in doc["system"]["cma_calls"] if c["call"] == "INFO")
    assert info["args"][4] == 0
    assert info["args"][0] == int(match.group(1), 16)
    assert info["device"] == "camera"
    assert all(r["verdict"] == "verified" for r in doc["frames"])


@pytest.mark.emulator
def test_capture_runs_are_identical(tmp_path: Path) -> None:
    first = run_capture(tmp_path / "a", "camsoc-alias", f"frames=3 {SMALL}", CMA_MODERN)
    second = run_capture(tmp_path / "b", "camsoc-alias", f"frames=3 {SMALL}", CMA_MODERN)
    assert first[0] == second[0] == 0
    assert first[1]["console"] == second[1]["console"]
    assert first[1]["trace_digest"] == second[1]["trace_digest"]


@pytest.mark.emulator
def test_capture_times_out_in_virtual_time(tmp_path: Path) -> None:
    code, doc = run_capture(tmp_path, "camsoc", f"frames=100 {SMALL} timeout=1")
    assert code == 1
    assert doc["result"]["exit_status"] == 1
    assert "capture: FAIL (timeout after 1 s" in doc["console"]
    assert 1.0 <= doc["result"]["virtual_seconds"] < 1.5
    verified = sum(r["verdict"] == "verified" for r in doc["frames"])
    assert 25 <= verified < 100, "about 30 frames at 30 fps in one second"
    assert doc["failures"] == []


@pytest.mark.emulator
@pytest.mark.parametrize(("append", "message"), [
    ("frames=2 colour=red", "unknown option 'colour'"),
    ("width=161", "width must be even"),
    ("format=nv12", "format must be"),
    ("bug=typo", "bug must be"),
    ("buffers=9", "buffers must be in 1..8"),
])
def test_capture_refuses_bad_options(tmp_path: Path, append: str, message: str) -> None:
    code, doc = run_capture(tmp_path, "camsoc", append)
    assert code == 1
    assert doc["result"]["exit_status"] == 1
    assert message in doc["console"]
    assert "capture: FAIL (bad options)" in doc["console"]
    assert doc["frames"] == []


@pytest.mark.toolchain
@pytest.mark.slow
def test_prebuilt_capture_matches_its_sources(tmp_path: Path) -> None:
    for tool in ("arm-none-eabi-gcc", "dtc", "make"):
        need_tool(tool)
    result = subprocess.run([str(ROOT / "scripts" / "build-firmware"), "--check",
                             "--build-dir", str(tmp_path)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "capture" in result.stdout


# --- the same scenario through the emu pytest plugin, as a user of the harness writes it ---


@pytest.mark.emulator
@pytest.mark.parametrize("board", BOARDS)
def test_capture_through_the_pytest_plugin(run_image: Any, board: str) -> None:
    from emu.pytest_plugin import assert_scenario_passed

    result = run_image(CAPTURE, board, cma=CMA_2010, append=f"frames=4 {SMALL}",
                       expect={"frames_verified_min": 4, "no_dma_violations": True,
                               "console_contains": ("capture: PASS",)})
    assert_scenario_passed(result)
    frames = result.run["frames"] if result.run else []
    assert [f["verdict"] for f in frames] == ["verified"] * 4
    assert all(f["bus_addr"] == f["phys_addr"] - RAM_BASE + CAMERA_BUS_BASE[board]
               for f in frames)


@pytest.mark.emulator
@pytest.mark.parametrize(("bug", "verdict"), [("phys", "phys-for-bus"),
                                              ("use-after-put", "use-after-put")])
def test_bug_variant_named_through_the_pytest_plugin(run_image: Any, bug: str,
                                                     verdict: str) -> None:
    from emu.pytest_plugin import assert_scenario_passed

    result = run_image(CAPTURE, "camsoc", cma=CMA_2010, append=f"frames=4 {SMALL} bug={bug}",
                       expect={"dma_verdicts": (verdict,), "exit_status": 3})
    assert_scenario_passed(result)


HOST_TIMINGS = {"wall_seconds", "mips", "scan_seconds"}


def _without_host_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_host_timings(v) for k, v in value.items() if k not in HOST_TIMINGS}
    if isinstance(value, list):
        return [_without_host_timings(v) for v in value]
    return value


@pytest.mark.emulator
def test_same_scenario_gives_the_same_json_apart_from_host_timings(tmp_path: Path) -> None:
    first = run_capture(tmp_path / "a", "camsoc", f"frames=4 {SMALL}")
    second = run_capture(tmp_path / "b", "camsoc", f"frames=4 {SMALL}")
    assert first[0] == second[0] == 0
    assert _without_host_timings(first[1]) == _without_host_timings(second[1])
    assert first[1]["result"]["wall_seconds"] > 0  # the host timings are there, just not compared
