"""CPU translation of ``reg`` through ``ranges`` (Linux's of_translate_address)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.dt.address import cpu_reg_windows, is_translatable, ranges_triplets, translate_address
from emu.dt.tree import DeviceTree
from emu.errors import DeviceTreeError
from tests.emu.dt import dts

NESTED = """
/ {
    #address-cells = <2>;
    #size-cells = <2>;
    bus@8000000 {
        compatible = "simple-bus";
        #address-cells = <1>;
        #size-cells = <1>;
        ranges = <0x8000000 0x0 0x8000000 0x18000000>;
        mb@8000000 {
            compatible = "simple-bus";
            #address-cells = <2>;   /* chip select, offset */
            #size-cells = <1>;
            ranges = <0 0 0x08000000 0x04000000>,
                     <3 0 0x1c000000 0x04000000>;
            flash@0 { reg = <0 0 0x4000000>; };
            io@300000000 {
                compatible = "simple-bus";
                #address-cells = <1>;
                #size-cells = <1>;
                ranges = <0 3 0 0x200000>;
                serial@90000 { reg = <0x90000 0x1000>, <0xa0000 0x100>; };
            };
            lost@500000000 { reg = <5 0 0x1000>; };
        };
    };
    flat {
        #address-cells = <1>;
        #size-cells = <1>;
        ranges;
        dev@100 { reg = <0x100 0x10>; };
    };
    i2c@0 {
        #address-cells = <1>;
        #size-cells = <0>;
        sensor@3c { reg = <0x3c>; };
    };
    top@9000000 { reg = <0x0 0x9000000 0x0 0x1000>; };
};
"""


@pytest.fixture(scope="module")
def tree() -> DeviceTree:
    return dts(NESTED)


def test_root_child_is_its_own_cpu_address(tree: DeviceTree) -> None:
    assert cpu_reg_windows(tree.node("/top@9000000")) == [(0x9000000, 0x1000)]


def test_nested_buses_compose(tree: DeviceTree) -> None:
    serial = tree.node("/bus@8000000/mb@8000000/io@300000000/serial@90000")
    # io: 0x90000 -> (cs 3, 0x90000); mb: cs 3 -> 0x1c000000; bus: identity window
    assert cpu_reg_windows(serial) == [(0x1C090000, 0x1000), (0x1C0A0000, 0x100)]


def test_multiple_triplets_pick_the_matching_one(tree: DeviceTree) -> None:
    flash = tree.node("/bus@8000000/mb@8000000/flash@0")
    assert cpu_reg_windows(flash) == [(0x08000000, 0x4000000)]
    mb = tree.node("/bus@8000000/mb@8000000")
    assert ranges_triplets(mb) == [
        ((0 << 32) | 0, 0x08000000, 0x04000000),
        ((3 << 32) | 0, 0x1C000000, 0x04000000),
    ]


def test_empty_ranges_is_identity(tree: DeviceTree) -> None:
    assert cpu_reg_windows(tree.node("/flat/dev@100")) == [(0x100, 0x10)]
    assert ranges_triplets(tree.node("/flat")) == []


def test_absent_ranges_is_untranslatable(tree: DeviceTree) -> None:
    sensor = tree.node("/i2c@0/sensor@3c")
    assert translate_address(sensor, 0x3C) is None
    assert not is_translatable(sensor)
    with pytest.raises(DeviceTreeError, match=r"sensor@3c: reg 0x3c .*/i2c@0 has no 'ranges'"):
        cpu_reg_windows(sensor)


def test_address_outside_every_window(tree: DeviceTree) -> None:
    lost = tree.node("/bus@8000000/mb@8000000/lost@500000000")
    with pytest.raises(DeviceTreeError, match="outside every window"):
        cpu_reg_windows(lost)


@settings(max_examples=50, deadline=None)
@given(
    child=st.integers(0, 0xFFFF).map(lambda x: x << 12),
    parent=st.integers(0, 0xFFFF).map(lambda x: x << 12),
    size=st.integers(1, 0xFFFF).map(lambda x: x << 12),
    offset=st.integers(0, 0xFFFFFFF),
)
def test_one_window_is_a_plain_offset(child: int, parent: int, size: int, offset: int) -> None:
    tree = DeviceTree()
    tree.root.set_prop("#address-cells", 1)
    tree.root.set_prop("#size-cells", 1)
    bus = tree.root.add_child("bus")
    bus.set_prop("#address-cells", 1)
    bus.set_prop("#size-cells", 1)
    bus.set_prop("ranges", [child, parent, size])
    dev = bus.add_child("dev")
    address = child + offset
    expected = parent + offset if offset < size else None
    assert translate_address(dev, address) == expected
