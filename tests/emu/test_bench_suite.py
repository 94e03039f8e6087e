"""The benchmark modules measure what they say, and the suite reads their reports right.

No timing is asserted: only that the harness and its baselines ran the same work and that
the summary turns each report into the rows and verdicts it should.
"""

from __future__ import annotations

import pytest

from emu.benchmarks import cpu, io, suite


@pytest.mark.emulator
def test_cpu_benchmark_runs_the_same_instructions_bare_and_on_the_machine() -> None:
    row = cpu.measure(cpu.alu_load_store(2_000), repeat=1)
    assert row["workload"] == "alu-load-store"
    assert row["instructions"] == 5 + 8 * 2_000 + 3  # every one counted on the machine
    assert row["bare_s"] > 0
    assert row["machine_s"] > 0
    assert row["counted_s"] > 0
    assert row["ratio"] == pytest.approx(row["machine_s"] / row["bare_s"])


@pytest.mark.emulator
def test_io_benchmark_takes_every_interrupt_it_asks_for() -> None:
    irq = io.measure_irq(interrupts=50, period=2_000, repeat=1)
    assert irq["interrupts"] == 50
    mmio = io.measure_mmio(iterations=500, repeat=1)
    assert mmio["accesses"] == 1_000
    assert mmio["ratio"] == pytest.approx(mmio["machine_us"] / mmio["bare_us"])


def test_suite_rows_carry_the_verdicts() -> None:
    rows = suite.cpu_rows({"rows": [
        {"workload": "w", "instructions": 1e6, "machine_mips": 100.0, "bare_mips": 110.0,
         "counted_ratio": 1.5, "ratio": 1.1},
        {"workload": "v", "instructions": 1e6, "machine_mips": 50.0, "bare_mips": 110.0,
         "counted_ratio": 4.0, "ratio": 2.2}]})
    assert [r.met for r in rows] == [True, False]
    rows = suite.io_rows({"mmio": {"accesses": 10, "machine_us": 0.8, "bare_us": 0.4,
                                   "ratio": 2.0, "target_ratio": 2.0},
                          "irq": {"interrupts": 5, "us_per_irq": 25.0, "target_us": 20.0}})
    assert [r.met for r in rows] == [True, False]
    rows = suite.linux_rows({"runs": [
        {"name": "emu --host-decompress", "first_line": 0.4, "shell": 5.0},
        {"name": "qemu-system-arm", "first_line": 1.5, "shell": 2.0}]})
    assert [(r.what.split(" (")[0], r.met) for r in rows] == [
        ("Linux to first line", True), ("Linux to shell", False)]
    text = suite.render(rows, "header")
    assert text.startswith("header\n")
    assert "| **no** |" in text
    assert "| yes |" in text
