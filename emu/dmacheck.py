"""Checking every DMA access against the CMA core, and naming the bug behind a bad one.

A master's bus view (:class:`emu.bus.BusView`) asks its checker about every access:
once with the physical address the access translates to (the checker may refuse
it: outside reserved memory, into a freed chunk), and once for every access the
view itself refused (outside its ``dma-ranges`` windows). For each refusal the
checker works out what the programmed address most likely was, from the chunks
the CMA core handed out (live ones, and ones freed earlier):

=========================  ================================================================
verdict                    the programmed bus address equals ...
=========================  ================================================================
``phys-for-bus``           the chunk's *physical* address (``virt_to_phys`` used where
                           ``dma_addr_t`` belongs)
``virt-for-bus``           the chunk's *CPU virtual* address
``wrong-alias``            the chunk's bus address through another alias (a multiple of
                           1 GiB off) or through another master's view
``use-after-put``          a chunk that was freed (``cma_put``) while the device still used it
``outside-reserved``       memory outside every CMA region
``not-allocated``          a CMA region, but no chunk there
``outside-window``         nothing known: outside the master's DMA window
=========================  ================================================================

Policies: ``chunks`` (default) allows only live chunks, ``reserved`` any address in
a CMA region, ``window`` anything the bus view accepts (diagnosis only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from cma.core import ContiguousMemory
from cma.translate import phys_to_dma
from emu.clock import VirtualClock

if TYPE_CHECKING:
    from emu.system import MachineTranslator

ALIAS_STEP = 0x4000_0000


class ViewLike(Protocol):
    name: str

    @property
    def windows(self) -> tuple[tuple[int, int, int], ...] | None: ...


@dataclass
class DmaViolation:
    """One refused DMA access, with the checker's diagnosis."""

    master: str
    access: str
    bus_addr: int
    size: int
    phys: int | None
    verdict: str
    detail: str
    time: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _ChunkInfo:
    phys: int
    size: int
    device: str | None
    region: str
    dma: int | None
    virt: int | None
    freed_at: int | None = None


class DmaChecker:
    """Shared by every master of one machine; :meth:`for_master` gives each its hook."""

    def __init__(self, core: ContiguousMemory, translator: MachineTranslator,
                 names: dict[str, str], clock: VirtualClock, policy: str = "chunks") -> None:
        self.core = core
        self.translator = translator
        self.names = names
        self.clock = clock
        self.policy = policy
        self.violations: list[DmaViolation] = []
        self.accepted = 0
        self._live: dict[int, _ChunkInfo] = {}
        self._freed: list[_ChunkInfo] = []

    def for_master(self, master: str, view: ViewLike) -> MasterCheck:
        return MasterCheck(self, master, view)

    # chunk bookkeeping -------------------------------------------------------------
    def _sync(self) -> None:
        now = self.clock.now
        live: dict[int, _ChunkInfo] = {}
        for chunk in self.core.iter_chunks():
            old = self._live.get(chunk.phys)
            if old is not None and old.size == chunk.size and old.device == chunk.device:
                live[chunk.phys] = old
                continue
            dma: int | None
            try:
                dma = chunk.dma_addr
            except Exception:  # an owner that cannot reach it: no bus address to compare
                dma = None
            live[chunk.phys] = _ChunkInfo(chunk.phys, chunk.size, chunk.device,
                                          chunk.region.name, dma,
                                          self.translator.phys_to_virt(chunk.phys))
        for phys, info in self._live.items():
            if phys not in live or live[phys] is not info:
                self._freed.append(_ChunkInfo(**{**asdict(info), "freed_at": now}))
        self._live = live

    def _in_regions(self, phys: int, size: int) -> bool:
        return any(r.contains(phys, size) for r in self.core.regions)

    # the checks ----------------------------------------------------------------------
    def check(self, master: str, view: ViewLike, bus_addr: int, size: int, access: str,
              phys: int | None, refusal: str) -> str | None:
        """Called for every access: returns a reason to refuse it, or None to let it pass."""
        if phys is not None and self.policy == "window":
            self.accepted += 1
            return None
        self._sync()
        if phys is None:
            verdict, detail = self._diagnose(master, view, bus_addr, size)
            self._record(master, access, bus_addr, size, None, verdict,
                         f"{refusal}; {detail}" if detail else refusal)
            return refusal
        live = next((c for c in self._live.values()
                     if c.phys <= phys and phys + size <= c.phys + c.size), None)
        if live is not None:
            self.accepted += 1
            return None
        in_region = self._in_regions(phys, size)
        if self.policy == "reserved" and in_region:
            self.accepted += 1
            return None
        freed = next((c for c in reversed(self._freed)
                      if c.phys < phys + size and phys < c.phys + c.size), None)
        if freed is not None:
            verdict = "use-after-put"
            detail = (f"phys 0x{phys:08x} is in chunk 0x{freed.phys:08x}+0x{freed.size:x} "
                      f"of {freed.device or 'no device'}, freed at tick {freed.freed_at}")
        elif in_region:
            verdict, detail = "not-allocated", f"phys 0x{phys:08x} is in a CMA region, no chunk"
        else:
            verdict, detail = "outside-reserved", f"phys 0x{phys:08x} is outside every CMA region"
        self._record(master, access, bus_addr, size, phys, verdict, detail)
        return detail

    def _diagnose(self, master: str, view: ViewLike, bus_addr: int,
                  size: int) -> tuple[str, str]:
        chunks = list(self._live.values()) + list(reversed(self._freed))

        def hit(base: int | None, c: _ChunkInfo) -> bool:
            return base is not None and base <= bus_addr and bus_addr + size <= base + c.size

        mine = [c for c in chunks if c.device == master] + \
               [c for c in chunks if c.device != master]
        for c in mine:
            what = f"chunk 0x{c.phys:08x}+0x{c.size:x} ({c.region})"
            freed = f", freed at tick {c.freed_at}" if c.freed_at is not None else ""
            right = _master_dma(view, c)
            should = f"; the bus address is 0x{right:08x}" if right is not None else ""
            if hit(c.phys, c):
                return "phys-for-bus", (f"0x{bus_addr:08x} is the physical address of {what}"
                                        f"{freed}{should}")
            if hit(c.virt, c):
                return "virt-for-bus", (f"0x{bus_addr:08x} is the CPU virtual address of "
                                        f"{what}{freed}{should}")
            for k in (1, 2, 3):
                alt = None if right is None else (right + k * ALIAS_STEP) & 0xFFFF_FFFF
                if hit(alt, c):
                    return "wrong-alias", (f"0x{bus_addr:08x} is {what} through another bus "
                                           f"alias{freed}{should}")
            for other in self.names:
                if other == master:
                    continue
                theirs = phys_to_dma(self.translator.dma_windows(other), c.phys, c.size)
                if theirs is not None and theirs != right and hit(theirs, c):
                    return "wrong-alias", (f"0x{bus_addr:08x} is {what} as {other} sees it, "
                                           f"not as {master} does{freed}{should}")
        return "outside-window", ""

    def _record(self, master: str, access: str, bus_addr: int, size: int, phys: int | None,
                verdict: str, detail: str) -> None:
        self.violations.append(DmaViolation(master, access, bus_addr, size, phys, verdict,
                                            detail, self.clock.now))

    def describe(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "accepted": self.accepted,
            "violations": [v.to_dict() for v in self.violations],
        }


def _master_dma(view: ViewLike, chunk: _ChunkInfo) -> int | None:
    windows = view.windows
    if windows is None:
        return chunk.phys
    return phys_to_dma([(cpu, bus, size) for bus, cpu, size in windows], chunk.phys, chunk.size)


@dataclass
class MasterCheck:
    """The hook one bus view calls: ``(bus, size, access, phys | None, refusal) -> reason``."""

    checker: DmaChecker
    master: str
    view: ViewLike

    def __call__(self, bus_addr: int, size: int, access: str, phys: int | None,
                 refusal: str = "") -> str | None:
        return self.checker.check(self.master, self.view, bus_addr, size, access, phys,
                                  refusal)


CheckHook = Callable[[int, int, str, "int | None", str], "str | None"]
