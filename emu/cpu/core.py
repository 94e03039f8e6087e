"""Unicorn ARM setup and register helpers.

Unicorn starts the core in Non-secure SVC mode with the MMU off. Everything
here reads and writes architectural state; exception entry lives in
:mod:`emu.cpu.exceptions`, page-table walks in :mod:`emu.cpu.mmu` and the
generic-timer intercept in :mod:`emu.cpu.cp15`.
"""

from __future__ import annotations

from typing import Any

import unicorn as _unicorn
from unicorn import UC_ARCH_ARM, UC_MODE_ARM
from unicorn import arm_const as a

from emu.errors import ConfigurationError

_UcAny: Any = getattr(_unicorn, "Uc")  # noqa: B009 (the stub does not re-export it)
UcError: type[Exception] = getattr(_unicorn, "UcError")  # noqa: B009

#: CPU names accepted by ``--cpu`` and the Unicorn model constants behind them
CPU_MODELS: dict[str, int] = {
    "cortex-a15": a.UC_CPU_ARM_CORTEX_A15,
    "cortex-a9": a.UC_CPU_ARM_CORTEX_A9,
    "cortex-a7": a.UC_CPU_ARM_CORTEX_A7,
    "cortex-a8": a.UC_CPU_ARM_CORTEX_A8,
}

# processor modes (CPSR.M)
MODE_USR = 0x10
MODE_FIQ = 0x11
MODE_IRQ = 0x12
MODE_SVC = 0x13
MODE_MON = 0x16
MODE_ABT = 0x17
MODE_HYP = 0x1A
MODE_UND = 0x1B
MODE_SYS = 0x1F

CPSR_T = 1 << 5
CPSR_F = 1 << 6
CPSR_I = 1 << 7
CPSR_A = 1 << 8
CPSR_E = 1 << 9
CPSR_IT_MASK = (0x3F << 10) | (0x3 << 25)
CPSR_J = 1 << 24

SCTLR_M = 1 << 0
SCTLR_V = 1 << 13
SCTLR_EE = 1 << 25
SCTLR_AFE = 1 << 29
SCTLR_TE = 1 << 30

_R = [a.UC_ARM_REG_R0, a.UC_ARM_REG_R1, a.UC_ARM_REG_R2, a.UC_ARM_REG_R3,
      a.UC_ARM_REG_R4, a.UC_ARM_REG_R5, a.UC_ARM_REG_R6, a.UC_ARM_REG_R7,
      a.UC_ARM_REG_R8, a.UC_ARM_REG_R9, a.UC_ARM_REG_R10, a.UC_ARM_REG_R11,
      a.UC_ARM_REG_R12, a.UC_ARM_REG_SP, a.UC_ARM_REG_LR, a.UC_ARM_REG_PC]


class Cpu:
    """One ARMv7-A core on Unicorn (``uc`` is shared with the bus)."""

    def __init__(self, model: str = "cortex-a15") -> None:
        key = model.lower()
        if key not in CPU_MODELS:
            known = ", ".join(sorted(CPU_MODELS))
            raise ConfigurationError(f"CPU must be one of {known}, not {model!r}")
        self.model = key
        self.uc: Any = _UcAny(UC_ARCH_ARM, UC_MODE_ARM)
        self.uc.ctl_set_cpu_model(CPU_MODELS[key])

    # core registers -------------------------------------------------------
    def reg(self, n: int) -> int:
        return int(self.uc.reg_read(_R[n]))

    def set_reg(self, n: int, value: int) -> None:
        self.uc.reg_write(_R[n], value & 0xFFFF_FFFF)

    @property
    def pc(self) -> int:
        return int(self.uc.reg_read(a.UC_ARM_REG_PC))

    @property
    def cpsr(self) -> int:
        return int(self.uc.reg_read(a.UC_ARM_REG_CPSR))

    def set_cpsr(self, value: int) -> None:
        self.uc.reg_write(a.UC_ARM_REG_CPSR, value & 0xFFFF_FFFF)

    @property
    def spsr(self) -> int:
        return int(self.uc.reg_read(a.UC_ARM_REG_SPSR))

    def set_spsr(self, value: int) -> None:
        self.uc.reg_write(a.UC_ARM_REG_SPSR, value & 0xFFFF_FFFF)

    @property
    def thumb(self) -> bool:
        return bool(self.cpsr & CPSR_T)

    @property
    def mode(self) -> int:
        return self.cpsr & 0x1F

    def set_pc(self, value: int, thumb: bool | None = None) -> None:
        """Jump to ``value``; bit 0 of the PC write selects Thumb in Unicorn."""
        if thumb is None:
            thumb = self.thumb
        self.uc.reg_write(a.UC_ARM_REG_PC, (value & ~1) | int(thumb))

    def start_address(self) -> int:
        """The address to hand ``emu_start``: PC with bit 0 = CPSR.T."""
        return (self.pc & ~1) | int(self.thumb)

    # coprocessor 15 ---------------------------------------------------------
    def read_cp15(self, crn: int, crm: int, opc1: int = 0, opc2: int = 0,
                  is64: bool = False) -> int:
        """Read a Non-secure CP15 register (64-bit ones with ``is64`` and ``crn=0``)."""
        return int(self.uc.reg_read(a.UC_ARM_REG_CP_REG,
                                    (15, int(is64), 0, crn, crm, opc1, opc2)))

    def write_cp15(self, crn: int, crm: int, opc1: int, opc2: int, value: int,
                   is64: bool = False) -> None:
        self.uc.reg_write(a.UC_ARM_REG_CP_REG,
                          (15, int(is64), 0, crn, crm, opc1, opc2, value))

    @property
    def sctlr(self) -> int:
        return self.read_cp15(1, 0, 0, 0)

    @property
    def mmu_enabled(self) -> bool:
        return bool(self.sctlr & SCTLR_M)

    def vector_base(self) -> int:
        """0xFFFF0000 when SCTLR.V (high vectors), else VBAR."""
        if self.sctlr & SCTLR_V:
            return 0xFFFF_0000
        return self.read_cp15(12, 0, 0, 0) & ~0x1F

    def boot_state(self, pc: int, regs: dict[int, int] | None = None, thumb: bool = False) -> None:
        """Reset-like entry: SVC mode, IRQ/FIQ/async aborts masked, given registers."""
        self.set_cpsr(MODE_SVC | CPSR_I | CPSR_F | CPSR_A | (CPSR_T if thumb else 0))
        for n, v in (regs or {}).items():
            self.set_reg(n, v)
        self.set_pc(pc, thumb)
