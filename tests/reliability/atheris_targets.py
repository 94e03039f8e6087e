"""Coverage-guided fuzzing of the host-side readers with atheris (libFuzzer for Python).

    python -m tests.reliability.atheris_targets TARGET [libFuzzer options] [CORPUS_DIR ...]

``TARGET`` is one of :data:`TARGETS`. Each input goes through the same consumer the
Hypothesis tests use (``tests/reliability/host_seeds.py``), which lets only the
package's own errors through; any other exception, a crash or a timeout is reported by
libFuzzer with the input that caused it (``build/fuzz-crashes/TARGET-crash-*`` unless
``-artifact_prefix`` says otherwise). Without a corpus directory
on the command line, ``build/fuzz-corpus/TARGET`` is used and seeded with valid inputs
(the board DTBs, the command-line examples, the synthetic images), so mutations start
from the interesting part of the input space. ``scripts/fuzz`` is the short way in.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["cma", "emu"]):
    from tests.reliability import host_seeds


def _cmdline(data: bytes) -> None:
    host_seeds.consume_cmdline(data.decode("utf-8", "replace"))


def _seeds_cmdline() -> list[bytes]:
    return [seed.encode() for seed in host_seeds.CMDLINE_SEEDS]


def _seeds_dtb() -> list[bytes]:
    return list(host_seeds.compile_boards().values())


def _seeds_elf() -> list[bytes]:
    return [host_seeds.elf_seed()]


def _seeds_newc() -> list[bytes]:
    return [host_seeds.newc_seed(), host_seeds.newc_gzip_seed()]


def _seeds_zimage() -> list[bytes]:
    return [host_seeds.zimage_seed("xz"), host_seeds.zimage_seed("gzip")]


def _dtb(data: bytes) -> None:
    host_seeds.consume_dtb(data)


def _elf(data: bytes) -> None:
    host_seeds.consume_elf(data)


#: target name -> (one input, the seeds of its corpus)
TARGETS: dict[str, tuple[Callable[[bytes], None], Callable[[], list[bytes]]]] = {
    "cmdline": (_cmdline, _seeds_cmdline),
    "dtb": (_dtb, _seeds_dtb),
    "elf": (_elf, _seeds_elf),
    "newc": (host_seeds.consume_newc, _seeds_newc),
    "zimage": (host_seeds.consume_zimage, _seeds_zimage),
}


def seed_corpus(target: str, directory: Path) -> Path:
    """``directory`` holding the target's seeds (written when it is empty)."""
    directory.mkdir(parents=True, exist_ok=True)
    if not any(directory.iterdir()):
        for index, seed in enumerate(TARGETS[target][1]()):
            (directory / f"seed-{index}").write_bytes(seed)
    return directory


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in TARGETS:
        print(f"usage: {Path(argv[0]).name} {{{','.join(TARGETS)}}} [libFuzzer options] "
              "[CORPUS_DIR ...]", file=sys.stderr)
        return 2
    target, rest = argv[1], argv[2:]
    build = host_seeds.ROOT / "build"
    if not any(not arg.startswith("-") for arg in rest):
        rest.append(str(seed_corpus(target, build / "fuzz-corpus" / target)))
    if not any(arg.startswith("-artifact_prefix=") for arg in rest):
        (build / "fuzz-crashes").mkdir(parents=True, exist_ok=True)
        rest.insert(0, f"-artifact_prefix={build / 'fuzz-crashes' / target}-")
    one_input = TARGETS[target][0]
    atheris.Setup([f"{argv[0]} {target}", *rest], one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
