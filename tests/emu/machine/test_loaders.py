"""Loaders: ELF segments and symbols, zImage detection and host decompression, placement."""

from __future__ import annotations

import lzma
import struct
import zlib
from pathlib import Path

import pytest

from emu.errors import ImageError
from emu.loaders import ElfImage, RawImage, ZImage, identify
from emu.loaders.boot import place_dtb, place_initrd
from emu.loaders.zimage import ZIMAGE_MAGIC
from emu.machine import Machine
from tests.conftest import need_tool
from tests.emu.machine import assemble

RAM = (0x4000_0000, 0x0800_0000)

SRC = """
.syntax unified
.arm
.global _start
_start:
    nop
    nop
helper:
    nop
    bx lr
.thumb
.thumb_func
thumby:
    nop
    bx lr
"""


def _zimage(payload: bytes, compress: str = "xz") -> bytes:
    head = bytearray(0x40)
    struct.pack_into("<III", head, 0x24, ZIMAGE_MAGIC, 0, 0)
    if compress == "xz":
        stream = lzma.compress(payload, format=lzma.FORMAT_XZ)
    else:
        c = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
        stream = c.compress(payload) + c.flush()
    # a decoy magic as the decompressor's own code carries one
    return bytes(head) + b"\xfd7zXZ\x00junk" + stream + struct.pack("<I", len(payload))


def test_registry_probes() -> None:
    assert identify(b"\x7fELF" + bytes(60)) == "elf"
    assert identify(_zimage(b"x" * 100)) == "zimage"
    assert identify(b"\x00" * 64) == "raw"
    assert RawImage(b"abc", 0x100).segments()[0].address == 0x100


@pytest.mark.toolchain
def test_elf_segments_entry_and_symbols(tmp_path: Path) -> None:
    elf_path = assemble(tmp_path, SRC, "sym", base=0x4001_0000)
    img = ElfImage(elf_path.read_bytes(), str(elf_path))
    (seg,) = img.segments()
    assert seg.address == 0x4001_0000
    assert seg.data[:4] == bytes.fromhex("00f020e3")
    assert img.entry == 0x4001_0000
    assert img.symbolize(0x4001_0008) == "helper"
    assert img.symbolize(0x4001_000C) == "helper+0x4"
    thumby = img.symbol("thumby")
    assert thumby is not None
    assert thumby & 1
    assert img.symbolize(0x1000) == "0x00001000"


@pytest.mark.toolchain
def test_elf_loads_at_physical_addresses(tmp_path: Path) -> None:
    ld = need_tool("arm-none-eabi-ld")
    obj_src = tmp_path / "v.s"
    obj_src.write_text(SRC)
    (tmp_path / "v.ld").write_text(
        "SECTIONS { . = 0xC0000000; .text : AT(0x40020000) { *(.text) } }\n")
    import subprocess
    subprocess.run([need_tool("arm-none-eabi-as"), "-o", str(tmp_path / "v.o"), str(obj_src)],
                   check=True)
    subprocess.run([ld, "-e", "_start", "-T", str(tmp_path / "v.ld"), "-o",
                    str(tmp_path / "v.elf"), str(tmp_path / "v.o")], check=True)
    img = ElfImage((tmp_path / "v.elf").read_bytes())
    assert img.segments()[0].address == 0x4002_0000
    assert img.entry == 0x4002_0000  # the virtual entry moved with its segment


def test_bad_elf_is_an_image_error() -> None:
    with pytest.raises(ImageError, match="ELF"):
        ElfImage(b"\x7fELF" + b"\x01\x01\x01" + bytes(9) + b"garbage")
    elf64 = Path("/bin/true").read_bytes() if Path("/bin/true").exists() else b""
    if elf64[:4] == b"\x7fELF" and elf64[4] == 2:
        with pytest.raises(ImageError, match="ELF32"):
            ElfImage(elf64, "/bin/true")


@pytest.mark.parametrize("kind", ["xz", "gzip"])
def test_zimage_host_decompression(kind: str) -> None:
    payload = bytes(range(256)) * 64
    z = ZImage(_zimage(payload, kind))
    assert z.decompress() == payload
    assert z.text_offset() == 0x8000


def test_zimage_without_payload() -> None:
    with pytest.raises(ImageError, match="no XZ or gzip"):
        ZImage(_zimage(b"")[:0x40]).decompress()
    with pytest.raises(ImageError, match="magic"):
        ZImage(bytes(0x40))


def test_placement_avoids_images() -> None:
    used = [("Image", 0x4000_8000, 0x0500_0000)]
    rd = place_initrd(RAM, 0x10_0000, used)
    assert rd % 0x1000 == 0
    assert rd >= 0x4500_8000
    dtb = place_dtb(RAM, 0x2000, [*used, ("initrd", rd, 0x10_0000)])
    assert dtb % 8 == 0
    assert dtb >= rd + 0x10_0000
    assert place_dtb(RAM, 0x2000, used, at_ram_start=True) == 0x4000_0000
    with pytest.raises(ImageError, match="overlaps"):
        place_dtb(RAM, 0x2000, [("bios", 0x4000_0000, 0x1000)], at_ram_start=True)
    with pytest.raises(ImageError, match="does not fit RAM"):
        place_initrd(RAM, 0x0800_0000, used)


@pytest.mark.images
def test_debian_zimage_text_offset_and_payload(linux_zimage: Path) -> None:
    z = ZImage(linux_zimage.read_bytes())
    assert z.compression() == "xz"
    assert z.text_offset() == 0x208000  # from the zImage tag table
    image = z.decompress()
    assert len(image) > 8 << 20
    assert b"Linux version 6.1" in image


@pytest.mark.images
@pytest.mark.emulator
@pytest.mark.slow
def test_linux_gets_past_decompression(linux_zimage: Path) -> None:
    m = Machine("virt")
    plan = m.load_kernel(linux_zimage, host_decompress=True,
                         append="earlycon=pl011,0x9000000 console=ttyAMA0 cma=32M")
    assert plan.entry == 0x4000_0000 + 0x208000
    result = m.run(until_console="psci: PSCIv1.0 detected", max_seconds=120)
    assert result.reason == "until"
    text = m.console.decode(errors="replace")
    assert "Booting Linux on physical CPU 0x0" in text
    assert "Machine model: camsoc-harness virt" in text
    assert "cma: Reserved 32 MiB" in text
    assert "DMA      [mem 0x0000000040000000-0x0000000047ffffff]" in text
    # the ARM boot protocol: r2 pointed at the DTB, r1 = "use the device tree"
    assert plan.regs == {0: 0, 1: 0xFFFF_FFFF, 2: plan.placed[-1][1]}


def test_probes_accept_paths(tmp_path: Path) -> None:
    z = tmp_path / "zImage"
    z.write_bytes(_zimage(b"k" * 64))
    assert ZImage.is_compatible(z)
    assert identify(z) == "zimage"
    assert not ElfImage.is_compatible(z)
    assert identify(tmp_path / "absent") == "raw"
