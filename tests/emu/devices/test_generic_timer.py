"""ARM generic timer: counter from virtual time, TVAL/CVAL, the compare interrupt."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.clock import VirtualClock
from emu.devices.base import IrqLine
from emu.devices.timer.arm_generic_timer import (
    CP15_TIMER_REGS,
    TIMER_INTIDS,
    GenericTimer,
)
from emu.errors import ConfigurationError, EmuError

ENABLE, IMASK, ISTATUS = 1, 2, 4


def make_timer(hz: int = 100_000_000, frequency: int = 62_500_000,
               ) -> tuple[GenericTimer, VirtualClock, dict[str, IrqLine]]:
    clock = VirtualClock(hz)
    lines = {name: IrqLine(name=name) for name in ("CNTP", "CNTV", "CNTHP", "CNTPS")}
    return GenericTimer(clock, frequency, lines), clock, lines


def run_until_quiet(clock: VirtualClock, limit: int) -> None:
    """Step the clock from deadline to deadline, as the machine does between CPU slices."""
    while (deadline := clock.next_deadline()) is not None and deadline <= limit:
        clock.advance_to(deadline)
    clock.advance_to(limit)


def test_counter_follows_virtual_time() -> None:
    timer, clock, _ = make_timer(hz=100_000_000, frequency=62_500_000)
    assert timer.read_cp15("CNTPCT") == 0
    clock.advance_to(100_000_000)  # one virtual second
    assert timer.read_cp15("CNTPCT") == 62_500_000
    clock.advance_to(100_000_001)
    assert timer.read_cp15("CNTPCT") == 62_500_000  # 0.625 counts: floor
    clock.advance_to(100_000_002)
    assert timer.read_cp15("CNTPCT") == 62_500_001
    assert timer.read_cp15("CNTFRQ") == 62_500_000


def test_virtual_count_subtracts_cntvoff() -> None:
    timer, clock, _ = make_timer(hz=1000, frequency=1000)
    clock.advance_to(5000)
    timer.write_cp15("CNTVOFF", 1200)
    assert timer.read_cp15("CNTVCT") == 3800
    assert timer.read_cp15("CNTPCT") == 5000
    timer.write_cp15("CNTVOFF", 6000)
    assert timer.read_cp15("CNTVCT") == (5000 - 6000) % (1 << 64)


def test_tval_write_sets_cval_and_read_counts_down() -> None:
    timer, clock, _ = make_timer(hz=1000, frequency=1000)
    clock.advance_to(400)
    timer.write_cp15("CNTP_TVAL", 100)
    assert timer.read_cp15("CNTP_CVAL") == 500
    clock.advance_to(450)
    assert timer.read_cp15("CNTP_TVAL") == 50
    clock.advance_to(520)
    assert timer.read_cp15("CNTP_TVAL") == (-20) & 0xFFFF_FFFF
    timer.write_cp15("CNTP_TVAL", 0xFFFF_FFF6)  # -10: sign-extended
    assert timer.read_cp15("CNTP_CVAL") == 510


def test_irq_rises_exactly_at_the_compare_tick() -> None:
    # 3 ticks per count: count c is reached at tick ceil(c * 3)
    timer, clock, lines = make_timer(hz=3_000, frequency=1_000)
    timer.write_cp15("CNTV_CVAL", 7)
    timer.write_cp15("CNTV_CTL", ENABLE)
    assert clock.next_deadline() == 21
    clock.advance_to(20)
    assert not lines["CNTV"].level
    assert timer.read_cp15("CNTV_CTL") == ENABLE
    clock.advance_to(21)
    assert lines["CNTV"].level
    assert timer.read_cp15("CNTV_CTL") == ENABLE | ISTATUS
    assert not lines["CNTP"].level
    clock.advance_to(1000)
    assert lines["CNTV"].level  # level: stays high while the condition holds


def test_compare_tick_with_a_frequency_that_does_not_divide_the_clock() -> None:
    timer, clock, lines = make_timer(hz=100_000_000, frequency=62_500_000)
    timer.write_cp15("CNTP_TVAL", 1000)
    timer.write_cp15("CNTP_CTL", ENABLE)
    deadline = clock.next_deadline()
    assert deadline == 1600
    clock.advance_to(deadline - 1)
    assert timer.read_cp15("CNTPCT") == 999
    assert not lines["CNTP"].level
    clock.advance_to(deadline)
    assert timer.read_cp15("CNTPCT") == 1000
    assert lines["CNTP"].level


def test_imask_holds_the_line_low_but_istatus_still_shows() -> None:
    timer, clock, lines = make_timer(hz=1000, frequency=1000)
    timer.write_cp15("CNTP_CVAL", 10)
    timer.write_cp15("CNTP_CTL", ENABLE | IMASK)
    run_until_quiet(clock, 50)
    assert not lines["CNTP"].level
    assert timer.read_cp15("CNTP_CTL") == ENABLE | IMASK | ISTATUS
    timer.write_cp15("CNTP_CTL", ENABLE)
    assert lines["CNTP"].level


def test_reprogramming_lowers_the_line() -> None:
    timer, clock, lines = make_timer(hz=1000, frequency=1000)
    timer.write_cp15("CNTV_TVAL", 5)
    timer.write_cp15("CNTV_CTL", ENABLE)
    run_until_quiet(clock, 10)
    assert lines["CNTV"].level
    timer.write_cp15("CNTV_TVAL", 20)  # next tick at 30
    assert not lines["CNTV"].level
    run_until_quiet(clock, 29)
    assert not lines["CNTV"].level
    run_until_quiet(clock, 30)
    assert lines["CNTV"].level
    timer.write_cp15("CNTV_CTL", 0)  # disabling also lowers it
    assert not lines["CNTV"].level
    assert timer.read_cp15("CNTV_CTL") == 0


def test_cntvoff_change_moves_the_virtual_deadline() -> None:
    timer, clock, lines = make_timer(hz=1000, frequency=1000)
    clock.advance_to(60)
    timer.write_cp15("CNTV_CVAL", 100)
    timer.write_cp15("CNTV_CTL", ENABLE)
    assert clock.next_deadline() == 100
    timer.write_cp15("CNTVOFF", 50)  # CNTVCT is now 10
    assert clock.next_deadline() == 150
    assert not lines["CNTV"].level
    run_until_quiet(clock, 149)
    assert not lines["CNTV"].level
    run_until_quiet(clock, 150)
    assert lines["CNTV"].level


def test_the_four_timers_are_independent() -> None:
    timer, clock, lines = make_timer(hz=1000, frequency=1000)
    for i, name in enumerate(("CNTP", "CNTV", "CNTHP", "CNTPS")):
        timer.write_cp15(f"{name}_CVAL", 10 * (i + 1))
        timer.write_cp15(f"{name}_CTL", ENABLE)
    run_until_quiet(clock, 25)
    assert [lines[n].level for n in ("CNTP", "CNTV", "CNTHP", "CNTPS")] == [
        True, True, False, False]


def test_read_only_and_unknown_registers() -> None:
    timer, clock, _ = make_timer(hz=1000, frequency=1000)
    clock.advance_to(10)
    timer.write_cp15("CNTPCT", 0)
    assert timer.read_cp15("CNTPCT") == 10
    assert timer.log.guest_errors
    timer.write_cp15("CNTFRQ", 24_000_000)
    assert timer.read_cp15("CNTFRQ") == 24_000_000
    assert timer.read_cp15("CNTPCT") == 10  # the counter keeps its frequency
    assert timer.log.unimplemented
    with pytest.raises(EmuError, match="CNTX_CTL"):
        timer.read_cp15("CNTX_CTL")
    with pytest.raises(ConfigurationError, match="0"):
        GenericTimer(clock, 0, {})


def test_cp15_encoding_table() -> None:
    assert CP15_TIMER_REGS[(15, 0, 14, 0, 0)] == "CNTFRQ"
    assert CP15_TIMER_REGS[(15, 0, 14, 2, 1)] == "CNTP_CTL"
    assert CP15_TIMER_REGS[(15, 0, 14, 3, 0)] == "CNTV_TVAL"
    assert CP15_TIMER_REGS[(15, 4, 14, 2, 1)] == "CNTHP_CTL"
    assert CP15_TIMER_REGS[(15, 0, 14)] == "CNTPCT"
    assert CP15_TIMER_REGS[(15, 1, 14)] == "CNTVCT"
    assert CP15_TIMER_REGS[(15, 3, 14)] == "CNTV_CVAL"
    assert CP15_TIMER_REGS[(15, 4, 14)] == "CNTVOFF"
    assert CP15_TIMER_REGS[(15, 6, 14)] == "CNTHP_CVAL"
    assert len(set(CP15_TIMER_REGS.values())) == len(CP15_TIMER_REGS)
    assert TIMER_INTIDS == {"CNTPS": 29, "CNTP": 30, "CNTV": 27, "CNTHP": 26}


@settings(max_examples=60, deadline=None)
@given(hz=st.integers(1, 10**9), frequency=st.integers(1, 10**9),
       start=st.integers(0, 10**6), tval=st.integers(1, 10**6))
def test_line_rises_at_the_first_tick_whose_count_reaches_cval(
        hz: int, frequency: int, start: int, tval: int) -> None:
    timer, clock, lines = make_timer(hz=hz, frequency=frequency)
    clock.advance_to(start)
    timer.write_cp15("CNTP_TVAL", tval)
    timer.write_cp15("CNTP_CTL", ENABLE)
    cval = timer.read_cp15("CNTP_CVAL")
    deadline = clock.next_deadline()
    assert deadline is not None
    if deadline > start:
        clock.advance_to(deadline - 1)
        assert timer.read_cp15("CNTPCT") < cval
        assert not lines["CNTP"].level
    clock.advance_to(deadline)
    assert timer.read_cp15("CNTPCT") >= cval
    assert lines["CNTP"].level
