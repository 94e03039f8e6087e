"""Run tracing: every category on small guests, the filters, determinism, nothing when off."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emu import trace
from emu.cli import main
from emu.devices.dma.testpattern import PixelFormat
from emu.errors import ConfigurationError
from emu.machine import Machine
from emu.system import System
from emu.trace import Tracer, parse_categories, parse_range, parse_time, parse_window

ROOT = Path(__file__).resolve().parents[2]
SELFTEST = ROOT / "firmware" / "prebuilt" / "selftest.elf"
RAM = 0x4000_0000
LINE = re.compile(r"^ {0,12}\d+ (cpu |mmio|dma |irq |svc ) \S")

# ARM: mov r1,#0; add r0,pc,#1; bx r0 -> Thumb at +0xc: movs r0,#1; mov.w r1,#2;
# movw r0,#8; movt r0,#0x8400 (PSCI SYSTEM_OFF); movs r1,#0; hvc #0; b .
THUMB_GUEST = bytes.fromhex("0010a0e3" "01008fe2" "10ff2fe1"
                            "0120" "4ff00201" "40f20800" "c8f20040" "0021" "e0f70080" "fee7")


def lines_of(text: str, category: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln[14:18].rstrip() == category]


def tick(line: str) -> int:
    return int(line.split(maxsplit=1)[0])


def run_selftest(tmp_path: Path, name: str, *extra: str) -> str:
    out = tmp_path / name
    rc = main(["run", "--board", "camsoc", "--elf", str(SELFTEST), "--quiet",
               "--trace-file", str(out), *extra], stdout=io.StringIO())
    assert rc == 0
    return out.read_text()


# option parsing (pure Python) ---------------------------------------------------------
def test_categories() -> None:
    assert parse_categories("cpu, MMIO") == {"cpu", "mmio"}
    assert parse_categories("all") == set(trace.CATEGORIES)
    with pytest.raises(ConfigurationError, match="not 'bogus'"):
        parse_categories("cpu,bogus")
    with pytest.raises(ConfigurationError):
        parse_categories(" , ")


@settings(max_examples=60, deadline=None)
@given(st.integers(0, (1 << 32) - 2), st.integers(1, 1 << 20))
def test_range_forms_agree(lo: int, size: int) -> None:
    hi = min(lo + size, 1 << 32)
    assert parse_range(f"0x{lo:x}-0x{hi:x}") == (lo, hi)
    assert parse_range(f"{lo}+{hi - lo}") == (lo, hi)


def test_bad_ranges_and_windows_name_the_value() -> None:
    for text, shown in (("0x100-0x100", "0x100-0x100"), ("0x200-0x100", "0x200-0x100"),
                        ("zzz-0x10", "zzz"), ("0x100", "0x100")):
        with pytest.raises(ConfigurationError, match=re.escape(repr(shown))):
            parse_range(text)
    with pytest.raises(ConfigurationError, match="'2ms-1ms'"):
        parse_window("2ms-1ms", 100_000_000)
    with pytest.raises(ConfigurationError, match="'1 hour'"):
        parse_time("1 hour", 100_000_000)


def test_times_and_windows() -> None:
    hz = 100_000_000
    assert parse_time("1234", hz) == 1234
    assert parse_time("1.5ms", hz) == 150_000
    assert parse_time("2s", hz) == 200_000_000
    assert parse_time("10us", hz) == 1_000
    assert parse_time("30ns", hz) == 3
    assert parse_window("1ms-2ms", hz) == (100_000, 200_000)
    assert parse_window("1ms-", hz) == (100_000, None)
    assert parse_window("-500", hz) == (0, 500)


def test_names() -> None:
    assert trace.short_name("/soc/cambus@10000000/camera@0") == "camera"
    assert trace.short_name("/intc@8000000#1") == "intc#1"
    assert trace.service_name(0x8400_0008) == "PSCI_SYSTEM_OFF"
    assert trace.service_name(0xC400_0003) == "PSCI_CPU_ON"
    assert trace.service_name(0x8200_0101) == "CMA_ALLOC"
    assert trace.service_name(0x8600_0000) == "-"


# categories on the selftest firmware ----------------------------------------------------
@pytest.mark.emulator
def test_mmio_irq_svc_on_the_selftest(tmp_path: Path) -> None:
    text = run_selftest(tmp_path, "a.trace", "--trace", "mmio,irq,svc")
    assert all(LINE.match(ln) for ln in text.splitlines())
    mmio = lines_of(text, "mmio")
    # register names come from the device's table
    assert any(re.search(r" 0x09000000 pl011 +DR +W4 0x0000005b$", ln) for ln in mmio)
    assert any(re.search(r" 0x08000000 intc +CTLR +W4 ", ln) for ln in mmio)
    assert any(re.search(r" 0x0801000c intc#1 +IAR +R4 0x0000001b$", ln) for ln in mmio)
    # the five timer interrupts (PPI 27), with the PC they interrupted
    irqs = lines_of(text, "irq")
    assert len(irqs) == 5
    assert all(re.search(r" irq  0x[0-9a-f]{8} \S+ +irq 27 -> 0x[0-9a-f]{8}$", ln)
               for ln in irqs)
    svc = lines_of(text, "svc")
    assert any(" hvc 0x84000000 PSCI_VERSION() -> 0x10000" in ln for ln in svc)
    assert any(re.search(r" svc #0x5a -> 0x[0-9a-f]{8}$", ln) for ln in svc)
    assert any(re.search(r" selftest_udf_insn +undef -> ", ln) for ln in svc)
    assert any(re.search(r" dabort far 0x[0-9a-f]{8} fsr 0x[0-9a-f]{3} -> ", ln) for ln in svc)
    assert svc[-1].split()[2:3] == ["0x40201ed0"]
    assert svc[-1].endswith("hvc 0x84000008 PSCI_SYSTEM_OFF(0x0) -> 0x0")
    times = [tick(ln) for ln in text.splitlines()]
    assert times == sorted(times)


@pytest.mark.emulator
def test_cpu_lines_carry_symbols_and_disassembly(tmp_path: Path) -> None:
    text = run_selftest(tmp_path, "c.trace", "--trace", "cpu",
                        "--trace-range", "0x40201ebc-0x40201ed4")
    cpu = lines_of(text, "cpu")
    assert [ln.split()[2] for ln in cpu] == [f"0x{a:08x}" for a in range(0x40201ebc,
                                                                         0x40201ed4, 4)]
    assert cpu[0].split()[3] == "fw_power_off"
    assert re.search(r" 0x40201ec0 fw_power_off\+0x4 +e59f201c   ldr r2, \[pc, #0x1c\]$",
                     cpu[1])
    assert cpu[-1].endswith("e1400070   hvc #0")


@pytest.mark.emulator
def test_thumb_guest_is_disassembled_as_thumb(tmp_path: Path) -> None:
    image = tmp_path / "thumb.bin"
    image.write_bytes(THUMB_GUEST)
    m = Machine("camsoc")
    m.load_raw(image, RAM)
    out = io.StringIO()
    tracer = trace.install(m, "cpu,svc", stream=out)
    result = m.run(max_instructions=1000)
    tracer.close()
    assert result.reason == "poweroff"
    cpu = [ln.split(None, 4)[2:] for ln in lines_of(out.getvalue(), "cpu")]
    assert [c[0] for c in cpu] == ["0x40000000", "0x40000004", "0x40000008", "0x4000000c",
                                   "0x4000000e", "0x40000012", "0x40000016", "0x4000001a",
                                   "0x4000001c"]
    assert cpu[0][1:] == ["-", "e3a01000   mov r1, #0"]
    assert cpu[3][2] == "2001       movs r0, #1"
    assert cpu[4][2] == "f04f 0102  mov.w r1, #2"
    assert cpu[8][2] == "f7e0 8000  hvc.w #0"
    svc = lines_of(out.getvalue(), "svc")
    assert len(svc) == 1
    assert svc[0].split()[2] == "0x4000001c"
    assert svc[0].endswith("hvc 0x84000008 PSCI_SYSTEM_OFF(0x0) -> 0x0")


# DMA ---------------------------------------------------------------------------------
W, H = 64, 48
SIZE = W * H * 2


def start_camera(system: System, addresses: list[int]) -> None:
    cam = system.device("camera")
    regs = {r.name: r.offset for r in cam.registers}
    for name, value in (("WIDTH", W), ("HEIGHT", H), ("FORMAT", int(PixelFormat.RGB565)),
                        ("FRAME_INTERVAL", 1000)):
        cam.write(regs[name], 4, value)
    for i, a in enumerate(addresses):
        cam.write(regs["BUF_ADDR"] + 4 * i, 4, a)
    cam.write(regs["RING_SIZE"], 4, len(addresses))
    cam.write(regs["BUF_READY"], 4, (1 << len(addresses)) - 1)
    cam.write(regs["CTRL"], 4, 1)


@pytest.mark.emulator
def test_a_dma_line_per_camera_frame() -> None:
    m = Machine("camsoc")
    system = System(m, "cma=cam=16M cma_map=camera=cam")
    chunks = [system.alloc("camera", SIZE) for _ in range(3)]
    out = io.StringIO()
    tracer = trace.install(m, "dma", stream=out)
    start_camera(system, [c.dma_addr for c in chunks])
    m.clock.advance_by(m.clock.ticks_from_ns(3_000_000))
    tracer.close()
    dma = lines_of(out.getvalue(), "dma")
    assert len(dma) == 3
    for ln, c in zip(dma, chunks, strict=True):
        assert ln.split(None, 2)[2] == (f"camera write bus 0x{c.dma_addr:08x} "
                                        f"phys 0x{c.phys:08x} +0x{SIZE:x} ok")


@pytest.mark.emulator
def test_refused_dma_shows_the_checkers_verdict() -> None:
    m = Machine("camsoc")
    system = System(m, "cma=cam=16M cma_map=camera=cam")
    chunk = system.alloc("camera", SIZE)
    out = io.StringIO()
    tracer = trace.install(m, "dma", stream=out)
    start_camera(system, [chunk.phys])  # a physical address where the bus address belongs
    m.clock.advance_by(m.clock.ticks_from_ns(2_000_000))
    tracer.close()
    dma = lines_of(out.getvalue(), "dma")
    assert len(dma) == 1
    assert f"camera write bus 0x{chunk.phys:08x} phys " in dma[0]
    assert " refused [phys-for-bus] " in dma[0]
    assert f"the bus address is 0x{chunk.dma_addr:08x}" in dma[0]


# filters -----------------------------------------------------------------------------------
@pytest.mark.emulator
def test_range_limits_mmio_to_one_device(tmp_path: Path) -> None:
    text = run_selftest(tmp_path, "r.trace", "--trace", "mmio",
                        "--trace-range", "0x09000000+0x1000")
    mmio = lines_of(text, "mmio")
    assert len(mmio) > 100
    assert all(" pl011 " in ln for ln in mmio)


@pytest.mark.emulator
def test_window_limits_every_category(tmp_path: Path) -> None:
    text = run_selftest(tmp_path, "w.trace", "--trace", "all", "--trace-window", "16ms-18ms")
    lines = text.splitlines()
    assert {tick(ln) for ln in lines} <= set(range(1_600_000, 1_800_000))
    assert len(lines_of(text, "irq")) == 2  # of the five timer interrupts
    assert lines_of(text, "cpu")
    assert lines_of(text, "mmio")


@pytest.mark.emulator
def test_the_code_hook_follows_the_window() -> None:
    m = Machine("camsoc")
    m.load_elf(SELFTEST)
    tracer = trace.install(m, "cpu", stream=io.StringIO(), window="1ms-2ms")
    assert not tracer.hooked
    m.run(max_instructions=100_000)  # [0, 1 ms): no hook, no line
    assert not tracer.hooked
    assert tracer.counts["cpu"] == 0
    m.run(max_instructions=100_000)
    handle = tracer._code_hook
    assert tracer.hooked
    assert handle in m.cpu.uc._callbacks
    assert tracer.counts["cpu"] > 0
    m.run(max_instructions=200_000)
    assert not tracer.hooked
    assert handle not in m.cpu.uc._callbacks
    tracer.close()


# determinism and cost when off -----------------------------------------------------------
@pytest.mark.emulator
def test_same_run_same_trace(tmp_path: Path) -> None:
    args = ("--trace", "cpu,mmio,irq,svc,dma", "--trace-range", "0x40201000-0x40202000")
    a = run_selftest(tmp_path, "1.trace", *args)
    b = run_selftest(tmp_path, "2.trace", *args)
    assert a == b
    assert len(lines_of(a, "cpu")) > 1000


@pytest.mark.emulator
def test_nothing_is_installed_without_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Tracer, machine: Machine) -> None:
        raise AssertionError("a tracer was attached without --trace")

    monkeypatch.setattr(Tracer, "attach", refuse)
    assert main(["run", "--board", "camsoc", "--elf", str(SELFTEST), "--quiet"],
                stdout=io.StringIO()) == 0
    monkeypatch.undo()
    m = Machine("camsoc")
    assert m.tracer is None
    assert m.bus.tracer is None
    assert m.exceptions.tracer is None
    hooks = len(m.cpu.uc._callbacks)
    tracer = trace.install(m, "mmio,dma,irq,svc", stream=io.StringIO())
    assert len(m.cpu.uc._callbacks) == hooks  # no Unicorn hook without cpu
    assert m.bus.tracer is tracer
    assert m.exceptions.tracer is tracer
    tracer.close()
    assert m.tracer is None
    assert m.bus.tracer is None
    assert m.exceptions.tracer is None
    tracer = trace.install(m, "cpu", stream=io.StringIO())
    assert len(m.cpu.uc._callbacks) == hooks + 1
    assert m.bus.tracer is None
    tracer.close()
    assert len(m.cpu.uc._callbacks) == hooks
