"""Exception entry on small hand-written guests: SVC, undefined, data abort, IRQ; ARM and Thumb."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from emu.cpu.core import MODE_ABT, MODE_IRQ, MODE_SVC, MODE_UND
from emu.machine import Machine
from tests.emu.machine import assemble

pytestmark = [pytest.mark.emulator, pytest.mark.toolchain]

KIND_SVC, KIND_UND, KIND_DABT, KIND_IRQ = 1, 2, 3, 4

# Each handler appends a 32-byte record: kind, CPSR, SPSR, LR, DFSR, DFAR, extra.
GUEST = r"""
.syntax unified
.arm
.global _start
.macro RECORD kind
    push {r0-r3}
    ldr r0, =count
    ldr r1, [r0]
    add r2, r1, #1
    str r2, [r0]
    ldr r0, =results
    add r0, r0, r1, lsl #5
    mov r2, #\kind
    str r2, [r0]
    mrs r2, cpsr
    str r2, [r0, #4]
    mrs r2, spsr
    str r2, [r0, #8]
    str lr, [r0, #12]
    mrc p15, 0, r2, c5, c0, 0
    str r2, [r0, #16]
    mrc p15, 0, r2, c6, c0, 0
    str r2, [r0, #20]
    pop {r0-r3}
.endm

vectors:
    b _start
    b undef_h
    b svc_h
    b .
    b dabt_h
    b .
    b irq_h
    b .

_start:
    ldr r0, =vectors
    mcr p15, 0, r0, c12, c0, 0
    cps #0x1b
    ldr sp, =und_stack
    cps #0x17
    ldr sp, =abt_stack
    cps #0x12
    ldr sp, =irq_stack
    cps #0x13
    ldr sp, =svc_stack

    svc #0x42
svc_ret_arm:
udf_arm:
    udf #7
udf_ret_arm:
    adr r0, thumb_code + 1
    bx r0

.thumb
.thumb_func
thumb_code:
    svc #0x43
svc_ret_thumb:
udf_thumb:
    udf #9
udf_ret_thumb:
    ldr r0, =arm_back
    bx r0

.arm
arm_back:
    @ identity sections for RAM and the GIC; 0x30000000 stays unmapped
    ldr r0, =ttb
    ldr r1, =0x40000000
    ldr r2, =0x00000c02            @ section, AP=0b11, domain 0
    mov r3, #128
1:  orr r4, r1, r2
    str r4, [r0, r1, lsr #18]
    add r1, r1, #0x100000
    subs r3, r3, #1
    bne 1b
    ldr r1, =0x08000000
    orr r4, r1, r2
    str r4, [r0, r1, lsr #18]
    mcr p15, 0, r0, c2, c0, 0      @ TTBR0
    mov r1, #0
    mcr p15, 0, r1, c2, c0, 2      @ TTBCR
    ldr r1, =0x55555555
    mcr p15, 0, r1, c3, c0, 0      @ DACR: clients
    mrc p15, 0, r1, c1, c0, 0
    orr r1, r1, #1
    mcr p15, 0, r1, c1, c0, 0      @ MMU on
    isb
    ldr r1, =0x30000010
load_fault:
    ldr r2, [r1]
store_fault:
    str r2, [r1, #4]

    @ GIC: distributor and CPU interface on, PPI 27 (virtual timer) enabled
    ldr r0, =0x08000000
    mov r1, #1
    str r1, [r0]
    mov r1, #(1 << 27)
    str r1, [r0, #0x100]
    ldr r0, =0x08010000
    mov r1, #0xff
    str r1, [r0, #4]
    mov r1, #1
    str r1, [r0]
    @ virtual timer: fire 100 ms (6250000 counts at 62.5 MHz) from now
    mrrc p15, 1, r2, r3, c14
    ldr r4, =6250000
    adds r2, r2, r4
    adc r3, r3, #0
    mcrr p15, 3, r2, r3, c14
    mov r1, #1
    mcr p15, 0, r1, c14, c3, 1
    cpsie i
wait:
    wfi
after_wfi:
    ldr r0, =irq_done
    ldr r1, [r0]
    cmp r1, #0
    beq wait
    @ PSCI SYSTEM_OFF, exit status 0
    ldr r0, =0x84000008
    mov r1, #0
    hvc #0
    b .

svc_h:
    RECORD 1
    movs pc, lr
undef_h:
    RECORD 2
    movs pc, lr
dabt_h:
    RECORD 3
    subs pc, lr, #4
irq_h:
    RECORD 4
    push {r0-r2}
    ldr r0, =0x08010000
    ldr r1, [r0, #0xc]             @ GICC_IAR
    ldr r2, =irq_id
    str r1, [r2]
    mov r2, #0
    mcr p15, 0, r2, c14, c3, 1     @ timer off: the line drops
    str r1, [r0, #0x10]            @ GICC_EOIR
    ldr r0, =irq_done
    mov r1, #1
    str r1, [r0]
    pop {r0-r2}
    subs pc, lr, #4
.ltorg

.data
.align 5
count: .word 0
irq_done: .word 0
irq_id: .word 0
.align 5
results: .space 32 * 16
.align 14
ttb: .space 16384
.space 1024
und_stack:
.space 1024
abt_stack:
.space 1024
irq_stack:
.space 1024
svc_stack:
"""


@pytest.fixture(scope="module")
def guest_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Machine, dict[str, int]]:
    elf = assemble(tmp_path_factory.mktemp("exc"), GUEST)
    m = Machine("virt")
    m.load_elf(elf)
    result = m.run(max_instructions=2_000_000)
    assert result.reason == "poweroff", (result, m.guest_errors())
    assert result.exit_status == 0
    assert m.symbols is not None
    names = ("svc_ret_arm", "udf_arm", "svc_ret_thumb", "udf_thumb", "load_fault", "store_fault",
             "results", "count", "irq_id", "after_wfi", "wait")
    syms = {}
    for n in names:
        addr = m.symbols.symbol(n)
        assert addr is not None, n
        syms[n] = addr
    return m, syms


def _records(m: Machine, syms: dict[str, int]) -> list[tuple[int, ...]]:
    count = struct.unpack("<I", m.bus.read(syms["count"], 4))[0]
    raw = m.bus.read(syms["results"], 32 * count)
    return [struct.unpack_from("<8I", raw, 32 * i) for i in range(count)]


def test_exception_sequence(guest_run: tuple[Machine, dict[str, int]]) -> None:
    m, syms = guest_run
    kinds = [r[0] for r in _records(m, syms)]
    assert kinds == [KIND_SVC, KIND_UND, KIND_SVC, KIND_UND, KIND_DABT, KIND_DABT, KIND_IRQ]


def test_svc_from_arm_and_thumb(guest_run: tuple[Machine, dict[str, int]]) -> None:
    m, syms = guest_run
    recs = _records(m, syms)
    arm, thumb = recs[0], recs[2]
    for rec in (arm, thumb):
        _kind, cpsr, _spsr, _lr, *_ = rec
        assert cpsr & 0x1F == MODE_SVC
        assert cpsr & 0x80  # I set
        assert not cpsr & 0x20  # handler in ARM (SCTLR.TE = 0)
    assert arm[3] == syms["svc_ret_arm"]
    assert not arm[2] & 0x20
    assert thumb[3] == syms["svc_ret_thumb"] & ~1
    assert thumb[2] & 0x20  # SPSR.T: taken from Thumb


def test_undefined_from_arm_and_thumb(guest_run: tuple[Machine, dict[str, int]]) -> None:
    m, syms = guest_run
    recs = _records(m, syms)
    arm, thumb = recs[1], recs[3]
    assert arm[1] & 0x1F == MODE_UND
    assert thumb[1] & 0x1F == MODE_UND
    assert arm[3] == syms["udf_arm"] + 4
    assert thumb[3] == (syms["udf_thumb"] & ~1) + 2
    assert thumb[2] & 0x20
    assert not arm[2] & 0x20


def test_data_abort_status_and_address(guest_run: tuple[Machine, dict[str, int]]) -> None:
    m, syms = guest_run
    recs = _records(m, syms)
    load, store = recs[4], recs[5]
    assert load[1] & 0x1F == MODE_ABT
    assert load[1] & 0x100  # A masked
    assert load[3] == syms["load_fault"] + 8
    assert load[4] == 0x005  # translation fault, section, read
    assert load[5] == 0x3000_0010
    assert store[4] == 0x805  # WnR
    assert store[5] == 0x3000_0014
    assert store[3] == syms["store_fault"] + 8


def test_irq_from_the_virtual_timer(guest_run: tuple[Machine, dict[str, int]]) -> None:
    m, syms = guest_run
    rec = _records(m, syms)[6]
    assert rec[1] & 0x1F == MODE_IRQ
    assert rec[1] & 0x80
    assert not rec[2] & 0x80  # interrupted code had IRQs enabled
    assert rec[3] == syms["after_wfi"] + 4  # woken from WFI: return to the next instruction + 4
    assert struct.unpack("<I", m.bus.read(syms["irq_id"], 4))[0] == 27
    assert m.irq_deliveries
    assert m.irq_deliveries[0][1] == "irq"
    # the WFI let virtual time jump to the timer deadline instead of executing 10 M ticks
    assert m.idle_ticks > 9_000_000
    assert m.irq_deliveries[0][0] >= 10_000_000


def test_wfi_with_nothing_scheduled_is_idle(tmp_path: Path) -> None:
    src = """
.syntax unified
.arm
.global _start
_start:
    cpsid i
    wfi
    b _start
"""
    m = Machine("virt")
    m.load_elf(assemble(tmp_path, src, "idle"))
    result = m.run(max_instructions=10_000_000)
    assert result.reason == "idle"
    assert "WFI" in result.message


def test_exception_loop_stops_as_fault(tmp_path: Path) -> None:
    src = """
.syntax unified
.arm
.global _start
_start:
    ldr r0, =0x30000000
    mcr p15, 0, r0, c12, c0, 0   @ VBAR in a hole: every exception faults again
    udf #0
"""
    m = Machine("virt")
    m.load_elf(assemble(tmp_path, src, "loop"))
    result = m.run(max_instructions=1_000_000)
    assert result.reason == "fault"
    assert "loop" in result.message or "bus error" in " ".join(m.guest_errors())


PABT_GUEST = r"""
.syntax unified
.arm
.global _start
vectors:
    b _start
    b .
    b .
    b pabt_h
    b .
    b .
    b .
    b .
_start:
    ldr r0, =vectors
    mcr p15, 0, r0, c12, c0, 0
    cps #0x17
    ldr sp, =abt_stack
    cps #0x13
    ldr r0, =ttb
    ldr r1, =0x40000000
    ldr r2, =0x00000c02
    orr r4, r1, r2
    str r4, [r0, r1, lsr #18]
    mcr p15, 0, r0, c2, c0, 0
    ldr r1, =0x55555555
    mcr p15, 0, r1, c3, c0, 0
    mrc p15, 0, r1, c1, c0, 0
    orr r1, r1, #1
    mcr p15, 0, r1, c1, c0, 0
    isb
    ldr r0, =0x30000000
call_site:
    blx r0
back:
    ldr r0, =0x84000008
    ldr r1, =result_ifsr
    ldr r1, [r1]
    hvc #0
pabt_h:
    ldr sp, =abt_stack
    mrc p15, 0, r2, c5, c0, 1
    ldr r3, =result_ifsr
    str r2, [r3]
    mrc p15, 0, r2, c6, c0, 2
    str r2, [r3, #4]
    str lr, [r3, #8]
    mrs r2, spsr
    str r2, [r3, #12]
    ldr lr, =back                   @ skip the call into the hole
    movs pc, lr
.ltorg
.data
.align 2
result_ifsr: .space 32
.align 14
ttb: .space 16384
.space 256
abt_stack:
"""


def test_prefetch_abort_reports_ifsr_and_ifar(tmp_path: Path) -> None:
    m = Machine("virt")
    m.load_elf(assemble(tmp_path, PABT_GUEST, "pabt"))
    result = m.run(max_instructions=1_000_000)
    assert result.reason == "poweroff", m.guest_errors()
    assert result.exit_status == 0x05  # IFSR: translation fault, section
    assert m.symbols is not None
    res = m.symbols.symbol("result_ifsr")
    assert res is not None
    ifsr, ifar, lr, _spsr = struct.unpack("<4I", m.bus.read(res, 16))
    assert (ifsr, ifar) == (0x005, 0x3000_0000)
    assert lr == 0x3000_0004  # preferred return + 4


THUMB_VECTORS = r"""
.syntax unified
.global _start
.thumb
.align 5
vectors:
    b.w .
    b.w .
    b.w svc_h
    b.w .
    b.w .
    b.w .
    b.w .
    b.w .
.thumb_func
svc_h:
    mrs r4, cpsr
    mov r5, lr
    movs pc, lr
.arm
_start:
    ldr r0, =vectors
    mcr p15, 0, r0, c12, c0, 0
    mrc p15, 0, r1, c1, c0, 0
    orr r1, r1, #(1 << 30)          @ SCTLR.TE: exceptions are taken in Thumb
    mcr p15, 0, r1, c1, c0, 0
    svc #1
after:
    ldr r0, =0x84000008
    mov r1, #0
    hvc #0
"""


def test_sctlr_te_enters_handlers_in_thumb(tmp_path: Path) -> None:
    m = Machine("virt")
    m.load_elf(assemble(tmp_path, THUMB_VECTORS, "te"))
    assert m.run(max_instructions=100_000).reason == "poweroff"
    assert m.symbols is not None
    # the handler is Thumb code (ARM would decode its b.w as something else): reaching it
    # and returning proves the entry switched to Thumb; MRS reads CPSR.T as zero
    assert m.cpu.reg(4) & 0x1F == MODE_SVC
    assert not m.cpu.thumb  # the return restored ARM state from SPSR
    assert m.cpu.reg(5) == m.symbols.symbol("after")
