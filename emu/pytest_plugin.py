"""pytest plugin for the harness (fixtures and DMA assertions)."""

from __future__ import annotations
