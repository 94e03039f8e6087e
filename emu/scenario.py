"""Scenario files: a run (or an allocator experiment) and what it must show, in one TOML file.

A scenario says which board and images to boot, how the CMA core is configured, what
to type on the console, how long to run, and what must hold afterwards (exit status,
console text, frames verified, DMA verdicts, regions at given addresses). It is the
unit CI runs and sweeps fan out. Two kinds:

``kind = "machine"`` (the default)
    boots images on the emulated SoC through :class:`~emu.machine.Machine` and
    :class:`~emu.system.System`, the same way ``emu run`` does;
``kind = "cma"``
    runs no emulator: RAM banks, a ``cma=``/``cma_map=`` text and devices with DMA
    windows go to the CMA core, and a seeded allocation workload
    (:func:`cma.bench.make_workload`) reports placement, success rate and
    fragmentation. Thousands of these make a sweep.

:func:`load_scenario` reads and checks a file (every problem is one
:class:`ScenarioError` naming the file and the key); :func:`run_scenario` runs a
file or a :class:`Scenario` and returns a :class:`ScenarioResult` whose checks say
what failed. The format is described in ``docs/scenarios.md``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from emu.atomic import write_atomic
from emu.errors import EmuError

#: the ``schema`` value this module reads
SCHEMA = 1
#: the ``schema`` of :meth:`ScenarioResult.to_json`
RESULT_SCHEMA = "emu-scenario/1"
KINDS = ("machine", "cma")
DMA_POLICIES = ("chunks", "reserved", "window")
#: the wall-clock limit of a machine scenario that sets no limit at all
DEFAULT_MAX_SECONDS = 60.0
#: stop reasons a machine run may end with (see emu.machine.STOP_REASONS)
STOP_REASONS = ("until", "poweroff", "reset", "idle", "max-instructions", "max-seconds", "fault")
DMA_VERDICTS = ("phys-for-bus", "virt-for-bus", "wrong-alias", "use-after-put",
                "outside-reserved", "not-allocated", "outside-window")

DmaWindow = tuple[int, int, int]


class ScenarioError(EmuError):
    """A scenario that cannot be loaded: bad TOML, unknown key, wrong type, missing file."""


# --- the scenario --------------------------------------------------------------------
@dataclass(frozen=True)
class ConsoleStep:
    """Wait for ``expect`` to be printed (if given), then type ``send`` (if given)."""

    expect: str | None = None
    send: str | None = None


@dataclass(frozen=True)
class RegionExpectation:
    """A CMA region that must exist, optionally at ``base`` and of ``size`` bytes."""

    name: str
    base: int | None = None
    size: int | None = None


@dataclass(frozen=True)
class Expectations:
    """What must hold after the run; each field that is set becomes one check.

    ``no_dma_violations`` left as None means "yes, unless ``dma_verdicts`` asks
    for violations". Without ``stop_reason``, a machine run must end the way
    ``emu run`` counts as success (``until`` seen, poweroff, or the instruction
    budget when no ``until`` was given); without ``exit_status`` a poweroff
    must carry status 0.
    """

    stop_reason: str | None = None
    exit_status: int | None = None
    console_contains: tuple[str, ...] = ()
    console_not_contains: tuple[str, ...] = ()
    frames_verified_min: int | None = None
    frames_landed_min: int | None = None
    no_dma_violations: bool | None = None
    dma_verdicts: tuple[str, ...] = ()
    no_guest_errors: bool = False
    regions: tuple[RegionExpectation, ...] = ()
    min_success_rate: float | None = None
    max_fragmentation: float | None = None
    placement_error: str | None = None


@dataclass(frozen=True)
class CmaDevice:
    """A DMA master of a ``kind = "cma"`` scenario: ``windows`` None is an identity view."""

    name: str
    windows: tuple[DmaWindow, ...] | None = None


@dataclass(frozen=True)
class WorkloadSpec:
    """The seeded allocation workload of a ``kind = "cma"`` scenario."""

    seed: int = 1
    allocs: int = 1000
    devices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scenario:
    """One scenario, loaded from a file or built in code (picklable, so sweeps can ship it)."""

    name: str
    kind: str = "machine"
    source: str | None = None
    # machine
    board: str = "camsoc"
    cpu: str = "cortex-a15"
    bios: str | None = None
    kernel: str | None = None
    elf: str | None = None
    dtb: str | None = None
    initrd: str | None = None
    host_decompress: bool = False
    append: str | None = None
    page_offset: int | None = 0x8000_0000
    dma_policy: str = "chunks"
    console: tuple[ConsoleStep, ...] = ()
    until: str | None = None
    enter: str = "\r"
    max_instructions: int | None = None
    max_seconds: float | None = None
    # both kinds
    cma: str = ""
    cma_defaults: str | None = None
    expect: Expectations = field(default_factory=Expectations)
    json_out: str | None = None
    png_out: str | None = None
    keep_frames: int = 8
    # kind = "cma"
    ram: tuple[tuple[int, int], ...] = ()
    devices: tuple[CmaDevice, ...] = ()
    page_size: int = 4096
    workload: WorkloadSpec = field(default_factory=WorkloadSpec)


# --- loading ---------------------------------------------------------------------------
class _Table:
    """Reads one TOML table, remembering which keys were used so the rest are unknown."""

    def __init__(self, file: str, data: Mapping[str, Any], prefix: str = "") -> None:
        self.file = file
        self.data = data
        self.prefix = prefix
        self.used: set[str] = set()

    def error(self, key: str, message: str) -> ScenarioError:
        return ScenarioError(f"{self.file}: key '{self.prefix}{key}': {message}")

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str) -> Any:
        self.used.add(key)
        return self.data.get(key)

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, not {value!r}")
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, not {value!r}")
        return value

    def integer(self, key: str, default: int | None = None, *,
                minimum: int | None = 0) -> int | None:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, not {value!r}")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum}, not {value}")
        return value

    def number(self, key: str, default: float | None = None) -> float | None:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0 \
                or not math.isfinite(value):
            raise self.error(key, f"must be a finite non-negative number, not {value!r}")
        return float(value)

    def size(self, key: str, default: int | None = None) -> int | None:
        """An integer, or a string the kernel's ``memparse`` reads (``"64M"``, ``"0x1000"``)."""
        value = self.raw(key)
        if value is None:
            return default
        return self.to_size(key, value)

    def to_size(self, key: str, value: Any) -> int:
        if isinstance(value, bool):
            raise self.error(key, f"must be a number or a size such as \"64M\", not {value!r}")
        if isinstance(value, int):
            if value < 0:
                raise self.error(key, f"must not be negative, not {value}")
            if value >= 1 << 64:
                raise self.error(key, f"must fit in 64 bits, not {value:#x}")
            return value
        if isinstance(value, str):
            from cma.allocators import parse_size
            from cma.errors import CMAError

            try:
                return parse_size(value)
            except CMAError as exc:
                raise self.error(key, str(exc)) from None
        raise self.error(key, f"must be a number or a size such as \"64M\", not {value!r}")

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.raw(key)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"must be a string or a list of strings, not {value!r}")
        return tuple(value)

    def table(self, key: str) -> _Table:
        value = self.raw(key)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise self.error(key, f"must be a table, not {value!r}")
        return _Table(self.file, value, f"{self.prefix}{key}.")

    def tables(self, key: str) -> list[_Table]:
        value = self.raw(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.error(key, f"must be a list of tables, not {value!r}")
        return [_Table(self.file, v, f"{self.prefix}{key}[{i}].") for i, v in enumerate(value)]

    def path(self, key: str, base: Path) -> str | None:
        """A file name relative to the scenario file, which must exist."""
        text = self.text(key)
        if text is None:
            return None
        path = (base / text).resolve()
        if not path.is_file():
            raise self.error(key, f"file not found: {path}")
        return str(path)

    def finish(self, known_extra: tuple[str, ...] = ()) -> None:
        unknown = sorted(set(self.data) - self.used - set(known_extra))
        if unknown:
            known = ", ".join(sorted(self.used | set(known_extra)))
            raise self.error(unknown[0], f"unknown key (known here: {known})")


def load_scenario(path: str | Path) -> Scenario:
    """Read and check a scenario file; every problem is one :class:`ScenarioError`."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    return scenario_from_dict(data, source=path)


def scenario_from_dict(data: Mapping[str, Any], source: str | Path | None = None,
                       base_dir: str | Path | None = None) -> Scenario:
    """Build a :class:`Scenario` from parsed TOML (paths relative to ``base_dir``)."""
    label = str(source) if source is not None else "<scenario>"
    base = Path(base_dir) if base_dir is not None else (
        Path(source).resolve().parent if source is not None else Path.cwd())
    top = _Table(label, data)
    schema = top.raw("schema")
    if schema is None:
        raise top.error("schema", f"is missing; write 'schema = {SCHEMA}' first")
    if schema != SCHEMA:
        raise top.error("schema", f"must be {SCHEMA}, not {schema!r}")
    kind = top.text("kind", "machine") or "machine"
    if kind not in KINDS:
        raise top.error("kind", f"must be one of {', '.join(KINDS)}, not {kind!r}")
    default_name = Path(source).stem if source is not None else "scenario"
    name = top.text("name", default_name) or default_name
    cma_text = top.text("cma", "") or ""
    cma_defaults = top.text("cma_defaults")
    expect = _expectations(top.table("expect"), kind)
    outputs = top.table("outputs")
    json_out = outputs.text("json")
    png_out = outputs.text("png")
    keep = outputs.integer("keep_frames", 8)
    outputs.finish()
    common: dict[str, Any] = {
        "name": name, "kind": kind, "source": str(source) if source is not None else None,
        "cma": cma_text, "cma_defaults": cma_defaults, "expect": expect,
        "json_out": str((base / json_out).resolve()) if json_out else None,
        "png_out": str((base / png_out).resolve()) if png_out else None,
        "keep_frames": keep if keep is not None else 8,
    }
    if kind == "cma":
        scenario = _cma_scenario(top, common)
    else:
        scenario = _machine_scenario(top, base, common)
    top.finish()
    return scenario


def _machine_scenario(top: _Table, base: Path, common: dict[str, Any]) -> Scenario:
    board = top.text("board")
    if board is None:
        raise top.error("board", "is missing (virt, camsoc, camsoc-alias or a .dts/.dtb file)")
    if board.endswith((".dts", ".dtb")):
        board_path = (base / board).resolve()
        if not board_path.is_file():
            raise top.error("board", f"file not found: {board_path}")
        board = str(board_path)
    images = top.table("images")
    found = {k: images.path(k, base) for k in ("bios", "kernel", "elf")}
    given = [k for k, v in found.items() if v]
    if len(given) != 1:
        raise images.error("bios|kernel|elf", "exactly one of bios, kernel, elf is needed, "
                           f"not {len(given)}" + (f" ({', '.join(given)})" if given else ""))
    initrd = images.path("initrd", base)
    dtb = images.path("dtb", base)
    host_decompress = images.flag("host_decompress")
    images.finish()
    if initrd and not found["kernel"]:
        raise images.error("initrd", "needs images.kernel")
    if host_decompress and not found["kernel"]:
        raise images.error("host_decompress", "needs images.kernel")
    append = top.text("append")
    if append is not None and found["bios"]:
        raise top.error("append", "needs images.kernel or images.elf")
    page_offset: int | None
    raw_offset = top.raw("page_offset")
    if raw_offset is None:
        page_offset = 0x8000_0000
    elif isinstance(raw_offset, str) and raw_offset.lower() == "none":
        page_offset = None
    else:
        page_offset = top.to_size("page_offset", raw_offset)
    policy = top.text("dma_policy", "chunks") or "chunks"
    if policy not in DMA_POLICIES:
        raise top.error("dma_policy", f"must be one of {', '.join(DMA_POLICIES)}, "
                        f"not {policy!r}")
    cpu = top.text("cpu", "cortex-a15") or "cortex-a15"
    console = top.table("console")
    steps = []
    for step in console.tables("script"):
        expect_text, send_text = step.text("expect"), step.text("send")
        step.finish()
        if expect_text is None and send_text is None:
            raise step.error("expect", "a step needs expect, send or both")
        if expect_text == "":
            raise step.error("expect", "must not be empty")
        steps.append(ConsoleStep(expect_text, send_text))
    until = console.text("until")
    enter = console.text("enter", "\r")
    console.finish()
    limits = top.table("limits")
    max_instructions = limits.integer("max_instructions", minimum=1)
    max_seconds = limits.number("max_seconds")
    limits.finish()
    if max_instructions is None and max_seconds is None:
        max_seconds = DEFAULT_MAX_SECONDS
    return Scenario(
        board=board, cpu=cpu, bios=found["bios"], kernel=found["kernel"], elf=found["elf"],
        dtb=dtb, initrd=initrd, host_decompress=host_decompress, append=append,
        page_offset=page_offset, dma_policy=policy, console=tuple(steps), until=until,
        enter=enter if enter is not None else "\r",
        max_instructions=max_instructions, max_seconds=max_seconds, **common)


def _cma_scenario(top: _Table, common: dict[str, Any]) -> Scenario:
    ram = []
    for bank in top.tables("ram"):
        start, size = bank.size("start"), bank.size("size")
        bank.finish()
        if start is None or size is None or size == 0:
            raise bank.error("size" if start is not None else "start",
                             "each RAM bank needs start and a size above 0")
        ram.append((start, size))
    if not ram:
        raise top.error("ram", "is missing: give RAM banks as [[ram]] start = ..., size = ...")
    devices = []
    for dev in top.tables("devices"):
        dname = dev.text("name")
        if not dname:
            raise dev.error("name", "is missing")
        windows: tuple[DmaWindow, ...] | None = None
        if dev.has("dma"):
            wins = []
            for win in dev.tables("dma"):
                cpu, bus, size = win.size("cpu"), win.size("bus"), win.size("size")
                win.finish()
                if cpu is None or bus is None or not size:
                    raise win.error("size", "a DMA window needs cpu, bus and a size above 0")
                wins.append((cpu, bus, size))
            windows = tuple(wins)
        dev.finish()
        devices.append(CmaDevice(dname, windows))
    page_size = top.size("page_size", 4096)
    if page_size is None or page_size <= 0 or page_size & (page_size - 1):
        raise top.error("page_size", f"must be a power of two, not {page_size!r}")
    work = top.table("workload")
    names = tuple(d.name for d in devices)
    wl_devices = work.strings("devices") or names
    for d in wl_devices:
        if d not in names:
            raise work.error("devices", f"names no device of [[devices]]: {d!r}")
    if not wl_devices:
        raise top.error("devices", "a cma scenario needs at least one [[devices]] entry")
    spec = WorkloadSpec(seed=work.integer("seed", 1, minimum=None) or 0,
                        allocs=work.integer("allocs", 1000, minimum=1) or 1000,
                        devices=wl_devices)
    work.finish()
    if not common["cma"] and not common["cma_defaults"]:
        raise top.error("cma", "is missing: a cma scenario needs cma= (and cma_map=) text")
    return Scenario(ram=tuple(ram), devices=tuple(devices), page_size=page_size,
                    workload=spec, **common)


def _expectations(t: _Table, kind: str) -> Expectations:
    stop = t.text("stop_reason")
    if stop is not None and stop not in STOP_REASONS:
        raise t.error("stop_reason", f"must be one of {', '.join(STOP_REASONS)}, not {stop!r}")
    verdicts = t.strings("dma_verdicts")
    for v in verdicts:
        if v not in DMA_VERDICTS:
            raise t.error("dma_verdicts", f"must name verdicts of {', '.join(DMA_VERDICTS)}, "
                          f"not {v!r}")
    regions = []
    rt = t.table("regions")
    for rname in list(rt.data):
        value = rt.raw(rname)
        if isinstance(value, dict):
            sub = rt.table(rname)
            regions.append(RegionExpectation(rname, sub.size("base"), sub.size("size")))
            sub.finish()
        else:
            regions.append(RegionExpectation(rname, rt.to_size(rname, value)))
    rate = t.number("min_success_rate")
    if rate is not None and rate > 1:
        raise t.error("min_success_rate", f"must be between 0 and 1, not {rate}")
    max_frag = t.number("max_fragmentation")
    if max_frag is not None and max_frag > 1:
        raise t.error("max_fragmentation", f"must be between 0 and 1, not {max_frag}")
    exp = Expectations(
        stop_reason=stop, exit_status=t.integer("exit_status", minimum=None),
        console_contains=t.strings("console_contains"),
        console_not_contains=t.strings("console_not_contains"),
        frames_verified_min=t.integer("frames_verified_min"),
        frames_landed_min=t.integer("frames_landed_min"),
        no_dma_violations=t.flag("no_dma_violations") if t.has("no_dma_violations") else None,
        dma_verdicts=verdicts, no_guest_errors=t.flag("no_guest_errors"),
        regions=tuple(regions), min_success_rate=rate,
        max_fragmentation=max_frag,
        placement_error=t.text("placement_error"),
    )
    t.finish()
    machine_only = ("stop_reason", "exit_status", "console_contains", "console_not_contains",
                    "frames_verified_min", "frames_landed_min", "no_dma_violations",
                    "dma_verdicts", "no_guest_errors")
    cma_only = ("min_success_rate", "max_fragmentation", "placement_error")
    wrong = machine_only if kind == "cma" else cma_only
    for key in wrong:
        if key in t.data:
            raise t.error(key, f"does not apply to a kind = \"{kind}\" scenario")
    return exp


# --- results -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    """One evaluated expectation."""

    name: str
    ok: bool
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class ScenarioResult:
    """What a scenario did and which checks failed; :meth:`to_json` is the document."""

    name: str
    kind: str
    source: str | None
    checks: list[Check]
    summary: dict[str, Any]
    run: dict[str, Any] | None = None
    wall_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> list[str]:
        """``"check: detail"`` for every failed check."""
        return [f"{c.name}: {c.detail}" if c.detail else c.name for c in self.checks if not c.ok]

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def to_summary(self) -> dict[str, Any]:
        """The deterministic part: no host timings, so any executor gives the same."""
        return {"name": self.name, "kind": self.kind, "source": self.source,
                "passed": self.passed, "failed": self.failed, **self.summary}

    def to_json(self) -> dict[str, Any]:
        """The whole result (schema :data:`RESULT_SCHEMA`), host timing included."""
        return {"schema": RESULT_SCHEMA, **self.to_summary(),
                "checks": [c.to_dict() for c in self.checks],
                "wall_seconds": round(self.wall_seconds, 3), "run": self.run}


# --- running ---------------------------------------------------------------------------------
class ConsoleSession:
    """Expect-style console driving in virtual time: wait for text, then type.

    A cursor remembers how far the console has been matched, so text printed in
    the same slice as the previous match is still found, and each ``expect``
    only matches output that came after the previous one.
    """

    def __init__(self, machine: Any) -> None:
        self.machine = machine
        self.cursor = 0
        self.last: Any = None

    @property
    def text(self) -> str:
        return bytes(self.machine.console).decode("utf-8", errors="replace")

    def send(self, text: str, enter: str = "\r") -> None:
        """Type ``text`` followed by ``enter`` (as soon as the UART can take it)."""
        self.machine.send(text + enter)

    def expect(self, text: str, timeout_instructions: int | None = None,
               max_seconds: float | None = None) -> bool:
        """Run until ``text`` is printed past the cursor; False when the run stopped first."""
        needle = text.encode()
        console = self.machine.console
        pos = console.find(needle, self.cursor)
        if pos < 0:
            self.last = self.machine.run(max_instructions=timeout_instructions,
                                         until_console=text, max_seconds=max_seconds)
            pos = self.machine.console.find(needle, self.cursor)
        if pos < 0:
            return False
        self.cursor = pos + len(needle)
        return True

    def run(self, max_instructions: int | None = None, max_seconds: float | None = None) -> Any:
        self.last = self.machine.run(max_instructions=max_instructions, max_seconds=max_seconds)
        return self.last


def run_scenario(scenario: Scenario | str | Path,
                 console: Callable[[bytes], None] | None = None, *,
                 on_machine: Callable[[Any], None] | None = None) -> ScenarioResult:
    """Run a scenario (a file is loaded first), evaluate its expectations, write its outputs.

    ``on_machine`` receives the machine right after it is built (a signal handler that
    stops it between slices, a debugger).
    """
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    began = time.perf_counter()
    result = _run_cma(sc) if sc.kind == "cma" else _run_machine(sc, console, on_machine)
    result.wall_seconds = time.perf_counter() - began
    if sc.json_out:
        out = Path(sc.json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out, json.dumps(result.to_json(), indent=2) + "\n")
    return result


def build_machine(sc: Scenario, console: Callable[[bytes], None] | None = None) -> Any:
    """The :class:`Machine` of a machine scenario with its images loaded."""
    from emu.machine import Machine

    machine = Machine(sc.board, cpu=sc.cpu, console=console)
    if sc.bios:
        machine.load_bios(sc.bios)
    elif sc.kernel:
        machine.load_kernel(sc.kernel, host_decompress=sc.host_decompress, initrd=sc.initrd,
                            append=sc.append)
    elif sc.elf:
        machine.load_elf(sc.elf)
        if sc.append is not None:
            from emu.dt import guest

            guest.set_bootargs(machine.tree, sc.append)
    if sc.dtb:
        machine.set_dtb(sc.dtb)
    return machine


def build_system(sc: Scenario, machine: Any) -> Any:
    """The CMA core, its service and the DMA checker, as ``emu run`` builds them (or None)."""
    from emu.system import System

    text = sc.cma or _cma_from_append(sc.append)
    if not text and sc.cma_defaults is None and not machine.views:
        return None
    return System(machine, text, defaults=sc.cma_defaults, page_offset=sc.page_offset,
                  dma_policy=sc.dma_policy)


def _cma_from_append(append: str | None) -> str:
    if not append:
        return ""
    from cma.cmdline import is_modern_form, split_cmdline

    return " ".join(f"{k}={v}" for k, v in split_cmdline(append)
                    if v is not None and (k == "cma_map" or (k == "cma" and
                                                             not is_modern_form(v))))


def _run_machine(sc: Scenario, console: Callable[[bytes], None] | None,
                 on_machine: Callable[[Any], None] | None = None) -> ScenarioResult:
    from emu.machine import RunResult
    from emu.run_cli import result_json

    machine = build_machine(sc, console)
    if on_machine is not None:
        on_machine(machine)
    system = build_system(sc, machine)
    if system is not None and sc.png_out:
        system.keep_frames(sc.keep_frames)
    session = ConsoleSession(machine)
    start_instr = machine.instructions
    began = time.perf_counter()

    def left() -> tuple[int | None, float | None]:
        instr = None if sc.max_instructions is None else max(
            sc.max_instructions - (machine.instructions - start_instr), 0)
        secs = None if sc.max_seconds is None else max(
            sc.max_seconds - (time.perf_counter() - began), 0.0)
        return instr, secs

    checks: list[Check] = []
    for n, step in enumerate(sc.console, 1):
        if step.expect is not None:
            instr, secs = left()
            if not session.expect(step.expect, instr, secs):
                reason = session.last.reason if session.last is not None else "?"
                checks.append(Check(f"console step {n}", False,
                                    f"{step.expect!r} was not printed (stop: {reason})"))
                break
        if step.send is not None:
            session.send(step.send, sc.enter)
    else:
        instr, secs = left()
        if sc.until is not None:
            if not session.expect(sc.until, instr, secs):
                reason = session.last.reason if session.last is not None else "?"
                checks.append(Check("until", False,
                                    f"{sc.until!r} was not printed (stop: {reason})"))
        else:
            session.run(instr, secs)
    last = session.last
    wall = time.perf_counter() - began
    result = RunResult(
        reason=last.reason if last is not None else "until",
        instructions=machine.instructions - start_instr, ticks=machine.clock.now,
        virtual_seconds=machine.clock.now / machine.clock.hz, wall_seconds=wall,
        pc=machine.cpu.pc, exit_status=last.exit_status if last is not None else None,
        message=last.message if last is not None else "")
    checks += machine_checks(sc, machine, system, result)
    passed = all(c.ok for c in checks)
    args = argparse.Namespace(board=sc.board, bios=sc.bios, kernel=sc.kernel, elf=sc.elf)
    run = result_json(machine, result, args, 0 if passed else 1, system)
    if system is not None and sc.png_out:
        run["png"] = [str(p) for p in system.write_pngs(Path(sc.png_out))]
    frames = run.get("frames") or []
    summary = {
        "board": sc.board,
        "stop": {"reason": result.reason, "exit_status": result.exit_status},
        "instructions": result.instructions, "ticks": result.ticks,
        "trace_digest": run["trace_digest"],
        "frames": {"written": len(frames),
                   "landed": sum(1 for f in frames if f["landed"]),
                   "verified": sum(1 for f in frames if f["verdict"] == "verified")},
        "dma_violations": [v["verdict"] for v in
                           (run.get("system") or {}).get("dma", {}).get("violations", [])],
        "regions": [{"name": r.name, "base": r.base, "size": r.size}
                    for r in (system.core.regions if system is not None else ())],
    }
    return ScenarioResult(sc.name, sc.kind, sc.source, checks, summary, run)


def _accepted_stops(sc: Scenario) -> tuple[str, ...]:
    if sc.expect.stop_reason is not None:
        return (sc.expect.stop_reason,)
    if sc.until is not None:
        return ("until", "poweroff")
    return ("until", "poweroff", "max-instructions")


def machine_checks(sc: Scenario, machine: Any, system: Any, result: Any) -> list[Check]:
    """Evaluate ``sc.expect`` against a machine run (``result``: its :class:`RunResult`)."""
    exp = sc.expect
    checks = []
    stops = _accepted_stops(sc)
    detail = f"stopped with {result.reason}" + (f": {result.message}" if result.message else "")
    checks.append(Check(f"stop reason in {', '.join(stops)}", result.reason in stops, detail))
    if exp.exit_status is not None:
        checks.append(Check(f"exit status {exp.exit_status}",
                            result.exit_status == exp.exit_status,
                            f"status {result.exit_status} (stop: {result.reason})"))
    elif result.reason == "poweroff":
        checks.append(Check("poweroff status 0", not result.exit_status,
                            f"status {result.exit_status}"))
    text = bytes(machine.console).decode("utf-8", errors="replace")
    for needle in exp.console_contains:
        checks.append(Check(f"console contains {needle!r}", needle in text,
                            "" if needle in text else f"not printed; last line: "
                            f"{_last_line(text)!r}"))
    for needle in exp.console_not_contains:
        where = text.find(needle)
        checks.append(Check(f"console does not contain {needle!r}", where < 0,
                            "" if where < 0 else f"printed: {_line_at(text, where)!r}"))
    if exp.no_guest_errors:
        errors = machine.guest_errors()
        checks.append(Check("no guest errors", not errors, "; ".join(errors[:3])))
    frames = system.frame_records() if system is not None else []
    if exp.frames_verified_min is not None:
        n = sum(1 for f in frames if f["verdict"] == "verified")
        checks.append(Check(f"frames verified >= {exp.frames_verified_min}",
                            n >= exp.frames_verified_min, f"{n} verified of {len(frames)}"))
    if exp.frames_landed_min is not None:
        n = sum(1 for f in frames if f["landed"])
        checks.append(Check(f"frames landed >= {exp.frames_landed_min}",
                            n >= exp.frames_landed_min, f"{n} landed of {len(frames)}"))
    violations = list(system.checker.violations) if system is not None else []
    no_violations = exp.no_dma_violations
    if no_violations is None:
        no_violations = not exp.dma_verdicts
    if no_violations and system is not None:
        failures = system.failures()
        checks.append(Check("no DMA violations", not failures, "; ".join(failures[:3])))
    seen = {v.verdict for v in violations}
    for verdict in exp.dma_verdicts:
        checks.append(Check(f"DMA verdict {verdict} present", verdict in seen,
                            f"verdicts seen: {', '.join(sorted(seen)) or 'none'}"))
    regions = {r.name: r for r in system.core.regions} if system is not None else {}
    checks += _region_checks(exp.regions, regions)
    return checks


def _region_checks(wanted: tuple[RegionExpectation, ...], regions: Mapping[str, Any]
                   ) -> list[Check]:
    checks = []
    for want in wanted:
        label = f"region {want.name}" + (f" at 0x{want.base:08x}" if want.base is not None
                                         else "") + (f" of 0x{want.size:x}" if want.size
                                                     is not None else "")
        got = regions.get(want.name)
        if got is None:
            checks.append(Check(label, False, f"no such region; regions: "
                                f"{', '.join(sorted(regions)) or 'none'}"))
            continue
        ok = (want.base is None or got.base == want.base) and \
             (want.size is None or got.size == want.size)
        checks.append(Check(label, ok, f"placed at 0x{got.base:08x} size 0x{got.size:x}"))
    return checks


def _last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _line_at(text: str, pos: int) -> str:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return text[start:end if end >= 0 else len(text)].strip()


# --- kind = "cma" ----------------------------------------------------------------------------
def _run_cma(sc: Scenario) -> ScenarioResult:
    from cma.bench import ALLOC, make_workload
    from cma.core import ContiguousMemory
    from cma.errors import CMAError
    from cma.translate import TableTranslator

    exp = sc.expect
    checks: list[Check] = []
    summary: dict[str, Any] = {"cma": sc.cma, "ram": [list(b) for b in sc.ram],
                               "seed": sc.workload.seed}
    try:
        translator = TableTranslator({d.name: d.windows for d in sc.devices})
        core = ContiguousMemory.from_cmdline(sc.cma, list(sc.ram), sc.page_size, translator,
                                             defaults=sc.cma_defaults,
                                             devices=[d.name for d in sc.devices])
    except CMAError as exc:
        summary["placement_error"] = str(exc)
        if exp.placement_error is not None:
            ok = exp.placement_error in str(exc)
            checks.append(Check(f"placement fails with {exp.placement_error!r}", ok, str(exc)))
        else:
            checks.append(Check("placement", False, str(exc)))
        return ScenarioResult(sc.name, sc.kind, sc.source, checks, summary)
    if exp.placement_error is not None:
        checks.append(Check(f"placement fails with {exp.placement_error!r}", False,
                            "placement succeeded"))
    checks.append(Check("placement", True))
    region_size = max(sum(r.size for r in core.regions), sc.page_size)
    workload = make_workload(sc.workload.seed, sc.workload.allocs, region_size, sc.page_size)
    pick = random.Random(sc.workload.seed)
    devices = sc.workload.devices
    live: dict[int, int] = {}
    per_device = {d: [0, 0] for d in devices}
    attempts = successes = 0
    for kind, ident, size, alignment in workload.ops:
        if kind == ALLOC:
            device = devices[pick.randrange(len(devices))]
            attempts += 1
            per_device[device][0] += 1
            try:
                chunk = core.alloc(device, None, size, alignment)
            except CMAError:
                continue
            successes += 1
            per_device[device][1] += 1
            live[ident] = chunk.phys
        else:
            phys = live.pop(ident, None)
            if phys is not None:
                core.put(phys)
    regions = []
    frags = []
    for region in core.regions:
        view = core.view(region)
        frag = 1.0 - view.largest_free / view.free if view.free else 0.0
        frags.append(frag)
        regions.append({"name": region.name, "base": region.base, "size": region.size,
                        "allocator": region.spec.allocator or "bf",
                        "used": view.used, "free": view.free,
                        "largest_free": view.largest_free, "ext_frag": round(frag, 6),
                        "alloc_success": view.alloc_success, "alloc_fail": view.alloc_fail})
    rate = successes / attempts if attempts else 1.0
    frag_mean = sum(frags) / len(frags) if frags else 0.0
    summary.update({
        "regions": regions,
        "attempts": attempts, "successes": successes, "success_rate": round(rate, 6),
        "ext_frag": round(frag_mean, 6),
        "devices": {d: {"attempts": a, "successes": s} for d, (a, s) in per_device.items()},
    })
    if exp.min_success_rate is not None:
        checks.append(Check(f"success rate >= {exp.min_success_rate}",
                            rate >= exp.min_success_rate, f"{rate:.4f}"))
    if exp.max_fragmentation is not None:
        checks.append(Check(f"fragmentation <= {exp.max_fragmentation}",
                            frag_mean <= exp.max_fragmentation, f"{frag_mean:.4f}"))
    checks += _region_checks(exp.regions, {r.name: r for r in core.regions})
    return ScenarioResult(sc.name, sc.kind, sc.source, checks, summary)


def with_outputs(sc: Scenario, json_out: str | None = None, png_out: str | None = None
                 ) -> Scenario:
    """The same scenario writing its JSON/PNG elsewhere (command-line overrides)."""
    return replace(sc, json_out=json_out or sc.json_out, png_out=png_out or sc.png_out)
