"""The committed generated headers match the Python tables they come from."""

from __future__ import annotations

from pathlib import Path

from emu.headers import generated_headers, main, stale_headers

ROOT = Path(__file__).resolve().parents[2]


def test_committed_headers_are_current() -> None:
    assert stale_headers(ROOT) == [], "run scripts/gen-headers"


def test_check_mode_names_a_stale_header(tmp_path: Path) -> None:
    assert main(["--root", str(tmp_path)]) == 0
    first = next(iter(generated_headers()))
    (tmp_path / first).write_text("/* edited by hand */\n")
    assert stale_headers(tmp_path) == [first]
    assert main(["--root", str(tmp_path), "--check"]) == 1


def test_abi_header_has_every_call() -> None:
    text = generated_headers()["firmware/include/generated/cma_abi.h"]
    assert "#define CMA_CALL_ALLOC                          0x82000101u" in text
    assert "#define CMA_STATUS_ENOMEM                       (-12)" in text
