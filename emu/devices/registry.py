"""The explicit registry of device models, looked up by device-tree ``compatible``.

The machine walks the device tree and, for each node, asks
:func:`device_class_for` with the node's ``compatible`` list (most specific
first, as in the tree). The first string with a registered model wins; a node
with none gets an :class:`~emu.devices.base.Unimplemented` stub.

Generic bus compatibles (:data:`GENERIC_COMPATIBLES`, e.g. "arm,primecell",
which every AMBA PrimeCell node carries after its own name) never select a
model on their own: a "arm,sp804", "arm,primecell" node is not a UART.

Every registered class can be built as ``cls(ctx)``; optional collaborators
(a UART's console sink, a GIC's SPI count, an RTC's epoch) are keyword
arguments with defaults. A node with several ``reg`` entries is served by
:func:`mmio_blocks`, one :class:`~emu.devices.base.Device` per entry.
"""

from __future__ import annotations

from collections.abc import Iterable

from emu.devices.base import Device
from emu.devices.char.pl011 import Pl011
from emu.devices.display.pl111 import Pl111
from emu.devices.dma.camera import CameraDma
from emu.devices.intc.gic import Gic
from emu.devices.rtc.pl031 import Pl031
from emu.errors import ConfigurationError

GENERIC_COMPATIBLES = frozenset({"arm,primecell"})

_REGISTRY: dict[str, type[Device]] = {}


def register_device(cls: type[Device]) -> type[Device]:
    """Register ``cls`` under each of its specific ``compatible`` strings (decorator-friendly)."""
    specific = [c for c in cls.compatible if c not in GENERIC_COMPATIBLES]
    if not specific:
        raise ConfigurationError(
            f"{cls.__name__} needs at least one specific compatible string, "
            f"not {list(cls.compatible)!r}"
        )
    for compatible in specific:
        other = _REGISTRY.get(compatible)
        if other is not None and other is not cls:
            raise ConfigurationError(
                f"compatible {compatible!r} of {cls.__name__} is already registered "
                f"to {other.__name__}"
            )
    for compatible in specific:
        _REGISTRY[compatible] = cls
    return cls


def device_class_for(compatibles: Iterable[str]) -> type[Device] | None:
    """The model for a node whose ``compatible`` list is ``compatibles``, or None."""
    for compatible in compatibles:
        if compatible in GENERIC_COMPATIBLES:
            continue
        cls = _REGISTRY.get(compatible)
        if cls is not None:
            return cls
    return None


def registered_compatibles() -> dict[str, type[Device]]:
    """A copy of the registry, sorted by compatible string."""
    return dict(sorted(_REGISTRY.items()))


def mmio_blocks(device: Device) -> tuple[Device, ...]:
    """The objects that serve a node's ``reg`` entries, in order.

    Most models serve one block (themselves); a model with several blocks (the
    GIC: distributor, CPU interface) defines ``mmio_blocks()``.
    """
    blocks = getattr(device, "mmio_blocks", None)
    if blocks is None:
        return (device,)
    result = blocks()
    if not isinstance(result, tuple) or not all(isinstance(b, Device) for b in result):
        raise ConfigurationError(
            f"{type(device).__name__}.mmio_blocks() must return a tuple of devices, "
            f"not {result!r}"
        )
    return result


for _cls in (Gic, Pl011, Pl031, CameraDma, Pl111):
    register_device(_cls)
