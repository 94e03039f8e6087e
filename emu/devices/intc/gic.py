"""ARM Generic Interrupt Controller v2 ("arm,cortex-a15-gic", "arm,gic-400", ...).

Interface:
  MMIO      two blocks, the node's two ``reg`` entries in order:
            [0] distributor (GICD), 0x1000 bytes: this :class:`Gic` object;
            [1] CPU interface (GICC), 0x2000 bytes: ``gic.cpu_interface``
            (:class:`GicCpuInterface`); ``gic.mmio_blocks()`` returns both.
  Inputs    ``set_irq(intid, level)`` for PPIs (16..31) and SPIs (32..);
            ``ppi_line(n)`` / ``spi_line(n)`` give an :class:`IrqLine` wired to
            PPI n (INTID 16 + n) or SPI n (INTID 32 + n), the numbers a device
            tree's ``interrupts = <GIC_PPI n ...>`` / ``<GIC_SPI n ...>`` use.
  Outputs   ``ctx.irqs[0]`` is the IRQ line to the CPU, ``ctx.irqs[1]`` the FIQ
            line (created unconnected when the context has none); ``irq_pending()``
            says whether the IRQ line is high.

Modelled: one CPU interface; interrupt groups 0 and 1 with GICD_CTLR / GICC_CTLR
enables; enable, pending, active, priority (8 bits), target and configuration
registers; SGIs through GICD_SGIR (only to this CPU) and GICD_SPENDSGIR /
GICD_CPENDSGIR; acknowledge (GICC_IAR), priority drop and deactivation
(GICC_EOIR, or GICC_DIR when GICC_CTLR.EOImode is set), PMR masking, binary
points and preemption, running priority (GICC_RPR), GICC_HPPIR. Group 0
interrupts go to FIQ when GICC_CTLR.FIQEn is set, everything else to IRQ.

Pending state follows the architecture: a level-sensitive interrupt is pending
while its input is high or while a software-set latch is set, so it is pending
again after EOI when its line is still high; an edge-triggered interrupt latches
a rising edge until it is acknowledged or cleared.

Single security state: the model is a GICv2 without the Security Extensions
(GICD_TYPER.SecurityExtn reads 0); every access behaves like the one
security state such a GIC has. IGROUPR is read/write and resets to group 0,
which is where Linux leaves every interrupt.

With a single CPU interface every interrupt goes to it (the uniprocessor rule):
ITARGETSR0-7 read the CPU's own bit, SPI target bytes keep bit 0 for read-back
and do not gate delivery. SGIs are always enabled (ISENABLER0[15:0] read as
ones), as on GIC-400.

Logged as unimplemented: GICC_AIAR / GICC_AEOIR / GICC_AHPPIR (aliased group 1
registers), non-zero writes of GICC_APRn / GICC_NSAPRn, interrupt bypass, GICD_NSACR. Accesses of
the wrong size (anything but 32 bits outside IPRIORITYR, ITARGETSR, CPENDSGIR
and SPENDSGIR) are guest errors: reads return 0, writes are ignored.
"""

from __future__ import annotations

import dataclasses

from emu.devices.base import Access, Device, DeviceContext, Field, IrqLine, Register
from emu.errors import ConfigurationError

MAX_INTERRUPTS = 1020
"""INTIDs 1020..1023 are special (1022, 1023: nothing to acknowledge)."""
MAX_SPIS = 960
"""The largest multiple of 32 that keeps every INTID below 1020."""
SPURIOUS = 1023
GROUP1_NOT_ACKNOWLEDGED = 1022
NUM_SGIS = 16
NUM_PRIVATE = 32
IDLE_PRIORITY = 0xFF

GICD_IIDR_VALUE = 0x0200_143B  # GIC-400 r0p0, implementer ARM (0x43B)
GICC_IIDR_VALUE = 0x0202_143B  # GIC-400 CPU interface, architecture version 2

_ID_REGS = (
    ("PIDR4", 0xFD0, 0x04), ("PIDR5", 0xFD4, 0x00), ("PIDR6", 0xFD8, 0x00),
    ("PIDR7", 0xFDC, 0x00), ("PIDR0", 0xFE0, 0x90), ("PIDR1", 0xFE4, 0xB4),
    ("PIDR2", 0xFE8, 0x2B), ("PIDR3", 0xFEC, 0x00), ("CIDR0", 0xFF0, 0x0D),
    ("CIDR1", 0xFF4, 0xF0), ("CIDR2", 0xFF8, 0x05), ("CIDR3", 0xFFC, 0xB1),
)

_BIT_ARRAYS = frozenset({
    "IGROUPR", "ISENABLER", "ICENABLER", "ISPENDR", "ICPENDR", "ISACTIVER", "ICACTIVER",
})
_BYTE_ACCESSIBLE = frozenset({"IPRIORITYR", "ITARGETSR", "CPENDSGIR", "SPENDSGIR"})


def _bit_array(offset: int, name: str, doc: str, access: Access = Access.RW) -> Register:
    return Register(offset, name, access, count=MAX_INTERRUPTS // 32 + 1, doc=doc)


DISTRIBUTOR_REGISTERS: tuple[Register, ...] = (
    Register(0x000, "CTLR", Access.RW, fields=(
        Field("ENABLEGRP0", 0, doc="forward pending group 0 interrupts"),
        Field("ENABLEGRP1", 1, doc="forward pending group 1 interrupts"),
    ), doc="distributor control"),
    Register(0x004, "TYPER", Access.R, fields=(
        Field("ITLINESNUMBER", 0, 5, Access.R, doc="(number of interrupts / 32) - 1"),
        Field("CPUNUMBER", 5, 3, Access.R, doc="number of CPU interfaces - 1 (0)"),
        Field("SECURITYEXTN", 10, 1, Access.R, doc="0: no Security Extensions"),
        Field("LSPI", 11, 5, Access.R, doc="lockable SPIs (0)"),
    ), doc="interrupt controller type"),
    Register(0x008, "IIDR", Access.R, GICD_IIDR_VALUE, doc="implementer identification"),
    _bit_array(0x080, "IGROUPR", "group of each interrupt (0 or 1), one bit each"),
    _bit_array(0x100, "ISENABLER", "write 1 to enable; reads the enables", Access.W1S),
    _bit_array(0x180, "ICENABLER", "write 1 to disable; reads the enables", Access.W1C),
    _bit_array(0x200, "ISPENDR", "write 1 to set pending; reads the pending state", Access.W1S),
    _bit_array(0x280, "ICPENDR", "write 1 to clear pending; reads the pending state", Access.W1C),
    _bit_array(0x300, "ISACTIVER", "write 1 to set active; reads the active state", Access.W1S),
    _bit_array(0x380, "ICACTIVER", "write 1 to clear active; reads the active state", Access.W1C),
    Register(0x400, "IPRIORITYR", Access.RW, count=MAX_INTERRUPTS // 4,
             doc="one priority byte per interrupt (byte accessible)"),
    Register(0x800, "ITARGETSR", Access.RW, count=MAX_INTERRUPTS // 4,
             doc="one CPU target byte per interrupt; 0-31 read the own CPU bit"),
    Register(0xC00, "ICFGR", Access.RW, count=MAX_INTERRUPTS // 16 + 1,
             doc="two bits per interrupt; bit 1 of each pair set: edge-triggered"),
    Register(0xF00, "SGIR", Access.W, fields=(
        Field("SGIINTID", 0, 4, Access.W, doc="the SGI to send"),
        Field("NSATT", 15, 1, Access.W, doc="ignored (no Security Extensions)"),
        Field("CPUTARGETLIST", 16, 8, Access.W, doc="target CPUs when the filter is 0"),
        Field("TARGETLISTFILTER", 24, 2, Access.W,
              doc="0: the list, 1: all other CPUs, 2: this CPU only"),
    ), doc="software generated interrupt"),
    Register(0xF10, "CPENDSGIR", Access.W1C, count=4,
             doc="one byte per SGI, one bit per source CPU: write 1 to clear pending"),
    Register(0xF20, "SPENDSGIR", Access.W1S, count=4,
             doc="one byte per SGI, one bit per source CPU: write 1 to set pending"),
    *(Register(off, name, Access.R, value, doc="identification") for name, off, value in _ID_REGS),
)

_PRIORITY_FIELDS = (Field("PRIORITY", 0, 8, doc="priority value (lower is more urgent)"),)

CPU_INTERFACE_REGISTERS: tuple[Register, ...] = (
    Register(0x000, "CTLR", Access.RW, fields=(
        Field("ENABLEGRP0", 0, doc="signal group 0 interrupts"),
        Field("ENABLEGRP1", 1, doc="signal group 1 interrupts"),
        Field("ACKCTL", 2, doc="IAR may acknowledge group 1 interrupts"),
        Field("FIQEN", 3, doc="group 0 interrupts are signalled as FIQ"),
        Field("CBPR", 4, doc="BPR controls both groups"),
        Field("FIQBYPDISGRP0", 5, doc="bypass disable (not modelled)"),
        Field("IRQBYPDISGRP0", 6, doc="bypass disable (not modelled)"),
        Field("FIQBYPDISGRP1", 7, doc="bypass disable (not modelled)"),
        Field("IRQBYPDISGRP1", 8, doc="bypass disable (not modelled)"),
        Field("EOIMODE", 9, doc="1: EOIR only drops priority, DIR deactivates"),
    ), doc="CPU interface control"),
    Register(0x004, "PMR", Access.RW, fields=_PRIORITY_FIELDS,
             doc="priority mask: only interrupts with a lower value are signalled"),
    Register(0x008, "BPR", Access.RW, fields=(Field("BINARYPOINT", 0, 3),),
             doc="binary point: splits priority into group priority and subpriority"),
    Register(0x00C, "IAR", Access.R, fields=(
        Field("INTERRUPTID", 0, 10, Access.R), Field("CPUID", 10, 3, Access.R),
    ), doc="acknowledge: returns the interrupt taken (1023: spurious)"),
    Register(0x010, "EOIR", Access.W, fields=(
        Field("EOIINTID", 0, 10, Access.W), Field("CPUID", 10, 3, Access.W),
    ), doc="end of interrupt: priority drop (and deactivation unless EOImode)"),
    Register(0x014, "RPR", Access.R, fields=_PRIORITY_FIELDS, doc="running priority"),
    Register(0x018, "HPPIR", Access.R, fields=(
        Field("PENDINTID", 0, 10, Access.R), Field("CPUID", 10, 3, Access.R),
    ), doc="highest priority pending interrupt"),
    Register(0x01C, "ABPR", Access.RW, fields=(Field("BINARYPOINT", 0, 3),),
             doc="binary point for group 1 (when CBPR is 0)"),
    Register(0x020, "AIAR", Access.R, doc="aliased IAR (not modelled, reads 1023)"),
    Register(0x024, "AEOIR", Access.W, doc="aliased EOIR (not modelled)"),
    Register(0x028, "AHPPIR", Access.R, doc="aliased HPPIR (not modelled, reads 1023)"),
    Register(0x0D0, "APR", Access.RW, count=4,
             doc="active priorities (not modelled: read 0; writing 0, as Linux does at CPU "
                 "start-up, is accepted)"),
    Register(0x0FC, "IIDR", Access.R, GICC_IIDR_VALUE, doc="CPU interface identification"),
    Register(0x1000, "DIR", Access.W, fields=(
        Field("INTERRUPTID", 0, 10, Access.W), Field("CPUID", 10, 3, Access.W),
    ), doc="deactivate (used when GICC_CTLR.EOImode is set)"),
)


# GICC_CTLR bits
CTLR_ENABLEGRP0 = 1 << 0
CTLR_ENABLEGRP1 = 1 << 1
CTLR_ACKCTL = 1 << 2
CTLR_FIQEN = 1 << 3
CTLR_CBPR = 1 << 4
CTLR_EOIMODE = 1 << 9
_CTLR_BYPASS = 0xF << 5


class _BlockAccess(Device):
    """Shared access rules of both GIC blocks: 32-bit accesses, a few byte arrays."""

    def _lookup(self, offset: int, size: int, what: str) -> tuple[Register, int] | None:
        hit = self._by_offset.get(offset & ~3)
        if hit is None:
            self.log.guest_error(f"{what} of unmapped offset 0x{offset:x} (size {size})")
            return None
        reg, index = hit
        if reg.name in _BYTE_ACCESSIBLE:
            if offset % size:
                self.log.guest_error(f"unaligned {what} of {reg.name}{index} at 0x{offset:x}")
                return None
        elif size != 4 or offset & 3:
            self.log.guest_error(
                f"{what} of {self.register_name(offset)} with size {size} at 0x{offset:x}: "
                "only aligned 32-bit accesses are allowed"
            )
            return None
        return reg, index


class Gic(_BlockAccess):
    """The GICv2 distributor, owner of the interrupt state and of the CPU interface."""

    compatible = ("arm,cortex-a15-gic", "arm,gic-400", "arm,cortex-a9-gic", "arm,cortex-a7-gic")
    mmio_size = 0x1000
    registers = DISTRIBUTOR_REGISTERS

    def __init__(self, ctx: DeviceContext, *, num_spis: int = 64) -> None:
        if num_spis % 32 or not 0 <= num_spis <= MAX_SPIS:
            raise ConfigurationError(
                f"GIC SPI count must be a multiple of 32 in 0..{MAX_SPIS}, not {num_spis!r}"
            )
        self.num_spis = num_spis
        self.num_irqs = NUM_PRIVATE + num_spis
        n = self.num_irqs
        self._enabled = [False] * n
        self._latch = [False] * n
        self._line = [False] * n
        self._active = [False] * n
        self._group = [0] * n
        self._priority = [0] * n
        self._target = [0] * n
        self._edge = [False] * n
        self._pending_ids: set[int] = set()
        self._ctlr = 0
        self._irq_out = ctx.irqs[0] if ctx.irqs else IrqLine(name=f"{ctx.name}.irq")
        self._fiq_out = ctx.irqs[1] if len(ctx.irqs) > 1 else IrqLine(name=f"{ctx.name}.fiq")
        cpu_ctx = dataclasses.replace(ctx, name=f"{ctx.name}.cpu", irqs=[], log=ctx.log)
        self.cpu_interface = GicCpuInterface(cpu_ctx, self)
        super().__init__(ctx)

    # host-side API -------------------------------------------------------
    def mmio_blocks(self) -> tuple[Device, ...]:
        """The objects serving the node's ``reg`` entries, in order: GICD, GICC."""
        return (self, self.cpu_interface)

    @property
    def irq_line(self) -> IrqLine:
        """The IRQ output to the CPU."""
        return self._irq_out

    @property
    def fiq_line(self) -> IrqLine:
        """The FIQ output to the CPU."""
        return self._fiq_out

    def irq_pending(self) -> bool:
        """True while the IRQ output to the CPU is asserted."""
        return self._irq_out.level

    def fiq_pending(self) -> bool:
        """True while the FIQ output to the CPU is asserted."""
        return self._fiq_out.level

    def set_irq(self, intid: int, level: bool) -> None:
        """Drive the input of PPI or SPI ``intid`` (16 <= intid < num_irqs)."""
        if not NUM_SGIS <= intid < self.num_irqs:
            raise ConfigurationError(
                f"GIC input must be a PPI or SPI INTID in 16..{self.num_irqs - 1}, not {intid!r}"
            )
        level = bool(level)
        if self._line[intid] == level:
            return
        self._line[intid] = level
        if level and self._edge[intid]:
            self._latch[intid] = True
        self._refresh(intid)
        self.update()

    def input_line(self, intid: int) -> IrqLine:
        """A fresh :class:`IrqLine` whose level drives input ``intid``."""
        if not NUM_SGIS <= intid < self.num_irqs:
            raise ConfigurationError(
                f"GIC input must be a PPI or SPI INTID in 16..{self.num_irqs - 1}, not {intid!r}"
            )
        return IrqLine(lambda level: self.set_irq(intid, level), name=f"{self.ctx.name}:{intid}")

    def ppi_line(self, n: int) -> IrqLine:
        """An :class:`IrqLine` wired to PPI ``n`` (INTID 16 + n, 0 <= n < 16)."""
        if not 0 <= n < 16:
            raise ConfigurationError(f"PPI number must be in 0..15, not {n!r}")
        return self.input_line(NUM_SGIS + n)

    def spi_line(self, n: int) -> IrqLine:
        """An :class:`IrqLine` wired to SPI ``n`` (INTID 32 + n)."""
        if not 0 <= n < self.num_spis:
            raise ConfigurationError(
                f"SPI number must be in 0..{self.num_spis - 1}, not {n!r}"
            )
        return self.input_line(NUM_PRIVATE + n)

    def is_pending(self, intid: int) -> bool:
        return intid in self._pending_ids

    def is_active(self, intid: int) -> bool:
        return self._active[intid]

    def group_of(self, intid: int) -> int:
        return self._group[intid]

    def priority_of(self, intid: int) -> int:
        return self._priority[intid]

    def reset(self) -> None:
        super().reset()
        n = self.num_irqs
        self._enabled = [i < NUM_SGIS for i in range(n)]
        self._latch = [False] * n
        self._active = [False] * n
        self._group = [0] * n
        self._priority = [0] * n
        self._target = [0] * n
        self._edge = [i < NUM_SGIS for i in range(n)]
        self._ctlr = 0
        self._pending_ids = {i for i in range(n) if self._line[i]}
        self.cpu_interface.reset()
        self.update()

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "interrupts": self.num_irqs}

    # interrupt state -----------------------------------------------------
    def _refresh(self, intid: int) -> None:
        if self._latch[intid] or (self._line[intid] and not self._edge[intid]):
            self._pending_ids.add(intid)
        else:
            self._pending_ids.discard(intid)

    def _set_pending(self, intid: int, pending: bool) -> None:
        self._latch[intid] = pending
        self._refresh(intid)

    def highest_pending(self) -> int:
        """The INTID the distributor forwards (pending, enabled, inactive), or 1023."""
        best = SPURIOUS
        best_prio = 0x100
        for intid in self._pending_ids:
            if not self._enabled[intid] or self._active[intid]:
                continue
            if not self._ctlr & (1 << self._group[intid]):
                continue
            prio = self._priority[intid]
            if prio < best_prio or (prio == best_prio and intid < best):
                best, best_prio = intid, prio
        return best

    def update(self) -> None:
        """Recompute the IRQ and FIQ outputs after any state change."""
        cpu = self.cpu_interface
        intid = self.highest_pending()
        irq = fiq = False
        if intid != SPURIOUS and cpu.can_signal(intid):
            if self._group[intid] == 0 and cpu.ctlr & CTLR_FIQEN:
                fiq = True
            else:
                irq = True
        self._irq_out.set(irq)
        self._fiq_out.set(fiq)

    # guest accesses: distributor ------------------------------------------
    def read(self, offset: int, size: int) -> int:
        hit = self._lookup(offset, size, "read")
        if hit is None:
            return 0
        reg, index = hit
        name = reg.name
        if name in _BYTE_ACCESSIBLE:
            first = index * 4 + (offset & 3)
            value = 0
            for k in range(size):
                value |= self._read_byte(name, first + k) << (8 * k)
            return value
        if name == "CTLR":
            return self._ctlr
        if name == "TYPER":
            return self.num_irqs // 32 - 1
        if name == "SGIR":
            self.log.guest_error("read of write-only register SGIR")
            return 0
        if name in _BIT_ARRAYS:
            return self._read_bits(name, index * 32)
        if name == "ICFGR":
            value = 0
            for k in range(16):
                intid = index * 16 + k
                if intid < self.num_irqs and self._edge[intid]:
                    value |= 2 << (2 * k)
            return value
        return self.values[name][index]

    def _read_bits(self, name: str, first: int) -> int:
        value = 0
        for k in range(32):
            intid = first + k
            if intid >= self.num_irqs:
                break
            if name == "IGROUPR":
                bit = self._group[intid] == 1
            elif name in ("ISENABLER", "ICENABLER"):
                bit = self._enabled[intid]
            elif name in ("ISPENDR", "ICPENDR"):
                bit = intid in self._pending_ids
            else:
                bit = self._active[intid]
            if bit:
                value |= 1 << k
        return value

    def _read_byte(self, name: str, n: int) -> int:
        if name in ("CPENDSGIR", "SPENDSGIR"):
            return 1 if n < NUM_SGIS and n in self._pending_ids else 0
        if n >= self.num_irqs:
            return 0
        if name == "IPRIORITYR":
            return self._priority[n]
        if n < NUM_PRIVATE:
            return 0x01
        return self._target[n]

    def write(self, offset: int, size: int, value: int) -> None:
        hit = self._lookup(offset, size, "write")
        if hit is None:
            return
        reg, index = hit
        name = reg.name
        if name in _BYTE_ACCESSIBLE:
            first = index * 4 + (offset & 3)
            for k in range(size):
                self._write_byte(name, first + k, (value >> (8 * k)) & 0xFF)
        elif name == "CTLR":
            self._ctlr = value & 0x3
        elif name == "SGIR":
            self._write_sgir(value)
        elif name in _BIT_ARRAYS:
            self._write_bits(name, index * 32, value)
        elif name == "ICFGR":
            self._write_icfgr(index, value)
        else:
            self.log.guest_error(f"write of 0x{value:x} to read-only {self.register_name(offset)}")
            return
        self.update()

    def _write_bits(self, name: str, first: int, value: int) -> None:
        for k in range(32):
            intid = first + k
            if intid >= self.num_irqs:
                if value >> k:
                    self.log.guest_error(
                        f"{name} write 0x{value:x} names INTIDs beyond {self.num_irqs - 1}"
                    )
                break
            bit = bool(value >> k & 1)
            if name == "IGROUPR":
                self._group[intid] = int(bit)
            elif not bit:
                continue
            elif name == "ISENABLER":
                self._enabled[intid] = True
            elif name == "ICENABLER":
                self._enabled[intid] = intid < NUM_SGIS
            elif name == "ISPENDR":
                if intid < NUM_SGIS:
                    continue  # SGIs are set pending through SGIR / SPENDSGIR only
                self._set_pending(intid, True)
            elif name == "ICPENDR":
                if intid < NUM_SGIS:
                    continue
                self._set_pending(intid, False)
            elif name == "ISACTIVER":
                self._active[intid] = True
            else:
                self._active[intid] = False

    def _write_byte(self, name: str, n: int, byte: int) -> None:
        if name in ("CPENDSGIR", "SPENDSGIR"):
            if n < NUM_SGIS and byte & 1:
                self._set_pending(n, name == "SPENDSGIR")
            return
        if n >= self.num_irqs:
            return
        if name == "IPRIORITYR":
            self._priority[n] = byte
        elif n >= NUM_PRIVATE:
            self._target[n] = byte & 0x01

    def _write_icfgr(self, index: int, value: int) -> None:
        for k in range(16):
            intid = index * 16 + k
            if intid >= self.num_irqs:
                break
            if intid < NUM_SGIS:
                continue  # SGIs are always edge-triggered
            edge = bool(value >> (2 * k + 1) & 1)
            if edge != self._edge[intid]:
                self._edge[intid] = edge
                self._refresh(intid)

    def _write_sgir(self, value: int) -> None:
        sgi = value & 0xF
        filt = (value >> 24) & 0x3
        if filt == 0:
            to_self = bool((value >> 16) & 0x01)
            if (value >> 16) & 0xFE:
                self.log.guest_error(
                    f"SGIR 0x{value:08x} targets CPU interfaces that do not exist"
                )
        elif filt == 1:
            to_self = False  # "all other CPUs": there are none
        elif filt == 2:
            to_self = True
        else:
            self.log.guest_error(f"SGIR 0x{value:08x} uses the reserved target filter 3")
            return
        if to_self:
            self._set_pending(sgi, True)

    # CPU interface operations ---------------------------------------------
    def acknowledge(self) -> int:
        """GICC_IAR: take the signalled interrupt, or return 1022 / 1023."""
        cpu = self.cpu_interface
        intid = self.highest_pending()
        if intid == SPURIOUS or not cpu.can_signal(intid):
            return SPURIOUS
        if self._group[intid] == 1 and not cpu.ctlr & CTLR_ACKCTL:
            return GROUP1_NOT_ACKNOWLEDGED
        self._set_pending(intid, False)
        self._active[intid] = True
        cpu.push_active(intid, self._priority[intid], self._group[intid])
        self.update()
        return intid

    def deactivate(self, intid: int) -> None:
        if intid < self.num_irqs:
            self._active[intid] = False
            self.update()


class GicCpuInterface(_BlockAccess):
    """The GICv2 CPU interface of the one CPU (the node's second ``reg`` entry)."""

    compatible = ()
    mmio_size = 0x2000
    registers = CPU_INTERFACE_REGISTERS

    def __init__(self, ctx: DeviceContext, gic: Gic) -> None:
        self.gic = gic
        self.ctlr = 0
        self.pmr = 0
        self.bpr = 0
        self.abpr = 1
        self._active: list[tuple[int, int]] = []  # (intid, group priority), oldest first
        super().__init__(ctx)

    def reset(self) -> None:
        super().reset()
        self.ctlr = 0
        self.pmr = 0
        self.bpr = 0
        self.abpr = 1
        self._active = []

    def running_priority(self) -> int:
        """The lowest group priority among acknowledged, not yet priority-dropped IRQs."""
        return min((prio for _, prio in self._active), default=IDLE_PRIORITY)

    def _group_mask(self, group: int) -> int:
        if group == 0 or self.ctlr & CTLR_CBPR:
            return (0xFF << (self.bpr + 1)) & 0xFF
        return (0xFF << self.abpr) & 0xFF

    def can_signal(self, intid: int) -> bool:
        """Whether the CPU interface would signal forwarded interrupt ``intid``."""
        group = self.gic.group_of(intid)
        if not self.ctlr & (1 << group):
            return False
        prio = self.gic.priority_of(intid)
        return prio < self.pmr and prio < self.running_priority()

    def push_active(self, intid: int, priority: int, group: int) -> None:
        self._active.append((intid, priority & self._group_mask(group)))

    # guest accesses --------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        hit = self._lookup(offset, size, "read")
        if hit is None:
            return 0
        reg, _index = hit
        name = reg.name
        if name == "CTLR":
            return self.ctlr
        if name == "PMR":
            return self.pmr
        if name == "BPR":
            return self.bpr
        if name == "ABPR":
            return self.abpr
        if name == "IAR":
            return self.gic.acknowledge()
        if name == "RPR":
            return self.running_priority()
        if name == "HPPIR":
            return self.gic.highest_pending()
        if name in ("AIAR", "AHPPIR"):
            self.log.unimp(f"GICC_{name} (aliased group 1 access)")
            return SPURIOUS
        if name == "APR":
            self.log.unimp("GICC_APRn (active priorities)")
            return 0
        if not reg.access.readable:
            self.log.guest_error(f"read of write-only register GICC_{name}")
            return 0
        return self.values[name][0]

    def write(self, offset: int, size: int, value: int) -> None:
        hit = self._lookup(offset, size, "write")
        if hit is None:
            return
        reg, _index = hit
        name = reg.name
        if name == "CTLR":
            if value & _CTLR_BYPASS:
                self.log.unimp("GICC_CTLR bypass disable bits (no legacy bypass)")
            self.ctlr = value & 0x3FF
        elif name == "PMR":
            self.pmr = value & 0xFF
        elif name == "BPR":
            self.bpr = value & 0x7
        elif name == "ABPR":
            self.abpr = max(value & 0x7, 1)
        elif name == "EOIR":
            self._end_of_interrupt(value & 0x3FF)
        elif name == "DIR":
            self._deactivate(value & 0x3FF)
        elif name == "AEOIR":
            self.log.unimp("GICC_AEOIR (aliased group 1 access)")
            return
        elif name == "APR":
            if value:  # restoring saved state; 0 (clearing them) needs nothing
                self.log.unimp("GICC_APRn state restore (active priorities)")
            return
        else:
            self.log.guest_error(f"write of 0x{value:x} to read-only GICC_{name} ignored")
            return
        self.gic.update()

    def _end_of_interrupt(self, intid: int) -> None:
        if intid >= MAX_INTERRUPTS:
            return  # EOI of a special INTID has no effect
        position = next((i for i, (n, _) in enumerate(self._active) if n == intid), None)
        if position is None:
            self.log.guest_error(f"EOIR of interrupt {intid}, which is not acknowledged")
            return
        if position != len(self._active) - 1:
            self.log.guest_error(
                f"EOIR of interrupt {intid} out of order (last acknowledged is "
                f"{self._active[-1][0]})"
            )
        del self._active[position]
        if not self.ctlr & CTLR_EOIMODE:
            self.gic.deactivate(intid)

    def _deactivate(self, intid: int) -> None:
        if intid >= self.gic.num_irqs:
            return
        if not self.ctlr & CTLR_EOIMODE:
            self.log.guest_error(f"DIR of interrupt {intid} while GICC_CTLR.EOImode is 0")
        self.gic.deactivate(intid)
