"""Seeds and consumers shared by the host-input fuzz tests and the atheris harnesses.

Seeds are small valid inputs (board DTBs, a synthetic ELF, zImage and newc archive);
consumers push one input through every reader of its class, so a fuzz case only has
to say "this input" and the consumer says which exceptions are allowed: the package's
own error types and nothing else.
"""

from __future__ import annotations

import contextlib
import gzip
import lzma
import struct
from collections.abc import Callable, Iterable
from pathlib import Path

from cma.cmdline import (
    format_map,
    format_regions,
    parse_cmdline,
    parse_map,
    parse_modern,
    parse_regions,
    split_cmdline,
)
from cma.devicetree import parse_carveouts, parse_memory, parse_reserved_memory
from cma.errors import CMAError
from cma.memparse import memparse
from cma.patterns import select_regions
from emu.dt.address import cpu_reg_windows
from emu.dt.dmamap import dma_map_for
from emu.dt.tree import DeviceTree, Node, run_dtc
from emu.errors import EmuError
from emu.loaders.elf import ElfImage
from emu.loaders.initramfs import char_device, read_newc, regular, symlink, write_newc
from emu.loaders.zimage import KLSZ_TAG, TABLE_MAGIC, ZIMAGE_MAGIC, ZImage

ROOT = Path(__file__).resolve().parents[2]
BOARDS = ROOT / "emu" / "boards"
BOARD_NAMES = ("virt", "camsoc", "camsoc-alias")
SELFTEST_ELF = ROOT / "firmware" / "prebuilt" / "selftest.elf"

#: valid command lines of both dialects, the seeds of the grammar-aware mutations
CMDLINE_SEEDS = (
    "cma=cam=16M;disp=8M cma_map=camera=cam;clcd=disp",
    "console=ttyAMA0 cma=r1=64M@0x50000000/1M:bf(order=2),r2=4M: cma_map=foo/quaz=r2;/*=r1,r2",
    "cma=64M@0x40000000-0x60000000",
    "cma=0",
    'cma="a=4K;b=8K@0200000" cma-map="*=a" -- cma=oops',
    "cma=c=8M cma_map=camera/,clcd/fb?=c;*=c",
    "cma=32M@0x48000000",
)
#: characters and tokens the mutations insert: the grammar's punctuation and numbers
CMDLINE_TOKENS = (
    "cma=", "cma_map=", "cma-map=", "=", ";", ",", "@", "/", "-", ":", "(", ")", "*", "?",
    '"', " ", "\t", "0", "0x", "0x40000000", "16M", "4K", "1G", "16E", "99999999999999999999",
    "08", "name", "_", "--", "\0", "é", "\u202e",
)



def newc_seed() -> bytes:
    """A small newc archive (file, symlink, device node, implied directories)."""
    return write_newc([
        regular("init", b"#!/bin/sh\necho ready\n", 0o755),
        symlink("bin/sh", "busybox"),
        char_device("dev/console", 5, 1),
    ])


def newc_gzip_seed() -> bytes:
    return gzip.compress(newc_seed(), compresslevel=9, mtime=0)


def zimage_seed(kind: str = "xz", payload: bytes = bytes(range(256)) * 2) -> bytes:
    """A zImage-shaped file: magic, start/end, a KLSZ tag table and an XZ or gzip payload."""
    head = bytearray(0x40)
    struct.pack_into("<III", head, 0x24, ZIMAGE_MAGIC, 0, 0x1000)
    struct.pack_into("<II", head, 0x34, TABLE_MAGIC, 0x40)
    tag = struct.pack("<5I", 5, KLSZ_TAG, 0, 0, 0x208000)
    if kind == "xz":
        stream = lzma.compress(payload, format=lzma.FORMAT_XZ)
    else:
        stream = gzip.compress(payload, mtime=0)
    return bytes(head) + tag + stream


PT_LOAD = 1
ELF_HEADER = 52
PHDR_SIZE = 32


def elf32(
    segments: Iterable[tuple[int, int, bytes, int]],
    entry: int,
    *,
    machine: int = 40,
    offsets: Iterable[int] | None = None,
    filesz: Iterable[int] | None = None,
) -> bytes:
    """A little-endian ELF32 executable with one PT_LOAD per ``(vaddr, paddr, data, memsz)``.

    ``offsets`` and ``filesz`` override the program headers' ``p_offset`` and
    ``p_filesz`` (by default the data follows the headers and ``p_filesz`` is its
    length), so damaged headers can be written on purpose.
    """
    segs = list(segments)
    data_at = ELF_HEADER + PHDR_SIZE * len(segs)
    ident = b"\x7fELF" + bytes([1, 1, 1]) + bytes(9)
    header = ident + struct.pack(
        "<HHIIIIIHHHHHH", 2, machine, 1, entry, ELF_HEADER, 0, 0x05000200,
        ELF_HEADER, PHDR_SIZE, len(segs), 40, 0, 0,
    )
    own_offsets = []
    pos = data_at
    for _, _, data, _ in segs:
        own_offsets.append(pos)
        pos += len(data)
    offs = list(offsets) if offsets is not None else own_offsets
    sizes = list(filesz) if filesz is not None else [len(s[2]) for s in segs]
    phdrs = b"".join(
        struct.pack("<8I", PT_LOAD, off, vaddr, paddr, size, memsz, 7, 4)
        for (vaddr, paddr, _, memsz), off, size in zip(segs, offs, sizes, strict=True)
    )
    return header + phdrs + b"".join(s[2] for s in segs)


def elf_seed() -> bytes:
    """Two segments in RAM (text with its entry, and data with bss), 300 bytes in all."""
    return elf32(
        [(0x4020_0000, 0x4020_0000, b"\x00\xf0\x20\xe3" * 40, 0xA0),
         (0x4020_1000, 0x4020_1000, b"\x11" * 64, 0x200)],
        entry=0x4020_0000,
    )


def compile_boards() -> dict[str, bytes]:
    """The DTBs of the shipped boards, compiled with dtc."""
    out = {}
    for name in BOARD_NAMES:
        path = BOARDS / f"{name}.dts"
        out[name] = run_dtc(["-I", "dts", "-O", "dtb", "-i", str(BOARDS), str(path)], None,
                            what=str(path))
    return out


def mutate(data: bytes, edits: Iterable[tuple[int, int]]) -> bytes:
    """``data`` with ``(position, byte)`` written, positions taken modulo the length."""
    out = bytearray(data)
    for pos, value in edits:
        if out:
            out[pos % len(out)] = value
    return bytes(out)


# --------------------------------------------------------------------------- consumers
# Each returns normally or raises the package's own error; anything else is a bug.


def consume_cmdline(text: str) -> None:
    """Every command-line reader on ``text``; successes are checked by a round trip."""
    readers: tuple[Callable[[str], object], ...] = (
        parse_cmdline, parse_modern, split_cmdline, memparse,
    )
    for read in readers:
        with contextlib.suppress(CMAError):
            read(text)
    try:
        regions = parse_regions(text)
    except CMAError:
        pass
    else:
        assert parse_regions(format_regions(regions)) == regions, text
    try:
        rules = parse_map(text)
    except CMAError:
        pass
    else:
        assert parse_map(format_map(rules)) == rules, text
        for device, kind in (("camera", None), ("camera", "fb"), (None, None), ("", "")):
            chosen = select_regions(rules, device, kind)
            assert chosen is None or any(chosen == rule.regions for rule in rules)


def consume_dtb_cma(blob: bytes) -> None:
    """The CMA side's three readers of a DTB."""
    readers: tuple[Callable[[bytes], object], ...] = (
        parse_reserved_memory, parse_carveouts, parse_memory,
    )
    for read in readers:
        with contextlib.suppress(CMAError):
            read(blob)


def consume_tree(tree: DeviceTree) -> None:
    """Every reader of the emulator side on a loaded tree, node by node."""
    for node in tree.iter_nodes():
        readers: tuple[Callable[[Node], object], ...] = (
            lambda n: n.reg,
            cpu_reg_windows,
            lambda n: dma_map_for(tree, n),
            lambda n: dma_map_for(tree, n, strict=True),
            lambda n: n.is_enabled,
            lambda n: n.compatible,
        )
        for read in readers:
            with contextlib.suppress(EmuError):
                read(node)
    for whole in (tree.memory_banks, tree.stdout_node, tree.aliases, tree.to_dtb):
        with contextlib.suppress(EmuError):
            whole()


def consume_dtb(blob: bytes) -> DeviceTree | None:
    """A DTB through both sides; the loaded tree (None when it was refused)."""
    consume_dtb_cma(blob)
    try:
        tree = DeviceTree.from_dtb(blob)
    except EmuError:
        return None
    consume_tree(tree)
    return tree


def consume_elf(data: bytes) -> ElfImage | None:
    try:
        image = ElfImage(data)
    except EmuError:
        return None
    image.symbolize(image.entry)
    return image


def consume_zimage(data: bytes) -> None:
    try:
        image = ZImage(data)
    except EmuError:
        return
    image.text_offset()
    image.compression()
    with contextlib.suppress(EmuError):
        image.decompress()


def consume_newc(data: bytes) -> None:
    with contextlib.suppress(EmuError):
        read_newc(data)
