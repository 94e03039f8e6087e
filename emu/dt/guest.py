"""Turning a board tree into the DTB handed to a guest: ``/chosen`` and ``/reserved-memory``.

The additions are the ones a boot loader or the machine makes before jumping to the
kernel: the command line, the initrd location, and the contiguous-memory pools reserved
at boot, published as ``shared-dma-pool`` nodes under ``/reserved-memory`` with the
devices that use them linked through ``memory-region``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from emu.dt.tree import DeviceTree, Node, encode_cells
from emu.errors import DeviceTreeError

_NODE_NAME = re.compile(r"[A-Za-z0-9,._+-]{1,31}")


@dataclass(frozen=True)
class ReservedPool:
    """One ``shared-dma-pool`` region to publish under ``/reserved-memory``.

    ``reusable`` makes it a CMA area (the OS may lend it out for movable pages);
    ``no_map`` keeps it out of the OS's linear map (a dedicated pool); the two are
    exclusive. ``default`` marks the system-wide default CMA area
    (``linux,cma-default``). ``phandle`` None lets :func:`link_memory_region`
    allocate one when a device refers to the pool.
    """

    name: str
    base: int
    size: int
    reusable: bool = True
    no_map: bool = False
    default: bool = False
    phandle: int | None = None

    def __post_init__(self) -> None:
        if not _NODE_NAME.fullmatch(self.name):
            raise DeviceTreeError(
                f"pool name must be 1-31 letters, digits or ',._+-', not {self.name!r}"
            )
        if self.size <= 0:
            raise DeviceTreeError(f"pool {self.name!r}: size must be positive, not {self.size:#x}")
        if self.base < 0:
            raise DeviceTreeError(f"pool {self.name!r}: base must not be negative")
        if self.reusable and self.no_map:
            raise DeviceTreeError(
                f"pool {self.name!r}: 'reusable' and 'no-map' are exclusive; pick one"
            )
        if self.default and not self.reusable:
            raise DeviceTreeError(f"pool {self.name!r}: the default CMA area must be reusable")

    @property
    def node_name(self) -> str:
        return f"{self.name}@{self.base:x}"

    @property
    def end(self) -> int:
        return self.base + self.size


def set_bootargs(tree: DeviceTree, text: str) -> None:
    """Set the kernel command line (``/chosen/bootargs``)."""
    tree.chosen.set_prop("bootargs", text)


def set_initrd(tree: DeviceTree, start: int, end: int) -> None:
    """Publish the initrd at physical ``[start, end)`` (``linux,initrd-start/end``).

    The values use the root's ``#address-cells`` width, as U-Boot writes them.
    """
    if not 0 <= start <= end:
        raise DeviceTreeError(f"initrd must have 0 <= start <= end, not {start:#x}..{end:#x}")
    cells = tree.root.address_cells
    chosen = tree.chosen
    chosen.props["linux,initrd-start"] = encode_cells([start], cells)
    chosen.props["linux,initrd-end"] = encode_cells([end], cells)


def add_reserved_memory(tree: DeviceTree, pools: Iterable[ReservedPool]) -> list[Node]:
    """Add a ``shared-dma-pool`` node per pool under ``/reserved-memory``; return them.

    ``/reserved-memory`` is created with the root's cell counts and an empty ``ranges``
    (as the binding requires) when absent. Pools must not overlap each other or the
    regions already there, must lie in RAM when the tree describes RAM, and at most one
    may be the default CMA area.
    """
    pools = list(pools)
    root = tree.root
    na, ns = root.address_cells, root.size_cells
    parent = root.child("reserved-memory")
    existing = parent.children if parent is not None else []
    if parent is not None and (
        (parent.address_cells, parent.size_cells) != (na, ns) or parent.props.get("ranges")
    ):
        raise DeviceTreeError(
            f"{parent.path}: must use the root's cells ({na}/{ns}) and an empty 'ranges'"
        )

    taken: list[tuple[int, int, str]] = [
        (address, address + size, child.path)
        for child in existing
        if "reg" in child.props
        for address, size in child.reg
    ]
    names = {child.name for child in existing}
    defaults = [c.path for c in existing if "linux,cma-default" in c.props]
    banks = tree.memory_banks()
    phandles: dict[int, str] = {ph: node.path for ph, node in tree.phandles().items()}
    for pool in pools:
        for start, end, where in taken:
            if pool.base < end and start < pool.end:
                raise DeviceTreeError(
                    f"pool {pool.name!r} [{pool.base:#x}, {pool.end:#x}) overlaps "
                    f"{where} [{start:#x}, {end:#x})"
                )
        if banks and not any(b <= pool.base and pool.end <= b + s for b, s in banks):
            listed = ", ".join(f"[{b:#x}, {b + s:#x})" for b, s in banks)
            raise DeviceTreeError(
                f"pool {pool.name!r} [{pool.base:#x}, {pool.end:#x}) is not inside RAM ({listed})"
            )
        if pool.default:
            if defaults:
                raise DeviceTreeError(
                    f"pool {pool.name!r}: {defaults[0]} is already the default CMA area"
                )
            defaults.append(f"pool {pool.name!r}")
        if pool.phandle is not None:
            owner = phandles.get(pool.phandle)
            if owner is not None or not 0 < pool.phandle < 0xFFFFFFFF:
                raise DeviceTreeError(
                    f"pool {pool.name!r}: phandle {pool.phandle:#x} is "
                    + (f"already used by {owner}" if owner else "not a valid phandle")
                )
            phandles[pool.phandle] = f"pool {pool.name!r}"
        if pool.node_name in names:
            raise DeviceTreeError(f"pool {pool.name!r}: {pool.node_name} already exists")
        names.add(pool.node_name)
        taken.append((pool.base, pool.end, f"/reserved-memory/{pool.node_name}"))

    if parent is None:
        parent = root.add_child("reserved-memory")
        parent.set_prop("#address-cells", na)
        parent.set_prop("#size-cells", ns)
        parent.set_prop("ranges", True)

    nodes: list[Node] = []
    for pool in pools:
        node = parent.add_child(pool.node_name)
        node.set_prop("compatible", "shared-dma-pool")
        node.props["reg"] = encode_cells([pool.base], na) + encode_cells([pool.size], ns)
        if pool.reusable:
            node.set_prop("reusable", True)
        if pool.no_map:
            node.set_prop("no-map", True)
        if pool.default:
            node.set_prop("linux,cma-default", True)
        if pool.phandle is not None:
            node.set_prop("phandle", pool.phandle)
        nodes.append(node)
    return nodes


def find_pool(tree: DeviceTree, name: str) -> Node:
    """The ``/reserved-memory`` child called ``name`` (with or without its unit address)."""
    parent = tree.root.child("reserved-memory")
    node = parent.child(name) if parent is not None else None
    if node is None:
        known = [c.name for c in parent.children] if parent is not None else []
        raise DeviceTreeError(
            f"no reserved-memory pool {name!r}; known: {', '.join(known) or 'none'}"
        )
    return node


def link_memory_region(tree: DeviceTree, device_path: str, pool_names: Sequence[str]) -> None:
    """Point a device at its pools: ``memory-region = <&a &b>`` and ``memory-region-names``.

    Pools without a phandle get a fresh one; any earlier ``memory-region`` is replaced.
    """
    if not pool_names:
        raise DeviceTreeError(f"{device_path}: memory-region needs at least one pool")
    device = tree.node(device_path)
    phandles = [tree.ensure_phandle(find_pool(tree, name)) for name in pool_names]
    device.set_prop("memory-region", phandles)
    device.set_prop("memory-region-names", [name.split("@", 1)[0] for name in pool_names])


def memory_regions(tree: DeviceTree, device: Node) -> list[Node]:
    """The pool nodes a device's ``memory-region`` points at, in order."""
    if "memory-region" not in device.props:
        return []
    out: list[Node] = []
    for phandle in device.get_cells("memory-region"):
        node = tree.by_phandle(phandle)
        if node is None:
            raise DeviceTreeError(f"{device.path}: memory-region refers to unknown {phandle:#x}")
        out.append(node)
    return out
