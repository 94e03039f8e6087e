"""Hostile guests: random service calls and random register accesses never break the machine.

Two families, each driven by hypothesis with a fixed seed:

- SMCCC calls with random r0..r7 (the CMA SiP service, PSCI, unknown IDs), made
  the way the HVC/SMC hook makes them: registers in, ``call_service``, registers
  out. Invariants: nothing raises, r0..r3 come back as 32-bit values, guest RAM
  is not written, the CMA core's chunks stay inside its regions without overlap.
- Random (offset, size, value) reads and writes into every device model the
  registry builds for ``camsoc`` and ``virt``, through the bus's MMIO entry
  points, with virtual time moving in between. Invariants: nothing raises, reads
  fit their size, and every byte of RAM that changed was written by a DMA master
  through its own window and is in the DMA log.

RAM is shrunk to 16 MiB so the whole of it can be checked after every example.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emu.boards import load_board
from emu.devices.base import Device
from emu.devices.dma.camera import CameraDma
from emu.devices.registry import mmio_blocks
from emu.machine import Machine
from emu.services.cma import SIP_BASE
from emu.system import System

pytestmark = pytest.mark.emulator

RAM_BASE, RAM_SIZE = 0x4000_0000, 0x0100_0000
SETTINGS = settings(derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
U32 = st.integers(0, 0xFFFF_FFFF)


def small_machine(board: str) -> Machine:
    """The board with 16 MiB of RAM at 0x40000000 (every model, every DMA view kept)."""
    tree = load_board(board)
    memory = next(n for n in tree.iter_nodes()
                  if n.props.get("device_type", b"").rstrip(b"\0") == b"memory")
    cells = [RAM_BASE, RAM_SIZE] if len(memory.props["reg"]) == 8 else [0, RAM_BASE, 0, RAM_SIZE]
    memory.set_prop("reg", cells)
    return Machine(tree)


def ram(m: Machine) -> bytes:
    return bytes(m.bus.uc.mem_read(RAM_BASE, RAM_SIZE))


# --- SMCCC calls ---------------------------------------------------------------------------
STRINGS = {  # guest strings the calls may point at (physical addresses)
    RAM_BASE + 0x1000: b"/soc/cambus@10000000/camera@0\0",
    RAM_BASE + 0x1100: b"camera\0",
    RAM_BASE + 0x1200: b"\xff\xfe not ascii\0",
    RAM_BASE + 0x1300: b"x" * 300 + b"\0",
    RAM_BASE + RAM_SIZE - 8: b"unterm\0\0",
    RAM_BASE + RAM_SIZE - 4: b"abcd",  # runs off the end of RAM
}


@dataclass
class ServiceRig:
    machine: Machine
    system: System
    phandles: list[int]


def _service_rig() -> ServiceRig:
    m = small_machine("camsoc")
    system = System(m, "cma=cam=4M cma_map=camera=cam")
    for addr, data in STRINGS.items():
        m.bus.write(addr, data)
    phandles = [n.get_u32("phandle", 0) for n in m.tree.iter_nodes() if n.has_prop("phandle")]
    return ServiceRig(m, system, [p for p in phandles if p])


def _fids() -> st.SearchStrategy[int]:
    return st.one_of(
        st.integers(SIP_BASE - 1, SIP_BASE + 8),
        st.integers(0x8400_0000, 0x8400_0020),
        st.integers(0xC400_0000, 0xC400_0020),
        U32,
    )


def _arg(rig: ServiceRig, chunks: list[int]) -> st.SearchStrategy[int]:
    options = [U32, st.integers(0, 16), st.sampled_from(sorted(STRINGS)),
               st.integers(RAM_BASE, RAM_BASE + RAM_SIZE - 1),
               st.sampled_from([0, 1, 0x1000, 0x10_0000, 0x40_0000, 0xFFFF_F000])]
    if rig.phandles:
        options.append(st.sampled_from(rig.phandles))
    if chunks:
        options.append(st.sampled_from(chunks))
    return st.one_of(options)


def _check_core(system: System) -> None:
    spans = []
    for chunk in system.core.iter_chunks():
        region = chunk.region
        assert region.base <= chunk.phys
        assert chunk.phys + chunk.size <= region.base + region.size
        spans.append((chunk.phys, chunk.phys + chunk.size))
    spans.sort()
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start, "two live chunks overlap"


@pytest.fixture(scope="module")
def service_rig() -> ServiceRig:
    return _service_rig()


@settings(SETTINGS, max_examples=60)
@given(data=st.data())
def test_random_smccc_calls_never_raise(service_rig: ServiceRig, data: st.DataObject) -> None:
    rig = service_rig
    m, cpu = rig.machine, rig.machine.cpu
    before = ram(m)
    chunks = [c.phys for c in rig.system.core.iter_chunks()]
    for _ in range(data.draw(st.integers(1, 8))):
        regs = [data.draw(_fids())] + [data.draw(_arg(rig, chunks)) for _ in range(7)]
        if regs[0] & ~0x4000_0000 in (0x8400_0002, 0x8400_0008, 0x8400_0009):
            regs[0] = 0x8400_0000  # off and reset end the run: tested in test_guest_faults
        for i, v in enumerate(regs):
            cpu.set_reg(i, v)
        m.exceptions.call_service(data.draw(st.sampled_from(["hvc", "smc"])))
        out = [cpu.reg(i) for i in range(4)]
        assert all(0 <= v <= 0xFFFF_FFFF for v in out)
        if SIP_BASE <= regs[0] <= SIP_BASE + 7:
            record = rig.system.service.calls[-1]
            assert record.results[0] == out[0]
        chunks = [c.phys for c in rig.system.core.iter_chunks()]
    assert ram(m) == before
    _check_core(rig.system)
    assert m._stop is None


def test_cma_service_alloc_and_errors_through_the_hook(service_rig: ServiceRig) -> None:
    """The fixed part of the random test: what a sane and an insane call return."""
    m, cpu = service_rig.machine, service_rig.machine.cpu

    def call(*regs: int) -> list[int]:
        for i, v in enumerate((*regs, *(0,) * (8 - len(regs)))):
            cpu.set_reg(i, v)
        m.exceptions.call_service("smc")
        return [cpu.reg(i) for i in range(4)]

    path = RAM_BASE + 0x1000
    status, phys, dma, size = call(SIP_BASE + 1, path, 0, 0x2000, 0, 1)
    assert status == 0
    assert size == 0x2000
    assert dma == phys - RAM_BASE
    assert call(SIP_BASE + 1, RAM_BASE + 0x1200, 0, 0x1000, 0, 1)[0] == 0xFFFF_FFEA  # -EINVAL
    assert call(SIP_BASE + 1, RAM_BASE + RAM_SIZE - 4, 0, 0x1000, 0, 1)[0] == 0xFFFF_FFF2
    assert call(SIP_BASE + 3, phys)[0] == 1
    assert call(SIP_BASE + 3, phys)[0] == 0xFFFF_FFFE  # -ENOENT: already freed
    assert call(SIP_BASE + 8)[0] == 0xFFFF_FFFF


# --- device registers ----------------------------------------------------------------------
@dataclass
class Block:
    path: str
    start: int
    size: int
    device: Device
    dma: tuple[int, ...] = ()  # bus addresses inside the device's own DMA windows


def _blocks(m: Machine) -> Iterator[Block]:
    for path, entry in m.devices.items():
        view = m.views.get(path)
        dma = tuple(sorted({b + off for b, _c, _s in view.windows or ()
                            for off in (0, 0x1000, 0x80_0000, RAM_SIZE - 8)})) \
            if view is not None and view.windows else ()
        for (start, size), block in zip(entry.windows, mmio_blocks(entry.device), strict=False):
            yield Block(path, start, size, block, dma)


def _camera_program(index: int, block: Block) -> st.SearchStrategy[list[tuple[int, ...]]]:
    """Writes that get the camera capturing (tiny frames, often into its window), perturbed."""
    offs = {r.name: r.offset for r in block.device.registers}
    def mostly(good: st.SearchStrategy[int]) -> st.SearchStrategy[int]:
        return st.integers(0, 7).flatmap(lambda k: U32 if k == 7 else good)

    near = mostly(st.sampled_from(block.dma or (0,)))
    fields = [("WIDTH", mostly(st.sampled_from([2, 8, 16, 64]))),
              ("HEIGHT", mostly(st.integers(1, 8))),
              ("FORMAT", mostly(st.integers(0, 3))),
              ("STRIDE", mostly(st.sampled_from([0, 0, 128, 4096]))),
              ("FRAME_INTERVAL", st.integers(0, 50)),
              ("RING_SIZE", mostly(st.integers(1, 8))),
              ("IRQ_ENABLE", st.integers(0, 7))]
    writes = [st.tuples(st.just(offs[n]), v) for n, v in fields]
    writes += [st.tuples(st.just(offs["BUF_ADDR"] + 4 * k), near) for k in range(4)]
    writes += [st.tuples(st.just(offs["BUF_READY"]), st.integers(0, 0xFF)),
               st.tuples(st.just(offs["CTRL"]), st.sampled_from([1, 0, 1 << 31]))]
    regs = sorted({off for reg in block.device.registers for off, _ in reg.offsets()})
    geometry = [offs[n] for n in ("WIDTH", "HEIGHT", "FORMAT", "STRIDE", "RING_SIZE")]
    later = st.tuples(st.one_of(st.sampled_from(geometry), st.sampled_from(regs)),
                      st.one_of(st.integers(0, 16), U32))  # rewritten while running
    return st.tuples(st.tuples(*writes), st.lists(later, min_size=1, max_size=3)).map(
        lambda p: [*((index, off, 4, value, True) for off, value in p[0]), (-1, 10_000),
                   *((index, off, 4, value, True) for off, value in p[1]),
                   (index, offs["BUF_READY"], 4, 0xFFFF_FFFF, True), (-1, 10_000)])


def _ops(blocks: list[Block], buses: list[int]) -> st.SearchStrategy[list[tuple[int, ...]]]:
    def offsets(b: Block) -> st.SearchStrategy[int]:
        regs = sorted({off for reg in b.device.registers for off, _ in reg.offsets()}
                      & set(range(b.size)))
        near = [st.sampled_from(regs)] * 3 if regs else []
        return st.one_of(*near, st.integers(0, b.size - 1))

    values = st.one_of(U32, st.integers(0, 16), st.integers(0, 64), st.sampled_from(buses or [0]),
                       st.sampled_from([1, 3, 0xFF, 0x8000_0000, 0xFFFF_FFFF]))
    access = st.integers(0, len(blocks) - 1).flatmap(lambda i: st.tuples(
        st.just(i), offsets(blocks[i]), st.sampled_from([1, 2, 4]), values, st.booleans()))
    tick = st.tuples(st.just(-1), st.integers(0, 20_000))
    singles = st.one_of(access, access, access, tick).map(lambda op: [op])
    programs = [_camera_program(i, b) for i, b in enumerate(blocks)
                if isinstance(b.device, CameraDma)]
    step = st.one_of(singles, *programs) if programs else singles
    return st.lists(step, min_size=1, max_size=20).map(
        lambda steps: [op for ops in steps for op in ops])


def _check_dma(m: Machine, before: bytes) -> None:
    after = bytearray(ram(m))
    masters = dict(m.views.items())
    for rec in m.bus.dma_log.writes():
        view = masters[rec.master]
        assert rec.phys is not None
        assert view.to_phys(rec.bus) == rec.phys
        assert view.to_phys(rec.bus + rec.size - 1) == rec.phys + rec.size - 1
        assert rec.phys >= RAM_BASE
        assert rec.phys + rec.size <= RAM_BASE + RAM_SIZE
        lo = rec.phys - RAM_BASE
        after[lo:lo + rec.size] = before[lo:lo + rec.size]
    assert bytes(after) == before, "RAM changed outside the logged DMA writes"


def _device_test(board: str, ops: list[tuple[int, ...]]) -> None:
    m = small_machine(board)
    blocks = list(_blocks(m))
    before = ram(m)
    bus = m.bus
    for op in ops:
        if op[0] == -1:
            m.clock.advance_to(m.clock.now + op[1])
            continue
        index, offset, size, value, write = op
        b = blocks[index]
        addr = b.start + offset
        if write:
            bus._mmio_write(None, addr, size, value & ((1 << (8 * size)) - 1), 0)
        else:
            got = bus._mmio_read(None, addr, size, 0)
            assert 0 <= got < 1 << (8 * size)
    m.clock.advance_to(m.clock.now + 20_000)
    _check_dma(m, before)


def _board_blocks(board: str) -> tuple[list[Block], list[int]]:
    m = small_machine(board)
    blocks = list(_blocks(m))
    return blocks, sorted({bus for b in blocks for bus in b.dma})


CAMSOC_BLOCKS, CAMSOC_BUSES = _board_blocks("camsoc")
VIRT_BLOCKS, VIRT_BUSES = _board_blocks("virt")


def test_every_registry_model_is_exercised() -> None:
    names = {type(b.device).__name__ for b in CAMSOC_BLOCKS + VIRT_BLOCKS}
    assert {"Gic", "GicCpuInterface", "Pl011", "Pl031", "CameraDma", "Pl111"} <= names


@settings(SETTINGS, max_examples=50)
@given(ops=_ops(CAMSOC_BLOCKS, CAMSOC_BUSES))
def test_random_register_traffic_camsoc(ops: list[tuple[int, ...]]) -> None:
    _device_test("camsoc", ops)


@settings(SETTINGS, max_examples=30)
@given(ops=_ops(VIRT_BLOCKS, VIRT_BUSES))
def test_random_register_traffic_virt(ops: list[tuple[int, ...]]) -> None:
    _device_test("virt", ops)


def test_camera_frames_land_only_through_the_window() -> None:
    """A directed example of the invariant: a valid frame is logged and in RAM, nothing else."""
    m = small_machine("camsoc")
    cam = next(b for b in _blocks(m) if type(b.device).__name__ == "CameraDma")
    before = ram(m)
    offs = {r.name: r.offset for r in cam.device.registers}
    for name, value in (("WIDTH", 16), ("HEIGHT", 2), ("RING_SIZE", 1), ("FRAME_INTERVAL", 10),
                        ("BUF_ADDR", 0x2000), ("BUF_READY", 1), ("CTRL", 1)):
        m.bus._mmio_write(None, cam.start + offs[name], 4, value, 0)
    m.clock.advance_to(m.clock.now + 2000)
    writes = m.bus.dma_log.writes()
    assert writes
    assert writes[0].phys == RAM_BASE + 0x2000
    assert writes[0].size == 16 * 2 * 2
    assert ram(m) != before
    _check_dma(m, before)


def test_camera_registers_rewritten_while_running_drop_the_frame() -> None:
    """Regression: RING_SIZE/FORMAT/WIDTH changed after CTRL.ENABLE crashed the frame tick."""
    m = small_machine("camsoc")
    cam = next(b for b in _blocks(m) if type(b.device).__name__ == "CameraDma")
    offs = {r.name: r.offset for r in cam.device.registers}

    def write(name: str, value: int) -> None:
        m.bus._mmio_write(None, cam.start + offs[name], 4, value, 0)

    def read(name: str) -> int:
        return m.bus._mmio_read(None, cam.start + offs[name], 4, 0)

    write("FRAME_INTERVAL", 10)
    write("CTRL", 1)  # the reset geometry is valid: the engine starts
    assert read("STATUS") & 1
    drops = 0
    for name, value in (("RING_SIZE", 16), ("RING_SIZE", 0xFFFF_FFFF), ("FORMAT", 7),
                        ("WIDTH", 0), ("HEIGHT", 0)):
        write(name, value)
        write("BUF_READY", 0xFFFF_FFFF)
        m.clock.advance_to(m.clock.now + 1000)
        assert read("DROP_COUNT") > drops, name
        drops = read("DROP_COUNT")
        write("RING_SIZE", 4)
        write("FORMAT", 0)
        write("WIDTH", 16)
        write("HEIGHT", 2)
    assert any("set while running" in e for e in cam.device.log.guest_errors)
    assert m.bus.dma_log.records == [] or all(r.kind == "refused" or r.master == cam.path
                                              for r in m.bus.dma_log.records)
