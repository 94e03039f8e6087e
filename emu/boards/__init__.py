"""The boards shipped with the harness, as device-tree sources.

``virt`` copies the memory map of QEMU's ``virt`` machine; ``camsoc`` is the reference
SoC whose camera and display controller see RAM at other bus addresses than the CPU;
``camsoc-alias`` moves the camera to the 0xC0000000 alias. Any ``.dts``/``.dtb`` path
works wherever a board name does.
"""

from __future__ import annotations

from pathlib import Path

from emu.dt.tree import DeviceTree
from emu.errors import DeviceTreeError

BOARDS_DIR = Path(__file__).resolve().parent

#: board name -> one-line description
BOARDS: dict[str, str] = {
    "virt": "QEMU virt memory map: flash at 0, GICv2, PL011, 128 MiB RAM at 0x40000000",
    "camsoc": "reference SoC: camera at bus 0x0 = RAM 0x40000000, display at alias 0xC0000000",
    "camsoc-alias": "camsoc with the camera also seeing RAM through the 0xC0000000 alias",
}


def board_path(name_or_path: str | Path) -> Path:
    """The source file of a named board, or the given ``.dts``/``.dtb`` path."""
    text = str(name_or_path)
    if text in BOARDS:
        return BOARDS_DIR / f"{text}.dts"
    path = Path(text)
    if path.suffix in (".dts", ".dtb") or path.exists():
        if not path.is_file():
            raise DeviceTreeError(f"board file {text!r} does not exist")
        return path
    raise DeviceTreeError(
        f"unknown board {text!r}; use one of {', '.join(BOARDS)} or a .dts/.dtb path"
    )


def load_board(name_or_path: str | Path) -> DeviceTree:
    """The device tree of a named board or of a ``.dts``/``.dtb`` file."""
    return DeviceTree.load(board_path(name_or_path))
