"""The editable tree: loading, typed properties, editing and writing back."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.dt.tree import DeviceTree, Node, encode_value
from emu.errors import DeviceTreeError
from tests.emu.dt import dtc_decompile, dts

SAMPLE = """
/memreserve/ 0x48000000 0x1000;
/ {
    #address-cells = <1>;
    #size-cells = <1>;
    model = "sample";
    aliases { serial0 = "/soc/uart@1000"; };
    chosen { stdout-path = "serial0:115200n8"; };
    soc {
        compatible = "simple-bus";
        #address-cells = <1>;
        #size-cells = <1>;
        ranges;
        intc: intc@0 { reg = <0x0 0x100>; interrupt-controller; };
        uart@1000 {
            compatible = "arm,pl011", "arm,primecell";
            reg = <0x1000 0x100>;
            interrupt-parent = <&intc>;
            status = "okay";
        };
        off@2000 { reg = <0x2000 0x10>; status = "disabled"; };
    };
    nocells {
        dev@1 { reg = <0x0 0x1 0x2>; };
    };
};
"""


@pytest.fixture
def sample() -> DeviceTree:
    return dts(SAMPLE)


def test_typed_accessors(sample: DeviceTree) -> None:
    uart = sample.node("/soc/uart@1000")
    assert uart.compatible == ["arm,pl011", "arm,primecell"]
    assert uart.reg == [(0x1000, 0x100)]
    assert uart.is_enabled
    assert not sample.node("/soc/off@2000").is_enabled
    intc = sample.node("/soc/intc@0")
    assert intc.phandle is not None
    assert sample.by_phandle(intc.phandle) is intc
    assert uart.get_u32("interrupt-parent") == intc.phandle
    assert sample.root.get_string("model") == "sample"


def test_reg_uses_parent_cells_with_spec_defaults(sample: DeviceTree) -> None:
    # /nocells has no #address-cells/#size-cells: its children use 2 and 1
    dev = sample.node("/nocells/dev@1")
    assert dev.reg_cells == (2, 1)
    assert dev.reg == [(0x1, 0x2)]
    assert sample.node("/nocells").address_cells == 2


def test_find_by_base_name_and_alias(sample: DeviceTree) -> None:
    assert sample.find("/soc/uart") is sample.node("/soc/uart@1000")
    assert sample.find("serial0") is sample.node("/soc/uart@1000")
    assert sample.find("/soc/nothing") is None
    with pytest.raises(DeviceTreeError, match="/soc/nothing"):
        sample.node("/soc/nothing")


def test_stdout_path_helpers(sample: DeviceTree) -> None:
    assert sample.stdout_path == "serial0:115200n8"
    assert sample.stdout_node() is sample.node("/soc/uart@1000")
    assert sample.stdout_options() == "115200n8"
    sample.stdout_path = "/soc/intc@0"
    assert sample.stdout_node() is sample.node("/soc/intc@0")


def test_round_trip_keeps_everything(sample: DeviceTree) -> None:
    blob = sample.to_dtb()
    text = dtc_decompile(blob)
    assert "/memreserve/\t0x0000000048000000 0x0000000000001000;" in text
    again = DeviceTree.from_dtb(blob)
    for node in sample.iter_nodes():
        other = again.node(node.path)
        assert other.props == node.props
        assert [c.name for c in other.children] == [c.name for c in node.children]
    assert again.mem_reserve == [(0x48000000, 0x1000)]
    # the same blob again: serialisation is deterministic
    assert again.to_dtb() == blob
    # the header a kernel checks: magic, version 17, last compatible 16, aligned blocks
    magic, total, off_struct, _strings, off_rsv, version, last_comp = struct.unpack_from(
        ">7I", blob
    )
    assert (magic, total, version, last_comp) == (0xD00DFEED, len(blob), 17, 16)
    assert off_rsv % 8 == 0
    assert off_struct % 4 == 0


def test_to_dts_compiles_back(sample: DeviceTree) -> None:
    text = sample.to_dts()
    assert 'compatible = "arm,pl011\\0arm,primecell";' in text
    assert DeviceTree.from_dts(text).to_dtb() == sample.to_dtb()


def test_edits_survive_serialisation(sample: DeviceTree) -> None:
    soc = sample.node("/soc")
    new = soc.add_child("thing@3000")
    new.set_prop("reg", [0x3000, 0x10])
    new.set_prop("compatible", ["a,b", "c"])
    new.set_prop("dma-coherent", True)
    new.set_prop("label", "hello")
    sample.node("/soc/off@2000").remove()
    ph = sample.ensure_phandle(new)
    assert ph not in {n.phandle for n in sample.iter_nodes() if n is not new}
    again = DeviceTree.from_dtb(sample.to_dtb())
    thing = again.node("/soc/thing@3000")
    assert thing.reg == [(0x3000, 0x10)]
    assert thing.compatible == ["a,b", "c"]
    assert thing.props["dma-coherent"] == b""
    assert thing.get_string("label") == "hello"
    assert thing.phandle == ph
    assert again.find("/soc/off@2000") is None
    with pytest.raises(DeviceTreeError, match="already exists"):
        soc.add_child("thing@3000")


def test_load_detects_dtb_by_magic(tmp_path: Path, sample: DeviceTree) -> None:
    odd = tmp_path / "board.dts"  # a blob whose name says DTS
    odd.write_bytes(sample.to_dtb())
    assert DeviceTree.load(odd).node("/soc/uart@1000").reg == [(0x1000, 0x100)]
    src = tmp_path / "board.txt"  # DTS text whose name says nothing
    src.write_text("/dts-v1/;\n" + SAMPLE)
    assert DeviceTree.load(src).root.get_string("model") == "sample"


def test_dtc_errors_are_one_readable_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.dts"
    bad.write_text("/dts-v1/;\n/ { foo = <1 2; };\n")
    with pytest.raises(DeviceTreeError) as info:
        DeviceTree.load(bad)
    message = str(info.value)
    assert message.startswith(f"dtc failed on {bad}")
    assert "syntax error" in message


def test_unreadable_and_corrupt_inputs(tmp_path: Path) -> None:
    with pytest.raises(DeviceTreeError, match="cannot read"):
        DeviceTree.load(tmp_path / "missing.dtb")
    with pytest.raises(DeviceTreeError, match="not a valid device tree blob"):
        DeviceTree.from_dtb(b"\xd0\x0d\xfe\xed" + b"\0" * 12)


def test_bad_values_name_node_and_value() -> None:
    node = Node("dev@0", Node(""))
    node.props["x"] = b"\x00\x01"
    with pytest.raises(DeviceTreeError, match=r"/dev@0: x must be one 32-bit cell.*0001"):
        node.get_u32("x")
    node.props["reg"] = b"\0" * 12  # 3 cells, parent wants 2+1 = 3: fine
    assert node.reg == [(0, 0)]
    node.props["reg"] = b"\0" * 8
    with pytest.raises(DeviceTreeError, match=r"/dev@0: reg has 8 bytes"):
        _ = node.reg
    with pytest.raises(DeviceTreeError, match="does not fit"):
        node.set_prop("y", [1 << 32])


node_names = st.from_regex(r"[a-z][a-z0-9-]{0,6}(@[0-9a-f]{1,4})?", fullmatch=True)
prop_names = st.from_regex(r"[a-z][a-z0-9,-]{0,8}", fullmatch=True).filter(
    lambda name: name not in ("phandle", "linux,phandle")
)
prop_values = st.one_of(
    st.binary(max_size=12),
    st.lists(st.integers(0, 0xFFFFFFFF), min_size=1, max_size=4),
    st.text(alphabet="abcxyz,.-", min_size=1, max_size=8),
)


@st.composite
def trees(draw: st.DrawFn) -> DeviceTree:
    tree = DeviceTree()
    nodes = [tree.root]
    for _ in range(draw(st.integers(0, 8))):
        parent = draw(st.sampled_from(nodes))
        name = draw(node_names)
        if parent.child(name) is not None or any(c.name == name for c in parent.children):
            continue
        node = parent.add_child(name)
        for _ in range(draw(st.integers(0, 3))):
            node.props[draw(prop_names)] = encode_value(draw(prop_values))
        nodes.append(node)
    return tree


@settings(max_examples=40, deadline=None)
@given(trees())
def test_any_tree_survives_a_round_trip(tree: DeviceTree) -> None:
    again = DeviceTree.from_dtb(tree.to_dtb())
    assert [(n.path, n.props) for n in again.iter_nodes()] == [
        (n.path, n.props) for n in tree.iter_nodes()
    ]
