"""What the machine looked like when a run ended abnormally, as data and as text.

A run that ends in a fault, a double fault, an idle CPU or a budget (instructions,
host or virtual time) leaves the user with one question: where was the guest and
what was it doing? :func:`diagnose` answers from the machine's state after the
run, without running anything:

- the stop reason, PC, CPSR (mode, instruction set, masks) and the symbol at PC;
- a few instructions around PC, disassembled (ARM or Thumb per CPSR.T) from the
  bytes the CPU fetches through the guest's own MMU;
- the fault status and address registers (DFSR/DFAR, IFSR/IFAR) decoded;
- the exception the CPU was taking, the one it could not take (no handler,
  double fault) and the last few taken;
- the interrupt state: pending and active INTIDs with the device driving each;
- the last guest MMIO accesses (:attr:`emu.bus.Bus.mmio_ring`) and DMA records;
- where PC, SP and the fault addresses lie: which memory region, and whether
  in a reserved CMA region (a stack that ran into reserved memory shows here).

``Diagnosis.data`` is JSON-ready (the ``diagnosis`` key of ``emu run --json``);
``Diagnosis.text`` is the multi-line summary ``emu run`` prints on failure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from capstone import CS_ARCH_ARM, CS_MODE_ARM, CS_MODE_THUMB, Cs

from emu.cpu.core import CPSR_A, CPSR_F, CPSR_I, CPSR_T
from emu.devices.timer.arm_generic_timer import TIMER_INTIDS
from emu.dt.address import cpu_reg_windows
from emu.errors import DeviceTreeError

if TYPE_CHECKING:
    from emu.cpu.exceptions import ExceptionInfo
    from emu.machine import Machine, RunResult

#: stop reasons after which a run needs no diagnosis
NORMAL_REASONS = frozenset({"until"})

MODE_NAMES = {0x10: "usr", 0x11: "fiq", 0x12: "irq", 0x13: "svc", 0x16: "mon", 0x17: "abt",
              0x1A: "hyp", 0x1B: "und", 0x1F: "sys"}

#: short-descriptor fault status FS[4:0] -> meaning (ARMv7-A ARM, B3.13.3)
FAULT_STATUS = {
    0x01: "alignment fault", 0x02: "debug event", 0x03: "access flag fault (section)",
    0x04: "instruction cache maintenance fault", 0x05: "translation fault (section)",
    0x06: "access flag fault (page)", 0x07: "translation fault (page)",
    0x08: "synchronous external abort", 0x09: "domain fault (section)",
    0x0B: "domain fault (page)", 0x0C: "external abort on translation (level 1)",
    0x0D: "permission fault (section)", 0x0E: "external abort on translation (level 2)",
    0x0F: "permission fault (page)", 0x16: "asynchronous external abort",
}

_REG_NAMES = [f"r{i}" for i in range(13)] + ["sp", "lr", "pc"]


@dataclass(frozen=True)
class Diagnosis:
    """A run's end explained: ``data`` for JSON, ``text`` for people."""

    data: dict[str, Any]
    text: str


def needs_diagnosis(result: RunResult) -> bool:
    """Whether ``result`` ended abnormally (anything but the asked-for text or a clean off)."""
    if result.reason in NORMAL_REASONS:
        return False
    return not (result.reason == "poweroff" and not result.exit_status)


def decode_fault_status(value: int) -> dict[str, Any]:
    """DFSR/IFSR (short-descriptor format) split into status, meaning, domain and WnR."""
    fs = (value & 0xF) | ((value >> 10) & 1) << 4
    return {"value": value, "status": fs,
            "meaning": FAULT_STATUS.get(fs, "no fault" if value == 0 else "reserved status"),
            "domain": (value >> 4) & 0xF, "write": bool(value & (1 << 11))}


def diagnose(machine: Machine, result: RunResult | None = None, system: Any = None, *,
             around: int = 3, events: int = 16) -> Diagnosis:
    """Explain the state ``machine`` stopped in (see the module docstring).

    ``system`` (an :class:`emu.system.System`) names the CMA regions; without it
    the ``/reserved-memory`` nodes of the machine's device tree are used.
    ``around`` instructions are shown on each side of PC, and at most ``events``
    MMIO accesses and DMA records.
    """
    cpu = machine.cpu
    exc = machine.exceptions
    cpsr = cpu.cpsr
    pc = cpu.pc & ~1
    thumb = bool(cpsr & CPSR_T)
    regs = {name: cpu.reg(i) for i, name in enumerate(_REG_NAMES)}
    regs["pc"] = pc
    reserved = _reserved_regions(machine, system)
    dfsr, ifsr = cpu.read_cp15(5, 0, 0, 0), cpu.read_cp15(5, 0, 0, 1)
    dfar, ifar = cpu.read_cp15(6, 0, 0, 0), cpu.read_cp15(6, 0, 0, 2)
    data: dict[str, Any] = {
        "reason": result.reason if result is not None else None,
        "message": result.message if result is not None else (exc.fatal or ""),
        "fault_kind": exc.fatal_kind,
        "pc": pc,
        "symbol": machine.symbolize(pc),
        "cpsr": cpsr,
        "mode": MODE_NAMES.get(cpsr & 0x1F, f"0x{cpsr & 0x1F:02x}"),
        "instruction_set": "thumb" if thumb else "arm",
        "masked": "".join(c for c, bit in (("a", CPSR_A), ("i", CPSR_I), ("f", CPSR_F))
                          if cpsr & bit),
        "mmu": exc.mmu_enabled(),
        "registers": regs,
        "disassembly": _disassemble(machine, pc, thumb, around),
        "fault_registers": {
            "dfsr": decode_fault_status(dfsr), "dfar": dfar,
            "ifsr": decode_fault_status(ifsr), "ifar": ifar,
        },
        "exception": _exc_dict(exc.last),
        "failed_exception": _exc_dict(exc.failed),
        "double_fault": None if exc.double_fault is None else {
            "first": _exc_dict(exc.double_fault[0]), "second": _exc_dict(exc.double_fault[1]),
        },
        "recent_exceptions": [_exc_dict(e) for e in exc.recent],
        "interrupts": _interrupts(machine),
        "mmio": _mmio_events(machine, events),
        "dma": [r.describe() for r in machine.bus.dma_log.records[-events:]],
        "locations": _locations(machine, reserved, pc, regs["sp"], exc.last, dfar, ifar),
        "reserved_regions": [{"name": n, "base": b, "size": s} for n, b, s in reserved],
    }
    return Diagnosis(data, render(data))


# --- pieces ----------------------------------------------------------------------------
def _exc_dict(info: ExceptionInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {"kind": info.kind, "address": info.address, "lr": info.lr, "vector": info.vector,
            "fault_address": info.fault_address, "fault_status": info.fault_status}


def _disassemble(machine: Machine, pc: int, thumb: bool, around: int) -> list[dict[str, Any]]:
    """Instructions around ``pc`` as the CPU fetches them (through the MMU)."""
    cs = Cs(CS_ARCH_ARM, CS_MODE_THUMB if thumb else CS_MODE_ARM)
    step = 2 if thumb else 4
    span = (2 * around + 2) * 4
    best: list[dict[str, Any]] = []
    for back in range(around * step if not thumb else around * 4, -1, -step):
        start = (pc - back) & 0xFFFF_FFFF
        code = machine.bus.read_virt_code(start, span)
        if code is None:
            continue
        insns = list(cs.disasm(code, start))
        addrs = [i.address for i in insns]
        if pc not in addrs:
            continue
        at = addrs.index(pc)
        chosen = insns[max(0, at - around):at + around + 1]
        best = [{"address": i.address, "bytes": i.bytes.hex(),
                 "text": f"{i.mnemonic} {i.op_str}".strip(), "at_pc": i.address == pc}
                for i in chosen]
        if at >= min(around, back // step):
            break
    if not best:
        code = machine.bus.read_virt_code(pc, step)
        if code is None:
            return [{"address": pc, "bytes": "", "text": "(not readable: PC is not mapped to "
                     "memory)", "at_pc": True}]
        insns = list(cs.disasm(code, pc, 1))
        text = f"{insns[0].mnemonic} {insns[0].op_str}".strip() if insns else "(undefined)"
        best = [{"address": pc, "bytes": code.hex(), "text": text, "at_pc": True}]
    return best


def _irq_source(machine: Machine, intid: int) -> str:
    for name, tid in TIMER_INTIDS.items():
        if tid == intid and machine.timer is not None:
            return f"timer {name}"
    suffix = f":{intid}"
    for path, entry in machine.devices.items():
        if any(line.name.endswith(suffix) for line in entry.device.ctx.irqs):
            return path
    return "software" if intid < 16 else "?"


def _interrupts(machine: Machine) -> dict[str, Any]:
    gic = machine.gic
    deliveries = machine.irq_deliveries
    out: dict[str, Any] = {"deliveries": len(deliveries),
                           "last_delivery": deliveries[-1][0] if deliveries else None,
                           "pending": [], "active": []}
    if gic is None:
        return out
    out["cpu_line"] = {"irq": gic.irq_pending(), "fiq": gic.fiq_pending()}
    for intid in range(gic.num_irqs):
        pending, active = gic.is_pending(intid), gic.is_active(intid)
        if pending or active:
            item = {"intid": intid, "source": _irq_source(machine, intid)}
            if pending:
                out["pending"].append(item)
            if active:
                out["active"].append(item)
    return out


def _mmio_events(machine: Machine, count: int) -> list[dict[str, Any]]:
    bus = machine.bus
    out = []
    for tick, addr, size, value, write in list(bus.mmio_ring)[-count:]:
        region = bus.region_at(addr)
        item: dict[str, Any] = {"time": tick, "address": addr, "size": size, "value": value,
                                "access": "write" if write else "read",
                                "device": region.name if region is not None else None}
        if region is not None and region.device is not None:
            item["register"] = region.device.register_name(addr - region.start)
        out.append(item)
    return out


def _reserved_regions(machine: Machine, system: Any) -> list[tuple[str, int, int]]:
    """(name, base, size) of every reserved region the CMA core or the tree knows."""
    if system is not None:
        return [(str(r.name), int(r.base), int(r.size)) for r in system.core.regions]
    out: list[tuple[str, int, int]] = []
    parent = machine.tree.find("/reserved-memory")
    if parent is None:
        return out
    for node in parent.children:
        try:
            windows = cpu_reg_windows(node)
        except DeviceTreeError:
            continue
        out += [(node.name, base, size) for base, size in windows]
    return out


def _locate(machine: Machine, reserved: Iterable[tuple[str, int, int]], va: int,
            ) -> dict[str, Any]:
    walk = machine.exceptions.translate(va)
    phys = walk.phys
    where: dict[str, Any] = {"virtual": va, "physical": phys, "region": None,
                             "reserved": None}
    if phys is None:
        where["note"] = "not mapped by the guest's page tables"
        return where
    region = machine.bus.region_at(phys)
    if region is not None:
        where["region"] = f"{region.kind} {region.name} +0x{phys - region.start:x}"
    for name, base, size in reserved:
        if base <= phys < base + size:
            where["reserved"] = {"name": name, "base": base, "size": size}
            break
    return where


def _locations(machine: Machine, reserved: list[tuple[str, int, int]], pc: int, sp: int,
               last: ExceptionInfo | None, dfar: int, ifar: int) -> dict[str, Any]:
    out = {"pc": _locate(machine, reserved, pc), "sp": _locate(machine, reserved, sp)}
    if last is not None and last.kind == "dabort":
        out["dfar"] = _locate(machine, reserved, dfar)
    if last is not None and last.kind == "pabort":
        out["ifar"] = _locate(machine, reserved, ifar)
    return out


# --- text -------------------------------------------------------------------------------
def _exc_line(e: dict[str, Any]) -> str:
    text = f"{e['kind']} at 0x{e['address']:08x} (vector 0x{e['vector']:08x})"
    if e.get("fault_address") is not None:
        text += f", fault address 0x{e['fault_address']:08x}"
    if e.get("fault_status") is not None:
        text += f", status 0x{e['fault_status']:x}"
    return text


def _where_text(name: str, w: dict[str, Any]) -> str:
    text = f"{name} 0x{w['virtual']:08x}"
    if w["physical"] is None:
        return text + f": {w.get('note', 'unmapped')}"
    if w["physical"] != w["virtual"]:
        text += f" (physical 0x{w['physical']:08x})"
    text += f": {w['region'] or 'no memory or device there'}"
    res = w.get("reserved")
    if res:
        text += (f"; inside reserved CMA region {res['name']!r} "
                 f"[0x{res['base']:08x}, 0x{res['base'] + res['size']:08x})")
    return text


def render(data: dict[str, Any]) -> str:
    """The multi-line text of a diagnosis dict (what ``emu run`` prints on failure)."""
    lines = ["diagnosis:"]
    reason = data["reason"] or "stopped"
    kind = f" [{data['fault_kind']}]" if data.get("fault_kind") else ""
    lines.append(f"  stop: {reason}{kind}" + (f": {data['message']}" if data["message"] else ""))
    lines.append(f"  pc 0x{data['pc']:08x} {data['symbol']}  cpsr 0x{data['cpsr']:08x} "
                 f"mode {data['mode']} {data['instruction_set']}"
                 + (f" masked {data['masked']}" if data["masked"] else "")
                 + f"  mmu {'on' if data['mmu'] else 'off'}")
    regs = data["registers"]
    names = list(regs)
    for i in range(0, len(names), 8):
        lines.append("  " + " ".join(f"{n:>3}={regs[n]:08x}" for n in names[i:i + 8]))
    lines.append("  code:")
    for insn in data["disassembly"]:
        mark = "=>" if insn["at_pc"] else "  "
        lines.append(f"   {mark} 0x{insn['address']:08x}: {insn['bytes']:<8}  {insn['text']}")
    fr = data["fault_registers"]
    lines.append(f"  DFSR 0x{fr['dfsr']['value']:08x} ({fr['dfsr']['meaning']}"
                 f"{', write' if fr['dfsr']['write'] else ''})  DFAR 0x{fr['dfar']:08x}")
    lines.append(f"  IFSR 0x{fr['ifsr']['value']:08x} ({fr['ifsr']['meaning']})  "
                 f"IFAR 0x{fr['ifar']:08x}")
    if data["double_fault"]:
        first, second = data["double_fault"]["first"], data["double_fault"]["second"]
        lines.append("  double fault:")
        if first:
            lines.append(f"    handling: {_exc_line(first)}")
        lines.append(f"    then:     {_exc_line(second)}")
    elif data["failed_exception"]:
        lines.append(f"  could not take: {_exc_line(data['failed_exception'])}")
    elif data["exception"]:
        lines.append(f"  last exception: {_exc_line(data['exception'])}")
    if data["recent_exceptions"]:
        lines.append("  recent exceptions: " + "; ".join(
            _exc_line(e) for e in data["recent_exceptions"][-4:]))
    for name, where in data["locations"].items():
        lines.append("  " + _where_text(name, where))
    irq = data["interrupts"]
    line = f"  interrupts: {irq['deliveries']} taken"
    if irq["pending"]:
        line += "; pending " + ", ".join(f"{p['intid']} ({p['source']})" for p in irq["pending"])
    if irq["active"]:
        line += "; active " + ", ".join(f"{p['intid']} ({p['source']})" for p in irq["active"])
    lines.append(line)
    if data["mmio"]:
        lines.append(f"  last {len(data['mmio'])} MMIO accesses:")
        for ev in data["mmio"]:
            reg = f" {ev['register']}" if ev.get("register") else ""
            arrow = "<-" if ev["access"] == "write" else "->"
            lines.append(f"    t={ev['time']} {ev['access']:<5} 0x{ev['address']:08x} "
                         f"{ev['device'] or '(hole)'}{reg} {arrow} 0x{ev['value']:x}")
    if data["dma"]:
        lines.append(f"  last {len(data['dma'])} DMA records:")
        for rec in data["dma"]:
            phys = f" phys 0x{rec['phys']:08x}" if "phys" in rec else ""
            why = f": {rec['reason']}" if rec.get("reason") else ""
            lines.append(f"    t={rec['time']} {rec['kind']} {rec['master']} {rec['access']} "
                         f"bus 0x{rec['bus']:08x}+0x{rec['size']:x}{phys}{why}")
    return "\n".join(lines)
