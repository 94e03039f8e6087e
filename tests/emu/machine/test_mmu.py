"""Short-descriptor page-table walks (fault status, addresses) on synthetic tables."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from emu.cpu import mmu

TTB = 0x4000_4000
L2 = 0x4001_0000


def _state(tables: dict[int, int], *, ttbcr: int = 0, ttbr1: int = 0,
           dacr: int = 0x5555_5555, sctlr: int = 1) -> tuple[mmu.MmuState, mmu.ReadWord]:
    def read(addr: int) -> int | None:
        return tables.get(addr, 0)
    return mmu.MmuState(sctlr=sctlr, ttbr0=TTB, ttbr1=ttbr1, ttbcr=ttbcr, dacr=dacr), read


def test_mmu_off_is_identity() -> None:
    st_, read = _state({}, sctlr=0)
    assert mmu.walk(st_, 0x1234_5678, read).phys == 0x1234_5678


def test_section_and_translation_fault() -> None:
    tables = {TTB + (0x400 * 4): 0x4000_0000 | 0xC02}
    s, read = _state(tables)
    w = mmu.walk(s, 0x4001_2345, read, check=True)
    assert w.ok
    assert w.phys == 0x4001_2345
    bad = mmu.walk(s, 0x3000_0000, read, check=True)
    assert bad.fault == mmu.FS_TRANSLATION_SECTION
    assert mmu.fault_status(bad.fault, bad.domain, write=True) == 0x805


def test_supersection() -> None:
    # supersection base 0x80000000 mapped at VA 0x10000000 (16 consecutive entries)
    desc = 0x8000_0000 | (1 << 18) | 0xC02
    tables = {TTB + ((0x100 + i) * 4): desc for i in range(16)}
    s, read = _state(tables)
    assert mmu.walk(s, 0x10AB_CDEF, read).phys == 0x80AB_CDEF


def test_small_and_large_pages() -> None:
    tables = {
        TTB + 0x000 * 4: L2 | 0x1 | (3 << 5),           # page table, domain 3
        L2 + 0x05 * 4: 0x5000_0000 | 0x32,              # small page, AP=0b11
        **{L2 + (0x10 + i) * 4: 0x6000_0000 | 0x31 for i in range(16)},  # 64 KiB page
    }
    s, read = _state(tables)
    assert mmu.walk(s, 0x0000_5ABC, read, check=True).phys == 0x5000_0ABC
    assert mmu.walk(s, 0x0001_3ABC, read, check=True).phys == 0x6000_3ABC
    miss = mmu.walk(s, 0x0000_6000, read, check=True)
    assert miss.fault == mmu.FS_TRANSLATION_PAGE
    assert miss.domain == 3
    assert miss.level == 2


def test_domain_and_permission_faults() -> None:
    tables = {TTB + 0x400 * 4: 0x4000_0000 | 0x402 | (2 << 5)}  # AP=0b001: privileged only
    s, read = _state(tables, dacr=0)  # domain 2: no access
    assert mmu.walk(s, 0x4000_0000, read, check=True).fault == mmu.FS_DOMAIN_SECTION
    s, read = _state(tables)
    assert mmu.walk(s, 0x4000_0000, read, check=True).ok
    user = mmu.walk(s, 0x4000_0000, read, check=True, privileged=False)
    assert user.fault == mmu.FS_PERMISSION_SECTION
    s, read = _state(tables, dacr=0xFFFF_FFFF)  # manager: no permission check
    assert mmu.walk(s, 0x4000_0000, read, check=True, privileged=False).ok


def test_ttbcr_split_uses_ttbr1() -> None:
    ttbr1 = 0x4002_0000
    tables = {ttbr1 + 0xC00 * 4: 0x4000_0000 | 0xC02}
    s, read = _state(tables, ttbcr=2, ttbr1=ttbr1)
    assert mmu.walk(s, 0xC000_1000, read).phys == 0x4000_1000


def test_fault_status_encoding() -> None:
    assert mmu.fault_status(0x0D, 5) == 0x5D
    assert mmu.fault_status(0x16) == 0x406  # FS[4] goes to bit 10


@settings(max_examples=80, deadline=None)
@given(va=st.integers(0, 0xFFFF_FFFF), base_mb=st.integers(0, 0xFFF))
def test_section_walk_keeps_the_offset(va: int, base_mb: int) -> None:
    tables = {TTB + (va >> 20) * 4: (base_mb << 20) | 0xC02}
    s, read = _state(tables)
    w = mmu.walk(s, va, read, check=True)
    assert w.phys == (base_mb << 20) | (va & 0xF_FFFF)
