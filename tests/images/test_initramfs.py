"""The pure-Python newc writer: byte layout, round trip, determinism, the busybox tree."""

from __future__ import annotations

import gzip
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.errors import ImageError
from emu.loaders.initramfs import (
    HEADER_SIZE,
    INIT_SCRIPT,
    READY_MARKER,
    Entry,
    build_initramfs,
    busybox_tree,
    char_device,
    directory,
    read_newc,
    regular,
    symlink,
    write_newc,
)
from tests.conftest import need_image, need_tool

FAKE_ELF = b"\x7fELF" + bytes(60)


def test_header_layout_matches_the_newc_format() -> None:
    data = write_newc([regular("a", b"xyz", 0o644)])
    assert data[:6] == b"070701"
    fields = [int(data[6 + 8 * i:14 + 8 * i], 16) for i in range(13)]
    ino, mode, _uid, _gid, nlink, mtime, size, *_dev, namesize, check = fields
    assert (ino, mode, nlink, mtime, size, namesize, check) == \
        (1, stat.S_IFREG | 0o644, 1, 0, 3, 2, 0)
    # header + "a\0" = 112 bytes: already 4-aligned, then the data padded to 4
    assert data[HEADER_SIZE:HEADER_SIZE + 2] == b"a\0"
    assert data[112:116] == b"xyz\0"
    assert b"TRAILER!!!\0" in data[116:]
    assert len(data) % 4 == 0


def test_parents_are_added_and_entries_sorted() -> None:
    entries = read_newc(write_newc([regular("usr/bin/x", b"1"), symlink("bin/sh", "busybox")]))
    assert [e.path for e in entries] == ["bin", "bin/sh", "usr", "usr/bin", "usr/bin/x"]
    assert all(e.is_dir for e in entries if e.path in ("bin", "usr", "usr/bin"))
    assert entries[1].data == b"busybox"
    assert stat.S_ISLNK(entries[1].mode)


def test_device_nodes_keep_their_numbers() -> None:
    (dev, console) = read_newc(write_newc([char_device("dev/console", 5, 1)]))
    assert dev.path == "dev"
    assert dev.is_dir
    assert stat.S_ISCHR(console.mode)
    assert console.rdev == (5, 1)


@pytest.mark.parametrize("bad", ["/abs", "a/../b", "", "nul\0"])
def test_bad_paths_are_refused(bad: str) -> None:
    with pytest.raises(ImageError, match="relative"):
        regular(bad, b"")


def test_duplicates_and_files_as_parents_are_refused() -> None:
    with pytest.raises(ImageError, match="given twice"):
        write_newc([regular("a", b""), regular("a", b"")])
    with pytest.raises(ImageError, match="not a directory"):
        write_newc([regular("a", b""), regular("a/b", b"")])


names = st.text(alphabet="abcdefgh_-.0123456789", min_size=1, max_size=12).filter(
    lambda s: s not in (".", ".."))


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.lists(names, min_size=1, max_size=3).map("/".join),
                       st.binary(max_size=300), max_size=8))
def test_round_trip_and_determinism(files: dict[str, bytes]) -> None:
    # keep only paths that are not also a parent of another path
    leaves = {p: d for p, d in files.items()
              if not any(q.startswith(p + "/") for q in files)}
    entries = [regular(p, d) for p, d in leaves.items()]
    archive = write_newc(entries)
    assert archive == write_newc(list(reversed(entries)))  # order of input does not matter
    back = {e.path: e.data for e in read_newc(archive) if not e.is_dir}
    assert back == leaves


def test_busybox_tree_has_init_console_and_applets() -> None:
    tree = {e.path: e for e in busybox_tree(FAKE_ELF, ("sh", "mount", "poweroff"))}
    assert tree["init"].data == INIT_SCRIPT.encode()
    assert tree["init"].mode & 0o111
    assert READY_MARKER in INIT_SCRIPT
    assert "devtmpfs" in INIT_SCRIPT
    assert tree["dev/console"].rdev == (5, 1)
    assert tree["bin/sh"].data == b"busybox"
    assert tree["bin/busybox"].data == FAKE_ELF
    with pytest.raises(ImageError, match="ELF"):
        busybox_tree(b"#!/bin/sh\n")


def test_build_is_deterministic_and_gzip_has_no_timestamp(tmp_path: Path) -> None:
    bb = tmp_path / "busybox"
    bb.write_bytes(FAKE_ELF)
    first = build_initramfs(bb, tmp_path / "a.cpio.gz")
    second = build_initramfs(bb, tmp_path / "b.cpio.gz")
    assert first == second == (tmp_path / "a.cpio.gz").read_bytes()
    assert first[4:8] == bytes(4)  # gzip MTIME field
    assert read_newc(gzip.decompress(first)) == read_newc(first)


def test_cpio_tool_lists_the_archive(tmp_path: Path) -> None:
    cpio = need_tool("cpio")
    archive = write_newc(busybox_tree(FAKE_ELF, ("sh",)))
    listing = subprocess.run([cpio, "-t", "--quiet"], input=archive, capture_output=True,
                             check=True).stdout.decode().split()
    assert listing == [e.path for e in read_newc(archive)]


@pytest.mark.images
def test_fetched_initramfs_holds_the_real_busybox() -> None:
    entries = {e.path: e for e in read_newc(need_image("initramfs.cpio.gz").read_bytes())}
    busybox = entries["bin/busybox"].data
    assert busybox[:4] == b"\x7fELF"
    assert busybox[18] == 40
    assert entries["init"].data.startswith(b"#!/bin/sh")


def test_entry_needs_a_file_type() -> None:
    with pytest.raises(ImageError, match="file type"):
        Entry("x", 0o644)
    with pytest.raises(ImageError, match="carry data"):
        Entry("d", stat.S_IFDIR | 0o755, b"x")
    assert directory("d").is_dir
