"""Checkers that see what Unicorn cannot: memory-attribute aliases and DMA cache coherency.

Both walk or model state the CPU emulator ignores (TEX/C/B, caches) and report
guest bugs as findings; see docs/checkers.md. :func:`install` attaches them to a
:class:`~emu.system.System` (or to a bare machine).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from emu.checkers.alias import AliasChecker, MemType, decode_type, remap_type

if TYPE_CHECKING:
    from cma.core import ContiguousMemory
    from emu.machine import Machine

__all__ = ["AliasChecker", "Checker", "MemType", "decode_type", "install", "remap_type"]


class Checker(Protocol):
    """What :class:`~emu.system.System` needs of a checker for its result and failures."""

    name: str

    def describe(self) -> dict[str, Any]: ...

    def failures(self) -> list[str]: ...


def install(machine: Machine, core: ContiguousMemory | None = None, *,
            aliases: str | None = None, coherency: str | None = None) -> list[Checker]:
    """Attach the checkers asked for (mode ``report`` or ``fail``, None: off)."""
    out: list[Checker] = []
    alias: AliasChecker | None = None
    if aliases is not None or coherency is not None:
        alias = AliasChecker(machine, core, aliases or "report")
        alias.install()
        if aliases is not None:
            out.append(alias)
    if coherency is not None:
        from emu.checkers.coherency import CoherencyChecker

        assert alias is not None
        cc = CoherencyChecker(machine, core, alias, coherency)
        cc.install()
        out.append(cc)
    return out
