"""A DMA master's view of memory, derived from ``dma-ranges`` exactly as Linux does.

The walk mirrors ``of_dma_configure_id`` → ``of_dma_get_range`` →
``of_translate_dma_address`` in Linux's ``drivers/of/address.c``:

1. Start at the device's *DMA parent*: the node that ``interconnects`` names at the
   position of ``"dma-mem"`` in ``interconnect-names``, else the tree parent. The
   device's own ``dma-ranges`` never applies to itself.
2. Walk up through DMA parents. An empty ``dma-ranges`` is 1:1 at that level and the
   walk goes on; the first non-empty one ends the walk. The DMA parent itself may lack
   the property, but every node above it must have one: a missing ``dma-ranges`` there
   stops the walk with no map.
3. The non-empty ``dma-ranges`` is read as (bus address, parent address, length) with
   the bus node's ``#address-cells``, its parent's ``#address-cells`` and the bus node's
   ``#size-cells``. Each parent address is translated further up through the ancestors'
   ``dma-ranges`` (missing or empty = 1:1), so nested offsets compose. Triplets that are
   contiguous in both spaces merge into one window, as Linux's range parser does.

When Linux finds no usable map (``-ENODEV``/``-EINVAL``) a platform device still gets
DMA with no translation, so the result is identity. :attr:`DmaMap.problem` says why when
that discards a translation the tree declares (a non-empty ``dma-ranges`` above the gap,
or entries that do not translate), and ``strict=True`` raises instead. A chain of empty
``dma-ranges`` that simply stops (``/soc { dma-ranges; }`` under a root without one) is
1:1 however it is read and is not reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from cma import translate as _windows
from emu.dt.address import ranges_triplets, through_triplets
from emu.dt.tree import DeviceTree, Node
from emu.errors import DeviceTreeError

#: the 32-bit mask a platform device starts with before its bus limits it
DEFAULT_DMA_MASK = 0xFFFF_FFFF


class DmaWindow(NamedTuple):
    """One region of a master's view: CPU physical start, bus (DMA) start, size."""

    cpu_start: int
    dma_start: int
    size: int

    @property
    def offset(self) -> int:
        """``cpu_start - dma_start``, Linux's ``bus_dma_region.offset``."""
        return self.cpu_start - self.dma_start


@dataclass(frozen=True)
class DmaMap:
    """How one device node sees memory when it masters the bus.

    ``windows`` is None for identity (no ``dma-ranges`` map: bus address = physical).
    """

    device: str
    windows: tuple[DmaWindow, ...] | None = None
    #: path of the bus whose ``dma-ranges`` produced ``windows``
    source: str | None = None
    #: path of the node the walk started from (see the module docstring)
    dma_parent: str | None = None
    #: ``dma-coherent`` on the device or a DMA ancestor (reported, not modelled)
    coherent: bool = False
    #: why a map that the tree seems to describe was not applied, if so
    problem: str | None = None

    @property
    def identity(self) -> bool:
        return self.windows is None

    def as_windows(self) -> list[tuple[int, int, int]] | None:
        """The view in :mod:`cma.translate`'s form: None = identity."""
        if self.windows is None:
            return None
        return [(w.cpu_start, w.dma_start, w.size) for w in self.windows]

    def phys_to_dma(self, phys: int, size: int = 1) -> int | None:
        """The bus address of ``[phys, phys + size)``; None when no single window holds it."""
        return _windows.phys_to_dma(self.windows, phys, size)

    def dma_to_phys(self, dma: int, size: int = 1) -> int | None:
        """The physical address behind ``[dma, dma + size)``; None when unreachable."""
        return _windows.dma_to_phys(self.windows, dma, size)

    @property
    def bus_dma_limit(self) -> int | None:
        """The highest bus address the map reaches; None means no limit (identity)."""
        if not self.windows:
            return None
        return max(w.dma_start + w.size - 1 for w in self.windows)

    @property
    def dma_mask(self) -> int:
        """The mask Linux gives a platform device: 32 bits, narrowed to cover the limit."""
        limit = self.bus_dma_limit
        if limit is None:
            return DEFAULT_DMA_MASK
        bits = max(limit, 1).bit_length()
        return DEFAULT_DMA_MASK & ((1 << bits) - 1)


def dma_parent(tree: DeviceTree, node: Node) -> Node | None:
    """The node ``node``'s DMA goes through (``__of_get_dma_parent``)."""
    if "interconnect-names" not in node.props or "interconnects" not in node.props:
        return node.parent
    try:
        names = node.get_strings("interconnect-names")
        if "dma-mem" not in names:
            return node.parent
        target = _phandle_args_target(
            tree, node, "interconnects", "#interconnect-cells", names.index("dma-mem")
        )
    except DeviceTreeError:
        # Linux falls back to the tree parent when the reference cannot be parsed.
        return node.parent
    return target if target is not None else node.parent


def _next_dma_parent(tree: DeviceTree, node: Node, seen: set[int], origin: Node) -> Node | None:
    """:func:`dma_parent` of ``node`` for a walk that started at ``origin``.

    ``seen`` holds the ids of the nodes visited so far; ``interconnects`` can point
    back at one of them, and such a loop is an error rather than an endless walk.
    """
    parent = dma_parent(tree, node)
    if parent is not None:
        if id(parent) in seen:
            raise DeviceTreeError(
                f"{origin.path}: the DMA parents ('interconnects' \"dma-mem\") loop back "
                f"to {parent.path} (from {node.path})"
            )
        seen.add(id(parent))
    return parent


def _phandle_args_target(
    tree: DeviceTree, node: Node, prop: str, cells_prop: str, index: int
) -> Node | None:
    """The provider node of entry ``index`` of a ``<&provider args...>`` list."""
    cells = node.get_cells(prop)
    pos = entry = 0
    while pos < len(cells):
        phandle = cells[pos]
        pos += 1
        provider = tree.by_phandle(phandle) if phandle else None
        if phandle and provider is None:
            raise DeviceTreeError(f"{node.path}: {prop} refers to unknown phandle {phandle:#x}")
        count = provider.get_u32(cells_prop) if provider is not None else 0
        if entry == index:
            return provider
        pos += count
        entry += 1
    return None


def is_dma_coherent(tree: DeviceTree, node: Node) -> bool:
    """``of_dma_is_coherent``: the nearest of ``dma-coherent``/``dma-noncoherent`` wins."""
    current: Node | None = node
    seen = {id(node)}
    while current is not None:
        if "dma-coherent" in current.props:
            return True
        if "dma-noncoherent" in current.props:
            return False
        current = _next_dma_parent(tree, current, seen, node)
    return False


def translate_dma_parent_address(tree: DeviceTree, bus: Node, address: int) -> int | None:
    """``of_translate_dma_address``: ``address`` in ``bus``'s parent space, to physical.

    Climbs from ``bus``'s DMA parent, applying each node's ``dma-ranges`` (missing or
    empty = 1:1) until the node whose DMA parent is the root's parent. None when an
    address falls outside every triplet, or when ``bus`` is the root itself.
    """
    seen = {id(bus)}
    current = _next_dma_parent(tree, bus, seen, bus)
    if current is None:
        return None
    while True:
        above = _next_dma_parent(tree, current, seen, bus)
        if above is None:
            return address
        triplets = ranges_triplets(current, "dma-ranges")
        if triplets:
            translated = through_triplets(triplets, address)
            if translated is None:
                return None
            address = translated
        current = above


def dma_map_for(tree: DeviceTree, node: Node | str, *, strict: bool = False) -> DmaMap:
    """The DMA view of ``node`` (a node or a path), computed as Linux computes it.

    With ``strict`` a tree whose ``dma-ranges`` cannot be applied raises
    :class:`DeviceTreeError`; otherwise the result is identity with :attr:`DmaMap.problem`.
    """
    device = tree.node(node) if isinstance(node, str) else node
    start = dma_parent(tree, device)
    coherent = is_dma_coherent(tree, device)
    base = DmaMap(device=device.path, dma_parent=start.path if start else None, coherent=coherent)

    def fail(problem: str) -> DmaMap:
        if strict:
            raise DeviceTreeError(f"{device.path}: {problem}")
        return DmaMap(device.path, None, None, base.dma_parent, coherent, problem)

    bus = start
    seen_empty: Node | None = None
    first = True
    walked = {id(device)} if start is None else {id(device), id(start)}
    while bus is not None:
        value = bus.props.get("dma-ranges")
        if value:
            break
        if value is None and not first:
            ignored = _next_nonempty_dma_ranges(tree, bus)
            if ignored is None:
                # 1:1 whichever way the tree is read: nothing is lost
                return base
            reason = f"{bus.path} has no 'dma-ranges'"
            if seen_empty is not None:
                reason += f" although {seen_empty.path} below it has one"
            reason += f", so the 'dma-ranges' of {ignored.path} does not apply"
            return fail(reason + " (Linux then maps 1:1)")
        if value is not None:
            seen_empty = bus
        first = False
        bus = _next_dma_parent(tree, bus, walked, device)
    if bus is None:
        return base

    triplets = ranges_triplets(bus, "dma-ranges")
    assert triplets
    translated: list[DmaWindow] = []
    bad: list[str] = []
    for dma, parent, size in triplets:
        cpu = translate_dma_parent_address(tree, bus, parent)
        if cpu is None:
            bad.append(f"{dma:#x}->{parent:#x}")
            continue
        last = translated[-1] if translated else None
        if (
            last is not None
            and last.dma_start + last.size == dma
            and last.cpu_start + last.size == cpu
        ):
            translated[-1] = DmaWindow(last.cpu_start, last.dma_start, last.size + size)
        else:
            translated.append(DmaWindow(cpu, dma, size))
    problem = None
    if bad:
        problem = (
            f"'dma-ranges' of {bus.path}: entries {', '.join(bad)} do not translate to a "
            "CPU address and are skipped"
        )
        if not translated:
            return fail(problem + "; no entry is left (Linux then maps 1:1)")
        if strict:
            raise DeviceTreeError(f"{device.path}: {problem}")
    return DmaMap(device.path, tuple(translated), bus.path, base.dma_parent, coherent, problem)


def _next_nonempty_dma_ranges(tree: DeviceTree, node: Node) -> Node | None:
    """The nearest DMA ancestor of ``node`` (itself included) with a non-empty dma-ranges."""
    current: Node | None = node
    seen = {id(node)}
    while current is not None:
        if current.props.get("dma-ranges"):
            return current
        current = _next_dma_parent(tree, current, seen, node)
    return None


def dma_masters(tree: DeviceTree) -> list[Node]:
    """Enabled nodes whose DMA view is not plain identity, in tree order."""
    return [
        node
        for node in tree.iter_nodes()
        if node.is_enabled and node.parent is not None and not dma_map_for(tree, node).identity
    ]
