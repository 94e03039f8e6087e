"""C headers generated from register tables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from emu.devices.char.pl011 import Pl011
from emu.devices.header import render_header
from emu.devices.intc.gic import Gic, GicCpuInterface
from emu.devices.regdoc import refresh
from emu.devices.rtc.pl031 import Pl031
from emu.errors import ConfigurationError


def defines(text: str) -> dict[str, str]:
    return dict(re.findall(r"^#define (\w+)\s+(\S+)$", text, re.MULTILINE))


def test_pl011_offsets_and_fields() -> None:
    d = defines(render_header(Pl011, "PL011"))
    assert d["PL011_DR"] == "0x000"
    assert d["PL011_FR"] == "0x018"
    assert d["PL011_ICR"] == "0x044"
    assert d["PL011_PERIPHID0"] == "0xfe0"
    assert d["PL011_FR_TXFE_SHIFT"] == "7"
    assert d["PL011_FR_TXFE_MASK"] == "0x00000080u"
    assert d["PL011_LCR_H_WLEN_SHIFT"] == "5"
    assert d["PL011_LCR_H_WLEN_MASK"] == "0x00000060u"
    assert d["PL011_MMIO_SIZE"] == "0x1000"


def test_arrays_get_count_and_stride() -> None:
    d = defines(render_header(Gic, "gicd"))
    assert d["GICD_ISENABLER"] == "0x100"
    assert d["GICD_ISENABLER_COUNT"] == "32"
    assert d["GICD_ISENABLER_STRIDE"] == "4"
    assert d["GICD_IPRIORITYR"] == "0x400"
    assert d["GICD_SGIR_TARGETLISTFILTER_SHIFT"] == "24"
    c = defines(render_header(GicCpuInterface, "GICC"))
    assert c["GICC_IAR"] == "0x00c"
    assert c["GICC_DIR"] == "0x1000"
    assert c["GICC_CTLR_EOIMODE_MASK"] == "0x00000200u"


def test_output_is_deterministic_and_guarded() -> None:
    text = render_header(Pl031, "PL031")
    assert text == render_header(Pl031, "PL031")
    assert text.splitlines()[2] == "#ifndef PL031_REGS_H"
    assert text.rstrip().endswith("#endif /* PL031_REGS_H */")
    assert "emu.devices.rtc.pl031.Pl031" in text
    names = re.findall(r"^#define (\w+)", text, re.MULTILINE)
    assert len(names) == len(set(names))


def test_bad_prefix_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="'2x'"):
        render_header(Pl031, "2x")


def test_devices_doc_tables_are_current() -> None:
    doc = Path(__file__).resolve().parents[3] / "docs" / "devices.md"
    text = doc.read_text(encoding="utf-8")
    tables = {"gicd": Gic, "gicc": GicCpuInterface, "pl011": Pl011, "pl031": Pl031}
    assert refresh(text, tables) == text, "docs/devices.md is stale: run scripts/gen-headers"
    for name in tables:
        assert f"<!-- registers:{name}:begin -->\n| offset" in text
