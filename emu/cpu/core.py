"""Unicorn ARM setup and register helpers.

Unicorn starts the core in Non-secure SVC mode with the MMU off. Everything
here reads and writes architectural state; exception entry lives in
:mod:`emu.cpu.exceptions`, page-table walks in :mod:`emu.cpu.mmu` and the
generic-timer intercept in :mod:`emu.cpu.cp15`.
"""

from __future__ import annotations

import ctypes
from typing import Any

import unicorn as _unicorn
from unicorn import UC_ARCH_ARM, UC_MODE_ARM
from unicorn import arm_const as a
from unicorn.unicorn_py3.unicorn import uclib

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

# The binding's reg_read/reg_write take ~2 µs (register-class lookup, generators) and an
# interrupt needs a dozen of them; the C calls on a reused 32-bit buffer take ~0.3 µs.
# Private function objects: the binding's own stay untouched.
_reg_read = uclib["uc_reg_read"]
_reg_read.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
_reg_read.restype = ctypes.c_int
_reg_write = uclib["uc_reg_write"]
_reg_write.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
_reg_write.restype = ctypes.c_int



class _CpReg(ctypes.Structure):
    """Unicorn's ``uc_arm_cp_reg``: coprocessor, 64-bit flag, security, CRn, CRm, op1, op2."""

    _fields_ = [("cp", ctypes.c_uint32), ("is64", ctypes.c_uint32), ("sec", ctypes.c_uint32),
                ("crn", ctypes.c_uint32), ("crm", ctypes.c_uint32), ("opc1", ctypes.c_uint32),
                ("opc2", ctypes.c_uint32), ("val", ctypes.c_uint64)]


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
        self._uch = self.uc._uch
        self._rbuf = ctypes.c_uint32()
        self._rref = ctypes.byref(self._rbuf)
        self._wbuf = ctypes.c_uint32()
        self._wref = ctypes.byref(self._wbuf)
        self._cp = _CpReg(cp=15)  # sec 0: the Non-secure bank
        self._cpref = ctypes.byref(self._cp)

    # core registers -------------------------------------------------------
    def read(self, reg_id: int) -> int:
        """A 32-bit register by Unicorn id (``UC_ARM_REG_*``), through the C API."""
        _reg_read(self._uch, reg_id, self._rref)
        return self._rbuf.value

    def write(self, reg_id: int, value: int) -> None:
        self._wbuf.value = value & 0xFFFF_FFFF
        _reg_write(self._uch, reg_id, self._wref)

    def reg(self, n: int) -> int:
        return self.read(_R[n])

    def set_reg(self, n: int, value: int) -> None:
        self.write(_R[n], value)

    @property
    def pc(self) -> int:
        return self.read(a.UC_ARM_REG_PC)

    @property
    def cpsr(self) -> int:
        return self.read(a.UC_ARM_REG_CPSR)

    def set_cpsr(self, value: int) -> None:
        self.write(a.UC_ARM_REG_CPSR, value)

    @property
    def spsr(self) -> int:
        return self.read(a.UC_ARM_REG_SPSR)

    def set_spsr(self, value: int) -> None:
        self.write(a.UC_ARM_REG_SPSR, value)

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
        self.write(a.UC_ARM_REG_PC, (value & ~1) | int(thumb))

    def start_address(self) -> int:
        """The address to hand ``emu_start``: PC with bit 0 = CPSR.T."""
        return (self.pc & ~1) | int(self.thumb)

    # coprocessor 15 ---------------------------------------------------------
    def read_cp15(self, crn: int, crm: int, opc1: int = 0, opc2: int = 0,
                  is64: bool = False) -> int:
        """Read a Non-secure CP15 register (64-bit ones with ``is64`` and ``crn=0``)."""
        cp = self._cp
        cp.is64, cp.crn, cp.crm, cp.opc1, cp.opc2 = int(is64), crn, crm, opc1, opc2
        _reg_read(self._uch, a.UC_ARM_REG_CP_REG, self._cpref)
        return int(cp.val)

    def write_cp15(self, crn: int, crm: int, opc1: int, opc2: int, value: int,
                   is64: bool = False) -> None:
        cp = self._cp
        cp.is64, cp.crn, cp.crm, cp.opc1, cp.opc2 = int(is64), crn, crm, opc1, opc2
        cp.val = value & (0xFFFF_FFFF_FFFF_FFFF if is64 else 0xFFFF_FFFF)
        _reg_write(self._uch, a.UC_ARM_REG_CP_REG, self._cpref)

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
