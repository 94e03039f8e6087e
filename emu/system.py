"""A machine with the CMA core: reserved at boot, published to the guest, served, checked.

:class:`System` is what ties the project together. Given a :class:`~emu.machine.Machine`
and a command line it

1. names the board's devices the way ``cma_map=`` rules see them (the node name
   without its unit address: ``camera``, ``clcd``; the full path when a name is
   ambiguous),
2. builds the CMA core over the board's RAM with a translator that answers from
   the machine itself (each master's ``dma-ranges`` view; the guest's linear map),
   so a region meant for a master is placed where that master can reach it,
3. publishes every region as a ``/reserved-memory`` ``shared-dma-pool`` child and
   links each device the map assigns with ``memory-region``, so any guest (our
   firmware, U-Boot, Linux) sees the same layout,
4. serves the CMA service (SMCCC SiP calls) to the guest, and
5. checks every DMA access of every master against the live chunks, naming the
   classic driver bug when one is refused (:mod:`emu.dmacheck`).
"""

from __future__ import annotations

import dataclasses
import re
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cma.cmdline import parse_cmdline
from cma.config import CmaConfig, Source
from cma.core import ContiguousMemory
from cma.devicetree import parse_carveouts, parse_reserved_memory
from cma.patterns import select_regions
from cma.translate import DmaWindow, phys_to_dma
from emu.checkers import Checker
from emu.devices.display.pl111 import Pl111
from emu.devices.dma.camera import CameraDma, FrameRecord
from emu.devices.dma.testpattern import PixelFormat
from emu.dmacheck import DmaChecker
from emu.dt import guest
from emu.errors import ConfigurationError
from emu.machine import Machine
from emu.report.timeline import Lifetime
from emu.services.cma import SIP_BASE, CmaCall, CmaService
from emu.services.smccc import Call

#: Our firmware's linear map uses the 2G/2G split (``CONFIG_VMSPLIT_2G``) so that no CPU
#: address equals a bus address; Linux's default 3G/1G split puts it at 0xC0000000.
DEFAULT_PAGE_OFFSET = 0x8000_0000
#: what ``page_offset="auto"`` tries, in order, against the guest's own page tables
AUTO_PAGE_OFFSETS = (0x8000_0000, 0xC000_0000)


def device_names(machine: Machine) -> dict[str, str]:
    """``cma_map=`` name -> node path for every enabled node with a ``compatible``."""
    by_short: dict[str, list[str]] = {}
    for node in machine.tree.iter_nodes():
        if node.parent is None or not node.is_enabled or "compatible" not in node.props:
            continue
        if node.path.startswith("/reserved-memory"):
            continue
        short = node.name.split("@", 1)[0]
        by_short.setdefault(short, []).append(node.path)
    names: dict[str, str] = {}
    for short, paths in sorted(by_short.items()):
        if len(paths) == 1:
            names[short] = paths[0]
        else:
            for path in paths:
                names[path] = path
    return names


class MachineTranslator:
    """The CMA core's view of the machine: DMA windows per device, the CPU's linear map.

    ``linear`` is the guest's linear map: ``(phys_base, size)`` of RAM and the
    candidate ``virt_bases`` where the guest may map it (its ``PAGE_OFFSET``). While
    the guest's MMU is on, the first candidate that the guest's own page tables
    really map to the physical address is reported (None when none does); while it
    is off, the first candidate is reported: the address the guest will use once it
    turns the MMU on. ``linear`` None means no linear map: CPU address = physical.
    """

    def __init__(self, machine: Machine, names: dict[str, str],
                 linear: tuple[int, int, tuple[int, ...]] | None) -> None:
        self.machine = machine
        self.names = names
        self.linear = linear

    def path_of(self, device: str) -> str | None:
        return self.names.get(device) or (device if device.startswith("/") else None)

    def dma_windows(self, device: str) -> list[DmaWindow] | None:
        path = self.path_of(device)
        view = self.machine.views.get(path) if path else None
        if view is None or view.windows is None:
            return None
        return [(cpu, bus, size) for bus, cpu, size in view.windows]

    def phys_to_virt(self, phys: int) -> int | None:
        if self.linear is None:
            return phys
        base, size, virt_bases = self.linear
        if not base <= phys < base + size or not virt_bases:
            return None
        mmu = self.machine.exceptions
        if not mmu.mmu_enabled():
            return phys - base + virt_bases[0]
        for virt in virt_bases:
            va = phys - base + virt
            if va <= 0xFFFF_FFFF and mmu.translate(va).phys == phys:
                return va
        return None


class System:
    """A :class:`Machine` plus the CMA core, its guest service and the DMA checker."""

    def __init__(self, machine: Machine, cmdline: str = "", *,
                 defaults: str | CmaConfig | None = None,
                 page_offset: int | Sequence[int] | str | None = DEFAULT_PAGE_OFFSET,
                 dma_policy: str = "chunks", page_size: int = 4096) -> None:
        if dma_policy not in ("chunks", "reserved", "window"):
            raise ConfigurationError(
                f"dma policy must be 'chunks', 'reserved' or 'window', not {dma_policy!r}"
            )
        self.machine = machine
        self.cmdline = cmdline
        self.names = device_names(machine)
        self.paths = {path: name for name, path in self.names.items()}
        ram = machine.bus.ram_banks()
        linear = None
        if page_offset == "auto":
            page_offset = AUTO_PAGE_OFFSETS
        if isinstance(page_offset, str):
            raise ConfigurationError(f"page offset must be an address, 'auto' or None, "
                                     f"not {page_offset!r}")
        if page_offset is not None:
            bases = (page_offset,) if isinstance(page_offset, int) else tuple(page_offset)
            linear = (ram[0][0], ram[0][1], bases)
        self.translator = MachineTranslator(machine, self.names, linear)
        self.core = self._build_core(cmdline, defaults, page_size)
        self.pools = self._publish()
        self.service = CmaService(
            self.core,
            device_by_phandle=self._device_by_phandle,
            device_by_path=self.paths.get,
            read_phys=self._read_phys,
            now=lambda: machine.clock.now,
        )
        machine.smccc.register((SIP_BASE, max(CmaCall)), self._smccc, "cma")
        self.checker = DmaChecker(self.core, self.translator, self.names, machine.clock,
                                  policy=dma_policy)
        for path, view in machine.views.items():
            view.checker = self.checker.for_master(self.paths.get(path, path), view)
        self.cameras = {self.paths.get(path, path): entry.device
                        for path, entry in machine.devices.items()
                        if isinstance(entry.device, CameraDma)}
        #: display controllers by device name; their pictures join write_pngs()
        self.displays = {self.paths.get(path, path): entry.device
                         for path, entry in machine.devices.items()
                         if isinstance(entry.device, Pl111)}
        self._kept: deque[tuple[str, FrameRecord, bytes]] = deque(maxlen=0)
        self._host_events: list[tuple[int, str, int, int, str | None]] = []
        #: extra checkers (:mod:`emu.checkers`): their findings join describe() and failures()
        self.checkers: list[Checker] = []

    # ---------------------------------------------------------------------------
    def _build_core(self, cmdline: str, defaults: str | CmaConfig | None,
                    page_size: int) -> ContiguousMemory:
        machine = self.machine
        dtb = machine.tree.to_dtb()
        tree_cfg = parse_reserved_memory(dtb)
        links = tuple((self.paths.get(dev, dev), names) for dev, names in tree_cfg.links)
        command = parse_cmdline(cmdline) if cmdline.strip() else CmaConfig()
        config = CmaConfig(tree_cfg.regions + command.regions, command.rules, links)
        if isinstance(defaults, str):
            defaults = parse_cmdline(defaults)
        reserved = list(parse_carveouts(dtb))
        if machine.boot is not None:
            reserved += [(what, addr, size) for what, addr, size in machine.boot.placed
                         if machine.bus.is_ram(addr, max(size, 1))]
        return ContiguousMemory.from_config(
            config, machine.bus.ram_banks(), page_size, self.translator, defaults,
            reserved, devices=list(self.names),
        )

    def _publish(self) -> list[guest.ReservedPool]:
        """Write the regions into the guest's device tree and keep the DTB away from them."""
        tree = self.machine.tree
        pools = []
        for region in self.core.regions:
            spec = region.spec
            if region.private or spec.source is Source.DEVICETREE:
                continue  # private regions are not published; tree pools are there already
            pools.append(guest.ReservedPool(
                name=_pool_name(region.name), base=region.base, size=region.size,
                reusable=spec.reusable and not spec.no_map, no_map=spec.no_map,
                default=spec.default))
        if pools:
            guest.add_reserved_memory(tree, pools)
        pool_of = {r.name: _pool_name(r.name) for r in self.core.regions
                   if r.spec.source is not Source.DEVICETREE}
        linked = set(self.core.links)
        for name, path in self.names.items():
            if name in linked:
                continue  # the tree links it already
            regions = select_regions(self.core.rules, name, None) or ()
            nodes = [pool_of[r] for r in regions if r in pool_of]
            if nodes:
                guest.link_memory_region(tree, path, nodes)
        for region in self.core.regions:
            self.machine.reserve_ram(f"cma region {region.name}", region.base, region.size)
        return pools

    def _device_by_phandle(self, phandle: int) -> str | None:
        node = self.machine.tree.by_phandle(phandle)
        if node is None:
            return None
        return self.paths.get(node.path)

    def _read_phys(self, addr: int, size: int) -> bytes | None:
        bus = self.machine.bus
        if not bus.is_ram(addr, size):
            return None
        return bus.read(addr, size)

    def _smccc(self, call: Call) -> list[int]:
        return self.service.call(call.fid, list(call.args))

    # --- host-side API ----------------------------------------------------------
    def alloc(self, device: str, size: int, kind: str | None = None,
              alignment: int = 0) -> Any:
        """Allocate for ``device`` from the host, as a driver would (a :class:`Chunk`)."""
        chunk = self.core.alloc(device, kind, size, alignment)
        self._host_events.append((self.machine.clock.now, "alloc", chunk.phys, chunk.size,
                                  device))
        return chunk

    def put(self, phys: int) -> bool:
        """Drop a reference from the host (``cma_put``); True when the chunk was freed."""
        freed = self.core.put(phys)
        if freed:
            self._host_events.append((self.machine.clock.now, "free", phys, 0, None))
        return freed

    def lifetimes(self) -> list[Lifetime]:
        """Every chunk's life: from its allocation to its release, by guest or host."""
        events: list[tuple[int, str, int, int, str | None, str | None]] = []
        for c in self.service.calls:
            if c.call == "ALLOC" and c.results and c.results[0] == 0:
                events.append((c.time, "alloc", c.results[1], c.results[3], c.device, None))
            elif c.call == "PUT" and c.results and c.results[0] == 1:
                events.append((c.time, "free", c.args[0], 0, None, None))
        for time, what, phys, size, device in self._host_events:
            events.append((time, what, phys, size, device, None))
        events.sort(key=lambda e: e[0])
        live: dict[int, tuple[int, int, str]] = {}
        out: list[Lifetime] = []
        sizes = {c.phys: (c.size, c.device) for c in self.core.iter_chunks()}
        for time, what, phys, size, device, _ in events:
            if what == "alloc":
                if not size:
                    size, dev = sizes.get(phys, (0, None))
                    device = device or dev
                live[phys] = (time, size, device or "?")
            elif phys in live:
                start, size, device = live.pop(phys)
                out.append(self._lifetime(phys, size, device, start, time))
        for phys, (start, size, device) in live.items():
            out.append(self._lifetime(phys, size, device, start, None))
        return [lt for lt in out if lt.size]

    def map_snapshot(self) -> dict[str, Any]:
        """Regions plus every chunk the run ever had (live or freed), for the picture."""
        snap = self.core.snapshot()
        hz = self.machine.clock.hz
        chunks = []
        for lt in sorted(self.lifetimes(), key=lambda lt: (lt.phys, lt.start)):
            windows = self.translator.dma_windows(lt.device)
            chunks.append({
                "phys": lt.phys, "size": lt.size, "device": lt.device, "region": lt.region,
                "dma_addr": phys_to_dma(windows, lt.phys, lt.size),
                "cpu_addr": self.translator.phys_to_virt(lt.phys),
                "state": "live" if lt.end is None else f"freed at {lt.end / hz:.3f} s",
            })
        snap["chunks"] = chunks
        return snap

    def _lifetime(self, phys: int, size: int, device: str, start: int,
                  end: int | None) -> Lifetime:
        region = next((r.name for r in self.core.regions if r.contains(phys, 1)), "?")
        return Lifetime(region, phys, size, device, start, end)

    def device(self, name: str) -> Any:
        """The device model behind a ``cma_map=`` device name."""
        path = self.names.get(name, name)
        entry = self.machine.devices.get(path)
        if entry is None:
            raise ConfigurationError(f"no device model for {name!r}; known: "
                                     f"{', '.join(sorted(self.names))}")
        return entry.device

    def keep_frames(self, count: int) -> None:
        """Keep the bytes of the last ``count`` frames of every camera (for PNG output)."""
        self._kept = deque(self._kept, maxlen=max(count, 0))
        for name, cam in self.cameras.items():
            cam.on_frame = (lambda rec, data, name=name:
                            self._kept.append((name, rec, data)))

    def guest_frame_reports(self) -> dict[int, tuple[bool, str]]:
        """Frame verdicts the guest printed: ``frame SEQ ... ok`` or ``... BAD (why)``."""
        text = self.machine.console.decode("utf-8", errors="replace")
        out: dict[int, tuple[bool, str]] = {}
        for m in _FRAME_LINE.finditer(text):
            out[int(m.group(1))] = (m.group(2) == "ok", m.group(0).strip())
        return out

    def frame_records(self) -> list[dict[str, Any]]:
        """Every frame every camera wrote: the three addresses, checksum and verdicts."""
        reports = self.guest_frame_reports()
        records = []
        for name, cam in self.cameras.items():
            for rec in cam.frames:
                d = rec.to_dict()
                d["master"] = name
                d["cpu_addr"] = (self.translator.phys_to_virt(rec.phys_addr)
                                 if rec.phys_addr is not None else None)
                d["landed"] = rec.ok
                guest_ok, line = reports.get(rec.seq, (None, ""))
                d["guest_verified"] = bool(guest_ok)
                d["guest_report"] = line
                d["verdict"] = ("verified" if rec.ok and guest_ok else
                                "landed" if rec.ok and guest_ok is None else
                                "guest-rejected" if rec.ok else "refused")
                records.append(d)
        return records

    def failures(self) -> list[str]:
        """Why this run must not pass: DMA violations and frames the guest rejected."""
        out = [f"{v.master}: DMA {v.access} of 0x{v.size:x} bytes at bus 0x{v.bus_addr:08x} "
               f"refused [{v.verdict}]: {v.detail}" for v in self.checker.violations]
        for seq, (ok, line) in sorted(self.guest_frame_reports().items()):
            if not ok:
                out.append(f"the guest rejected frame {seq}: {line}")
        for checker in self.checkers:
            out += checker.failures()
        return out

    def write_pngs(self, directory: Path) -> list[Path]:
        """The kept frames, what each display shows and the memory map, as PNG files.

        A display's picture is ``display.png`` (``NAME-display.png`` when the board
        has several), taken with :meth:`Pl111.snapshot` through the display's own
        bus view; a disabled display (or one the bus refuses) writes no file.
        """
        from emu.report.frames import save_frame
        from emu.report.memmap import save_memory_map
        from emu.report.timeline import save_timeline

        written = []
        for name, rec, data in self._kept:
            fmt = PixelFormat[rec.format]
            path = directory / f"{name}-frame{rec.seq:04d}.png"
            written.append(save_frame(path, data, rec.width, rec.height, fmt))
        for name, display in self.displays.items():
            path = directory / ("display.png" if len(self.displays) == 1
                                else f"{name}-display.png")
            directory.mkdir(parents=True, exist_ok=True)
            if display.save_png(str(path)) is not None:
                written.append(path)
        written.append(save_memory_map(directory / "memory-map.png",
                                       self.machine.bus.ram_banks(), self.map_snapshot(),
                                       f"{self.machine.tree.root.get_string('model', '')}: "
                                       f"{self.cmdline}"))
        written.append(save_timeline(
            directory / "memory-timeline.png",
            [(r.name, r.base, r.size) for r in self.core.regions], self.lifetimes(),
            self.machine.clock.now, self.machine.clock.hz, f"chunks over time: {self.cmdline}"))
        return written

    def describe(self) -> dict[str, Any]:
        """Regions, chunks (all three addresses), calls and DMA verdicts, for JSON."""
        snap = self.core.snapshot()
        return {
            "cmdline": self.cmdline,
            "devices": dict(sorted(self.names.items())),
            "cma": snap,
            "pools": [dataclasses.asdict(p) for p in self.pools],
            "cma_calls": [c.to_dict() for c in self.service.calls],
            "dma": self.checker.describe(),
            **({"displays": {name: d.framebuffer_info() for name, d in self.displays.items()}}
               if self.displays else {}),
            **({"checkers": {c.name: c.describe() for c in self.checkers}}
               if self.checkers else {}),
        }


#: a UART console ends lines with "\r\n"
_FRAME_LINE = re.compile(r"^frame (\d+) .*?(ok|BAD.*?)\r?$", re.MULTILINE)


def _pool_name(region: str) -> str:
    return region.replace("@", "-").replace("/", "-")[:31] or "pool"

