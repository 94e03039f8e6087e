"""Fuzzing every host-side input: each reader either works or raises the package's own error.

Command lines, device trees (DTS and DTB), ELF, zImage and initramfs images and scenario
files are fed arbitrary and mutated inputs. The only exceptions allowed out are
:class:`cma.errors.CMAError` (CMA side) and :class:`emu.errors.EmuError` (emulator side);
anything else (IndexError, struct.error, UnicodeDecodeError, a libfdt error, a hang, a
crash of the interpreter) fails the test. Each bug these found has a regression test
here with the exact input.

Determinism: every property runs with ``derandomize=True`` and no example database, so
the examples are a function of the test's source code and the Hypothesis version; CI
sees the same cases on every run. The per-run counts are in ``docs/reliability.md``.
"""

from __future__ import annotations

import gzip
import itertools
import math
import signal
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from cma.cmdline import parse_cmdline, parse_map, parse_modern, parse_regions
from cma.core import ContiguousMemory
from cma.devicetree import parse_memory, parse_reserved_memory
from cma.errors import CMAError, ConfigError
from cma.patterns import match_pattern
from emu.dt.dmamap import dma_map_for, is_dma_coherent
from emu.dt.tree import MAX_DEPTH, DeviceTree
from emu.errors import DeviceTreeError, EmuError, ImageError
from emu.loaders.elf import ElfImage
from emu.loaders.initramfs import read_newc
from emu.loaders.zimage import ZImage
from emu.scenario import Scenario, ScenarioError, load_scenario, scenario_from_dict
from tests.conftest import need_tool
from tests.reliability.host_seeds import (
    CMDLINE_SEEDS,
    CMDLINE_TOKENS,
    SELFTEST_ELF,
    compile_boards,
    consume_cmdline,
    consume_dtb,
    consume_dtb_cma,
    consume_elf,
    consume_newc,
    consume_tree,
    consume_zimage,
    elf32,
    elf_seed,
    mutate,
    newc_gzip_seed,
    newc_seed,
    zimage_seed,
)


def _fuzz(examples: int) -> settings:
    """Deterministic settings for one property (see the module docstring)."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Fail with TimeoutError when the body runs longer than ``seconds`` (a hang guard)."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def boards() -> dict[str, bytes]:
    need_tool("dtc")
    return compile_boards()


BOARD = st.sampled_from(("virt", "camsoc", "camsoc-alias"))
BYTE_EDITS = st.lists(
    st.tuples(st.integers(0, 1 << 16), st.sampled_from((0, 1, 2, 3, 4, 0x7F, 0x80, 0xFF))
              | st.integers(0, 255)),
    min_size=1, max_size=8,
)


# =========================================================================== CMA command lines


def _error_position_is_inside(read: Any, text: str) -> None:
    """A refusal points at a spot inside the text it shows (the caret can be drawn)."""
    error: ConfigError | None = None
    try:
        read(text)
    except ConfigError as err:
        error = err
    if error is not None:
        assert error.pos is None or 0 <= error.pos <= len(error.text), (text, error.pos)
        assert str(error)


@_fuzz(400)
@given(st.text(max_size=80))
def test_cmdline_arbitrary_text(text: str) -> None:
    consume_cmdline(text)
    for read in (parse_cmdline, parse_regions, parse_map, parse_modern):
        _error_position_is_inside(read, text)


_MUTATION = st.tuples(
    st.sampled_from(("insert", "delete", "replace", "duplicate")),
    st.integers(0, 200),
    st.integers(1, 6),
    st.sampled_from(CMDLINE_TOKENS) | st.characters(),
)


def _mutated(seed: str, ops: list[tuple[str, int, int, str]]) -> str:
    """``seed`` with token insertions, span deletions, replacements and duplications."""
    text = seed
    for op, where, length, token in ops:
        at = where % (len(text) + 1)
        if op == "insert":
            text = text[:at] + token + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + length:]
        elif op == "replace":
            text = text[:at] + token + text[at + len(token):]
        else:
            text = text[:at] + text[at:at + length] + text[at:]
    return text


@_fuzz(400)
@given(st.sampled_from(CMDLINE_SEEDS), st.lists(_MUTATION, min_size=1, max_size=4))
def test_cmdline_grammar_mutations(seed: str, ops: list[tuple[str, int, int, str]]) -> None:
    text = _mutated(seed, ops)
    consume_cmdline(text)
    _error_position_is_inside(parse_cmdline, text)
    _, _, value = text.partition("cma=")
    consume_cmdline(value.split(" ")[0])


@_fuzz(200)
@given(st.sampled_from(CMDLINE_SEEDS), st.lists(_MUTATION, max_size=3))
def test_cmdline_through_the_core(seed: str, ops: list[tuple[str, int, int, str]]) -> None:
    """The whole path a command line takes: parse, place in RAM, build the allocators."""
    ram = [(0x4000_0000, 0x2000_0000)]
    try:
        core = ContiguousMemory.from_cmdline(_mutated(seed, ops), ram, devices=["camera"])
    except CMAError:
        return
    for region in core.regions:
        assert ram[0][0] <= region.base
        assert region.base + region.size <= ram[0][0] + ram[0][1]


@_fuzz(200)
@given(st.text(alphabet="ab?*", max_size=6), st.text(alphabet="ab", max_size=6) | st.none())
def test_patterns_match_like_a_glob(pattern: str, text: str | None) -> None:
    if "*" in pattern[:-1]:
        return  # the parser refuses these; they never reach the matcher
    subject = text or ""
    head = pattern.removesuffix("*")
    expected = (len(subject) >= len(head) if pattern.endswith("*")
                else len(subject) == len(head))
    expected = expected and all(p in ("?", s) for p, s in zip(head, subject, strict=False))
    assert match_pattern(pattern, text) is expected


# =========================================================================== DTB


@pytest.mark.parametrize("name", ["virt", "camsoc", "camsoc-alias"])
def test_dtb_truncated_at_every_length(boards: dict[str, bytes], name: str) -> None:
    """Regression: libfdt trusted the header's totalsize and read past a short buffer
    (a segmentation fault at some lengths, SystemError at others)."""
    blob = boards[name]
    for length in range(len(blob)):
        with pytest.raises(DeviceTreeError, match="not a valid device tree blob"):
            DeviceTree.from_dtb(blob[:length])
        with pytest.raises(ConfigError, match="not a valid device tree blob"):
            parse_memory(blob[:length])
    assert DeviceTree.from_dtb(blob).memory_banks()


def test_dtb_truncation_message_carries_the_size(boards: dict[str, bytes]) -> None:
    blob = boards["virt"][:1000]
    with pytest.raises(DeviceTreeError, match=r"FDT_ERR_TRUNCATED; 1000 bytes, header 'd00dfeed"):
        DeviceTree.from_dtb(blob, source="short.dtb")
    with pytest.raises(ConfigError, match=r"FDT_ERR_TRUNCATED; 1000 bytes"):
        parse_reserved_memory(blob)


@pytest.mark.parametrize("magic", [b"\x00\x00\x00\x00", b"\xd0\x0d\xfe\xee", b"\xed\xfe\x0d\xd0"])
def test_dtb_wrong_magic(boards: dict[str, bytes], magic: bytes) -> None:
    blob = magic + boards["camsoc"][4:]
    with pytest.raises(DeviceTreeError, match="FDT_ERR_BADMAGIC"):
        DeviceTree.from_dtb(blob)
    with pytest.raises(ConfigError, match="FDT_ERR_BADMAGIC"):
        parse_reserved_memory(blob)


#: header words after the magic: totalsize, off_dt_struct, off_dt_strings, off_mem_rsvmap,
#: version, last_comp_version, boot_cpuid_phys, size_dt_strings, size_dt_struct
HEADER_FIELDS = st.integers(1, 9)
HEADER_VALUES = st.sampled_from(
    (0, 1, 3, 4, 0x28, 0x38, 0x40, 16, 17, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFF8)
) | st.integers(0, 0xFFFFFFFF) | st.integers(0, 4096)


@_fuzz(300)
@given(BOARD, st.lists(st.tuples(HEADER_FIELDS, HEADER_VALUES), min_size=1, max_size=3))
def test_dtb_corrupted_header(boards: dict[str, bytes], name: str,
                              fields: list[tuple[int, int]]) -> None:
    blob = bytearray(boards[name])
    for index, value in fields:
        struct.pack_into(">I", blob, 4 * index, value)
    tree = consume_dtb(bytes(blob))
    if tree is not None:
        assert DeviceTree.from_dtb(tree.to_dtb()).to_dtb() == tree.to_dtb()


@_fuzz(400)
@given(BOARD, BYTE_EDITS)
def test_dtb_byte_flips(boards: dict[str, bytes], name: str,
                        edits: list[tuple[int, int]]) -> None:
    with within(10):
        tree = consume_dtb(mutate(boards[name], edits))
    event("loaded" if tree is not None else "refused")


def _replace_once(blob: bytes, old: bytes, new: bytes) -> bytes:
    assert blob.count(old) >= 1
    return blob.replace(old, new, 1)


def test_dtb_property_name_not_utf8(boards: dict[str, bytes]) -> None:
    """Regression: a non-UTF-8 property name escaped as SystemError from pylibfdt."""
    blob = _replace_once(boards["virt"], b"\0compatible\0", b"\0compatib\xffe\0")
    with pytest.raises(DeviceTreeError, match="not UTF-8 text"):
        DeviceTree.from_dtb(blob)


def test_dtb_node_name_not_utf8(boards: dict[str, bytes]) -> None:
    """Regression: a non-UTF-8 node name loaded (as surrogates) and broke ``to_dtb``
    with a TypeError."""
    blob = _replace_once(boards["camsoc"], b"chosen\0", b"chos\xffn\0")
    with pytest.raises(DeviceTreeError, match=r"/: a child node name is not UTF-8"):
        DeviceTree.from_dtb(blob)


def test_dtb_pool_name_not_utf8() -> None:
    """Regression: the CMA side named a region after a non-UTF-8 node, as surrogates."""
    need_tool("dtc")
    blob = DeviceTree.from_dts("""/dts-v1/;
/ { #address-cells = <1>; #size-cells = <1>;
    reserved-memory { #address-cells = <1>; #size-cells = <1>; ranges;
        pool@48000000 { compatible = "shared-dma-pool"; reusable;
                        reg = <0x48000000 0x400000>; }; }; };
""").to_dtb()
    assert parse_reserved_memory(blob).regions[0].name == "pool@48000000"
    with pytest.raises(ConfigError, match=r"'/reserved-memory/po\\udcffl@48000000' is not UTF-8"):
        parse_reserved_memory(blob.replace(b"pool@", b"po\xffl@", 1))


def _nested_dts(depth: int) -> str:
    return "/dts-v1/;\n/ {" + " n {" * depth + " x = <1>;" + " };" * depth + " };\n"


def test_dtb_nesting_depth_is_limited() -> None:
    """Regression: the reader recursed once per level, so a deep blob hit RecursionError."""
    need_tool("dtc")
    assert DeviceTree.from_dts(_nested_dts(MAX_DEPTH)).find("/n" * MAX_DEPTH) is not None
    with pytest.raises(DeviceTreeError, match=f"nested deeper than {MAX_DEPTH} levels"):
        DeviceTree.from_dts(_nested_dts(2000))


# =========================================================================== DTS


CELLS = st.none() | st.sampled_from((0, 1, 2, 3, 4, 5, 6, 0xFFFFFFFF))
CELL_LIST = st.none() | st.lists(
    st.sampled_from((0, 1, 0x1000, 0x4000_0000, 0xFFFF_FFFF)) | st.integers(0, 0xFFFF_FFFF),
    max_size=9,
)


def _prop(name: str, cells: list[int] | None) -> str:
    if cells is None:
        return ""
    if not cells:
        return f"{name};"
    return f"{name} = <{' '.join(f'{c:#x}' for c in cells)}>;"


def _cells_prop(name: str, value: int | None) -> str:
    return "" if value is None else f"{name} = <{value:#x}>;"


@_fuzz(200)
@given(CELLS, CELLS, CELLS, CELLS, CELL_LIST, CELL_LIST, CELL_LIST, CELL_LIST, st.booleans())
def test_dts_cells_and_ranges(root_ac: int | None, root_sc: int | None,
                              bus_ac: int | None, bus_sc: int | None,
                              memory_reg: list[int] | None, ranges: list[int] | None,
                              dma_ranges: list[int] | None, reg: list[int] | None,
                              coherent: bool) -> None:
    """``reg``, ``ranges`` and ``dma-ranges`` of any length under any cell counts."""
    need_tool("dtc")
    dts = f"""/dts-v1/;
/ {{
    {_cells_prop("#address-cells", root_ac)} {_cells_prop("#size-cells", root_sc)}
    memory@40000000 {{ device_type = "memory"; {_prop("reg", memory_reg)} }};
    bus@10000000 {{
        compatible = "simple-bus";
        {_cells_prop("#address-cells", bus_ac)} {_cells_prop("#size-cells", bus_sc)}
        {_prop("ranges", ranges)} {_prop("dma-ranges", dma_ranges)}
        dev@0 {{ {_prop("reg", reg)} {"dma-coherent;" if coherent else ""} }};
    }};
}};
"""
    try:
        tree = DeviceTree.from_dts(dts)
    except DeviceTreeError:
        event("refused by dtc")
        return
    event("loaded")
    with within(10):
        consume_tree(tree)
        consume_dtb_cma(tree.to_dtb())


REFS = st.lists(st.sampled_from(("&pool", "&fw", "&dev", "&rmem", "0x77", "0", "0xffffffff")),
                max_size=3)


#: biased towards what a valid tree has, so that both refusals and placements are reached
def _mostly(usual: Any, odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``usual`` three times in four, else something from ``odd``."""
    return st.one_of(st.just(usual), st.just(usual), st.just(usual), odd)


RM_CELLS = _mostly((None, None, 1, 1), st.tuples(CELLS, CELLS, CELLS, CELLS))
POOL_REG = _mostly([0x4800_0000, 0x40_0000], CELL_LIST)
GOOD_REFS = _mostly([], REFS) | st.just(["&pool"])
OPTIONAL_CELLS = _mostly(None, CELL_LIST)


@_fuzz(200)
@given(RM_CELLS, _mostly([], CELL_LIST), POOL_REG,
       OPTIONAL_CELLS, OPTIONAL_CELLS, GOOD_REFS, GOOD_REFS,
       _mostly("reusable;", st.sampled_from(("", "no-map;", "reusable; no-map;",
                                              'status = "off";'))),
       st.booleans())
def test_dts_reserved_memory(cells: tuple[int | None, int | None, int | None, int | None],
                             rm_ranges: list[int] | None, pool_reg: list[int] | None,
                             pool_size: list[int] | None, alignment: list[int] | None,
                             pool_refs: list[str], dev_refs: list[str], flags: str,
                             default: bool) -> None:
    """``/reserved-memory`` with any cells, sizes and ``memory-region`` links (loops and
    dangling phandles included) through the CMA side's readers and the core."""
    need_tool("dtc")
    root_ac, root_sc, rm_ac, rm_sc = cells

    def refs(items: list[str]) -> str:
        return f"memory-region = <{' '.join(items)}>;" if items else ""

    dts = f"""/dts-v1/;
/ {{
    {_cells_prop("#address-cells", root_ac)} {_cells_prop("#size-cells", root_sc)}
    memory@40000000 {{ device_type = "memory"; reg = <0x40000000 0x20000000>; }};
    rmem: reserved-memory {{
        {_cells_prop("#address-cells", rm_ac)} {_cells_prop("#size-cells", rm_sc)}
        {_prop("ranges", rm_ranges)}
        pool: pool@48000000 {{
            compatible = "shared-dma-pool"; {flags} {"linux,cma-default;" if default else ""}
            {_prop("reg", pool_reg)} {_prop("size", pool_size)} {_prop("alignment", alignment)}
            {refs(pool_refs)}
        }};
        fw: fw@4f000000 {{ reg = <0x4f000000 0x100000>; no-map; }};
    }};
    dev: camera@10000000 {{ {refs(dev_refs)} }};
}};
"""
    blob = DeviceTree.from_dts(dts).to_dtb()
    with within(10):
        consume_dtb(blob)
        try:
            ContiguousMemory.from_dtb(blob, devices=["camera"])
        except CMAError:
            event("refused by the CMA core")
        else:
            event("placed by the CMA core")


@_fuzz(150)
@given(st.lists(_MUTATION, min_size=1, max_size=3))
def test_dts_text_mutations(ops: list[tuple[str, int, int, str]]) -> None:
    """Mutated board source: dtc refuses it (DeviceTreeError) or the tree is read."""
    need_tool("dtc")
    source = (Path(__file__).resolve().parents[2] / "emu" / "boards" / "virt.dts").read_text()
    body = source[source.index("/dts-v1/"):]
    tokens = [(op, where * 17, length, tok) for op, where, length, tok in ops]
    try:
        tree = DeviceTree.from_dts(_mutated(body, tokens))
    except DeviceTreeError:
        event("refused by dtc")
        return
    event("loaded")
    with within(10):
        consume_tree(tree)


LOOPS = """/dts-v1/;
/ {
    #address-cells = <1>; #size-cells = <1>;
    a: a { #interconnect-cells = <0>; interconnects = <&b>; interconnect-names = "dma-mem";
           dma-ranges; };
    b: b { #interconnect-cells = <0>; interconnects = <&a>; interconnect-names = "dma-mem";
           dma-ranges; };
    self: self { #interconnect-cells = <0>; interconnects = <&self>;
                 interconnect-names = "dma-mem"; };
    dev { interconnects = <&a>; interconnect-names = "dma-mem"; };
};
"""


@pytest.mark.parametrize("path", ["/dev", "/a", "/self"])
def test_dts_interconnect_loop(path: str) -> None:
    """Regression: DMA parents that loop through ``interconnects`` made the walk endless."""
    need_tool("dtc")
    tree = DeviceTree.from_dts(LOOPS)
    with within(5):
        with pytest.raises(DeviceTreeError, match=r"DMA parents .* loop back to /"):
            dma_map_for(tree, path)
        with pytest.raises(DeviceTreeError, match="loop back"):
            is_dma_coherent(tree, tree.node(path))


@pytest.mark.parametrize(("cells", "message"), [
    (5, "#address-cells must be at most 4, not 5"),
    (0xFFFFFFFF, "#address-cells must be at most 4, not 4294967295"),
    (0, "reg needs an #address-cells of 1 to 4 in the parent, not 0"),
])
def test_dts_address_cells_out_of_range(cells: int, message: str) -> None:
    """Regression: 5 address cells gave 160-bit addresses and 0 gave every node address 0."""
    need_tool("dtc")
    tree = DeviceTree.from_dts(f"""/dts-v1/;
/ {{ #address-cells = <1>; #size-cells = <1>;
    bus {{ #address-cells = <{cells:#x}>; #size-cells = <1>; ranges;
          dev@0 {{ reg = <1 2 3 4 5 6 7 8 9 10 11 12>; }}; }}; }};
""")
    with pytest.raises(DeviceTreeError, match=message):
        _ = tree.node("/bus/dev@0").reg


def test_dts_memory_region_loops_and_dangling() -> None:
    """A pool naming itself is a plain link; a device naming a non-pool or nothing fails."""
    need_tool("dtc")
    base = """/dts-v1/;
/ { #address-cells = <1>; #size-cells = <1>;
    memory@40000000 { device_type = "memory"; reg = <0x40000000 0x10000000>; };
    reserved-memory { #address-cells = <1>; #size-cells = <1>; ranges;
        pool: pool@48000000 { compatible = "shared-dma-pool"; reusable;
                              reg = <0x48000000 0x400000>; memory-region = <&pool>; }; };
    dev: dev { memory-region = <%s>; }; };
"""
    config = parse_reserved_memory(DeviceTree.from_dts(base % "&pool").to_dtb())
    assert dict(config.links) == {"/reserved-memory/pool@48000000": ("pool@48000000",),
                                  "/dev": ("pool@48000000",)}
    with pytest.raises(ConfigError, match="phandle 0x77 points at no node"):
        parse_reserved_memory(DeviceTree.from_dts(base % "0x77").to_dtb())
    with pytest.raises(ConfigError, match="not a child of /reserved-memory"):
        parse_reserved_memory(DeviceTree.from_dts(base % "&dev").to_dtb())


# =========================================================================== ELF


def test_elf_truncated_at_every_length() -> None:
    seed = elf_seed()
    assert ElfImage(seed).entry == 0x4020_0000
    for length in range(len(seed)):
        with pytest.raises(ImageError):
            ElfImage(seed[:length], "cut.elf")


def test_real_elf_truncated() -> None:
    data = SELFTEST_ELF.read_bytes()
    lengths = [*range(0x200), *range(0x200, len(data), 997)]
    for length in lengths:
        consume_elf(data[:length])
    with pytest.raises(ImageError, match="run past the end of the file"):
        ElfImage(data[:0x1000])


@_fuzz(200)
@given(BYTE_EDITS, st.sampled_from(("header", "anywhere", "sections")))
def test_real_elf_byte_flips(edits: list[tuple[int, int]], where: str) -> None:
    data = SELFTEST_ELF.read_bytes()
    shoff = struct.unpack_from("<I", data, 0x20)[0]
    if where == "header":
        edits = [(pos % 0x134, value) for pos, value in edits]
    elif where == "sections":
        edits = [(shoff + pos % (len(data) - shoff), value) for pos, value in edits]
    consume_elf(mutate(data, edits))


SEGMENT = st.tuples(
    st.sampled_from((0x4020_0000, 0x4021_0000, 0x4022_0000))
    | st.sampled_from((0, 0x4020_0100, 0xFFFF_F000)) | st.integers(0, 0xFFFF_FFFF),
    st.binary(max_size=24),
    st.integers(24, 0x2000) | st.sampled_from((0, 1, 0x100, 0x1000, 0xFFFF_FFFF)),
)


@_fuzz(300)
@given(st.lists(SEGMENT, min_size=1, max_size=3),
       st.none() | st.sampled_from((0x4020_0001, 0, 0xFFFF_FFFF)) | st.integers(0, 0xFFFF_FFFF),
       st.none() | st.lists(st.integers(0, 0x1000) | st.just(0xFFFF_FFFF), min_size=3,
                            max_size=3),
       st.none() | st.lists(st.integers(0, 64) | st.just(0xFFFF_FFFF), min_size=3, max_size=3))
def test_elf_segment_layouts(segments: list[tuple[int, bytes, int]], entry: int | None,
                             offsets: list[int] | None, filesz: list[int] | None) -> None:
    """Any PT_LOAD layout: what loads has disjoint segments inside 4 GiB and its entry in
    one of them; everything else is an ImageError. (No ``entry``: the first segment's.)"""
    segs = [(addr, addr, data, memsz) for addr, data, memsz in segments]
    blob = elf32(segs, segs[0][0] if entry is None else entry,
                 offsets=offsets[:len(segs)] if offsets else None,
                 filesz=filesz[:len(segs)] if filesz else None)
    image = consume_elf(blob)
    event("loaded" if image is not None else "refused")
    if image is None:
        return
    loaded = sorted(image.segments(), key=lambda s: s.address)
    for seg in loaded:
        assert len(seg.data) <= seg.size
        assert seg.end <= 1 << 32
    for first, second in itertools.pairwise(loaded):
        assert first.end <= second.address
    assert any(s.address <= image.entry & ~1 < s.end for s in loaded)


@pytest.mark.parametrize(("segments", "entry", "filesz", "message"), [
    ([(0x4020_0000, 0x4020_0000, b"abcd", 2)], 0x4020_0000, None,
     "p_filesz 0x4 is larger than p_memsz 0x2"),
    ([(0x4020_0000, 0x4020_0000, b"abcd", 0x2000)], 0x4020_0000, [0x1000],
     r"file bytes \[0x54, 0x1054\) run past the end of the file"),
    ([(0xFFFF_F000, 0xFFFF_F000, b"", 0x2000)], 0xFFFF_F000, None,
     "p_memsz 0x2000 runs past the 32-bit address space"),
    ([(0x4020_0000, 0x4020_0000, b"", 0x100), (0x4020_0080, 0x4020_0080, b"", 0x100)],
     0x4020_0000, None, r"\[0x40200000, 0x40200100\) and \[0x40200080, 0x40200180\) overlap"),
    ([(0x4020_0000, 0x4020_0000, b"", 0x100)], 0x4030_0000, None,
     "entry point 0x40300000 lies in no loadable"),
])
def test_elf_bad_layouts(segments: list[tuple[int, int, bytes, int]], entry: int,
                         filesz: list[int] | None, message: str) -> None:
    """Regressions: each of these loaded before (a file size above the memory size later
    broke ``Machine.load_segments`` with ValueError; overlaps silently overwrote)."""
    with pytest.raises(ImageError, match=message):
        ElfImage(elf32(segments, entry, filesz=filesz), "bad.elf")


@pytest.mark.emulator
@pytest.mark.parametrize(("address", "memsz"), [(0x3000_0000, 0x100), (0x4000_0000, 0xBFFF_F000)])
def test_elf_outside_ram_refused_by_the_machine(tmp_path: Path, address: int, memsz: int) -> None:
    from emu.machine import Machine

    path = tmp_path / "far.elf"
    path.write_bytes(elf32([(address, address, b"\0" * 8, memsz)], address))
    with pytest.raises(ImageError, match="is not inside RAM or flash"):
        Machine("virt").load_elf(path)


# =========================================================================== zImage


@pytest.mark.parametrize("kind", ["xz", "gzip"])
def test_zimage_truncated_at_every_length(kind: str) -> None:
    seed = zimage_seed(kind)
    assert ZImage(seed).decompress() == bytes(range(256)) * 2
    for length in range(len(seed)):
        consume_zimage(seed[:length])
    with pytest.raises(ImageError, match="no zImage magic"):
        ZImage(seed[:0x2F])


@_fuzz(300)
@given(st.sampled_from(("xz", "gzip")), BYTE_EDITS)
def test_zimage_byte_flips(kind: str, edits: list[tuple[int, int]]) -> None:
    consume_zimage(mutate(zimage_seed(kind), edits))


@_fuzz(200)
@given(st.lists(st.tuples(st.sampled_from((0x28, 0x2C, 0x34, 0x38, 0x40, 0x44, 0x50)),
                          st.sampled_from((0, 5, 0x45454545, 0x5A534C4B, 0xFFFFFFFF,
                                           0xFFFFFFEC)) | st.integers(0, 0x200)),
                min_size=1, max_size=4))
def test_zimage_header_words(words: list[tuple[int, int]]) -> None:
    """Start/end, the tag table pointer and the KLSZ entry with any values."""
    blob = bytearray(zimage_seed())
    for offset, value in words:
        struct.pack_into("<I", blob, offset, value)
    consume_zimage(bytes(blob))
    assert isinstance(ZImage(bytes(blob)).text_offset(), int)


# =========================================================================== initramfs


@pytest.mark.parametrize("compressed", [False, True])
def test_newc_truncated_at_every_length(compressed: bool) -> None:
    seed = newc_gzip_seed() if compressed else newc_seed()
    whole = read_newc(seed)
    assert [e.path for e in whole] == ["bin", "bin/sh", "dev", "dev/console", "init"]
    for length in range(len(seed)):
        try:
            entries = read_newc(seed[:length])
        except ImageError:
            continue
        assert entries == whole, length  # only the trailer's padding may be cut


@_fuzz(400)
@given(st.booleans(), BYTE_EDITS)
def test_newc_byte_flips(compressed: bool, edits: list[tuple[int, int]]) -> None:
    consume_newc(mutate(newc_gzip_seed() if compressed else newc_seed(), edits))


@_fuzz(200)
@given(st.integers(0, 5), st.integers(0, 12),
       st.text(alphabet="0123456789abcdefABCDEF-+_ x\t", min_size=8, max_size=8))
def test_newc_header_fields(member: int, field: int, value: str) -> None:
    """Any 8 characters in any header field of any member."""
    data = bytearray(newc_seed())
    starts = [i for i in range(len(data)) if data[i:i + 6] == b"070701"]
    at = starts[member % len(starts)] + 6 + 8 * field
    data[at:at + 8] = value.encode()
    with within(10):
        consume_newc(bytes(data))


@pytest.mark.parametrize(("field", "value", "message"), [
    (6, b"-0000001", "field b'-0000001' is not 8 hex digits"),
    (11, b"0000_00F", "field b'0000_00F' is not 8 hex digits"),
    (11, b" 000000F", "is not 8 hex digits"),
    (11, b"0000FFFF", "archive ends inside its name"),
])
def test_newc_bad_header_field(field: int, value: bytes, message: str) -> None:
    """Regressions: ``int(x, 16)`` accepted signs, blanks and underscores, so a negative
    size could walk the reader backwards; a name past the end was silently cut."""
    data = bytearray(newc_seed())
    data[6 + 8 * field:14 + 8 * field] = value
    with pytest.raises(ImageError, match=message):
        read_newc(bytes(data))


def test_newc_name_not_utf8() -> None:
    """Regression: a non-UTF-8 member name escaped as UnicodeDecodeError."""
    data = newc_seed().replace(b"bin\0", b"b\xffn\0", 1)
    with pytest.raises(ImageError, match=r"name b'b\\xffn\\x00' is not UTF-8"):
        read_newc(data)


@pytest.mark.parametrize("damage", ["crc", "truncated", "method"])
def test_newc_damaged_gzip(damage: str) -> None:
    """Regression: BadGzipFile, EOFError and zlib.error escaped from a damaged gzip."""
    data = bytearray(newc_gzip_seed())
    if damage == "crc":
        data[-8] ^= 0xFF
    elif damage == "method":
        data[2] = 7
    else:
        data = data[:len(data) // 2]
    with pytest.raises(ImageError, match="damaged gzip stream"):
        read_newc(bytes(data))
    assert read_newc(gzip.compress(newc_seed()))


# =========================================================================== scenario files


CMA_DOC: dict[str, Any] = {
    "schema": 1, "kind": "cma", "cma": "cma=c=8M cma_map=*=c",
    "ram": [{"start": 0x4000_0000, "size": "128M"}], "devices": [{"name": "camera"}],
}
MACHINE_DOC: dict[str, Any] = {
    "schema": 1, "board": "camsoc", "cma": "cma=cam=16M cma_map=camera=cam",
    "images": {"elf": str(SELFTEST_ELF)}, "limits": {"max_instructions": 1000},
}
KEYS = st.sampled_from((
    "schema", "kind", "name", "cma", "cma_defaults", "board", "cpu", "append", "page_offset",
    "dma_policy", "images", "console", "limits", "expect", "outputs", "ram", "devices",
    "page_size", "workload", "start", "size", "bus", "dma", "script", "send", "until",
    "enter", "max_instructions", "max_seconds", "stop_reason", "exit_status", "regions",
    "min_success_rate", "max_fragmentation", "seed", "allocs", "json", "keep_frames", "elf",
    "kernel", "initrd", "host_decompress", "base", "unknown",
))
SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(-(1 << 70), 1 << 70)
           | st.floats() | st.text(max_size=8)
           | st.sampled_from(("64M", "0x1000", "none", "cma", "machine", "camsoc", "poweroff",
                              "phys-for-bus", "-1", "16E", "18446744073709551616")))
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=6,
)


def _check_scenario(sc: Scenario) -> None:
    """What a loaded scenario promises its runner."""
    assert sc.kind in ("machine", "cma")
    for number in (sc.max_seconds, sc.expect.min_success_rate, sc.expect.max_fragmentation):
        assert number is None or (math.isfinite(number) and number >= 0)
    if sc.kind == "cma":
        assert sc.page_size > 0
        assert sc.page_size & (sc.page_size - 1) == 0
        assert all(0 <= start < 1 << 64 and 0 < size < 1 << 64 for start, size in sc.ram)


@_fuzz(400)
@given(st.dictionaries(KEYS, VALUES, max_size=3), st.sampled_from(("none", "cma", "machine")))
def test_scenario_random_documents(doc: dict[str, Any], base: str) -> None:
    merged = {**({"cma": CMA_DOC, "machine": MACHINE_DOC}.get(base) or {}), **doc}
    try:
        sc = scenario_from_dict(merged, base_dir="/nonexistent")
    except ScenarioError:
        event("refused")
        return
    event("loaded")
    _check_scenario(sc)


@pytest.fixture(scope="module")
def scenario_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scenarios")


CMA_TOML = """\
schema = 1
kind = "cma"
cma = "cma=cam=16M;disp=8M cma_map=camera=cam;clcd=disp"
page_size = 4096

[[ram]]
start = 0x40000000
size = "512M"

[[devices]]
name = "camera"
[[devices.dma]]
cpu = 0x40000000
bus = 0
size = "256M"

[[devices]]
name = "clcd"

[workload]
seed = 7
allocs = 100

[expect]
min_success_rate = 0.5
max_fragmentation = 0.9
[expect.regions]
cam = { base = 0x5f000000, size = "16M" }
"""
TOML_TOKENS = ("=", "[", "]", "[[", "]]", '"', "'", "\n", ",", "{", "}", ".", "nan", "inf",
               "-1", "0x", "1e999", "true", "99999999999999999999999", "page_size = 0\n",
               "kind", "\xff", "#")


@_fuzz(300)
@given(st.lists(st.tuples(st.sampled_from(("insert", "delete", "replace", "duplicate")),
                          st.integers(0, 2000), st.integers(1, 12),
                          st.sampled_from(TOML_TOKENS) | st.characters()),
                min_size=1, max_size=4))
def test_scenario_toml_mutations(scenario_dir: Path,
                                 ops: list[tuple[str, int, int, str]]) -> None:
    path = scenario_dir / "mutated.toml"
    path.write_text(_mutated(CMA_TOML, ops), encoding="utf-8", errors="surrogateescape")
    try:
        sc = load_scenario(path)
    except ScenarioError:
        event("refused")
        return
    event("loaded")
    _check_scenario(sc)


@_fuzz(200)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_scenario_random_files(scenario_dir: Path, data: bytes) -> None:
    path = scenario_dir / "random.toml"
    path.write_bytes(data)
    with pytest.raises(ScenarioError):
        load_scenario(path)  # no schema = 1 in a random file


def test_scenario_example_loads(scenario_dir: Path) -> None:
    path = scenario_dir / "example.toml"
    path.write_text(CMA_TOML)
    sc = load_scenario(path)
    assert sc.page_size == 4096
    assert sc.devices[0].windows == ((0x4000_0000, 0, 0x1000_0000),)


@pytest.mark.parametrize(("change", "message"), [
    ({"expect": {"min_success_rate": math.nan}}, "min_success_rate': must be a finite"),
    ({"expect": {"max_fragmentation": math.inf}}, "max_fragmentation': must be a finite"),
    ({"expect": {"max_fragmentation": 5}}, "max_fragmentation': must be between 0 and 1, not 5"),
    ({"page_size": 0}, "'page_size': must be a power of two, not 0"),
    ({"page_size": 3}, "'page_size': must be a power of two, not 3"),
    ({"ram": [{"start": 1 << 80, "size": 1}]}, r"'ram\[0\].start': must fit in 64 bits"),
])
def test_scenario_absurd_numbers(change: dict[str, Any], message: str) -> None:
    """Regressions: NaN and infinite limits, fragmentation above 1, a page size of 0
    (silently 4096) or 3, and addresses beyond 64 bits were all accepted."""
    with pytest.raises(ScenarioError, match=message):
        scenario_from_dict({**CMA_DOC, **change})


def test_scenario_nan_time_limit(scenario_dir: Path) -> None:
    """Regression: ``max_seconds = nan`` loaded, and a NaN limit never expires."""
    path = scenario_dir / "nan.toml"
    path.write_text(f'schema = 1\nboard = "camsoc"\n[images]\nelf = "{SELFTEST_ELF}"\n'
                    "[limits]\nmax_seconds = nan\n")
    with pytest.raises(ScenarioError, match=r"limits.max_seconds': must be a finite"):
        load_scenario(path)


def test_allowed_errors_are_the_package_bases() -> None:
    """The contract these tests enforce: the two error bases are distinct families."""
    assert issubclass(ScenarioError, EmuError)
    assert issubclass(ConfigError, CMAError)
    assert not issubclass(EmuError, CMAError)
    assert not issubclass(CMAError, EmuError)


# =========================================================================== atheris harness


@pytest.mark.parametrize("target", ["cmdline", "dtb"])
def test_atheris_harness_runs(tmp_path: Path, boards: dict[str, bytes], target: str) -> None:
    """``scripts/fuzz`` works: a short libFuzzer run from the seeds finds nothing."""
    pytest.importorskip("atheris")
    import subprocess
    import sys

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    seeds = list(boards.values()) if target == "dtb" else [s.encode() for s in CMDLINE_SEEDS]
    for index, seed in enumerate(seeds):
        (corpus / f"seed-{index}").write_bytes(seed)
    done = subprocess.run(
        [sys.executable, "-m", "tests.reliability.atheris_targets", target, "-runs=300",
         f"-artifact_prefix={tmp_path}/", str(corpus)],
        cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Done 300 runs" in done.stderr
    assert not list(tmp_path.glob("crash-*"))

