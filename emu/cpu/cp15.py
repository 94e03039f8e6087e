"""The generic-timer intercept: CP15 c14 accesses answered from virtual time.

Unicorn drops guest writes of CNTV/CNTP CVAL and CTL and lets its counter
follow the host's clock, so every ``MRC/MCR p15, <opc1>, Rt, c14, ...`` and
``MRRC/MCRR p15, <opc1>, Rt, Rt2, c14`` is emulated here against the
:class:`~emu.devices.timer.arm_generic_timer.GenericTimer` model: a read sets
the destination register(s), a write forwards the value, and the instruction
is skipped by moving PC on. Only the addresses of such instructions carry a
code hook (a single-address ``UC_HOOK_CODE`` costs nothing elsewhere).

Finding them while code moves at run time (U-Boot relocates itself):

- ``page`` mode (default): ``UC_HOOK_EDGE_GENERATED`` fires only when Unicorn
  chains two translated blocks, i.e. about once per block, never per
  execution. The first time a block address is seen, the whole 4 KiB page
  around it (and around its predecessor) is scanned for the four encodings, in
  ARM and Thumb alignment. The run loop also scans the page at each slice's
  start PC and the exception vectors. A scan result is cached per page with
  the CRC of its bytes, so rewritten code is scanned again.
- ``block`` mode: ``UC_HOOK_BLOCK`` on every executed block (exact coverage,
  about ten times slower).

A new site is hooked at once, then Unicorn is stopped so the blocks that
already hold it are retranslated (``ctl_remove_cache``) before they run.
The encodings are matched with bit masks (ARM and Thumb-2 coprocessor forms
share their low 28 bits) instead of a disassembler, which is what keeps a
4 KiB scan near a millisecond.

Conditional instructions are honoured (ARM condition field, Thumb IT state).
Virtual time does not move inside a run slice, so a loop waiting for the
counter would spin until the slice ends. When one address has read the counter
:data:`POLL_READS` times within a slice, the loop is taken to be polling: the
intercept stops the slice and the machine lets virtual time run to the slice's
end (see docs/time.md).

``patch`` mode (the machine's default) finds sites the same way as ``page``
mode but installs no code hook: each site is overwritten in guest memory with
a permanently undefined instruction (ARM ``UDF``, Thumb ``UDF.W``) whose
16-bit immediate indexes a table of the original encodings
(:data:`PATCH_BASE` + index). The undefined-instruction trap brings the CPU
back here, where the original instruction is emulated. Why: Unicorn's
``count=`` slicing installs a per-instruction code hook, and with it every
executed instruction walks the list of *all* code hooks, so one hook per site
costs about 2 ns per site per instruction (100 sites: 120 -> 5 MIPS). Only
sites in the instruction set the CPU is running when the page is scanned are
patched, so the halves of ARM instructions are never mistaken for Thumb code.
The guest sees the patched words if it reads its own code; copies of patched
code (U-Boot relocating itself) keep working because the immediate, not the
address, names the original.
"""

from __future__ import annotations

import logging
import time
import zlib
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from unicorn import UC_HOOK_BLOCK, UC_HOOK_CODE, UC_HOOK_EDGE_GENERATED

from emu.cpu.core import CPSR_T, Cpu
from emu.devices.timer.arm_generic_timer import CP15_TIMER_REGS, GenericTimer

log = logging.getLogger("emu.cpu.cp15")

PAGE = 0x1000
#: reads of the counter from one address within one slice that make it a polling loop
POLL_READS = 4
#: first UDF immediate used for patched sites (Linux uses 0x0010-0x0014, 0xDEFE, 0xFFDE)
PATCH_BASE = 0xC000
PATCH_LIMIT = 0x1000
MODES = ("patch", "page", "block")
COUNTER_REGS = frozenset({"CNTPCT", "CNTVCT"})


@dataclass(frozen=True)
class Site:
    """A decoded coprocessor access at one virtual address."""

    address: int
    thumb: bool
    word: int  # ARM encoding, or hw1 << 16 | hw2 for Thumb-2
    name: str


def decode(word: int) -> tuple[str, bool, bool] | None:
    """(register name, is_read, is64) when ``word`` is an MRC/MCR/MRRC/MCRR p15 c14."""
    if (word >> 8) & 0xF != 15:
        return None
    if (word & 0x0F00_0010) == 0x0E00_0010:  # MRC/MCR
        opc1, crn, opc2, crm = (word >> 21) & 7, (word >> 16) & 0xF, (word >> 5) & 7, word & 0xF
        if crn != 14:
            return None
        name = CP15_TIMER_REGS.get((15, opc1, crn, crm, opc2))
        return (name, bool(word & (1 << 20)), False) if name else None
    if (word & 0x0FE0_0000) == 0x0C40_0000:  # MRRC/MCRR
        opc1, crm = (word >> 4) & 0xF, word & 0xF
        if crm != 14:
            return None
        name = CP15_TIMER_REGS.get((15, opc1, crm))
        return (name, bool(word & (1 << 20)), True) if name else None
    return None


def _cond_passed(cond: int, cpsr: int) -> bool:
    n, z, c, v = (cpsr >> 31) & 1, (cpsr >> 30) & 1, (cpsr >> 29) & 1, (cpsr >> 28) & 1
    base = cond >> 1
    result = [z == 1, c == 1, n == 1, v == 1, c == 1 and z == 0, n == v,
              n == v and z == 0, True][base]
    if cond & 1 and cond != 0xF:
        result = not result
    return result


def _itstate(cpsr: int) -> int:
    return ((cpsr >> 25) & 3) | ((cpsr >> 10) & 0x3F) << 2


def _with_itstate(cpsr: int, it: int) -> int:
    cpsr &= ~((3 << 25) | (0x3F << 10))
    return cpsr | (it & 3) << 25 | ((it >> 2) & 0x3F) << 10


def scan_page(data: bytes, base: int, arm: bool = True,
              thumb: bool = True) -> list[tuple[int, bool, int]]:
    """Candidate sites in one page: (address, thumb, word), in the instruction sets asked."""
    found: list[tuple[int, bool, int]] = []
    words = array("I", data[: len(data) & ~3] if arm else b"")
    for i, w in enumerate(words):
        if ((w & 0x0F00_0F10) == 0x0E00_0F10 and (w >> 16) & 0xF == 14 and decode(w)) \
                or ((w & 0x0FE0_0F0F) == 0x0C40_0F0E and decode(w)):
            found.append((base + 4 * i, False, w))
    halves = array("H", data[: len(data) & ~1] if thumb else b"")
    for i in range(len(halves) - 1):
        h1 = halves[i]
        if (h1 & 0xEF0F) == 0xEE0E or (h1 & 0xEFE0) == 0xEC40:
            w = h1 << 16 | halves[i + 1]
            if decode(w):
                found.append((base + 2 * i, True, w))
    return found


def udf_encoding(imm16: int, thumb: bool) -> bytes:
    """The bytes of ``UDF #imm16`` (ARM) or ``UDF.W #imm16`` (Thumb), little-endian."""
    if not 0 <= imm16 <= 0xFFFF:
        raise ValueError(f"UDF immediate must fit 16 bits, not 0x{imm16:x}")
    if thumb:
        hw1, hw2 = 0xF7F0 | imm16 >> 12, 0xA000 | (imm16 & 0xFFF)
        return hw1.to_bytes(2, "little") + hw2.to_bytes(2, "little")
    return (0xE7F000F0 | (imm16 >> 4) << 8 | (imm16 & 0xF)).to_bytes(4, "little")


def udf_immediate(raw: bytes, thumb: bool) -> int | None:
    """The immediate of the UDF in ``raw`` (4 bytes at the PC), None for anything else."""
    if len(raw) < 4:
        return None
    if thumb:
        hw1, hw2 = int.from_bytes(raw[:2], "little"), int.from_bytes(raw[2:4], "little")
        if hw1 & 0xFFF0 != 0xF7F0 or hw2 & 0xF000 != 0xA000:
            return None
        return (hw1 & 0xF) << 12 | (hw2 & 0xFFF)
    w = int.from_bytes(raw[:4], "little")
    if w & 0xFFF000F0 != 0xE7F000F0:
        return None
    return ((w >> 8) & 0xFFF) << 4 | (w & 0xF)


class TimerIntercept:
    """Hooks the CP15 c14 instructions of the guest and answers them from the timer model."""

    def __init__(self, cpu: Cpu, timer: GenericTimer,
                 read_page: Callable[[int], bytes | None], mode: str = "page",
                 write_code: Callable[[int, bytes], bool] | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"intercept mode must be one of {', '.join(MODES)}, not {mode!r}")
        if mode == "patch" and write_code is None:
            raise ValueError("intercept mode 'patch' needs a write_code callable")
        self.cpu = cpu
        self.timer = timer
        self.read_page = read_page
        self.mode = mode
        self.write_code = write_code
        #: original encodings of patched sites, indexed by UDF immediate - PATCH_BASE
        self.originals: list[tuple[int, bool]] = []
        self._original_index: dict[tuple[int, bool], int] = {}
        self.sites: dict[int, Site] = {}
        self._page_crc: dict[tuple[int, bool], int] = {}
        self._seen_blocks: set[int] = set()
        self._hooked: dict[tuple[int, bool], int] = {}
        self.flush_ranges: list[tuple[int, int]] = []
        self.poll_stop = False
        self._slice_reads: dict[int, int] = {}
        self.stats = {"pages_scanned": 0, "scan_seconds": 0.0, "sites": 0, "emulated": 0,
                      "discovery_stops": 0, "poll_stops": 0, "edge_events": 0}

    def install(self) -> None:
        uc = self.cpu.uc
        if self.mode in ("page", "patch"):
            uc.hook_add(UC_HOOK_EDGE_GENERATED, self._on_edge)
        else:
            uc.hook_add(UC_HOOK_BLOCK, self._on_block)

    def new_slice(self) -> None:
        """Forget the counter-read history (called at each slice start)."""
        self._slice_reads.clear()
        self.poll_stop = False

    # discovery -------------------------------------------------------------
    def _on_edge(self, uc: Any, cur: Any, prev: Any, user: Any) -> None:
        self.stats["edge_events"] += 1
        for pc in (int(cur.pc), int(prev.pc)):
            if pc not in self._seen_blocks:
                self._seen_blocks.add(pc)
                if self.scan(pc):
                    self.stats["discovery_stops"] += 1
                    uc.emu_stop()

    def _on_block(self, uc: Any, address: int, size: int, user: Any) -> None:
        if address in self._seen_blocks:
            return
        self._seen_blocks.add(address)
        if self.scan(address):
            self.stats["discovery_stops"] += 1
            uc.emu_stop()

    def scan(self, va: int) -> bool:
        """Scan the page holding ``va``; True when new sites were hooked (a flush is due)."""
        page = va & ~(PAGE - 1)
        t0 = time.perf_counter()
        data = self.read_page(page)
        if data is None:
            return False
        patching = self.mode == "patch"
        thumb_now = self.cpu.thumb
        key = (page, thumb_now if patching else False)
        crc = zlib.crc32(data)
        if self._page_crc.get(key) == crc:
            return False
        self.stats["pages_scanned"] += 1
        added = False
        wanted = (not thumb_now, thumb_now) if patching else (True, True)
        for addr, thumb, word in scan_page(data, page, *wanted):
            decoded = decode(word)
            if decoded is None or (patching and thumb != thumb_now):
                continue
            if patching:
                added |= self._patch(addr, thumb, word)
                continue
            old = self.sites.get(addr)
            site = Site(addr, thumb, word, decoded[0])
            if old == site:
                continue
            self.sites[addr] = site
            if (addr, thumb) not in self._hooked:
                self._hooked[(addr, thumb)] = self.cpu.uc.hook_add(
                    UC_HOOK_CODE, self._on_site, begin=addr, end=addr)
            self.flush_ranges.append((addr, addr + 4))
            added = True
        if added and patching:
            fresh = self.read_page(page)
            crc = zlib.crc32(fresh) if fresh is not None else crc
        self._page_crc[key] = crc
        self.stats["sites"] = len(self.sites)
        self.stats["scan_seconds"] += time.perf_counter() - t0
        return added

    def _patch(self, addr: int, thumb: bool, word: int) -> bool:
        index = self._original_index.get((word, thumb))
        if index is None:
            if len(self.originals) >= PATCH_LIMIT:
                log.warning("timer intercept: more than %d distinct timer instructions; "
                            "0x%08x left unpatched", PATCH_LIMIT, addr)
                return False
            index = len(self.originals)
            self.originals.append((word, thumb))
            self._original_index[(word, thumb)] = index
        assert self.write_code is not None
        decoded = decode(word)
        self.sites[addr] = Site(addr, thumb, word, decoded[0] if decoded else "?")
        self.flush_ranges.append((addr, addr + 4))
        if not self.write_code(addr, udf_encoding(PATCH_BASE + index, thumb)) \
                and (addr, thumb) not in self._hooked:  # e.g. across a page: hook it instead
            self._hooked[(addr, thumb)] = self.cpu.uc.hook_add(
                UC_HOOK_CODE, self._on_site, begin=addr, end=addr)
        return True

    def on_undefined(self, pc: int, thumb: bool, raw: bytes) -> bool:
        """Emulate a patched site trapped as undefined at ``pc``; False when it is not ours."""
        imm = udf_immediate(raw, thumb)
        if imm is None or not PATCH_BASE <= imm < PATCH_BASE + len(self.originals):
            return False
        word, site_thumb = self.originals[imm - PATCH_BASE]
        if site_thumb != thumb:
            return False
        self._emulate(pc, thumb, word)
        return True

    def take_flush(self) -> list[tuple[int, int]]:
        """Ranges whose translated blocks must be dropped before running again."""
        out, self.flush_ranges = self.flush_ranges, []
        return out

    # emulation ----------------------------------------------------------------
    def _on_site(self, uc: Any, address: int, size: int, user: Any) -> None:
        site = self.sites.get(address)
        if site is None:
            return
        if bool(self.cpu.cpsr & CPSR_T) != site.thumb:
            return
        self._emulate(address, site.thumb, site.word)

    def _emulate(self, address: int, thumb: bool, word: int) -> None:
        """Execute the timer instruction ``word`` at ``address`` and move PC past it."""
        cpu = self.cpu
        decoded = decode(word)
        if decoded is None:
            return
        name, is_read, is64 = decoded
        cpsr = cpu.cpsr
        it = _itstate(cpsr) if thumb else 0
        cond = (it >> 4) if thumb and it & 0xF else (0xE if thumb else word >> 28)
        passed = _cond_passed(cond, cpsr)
        rt, rt2 = (word >> 12) & 0xF, (word >> 16) & 0xF
        if passed:
            if is_read and name in COUNTER_REGS:
                seen = self._slice_reads.get(address, 0)
                if seen >= POLL_READS:
                    self.poll_stop = True
                    self.stats["poll_stops"] += 1
                    cpu.uc.emu_stop()
                    return
                self._slice_reads[address] = seen + 1
            self.stats["emulated"] += 1
            if is_read:
                value = self.timer.read_cp15(name)
                if is64:
                    cpu.set_reg(rt, value & 0xFFFF_FFFF)
                    cpu.set_reg(rt2, value >> 32)
                elif rt == 15:
                    cpu.set_cpsr((cpsr & 0x0FFF_FFFF) | (value & 0xF000_0000))
                    cpsr = cpu.cpsr
                else:
                    cpu.set_reg(rt, value)
            else:
                value = cpu.reg(rt)
                if is64:
                    value |= cpu.reg(rt2) << 32
                self.timer.write_cp15(name, value)
        if thumb and it & 0xF:
            it = 0 if it & 7 == 0 else (it & 0xE0) | ((it << 1) & 0x1F)
            cpu.set_cpsr(_with_itstate(cpsr, it))
        cpu.set_pc(address + 4, thumb)
