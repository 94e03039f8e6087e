"""A GDB remote serial protocol (RSP) server for the machine, on 127.0.0.1 only.

:class:`GdbStub` lets ``gdb-multiarch`` debug the guest: registers, memory by
*virtual* address (walked through the guest's page tables, so the linear map
works once the MMU is on), breakpoints, watchpoints, stepping, Ctrl-C, detach
and reconnect. One client at a time; a bad packet gets an error reply and never
ends the run.

How it rides on the run loop: the machine calls :meth:`GdbStub.between_slices`
before every slice. The stub serves its client there while the target is
stopped, so the machine does not move; a single step is a nested
``Machine.run(max_instructions=1)``, which takes pending interrupts exactly as
the run loop does. Breakpoints are ``UC_HOOK_CODE`` hooks on their virtual
address (guest memory is never patched); watchpoints are memory hooks on the
physical ranges the watched virtual range maps to when the target resumes. A
hook stops the slice with ``emu_stop``; the stub reports the stop at the next
slice boundary. While nothing is hit the debugger only polls its socket
between slices, so virtual time and the instruction count stay what they are
without it. See docs/gdb.md.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from unicorn import UC_HOOK_CODE, UC_HOOK_MEM_READ, UC_HOOK_MEM_WRITE

from emu.cpu.core import CPSR_T
from emu.errors import ConfigurationError

if TYPE_CHECKING:
    from emu.machine import Machine, RunResult

log = logging.getLogger("emu.gdb")

HOST = "127.0.0.1"
#: largest packet we accept and announce (qSupported PacketSize, hex)
PACKET_SIZE = 0x4000
SIGINT = 2
SIGTRAP = 5
#: GDB's register numbers for the core registers (cpsr keeps its historical slot)
REG_SP, REG_PC, REG_CPSR = 13, 15, 25
#: stop reason of a run ended by the debugger's kill request
KILL_REASON = "killed"

TARGET_XML = """<?xml version="1.0"?>
<!DOCTYPE target SYSTEM "gdb-target.dtd">
<target version="1.0">
  <architecture>arm</architecture>
  <feature name="org.gnu.gdb.arm.core">
{regs}
    <reg name="sp" bitsize="32" type="data_ptr"/>
    <reg name="lr" bitsize="32"/>
    <reg name="pc" bitsize="32" type="code_ptr"/>
    <reg name="cpsr" bitsize="32" regnum="25"/>
  </feature>
</target>
""".format(regs="\n".join(f'    <reg name="r{i}" bitsize="32" type="uint32"/>'
                          for i in range(13)))

_WATCH_KINDS = {2: "watch", 3: "rwatch", 4: "awatch"}
_ESCAPED = frozenset(b"#$}*")


class ClientGone(Exception):
    """The debugger closed the connection (or it broke)."""


def checksum(data: bytes) -> int:
    """The RSP checksum: the byte sum modulo 256."""
    return sum(data) & 0xFF


def frame(payload: bytes) -> bytes:
    """``$payload#xx`` with ``#``, ``$``, ``}`` and ``*`` escaped."""
    out = bytearray()
    for b in payload:
        if b in _ESCAPED:
            out += bytes((0x7D, b ^ 0x20))
        else:
            out.append(b)
    return b"$" + bytes(out) + b"#%02x" % checksum(bytes(out))


def unescape(data: bytes) -> bytes:
    """Undo the ``}`` escaping of binary packet data (X packets)."""
    out = bytearray()
    it = iter(data)
    for b in it:
        out.append((next(it, 0) ^ 0x20) if b == 0x7D else b)
    return bytes(out)


class RspConnection:
    """Packet framing, checksums and acknowledgements over one connected socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.ack = True
        self._buf = bytearray()
        self._events: deque[tuple[str, bytes]] = deque()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def _fill(self, block: bool) -> bool:
        """Read what the socket has; False when nothing came (non-blocking)."""
        if not block:
            ready, _, _ = select.select([self.sock], [], [], 0)
            if not ready:
                return False
        try:
            data = self.sock.recv(65536)
        except OSError as exc:
            raise ClientGone(str(exc)) from exc
        if not data:
            raise ClientGone("connection closed")
        self._buf += data
        return True

    def _parse(self) -> tuple[str, bytes] | None:
        """One event from the buffer: ('+'|'-'|'intr'|'pkt', payload)."""
        buf = self._buf
        while buf:
            b = buf[0]
            if b in b"+-":
                del buf[0]
                return chr(b), b""
            if b == 0x03:
                del buf[0]
                return "intr", b""
            if b != ord("$"):
                del buf[0]  # noise between packets
                continue
            end = buf.find(b"#")
            if end < 0 or len(buf) < end + 3:
                if len(buf) > 2 * PACKET_SIZE + 16:
                    log.warning("gdb: dropping an unterminated packet of %d bytes", len(buf))
                    buf.clear()
                return None
            body, cs = bytes(buf[1:end]), bytes(buf[end + 1:end + 3])
            del buf[:end + 3]
            try:
                good = int(cs, 16) == checksum(body)
            except ValueError:
                good = False
            if not good and self.ack:
                log.warning("gdb: bad checksum %r on packet %r", cs, body[:40])
                self._send_raw(b"-")
                continue
            if self.ack:
                self._send_raw(b"+")
            return "pkt", body
        return None

    def _next(self, block: bool) -> tuple[str, bytes] | None:
        if self._events:
            return self._events.popleft()
        while True:
            event = self._parse()
            if event is not None:
                return event
            if not self._fill(block):
                return None

    def read_packet(self) -> tuple[str, bytes]:
        """Block until a packet (``('pkt', body)``) or an interrupt byte (``('intr', b'')``)."""
        while True:
            event = self._next(True)
            if event is not None and event[0] in ("pkt", "intr"):
                return event

    def poll_interrupt(self) -> bool:
        """Non-blocking: True when the client sent Ctrl-C (0x03); other input is kept."""
        while True:
            event = self._next(False)
            if event is None:
                return False
            if event[0] == "intr":
                return True
            if event[0] == "pkt":
                log.info("gdb: packet %r while running ignored", event[1][:40])

    def _send_raw(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise ClientGone(str(exc)) from exc

    def send(self, payload: bytes | str) -> None:
        """Send one packet; in acknowledged mode wait for '+' (resend on '-', 3 tries)."""
        raw = frame(payload.encode() if isinstance(payload, str) else payload)
        for _ in range(4):
            self._send_raw(raw)
            if not self.ack:
                return
            while True:
                event = self._next(True)
                if event is None:
                    continue
                if event[0] in ("+", "-"):
                    break
                self._events.append(event)
            if event[0] == "+":
                return
        log.warning("gdb: packet %r refused four times", raw[:40])


@dataclass
class Watch:
    """One watchpoint: GDB kind (2 write, 3 read, 4 access) over a virtual range."""

    kind: int
    va: int
    length: int
    #: (physical start, physical end exclusive, virtual start) per page, set when armed
    pieces: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return _WATCH_KINDS[self.kind]


class _Marker:
    """What the target does next instead of a reply (resume, detach, kill)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_RESUME = _Marker("resume")
_DETACH = _Marker("detach")
_KILL = _Marker("kill")
Reply = str | _Marker | None  # None: the reply was already sent


class GdbStub:
    """RSP server for one :class:`~emu.machine.Machine`, listening on 127.0.0.1.

    ``port=0`` picks a free port (see :attr:`port`). With ``wait`` the target
    stays stopped before its first instruction until a debugger connects and
    resumes it; without, the run starts at once and a debugger that connects
    later stops it at the next slice boundary.
    """

    def __init__(self, machine: Machine, port: int = 0, *, wait: bool = True) -> None:
        if not 0 <= port <= 0xFFFF:
            raise ConfigurationError(f"gdb port must be 0..65535, not {port}")
        self.machine = machine
        self.wait = wait
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.listener.bind((HOST, port))
        except OSError as exc:
            self.listener.close()
            raise ConfigurationError(f"cannot listen for gdb on {HOST}:{port}: {exc}") from exc
        self.listener.listen(1)
        self.port: int = self.listener.getsockname()[1]
        self.conn: RspConnection | None = None
        self.breakpoints: dict[int, int] = {}  # virtual address -> hook handle
        self.watches: dict[tuple[int, int, int], Watch] = {}
        self.stats = {"connections": 0, "packets": 0, "stops": 0, "steps": 0}
        self._watch_hooks: list[int] = []
        self._bp_armed = True
        self._wp_armed = True
        self._hit: tuple[str, int] | None = None  # ("break", pc) or (watch kind name, va)
        self._watch_pc: int | None = None  # PC of the access that stopped on a watchpoint
        self._reply_due = False  # the client resumed the target and waits for a stop reply
        self._last_stop = f"S{SIGTRAP:02x}"
        self._serving = False
        self._started = False
        self._ended = False
        machine.between_slices = self.between_slices

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    # life cycle -------------------------------------------------------------------
    def between_slices(self) -> None:
        """Called by the run loop before each slice: report stops and serve the client."""
        if self._serving or self._ended:
            return
        first = not self._started
        self._started = True
        if self.conn is None:
            if first and self.wait:
                self._accept(block=True)
            elif not self._accept(block=False):
                return
            self._serve(self._stop_reply(SIGTRAP))
            return
        hit, self._hit = self._hit, None
        try:
            if hit is not None:
                self._serve(self._stop_reply(SIGTRAP, hit))
            elif self.conn.poll_interrupt():
                self._serve(self._stop_reply(SIGINT))
        except ClientGone as exc:
            self._drop_client(f"debugger gone ({exc})")

    def finish(self, result: RunResult) -> None:
        """Tell a connected debugger how the run ended and stop listening."""
        if self.conn is not None and not self._ended:
            with contextlib.suppress(ClientGone):
                self.conn.send(self._exit_reply(result))
        self._ended = True
        self._drop_client("run ended")
        self.close()

    def close(self) -> None:
        """Stop listening (the run goes on without a debugger)."""
        self._ended = True
        if self.conn is not None:
            self._drop_client("stub closed")
        self.listener.close()
        if self.machine.between_slices == self.between_slices:
            self.machine.between_slices = None

    def _accept(self, block: bool) -> bool:
        if not block:
            ready, _, _ = select.select([self.listener], [], [], 0)
            if not ready:
                return False
        try:
            sock, peer = self.listener.accept()
        except OSError as exc:  # a connection reset before accept: keep running
            log.warning("gdb: accept failed: %s", exc)
            return False
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = RspConnection(sock)
        self.stats["connections"] += 1
        log.info("gdb: debugger connected from %s:%d", *peer[:2])
        return True

    def _drop_client(self, why: str) -> None:
        """Forget the client: breakpoints and watchpoints go, the run continues."""
        if self.conn is not None:
            log.info("gdb: %s", why)
            self.conn.close()
            self.conn = None
        self._disarm_watches()
        for addr in list(self.breakpoints):
            self._remove_breakpoint(addr)
        self.watches.clear()
        self._hit = None
        self._watch_pc = None
        self._reply_due = False

    # serving ------------------------------------------------------------------------
    def _serve(self, stop_reply: str) -> None:
        """Answer packets while the target is stopped; return when it should run."""
        conn = self.conn
        if conn is None:
            return
        self.stats["stops"] += 1
        self._last_stop = stop_reply
        self._disarm_watches()
        self._serving = True
        try:
            if self._reply_due:
                self._reply_due = False
                conn.send(stop_reply)
            while True:
                kind, body = conn.read_packet()
                if kind == "intr":
                    continue
                self.stats["packets"] += 1
                try:
                    reply = self._dispatch(body)
                except ClientGone:
                    raise
                except Exception as exc:  # a bad packet must never end the run
                    log.warning("gdb: packet %r failed: %s", body[:60], exc)
                    reply = "E01"
                if reply is _RESUME:
                    self._reply_due = True
                    break
                if reply is _DETACH:
                    conn.send("OK")
                    self._drop_client("debugger detached")
                    return
                if reply is _KILL:
                    self._drop_client("killed by the debugger")
                    self.machine.request_stop(KILL_REASON, None, "killed by the debugger")
                    return
                if isinstance(reply, str):
                    conn.send(reply)
                if self._ended:  # a step ended the run: the exit reply was the last word
                    self._drop_client("run ended")
                    return
        except ClientGone as exc:
            self._drop_client(f"debugger gone ({exc})")
            return
        finally:
            self._serving = False
        self._arm_watches()

    def _dispatch(self, body: bytes) -> Reply:
        """The reply to one packet (a string), or a control marker."""
        if not body:
            return ""
        cmd = chr(body[0])
        text = body.decode("latin-1")
        if cmd == "X":
            return self._write_binary(body)
        handler = _HANDLERS.get(cmd)
        if handler is not None:
            return handler(self, text[1:])
        if text.startswith(("q", "Q")):
            return self._query(text)
        if text.startswith("v"):
            return self._v_packet(text)
        return ""

    def _query(self, text: str) -> Reply:
        name, _, arg = text.partition(":")
        if name == "qSupported":
            return (f"PacketSize={PACKET_SIZE:x};qXfer:features:read+;QStartNoAckMode+;"
                    "swbreak+;hwbreak+;vContSupported+")
        if name == "QStartNoAckMode":
            assert self.conn is not None
            self.conn.send("OK")
            self.conn.ack = False
            return None
        if name == "qXfer" and arg.startswith("features:read:"):
            annex, _, span = arg[len("features:read:"):].partition(":")
            if annex != "target.xml":
                return "E00"
            off_s, _, len_s = span.partition(",")
            off, length = int(off_s, 16), int(len_s, 16)
            data = TARGET_XML.encode()
            chunk = data[off:off + min(length, PACKET_SIZE - 16)]
            return ("l" if off + len(chunk) >= len(data) else "m") + chunk.decode()
        if name == "qAttached":
            return "1"
        if name == "qC":
            return "QC1"
        if name == "qfThreadInfo":
            return "m1"
        if name == "qsThreadInfo":
            return "l"
        if name == "qSymbol":
            return "OK"
        if name.startswith("qThreadExtraInfo"):
            return _hex(f"cpu0 mode 0x{self.machine.cpu.mode:02x}".encode())
        if name.startswith("qRcmd,"):
            return self._monitor(bytes.fromhex(name[len("qRcmd,"):]).decode(errors="replace"))
        return ""

    def _v_packet(self, text: str) -> Reply:
        if text == "vCont?":
            return "vCont;c;C;s;S"
        if text.startswith("vCont;"):
            actions = [a.split(":")[0] for a in text[len("vCont;"):].split(";") if a]
            if any(a[:1] in ("s", "S") for a in actions):
                return self._step()
            if any(a[:1] in ("c", "C") for a in actions):
                return self._resume()
            return "E01"
        if text.startswith("vKill"):
            assert self.conn is not None
            self.conn.send("OK")
            return _KILL
        return ""

    # packets --------------------------------------------------------------------------
    def _p_stop(self, arg: str) -> str:
        return self._last_stop

    def _p_regs(self, arg: str) -> str:
        return "".join(_le32(v) for v in self._registers())

    def _p_write_regs(self, arg: str) -> str:
        values = [int.from_bytes(bytes.fromhex(arg[i:i + 8]), "little")
                  for i in range(0, len(arg) - 7, 8)]
        if len(values) < 17:
            return "E01"
        self._set_reg(REG_CPSR, values[16])
        for n in range(16):
            self._set_reg(n, values[n])
        return "OK"

    def _p_reg(self, arg: str) -> str:
        n = int(arg, 16)
        regs = self._registers()
        if n < 16:
            return _le32(regs[n])
        if n == REG_CPSR:
            return _le32(regs[16])
        return "E01"

    def _p_write_reg(self, arg: str) -> str:
        n_s, _, v_s = arg.partition("=")
        n = int(n_s, 16)
        if n >= 16 and n != REG_CPSR:
            return "E01"
        self._set_reg(n, int.from_bytes(bytes.fromhex(v_s), "little"))
        return "OK"

    def _p_read_mem(self, arg: str) -> str:
        addr_s, _, len_s = arg.partition(",")
        addr, length = int(addr_s, 16), min(int(len_s, 16), PACKET_SIZE // 2 - 8)
        if length == 0:
            return ""
        data = self.read_memory(addr, length)
        return data.hex() if data else "E14"

    def _p_write_mem(self, arg: str) -> str:
        head, _, hexdata = arg.partition(":")
        addr_s, _, len_s = head.partition(",")
        data = bytes.fromhex(hexdata)
        if len(data) != int(len_s, 16):
            return "E01"
        return "OK" if self.write_memory(int(addr_s, 16), data) else "E14"

    def _write_binary(self, body: bytes) -> str:
        colon = body.find(b":")
        if colon < 0:
            return "E01"
        addr_s, _, len_s = body[1:colon].decode().partition(",")
        data = unescape(body[colon + 1:])
        if len(data) != int(len_s, 16):
            return "E01"
        if not data:
            return "OK"
        return "OK" if self.write_memory(int(addr_s, 16), data) else "E14"

    def _p_continue(self, arg: str) -> Reply:
        if arg:
            self._set_reg(REG_PC, int(arg, 16))
        return self._resume()

    def _p_continue_sig(self, arg: str) -> Reply:
        _, _, addr = arg.partition(";")
        return self._p_continue(addr)

    def _p_step(self, arg: str) -> str:
        if arg:
            self._set_reg(REG_PC, int(arg, 16))
        return self._step()

    def _p_step_sig(self, arg: str) -> str:
        _, _, addr = arg.partition(";")
        return self._p_step(addr)

    def _p_ok(self, arg: str) -> str:
        return "OK"

    def _p_detach(self, arg: str) -> Reply:
        return _DETACH

    def _p_kill(self, arg: str) -> Reply:
        return _KILL

    def _p_insert(self, arg: str) -> str:
        kind, addr, length = _point(arg)
        if kind in (0, 1):
            self._add_breakpoint(addr)
            return "OK"
        if kind in _WATCH_KINDS:
            if length <= 0:
                return "E01"
            self.watches[(kind, addr, length)] = Watch(kind, addr, length)
            return "OK"
        return ""

    def _p_remove(self, arg: str) -> str:
        kind, addr, length = _point(arg)
        if kind in (0, 1):
            self._remove_breakpoint(addr)
            return "OK"
        if kind in _WATCH_KINDS:
            self.watches.pop((kind, addr, length), None)
            return "OK"
        return ""

    def _monitor(self, command: str) -> str:
        """``monitor`` commands: a line of text back (hex 'O' output is not needed)."""
        m = self.machine
        words = command.split()
        if not words or words[0] == "help":
            text = "monitor commands: time, translate VA\n"
        elif words[0] == "time":
            text = (f"ticks {m.clock.now} ({m.clock.now / m.clock.hz:.6f} s), "
                    f"instructions {m.instructions}\n")
        elif words[0] == "translate" and len(words) == 2:
            va = int(words[1], 0)
            pa = m.translate(va)
            text = f"0x{va:08x} -> " + (f"0x{pa:08x}\n" if pa is not None else "unmapped\n")
        else:
            text = f"unknown monitor command {command!r}\n"
        return _hex(text.encode())

    # registers ----------------------------------------------------------------------
    def _registers(self) -> list[int]:
        cpu = self.machine.cpu
        regs = [cpu.reg(i) for i in range(15)]
        return [*regs, cpu.pc & ~1, cpu.cpsr]

    def _set_reg(self, n: int, value: int) -> None:
        cpu = self.machine.cpu
        if n == REG_CPSR:
            pc = cpu.pc & ~1
            cpu.set_cpsr(value)
            cpu.set_pc(pc, bool(value & CPSR_T))
        elif n == REG_PC:
            cpu.set_pc(value & ~1)
        else:
            cpu.set_reg(n, value)

    # memory -------------------------------------------------------------------------
    def _pieces(self, va: int, length: int) -> list[tuple[int, int, int]]:
        """(physical, size, virtual) per page of a virtual range, up to the first hole."""
        out = []
        end = va + length
        while va < end:
            chunk = min(end - va, 0x1000 - (va & 0xFFF))
            pa = self.machine.translate(va & 0xFFFF_FFFF)
            if pa is None:
                break
            out.append((pa, chunk, va))
            va += chunk
        return out

    def read_memory(self, va: int, length: int) -> bytes:
        """Guest RAM/flash at a virtual address; shorter (maybe empty) at the first hole."""
        bus = self.machine.bus
        out = bytearray()
        for pa, size, _ in self._pieces(va, length):
            if not bus.is_memory(pa, size):
                break
            out += bus.read(pa, size)
        return bytes(out)

    def write_memory(self, va: int, data: bytes) -> bool:
        """Write guest RAM/flash at a virtual address (all or nothing)."""
        bus = self.machine.bus
        pieces = self._pieces(va, len(data))
        if sum(p[1] for p in pieces) != len(data) or \
                not all(bus.is_memory(pa, size) for pa, size, _ in pieces):
            return False
        pos = 0
        for pa, size, _ in pieces:
            bus.write(pa, data[pos:pos + size])
            pos += size
        self.machine.cpu.uc.ctl_flush_tb()  # the bytes may be code
        return True

    # breakpoints and watchpoints -----------------------------------------------------
    def _add_breakpoint(self, addr: int) -> None:
        if addr in self.breakpoints:
            return
        uc = self.machine.cpu.uc
        self.breakpoints[addr] = uc.hook_add(UC_HOOK_CODE, self._on_break, begin=addr,
                                             end=addr)
        uc.ctl_remove_cache(addr, addr + 4)

    def _remove_breakpoint(self, addr: int) -> None:
        handle = self.breakpoints.pop(addr, None)
        if handle is None:
            return
        uc = self.machine.cpu.uc
        uc.hook_del(handle)
        uc.ctl_remove_cache(addr, addr + 4)

    def _on_break(self, uc: Any, address: int, size: int, user: Any) -> None:
        if self._bp_armed and address in self.breakpoints:
            self._hit = ("break", address)
            uc.emu_stop()

    def _arm_watches(self) -> None:
        """Hook the physical ranges the watched virtual ranges map to right now."""
        self._disarm_watches()
        if self.watches:
            self.machine.exact_pc = True  # a watchpoint reports the accessing instruction
        uc = self.machine.cpu.uc
        for w in self.watches.values():
            w.pieces = [(pa, pa + size, va) for pa, size, va in self._pieces(w.va, w.length)]
            types = {2: UC_HOOK_MEM_WRITE, 3: UC_HOOK_MEM_READ,
                     4: UC_HOOK_MEM_READ | UC_HOOK_MEM_WRITE}[w.kind]
            for lo, hi, _ in w.pieces:
                self._watch_hooks.append(uc.hook_add(types, self._on_watch, w, begin=lo,
                                                     end=hi - 1))
        if self._watch_hooks:
            uc.ctl_flush_tb()

    def _disarm_watches(self) -> None:
        if not self._watch_hooks:
            return
        uc = self.machine.cpu.uc
        for handle in self._watch_hooks:
            uc.hook_del(handle)
        self._watch_hooks.clear()
        uc.ctl_flush_tb()

    def _on_watch(self, uc: Any, access: int, address: int, size: int, value: int,
                  w: Watch) -> None:
        if not self._wp_armed or self._hit is not None:
            return
        for lo, hi, va in w.pieces:
            if address < hi and lo < address + size:
                self._hit = (w.name, va + max(address, lo) - lo)
                self._watch_pc = self.machine.cpu.pc & ~1
                uc.emu_stop()
                return

    # running ----------------------------------------------------------------------
    def _step(self) -> str:
        """Run one instruction the way the run loop does (interrupts first) and report."""
        pc = self.machine.cpu.pc & ~1
        self._bp_armed = False
        self._wp_armed = self._watch_pc != pc
        self._hit = None
        self._watch_pc = None
        self._arm_watches()
        try:
            result = self.machine.run(max_instructions=1)
        finally:
            self._disarm_watches()
            self._bp_armed = self._wp_armed = True
        self.stats["steps"] += 1
        if result.reason != "max-instructions":
            self._ended = True
            return self._exit_reply(result)
        hit, self._hit = self._hit, None
        self._last_stop = self._stop_reply(SIGTRAP, hit)
        return self._last_stop

    def _resume(self) -> Reply:
        """Continue: first step off a breakpoint or watched access at PC, then run."""
        pc = self.machine.cpu.pc & ~1
        if pc in self.breakpoints or self._watch_pc == pc:
            reply = self._step()
            if self._ended or not reply.startswith("T05thread") or "watch:" in reply:
                return reply
        self._hit = None
        return _RESUME

    # replies --------------------------------------------------------------------------
    def _stop_reply(self, signal: int, hit: tuple[str, int] | None = None) -> str:
        regs = self._registers()
        text = (f"T{signal:02x}thread:1;{REG_SP:02x}:{_le32(regs[REG_SP])};"
                f"{REG_PC:02x}:{_le32(regs[REG_PC])};{REG_CPSR:02x}:{_le32(regs[16])};")
        if hit is not None:
            what, addr = hit
            text += "swbreak:;" if what == "break" else f"{what}:{addr:x};"
        return text

    def _exit_reply(self, result: RunResult) -> str:
        if result.reason == "poweroff":
            return f"W{(result.exit_status or 0) & 0xFF:02x}"
        return f"X{SIGTRAP if result.reason != KILL_REASON else 9:02x}"


def _le32(value: int) -> str:
    return (value & 0xFFFF_FFFF).to_bytes(4, "little").hex()


def _hex(data: bytes) -> str:
    return data.hex()


def _point(arg: str) -> tuple[int, int, int]:
    """``type,addr,kind`` of a Z/z packet (conditions after ';' are ignored)."""
    fields = arg.split(";", maxsplit=1)[0].split(",")
    return int(fields[0]), int(fields[1], 16), int(fields[2], 16)


_HANDLERS: dict[str, Callable[[GdbStub, str], Reply]] = {
    "?": GdbStub._p_stop,
    "g": GdbStub._p_regs,
    "G": GdbStub._p_write_regs,
    "p": GdbStub._p_reg,
    "P": GdbStub._p_write_reg,
    "m": GdbStub._p_read_mem,
    "M": GdbStub._p_write_mem,
    "c": GdbStub._p_continue,
    "C": GdbStub._p_continue_sig,
    "s": GdbStub._p_step,
    "S": GdbStub._p_step_sig,
    "H": GdbStub._p_ok,
    "T": GdbStub._p_ok,
    "D": GdbStub._p_detach,
    "k": GdbStub._p_kill,
    "Z": GdbStub._p_insert,
    "z": GdbStub._p_remove,
}
