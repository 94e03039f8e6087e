"""Placement of kernel, initrd and DTB in RAM, and the ARM Linux boot protocol.

The ARM boot protocol (Documentation/arch/arm/booting.rst): r0 = 0,
r1 = machine type (0xFFFFFFFF: "use the device tree"), r2 = physical address
of the DTB, CPU in SVC mode with IRQ and FIQ masked, MMU and data cache off.

Placement rules, following what QEMU does for ``-kernel``:
- a zImage goes at RAM base + 0x8000 (it decompresses itself above its end);
  a host-decompressed Image at RAM base + 0x8000 too (its text offset);
- the initrd at RAM base + min(RAM/2, 128 MiB), page aligned, after any image;
- the DTB page aligned after the initrd (or at that spot without one), inside
  RAM and overlapping nothing: Linux reserves the initrd rounded out to whole
  pages, and refuses an initrd whose pages hold the (already reserved) DTB;
- for ``--bios`` (firmware in flash at 0) the DTB goes at the start of RAM, as
  QEMU's virt does for U-Boot's qemu_arm, which reads it from there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from emu.errors import ImageError

MACHINE_TYPE_DT = 0xFFFF_FFFF
ALIGN_DTB = 8
#: the DTB after other images starts on its own page (see the module docstring)
ALIGN_DTB_AFTER = 0x1000
ALIGN_INITRD = 0x1000


@dataclass
class BootPlan:
    """Where everything goes and how the CPU starts."""

    entry: int
    thumb: bool = False
    regs: dict[int, int] = field(default_factory=dict)
    placed: list[tuple[str, int, int]] = field(default_factory=list)  # (what, start, size)

    def describe(self) -> dict[str, object]:
        return {"entry": self.entry, "thumb": self.thumb,
                "placed": [{"what": w, "start": s, "size": n} for w, s, n in self.placed]}


def _align(value: int, align: int) -> int:
    return (value + align - 1) & ~(align - 1)


def check_free(what: str, start: int, size: int, used: Sequence[tuple[str, int, int]],
               ram: tuple[int, int]) -> None:
    """Raise :class:`ImageError` when ``[start, start+size)`` leaves RAM or hits ``used``."""
    base, ram_size = ram
    if start < base or start + size > base + ram_size:
        raise ImageError(
            f"{what} at [0x{start:x}, 0x{start + size:x}) does not fit RAM "
            f"[0x{base:x}, 0x{base + ram_size:x})"
        )
    for other, s, n in used:
        if start < s + n and s < start + size:
            raise ImageError(
                f"{what} at [0x{start:x}, 0x{start + size:x}) overlaps {other} "
                f"at [0x{s:x}, 0x{s + n:x})"
            )


def place_initrd(ram: tuple[int, int], size: int, used: Sequence[tuple[str, int, int]]) -> int:
    base, ram_size = ram
    start = base + min(ram_size // 2, 128 << 20)
    for _what, s, n in used:
        if s < start + size and start < s + n:
            start = _align(s + n, ALIGN_INITRD)
    start = _align(start, ALIGN_INITRD)
    check_free("initrd", start, size, used, ram)
    return start


def place_dtb(ram: tuple[int, int], size: int, used: Sequence[tuple[str, int, int]],
              at_ram_start: bool = False) -> int:
    base, ram_size = ram
    if at_ram_start:
        start = base
    else:
        start = base + min(ram_size // 2, 128 << 20)
        for _what, s, n in sorted(used, key=lambda u: u[1]):
            if s < start + size and start < s + n:
                start = _align(s + n, ALIGN_DTB_AFTER)
    start = _align(start, ALIGN_DTB)
    check_free("DTB", start, size, used, ram)
    return start


def linux_regs(dtb_addr: int) -> dict[int, int]:
    """r0..r2 of the ARM boot protocol."""
    return {0: 0, 1: MACHINE_TYPE_DT, 2: dtb_addr}
