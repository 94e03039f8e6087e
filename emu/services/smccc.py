"""SMCCC (Arm SMC Calling Convention, AArch32) dispatcher for HVC and SMC.

The function ID is in r0, arguments in r1-r7, results go back in r0-r3.
Services register a range of function IDs with :meth:`SmcccDispatcher.register`;
an unknown ID returns ``NOT_SUPPORTED`` (-1) in r0, as the convention asks.
The conduit ("hvc" or "smc") is passed to the handler; both reach the same
services.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from emu.errors import ConfigurationError

log = logging.getLogger("emu.services")

NOT_SUPPORTED = -1
MASK32 = 0xFFFF_FFFF

#: owning-entity numbers (bits 29:24 of the function ID)
OEN_ARCH = 0
OEN_CPU = 1
OEN_SIP = 2
OEN_OEM = 3
OEN_STANDARD = 4


def function_id(fast: bool, smc64: bool, owner: int, number: int) -> int:
    """Build a function ID: bit 31 fast call, bit 30 SMC64, bits 29:24 owner, 15:0 number."""
    return (int(fast) << 31) | (int(smc64) << 30) | ((owner & 0x3F) << 24) | (number & 0xFFFF)


@dataclass(frozen=True)
class Call:
    """One SMCCC call as the guest made it."""

    conduit: str
    fid: int
    args: tuple[int, ...]  # r1..r7


Result = Sequence[int]
"""r0..r3 (fewer entries leave the remaining registers untouched); negative values wrap."""

Handler = Callable[[Call], Result]


class SmcccDispatcher:
    """Routes a call to the service registered for its function ID."""

    def __init__(self) -> None:
        self._ranges: list[tuple[int, int, str, Handler]] = []
        self.calls: list[tuple[str, int, int]] = []  # (conduit, fid, r0 result)
        self.keep_calls = 10_000

    def register(self, fid_range: tuple[int, int] | range, handler: Handler,
                 name: str = "") -> None:
        """Serve function IDs ``lo <= fid <= hi`` (or a ``range``) with ``handler``."""
        if isinstance(fid_range, range):
            lo, hi = fid_range.start, fid_range.stop - 1
        else:
            lo, hi = fid_range
        if lo > hi:
            raise ConfigurationError(f"SMCCC range 0x{lo:08x}..0x{hi:08x} is empty")
        for a, b, other, _ in self._ranges:
            if lo <= b and a <= hi:
                raise ConfigurationError(
                    f"SMCCC range 0x{lo:08x}..0x{hi:08x} ({name or 'new'}) overlaps "
                    f"0x{a:08x}..0x{b:08x} ({other})"
                )
        self._ranges.append((lo, hi, name, handler))

    def lookup(self, fid: int) -> Handler | None:
        for lo, hi, _name, handler in self._ranges:
            if lo <= fid <= hi:
                return handler
        return None

    def dispatch(self, call: Call) -> list[int]:
        """Run the call; returns r0..r3 as 32-bit values (r0 = -1 for unknown IDs)."""
        handler = self.lookup(call.fid)
        if handler is None:
            log.info("SMCCC %s call 0x%08x not supported", call.conduit, call.fid)
            out = [NOT_SUPPORTED & MASK32]
        else:
            out = [v & MASK32 for v in handler(call)]
        if len(self.calls) < self.keep_calls:
            self.calls.append((call.conduit, call.fid, out[0] if out else 0))
        return out
