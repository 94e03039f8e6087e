"""C headers generated from a device's register table (one source of truth).

:func:`render_header` turns the :class:`~emu.devices.base.Register` table of a
device class into ``#define`` lines the firmware includes, so offsets and bit
fields are never written twice. The text depends only on the table, so a test
can compare the committed header with a fresh rendering.

For a register ``REG`` at offset ``off`` and prefix ``P``::

    #define P_REG 0x...                  offset in the block
    #define P_REG_COUNT n                arrays only: number of elements
    #define P_REG_STRIDE s               arrays only: bytes between elements
    #define P_REG_FIELD_SHIFT lsb        each field
    #define P_REG_FIELD_MASK 0x...       each field, in place (already shifted)

Names are upper-cased and every character outside ``[A-Z0-9_]`` becomes ``_``.
"""

from __future__ import annotations

import re

from emu.devices.base import Device
from emu.errors import ConfigurationError

_WIDTH = 40


def c_identifier(text: str) -> str:
    """``text`` as an upper-case C identifier fragment."""
    return re.sub(r"[^A-Z0-9_]", "_", text.upper())


def _comment(text: str) -> str:
    return "/* " + text.replace("*/", "* /") + " */"


def _define(name: str, value: str) -> str:
    return f"#define {name.ljust(_WIDTH - 1)} {value}"


def render_header(device_cls: type[Device], prefix: str) -> str:
    """The C header text for ``device_cls`` with macros named ``<prefix>_...``."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", prefix):
        raise ConfigurationError(f"header prefix must be a C identifier, not {prefix!r}")
    prefix = prefix.upper()
    guard = f"{prefix}_REGS_H"
    where = f"{device_cls.__module__}.{device_cls.__qualname__}"
    lines = [
        _comment(f"{prefix} registers: generated from {where} by emu.devices.header."),
        _comment("Do not edit: regenerate instead."),
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        _define(f"{prefix}_MMIO_SIZE", f"0x{device_cls.mmio_size:x}"),
    ]
    for reg in device_cls.registers:
        name = f"{prefix}_{c_identifier(reg.name)}"
        lines.append("")
        doc = f": {reg.doc}" if reg.doc else ""
        lines.append(_comment(f"{reg.name}{doc} ({reg.access.value})"))
        lines.append(_define(name, f"0x{reg.offset:03x}"))
        if reg.count > 1:
            lines.append(_define(f"{name}_COUNT", str(reg.count)))
            lines.append(_define(f"{name}_STRIDE", str(reg.stride)))
        for f in reg.fields:
            fname = f"{name}_{c_identifier(f.name)}"
            lines.append(_define(f"{fname}_SHIFT", str(f.lsb)))
            lines.append(_define(f"{fname}_MASK", f"0x{f.mask:08x}u"))
    lines += ["", f"#endif /* {guard} */", ""]
    return "\n".join(lines)
