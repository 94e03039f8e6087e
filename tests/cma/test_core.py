"""The core API: construction, alloc/get/put, map rules, private regions, addresses, stats."""

from __future__ import annotations

import errno
import json
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from cma import (
    Cma,
    CmaConfig,
    ConfigError,
    ContiguousMemory,
    IdentityTranslator,
    InvalidArgument,
    MapRule,
    NoMemory,
    NoRegion,
    NotReachable,
    Pattern,
    PlacementError,
    RegionSpec,
    Source,
    TableTranslator,
    UnknownChunk,
    dma_to_phys,
    offset_windows,
    phys_to_dma,
)
from cma.allocators.base import Allocator
from cma.placement import PlacedRegion
from cma.translate import Translator
from tests.conftest import need_tool

MiB = 1 << 20
PAGE = 4096
RAM = [(0x40000000, 256 * MiB)]


def rule(patterns: str, regions: str) -> MapRule:
    """A map rule from ``dev/kind,dev`` and ``r1,r2`` (no parser needed)."""
    pats = []
    for text in patterns.split(","):
        device, sep, kind = text.partition("/")
        pats.append(Pattern(device, kind if sep else None))
    return MapRule(tuple(pats), tuple(regions.split(",")))


def make(*specs: RegionSpec, rules: tuple[MapRule, ...] = (), **kwargs: object) -> Cma:
    return ContiguousMemory.from_config(CmaConfig(specs, rules), kwargs.pop("ram", RAM),  # type: ignore[arg-type]
                                        **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def cma() -> Cma:
    return make(
        RegionSpec("r", 4 * MiB),
        RegionSpec("v", 2 * MiB, start=0x48000000),
        RegionSpec("c", 1 * MiB, allocator="bitmap"),
        rules=(rule("camera/preview", "c,r"), rule("camera,video", "r,v"), rule("*/fb", "v")),
    )


# --- review point 1: every device works ---------------------------------------------------------


@pytest.mark.parametrize("device", ["camera", "video", "/soc/camera@7e000000"])
def test_any_device_can_allocate(device: str) -> None:
    cma = make(RegionSpec("r", MiB), rules=(rule("*", "r"),))
    chunk = cma.alloc(device, None, 100)
    assert chunk.device == device
    assert cma.region("r").contains(chunk.phys, chunk.size)
    assert cma.info(device, None).count == 1


def test_rules_choose_regions_in_order_and_kinds_matter(cma: Cma) -> None:
    assert cma.region_names_for("camera", "preview") == ("c", "r")
    assert cma.region_names_for("camera", None) == ("r", "v")
    assert cma.region_names_for("gpu", "fb") == ("v",)
    assert cma.alloc("camera", "preview", PAGE).region.name == "c"
    assert cma.alloc("video", "x", PAGE).region.name == "r"


def test_no_rule_is_noregion(cma: Cma) -> None:
    with pytest.raises(NoRegion, match="device 'gpu' kind None") as info:
        cma.alloc("gpu", None, PAGE)
    assert info.value.errno == errno.ENOENT
    with pytest.raises(NoRegion):
        cma.info("gpu", None)


def test_fallback_to_the_next_region_when_full(cma: Cma) -> None:
    first = cma.alloc("camera", None, 4 * MiB)
    second = cma.alloc("camera", None, MiB)
    assert (first.region.name, second.region.name) == ("r", "v")
    with pytest.raises(NoMemory, match="no room for 0x200000 bytes") as info:
        cma.alloc("camera", None, 2 * MiB)
    assert info.value.errno == errno.ENOMEM
    assert cma.region("r").alloc_fail == 2
    assert cma.region("v").alloc_fail == 1


def test_size_rounded_to_pages_and_alignment(cma: Cma) -> None:
    chunk = cma.alloc("camera", None, 1, alignment=MiB)
    assert chunk.size == PAGE
    assert chunk.phys % MiB == 0
    assert cma.alloc("camera", None, PAGE + 1, alignment=16).size == 2 * PAGE


@pytest.mark.parametrize(
    ("size", "alignment", "message"),
    [
        (0, 0, "size must be a positive number of bytes, not 0"),
        (-PAGE, 0, "not -4096"),
        (True, 0, "not True"),
        (PAGE, 0x3000, "alignment must be 0 or a power of two, not 0x3000"),
        (PAGE, -1, "alignment must be 0 or a power of two"),
        (PAGE, 1.5, "alignment must be an integer"),
    ],
)
def test_bad_arguments(cma: Cma, size: int, alignment: int, message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        cma.alloc("camera", None, size, alignment)
    assert message in str(info.value)
    assert info.value.errno == errno.EINVAL
    with pytest.raises(InvalidArgument):
        cma.alloc_from(["r"], size, alignment)


# --- alloc_from, get/put ------------------------------------------------------------------------


def test_alloc_from_and_from_region(cma: Cma) -> None:
    a = cma.alloc_from(["v", "r"], MiB)
    assert a.region.name == "v"
    assert a.device is None
    assert a.dma_addr is None
    b = cma.alloc_from("r", MiB, device="camera", kind="still")
    assert (b.region.name, b.device, b.kind) == ("r", "camera", "still")
    c = cma.alloc_from_region(cma.region("c"), PAGE)
    assert c.region is cma.region("c")
    assert cma.alloc_from_region("c", PAGE).region.name == "c"
    with pytest.raises(NoRegion, match="unknown region 'zz' \\(known: r, v, c\\)"):
        cma.alloc_from(["zz"], PAGE)
    with pytest.raises(NoRegion, match="no region names"):
        cma.alloc_from([], PAGE)
    other = make(RegionSpec("c", MiB))
    with pytest.raises(NoRegion, match="does not belong"):
        cma.alloc_from_region(other.region("c"), PAGE)


def test_refcounts(cma: Cma) -> None:
    chunk = cma.alloc("camera", None, PAGE)
    assert chunk.refcount == 1
    assert cma.get(chunk.phys) is chunk
    assert chunk.refcount == 2
    assert cma.put(chunk.phys) is False
    assert cma.chunk_at(chunk.phys) is chunk
    assert cma.put(chunk.phys) is True
    assert cma.chunk_at(chunk.phys) is None
    with pytest.raises(UnknownChunk, match=f"no chunk starts at {chunk.phys:#x}") as info:
        cma.put(chunk.phys)
    assert info.value.errno == errno.ENOENT
    with pytest.raises(UnknownChunk):
        cma.get(chunk.phys)
    # freed memory can be handed out again
    assert cma.alloc_from("r", 4 * MiB).size == 4 * MiB


def test_get_put_need_the_start_address(cma: Cma) -> None:
    chunk = cma.alloc("camera", None, 2 * PAGE)
    with pytest.raises(UnknownChunk):
        cma.put(chunk.phys + PAGE)
    assert cma.chunk_at(chunk.phys + PAGE) is chunk
    assert cma.chunk_at(chunk.end) is None
    assert cma.chunk_at(0) is None


def test_iter_chunks_in_address_order(cma: Cma) -> None:
    chunks = [cma.alloc_from(name, PAGE) for name in ("r", "v", "c", "r")]
    listed = list(cma.iter_chunks())
    assert listed == sorted(chunks, key=lambda c: c.phys)


# --- info ---------------------------------------------------------------------------------------


def test_info_and_info_about(cma: Cma) -> None:
    r, v = cma.region("r"), cma.region("v")
    info = cma.info("video", "any")
    assert (info.lower, info.upper, info.total_size, info.count) == (
        min(r.base, v.base), max(r.end, v.end), 6 * MiB, 2)
    assert cma.info_about("c").total_size == MiB
    assert cma.info_about(["c", "v"]).count == 2
    with pytest.raises(NoRegion):
        cma.info_about([])
    with pytest.raises(NoRegion):
        cma.info_about(["nope"])


# --- construction -------------------------------------------------------------------------------


def test_regions_keep_configuration_order_and_allocators(cma: Cma) -> None:
    assert [r.name for r in cma.regions] == ["r", "v", "c"]
    assert [r.allocator.name for r in cma.regions] == ["bf", "bf", "bitmap"]
    assert cma.region("v").base == 0x48000000


def test_rule_naming_unknown_region_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="names unknown region 'x' \\(known: r\\)"):
        make(RegionSpec("r", MiB), rules=(rule("camera", "x"),))


def test_defaults_used_only_when_config_is_empty() -> None:
    defaults = CmaConfig((RegionSpec("d", MiB, source=Source.DEFAULTS),), (rule("*", "d"),))
    used = ContiguousMemory.from_config(CmaConfig(), RAM, defaults=defaults)
    assert [r.name for r in used.regions] == ["d"]
    assert used.alloc("anything", None, PAGE).region.name == "d"
    ignored = ContiguousMemory.from_config(CmaConfig((RegionSpec("r", MiB),)), RAM,
                                           defaults=defaults)
    assert [r.name for r in ignored.regions] == ["r"]


def test_default_region_serves_devices_without_a_rule() -> None:
    cma = make(RegionSpec("cma", 8 * MiB, default=True, source=Source.MODERN),
               RegionSpec("x", MiB), rules=(rule("camera", "x"),))
    assert cma.alloc("uart", None, PAGE).region.name == "cma"
    assert cma.alloc("camera", None, PAGE).region.name == "x"


def test_links_win_over_rules() -> None:
    config = CmaConfig((RegionSpec("a", MiB), RegionSpec("b", MiB)), (rule("*", "a"),),
                       links=(("/soc/camera", ("b",)),))
    cma = ContiguousMemory.from_config(config, RAM)
    assert cma.alloc("/soc/camera", "any", PAGE).region.name == "b"
    assert cma.alloc("/soc/camera2", None, PAGE).region.name == "a"
    with pytest.raises(ConfigError, match="links to unknown region 'zz'"):
        ContiguousMemory.from_config(
            CmaConfig((RegionSpec("a", MiB),), links=(("/x", ("zz",)),)), RAM)


def test_bad_allocator_params_name_the_region() -> None:
    with pytest.raises(InvalidArgument, match=r"^region 'r': "):
        make(RegionSpec("r", MiB, allocator="bitmap", params="nonsense=1"))
    with pytest.raises(InvalidArgument, match="unknown allocator 'nope'"):
        make(RegionSpec("r", MiB, allocator="nope"))


class FirstFit(Allocator):
    """A tiny allocator for exercising the plug-in lookup."""

    name = "ff"

    def __init__(self, start: int, size: int, page_size: int, params: str = "") -> None:
        super().__init__(start, size, page_size, params)
        self.used: dict[int, int] = {}

    def alloc(self, size: int, alignment: int) -> int | None:
        addr = -(-self.start // alignment) * alignment
        for start, length in sorted(self.used.items()):
            if addr + size <= start:
                break
            addr = max(addr, -(-(start + length) // alignment) * alignment)
        if addr + size > self.start + self.size:
            return None
        self.used[addr] = size
        return addr

    def free(self, addr: int, size: int) -> None:
        del self.used[addr]

    def iter_free(self) -> Iterator[tuple[int, int]]:
        cursor = self.start
        for start, length in sorted(self.used.items()):
            if start > cursor:
                yield cursor, start - cursor
            cursor = start + length
        if cursor < self.start + self.size:
            yield cursor, self.start + self.size - cursor


class Broken(FirstFit):
    name = "broken"

    def alloc(self, size: int, alignment: int) -> int | None:
        self.used[self.start + self.size] = size
        return self.start + self.size  # one past the region


def test_allocator_lookup_is_pluggable() -> None:
    cma = make(RegionSpec("r", MiB), allocator_lookup=lambda name: FirstFit)
    a, b = cma.alloc_from("r", PAGE), cma.alloc_from("r", PAGE)
    assert cma.region("r").allocator.name == "ff"
    assert (a.phys, b.phys) == (cma.region("r").base, cma.region("r").base + PAGE)


def test_a_misbehaving_allocator_is_caught() -> None:
    cma = make(RegionSpec("r", MiB), allocator_lookup=lambda name: Broken)
    with pytest.raises(InvalidArgument, match="allocator 'broken' of region 'r'"):
        cma.alloc_from("r", PAGE)
    assert list(cma.iter_chunks()) == []


def test_direct_construction_checks_regions() -> None:
    spec = RegionSpec("a", MiB)
    with pytest.raises(PlacementError, match=r"region 'b' at .* overlaps region 'a'"):
        ContiguousMemory([PlacedRegion(spec, 0x40000000, MiB, PAGE),
                          PlacedRegion(RegionSpec("b", MiB), 0x40080000, MiB, PAGE)])
    with pytest.raises(InvalidArgument, match="page"):
        ContiguousMemory([PlacedRegion(spec, 0x40000800, MiB, PAGE)])
    with pytest.raises(InvalidArgument, match="not aligned to 0x200000"):
        ContiguousMemory([PlacedRegion(spec, 0x40100000, MiB, 2 * MiB)])
    with pytest.raises(InvalidArgument, match="defined twice"):
        ContiguousMemory([PlacedRegion(spec, 0x40000000, MiB, PAGE),
                          PlacedRegion(spec, 0x41000000, MiB, PAGE)])
    with pytest.raises(InvalidArgument, match="page size"):
        ContiguousMemory([], page_size=1000)


# --- private regions and the run-time map -------------------------------------------------------


def test_private_regions_only_by_name(cma: Cma) -> None:
    region = cma.register_private("drv", 0x41000000, MiB + 1)
    assert region.private
    assert region.size == MiB + PAGE
    assert region.spec.source is Source.PRIVATE
    assert region.spec.fixed
    assert cma.alloc_from("drv", PAGE).region is region
    assert cma.alloc_from_region(region, PAGE).region is region
    with pytest.raises(ConfigError, match="private region 'drv'"):
        cma.set_map([rule("*", "drv")])
    assert "drv" not in cma.region_names_for("camera", None)


def test_private_region_errors(cma: Cma) -> None:
    with pytest.raises(PlacementError, match="overlaps region 'r'"):
        cma.register_private("p", cma.region("r").base, PAGE)
    with pytest.raises(PlacementError, match="not inside one RAM bank"):
        cma.register_private("p", 0x10000000, PAGE)
    with pytest.raises(InvalidArgument, match="page"):
        cma.register_private("p", 0x41000800, PAGE)
    with pytest.raises(InvalidArgument, match="must be positive"):
        cma.register_private("p", 0x41000000, 0)
    with pytest.raises(InvalidArgument, match="defined twice"):
        cma.register_private("r", 0x41000000, PAGE)
    spec = RegionSpec("q", 1, allocator="bitmap", alignment=0x3000)
    with pytest.raises(InvalidArgument, match="0x3000"):
        cma.register_private(spec, 0x41000000, PAGE)
    region = cma.register_private(RegionSpec("q", 1, allocator="bitmap"), 0x41000000, PAGE)
    assert region.allocator.name == "bitmap"
    assert region.size == PAGE


def test_set_map_at_run_time(cma: Cma) -> None:
    cma.set_map([rule("gpu", "c")])
    assert cma.alloc("gpu", None, PAGE).region.name == "c"
    with pytest.raises(NoRegion):
        cma.alloc("camera", None, PAGE)
    before = cma.rules
    with pytest.raises(ConfigError, match="unknown region 'nope'"):
        cma.set_map([rule("x", "nope")])
    with pytest.raises(ConfigError, match="names no region"):
        cma.set_map([MapRule((Pattern("x", None),), ())])
    assert cma.rules == before


def test_set_map_text(cma: Cma) -> None:
    cma.set_map_text("video/a=c;*=v")
    assert cma.region_names_for("video", "a") == ("c",)
    assert cma.region_names_for("other", None) == ("v",)
    with pytest.raises(ConfigError):
        cma.set_map_text("=")


# --- review point 2: three addresses per chunk ---------------------------------------------------


def rpi_like() -> TableTranslator:
    """Camera sees RAM at +0x80000000 (like the 0xC0000000 alias); dsp only low 64 MiB."""
    return TableTranslator(
        {
            "camera": offset_windows(0x80000000, 256 * MiB, 0x40000000),
            "dsp": [(0x40000000, 0x0, 64 * MiB)],
            "cpu-only": [],
        },
        linear=(0x40000000, 0xC0000000, 256 * MiB),
    )


def test_chunk_addresses_with_bus_offsets() -> None:
    cma = make(RegionSpec("r", 4 * MiB, start=0x40000000), rules=(rule("*", "r"),),
               translator=rpi_like())
    chunk = cma.alloc("camera", None, PAGE)
    assert chunk.phys == 0x40000000
    assert chunk.dma_addr == 0xC0000000  # what the camera must be programmed with
    assert chunk.dma_addr_for("dsp") == 0x0
    assert chunk.dma_addr_for("uart") == chunk.phys  # no map: identity
    assert chunk.cpu_addr == 0xC0000000  # the linear map, not the bus
    with pytest.raises(NotReachable, match="device 'cpu-only' cannot reach chunk 0x40000000"):
        chunk.dma_addr_for("cpu-only")


def test_dma_addr_for_unreachable_part() -> None:
    cma = make(RegionSpec("r", 4 * MiB, start=0x43E00000), rules=(rule("*", "r"),),
               translator=rpi_like())
    chunk = cma.alloc_from("r", 4 * MiB)
    with pytest.raises(NotReachable, match="'dsp'") as info:
        chunk.dma_addr_for("dsp")
    assert info.value.errno == errno.EFAULT


def test_no_map_regions_have_no_cpu_address() -> None:
    cma = make(RegionSpec("p", MiB, no_map=True), RegionSpec("q", MiB), translator=rpi_like())
    assert cma.alloc_from("p", PAGE).cpu_addr is None
    assert cma.alloc_from("q", PAGE).cpu_addr is not None


def test_cpu_address_none_outside_the_linear_map() -> None:
    translator = TableTranslator(linear=(0x40000000, 0xC0000000, 1 * MiB))
    cma = make(RegionSpec("lo", PAGE, start=0x40000000), RegionSpec("hi", MiB),
               RegionSpec("edge", 2 * PAGE, start=0x400FF000, fixed=True), translator=translator)
    assert cma.alloc_from("lo", PAGE).cpu_addr == 0xC0000000
    assert cma.alloc_from("hi", PAGE).cpu_addr is None
    assert cma.alloc_from("edge", 2 * PAGE).cpu_addr is None  # half mapped


def test_alloc_refuses_memory_the_device_cannot_reach() -> None:
    # the region is not constrained (dsp is not a known device at boot) but dsp asks for it
    cma = make(RegionSpec("r", 4 * MiB), rules=(rule("*", "r"),), translator=rpi_like())
    assert cma.region("r").base >= 0x44000000
    with pytest.raises(NotReachable, match="device 'dsp' kind None can reach"):
        cma.alloc("dsp", None, PAGE)
    assert cma.region("r").alloc_fail == 1
    assert list(cma.iter_chunks()) == []
    assert cma.alloc("camera", None, PAGE).dma_addr is not None


def test_known_devices_constrain_placement() -> None:
    cma = make(RegionSpec("r", 4 * MiB), RegionSpec("s", 4 * MiB),
               rules=(rule("dsp", "r"), rule("*", "s")), translator=rpi_like(),
               devices=["dsp", "camera", "uart"])
    assert cma.region("r").end <= 0x40000000 + 64 * MiB  # inside what dsp reaches
    assert cma.region("s").end == 0x50000000  # camera and uart reach everything
    assert cma.alloc("dsp", None, PAGE).dma_addr is not None


def test_devices_with_disjoint_views_are_an_error() -> None:
    translator = TableTranslator({"a": [(0x40000000, 0, MiB)], "b": [(0x48000000, 0, MiB)]})
    with pytest.raises(PlacementError, match="cannot be reached by all of its devices \\(a, b\\)"):
        make(RegionSpec("r", PAGE), rules=(rule("*", "r"),), translator=translator,
             devices=["a", "b"])


def test_region_only_for_devices_without_dma_is_an_error() -> None:
    with pytest.raises(PlacementError, match="only to devices that can do no DMA: cpu-only"):
        make(RegionSpec("r", PAGE), rules=(rule("cpu-only", "r"),), translator=rpi_like(),
             devices=["cpu-only"])


def test_reach_counts_kind_rules_and_the_default_region() -> None:
    translator = TableTranslator({"dsp": [(0x40000000, 0, 16 * MiB)]})
    cma = make(RegionSpec("k", MiB), RegionSpec("d", MiB, default=True),
               rules=(rule("dsp/fw", "k"),), translator=translator, devices=["dsp"])
    assert cma.region("k").end <= 0x41000000  # dsp may ask kind fw
    assert cma.region("d").end <= 0x41000000  # and any other kind goes to the default


# --- translation helpers -------------------------------------------------------------------------


def test_phys_dma_translation_matches_linux() -> None:
    windows = [(0x40000000, 0xC0000000, 0x1000), (0x40000000, 0x0, 0x2000)]
    assert phys_to_dma(windows, 0x40000000) == 0xC0000000  # first window wins
    assert phys_to_dma(windows, 0x40001000) == 0x1000
    assert phys_to_dma(windows, 0x40000000, 0x2000) == 0x0  # whole range must fit
    assert phys_to_dma(windows, 0x40002000) is None
    assert phys_to_dma(None, 0x1234) == 0x1234
    assert phys_to_dma([], 0) is None
    assert dma_to_phys(windows, 0xC0000FFF) == 0x40000FFF
    assert dma_to_phys(windows, 0xC0001000) is None
    assert dma_to_phys(None, 5) == 5


def test_translator_helpers() -> None:
    assert isinstance(IdentityTranslator(), Translator)
    assert isinstance(rpi_like(), Translator)
    t = TableTranslator({"x": None}, default=[(0, 0x100, 0x10)])
    assert t.dma_windows("x") is None
    assert t.dma_windows("y") == [(0, 0x100, 0x10)]
    assert t.phys_to_virt(0x1234) == 0x1234
    with pytest.raises(InvalidArgument, match="DMA window of 'x'"):
        TableTranslator({"x": [(0, 0, 0)]})
    with pytest.raises(InvalidArgument, match="linear map"):
        TableTranslator(linear=(0, 0, 0))
    with pytest.raises(InvalidArgument, match="below bus address 0"):
        offset_windows(-0x1000, 0x1000)
    with pytest.raises(InvalidArgument, match="window size"):
        offset_windows(0, 0)


# --- stats ---------------------------------------------------------------------------------------


def test_stats_and_debug_view(cma: Cma) -> None:
    a = cma.alloc("camera", "preview", 3 * PAGE)
    cma.alloc("camera", "preview", PAGE)
    cma.put(a.phys)
    view = cma.view("c")
    assert view.used == PAGE
    assert view.used + view.free == MiB
    assert view.largest_free >= MiB - 4 * PAGE
    assert len(view.chunks) == 1
    debug = cma.debug_view("c")
    region = cma.region("c")
    assert debug["base_pfn"] == region.base // PAGE
    assert debug["count"] == MiB // PAGE
    assert debug["used"] == 1
    assert debug["alloc_success"] == 2
    assert debug["alloc_fail"] == 0
    assert "order_per_bit" in debug
    assert "bitmap" in debug
    assert debug["maxchunk"] == view.largest_free // PAGE
    assert [c["refcount"] for c in debug["chunks"]] == [1]


def test_snapshot_is_sorted_and_json_ready(cma: Cma) -> None:
    cma.alloc("camera", None, PAGE)
    cma.alloc_from("v", PAGE, device="camera")
    snap = cma.snapshot()
    assert json.loads(json.dumps(snap)) == snap
    bases = [r["base"] for r in snap["regions"]]
    assert bases == sorted(bases)
    assert [c["phys"] for c in snap["chunks"]] == sorted(c["phys"] for c in snap["chunks"])
    by_name = {r["name"]: r for r in snap["regions"]}
    assert by_name["r"]["used"] == PAGE
    assert by_name["r"]["chunk_count"] == 1
    assert by_name["v"]["flags"] == ["reusable"]
    assert snap == cma.snapshot()


# --- threads -------------------------------------------------------------------------------------


def test_concurrent_alloc_put_keeps_the_books() -> None:
    cma = make(RegionSpec("a", 2 * MiB), RegionSpec("b", 2 * MiB, allocator="bitmap"),
               rules=(rule("*", "a,b"),))
    errors: list[BaseException] = []
    live: list[tuple[int, int]] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        try:
            for step in range(150):
                try:
                    chunk = cma.alloc(f"dev{index}", None, PAGE * (1 + (step + index) % 5))
                except NoMemory:
                    continue
                with lock:
                    for start, end in live:
                        assert chunk.end <= start or end <= chunk.phys, "overlap"
                    live.append((chunk.phys, chunk.end))
                cma.get(chunk.phys)
                assert cma.put(chunk.phys) is False
                with lock:
                    live.remove((chunk.phys, chunk.end))
                assert cma.put(chunk.phys) is True
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so calls really interleave
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert list(cma.iter_chunks()) == []
    for name in ("a", "b"):
        view = cma.view(name)
        assert view.used == 0
        assert view.free == 2 * MiB
    total = sum(r.alloc_success for r in cma.regions)
    assert total == 4 * 150  # every request succeeded: 4 threads x 5 pages at most


# --- command line and device tree ---------------------------------------------------------------


def test_from_cmdline_both_dialects() -> None:
    cma = ContiguousMemory.from_cmdline("quiet cma=r=16M;v=8M@0x48000000 cma_map=camera=r,v",
                                        RAM)
    assert [r.name for r in cma.regions] == ["r", "v"]
    assert cma.region("v").base == 0x48000000
    modern = ContiguousMemory.from_cmdline("cma=64M@0x40000000-0x48000000", RAM)
    (region,) = modern.regions
    assert region.spec.default
    assert region.end <= 0x48000000
    assert modern.alloc("any-device", None, PAGE).region is region
    fallback = ContiguousMemory.from_cmdline("console=ttyS0", RAM, defaults="cma=d=1M cma_map=*=d")
    assert fallback.alloc("x", None, PAGE).region.name == "d"


DTS = """/dts-v1/;
/memreserve/ 0x4f000000 0x100000;
/ {
    #address-cells = <1>; #size-cells = <1>;
    memory@40000000 { device_type = "memory"; reg = <0x40000000 0x10000000>; };
    reserved-memory {
        #address-cells = <1>; #size-cells = <1>; ranges;
        fw@4e000000 { reg = <0x4e000000 0x100000>; no-map; };
        cma_pool: linux,cma { compatible = "shared-dma-pool"; reusable; size = <0x1000000>;
                    linux,cma-default; };
        camera_pool: camera@48000000 { compatible = "shared-dma-pool"; no-map;
                                       reg = <0x48000000 0x400000>; };
        vpu { compatible = "shared-dma-pool"; reusable; size = <0x200000>;
              alloc-ranges = <0x44000000 0x1000000>; };
    };
    camera@1000 { reg = <0x1000 0x100>; memory-region = <&camera_pool>; };
    display@2000 { reg = <0x2000 0x100>; memory-region = <&cma_pool>; };
};
"""


@pytest.fixture(scope="module")
def dtb() -> bytes:
    need_tool("dtc")
    return subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb"], input=DTS.encode(),
                          capture_output=True, check=True).stdout


def test_from_dtb(dtb: bytes) -> None:
    cma = ContiguousMemory.from_dtb(dtb)
    names = {r.name: r for r in cma.regions}
    assert set(names) == {"linux,cma", "camera@48000000", "vpu"}
    camera = names["camera@48000000"]
    assert (camera.base, camera.size, camera.no_map) == (0x48000000, 0x400000, True)
    default = names["linux,cma"]
    assert default.spec.default
    assert not (default.base < 0x4F100000 and default.end > 0x4F000000)
    assert not (default.base < 0x4E100000 and default.end > 0x4E000000)  # fw carve-out
    assert names["vpu"].base == 0x44E00000  # top of its alloc-ranges
    assert cma.alloc("/camera@1000", None, PAGE).region is camera
    assert cma.alloc("/other", None, PAGE).region is default
    assert cma.alloc("/display@2000", None, PAGE).region is default
    assert cma.alloc("/camera@1000", None, PAGE).cpu_addr is None  # no-map pool


def test_from_dtb_command_line_replaces_the_default_pool(dtb: bytes) -> None:
    cma = ContiguousMemory.from_dtb(dtb, "cma=32M")
    names = [r.name for r in cma.regions]
    assert "linux,cma" not in names
    assert cma.region("camera@48000000").size == 0x400000
    (modern,) = [r for r in cma.regions if r.spec.source is Source.MODERN]
    assert modern.size == 32 * MiB
    assert cma.alloc("/other", None, PAGE).region is modern
    assert cma.alloc("/display@2000", None, PAGE).region is modern  # its link followed
    with pytest.raises(ConfigError, match="'vpu' is defined both by device-tree node '/reserved"):
        ContiguousMemory.from_dtb(dtb, "cma=vpu=1M")


def test_from_dtb_without_memory_needs_ram() -> None:
    need_tool("dtc")
    blob = subprocess.run(["dtc", "-q", "-I", "dts", "-O", "dtb"],
                          input=b"/dts-v1/;\n/ { #address-cells = <1>; #size-cells = <1>; };\n",
                          capture_output=True, check=True).stdout
    with pytest.raises(InvalidArgument, match="no /memory node"):
        ContiguousMemory.from_dtb(blob)
    assert ContiguousMemory.from_dtb(blob, "cma=1M", ram=RAM).regions[0].size == MiB
