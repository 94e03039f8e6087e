"""pytest plugin ``emu``: boot firmware in tests, wait on its console, assert where DMA went.

Installed as the ``pytest11`` entry point ``emu``, so any project that has the
harness installed gets, without a ``conftest.py``:

fixtures
    ``emu_machine(board=None, *, elf=None, bios=None, kernel=None, ...)`` a factory of
    :class:`~emu.machine.Machine`; ``emu_system(board=None, cma="", ...)`` a factory of
    :class:`~emu.system.System` (the machine with the CMA core and DMA checker);
    ``emu_console(machine)`` expect-style console driving in virtual time;
    ``run_image(image, ...)`` and ``scenario(path)`` run a whole scenario and return
    its :class:`~emu.scenario.ScenarioResult`.
assertions
    :func:`expect`, :func:`assert_frame_landed`, :func:`assert_no_dma_outside`,
    :func:`assert_dma_addr_for`, :func:`assert_scenario_passed`.
markers
    ``emu_board(name)`` (the default board of the factories in that test) and
    ``emu_limits(max_instructions=None, max_seconds=None)`` (default limits of
    ``run_image``).
reporting
    every scenario a test runs is attached to its report as the user property
    ``emu_result`` (a JSON summary: JUnit XML carries it as a ``<property>``),
    failed checks appear in an ``emu`` section of a failing test's report, and
    ``--emu-json DIR`` writes each full JSON result to DIR.

Nothing here imports Unicorn until a fixture is used.
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from emu.atomic import write_atomic
from emu.scenario import (
    ConsoleSession,
    ConsoleStep,
    Expectations,
    RegionExpectation,
    Scenario,
    ScenarioResult,
    load_scenario,
    run_scenario,
)

DEFAULT_BOARD = "camsoc"
_RESULTS = pytest.StashKey[list[ScenarioResult]]()
_SESSIONS: weakref.WeakKeyDictionary[Any, ExpectConsole] = weakref.WeakKeyDictionary()


# --- hooks ---------------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("emu", "ARMv7 SoC harness")
    group.addoption("--emu-json", metavar="DIR", default=None,
                    help="write the full JSON result of every scenario a test runs to DIR")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "emu_board(name): the default board of the emu_* "
                            "fixtures in this test (virt, camsoc, camsoc-alias or a .dts/.dtb)")
    config.addinivalue_line("markers", "emu_limits(max_instructions=None, max_seconds=None): "
                            "default limits of run_image in this test")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    results = item.stash.get(_RESULTS, [])
    if report.when != "call" or not results or not report.failed:
        return
    lines = []
    for r in results:
        lines.append(f"scenario {r.name}: {'passed' if r.passed else 'FAILED'}")
        lines += [f"  FAIL: {f}" for f in r.failed]
        console = (r.run or {}).get("console", "")
        if console and not r.passed:
            lines.append("  console (last lines):")
            lines += [f"    {ln}" for ln in console.splitlines()[-15:]]
    report.sections.append(("emu", "\n".join(lines)))


def _record(request: pytest.FixtureRequest, result: ScenarioResult) -> None:
    node = request.node
    node.stash.setdefault(_RESULTS, []).append(result)
    node.user_properties.append(("emu_result", json.dumps(result.to_summary(),
                                                          sort_keys=True)))
    directory = request.config.getoption("--emu-json")
    if directory:
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", node.nodeid)
        n = len(node.stash[_RESULTS])
        write_atomic(out / f"{stem}-{n}.json", json.dumps(result.to_json(), indent=2) + "\n")


def _board(request: pytest.FixtureRequest, board: str | None) -> str:
    if board is not None:
        return board
    marker = request.node.get_closest_marker("emu_board")
    if marker is not None and marker.args:
        return str(marker.args[0])
    return DEFAULT_BOARD


# --- fixtures ------------------------------------------------------------------------------
@pytest.fixture
def emu_machine(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Factory: ``emu_machine(board=None, *, elf=None, bios=None, kernel=None, **machine_kw)``.

    Builds a :class:`~emu.machine.Machine` (board from the argument, the
    ``emu_board`` marker, or camsoc) and loads at most one image.
    """

    def make(board: str | None = None, *, elf: str | Path | None = None,
             bios: str | Path | None = None, kernel: str | Path | None = None,
             **machine_kw: Any) -> Any:
        from emu.machine import Machine

        machine = Machine(_board(request, board), **machine_kw)
        if elf is not None:
            machine.load_elf(elf)
        elif bios is not None:
            machine.load_bios(bios)
        elif kernel is not None:
            machine.load_kernel(kernel)
        return machine

    return make


@pytest.fixture
def emu_system(emu_machine: Callable[..., Any]) -> Callable[..., Any]:
    """Factory: ``emu_system(board=None, cma="", *, machine=None, elf=None, **system_kw)``.

    A :class:`~emu.system.System` (CMA core reserved and published, CMA service,
    DMA checker) over a new machine or the one given.
    """

    def make(board: str | None = None, cma: str = "", *, machine: Any = None,
             elf: str | Path | None = None, **system_kw: Any) -> Any:
        from emu.system import System

        if machine is None:
            machine = emu_machine(board, elf=elf)
        return System(machine, cma, **system_kw)

    return make


@pytest.fixture
def emu_console() -> Callable[[Any], ExpectConsole]:
    """Factory: ``emu_console(machine)`` -> :class:`ExpectConsole` (one per machine)."""
    return console_of


@pytest.fixture
def run_image(request: pytest.FixtureRequest) -> Callable[..., ScenarioResult]:
    """Factory: run one image as a scenario and return its result (attached to the report).

    ``run_image(image, board=None, *, kind=None, cma="", append=None, script=(),
    until=None, max_instructions=None, max_seconds=None, expect=None, **scenario_kw)``.
    ``kind`` is ``elf``, ``bios`` or ``kernel`` (default: ``elf`` for ``*.elf``,
    ``bios`` for ``*.bin``, else ``kernel``); ``script`` a list of ``(expect, send)``
    pairs; ``expect`` an :class:`~emu.scenario.Expectations` or a mapping of its
    fields (``regions`` as ``{name: base}``).
    """

    def run(image: str | Path, board: str | None = None, *, kind: str | None = None,
            cma: str = "", append: str | None = None,
            script: Sequence[tuple[str | None, str | None]] = (), until: str | None = None,
            max_instructions: int | None = None, max_seconds: float | None = None,
            expect: Expectations | Mapping[str, Any] | None = None,
            **scenario_kw: Any) -> ScenarioResult:
        path = Path(image).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"image not found: {path}")
        kind = kind or ("elf" if path.suffix == ".elf" else
                        "bios" if path.suffix == ".bin" else "kernel")
        if kind not in ("elf", "bios", "kernel"):
            raise ValueError(f"kind must be 'elf', 'bios' or 'kernel', not {kind!r}")
        limits = request.node.get_closest_marker("emu_limits")
        if limits is not None:
            max_instructions = max_instructions or limits.kwargs.get("max_instructions")
            max_seconds = max_seconds or limits.kwargs.get("max_seconds")
        if max_instructions is None and max_seconds is None:
            max_seconds = 60.0
        sc = Scenario(
            name=request.node.name, board=_board(request, board), cma=cma, append=append,
            console=tuple(ConsoleStep(e, s) for e, s in script), until=until,
            max_instructions=max_instructions, max_seconds=max_seconds,
            expect=_expectations(expect), elf=str(path) if kind == "elf" else None,
            bios=str(path) if kind == "bios" else None,
            kernel=str(path) if kind == "kernel" else None, **scenario_kw)
        result = run_scenario(sc)
        _record(request, result)
        return result

    return run


@pytest.fixture
def scenario(request: pytest.FixtureRequest) -> Callable[[str | Path], ScenarioResult]:
    """Factory: ``scenario(path)`` runs a scenario file (relative to the test file)."""

    def run(path: str | Path) -> ScenarioResult:
        p = Path(path)
        if not p.is_absolute():
            p = Path(request.node.path).parent / p
        result = run_scenario(load_scenario(p))
        _record(request, result)
        return result

    return run


def _expectations(expect: Expectations | Mapping[str, Any] | None) -> Expectations:
    if expect is None:
        return Expectations()
    if isinstance(expect, Expectations):
        return expect
    fields = dict(expect)
    for key in ("console_contains", "console_not_contains", "dma_verdicts"):
        if isinstance(fields.get(key), str):
            fields[key] = (fields[key],)
        elif key in fields:
            fields[key] = tuple(fields[key])
    if "regions" in fields:
        fields["regions"] = tuple(RegionExpectation(name, base)
                                  for name, base in dict(fields["regions"]).items())
    return Expectations(**fields)


# --- console -----------------------------------------------------------------------------
class ExpectConsole:
    """Console of a live machine: :meth:`expect` runs it in virtual time until text shows."""

    def __init__(self, machine: Any) -> None:
        self.session = ConsoleSession(machine)

    @property
    def text(self) -> str:
        """Everything printed so far."""
        return self.session.text

    def send(self, line: str, enter: str = "\r") -> None:
        """Type ``line`` and Enter."""
        self.session.send(line, enter)

    def expect(self, text: str, timeout_instructions: int | None = 10_000_000,
               max_seconds: float | None = None) -> None:
        """Run until ``text`` is printed after the previous match, or fail the test."""
        if not self.session.expect(text, timeout_instructions, max_seconds):
            last = self.session.last
            stop = f"{last.reason}" if last is not None else "not run"
            tail = "\n".join(self.text.splitlines()[-10:])
            raise AssertionError(f"{text!r} was not printed within {timeout_instructions} "
                                 f"instructions (stop: {stop}); console ends with:\n{tail}")


def console_of(machine: Any) -> ExpectConsole:
    """The :class:`ExpectConsole` of ``machine`` (the same one on every call)."""
    console = _SESSIONS.get(machine)
    if console is None:
        console = _SESSIONS[machine] = ExpectConsole(machine)
    return console


def expect(machine: Any, text: str, timeout_instructions: int | None = 10_000_000,
           max_seconds: float | None = None) -> None:
    """Run ``machine`` until ``text`` is printed (virtual time), else fail the test."""
    console_of(machine).expect(text, timeout_instructions, max_seconds)


# --- assertions ----------------------------------------------------------------------------
def assert_scenario_passed(result: ScenarioResult) -> None:
    """Fail with every failed check of ``result``."""
    if not result.passed:
        raise AssertionError(f"scenario {result.name} failed:\n  " + "\n  ".join(result.failed))


def assert_frame_landed(system: Any, seq: int, master: str | None = None) -> dict[str, Any]:
    """Frame ``seq`` (of ``master``, or any camera) landed in a live chunk; returns its record."""
    records = system.frame_records()
    mine = [r for r in records if r["seq"] == seq and (master is None or r["master"] == master)]
    if not mine:
        seen = sorted({r["seq"] for r in records})
        raise AssertionError(f"no frame {seq} was written" + (f" by {master}" if master else "")
                             + f"; frames written: {seen or 'none'}")
    record: dict[str, Any] = mine[-1]
    if not record["landed"]:
        why = [f"{v.verdict}: {v.detail}" for v in system.checker.violations
               if v.bus_addr == record["bus_addr"]]
        raise AssertionError(f"frame {seq} at bus 0x{record['bus_addr']:08x} did not land "
                             f"({record['verdict']})" + (f": {why[0]}" if why else ""))
    return record


def assert_no_dma_outside(system: Any,
                          regions: Iterable[str | tuple[int, int]] | None = None) -> None:
    """Every DMA write landed inside ``regions`` (names or ``(base, size)``; default: all CMA
    regions) and no DMA access was refused."""
    spans = []
    if regions is None:
        spans = [(r.base, r.size, r.name) for r in system.core.regions]
    else:
        for r in regions:
            if isinstance(r, str):
                reg = system.core.region(r)
                spans.append((reg.base, reg.size, reg.name))
            else:
                spans.append((r[0], r[1], f"0x{r[0]:08x}+0x{r[1]:x}"))
    problems = [f"{v.master}: {v.access} at bus 0x{v.bus_addr:08x} refused [{v.verdict}]"
                for v in system.checker.violations]
    for rec in system.machine.bus.dma_log.records:
        if rec.kind != "write" or rec.phys is None:
            continue
        if not any(base <= rec.phys and rec.phys + rec.size <= base + size
                   for base, size, _ in spans):
            problems.append(f"{rec.master}: write of 0x{rec.size:x} bytes at phys "
                            f"0x{rec.phys:08x} outside "
                            f"{', '.join(n for _, _, n in spans) or 'every region'}")
    if problems:
        raise AssertionError(f"{len(problems)} DMA problem(s):\n  " + "\n  ".join(problems[:10]))


def assert_dma_addr_for(system: Any, device: str, phys: int, expected_bus: int,
                        size: int = 1) -> None:
    """``device`` must be programmed with ``expected_bus`` to reach ``phys`` (its dma-ranges)."""
    from cma.translate import phys_to_dma

    got = phys_to_dma(system.translator.dma_windows(device), phys, size)
    if got != expected_bus:
        shown = "unreachable" if got is None else f"0x{got:08x}"
        raise AssertionError(f"{device} sees phys 0x{phys:08x} at bus {shown}, "
                             f"not 0x{expected_bus:08x}")
