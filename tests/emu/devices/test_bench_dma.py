"""The camera DMA benchmark runs and reports what it claims (no timing assertions)."""

from __future__ import annotations

import io
import json

import pytest

from emu.benchmarks.dma import CameraDriver, main, run
from emu.devices.dma.testpattern import PixelFormat, check_frame

pytestmark = pytest.mark.emulator


def test_a_row_has_baseline_camera_and_their_ratio() -> None:
    report = run(frames=3, rounds=2, resolutions=((64, 48),), formats=(PixelFormat.YUYV,))
    assert report["schema"] == "bench-dma/1"
    (row,) = report["rows"]
    assert (row["width"], row["height"], row["format"]) == (64, 48, "YUYV")
    assert row["frame_bytes"] == 64 * 48 * 2
    assert row["baseline_gb_s"] > 0
    assert row["camera_gb_s"] > 0
    assert row["cold_gb_s"] > 0
    assert row["ratio"] == pytest.approx(row["camera_gb_s"] / row["baseline_gb_s"])


def test_the_driver_gets_every_frame_into_its_cma_buffers() -> None:
    driver = CameraDriver(32, 8, PixelFormat.RGB888)
    driver.deliver(5)
    cam = driver.cam
    assert [f.seq for f in cam.frames] == [0, 1, 2, 3, 4]
    assert [f.slot for f in cam.frames] == [0, 1, 2, 3, 0]
    last = cam.frames[-1]
    assert last.phys_addr is not None
    data = driver.machine.bus.read(last.phys_addr, last.size)
    assert check_frame(data, 32, 8, PixelFormat.RGB888, expect_seq=4).ok
    assert not driver.system.checker.violations


def test_main_rejects_zero_frames() -> None:
    assert main(["--frames", "0"], io.StringIO()) == 2


def test_main_prints_json(monkeypatch: pytest.MonkeyPatch) -> None:
    from emu.benchmarks import dma

    monkeypatch.setattr(dma, "RESOLUTIONS", ((16, 8),))
    out = io.StringIO()
    assert main(["--frames", "1", "--rounds", "1", "--json"], out) == 0
    rows = json.loads(out.getvalue())["rows"]
    assert [r["format"] for r in rows] == [f.name for f in PixelFormat]
