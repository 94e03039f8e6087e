"""The device-model framework: register tables, IRQ lines, DMA ports, logs.

A device declares its registers once, as data (:class:`Register` with
:class:`Field` entries and an :class:`Access` mode). The bus, the tracer, the
docs and the generated C headers all read that table. Collaborators (clock,
IRQ lines, DMA port, logs) are injected through :class:`DeviceContext`; a
device never looks anything up.

Three channels for trouble (STYLE habit 3): a guest mistake goes to
``ctx.log.guest_error`` and is modelled like hardware; a feature that is not
modelled goes to ``ctx.log.unimp``; only host-side problems raise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import ClassVar, Protocol

from emu.clock import VirtualClock


class Access(StrEnum):
    """What a guest access to a register or field does (Renode's vocabulary)."""

    R = "R"  # read-only; writes are a guest error
    W = "W"  # write-only; reads return 0
    RW = "RW"
    W1C = "W1C"  # write 1 to clear
    W1S = "W1S"  # write 1 to set
    RC = "RC"  # read to clear
    RESERVED = "RESERVED"  # reads 0, writes ignored (logged)

    @property
    def readable(self) -> bool:
        return self not in (Access.W, Access.RESERVED)

    @property
    def writable(self) -> bool:
        return self not in (Access.R, Access.RC, Access.RESERVED)


@dataclass(frozen=True)
class Field:
    """A bit field ``[lsb, lsb + width)`` inside a register."""

    name: str
    lsb: int
    width: int = 1
    access: Access = Access.RW
    reset: int = 0
    doc: str = ""

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb


@dataclass(frozen=True)
class Register:
    """One register (or ``count`` consecutive ones ``stride`` bytes apart).

    ``access`` applies to bits not covered by a field; with fields, each field's
    own access governs its bits.
    """

    offset: int
    name: str
    access: Access = Access.RW
    reset: int = 0
    fields: tuple[Field, ...] = ()
    doc: str = ""
    width: int = 32
    count: int = 1
    stride: int = 4

    def offsets(self) -> Iterable[tuple[int, str]]:
        if self.count == 1:
            yield self.offset, self.name
            return
        for i in range(self.count):
            yield self.offset + i * self.stride, f"{self.name}{i}"

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"register {self.name} has no field {name!r}")


class DeviceLog:
    """The two logs of STYLE habit 3, plus a record kept for run summaries and JSON."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._guest = logging.getLogger(f"emu.guest.{name}")
        self._unimp = logging.getLogger(f"emu.unimp.{name}")
        self.guest_errors: list[str] = []
        self.unimplemented: list[str] = []

    def guest_error(self, message: str) -> None:
        """The guest did something the hardware would reject or ignore."""
        self.guest_errors.append(message)
        self._guest.warning("%s: %s", self.name, message)

    def unimp(self, message: str) -> None:
        """The guest used a feature this model does not implement."""
        if message not in self.unimplemented:
            self.unimplemented.append(message)
            self._unimp.info("%s: %s", self.name, message)


class IrqLine:
    """A level-sensitive interrupt output, wired to a sink (usually a GIC input)."""

    def __init__(self, sink: Callable[[bool], None] | None = None, name: str = "") -> None:
        self._sink = sink
        self.name = name
        self.level = False

    def connect(self, sink: Callable[[bool], None]) -> None:
        self._sink = sink
        if self.level:
            sink(True)

    def set(self, level: bool) -> None:
        level = bool(level)
        if level == self.level:
            return
        self.level = level
        if self._sink is not None:
            self._sink(level)

    def raise_(self) -> None:
        self.set(True)

    def lower(self) -> None:
        self.set(False)

    def pulse(self) -> None:
        self.set(True)
        self.set(False)


class DmaPort(Protocol):
    """A master's port onto the bus: bus addresses in, checked against its view.

    Every access is translated bus → physical through the master's own
    ``dma-ranges`` view. An access outside the view (or otherwise refused) is
    recorded by the bus and reported here as ``None`` / ``False``: the device
    then models a bus error; no byte outside the view is ever touched.
    """

    def read(self, bus_addr: int, size: int) -> bytes | None: ...

    def write(self, bus_addr: int, data: bytes) -> bool: ...

    def to_phys(self, bus_addr: int) -> int | None: ...

    def to_bus(self, phys: int) -> int | None: ...


@dataclass
class DeviceContext:
    """What a device is given: its clock, IRQ outputs, DMA port and logs."""

    name: str
    clock: VirtualClock
    irqs: list[IrqLine] = field(default_factory=list)
    dma: DmaPort | None = None
    log: DeviceLog = field(default_factory=lambda: DeviceLog("device"))
    node_path: str = ""


ReadHook = Callable[[int], int]  # index (for arrays) -> value
WriteHook = Callable[[int, int, int], None]  # index, old value, new value


_SIZE_MASK = (0, 0xFF, 0xFFFF, 0xFF_FFFF, 0xFFFF_FFFF)
_SETS = (Access.RW, Access.W)
_KEEPS = (Access.R, Access.RC, Access.RESERVED)


class _Plan:
    """What a load and a store of one register do, as masks (built once per device).

    A store computes ``(old & keep) | (value & sets) | (old & w1c & ~value) |
    ((old | value) & w1s)``; ``checked`` lists the read-only parts whose change is a
    guest error. A load hides write-only field bits and clears read-to-clear ones.
    """

    __slots__ = (
        "checked",
        "ignored",
        "index",
        "keep",
        "plain_read",
        "plain_write",
        "read_clears",
        "read_hook",
        "read_keeps",
        "read_shows",
        "readable",
        "reg",
        "sets",
        "store",
        "w1c",
        "w1s",
        "write_hook",
    )

    def __init__(self, reg: Register, index: int, store: list[int]) -> None:
        self.reg, self.index, self.store = reg, index, store
        self.read_hook: ReadHook | None = None
        self.write_hook: WriteHook | None = None
        self.readable = reg.access.readable or bool(reg.fields)
        hidden = cleared = 0
        for f in reg.fields:
            if f.access is Access.W:
                hidden |= f.mask
            elif f.access is Access.RC:
                cleared |= f.mask
        if reg.access is Access.RC:
            cleared = 0xFFFF_FFFF
        self.read_shows = 0xFFFF_FFFF & ~hidden
        self.read_clears = bool(cleared)
        self.read_keeps = 0xFFFF_FFFF & ~cleared
        self.ignored = not reg.fields and reg.access in _KEEPS
        parts: list[tuple[str, Access, int, bool]] = []  # name, access, mask, logged
        covered = 0
        for f in reg.fields:
            covered |= f.mask
            parts.append((f"{reg.name}.{f.name}", f.access, f.mask, True))
        rest = 0xFFFF_FFFF & ~covered
        if rest:
            parts.append((reg.name, reg.access, rest, not reg.fields))
        sets = w1c = w1s = 0
        checked: list[tuple[str, Access, int]] = []
        for name, access, mask, logged in parts:
            if access in _SETS:
                sets |= mask
            elif access is Access.W1C:
                w1c |= mask
            elif access is Access.W1S:
                w1s |= mask
            elif logged:
                checked.append((name, access, mask))
        self.sets, self.w1c, self.w1s = sets, w1c, w1s
        self.keep = 0xFFFF_FFFF & ~(sets | w1c | w1s)
        self.checked = tuple(checked)
        self.plain_read = self.readable and not cleared and not hidden
        self.plain_write = sets == 0xFFFF_FFFF


class Device:
    """Base of every memory-mapped device model.

    Subclasses set :attr:`compatible`, :attr:`mmio_size`, :attr:`registers`, and
    override :meth:`on_read` / :meth:`on_write` for registers with side effects
    (or register hooks with :meth:`hook`). Plain storage, reset values and
    access modes are handled here.
    """

    compatible: ClassVar[tuple[str, ...]] = ()
    mmio_size: ClassVar[int] = 0x1000
    registers: ClassVar[tuple[Register, ...]] = ()

    def __init__(self, ctx: DeviceContext) -> None:
        self.ctx = ctx
        self.log = ctx.log
        self.clock = ctx.clock
        self._by_offset: dict[int, tuple[Register, int]] = {}
        for reg in self.registers:
            for i, (off, _name) in enumerate(reg.offsets()):
                if off in self._by_offset:
                    other = self._by_offset[off][0].name
                    raise ValueError(
                        f"{type(self).__name__}: register {reg.name} at 0x{off:x} overlaps {other}"
                    )
                self._by_offset[off] = (reg, i)
        self.values: dict[str, list[int]] = {}
        self._read_hooks: dict[str, ReadHook] = {}
        self._write_hooks: dict[str, WriteHook] = {}
        self.reset()
        #: per word offset, what a load and a store do, worked out once (the hot path)
        self._plans: dict[int, _Plan] = {
            off: _Plan(reg, i, self.values[reg.name]) for off, (reg, i) in self._by_offset.items()
        }
        for plan in self._plans.values():  # hooks attached before this point
            plan.read_hook = self._read_hooks.get(plan.reg.name)
            plan.write_hook = self._write_hooks.get(plan.reg.name)

    # register storage -------------------------------------------------
    def reset(self) -> None:
        """Put every register back to its reset value."""
        for reg in self.registers:
            value = reg.reset
            for f in reg.fields:
                value = (value & ~f.mask) | ((f.reset << f.lsb) & f.mask)
            store = self.values.setdefault(reg.name, [])
            store[:] = [value] * reg.count  # in place: the access plans hold these lists

    def hook(self, name: str, *, read: ReadHook | None = None,
             write: WriteHook | None = None) -> None:
        """Attach side effects to register ``name``."""
        if name not in self.values:
            raise KeyError(f"{type(self).__name__} has no register {name!r}")
        if read is not None:
            self._read_hooks[name] = read
        if write is not None:
            self._write_hooks[name] = write
        for plan in getattr(self, "_plans", {}).values():
            if plan.reg.name == name:
                plan.read_hook = self._read_hooks.get(name)
                plan.write_hook = self._write_hooks.get(name)

    def get(self, name: str, index: int = 0) -> int:
        return self.values[name][index]

    def set(self, name: str, value: int, index: int = 0) -> None:
        self.values[name][index] = value & 0xFFFF_FFFF

    def register_at(self, offset: int) -> Register | None:
        hit = self._by_offset.get(offset & ~3)
        return hit[0] if hit else None

    def register_name(self, offset: int) -> str:
        hit = self._by_offset.get(offset & ~3)
        if hit is None:
            return f"0x{offset:03x}"
        reg, i = hit
        return reg.name if reg.count == 1 else f"{reg.name}{i}"

    # guest accesses ----------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        """A guest load of ``size`` bytes at ``offset`` into the block."""
        plan = self._plans.get(offset & ~3)
        if plan is None:
            self.log.guest_error(f"read of unmapped offset 0x{offset:x} (size {size})")
            return 0
        hook = plan.read_hook
        if plan.plain_read:  # readable, nothing hidden, nothing cleared
            value = hook(plan.index) if hook is not None else plan.store[plan.index]
        else:
            if not plan.readable:
                self.log.guest_error(f"read of write-only register {plan.reg.name}")
                return 0
            i, store = plan.index, plan.store
            value = hook(i) if hook is not None else store[i]
            if plan.read_clears:
                store[i] &= plan.read_keeps
            value &= plan.read_shows
        if offset & 3:
            value >>= (offset & 3) * 8
        return value & _SIZE_MASK[size] if size < 4 else value & 0xFFFF_FFFF

    def write(self, offset: int, size: int, value: int) -> None:
        """A guest store of ``size`` bytes at ``offset`` into the block."""
        plan = self._plans.get(offset & ~3)
        if plan is None:
            self.log.guest_error(
                f"write of 0x{value:x} to unmapped offset 0x{offset:x} (size {size})"
            )
            return
        i, store = plan.index, plan.store
        old = store[i]
        if size < 4:
            shift = (offset & 3) * 8
            mask = _SIZE_MASK[size] << shift
            value = (old & ~mask) | ((value << shift) & mask)
        value &= 0xFFFF_FFFF
        if plan.plain_write:  # every bit read/write
            store[i] = value
            hook = plan.write_hook
            if hook is not None:
                hook(i, old, value)
            return
        if plan.ignored:  # a read-only register without fields: nothing changes
            if value != old:
                self._refused(plan.reg.name, plan.reg.access, value)
            return
        new = (old & plan.keep) | (value & plan.sets) | (old & plan.w1c & ~value) \
            | ((old | value) & plan.w1s)
        for name, access, mask in plan.checked:
            if (value ^ old) & mask:
                self._refused(name, access, value)
        store[i] = new
        hook = plan.write_hook
        if hook is not None:
            hook(i, old, new)

    def _refused(self, name: str, access: Access, value: int) -> None:
        what = "reserved" if access is Access.RESERVED else "read-only"
        self.log.guest_error(f"write of 0x{value:x} to {what} {name} ignored")

    # lifecycle ----------------------------------------------------------
    def describe(self) -> dict[str, object]:
        """A short description for run summaries."""
        return {"type": type(self).__name__, "compatible": list(self.compatible)}


class Unimplemented(Device):
    """A read-as-zero, write-ignored stub for a node nobody models (QEMU's unimp device)."""

    def __init__(self, ctx: DeviceContext, size: int = 0x1000) -> None:
        super().__init__(ctx)
        self.size = size
        self.touched = 0

    def read(self, offset: int, size: int) -> int:
        self.touched += 1
        self.log.unimp(f"read at +0x{offset:x} (size {size}) of an unmodelled device")
        return 0

    def write(self, offset: int, size: int, value: int) -> None:
        self.touched += 1
        self.log.unimp(f"write of 0x{value:x} at +0x{offset:x} (size {size}) ignored")
