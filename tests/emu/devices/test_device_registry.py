"""The compatible -> model registry."""

from __future__ import annotations

from typing import ClassVar

import pytest

from emu.clock import VirtualClock
from emu.devices.base import Device, DeviceContext, DeviceLog
from emu.devices.char.pl011 import Pl011
from emu.devices.intc.gic import Gic
from emu.devices.registry import (
    device_class_for,
    mmio_blocks,
    register_device,
    registered_compatibles,
)
from emu.devices.rtc.pl031 import Pl031
from emu.errors import ConfigurationError


@pytest.mark.parametrize(("compatibles", "expected"), [
    (["arm,pl011", "arm,primecell"], Pl011),
    (["arm,pl031", "arm,primecell"], Pl031),
    (["arm,cortex-a15-gic", "arm,cortex-a9-gic"], Gic),
    (["arm,gic-400"], Gic),
    (["arm,cortex-a7-gic"], Gic),
    (["vendor,unknown-gic", "arm,cortex-a15-gic"], Gic),  # first *known* one wins
    (["arm,sp804", "arm,primecell"], None),  # a generic compatible selects nothing
    (["arm,primecell"], None),
    ([], None),
])
def test_lookup(compatibles: list[str], expected: type[Device] | None) -> None:
    assert device_class_for(compatibles) is expected


def test_first_matching_compatible_wins() -> None:
    assert device_class_for(["arm,pl031", "arm,pl011"]) is Pl031
    assert device_class_for(["arm,pl011", "arm,pl031"]) is Pl011


def test_every_registered_class_builds_from_a_bare_context() -> None:
    for compatible, cls in registered_compatibles().items():
        ctx = DeviceContext(compatible, VirtualClock(), log=DeviceLog(compatible))
        device = cls(ctx)
        blocks = mmio_blocks(device)
        assert blocks[0] is device
        assert all(b.mmio_size > 0 for b in blocks)
    gic = Gic(DeviceContext("gic", VirtualClock()))
    assert mmio_blocks(gic) == (gic, gic.cpu_interface)


def test_conflicting_registration_is_refused() -> None:
    class OtherUart(Device):
        compatible: ClassVar[tuple[str, ...]] = ("arm,pl011",)

    class GenericOnly(Device):
        compatible: ClassVar[tuple[str, ...]] = ("arm,primecell",)

    with pytest.raises(ConfigurationError, match="already registered to Pl011"):
        register_device(OtherUart)
    with pytest.raises(ConfigurationError, match="arm,primecell"):
        register_device(GenericOnly)
    assert device_class_for(["arm,pl011"]) is Pl011
    assert register_device(Pl011) is Pl011  # registering the same class again is harmless
