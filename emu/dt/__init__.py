"""Device trees: reading and editing them, and the CPU and DMA views they describe.

* :mod:`emu.dt.tree` — the editable tree (``DeviceTree``, ``Node``), DTB/DTS in and out,
* :mod:`emu.dt.address` — ``reg`` through ``ranges`` to CPU physical addresses,
* :mod:`emu.dt.dmamap` — a master's DMA view from ``dma-ranges``, as Linux builds it,
* :mod:`emu.dt.guest` — the additions made to the DTB handed to a guest.
"""

from __future__ import annotations

from emu.dt.address import cpu_reg_windows, translate_address
from emu.dt.dmamap import DmaMap, DmaWindow, dma_map_for
from emu.dt.guest import (
    ReservedPool,
    add_reserved_memory,
    link_memory_region,
    set_bootargs,
    set_initrd,
)
from emu.dt.tree import DeviceTree, Node

__all__ = [
    "DeviceTree",
    "DmaMap",
    "DmaWindow",
    "Node",
    "ReservedPool",
    "add_reserved_memory",
    "cpu_reg_windows",
    "dma_map_for",
    "link_memory_region",
    "set_bootargs",
    "set_initrd",
    "translate_address",
]
