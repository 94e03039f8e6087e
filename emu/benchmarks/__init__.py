"""Benchmarks behind ``scripts/bench-*``: each measures its baseline in the same run."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, TextIO


def positive(text: str) -> int:
    """An argparse type: a whole number of at least 1 (counts, repeats, frames)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def emit(report: dict[str, Any], as_json: bool, render: Callable[[dict[str, Any], TextIO], None],
         out: TextIO | None = None) -> int:
    """Print a benchmark's report as JSON or as its table; the exit status (0)."""
    out = out or sys.stdout
    if as_json:
        out.write(json.dumps(report, indent=2) + "\n")
    else:
        render(report, out)
    return 0
