"""Reading /reserved-memory, memory-region links, carve-outs and RAM banks from DTBs."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cma.config import RegionSpec, Source
from cma.devicetree import (
    MEMRESERVE_NAME,
    parse_carveouts,
    parse_memory,
    parse_reserved_memory,
)
from cma.errors import ConfigError
from tests.conftest import need_tool

M = 1 << 20


def dtb(body: str, *, cells: tuple[int, int] = (1, 1), header: str = "") -> bytes:
    """Compile a small tree: ``body`` goes inside the root node."""
    source = (
        f"/dts-v1/;\n{header}\n/ {{\n"
        f"  #address-cells = <{cells[0]}>;\n  #size-cells = <{cells[1]}>;\n{body}\n}};\n"
    )
    result = subprocess.run(
        [need_tool("dtc"), "-q", "-I", "dts", "-O", "dtb", "-o", "-", "-"],
        input=source.encode(),
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


CAMSOC = """
  memory@40000000 { device_type = "memory"; reg = <0x40000000 0x20000000>; };
  reserved-memory {
    #address-cells = <1>; #size-cells = <1>; ranges;
    camera_pool: camera-pool@50000000 {
      compatible = "shared-dma-pool"; reg = <0x50000000 0x4000000>; reusable;
    };
    cma: linux,cma {
      compatible = "shared-dma-pool"; reusable; linux,cma-default;
      size = <0x2000000>; alignment = <0x400000>;
      alloc-ranges = <0x40000000 0x10000000 0x58000000 0x8000000>;
    };
    dsp_pool: dsp@5c000000 {
      compatible = "shared-dma-pool"; reg = <0x5c000000 0x100000>; no-map;
    };
    coherent: coherent-pool { compatible = "shared-dma-pool"; size = <0x100000>; };
    off-pool@5e000000 {
      compatible = "shared-dma-pool"; reg = <0x5e000000 0x100000>; reusable;
      status = "disabled";
    };
    fw: firmware@5f000000 { reg = <0x5f000000 0x80000 0x5f100000 0x1000>; no-map; };
  };
  soc {
    #address-cells = <1>; #size-cells = <1>;
    camera@10000000 { reg = <0x10000000 0x1000>; memory-region = <&camera_pool &cma>; };
    dsp@11000000 { reg = <0x11000000 0x1000>; memory-region = <&dsp_pool>; };
    uart@12000000 { reg = <0x12000000 0x1000>; };
  };
"""


def by_name(regions: tuple[RegionSpec, ...]) -> dict[str, RegionSpec]:
    return {r.name: r for r in regions}


def test_pools_become_regions_named_after_their_nodes() -> None:
    config = parse_reserved_memory(dtb(CAMSOC))
    assert [r.name for r in config.regions] == [
        "camera-pool@50000000",
        "linux,cma",
        "dsp@5c000000",
        "coherent-pool",
    ]
    assert config.rules == ()
    assert all(r.source is Source.DEVICETREE for r in config.regions)


def test_fixed_reusable_pool() -> None:
    camera = by_name(parse_reserved_memory(dtb(CAMSOC)).regions)["camera-pool@50000000"]
    assert (camera.start, camera.size, camera.fixed) == (0x50000000, 64 * M, True)
    assert (camera.reusable, camera.no_map, camera.default) == (True, False, False)
    assert camera.node == "/reserved-memory/camera-pool@50000000"
    assert camera.phandle is not None
    assert camera.phandle > 0


def test_dynamic_default_cma_pool() -> None:
    cma = by_name(parse_reserved_memory(dtb(CAMSOC)).regions)["linux,cma"]
    assert cma.start is None
    assert cma.fixed is False
    assert cma.size == 32 * M
    assert cma.alignment == 4 * M
    assert cma.alloc_ranges == ((0x40000000, 0x10000000), (0x58000000, 0x8000000))
    assert (cma.reusable, cma.no_map, cma.default) == (True, False, True)
    assert cma.phandle is not None


def test_no_map_pool_and_mapped_pool() -> None:
    regions = by_name(parse_reserved_memory(dtb(CAMSOC)).regions)
    dsp = regions["dsp@5c000000"]
    assert (dsp.no_map, dsp.reusable, dsp.fixed) == (True, False, True)
    coherent = regions["coherent-pool"]
    assert (coherent.no_map, coherent.reusable, coherent.fixed) == (False, False, False)
    assert coherent.phandle is None  # never referenced: dtc gave it no phandle


def test_links_in_order() -> None:
    config = parse_reserved_memory(dtb(CAMSOC))
    assert config.links == (
        ("/soc/camera@10000000", ("camera-pool@50000000", "linux,cma")),
        ("/soc/dsp@11000000", ("dsp@5c000000",)),
    )


def test_carveouts_are_reg_entries_that_are_not_pools() -> None:
    assert parse_carveouts(dtb(CAMSOC)) == (
        ("firmware@5f000000", 0x5F000000, 0x80000),
        ("firmware@5f000000", 0x5F100000, 0x1000),
    )


def test_carveouts_include_memreserve_and_extra_pool_entries() -> None:
    blob = dtb(
        """
  reserved-memory {
    #address-cells = <1>; #size-cells = <1>; ranges;
    pool@50000000 {
      compatible = "shared-dma-pool"; reusable;
      reg = <0x50000000 0x100000 0x51000000 0x2000 0x52000000 0x0>;
    };
    off@53000000 { reg = <0x53000000 0x1000>; status = "disabled"; };
    dynamic { size = <0x1000>; };
  };
""",
        header="/memreserve/ 0x40000000 0x1000;\n/memreserve/ 0x48000000 0x0;",
    )
    assert parse_carveouts(blob) == (
        (MEMRESERVE_NAME, 0x40000000, 0x1000),
        ("pool@50000000", 0x51000000, 0x2000),
    )
    (pool,) = parse_reserved_memory(blob).regions
    assert (pool.start, pool.size) == (0x50000000, 0x100000)


def test_two_cell_addresses() -> None:
    blob = dtb(
        """
  memory@80000000 { device_type = "memory"; reg = <0x0 0x80000000 0x0 0x80000000>; };
  memory@880000000 { device_type = "memory"; reg = <0x8 0x80000000 0x0 0x40000000>; };
  reserved-memory {
    #address-cells = <2>; #size-cells = <2>; ranges;
    high@8a0000000 {
      compatible = "shared-dma-pool"; reusable; reg = <0x8 0xa0000000 0x0 0x1000000>;
    };
    any {
      compatible = "shared-dma-pool"; reusable; size = <0x1 0x0>; alignment = <0x0 0x200000>;
      alloc-ranges = <0x8 0x80000000 0x1 0x0>;
    };
  };
""",
        cells=(2, 2),
    )
    high, any_pool = parse_reserved_memory(blob).regions
    assert (high.start, high.size) == (0x8A0000000, 16 * M)
    assert (any_pool.size, any_pool.alignment) == (1 << 32, 2 * M)
    assert any_pool.alloc_ranges == ((0x880000000, 1 << 32),)
    assert parse_memory(blob) == ((0x80000000, 0x80000000), (0x880000000, 0x40000000))


def test_memory_banks() -> None:
    blob = dtb(
        """
  memory@40000000 { device_type = "memory"; reg = <0x40000000 0x10000000 0x60000000 0x0>; };
  memory@70000000 {
    device_type = "memory"; reg = <0x70000000 0x10000000>;
    linux,usable-memory = <0x70000000 0x8000000>;
  };
  memory@90000000 { device_type = "memory"; reg = <0x90000000 0x1000>; status = "disabled"; };
  sram@a0000000 { reg = <0xa0000000 0x1000>; };
  ram { device_type = "memory"; reg = <0xb0000000 0x1000>; };
"""
    )
    assert parse_memory(blob) == (
        (0x40000000, 0x10000000),
        (0x70000000, 0x8000000),
        (0xB0000000, 0x1000),
    )


def test_no_reserved_memory_means_no_regions() -> None:
    blob = dtb('memory@0 { device_type = "memory"; reg = <0x0 0x1000000>; };')
    assert parse_reserved_memory(blob).is_empty
    assert parse_carveouts(blob) == ()
    assert parse_memory(blob) == ((0, 0x1000000),)


def _rm(children: str, props: str = "#address-cells = <1>; #size-cells = <1>; ranges;") -> bytes:
    return dtb(f"reserved-memory {{ {props}\n{children}\n}};")


@pytest.mark.parametrize(
    ("blob_args", "message"),
    [
        (
            ('p { compatible = "shared-dma-pool"; size = <0x1000>; reusable; no-map; };',),
            "/reserved-memory/p: 'reusable' and 'no-map' exclude each other",
        ),
        (
            ('p { compatible = "shared-dma-pool"; reusable; };',),
            "/reserved-memory/p: a reserved-memory node needs 'reg' or 'size'",
        ),
        (
            ('p { compatible = "shared-dma-pool"; size = <0x0>; };',),
            "/reserved-memory/p: 'size' must be greater than 0",
        ),
        (
            ('p { compatible = "shared-dma-pool"; size = <0x0 0x1000>; };',),
            "/reserved-memory/p: size must be 1 cell(s), not 8 bytes",
        ),
        (
            ('p@1 { compatible = "shared-dma-pool"; reg = <0x1000>; };',),
            "/reserved-memory/p@1: reg must be a list of <address size> entries",
        ),
        (
            ('p@1 { compatible = "shared-dma-pool"; reg = <0x1000 0x0>; };',),
            "the size in 'reg' must be greater than 0",
        ),
        (
            ('p { compatible = "shared-dma-pool"; size = <0x1000>; alignment = <0x3000>; };',),
            "/reserved-memory/p: alignment must be a power of two, not 0x3000",
        ),
        (
            ('p { compatible = "shared-dma-pool"; size = <0x1000>; alloc-ranges = <0x1>; };',),
            "alloc-ranges must be a list of <address size> entries",
        ),
        (("", "#address-cells = <2>; #size-cells = <1>; ranges;"), "#address-cells must match"),
        (
            ("", "#address-cells = <1>; ranges;"),
            "#size-cells must match the root's (1), not missing",
        ),
        (("", "#address-cells = <1>; #size-cells = <1>;"), "needs an empty 'ranges'"),
        (
            ("", "#address-cells = <1>; #size-cells = <1>; ranges = <0x0 0x10 0x100>;"),
            "'ranges' must be empty (1:1), not 12 bytes",
        ),
    ],
)
def test_malformed_reserved_memory(blob_args: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_reserved_memory(_rm(*blob_args))
    assert message in str(info.value)


def test_link_to_a_missing_phandle_is_an_error() -> None:
    blob = dtb(
        """
  reserved-memory { #address-cells = <1>; #size-cells = <1>; ranges; };
  dev@1 { reg = <0x1 0x1>; memory-region = <0x77>; };
"""
    )
    with pytest.raises(ConfigError, match=r"/dev@1: memory-region phandle 0x77 points at no node"):
        parse_reserved_memory(blob)


def test_link_outside_reserved_memory_is_an_error() -> None:
    blob = dtb(
        """
  reserved-memory {
    #address-cells = <1>; #size-cells = <1>; ranges;
    p@50000000 { compatible = "shared-dma-pool"; reg = <0x50000000 0x1000>; reusable; };
  };
  other: other { };
  dev@1 { reg = <0x1 0x1>; memory-region = <&other>; };
"""
    )
    with pytest.raises(ConfigError) as info:
        parse_reserved_memory(blob)
    assert "/dev@1: memory-region phandle 0x1 points at /other" in str(info.value)
    assert "not a child of /reserved-memory" in str(info.value)


def test_link_without_reserved_memory_is_an_error() -> None:
    blob = dtb("other: other { };\n dev { memory-region = <&other>; };")
    with pytest.raises(ConfigError, match="not a child of /reserved-memory"):
        parse_reserved_memory(blob)


def test_link_to_a_carveout_is_kept() -> None:
    blob = dtb(
        """
  reserved-memory {
    #address-cells = <1>; #size-cells = <1>; ranges;
    fw: fw@5f000000 { reg = <0x5f000000 0x1000>; no-map; };
  };
  dev { memory-region = <&fw>; };
"""
    )
    config = parse_reserved_memory(blob)
    assert config.regions == ()
    assert config.links == (("/dev", ("fw@5f000000",)),)


_PARSERS: tuple[Callable[[bytes], object], ...] = (
    parse_reserved_memory,
    parse_carveouts,
    parse_memory,
)


def _error_of(parse: Callable[[bytes], object], blob: bytes) -> ConfigError | None:
    """The ConfigError ``parse`` raises for ``blob`` (any other exception propagates)."""
    try:
        parse(blob)
    except ConfigError as err:
        return err
    return None


@pytest.mark.parametrize("blob", [b"", b"garbage", b"\xd0\x0d\xfe\xed" + b"\0" * 36])
def test_not_a_dtb(blob: bytes) -> None:
    for parse in _PARSERS:
        with pytest.raises(ConfigError, match="device tree blob"):
            parse(blob)


@pytest.fixture(scope="module")
def camsoc_blob() -> bytes:
    return dtb(CAMSOC)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_damaged_blobs_raise_only_config_errors(camsoc_blob: bytes, data: st.DataObject) -> None:
    blob = bytearray(camsoc_blob)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        index = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
        blob[index] = data.draw(st.integers(min_value=0, max_value=255))
    cut = data.draw(st.integers(min_value=0, max_value=len(blob)))
    damaged = bytes(blob[:cut]) if data.draw(st.booleans()) else bytes(blob)
    for parse in _PARSERS:
        err = _error_of(parse, damaged)
        assert err is None or err.message


# ----------------------------------------------------------------- real DTBs (Debian armmp)


@pytest.mark.images
def test_real_beagle_x15_reusable_pools(dtbs_dir: Path) -> None:
    blob = (dtbs_dir / "am57xx-beagle-x15-revc.dtb").read_bytes()
    config = parse_reserved_memory(blob)
    regions = by_name(config.regions)
    assert set(regions) == {
        "ipu2-memory@95800000",
        "dsp1-memory@99000000",
        "ipu1-memory@9d000000",
        "dsp2-memory@9f000000",
    }
    ipu2 = regions["ipu2-memory@95800000"]
    assert (ipu2.start, ipu2.size, ipu2.fixed, ipu2.reusable) == (0x95800000, 0x3800000, True, True)
    assert ("/ocp/ipu@55020000", ("ipu2-memory@95800000",)) in config.links
    assert len(config.links) == 4
    assert parse_memory(blob) == ((0x80000000, 0x80000000),)


@pytest.mark.images
def test_real_stm32mp157_no_map_pools_and_carveout(dtbs_dir: Path) -> None:
    blob = (dtbs_dir / "stm32mp157a-dk1.dtb").read_bytes()
    config = parse_reserved_memory(blob)
    assert len(config.regions) == 6
    assert all(r.no_map and not r.reusable and r.fixed for r in config.regions)
    (link,) = config.links
    assert link[0] == "/ahb/m4@10000000"
    assert link[1][:2] == ("retram@38000000", "mcuram@30000000")
    assert len(link[1]) == 6
    assert parse_carveouts(blob) == (("gpu@d4000000", 0xD4000000, 0x4000000),)


@pytest.mark.images
def test_real_sun7i_dynamic_default_pool(dtbs_dir: Path) -> None:
    blob = (dtbs_dir / "sun7i-a20-olinuxino-lime2.dtb").read_bytes()
    (pool,) = parse_reserved_memory(blob).regions
    assert pool.name == "default-pool"
    assert pool.default
    assert pool.reusable
    assert (pool.start, pool.size) == (None, 0x6000000)
    assert pool.alloc_ranges == ((0x40000000, 0x10000000),)


@pytest.mark.images
def test_real_rpi2_linux_cma_and_memreserve(dtbs_dir: Path) -> None:
    blob = (dtbs_dir / "bcm2836-rpi-2-b.dtb").read_bytes()
    (pool,) = parse_reserved_memory(blob).regions
    assert (pool.name, pool.size, pool.default) == ("linux,cma", 0x4000000, True)
    assert (MEMRESERVE_NAME, 0, 0x1000) in parse_carveouts(blob)
    assert parse_memory(blob) == ((0, 0x40000000),)


@pytest.mark.images
def test_every_real_dtb_parses_or_fails_cleanly(dtbs_dir: Path) -> None:
    paths = sorted(dtbs_dir.glob("*.dtb"))
    assert len(paths) > 100
    failures = []
    pools = 0
    for path in paths:
        blob = path.read_bytes()
        for parse in _PARSERS:
            err = _error_of(parse, blob)
            if err is not None:
                failures.append(f"{path.name}: {err}")
        if not failures:
            pools += len(parse_reserved_memory(blob).regions)
    assert failures == []
    assert pools > 50
