"""The GDB remote stub: framing, raw RSP packets, determinism, and a real gdb-multiarch."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from capstone import CS_ARCH_ARM, CS_MODE_ARM, Cs
from hypothesis import given, settings
from hypothesis import strategies as st

from emu.gdbstub import KILL_REASON, GdbStub, checksum, frame, unescape
from emu.loaders import ElfImage
from emu.machine import Machine, RunResult
from tests.conftest import ROOT, need_tool

ELF = ROOT / "firmware" / "prebuilt" / "selftest.elf"
LINEAR = 0x8000_0000 - 0x4000_0000  # the firmware's linear map: VA = PA + 0x40000000


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=200))
def test_frame_escapes_and_checksums_any_payload(payload: bytes) -> None:
    raw = frame(payload)
    body, cs = raw[1:-3], raw[-2:]
    assert raw[:1] == b"$"
    assert raw[-3:-2] == b"#"
    assert int(cs, 16) == checksum(body)
    assert not set(body) & set(b"#$")
    assert unescape(body) == payload


# -- a raw RSP client ---------------------------------------------------------------------
class Client:
    """Just enough of the remote protocol to drive the stub packet by packet."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as gdb does
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def _byte(self) -> int:
        while not self.buf:
            data = self.sock.recv(4096)
            if not data:
                raise EOFError("stub closed the connection")
            self.buf += data
        b, self.buf = self.buf[0], self.buf[1:]
        return b

    def ack(self) -> str:
        return chr(self._byte())

    def raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, payload: str, extra: bytes = b"") -> None:
        self.raw(frame(payload.encode("latin-1")) + extra)
        assert self.ack() == "+"

    def recv(self) -> str:
        while self._byte() != ord("$"):
            pass
        body = bytearray()
        while (b := self._byte()) != ord("#"):
            body.append(b)
        cs = bytes([self._byte(), self._byte()])
        assert int(cs, 16) == checksum(bytes(body))
        self.raw(b"+")
        return body.decode("latin-1")

    def ask(self, payload: str) -> str:
        self.send(payload)
        return self.recv()


def le32(text: str) -> int:
    return int.from_bytes(bytes.fromhex(text), "little")


def stop_regs(reply: str) -> dict[str, str]:
    return dict(f.split(":", 1) for f in reply[3:].split(";") if f)


class Target:
    """A machine running selftest.elf in a thread, with the stub on a free port."""

    def __init__(self, wait: bool = True) -> None:
        self.machine = Machine("camsoc")
        self.machine.load_elf(ELF)
        self.stub = GdbStub(self.machine, 0, wait=wait)
        self.result: RunResult | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.result = self.machine.run(max_instructions=50_000_000)
        self.stub.finish(self.result)

    def join(self) -> RunResult:
        self.thread.join(60)
        assert self.result is not None, "the run did not end"
        return self.result

    def sym(self, name: str) -> int:
        assert self.machine.symbols is not None
        value = self.machine.symbols.symbol(name)
        assert value is not None, name
        return value


@pytest.fixture
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.stub.close()
    t.thread.join(10)


@pytest.mark.emulator
def test_raw_packets_registers_memory_breakpoints_step_interrupt_detach(target: Target) -> None:
    c = Client(target.stub.port)
    features = c.ask("qSupported:multiprocess+;swbreak+;xmlRegisters=arm")
    assert "PacketSize=4000" in features
    assert "qXfer:features:read+" in features
    xml = c.ask("qXfer:features:read:target.xml:0,3fff")
    assert xml.startswith("l")
    assert 'feature name="org.gnu.gdb.arm.core"' in xml
    assert 'name="cpsr" bitsize="32" regnum="25"' in xml
    assert c.ask("?").startswith("T05")
    assert c.ask("qC") == "QC1"
    assert c.ask("qfThreadInfo") == "m1"
    assert c.ask("qsThreadInfo") == "l"
    assert c.ask("qAttached") == "1"

    # registers at the entry point (SVC mode, IRQs masked)
    regs = c.ask("g")
    assert len(regs) == 17 * 8
    assert le32(regs[15 * 8:16 * 8]) == 0x4020_0000 == le32(c.ask("pf"))
    assert le32(regs[16 * 8:]) & 0x1F == 0x13
    assert le32(c.ask("p19")) == le32(regs[16 * 8:])
    assert c.ask("P0=78563412") == "OK"
    assert c.ask("p0") == "78563412"

    # memory by virtual address (MMU off: identity) matches the ELF
    image = ElfImage(ELF.read_bytes(), str(ELF))
    text = image.segments()[0].data
    assert bytes.fromhex(c.ask("m40200000,20")) == text[:0x20]

    # a binary write with bytes that need escaping, read back, then put back
    buf = target.sym("test_buf")
    original = c.ask(f"m{buf:x},8")
    payload = b"}#$*\x00\x01\x02\x03"
    assert c.ask(f"X{buf:x},8:" + payload.decode("latin-1")) == "OK"
    assert bytes.fromhex(c.ask(f"m{buf:x},8")) == payload
    assert c.ask(f"M{buf:x},8:{original}") == "OK"
    assert c.ask(f"m{buf:x},8") == original

    # bad packets: wrong checksum, malformed, unknown, unsupported; the stub carries on
    c.raw(b"$g#00")
    assert c.ack() == "-"
    assert c.ask("mzz,4") == "E01"
    assert c.ask("p63") == "E01"
    assert c.ask("qNoSuchQuery") == ""
    assert c.ask("Z9,40200000,4") == ""
    assert c.ask("M40200000,4:00") == "E01"  # length and data disagree

    # breakpoint, continue, step
    mmu_enable = target.sym("mmu_enable")
    assert c.ask(f"Z0,{mmu_enable:x},4") == "OK"
    stop = c.ask("c")
    fields = stop_regs(stop)
    assert stop.startswith("T05")
    assert "swbreak" in fields
    assert le32(fields["0f"]) == mmu_enable
    step = stop_regs(c.ask("s"))
    assert le32(step["0f"]) == mmu_enable + 4
    assert c.ask(f"z0,{mmu_enable:x},4") == "OK"

    # run to the return address: the MMU is on, the linear map reaches the same bytes
    lr = le32(c.ask("pe"))
    assert c.ask(f"Z0,{lr:x},4") == "OK"
    assert le32(stop_regs(c.ask("c"))["0f"]) == lr
    assert c.ask(f"z0,{lr:x},4") == "OK"
    assert target.machine.cpu.mmu_enabled
    checks = target.sym("checks")
    direct = c.ask(f"m{checks:x},8")
    assert direct != "E14"
    assert c.ask(f"m{checks + LINEAR:x},8") == direct
    unmapped = next(va for va in range(0, 1 << 32, 0x10_0000)
                    if target.machine.translate(va) is None)
    assert c.ask(f"m{unmapped:x},4") == "E14"
    assert c.ask(f"M{unmapped:x},4:00000000") == "E14"

    # a write watchpoint on `checks`: the stop is at the store, before it completes
    before = le32(direct[:8])
    assert c.ask(f"Z2,{checks:x},4") == "OK"
    stop = c.ask("c")
    fields = stop_regs(stop)
    assert int(fields["watch"], 16) == checks
    pc = le32(fields["0f"])
    insn = next(Cs(CS_ARCH_ARM, CS_MODE_ARM).disasm(bytes.fromhex(c.ask(f"m{pc:x},4")), pc))
    assert insn.mnemonic.startswith("str"), insn
    assert c.ask(f"z2,{checks:x},4") == "OK"
    c.ask("s")
    assert le32(c.ask(f"m{checks:x},4")) == before + 1

    # Ctrl-C while running: the interrupt byte goes right behind the continue
    c.send("c", extra=b"\x03")
    assert c.recv().startswith("T02")

    # detach: the run goes on; a new debugger can attach and sees it stopped
    assert c.ask("D") == "OK"
    c.close()
    c2 = Client(target.stub.port)
    assert c2.ask("?").startswith("T05")
    assert len(c2.ask("g")) == 17 * 8
    assert c2.ask("vCont?").startswith("vCont;c;C;s;S")
    c2.send("vCont;c")
    assert c2.recv() == "W00"
    c2.close()
    result = target.join()
    assert (result.reason, result.exit_status) == ("poweroff", 0)
    assert target.stub.stats["connections"] == 2


@pytest.mark.emulator
def test_no_ack_mode_and_kill(target: Target) -> None:
    c = Client(target.stub.port)
    assert c.ask("QStartNoAckMode") == "OK"
    c.raw(frame(b"pf"))
    body = c.recv()  # no '+' comes first any more
    assert le32(body) == 0x4020_0000
    c.raw(frame(b"k"))
    result = target.join()
    assert result.reason == KILL_REASON


@pytest.mark.emulator
def test_a_vanished_debugger_counts_as_a_detach(target: Target) -> None:
    c = Client(target.stub.port)
    assert c.ask(f"Z0,{target.sym('main'):x},4") == "OK"
    c.close()  # no D, no k: the breakpoint goes with the debugger
    result = target.join()
    assert (result.reason, result.exit_status) == ("poweroff", 0)
    assert not target.stub.breakpoints


def _plain_run(wait: bool | None) -> tuple[int, str, int]:
    m = Machine("camsoc")
    m.load_elf(ELF)
    stub = GdbStub(m, 0, wait=False) if wait is False else None
    result = m.run(max_instructions=50_000_000)
    if stub is not None:
        stub.finish(result)
    return result.instructions, m.trace_digest(), m.clock.now


@pytest.mark.emulator
def test_an_observing_debugger_does_not_change_virtual_time(target: Target) -> None:
    plain = _plain_run(None)
    assert _plain_run(False) == plain  # a stub nobody connects to
    c = Client(target.stub.port)
    assert c.ask("?").startswith("T05")
    c.ask("g")
    c.ask("m40200000,100")
    assert c.ask("Z0,10,4") == "OK"  # never executed
    c.send("c", extra=b"\x03")
    assert c.recv().startswith("T02")
    assert target.machine.instructions < plain[0]
    c.ask("g")
    c.send("c")
    assert c.recv() == "W00"
    target.join()
    m = target.machine
    assert (m.instructions, m.trace_digest(), m.clock.now) == plain


@pytest.mark.emulator
def test_single_steps_count_one_tick_each(target: Target) -> None:
    c = Client(target.stub.port)
    ticks = []
    for _ in range(5):
        c.ask("s")
        ticks.append(target.machine.clock.now)
    assert ticks == [1, 2, 3, 4, 5]
    assert c.ask("D") == "OK"
    assert target.join().reason == "poweroff"


@pytest.mark.emulator
def test_a_step_takes_a_pending_interrupt_like_the_run_loop(target: Target) -> None:
    image = ElfImage(ELF.read_bytes(), str(ELF))
    seg = image.segments()[0]
    main = target.sym("main")
    words = [int.from_bytes(seg.data[i:i + 4], "little") for i in range(0, len(seg.data), 4)]
    wfi = next(seg.address + 4 * i for i, w in enumerate(words)
               if w == 0xE320F003 and seg.address + 4 * i > main)  # the timer test's WFI
    c = Client(target.stub.port)
    assert c.ask(f"Z0,{wfi:x},4") == "OK"
    assert le32(stop_regs(c.ask("c"))["0f"]) == wfi
    assert c.ask(f"z0,{wfi:x},4") == "OK"
    assert le32(c.ask("p19")) & 0x80 == 0  # IRQs unmasked: the timer tick will be taken
    delivered = len(target.machine.irq_deliveries)
    for _ in range(2):  # the IRQ comes before the WFI or right after it
        fields = stop_regs(c.ask("s"))
        if le32(fields["19"]) & 0x1F == 0x12:
            break
    assert le32(fields["19"]) & 0x1F == 0x12  # IRQ mode
    assert le32(fields["0f"]) == target.sym("vec_irq")  # entry, then the vector's branch
    assert le32(c.ask("pe")) in (wfi + 4, wfi + 8)  # LR_irq: preferred return + 4
    assert len(target.machine.irq_deliveries) == delivered + 1
    assert c.ask("D") == "OK"
    assert target.join().exit_status == 0


# -- gdb-multiarch against `emu run --gdb` ----------------------------------------------
GDB_SCRIPT = """
set pagination off
set confirm off
target remote 127.0.0.1:{port}
break mmu_enable
continue
print checks
finish
print/x checks
x/1wx &checks
x/1wx 0x8020c550
stepi
info registers
x/4i $pc
delete
watch checks
continue
delete
continue
"""


@pytest.mark.emulator
@pytest.mark.toolchain
def test_gdb_multiarch_drives_the_stub(tmp_path: Path) -> None:
    gdb = need_tool("gdb-multiarch")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    emu = subprocess.Popen(
        [sys.executable, "-m", "emu.cli", "run", "--board", "camsoc", "--elf", str(ELF),
         "--quiet", "--gdb", "0"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert emu.stderr is not None
        line = emu.stderr.readline()
        found = re.search(r"gdb: listening on 127\.0\.0\.1:(\d+)", line)
        assert found, line
        script = tmp_path / "cmds.gdb"
        script.write_text(GDB_SCRIPT.format(port=found.group(1)))
        t0 = time.monotonic()
        done = subprocess.run([gdb, "-batch", "-nx", "-x", str(script), str(ELF)],
                              capture_output=True, text=True, timeout=120, check=False)
        out = done.stdout + done.stderr
        emu_rc = emu.wait(timeout=60)
        assert time.monotonic() - t0 < 120
    finally:
        if emu.poll() is None:
            emu.kill()
            emu.wait()
    assert "Breakpoint 1, mmu_enable ()" in out, out
    values = re.findall(r"^\$\d+ = (\S+)", out, re.M)
    assert len(values) == 2
    assert int(values[0]) > 0
    assert int(values[1], 16) == int(values[0])
    words = re.findall(r"^0x[0-9a-f]+(?: <checks>)?:\s+(0x[0-9a-f]+)", out, re.M)
    assert len(words) == 2
    assert int(words[0], 16) == int(words[1], 16) == int(values[1], 16)
    assert re.search(r"^pc\s+0x4020[0-9a-f]{4}\s", out, re.M), out
    assert re.search(r"^cpsr\s+0x[0-9a-f]+", out, re.M)
    assert re.search(r"^=> 0x4020[0-9a-f]{4} <main\+\d+>:", out, re.M), out
    old_new = re.search(r"Old value = (\d+)\s+New value = (\d+)", out)
    assert old_new, out
    assert int(old_new.group(2)) == int(old_new.group(1)) + 1
    assert "exited normally" in out, out
    assert emu_rc == 0
