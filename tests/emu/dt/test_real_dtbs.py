"""Real DTBs from Debian's kernel package: the views must be what Linux computes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from emu.cli import main
from emu.dt.address import cpu_reg_windows
from emu.dt.dmamap import DmaWindow, dma_map_for
from emu.dt.tree import DeviceTree
from tests.emu.dt import dtc_decompile

pytestmark = pytest.mark.images


def dt_map(path: Path, *extra: str) -> dict[str, Any]:
    out = io.StringIO()
    assert main(["dt", "map", str(path), "--json", *extra], stdout=out) == 0
    return {d["path"]: d for d in json.loads(out.getvalue())["devices"]}


def test_rpi2_soc_masters_see_ram_at_0xc0000000(dtbs_dir: Path) -> None:
    devices = dt_map(dtbs_dir / "bcm2836-rpi-2-b.dtb")
    under_soc = [d for p, d in devices.items() if p.startswith("/soc/") and d["reg"]]
    assert len(under_soc) > 20
    for device in under_soc:
        assert device["dma"]["kind"] == "windows", device["path"]
        (window,) = device["dma"]["windows"]
        assert (window["dma_start"], window["cpu_start"], window["size"]) == (
            0xC0000000,
            0x0,
            0x3F000000,
        )
    # and the CPU sees the peripherals at 0x3Fxxxxxx through the soc's ranges
    uart = devices["/soc/serial@7e201000"]
    assert uart["reg"][0]["cpu_start"] == 0x3F201000


def test_vexpress_nested_ranges_and_identity(dtbs_dir: Path) -> None:
    tree = DeviceTree.load(dtbs_dir / "vexpress-v2p-ca15-tc1.dtb")
    uart0 = tree.node("serial0")
    assert uart0.path.endswith("/iofpga-bus@300000000/serial@90000")
    assert cpu_reg_windows(uart0) == [(0x1C090000, 0x1000)]
    assert cpu_reg_windows(tree.node("serial1")) == [(0x1C0A0000, 0x1000)]
    flash = tree.node("/bus@8000000/motherboard-bus@8000000/flash@0")
    assert cpu_reg_windows(flash) == [(0x08000000, 0x4000000), (0x0C000000, 0x4000000)]
    view = dma_map_for(tree, uart0)
    assert view.identity
    assert view.problem is None
    devices = dt_map(dtbs_dir / "vexpress-v2p-ca15-tc1.dtb")
    assert all(d["dma"]["kind"] in ("identity", "none") for d in devices.values())


def test_allwinner_csi_reaches_ram_through_the_mbus(dtbs_dir: Path) -> None:
    path = dtbs_dir / "sun8i-r40-bananapi-m2-ultra.dtb"
    tree = DeviceTree.load(path)
    csi = tree.node("/soc/csi@1c09000")
    assert csi.get_strings("interconnect-names") == ["dma-mem"]
    view = dma_map_for(tree, csi)
    assert view.dma_parent == "/soc/dram-controller@1c62000"
    assert view.windows == (DmaWindow(0x40000000, 0x0, 0x80000000),)
    assert view.phys_to_dma(0x40000000) == 0x0
    # the CSI is disabled on this board: dt map lists it only with --all
    assert "/soc/csi@1c09000" not in dt_map(path)
    listed = dt_map(path, "--all")["/soc/csi@1c09000"]
    assert listed["enabled"] is False
    assert listed["dma"]["windows"][0]["cpu_start"] == 0x40000000
    # a sibling without the interconnect sees RAM 1:1
    assert dma_map_for(tree, "/soc/dram-controller@1c62000").identity


def test_round_trip_of_every_real_dtb_family(dtbs_dir: Path) -> None:
    for name in (
        "bcm2836-rpi-2-b.dtb",
        "vexpress-v2p-ca15-tc1.dtb",
        "sun8i-r40-bananapi-m2-ultra.dtb",
    ):
        original = (dtbs_dir / name).read_bytes()
        ours = DeviceTree.from_dtb(original).to_dtb()
        assert dtc_decompile(ours) == dtc_decompile(original), name
