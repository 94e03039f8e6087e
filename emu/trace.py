"""Run tracing: one text line per executed instruction, device access, DMA transaction,
interrupt entry and exception or firmware call.

The format is stable and documented in docs/trace.md; every line starts with
the virtual time (ticks, right-aligned in 13 columns) and a category:

- ``cpu``: an executed instruction (virtual PC, symbol, raw encoding, disassembly);
- ``mmio``: a guest access to a device model (physical address, device, register);
- ``dma``: a DMA access of a master through its bus view, accepted or refused;
- ``irq``: an IRQ or FIQ entry (interrupt id from the GIC, PC interrupted);
- ``svc``: SVC, undefined-instruction and abort entries, HVC/SMC firmware calls.

Cheap when off: the machine, the bus and the exception unit carry a ``tracer``
attribute that stays ``None``; nothing else changes. A Unicorn code hook is
added only for ``cpu``, only over ``--trace-range`` when one is given, and only
while virtual time is inside ``--trace-window``.

Times are the machine's virtual time as devices see it: inside a slice of
instructions the clock stands at the slice's start (see docs/time.md), so all
lines of one slice share a time. The same run gives the same trace, byte for byte.

A trace file is never left half-written: :func:`install` writes it as
``PATH.part`` in whole lines (one ``write`` per batch of lines) and
:meth:`Tracer.close` renames it to ``PATH``, which the run commands do on every
end (normal stop, fault, interruption, error). Only a process killed outright
leaves the ``.part`` file, which still ends with a whole line.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, TextIO, cast

from capstone import CS_ARCH_ARM, CS_MODE_ARM, CS_MODE_THUMB, Cs
from unicorn import UC_HOOK_CODE
from unicorn.arm_const import UC_ARM_REG_CPSR

from emu.cpu.core import CPSR_T
from emu.devices.intc.gic import SPURIOUS
from emu.dmacheck import MasterCheck
from emu.errors import ConfigurationError
from emu.services import psci
from emu.services.cma import CmaCall

if TYPE_CHECKING:
    from emu.bus import BusView, Region
    from emu.cpu.exceptions import ExceptionInfo
    from emu.machine import Machine
    from emu.services.smccc import Call

#: every category, in the order docs/trace.md describes them
CATEGORIES = ("cpu", "mmio", "dma", "irq", "svc")
TIME_WIDTH = 13
SYMBOL_WIDTH = 24
DEVICE_WIDTH = 12
REGISTER_WIDTH = 12
#: a symbol further below the PC than this is not shown (the PC is outside the image)
MAX_SYMBOL_OFFSET = 0x10000
#: distinct (address, encoding, state) instructions remembered for formatting
INSN_CACHE_LIMIT = 1 << 18
#: lines buffered before they are written out
FLUSH_LINES = 4096
#: suffix of a trace file while it is being written
PART_SUFFIX = ".part"

_TIME_UNITS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
#: PSCI functions: name in the psci module → arguments shown (SYSTEM_OFF: our exit status)
_PSCI_ARITY = {"PSCI_VERSION": 0, "CPU_SUSPEND": 3, "CPU_OFF": 0, "CPU_ON": 3,
               "AFFINITY_INFO": 2, "MIGRATE": 1, "MIGRATE_INFO_TYPE": 0,
               "MIGRATE_INFO_UP_CPU": 0, "SYSTEM_OFF": 1, "SYSTEM_RESET": 0,
               "PSCI_FEATURES": 1}
_PSCI_NAMES = {getattr(psci, n): (n if n.startswith("PSCI_") else f"PSCI_{n}", k)
               for n, k in _PSCI_ARITY.items()}
#: CMA service calls → arguments shown (docs/abi.md)
_CMA_ARITY = {CmaCall.VERSION: 0, CmaCall.ALLOC: 5, CmaCall.GET: 1, CmaCall.PUT: 1,
              CmaCall.INFO: 5, CmaCall.PHYS_TO_DMA: 5, CmaCall.DMA_TO_PHYS: 5,
              CmaCall.CPU_ADDR: 1}


# option parsing ---------------------------------------------------------------------
def parse_categories(text: str) -> frozenset[str]:
    """``"cpu,mmio"`` (or ``"all"``) as a set of categories; unknown names raise."""
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigurationError(f"--trace needs categories from {','.join(CATEGORIES)}, "
                                 f"not {text!r}")
    if "all" in names:
        return frozenset(CATEGORIES)
    bad = [n for n in names if n not in CATEGORIES]
    if bad:
        raise ConfigurationError(f"trace category must be one of {', '.join(CATEGORIES)} or "
                                 f"all, not {bad[0]!r}")
    return frozenset(names)


def _int(text: str, what: str) -> int:
    try:
        return int(text.strip().replace("_", ""), 0)
    except ValueError:
        raise ConfigurationError(f"{what} must be a number (0x... or decimal), "
                                 f"not {text!r}") from None


def parse_range(text: str) -> tuple[int, int]:
    """``START-END`` or ``START+SIZE`` as the half-open range ``[start, end)``."""
    if "+" in text:
        lo_s, size_s = text.split("+", 1)
        lo = _int(lo_s, "trace range start")
        hi = lo + _int(size_s, "trace range size")
    elif "-" in text:
        lo_s, hi_s = text.split("-", 1)
        lo, hi = _int(lo_s, "trace range start"), _int(hi_s, "trace range end")
    else:
        raise ConfigurationError(f"trace range must be START-END or START+SIZE, not {text!r}")
    if not 0 <= lo < hi <= 1 << 32:
        raise ConfigurationError(f"trace range must satisfy 0 <= start < end <= 0x100000000, "
                                 f"not {text!r}")
    return lo, hi


def parse_time(text: str, hz: int) -> int:
    """Ticks from ``123`` (ticks) or ``1.5ms`` / ``2s`` / ``10us`` / ``300ns`` at ``hz``."""
    t = text.strip().lower()
    for suffix in ("ms", "us", "ns", "s"):
        if t.endswith(suffix):
            try:
                value = Decimal(t[: -len(suffix)])
            except InvalidOperation:
                break
            if value < 0:
                break
            return int(value * hz / _TIME_UNITS[suffix])
    else:
        if t.isdigit():
            return int(t)
    raise ConfigurationError(f"trace time must be ticks or a number with s, ms, us or ns, "
                             f"not {text!r}")


def parse_window(text: str, hz: int) -> tuple[int, int | None]:
    """``T0-T1`` (either side may be empty) as ticks ``[t0, t1)``; ``t1`` None: no end."""
    if "-" not in text:
        raise ConfigurationError(f"trace window must be T0-T1 (e.g. 1ms-2ms), not {text!r}")
    a, b = text.split("-", 1)
    t0 = parse_time(a, hz) if a.strip() else 0
    t1 = parse_time(b, hz) if b.strip() else None
    if t1 is not None and t1 <= t0:
        raise ConfigurationError(f"trace window must end after it starts, not {text!r}")
    return t0, t1


# naming ------------------------------------------------------------------------------
def short_name(path: str) -> str:
    """A node path's last component without its unit address: ``/soc/camera@0`` → ``camera``.

    A second ``reg`` block keeps its suffix (``/intc@8000000#1`` → ``intc#1``).
    """
    last = path.rsplit("/", 1)[-1] or path
    base, _, rest = last.partition("#")
    base = base.split("@", 1)[0]
    return f"{base}#{rest}" if rest else base


def service_name(fid: int) -> str:
    """The name of an SMCCC function this machine serves (PSCI, CMA), ``-`` otherwise."""
    return _service(fid)[0]


def _service(fid: int) -> tuple[str, int]:
    """(name, number of arguments shown); unknown calls show r1..r7."""
    psci_fn = _PSCI_NAMES.get(fid & ~0x4000_0000)
    if psci_fn is not None and (fid >> 24) & 0xBF == 0x84:
        return psci_fn
    try:
        cma_fn = CmaCall(fid)
    except ValueError:
        return "-", 7
    return f"CMA_{cma_fn.name}", _CMA_ARITY.get(cma_fn, 7)


# the tracer ----------------------------------------------------------------------------
class Tracer:
    """Writes trace lines for the asked categories; attach it to one machine."""

    def __init__(self, out: TextIO, categories: Iterable[str], *,
                 addr_range: tuple[int, int] | None = None,
                 window: tuple[int, int | None] | None = None, owns_out: bool = False,
                 final_path: str | os.PathLike[str] | None = None) -> None:
        self.out = out
        #: where ``close`` renames the (owned) output file; None: nothing to rename
        self.final_path = final_path
        self.categories = frozenset(categories)
        bad = self.categories - set(CATEGORIES)
        if bad:
            raise ConfigurationError(f"trace category must be one of {', '.join(CATEGORIES)}, "
                                     f"not {sorted(bad)[0]!r}")
        self.addr_range = addr_range
        self.window = window or (0, None)
        #: lines written per category
        self.counts: dict[str, int] = dict.fromkeys(CATEGORIES, 0)
        self.machine: Machine | None = None
        self._owns_out = owns_out
        self._lines: list[str] = []
        self._cpu = "cpu" in self.categories
        self._mmio = "mmio" in self.categories
        self._dma = "dma" in self.categories
        self._irq = "irq" in self.categories
        self._svc = "svc" in self.categories
        self._code_hook: int | None = None
        self._insns: dict[tuple[int, bytes | None], str] = {}
        self._cs_arm = Cs(CS_ARCH_ARM, CS_MODE_ARM)
        self._cs_thumb = Cs(CS_ARCH_ARM, CS_MODE_THUMB)
        self._seen_violations: dict[int, int] = {}
        self._short: dict[str, str] = {}

    # wiring ----------------------------------------------------------------------------
    def attach(self, machine: Machine) -> None:
        """Set the callback points of ``machine``; add the code hook when ``cpu`` is asked."""
        if self.machine is not None:
            raise ConfigurationError("this tracer is already attached to a machine")
        self.machine = machine
        if self._mmio or self._dma:
            machine.bus.tracer = self
        if self._irq or self._svc:
            machine.exceptions.tracer = self
        machine.tracer = self
        if self._cpu:
            self._update_code_hook(machine.clock.now)

    def detach(self) -> None:
        """Remove every callback point and hook; buffered lines are written."""
        m = self.machine
        if m is None:
            return
        self._remove_code_hook()
        if m.bus.tracer is self:
            m.bus.tracer = None
        if m.exceptions.tracer is self:
            m.exceptions.tracer = None
        if m.tracer is self:
            m.tracer = None
        self.machine = None
        self.flush()

    def close(self) -> None:
        """Detach, flush, and close the output when the tracer opened it.

        With ``final_path`` the file written so far is renamed there, even when
        the flush fails, so a trace is never left under its temporary name.
        """
        try:
            self.detach()
        finally:
            if self._owns_out:
                try:
                    self.out.close()
                finally:
                    self._finish_file()

    def _finish_file(self) -> None:
        final, self.final_path = self.final_path, None
        name = getattr(self.out, "name", None)
        if final is not None and isinstance(name, str) and os.path.exists(name):
            try:
                os.replace(name, final)
            except OSError as exc:
                raise ConfigurationError(f"cannot rename the trace {name} to {final}: "
                                         f"{exc.strerror or exc}") from exc

    def flush(self) -> None:
        """Write the buffered lines out."""
        if self._lines:
            self._write_out()
        self.out.flush()

    @property
    def hooked(self) -> bool:
        """Whether the per-instruction code hook is installed right now."""
        return self._code_hook is not None

    def _in_window(self, now: int) -> bool:
        t0, t1 = self.window
        return t0 <= now and (t1 is None or now < t1)

    def _update_code_hook(self, now: int) -> None:
        if self._in_window(now):
            if self._code_hook is None:
                self._add_code_hook()
        elif self._code_hook is not None:
            self._remove_code_hook()

    def _add_code_hook(self) -> None:
        assert self.machine is not None
        uc = self.machine.cpu.uc
        lo, hi = self.addr_range or (1, 0)  # Unicorn: begin > end hooks every address
        self._code_hook = uc.hook_add(UC_HOOK_CODE, self._on_code, None, lo,
                                      hi - 1 if self.addr_range else 0)
        uc.ctl_flush_tb()  # blocks translated before the hook existed would not call it

    def _remove_code_hook(self) -> None:
        if self._code_hook is None or self.machine is None:
            return
        uc = self.machine.cpu.uc
        uc.hook_del(self._code_hook)
        self._code_hook = None
        uc.ctl_flush_tb()

    def _emit(self, now: int, category: str, text: str) -> None:
        self._lines.append(f"{now:>{TIME_WIDTH}} {category:<4} {text}\n")
        self.counts[category] += 1
        if len(self._lines) >= FLUSH_LINES:
            self._write_out()

    def _write_out(self) -> None:
        self.out.write("".join(self._lines))
        self._lines.clear()

    def _symbol(self, addr: int) -> str:
        m = self.machine
        if m is None or m.symbols is None:
            return "-"
        text = m.symbols.symbolize(addr)
        if text.startswith("0x"):
            return "-"
        _, plus, off = text.rpartition("+0x")
        if plus and int(off, 16) >= MAX_SYMBOL_OFFSET:
            return "-"
        return text

    def _in_range(self, addr: int, size: int) -> bool:
        r = self.addr_range
        return r is None or (addr < r[1] and r[0] < addr + size)

    # callback points ---------------------------------------------------------------------
    def slice_start(self, now: int) -> None:
        """Called by the run loop before each slice: the code hook follows the window."""
        if self._cpu:
            self._update_code_hook(now)

    def _on_code(self, uc: Any, address: int, size: int, user: Any) -> None:
        m = self.machine
        if m is None:
            return
        key = (address, m.bus.read_virt(address, size))
        text = self._insns.get(key)
        if text is None:  # CPSR.T is read once per address and encoding (a register read
            # costs more than the rest of this hook)
            thumb = bool(uc.reg_read(UC_ARM_REG_CPSR) & CPSR_T)
            text = self._format_insn(address, thumb, key[1])
            if len(self._insns) >= INSN_CACHE_LIMIT:
                self._insns.clear()
            self._insns[key] = text
        self._lines.append(f"{m.clock.now:>{TIME_WIDTH}} cpu  {text}\n")
        self.counts["cpu"] += 1
        if len(self._lines) >= FLUSH_LINES:
            self._write_out()

    def _format_insn(self, address: int, thumb: bool, raw: bytes | None) -> str:
        sym = self._symbol(address)
        if raw is None:
            return f"0x{address:08x} {sym:<{SYMBOL_WIDTH}} {'?':<9}  (not readable)"
        if thumb and len(raw) == 4:
            enc = f"{int.from_bytes(raw[:2], 'little'):04x} {int.from_bytes(raw[2:], 'little'):04x}"
        else:
            enc = f"{int.from_bytes(raw, 'little'):0{2 * len(raw)}x}"
        cs = self._cs_thumb if thumb else self._cs_arm
        asm = "(undefined)"
        for insn in cs.disasm_lite(raw, address, 1):
            asm = f"{insn[2]} {insn[3]}".rstrip()
        return f"0x{address:08x} {sym:<{SYMBOL_WIDTH}} {enc:<9}  {asm}"

    def mmio(self, region: Region, addr: int, size: int, value: int, write: bool) -> None:
        """A guest access to a device model (after the model answered a read)."""
        if not self._mmio or self.machine is None:
            return
        now = self.machine.clock.now
        if not self._in_window(now) or not self._in_range(addr, size):
            return
        offset = addr - region.start
        dev = region.device
        reg = dev.register_name(offset) if dev is not None else f"0x{offset:03x}"
        if offset & 3 and not reg.startswith("0x"):
            reg += f"+{offset & 3}"
        name = self._short.get(region.name)
        if name is None:
            name = self._short[region.name] = short_name(region.name)
        self._emit(now, "mmio",
                   f"0x{addr:08x} {name:<{DEVICE_WIDTH}} "
                   f"{reg:<{REGISTER_WIDTH}} {'W' if write else 'R'}{size} "
                   f"0x{value:0{2 * size}x}")

    def dma(self, view: BusView, bus_addr: int, size: int, access: str, phys: int | None,
            reason: str) -> None:
        """A DMA access after the view (and its checker) decided; ``phys`` None: refused."""
        if not self._dma or self.machine is None:
            return
        now = self.machine.clock.now
        if not self._in_window(now):
            return
        shown = phys if phys is not None else view.to_phys(bus_addr)
        verdict = self._violation(view, bus_addr) if phys is None else None
        if not self._in_range(shown if shown is not None else bus_addr, max(size, 1)):
            return
        where = f"0x{shown:08x}" if shown is not None else "-"
        text = (f"{short_name(view.name)} {access} bus 0x{bus_addr:08x} phys {where} "
                f"+0x{size:x} ")
        if phys is not None:
            text += "ok"
        elif verdict is not None:
            text += f"refused [{verdict[0]}] {verdict[1]}"
        else:
            text += f"refused {reason}"
        self._emit(now, "dma", text)

    def _violation(self, view: BusView, bus_addr: int) -> tuple[str, str] | None:
        chk = view.checker
        if not isinstance(chk, MasterCheck):
            return None
        found = chk.checker.violations
        key = id(chk.checker)
        seen = self._seen_violations.get(key, 0)
        self._seen_violations[key] = len(found)
        if len(found) > seen and found[-1].master == chk.master and found[-1].bus_addr == bus_addr:
            return found[-1].verdict, found[-1].detail
        return None

    def exception(self, info: ExceptionInfo) -> None:
        """An exception entry (IRQ/FIQ for ``irq``, the others for ``svc``)."""
        m = self.machine
        if m is None:
            return
        is_irq = info.kind in ("irq", "fiq")
        if not (self._irq if is_irq else self._svc):
            return
        now = m.clock.now
        if not self._in_window(now):
            return
        head = f"0x{info.address:08x} {self._symbol(info.address):<{SYMBOL_WIDTH}} {info.kind}"
        if is_irq:
            intid = m.gic.highest_pending() if m.gic is not None else SPURIOUS
            head += f" {intid if intid != SPURIOUS else '-'}"
            self._emit(now, "irq", f"{head} -> 0x{info.vector:08x}")
            return
        if info.kind == "svc":
            head += f" #0x{self._svc_number(info.address):x}"
        if info.fault_address is not None:
            head += f" far 0x{info.fault_address:08x} fsr 0x{info.fault_status or 0:03x}"
        self._emit(now, "svc", f"{head} -> 0x{info.vector:08x}")

    def _svc_number(self, address: int) -> int:
        assert self.machine is not None
        m = self.machine
        thumb = bool(m.cpu.spsr & CPSR_T)  # the state the SVC ran in
        raw = m.bus.read_virt(address, 2 if thumb else 4)
        if raw is None:
            return 0
        word = int.from_bytes(raw, "little")
        return word & 0xFF if thumb else word & 0xFF_FFFF

    def service(self, call: Call, result: Sequence[int]) -> None:
        """An HVC/SMC firmware call and its r0..r3 results."""
        m = self.machine
        if not self._svc or m is None:
            return
        now = m.clock.now
        if not self._in_window(now):
            return
        address = ((m.cpu.pc & ~1) - 4) & 0xFFFF_FFFF  # HVC/SMC are 4 bytes in ARM and Thumb
        name, arity = _service(call.fid)
        args = list(call.args[:arity])
        if arity == 7:
            while args and not args[-1]:
                args.pop()
        shown_args = ", ".join(f"0x{a & 0xFFFF_FFFF:x}" for a in args)
        shown_result = ", ".join(f"0x{r & 0xFFFF_FFFF:x}" for r in result)
        self._emit(now, "svc",
                   f"0x{address:08x} {self._symbol(address):<{SYMBOL_WIDTH}} {call.conduit} "
                   f"0x{call.fid:08x} {name}({shown_args}) -> {shown_result}")


def install(machine: Machine, categories: str | None, *, path: str | None = None,
            addr_range: str | None = None, window: str | None = None,
            stream: TextIO | None = None) -> Tracer:
    """Parse the command-line forms, open the output and attach a tracer to ``machine``.

    The trace goes to ``path`` (created or truncated) or else to ``stream``
    (standard error by default). Call :meth:`Tracer.close` after the run.
    """
    if not categories:
        raise ConfigurationError("--trace-file, --trace-range and --trace-window need --trace "
                                 "CATEGORIES")
    cats = parse_categories(categories)
    rng = parse_range(addr_range) if addr_range else None
    win = parse_window(window, machine.clock.hz) if window else None
    final: str | None = None
    if path is not None:
        final = os.fspath(path)
        try:
            out: TextIO = cast(TextIO, LineFile(final + PART_SUFFIX))
        except OSError as exc:
            raise ConfigurationError(f"cannot write the trace {final}: "
                                     f"{exc.strerror or exc}") from exc
        owns = True
    else:
        out, owns = stream or sys.stderr, False
    tracer = Tracer(out, cats, addr_range=rng, window=win, owns_out=owns, final_path=final)
    try:
        tracer.attach(machine)
    except BaseException:
        tracer.close()
        raise
    return tracer


class LineFile(io.TextIOBase):
    """A text file written straight through, one ``os.write`` loop per ``write`` call.

    The tracer hands it whole lines only, so whatever a sudden end of the
    process leaves in the file ends with a whole line (no buffer of the
    ``io`` stack holds half a line).
    """

    def __init__(self, path: str) -> None:
        super().__init__()
        self.name = path
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if self._fd is None:
            raise ValueError(f"write to the closed trace file {self.name}")
        view = memoryview(text.encode("utf-8"))
        while view:
            view = view[os.write(self._fd, view):]
        return len(text)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
        super().close()
