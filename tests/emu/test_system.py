"""The CMA core on the machine, driven from Python only: no firmware, no CPU instructions.

The camera is programmed through its registers, virtual time is stepped, and the
harness must say where every frame landed, and name the bug when a driver programs
the wrong kind of address.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from emu.devices.dma.camera import CameraDma
from emu.devices.dma.testpattern import PixelFormat, check_frame
from emu.machine import Machine
from emu.system import System

pytestmark = pytest.mark.emulator

CMA = "cma=cam=16M;disp=8M cma_map=camera=cam;clcd=disp"
BOARDS = {"camsoc": 0x0000_0000, "camsoc-alias": 0xC000_0000}  # camera bus address of RAM
RAM = 0x4000_0000
W, H = 64, 48
SIZE = W * H * 2


class Driver:
    """A host-side camera driver: what firmware would do, written in Python."""

    def __init__(self, board: str, cmdline: str = CMA) -> None:
        self.machine = Machine(board)
        self.system = System(self.machine, cmdline)
        self.cam: CameraDma = self.system.device("camera")
        self.regs = {r.name: r for r in self.cam.registers}

    def w(self, name: str, value: int, index: int = 0) -> None:
        self.cam.write(self.regs[name].offset + 4 * index, 4, value)

    def r(self, name: str, index: int = 0) -> int:
        return self.cam.read(self.regs[name].offset + 4 * index, 4)

    def start(self, addresses: list[int]) -> None:
        self.w("WIDTH", W)
        self.w("HEIGHT", H)
        self.w("FORMAT", int(PixelFormat.RGB565))
        self.w("FRAME_INTERVAL", 1000)
        for i, a in enumerate(addresses):
            self.w("BUF_ADDR", a, i)
        self.w("RING_SIZE", len(addresses))
        self.w("BUF_READY", (1 << len(addresses)) - 1)
        self.w("IRQ_ENABLE", 0b111)
        self.w("CTRL", 1)

    def step_frames(self, n: int) -> None:
        clock = self.machine.clock
        clock.advance_by(clock.ticks_from_ns(n * 1_000_000))


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_frames_land_in_chunks_at_the_devices_bus_address(board: str) -> None:
    d = Driver(board)
    chunks = [d.system.alloc("camera", SIZE) for _ in range(3)]
    for c in chunks:
        assert c.dma_addr == c.phys - RAM + BOARDS[board]
        assert c.dma_addr != c.phys
        assert c.cpu_addr == c.phys - RAM + 0x8000_0000
    d.start([c.dma_addr for c in chunks])
    d.step_frames(3)
    assert d.r("FRAME_COUNT") == 3
    for seq, c in enumerate(chunks):
        data = d.machine.bus.read(c.phys, SIZE)
        assert check_frame(data, W, H, PixelFormat.RGB565, expect_seq=seq).ok
    records = d.system.frame_records()
    assert [r["phys_addr"] for r in records] == [c.phys for c in chunks]
    assert [r["cpu_addr"] for r in records] == [c.cpu_addr for c in chunks]
    assert all(r["landed"] for r in records)
    assert d.system.failures() == []
    # the same buffer has a different bus address for the display
    assert chunks[0].dma_addr_for("clcd") == chunks[0].phys - RAM + 0xC000_0000


def test_regions_are_published_in_the_guest_tree() -> None:
    d = Driver("camsoc")
    tree = d.machine.tree
    pools = tree.find("/reserved-memory")
    assert pools is not None
    cam_region = d.system.core.region("cam")
    node = pools.child(f"cam@{cam_region.base:x}")
    assert node is not None
    assert "reusable" in node.props
    assert node.reg == [(cam_region.base, cam_region.size)]
    camera = tree.find("/soc/cambus@10000000/camera@0")
    assert camera is not None
    assert camera.get_cells("memory-region") == [node.phandle]
    # placed where the camera (256 MiB window) can reach
    assert cam_region.end <= RAM + 0x1000_0000


@pytest.mark.parametrize(("board", "bug", "verdict"), [
    ("camsoc", "phys", "phys-for-bus"),
    ("camsoc", "virt", "virt-for-bus"),
    ("camsoc", "alias", "wrong-alias"),
    ("camsoc-alias", "phys", "phys-for-bus"),
    ("camsoc-alias", "virt", "virt-for-bus"),
    ("camsoc-alias", "alias", "wrong-alias"),
])
def test_wrong_address_is_refused_and_named(board: str, bug: str, verdict: str) -> None:
    d = Driver(board)
    chunk = d.system.alloc("camera", SIZE)
    before = d.machine.bus.read(chunk.phys, SIZE)
    programmed = {"phys": chunk.phys, "virt": chunk.cpu_addr,
                  "alias": chunk.dma_addr ^ 0xC000_0000}[bug]
    d.start([programmed])
    d.step_frames(2)
    assert d.r("IRQ_STATUS") & 0b10, "bus error raised"
    assert d.r("ERROR_ADDR") == programmed
    assert d.r("FRAME_COUNT") == 0
    violations = d.system.checker.violations
    assert [v.verdict for v in violations] == [verdict]
    assert f"0x{chunk.dma_addr:08x}" in violations[0].detail, "the right address is named"
    assert d.machine.bus.read(chunk.phys, SIZE) == before, "nothing written"
    assert d.system.failures()


def test_use_after_put_is_refused_and_named() -> None:
    d = Driver("camsoc")
    a, b = d.system.alloc("camera", SIZE), d.system.alloc("camera", SIZE)
    d.start([a.dma_addr, b.dma_addr])
    d.step_frames(1)
    assert d.r("FRAME_COUNT") == 1
    assert d.system.put(b.phys) is True  # freed while still in the ring
    d.step_frames(1)
    assert d.r("IRQ_STATUS") & 0b10
    (v,) = d.system.checker.violations
    assert v.verdict == "use-after-put"
    assert v.phys == b.phys


def test_write_outside_reserved_memory_is_refused() -> None:
    d = Driver("camsoc")
    d.start([0x0010_0000])  # inside the camera's window (phys 0x40100000), no CMA region there
    d.step_frames(1)
    (v,) = d.system.checker.violations
    assert v.verdict == "outside-reserved"
    assert v.phys == RAM + 0x0010_0000


def test_pngs_show_the_frames_and_the_memory_map(tmp_path: Path) -> None:
    d = Driver("camsoc")
    d.system.keep_frames(2)
    chunks = [d.system.alloc("camera", SIZE) for _ in range(3)]
    d.start([c.dma_addr for c in chunks])
    d.step_frames(3)  # frames 0, 1, 2; the last two are kept
    written = d.system.write_pngs(tmp_path)
    names = sorted(p.name for p in written)
    assert names == ["camera-frame0001.png", "camera-frame0002.png", "memory-map.png",
                     "memory-timeline.png"]
    frame = Image.open(tmp_path / "camera-frame0001.png")
    assert frame.size == (W, H)
    colors = frame.getcolors(maxcolors=1 << 16)
    assert colors is not None
    assert len(colors) > 4, "the test pattern, not a blank image"


def test_unreachable_configuration_fails_before_boot() -> None:
    from cma.errors import CMAError

    with pytest.raises(CMAError, match="DMA reach of its devices"):
        Driver("camsoc", "cma=cam=300M cma_map=camera=cam")  # the window is 256 MiB


def test_lifetimes_follow_host_allocations_and_releases() -> None:
    d = Driver("camsoc")
    a = d.system.alloc("camera", SIZE)
    d.step_frames(1)
    b = d.system.alloc("clcd", 2 * SIZE)
    d.step_frames(1)
    assert d.system.put(a.phys) is True
    (first, second) = sorted(d.system.lifetimes(), key=lambda lt: lt.start)
    assert (first.phys, first.device, first.region) == (a.phys, "camera", "cam")
    assert first.end is not None
    assert first.end > first.start
    assert (second.phys, second.device, second.region, second.end) == (b.phys, "clcd", "disp", None)


@pytest.mark.parametrize(("page_offset", "expected", "status"), [
    ((0xC000_0000, 0x8000_0000), 0x8F00_0000, 0),  # Linux's base is tried first, not mapped
    ("auto", 0x8F00_0000, 0),
    # the guest does not map RAM there: no CPU address rather than a guess, and the
    # firmware, whose CPU_ADDR call then fails, refuses to capture
    (0xC000_0000, None, 1),
])
def test_cpu_addresses_follow_the_guests_own_page_tables(page_offset: object,
                                                         expected: int | None,
                                                         status: int) -> None:
    from emu.dt import guest

    root = Path(__file__).resolve().parents[2]
    machine = Machine("camsoc")
    machine.load_elf(root / "firmware" / "prebuilt" / "capture.elf")
    guest.set_bootargs(machine.tree, "frames=2 width=160 height=120")
    system = System(machine, "cma=cam=16M cma_map=camera=cam",
                    page_offset=page_offset)  # type: ignore[arg-type]
    assert machine.run(max_seconds=60).exit_status == status
    assert machine.exceptions.mmu_enabled(), "the firmware ends with its MMU on"
    assert system.translator.phys_to_virt(0x4F00_0000) == expected
