"""ARM PrimeCell real-time clock PL031 ("arm,pl031").

Interface:
  MMIO      0x1000 bytes, registers below (32-bit accesses)
  IRQ       one output (``ctx.irqs[0]``): the alarm, high while RIS & IMSC (level)
  Clock     DR counts whole seconds of *virtual* time from ``epoch`` (default 0),
            so a run reads the same dates every time

Modelled: DR (current count), LR (load: DR restarts from the written value),
MR (match) with the alarm interrupt (RIS set when the count reaches MR, counting
forward modulo 2**32; writing MR equal to the current count fires at once; the
comparison starts with the first MR write after reset, as on QEMU), IMSC,
RIS, MIS, ICR, and the PrimeCell identification registers (peripheral ID
0x00041031). The counter always runs: CR reads 1 (started), as on QEMU; a write
of 0 to CR.START is logged as unimplemented.
"""

from __future__ import annotations

from emu.clock import Event
from emu.devices.base import Access, Device, DeviceContext, Field, IrqLine, Register

MASK32 = (1 << 32) - 1

_PERIPH_ID = (0x31, 0x10, 0x04, 0x00)
_CELL_ID = (0x0D, 0xF0, 0x05, 0xB1)


class Pl031(Device):
    """The PL031 RTC counting seconds of virtual time."""

    compatible = ("arm,pl031", "arm,primecell")
    mmio_size = 0x1000
    registers = (
        Register(0x000, "DR", Access.R, doc="data: the current count in seconds"),
        Register(0x004, "MR", Access.RW, doc="match: the alarm fires when DR reaches it"),
        Register(0x008, "LR", Access.RW, doc="load: writing sets DR to this value"),
        Register(0x00C, "CR", Access.RW, 1, fields=(
            Field("START", 0, reset=1, doc="the counter runs (always 1 here)"),
        ), doc="control"),
        Register(0x010, "IMSC", Access.RW, fields=(Field("ALARM", 0, doc="alarm enabled"),),
                 doc="interrupt mask (1: enabled)"),
        Register(0x014, "RIS", Access.R, fields=(Field("ALARM", 0, access=Access.R),),
                 doc="raw interrupt status"),
        Register(0x018, "MIS", Access.R, fields=(Field("ALARM", 0, access=Access.R),),
                 doc="masked interrupt status: RIS & IMSC"),
        Register(0x01C, "ICR", Access.W, fields=(Field("ALARM", 0, access=Access.W),),
                 doc="write 1 to clear the alarm"),
        *(Register(0xFE0 + 4 * i, f"PERIPHID{i}", Access.R, v, doc="peripheral identification")
          for i, v in enumerate(_PERIPH_ID)),
        *(Register(0xFF0 + 4 * i, f"CELLID{i}", Access.R, v, doc="PrimeCell identification")
          for i, v in enumerate(_CELL_ID)),
    )

    def __init__(self, ctx: DeviceContext, *, epoch: int = 0) -> None:
        self.epoch = epoch & MASK32
        self._base = self.epoch
        self._base_tick = 0
        self._ris = 0
        self._armed = False
        self._event: Event | None = None
        self.irq = ctx.irqs[0] if ctx.irqs else IrqLine(name=f"{ctx.name}.irq")
        super().__init__(ctx)
        self.hook("DR", read=lambda _i: self.count())
        self.hook("MR", write=self._write_mr)
        self.hook("LR", write=self._write_lr)
        self.hook("CR", write=self._write_cr)
        self.hook("IMSC", write=lambda _i, _o, _n: self._update())
        self.hook("RIS", read=lambda _i: self._ris)
        self.hook("MIS", read=lambda _i: self._ris & self.get("IMSC"))
        self.hook("ICR", write=self._write_icr)

    def reset(self) -> None:
        super().reset()
        self._base = self.epoch
        self._base_tick = self.clock.now
        self._ris = 0
        self._armed = False
        self._schedule_alarm()
        self._update()

    def count(self) -> int:
        """DR: the load value plus the whole seconds of virtual time since the load."""
        elapsed = (self.clock.now - self._base_tick) // self.clock.hz
        return (self._base + elapsed) & MASK32

    def _update(self) -> None:
        self.irq.set(bool(self._ris & self.get("IMSC")))

    def _schedule_alarm(self) -> None:
        if self._event is not None:
            self._event.cancel()
            self._event = None
        if not self._armed:
            return
        match = self.get("MR")
        delta = (match - self.count()) & MASK32
        if delta == 0:
            self._alarm()
            return
        elapsed = (self.clock.now - self._base_tick) // self.clock.hz
        when = self._base_tick + (elapsed + delta) * self.clock.hz
        self._event = self.clock.schedule_at(when, self._alarm, f"{self.ctx.name} alarm")

    def _alarm(self) -> None:
        self._event = None
        self._ris |= 1
        self._update()

    def _write_mr(self, _index: int, _old: int, _new: int) -> None:
        self._armed = True
        self._schedule_alarm()

    def _write_lr(self, _index: int, _old: int, new: int) -> None:
        self._base = new & MASK32
        self._base_tick = self.clock.now
        self._schedule_alarm()

    def _write_cr(self, _index: int, _old: int, new: int) -> None:
        if not new & 1:
            self.log.unimp("CR.START = 0: stopping the counter")
            self.set("CR", 1)

    def _write_icr(self, _index: int, _old: int, new: int) -> None:
        if new & 1:
            self._ris = 0
            self._update()
