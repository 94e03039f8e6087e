"""Short-descriptor (ARMv7 VMSA) page-table walk.

Unicorn translates addresses itself but reports a fault with no status and no
address, so the harness walks the tables again to fill DFSR/DFAR/IFSR/IFAR,
and tools use the same walk to turn a virtual address into a physical one.
Supported: TTBR0/TTBR1 split by TTBCR.N, sections, supersections, 64 KiB
large pages and 4 KiB small pages, domains (DACR), AP[2:0] permissions with
SCTLR.AFE, XN/PXN. The long-descriptor format (TTBCR.EAE) is not modelled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# fault status codes of the short-descriptor format (FS[4:0])
FS_ALIGNMENT = 0x01
FS_ACCESS_FLAG_SECTION = 0x03
FS_TRANSLATION_SECTION = 0x05
FS_ACCESS_FLAG_PAGE = 0x06
FS_TRANSLATION_PAGE = 0x07
FS_SYNC_EXTERNAL = 0x08
FS_DOMAIN_SECTION = 0x09
FS_DOMAIN_PAGE = 0x0B
FS_TRANSLATION_L1_EXTERNAL = 0x0C
FS_PERMISSION_SECTION = 0x0D
FS_TRANSLATION_L2_EXTERNAL = 0x0E
FS_PERMISSION_PAGE = 0x0F

ReadWord = Callable[[int], "int | None"]


@dataclass(frozen=True)
class Walk:
    """The result of one translation: a physical address or a fault."""

    va: int
    phys: int | None
    fault: int | None = None  # FS[4:0] when the access faults
    domain: int = 0
    level: int = 1

    @property
    def ok(self) -> bool:
        return self.fault is None


@dataclass(frozen=True)
class MmuState:
    """The system registers a walk depends on."""

    sctlr: int
    ttbr0: int
    ttbr1: int
    ttbcr: int
    dacr: int

    @property
    def enabled(self) -> bool:
        return bool(self.sctlr & 1)


def fault_status(fs: int, domain: int = 0, write: bool = False) -> int:
    """Encode DFSR/IFSR (short format): FS[3:0] in bits 3:0, FS[4] in bit 10, WnR in bit 11."""
    value = (fs & 0xF) | ((fs >> 4) & 1) << 10 | (domain & 0xF) << 4
    if write:
        value |= 1 << 11
    return value


def _ap_allows(ap: int, privileged: bool, write: bool, afe: bool) -> bool:
    """AP[2:0] (AP[0] ignored when SCTLR.AFE makes it the access flag)."""
    if afe:
        ap2, ap1 = ap >> 2 & 1, ap >> 1 & 1
        if ap2 == 0:
            return privileged or ap1 == 1
        return not write and (privileged or ap1 == 1)
    table = {
        0b000: (False, False, False, False),
        0b001: (True, True, False, False),
        0b010: (True, True, True, False),
        0b011: (True, True, True, True),
        0b101: (True, False, False, False),
        0b110: (True, False, True, False),
        0b111: (True, False, True, False),
    }
    p_r, p_w, u_r, u_w = table.get(ap, (False, False, False, False))
    if privileged:
        return p_w if write else p_r
    return u_w if write else u_r


def walk(state: MmuState, va: int, read_word: ReadWord, *, write: bool = False,
         fetch: bool = False, privileged: bool = True, check: bool = True) -> Walk:
    """Translate ``va`` as the MMU would; with ``check`` also apply domains and permissions."""
    va &= 0xFFFF_FFFF
    if not state.enabled:
        return Walk(va, va)
    n = state.ttbcr & 7
    if state.ttbcr >> 31:
        return Walk(va, None, FS_TRANSLATION_SECTION)  # long descriptors: not modelled
    if n and va >> (32 - n):
        base = state.ttbr1 & 0xFFFF_C000
        index = (va >> 20) & 0xFFF
    else:
        base = state.ttbr0 & (0xFFFF_FFFF << (14 - n)) & 0xFFFF_FFFF
        index = (va >> 20) & (0xFFF >> n)
    l1 = read_word(base + index * 4)
    if l1 is None:
        return Walk(va, None, FS_TRANSLATION_L1_EXTERNAL)
    kind = l1 & 3
    afe = bool(state.sctlr & (1 << 29))
    if kind in {0, 3}:
        return Walk(va, None, FS_TRANSLATION_SECTION)
    if kind == 2:  # section or supersection
        domain = 0 if l1 & (1 << 18) else (l1 >> 5) & 0xF
        if l1 & (1 << 18):
            phys = (l1 & 0xFF00_0000) | (va & 0x00FF_FFFF)
        else:
            phys = (l1 & 0xFFF0_0000) | (va & 0x000F_FFFF)
        ap = ((l1 >> 15) & 1) << 2 | (l1 >> 10) & 3
        xn = bool(l1 & (1 << 4))
        pxn = bool(l1 & 1)
        level, fs_dom, fs_perm, fs_af = 1, FS_DOMAIN_SECTION, FS_PERMISSION_SECTION, \
            FS_ACCESS_FLAG_SECTION
    else:  # page table
        domain = (l1 >> 5) & 0xF
        pxn = bool(l1 & (1 << 2))
        l2 = read_word((l1 & 0xFFFF_FC00) + ((va >> 12) & 0xFF) * 4)
        if l2 is None:
            return Walk(va, None, FS_TRANSLATION_L2_EXTERNAL, domain, 2)
        if l2 & 3 == 0:
            return Walk(va, None, FS_TRANSLATION_PAGE, domain, 2)
        if l2 & 2:  # small page
            phys = (l2 & 0xFFFF_F000) | (va & 0xFFF)
            xn = bool(l2 & 1)
        else:  # large page
            phys = (l2 & 0xFFFF_0000) | (va & 0xFFFF)
            xn = bool(l2 & (1 << 15))
        ap = ((l2 >> 9) & 1) << 2 | (l2 >> 4) & 3
        level, fs_dom, fs_perm, fs_af = 2, FS_DOMAIN_PAGE, FS_PERMISSION_PAGE, FS_ACCESS_FLAG_PAGE
    if not check:
        return Walk(va, phys, None, domain, level)
    dacr = (state.dacr >> (2 * domain)) & 3
    if dacr in (0, 2):
        return Walk(va, None, fs_dom, domain, level)
    if dacr == 1:
        if afe and not ap & 1:
            return Walk(va, None, fs_af, domain, level)
        if not _ap_allows(ap, privileged, write, afe):
            return Walk(va, None, fs_perm, domain, level)
        if fetch and (xn or (pxn and privileged)):
            return Walk(va, None, fs_perm, domain, level)
    return Walk(va, phys, None, domain, level)
