"""A Linux initramfs built in pure Python: a ``newc`` cpio archive, optionally gzipped.

The kernel unpacks the archive given as initrd into its root file system
(Documentation/driver-api/early-userspace/buffer-format.rst). Each member is a
110-byte ASCII header (magic ``070701`` and thirteen 8-digit hex fields), the
NUL-terminated name padded to a multiple of four bytes, then the data padded the
same way; the archive ends with a member named ``TRAILER!!!``.

:func:`busybox_tree` lays out the smallest useful system: a static busybox,
symlinks for the applets a boot test needs, an ``/init`` script that mounts
proc, sysfs and devtmpfs, prints :data:`READY_MARKER` and starts a shell on the
console, and a ``/dev/console`` node so the kernel can open it before devtmpfs
is mounted. The output is deterministic: entries sorted by path, fixed
timestamps and inode numbers, gzip without a name or time stamp.
"""

from __future__ import annotations

import argparse
import gzip
import stat
import sys
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from emu.errors import ImageError

MAGIC = b"070701"
TRAILER = "TRAILER!!!"
HEADER_SIZE = 110
_HEX_DIGITS = frozenset(b"0123456789abcdefABCDEF")
#: printed by /init once the pseudo file systems are mounted
READY_MARKER = "initramfs: ready"
#: busybox applets linked into /bin (enough for the boot tests and a little poking around)
DEFAULT_APPLETS = (
    "cat", "cttyhack", "dmesg", "echo", "free", "grep", "head", "ls", "mkdir", "mount",
    "poweroff", "ps", "reboot", "setsid", "sh", "sleep", "sync", "tail", "umount", "uname",
)

INIT_SCRIPT = f"""#!/bin/sh
# Mount the pseudo file systems, say so, and hand the console to a shell.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
echo "{READY_MARKER}"
exec setsid cttyhack sh
"""


@dataclass(frozen=True)
class Entry:
    """One archive member: ``mode`` holds the file type bits as ``stat`` has them."""

    path: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)
    uid: int = 0
    gid: int = 0

    def __post_init__(self) -> None:
        if not self.path or self.path.startswith("/") or "\0" in self.path \
                or ".." in self.path.split("/"):
            raise ImageError(f"archive path must be relative without '..' or NUL, "
                             f"not {self.path!r}")
        if stat.S_IFMT(self.mode) == 0:
            raise ImageError(f"{self.path}: mode 0o{self.mode:o} has no file type bits")
        if self.data and not (stat.S_ISREG(self.mode) or stat.S_ISLNK(self.mode)):
            raise ImageError(f"{self.path}: only files and symlinks carry data")

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)


def directory(path: str, mode: int = 0o755) -> Entry:
    return Entry(path, stat.S_IFDIR | mode)


def regular(path: str, data: bytes, mode: int = 0o644) -> Entry:
    return Entry(path, stat.S_IFREG | mode, data)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, stat.S_IFLNK | 0o777, target.encode())


def char_device(path: str, major: int, minor: int, mode: int = 0o600) -> Entry:
    return Entry(path, stat.S_IFCHR | mode, rdev=(major, minor))


def _pad4(n: int) -> int:
    return (4 - n % 4) % 4


def _member(ino: int, mode: int, nlink: int, mtime: int, name: str, data: bytes,
            rdev: tuple[int, int] = (0, 0), uid: int = 0, gid: int = 0) -> bytes:
    raw_name = name.encode() + b"\0"
    fields = (ino, mode, uid, gid, nlink, mtime, len(data), 0, 0, rdev[0], rdev[1],
              len(raw_name), 0)
    header = MAGIC + b"".join(b"%08X" % f for f in fields)
    head = header + raw_name
    return head + bytes(_pad4(len(head))) + data + bytes(_pad4(len(data)))


def with_parents(entries: Iterable[Entry]) -> list[Entry]:
    """``entries`` plus a 0755 directory for every missing parent, sorted by path."""
    by_path: dict[str, Entry] = {}
    for e in entries:
        if e.path in by_path:
            raise ImageError(f"archive path {e.path!r} given twice")
        by_path[e.path] = e
    for path in list(by_path):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/".join(parts[:i])
            existing = by_path.get(parent)
            if existing is None:
                by_path[parent] = directory(parent)
            elif not existing.is_dir:
                raise ImageError(f"{path!r} lies under {parent!r}, which is not a directory")
    return [by_path[p] for p in sorted(by_path)]


def write_newc(entries: Iterable[Entry], mtime: int = 0) -> bytes:
    """The newc archive of ``entries`` (parents added, sorted), ending with the trailer.

    Inode numbers count from 1 in path order; every member gets ``mtime``.
    """
    out = bytearray()
    for ino, e in enumerate(with_parents(entries), start=1):
        out += _member(ino, e.mode, 2 if e.is_dir else 1, mtime, e.path, e.data, e.rdev,
                       e.uid, e.gid)
    out += _member(0, 0, 1, 0, TRAILER, b"")
    return bytes(out)


def read_newc(data: bytes) -> list[Entry]:
    """The members of a newc archive up to its trailer (gzip-compressed input accepted)."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
            raise ImageError(f"damaged gzip stream around the archive: {exc}") from None
    entries: list[Entry] = []
    pos = 0
    while True:
        header = data[pos:pos + HEADER_SIZE]
        if len(header) < HEADER_SIZE or header[:6] != MAGIC:
            raise ImageError(f"no newc header at offset 0x{pos:x} (found {header[:6]!r})")
        fields = [header[6 + 8 * i:14 + 8 * i] for i in range(13)]
        bad = next((raw for raw in fields if not set(raw) <= _HEX_DIGITS), None)
        if bad is not None:
            raise ImageError(f"bad newc header at offset 0x{pos:x}: field {bad!r} is not "
                             "8 hex digits")
        f = [int(raw, 16) for raw in fields]
        mode, uid, gid, filesize, rmajor, rminor, namesize = \
            f[1], f[2], f[3], f[6], f[9], f[10], f[11]
        name_at = pos + HEADER_SIZE
        raw_name = data[name_at:name_at + namesize]
        if len(raw_name) != namesize:
            raise ImageError(f"member at offset 0x{pos:x}: archive ends inside its name")
        try:
            name = raw_name.rstrip(b"\0").decode()
        except UnicodeDecodeError:
            raise ImageError(f"member at offset 0x{pos:x}: name {raw_name!r} is not "
                             "UTF-8 text") from None
        data_at = name_at + namesize + _pad4(HEADER_SIZE + namesize)
        body = data[data_at:data_at + filesize]
        if len(body) != filesize:
            raise ImageError(f"{name!r}: archive ends inside its data")
        pos = data_at + filesize + _pad4(filesize)
        if name == TRAILER:
            return entries
        entries.append(Entry(name, mode, body, (rmajor, rminor), uid, gid))


def busybox_tree(busybox: bytes, applets: Sequence[str] = DEFAULT_APPLETS,
                 init: str = INIT_SCRIPT) -> list[Entry]:
    """The members of a busybox initramfs (see the module docstring)."""
    if busybox[:4] != b"\x7fELF":
        raise ImageError("busybox must be an ELF executable (the static armhf build)")
    entries = [
        regular("bin/busybox", busybox, 0o755),
        regular("init", init.encode(), 0o755),
        char_device("dev/console", 5, 1),
        directory("proc"), directory("sys"), directory("tmp", 0o1777), directory("root", 0o700),
    ]
    entries += [symlink(f"bin/{name}", "busybox") for name in sorted(set(applets))
                if name != "busybox"]
    return entries


def build_initramfs(busybox_path: str | Path, out: str | Path,
                    applets: Sequence[str] = DEFAULT_APPLETS, compress: bool = True) -> bytes:
    """Write the busybox initramfs to ``out`` (gzipped unless ``compress`` is False)."""
    try:
        busybox = Path(busybox_path).read_bytes()
    except OSError as exc:
        raise ImageError(f"cannot read busybox {str(busybox_path)!r}: "
                         f"{exc.strerror or exc}") from exc
    archive = write_newc(busybox_tree(busybox, applets))
    if compress:
        archive = gzip.compress(archive, compresslevel=9, mtime=0)
    Path(out).write_bytes(archive)
    return archive


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m emu.loaders.initramfs BUSYBOX OUT``: build the initramfs."""
    p = argparse.ArgumentParser(prog="build-initramfs",
                                description="Build a busybox newc initramfs (gzip).")
    p.add_argument("busybox", help="static busybox executable (armhf)")
    p.add_argument("out", help="output file, e.g. .cache/images/initramfs.cpio.gz")
    p.add_argument("--applets", help="comma-separated applet list (default: a built-in set)")
    p.add_argument("--no-gzip", action="store_true", help="write the plain cpio archive")
    args = p.parse_args(argv)
    applets = tuple(a for a in args.applets.split(",") if a) if args.applets \
        else DEFAULT_APPLETS
    try:
        data = build_initramfs(args.busybox, args.out, applets, compress=not args.no_gzip)
    except ImageError as exc:
        print(f"build-initramfs: error: {exc}", file=sys.stderr)
        return 2
    print(f"build-initramfs: wrote {args.out} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
