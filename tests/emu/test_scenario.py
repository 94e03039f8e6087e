"""Scenario files: loading errors name the file and the key; runs are judged by their checks."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from emu.cli import main
from emu.errors import EmuError
from emu.scenario import (
    Expectations,
    RegionExpectation,
    Scenario,
    ScenarioError,
    load_scenario,
    run_scenario,
)

ROOT = Path(__file__).resolve().parents[2]
SELFTEST = ROOT / "firmware" / "prebuilt" / "selftest.elf"
SCENARIOS = ROOT / "scenarios"

MACHINE = f"""\
schema = 1
board = "camsoc"
cma = "cma=cam=16M cma_map=camera=cam"

[images]
elf = "{SELFTEST}"

[limits]
max_instructions = 50_000_000
"""

CMA = """\
schema = 1
kind = "cma"
cma = "cma=cam=16M;disp=8M cma_map=camera=cam;clcd=disp"
ram = [{ start = 0x40000000, size = "512M" }]

[[devices]]
name = "camera"
dma = [{ cpu = 0x40000000, bus = 0, size = "256M" }]

[[devices]]
name = "clcd"

[workload]
seed = 3
allocs = 300
"""


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# --- loading errors ---------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "key", "message"), [
    (MACHINE.replace("schema = 1\n", "schema = 1\ncolour = 1\n"), "colour", "unknown key"),
    (MACHINE + "[expect]\nexit_staus = 0\n", "expect.exit_staus", "unknown key"),
    (MACHINE.replace("50_000_000", '"lots"'), "limits.max_instructions", "must be an integer"),
    (MACHINE + "[expect]\nconsole_contains = 3\n", "expect.console_contains",
     "list of strings"),
    (MACHINE.replace(str(SELFTEST), "no/such.elf"), "images.elf", "file not found"),
    (MACHINE.replace("schema = 1", "schema = 2"), "schema", "must be 1, not 2"),
    (MACHINE.replace("schema = 1\n", ""), "schema", "is missing"),
    (MACHINE.replace('board = "camsoc"', 'kind = "qemu"'), "kind", "must be one of"),
    (MACHINE.replace("[images]", "[images]\nbios = \"" + str(SELFTEST) + "\""),
     "images.bios|kernel|elf", "exactly one"),
    (MACHINE + "[expect]\nstop_reason = \"done\"\n", "expect.stop_reason", "must be one of"),
    (MACHINE + "[expect]\ndma_verdicts = [\"oops\"]\n", "expect.dma_verdicts", "verdicts"),
    (MACHINE + "[expect]\nmin_success_rate = 0.5\n", "expect.min_success_rate",
     "does not apply"),
    (MACHINE + "[console]\nscript = [{ expekt = \"x\" }]\n", "console.script[0].expekt",
     "unknown key"),
    (MACHINE.replace("schema = 1\n", "schema = 1\ndma_policy = \"never\"\n"), "dma_policy",
     "must be one of"),
    (CMA.replace('size = "512M"', 'size = "lots"'), "ram[0].size", "size must be"),
    (CMA.replace("allocs = 300", "allocs = 0"), "workload.allocs", "at least 1"),
    (CMA + "[expect]\nexit_status = 0\n", "expect.exit_status", "does not apply"),
    (CMA.replace('[[devices]]\nname = "clcd"\n', '[[devices]]\nname = "clcd"\n'
                 'dma = [{ cpu = 0, size = "1M" }]\n'), "devices[1].dma[0].size",
     "needs cpu, bus"),
])
def test_load_errors_name_the_file_and_the_key(tmp_path: Path, text: str, key: str,
                                               message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as exc:
        load_scenario(path)
    text_of = str(exc.value)
    assert text_of.startswith(f"{path}: key '{key}'"), text_of
    assert message in text_of
    assert "\n" not in text_of
    assert isinstance(exc.value, EmuError)


def test_bad_toml_and_missing_file_are_scenario_errors(tmp_path: Path) -> None:
    bad = write(tmp_path, "schema = 1\nboard = \n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "absent.toml")


def test_paths_are_relative_to_the_scenario_file(tmp_path: Path) -> None:
    (tmp_path / "fw").mkdir()
    (tmp_path / "fw" / "app.elf").write_bytes(SELFTEST.read_bytes())
    sub = tmp_path / "scen"
    sub.mkdir()
    path = write(sub, MACHINE.replace(str(SELFTEST), "../fw/app.elf")
                 + "[outputs]\njson = \"out/r.json\"\n")
    sc = load_scenario(path)
    assert sc.elf == str((tmp_path / "fw" / "app.elf").resolve())
    assert sc.json_out == str((sub / "out" / "r.json").resolve())
    assert sc.name == "s"


def test_emu_run_reports_a_load_error_in_one_line(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, MACHINE.replace("schema = 1\n", "schema = 1\ncolour = 1\n"))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "colour" in err[0]
    assert str(path) in err[0]


def test_emu_run_refuses_a_scenario_with_board_options(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    path = write(tmp_path, MACHINE)
    assert main(["run", str(path), "--board", "virt"]) == 2
    assert "drop --board" in capsys.readouterr().err


# --- machine scenarios ---------------------------------------------------------------------------
@pytest.mark.emulator
def test_selftest_scenario_file_passes_and_writes_its_json(tmp_path: Path) -> None:
    sc = load_scenario(SCENARIOS / "selftest-camsoc.toml")
    out = tmp_path / "r.json"
    result = run_scenario(Scenario(**{**sc.__dict__, "json_out": str(out)}))
    assert result.passed, result.failed
    names = [c.name for c in result.checks]
    assert "region cam at 0x4f000000 of 0x1000000" in names
    assert any(n.startswith("console contains") for n in names)
    doc = json.loads(out.read_text())
    assert doc["schema"] == "emu-scenario/1"
    assert doc["passed"] is True
    assert doc["run"]["schema"] == "emu-run/1"
    assert doc["run"]["result"]["reason"] == "poweroff"
    assert "reserved-memory cam@4f000000" in doc["run"]["console"]
    assert doc["stop"] == {"reason": "poweroff", "exit_status": 0}


@pytest.mark.emulator
def test_a_deliberately_wrong_expectation_fails_with_the_reason(tmp_path: Path) -> None:
    text = MACHINE + """
[expect]
console_contains = ["selftest: PASS", "this is never printed"]
console_not_contains = ["[ ok ] running in SVC mode"]
exit_status = 3
[expect.regions]
cam = 0x40000000
nosuch = 0
"""
    result = run_scenario(write(tmp_path, text))
    assert not result.passed
    failed = "\n".join(result.failed)
    assert "console contains 'this is never printed'" in failed
    assert "console contains 'selftest: PASS'" not in failed
    assert "running in SVC mode" in failed
    assert "exit status 3: status 0" in failed
    assert "region cam at 0x40000000: placed at 0x" in failed
    assert "region nosuch" in failed
    assert "regions: cam" in failed
    assert len(result.failed) == 5


@pytest.mark.emulator
def test_console_script_waits_and_a_missing_prompt_fails(tmp_path: Path) -> None:
    script = MACHINE + """
[console]
script = [{ expect = "psci:" }, { expect = "mmu:" }, { expect = "a prompt that never comes" }]
"""
    result = run_scenario(write(tmp_path, script))
    assert result.failed[0] == ("console step 3: 'a prompt that never comes' was not printed "
                                "(stop: poweroff)")
    ok = run_scenario(write(tmp_path, MACHINE + """
[console]
script = [{ expect = "psci:" }, { expect = "mmu:" }]
until = "cache:"
""", "ok.toml"))
    assert ok.passed, ok.failed
    assert ok.summary["stop"]["reason"] == "until"
    assert ok.run is not None
    assert "selftest: PASS" not in ok.run["console"], "stopped before the end"


@pytest.mark.emulator
def test_emu_run_scenario_exit_status_follows_the_checks(tmp_path: Path) -> None:
    good = write(tmp_path, MACHINE, "good.toml")
    bad = write(tmp_path, MACHINE + "[expect]\nconsole_contains = [\"nope\"]\n", "bad.toml")
    report = tmp_path / "bad.json"
    assert main(["run", str(good), "--quiet"], stdout=io.StringIO()) == 0
    assert main(["run", str(bad), "--quiet", "--json", str(report)],
                stdout=io.StringIO()) == 1
    assert json.loads(report.read_text())["failed"] == [
        "console contains 'nope': not printed; last line: 'selftest: PASS'"]


# --- kind = "cma" --------------------------------------------------------------------------------
def test_cma_scenario_reports_placement_success_and_fragmentation(tmp_path: Path) -> None:
    path = write(tmp_path, CMA + "[expect]\nmin_success_rate = 0.5\n[expect.regions]\n"
                 "cam = { size = \"16M\" }\n")
    first, second = run_scenario(path), run_scenario(path)
    assert first.passed, first.failed
    assert first.to_summary() == second.to_summary()
    s = first.summary
    assert s["attempts"] == 300
    assert 0.5 <= s["success_rate"] <= 1.0
    assert s["attempts"] == sum(d["attempts"] for d in s["devices"].values())
    cam = next(r for r in s["regions"] if r["name"] == "cam")
    assert cam["base"] + cam["size"] <= 0x5000_0000, "inside the camera's 256 MiB window"
    assert 0.0 <= s["ext_frag"] <= 1.0


def test_cma_scenario_expectations_can_fail(tmp_path: Path) -> None:
    path = write(tmp_path, CMA + "[expect]\nmax_fragmentation = 0.0\nmin_success_rate = 1.0\n"
                 "[expect.regions]\ncam = 0x40000000\n")
    result = run_scenario(path)
    assert not result.passed
    assert any(f.startswith("region cam at 0x40000000") for f in result.failed)


def test_cma_scenario_placement_error_is_a_failed_check_or_an_expectation(tmp_path: Path
                                                                         ) -> None:
    huge = CMA.replace("cam=16M", "cam=300M")  # more than the camera's 256 MiB window
    result = run_scenario(write(tmp_path, huge))
    assert not result.passed
    assert result.failed[0].startswith("placement: ")
    expected = run_scenario(Scenario(**{**load_scenario(write(tmp_path, huge, "b.toml"))
                                        .__dict__,
                                        "expect": Expectations(placement_error="no room")}))
    assert expected.passed, expected.failed


def test_example_cma_scenario_file_passes() -> None:
    result = run_scenario(SCENARIOS / "cma-camsoc-layout.toml")
    assert result.passed, result.failed
    assert result.summary["attempts"] == 2000


def test_region_expectation_in_code() -> None:
    sc = load_scenario(SCENARIOS / "cma-camsoc-layout.toml")
    cam = next(r for r in run_scenario(sc).summary["regions"] if r["name"] == "cam")
    moved = Scenario(**{**sc.__dict__, "expect": Expectations(
        regions=(RegionExpectation("cam", cam["base"], cam["size"]),))})
    assert run_scenario(moved).passed


@pytest.mark.emulator
def test_frame_and_dma_verdict_expectations_on_a_host_driven_camera() -> None:
    from emu.devices.dma.testpattern import PixelFormat
    from emu.machine import Machine, RunResult
    from emu.scenario import machine_checks
    from emu.system import System

    def drive(program_phys: bool) -> tuple[System, list[int]]:
        """Two camera frames, programmed with the bus address or (the bug) the physical one."""
        machine = Machine("camsoc")
        system = System(machine, "cma=cam=16M cma_map=camera=cam")
        cam = system.device("camera")
        regs = {r.name: r.offset for r in cam.registers}
        chunks = [system.alloc("camera", 64 * 48 * 2) for _ in range(2)]
        values = {"WIDTH": 64, "HEIGHT": 48, "FORMAT": int(PixelFormat.RGB565),
                  "FRAME_INTERVAL": 1000, "RING_SIZE": 2, "BUF_READY": 3}
        for name, value in values.items():
            cam.write(regs[name], 4, value)
        for i, c in enumerate(chunks):
            cam.write(regs["BUF_ADDR"] + 4 * i, 4, c.phys if program_phys else c.dma_addr)
        cam.write(regs["CTRL"], 4, 1)
        machine.clock.advance_by(machine.clock.ticks_from_ns(2_000_000))
        return system, [c.phys for c in chunks]

    done = RunResult("poweroff", 0, 0, 0.0, 0.0, 0, exit_status=0)
    good, _ = drive(program_phys=False)
    want = Scenario(name="t", expect=Expectations(frames_landed_min=2, frames_verified_min=0))
    assert all(c.ok for c in machine_checks(want, good.machine, good, done))
    strict = Scenario(name="t", expect=Expectations(frames_landed_min=3,
                                                    dma_verdicts=("phys-for-bus",)))
    failed = [c for c in machine_checks(strict, good.machine, good, done) if not c.ok]
    assert [c.name for c in failed] == ["frames landed >= 3", "DMA verdict phys-for-bus present"]
    assert failed[0].detail == "2 landed of 2"

    bad, _ = drive(program_phys=True)
    default = [c for c in machine_checks(Scenario(name="t"), bad.machine, bad, done) if not c.ok]
    assert [c.name for c in default] == ["no DMA violations"]
    assert "[phys-for-bus]" in default[0].detail
    expected = Scenario(name="t", expect=Expectations(dma_verdicts=("phys-for-bus",)))
    assert all(c.ok for c in machine_checks(expected, bad.machine, bad, done))
