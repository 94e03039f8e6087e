"""Reading contiguous-memory configuration out of a flattened device tree (DTB).

* :func:`parse_reserved_memory`: the ``shared-dma-pool`` children of
  ``/reserved-memory`` as regions, and every ``memory-region`` link of a device
  node to them;
* :func:`parse_carveouts`: the other fixed reservations (plain ``reg``
  carve-outs and ``/memreserve/`` entries), which placement must keep clear of;
* :func:`parse_memory`: the RAM banks.

The rules follow Linux (``drivers/of/of_reserved_mem.c``, ``drivers/of/fdt.c``,
``kernel/dma/contiguous.c``, ``kernel/dma/coherent.c``): the root's
``#address-cells``/``#size-cells`` (1 and 1 when absent) apply to the children
of ``/reserved-memory``, which must repeat them and have an empty ``ranges``;
``size`` is read with the size cells, ``alignment`` with the address cells;
only the first ``reg`` entry of a pool is the pool (further entries are still
reserved, so they are reported as carve-outs). Nodes whose ``status`` is not
``okay``/``ok`` are skipped. Anything malformed raises :class:`ConfigError`
naming the node.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import libfdt

from cma.config import CmaConfig, RegionSpec, Source
from cma.errors import ConfigError

__all__ = [
    "MEMRESERVE_NAME",
    "parse_carveouts",
    "parse_memory",
    "parse_reserved_memory",
]

#: The name given to entries of the DTB's memory reservation block.
MEMRESERVE_NAME = "/memreserve/"

_RESERVED_MEMORY = "/reserved-memory"
_POOL_COMPATIBLE = "shared-dma-pool"
_NOT_FOUND = libfdt.QUIET_NOTFOUND


def dtb_problem(blob: bytearray) -> str | None:
    """Why ``blob`` is not a sound flattened device tree, or None when it is.

    libfdt's readers trust the header's offsets and sizes, so only a blob that passed
    ``fdt_check_full`` is safe to walk: a truncated or damaged one would make them read
    past the buffer.
    """
    error = libfdt.fdt_check_full(blob, len(blob))
    if not error:
        return None
    return (f"not a valid device tree blob ({libfdt.fdt_strerror(error)}; "
            f"{len(blob)} bytes, header {bytes(blob[:8]).hex()!r})")


class _Tree:
    """A parsed DTB with the few typed accessors the parsers need."""

    def __init__(self, dtb: bytes) -> None:
        blob = bytearray(dtb)
        problem = dtb_problem(blob)
        if problem is not None:
            raise ConfigError(problem)
        try:
            self.fdt = libfdt.Fdt(blob)
        except libfdt.FdtException as err:
            raise ConfigError(f"not a valid device tree blob ({err})") from err
        self.address_cells = self.cells(0, "#address-cells", 1)
        self.size_cells = self.cells(0, "#size-cells", 1)
        for what, value in (
            ("#address-cells", self.address_cells),
            ("#size-cells", self.size_cells),
        ):
            if value not in (1, 2):
                raise ConfigError(f"/: {what} must be 1 or 2, not {value}")

    def prop(self, node: int, name: str) -> bytes | None:
        value = self.fdt.getprop(node, name, _NOT_FOUND)
        return None if isinstance(value, int) else bytes(value)

    def has(self, node: int, name: str) -> bool:
        return self.prop(node, name) is not None

    def strings(self, node: int, name: str) -> list[str]:
        value = self.prop(node, name)
        if not value:
            return []
        return [s.decode("utf-8", "replace") for s in value.rstrip(b"\0").split(b"\0")]

    def cells(self, node: int, name: str, default: int) -> int:
        value = self.prop(node, name)
        if value is None:
            return default
        if len(value) != 4:
            raise ConfigError(f"{self.path(node)}: {name} must be one cell, not {len(value)} bytes")
        return int.from_bytes(value, "big")

    def path(self, node: int) -> str:
        return _utf8(str(self.fdt.get_path(node)))

    def name(self, node: int) -> str:
        return _utf8(str(self.fdt.get_name(node)))

    def enabled(self, node: int) -> bool:
        status = self.strings(node, "status")
        return not status or status[0] in ("okay", "ok")

    def subnodes(self, node: int) -> Iterator[int]:
        child = self.fdt.first_subnode(node, _NOT_FOUND)
        while child >= 0:
            yield child
            child = self.fdt.next_subnode(child, _NOT_FOUND)

    def all_nodes(self) -> Iterator[int]:
        offset, depth = 0, 0
        while True:
            yield offset
            found = self.fdt.next_node(offset, depth, _NOT_FOUND)
            if isinstance(found, int):
                return
            offset, depth = found
            if offset < 0 or depth < 0:
                return

    def pairs(self, node: int, name: str) -> list[tuple[int, int]]:
        """A property of (address, size) entries in the root's cells."""
        value = self.prop(node, name) or b""
        stride = 4 * (self.address_cells + self.size_cells)
        if len(value) % stride:
            raise ConfigError(
                f"{self.path(node)}: {name} must be a list of <address size> entries of "
                f"{self.address_cells}+{self.size_cells} cells, not {len(value)} bytes"
            )
        split = 4 * self.address_cells
        return [
            (
                int.from_bytes(value[i : i + split], "big"),
                int.from_bytes(value[i + split : i + stride], "big"),
            )
            for i in range(0, len(value), stride)
        ]

    def number(self, node: int, name: str, cells: int) -> int:
        value = self.prop(node, name) or b""
        if len(value) != 4 * cells:
            raise ConfigError(
                f"{self.path(node)}: {name} must be {cells} cell(s), not {len(value)} bytes"
            )
        return int.from_bytes(value, "big")

    def reserved_memory(self) -> int | None:
        """The checked ``/reserved-memory`` node, or None when there is none."""
        node = int(self.fdt.path_offset(_RESERVED_MEMORY, _NOT_FOUND))
        if node < 0:
            return None
        for what, root_value in (
            ("#address-cells", self.address_cells),
            ("#size-cells", self.size_cells),
        ):
            value = self.cells(node, what, -1)
            if value != root_value:
                shown = "missing" if value == -1 else str(value)
                raise ConfigError(
                    f"{_RESERVED_MEMORY}: {what} must match the root's ({root_value}), not {shown}"
                )
        ranges = self.prop(node, "ranges")
        if ranges is None:
            raise ConfigError(f"{_RESERVED_MEMORY}: needs an empty 'ranges' property")
        if ranges:
            raise ConfigError(
                f"{_RESERVED_MEMORY}: 'ranges' must be empty (1:1), not {len(ranges)} bytes"
            )
        return node


def _utf8(text: str) -> str:
    """``text`` when it is UTF-8; pylibfdt hands other bytes over as surrogates."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"node name {text!r} is not UTF-8 text") from None
    return text


@contextmanager
def _malformed() -> Iterator[None]:
    """Turn libfdt's complaints about a damaged blob into :class:`ConfigError`."""
    try:
        yield
    except (libfdt.FdtException, UnicodeError) as err:
        raise ConfigError(f"malformed device tree blob ({err})") from err


def _is_pool(tree: _Tree, node: int) -> bool:
    return _POOL_COMPATIBLE in tree.strings(node, "compatible")


def _region(tree: _Tree, node: int) -> RegionSpec:
    """The :class:`RegionSpec` of one enabled ``shared-dma-pool`` node."""
    path = tree.path(node)
    reusable = tree.has(node, "reusable")
    no_map = tree.has(node, "no-map")
    if reusable and no_map:
        raise ConfigError(f"{path}: 'reusable' and 'no-map' exclude each other")
    start: int | None = None
    alignment = 0
    alloc_ranges: tuple[tuple[int, int], ...] = ()
    if tree.has(node, "reg"):
        entries = tree.pairs(node, "reg")
        if not entries:
            raise ConfigError(f"{path}: 'reg' is empty")
        start, size = entries[0]
        if size == 0:
            raise ConfigError(f"{path}: the size in 'reg' must be greater than 0")
    elif tree.has(node, "size"):
        size = tree.number(node, "size", tree.size_cells)
        if size == 0:
            raise ConfigError(f"{path}: 'size' must be greater than 0")
        if tree.has(node, "alignment"):
            alignment = tree.number(node, "alignment", tree.address_cells)
            if alignment and alignment & (alignment - 1):
                raise ConfigError(f"{path}: alignment must be a power of two, not {alignment:#x}")
        alloc_ranges = tuple(tree.pairs(node, "alloc-ranges"))
    else:
        raise ConfigError(f"{path}: a reserved-memory node needs 'reg' or 'size'")
    phandle = int(tree.fdt.get_phandle(node))
    return RegionSpec(
        name=tree.name(node),
        size=size,
        start=start,
        alignment=alignment,
        fixed=start is not None,
        alloc_ranges=alloc_ranges,
        reusable=reusable,
        no_map=no_map,
        default=tree.has(node, "linux,cma-default"),
        source=Source.DEVICETREE,
        node=path,
        phandle=phandle or None,
    )


def _links(tree: _Tree, reserved: int | None) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Every ``memory-region`` property in the tree, resolved to region names."""
    links: list[tuple[str, tuple[str, ...]]] = []
    for node in tree.all_nodes():
        value = tree.prop(node, "memory-region")
        if value is None:
            continue
        path = tree.path(node)
        if not value or len(value) % 4:
            raise ConfigError(
                f"{path}: memory-region must be a list of phandles, not {len(value)} bytes"
            )
        names: list[str] = []
        for i in range(0, len(value), 4):
            phandle = int.from_bytes(value[i : i + 4], "big")
            target = -1
            if phandle not in (0, 0xFFFFFFFF):
                target = tree.fdt.node_offset_by_phandle(phandle, _NOT_FOUND)
            if target < 0:
                raise ConfigError(f"{path}: memory-region phandle {phandle:#x} points at no node")
            parent = tree.fdt.parent_offset(target, _NOT_FOUND)
            if reserved is None or parent != reserved:
                raise ConfigError(
                    f"{path}: memory-region phandle {phandle:#x} points at "
                    f"{tree.path(target)}, which is not a child of {_RESERVED_MEMORY}"
                )
            names.append(tree.name(target))
        links.append((path, tuple(names)))
    return tuple(links)


def parse_reserved_memory(dtb: bytes) -> CmaConfig:
    """The ``shared-dma-pool`` regions of ``/reserved-memory`` and the links to them.

    Each enabled pool child becomes a :class:`RegionSpec` named after the node
    (``camera-pool@50000000``, ``linux,cma``) with its path and phandle: ``reg``
    gives a fixed region; otherwise ``size`` with optional ``alignment`` and
    ``alloc-ranges``. ``reusable`` makes it a CMA area (``reusable=True``),
    ``no-map`` a dedicated pool kept out of the OS's mapping (``no_map=True``,
    ``reusable=False``); neither gives a dedicated pool that stays mapped
    (``reusable=False``); both is an error. ``linux,cma-default`` sets
    ``default``. ``links`` has one ``(node path, region names)`` entry per node
    with ``memory-region``; a phandle that resolves to nothing or to a node
    that is not a ``/reserved-memory`` child is an error.
    """
    with _malformed():
        tree = _Tree(dtb)
        reserved = tree.reserved_memory()
        regions: list[RegionSpec] = []
        if reserved is not None:
            for child in tree.subnodes(reserved):
                if tree.enabled(child) and _is_pool(tree, child):
                    regions.append(_region(tree, child))
        return CmaConfig(regions=tuple(regions), links=_links(tree, reserved))


def parse_carveouts(dtb: bytes) -> tuple[tuple[str, int, int], ...]:
    """Fixed reservations that are not pools: ``(name, start, size)`` for placement to avoid.

    These are the ``reg`` entries of enabled ``/reserved-memory`` children that
    are not ``shared-dma-pool`` (firmware areas, frame buffers ...), the second
    and later ``reg`` entries of pools (Linux reserves them but the pool uses
    only the first), and the DTB's ``/memreserve/`` entries (named
    :data:`MEMRESERVE_NAME`). Entries of size 0 are skipped, as Linux does.
    Dynamically placed non-pool nodes (``size`` without ``reg``) have no fixed
    place and are not listed.
    """
    out: list[tuple[str, int, int]] = []
    with _malformed():
        tree = _Tree(dtb)
        for index in range(tree.fdt.num_mem_rsv()):
            start, size = tree.fdt.get_mem_rsv(index)[-2:]
            if size:
                out.append((MEMRESERVE_NAME, int(start), int(size)))
        reserved = tree.reserved_memory()
        if reserved is not None:
            for child in tree.subnodes(reserved):
                if not tree.enabled(child) or not tree.has(child, "reg"):
                    continue
                entries = tree.pairs(child, "reg")
                if _is_pool(tree, child):
                    entries = entries[1:]
                name = tree.name(child)
                out.extend((name, start, size) for start, size in entries if size)
    return tuple(out)


def parse_memory(dtb: bytes) -> tuple[tuple[int, int], ...]:
    """The RAM banks ``(start, size)``: every enabled root child with ``device_type = "memory"``.

    ``linux,usable-memory`` replaces ``reg`` when present, and zero-sized
    entries are skipped, as in Linux's ``early_init_dt_scan_memory()``.
    """
    banks: list[tuple[int, int]] = []
    with _malformed():
        tree = _Tree(dtb)
        for child in tree.subnodes(0):
            if tree.strings(child, "device_type")[:1] != ["memory"]:
                continue
            if not tree.enabled(child):
                continue
            name = "linux,usable-memory" if tree.has(child, "linux,usable-memory") else "reg"
            banks.extend((start, size) for start, size in tree.pairs(child, name) if size)
    return tuple(banks)
