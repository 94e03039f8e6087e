"""PL031 RTC: seconds of virtual time, load, match and the alarm interrupt."""

from __future__ import annotations

from emu.clock import VirtualClock
from emu.devices.base import DeviceContext, DeviceLog, IrqLine
from emu.devices.rtc.pl031 import Pl031

DR, MR, LR, CR, IMSC, RIS, MIS, ICR = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18, 0x1C
HZ = 1000


def make_rtc(epoch: int = 0) -> tuple[Pl031, VirtualClock, IrqLine]:
    clock = VirtualClock(HZ)
    irq = IrqLine(name="rtc")
    ctx = DeviceContext("rtc", clock, irqs=[irq], log=DeviceLog("rtc"))
    return Pl031(ctx, epoch=epoch), clock, irq


def step(clock: VirtualClock, until: int) -> None:
    while (deadline := clock.next_deadline()) is not None and deadline <= until:
        clock.advance_to(deadline)
    clock.advance_to(until)


def test_counts_seconds_of_virtual_time_from_the_epoch() -> None:
    rtc, clock, _ = make_rtc(epoch=1_700_000_000)
    assert rtc.read(DR, 4) == 1_700_000_000
    clock.advance_to(HZ - 1)
    assert rtc.read(DR, 4) == 1_700_000_000
    clock.advance_to(HZ)
    assert rtc.read(DR, 4) == 1_700_000_001
    clock.advance_to(90 * HZ + 5)
    assert rtc.read(DR, 4) == 1_700_000_090
    assert rtc.read(CR, 4) == 1


def test_load_restarts_the_count() -> None:
    rtc, clock, _ = make_rtc()
    clock.advance_to(2500)
    rtc.write(LR, 4, 1000)
    assert rtc.read(DR, 4) == 1000
    assert rtc.read(LR, 4) == 1000
    clock.advance_to(3499)
    assert rtc.read(DR, 4) == 1000
    clock.advance_to(3500)
    assert rtc.read(DR, 4) == 1001


def test_alarm_fires_when_the_count_reaches_the_match() -> None:
    rtc, clock, irq = make_rtc(epoch=100)
    rtc.write(IMSC, 4, 1)
    rtc.write(MR, 4, 103)
    step(clock, 3 * HZ - 1)
    assert rtc.read(RIS, 4) == 0
    assert not irq.level
    step(clock, 3 * HZ)
    assert rtc.read(RIS, 4) == 1
    assert rtc.read(MIS, 4) == 1
    assert irq.level
    rtc.write(ICR, 4, 1)
    assert rtc.read(RIS, 4) == 0
    assert not irq.level


def test_masked_alarm_sets_ris_only() -> None:
    rtc, clock, irq = make_rtc()
    rtc.write(MR, 4, 2)
    step(clock, 5 * HZ)
    assert rtc.read(RIS, 4) == 1
    assert rtc.read(MIS, 4) == 0
    assert not irq.level
    rtc.write(IMSC, 4, 1)
    assert irq.level


def test_load_moves_the_alarm() -> None:
    rtc, clock, _ = make_rtc()
    rtc.write(MR, 4, 10)
    rtc.write(LR, 4, 8)
    step(clock, 2 * HZ - 1)
    assert rtc.read(RIS, 4) == 0
    step(clock, 2 * HZ)
    assert rtc.read(RIS, 4) == 1


def test_no_alarm_before_mr_is_written_and_identification() -> None:
    rtc, clock, irq = make_rtc()
    rtc.write(IMSC, 4, 1)
    step(clock, 10 * HZ)
    assert rtc.read(RIS, 4) == 0
    assert not irq.level
    ids = [rtc.read(0xFE0 + 4 * i, 4) for i in range(8)]
    assert ids == [0x31, 0x10, 0x04, 0x00, 0x0D, 0xF0, 0x05, 0xB1]


def test_dr_is_read_only_and_stopping_is_unimplemented() -> None:
    rtc, _, _ = make_rtc(epoch=5)
    rtc.write(DR, 4, 99)
    assert rtc.read(DR, 4) == 5
    assert rtc.log.guest_errors
    rtc.write(CR, 4, 0)
    assert rtc.read(CR, 4) == 1
    assert rtc.log.unimplemented
