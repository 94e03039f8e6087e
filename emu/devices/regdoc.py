"""Markdown register tables generated from a device's register table.

Docs embed the output between ``<!-- registers:NAME:begin -->`` and
``<!-- registers:NAME:end -->`` markers; :func:`refresh` rewrites those blocks and
a test checks that the committed docs are current.
"""

from __future__ import annotations

import re

from emu.devices.base import Device


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_table(device_cls: type[Device]) -> str:
    """A markdown table of the registers and fields of ``device_cls``."""
    rows = ["| offset | register | access | reset | description |",
            "|---|---|---|---|---|"]
    for reg in device_cls.registers:
        where = f"0x{reg.offset:03X}"
        name = reg.name
        if reg.count > 1:
            last = reg.offset + (reg.count - 1) * reg.stride
            where = f"0x{reg.offset:03X}–0x{last:03X}"
            name = f"{reg.name}0–{reg.name}{reg.count - 1}"
        rows.append(
            f"| {where} | {name} | {reg.access.value} | 0x{reg.reset:X} | {_cell(reg.doc)} |"
        )
        for f in reg.fields:
            bits = f"[{f.lsb}]" if f.width == 1 else f"[{f.lsb + f.width - 1}:{f.lsb}]"
            rows.append(
                f"| | .{f.name} {bits} | {f.access.value} | 0x{f.reset:X} | {_cell(f.doc)} |"
            )
    return "\n".join(rows) + "\n"


def refresh(text: str, tables: dict[str, type[Device]]) -> str:
    """Replace every marked block in ``text`` with the current table."""
    for name, cls in tables.items():
        tag = re.escape(name)
        pattern = re.compile(
            rf"(<!-- registers:{tag}:begin -->\n).*?(<!-- registers:{tag}:end -->)", re.DOTALL
        )
        table = render_table(cls)

        def replace(m: re.Match[str], table: str = table) -> str:
            return m.group(1) + table + m.group(2)

        text = pattern.sub(replace, text)
    return text
