"""Nothing lost: result files are whole, signals end runs cleanly, dead sweep workers
cost only their own scenario.

The signal tests run ``emu`` in a subprocess on the capture firmware with far more
frames than it can capture in the test's time, wait until the trace file shows
progress, send the signal, and check the exit status, the JSON result and the
trace's last line.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from emu.atomic import open_atomic, write_atomic
from emu.errors import EmuError
from emu.scenario import Scenario, ScenarioResult, run_scenario
from emu.sweep import random_cma_scenarios, run_sweep

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "firmware" / "prebuilt" / "capture.elf"
#: a capture that runs for minutes: the signal always arrives mid-run
ENDLESS = "frames=100000 width=64 height=32 timeout=100000"
CMA = "cma=cam=16M cma_map=camera=cam"
LINE = re.compile(r"^ {0,12}\d+ (cpu |mmio|dma |irq |svc ) \S.*\n$")
EXIT_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}


# --- atomic files ----------------------------------------------------------------------
def test_write_atomic_replaces_the_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "result.json"
    write_atomic(target, "old\n")
    write_atomic(target, b"new\n")
    assert target.read_bytes() == b"new\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.json"]
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def test_an_interrupted_write_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "result.json"
    target.write_text("complete\n")

    def interrupted_write() -> None:
        with open_atomic(target) as fh:
            fh.write(b"half a resu")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted_write()
    assert target.read_text() == "complete\n"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"], "no temporary file left"


def test_write_atomic_names_the_file_it_cannot_write(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(EmuError, match=r"cannot write .*file/x\.json"):
        write_atomic(tmp_path / "file" / "x.json", "{}")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# --- signals -------------------------------------------------------------------------------
def _start(args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "emu.cli", *args], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for(path: Path, proc: subprocess.Popen[bytes], min_bytes: int = 4096) -> None:
    """Until ``path`` holds some trace (the run is well under way)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size >= min_bytes:
            return
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"{path} did not grow within 30 s")


def _check_trace(path: Path) -> None:
    assert path.exists(), "the trace is renamed into place"
    assert not Path(f"{path}.part").exists()
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    assert len(lines) > 50
    assert all(LINE.match(ln) for ln in lines), "every line is whole, the last one too"


@pytest.mark.emulator
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_emu_run_stops_cleanly_on_a_signal(tmp_path: Path, sig: signal.Signals) -> None:
    trace = tmp_path / "run.trace"
    proc = _start(["run", "--board", "camsoc", "--elf", str(CAPTURE), "--append", ENDLESS,
                   "--cma", CMA, "--quiet", "--json", "run.json", "--trace", "mmio,dma,irq,svc",
                   "--trace-file", "run.trace"], tmp_path)
    _wait_for(Path(f"{trace}.part"), proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == EXIT_CODES[sig], err.decode()
    doc = json.loads((tmp_path / "run.json").read_text())
    assert doc["result"]["reason"] == "interrupted"
    assert doc["result"]["message"] == f"{sig.name} received"
    assert doc["exit_code"] == EXIT_CODES[sig]
    assert doc["result"]["instructions"] > 0
    assert "frame 1 " in doc["console"], "the output of the run so far is kept"
    _check_trace(trace)
    assert "stop: interrupted" in err.decode()


@pytest.mark.emulator
def test_a_scenario_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "long.toml").write_text(
        f'schema = 1\nboard = "camsoc"\ncma = "{CMA}"\nappend = "{ENDLESS}"\n'
        f'[images]\nelf = "{CAPTURE}"\n[limits]\nmax_seconds = 120\n'
        '[outputs]\njson = "out/long.json"\n')
    console = tmp_path / "console.txt"
    with console.open("wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "emu.cli", "run", "long.toml"],
                                cwd=tmp_path, stdout=sink, stderr=subprocess.PIPE)
        _wait_for(console, proc, min_bytes=2048)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err.decode()
    doc = json.loads((tmp_path / "out" / "long.json").read_text())
    assert doc["stop"] == {"reason": "interrupted", "exit_status": None}
    assert doc["passed"] is False
    assert doc["instructions"] > 0
    assert doc["run"]["result"]["message"] == "SIGTERM received"
    assert "stop: interrupted" in err.decode()


def slow_runner(sc: Scenario) -> ScenarioResult:
    """Test-only sweep runner: a scenario that takes a while, so a stop finds work left."""
    time.sleep(0.3)
    return run_scenario(sc)


def test_an_interrupted_sweep_reports_what_it_finished() -> None:
    scenarios = random_cma_scenarios(12, seed=5, allocs=50)
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)

    report = run_sweep(scenarios, jobs=2, batch_size=1, progress=progress,
                       runner=slow_runner, stop=lambda: bool(seen) and seen[-1] >= 3)
    assert report["interrupted"] is True
    assert report["count"] == 12, "every scenario has a row"
    names = [r["name"] for r in report["results"]]
    assert names == [sc.name for sc in scenarios]
    finished = [r for r in report["results"] if "error" not in r]
    assert len(finished) >= 3
    assert all(r["error"] == "interrupted before it finished"
               for r in report["results"] if "error" in r)
    assert report["errors"] == 12 - len(finished)


def test_emu_sweep_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "emu.cli", "sweep", "--random-cma", "5000",
                             "--jobs", "2", "--json", "sweep.json", "--html", "sweep.html",
                             "--quiet"], cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    time.sleep(4)
    assert proc.poll() is None, "5000 layouts take far longer than 4 s"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()
    report = json.loads((tmp_path / "sweep.json").read_text())
    assert report["interrupted"] is True
    assert report["count"] == 5000
    assert 0 < report["count"] - report["errors"] < 5000
    assert (tmp_path / "sweep.html").read_text().rstrip().endswith("</html>")


# --- dead sweep workers -----------------------------------------------------------------------
#: scenario index → how its worker dies (read by :func:`dying_runner` in the worker)
DEATHS = {3: "exit", 6: "segv", 8: "raise"}


def dying_runner(sc: Scenario) -> ScenarioResult:
    """Test-only sweep runner: kills its worker for the scenarios named in DEATHS."""
    how = DEATHS.get(int(sc.name.rsplit("-", 1)[1]))
    if how == "exit":
        os._exit(3)
    if how == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    if how == "raise":
        raise RuntimeError(f"boom in {sc.name}")
    return run_scenario(sc)


def _rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in report["results"]}


@pytest.mark.parametrize("batch_size", [1, 4])
def test_a_dead_worker_loses_no_other_result(batch_size: int) -> None:
    scenarios = random_cma_scenarios(10, seed=9, allocs=60)
    report = run_sweep(scenarios, jobs=2, batch_size=batch_size, runner=dying_runner)
    assert report["count"] == 10
    assert [r["name"] for r in report["results"]] == [sc.name for sc in scenarios]
    rows = _rows(report)
    for i, sc in enumerate(scenarios):
        row = rows[sc.name]
        if i in DEATHS:
            assert row["passed"] is False
            assert row["failed"] == [f"error: {row['error']}"]
        else:
            assert row == run_scenario(sc).to_summary(), f"{sc.name} kept its result"
    assert "worker process running it died" in rows[scenarios[3].name]["error"]
    assert "worker process running it died" in rows[scenarios[6].name]["error"]
    assert rows[scenarios[8].name]["error"] == f"RuntimeError: boom in {scenarios[8].name}"
    assert report["errors"] == 3
    assert report["statistics"]["cma"]["scenarios"] == 7, "error rows stay out of statistics"
    assert report["interrupted"] is False
