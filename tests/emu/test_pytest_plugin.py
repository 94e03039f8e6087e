"""The ``emu`` pytest plugin, exercised the way users use it: inside a pytester run."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
SELFTEST = ROOT / "firmware" / "prebuilt" / "selftest.elf"


def test_plugin_is_registered_and_declares_its_markers(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--markers")
    result.stdout.fnmatch_lines(["*emu_board(name)*", "*emu_limits(*"])
    help_text = pytester.runpytest("--help")
    help_text.stdout.fnmatch_lines(["*--emu-json=DIR*"])


@pytest.mark.emulator
def test_run_image_passes_and_the_junit_xml_carries_the_result(pytester: pytest.Pytester
                                                               ) -> None:
    pytester.makepyfile(f"""
        from emu.pytest_plugin import assert_scenario_passed

        def test_selftest(run_image):
            result = run_image({str(SELFTEST)!r}, "camsoc",
                               cma="cma=cam=16M cma_map=camera=cam",
                               max_instructions=50_000_000,
                               expect={{"console_contains": "selftest: PASS",
                                        "console_not_contains": "[FAIL]",
                                        "exit_status": 0, "no_guest_errors": True}})
            assert_scenario_passed(result)
            assert result.summary["regions"][0]["name"] == "cam"
    """)
    result = pytester.runpytest("--junitxml=report.xml", "--emu-json=results")
    result.assert_outcomes(passed=1)
    tree = ET.parse(pytester.path / "report.xml")
    props = {p.get("name"): p.get("value") for p in tree.iter("property")}
    doc = json.loads(props["emu_result"])
    assert doc["passed"] is True
    assert doc["stop"] == {"reason": "poweroff", "exit_status": 0}
    written = list((pytester.path / "results").glob("*.json"))
    assert len(written) == 1
    full = json.loads(written[0].read_text())
    assert "selftest: PASS" in full["run"]["console"]


@pytest.mark.emulator
def test_a_failing_expectation_fails_the_test_with_an_emu_section(pytester: pytest.Pytester
                                                                  ) -> None:
    pytester.makepyfile(f"""
        import pytest
        from emu.pytest_plugin import assert_scenario_passed

        @pytest.mark.emu_board("virt")
        def test_selftest(run_image):
            result = run_image({str(SELFTEST)!r}, max_instructions=50_000_000,
                               expect={{"console_contains": ["a line nobody prints"]}})
            assert result.summary["board"] == "virt"
            assert_scenario_passed(result)
    """)
    result = pytester.runpytest("-rf")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*- emu -*",
        "*scenario test_selftest: FAILED*",
        "*FAIL: console contains 'a line nobody prints': not printed*",
        "*selftest: PASS*",
    ])


@pytest.mark.emulator
def test_expect_waits_in_virtual_time_and_fails_with_the_console(pytester: pytest.Pytester
                                                                 ) -> None:
    pytester.makepyfile(f"""
        import pytest
        from emu.pytest_plugin import expect

        def test_sections_in_order(emu_machine, emu_console):
            machine = emu_machine("camsoc", elf={str(SELFTEST)!r})
            console = emu_console(machine)
            console.expect("psci:", timeout_instructions=20_000_000)
            assert "selftest: PASS" not in console.text
            expect(machine, "exceptions:")
            expect(machine, "selftest: PASS")
            assert console.text.index("psci:") < console.text.index("exceptions:")

        def test_missing_text(emu_machine):
            machine = emu_machine("camsoc", elf={str(SELFTEST)!r})
            expect(machine, "mmu:")
            with pytest.raises(AssertionError, match="stop: poweroff"):
                expect(machine, "psci:")  # printed before mmu:, so not after the cursor
    """)
    pytester.runpytest().assert_outcomes(passed=2)


@pytest.mark.emulator
def test_dma_assertions_on_a_host_driven_camera(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("""
        import pytest
        from emu.devices.dma.testpattern import PixelFormat
        from emu.pytest_plugin import (assert_dma_addr_for, assert_frame_landed,
                                       assert_no_dma_outside)

        CMA = "cma=cam=16M;disp=8M cma_map=camera=cam;clcd=disp"
        W, H = 64, 48

        def start(system, addresses):
            cam = system.device("camera")
            regs = {r.name: r.offset for r in cam.registers}
            def w(name, value, index=0):
                cam.write(regs[name] + 4 * index, 4, value)
            w("WIDTH", W); w("HEIGHT", H); w("FORMAT", int(PixelFormat.RGB565))
            w("FRAME_INTERVAL", 1000)
            for i, a in enumerate(addresses):
                w("BUF_ADDR", a, i)
            w("RING_SIZE", len(addresses)); w("BUF_READY", (1 << len(addresses)) - 1)
            w("CTRL", 1)
            clock = system.machine.clock
            clock.advance_by(clock.ticks_from_ns(2 * 1_000_000))

        @pytest.mark.emu_board("camsoc-alias")
        def test_right_address(emu_system):
            system = emu_system(cma=CMA)
            chunks = [system.alloc("camera", W * H * 2) for _ in range(2)]
            assert_dma_addr_for(system, "camera", chunks[0].phys, chunks[0].dma_addr)
            assert_dma_addr_for(system, "clcd", chunks[0].phys,
                                chunks[0].phys - 0x40000000 + 0xC0000000)
            start(system, [c.dma_addr for c in chunks])
            assert assert_frame_landed(system, 1)["phys_addr"] == chunks[1].phys
            assert_no_dma_outside(system)
            assert_no_dma_outside(system, ["cam"])
            with pytest.raises(AssertionError, match="outside disp"):
                assert_no_dma_outside(system, ["disp"])
            with pytest.raises(AssertionError, match="not 0x00000000"):
                assert_dma_addr_for(system, "camera", chunks[0].phys, 0)

        def test_physical_address_programmed(emu_system):
            system = emu_system(cma=CMA)
            chunk = system.alloc("camera", W * H * 2)
            start(system, [chunk.phys])
            with pytest.raises(AssertionError, match=r"did not land \\(refused\\): phys-for-bus"):
                assert_frame_landed(system, 0)
            with pytest.raises(AssertionError, match="no frame 5 was written"):
                assert_frame_landed(system, 5)
            with pytest.raises(AssertionError, match=r"refused \\[phys-for-bus\\]"):
                assert_no_dma_outside(system)
    """)
    pytester.runpytest().assert_outcomes(passed=2)


@pytest.mark.emulator
def test_scenario_fixture_runs_a_file_next_to_the_test(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", selftest=f"""
        schema = 1
        board = "camsoc"
        [images]
        elf = {json.dumps(str(SELFTEST))}
        [limits]
        max_instructions = 50_000_000
        [expect]
        console_contains = ["selftest: PASS"]
    """)
    pytester.makepyfile("""
        def test_file(scenario, record_property):
            result = scenario("selftest.toml")
            assert result.passed, result.failed
            assert result.source.endswith("selftest.toml")
    """)
    pytester.runpytest().assert_outcomes(passed=1)
