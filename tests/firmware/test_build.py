"""The firmware builds reproducibly, the committed prebuilt images match their sources, and
the prebuilt ELF files have the layout the harness loader relies on."""

from __future__ import annotations

import hashlib
import itertools
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from elftools.elf.constants import P_FLAGS
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import Symbol, SymbolTableSection

from emu.pytest_plugin import assert_scenario_passed
from emu.scenario import ScenarioResult
from tests.conftest import need_tool

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
PREBUILT = FIRMWARE / "prebuilt"
BUILD_SCRIPT = ROOT / "scripts" / "build-firmware"

RAM_BASE = 0x40000000
IMAGE_BASE = 0x40200000
# Every board we run has at least this much RAM from RAM_BASE (QEMU virt's default).
RAM_MIN_SIZE = 128 << 20
EF_ARM_EABI_VER5 = 0x05000000


def _need_toolchain() -> None:
    for tool in ("arm-none-eabi-gcc", "dtc", "make"):
        need_tool(tool)


def _make(src: Path, build: Path) -> dict[str, bytes]:
    """Build every program of the firmware tree `src` into `build`; name -> ELF bytes."""
    result = subprocess.run(
        ["make", "-C", str(src), "-s", "-j2", f"BUILD={build}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return {p.stem: p.read_bytes() for p in sorted(build.glob("*.elf"))}


def _copy_sources(dst: Path) -> None:
    shutil.copytree(FIRMWARE, dst, ignore=shutil.ignore_patterns("build", "prebuilt"))


def _symbols(elf: ELFFile) -> dict[str, Symbol]:
    symtab = elf.get_section_by_name(".symtab")
    assert isinstance(symtab, SymbolTableSection), "the ELF keeps its symbol table"
    return {sym.name: sym for sym in symtab.iter_symbols() if sym.name}


@pytest.mark.toolchain
@pytest.mark.slow
def test_two_builds_in_different_folders_are_byte_identical(tmp_path: Path) -> None:
    _need_toolchain()
    first = _make(FIRMWARE, tmp_path / "one")
    other_src = tmp_path / "elsewhere" / "firmware"
    _copy_sources(other_src)
    second = _make(other_src, tmp_path / "two" / "out")

    assert "selftest" in first
    assert first.keys() == second.keys()
    for name, data in first.items():
        assert data == second[name], f"{name}.elf differs between the two builds"
        for path in (str(tmp_path), str(ROOT)):
            assert path.encode() not in data, f"{name}.elf embeds the absolute path {path}"


@pytest.mark.toolchain
@pytest.mark.slow
def test_prebuilt_images_match_the_sources(tmp_path: Path) -> None:
    _need_toolchain()
    result = subprocess.run(
        [str(BUILD_SCRIPT), "--check", "--build-dir", str(tmp_path / "build")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "match the sources" in result.stdout


@pytest.mark.toolchain
@pytest.mark.slow
def test_check_names_a_prebuilt_image_that_differs(tmp_path: Path) -> None:
    _need_toolchain()
    (tmp_path / "scripts").mkdir()
    shutil.copy2(BUILD_SCRIPT, tmp_path / "scripts" / "build-firmware")
    _copy_sources(tmp_path / "firmware")
    shutil.copytree(PREBUILT, tmp_path / "firmware" / "prebuilt")
    stale = tmp_path / "firmware" / "prebuilt" / "selftest.elf"
    data = bytearray(stale.read_bytes())
    data[-1] ^= 0xFF
    stale.write_bytes(bytes(data))

    result = subprocess.run(
        [str(tmp_path / "scripts" / "build-firmware"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "firmware/prebuilt/selftest.elf" in result.stderr
    assert "SHA256SUMS" not in result.stderr, "the sums still describe the sources"


def test_sha256sums_cover_every_prebuilt_image() -> None:
    lines = (PREBUILT / "SHA256SUMS").read_text().splitlines()
    listed: dict[str, str] = {}
    for line in lines:
        digest, name = line.split(maxsplit=1)
        listed[name] = digest
    on_disk = sorted(p.name for p in PREBUILT.glob("*.elf"))
    assert sorted(listed) == on_disk
    assert "selftest.elf" in listed
    for name, digest in listed.items():
        assert hashlib.sha256((PREBUILT / name).read_bytes()).hexdigest() == digest, name


@pytest.fixture(params=sorted(p.name for p in PREBUILT.glob("*.elf")))
def prebuilt_elf(request: pytest.FixtureRequest) -> Path:
    path: Path = PREBUILT / request.param
    return path


def test_prebuilt_elf_is_an_eabi5_arm_executable(prebuilt_elf: Path) -> None:
    with prebuilt_elf.open("rb") as f:
        elf = ELFFile(f)
        assert elf.elfclass == 32
        assert elf.little_endian
        assert elf["e_machine"] == "EM_ARM"
        assert elf["e_type"] == "ET_EXEC"
        assert elf["e_flags"] & 0xFF000000 == EF_ARM_EABI_VER5


def test_prebuilt_entry_and_symbols(prebuilt_elf: Path) -> None:
    with prebuilt_elf.open("rb") as f:
        elf = ELFFile(f)
        syms = _symbols(elf)
        text = elf.get_section_by_name(".text")
        assert text is not None
        text_start, text_end = text["sh_addr"], text["sh_addr"] + text["sh_size"]

        assert elf["e_entry"] == IMAGE_BASE
        assert syms["_start"]["st_value"] == IMAGE_BASE
        assert syms["_start"]["st_info"]["type"] == "STT_FUNC"
        main = syms["main"]
        assert main["st_info"]["type"] == "STT_FUNC"
        assert text_start < main["st_value"] < text_end
        vectors = syms["__vectors"]["st_value"]
        assert vectors % 32 == 0, "VBAR needs 32-byte alignment"
        assert text_start < vectors < text_end
        assert syms["__bss_start"]["st_value"] <= syms["__bss_end"]["st_value"]
        assert syms["__bss_start"]["st_value"] % 8 == 0
        assert syms["__bss_end"]["st_value"] % 8 == 0
        assert syms["__stack_svc_top"]["st_value"] % 8 == 0
        assert syms["__image_end"]["st_value"] >= syms["__stack_fiq_top"]["st_value"]


def test_prebuilt_segments_lie_in_ram_above_the_image_base(prebuilt_elf: Path) -> None:
    with prebuilt_elf.open("rb") as f:
        elf = ELFFile(f)
        loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        assert loads, "no PT_LOAD segment"
        spans = []
        for seg in loads:
            start, end = seg["p_paddr"], seg["p_paddr"] + seg["p_memsz"]
            assert seg["p_vaddr"] == seg["p_paddr"], "the image runs at its physical address"
            assert IMAGE_BASE <= start < end <= RAM_BASE + RAM_MIN_SIZE, (
                f"segment {start:#x}..{end:#x} outside RAM {IMAGE_BASE:#x}.."
                f"{RAM_BASE + RAM_MIN_SIZE:#x}"
            )
            assert seg["p_filesz"] <= seg["p_memsz"]
            spans.append((start, end, seg["p_flags"]))
        spans.sort()
        for (_, end, _), (start, _, _) in itertools.pairwise(spans):
            assert end <= start, "PT_LOAD segments overlap"
        executable = [s for s in spans if s[2] & P_FLAGS.PF_X]
        assert executable
        assert executable[0][0] == IMAGE_BASE
        assert all(not s[2] & P_FLAGS.PF_W for s in executable), "code is not writable"


@pytest.mark.emulator
@pytest.mark.parametrize("board", ["virt", "camsoc"])
def test_prebuilt_selftest_passes_on_the_harness(
    board: str, run_image: Callable[..., ScenarioResult]
) -> None:
    result = run_image(
        PREBUILT / "selftest.elf",
        board,
        max_seconds=60,
        expect={
            "console_contains": "selftest: PASS",
            "console_not_contains": "[FAIL]",
            "stop_reason": "poweroff",
            "exit_status": 0,
            "no_guest_errors": True,
        },
    )
    assert_scenario_passed(result)
    assert result.run is not None
    run = result.run
    console = run["console"]
    assert "selftest: PASS" in console, console[-2000:]
    assert "[FAIL]" not in console
    assert run["result"]["reason"] == "poweroff"
    assert run["result"]["exit_status"] == 0
    assert run["guest_errors"] == []
    assert run["exit_code"] == 0
