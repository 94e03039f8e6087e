"""Architectural exception entry, done in Python because Unicorn enters none.

Unicorn reports SVC, aborts and BKPT to ``UC_HOOK_INTR`` and undefined
instructions (and HVC while SCR.HCE=0) to ``UC_HOOK_INSN_INVALID``, changing
no state. This unit takes each exception the way an ARMv7-A core without the
Virtualization Extensions would: target mode, SPSR, banked LR with the
architectural offset, CPSR.I/F/A, T from SCTLR.TE, E from SCTLR.EE, IT state
cleared, PC at the vector (SCTLR.V high vectors, else VBAR). Aborts get their
DFSR/DFAR or IFSR/IFAR from a page-table walk. HVC and SMC go to the SMCCC
service, never to a vector.

Two guest situations end the run instead of looping forever (``on_fatal``):

- **no handler**: the vector the exception would jump to is empty memory (the
  word there is zero), so the CPU would slide through it (a vector that is not
  memory at all is fetched as on hardware: the prefetch abort that follows
  ends, at the latest, as a double fault);
- **double fault**: an abort (or undefined instruction) is taken while the CPU
  is already in that exception's mode, i.e. inside its own handler, which would
  overwrite the LR and SPSR the handler still needs.

Either way the exception is not entered: PC stays on the instruction that
raised it, and :attr:`ExceptionUnit.failed` (and, for a double fault,
:attr:`ExceptionUnit.double_fault`) say what could not be taken.

| exception      | mode | vector | LR                                  |
|----------------|------|--------|-------------------------------------|
| undefined      | UND  | 0x04   | instruction + 4 (ARM) / + 2 (Thumb) |
| SVC            | SVC  | 0x08   | next instruction                    |
| prefetch abort | ABT  | 0x0C   | instruction + 4                     |
| data abort     | ABT  | 0x10   | instruction + 8                     |
| IRQ            | IRQ  | 0x18   | next instruction + 4                |
| FIQ            | FIQ  | 0x1C   | next instruction + 4                |
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from capstone import CS_ARCH_ARM, CS_MODE_ARM, CS_MODE_THUMB, Cs
from capstone import arm as csarm
from unicorn import (
    UC_HOOK_INSN_INVALID,
    UC_HOOK_INTR,
    UC_HOOK_MEM_FETCH_UNMAPPED,
    UC_HOOK_MEM_READ_UNMAPPED,
    UC_HOOK_MEM_WRITE_UNMAPPED,
    UC_MEM_FETCH_UNMAPPED,
    UC_MEM_WRITE_UNMAPPED,
)

from emu.bus import Bus
from emu.cpu import mmu
from emu.cpu.core import (
    CPSR_A,
    CPSR_E,
    CPSR_F,
    CPSR_I,
    CPSR_IT_MASK,
    CPSR_J,
    CPSR_T,
    MODE_ABT,
    MODE_FIQ,
    MODE_IRQ,
    MODE_SVC,
    MODE_UND,
    MODE_USR,
    SCTLR_EE,
    SCTLR_TE,
    Cpu,
)
from emu.devices.base import DeviceLog

if TYPE_CHECKING:
    from emu.trace import Tracer

log = logging.getLogger("emu.cpu")

INTNO_SVC = 2
INTNO_PREFETCH_ABORT = 3
INTNO_DATA_ABORT = 4
INTNO_BKPT = 7
INTNO_HVC = 11
INTNO_SMC = 13

FS_DEBUG = 0x02

#: consecutive identical aborts/undefs (same kind and address) that count as a loop
FAULT_LOOP_LIMIT = 64

#: the mode each synchronous fault is taken in (a second one there is a double fault)
_FAULT_MODES = {"undef": MODE_UND, "pabort": MODE_ABT, "dabort": MODE_ABT}


@dataclass(frozen=True)
class ExceptionInfo:
    """One exception taken (kept for traces and tests)."""

    kind: str
    address: int  # the faulting/returning instruction
    lr: int
    vector: int
    fault_address: int | None = None
    fault_status: int | None = None


_REG_NUMBERS = {f"r{i}": i for i in range(16)}
_REG_NUMBERS.update({"sb": 9, "sl": 10, "fp": 11, "ip": 12, "sp": 13, "lr": 14, "pc": 15})

_HINTS_ARM = {0x0320F001, 0x0320F002, 0x0320F004, 0x0320F005}  # yield, wfe, sev, sevl
_HINTS_T16 = {0xBF10, 0xBF20, 0xBF40, 0xBF50}


class ExceptionUnit:
    """Installs the Unicorn hooks and performs exception entry."""

    def __init__(self, cpu: Cpu, bus: Bus,
                 call_service: Callable[[str], None] | None = None) -> None:
        self.cpu = cpu
        self.bus = bus
        self.call_service = call_service or (lambda conduit: None)
        self.log = DeviceLog("cpu")
        self.history: list[ExceptionInfo] = []
        self.counts: dict[str, int] = {}
        self.fatal: str | None = None
        #: why the run was ended: "no-handler", "double-fault", "exception-loop", "unknown"
        self.fatal_kind: str | None = None
        #: the last exception taken (or, when it could not be, tried)
        self.last: ExceptionInfo | None = None
        #: the exception that could not be taken (no handler, double fault)
        self.failed: ExceptionInfo | None = None
        #: (the exception being handled, the one raised inside its handler)
        self.double_fault: tuple[ExceptionInfo | None, ExceptionInfo] | None = None
        #: the last few exceptions taken, newest last (diagnosis)
        self.recent: deque[ExceptionInfo] = deque(maxlen=8)
        self._last_taken: dict[int, ExceptionInfo] = {}
        self._vectors_ok: set[int] = set()
        self.on_fatal: Callable[[str], None] | None = None
        self._last: tuple[str, int] = ("", -1)
        self._repeat = 0
        self._pending_bus_error: tuple[int, bool, bool] | None = None
        self._cs_arm = Cs(CS_ARCH_ARM, CS_MODE_ARM)
        self._cs_thumb = Cs(CS_ARCH_ARM, CS_MODE_THUMB)
        self._cs_arm.detail = True
        self._cs_thumb.detail = True
        self.keep_history = 1000
        #: set by :mod:`emu.trace` while IRQs or exceptions are traced
        self.tracer: Tracer | None = None
        #: asked first about every undefined instruction: ``(pc, thumb, 4 bytes at pc)`` ->
        #: True when handled (the timer intercept's patched sites)
        self.undefined_handlers: list[Callable[[int, bool, bytes], bool]] = []

    def install(self) -> None:
        uc = self.cpu.uc
        uc.hook_add(UC_HOOK_INTR, self._on_intr)
        uc.hook_add(UC_HOOK_INSN_INVALID, self._on_invalid)
        uc.hook_add(UC_HOOK_MEM_READ_UNMAPPED | UC_HOOK_MEM_WRITE_UNMAPPED
                    | UC_HOOK_MEM_FETCH_UNMAPPED, self._on_unmapped)

    # state helpers -----------------------------------------------------------
    def mmu_state(self) -> mmu.MmuState:
        c = self.cpu
        return mmu.MmuState(
            sctlr=c.sctlr, ttbr0=c.read_cp15(2, 0, 0, 0), ttbr1=c.read_cp15(2, 0, 0, 1),
            ttbcr=c.read_cp15(2, 0, 0, 2), dacr=c.read_cp15(3, 0, 0, 0),
        )

    def mmu_enabled(self) -> bool:
        """Whether stage-1 translation is on (SCTLR.M)."""
        return bool(self.cpu.sctlr & 1)

    def translate(self, va: int, *, write: bool = False, fetch: bool = False,
                  check: bool = False) -> mmu.Walk:
        """Walk the current tables for ``va`` (tools and fault decoding)."""
        privileged = (self.cpu.cpsr & 0x1F) != MODE_USR
        return mmu.walk(self.mmu_state(), va, self.bus.read_u32, write=write, fetch=fetch,
                        privileged=privileged, check=check)

    def read_virt(self, va: int, size: int) -> bytes | None:
        """Read guest memory at a virtual address (None when unmapped)."""
        out = bytearray()
        while size > 0:
            w = self.translate(va)
            if w.phys is None:
                return None
            chunk = min(size, 0x1000 - (va & 0xFFF))
            if not self.bus.is_memory(w.phys, chunk):
                return None
            out += self.bus.read(w.phys, chunk)
            va += chunk
            size -= chunk
        return bytes(out)

    # entry ---------------------------------------------------------------------
    def enter(self, kind: str, mode: int, offset: int, lr: int, address: int, *,
              mask_fiq: bool = False, mask_abort: bool = True,
              fault_address: int | None = None, fault_status: int | None = None) -> None:
        """Take an exception: switch mode, save CPSR in SPSR, set LR and jump to the vector."""
        cpu = self.cpu
        old = cpu.cpsr
        sctlr = cpu.sctlr
        vector = (cpu.vector_base() + offset) & 0xFFFF_FFFF
        info = ExceptionInfo(kind, address, lr & 0xFFFF_FFFF, vector, fault_address,
                             fault_status)
        self.last = info
        if self._refuse(info, old & 0x1F):
            return
        new = old & ~(0x1F | CPSR_T | CPSR_IT_MASK | CPSR_J | CPSR_E)
        new |= mode | CPSR_I
        if mask_abort:
            new |= CPSR_A
        if mask_fiq:
            new |= CPSR_F
        thumb = bool(sctlr & SCTLR_TE)
        if thumb:
            new |= CPSR_T
        if sctlr & SCTLR_EE:
            new |= CPSR_E
        cpu.set_cpsr(new)
        cpu.set_spsr(old)
        cpu.set_reg(14, lr)
        cpu.set_pc(vector, thumb)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self._last_taken[mode] = info
        self.recent.append(info)
        if len(self.history) < self.keep_history:
            self.history.append(info)
        if self.tracer is not None:
            self.tracer.exception(info)
        if kind in ("undef", "pabort", "dabort"):
            key = (kind, address)
            self._repeat = self._repeat + 1 if key == self._last else 1
            self._last = key
            if self._repeat >= FAULT_LOOP_LIMIT:
                self._fail(f"exception loop: {kind} at 0x{address:08x} taken "
                           f"{self._repeat} times in a row", "exception-loop")
        else:
            self._last = ("", -1)

    def _refuse(self, info: ExceptionInfo, mode_now: int) -> bool:
        """End the run instead of taking ``info`` when it has no handler or is a double fault."""
        fault_mode = _FAULT_MODES.get(info.kind)
        if fault_mode is not None and mode_now == fault_mode:
            first = self._last_taken.get(fault_mode)
            self.failed = info
            self.double_fault = (first, info)
            during = (f" while handling the {first.kind} at 0x{first.address:08x}"
                      if first is not None else "")
            self._fail(f"double fault: {info.kind} at 0x{info.address:08x} inside its own "
                       f"handler{during}", "double-fault")
            return True
        vector = info.vector
        if vector in self._vectors_ok:
            return False
        word = self.read_virt(vector, 4)
        if word is None:
            return False  # not memory: the fetch there aborts, as on hardware
        if any(word):
            self._vectors_ok.add(vector)
            return False
        self.failed = info
        self._fail(f"no handler for {info.kind} at 0x{info.address:08x}: its vector at "
                   f"0x{vector:08x} holds only zeros", "no-handler")
        return True

    def enter_irq(self) -> None:
        pc = self.cpu.pc & ~1
        self.enter("irq", MODE_IRQ, 0x18, pc + 4, pc)

    def enter_fiq(self) -> None:
        pc = self.cpu.pc & ~1
        self.enter("fiq", MODE_FIQ, 0x1C, pc + 4, pc, mask_fiq=True)

    def enter_undef(self, address: int) -> None:
        lr = address + (2 if self.cpu.thumb else 4)
        self.enter("undef", MODE_UND, 0x04, lr, address, mask_abort=False)

    def enter_svc(self, next_pc: int) -> None:
        step = 2 if self.cpu.thumb else 4
        self.enter("svc", MODE_SVC, 0x08, next_pc, next_pc - step, mask_abort=False)

    def enter_prefetch_abort(self, address: int, status: int) -> None:
        self.cpu.write_cp15(5, 0, 0, 1, status)
        self.cpu.write_cp15(6, 0, 0, 2, address)
        self.enter("pabort", MODE_ABT, 0x0C, address + 4, address,
                   fault_address=address, fault_status=status)

    def enter_data_abort(self, address: int, far: int, status: int) -> None:
        self.cpu.write_cp15(5, 0, 0, 0, status)
        self.cpu.write_cp15(6, 0, 0, 0, far)
        self.enter("dabort", MODE_ABT, 0x10, address + 8, address,
                   fault_address=far, fault_status=status)

    def _fail(self, message: str, kind: str = "unknown") -> None:
        if self.fatal is None:
            self.fatal = message
            self.fatal_kind = kind
            self.log.guest_error(message)
            if self.on_fatal is not None:
                self.on_fatal(message)
            self.cpu.uc.emu_stop()

    # decoding ----------------------------------------------------------------
    def _insn_word(self, address: int, thumb: bool) -> tuple[int, int] | None:
        """(encoding, length) of the instruction at virtual ``address``."""
        raw = self.read_virt(address, 4 if not thumb else 2)
        if raw is None:
            return None
        if not thumb:
            return int.from_bytes(raw, "little"), 4
        hw1 = int.from_bytes(raw, "little")
        if hw1 >> 11 in (0x1D, 0x1E, 0x1F):
            raw2 = self.read_virt(address + 2, 2)
            if raw2 is None:
                return None
            return hw1 << 16 | int.from_bytes(raw2, "little"), 4
        return hw1, 2

    def data_access_candidates(self, address: int) -> tuple[list[int], bool]:
        """Virtual addresses the load/store at ``address`` touches, and whether it writes."""
        thumb = self.cpu.thumb
        code = self.read_virt(address, 4)
        if code is None:
            return [], False
        cs = self._cs_thumb if thumb else self._cs_arm
        insns = list(cs.disasm(code, address, 1))
        if not insns:
            return [], False
        insn = insns[0]
        mnem = insn.mnemonic.split(".")[0]
        write = mnem.startswith(("str", "stm", "push", "vst", "vpush", "swp", "stc"))
        pc_val = address + (4 if thumb else 8)

        def reg(rid: int) -> int:
            name = insn.reg_name(rid)
            n = _REG_NUMBERS.get(name or "", 0)
            if n == 15:
                return pc_val & ~3 if thumb else pc_val
            return self.cpu.reg(n)

        ops = list(insn.operands)
        if mnem.startswith(("ldm", "stm", "push", "pop", "vpush", "vpop", "vldm", "vstm")):
            nregs = sum(1 for o in ops if o.type == csarm.ARM_OP_REG) - (
                0 if mnem.startswith(("push", "pop", "vpush", "vpop")) else 1)
            nregs = max(nregs, 1)
            if mnem.startswith(("push", "pop", "vpush", "vpop")):
                base = self.cpu.reg(13)
                start = base - 4 * nregs if mnem.startswith(("push", "vpush")) else base
            else:
                base = reg(ops[0].reg)
                if "db" in mnem[3:]:
                    start = base - 4 * nregs
                elif "da" in mnem[3:]:
                    start = base - 4 * nregs + 4
                elif "ib" in mnem[3:]:
                    start = base + 4
                else:
                    start = base
            return [(start + 4 * i) & 0xFFFF_FFFF for i in range(nregs)], write
        for o in ops:
            if o.type == csarm.ARM_OP_MEM:
                base = reg(o.mem.base) if o.mem.base else 0
                index = reg(o.mem.index) if o.mem.index else 0
                if o.mem.index and o.shift.type == csarm.ARM_SFT_LSL:
                    index <<= o.shift.value
                off = o.mem.disp + (index * (-1 if o.subtracted else 1))
                first = (base + off) & 0xFFFF_FFFF
                cands = [first, base & 0xFFFF_FFFF]
                size = 8 if mnem.startswith(("ldrd", "strd")) else 4
                cands += [(first + k) & 0xFFFF_FFFF for k in range(4, size, 4)]
                return cands, write
        return [], write

    # hooks ---------------------------------------------------------------------
    def _on_intr(self, uc: Any, intno: int, user: Any) -> None:
        cpu = self.cpu
        pc = cpu.pc & ~1
        if intno in (INTNO_HVC, INTNO_SMC):
            self.call_service("hvc" if intno == INTNO_HVC else "smc")
            return
        if intno == INTNO_SVC:
            self.enter_svc(pc)
            return
        if intno == INTNO_PREFETCH_ABORT:
            w = self.translate(pc, fetch=True, check=True)
            fs = w.fault if w.fault is not None else mmu.FS_TRANSLATION_SECTION
            self.enter_prefetch_abort(pc, mmu.fault_status(fs, w.domain))
            return
        if intno == INTNO_BKPT:
            self.enter_prefetch_abort(pc, mmu.fault_status(FS_DEBUG))
            return
        if intno == INTNO_DATA_ABORT:
            far, status = self.decode_data_abort(pc)
            self.enter_data_abort(pc, far, status)
            return
        self._fail(f"unhandled CPU exception number {intno} at 0x{pc:08x}")

    def decode_data_abort(self, pc: int, bus_error: bool = False) -> tuple[int, int]:
        """(DFAR, DFSR) for the access made by the instruction at ``pc``."""
        cands, write = self.data_access_candidates(pc)
        if bus_error and self._pending_bus_error is not None:
            _phys, write, _fetch = self._pending_bus_error
        for va in cands:
            w = self.translate(va, write=write, check=True)
            if w.fault is not None and not bus_error:
                return va, mmu.fault_status(w.fault, w.domain, write)
            if bus_error and w.phys is not None and not self.bus.is_memory(w.phys, 1) \
                    and self.bus.region_at(w.phys) is None:
                return va, mmu.fault_status(mmu.FS_SYNC_EXTERNAL, 0, write)
        far = cands[0] if cands else 0
        if bus_error:
            return far, mmu.fault_status(mmu.FS_SYNC_EXTERNAL, 0, write)
        fs = mmu.FS_ALIGNMENT if far & 3 else mmu.FS_TRANSLATION_SECTION
        return far, mmu.fault_status(fs, 0, write)

    def _on_invalid(self, uc: Any, user: Any) -> bool:
        cpu = self.cpu
        thumb = cpu.thumb
        pc = cpu.pc & ~1
        if self.undefined_handlers:
            raw = self.bus.read_virt(pc, 4)
            if raw is not None:
                for handler in self.undefined_handlers:
                    if handler(pc, thumb, raw):
                        return True
        here = self._insn_word(pc, thumb)
        if here is not None:
            word, length = here
            is_hvc = ((word & 0x0FF000F0) == 0x01400070 and word >> 28 != 0xF) if not thumb \
                else (length == 4 and (word >> 16) & 0xFFF0 == 0xF7E0
                      and word & 0xF000 == 0x8000)
            if is_hvc:
                cpu.set_pc(pc + length)
                self.call_service("hvc")
                return True
        if self._follows_hint(pc, thumb):
            return True
        self.enter_undef(pc)
        return True

    def _follows_hint(self, pc: int, thumb: bool) -> bool:
        if not thumb:
            raw = self.read_virt(pc - 4, 4)
            return raw is not None and int.from_bytes(raw, "little") & 0x0FFF_FFFF in _HINTS_ARM
        raw = self.read_virt(pc - 4, 4)
        if raw is None:
            return False
        hw_prev = int.from_bytes(raw[2:], "little")
        if hw_prev in _HINTS_T16:
            return True
        hw1, hw2 = int.from_bytes(raw[:2], "little"), hw_prev
        return hw1 == 0xF3AF and (hw2 & 0xFF00) == 0x8000 and (hw2 & 0xFF) in (1, 2, 4, 5)

    def _on_unmapped(self, uc: Any, access: int, address: int, size: int, value: int,
                     user: Any) -> bool:
        fetch = access == UC_MEM_FETCH_UNMAPPED
        self._pending_bus_error = (address, access == UC_MEM_WRITE_UNMAPPED, fetch)
        return False

    def take_bus_error(self) -> bool:
        """After Unicorn stopped on an unmapped physical access: take the abort it stands for."""
        pending = self._pending_bus_error
        if pending is None:
            return False
        phys, write, fetch = pending
        pc = self.cpu.pc & ~1
        kind = "write" if write else ("fetch" if fetch else "read")
        self.log.guest_error(f"bus error: {kind} of unmapped physical 0x{phys:08x} "
                             f"by the instruction at 0x{pc:08x}")
        if fetch:
            self.enter_prefetch_abort(pc, mmu.fault_status(mmu.FS_SYNC_EXTERNAL))
        else:
            far, status = self.decode_data_abort(pc, bus_error=True)
            self.enter_data_abort(pc, far, status)
        self._pending_bus_error = None
        return True
