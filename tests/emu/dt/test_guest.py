"""The DTB handed to a guest: /chosen, /reserved-memory and memory-region links."""

from __future__ import annotations

import pytest

from emu.boards import load_board
from emu.dt.guest import (
    ReservedPool,
    add_reserved_memory,
    link_memory_region,
    memory_regions,
    set_bootargs,
    set_initrd,
)
from emu.dt.tree import DeviceTree
from emu.errors import DeviceTreeError
from tests.emu.dt import dtc_decompile

CAMERA = "/soc/cambus@10000000/camera@0"


@pytest.fixture
def camsoc() -> DeviceTree:
    return load_board("camsoc")


def test_chosen_bootargs_and_initrd(camsoc: DeviceTree) -> None:
    set_bootargs(camsoc, "console=ttyAMA0 cma=64M")
    set_initrd(camsoc, 0x48000000, 0x48200000)
    again = DeviceTree.from_dtb(camsoc.to_dtb())
    chosen = again.node("/chosen")
    assert chosen.get_string("bootargs") == "console=ttyAMA0 cma=64M"
    # camsoc's root has one address cell: the values are single cells
    assert chosen.get_cells("linux,initrd-start") == [0x48000000]
    assert chosen.get_cells("linux,initrd-end") == [0x48200000]
    with pytest.raises(DeviceTreeError, match=r"0x2\.\.0x1"):
        set_initrd(camsoc, 2, 1)


def test_initrd_uses_two_cells_on_virt() -> None:
    virt = load_board("virt")
    set_initrd(virt, 0x44000000, 0x44100000)
    assert virt.node("/chosen").props["linux,initrd-start"] == (0x44000000).to_bytes(8, "big")


def test_reserved_memory_and_links_parse_back_with_dtc(camsoc: DeviceTree) -> None:
    pools = [
        ReservedPool("linux,cma", 0x4C000000, 0x4000000, default=True),
        ReservedPool("camera", 0x48000000, 0x1000000),
        ReservedPool("fb", 0x5F000000, 0x800000, reusable=False, no_map=True, phandle=0x77),
    ]
    nodes = add_reserved_memory(camsoc, pools)
    assert [n.name for n in nodes] == ["linux,cma@4c000000", "camera@48000000", "fb@5f000000"]
    link_memory_region(camsoc, CAMERA, ["camera", "linux,cma"])
    link_memory_region(camsoc, "/soc/dispbus@10100000/clcd@0", ["fb"])

    text = dtc_decompile(camsoc.to_dtb())
    assert "reserved-memory {" in text
    assert 'compatible = "shared-dma-pool";' in text
    again = DeviceTree.from_dtb(camsoc.to_dtb())
    parent = again.node("/reserved-memory")
    assert parent.address_cells == 1
    assert parent.size_cells == 1
    assert parent.props["ranges"] == b""
    cma = again.node("/reserved-memory/linux,cma@4c000000")
    assert cma.reg == [(0x4C000000, 0x4000000)]
    assert cma.has_prop("reusable")
    assert cma.has_prop("linux,cma-default")
    assert not cma.has_prop("no-map")
    fb = again.node("/reserved-memory/fb@5f000000")
    assert fb.has_prop("no-map")
    assert not fb.has_prop("reusable")
    assert fb.phandle == 0x77

    camera = again.node(CAMERA)
    assert [n.name for n in memory_regions(again, camera)] == [
        "camera@48000000",
        "linux,cma@4c000000",
    ]
    assert camera.get_strings("memory-region-names") == ["camera", "linux,cma"]
    phandles = [n.phandle for n in again.iter_nodes() if n.phandle is not None]
    assert len(phandles) == len(set(phandles))  # no collision with the board's own
    assert [n.name for n in memory_regions(again, again.node("/soc/dispbus@10100000/clcd@0"))] == [
        "fb@5f000000"
    ]


def test_pool_mistakes_are_reported(camsoc: DeviceTree) -> None:
    add_reserved_memory(camsoc, [ReservedPool("a", 0x48000000, 0x100000, default=True)])
    with pytest.raises(DeviceTreeError, match=r"overlaps /reserved-memory/a@48000000"):
        add_reserved_memory(camsoc, [ReservedPool("b", 0x480FF000, 0x2000)])
    with pytest.raises(DeviceTreeError, match=r"not inside RAM \(\[0x40000000, 0x60000000\)\)"):
        add_reserved_memory(camsoc, [ReservedPool("c", 0x5FF00000, 0x200000)])
    with pytest.raises(DeviceTreeError, match="already the default"):
        add_reserved_memory(camsoc, [ReservedPool("d", 0x50000000, 0x1000, default=True)])
    with pytest.raises(DeviceTreeError, match="exclusive"):
        ReservedPool("e", 0x50000000, 0x1000, reusable=True, no_map=True)
    intc = camsoc.node("/soc/intc@8000000").phandle
    with pytest.raises(DeviceTreeError, match="already used by /soc/intc@8000000"):
        add_reserved_memory(
            camsoc, [ReservedPool("f", 0x50000000, 0x1000, reusable=False, phandle=intc)]
        )
    with pytest.raises(DeviceTreeError, match="no reserved-memory pool 'zzz'; known: a@48000000"):
        link_memory_region(camsoc, CAMERA, ["zzz"])
