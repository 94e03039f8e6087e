"""The virtual clock's instruction counter, one native call per translated block.

``emu_start(count=N)`` makes Unicorn call a counting hook before *every* instruction;
in tight guest loops that alone costs two to four times the emulation. The machine
instead installs ``emu_block_hook`` from the small C extension ``emu._blockclock``
(built with the package) as a ``UC_HOOK_BLOCK``: once per block it adds the block's
instruction count (4 bytes an instruction in the ARM state, decoded from the block's
bytes in Thumb; worked out once per address and size)
and, once the slice's budget is reached, stops the CPU before the next block.

What changes for virtual time (see docs/time.md): a slice ends at the first block
boundary at or after its budget, so it may run a few instructions past a deadline
(never more than one block); the count is exact for blocks that run to their end, and a
block left early (a fault, a trapped instruction) counts whole. Everything stays
deterministic. When the extension cannot be loaded the machine uses Unicorn's counter.
"""

from __future__ import annotations

import ctypes
import importlib.util
from typing import Any

from unicorn import UC_HOOK_BLOCK, UC_PROT_EXEC
from unicorn.arm_const import UC_ARM_REG_CPSR
from unicorn.unicorn_py3.unicorn import uclib

MEMO_SIZE = 1 << 16


class _State(ctypes.Structure):
    """``struct emu_block_clock`` of ``emu/_blockclock.c``."""

    _fields_ = [
        ("executed", ctypes.c_uint64),
        ("budget", ctypes.c_uint64),
        ("blocks", ctypes.c_uint64),
        ("lookups", ctypes.c_uint64),
        ("stop", ctypes.c_void_p),
        ("reg_read", ctypes.c_void_p),
        ("vmem_read", ctypes.c_void_p),
        ("cpsr_id", ctypes.c_int),
        ("prot_exec", ctypes.c_int),
        ("stopped", ctypes.c_int),
        ("unreadable", ctypes.c_int),
        ("keys", ctypes.c_uint64 * MEMO_SIZE),
        ("counts", ctypes.c_uint16 * MEMO_SIZE),
    ]


def _library() -> ctypes.CDLL | None:
    spec = importlib.util.find_spec("emu._blockclock")
    if spec is None or spec.origin is None:
        return None
    try:
        lib = ctypes.CDLL(spec.origin)
        lib.emu_block_clock_size.restype = ctypes.c_size_t
        if lib.emu_block_clock_size() != ctypes.sizeof(_State):
            return None  # built from another version of the source
    except (OSError, AttributeError):
        return None
    return lib


_LIB = _library()


def available() -> bool:
    """Whether the native counter was built and loads."""
    return _LIB is not None


class BlockClock:
    """The native counter attached to one Unicorn instance (add it before code runs)."""

    def __init__(self, uc: Any) -> None:
        if _LIB is None:
            raise RuntimeError("emu._blockclock is not built")
        self._lib = _LIB
        self.state = _State()
        self.state.stop = ctypes.cast(uclib.uc_emu_stop, ctypes.c_void_p).value
        self.state.reg_read = ctypes.cast(uclib.uc_reg_read, ctypes.c_void_p).value
        self.state.vmem_read = ctypes.cast(uclib.uc_vmem_read, ctypes.c_void_p).value
        self.state.cpsr_id = UC_ARM_REG_CPSR
        self.state.prot_exec = UC_PROT_EXEC
        add = uclib["uc_hook_add"]  # a private function object: the binding's stays as it is
        add.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t), ctypes.c_int,
                        ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64]
        add.restype = ctypes.c_int
        self.handle = ctypes.c_size_t()
        hook = ctypes.cast(self._lib.emu_block_hook, ctypes.c_void_p)
        err = add(uc._uch, ctypes.byref(self.handle), UC_HOOK_BLOCK, hook,
                  ctypes.addressof(self.state), 1, 0)
        if err:
            raise RuntimeError(f"uc_hook_add(UC_HOOK_BLOCK) failed with error {err}")
        self._uc = uc  # the hook lives as long as the engine

    def arm(self, budget: int) -> None:
        """Start a slice: count from zero, stop once ``budget`` instructions have run."""
        s = self.state
        s.executed = 0
        s.budget = max(budget, 1)
        s.stopped = 0

    @property
    def executed(self) -> int:
        """Instructions of the blocks entered since :meth:`arm`."""
        return int(self.state.executed)

    @property
    def ended_slice(self) -> bool:
        """True when the counter, not something else, ended the last slice."""
        return bool(self.state.stopped)

    def forget(self) -> None:
        """Drop the remembered block sizes (after translated code was flushed)."""
        self._lib.emu_block_clock_forget(ctypes.byref(self.state))

    def stats(self) -> dict[str, int]:
        return {"blocks": int(self.state.blocks), "lookups": int(self.state.lookups),
                "unreadable": int(self.state.unreadable)}
