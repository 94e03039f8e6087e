"""Memory-attribute alias checker: one physical page, cacheable through one VA, not another.

ARMv6/ARMv7 forbid (as "mismatched memory attributes") mapping the same physical
memory as Normal cacheable through one virtual address and Normal non-cacheable,
Device or Strongly-ordered through another: a cacheable alias can hold dirty lines
that are later written back over what a device or the other alias wrote. Unicorn
ignores TEX/C/B, so the bug is invisible when running; this checker walks the
guest's own short-descriptor tables instead.

Decoding (ARM ARM B3.8): with SCTLR.TRE=0 the type comes from TEX[2:0], C and B
(:func:`decode_type`); with TRE=1 from PRRR/NMRR indexed by TEX[0]:C:B
(:func:`remap_type`). :func:`enumerate_mappings` lists every valid translation of
TTBR0/TTBR1 (split by TTBCR.N): sections, supersections, 64 KiB large pages and
4 KiB small pages, merged into runs contiguous in VA and PA with one type.
:func:`find_conflicts` sweeps them by physical address.

The :class:`AliasChecker` re-walks between run slices, only when something the
walk depends on changed: the CP15 registers (SCTLR, TTBR0/1, TTBCR, PRRR, NMRR)
and a CRC-32 of the first-level table and of every second-level table it
references (see docs/checkers.md for the cost).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cma.core import ContiguousMemory
    from emu.machine import Machine

#: reads ``size`` bytes of physical memory, None when it is not memory
ReadPhys = Callable[[int, int], "bytes | None"]

MODES = ("report", "fail")

#: cache policies of a Normal region (2-bit encodings of TEX[1:0]/C:B, NMRR IRn/ORn)
_POLICY = ("NC", "WB-WA", "WT", "WB")


@dataclass(frozen=True)
class MemType:
    """A memory type: ``kind`` plus, for Normal memory, the inner and outer cache policy."""

    kind: str  # "strongly-ordered", "device", "normal", "reserved"
    inner: str = "NC"  # "NC", "WB-WA", "WT", "WB"
    outer: str = "NC"

    @property
    def cacheable(self) -> bool:
        """Whether any level of cache may hold lines of this memory."""
        return self.kind == "normal" and (self.inner != "NC" or self.outer != "NC")

    def __str__(self) -> str:
        if self.kind == "normal":
            if self.inner == self.outer:
                return f"Normal {self.inner}"
            return f"Normal inner {self.inner} outer {self.outer}"
        return {"strongly-ordered": "Strongly-ordered", "device": "Device"}.get(
            self.kind, f"reserved encoding ({self.kind})")


STRONGLY_ORDERED = MemType("strongly-ordered")
DEVICE = MemType("device")


def decode_type(tex: int, c: int, b: int) -> MemType:
    """The memory type of TEX[2:0]:C:B with SCTLR.TRE=0 (ARM ARM table B3-10)."""
    tex, c, b = tex & 7, c & 1, b & 1
    if tex & 4:  # 1BB:AA: cacheable memory, outer policy BB, inner AA
        return MemType("normal", _POLICY[c << 1 | b], _POLICY[tex & 3])
    cb = c << 1 | b
    if tex == 0:
        return (STRONGLY_ORDERED, DEVICE, MemType("normal", "WT", "WT"),
                MemType("normal", "WB", "WB"))[cb]
    if tex == 1:
        if cb == 0:
            return MemType("normal", "NC", "NC")
        if cb == 3:
            return MemType("normal", "WB-WA", "WB-WA")
        return MemType("reserved")
    if tex == 2 and cb == 0:
        return DEVICE  # non-shareable Device
    return MemType("reserved")


def remap_type(tex: int, c: int, b: int, prrr: int, nmrr: int) -> MemType:
    """The memory type with SCTLR.TRE=1: PRRR.TRn / NMRR.IRn, ORn with n = TEX[0]:C:B."""
    n = (tex & 1) << 2 | (c & 1) << 1 | (b & 1)
    tr = (prrr >> (2 * n)) & 3
    if tr == 0:
        return STRONGLY_ORDERED
    if tr == 1:
        return DEVICE
    if tr == 3:
        return MemType("reserved")
    return MemType("normal", _POLICY[(nmrr >> (2 * n)) & 3], _POLICY[(nmrr >> (2 * n + 16)) & 3])


@dataclass(frozen=True)
class TableRegs:
    """The CP15 registers the memory types of a walk depend on."""

    sctlr: int
    ttbr0: int
    ttbr1: int
    ttbcr: int
    prrr: int = 0
    nmrr: int = 0

    @property
    def enabled(self) -> bool:
        return bool(self.sctlr & 1)

    @property
    def tre(self) -> bool:
        return bool(self.sctlr & (1 << 28))

    def mem_type(self, tex: int, c: int, b: int) -> MemType:
        if self.tre:
            return remap_type(tex, c, b, self.prrr, self.nmrr)
        return decode_type(tex, c, b)

    def l1_spans(self) -> list[tuple[int, int, int]]:
        """(physical table base, first index, entry count) of the first-level tables in use."""
        n = self.ttbcr & 7
        first = 4096 >> n
        spans = [(self.ttbr0 & (0xFFFF_FFFF << (14 - n)) & 0xFFFF_FFFF, 0, first)]
        if n:
            spans.append((self.ttbr1 & 0xFFFF_C000, first, 4096 - first))
        return spans


@dataclass(frozen=True)
class Mapping:
    """A run of translations contiguous in VA and PA with one memory type."""

    va: int
    pa: int
    size: int
    mtype: MemType
    kind: str  # "section", "supersection", "large", "small"


#: a run inside one second-level table: (VA offset, PA, size, TEX:C:B, kind)
_L2Run = tuple[int, int, int, int, str]


def _decode_l2(data: bytes) -> tuple[list[_L2Run], int]:
    """The valid entries of one 256-entry second-level table as runs, and their count."""
    runs: list[_L2Run] = []
    count = 0
    for j, d in enumerate(struct.unpack("<256I", data)):
        if d & 2:  # small page
            pa, attrs, kind = d & 0xFFFF_F000, (d >> 4) & 0x1C | (d >> 2) & 3, "small"
        elif d & 1:  # large page (its 16 copies each give their 4 KiB of the 64 KiB)
            pa, attrs, kind = (d & 0xFFFF_0000) | (j & 0xF) << 12, \
                (d >> 10) & 0x1C | (d >> 2) & 3, "large"
        else:
            continue
        count += 1
        if runs:
            off, rpa, size, rattrs, rkind = runs[-1]
            if off + size == j << 12 and rpa + size == pa and rattrs == attrs and rkind == kind:
                runs[-1] = (off, rpa, size + 0x1000, attrs, kind)
                continue
        runs.append((j << 12, pa, 0x1000, attrs, kind))
    return runs, count


class TableWalker:
    """Lists the mappings of a set of tables; caches decoded second-level tables by content."""

    def __init__(self, read: ReadPhys) -> None:
        self.read = read
        self._l2_cache: dict[tuple[int, int], tuple[list[_L2Run], int]] = {}
        self.entries = 0  # valid leaf entries seen by the last walk

    def l1_words(self, regs: TableRegs) -> list[tuple[int, tuple[int, ...]]]:
        """(first index, words) of each first-level table in use (missing ones are skipped)."""
        out = []
        for base, first, count in regs.l1_spans():
            data = self.read(base + first * 4, count * 4)
            if data is not None:
                out.append((first, struct.unpack(f"<{count}I", data)))
        return out

    def mappings(self, regs: TableRegs) -> list[Mapping]:
        """Every valid translation of ``regs``' tables, merged into runs, in VA order."""
        self.entries = 0
        if not regs.enabled or regs.ttbcr >> 31:  # MMU off, or long descriptors: not modelled
            return []
        runs: list[Mapping] = []
        types = [regs.mem_type(attrs >> 2, attrs >> 1, attrs) for attrs in range(32)]

        def add(va: int, pa: int, size: int, mtype: MemType, kind: str) -> None:
            if runs:
                last = runs[-1]
                if last.va + last.size == va and last.pa + last.size == pa \
                        and last.mtype == mtype and last.kind == kind:
                    runs[-1] = Mapping(last.va, last.pa, last.size + size, mtype, kind)
                    return
            runs.append(Mapping(va, pa, size, mtype, kind))

        for first, words in self.l1_words(regs):
            for k, d in enumerate(words):
                kind = d & 3
                if kind in {0, 3}:
                    continue
                i = first + k
                va = i << 20
                if kind == 2:
                    self.entries += 1
                    mtype = types[(d >> 10) & 0x1C | (d >> 2) & 3]
                    if d & (1 << 18):
                        add(va, (d & 0xFF00_0000) | (i & 0xF) << 20, 1 << 20, mtype,
                            "supersection")
                    else:
                        add(va, d & 0xFFF0_0000, 1 << 20, mtype, "section")
                else:
                    l2_runs, count = self._l2(d & 0xFFFF_FC00)
                    self.entries += count
                    for off, pa, size, attrs, what in l2_runs:
                        add(va | off, pa, size, types[attrs], what)
        return runs

    def _l2(self, base: int) -> tuple[list[_L2Run], int]:
        data = self.read(base, 1024)
        if data is None:
            return [], 0
        key = (base, zlib.crc32(data))
        hit = self._l2_cache.get(key)
        if hit is None:
            if len(self._l2_cache) > 4096:
                self._l2_cache.clear()
            hit = self._l2_cache[key] = _decode_l2(data)
        return hit

    def l1_crc(self, regs: TableRegs) -> int:
        """CRC-32 over the first-level tables in use."""
        crc = 0
        for base, first, count in regs.l1_spans():
            crc = zlib.crc32(self.read(base + first * 4, count * 4) or b"", crc)
        return crc

    def l2_crc(self, bases: Iterable[int]) -> int:
        """CRC-32 over the given second-level tables (neighbours read together)."""
        crc = 0
        for lo, hi in _coalesce(sorted(set(bases))):
            crc = zlib.crc32(self.read(lo, hi - lo) or b"", crc)
        return crc


def _coalesce(bases: list[int]) -> list[tuple[int, int]]:
    """Merge 1 KiB second-level tables that sit next to each other into single reads."""
    out: list[tuple[int, int]] = []
    for b in bases:
        if out and out[-1][1] == b:
            out[-1] = (out[-1][0], b + 1024)
        else:
            out.append((b, b + 1024))
    return out


def l2_bases(words: Iterable[tuple[int, tuple[int, ...]]]) -> list[int]:
    """The second-level tables the first-level words reference."""
    return [d & 0xFFFF_FC00 for _, ws in words for d in ws if d & 3 == 1]


@dataclass(frozen=True)
class Conflict:
    """Physical memory mapped cacheable through ``va_cached`` and not through ``va_other``."""

    pa: int
    size: int
    va_cached: int
    type_cached: MemType
    va_other: int
    type_other: MemType

    @property
    def key(self) -> tuple[int, int, int, int, str, str]:
        return (self.pa, self.size, self.va_cached, self.va_other, str(self.type_cached),
                str(self.type_other))


def find_conflicts(mappings: Iterable[Mapping]) -> list[Conflict]:
    """Every overlap in PA of a cacheable and a non-cacheable mapping, sorted by PA then VA."""
    ordered = sorted(mappings, key=lambda m: (m.pa, m.va))
    active: list[Mapping] = []
    out: list[Conflict] = []
    for m in ordered:
        active = [a for a in active if a.pa + a.size > m.pa]
        for a in active:
            if a.mtype.cacheable == m.mtype.cacheable:
                continue
            lo, hi = max(a.pa, m.pa), min(a.pa + a.size, m.pa + m.size)
            cached, other = (a, m) if a.mtype.cacheable else (m, a)
            out.append(Conflict(lo, hi - lo, cached.va + (lo - cached.pa), cached.mtype,
                                other.va + (lo - other.pa), other.mtype))
        active.append(m)
    out.sort(key=lambda c: (c.pa, c.va_cached, c.va_other))
    return out


@dataclass
class AliasFinding:
    """One conflict, reported when it first appeared (``time`` in ticks, ``epoch`` of tables)."""

    pa: int
    size: int
    va_cached: int
    type_cached: str
    va_other: int
    type_other: str
    time: int
    seconds: float
    epoch: int
    pc: int
    chunk: dict[str, Any] | None

    def describe(self) -> str:
        owner = ""
        if self.chunk is not None:
            owner = (f" (CMA chunk 0x{self.chunk['phys']:08x}+0x{self.chunk['size']:x} of "
                     f"{self.chunk['device'] or 'no device'}, region {self.chunk['region']})")
        return (f"phys 0x{self.pa:08x}+0x{self.size:x}{owner} is mapped {self.type_cached} at "
                f"VA 0x{self.va_cached:08x} and {self.type_other} at VA 0x{self.va_other:08x} "
                f"(mismatched memory attributes, seen at {self.seconds:.6f} s)")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["text"] = self.describe()
        return d


class AliasChecker:
    """Re-walks the guest's tables between slices when they change; records new conflicts."""

    name = "aliases"

    def __init__(self, machine: Machine, core: ContiguousMemory | None = None,
                 mode: str = "report") -> None:
        if mode not in MODES:
            raise ValueError(f"alias check mode must be 'report' or 'fail', not {mode!r}")
        self.machine = machine
        self.core = core
        self.mode = mode
        self.walker = TableWalker(self._read)
        self.findings: list[AliasFinding] = []
        self.epoch = 0
        self.mappings: list[Mapping] = []
        self._state: tuple[TableRegs, int, int] | None = None
        self._l1_crc: int | None = None
        self._l2: list[int] = []
        self._active: set[tuple[int, int, int, int, str, str]] = set()
        self.stats = {"checks": 0, "walks": 0, "entries": 0}

    def install(self) -> None:
        """Run :meth:`check` before every slice, after whatever was hooked there already."""
        previous = self.machine.between_slices

        def between() -> None:
            if previous is not None:
                previous()
            self.check()

        self.machine.between_slices = between

    def _read(self, addr: int, size: int) -> bytes | None:
        bus = self.machine.bus
        if not bus.is_memory(addr, size):
            return None
        return bytes(bus.uc.mem_read(addr, size))

    def regs(self) -> TableRegs:
        cpu = self.machine.cpu
        return TableRegs(sctlr=cpu.sctlr, ttbr0=cpu.read_cp15(2, 0, 0, 0),
                         ttbr1=cpu.read_cp15(2, 0, 0, 1), ttbcr=cpu.read_cp15(2, 0, 0, 2),
                         prrr=cpu.read_cp15(10, 2, 0, 0), nmrr=cpu.read_cp15(10, 2, 0, 1))

    def check(self) -> bool:
        """Walk again if the registers or table bytes changed; True when a walk happened."""
        self.stats["checks"] += 1
        regs = self.regs()
        l1 = l2 = 0
        if regs.enabled:
            l1 = self.walker.l1_crc(regs)
            if l1 != self._l1_crc:  # the set of second-level tables may have changed
                self._l1_crc = l1
                self._l2 = sorted(set(l2_bases(self.walker.l1_words(regs))))
            l2 = self.walker.l2_crc(self._l2)
        state = (regs, l1, l2)
        if state == self._state:
            return False
        self._state = state
        self.walk(regs)
        return True

    def walk(self, regs: TableRegs | None = None) -> list[Conflict]:
        """Enumerate the mappings now and record conflicts not already reported."""
        regs = regs or self.regs()
        self.epoch += 1
        self.stats["walks"] += 1
        self.mappings = self.walker.mappings(regs)
        self.stats["entries"] = self.walker.entries
        conflicts = find_conflicts(self.mappings)
        machine = self.machine
        now = machine.clock.now
        keys = set()
        for c in conflicts:
            keys.add(c.key)
            if c.key in self._active:
                continue
            self.findings.append(AliasFinding(
                c.pa, c.size, c.va_cached, str(c.type_cached), c.va_other, str(c.type_other),
                now, now / machine.clock.hz, self.epoch, machine.cpu.pc, self._chunk(c.pa, c.size)))
        self._active = keys
        return conflicts

    def _chunk(self, pa: int, size: int) -> dict[str, Any] | None:
        if self.core is None:
            return None
        for chunk in self.core.iter_chunks():
            if chunk.phys < pa + size and pa < chunk.phys + chunk.size:
                return {"phys": chunk.phys, "size": chunk.size, "device": chunk.device,
                        "region": chunk.region.name}
        return None

    def mem_type_at(self, pa: int) -> MemType | None:
        """The type of the first mapping of physical ``pa`` in the last walk (None: unmapped)."""
        for m in self.mappings:
            if m.pa <= pa < m.pa + m.size:
                return m.mtype
        return None

    def failures(self) -> list[str]:
        if self.mode != "fail":
            return []
        return [f"memory-attribute alias: {f.describe()}" for f in self.findings]

    def describe(self) -> dict[str, Any]:
        return {"mode": self.mode, "epochs": self.epoch, "stats": dict(self.stats),
                "findings": [f.to_dict() for f in self.findings]}
