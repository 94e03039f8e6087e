"""ARM generic timer (the CP15 c14 system registers of an ARMv7-A core with the
Generic Timer extension; device tree "arm,armv7-timer").

Interface:
  MMIO      none: the CPU layer decodes ``MRC/MCR/MRRC/MCRR p15, ..., c14``
            (see :data:`CP15_TIMER_REGS`) and calls :meth:`GenericTimer.read_cp15`
            / :meth:`GenericTimer.write_cp15` with the register's name.
  IRQ       four level outputs, given as ``irqs`` by name (missing ones are
            created unconnected): "CNTPS" secure physical (PPI 13, INTID 29),
            "CNTP" non-secure physical (PPI 14, INTID 30), "CNTV" virtual
            (PPI 11, INTID 27), "CNTHP" hypervisor physical (PPI 10, INTID 26).
            :data:`TIMER_INTIDS` lists them; the caller wires them to the GIC.
  Clock     the counter is derived from virtual time: ``CNTPCT = now * frequency
            // clock.hz`` (integer math, monotonic, deterministic); ``CNTVCT =
            CNTPCT - CNTVOFF`` (64-bit wrap).

Modelled: CNTFRQ (read/write storage; the counter keeps ``frequency``), CNTPCT,
CNTVCT, CNTVOFF, CNTKCTL and CNTHCTL (storage), and for each timer CTL (ENABLE,
IMASK, ISTATUS read-only), CVAL (64-bit) and TVAL (32-bit signed view: a write
sets ``CVAL = count + sign_extend(value)``, a read returns ``CVAL - count``
truncated to 32 bits). The timer condition is ``count >= CVAL`` (unsigned
64-bit); the output is high while ENABLE && condition && !IMASK. A clock event
is scheduled at the first tick where the count reaches CVAL, so the line rises
exactly then; any reprogramming re-evaluates the line at once (so a new CVAL in
the future lowers it).

Not modelled: access permissions (CNTKCTL / CNTHCTL gating of PL0 and PL1
accesses are the CPU layer's business), event streams, the memory-mapped
CNTBase frames. In AArch32 the secure physical timer is the Secure bank of the
CNTP registers; it is reached here by the names ``CNTPS_CTL``, ``CNTPS_CVAL``,
``CNTPS_TVAL`` and is absent from :data:`CP15_TIMER_REGS` (which describes the
Non-secure view the guest uses).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from emu.clock import Event, VirtualClock
from emu.devices.base import Access, DeviceLog, Field, IrqLine
from emu.errors import ConfigurationError, EmuError

MASK64 = (1 << 64) - 1
MASK32 = (1 << 32) - 1

CTL_ENABLE = 1 << 0
CTL_IMASK = 1 << 1
CTL_ISTATUS = 1 << 2

EVNTEN = 1 << 2
"""CNTKCTL / CNTHCTL bit enabling the event stream (not modelled)."""

CTL_FIELDS = (
    Field("ENABLE", 0, doc="the timer is enabled"),
    Field("IMASK", 1, doc="the interrupt is masked"),
    Field("ISTATUS", 2, access=Access.R, doc="the timer condition is met (read-only)"),
)

TIMER_INTIDS: dict[str, int] = {"CNTPS": 29, "CNTP": 30, "CNTV": 27, "CNTHP": 26}
"""GIC INTID of each timer's output (PPI number + 16), as Linux's arm,armv7-timer expects."""


@dataclass(frozen=True)
class CpReg:
    """One CP15 system register: its name, encoding and access mode.

    32-bit registers are reached with ``MRC/MCR p15, opc1, Rt, CRn, CRm, opc2``,
    64-bit ones with ``MRRC/MCRR p15, opc1, Rt, Rt2, CRm`` (``crn`` and ``opc2``
    are then 0).
    """

    name: str
    opc1: int
    crn: int
    crm: int
    opc2: int
    is64: bool
    access: Access
    doc: str = ""

    @property
    def key(self) -> tuple[int, ...]:
        """The :data:`CP15_TIMER_REGS` key of this register."""
        if self.is64:
            return (15, self.opc1, self.crm)
        return (15, self.opc1, self.crn, self.crm, self.opc2)


TIMER_REGISTERS: tuple[CpReg, ...] = (
    CpReg("CNTFRQ", 0, 14, 0, 0, False, Access.RW, "counter frequency in Hz (informative)"),
    CpReg("CNTKCTL", 0, 14, 1, 0, False, Access.RW, "PL1 control of PL0 access (stored)"),
    CpReg("CNTP_TVAL", 0, 14, 2, 0, False, Access.RW, "physical timer value (signed)"),
    CpReg("CNTP_CTL", 0, 14, 2, 1, False, Access.RW, "physical timer control"),
    CpReg("CNTV_TVAL", 0, 14, 3, 0, False, Access.RW, "virtual timer value (signed)"),
    CpReg("CNTV_CTL", 0, 14, 3, 1, False, Access.RW, "virtual timer control"),
    CpReg("CNTHCTL", 4, 14, 1, 0, False, Access.RW, "Hyp control of PL1 access (stored)"),
    CpReg("CNTHP_TVAL", 4, 14, 2, 0, False, Access.RW, "Hyp physical timer value"),
    CpReg("CNTHP_CTL", 4, 14, 2, 1, False, Access.RW, "Hyp physical timer control"),
    CpReg("CNTPCT", 0, 0, 14, 0, True, Access.R, "physical count"),
    CpReg("CNTVCT", 1, 0, 14, 0, True, Access.R, "virtual count (CNTPCT - CNTVOFF)"),
    CpReg("CNTP_CVAL", 2, 0, 14, 0, True, Access.RW, "physical timer compare value"),
    CpReg("CNTV_CVAL", 3, 0, 14, 0, True, Access.RW, "virtual timer compare value"),
    CpReg("CNTVOFF", 4, 0, 14, 0, True, Access.RW, "virtual offset"),
    CpReg("CNTHP_CVAL", 6, 0, 14, 0, True, Access.RW, "Hyp physical timer compare value"),
)

CP15_TIMER_REGS: dict[tuple[int, ...], str] = {r.key: r.name for r in TIMER_REGISTERS}
"""Instruction encoding -> register name.

Keys are ``(coproc, opc1, CRn, CRm, opc2)`` for 32-bit ``MRC``/``MCR`` and
``(coproc, opc1, CRm)`` for 64-bit ``MRRC``/``MCRR``, the operands in the order
the assembler writes them; the tuple length tells the two kinds apart.
"""

_SECURE_NAMES = ("CNTPS_CTL", "CNTPS_CVAL", "CNTPS_TVAL")
REGISTER_NAMES: tuple[str, ...] = (*(r.name for r in TIMER_REGISTERS), *_SECURE_NAMES)


class _Timer:
    """One comparator: CTL and CVAL against the physical or virtual count."""

    def __init__(self, owner: GenericTimer, name: str, line: IrqLine, virtual: bool) -> None:
        self.owner = owner
        self.name = name
        self.line = line
        self.virtual = virtual
        self.ctl = 0
        self.cval = 0
        self._event: Event | None = None

    def count(self) -> int:
        return self.owner.virtual_count() if self.virtual else self.owner.physical_count()

    def condition_met(self) -> bool:
        return bool(self.ctl & CTL_ENABLE) and self.count() >= self.cval

    def read_ctl(self) -> int:
        return self.ctl | (CTL_ISTATUS if self.condition_met() else 0)

    def write_ctl(self, value: int) -> None:
        self.ctl = value & (CTL_ENABLE | CTL_IMASK)
        self.update()

    def write_cval(self, value: int) -> None:
        self.cval = value & MASK64
        self.update()

    def read_tval(self) -> int:
        return (self.cval - self.count()) & MASK32

    def write_tval(self, value: int) -> None:
        value &= MASK32
        signed = value - (1 << 32) if value & (1 << 31) else value
        self.cval = (self.count() + signed) & MASK64
        self.update()

    def update(self) -> None:
        """Set the output from the current state; schedule the compare tick if needed."""
        if self._event is not None:
            self._event.cancel()
            self._event = None
        met = self.condition_met()
        self.line.set(met and not self.ctl & CTL_IMASK)
        if self.ctl & CTL_ENABLE and not self.ctl & CTL_IMASK and not met:
            remaining = self.cval - self.count()
            tick = self.owner.tick_for_count(self.owner.physical_count() + remaining)
            self._event = self.owner.clock.schedule_at(tick, self._fire, f"{self.name} compare")

    def _fire(self) -> None:
        self._event = None
        self.update()


class GenericTimer:
    """The four timers and the system counter of one core, in virtual time."""

    def __init__(self, clock: VirtualClock, frequency: int,
                 irqs: Mapping[str, IrqLine] | None = None, *,
                 log: DeviceLog | None = None) -> None:
        if frequency <= 0:
            raise ConfigurationError(
                f"generic timer frequency must be a positive number of Hz, not {frequency!r}"
            )
        unknown = sorted(set(irqs or {}) - set(TIMER_INTIDS))
        if unknown:
            raise ConfigurationError(
                f"generic timer outputs are {sorted(TIMER_INTIDS)}, not {unknown!r}"
            )
        self.clock = clock
        self.frequency = frequency
        self.log = log if log is not None else DeviceLog("generic-timer")
        lines = dict(irqs or {})
        self.timers: dict[str, _Timer] = {
            name: _Timer(self, name, lines.get(name) or IrqLine(name=name), name == "CNTV")
            for name in TIMER_INTIDS
        }
        self.cntfrq = frequency
        self.cntvoff = 0
        self.cntkctl = 0
        self.cnthctl = 0

    # counter -------------------------------------------------------------
    def physical_count(self) -> int:
        """CNTPCT at the current virtual time."""
        return (self.clock.now * self.frequency // self.clock.hz) & MASK64

    def virtual_count(self) -> int:
        """CNTVCT = CNTPCT - CNTVOFF."""
        return (self.physical_count() - self.cntvoff) & MASK64

    def tick_for_count(self, count: int) -> int:
        """The first clock tick at which the physical count is at least ``count``."""
        return -(-count * self.clock.hz // self.frequency)

    def line(self, timer: str) -> IrqLine:
        """The output line of ``timer`` ("CNTP", "CNTV", "CNTHP" or "CNTPS")."""
        return self.timers[timer].line

    def reset(self) -> None:
        for t in self.timers.values():
            t.ctl = 0
            t.cval = 0
            t.update()
        self.cntfrq = self.frequency
        self.cntvoff = 0
        self.cntkctl = 0
        self.cnthctl = 0

    # register access -------------------------------------------------------
    @staticmethod
    def _split(name: str) -> tuple[str, str]:
        if name not in REGISTER_NAMES:
            raise EmuError(
                f"generic timer register must be one of {', '.join(REGISTER_NAMES)}, "
                f"not {name!r}"
            )
        timer, _, reg = name.partition("_")
        return timer, reg

    def read_cp15(self, name: str) -> int:
        """A guest read of the register ``name`` (e.g. "CNTV_TVAL")."""
        timer, reg = self._split(name)
        if not reg:
            if name == "CNTPCT":
                return self.physical_count()
            if name == "CNTVCT":
                return self.virtual_count()
            stored = {"CNTFRQ": self.cntfrq, "CNTVOFF": self.cntvoff,
                      "CNTKCTL": self.cntkctl, "CNTHCTL": self.cnthctl}
            return stored[name]
        t = self.timers[timer]
        if reg == "CTL":
            return t.read_ctl()
        if reg == "CVAL":
            return t.cval
        return t.read_tval()

    def write_cp15(self, name: str, value: int) -> None:
        """A guest write of ``value`` to the register ``name``."""
        timer, reg = self._split(name)
        if not reg:
            if name in ("CNTPCT", "CNTVCT"):
                self.log.guest_error(f"write of 0x{value:x} to read-only {name} ignored")
            elif name == "CNTFRQ":
                self.cntfrq = value & MASK32
                if self.cntfrq != self.frequency:
                    self.log.unimp(
                        f"CNTFRQ set to {self.cntfrq} Hz; the counter keeps {self.frequency} Hz"
                    )
            elif name == "CNTVOFF":
                self.cntvoff = value & MASK64
                self.timers["CNTV"].update()
            elif name == "CNTKCTL":
                self.cntkctl = value & 0x3FF
            else:
                self.cnthctl = value & 0xFF
            if value & EVNTEN:
                self.log.unimp(f"{name}.EVNTEN: event stream")
            return
        t = self.timers[timer]
        if reg == "CTL":
            t.write_ctl(value)
        elif reg == "CVAL":
            t.write_cval(value)
        else:
            t.write_tval(value)
