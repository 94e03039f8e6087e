"""Matching ``cma_map=`` patterns against a (device, kind) request.

A pattern string is matched character by character: ``?`` stands for any one
character and a ``*`` at the end for the rest of the text, including nothing.
Anything else matches only itself. The parser (:mod:`cma.cmdline`) refuses a
``*`` anywhere but at the end, so it never reaches this module.

Choices (documented in ``docs/cma-config.md``):

* A request without a kind (``None``) is matched as the empty string, as the
  first 2010 patch did: ``*`` matches it, ``a*`` does not.
* A pattern with no kind part (``Pattern.kind is None``: ``camera`` rather
  than ``camera/x``) matches every kind, including none, as the later patch
  versions decided. ``Pattern.kind == ""`` (written ``camera/``) matches only
  requests without a kind.
* ``Pattern.device is None`` matches any device.
"""

from __future__ import annotations

from collections.abc import Iterable

from cma.config import MapRule, Pattern

__all__ = ["match_pattern", "pattern_matches", "select_regions"]


def match_pattern(pattern: str, text: str | None) -> bool:
    """Whether ``text`` matches ``pattern`` (``?`` one character, trailing ``*`` the rest).

    ``None`` is matched as the empty string.
    """
    subject = "" if text is None else text
    if pattern.endswith("*"):
        head = pattern[:-1]
        if len(subject) < len(head):
            return False
        subject = subject[: len(head)]
    else:
        head = pattern
        if len(subject) != len(head):
            return False
    return all(p in ("?", s) for p, s in zip(head, subject, strict=True))


def pattern_matches(p: Pattern, device: str | None, kind: str | None) -> bool:
    """Whether the map pattern ``p`` applies to a request from ``device`` for ``kind``."""
    if p.device is not None and not match_pattern(p.device, device):
        return False
    if p.kind is None:
        return True
    return match_pattern(p.kind, kind)


def select_regions(
    rules: Iterable[MapRule], device: str | None, kind: str | None
) -> tuple[str, ...] | None:
    """The region names of the first rule with a pattern matching (device, kind).

    Returns ``None`` when no rule matches (the 2010 API's ``-ENOENT``).
    """
    for rule in rules:
        if any(pattern_matches(p, device, kind) for p in rule.patterns):
            return rule.regions
    return None
