"""Determinism: the same inputs give the same trace, byte for byte, and the same JSON
result apart from the host timings.

The run is the capture firmware with three small frames (camera DMA, interrupts, the
CMA service, timer ticks: every source of events the machine has). The host-timing
keys of the ``emu-run/1`` document are listed in :data:`WALL_CLOCK_KEYS`;
docs/reliability.md names them and the seeds of every random choice.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cma import bench, workload
from emu.cli import main
from emu.sweep import random_cma_scenarios

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "firmware" / "prebuilt" / "capture.elf"
RUNS = 10
#: keys of the ``emu run --json`` document that measure the host, not the guest
WALL_CLOCK_KEYS = (("result", "wall_seconds"), ("result", "mips"),
                   ("timer_intercept", "scan_seconds"))


def _argv(tmp: Path, n: int) -> list[str]:
    return ["run", "--board", "camsoc", "--elf", str(CAPTURE),
            "--append", "frames=3 width=64 height=32",
            "--cma", "cma=cam=16M cma_map=camera=cam", "--quiet",
            "--json", str(tmp / f"run{n}.json"),
            "--trace", "mmio,dma,irq,svc", "--trace-file", str(tmp / f"run{n}.trace")]


def without_host_timings(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with every key of :data:`WALL_CLOCK_KEYS` removed."""
    out = copy.deepcopy(doc)
    for outer, inner in WALL_CLOCK_KEYS:
        if isinstance(out.get(outer), dict):
            out[outer].pop(inner, None)
    return out


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.emulator
def test_ten_runs_give_one_trace_and_one_result(tmp_path: Path) -> None:
    digests, docs = set(), []
    for n in range(RUNS):
        assert main(_argv(tmp_path, n), stdout=io.StringIO()) == 0
        digests.add(_digest(tmp_path / f"run{n}.trace"))
        docs.append(json.loads((tmp_path / f"run{n}.json").read_text()))
    assert len(digests) == 1, "the trace is the same every time"
    assert (tmp_path / "run0.trace").stat().st_size > 1000
    first = without_host_timings(docs[0])
    assert first["result"]["reason"] == "poweroff"
    assert len(first["frames"]) == 3
    for doc in docs[1:]:
        assert without_host_timings(doc) == first
    assert len({d["trace_digest"] for d in docs}) == 1


@pytest.mark.emulator
def test_another_process_and_hash_seed_give_the_same_trace(tmp_path: Path) -> None:
    """Set and dict order, object ids and hash seeds must not reach the output."""
    assert main(_argv(tmp_path, 0), stdout=io.StringIO()) == 0
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-m", "emu.cli", *_argv(tmp_path, 1)],
                              env=env, capture_output=True, check=False)
        assert done.returncode == 0, done.stderr.decode()
        assert _digest(tmp_path / "run1.trace") == _digest(tmp_path / "run0.trace")
        docs = [json.loads((tmp_path / f"run{n}.json").read_text()) for n in (0, 1)]
        assert without_host_timings(docs[0]) == without_host_timings(docs[1])


@pytest.mark.emulator
def test_the_wall_clock_keys_are_the_only_host_timings(tmp_path: Path) -> None:
    """Guard for the list above: each key exists in the document (a renamed key fails)."""
    assert main(_argv(tmp_path, 0), stdout=io.StringIO()) == 0
    doc = json.loads((tmp_path / "run0.json").read_text())
    for outer, inner in WALL_CLOCK_KEYS:
        assert inner in doc[outer]
    flat = json.dumps(without_host_timings(doc))
    assert "seconds" not in flat.replace("virtual_seconds", "")


def test_every_random_choice_comes_from_its_seed() -> None:
    """Sweep layouts and both workload generators: the seed decides everything."""
    assert random_cma_scenarios(20, seed=4) == random_cma_scenarios(20, seed=4)
    assert random_cma_scenarios(20, seed=4) != random_cma_scenarios(20, seed=5)
    assert bench.make_workload(3, 500).ops == bench.make_workload(3, 500).ops
    assert bench.make_workload(3, 500).ops != bench.make_workload(4, 500).ops
    assert workload.make_workload(3, 400) == workload.make_workload(3, 400)
    assert workload.make_workload(3, 400) != workload.make_workload(4, 400)
