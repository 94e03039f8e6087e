"""The CPU's view of a device's registers: ``reg`` translated through ``ranges``.

This follows Linux's ``of_translate_address``: an address written in a node's ``reg``
lives in its parent bus's address space, and each bus between the node and the root
maps it one level up with its ``ranges``:

* an empty ``ranges`` is a 1:1 mapping at that level,
* a missing ``ranges`` means the bus is not memory-mapped (``/cpus``, I2C, SPI ...):
  the address cannot be translated,
* otherwise the first (child, parent, length) triplet whose child window holds the
  address maps it; no such triplet means the address is not visible to the CPU.

Triplets use the bus node's own ``#address-cells`` for the child address and
``#size-cells`` for the length, and its parent's ``#address-cells`` for the parent
address. Only the default bus encoding is decoded; addresses below a PCI bus (whose
first cell carries flags) are reported as not translatable.
"""

from __future__ import annotations

from emu.dt.tree import Node
from emu.errors import DeviceTreeError


def ranges_triplets(bus: Node, prop: str = "ranges") -> list[tuple[int, int, int]] | None:
    """``bus``'s ``ranges`` (or ``dma-ranges``) as (child, parent, size); None when absent.

    An empty property gives [] (a 1:1 mapping).
    """
    if prop not in bus.props:
        return None
    parent_cells = bus.parent.address_cells if bus.parent is not None else bus.address_cells
    widths = (bus.address_cells, parent_cells, bus.size_cells)
    if not bus.props[prop]:
        return []
    return [(t[0], t[1], t[2]) for t in bus.read_tuples(prop, widths)]


def through_triplets(triplets: list[tuple[int, int, int]], address: int) -> int | None:
    """``address`` on the child side of ``(child, parent, size)`` triplets, on the parent
    side: the first triplet holding it wins; None when none does."""
    for child, parent, size in triplets:
        if child <= address < child + size:
            return address - child + parent
    return None


def _is_pci(node: Node) -> bool:
    return node.props.get("device_type") in (b"pci\0", b"pciex\0")


def _translate(node: Node, address: int) -> tuple[int | None, str]:
    """(CPU address or None, why it failed) for ``address`` in ``node``'s parent space."""
    bus = node.parent
    while bus is not None and bus.parent is not None:
        if _is_pci(bus):
            return None, f"{bus.path} is a PCI bus; its addresses are not decoded here"
        triplets = ranges_triplets(bus)
        if triplets is None:
            return None, (
                f"{bus.path} has no 'ranges', so {address:#x} on that bus is not visible to the CPU"
            )
        if triplets:
            translated = through_triplets(triplets, address)
            if translated is None:
                return None, f"{address:#x} is outside every window of {bus.path}'s 'ranges'"
            address = translated
        bus = bus.parent
    return address, ""


def translate_address(node: Node, address: int) -> int | None:
    """The CPU physical address of ``address`` (given in ``node``'s parent bus), or None."""
    return _translate(node, address)[0]


def cpu_reg_windows(node: Node) -> list[tuple[int, int]]:
    """Every ``reg`` entry of ``node`` as a CPU-physical (start, size) window.

    Raises :class:`DeviceTreeError` naming the bus that stops the translation.
    """
    windows: list[tuple[int, int]] = []
    for address, size in node.reg:
        cpu, why = _translate(node, address)
        if cpu is None:
            raise DeviceTreeError(f"{node.path}: reg {address:#x} cannot be translated: {why}")
        windows.append((cpu, size))
    return windows


def is_translatable(node: Node) -> bool:
    """True when ``node`` has a ``reg`` and every entry of it reaches the CPU."""
    if not node.reg:
        return False
    return all(translate_address(node, address) is not None for address, _ in node.reg)
