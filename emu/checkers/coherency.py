"""DMA cache-coherency checker: a data-cache model over the live CMA chunks.

Unicorn has no caches, so a driver that forgets cache maintenance around DMA
still reads the right bytes here and the bug stays hidden. This checker models
the data cache at line granularity (CTR.DminLine, 64 bytes on Cortex-A15) for
the physical ranges of live CMA chunks only, as an infinite write-back
write-allocate cache (no evictions):

- CPU loads and stores there are seen with Unicorn memory hooks limited to
  those physical ranges (Unicorn's memory hooks report *physical* addresses;
  whether the access went through a cacheable mapping is answered from the
  alias checker's last walk of the guest's tables: cacheable when any mapping of
  the page is cacheable and SCTLR.C is set);
- DMA reads and writes come from the masters' bus views (chained onto
  ``BusView.checker``);
- cache maintenance by MVA (DCIMVAC, DCCMVAC, DCCIMVAC, DCCMVAU: ``MCR p15, 0,
  Rt, c7, c6/c10/c14/c11, 1``) and by set/way (``c7, c6/c10/c14, 2``, taken as
  acting on the whole cache) is seen through single-address code hooks on the
  sites, found by scanning code pages the way the timer intercept does
  (:mod:`emu.cpu.cp15`); the hook records the VA in Rt and lets the
  instruction run.

Findings, each with the PC and its symbol:

``stale-read``
    the CPU read a line through a cacheable mapping that a DMA write changed
    after the CPU cached it, with no invalidate in between;
``dirty-not-cleaned``
    a DMA read of a line the CPU left dirty (no clean after the store);
``dirty-over-dma``
    a DMA write into a line the CPU holds dirty: its eviction would overwrite the
    device's data.
"""

from __future__ import annotations

import zlib
from array import array
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from unicorn import (
    UC_HOOK_CODE,
    UC_HOOK_EDGE_GENERATED,
    UC_HOOK_MEM_READ,
    UC_HOOK_MEM_WRITE,
    UC_MEM_WRITE,
)

if TYPE_CHECKING:
    from cma.core import ContiguousMemory
    from emu.checkers.alias import AliasChecker
    from emu.machine import Machine

MODES = ("report", "fail")
PAGE = 0x1000

#: (CRm, opc2) of the c7 data-cache operations the model follows
CACHE_OPS = {
    (6, 1): "DCIMVAC", (10, 1): "DCCMVAC", (14, 1): "DCCIMVAC", (11, 1): "DCCMVAU",
    (6, 2): "DCISW", (10, 2): "DCCSW", (14, 2): "DCCISW",
}

# line states
_CLEAN, _DIRTY = 1, 2


def decode_cache_op(word: int) -> tuple[str, int] | None:
    """(operation, Rt) when ``word`` is ``MCR p15, 0, Rt, c7, CRm, opc2`` of :data:`CACHE_OPS`.

    ``word`` is an ARM encoding, or ``hw1 << 16 | hw2`` for Thumb-2 (the two share
    their low 28 bits).
    """
    if word & 0x0FFF_0F10 != 0x0E07_0F10:
        return None
    op = CACHE_OPS.get((word & 0xF, (word >> 5) & 7))
    return (op, (word >> 12) & 0xF) if op else None


def scan_cache_ops(data: bytes, base: int) -> list[tuple[int, bool, str, int, int]]:
    """(address, thumb, operation, Rt, condition) of every cache-maintenance MCR in a page.

    Thumb sites carry condition 0xE (an IT block's condition is not followed).
    """
    found: list[tuple[int, bool, str, int, int]] = []
    for i, w in enumerate(array("I", data[: len(data) & ~3])):
        if w >> 28 != 0xF and (d := decode_cache_op(w)):
            found.append((base + 4 * i, False, d[0], d[1], w >> 28))
    halves = array("H", data[: len(data) & ~1])
    for i in range(len(halves) - 1):
        if halves[i] == 0xEE07 and (d := decode_cache_op(0xEE07 << 16 | halves[i + 1])):
            found.append((base + 2 * i, True, d[0], d[1], 0xE))
    return found


@dataclass
class CoherencyFinding:
    """One coherency bug: what, where in the guest's code, which line, when."""

    kind: str  # "stale-read", "dirty-not-cleaned", "dirty-over-dma"
    pa: int
    pc: int | None
    symbol: str
    master: str | None
    time: int
    seconds: float
    count: int = 1  # further hits with the same kind and PC (or master)

    def describe(self) -> str:
        where = f"at PC 0x{self.pc:08x} ({self.symbol})" if self.pc is not None \
            else f"by {self.master}"
        what = {
            "stale-read": "CPU read of a line the DMA wrote after it was cached, with no "
                          "invalidate in between",
            "dirty-not-cleaned": "DMA read of a line the CPU left dirty (no clean)",
            "dirty-over-dma": "DMA write into a line the CPU holds dirty (its eviction would "
                              "overwrite the device's data)",
        }[self.kind]
        return (f"{self.kind}: {what} {where}, phys 0x{self.pa:08x}, first at "
                f"{self.seconds:.6f} s ({self.count}x)")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["text"] = self.describe()
        return d


class CoherencyChecker:
    """The cache model, its hooks and its findings."""

    name = "coherency"

    def __init__(self, machine: Machine, core: ContiguousMemory | None,
                 aliases: AliasChecker, mode: str = "report") -> None:
        if mode not in MODES:
            raise ValueError(f"coherency check mode must be 'report' or 'fail', not {mode!r}")
        self.machine = machine
        self.core = core
        self.aliases = aliases
        self.mode = mode
        ctr = machine.cpu.read_cp15(0, 0, 0, 1)
        self.line = 4 << ((ctr >> 16) & 0xF) if ctr else 64
        self.lines: dict[int, int] = {}  # line address -> _CLEAN / _DIRTY
        self.stale: set[int] = set()  # cached lines a DMA write changed since the fill
        self.findings: list[CoherencyFinding] = []
        self._index: dict[tuple[str, int | str], CoherencyFinding] = {}
        self.sites: dict[int, tuple[bool, str, int, int]] = {}
        self._site_hooks: dict[int, Any] = {}
        self._page_crc: dict[int, int] = {}
        self._seen_blocks: set[int] = set()
        self._flush: list[int] = []
        self._ranges: tuple[tuple[int, int], ...] = ()
        self._mem_hooks: list[Any] = []
        self._cacheable: dict[int, bool] = {}
        self._epoch = -1
        self._started = False
        self.stats = {"cpu_accesses": 0, "dma_accesses": 0, "maintenance_ops": 0,
                      "pages_scanned": 0, "sites": 0}

    # installation ----------------------------------------------------------------
    def install(self) -> None:
        """Chain onto the slice hook and every bus view's checker; watch new code blocks."""
        machine = self.machine
        machine.exact_pc = True  # findings name the load's own PC, not its block's
        previous = machine.between_slices

        def between() -> None:
            if previous is not None:
                previous()
            self.between_slices()

        machine.between_slices = between
        for name, view in machine.views.items():
            view.checker = self._dma_hook(name, view.checker)
        machine.cpu.uc.hook_add(UC_HOOK_EDGE_GENERATED, self._on_edge)

    def _dma_hook(self, master: str, prev: Any) -> Any:
        def hook(bus_addr: int, size: int, access: str, phys: int | None,
                 refusal: str = "") -> str | None:
            verdict: str | None = prev(bus_addr, size, access, phys, refusal) \
                if prev is not None else None
            if phys is not None and verdict is None:
                self.dma_access(master, phys, size, access == "write")
            return verdict

        return hook

    def between_slices(self) -> None:
        """Pre-scan the loaded image once, sync chunk hooks, hook sites found meanwhile."""
        machine = self.machine
        uc = machine.cpu.uc
        if not self._started:
            self._started = True
            if machine.boot is not None:  # code runs at its load address until the MMU is on
                for what, start, size in machine.boot.placed:
                    if what in ("dtb", "initrd"):
                        continue
                    for page in range(start & ~(PAGE - 1), start + size, PAGE):
                        self.scan(page)
        self.scan(machine.cpu.pc)
        for addr in self._flush:
            uc.ctl_remove_cache(addr, addr + 4)
        self._flush.clear()
        self._sync_chunks()
        if self.aliases.epoch != self._epoch:
            self._epoch = self.aliases.epoch
            self.forget_types()

    def forget_types(self) -> None:
        """Drop the cached cacheability of pages (the tables or SCTLR changed)."""
        self._cacheable.clear()

    def _sync_chunks(self) -> None:
        ranges: tuple[tuple[int, int], ...] = ()
        if self.core is not None:
            ranges = tuple((c.phys, c.phys + c.size) for c in self.core.iter_chunks())
        if ranges == self._ranges:
            return
        uc = self.machine.cpu.uc
        for h in self._mem_hooks:
            uc.hook_del(h)
        self._mem_hooks = [uc.hook_add(UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE, self._on_mem,
                                       begin=lo, end=hi - 1) for lo, hi in ranges]
        gone = [line for line in self.lines
                if not any(lo <= line < hi for lo, hi in ranges)]
        for line in gone:  # freed memory: forget its lines (a new owner starts clean)
            del self.lines[line]
            self.stale.discard(line)
        self._ranges = ranges
        uc.ctl_flush_tb()

    # discovery of maintenance instructions ---------------------------------------------
    def _on_edge(self, uc: Any, cur: Any, prev: Any, user: Any) -> None:
        for pc in (int(cur.pc), int(prev.pc)):
            if pc not in self._seen_blocks:
                self._seen_blocks.add(pc)
                self.scan(pc)

    def scan(self, va: int) -> int:
        """Scan the code page holding ``va``; returns how many new sites were hooked.

        A site found while a slice runs takes effect from the next slice (its block
        is dropped from Unicorn's translation cache there).
        """
        page = va & ~(PAGE - 1)
        data = self.machine.bus.read_virt_code(page, PAGE)
        if data is None:
            return 0
        crc = zlib.crc32(data)
        if self._page_crc.get(page) == crc:
            return 0
        self._page_crc[page] = crc
        self.stats["pages_scanned"] += 1
        added = 0
        for addr, thumb, op, rt, cond in scan_cache_ops(data, page):
            if self.sites.get(addr) == (thumb, op, rt, cond):
                continue
            self.sites[addr] = (thumb, op, rt, cond)
            if addr not in self._site_hooks:
                self._site_hooks[addr] = self.machine.cpu.uc.hook_add(
                    UC_HOOK_CODE, self._on_site, begin=addr, end=addr)
            self._flush.append(addr)
            added += 1
        self.stats["sites"] = len(self.sites)
        return added

    def _on_site(self, uc: Any, address: int, size: int, user: Any) -> None:
        site = self.sites.get(address)
        cpu = self.machine.cpu
        if site is None or cpu.thumb != site[0]:
            return
        _, op, rt, cond = site
        if not cond_passed(cond, cpu.cpsr):
            return
        self.maintain(op, cpu.reg(rt), address)

    # the model ------------------------------------------------------------------
    def _is_cacheable(self, pa: int) -> bool:
        page = pa & ~(PAGE - 1)
        hit = self._cacheable.get(page)
        if hit is None:
            hit = bool(self.machine.cpu.sctlr & 4) and any(
                m.mtype.cacheable for m in self.aliases.mappings
                if m.pa <= page < m.pa + m.size)
            self._cacheable[page] = hit
        return hit

    def _on_mem(self, uc: Any, access: int, address: int, size: int, value: int,
                user: Any) -> None:
        self.cpu_access(address, size, access == UC_MEM_WRITE)

    def cpu_access(self, pa: int, size: int, write: bool) -> None:
        """A CPU load or store at physical ``pa`` (ignored unless the page is cacheable)."""
        self.stats["cpu_accesses"] += 1
        if not self._is_cacheable(pa):
            return
        mask = ~(self.line - 1)
        for line in range(pa & mask, pa + size, self.line):
            state = self.lines.get(line)
            if write:
                self.lines[line] = _DIRTY
            elif state is None:
                self.lines[line] = _CLEAN
            elif line in self.stale:
                self._find("stale-read", line, self.machine.cpu.pc, None)

    def dma_access(self, master: str, pa: int, size: int, write: bool) -> None:
        """A DMA read or write the bus view accepted."""
        self.stats["dma_accesses"] += 1
        mask = ~(self.line - 1)
        lines = self.lines
        for line in range(pa & mask, pa + size, self.line):
            state = lines.get(line)
            if state is None:
                continue
            if write:
                if state == _DIRTY:
                    self._find("dirty-over-dma", line, None, master)
                self.stale.add(line)
            elif state == _DIRTY:
                self._find("dirty-not-cleaned", line, None, master)

    def maintain(self, op: str, va: int, pc: int | None = None) -> None:
        """Apply a cache-maintenance operation (by MVA: ``va``; by set/way: everything)."""
        self.stats["maintenance_ops"] += 1
        clean = op in ("DCCMVAC", "DCCMVAU", "DCCSW")
        if op.endswith("SW"):
            if clean:
                for line in self.lines:
                    self.lines[line] = _CLEAN
            else:
                self.lines.clear()
                self.stale.clear()
            return
        pa = self.machine.translate(va)
        if pa is None:
            return
        line = pa & ~(self.line - 1)
        if line not in self.lines:
            return
        if clean:
            self.lines[line] = _CLEAN
        else:
            del self.lines[line]
            self.stale.discard(line)

    def _find(self, kind: str, pa: int, pc: int | None, master: str | None) -> None:
        key: tuple[str, int | str] = (kind, pc if pc is not None else master or "?")
        hit = self._index.get(key)
        if hit is not None:
            hit.count += 1
            return
        clock = self.machine.clock
        symbol = self.machine.symbolize(pc) if pc is not None else ""
        finding = CoherencyFinding(kind, pa, pc, symbol, master, clock.now, clock.now / clock.hz)
        self._index[key] = finding
        self.findings.append(finding)

    # results ------------------------------------------------------------------------
    def failures(self) -> list[str]:
        if self.mode != "fail":
            return []
        return [f"cache coherency: {f.describe()}" for f in self.findings]

    def describe(self) -> dict[str, Any]:
        return {"mode": self.mode, "line_size": self.line, "stats": dict(self.stats),
                "sites": {f"0x{a:08x}": s[1] for a, s in sorted(self.sites.items())},
                "findings": [f.to_dict() for f in self.findings]}


def cond_passed(cond: int, cpsr: int) -> bool:
    """Whether ARM condition ``cond`` holds for the NZCV flags of ``cpsr``."""
    n, z, c, v = (cpsr >> 31) & 1, (cpsr >> 30) & 1, (cpsr >> 29) & 1, (cpsr >> 28) & 1
    if cond >= 0xE:
        return True
    result = (z == 1, c == 1, n == 1, v == 1, c == 1 and z == 0, n == v,
              n == v and z == 0)[cond >> 1]
    return not result if cond & 1 else result
