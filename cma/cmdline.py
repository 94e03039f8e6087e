"""Parsers for the kernel command line: the 2010 ``cma=``/``cma_map=`` and mainline ``cma=``.

Two dialects share the ``cma=`` parameter:

* the 2010 patch series: a list of named regions,
  ``NAME=SIZE[@START][/ALIGN][:[ALLOC][(PARAMS)]]`` separated by ``;`` or ``,``
  (:func:`parse_regions`), with ``cma_map=`` rules saying which device and kind
  of memory uses which regions (:func:`parse_map`);
* mainline Linux: ``cma=SIZE[@BASE[-LIMIT]]``, the size and placement of the one
  default area (:func:`parse_modern`).

:func:`is_modern_form` tells them apart (only the 2010 form has ``NAME=``).
:func:`parse_cmdline` picks both parameters out of a whole command line split
the way the kernel's ``next_arg()`` splits it. The grammar and every choice made
where the 2010 text left room are in ``docs/cma-config.md``.

Sizes are returned as written (not rounded to pages) and region names in map
rules are not checked against the regions here: the core does both, since it
also knows the page size and the device-tree regions.
"""

from __future__ import annotations

from collections.abc import Iterable

from cma.config import CmaConfig, MapRule, Pattern, RegionSpec, Source
from cma.errors import ConfigError
from cma.memparse import format_memsize, memparse

__all__ = [
    "MODERN_REGION_NAME",
    "format_map",
    "format_regions",
    "is_modern_form",
    "parse_cmdline",
    "parse_map",
    "parse_modern",
    "parse_regions",
    "split_cmdline",
]

#: The name the mainline ``cma=`` area gets (Linux calls its default area "reserved").
MODERN_REGION_NAME = "reserved"

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_SPACES = " \t\n\v\f\r"
# Characters that end a pattern part or a region name in ``cma_map=``.
_MAP_PATTERN_STOP = frozenset(",;=/" + _SPACES)
_MAP_REGION_STOP = frozenset(",;=" + _SPACES)


def _found(text: str, pos: int) -> str:
    """How the character at ``pos`` is named in a message."""
    return repr(text[pos]) if pos < len(text) else "end of text"


def _number(text: str, pos: int, what: str, after: str) -> tuple[int, int]:
    """:func:`memparse` with a message that says which number was expected."""
    try:
        return memparse(text, pos)
    except ConfigError as err:
        if pos < len(text) and text[pos] in "0123456789":
            raise  # a number that is there but too large: keep that message
        raise ConfigError(
            f"expected {what} after {after}, not {_found(text, pos)}", text, pos
        ) from err


def _is_power_of_two(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


# --------------------------------------------------------------------------- cma= (2010)


def _parse_region(text: str, pos: int) -> tuple[RegionSpec, int]:
    """One ``NAME=SIZE[@START][/ALIGN][:[ALLOC][(PARAMS)]]`` starting at ``pos``."""
    name_start = pos
    while pos < len(text) and text[pos] in _NAME_CHARS:
        pos += 1
    if pos == name_start:
        raise ConfigError(
            f"expected a region name (letters, digits, '_'), not {_found(text, pos)}",
            text,
            pos,
        )
    name = text[name_start:pos]
    if pos >= len(text) or text[pos] != "=":
        raise ConfigError(
            f"expected '=' after region name {name!r}, not {_found(text, pos)}", text, pos
        )
    size_pos = pos + 1
    size, pos = _number(text, size_pos, "a size", f"'{name}='")
    if size == 0:
        raise ConfigError(
            f"region size must be greater than 0, not {text[size_pos:pos]!r}", text, size_pos
        )
    start: int | None = None
    if pos < len(text) and text[pos] == "@":
        start, pos = _number(text, pos + 1, "a start address", "'@'")
    alignment = 0
    if pos < len(text) and text[pos] == "/":
        align_pos = pos + 1
        alignment, pos = _number(text, align_pos, "an alignment", "'/'")
        if alignment != 0 and not _is_power_of_two(alignment):
            raise ConfigError(
                f"alignment must be a power of two, not {alignment:#x}", text, align_pos
            )
    allocator: str | None = None
    params = ""
    if pos < len(text) and text[pos] == ":":
        pos += 1
        alloc_start = pos
        while pos < len(text) and text[pos] in _NAME_CHARS:
            pos += 1
        allocator = text[alloc_start:pos] or None
        if pos < len(text) and text[pos] == "(":
            open_pos = pos
            pos += 1
            params_start = pos
            while pos < len(text) and text[pos] not in ");":
                pos += 1
            if pos >= len(text) or text[pos] != ")":
                raise ConfigError(
                    f"unbalanced parentheses: expected ')' to close the '(' at position "
                    f"{open_pos}, not {_found(text, pos)}",
                    text,
                    pos,
                )
            params = text[params_start:pos]
            pos += 1
    spec = RegionSpec(
        name=name,
        size=size,
        start=start,
        alignment=alignment,
        allocator=allocator,
        params=params,
        source=Source.CMDLINE,
    )
    return spec, pos


def parse_regions(text: str) -> tuple[RegionSpec, ...]:
    """Parse the value of a 2010 ``cma=`` parameter into region specifications.

    Regions are separated by ``;`` or ``,``; one trailing separator is allowed.
    An empty text gives no regions. ``START`` becomes :attr:`RegionSpec.start`
    with ``fixed=False`` (2010: "or at least as near as possible"); an omitted
    alignment is 0 (one page) and an empty or omitted allocator is ``None``
    (the default one). Raises :class:`ConfigError` for anything malformed,
    including a size of 0, an alignment that is not a power of two and a name
    used twice.
    """
    regions: list[RegionSpec] = []
    seen: dict[str, int] = {}
    pos = 0
    while pos < len(text):
        name_pos = pos
        spec, pos = _parse_region(text, pos)
        if spec.name in seen:
            raise ConfigError(
                f"duplicate region name {spec.name!r} (first defined at position "
                f"{seen[spec.name]})",
                text,
                name_pos,
            )
        seen[spec.name] = name_pos
        regions.append(spec)
        if pos >= len(text):
            break
        if text[pos] == ")":
            raise ConfigError("unbalanced parentheses: ')' without '('", text, pos)
        if text[pos] not in ";,":
            raise ConfigError(
                f"expected ';' or ',' after region {spec.name!r}, not {_found(text, pos)}",
                text,
                pos,
            )
        pos += 1
    return tuple(regions)


# --------------------------------------------------------------------------- cma_map=


def _map_part(text: str, pos: int) -> tuple[str, int]:
    """A device or kind pattern part (possibly empty) starting at ``pos``."""
    start = pos
    while pos < len(text) and text[pos] not in _MAP_PATTERN_STOP:
        pos += 1
    part = text[start:pos]
    star = part.find("*")
    if star != -1 and star != len(part) - 1:
        raise ConfigError("'*' may only end a pattern", text, start + star)
    return part, pos


def parse_map(text: str) -> tuple[MapRule, ...]:
    """Parse the value of ``cma_map=`` into rules (first matching rule wins).

    ``rule := pattern[,pattern...]=region[,region...]``, rules separated by
    ``;`` (one trailing ``;`` allowed). A pattern is ``DEV``, ``DEV/KIND``,
    ``DEV/`` (only requests without a kind) or ``/KIND``. ``/KIND`` reuses the
    device part of the pattern before it, which may be the last pattern of the
    previous rule (as in the 2010 examples ``foo/quaz=r2;/*=r3``); ``/KIND`` as
    the very first pattern is an error. The device part is resolved here, so
    every returned :class:`Pattern` has a device. Region names are not checked
    against any region list.
    """
    rules: list[MapRule] = []
    previous_device: str | None = None
    pos = 0
    while pos < len(text):
        patterns: list[Pattern] = []
        while True:
            pattern_pos = pos
            device, pos = _map_part(text, pos)
            kind: str | None = None
            if pos < len(text) and text[pos] == "/":
                kind, pos = _map_part(text, pos + 1)
            if not device:
                if kind is None:
                    raise ConfigError(
                        f"expected a device pattern or '/', not {_found(text, pos)}",
                        text,
                        pos,
                    )
                if previous_device is None:
                    raise ConfigError(
                        "'/KIND' reuses the device of the pattern before it, but there is none",
                        text,
                        pattern_pos,
                    )
                device = previous_device
            previous_device = device
            patterns.append(Pattern(device=device, kind=kind))
            if pos < len(text) and text[pos] == ",":
                pos += 1
                continue
            if pos < len(text) and text[pos] == "=":
                pos += 1
                break
            raise ConfigError(
                f"expected ',' or '=' after pattern, not {_found(text, pos)}", text, pos
            )
        regions: list[str] = []
        while True:
            start = pos
            while pos < len(text) and text[pos] not in _MAP_REGION_STOP:
                pos += 1
            if pos == start:
                raise ConfigError(f"expected a region name, not {_found(text, pos)}", text, pos)
            regions.append(text[start:pos])
            if pos < len(text) and text[pos] == ",":
                pos += 1
                continue
            break
        rules.append(MapRule(patterns=tuple(patterns), regions=tuple(regions)))
        if pos >= len(text):
            break
        if text[pos] != ";":
            raise ConfigError(
                f"expected ',' or ';' after region name, not {_found(text, pos)}", text, pos
            )
        pos += 1
    return tuple(rules)


# --------------------------------------------------------------------------- cma= (mainline)


def is_modern_form(value: str) -> bool:
    """Whether a ``cma=`` value is the mainline ``SIZE[@BASE[-LIMIT]]`` form.

    Only the 2010 form contains ``=`` (``NAME=SIZE``); an empty value is taken
    as an empty 2010 list.
    """
    return bool(value) and "=" not in value


def parse_modern(text: str) -> RegionSpec | None:
    """Parse a mainline ``cma=SIZE[@BASE[-LIMIT]]`` value (``kernel/dma/contiguous.c``).

    * ``SIZE`` alone: the default area, anywhere.
    * ``SIZE@BASE``: exactly at ``BASE`` (``fixed=True``, ``start=BASE``).
    * ``SIZE@BASE-LIMIT``: somewhere inside ``[BASE, LIMIT)``
      (``alloc_ranges=((BASE, LIMIT-BASE),)``); fixed at ``BASE`` only when
      ``BASE + SIZE == LIMIT``, as Linux decides.

    Returns ``None`` for a size of 0 (``cma=0`` disables the area). Unlike the
    kernel, trailing characters and a window smaller than the size are errors.
    """
    size, pos = _number(text, 0, "a size", "'cma='")
    base: int | None = None
    limit: int | None = None
    base_pos = limit_pos = 0
    if pos < len(text) and text[pos] == "@":
        base_pos = pos + 1
        base, pos = _number(text, base_pos, "a base address", "'@'")
        if pos < len(text) and text[pos] == "-":
            limit_pos = pos + 1
            limit, pos = _number(text, limit_pos, "a limit address", "'-'")
    if pos < len(text):
        if base is None:
            expected = "'@' or end of text after the size"
        elif limit is None:
            expected = "'-' or end of text after the base"
        else:
            expected = "end of text after the limit"
        raise ConfigError(f"expected {expected}, not {_found(text, pos)}", text, pos)
    if size == 0:
        return None
    if base is None:
        return RegionSpec(name=MODERN_REGION_NAME, size=size, default=True, source=Source.MODERN)
    if limit is None:
        return RegionSpec(
            name=MODERN_REGION_NAME,
            size=size,
            start=base,
            fixed=True,
            default=True,
            source=Source.MODERN,
        )
    if limit <= base:
        raise ConfigError(f"limit {limit:#x} must be above the base {base:#x}", text, limit_pos)
    if limit - base < size:
        raise ConfigError(
            f"window {base:#x}-{limit:#x} is smaller than the size {size:#x}", text, base_pos
        )
    fixed = base + size == limit
    return RegionSpec(
        name=MODERN_REGION_NAME,
        size=size,
        start=base if fixed else None,
        fixed=fixed,
        alloc_ranges=((base, limit - base),),
        default=True,
        source=Source.MODERN,
    )


# --------------------------------------------------------------------------- whole command line


def _next_args(cmdline: str) -> list[tuple[str, str | None, int]]:
    """Split like the kernel's ``next_arg()``: ``(param, value, value offset)`` triples."""
    args: list[tuple[str, str | None, int]] = []
    n = len(cmdline)
    i = 0
    while i < n and cmdline[i] in _SPACES:
        i += 1
    while i < n:
        start = i
        quoted = in_quote = False
        if cmdline[start] == '"':
            start += 1
            quoted = in_quote = True
        equals = 0  # offset from ``start``; 0 means "none", as in the kernel
        end = start
        while end < n:
            ch = cmdline[end]
            if ch in _SPACES and not in_quote:
                break
            if equals == 0 and ch == "=":
                equals = end - start
            if ch == '"':
                in_quote = not in_quote
            end += 1
        closing_quote = end > start and cmdline[end - 1] == '"'
        if equals == 0:
            param_end = end - 1 if quoted and closing_quote else end
            args.append((cmdline[start:param_end], None, end))
        else:
            value_start = start + equals + 1
            value_end = end
            if value_start < end and cmdline[value_start] == '"':
                value_start += 1
                if closing_quote:
                    value_end = end - 1
            elif quoted and closing_quote:
                value_end = end - 1
            value_end = max(value_end, value_start)
            args.append(
                (cmdline[start : start + equals], cmdline[value_start:value_end], value_start)
            )
        i = end + 1 if end < n else end
        while i < n and cmdline[i] in _SPACES:
            i += 1
    return args


def split_cmdline(cmdline: str) -> list[tuple[str, str | None]]:
    """Split a kernel command line into ``(key, value)`` pairs like ``next_arg()``.

    Words are separated by blanks; double quotes group blanks into a word and
    are removed around the whole word or the value; the first ``=`` (not at
    the very start) separates key and value; a bare word has value ``None``.
    """
    return [(key, value) for key, value, _ in _next_args(cmdline)]


def _relocated(err: ConfigError, cmdline: str, offset: int) -> ConfigError:
    """``err`` (raised for a value) re-based onto the whole command line."""
    pos = None if err.pos is None else err.pos + offset
    return ConfigError(err.message, cmdline, pos)


def parse_cmdline(cmdline: str) -> CmaConfig:
    """Pick ``cma=`` (either dialect) and ``cma_map=`` out of a kernel command line.

    Every other parameter is ignored, and so is everything after ``--`` (it is
    for init). As for kernel early parameters, ``-`` and ``_`` are the same in
    a key and a later occurrence replaces an earlier one (every occurrence must
    still parse). Errors carry the whole command line and the position in it.
    """
    regions: tuple[RegionSpec, ...] = ()
    rules: tuple[MapRule, ...] = ()
    for key, value, offset in _next_args(cmdline):
        name = key.replace("-", "_")
        if value is None and key == "--":
            break
        if name not in ("cma", "cma_map"):
            continue
        if value is None:
            raise ConfigError(f"{name} needs a value ({name}=...)", cmdline, offset - len(key))
        try:
            if name == "cma_map":
                rules = parse_map(value)
            elif is_modern_form(value):
                modern = parse_modern(value)
                regions = () if modern is None else (modern,)
            else:
                regions = parse_regions(value)
        except ConfigError as err:
            raise _relocated(err, cmdline, offset) from err
    return CmaConfig(regions=regions, rules=rules)


# --------------------------------------------------------------------------- rendering


def format_regions(regions: Iterable[RegionSpec]) -> str:
    """Render regions back to a 2010 ``cma=`` value (without ``cma=``).

    Only what that syntax can say is rendered (name, size, start, alignment,
    allocator, parameters); :func:`parse_regions` reads the result back to the
    same fields.
    """
    parts: list[str] = []
    for spec in regions:
        text = f"{spec.name}={format_memsize(spec.size)}"
        if spec.start is not None:
            text += f"@{format_memsize(spec.start)}"
        if spec.alignment:
            text += f"/{format_memsize(spec.alignment)}"
        if spec.allocator is not None or spec.params:
            text += f":{spec.allocator or ''}"
            if spec.params:
                text += f"({spec.params})"
        parts.append(text)
    return ";".join(parts)


def format_map(rules: Iterable[MapRule]) -> str:
    """Render map rules back to a ``cma_map=`` value (without ``cma_map=``).

    A pattern with no device (any device) is written ``*``.
    """
    out: list[str] = []
    for rule in rules:
        patterns = []
        for p in rule.patterns:
            text = "*" if p.device is None else p.device
            if p.kind is not None:
                text += f"/{p.kind}"
            patterns.append(text)
        out.append(f"{','.join(patterns)}={','.join(rule.regions)}")
    return ";".join(out)
