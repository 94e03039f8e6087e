"""Numbers with size suffixes, read the way the Linux kernel's ``memparse()`` reads them.

Every size and address in ``cma=`` and ``cma_map=`` goes through :func:`memparse`,
so ``64M``, ``0x4000000`` and ``0200000000`` mean what they mean to a kernel.
:func:`format_size` goes the other way, for tables and messages.
"""

from __future__ import annotations

from cma.errors import ConfigError

__all__ = ["SUFFIX_SHIFTS", "format_memsize", "format_size", "memparse"]

#: Suffix letter -> shift (binary multiples), as in ``lib/cmdline.c``.
SUFFIX_SHIFTS: dict[str, int] = {"K": 10, "M": 20, "G": 30, "T": 40, "P": 50, "E": 60}

_U64_LIMIT = 1 << 64
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _digit_value(ch: str) -> int:
    """The value of ``ch`` as a digit in any base up to 36, or 99 for a non-digit."""
    index = _DIGITS.find(ch.lower()) if ch.isascii() and ch.isalnum() else -1
    return index if index >= 0 else 99


def memparse(text: str, pos: int = 0) -> tuple[int, int]:
    """Read a number with an optional size suffix from ``text`` at ``pos``.

    Returns ``(value, end)`` where ``end`` is the offset of the first character
    not consumed. The number is read like ``simple_strtoull(s, &end, 0)``:
    ``0x`` followed by a hex digit selects hex, a leading ``0`` octal, anything
    else decimal; digits are consumed greedily and reading stops at the first
    character that is not a digit of the base (so ``08`` reads as ``0`` and
    stops at ``8``, and ``0x`` with no hex digit after it reads as ``0``). One of
    ``K M G T P E`` (either case) may follow and multiplies by 2**10 ... 2**60.
    No sign and no leading blanks are accepted, as in the kernel.

    Raises :class:`ConfigError` (with ``pos``) when there is no digit at
    ``pos``, and when the value does not fit in 64 bits (the kernel silently
    wraps; a wrapped size is never what was meant).
    """
    start = pos
    if pos >= len(text) or _digit_value(text[pos]) > 9:
        found = repr(text[pos]) if pos < len(text) else "end of text"
        raise ConfigError(f"expected a number, not {found}", text, pos)
    base = 10
    if text[pos] == "0":
        if pos + 2 < len(text) and text[pos + 1] in "xX" and _digit_value(text[pos + 2]) < 16:
            base = 16
            pos += 2
        else:
            base = 8
    value = 0
    while pos < len(text):
        digit = _digit_value(text[pos])
        if digit >= base:
            break
        value = value * base + digit
        pos += 1
    if pos < len(text) and text[pos].upper() in SUFFIX_SHIFTS:
        value <<= SUFFIX_SHIFTS[text[pos].upper()]
        pos += 1
    if value >= _U64_LIMIT:
        raise ConfigError(f"number {text[start:pos]!r} does not fit in 64 bits", text, start)
    return value, pos


_UNITS = (("EiB", 60), ("PiB", 50), ("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10))


def format_size(n: int) -> str:
    """A size for people: ``"64 MiB"``, ``"4 KiB"``, or ``"0x1234 bytes"``.

    The largest binary unit that divides ``n`` exactly is used, so the text is
    never rounded; sizes that are not a multiple of 1 KiB are shown in hex bytes
    (``"0 bytes"`` for zero).
    """
    if n < 0:
        raise ValueError(f"size must not be negative, not {n}")
    if n == 0:
        return "0 bytes"
    for unit, shift in _UNITS:
        if n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n:#x} bytes"


def format_memsize(n: int) -> str:
    """A size in the command-line syntax, exact and short: ``"64M"``, ``"4K"``, ``"0x1234"``.

    :func:`memparse` reads the result back to ``n``; used to render
    configurations back to ``cma=`` text.
    """
    if n < 0:
        raise ValueError(f"size must not be negative, not {n}")
    if n == 0:
        return "0"
    for (_unit, shift), letter in zip(_UNITS, "EPTGMK", strict=True):
        if n % (1 << shift) == 0:
            return f"{n >> shift}{letter}"
    return f"{n:#x}"
