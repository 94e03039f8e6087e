"""The system bus: the CPU's physical map and one checked view per DMA master.

This is the only module that talks to Unicorn's memory API. The CPU view holds
RAM banks and flash (host memory inside Unicorn), MMIO windows of device models
(``mmio_map`` callbacks into :meth:`Device.read` / :meth:`Device.write`) and
"unimplemented" stubs for enabled nodes nobody models. Overlaps are refused
with a message naming both ranges.

A DMA master never touches memory directly: it gets a :class:`BusView` that
translates its bus addresses through its own ``dma-ranges`` windows, refuses
anything that does not fit one window and land in RAM, and records every
refusal and every accepted write in the :class:`DmaLog`.
"""

from __future__ import annotations

import bisect
import ctypes
import logging
import mmap
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from unicorn import (
    UC_HOOK_MEM_READ,
    UC_HOOK_MEM_WRITE_PROT,
    UC_PROT_ALL,
    UC_PROT_EXEC,
    UC_PROT_READ,
)
from unicorn.arm_const import UC_ARM_REG_PC
from unicorn.unicorn_py3.unicorn import uclib

from emu.clock import VirtualClock
from emu.devices.base import Device, DeviceContext, DeviceLog, Unimplemented
from emu.errors import ConfigurationError

if TYPE_CHECKING:
    from emu.trace import Tracer

log = logging.getLogger("emu.bus")

#: granule of Unicorn mappings; MMIO windows are widened to it and merged
MAP_GRANULE = 0x1000
#: how many recent guest MMIO accesses :attr:`Bus.mmio_ring` keeps
MMIO_RING = 16


def _fmt(start: int, size: int) -> str:
    return f"[0x{start:x}, 0x{start + size:x})"


@dataclass
class Region:
    """One range of the CPU's physical map."""

    name: str
    start: int
    size: int
    kind: str  # "ram", "flash", "mmio", "stub"
    device: Device | None = None

    @property
    def end(self) -> int:
        return self.start + self.size

    def contains(self, addr: int, size: int = 1) -> bool:
        return self.start <= addr and addr + size <= self.end

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "start": self.start, "size": self.size, "kind": self.kind}


class FlashWriteHandler(Protocol):
    """Receives guest stores to flash (command writes of a CFI part)."""

    def __call__(self, offset: int, size: int, value: int) -> None: ...


class FlashPart(Protocol):
    """A flash chip (or interleaved chips) behind a bank (see :mod:`emu.devices.mtd`).

    While ``reads_array`` is true the bank is plain memory; otherwise the bus asks
    :meth:`read` for every guest load from the bank.
    """

    @property
    def reads_array(self) -> bool: ...

    def read(self, offset: int, size: int) -> int: ...

    def write(self, offset: int, size: int, value: int) -> None: ...


class FlashMemory:
    """One flash bank's array bytes, in host memory that Unicorn maps with ``mem_map_ptr``.

    Parts program and erase through :meth:`write` from inside a guest store's hook.
    ``uc.mem_write`` must not be used there: on a read-only mapping it makes the
    region writable and read-only again, two memory transactions that rebuild
    Unicorn's address-space view under the access that is running (a use after
    free). Writing the host bytes directly changes nothing but the bytes; code
    translated from the old bytes is dropped before the next slice
    (:attr:`changed`, :meth:`Bus.retranslate`).
    """

    def __init__(self, start: int, size: int) -> None:
        self.start = start
        self.size = size
        self.changed = False
        self._bytes = mmap.mmap(-1, size)  # zero-filled, pages committed when touched
        self.address = ctypes.addressof(ctypes.c_char.from_buffer(self._bytes))

    def read(self, offset: int, size: int) -> bytes:
        return self._bytes[offset:offset + size]

    def write(self, offset: int, data: bytes) -> None:
        self._bytes[offset:offset + len(data)] = data
        self.changed = True

    def poke(self, offset: int, data: bytes) -> None:
        """Put bytes in place without marking code stale (status answers, restores)."""
        self._bytes[offset:offset + len(data)] = data


class _FlashBank:
    """The Unicorn side of one flash bank.

    Stores never reach memory: they go to the part (or the plain handler). While
    the part is out of read-array mode, a read hook bounded to the bank asks the
    part for each load and puts the answer into memory just before the load reads
    it; the array bytes it covered are kept aside and put back before the part
    sees the next store. The hook exists only in those modes, so array reads and
    instruction fetches stay plain memory.

    Code translated before the hook existed would never call it, and Unicorn's
    translation cache cannot be flushed from inside a hook (the flush is immediate
    and frees the block that is running). So the store that installs the hook ends
    the CPU's slice with ``emu_stop``, and :meth:`Bus.retranslate` flushes before
    the next one. Unicorn stops *on* that store: the next slice starts by running
    the same instruction again. The part has already seen the store, so the bank
    remembers it (PC, offset, size, value) and swallows exactly that replay; the
    run loop runs the replay alone, before taking any interrupt (:meth:`Bus.replay_at`).
    Going back to read-array mode after a program or erase ends the slice the same
    way, so code fetched from the flash is retranslated from the new bytes.

    The answer for the word the command was written to is put in place at once, so
    a driver reading back where it wrote sees the part even if the stop were lost
    (Unicorn drops ``emu_stop`` inside a Thumb IT block).
    """

    def __init__(self, uc: Any, region: Region, on_write: FlashWriteHandler | None,
                 part: FlashPart | None, memory: FlashMemory) -> None:
        self.uc = uc
        self.region = region
        self.on_write = on_write
        self.part = part
        self.memory = memory
        self.stale_code = False
        #: the store that ended the last slice, to be swallowed when it runs again
        self.replay: tuple[int, int, int, int] | None = None
        self._hook: Any = None
        self._saved: dict[int, int] = {}

    def store(self, offset: int, size: int, value: int) -> None:
        part = self.part
        if part is None:
            if self.on_write is not None:
                self.on_write(offset, size, value)
            return
        replay, self.replay = self.replay, None
        if replay is not None and replay[1:] == (offset, size, value) \
                and replay[0] == self._pc():
            return  # the store that ended the last slice, run again: already done
        self._restore()
        part.write(offset, size, value)
        if part.reads_array:
            if self._hook is not None:
                # blocks translated while the hook existed keep their slower (still
                # correct) loads until the next retranslation
                self.uc.hook_del(self._hook)
                self._hook = None
            memory = self.memory
            if memory.changed:
                memory.changed = False
                self._end_slice(offset, size, value)
            return
        if self._hook is None:
            r = self.region
            self._hook = self.uc.hook_add(UC_HOOK_MEM_READ, self._read_hook,
                                          begin=r.start, end=r.end - 1)
            self._end_slice(offset, size, value)
        word = offset & ~3
        self._answer(word, min(4, self.region.size - word))

    def _pc(self) -> int:
        return int(self.uc.reg_read(UC_ARM_REG_PC))

    def _end_slice(self, offset: int, size: int, value: int) -> None:
        self.stale_code = True
        self.replay = (self._pc(), offset, size, value)
        self.uc.emu_stop()

    def _read_hook(self, uc: Any, access: int, addr: int, size: int, value: int,
                   user: Any) -> None:
        self._answer(addr - self.region.start, size)

    def _answer(self, offset: int, size: int) -> None:
        assert self.part is not None
        value = self.part.read(offset, size)
        memory = self.memory
        old = memory.read(offset, size)
        for i in range(size):
            self._saved.setdefault(offset + i, old[i])
        memory.poke(offset, value.to_bytes(size, "little"))

    def _restore(self) -> None:
        if self._saved:
            for offset, byte in self._saved.items():
                self.memory.poke(offset, bytes((byte,)))
            self._saved.clear()


_UNSEEN = object()
_SIZE_MASK = (0, 0xFF, 0xFFFF, 0xFF_FFFF, 0xFFFF_FFFF, 0, 0, 0, 0xFFFF_FFFF_FFFF_FFFF)
_DEVICE_MEMO_LIMIT = 1 << 16


@dataclass(frozen=True)
class DmaRecord:
    """One entry of the DMA log: an accepted write or a refused access."""

    kind: str  # "write" or "refused"
    master: str
    bus: int
    size: int
    time: int
    phys: int | None = None
    reason: str = ""
    access: str = "write"

    def describe(self) -> dict[str, object]:
        d: dict[str, object] = {"kind": self.kind, "master": self.master, "bus": self.bus,
                                "size": self.size, "time": self.time, "access": self.access}
        if self.phys is not None:
            d["phys"] = self.phys
        if self.reason:
            d["reason"] = self.reason
        return d


@dataclass
class DmaLog:
    """Every refused DMA access and every accepted DMA write, in order."""

    records: list[DmaRecord] = field(default_factory=list)

    def refused(self) -> list[DmaRecord]:
        return [r for r in self.records if r.kind == "refused"]

    def writes(self) -> list[DmaRecord]:
        return [r for r in self.records if r.kind == "write"]


class WindowLike(Protocol):
    """A ``dma-ranges`` window: ``size`` bytes at ``dma_start`` seen at ``cpu_start``."""

    @property
    def cpu_start(self) -> int: ...

    @property
    def dma_start(self) -> int: ...

    @property
    def size(self) -> int: ...


class Bus:
    """The CPU's physical address map on one Unicorn instance."""

    def __init__(self, uc: Any, clock: VirtualClock) -> None:
        self.uc: Any = uc
        self.clock = clock
        self.regions: list[Region] = []
        self.dma_log = DmaLog()
        self.views: dict[str, BusView] = {}
        self._mmio: list[Region] = []
        self._mmio_starts: list[int] = []
        #: device region by MMIO address, filled on first access (the lookup is per access)
        self._device_memo: dict[int, Region | None] = {}
        self._flash_banks: list[_FlashBank] = []
        self._finalized = False
        self.on_unmapped: Callable[[int, int, bool], None] | None = None
        #: set by :mod:`emu.trace` while MMIO or DMA is traced; None costs one check per access
        self.tracer: Tracer | None = None
        #: the last :data:`MMIO_RING` guest MMIO accesses, oldest first, as
        #: ``(tick, physical address, size, value, is_write)`` (for run diagnoses)
        self.mmio_ring: deque[tuple[int, int, int, int, bool]] = deque(maxlen=MMIO_RING)
        self._vmem_buf = ctypes.create_string_buffer(16)
        self._code_buf = ctypes.create_string_buffer(0x1000)

    # building ------------------------------------------------------------
    def _claim(self, name: str, start: int, size: int, kind: str,
               device: Device | None = None) -> Region:
        if size <= 0:
            raise ConfigurationError(f"{name}: region size must be positive, not 0x{size:x}")
        if start < 0 or start + size > 1 << 32:
            raise ConfigurationError(
                f"{name}: region {_fmt(start, size)} is outside the 32-bit physical space"
            )
        for r in self.regions:
            if start < r.end and r.start < start + size:
                raise ConfigurationError(
                    f"{name} {_fmt(start, size)} overlaps {r.name} {_fmt(r.start, r.size)}"
                )
        region = Region(name, start, size, kind, device)
        self.regions.append(region)
        self.regions.sort(key=lambda r: r.start)
        return region

    def add_ram(self, name: str, start: int, size: int) -> Region:
        """Map a RAM bank (read/write/execute host memory)."""
        if start % MAP_GRANULE or size % MAP_GRANULE:
            raise ConfigurationError(
                f"{name}: RAM {_fmt(start, size)} must be aligned to 0x{MAP_GRANULE:x}"
            )
        region = self._claim(name, start, size, "ram")
        self.uc.mem_map(start, size, UC_PROT_ALL)
        return region

    def add_flash(self, name: str, start: int, size: int,
                  on_write: FlashWriteHandler | None = None,
                  part: Callable[[FlashMemory], FlashPart] | None = None) -> Region:
        """Map flash: readable and executable; guest stores never reach memory.

        Stores go to ``on_write``, or to the part built by ``part`` from the bank's
        :class:`FlashMemory` (a CFI chip that answers reads itself outside read-array mode).
        """
        if start % MAP_GRANULE or size % MAP_GRANULE:
            raise ConfigurationError(
                f"{name}: flash {_fmt(start, size)} must be aligned to 0x{MAP_GRANULE:x}"
            )
        region = self._claim(name, start, size, "flash")
        memory = FlashMemory(start, size)
        self.uc.mem_map_ptr(start, size, UC_PROT_READ | UC_PROT_EXEC, memory.address)
        # mem_map_ptr alone leaves guest stores landing in the bytes (the hook runs,
        # then the store is done anyway); mem_protect makes the mapping read-only
        self.uc.mem_protect(start, size, UC_PROT_READ | UC_PROT_EXEC)
        if not self._flash_banks:
            self.uc.hook_add(UC_HOOK_MEM_WRITE_PROT, self._flash_write_hook)
        model = part(memory) if part is not None else None
        self._flash_banks.append(_FlashBank(self.uc, region, on_write, model, memory))
        return region

    def retranslate(self) -> bool:
        """Drop translated code a flash command made stale; call between slices.

        A flash bank that left read-array mode (its loads must now reach the part) or
        came back to it with new contents ends the slice with ``emu_stop``; this
        flushes Unicorn's translation cache before the next ``emu_start``, the only
        place where that is safe. True when something was flushed.
        """
        stale = False
        for bank in self._flash_banks:
            if bank.stale_code:
                bank.stale_code = False
                stale = True
        if stale:
            self.uc.ctl_flush_tb()
        return stale

    def replay_at(self, pc: int) -> bool:
        """Whether the next slice, starting at ``pc``, begins with a flash store replay.

        True when a flash command ended the last slice on the store at ``pc``: the
        caller should run that one instruction (``count=1``) before it delivers any
        interrupt, so the replay is swallowed and the part sees the store once. A
        remembered store elsewhere is forgotten (its stop was lost).
        """
        pending = False
        for bank in self._flash_banks:
            if bank.replay is not None:
                if bank.replay[0] == pc & ~1:
                    pending = True
                else:
                    bank.replay = None
        return pending

    def flash_parts(self) -> list[tuple[Region, FlashPart]]:
        """The flash banks that have a part model, with their regions."""
        return [(b.region, b.part) for b in self._flash_banks if b.part is not None]

    def add_device(self, name: str, start: int, size: int, device: Device,
                   kind: str = "mmio") -> Region:
        """Route guest accesses to ``[start, start+size)`` to ``device``."""
        region = self._claim(name, start, size, kind, device)
        self._mmio.append(region)
        return region

    def add_stub(self, name: str, start: int, size: int, clock: VirtualClock,
                 log_: DeviceLog | None = None) -> Unimplemented:
        """An unimplemented-device stub: reads as zero, writes ignored, accesses logged."""
        stub = Unimplemented(DeviceContext(name=name, clock=clock,
                                           log=log_ or DeviceLog(name)), size)
        self.add_device(name, start, size, stub, kind="stub")
        return stub

    def finalize(self) -> None:
        """Map the MMIO windows: widened to the granule, neighbours merged into one mapping."""
        if self._finalized:
            return
        self._finalized = True
        self._mmio.sort(key=lambda r: r.start)
        self._mmio_starts = [r.start for r in self._mmio]
        spans: list[list[int]] = []
        for r in self._mmio:
            lo = r.start & ~(MAP_GRANULE - 1)
            hi = (r.end + MAP_GRANULE - 1) & ~(MAP_GRANULE - 1)
            if spans and lo <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], hi)
            else:
                spans.append([lo, hi])
        for lo, hi in spans:
            for r in self.regions:
                if r.kind in ("ram", "flash") and lo < r.end and r.start < hi:
                    raise ConfigurationError(
                        f"MMIO page span {_fmt(lo, hi - lo)} overlaps {r.name} "
                        f"{_fmt(r.start, r.size)}"
                    )
            inside = [r for r in self._mmio if lo <= r.start and r.end <= hi]
            if len(inside) == 1 and inside[0].device is not None:
                read, write = self._direct(inside[0])
                self.uc.mmio_map(lo, hi - lo, read, lo, write, lo)
            else:
                self.uc.mmio_map(lo, hi - lo, self._mmio_read, lo, self._mmio_write, lo)

    def _direct(self, region: Region) -> tuple[Callable[..., int], Callable[..., None]]:
        """MMIO callbacks for a span that holds one device: no lookup per access.

        Accesses to the rest of the span (the device's window widened to the page) take
        the general path, which reports them as accesses to nothing.
        """
        assert region.device is not None
        dev_read, dev_write = region.device.read, region.device.write
        start, end = region.start, region.end
        ring, clock = self.mmio_ring, self.clock
        general_read, general_write = self._mmio_read, self._mmio_write

        def read(uc: Any, offset: int, size: int, base: int) -> int:
            addr = base + offset
            if addr < start or addr >= end or self.tracer is not None:
                return general_read(uc, offset, size, base)
            value = dev_read(addr - start, size) & _SIZE_MASK[size]
            ring.append((clock.now, addr, size, value, False))
            return value

        def write(uc: Any, offset: int, size: int, value: int, base: int) -> None:
            addr = base + offset
            if addr < start or addr >= end or self.tracer is not None:
                general_write(uc, offset, size, value, base)
                return
            ring.append((clock.now, addr, size, value, True))
            dev_write(addr - start, size, value)

        return read, write

    # guest MMIO ----------------------------------------------------------
    def region_at(self, addr: int) -> Region | None:
        """The region holding physical ``addr``."""
        for r in self.regions:
            if r.start <= addr < r.end:
                return r
        return None

    def _device_at(self, addr: int) -> Region | None:
        r = self._device_memo.get(addr, _UNSEEN)
        if r is not _UNSEEN:
            return r  # type: ignore[return-value]
        i = bisect.bisect_right(self._mmio_starts, addr) - 1
        r = self._mmio[i] if i >= 0 and addr < self._mmio[i].end else None
        if len(self._device_memo) >= _DEVICE_MEMO_LIMIT:  # a guest sweeping MMIO space
            self._device_memo.clear()
        self._device_memo[addr] = r
        return r

    def _mmio_read(self, uc: Any, offset: int, size: int, base: int) -> int:
        addr = base + offset
        r = self._device_at(addr)
        if r is None or r.device is None:
            self.mmio_ring.append((self.clock.now, addr, size, 0, False))
            self._unmapped(addr, size, False)
            return 0
        value = r.device.read(addr - r.start, size) & _SIZE_MASK[size]
        self.mmio_ring.append((self.clock.now, addr, size, value, False))
        if self.tracer is not None:
            self.tracer.mmio(r, addr, size, value, False)
        return value

    def _mmio_write(self, uc: Any, offset: int, size: int, value: int, base: int) -> None:
        addr = base + offset
        self.mmio_ring.append((self.clock.now, addr, size, value, True))
        r = self._device_at(addr)
        if r is None or r.device is None:
            self._unmapped(addr, size, True)
            return
        if self.tracer is not None:
            self.tracer.mmio(r, addr, size, value, True)
        r.device.write(addr - r.start, size, value)

    def _unmapped(self, addr: int, size: int, write: bool) -> None:
        if self.on_unmapped is not None:
            self.on_unmapped(addr, size, write)

    def _flash_write_hook(self, uc: Any, access: int, addr: int, size: int, value: int,
                          user: Any) -> bool:
        for bank in self._flash_banks:
            region = bank.region
            if region.contains(addr, size):
                bank.store(addr - region.start, size, value & ((1 << (8 * size)) - 1))
                return True  # handled: Unicorn skips the store, the flash bytes stay as they are
        return False

    # host access (loaders, page walks, DMA) --------------------------------
    def is_memory(self, addr: int, size: int) -> bool:
        """True when the whole range is RAM or flash."""
        r = self.region_at(addr)
        return r is not None and r.kind in ("ram", "flash") and r.contains(addr, size)

    def is_ram(self, addr: int, size: int) -> bool:
        r = self.region_at(addr)
        return r is not None and r.kind == "ram" and r.contains(addr, size)

    def read(self, addr: int, size: int) -> bytes:
        """Host read of RAM or flash (loaders, tools); MMIO is not read this way."""
        if not self.is_memory(addr, size):
            raise ConfigurationError(
                f"host read of {_fmt(addr, size)} is not inside one RAM or flash region"
            )
        return bytes(self.uc.mem_read(addr, size))

    def read_u32(self, addr: int) -> int | None:
        """A 32-bit little-endian word of memory, or None outside RAM/flash (page walks)."""
        if not self.is_memory(addr, 4):
            return None
        return int.from_bytes(self.uc.mem_read(addr, 4), "little")

    def write(self, addr: int, data: bytes) -> None:
        """Host write into RAM or flash (image loading)."""
        if not self.is_memory(addr, len(data)):
            raise ConfigurationError(
                f"host write of {_fmt(addr, len(data))} is not inside one RAM or flash region"
            )
        for bank in self._flash_banks:
            if bank.region.contains(addr, len(data)):
                bank.memory.poke(addr - bank.region.start, bytes(data))
                bank.stale_code = True  # flushed before the next slice
                return
        self.uc.mem_write(addr, bytes(data))

    def read_virt(self, va: int, size: int) -> bytes | None:
        """Up to 16 bytes at virtual ``va`` as an instruction fetch sees them, or None.

        Uses Unicorn's own MMU translation (``uc_vmem_read``, about 1 µs; the
        Python binding does not expose it), so tracing can read each executed
        instruction without a page walk in Python.
        """
        buf = self._vmem_buf
        if not 0 < size <= len(buf) or _vmem_read(self.uc._uch, va, UC_PROT_EXEC, buf, size):
            return None
        return buf.raw[:size]

    def read_virt_code(self, va: int, size: int = 0x1000) -> bytes | None:
        """``size`` bytes of code at virtual ``va`` through Unicorn's MMU, or None when unmapped.

        The timer intercept scans a page of code for every new translated block; a
        page walk in Python there cost more than the rest of a Linux boot's hooks.
        """
        buf = self._code_buf
        if len(buf) < size:
            buf = self._code_buf = ctypes.create_string_buffer(size)
        if size <= 0 or _vmem_read(self.uc._uch, va, UC_PROT_EXEC, buf, size):
            return None
        return buf.raw[:size]

    def ram_banks(self) -> list[tuple[int, int]]:
        return [(r.start, r.size) for r in self.regions if r.kind == "ram"]

    def stubs(self) -> list[Region]:
        return [r for r in self.regions if r.kind == "stub"]

    def touched_stubs(self) -> list[Region]:
        return [r for r in self.stubs()
                if isinstance(r.device, Unimplemented) and r.device.touched]

    # DMA ------------------------------------------------------------------
    def view(self, name: str, windows: Sequence[WindowLike] | None = None) -> BusView:
        """The DMA port of master ``name`` (identity onto RAM when ``windows`` is None)."""
        v = BusView(self, name, windows)
        self.views[name] = v
        return v


_vmem_read = uclib["uc_vmem_read"]  # a private function object: the binding's stays untouched
_vmem_read.argtypes = [ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int, ctypes.c_void_p,
                       ctypes.c_size_t]
_vmem_read.restype = ctypes.c_int

DmaCheckHook = Callable[[int, int, str, "int | None", str], "str | None"]


class BusView:
    """A DMA master's view of the bus (implements the ``DmaPort`` protocol)."""

    def __init__(self, bus: Bus, name: str, windows: Sequence[WindowLike] | None) -> None:
        self.bus = bus
        self.name = name
        self.windows: tuple[tuple[int, int, int], ...] | None = (
            None if windows is None
            else tuple((w.dma_start, w.cpu_start, w.size) for w in windows)
        )
        #: an optional second opinion on every access (see :mod:`emu.dmacheck`): called as
        #: ``checker(bus_addr, size, access, phys_or_None, refusal)``; a returned reason
        #: refuses an access the windows allowed
        self.checker: DmaCheckHook | None = None

    def describe(self) -> dict[str, object]:
        return {
            "master": self.name,
            "windows": None if self.windows is None else [
                {"bus": b, "cpu": c, "size": s} for b, c, s in self.windows
            ],
        }

    def to_phys(self, bus_addr: int) -> int | None:
        if self.windows is None:
            return bus_addr
        for b, c, s in self.windows:
            if b <= bus_addr < b + s:
                return c + (bus_addr - b)
        return None

    def to_bus(self, phys: int) -> int | None:
        if self.windows is None:
            return phys
        for b, c, s in self.windows:
            if c <= phys < c + s:
                return b + (phys - c)
        return None

    def _check(self, bus_addr: int, size: int, access: str) -> int | None:
        reason = ""
        phys: int | None = None
        if size <= 0:
            reason = f"empty access of {size} bytes"
        elif self.windows is None:
            phys = bus_addr
        else:
            for b, c, s in self.windows:
                if b <= bus_addr < b + s:
                    if bus_addr + size > b + s:
                        reason = (f"access crosses the end of window bus 0x{b:x}+0x{s:x} "
                                  f"(cpu 0x{c:x})")
                    else:
                        phys = c + (bus_addr - b)
                    break
            else:
                reason = "bus address outside every dma-ranges window of this master"
        if phys is not None and not self.bus.is_ram(phys, size):
            reason = f"lands at phys 0x{phys:x}, which is not RAM"
            phys = None
        if self.checker is not None:
            verdict = self.checker(bus_addr, size, access, phys, reason)
            if phys is not None and verdict is not None:
                reason, phys = verdict, None
        if self.bus.tracer is not None:
            self.bus.tracer.dma(self, bus_addr, size, access, phys, reason)
        if phys is None:
            self.bus.dma_log.records.append(
                DmaRecord("refused", self.name, bus_addr, size, self.bus.clock.now,
                          reason=reason, access=access)
            )
            log.warning("DMA %s by %s at bus 0x%x (+0x%x) refused: %s",
                        access, self.name, bus_addr, size, reason)
        return phys

    def read(self, bus_addr: int, size: int) -> bytes | None:
        phys = self._check(bus_addr, size, "read")
        if phys is None:
            return None
        return bytes(self.bus.uc.mem_read(phys, size))

    def write(self, bus_addr: int, data: bytes) -> bool:
        phys = self._check(bus_addr, len(data), "write")
        if phys is None:
            return False
        self.bus.uc.mem_write(phys, bytes(data))
        self.bus.dma_log.records.append(
            DmaRecord("write", self.name, bus_addr, len(data), self.bus.clock.now, phys=phys)
        )
        return True
