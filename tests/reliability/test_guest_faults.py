"""Guests that go wrong: every abnormal end is a stop with a diagnosis, never a hang or a traceback.

Each scenario is a small hand-written guest assembled at test time. The checks
look at the run's stop reason and at :func:`emu.diagnosis.diagnose`: the PC,
the exception that could not be taken, the fault address and what it lies in,
the interrupt that stays pending, the DMA refusal.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pytest

from emu.cli import main
from emu.devices.dma.camera import IRQ_BUS_ERROR, CameraDma
from emu.diagnosis import diagnose, needs_diagnosis
from emu.machine import Machine
from emu.services import psci
from emu.services.smccc import NOT_SUPPORTED, Call
from emu.system import System
from tests.emu.machine import assemble

pytestmark = [pytest.mark.emulator, pytest.mark.toolchain]

HOLE = 0x3000_0000  # nothing is mapped there on virt or camsoc


def _sym(m: Machine, name: str) -> int:
    assert m.symbols is not None
    addr = m.symbols.symbol(name)
    assert addr is not None, name
    return addr & ~1


def _machine(tmp_path: Path, src: str, board: str = "virt", name: str = "guest",
             max_slice: int | None = None) -> Machine:
    m = Machine(board, max_slice=max_slice)
    m.load_elf(assemble(tmp_path, src, name))
    return m


# --- undefined instruction, no handler -----------------------------------------------------
UNDEF = """
.syntax unified
.arm
.global _start
_start:
    mov r0, #1
    mov r1, #2
bad_insn:
    udf #5
    b .
"""


def test_undefined_instruction_without_vectors_ends_as_fault(tmp_path: Path) -> None:
    m = _machine(tmp_path, UNDEF)
    result = m.run(max_instructions=5_000_000)
    bad = _sym(m, "bad_insn")
    assert result.reason == "fault"
    assert result.instructions <= m.max_slice  # the first slice: no slide through empty flash
    assert m.exceptions.fatal_kind == "no-handler"
    assert needs_diagnosis(result)
    d = diagnose(m, result)
    assert d.data["pc"] == bad
    assert d.data["failed_exception"]["kind"] == "undef"
    assert d.data["failed_exception"]["address"] == bad
    at_pc = [i for i in d.data["disassembly"] if i["at_pc"]]
    assert at_pc
    assert at_pc[0]["text"].startswith("udf")
    assert len(d.data["disassembly"]) >= 3  # context on both sides
    assert f"0x{bad:08x}" in d.text
    assert "udf" in d.text
    assert "no handler" in d.text
    assert "bad_insn" in d.data["symbol"]


def test_thumb_undefined_instruction_is_disassembled_as_thumb(tmp_path: Path) -> None:
    src = """
.syntax unified
.arm
.global _start
_start:
    adr r0, thumb_code + 1
    bx r0
.thumb
.thumb_func
thumb_code:
    movs r1, #1
    adds r1, r1, #2
bad_insn:
    udf #3
    b .
"""
    m = _machine(tmp_path, src)
    result = m.run(max_instructions=100_000)
    assert m.exceptions.fatal_kind == "no-handler"
    d = diagnose(m, result)
    assert d.data["instruction_set"] == "thumb"
    assert d.data["pc"] == _sym(m, "bad_insn")
    texts = [i["text"] for i in d.data["disassembly"]]
    at_pc = next(i for i in d.data["disassembly"] if i["at_pc"])
    assert at_pc["text"].startswith("udf")
    assert at_pc["bytes"] == "03de"  # the 16-bit encoding, not an ARM word
    assert any(t.startswith("adds") for t in texts)


def test_emu_run_prints_and_stores_the_diagnosis(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    elf = assemble(tmp_path, UNDEF, "undef")
    out = tmp_path / "r.json"
    rc = main(["run", "--board", "virt", "--elf", str(elf), "--json", str(out),
               "--max-instructions", "100000"], stdout=io.StringIO())
    assert rc == 1
    err = capsys.readouterr().err
    assert "diagnosis:" in err
    assert "udf" in err
    doc = json.loads(out.read_text())
    assert doc["schema"] == "emu-run/1"
    diag = doc["diagnosis"]
    assert diag["reason"] == "fault"
    assert diag["fault_kind"] == "no-handler"
    assert diag["pc"] == doc["result"]["pc"] & ~1


def test_successful_run_has_no_diagnosis(tmp_path: Path) -> None:
    src = """
.syntax unified
.arm
.global _start
_start:
    ldr r0, =0x84000008
    mov r1, #0
    hvc #0
    b .
"""
    elf = assemble(tmp_path, src, "off")
    out = tmp_path / "r.json"
    assert main(["run", "--board", "virt", "--elf", str(elf), "--json", str(out)],
                stdout=io.StringIO()) == 0
    assert json.loads(out.read_text())["diagnosis"] is None


# --- double fault ------------------------------------------------------------------------
DOUBLE = f"""
.syntax unified
.arm
.global _start
vectors:
    b _start
    b .
    b .
    b .
    b dabt_h
    b .
    b .
    b .
_start:
    ldr r0, =vectors
    mcr p15, 0, r0, c12, c0, 0
    cps #0x17
    ldr sp, =abt_stack
    cps #0x13
    ldr r1, =0x{HOLE:x}
first_fault:
    ldr r2, [r1]
    b .
dabt_h:
    push {{r0-r3}}
    ldr r3, =0x{HOLE + 0x40:x}
second_fault:
    ldr r0, [r3]
    pop {{r0-r3}}
    subs pc, lr, #4
.ltorg
.data
.space 256
abt_stack:
"""


def test_abort_inside_the_abort_handler_is_a_double_fault(tmp_path: Path) -> None:
    m = _machine(tmp_path, DOUBLE)
    result = m.run(max_instructions=1_000_000)
    first, second = _sym(m, "first_fault"), _sym(m, "second_fault")
    assert result.reason == "fault"
    assert m.exceptions.fatal_kind == "double-fault"
    assert "double fault" in result.message
    d = diagnose(m, result)
    df = d.data["double_fault"]
    assert df["first"]["kind"] == "dabort"
    assert df["first"]["address"] == first
    assert df["first"]["fault_address"] == HOLE
    assert df["second"]["kind"] == "dabort"
    assert df["second"]["address"] == second
    assert df["second"]["fault_address"] == HOLE + 0x40
    assert d.data["pc"] == second
    assert d.data["mode"] == "abt"
    assert d.data["fault_registers"]["dfar"] == HOLE + 0x40
    assert d.data["fault_registers"]["dfsr"]["meaning"] == "synchronous external abort"
    assert f"0x{first:08x}" in d.text
    assert f"0x{second:08x}" in d.text


def test_vectors_in_a_hole_end_as_a_double_fault_naming_the_undef(tmp_path: Path) -> None:
    src = f"""
.syntax unified
.arm
.global _start
_start:
    ldr r0, =0x{HOLE:x}
    mcr p15, 0, r0, c12, c0, 0
bad_insn:
    udf #1
"""
    m = _machine(tmp_path, src)
    result = m.run(max_instructions=1_000_000)
    assert result.reason == "fault"
    assert result.instructions <= m.max_slice
    assert m.exceptions.fatal_kind == "double-fault"
    d = diagnose(m, result)
    assert d.data["recent_exceptions"][0]["kind"] == "undef"
    assert d.data["recent_exceptions"][0]["address"] == _sym(m, "bad_insn")
    assert d.data["double_fault"]["second"]["kind"] == "pabort"


# --- runaway loop -----------------------------------------------------------------------
LOOP = """
.syntax unified
.arm
.global _start
_start:
    mov r0, #0
spin:
    add r0, r0, #1
    b spin
"""


def test_runaway_loop_ends_on_the_instruction_budget(tmp_path: Path) -> None:
    m = _machine(tmp_path, LOOP)
    result = m.run(max_instructions=300_000)
    spin = _sym(m, "spin")
    assert result.reason == "max-instructions"
    assert 300_000 <= result.instructions < 300_016  # a slice may finish its block
    d = diagnose(m, result)
    assert d.data["pc"] in (spin, spin + 4)
    assert any(i["text"].startswith("b ") for i in d.data["disassembly"])
    assert "spin" in d.data["symbol"]


def test_runaway_loop_ends_on_the_virtual_time_budget(tmp_path: Path) -> None:
    m = _machine(tmp_path, LOOP)
    result = m.run(max_virtual_seconds=0.003)
    assert result.reason == "max-virtual-seconds"
    end = int(0.003 * m.clock.hz)
    assert end <= result.ticks < end + 16  # a slice may finish its block
    d = diagnose(m, result)
    assert d.data["pc"] in (_sym(m, "spin"), _sym(m, "spin") + 4)
    again = m.run(max_virtual_seconds=0.001)  # a budget counts from each call
    assert again.reason == "max-virtual-seconds"
    assert result.ticks + int(0.001 * m.clock.hz) <= again.ticks < end + 100_032


# --- stack overflow into reserved memory ----------------------------------------------------
CMA_BASE, CMA_SIZE = 0x4800_0000, 0x0100_0000
STACK = f"""
.syntax unified
.arm
.global _start
_start:
    @ identity sections: flash (vectors) and RAM; the CMA region is mapped read-only,
    @ so a stack that grows into it faults on the first push there
    ldr r0, =ttb
    ldr r2, =0x00000c02              @ section, AP=0b011 (read/write), domain 0
    mov r4, r2
    str r4, [r0]                     @ VA 0 -> PA 0 (flash)
    ldr r1, =0x40000000
    mov r3, #512
1:  orr r4, r1, r2
    cmp r1, #0x{CMA_BASE:x}
    blo 2f
    cmp r1, #0x{CMA_BASE + CMA_SIZE:x}
    bhs 2f
    ldr r4, =0x00008402              @ AP=0b101: privileged read-only
    orr r4, r4, r1
2:  str r4, [r0, r1, lsr #18]
    add r1, r1, #0x100000
    subs r3, r3, #1
    bne 1b
    mcr p15, 0, r0, c2, c0, 0        @ TTBR0
    mov r1, #0
    mcr p15, 0, r1, c2, c0, 2        @ TTBCR
    ldr r1, =0x55555555
    mcr p15, 0, r1, c3, c0, 0        @ DACR: clients
    mrc p15, 0, r1, c1, c0, 0
    orr r1, r1, #1
    mcr p15, 0, r1, c1, c0, 0        @ MMU on
    isb
    ldr sp, =0x{CMA_BASE + CMA_SIZE + 0x800:x}
recurse:
    push {{r4-r11, lr}}
    bl recurse
.ltorg
.data
.align 14
ttb: .space 16384
"""


def test_stack_overflow_into_a_cma_region_is_named(tmp_path: Path) -> None:
    m = _machine(tmp_path, STACK, board="camsoc")
    system = System(m, "cma=cam=16M@0x48000000 cma_map=camera=cam")
    regions = [(r.name, r.base, r.size) for r in system.core.regions]
    assert ("cam", CMA_BASE, CMA_SIZE) in regions
    result = m.run(max_instructions=2_000_000)
    assert result.reason == "fault"
    d = diagnose(m, result, system)
    dfar = d.data["fault_registers"]["dfar"]
    assert CMA_BASE <= dfar < CMA_BASE + CMA_SIZE
    assert d.data["fault_registers"]["dfsr"]["meaning"] == "permission fault (section)"
    assert d.data["fault_registers"]["dfsr"]["write"]
    where = d.data["locations"]["dfar"]
    assert where["reserved"] == {"name": "cam", "base": CMA_BASE, "size": CMA_SIZE}
    assert "reserved CMA region 'cam'" in d.text
    # without the System the published /reserved-memory node names the region too
    d2 = diagnose(m, result)
    assert d2.data["locations"]["dfar"]["reserved"]["base"] == CMA_BASE


# --- camera DMA to an unreachable bus address ---------------------------------------------
def _ram_digest(m: Machine) -> str:
    h = hashlib.blake2b(digest_size=16)
    for start, size in m.bus.ram_banks():
        for at in range(start, start + size, 1 << 24):
            h.update(m.bus.uc.mem_read(at, min(1 << 24, start + size - at)))
    return h.hexdigest()


def test_camera_dma_to_an_unreachable_bus_address_is_refused() -> None:
    m = Machine("camsoc")
    path, entry = next((p, e) for p, e in m.devices.items() if isinstance(e.device, CameraDma))
    cam = entry.device
    assert isinstance(cam, CameraDma)
    view = m.views[path]
    assert view.windows is not None
    bad = max(b + s for b, _c, s in view.windows) & 0xFFFF_FFFF
    if view.to_phys(bad) is not None or bad == 0:
        bad = 0xFFFF_0000
    assert view.to_phys(bad) is None
    before = _ram_digest(m)
    regs = {"WIDTH": 64, "HEIGHT": 4, "FORMAT": 0, "RING_SIZE": 1, "FRAME_INTERVAL": 100,
            "IRQ_ENABLE": IRQ_BUS_ERROR}
    offsets = {r.name: r.offset for r in CameraDma.registers}
    for name, value in regs.items():
        cam.write(offsets[name], 4, value)
    cam.write(offsets["BUF_ADDR"], 4, bad)
    cam.write(offsets["BUF_READY"], 4, 1)
    cam.write(offsets["CTRL"], 4, 1)
    m.clock.advance_to(m.clock.now + m.clock.hz // 1000)
    assert cam.read(offsets["IRQ_STATUS"], 4) & IRQ_BUS_ERROR
    assert cam.read(offsets["ERROR_ADDR"], 4) == bad
    assert not cam.read(offsets["CTRL"], 4) & 1
    assert not cam.running
    assert cam.ctx.irqs
    assert cam.ctx.irqs[0].level
    refused = m.bus.dma_log.refused()
    assert refused
    assert refused[0].bus == bad
    assert refused[0].master == path
    assert m.bus.dma_log.writes() == []
    assert _ram_digest(m) == before
    d = diagnose(m)
    assert d.data["dma"][-1]["kind"] == "refused"
    assert d.data["dma"][-1]["bus"] == bad
    assert any(p["source"] == path for p in d.data["interrupts"]["pending"])


# --- interrupt storm ------------------------------------------------------------------------
STORM = """
.syntax unified
.arm
.global _start
vectors:
    b _start
    b .
    b .
    b .
    b .
    b .
    b irq_h
    b .
_start:
    ldr r0, =vectors
    mcr p15, 0, r0, c12, c0, 0
    cps #0x12
    ldr sp, =irq_stack
    cps #0x13
    ldr r0, =0x08000000              @ GICD: on, SPI 1 (INTID 33, the UART) enabled
    mov r1, #1
    str r1, [r0]
    mov r1, #2
    str r1, [r0, #0x104]
    ldr r0, =0x08010000              @ GICC: priority mask open, on
    mov r1, #0xff
    str r1, [r0, #4]
    mov r1, #1
    str r1, [r0]
    ldr r0, =0x09000000              @ PL011: on, TX interrupt enabled, one byte sent
    ldr r1, =0x301
    str r1, [r0, #0x30]
    mov r1, #0x20
    str r1, [r0, #0x38]
    mov r1, #0x21
    str r1, [r0]
    cpsie i
main_loop:
    add r5, r5, #1
    b main_loop
irq_h:
    push {r0-r2}
    ldr r0, =0x08010000
    ldr r1, [r0, #0xc]               @ acknowledge...
    str r1, [r0, #0x10]              @ ...and end it, but never clear the UART's RIS.TX
    ldr r0, =irq_count
    ldr r2, [r0]
    add r2, r2, #1
    str r2, [r0]
    pop {r0-r2}
    subs pc, lr, #4
.ltorg
.data
irq_count: .word 0
.space 256
irq_stack:
"""


def test_interrupt_storm_still_ends_on_its_budget(tmp_path: Path) -> None:
    m = _machine(tmp_path, STORM, max_slice=500)
    result = m.run(max_instructions=200_000)
    assert result.reason == "max-instructions"
    count = int.from_bytes(m.bus.read(_sym(m, "irq_count"), 4), "little")
    assert count > 100  # the handler ran again and again
    d = diagnose(m, result)
    irq = d.data["interrupts"]
    assert irq["deliveries"] == count
    assert [p["intid"] for p in irq["pending"]] == [33]
    assert irq["pending"][0]["source"].startswith("/pl011")
    assert any(ev["register"] == "GICC_IAR" or ev["address"] == 0x0801000C
               for ev in d.data["mmio"])
    assert "33 (/pl011" in d.text


# --- PSCI misuse ---------------------------------------------------------------------------
PSCI_GUEST = """
.syntax unified
.arm
.global _start
.macro CALL fid, a1, a2, slot
    ldr r0, =\\fid
    ldr r1, =\\a1
    ldr r2, =\\a2
    mov r3, #0
    smc #0
    ldr r4, =results
    str r0, [r4, #\\slot * 4]
.endm
_start:
    CALL 0x8400001f, 0, 0, 0          @ unknown PSCI function
    CALL 0xc5000000, 0, 0, 1          @ unknown owner, SMC64
    CALL 0x84000003, 7, 0x40000000, 2 @ CPU_ON of CPU 7 (there is one CPU)
    CALL 0x84000004, 5, 0, 3          @ AFFINITY_INFO of CPU 5
    CALL 0x84000004, 0, 3, 4          @ AFFINITY_INFO with a bad lowest affinity level
    CALL 0x8400000a, 0xdeadbeef, 0, 5 @ PSCI_FEATURES of garbage
    CALL 0x84000005, 0, 0, 6          @ MIGRATE with no trusted OS
    ldr r0, =0x84000008               @ SYSTEM_OFF, twice
    mov r1, #3
    hvc #0
    ldr r0, =0x84000008
    mov r1, #5
    hvc #0
    b .
.ltorg
.data
results: .space 32
"""


def test_psci_misuse_gets_smccc_error_codes(tmp_path: Path) -> None:
    m = _machine(tmp_path, PSCI_GUEST)
    result = m.run(max_instructions=100_000)
    assert (result.reason, result.exit_status) == ("poweroff", 3)
    raw = m.bus.read(_sym(m, "results"), 7 * 4)
    got = [int.from_bytes(raw[i:i + 4], "little", signed=False) for i in range(0, 28, 4)]
    ns, inval = NOT_SUPPORTED & 0xFFFF_FFFF, psci.INVALID_PARAMETERS & 0xFFFF_FFFF
    assert got == [ns, ns, ns, inval, inval, ns, ns]
    again = m.run(max_instructions=100_000)  # ended stays ended: the second call never runs
    assert (again.reason, again.exit_status, again.instructions) == ("poweroff", 3, 0)
    # the second SYSTEM_OFF, made directly, neither raises nor changes the exit status
    m.smccc.dispatch(Call("hvc", psci.SYSTEM_OFF, (5, 0, 0, 0, 0, 0, 0)))
    assert m.run().exit_status == 3
    assert not m.guest_errors()
