"""Finding and decoding the CP15 c14 (generic timer) instructions the intercept hooks."""

from __future__ import annotations

import struct

from emu.cpu.cp15 import decode, scan_page


def test_decode_arm_encodings() -> None:
    assert decode(0xEC532F0E) == ("CNTPCT", True, True)         # mrrc p15, 0, r2, r3, c14
    assert decode(0xEC532F1E) == ("CNTVCT", True, True)         # mrrc p15, 1, r2, r3, c14
    assert decode(0xEC432F3E) == ("CNTV_CVAL", False, True)     # mcrr p15, 3, r2, r3, c14
    assert decode(0xEE0E1F33) == ("CNTV_CTL", False, False)     # mcr p15, 0, r1, c14, c3, 1
    assert decode(0xEE1E0F10) == ("CNTFRQ", True, False)        # mrc p15, 0, r0, c14, c0, 0
    assert decode(0xEE110F10) is None                            # mrc p15, 0, r0, c1, c0, 0
    assert decode(0xEE1E0E10) is None                            # coprocessor 14, not 15


def test_scan_finds_arm_and_thumb_sites() -> None:
    page = bytearray(0x1000)
    struct.pack_into("<I", page, 0x100, 0xEC532F1E)              # ARM mrrc CNTVCT
    struct.pack_into("<HH", page, 0x202, 0xEE1E, 0x0F10)         # Thumb-2 mrc CNTFRQ
    sites = scan_page(bytes(page), 0x4000_0000)
    assert (0x4000_0100, False, 0xEC532F1E) in sites
    assert (0x4000_0202, True, 0xEE1E0F10) in sites
