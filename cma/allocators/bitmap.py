"""``bitmap``: the allocator of mainline Linux (``mm/cma.c``).

One bit stands for ``2**order_per_bit`` pages. A request is rounded up to
whole bits (the rounding is reported as ``waste``) and placed first fit: the
lowest run of clear bits that is long enough and whose first page frame number
is a multiple of the alignment in pages. Alignment is counted in *absolute*
page frame numbers, as the kernel does with its ``base_pfn`` offset, so a
region that does not start on the alignment still yields aligned blocks.

Parameter: ``order_per_bit=N`` (default 0). The region's start and size must
be multiples of ``2**order_per_bit`` pages, as ``cma_init_reserved_mem()``
demands.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

from cma.allocators import (
    AllocationLedger,
    Allocator,
    check_region,
    check_request,
    parse_params,
    register,
)
from cma.errors import InvalidArgument

#: the largest ``order_per_bit`` accepted (one bit per 2**20 pages is already absurd)
MAX_ORDER_PER_BIT = 20

_TO_ASCII = bytes.maketrans(b"\x00\x01", b"01")


@register
class Bitmap(Allocator):
    """First fit over a bitmap of ``2**order_per_bit``-page blocks."""

    name: ClassVar[str] = "bitmap"
    summary: ClassVar[str] = "first fit over a bitmap, one bit per 2^order_per_bit pages (mainline)"

    def __init__(self, start: int, size: int, page_size: int, params: str = "") -> None:
        super().__init__(start, size, page_size, params)
        check_region(self.name, start, size, page_size)
        parsed = parse_params(self.name, params, ("order_per_bit",))
        text = parsed.get("order_per_bit", "0")
        if not text.isdigit() or int(text) > MAX_ORDER_PER_BIT:
            raise InvalidArgument(
                f"{self.name}: order_per_bit must be an integer from 0 to "
                f"{MAX_ORDER_PER_BIT}, not {text!r}"
            )
        self.order_per_bit = int(text)
        self.block = page_size << self.order_per_bit  #: bytes per bit
        if start % self.block or size % self.block:
            raise InvalidArgument(
                f"{self.name}: with order_per_bit={self.order_per_bit} the region "
                f"{start:#x}+{size:#x} must start and end on a multiple of {self.block:#x}"
            )
        self.base_pfn = start // page_size
        self.nbits = size // self.block
        self._bits = bytearray(self.nbits)  # one byte (0 or 1) per bit: bytes.find is fast
        self._used_bits = 0
        self._ledger = AllocationLedger(self.name, start, size)
        self.waste = 0  #: bytes held by live blocks beyond what was requested

    def _bits_for(self, size: int) -> int:
        return -(-size // self.block)

    def alloc(self, size: int, alignment: int) -> int | None:
        """First fit of ``size`` rounded up to whole bits, at an aligned page frame."""
        check_request(self.name, size, alignment, self.page_size)
        count = self._bits_for(size)
        bits = self._bits
        step = max(alignment // self.block, 1)
        # the bit index whose address is aligned: (start/block + idx) % step == 0
        phase = -(self.start // self.block) % step
        idx = 0
        while True:
            idx = bits.find(0, idx)
            if idx < 0:
                return None
            idx += (phase - idx) % step
            end = idx + count
            if end > self.nbits:
                return None
            busy = bits.find(1, idx, end)
            if busy < 0:
                break
            idx = busy + 1
        bits[idx:end] = b"\x01" * count
        self._used_bits += count
        addr = self.start + idx * self.block
        self._ledger.record(addr, size)
        self.waste += count * self.block - size
        return addr

    def free(self, addr: int, size: int) -> None:
        """Clear the bits of a block returned by :meth:`alloc`."""
        self._ledger.release(addr, size)
        count = self._bits_for(size)
        idx = (addr - self.start) // self.block
        self._bits[idx : idx + count] = bytes(count)
        self._used_bits -= count
        self.waste -= count * self.block - size

    def cleanup(self) -> None:
        """Clear the whole bitmap."""
        self._bits = bytearray(self.nbits)
        self._used_bits = 0
        self.waste = 0
        self._ledger = AllocationLedger(self.name, self.start, self.size)

    def _zero_runs(self) -> Iterator[tuple[int, int]]:
        bits = self._bits
        idx = bits.find(0)
        while idx >= 0:
            end = bits.find(1, idx)
            if end < 0:
                end = self.nbits
            yield idx, end - idx
            idx = bits.find(0, end)

    def iter_free(self) -> Iterator[tuple[int, int]]:
        """Runs of clear bits, as byte extents in address order."""
        for idx, count in self._zero_runs():
            yield self.start + idx * self.block, count * self.block

    def bitmap_hex(self) -> str:
        """The bitmap as the kernel's debugfs ``bitmap`` file shows it, but in hex.

        32-bit words in increasing order, separated by spaces, each ``%08x``;
        bit 0 of the first word is the first block of the region.
        """
        words = []
        for pos in range(0, self.nbits, 32):
            chunk = self._bits[pos : pos + 32][::-1].translate(_TO_ASCII)
            words.append(f"{int(chunk, 2):08x}")
        return " ".join(words)

    def debug_view(self) -> dict[str, Any]:
        """The kernel's per-area debugfs values (pages), plus byte totals.

        ``count`` is the region's page count, ``used`` the pages covered by set
        bits and ``maxchunk`` the longest free run in pages.
        """
        maxrun = max((count for _, count in self._zero_runs()), default=0)
        used = self._used_bits * self.block
        return {
            "base_pfn": self.base_pfn,
            "count": self.size // self.page_size,
            "order_per_bit": self.order_per_bit,
            "bitmap": self.bitmap_hex(),
            "used": self._used_bits << self.order_per_bit,
            "maxchunk": maxrun << self.order_per_bit,
            "free": self.size - used,
            "allocated": self._ledger.allocated,
            "waste": self.waste,
            "allocations": len(self._ledger),
        }
