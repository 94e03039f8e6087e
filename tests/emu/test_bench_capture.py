"""The capture benchmark runs and reports what it claims (no timing assertions)."""

from __future__ import annotations

import io
import json

import pytest

from emu.benchmarks.capture import RESOLUTIONS, main

pytestmark = pytest.mark.emulator


def test_bench_capture_reports_every_resolution_with_its_baselines() -> None:
    out = io.StringIO()
    assert main(["--frames", "2", "--json"], out) == 0
    report = json.loads(out.getvalue())
    assert report["schema"] == "bench-capture/1"
    rows = report["rows"]
    assert [(r["width"], r["height"]) for r in rows] == list(RESOLUTIONS)
    for r in rows:
        assert r["verified"] == 2, "the firmware verified every frame"
        assert r["exit_status"] == 0
        assert r["host_memcpy_mb_s"] > 0
        assert r["guest_memcpy_mb_s"] > 0
        assert r["mb_per_s"] == pytest.approx(r["fps"] * r["frame_bytes"] / 1e6)


def test_bench_capture_rejects_zero_frames() -> None:
    assert main(["--frames", "0"], io.StringIO()) == 2
