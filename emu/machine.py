"""The machine: a board's device tree turned into a running ARMv7-A system on Unicorn.

:class:`Machine` builds RAM, flash, the GIC, the generic timer, the device
models and unimplemented stubs from the device tree, gives every DMA master
its bus view, loads images, and runs the CPU in slices of virtual time:

- a slice runs up to N instructions, N up to the next clock deadline (and at most
  :attr:`Machine.max_slice` ticks); one tick is one instruction, counted per
  translated block by a native hook (:mod:`emu.cpu.blockclock`, may pass N by part
  of a block) or by Unicorn's exact ``emu_start(count=N)`` (``counting``);
- between slices the clock advances and runs device events, IRQs are taken
  (GIC output high and CPSR.I clear), scripted console input moves on, and
  the stop conditions are checked;
- WFI lets virtual time jump to the next deadline (no deadline and no input:
  the run stops as "idle").

See docs/machine.md and docs/time.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from emu.boards import load_board
from emu.bus import Bus, BusView
from emu.clock import VirtualClock
from emu.cpu import blockclock
from emu.cpu.core import CPSR_F, CPSR_I, Cpu, UcError
from emu.cpu.cp15 import TimerIntercept
from emu.cpu.exceptions import ExceptionUnit
from emu.devices.base import Device, DeviceContext, DeviceLog, IrqLine, Unimplemented
from emu.devices.char.pl011 import Pl011
from emu.devices.intc.gic import Gic
from emu.devices.mtd.cfi_flash import cfi_part
from emu.devices.registry import device_class_for, mmio_blocks
from emu.devices.timer.arm_generic_timer import TIMER_INTIDS, GenericTimer
from emu.dt import guest
from emu.dt.address import cpu_reg_windows
from emu.dt.dmamap import dma_map_for, dma_masters
from emu.dt.tree import DeviceTree, Node
from emu.errors import ConfigurationError, DeviceTreeError, ImageError
from emu.loaders import ElfImage, RawImage, ZImage, read_image
from emu.loaders.boot import BootPlan, linux_regs, place_dtb, place_initrd
from emu.loaders.raw import Segment
from emu.loaders.zimage import TEXT_OFFSET
from emu.services.psci import Psci
from emu.services.smccc import Call, SmcccDispatcher

if TYPE_CHECKING:
    from emu.trace import Tracer

log = logging.getLogger("emu.machine")

#: the address handed to ``emu_start`` as ``until``: never executed (see the facts on traps)
NEVER_EXECUTED = 0xFFFF_FFFE
DEFAULT_CLOCK_HZ = 100_000_000
DEFAULT_TIMER_HZ = 62_500_000  # QEMU's virt counter frequency
TIMER_ORDER = ("CNTPS", "CNTP", "CNTV", "CNTHP")  # arm,armv7-timer "interrupts" order

#: first slice length while an interrupt waits for the CPU to unmask it; it doubles on each
#: further masked slice (up to max_slice). After a WFI woken by a masked interrupt it starts
#: at 1, so an idle loop that re-masks before every WFI takes its interrupt within a few
#: instructions of unmasking, while a long masked section costs only a few extra slices.
MASKED_SLICE = 64
UNLIMITED = 1 << 62
#: instruction budgets below this (with ``max_instructions``) run on Unicorn's exact counter
EXACT_BELOW = 16
#: how slices count guest instructions (docs/time.md)
COUNTING_MODES = ("blocks", "instructions")
DEFAULT_COUNTING = "blocks"

STOP_REASONS = ("until", "poweroff", "reset", "idle", "max-instructions", "max-seconds",
                "max-virtual-seconds", "fault")


@dataclass
class RunResult:
    """How a run ended, with the numbers the summary and the JSON result show."""

    reason: str
    instructions: int
    ticks: int
    virtual_seconds: float
    wall_seconds: float
    pc: int
    exit_status: int | None = None
    message: str = ""

    @property
    def mips(self) -> float:
        return self.instructions / self.wall_seconds / 1e6 if self.wall_seconds > 0 else 0.0

    def describe(self) -> dict[str, object]:
        return {
            "reason": self.reason, "exit_status": self.exit_status, "message": self.message,
            "instructions": self.instructions, "ticks": self.ticks,
            "virtual_seconds": self.virtual_seconds, "wall_seconds": round(self.wall_seconds, 3),
            "mips": round(self.mips, 2), "pc": self.pc,
        }


@dataclass
class _Input:
    text: bytes
    after: str | None


@dataclass
class _DeviceEntry:
    node: str
    device: Device
    windows: list[tuple[int, int]] = field(default_factory=list)


class Machine:
    """One single-CPU ARMv7-A machine described by a device tree."""

    def __init__(self, board: DeviceTree | str | Path, cpu: str = "cortex-a15",
                 clock_hz: int = DEFAULT_CLOCK_HZ,
                 console: Callable[[bytes], None] | None = None, *,
                 max_slice: int | None = None, intercept: str = "patch",
                 char_interval: int | None = None, counting: str = DEFAULT_COUNTING) -> None:
        if counting not in COUNTING_MODES:
            raise ConfigurationError(f"counting must be one of {', '.join(COUNTING_MODES)}, "
                                     f"not {counting!r}")
        self.tree = board if isinstance(board, DeviceTree) else load_board(board)
        self.clock = VirtualClock(clock_hz)
        self.cpu = Cpu(cpu)
        #: how slices count instructions: "blocks" (native block hook) or "instructions"
        #: (Unicorn's emu_start count=); "blocks" falls back when the extension is missing
        self.counting = counting if counting == "instructions" or blockclock.available() \
            else "instructions"
        self.block_clock = blockclock.BlockClock(self.cpu.uc) \
            if self.counting == "blocks" else None
        #: set by tools whose memory hooks report the accessing instruction (the coherency
        #: checker, watchpoints): Unicorn keeps the PC exact per instruction only while a
        #: per-instruction hook exists, so slices then use its counter
        self.exact_pc = False
        self._counted_last = False  # the last slice ran on Unicorn's counter
        self.bus = Bus(self.cpu.uc, self.clock)
        self.console_sink = console
        self.console = bytearray()
        self.max_slice = max_slice or max(clock_hz // 1000, 1000)
        self.char_interval = char_interval or max(clock_hz // 10_000, 1)
        self.smccc = SmcccDispatcher()
        self.psci = Psci(self.request_stop)
        self.psci.register(self.smccc)
        self.exceptions = ExceptionUnit(self.cpu, self.bus, self._service_call)
        self.exceptions.on_fatal = lambda msg: self.request_stop("fault", None, msg)
        self.devices: dict[str, _DeviceEntry] = {}
        self.stubs: dict[str, Unimplemented] = {}
        self.views: dict[str, BusView] = {}
        self.logs: list[DeviceLog] = [self.exceptions.log]
        self.gic: Gic | None = None
        self.timer: GenericTimer | None = None
        self.uart: Pl011 | None = None
        self.irq_deliveries: list[tuple[int, str]] = []
        self.instructions = 0
        self.idle_ticks = 0
        self.symbols: ElfImage | None = None
        self.boot: BootPlan | None = None
        self._dtb_override: bytes | None = None
        self._dtb_at_ram_start = False
        self._dtb_used: list[tuple[str, int, int]] = []
        self._booted = False
        self._stop: tuple[str, int | None, str] | None = None
        self._inputs: deque[_Input] = deque()
        self._typing: deque[int] = deque()
        self._typing_event = False
        self._prompt_from = 0
        self._until_from = 0
        self._masked_budget = MASKED_SLICE
        #: called before each slice of the run loop (a debugger serves its client there)
        self.between_slices: Callable[[], None] | None = None
        #: set by :mod:`emu.trace` (firmware calls, slice starts); None when not tracing
        self.tracer: Tracer | None = None
        self.bus.on_unmapped = self._hole_access
        self._build()
        self.bus.finalize()
        self.exceptions.install()
        self.intercept: TimerIntercept | None = None
        if self.timer is not None:
            self.intercept = TimerIntercept(self.cpu, self.timer, self._read_page, intercept,
                                            write_code=self._write_code)
            self.intercept.install()
            if intercept == "patch":
                self.exceptions.undefined_handlers.append(self.intercept.on_undefined)

    # building --------------------------------------------------------------------
    def _ctx(self, node: Node, irqs: list[IrqLine], dma: BusView | None = None) -> DeviceContext:
        dlog = DeviceLog(node.name)
        self.logs.append(dlog)
        return DeviceContext(name=node.name, clock=self.clock, irqs=irqs, dma=dma, log=dlog,
                             node_path=node.path)

    def _build(self) -> None:
        tree = self.tree
        nodes = [n for n in tree.iter_nodes() if n.parent is not None and n.is_enabled]
        for node in nodes:
            if node.props.get("device_type", b"").rstrip(b"\0") == b"memory":
                for i, (start, size) in enumerate(cpu_reg_windows(node)):
                    self.bus.add_ram(f"{node.path}#{i}" if i else node.path, start, size)
        if not self.bus.ram_banks():
            raise ConfigurationError("the board has no memory node: nothing to run in")
        for node in nodes:
            if device_class_for(node.compatible) is Gic:
                irq, fiq = IrqLine(name="cpu.irq"), IrqLine(name="cpu.fiq")
                gic = Gic(self._ctx(node, [irq, fiq]))
                self.gic = gic
                self._map_blocks(node, gic)
                break
        master_paths = {n.path for n in dma_masters(tree)}
        for node in nodes:
            if node is self._gic_node() or node.props.get("device_type", b"").rstrip(b"\0") \
                    == b"memory" or "/reserved-memory" in node.path:
                continue
            compat = node.compatible
            if "arm,armv7-timer" in compat or "arm,armv8-timer" in compat:
                self._build_timer(node)
                continue
            if "cfi-flash" in compat:
                flog = DeviceLog(node.name)
                self.logs.append(flog)

                def on_write(offset: int, size: int, value: int, flog: DeviceLog = flog) -> None:
                    flog.unimp(f"flash write of 0x{value:x} ignored (bank not modelled)")

                width = node.get_u32("bank-width", 4)
                dwidth = node.get_u32("device-width", min(width, 2))
                for i, (start, size) in enumerate(cpu_reg_windows(node)):
                    part = cfi_part(size, flog, bank_width=width, device_width=dwidth)
                    self.bus.add_flash(f"{node.path}#{i}", start, size, on_write, part)
                continue
            if not node.has_prop("reg") or node.parent is None or node.parent.name == "cpus":
                continue
            try:
                windows = cpu_reg_windows(node)
            except DeviceTreeError:  # a reg that does not reach the CPU: not memory-mapped
                continue
            if not windows:
                continue
            cls = device_class_for(compat)
            if cls is None:
                for i, (start, size) in enumerate(windows):
                    name = node.path if i == 0 else f"{node.path}#{i}"
                    dlog = DeviceLog(node.name)
                    self.logs.append(dlog)
                    self.stubs[name] = self.bus.add_stub(name, start, size, self.clock, dlog)
                continue
            is_master = node.path in master_paths or cls.__module__.startswith("emu.devices.dma")
            view = self.bus.view(node.path, dma_map_for(tree, node).windows) if is_master \
                else None
            if view is not None:
                self.views[node.path] = view
            irqs = self._irq_lines(node)
            ctx = self._ctx(node, irqs, view)
            device = Pl011(ctx, console=self._console_out) if cls is Pl011 else cls(ctx)
            if isinstance(device, Pl011) and self.uart is None:
                self.uart = device
            self._map_blocks(node, device)
        for node in nodes:  # DMA views for masters without a model (stubs) too
            if node.path in master_paths and node.path not in self.views:
                self.views[node.path] = self.bus.view(node.path,
                                                      dma_map_for(tree, node).windows)

    def _gic_node(self) -> Node | None:
        if self.gic is None:
            return None
        return self.tree.find(self.gic.ctx.node_path)

    def _map_blocks(self, node: Node, device: Device) -> None:
        windows = cpu_reg_windows(node)
        blocks = mmio_blocks(device)
        entry = _DeviceEntry(node.path, device, windows)
        self.devices[node.path] = entry
        for i, (start, size) in enumerate(windows):
            if i < len(blocks):
                self.bus.add_device(node.path if i == 0 else f"{node.path}#{i}", start, size,
                                    blocks[i])
            else:
                name = f"{node.path}#{i}"
                self.stubs[name] = self.bus.add_stub(name, start, size, self.clock)

    def _irq_lines(self, node: Node) -> list[IrqLine]:
        if self.gic is None or not node.has_prop("interrupts"):
            return []
        cells = node.get_cells("interrupts")
        lines = []
        for i in range(0, len(cells) - 2, 3):
            kind, num = cells[i], cells[i + 1]
            lines.append(self.gic.spi_line(num) if kind == 0 else self.gic.ppi_line(num))
        return lines

    def _build_timer(self, node: Node) -> None:
        freq = node.get_u32("clock-frequency", DEFAULT_TIMER_HZ)
        irqs: dict[str, IrqLine] = {}
        if self.gic is not None and node.has_prop("interrupts"):
            cells = node.get_cells("interrupts")
            for name, i in zip(TIMER_ORDER, range(0, len(cells) - 2, 3), strict=False):
                if cells[i] == 1:
                    irqs[name] = self.gic.ppi_line(cells[i + 1])
        elif self.gic is not None:
            irqs = {n: self.gic.ppi_line(intid - 16) for n, intid in TIMER_INTIDS.items()}
        tlog = DeviceLog(node.name)
        self.logs.append(tlog)
        self.timer = GenericTimer(self.clock, freq, irqs, log=tlog)

    # memory helpers ------------------------------------------------------------------
    def _read_page(self, va: int) -> bytes | None:
        return self.bus.read_virt_code(va & ~0xFFF, 0x1000)

    def _write_code(self, va: int, data: bytes) -> bool:
        """Overwrite guest code at virtual ``va`` (the timer intercept's patches).

        Only RAM is patched: flash keeps the image's bytes (sites there get a code hook).
        """
        w = self.exceptions.translate(va)
        if w.phys is None or (w.phys & 0xFFF) + len(data) > 0x1000 \
                or not self.bus.is_ram(w.phys, len(data)):
            return False
        self.bus.write(w.phys, data)
        return True

    def _hole_access(self, addr: int, size: int, write: bool) -> None:
        self.exceptions.log.guest_error(
            f"{'write' if write else 'read'} of {size} bytes at 0x{addr:08x}: no device there"
        )

    def translate(self, va: int) -> int | None:
        """The physical address of ``va`` under the guest's current page tables (tools)."""
        return self.exceptions.translate(va).phys

    def symbolize(self, addr: int) -> str:
        """``name+0x10`` from the loaded ELF's symbols, hex otherwise."""
        return self.symbols.symbolize(addr) if self.symbols else f"0x{addr:08x}"

    @property
    def ram(self) -> tuple[int, int]:
        """The first RAM bank (start, size)."""
        return self.bus.ram_banks()[0]

    def reserve_ram(self, what: str, address: int, size: int) -> None:
        """Keep the DTB and initrd placement away from ``[address, address + size)``."""
        self._dtb_used.append((what, address, size))

    def load_segments(self, what: str, segments: list[Segment]) -> None:
        for seg in segments:
            if not self.bus.is_memory(seg.address, max(seg.size, 1)):
                raise ImageError(
                    f"{what}: segment at [0x{seg.address:x}, 0x{seg.end:x}) is not inside RAM "
                    "or flash of this board"
                )
            self.bus.write(seg.address, seg.data + bytes(seg.size - len(seg.data)))
            self._dtb_used.append((what, seg.address, seg.size))

    # loading ---------------------------------------------------------------------
    def load_bios(self, path: str | Path) -> BootPlan:
        """Firmware in flash at 0 (U-Boot on virt); the DTB goes at the start of RAM."""
        data = read_image(path)
        flash = [r for r in self.bus.regions if r.kind == "flash"]
        if not flash:
            raise ConfigurationError("--bios needs a board with flash (a cfi-flash node)")
        base = flash[0].start
        if len(data) > sum(r.size for r in flash):
            raise ImageError(f"{path}: {len(data)} bytes do not fit the flash")
        self.bus.write(base, data)
        self._dtb_at_ram_start = True
        self.boot = BootPlan(entry=base, placed=[("bios", base, len(data))])
        return self.boot

    def load_elf(self, path: str | Path) -> BootPlan:
        """An ELF image at its physical addresses, entered at its entry point with a DTB."""
        img = ElfImage(read_image(path), str(path))
        self.load_segments("elf", img.segments())
        self.symbols = img
        self.boot = BootPlan(entry=img.entry & ~1, thumb=bool(img.entry & 1),
                             placed=[("elf", s.address, s.size) for s in img.segments()])
        return self.boot

    def load_raw(self, path: str | Path, address: int, entry: int | None = None) -> BootPlan:
        img = RawImage(read_image(path), address, entry)
        self.load_segments("raw", img.segments())
        self.boot = BootPlan(entry=img.entry, placed=[("raw", address, len(img.data))])
        return self.boot

    def load_kernel(self, path: str | Path, *, host_decompress: bool = False,
                    initrd: str | Path | None = None, append: str | None = None) -> BootPlan:
        """A Linux zImage (or Image) with the ARM boot protocol; optional initrd and cmdline."""
        data = read_image(path)
        base = self.ram[0]
        offset = TEXT_OFFSET
        if ZImage.is_compatible(data):
            z = ZImage(data, str(path))
            payload = z.decompress() if host_decompress else data
            what = "Image" if host_decompress else "zImage"
            if host_decompress:
                offset = z.text_offset()
        else:
            payload, what = data, "Image"
        start = base + offset
        self.load_segments(what, [Segment(start, payload, len(payload))])
        if what == "zImage":  # room for the decompressed kernel above it
            self._dtb_used.append(("decompressed kernel", start, len(payload) * 4))
        self.boot = BootPlan(entry=start, placed=[(what, start, len(payload))])
        if initrd is not None:
            rd = read_image(initrd)
            at = place_initrd(self.ram, len(rd), self._dtb_used)
            self.load_segments("initrd", [Segment(at, rd, len(rd))])
            guest.set_initrd(self.tree, at, at + len(rd))
            self.boot.placed.append(("initrd", at, len(rd)))
        if append is not None:
            guest.set_bootargs(self.tree, append)
        return self.boot

    def set_dtb(self, dtb: str | Path | bytes) -> None:
        """Hand the guest this DTB instead of the board's own tree (checked: a valid FDT)."""
        data = dtb if isinstance(dtb, bytes) else read_image(dtb)
        where = "the DTB" if isinstance(dtb, bytes) else str(dtb)
        try:
            DeviceTree.from_dtb(data)
        except DeviceTreeError as exc:
            raise DeviceTreeError(f"{where}: not a usable device tree blob: {exc}") from None
        self._dtb_override = data

    def _prepare(self) -> None:
        if self._booted:
            return
        self._booted = True
        if self.boot is None:
            raise ConfigurationError("nothing to run: load a --bios, --kernel or --elf image")
        dtb = self._dtb_override if self._dtb_override is not None else self.tree.to_dtb()
        at = place_dtb(self.ram, len(dtb), self._dtb_used, self._dtb_at_ram_start)
        self.bus.write(at, dtb)
        self.boot.placed.append(("dtb", at, len(dtb)))
        regs = {0: 0, 1: 0, 2: 0} if self._dtb_at_ram_start else linux_regs(at)
        self.boot.regs = regs
        self.cpu.boot_state(self.boot.entry, regs, self.boot.thumb)

    # services ---------------------------------------------------------------------
    def _service_call(self, conduit: str) -> None:
        args = tuple(self.cpu.reg(i) for i in range(1, 8))
        call = Call(conduit, self.cpu.reg(0), args)
        out = self.smccc.dispatch(call)
        if self.tracer is not None:
            self.tracer.service(call, out)
        for i, v in enumerate(out[:4]):
            self.cpu.set_reg(i, v)

    def request_stop(self, reason: str, status: int | None = None, message: str = "") -> None:
        """End the run after the current instruction (services, faults)."""
        if self._stop is None:
            self._stop = (reason, status, message)
        self.cpu.uc.emu_stop()

    # console -----------------------------------------------------------------------
    def _console_out(self, data: bytes) -> None:
        self.console += data
        if self.console_sink is not None:
            self.console_sink(data)
        self._maybe_release_input()

    def send(self, text: str | bytes, after: str | None = None) -> None:
        """Queue console input; with ``after``, type it once that text has been printed."""
        raw = text.encode() if isinstance(text, str) else text
        self._inputs.append(_Input(raw, after))
        self._maybe_release_input()

    def _maybe_release_input(self) -> None:
        while self._inputs and not self._typing:
            item = self._inputs[0]
            if item.after:
                pos = self.console.find(item.after.encode(), self._prompt_from)
                if pos < 0:
                    return
                self._prompt_from = pos + len(item.after)
            self._inputs.popleft()
            self._typing.extend(item.text)
            if not self._typing_event:
                self._typing_event = True
                self.clock.schedule_in(self.char_interval, self._type_next, "console input")

    def _type_next(self) -> None:
        self._typing_event = False
        if not self._typing:
            return
        uart = self.uart
        if uart is not None and uart.rx_space > 0:
            uart.feed(bytes([self._typing.popleft()]))
        if self._typing:
            self._typing_event = True
            self.clock.schedule_in(self.char_interval, self._type_next, "console input")
        else:
            self._until_from = len(self.console)
            self._prompt_from = max(self._prompt_from, len(self.console))
            self._maybe_release_input()

    @property
    def input_pending(self) -> bool:
        return bool(self._inputs or self._typing)

    # the run loop -------------------------------------------------------------------
    def _deliver_interrupts(self) -> bool:
        """Take a pending FIQ/IRQ the CPU accepts; True when one stays pending but masked."""
        gic = self.gic
        if gic is None:
            return False
        fiq, irq = gic.fiq_pending(), gic.irq_pending()
        if not (fiq or irq):
            return False
        cpsr = self.cpu.cpsr
        if fiq and not cpsr & CPSR_F:
            self.exceptions.enter_fiq()
            self.irq_deliveries.append((self.clock.now, "fiq"))
        elif irq and not cpsr & CPSR_I:
            self.exceptions.enter_irq()
            self.irq_deliveries.append((self.clock.now, "irq"))
        else:
            return True
        return False

    def _irq_can_wake(self) -> bool:
        return self.gic is not None and (self.gic.irq_pending() or self.gic.fiq_pending())

    def _after_wfi(self) -> bool:
        pc = self.cpu.pc & ~1
        if self.cpu.thumb:
            raw = self.bus.read_virt(pc - 2, 2)
            return raw is not None and int.from_bytes(raw, "little") == 0xBF30
        raw = self.bus.read_virt(pc - 4, 4)
        return raw is not None and int.from_bytes(raw, "little") & 0x0FFF_FFFF == 0x0320F003

    def run(self, max_instructions: int | None = None, until_console: str | None = None,
            max_seconds: float | None = None, *,
            max_virtual_seconds: float | None = None) -> RunResult:
        """Run until a stop condition; see :data:`STOP_REASONS`.

        ``max_seconds`` limits host time, ``max_virtual_seconds`` virtual time
        (counted from this call; deterministic, unlike the host limit).

        ``until_console`` is looked for in what the guest prints during this call,
        after all queued input has been typed. A run can be continued by calling
        this again (after :meth:`send`, for instance); a run that ended with
        poweroff, reset, idle or fault stays ended.
        """
        self._prepare()
        uc = self.cpu.uc
        t0 = time.perf_counter()
        start_instr = self.instructions
        until = until_console.encode() if until_console else None
        run_from = len(self.console)
        end_tick = None if max_virtual_seconds is None \
            else self.clock.now + max(int(max_virtual_seconds * self.clock.hz), 0)
        reason, status, message = "", None, ""
        while True:
            if self.between_slices is not None:
                self.between_slices()
            if self._stop is not None:
                reason, status, message = self._stop
                break
            if until is not None and not self.input_pending and \
                    self.console.find(until, max(self._until_from, run_from)) >= 0:
                reason = "until"
                break
            if max_instructions is not None and self.instructions - start_instr \
                    >= max_instructions:
                reason = "max-instructions"
                break
            if max_seconds is not None and time.perf_counter() - t0 >= max_seconds:
                reason = "max-seconds"
                break
            if end_tick is not None and self.clock.now >= end_tick:
                reason = "max-virtual-seconds"
                break
            now = self.clock.now
            self.clock.advance_to(now)
            budget = self.max_slice
            if self.bus.replay_at(self.cpu.pc):
                budget = 1  # a flash store that ended the last slice runs again, alone
            elif self._deliver_interrupts():  # pending but masked: catch the unmask soon
                budget = self._masked_budget
                self._masked_budget = min(self._masked_budget * 2, self.max_slice)
            else:
                self._masked_budget = MASKED_SLICE
            deadline = self.clock.next_deadline()
            if deadline is not None:
                budget = min(budget, deadline - now)
            if max_instructions is not None:
                budget = min(budget, max_instructions - (self.instructions - start_instr))
            if end_tick is not None:
                budget = min(budget, end_tick - now)
            if budget <= 0:
                continue
            icpt = self.intercept
            if icpt is not None:
                icpt.new_slice()
                icpt.scan(self.cpu.pc)
                flushed = icpt.take_flush()
                for lo, hi in flushed:
                    uc.ctl_remove_cache(lo, hi)
                if flushed and self.block_clock is not None:
                    self.block_clock.forget()
            blocks = self.block_clock
            if self.bus.retranslate() and blocks is not None:
                blocks.forget()
            if self.tracer is not None:
                self.tracer.slice_start(now)
            # a debugger's single step (or any tiny instruction budget) must stop exactly:
            # Unicorn's own counter does that, at the price of a cache flush afterwards
            exact = blocks is None or self.exact_pc \
                or (max_instructions is not None and budget < EXACT_BELOW)
            error: Exception | None = None
            try:
                if exact:
                    if blocks is not None:
                        blocks.arm(UNLIMITED)  # the block hook stays installed: keep it quiet
                        if not self._counted_last:
                            # Unicorn's counter is a code hook: blocks translated without it
                            # would never call it (its removal flushes by itself)
                            uc.ctl_flush_tb()
                    self._counted_last = True
                    uc.emu_start(self.cpu.start_address(), NEVER_EXECUTED, count=budget)
                else:
                    assert blocks is not None
                    blocks.arm(budget)
                    self._counted_last = False
                    uc.emu_start(self.cpu.start_address(), NEVER_EXECUTED)
            except UcError as exc:
                error = exc
            polling = icpt is not None and icpt.poll_stop
            counter_ended = False  # the block counter ended the slice: it was no WFI
            if not exact:
                assert blocks is not None
                executed = blocks.executed  # exact, may pass the budget by part of a block
                counter_ended = blocks.ended_slice
                if polling:
                    executed = max(executed, budget)  # a polling loop waits for time to pass
                elif error is not None:
                    executed = max(executed, 1)
            elif error is not None:
                executed = 1  # a bus error ends the slice early: count the faulting access
            elif self._stop is None and icpt is not None and icpt.flush_ranges and not polling:
                executed = 0  # stopped to retranslate a newly hooked timer access
            else:
                executed = budget
            if error is not None and not self.exceptions.take_bus_error():
                self.request_stop("fault", None, f"CPU stopped: {error} at "
                                  f"0x{self.cpu.pc:08x}")
            self.instructions += executed
            self.clock.advance_to(now + executed)
            if error is None and self._stop is None and not counter_ended and not polling \
                    and executed and self._after_wfi():
                self._wait_for_interrupt()
        wall = time.perf_counter() - t0
        return RunResult(
            reason=reason, instructions=self.instructions - start_instr, ticks=self.clock.now,
            virtual_seconds=self.clock.now / self.clock.hz, wall_seconds=wall,
            pc=self.cpu.pc, exit_status=status, message=message,
        )

    def _wait_for_interrupt(self) -> None:
        while not self._irq_can_wake():
            deadline = self.clock.next_deadline()
            if deadline is None:
                self.request_stop("idle", None, f"WFI at 0x{self.cpu.pc:08x} with no "
                                  "interrupt source scheduled")
                return
            self.idle_ticks += deadline - self.clock.now
            self.clock.advance_to(deadline)
        # Woken while the interrupt is masked (Linux idles with IRQs off and unmasks right
        # after the WFI): creep forward in tiny slices so it is taken where it is unmasked,
        # not at the next WFI, which would end the slice with it masked again.
        self._masked_budget = 1

    # results ------------------------------------------------------------------------
    def guest_errors(self) -> list[str]:
        return [f"{lg.name}: {m}" for lg in self.logs for m in lg.guest_errors]

    def unimplemented(self) -> list[str]:
        return [f"{lg.name}: {m}" for lg in self.logs for m in lg.unimplemented]

    def touched_stubs(self) -> list[dict[str, object]]:
        return [{"name": r.name, "start": r.start, "size": r.size,
                 "accesses": r.device.touched if isinstance(r.device, Unimplemented) else 0}
                for r in self.bus.touched_stubs()]

    def trace_digest(self) -> str:
        """SHA-256 over console output, IRQ deliveries, the DMA log and the stop state."""
        h = hashlib.sha256()
        h.update(bytes(self.console))
        h.update(json.dumps(self.irq_deliveries).encode())
        h.update(json.dumps([r.describe() for r in self.bus.dma_log.records],
                            sort_keys=True).encode())
        h.update(json.dumps([self._stop, self.clock.now, self.instructions,
                             self.cpu.pc]).encode())
        return h.hexdigest()

    def describe(self) -> dict[str, object]:
        return {
            "board": self.tree.root.get_string("model", "") if self.tree.root.has_prop("model")
            else "",
            "cpu": self.cpu.model, "clock_hz": self.clock.hz,
            "memory_map": [r.describe() for r in self.bus.regions],
            "dma_views": [v.describe() for v in self.views.values()],
        }
