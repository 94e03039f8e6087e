"""The memory-attribute alias checker and the DMA cache-coherency checker.

Unit tests decode hand-built short-descriptor tables held in a bytearray; the
emulator tests run a hand-assembled guest that maps one CMA page twice with
different attributes, and the prebuilt capture firmware, once as built (clean)
and once with its cache invalidate removed (a stale read, with the PC).
"""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.checkers.alias import (
    DEVICE,
    STRONGLY_ORDERED,
    MemType,
    TableRegs,
    TableWalker,
    decode_type,
    find_conflicts,
    remap_type,
)
from emu.checkers.coherency import CoherencyChecker, cond_passed, decode_cache_op, scan_cache_ops
from emu.cpu import mmu

ROOT = Path(__file__).resolve().parents[2]
CAPTURE = ROOT / "firmware" / "prebuilt" / "capture.elf"
CMA = "cma=cam=16M cma_map=camera=cam"
LINUX_PRRR, LINUX_NMRR = 0xFF0A81A8, 0x40E040E0

WB = MemType("normal", "WB", "WB")
WBWA = MemType("normal", "WB-WA", "WB-WA")
NC = MemType("normal", "NC", "NC")

# descriptor building blocks (short format)
SECT = 2
AP_RW = 1 << 10
S_WBWA = 1 << 12 | 0xC  # section TEX=001 C=1 B=1
S_NC = 1 << 12  # section TEX=001 C=0 B=0
S_DEV = 0x4  # section TEX=000 C=0 B=1


class Mem:
    """A little physical memory in a bytearray, read the way the walker reads RAM."""

    def __init__(self, base: int, size: int) -> None:
        self.base = base
        self.data = bytearray(size)

    def put(self, addr: int, word: int) -> None:
        struct.pack_into("<I", self.data, addr - self.base, word)

    def read(self, addr: int, size: int) -> bytes | None:
        off = addr - self.base
        if off < 0 or off + size > len(self.data):
            return None
        return bytes(self.data[off:off + size])

    def word(self, addr: int) -> int | None:
        raw = self.read(addr, 4)
        return None if raw is None else int.from_bytes(raw, "little")


# --- memory types ------------------------------------------------------------------------
def test_tex_c_b_table() -> None:
    assert decode_type(0, 0, 0) == STRONGLY_ORDERED
    assert decode_type(0, 0, 1) == DEVICE
    assert decode_type(2, 0, 0) == DEVICE
    assert decode_type(0, 1, 0) == MemType("normal", "WT", "WT")
    assert decode_type(0, 1, 1) == WB
    assert decode_type(1, 0, 0) == NC
    assert decode_type(1, 1, 1) == WBWA
    assert decode_type(1, 0, 1).kind == "reserved"
    # 1BB:AA: outer policy from TEX[1:0], inner from C:B
    assert decode_type(0b101, 0, 0) == MemType("normal", "NC", "WB-WA")
    assert decode_type(0b110, 1, 1) == MemType("normal", "WB", "WT")
    assert decode_type(0b100, 0, 0) == NC
    cacheable = {(t, c, b) for t in range(8) for c in (0, 1) for b in (0, 1)
                 if decode_type(t, c, b).cacheable}
    assert (1, 0, 0) not in cacheable
    assert (0, 0, 1) not in cacheable
    assert {(1, 1, 1), (0, 1, 1), (0, 1, 0), (0b101, 0, 0)} <= cacheable
    assert str(WBWA) == "Normal WB-WA"
    assert str(DEVICE) == "Device"
    assert str(decode_type(0b101, 0, 0)) == "Normal inner NC outer WB-WA"


def test_tre_remap_with_linux_prrr_nmrr() -> None:
    def t(tex: int, c: int, b: int) -> MemType:
        return remap_type(tex, c, b, LINUX_PRRR, LINUX_NMRR)

    assert t(0, 0, 0) == STRONGLY_ORDERED  # L_PTE_MT_UNCACHED
    assert t(0, 0, 1) == NC  # L_PTE_MT_BUFFERABLE: what dma_alloc_coherent uses
    assert t(0, 1, 0) == MemType("normal", "WT", "WT")  # L_PTE_MT_WRITETHROUGH
    assert t(0, 1, 1) == WB  # L_PTE_MT_WRITEBACK
    assert t(1, 0, 0) == DEVICE  # L_PTE_MT_DEV_SHARED
    assert t(1, 1, 1) == WBWA  # L_PTE_MT_WRITEALLOC
    assert t(0b111, 1, 1) == WBWA
    assert t(0b110, 1, 1) == WB
    regs = TableRegs(sctlr=1 | 1 << 28, ttbr0=0, ttbr1=0, ttbcr=0, prrr=LINUX_PRRR,
                     nmrr=LINUX_NMRR)
    assert regs.mem_type(0, 0, 1) == NC
    assert TableRegs(1, 0, 0, 0, LINUX_PRRR, LINUX_NMRR).mem_type(0, 0, 1) == DEVICE


# --- table walks --------------------------------------------------------------------------
BASE = 0x4000_0000
L1 = BASE + 0x4000
L1_HI = BASE + 0x8000  # TTBR1 table
L2A = BASE + 0xC000
L2B = BASE + 0xC400


def build_tables() -> Mem:
    """Sections, a supersection, small and large pages, with three aliases of one page."""
    mem = Mem(BASE, 0x10000)
    mem.put(L1 + 0x400 * 4, 0x4000_0000 | AP_RW | S_WBWA | SECT)  # identity, WB-WA
    mem.put(L1 + 0x401 * 4, 0x4010_0000 | AP_RW | S_WBWA | SECT)  # merges with the above
    mem.put(L1 + 0x090 * 4, 0x0900_0000 | AP_RW | S_DEV | SECT)  # a device
    for i in range(16):  # supersection 0x60000000 -> 0x42000000 (16 MiB), Normal NC
        mem.put(L1 + (0x600 + i) * 4, 0x4200_0000 | 1 << 18 | AP_RW | S_NC | SECT)
    mem.put(L1 + 0x500 * 4, L2A | 1)  # page table for VA 0x50000000
    # small page VA 0x50000000 -> PA 0x40100000, Normal NC (TEX=001 at bits 8:6)
    mem.put(L2A + 0, 0x4010_0000 | 1 << 6 | 1 << 4 | 2)
    # large page VA 0x50010000 -> PA 0x40130000, WB-WA (TEX at 14:12), 16 copies
    for j in range(16, 32):
        mem.put(L2A + j * 4, 0x4013_0000 | 1 << 12 | 0xC | 1 << 4 | 1)
    # TTBR1 half (TTBCR.N=1: VA >= 0x80000000): linear map of 0x42000000, WB-WA
    mem.put(L1_HI + 0x820 * 4, 0x4200_0000 | AP_RW | S_WBWA | SECT)
    mem.put(L1_HI + 0x830 * 4, L2B | 1)
    mem.put(L2B + 4, 0x4013_1000 | 1 << 4 | 0x4 | 0x2 | 1)  # small page, Device (B), XN
    return mem


REGS = TableRegs(sctlr=1, ttbr0=L1, ttbr1=L1_HI, ttbcr=1)


def test_enumerate_every_kind_of_mapping() -> None:
    mem = build_tables()
    runs = TableWalker(mem.read).mappings(REGS)
    got = {(m.va, m.pa, m.size, str(m.mtype), m.kind) for m in runs}
    assert got == {
        (0x0900_0000, 0x0900_0000, 1 << 20, "Device", "section"),
        (0x4000_0000, 0x4000_0000, 2 << 20, "Normal WB-WA", "section"),
        (0x5000_0000, 0x4010_0000, 0x1000, "Normal NC", "small"),
        (0x5001_0000, 0x4013_0000, 0x10000, "Normal WB-WA", "large"),
        (0x6000_0000, 0x4200_0000, 16 << 20, "Normal NC", "supersection"),
        (0x8200_0000, 0x4200_0000, 1 << 20, "Normal WB-WA", "section"),
        (0x8300_1000, 0x4013_1000, 0x1000, "Device", "small"),
    }
    # TTBR0 only covers VA < 0x80000000 with N=1: its entries above are ignored
    mem.put(L1 + 0x820 * 4, 0x4000_0000 | AP_RW | S_NC | SECT)
    assert TableWalker(mem.read).mappings(REGS) == runs
    # MMU off: nothing is enumerated
    assert TableWalker(mem.read).mappings(TableRegs(0, L1, L1_HI, 1)) == []


def test_conflicts_name_both_addresses() -> None:
    conflicts = find_conflicts(TableWalker(build_tables().read).mappings(REGS))
    got = [(c.pa, c.size, c.va_cached, str(c.type_cached), c.va_other, str(c.type_other))
           for c in conflicts]
    assert got == [
        (0x4010_0000, 0x1000, 0x4010_0000, "Normal WB-WA", 0x5000_0000, "Normal NC"),
        (0x4013_1000, 0x1000, 0x4013_1000, "Normal WB-WA", 0x8300_1000, "Device"),
        (0x4013_1000, 0x1000, 0x5001_1000, "Normal WB-WA", 0x8300_1000, "Device"),
        (0x4200_0000, 1 << 20, 0x8200_0000, "Normal WB-WA", 0x6000_0000, "Normal NC"),
    ]


def test_tre_changes_which_mappings_conflict() -> None:
    """With TRE=1 and Linux's PRRR/NMRR, TEX=001 C=0 B=0 is Device and C=1 B=1 WB-WA."""
    mem = Mem(BASE, 0x10000)
    mem.put(L1 + 0x400 * 4, 0x4000_0000 | AP_RW | 0x4 | SECT)  # TEX0 C0 B1: index 1, NC
    mem.put(L1 + 0x800 * 4, 0x4000_0000 | AP_RW | 0xC | SECT)  # index 3: WB
    remapped = TableRegs(1 | 1 << 28, L1, 0, 0, LINUX_PRRR, LINUX_NMRR)
    (c,) = find_conflicts(TableWalker(mem.read).mappings(remapped))
    assert (c.va_cached, str(c.type_cached), c.va_other, str(c.type_other)) == \
        (0x8000_0000, "Normal WB", 0x4000_0000, "Normal NC")
    # the same bits without remap: Device and Normal WB, still a conflict, other names
    (c,) = find_conflicts(TableWalker(mem.read).mappings(TableRegs(1, L1, 0, 0)))
    assert str(c.type_other) == "Device"
    mem.put(L1 + 0x400 * 4, 0x4000_0000 | AP_RW | 0xC | SECT)
    assert find_conflicts(TableWalker(mem.read).mappings(remapped)) == []


section_entries = st.dictionaries(
    st.integers(0, 4095),
    st.tuples(st.integers(0, 0xFFF), st.integers(0, 7), st.integers(0, 3)),
    max_size=40)


@settings(max_examples=60, deadline=None)
@given(entries=section_entries, n=st.integers(0, 3))
def test_runs_agree_with_the_mmu_walk(entries: dict[int, tuple[int, int, int]],
                                      n: int) -> None:
    """Every enumerated byte translates like :func:`emu.cpu.mmu.walk` says, nothing else does."""
    mem = Mem(BASE, 0x10000)
    for index, (pa_mb, tex, cb) in entries.items():
        mem.put(L1 + index * 4, pa_mb << 20 | tex << 12 | cb << 2 | AP_RW | SECT)
        if n:
            mem.put(L1_HI + index * 4, pa_mb << 20 | tex << 12 | cb << 2 | AP_RW | SECT)
    regs = TableRegs(1, L1, L1_HI, n)
    state = mmu.MmuState(sctlr=1, ttbr0=L1, ttbr1=L1_HI, ttbcr=n, dacr=0xFFFF_FFFF)
    runs = TableWalker(mem.read).mappings(regs)
    mapped = set()
    for m in runs:
        for va in range(m.va, m.va + m.size, 1 << 20):
            mapped.add(va >> 20)
            assert mmu.walk(state, va + 0x123, mem.word, check=False).phys == \
                m.pa + (va - m.va) + 0x123
    for index in entries:
        if index not in mapped:
            assert mmu.walk(state, index << 20, mem.word, check=False).phys is None
    assert mapped == set(entries)


# --- coherency decoding -----------------------------------------------------------------
def test_cache_op_encodings() -> None:
    assert decode_cache_op(0xEE073F36) == ("DCIMVAC", 3)  # mcr p15,0,r3,c7,c6,1
    assert decode_cache_op(0xEE073F3A) == ("DCCMVAC", 3)
    assert decode_cache_op(0xEE070F3E) == ("DCCIMVAC", 0)
    assert decode_cache_op(0xEE075F3B) == ("DCCMVAU", 5)
    assert decode_cache_op(0xEE072F56) == ("DCISW", 2)
    assert decode_cache_op(0xEE073F15) is None  # ICIALLU
    assert decode_cache_op(0xEE173F36) is None  # MRC, not MCR
    assert decode_cache_op(0xEE083F17) is None  # TLBIALL
    page = struct.pack("<4I", 0xE1A00000, 0x0E073F36, 0xEE073F3E, 0) + \
        struct.pack("<2H", 0xEE07, 0x1F36)
    assert scan_cache_ops(page, 0x1000) == [
        (0x1004, False, "DCIMVAC", 3, 0x0), (0x1008, False, "DCCIMVAC", 3, 0xE),
        (0x1010, True, "DCIMVAC", 1, 0xE)]
    assert cond_passed(0x0, 1 << 30)
    assert not cond_passed(0x0, 0)
    assert cond_passed(0x1, 0)
    assert cond_passed(0xE, 0)


# --- in the emulator ----------------------------------------------------------------------
#: hand-assembled ARM (arm-none-eabi-as -march=armv7-a): builds three section entries from
#: parameters at 0x40000100 into the table at 0x40004000, then turns the MMU and D-cache on
GUEST = [
    0xE3040000,  # movw r0, #0x4000
    0xE3440000,  # movt r0, #0x4000          r0 = table
    0xE3004100,  # movw r4, #0x100
    0xE3444000,  # movt r4, #0x4000          r4 = parameters
    0xE5941000,  # ldr  r1, [r4]             the code's identity section
    0xE2803A01,  # add  r3, r0, #0x1000
    0xE5831000,  # str  r1, [r3]
    0xE5941004,  # ldr  r1, [r4, #4]         alias A: byte offset, descriptor
    0xE5942008,  # ldr  r2, [r4, #8]
    0xE7802001,  # str  r2, [r0, r1]
    0xE594100C,  # ldr  r1, [r4, #12]        alias B
    0xE5942010,  # ldr  r2, [r4, #16]
    0xE7802001,  # str  r2, [r0, r1]
    0xEE020F10,  # mcr  p15, 0, r0, c2, c0, 0     TTBR0
    0xE3A01000,  # mov  r1, #0
    0xEE021F50,  # mcr  p15, 0, r1, c2, c0, 2     TTBCR
    0xE3E01000,  # mvn  r1, #0
    0xEE031F10,  # mcr  p15, 0, r1, c3, c0, 0     DACR: all manager
    0xEE111F10,  # mrc  p15, 0, r1, c1, c0, 0
    0xE3811005,  # orr  r1, r1, #5                M | C
    0xEE011F10,  # mcr  p15, 0, r1, c1, c0, 0
    0xF57FF06F,  # isb
    0xEAFFFFFE,  # b    .
]
UNCACHED_VA = 0xF000_0000


def alias_guest(tmp_path: Path, mode: str = "fail") -> tuple[Any, Any, Any, int]:
    """(machine, system, alias checker, chunk phys): the guest maps a CMA chunk twice."""
    from emu.checkers import install
    from emu.machine import Machine
    from emu.system import System

    image = b"".join(w.to_bytes(4, "little") for w in GUEST).ljust(0x8000, b"\0")
    path = tmp_path / "alias-guest.bin"
    path.write_bytes(image)
    machine = Machine("camsoc")
    machine.load_raw(path, BASE)
    system = System(machine, CMA)
    chunk = system.alloc("camera", 1 << 20, alignment=1 << 20)
    linear_va = chunk.phys - BASE + 0x8000_0000
    params = [BASE | AP_RW | S_WBWA | SECT,
              (linear_va >> 20) * 4, chunk.phys | AP_RW | S_WBWA | SECT,
              (UNCACHED_VA >> 20) * 4, chunk.phys | AP_RW | S_NC | SECT]
    machine.bus.write(BASE + 0x100, struct.pack("<5I", *params))
    (checker,) = install(machine, system.core, aliases=mode)
    system.checkers.append(checker)
    return machine, system, checker, chunk.phys


@pytest.mark.emulator
def test_guest_alias_is_reported_with_both_vas(tmp_path: Path) -> None:
    machine, system, checker, phys = alias_guest(tmp_path)
    machine.run(max_instructions=200)
    assert machine.cpu.sctlr & 5 == 5  # the guest turned the MMU and cache on
    (f,) = checker.findings
    assert (f.pa, f.size) == (phys, 1 << 20)
    assert (f.va_cached, f.type_cached) == (phys - BASE + 0x8000_0000, "Normal WB-WA")
    assert (f.va_other, f.type_other) == (UNCACHED_VA, "Normal NC")
    assert f.chunk == {"phys": phys, "size": 1 << 20, "device": "camera", "region": "cam"}
    assert f.time > 0
    assert f.epoch >= 2
    (failure,) = system.failures()
    assert f"0x{UNCACHED_VA:08x}" in failure
    assert f"0x{f.va_cached:08x}" in failure
    assert system.describe()["checkers"]["aliases"]["findings"][0]["pa"] == phys

    # deduplicated: more slices over unchanged tables walk nothing and report nothing new
    walks = checker.stats["walks"]
    machine.run(max_instructions=500)
    assert checker.stats["walks"] == walks
    assert len(checker.findings) == 1

    # the tables change: the alias goes away (no report) and comes back (a new report)
    entry = machine.ram[0] + 0x4000 + (UNCACHED_VA >> 20) * 4
    machine.bus.write(entry, struct.pack("<I", phys | AP_RW | S_WBWA | SECT))
    assert checker.check()
    assert len(checker.findings) == 1
    machine.bus.write(entry, struct.pack("<I", phys | AP_RW | S_NC | SECT))
    assert checker.check()
    assert len(checker.findings) == 2
    assert checker.findings[1].epoch > f.epoch
    assert not checker.check()  # nothing changed since


@pytest.mark.emulator
def test_report_mode_does_not_fail(tmp_path: Path) -> None:
    machine, system, checker, _ = alias_guest(tmp_path, "report")
    machine.run(max_instructions=200)
    assert len(checker.findings) == 1
    assert system.failures() == []


def run_capture(tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    from emu.cli import main

    out = tmp_path / "run.json"
    code = main(["run", "--board", "camsoc", "--elf", str(CAPTURE), "--append",
                 "frames=5 width=160 height=120 buffers=2", "--cma", CMA, "--json", str(out),
                 "--quiet", "--max-seconds", "120", *extra], stdout=io.StringIO())
    return code, json.loads(out.read_text())


@pytest.mark.emulator
@pytest.mark.slow
def test_capture_firmware_is_clean(tmp_path: Path) -> None:
    code, doc = run_capture(tmp_path, "--check-aliases", "fail", "--check-coherency", "fail")
    assert code == 0
    assert doc["failures"] == []
    assert "capture: PASS" in doc["console"]
    checkers = doc["system"]["checkers"]
    assert checkers["aliases"]["findings"] == []
    assert checkers["aliases"]["epochs"] >= 2
    coherency = checkers["coherency"]
    assert coherency["findings"] == []
    assert coherency["line_size"] == 64
    # the model really followed the run: invalidates and frame reads were seen
    assert {"DCIMVAC", "DCCIMVAC"} <= set(coherency["sites"].values())
    assert coherency["stats"]["cpu_accesses"] > 10_000
    assert coherency["stats"]["dma_accesses"] == 5


@pytest.mark.emulator
@pytest.mark.slow
def test_capture_without_invalidate_is_a_stale_read() -> None:
    from emu.checkers import install
    from emu.dt import guest
    from emu.machine import Machine
    from emu.system import System

    machine = Machine("camsoc")
    machine.load_elf(CAPTURE)
    guest.set_bootargs(machine.tree, "frames=5 width=160 height=120 buffers=2")
    system = System(machine, CMA)
    system.checkers += install(machine, system.core, aliases="fail", coherency="fail")
    # remove the invalidate before the CPU reads a frame: NOP the one call to it
    assert machine.symbols is not None
    target = machine.symbols.symbol("dcache_inval_range")
    assert target is not None
    text = machine.bus.read(0x4020_0000, 0x4000)
    calls = [a for a in range(0x4020_0000, 0x4020_4000, 4)
             if (w := int.from_bytes(text[a - 0x4020_0000:a - 0x4020_0000 + 4], "little"))
             & 0x0F00_0000 == 0x0B00_0000
             and a + 8 + (((w & 0xFF_FFFF) ^ 0x80_0000) - 0x80_0000) * 4 == target]
    assert len(calls) == 1
    machine.bus.write(calls[0], (0xE320F000).to_bytes(4, "little"))  # nop
    result = machine.run(max_seconds=120)
    assert result.reason == "poweroff"
    coherency = system.checkers[1]
    assert isinstance(coherency, CoherencyChecker)
    kinds = {f.kind for f in coherency.findings}
    assert kinds == {"stale-read"}
    first = coherency.findings[0]
    assert first.symbol.startswith("crc32_update")
    assert first.pc is not None
    assert machine.symbols.symbolize(first.pc) == first.symbol
    assert first.count > 1000  # every byte of the payload was read stale
    assert any(r.contains(first.pa, 1) for r in system.core.regions)
    assert any("stale-read" in f and "crc32_update" in f for f in system.failures())


@pytest.mark.emulator
def test_cache_model_rules() -> None:
    """The line states, driven directly: what each ordering of CPU, DMA and maintenance gives."""
    from emu.checkers.alias import AliasChecker, Mapping
    from emu.machine import Machine

    machine = Machine("camsoc")
    cpu = machine.cpu
    cpu.write_cp15(1, 0, 0, 0, cpu.sctlr | 4)  # SCTLR.C; the MMU stays off (VA = PA)
    aliases = AliasChecker(machine)
    buf, uncached = 0x4800_0000, 0x4900_0000
    aliases.mappings = [Mapping(buf, buf, 1 << 20, WBWA, "section"),
                        Mapping(uncached, uncached, 1 << 20, NC, "section")]
    model = CoherencyChecker(machine, None, aliases)
    assert model.line == 64

    def kinds() -> list[str]:
        return [f.kind for f in model.findings]

    model.cpu_access(buf + 4, 4, write=True)  # dirty
    model.dma_access("camera", buf, 64, write=False)
    assert kinds() == ["dirty-not-cleaned"]
    assert model.findings[0].master == "camera"
    assert model.findings[0].pa == buf
    model.maintain("DCCMVAC", buf + 8)  # clean: the line stays, no longer dirty
    model.dma_access("camera", buf, 64, write=False)
    assert kinds() == ["dirty-not-cleaned"]
    model.dma_access("camera", buf, 128, write=True)  # the device changes a cached line
    model.cpu_access(buf + 64, 4, write=False)  # line 2 was not cached: a fill, fine
    assert kinds() == ["dirty-not-cleaned"]
    model.cpu_access(buf, 4, write=False)
    assert kinds() == ["dirty-not-cleaned", "stale-read"]
    assert model.findings[1].pc == cpu.pc
    model.cpu_access(buf + 8, 4, write=False)  # same kind and PC: counted, not repeated
    assert model.findings[1].count == 2
    model.maintain("DCIMVAC", buf)  # invalidate: the next read fetches fresh data
    model.cpu_access(buf, 4, write=False)
    assert model.findings[1].count == 2
    model.cpu_access(buf + 0x1000, 1, write=True)
    model.dma_access("camera", buf + 0x1000, 64, write=True)
    assert kinds()[-1] == "dirty-over-dma"
    model.maintain("DCCISW", 0)  # set/way clean+invalidate: the whole cache
    assert model.lines == {}
    model.cpu_access(uncached, 4, write=True)  # non-cacheable: never in the cache
    assert model.lines == {}
    cpu.write_cp15(1, 0, 0, 0, cpu.sctlr & ~4)
    model.forget_types()
    model.cpu_access(buf, 4, write=True)  # SCTLR.C off: nothing is cached
    assert model.lines == {}
