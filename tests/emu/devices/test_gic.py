"""GICv2 model, driven only through guest register accesses and input lines."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.clock import VirtualClock
from emu.devices.base import DeviceContext, DeviceLog, IrqLine
from emu.devices.intc.gic import Gic
from emu.errors import ConfigurationError

# distributor
CTLR, TYPER, IIDR = 0x000, 0x004, 0x008
IGROUPR, ISENABLER, ICENABLER = 0x080, 0x100, 0x180
ISPENDR, ICPENDR, ISACTIVER, ICACTIVER = 0x200, 0x280, 0x300, 0x380
IPRIORITYR, ITARGETSR, ICFGR, SGIR = 0x400, 0x800, 0xC00, 0xF00
# CPU interface
C_CTLR, PMR, BPR, IAR, EOIR, RPR, HPPIR, AIAR, C_IIDR, DIR = (
    0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18, 0x20, 0xFC, 0x1000)


def make_gic(num_spis: int = 64) -> tuple[Gic, IrqLine, IrqLine]:
    irq, fiq = IrqLine(name="irq"), IrqLine(name="fiq")
    ctx = DeviceContext("gic", VirtualClock(), irqs=[irq, fiq], log=DeviceLog("gic"))
    return Gic(ctx, num_spis=num_spis), irq, fiq


def bit_reg(base: int, intid: int) -> tuple[int, int]:
    return base + 4 * (intid // 32), 1 << (intid % 32)


class Guest:
    """A guest's view: word accesses to the two blocks, as a driver makes them."""

    def __init__(self, gic: Gic) -> None:
        self.gicd = gic
        self.gicc = gic.cpu_interface

    def setup(self, pmr: int = 0xF0) -> None:
        self.gicd.write(CTLR, 4, 1)
        self.gicc.write(C_CTLR, 4, 1)
        self.gicc.write(PMR, 4, pmr)

    def enable(self, intid: int, priority: int = 0xA0, *, edge: bool = False) -> None:
        self.gicd.write(IPRIORITYR + intid, 1, priority)
        if edge:
            off = ICFGR + 4 * (intid // 16)
            self.gicd.write(off, 4, self.gicd.read(off, 4) | 2 << (2 * (intid % 16)))
        off, bit = bit_reg(ISENABLER, intid)
        self.gicd.write(off, 4, bit)

    def pend(self, intid: int) -> None:
        off, bit = bit_reg(ISPENDR, intid)
        self.gicd.write(off, 4, bit)

    def pending(self, intid: int) -> bool:
        off, bit = bit_reg(ISPENDR, intid)
        return bool(self.gicd.read(off, 4) & bit)

    def active(self, intid: int) -> bool:
        off, bit = bit_reg(ISACTIVER, intid)
        return bool(self.gicd.read(off, 4) & bit)

    def ack(self) -> int:
        return self.gicc.read(IAR, 4)

    def eoi(self, intid: int) -> None:
        self.gicc.write(EOIR, 4, intid)


def test_typer_reports_the_configured_spis() -> None:
    assert make_gic(64)[0].read(TYPER, 4) & 0x1F == 2
    assert make_gic(96)[0].read(TYPER, 4) & 0x1F == 3
    gic = make_gic(96)[0]
    assert gic.read(TYPER, 4) & 0x4E0 == 0  # one CPU, no Security Extensions
    assert gic.read(IIDR, 4) == 0x0200_143B
    assert gic.cpu_interface.read(C_IIDR, 4) == 0x0202_143B
    assert gic.read(0xFE8, 4) >> 4 == 2  # PIDR2.ArchRev: GICv2


@pytest.mark.parametrize("num_spis", [-32, 48, 992])
def test_bad_spi_counts_are_refused(num_spis: int) -> None:
    with pytest.raises(ConfigurationError, match=str(num_spis)):
        make_gic(num_spis)


def test_registers_of_missing_interrupts_read_as_zero() -> None:
    gic = make_gic(64)[0]
    gic.write(ISENABLER + 12, 4, 0xFFFF_FFFF)  # INTIDs 96..127 do not exist
    assert gic.read(ISENABLER + 12, 4) == 0
    assert gic.log.guest_errors


def test_level_interrupt_acknowledge_and_eoi() -> None:
    gic, irq, _ = make_gic()
    g = Guest(gic)
    g.setup()
    g.enable(37)
    assert not irq.level
    assert g.ack() == 1023
    gic.set_irq(37, True)
    assert irq.level
    assert gic.irq_pending()
    assert gic.cpu_interface.read(HPPIR, 4) == 37
    assert g.ack() == 37
    assert g.active(37)
    assert not irq.level  # active: not signalled again
    assert gic.cpu_interface.read(RPR, 4) == 0xA0
    # the line is still high: the interrupt is active and pending
    assert g.pending(37)
    g.eoi(37)
    assert not g.active(37)
    assert irq.level  # level re-pend after EOI while the line stays high
    assert g.ack() == 37
    gic.set_irq(37, False)
    assert not g.pending(37)
    g.eoi(37)
    assert not irq.level
    assert g.ack() == 1023
    assert gic.cpu_interface.read(RPR, 4) == 0xFF


def test_edge_interrupt_latches_a_pulse() -> None:
    gic, irq, _ = make_gic()
    g = Guest(gic)
    g.setup()
    g.enable(40, edge=True)
    gic.set_irq(40, True)
    gic.set_irq(40, False)
    assert g.pending(40)
    assert irq.level
    assert g.ack() == 40
    assert not g.pending(40)
    g.eoi(40)
    assert not irq.level
    assert g.ack() == 1023


def test_level_pending_is_not_latched_and_icpendr_clears_a_software_pend() -> None:
    gic, irq, _ = make_gic()
    g = Guest(gic)
    g.setup()
    g.enable(41)
    gic.set_irq(41, True)
    gic.set_irq(41, False)
    assert not g.pending(41)
    assert not irq.level
    g.pend(41)
    assert g.pending(41)
    assert irq.level
    off, bit = bit_reg(ICPENDR, 41)
    gic.write(off, 4, bit)
    assert not g.pending(41)
    assert not irq.level


def test_disabled_interrupts_and_distributor_are_not_signalled() -> None:
    gic, irq, _ = make_gic()
    g = Guest(gic)
    g.setup()
    gic.write(IPRIORITYR + 44, 1, 0x10)
    gic.set_irq(44, True)
    assert g.pending(44)
    assert not irq.level
    g.enable(44, 0x10)
    assert irq.level
    off, bit = bit_reg(ICENABLER, 44)
    gic.write(off, 4, bit)
    assert not irq.level
    gic.write(bit_reg(ISENABLER, 44)[0], 4, bit)
    gic.write(CTLR, 4, 0)
    assert not irq.level
    assert g.ack() == 1023


def test_pmr_masks_equal_and_lower_priorities() -> None:
    gic, irq, _ = make_gic()
    g = Guest(gic)
    g.setup(pmr=0xA0)
    g.enable(33, 0xA0)
    g.pend(33)
    assert not irq.level
    assert g.ack() == 1023
    assert gic.cpu_interface.read(HPPIR, 4) == 33  # pending, just masked
    gic.cpu_interface.write(PMR, 4, 0xA8)
    assert irq.level
    assert g.ack() == 33


def test_acknowledge_order_is_priority_then_id() -> None:
    gic, _, _ = make_gic()
    g = Guest(gic)
    g.setup()
    for intid, prio in ((50, 0x80), (60, 0x40), (45, 0x80), (44, 0x80)):
        g.enable(intid, prio, edge=True)
        g.pend(intid)
    order = []
    for _ in range(4):
        intid = g.ack()
        order.append(intid)
        g.eoi(intid)
    assert order == [60, 44, 45, 50]
    assert g.ack() == 1023


def test_higher_priority_preempts_and_lower_waits() -> None:
    gic, irq, _ = make_gic()
    g = Guest(gic)
    g.setup()
    g.enable(50, 0x80, edge=True)
    g.enable(60, 0x40, edge=True)
    g.enable(45, 0x80, edge=True)
    g.pend(50)
    assert g.ack() == 50
    g.pend(45)  # same priority as the running one: no preemption
    assert not irq.level
    assert g.ack() == 1023
    g.pend(60)
    assert irq.level
    assert g.ack() == 60
    assert gic.cpu_interface.read(RPR, 4) == 0x40
    g.eoi(60)
    assert gic.cpu_interface.read(RPR, 4) == 0x80
    assert not irq.level  # 45 still cannot preempt 50
    g.eoi(50)
    assert irq.level
    assert g.ack() == 45


def test_binary_point_limits_preemption_to_group_priority() -> None:
    gic, irq, _ = make_gic()
    g = Guest(gic)
    g.setup()
    gic.cpu_interface.write(BPR, 4, 6)  # group priority is bit 7 only
    g.enable(50, 0x40, edge=True)
    g.enable(51, 0x20, edge=True)
    g.enable(52, 0x90, edge=True)
    g.enable(53, 0x00, edge=True)
    g.pend(52)
    assert g.ack() == 52
    assert gic.cpu_interface.read(RPR, 4) == 0x80
    g.pend(50)
    assert irq.level
    assert g.ack() == 50
    g.pend(51)
    assert not irq.level  # 0x20 is in the running group priority 0x00
    g.pend(53)
    assert not irq.level


def test_sgi_to_self_through_sgir() -> None:
    gic, irq, _ = make_gic()
    g = Guest(gic)
    g.setup()
    assert gic.read(ISENABLER, 4) & 0xFFFF == 0xFFFF  # SGIs always enabled
    gic.write(SGIR, 4, (2 << 24) | 3)  # this CPU only
    assert irq.level
    assert g.pending(3)
    assert g.ack() == 3  # source CPU 0 in bits [12:10]
    g.eoi(3)
    gic.write(SGIR, 4, (0 << 24) | (0x01 << 16) | 7)  # target list: CPU 0
    assert g.ack() == 7
    g.eoi(7)
    gic.write(SGIR, 4, (1 << 24) | 5)  # all other CPUs: none exist
    assert not g.pending(5)
    gic.write(SGIR, 4, (0x02 << 16) | 6)  # a CPU that does not exist
    assert not g.pending(6)
    assert any("do not exist" in e for e in gic.log.guest_errors)
    assert gic.read(0xF20, 1) == 0  # SPENDSGIR byte of SGI 0
    gic.write(0xF20 + 9, 1, 1)
    assert g.pending(9)
    assert gic.read(0xF20 + 8, 4) >> 8 & 0xFF == 1
    gic.write(0xF10 + 9, 1, 1)
    assert not g.pending(9)


def test_ipriorityr_byte_and_word_access() -> None:
    gic, _, _ = make_gic()
    gic.write(IPRIORITYR + 37, 1, 0xA0)
    assert gic.read(IPRIORITYR + 36, 4) == 0x0000_A000
    gic.write(IPRIORITYR + 40, 4, 0x44332211)
    assert [gic.read(IPRIORITYR + 40 + k, 1) for k in range(4)] == [0x11, 0x22, 0x33, 0x44]
    gic.write(IPRIORITYR + 42, 2, 0xBEEF)
    assert gic.read(IPRIORITYR + 40, 4) == 0xBEEF_2211
    assert gic.read(IPRIORITYR + 42, 2) == 0xBEEF


def test_word_only_registers_reject_byte_access() -> None:
    gic, _, _ = make_gic()
    gic.write(ISENABLER + 1, 4, 0xFFFF_FFFF)  # INTIDs 32..63 via an unaligned word
    gic.write(ISENABLER + 4, 1, 0xFF)
    assert gic.read(ISENABLER + 4, 4) == 0
    assert len(gic.log.guest_errors) == 2


def test_itargetsr_private_read_own_cpu_and_spi_keeps_bit_zero() -> None:
    gic, _, _ = make_gic()
    assert gic.read(ITARGETSR, 4) == 0x0101_0101
    assert gic.read(ITARGETSR + 28, 4) == 0x0101_0101
    gic.write(ITARGETSR, 4, 0)
    assert gic.read(ITARGETSR, 4) == 0x0101_0101
    gic.write(ITARGETSR + 32, 4, 0xFF03_0201)
    assert gic.read(ITARGETSR + 32, 4) == 0x0101_0001


def test_group0_goes_to_fiq_with_fiqen_and_group1_needs_ackctl() -> None:
    gic, irq, fiq = make_gic()
    g = Guest(gic)
    g.setup()
    gic.write(CTLR, 4, 3)
    gic.cpu_interface.write(C_CTLR, 4, 0b1011)  # both groups, FIQEn
    g.enable(34, 0x20, edge=True)
    g.pend(34)
    assert fiq.level
    assert not irq.level
    assert gic.fiq_pending()
    assert g.ack() == 34
    g.eoi(34)
    assert not fiq.level
    off, bit = bit_reg(IGROUPR, 35)
    gic.write(off, 4, bit)
    g.enable(35, 0x20, edge=True)
    g.pend(35)
    assert irq.level
    assert not fiq.level
    assert g.ack() == 1022  # group 1 while AckCtl is 0: not acknowledged
    assert g.pending(35)
    gic.cpu_interface.write(C_CTLR, 4, 0b1111)
    assert g.ack() == 35


def test_eoimode_splits_priority_drop_and_deactivation() -> None:
    gic, irq, _ = make_gic()
    g = Guest(gic)
    g.setup()
    gic.cpu_interface.write(C_CTLR, 4, 1 | 1 << 9)
    g.enable(36, 0x80)
    gic.set_irq(36, True)
    assert g.ack() == 36
    g.eoi(36)
    assert gic.cpu_interface.read(RPR, 4) == 0xFF  # priority dropped
    assert g.active(36)
    assert not irq.level
    gic.cpu_interface.write(DIR, 4, 36)
    assert not g.active(36)
    assert irq.level


def test_active_registers_and_spurious_eoi() -> None:
    gic, _, _ = make_gic()
    g = Guest(gic)
    off, bit = bit_reg(ISACTIVER, 47)
    gic.write(off, 4, bit)
    assert g.active(47)
    gic.write(bit_reg(ICACTIVER, 47)[0], 4, bit)
    assert not g.active(47)
    g.eoi(1023)
    assert not gic.log.guest_errors
    g.eoi(47)
    assert "not acknowledged" in gic.log.guest_errors[-1]


def test_unimplemented_aliased_registers_are_logged() -> None:
    gic, _, _ = make_gic()
    assert gic.cpu_interface.read(AIAR, 4) == 1023
    assert gic.log.unimplemented


def test_spi_and_ppi_lines_drive_inputs() -> None:
    gic, irq, _ = make_gic()
    g = Guest(gic)
    g.setup()
    g.enable(32 + 5)
    g.enable(16 + 14)
    spi, ppi = gic.spi_line(5), gic.ppi_line(14)
    spi.raise_()
    assert g.pending(37)
    assert irq.level
    spi.lower()
    ppi.raise_()
    assert g.ack() == 30
    with pytest.raises(ConfigurationError, match="64"):
        gic.spi_line(64)
    with pytest.raises(ConfigurationError, match="15"):
        gic.set_irq(15, True)


def test_mmio_blocks_are_distributor_then_cpu_interface() -> None:
    gic, _, _ = make_gic()
    assert gic.mmio_blocks() == (gic, gic.cpu_interface)
    assert gic.mmio_size == 0x1000
    assert gic.cpu_interface.mmio_size == 0x2000


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.integers(32, 95), st.integers(0, 0xEF), min_size=1, max_size=12))
def test_acknowledge_sequence_is_sorted_by_priority_then_id(prios: dict[int, int]) -> None:
    gic, irq, _ = make_gic()
    g = Guest(gic)
    g.setup()
    for intid, prio in prios.items():
        g.enable(intid, prio, edge=True)
        g.pend(intid)
    taken = []
    while irq.level:
        intid = g.ack()
        taken.append(intid)
        g.eoi(intid)
    assert taken == sorted(prios, key=lambda i: (prios[i], i))
    assert g.ack() == 1023


def test_reset_lowers_outputs_and_keeps_input_levels() -> None:
    gic, irq, _ = make_gic()
    g = Guest(gic)
    g.setup()
    g.enable(38)
    gic.set_irq(38, True)
    assert irq.level
    gic.reset()
    assert not irq.level
    assert g.pending(38)  # the line is still high: pending, but nothing is enabled
    assert gic.read(CTLR, 4) == 0
