"""A contiguous memory allocator after the 2010 Linux CMA design, answering its review.

Regions are reserved at boot (:mod:`cma.placement`), each managed by a
pluggable allocator (:mod:`cma.allocators`); map rules say which device and
kind use which regions (:mod:`cma.cmdline`, :mod:`cma.devicetree`); chunks
are reference counted and know their physical, DMA (per device) and CPU
addresses (:mod:`cma.region`, :mod:`cma.translate`). Pure Python: the
emulator supplies RAM banks and a translator.
"""

from __future__ import annotations

from cma.config import CmaConfig, MapRule, Pattern, RegionSpec, Source
from cma.core import Cma, CmaInfo, ContiguousMemory
from cma.errors import (
    CMAError,
    ConfigError,
    InvalidArgument,
    NoMemory,
    NoRegion,
    NotReachable,
    PlacementError,
    UnknownChunk,
)
from cma.movable import MovablePage, MovablePool
from cma.placement import PlacedRegion, reserve
from cma.region import Chunk, Region
from cma.translate import (
    IdentityTranslator,
    TableTranslator,
    Translator,
    dma_to_phys,
    offset_windows,
    phys_to_dma,
)

__all__ = [
    "CMAError",
    "Chunk",
    "Cma",
    "CmaConfig",
    "CmaInfo",
    "ConfigError",
    "ContiguousMemory",
    "IdentityTranslator",
    "InvalidArgument",
    "MapRule",
    "MovablePage",
    "MovablePool",
    "NoMemory",
    "NoRegion",
    "NotReachable",
    "Pattern",
    "PlacedRegion",
    "PlacementError",
    "Region",
    "RegionSpec",
    "Source",
    "TableTranslator",
    "Translator",
    "UnknownChunk",
    "dma_to_phys",
    "offset_windows",
    "phys_to_dma",
    "reserve",
]
