"""Everything generated from the register tables: the firmware's C headers and the docs' tables.

``python -m emu.headers`` rewrites the headers under ``firmware/include/generated/``
and the marked register tables in ``docs/``; ``python -m emu.headers --check`` exits
1 naming any that is stale (tests run the same checks), so register offsets and ABI
numbers are never written twice.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from emu.devices.base import Device
from emu.devices.char.pl011 import Pl011
from emu.devices.display.pl111 import Pl111
from emu.devices.dma.camera import CameraDma
from emu.devices.dma.testpattern import HEADER_SIZE, MAGIC, PixelFormat
from emu.devices.header import render_header
from emu.devices.intc.gic import Gic, GicCpuInterface
from emu.devices.regdoc import refresh
from emu.devices.rtc.pl031 import Pl031
from emu.services.cma import FLAG_DEVICE_PATH, SIP_BASE, CmaCall, Status

GENERATED_DIR = Path("firmware/include/generated")


def render_cma_abi() -> str:
    """The CMA service's function IDs, flags and status codes as C constants."""
    lines = [
        "/* CMA service ABI: generated from emu.services.cma by emu.headers. */",
        "/* Do not edit: regenerate with scripts/gen-headers. See docs/abi.md. */",
        "#ifndef CMA_ABI_H",
        "#define CMA_ABI_H",
        "",
        f"#define CMA_SIP_BASE                            0x{SIP_BASE:08x}u",
    ]
    lines += [f"#define {('CMA_CALL_' + c.name).ljust(39)} 0x{int(c):08x}u" for c in CmaCall]
    lines.append("")
    lines.append(f"#define CMA_FLAG_DEVICE_PATH                    0x{FLAG_DEVICE_PATH:x}u")
    lines.append("")
    lines += [f"#define {('CMA_STATUS_' + s.name).ljust(39)} ({int(s)})" for s in Status]
    lines += ["", "#endif /* CMA_ABI_H */", ""]
    return "\n".join(lines)


def render_test_pattern() -> str:
    """The camera test pattern's header layout and pixel formats."""
    lines = [
        "/* Camera test pattern: generated from emu.devices.dma.testpattern by emu.headers. */",
        "/* Do not edit: regenerate with scripts/gen-headers. See docs/camera.md. */",
        "#ifndef CAM_PATTERN_H",
        "#define CAM_PATTERN_H",
        "",
        f"#define CAM_PATTERN_MAGIC                       0x{MAGIC:08x}u",
        f"#define CAM_PATTERN_HEADER_SIZE                 {HEADER_SIZE}",
    ]
    for fmt in PixelFormat:
        lines.append(f"#define {('CAM_FORMAT_' + fmt.name).ljust(39)} {int(fmt)}")
        lines.append(f"#define {('CAM_FORMAT_' + fmt.name + '_BPP').ljust(39)} "
                     f"{fmt.bytes_per_pixel}")
    lines += ["", "#endif /* CAM_PATTERN_H */", ""]
    return "\n".join(lines)


def generated_headers() -> dict[str, str]:
    """Relative path -> current text of every generated header."""
    return {
        str(GENERATED_DIR / "camera_regs.h"): render_header(CameraDma, "CAM"),
        str(GENERATED_DIR / "cam_pattern.h"): render_test_pattern(),
        str(GENERATED_DIR / "cma_abi.h"): render_cma_abi(),
    }


#: docs with marked register tables: path -> {marker name: device class}
DOC_TABLES: dict[str, dict[str, type[Device]]] = {
    "docs/devices.md": {"gicd": Gic, "gicc": GicCpuInterface, "pl011": Pl011, "pl031": Pl031},
    "docs/camera.md": {"camera": CameraDma},
    "docs/display.md": {"pl111": Pl111},
}


def refreshed_docs(root: Path) -> dict[str, str]:
    """Relative path -> the doc's text with its register tables regenerated."""
    out = {}
    for rel, tables in DOC_TABLES.items():
        path = root / rel
        if path.exists():
            out[rel] = refresh(path.read_text(encoding="utf-8"), tables)
    return out


def stale_headers(root: Path) -> list[str]:
    """The generated headers under ``root`` that are missing or out of date."""
    stale = []
    for rel, text in generated_headers().items():
        path = root / rel
        if not path.exists() or path.read_text() != text:
            stale.append(rel)
    for rel, text in refreshed_docs(root).items():
        if (root / rel).read_text(encoding="utf-8") != text:
            stale.append(rel)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emu.headers", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path("."), help="project root")
    parser.add_argument("--check", action="store_true", help="only check, exit 1 if stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_headers(args.root)
        for rel in stale:
            print(f"stale generated header: {rel} (run scripts/gen-headers)", file=sys.stderr)
        return 1 if stale else 0
    for rel, text in generated_headers().items():
        path = args.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {rel}")
    for rel, text in refreshed_docs(args.root).items():
        path = args.root / rel
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"refreshed the register tables in {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
