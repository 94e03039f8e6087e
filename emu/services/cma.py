"""The CMA service: the CMA core offered to guests as SMCCC SiP calls.

Calls are SMC32/HVC32 fast calls in the Silicon-Provider range (owner 2); the
function ID goes in r0, arguments in r1-r7, results come back in r0-r3. r0 is a
status: 0 (or a count) on success, a negative errno on failure. A bad call never
crashes the guest and never touches its memory beyond reading the strings it
named. Guest pointers are *physical* addresses, as for any firmware call.

Devices are named either by a device-tree phandle (``flags`` bit 0 clear) or
by the physical address of a NUL-terminated node path (bit 0 set).

=====================  =====  ====================================================
call                   r0     arguments → results
=====================  =====  ====================================================
VERSION                0x..00 → r0 = major << 16 | minor
ALLOC                  0x..01 r1 device, r2 kind string (0: none), r3 size, r4 alignment,
                              r5 flags → r0 status, r1 physical, r2 DMA address for the
                              device, r3 size (rounded to pages)
GET                    0x..02 r1 physical → r0 status, r1 reference count
PUT                    0x..03 r1 physical → r0 1 freed / 0 references remain / -ENOENT
INFO                   0x..04 r1 device, r2 kind, r5 flags → r0 number of regions (or
                              status), r1 lowest address, r2 one past the highest, r3 size
PHYS_TO_DMA            0x..05 r1 device, r2 physical, r3 size, r5 flags → r0 status,
                              r1 DMA address
DMA_TO_PHYS            0x..06 r1 device, r2 DMA address, r3 size, r5 flags → r0 status,
                              r1 physical
CPU_ADDR               0x..07 r1 physical → r0 status, r1 the CPU's linear-map address
=====================  =====  ====================================================
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from cma.core import ContiguousMemory
from cma.errors import CMAError
from cma.translate import dma_to_phys, phys_to_dma

#: SMCCC: fast call, SMC32 convention, owner 2 (SiP), our range starts at 0x100
SIP_BASE = 0x8200_0100
NOT_SUPPORTED = -1
VERSION = (1, 0)
FLAG_DEVICE_PATH = 1 << 0
MAX_STRING = 256


class CmaCall(IntEnum):
    """Function IDs of the CMA service (r0)."""

    VERSION = SIP_BASE + 0
    ALLOC = SIP_BASE + 1
    GET = SIP_BASE + 2
    PUT = SIP_BASE + 3
    INFO = SIP_BASE + 4
    PHYS_TO_DMA = SIP_BASE + 5
    DMA_TO_PHYS = SIP_BASE + 6
    CPU_ADDR = SIP_BASE + 7


class Status(IntEnum):
    """Negative status codes in r0 (Linux errno values)."""

    OK = 0
    NOT_SUPPORTED = -1
    ENOENT = -errno.ENOENT
    ENOMEM = -errno.ENOMEM
    EFAULT = -errno.EFAULT
    EINVAL = -errno.EINVAL


@dataclass
class CallRecord:
    """One call, for the run's log and JSON result."""

    call: str
    args: list[int]
    results: list[int]
    device: str | None = None
    note: str = ""
    time: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"call": self.call, "args": self.args, "results": self.results,
                "device": self.device, "note": self.note, "time": self.time}


@dataclass
class CmaService:
    """Serves the calls above from a :class:`~cma.core.ContiguousMemory`.

    ``device_by_phandle`` and ``device_by_path`` map a guest's device reference
    to the device name the core and the translator know (None: no such
    device); ``read_phys`` reads guest physical memory (None: not RAM).
    """

    core: ContiguousMemory
    device_by_phandle: Callable[[int], str | None]
    device_by_path: Callable[[str], str | None]
    read_phys: Callable[[int, int], bytes | None]
    now: Callable[[], int] = lambda: 0
    calls: list[CallRecord] = field(default_factory=list)

    def handles(self, fid: int) -> bool:
        return fid in CmaCall._value2member_map_

    def call(self, fid: int, args: list[int]) -> list[int]:
        """Serve one call: ``args`` are r1-r7, the result is r0-r3 (32-bit values)."""
        try:
            which = CmaCall(fid)
        except ValueError:
            return [NOT_SUPPORTED & 0xFFFF_FFFF, 0, 0, 0]
        record = CallRecord(which.name, list(args[:6]), [], time=self.now())
        try:
            results = getattr(self, f"_{which.name.lower()}")(args, record)
        except _GuestError as exc:
            record.note = exc.note
            results = [exc.status]
        except CMAError as exc:
            record.note = str(exc).splitlines()[0]
            results = [-exc.errno]
        results = [r & 0xFFFF_FFFF for r in (*results, 0, 0, 0, 0)[:4]]
        record.results = results
        self.calls.append(record)
        return results

    # --- helpers --------------------------------------------------------------------------
    def _string(self, phys: int, what: str) -> str:
        data = b""
        addr = phys
        while len(data) < MAX_STRING:
            chunk = self.read_phys(addr, 16)
            if chunk is None:
                raise _GuestError(Status.EFAULT, f"{what} at 0x{phys:08x} is not in RAM")
            nul = chunk.find(b"\0")
            if nul >= 0:
                data += chunk[:nul]
                try:
                    return data.decode("ascii")
                except UnicodeDecodeError:
                    raise _GuestError(Status.EINVAL, f"{what} is not ASCII") from None
            data += chunk
            addr += 16
        raise _GuestError(Status.EINVAL, f"{what} at 0x{phys:08x} is longer than {MAX_STRING}")

    def _device(self, ref: int, flags: int, record: CallRecord) -> str:
        if flags & ~FLAG_DEVICE_PATH:
            raise _GuestError(Status.EINVAL, f"unknown flags 0x{flags:x}")
        if flags & FLAG_DEVICE_PATH:
            path = self._string(ref, "device path")
            name = self.device_by_path(path)
            if name is None:
                raise _GuestError(Status.ENOENT, f"no device node {path!r}")
        else:
            name = self.device_by_phandle(ref)
            if name is None:
                raise _GuestError(Status.ENOENT, f"no device with phandle 0x{ref:x}")
        record.device = name
        return name

    def _kind(self, ptr: int) -> str | None:
        return None if ptr == 0 else self._string(ptr, "kind")

    # --- calls ----------------------------------------------------------------------------
    def _version(self, _args: list[int], _record: CallRecord) -> list[int]:
        return [VERSION[0] << 16 | VERSION[1]]

    def _alloc(self, args: list[int], record: CallRecord) -> list[int]:
        dev_ref, kind_ptr, size, align, flags = args[:5]
        device = self._device(dev_ref, flags, record)
        chunk = self.core.alloc(device, self._kind(kind_ptr), size, align)
        dma = chunk.dma_addr
        record.note = f"chunk 0x{chunk.phys:08x}+0x{chunk.size:x} in {chunk.region.name}"
        return [Status.OK, chunk.phys, dma if dma is not None else chunk.phys, chunk.size]

    def _get(self, args: list[int], _record: CallRecord) -> list[int]:
        chunk = self.core.get(args[0])
        return [Status.OK, chunk.refcount]

    def _put(self, args: list[int], _record: CallRecord) -> list[int]:
        return [1 if self.core.put(args[0]) else 0]

    def _info(self, args: list[int], record: CallRecord) -> list[int]:
        device = self._device(args[0], args[4], record)
        info = self.core.info(device, self._kind(args[1]))
        return [info.count, info.lower, info.upper, info.total_size]

    def _phys_to_dma(self, args: list[int], record: CallRecord) -> list[int]:
        device = self._device(args[0], args[4], record)
        dma = phys_to_dma(self.core.translator.dma_windows(device), args[1], max(args[2], 1))
        if dma is None:
            raise _GuestError(Status.EFAULT, f"{device} cannot reach 0x{args[1]:08x}")
        return [Status.OK, dma]

    def _dma_to_phys(self, args: list[int], record: CallRecord) -> list[int]:
        device = self._device(args[0], args[4], record)
        phys = dma_to_phys(self.core.translator.dma_windows(device), args[1], max(args[2], 1))
        if phys is None:
            raise _GuestError(Status.EFAULT,
                              f"bus address 0x{args[1]:08x} is outside {device}'s view")
        return [Status.OK, phys]

    def _cpu_addr(self, args: list[int], _record: CallRecord) -> list[int]:
        virt = self.core.translator.phys_to_virt(args[0])
        if virt is None:
            raise _GuestError(Status.EFAULT, f"0x{args[0]:08x} is not in the linear map")
        return [Status.OK, virt]


class _GuestError(Exception):
    def __init__(self, status: Status, note: str) -> None:
        super().__init__(note)
        self.status = int(status)
        self.note = note
