"""Sweeps: random CMA layouts are valid and seeded; the local pool and Dask agree."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cma.cmdline import parse_cmdline
from emu.cli import main
from emu.scenario import run_scenario
from emu.sweep import (
    aggregate,
    comparable,
    random_cma_scenario,
    random_cma_scenarios,
    render_html,
    run_sweep,
)

ROOT = Path(__file__).resolve().parents[2]
SWEEP_SIZE = 500


def test_random_layouts_are_deterministic_in_the_seed() -> None:
    a = random_cma_scenarios(40, seed=5)
    assert a == random_cma_scenarios(40, seed=5)
    assert [s.cma for s in a] != [s.cma for s in random_cma_scenarios(40, seed=6)]
    assert len({s.cma for s in a}) > 30, "layouts vary"
    assert any("cma_map=" not in s.cma for s in random_cma_scenarios(200, seed=5)), \
        "the mainline form is drawn too"


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), index=st.integers(0, 10_000))
def test_every_random_layout_parses_and_places(seed: int, index: int) -> None:
    sc = random_cma_scenario(seed, index, allocs=20)
    config = parse_cmdline(sc.cma)
    assert config.regions
    result = run_scenario(sc)
    assert result.passed, (sc.cma, result.failed)
    for region in result.summary["regions"]:
        assert any(start <= region["base"] and region["base"] + region["size"] <= start + size
                   for start, size in sc.ram)


def test_aggregate_does_not_depend_on_completion_order() -> None:
    rows = [(i, run_scenario(sc).to_summary(), 0.01 * i)
            for i, sc in enumerate(random_cma_scenarios(12, seed=2, allocs=50))]
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    a = aggregate(rows, executor="x", wall_seconds=1.0)
    b = aggregate(shuffled, executor="y", wall_seconds=2.0)
    assert comparable(a) == comparable(b)
    assert a["host"] != b["host"]
    assert [r["name"] for r in a["results"]] == [f"random-cma-2-{i:05d}" for i in range(12)]


def test_failures_are_counted_and_listed(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text((ROOT / "scenarios" / "cma-camsoc-layout.toml").read_text()
                   .replace("max_fragmentation = 0.8", "max_fragmentation = 0.0"))
    out = io.StringIO()
    status = main(["sweep", str(ROOT / "scenarios" / "cma-camsoc-layout.toml"), str(bad),
                   "--jobs", "1", "--quiet", "--json", str(tmp_path / "r.json")], stdout=out)
    assert status == 1
    report = json.loads((tmp_path / "r.json").read_text())
    assert (report["count"], report["passed"], report["failed"]) == (2, 1, 1)
    assert [r["passed"] for r in report["results"]] == [True, False]
    assert report["results"][1]["source"] == str(bad)
    assert report["failures"][0]["failed"][0].startswith("fragmentation <= 0.0: ")
    assert "FAIL" in out.getvalue()
    assert "fragmentation <= 0.0: " in out.getvalue()


def test_sweep_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep"]) == 2
    assert "nothing to run" in capsys.readouterr().err
    assert main(["sweep", str(tmp_path / "absent.toml")]) == 2
    assert main(["sweep", "--random-cma", "3", "--jobs", "0"]) == 2
    assert main(["sweep", "--random-cma", "3", "--scheduler", "nowhere"]) == 2


@pytest.mark.slow
def test_local_pool_and_dask_give_the_same_report(tmp_path: Path) -> None:
    from distributed import LocalCluster

    local = run_sweep(random_cma_scenarios(SWEEP_SIZE, seed=11, allocs=200), jobs=2)
    assert local["count"] == SWEEP_SIZE
    assert local["failed"] == 0, local["failures"][:3]
    assert local["statistics"]["cma"]["placed"] == SWEEP_SIZE
    assert local["host"]["executor"].startswith("local process pool")

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp",
                      host="127.0.0.1", dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        out = io.StringIO()
        status = main(["sweep", "--random-cma", str(SWEEP_SIZE), "--seed", "11",
                       "--allocs", "200", "--scheduler", address, "--quiet",
                       "--json", str(tmp_path / "dask.json"),
                       "--html", str(tmp_path / "dask.html")], stdout=out)
    assert status == 0
    dask = json.loads((tmp_path / "dask.json").read_text())
    assert dask["host"]["executor"].startswith(f"dask at {address}")
    assert comparable(dask) == json.loads(json.dumps(comparable(local)))
    html = (tmp_path / "dask.html").read_text()
    assert f"<b>{SWEEP_SIZE}</b> of {SWEEP_SIZE} passed" in html
    assert html.count("<tr class=\"pass\">") == SWEEP_SIZE
    assert f"{SWEEP_SIZE} passed, 0 failed" in out.getvalue()


def test_html_report_marks_failures() -> None:
    rows = [(0, run_scenario(random_cma_scenario(1, 0, allocs=20)).to_summary(), 0.1)]
    rows[0][1]["passed"] = False
    rows[0][1]["failed"] = ["placement: <no room>"]
    page = render_html(aggregate(rows, executor="test", wall_seconds=0.1))
    assert "<tr class=\"fail\">" in page
    assert "&lt;no room&gt;" in page


@pytest.mark.emulator
def test_a_sweep_mixes_machine_and_cma_scenarios(tmp_path: Path) -> None:
    files = [str(ROOT / "scenarios" / "selftest-camsoc.toml"),
             str(ROOT / "scenarios" / "cma-camsoc-layout.toml")]
    out = io.StringIO()
    assert main(["sweep", *files, "--jobs", "1", "--quiet",
                 "--json", str(tmp_path / "r.json")], stdout=out) == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["statistics"]["machine"]["stops"] == {"poweroff": 1}
    assert report["results"][0]["trace_digest"] == run_scenario(files[0]).summary["trace_digest"]
    assert "poweroff (0)" in out.getvalue()
