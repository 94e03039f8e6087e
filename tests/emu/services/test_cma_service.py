"""The CMA service as a guest sees it: SMCCC registers in, registers out."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cma.config import CmaConfig, MapRule, Pattern, RegionSpec
from cma.core import ContiguousMemory
from cma.translate import TableTranslator
from emu.services.cma import FLAG_DEVICE_PATH, NOT_SUPPORTED, CmaCall, CmaService

RAM = (0x4000_0000, 0x2000_0000)
CAMERA = "/soc/cambus@10000000/camera@0"
DISPLAY = "/soc/dispbus@10100000/clcd@0"
PHANDLES = {0x10: CAMERA, 0x11: DISPLAY}
STRINGS = {0x4000_1000: CAMERA, 0x4000_1100: "/no/such/node", 0x4000_1200: "video"}


def u32(v: int) -> int:
    return v & 0xFFFF_FFFF


def make_service() -> CmaService:
    translator = TableTranslator(
        windows={
            CAMERA: [(0x4000_0000, 0x0000_0000, 0x1000_0000)],  # plain offset, first 256 MiB
            DISPLAY: [(0x4000_0000, 0xC000_0000, 0x2000_0000)],  # 0xC0000000 alias
        },
        linear=(0x4000_0000, 0xC000_0000, 0x2000_0000),
    )
    config = CmaConfig(
        regions=(RegionSpec("cam", 16 << 20), RegionSpec("disp", 8 << 20)),
        rules=(MapRule((Pattern(CAMERA, None),), ("cam",)),
               MapRule((Pattern(DISPLAY, None),), ("disp",))),
    )
    core = ContiguousMemory.from_config(config, [RAM], translator=translator,
                                        devices=[CAMERA, DISPLAY])

    def read_phys(addr: int, size: int) -> bytes | None:
        for base, text in STRINGS.items():
            raw = text.encode() + b"\0"
            if base <= addr < base + 0x100:
                off = addr - base
                return (raw[off:] + b"\0" * size)[:size]
        if RAM[0] <= addr < RAM[0] + RAM[1]:
            return b"\xff" * size  # RAM full of non-NUL bytes: an unterminated string
        return None

    return CmaService(core, PHANDLES.get, lambda p: p if p in PHANDLES.values() else None,
                      read_phys)


def test_version_and_unknown_call() -> None:
    svc = make_service()
    assert svc.call(CmaCall.VERSION, [0] * 7)[0] == 0x0001_0000
    assert svc.call(0x8200_01FF, [0] * 7)[0] == u32(NOT_SUPPORTED)


def test_alloc_returns_phys_and_the_devices_own_bus_address() -> None:
    svc = make_service()
    status, phys, dma, size = svc.call(CmaCall.ALLOC, [0x10, 0, 640 * 480 * 2, 0, 0, 0, 0])
    assert status == 0
    assert size == 0x96000
    region = svc.core.region("cam")
    assert region.base <= phys
    assert phys + size <= region.end
    assert phys < 0x5000_0000  # placed where the camera can reach
    assert dma == phys - 0x4000_0000 != phys
    # the display sees the same bytes at another bus address
    status, disp_dma = svc.call(CmaCall.PHYS_TO_DMA, [0x11, phys, size, 0, 0, 0, 0])[:2]
    assert status == 0
    assert disp_dma == phys - 0x4000_0000 + 0xC000_0000
    status, cpu = svc.call(CmaCall.CPU_ADDR, [phys, 0, 0, 0, 0, 0, 0])[:2]
    assert status == 0
    assert cpu == phys - 0x4000_0000 + 0xC000_0000
    status, back = svc.call(CmaCall.DMA_TO_PHYS, [0x10, dma, 1, 0, 0, 0, 0])[:2]
    assert status == 0
    assert back == phys


def test_device_by_path_and_reference_counting() -> None:
    svc = make_service()
    status, phys, *_ = svc.call(CmaCall.ALLOC,
                                [0x4000_1000, 0, 4096, 0, FLAG_DEVICE_PATH, 0, 0])
    assert status == 0
    assert svc.calls[-1].device == CAMERA
    assert svc.call(CmaCall.GET, [phys, 0, 0, 0, 0, 0, 0])[:2] == [0, 2]
    assert svc.call(CmaCall.PUT, [phys, 0, 0, 0, 0, 0, 0])[0] == 0
    assert svc.call(CmaCall.PUT, [phys, 0, 0, 0, 0, 0, 0])[0] == 1
    assert svc.call(CmaCall.PUT, [phys, 0, 0, 0, 0, 0, 0])[0] == u32(-errno.ENOENT)


def test_info_reports_the_devices_regions() -> None:
    svc = make_service()
    count, lower, upper, total = svc.call(CmaCall.INFO, [0x11, 0, 0, 0, 0, 0, 0])
    region = svc.core.region("disp")
    assert (count, lower, upper, total) == (1, region.base, region.end, 8 << 20)


@pytest.mark.parametrize(("args", "status"), [
    ([0x99, 0, 4096, 0, 0], -errno.ENOENT),  # unknown phandle
    ([0x4000_1100, 0, 4096, 0, FLAG_DEVICE_PATH], -errno.ENOENT),  # unknown path
    ([0x10, 0, 0, 0, 0], -errno.EINVAL),  # zero size
    ([0x10, 0, 4096, 0x3000, 0], -errno.EINVAL),  # alignment not a power of two
    ([0x10, 0, 64 << 20, 0, 0], -errno.ENOMEM),  # bigger than the region
    ([0x10, 0, 4096, 0, 0x80], -errno.EINVAL),  # unknown flag
    ([0x9000_0000, 0, 4096, 0, FLAG_DEVICE_PATH], -errno.EFAULT),  # path not in RAM
    ([0x4000_2000, 0, 4096, 0, FLAG_DEVICE_PATH], -errno.EINVAL),  # unterminated string
])
def test_bad_calls_return_negative_status(args: list[int], status: int) -> None:
    svc = make_service()
    result = svc.call(CmaCall.ALLOC, [*args, 0, 0])
    assert result[0] == u32(status)
    assert svc.calls[-1].note  # the reason is recorded
    assert not list(svc.core.iter_chunks())


@settings(max_examples=60, deadline=None)
@given(st.integers(0x8200_0100, 0x8200_0107),
       st.lists(st.integers(0, 0xFFFF_FFFF), min_size=7, max_size=7))
def test_no_register_values_crash_the_service(fid: int, args: list[int]) -> None:
    svc = make_service()
    result = svc.call(fid, args)
    assert len(result) == 4
    assert all(0 <= r <= 0xFFFF_FFFF for r in result)
