"""The shipped boards: they load, and their maps are the documented ones."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from emu.boards import BOARDS, board_path, load_board
from emu.dt.address import cpu_reg_windows
from emu.dt.dmamap import DmaWindow, dma_map_for
from emu.dt.tree import DeviceTree
from emu.errors import DeviceTreeError
from tests.conftest import need_tool

CAMERA = "/soc/cambus@10000000/camera@0"
CLCD = "/soc/dispbus@10100000/clcd@0"


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_every_board_loads_and_round_trips(name: str) -> None:
    tree = load_board(name)
    assert tree.stdout_node() is not None
    assert tree.node("/cpus/cpu@0").compatible == ["arm,cortex-a15"]
    assert tree.node("/psci").get_string("method") == "hvc"
    assert DeviceTree.from_dtb(tree.to_dtb()).to_dtb() == tree.to_dtb()


def test_virt_map() -> None:
    virt = load_board("virt")
    assert (virt.root.address_cells, virt.root.size_cells) == (2, 2)
    assert virt.memory_banks() == [(0x40000000, 0x08000000)]
    assert cpu_reg_windows(virt.node("/flash@0")) == [(0x0, 0x4000000), (0x4000000, 0x4000000)]
    assert cpu_reg_windows(virt.node("/intc@8000000")) == [
        (0x08000000, 0x10000),
        (0x08010000, 0x10000),
    ]
    uart = virt.stdout_node()
    assert uart is not None
    assert uart.path == "/pl011@9000000"
    assert uart.get_cells("interrupts") == [0, 1, 4]
    clock = virt.by_phandle(uart.get_cells("clocks")[0])
    assert clock is not None
    assert clock.get_u32("clock-frequency") == 24_000_000
    assert dma_map_for(virt, uart).identity


def test_virt_matches_qemu(tmp_path: Path) -> None:
    """Every node of our virt sits where QEMU's own virt DTB puts it, with the same values."""
    qemu = need_tool("qemu-system-arm")
    dump = tmp_path / "virt.dtb"
    subprocess.run(
        [qemu, "-M", f"virt,dumpdtb={dump}", "-cpu", "cortex-a15", "-nographic"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    theirs = DeviceTree.load(dump)
    ours = load_board("virt")
    compared = 0
    for node in ours.iter_nodes():
        if node.name in ("aliases",) or node.parent is None:
            continue
        other = theirs.node(node.path)
        for prop in ("reg", "compatible", "interrupts", "clock-frequency", "method", "device_type"):
            if prop in node.props:
                assert other.props.get(prop) == node.props[prop], (node.path, prop)
                compared += 1
    assert compared >= 15
    assert ours.stdout_path == theirs.stdout_path


def test_camsoc_views() -> None:
    soc = load_board("camsoc")
    assert (soc.root.address_cells, soc.root.size_cells) == (1, 1)
    assert soc.memory_banks() == [(0x40000000, 0x20000000)]
    assert cpu_reg_windows(soc.node(CAMERA)) == [(0x10000000, 0x1000)]
    assert cpu_reg_windows(soc.node(CLCD)) == [(0x10100000, 0x1000)]
    camera = dma_map_for(soc, CAMERA)
    clcd = dma_map_for(soc, CLCD)
    assert camera.windows == (DmaWindow(0x40000000, 0x0, 0x10000000),)
    assert clcd.windows == (DmaWindow(0x40000000, 0xC0000000, 0x20000000),)
    # one buffer, two masters, two bus addresses
    assert camera.phys_to_dma(0x48000000) == 0x08000000
    assert clcd.phys_to_dma(0x48000000) == 0xC8000000
    # the camera only reaches the first 256 MiB
    assert camera.phys_to_dma(0x50000000) is None
    assert clcd.phys_to_dma(0x50000000) == 0xD0000000


def test_camsoc_alias_moves_only_the_camera() -> None:
    alias = load_board("camsoc-alias")
    camera = dma_map_for(alias, CAMERA)
    assert camera.windows == (DmaWindow(0x40000000, 0xC0000000, 0x10000000),)
    assert camera.phys_to_dma(0x48000000) == 0xC8000000
    assert dma_map_for(alias, CLCD).windows == dma_map_for(load_board("camsoc"), CLCD).windows


def test_board_path_names_and_files(tmp_path: Path) -> None:
    assert board_path("camsoc").name == "camsoc.dts"
    own = tmp_path / "mine.dtb"
    own.write_bytes(load_board("virt").to_dtb())
    assert board_path(str(own)) == own
    assert load_board(own).node("/pl011@9000000") is not None
    with pytest.raises(DeviceTreeError, match="unknown board 'nope'; use one of virt, camsoc"):
        board_path("nope")
    with pytest.raises(DeviceTreeError, match="does not exist"):
        board_path(tmp_path / "absent.dts")
