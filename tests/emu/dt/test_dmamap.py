"""DMA views from ``dma-ranges``, rule by rule, as Linux's of_dma_get_range computes them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.dt.dmamap import DmaMap, DmaWindow, dma_map_for, dma_parent
from emu.errors import DeviceTreeError
from tests.emu.dt import dts

HEAD = "/ { #address-cells = <1>; #size-cells = <1>;"


def view(body: str, device: str, **kwargs: bool) -> DmaMap:
    tree = dts(HEAD + body + "};")
    return dma_map_for(tree, device, **kwargs)


def test_no_dma_ranges_anywhere_is_identity() -> None:
    got = view("bus { #address-cells = <1>; #size-cells = <1>; ranges; dev@0 {}; };", "/bus/dev@0")
    assert got.identity
    assert got.problem is None
    assert got.phys_to_dma(0x1234) == 0x1234
    assert got.bus_dma_limit is None
    assert got.dma_mask == 0xFFFFFFFF


def test_plain_offset() -> None:
    got = view(
        """bus { #address-cells = <1>; #size-cells = <1>; ranges;
               dma-ranges = <0x0 0x40000000 0x10000000>; dev@0 {}; };""",
        "/bus/dev@0",
    )
    assert got.windows == (DmaWindow(cpu_start=0x40000000, dma_start=0x0, size=0x10000000),)
    assert got.source == "/bus"
    assert got.phys_to_dma(0x40001000) == 0x1000
    assert got.dma_to_phys(0x1000) == 0x40001000
    assert got.phys_to_dma(0x50000000) is None  # beyond the first 256 MiB
    assert got.phys_to_dma(0x4FFFF000, 0x2000) is None  # straddles the end
    assert got.bus_dma_limit == 0x0FFFFFFF
    assert got.dma_mask == 0x0FFFFFFF


def test_swapped_fields_give_a_different_answer() -> None:
    right = view(
        "bus { #address-cells = <1>; #size-cells = <1>; ranges;"
        " dma-ranges = <0xc0000000 0x0 0x3f000000>; dev@0 {}; };",
        "/bus/dev@0",
    )
    swapped = view(
        "bus { #address-cells = <1>; #size-cells = <1>; ranges;"
        " dma-ranges = <0x0 0xc0000000 0x3f000000>; dev@0 {}; };",
        "/bus/dev@0",
    )
    assert right.phys_to_dma(0x1000) == 0xC0001000
    assert swapped.phys_to_dma(0x1000) is None
    assert swapped.phys_to_dma(0xC0001000) == 0x1000


def test_cell_counts_come_from_the_bus_and_its_parent() -> None:
    # TI Keystone 2 style: a 1-cell bus below a 2-cell root reaches RAM above 4 GiB
    tree = dts(
        """/ { #address-cells = <2>; #size-cells = <2>;
           soc { #address-cells = <1>; #size-cells = <1>; ranges = <0x0 0x0 0x0 0xc0000000>;
                 dma-ranges = <0x80000000 0x8 0x00000000 0x80000000>;
                 dev@0 {}; }; };"""
    )
    got = dma_map_for(tree, "/soc/dev@0")
    assert got.windows == (DmaWindow(0x8_0000_0000, 0x80000000, 0x80000000),)
    assert got.phys_to_dma(0x8_0000_1000) == 0x80001000


def test_own_dma_ranges_never_apply_to_itself() -> None:
    got = view(
        """bus { #address-cells = <1>; #size-cells = <1>; ranges;
               dma-ranges = <0x0 0x40000000 0x10000000>;
               dev@0 { #address-cells = <1>; #size-cells = <1>;
                       dma-ranges = <0x80000000 0x0 0x1000>; }; };""",
        "/bus/dev@0",
    )
    assert got.source == "/bus"
    assert got.phys_to_dma(0x40000000) == 0x0


def test_empty_dma_ranges_is_one_to_one_and_the_walk_goes_on() -> None:
    got = view(
        """outer { #address-cells = <1>; #size-cells = <1>; ranges;
                 dma-ranges = <0x80000000 0x0 0x40000000>;
                 inner { #address-cells = <1>; #size-cells = <1>; ranges; dma-ranges;
                         dev@0 {}; }; };""",
        "/outer/inner/dev@0",
    )
    assert got.source == "/outer"
    assert got.phys_to_dma(0x100) == 0x80000100


def test_dma_parent_may_lack_dma_ranges_but_not_the_next_one() -> None:
    # the first node of the walk (the DMA parent) may say nothing ...
    ok = view(
        """outer { #address-cells = <1>; #size-cells = <1>; ranges;
                 dma-ranges = <0x80000000 0x0 0x40000000>;
                 inner { #address-cells = <1>; #size-cells = <1>; ranges; dev@0 {}; }; };""",
        "/outer/inner/dev@0",
    )
    assert ok.phys_to_dma(0x0) == 0x80000000
    # ... but above it a missing dma-ranges stops the walk (Linux: -ENODEV, then 1:1)
    body = """top { #address-cells = <1>; #size-cells = <1>; ranges;
                 dma-ranges = <0x80000000 0x0 0x40000000>;
                 mid { #address-cells = <1>; #size-cells = <1>; ranges;
                       inner { #address-cells = <1>; #size-cells = <1>; ranges; dma-ranges;
                               dev@0 {}; }; }; };"""
    broken = view(body, "/top/mid/inner/dev@0")
    assert broken.identity
    assert broken.problem is not None
    assert "/top/mid has no 'dma-ranges'" in broken.problem
    assert "/top/mid/inner below it has one" in broken.problem
    assert "'dma-ranges' of /top does not apply" in broken.problem
    with pytest.raises(DeviceTreeError, match=r"/top/mid/inner/dev@0: /top/mid has no"):
        view(body, "/top/mid/inner/dev@0", strict=True)


def test_empty_chain_that_stops_is_quietly_one_to_one() -> None:
    # Allwinner style: /soc says "dma-ranges;" and the root says nothing
    got = view(
        "soc { #address-cells = <1>; #size-cells = <1>; ranges; dma-ranges;"
        " dev@0 {}; sub { #address-cells = <1>; #size-cells = <1>; ranges; dev@0 {}; }; };",
        "/soc/sub/dev@0",
    )
    assert got.identity
    assert got.problem is None
    assert view(
        "soc { #address-cells = <1>; #size-cells = <1>; ranges; dma-ranges; dev@0 {}; };",
        "/soc/dev@0",
        strict=True,
    ).identity


def test_nested_offsets_compose() -> None:
    got = view(
        """outer { #address-cells = <1>; #size-cells = <1>; ranges;
                 dma-ranges = <0x80000000 0x40000000 0x40000000>;
                 inner { #address-cells = <1>; #size-cells = <1>; ranges;
                         dma-ranges = <0x0 0x80000000 0x10000000>;
                         dev@0 {}; }; };""",
        "/outer/inner/dev@0",
    )
    # inner bus 0x0 = outer bus 0x80000000 = physical 0x40000000
    assert got.windows == (DmaWindow(0x40000000, 0x0, 0x10000000),)
    assert got.source == "/outer/inner"


def test_untranslatable_entries_are_skipped_and_reported() -> None:
    body = """outer { #address-cells = <1>; #size-cells = <1>; ranges;
                 dma-ranges = <0x80000000 0x40000000 0x10000000>;
                 inner { #address-cells = <1>; #size-cells = <1>; ranges;
                         dma-ranges = <0x0 0x80000000 0x1000>, <0x10000 0x20000000 0x1000>;
                         dev@0 {}; }; };"""
    got = view(body, "/outer/inner/dev@0")
    assert got.windows == (DmaWindow(0x40000000, 0x0, 0x1000),)
    assert got.problem is not None
    assert "0x10000->0x20000000" in got.problem
    with pytest.raises(DeviceTreeError, match="do not translate"):
        view(body, "/outer/inner/dev@0", strict=True)


def test_contiguous_entries_merge_like_linux() -> None:
    got = view(
        """bus { #address-cells = <1>; #size-cells = <1>; ranges;
               dma-ranges = <0x0 0x40000000 0x1000>, <0x1000 0x40001000 0x1000>,
                            <0x8000 0x50000000 0x1000>; dev@0 {}; };""",
        "/bus/dev@0",
    )
    assert got.windows == (
        DmaWindow(0x40000000, 0x0, 0x2000),
        DmaWindow(0x50000000, 0x8000, 0x1000),
    )
    assert got.phys_to_dma(0x40000800, 0x1000) == 0x800  # crosses the old seam
    assert got.bus_dma_limit == 0x8FFF


def test_interconnect_dma_mem_replaces_the_parent() -> None:
    tree = dts(
        HEAD
        + """soc { #address-cells = <1>; #size-cells = <1>; ranges;
                  dma-ranges = <0x0 0x0 0xc0000000>;
                  mbus: mbus@1c62000 { reg = <0x1c62000 0x1000>; #interconnect-cells = <1>;
                        #address-cells = <1>; #size-cells = <1>;
                        dma-ranges = <0x0 0x40000000 0x80000000>; };
                  csi@1cb0000 { reg = <0x1cb0000 0x1000>;
                        interconnects = <&mbus 5>, <&mbus 9>;
                        interconnect-names = "other", "dma-mem"; };
                  plain@1cc0000 { reg = <0x1cc0000 0x1000>;
                        interconnects = <&mbus 5>; interconnect-names = "other"; }; }; };"""
    )
    csi = tree.node("/soc/csi@1cb0000")
    assert dma_parent(tree, csi) is tree.node("/soc/mbus@1c62000")
    got = dma_map_for(tree, csi)
    assert got.dma_parent == "/soc/mbus@1c62000"
    assert got.windows == (DmaWindow(0x40000000, 0x0, 0x80000000),)
    assert got.phys_to_dma(0x40000000) == 0
    plain = dma_map_for(tree, "/soc/plain@1cc0000")
    assert plain.source == "/soc"
    assert plain.phys_to_dma(0x40000000) == 0x40000000


def test_coherence_is_reported_from_the_nearest_flag() -> None:
    tree = dts(
        HEAD
        + """bus { #address-cells = <1>; #size-cells = <1>; ranges; dma-coherent;
                  a@0 { reg = <0 1>; }; b@1 { reg = <1 1>; dma-noncoherent; }; };"""
        + "};"
    )
    assert dma_map_for(tree, "/bus/a@0").coherent
    assert not dma_map_for(tree, "/bus/b@1").coherent


windows = st.lists(
    st.tuples(st.integers(0, 0xFF), st.integers(0, 0xFF), st.integers(1, 0x10)).map(
        lambda t: DmaWindow(t[0] << 20, t[1] << 20, t[2] << 20)
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=60, deadline=None)
@given(windows, st.integers(0, 0x1_2000_0000), st.integers(1, 0x10000))
def test_phys_to_dma_and_back(ws: list[DmaWindow], phys: int, size: int) -> None:
    dmap = DmaMap(device="/dev", windows=tuple(ws))
    dma = dmap.phys_to_dma(phys, size)
    if dma is None:
        first = [w for w in ws if w.cpu_start <= phys and phys + size <= w.cpu_start + w.size]
        assert not first
    else:
        # the first window holding the buffer decides, and the bus range maps back into it
        assert dmap.dma_to_phys(dma, size) is not None
        hit = next(w for w in ws if w.cpu_start <= phys and phys + size <= w.cpu_start + w.size)
        assert dma == phys - hit.cpu_start + hit.dma_start
