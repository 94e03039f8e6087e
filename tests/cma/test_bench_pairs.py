"""The alloc/put pairs benchmark runs and reports what it claims (no timing assertions)."""

from __future__ import annotations

import io
import json

import pytest

from cma.bench_pairs import DEVICE, main, make_core, make_sequence, run_pairs


def test_the_sequence_is_seeded_and_keeps_victims_in_range() -> None:
    a, b = make_sequence(7, 50, pairs=200), make_sequence(7, 50, pairs=200)
    assert a == b
    assert a != make_sequence(8, 50, pairs=200)
    assert all(0 <= victim < 50 for _, _, victim in a.pairs)
    assert all(size % 4096 == 0 and 4096 <= size <= 1 << 20 for size, _ in a.initial)


def test_every_allocator_is_reported_with_its_references() -> None:
    report = run_pairs(["bitmap", "twoended"], seed=3, live=100, min_seconds=0.01)
    assert [r.spec for r in report.results] == ["bf", "bitmap", "twoended"]
    assert report.dict_pairs_per_s > 0
    for r in report.results:
        assert r.pairs > 0
        assert r.seconds >= 0.01
        assert r.pairs_per_s > 0
        assert r.bare_pairs_per_s > 0
        assert r.vs_dict == r.pairs_per_s / report.dict_pairs_per_s
        assert 0.9 < r.success_rate <= 1.0  # the bench-cma workload serves nearly everything


def test_pairs_keep_the_population_through_the_core() -> None:
    core = make_core("bf")
    chunks = [core.alloc(DEVICE, None, 8192, 0) for _ in range(10)]
    assert core.put(chunks[3].phys)
    chunks[3] = core.alloc(DEVICE, None, 65536, 65536)
    assert chunks[3].phys % 65536 == 0
    assert len(list(core.iter_chunks())) == 10


def test_json_report_has_the_schema() -> None:
    out = io.StringIO()
    assert main(["--seconds", "0.01", "--live", "20", "--json", "twoended"], out) == 0
    report = json.loads(out.getvalue())
    assert report["schema"] == "bench-cma-pairs/1"
    assert report["target_pairs_per_s"] == 200_000
    assert [r["spec"] for r in report["results"]] == ["bf", "twoended"]


def test_bad_arguments_are_one_line_and_status_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--live", "0"], io.StringIO()) == 2
    err = capsys.readouterr().err
    assert err == "bench-cma-pairs: error: live chunk count must be positive, not 0\n"
