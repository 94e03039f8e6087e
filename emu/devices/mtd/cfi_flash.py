"""Parallel NOR flash with a CFI query table and the Intel/Sharp command set ("cfi-flash").

Interface:
  Memory    one bank of ``size`` bytes: ``bank_width`` bytes wide, made of
            ``bank_width // device_width`` chips side by side (the ``virt`` board:
            two x16 chips interleaved as a 32-bit bus, 64 MiB, 256 KiB sectors)
  Array     in read-array mode the bank is plain memory (the bus maps it; no callback
            per access); the bytes live in the injected :class:`FlashStore`
  Writes    every guest store is a command (or command data) for :meth:`CfiFlash.write`
  Reads     in any other mode (status, identifier, query) reads come from :meth:`CfiFlash.read`

The chips receive the same commands in lockstep (a driver for an interleaved bank
writes each command duplicated in every chip's lane) and answer with their 16-bit
value duplicated in every lane; a narrower access reads or writes its byte lanes
of that bus word. A narrow command write that reaches one chip only still drives
both (as QEMU's pflash_cfi01 does), so a driver that mistakes the bank for a single
x16 part (U-Boot's CFI probe does) works as it does on QEMU.

Commands (Intel/Sharp command set 0x0001, JEDEC JESD68 query structure):
  0xFF (and 0xF0) read array, 0x70 read status, 0x50 clear status, 0x90 read
  identifier (word 0 manufacturer, 1 device, 2 of a block: its lock bit),
  0x98 CFI query (at any address, conventionally word 0x55), 0x20/0xD0 block erase,
  0x40 or 0x10 then data: word program, 0xE8/count/data/0xD0: buffered program,
  0x60/0x01 lock block, 0x60/0xD0 unlock block.
Programming ANDs the data into the array (bits only go from 1 to 0); erase fills a
sector with 0xFF. Operations complete at once (status ready, 0x80). A program or
erase of a locked block, or a broken sequence, sets the status error bits and is
logged as a guest error; commands not modelled are logged as unimplemented.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Protocol

from emu.devices.base import DeviceLog
from emu.errors import ConfigurationError

#: status register bits (one per chip, duplicated in each chip's lane)
SR_READY = 0x80
SR_ERASE_ERROR = 0x20
SR_PROGRAM_ERROR = 0x10
SR_SEQUENCE_ERROR = SR_ERASE_ERROR | SR_PROGRAM_ERROR
SR_LOCKED = 0x02

CMD_READ_ARRAY = 0xFF
CMD_AMD_RESET = 0xF0
CMD_READ_STATUS = 0x70
CMD_CLEAR_STATUS = 0x50
CMD_READ_ID = 0x90
CMD_QUERY = 0x98
CMD_ERASE_SETUP = 0x20
CMD_CONFIRM = 0xD0
CMD_PROGRAM = 0x40
CMD_PROGRAM_ALT = 0x10
CMD_BUFFER_PROGRAM = 0xE8
CMD_LOCK_SETUP = 0x60
CMD_LOCK = 0x01
CMD_LOCK_DOWN = 0x2F

#: QEMU's virt flash reports Intel's manufacturer code and device code 0x18
DEFAULT_MANUFACTURER = 0x89
DEFAULT_DEVICE = 0x18
#: log2 of the write buffer of one chip in bytes (2 KiB, as QEMU's virt reports)
BUFFER_LOG2 = 11


class FlashStore(Protocol):
    """The array bytes of one bank (offsets from the bank's start)."""

    def read(self, offset: int, size: int) -> bytes: ...

    def write(self, offset: int, data: bytes) -> None: ...


class Mode(Enum):
    """What a read of the bank returns, and what the next write means."""

    ARRAY = "read array"
    STATUS = "read status"
    ID = "read identifier"
    QUERY = "CFI query"
    ERASE_SETUP = "erase setup"
    PROGRAM_SETUP = "program setup"
    LOCK_SETUP = "lock setup"
    BUFFER_COUNT = "buffer count"
    BUFFER_DATA = "buffer data"
    BUFFER_CONFIRM = "buffer confirm"


def _log2(value: int) -> int:
    return value.bit_length() - 1


def cfi_query_table(chip_size: int, chip_block: int, blocks: int,
                    buffer_log2: int = BUFFER_LOG2) -> bytes:
    """The CFI query structure of one chip, indexed by word address (0x10 = 'Q').

    Fields per JESD68: "QRY", primary command set 0x0001 (Intel/Sharp) with its
    extended table at 0x31, no alternate set, Vcc 4.5-5.5 V, typical timeouts
    2^7 µs word/buffer program and 2^10 ms block erase (maximum 2^4 times that),
    device size 2^n, x8/x16 interface, write buffer 2^n bytes, one erase region of
    ``blocks`` blocks of ``chip_block`` bytes; then the "PRI" 1.0 extended table
    with no optional features.
    """
    t = bytearray(0x40)
    t[0x10:0x13] = b"QRY"
    t[0x13], t[0x14] = 0x01, 0x00  # primary command set: Intel/Sharp extended
    t[0x15], t[0x16] = 0x31, 0x00  # address of the primary extended table
    t[0x1B], t[0x1C] = 0x45, 0x55  # Vcc min/max (BCD volts)
    t[0x1F], t[0x20], t[0x21], t[0x22] = 0x07, 0x07, 0x0A, 0x00  # typical timeouts
    t[0x23], t[0x24], t[0x25], t[0x26] = 0x04, 0x04, 0x04, 0x00  # maximum = typical << n
    t[0x27] = _log2(chip_size)
    t[0x28], t[0x29] = 0x02, 0x00  # x8/x16 asynchronous interface
    t[0x2A], t[0x2B] = buffer_log2, 0x00
    t[0x2C] = 1  # erase block regions
    t[0x2D:0x2F] = (blocks - 1).to_bytes(2, "little")
    t[0x2F:0x31] = (chip_block // 256).to_bytes(2, "little")
    t[0x31:0x36] = b"PRI10"  # extended query: signature, version 1.0, no features
    return bytes(t)


class CfiFlash:
    """One bank of CFI NOR flash: the command state machine and its answers."""

    def __init__(self, store: FlashStore, size: int, log: DeviceLog, *,
                 bank_width: int = 4, device_width: int = 2, sector_size: int = 0x40000,
                 manufacturer: int = DEFAULT_MANUFACTURER,
                 device: int = DEFAULT_DEVICE) -> None:
        if bank_width not in (1, 2, 4):
            raise ConfigurationError(f"bank-width must be 1, 2 or 4, not {bank_width!r}")
        if device_width not in (1, 2) or bank_width % device_width:
            raise ConfigurationError(
                f"device-width must be 1 or 2 and divide bank-width {bank_width}, "
                f"not {device_width!r}"
            )
        if sector_size <= 0 or sector_size & (sector_size - 1) or size % sector_size:
            raise ConfigurationError(
                f"flash of 0x{size:x} bytes cannot have sectors of 0x{sector_size:x} bytes"
            )
        chips = bank_width // device_width
        if size & (size - 1) or size // sector_size > 0x10000 or sector_size // chips < 256:
            raise ConfigurationError(
                f"flash geometry 0x{size:x} bytes in sectors of 0x{sector_size:x} "
                "has no CFI description (a power-of-two size, at most 65536 sectors)"
            )
        self.store = store
        self.size = size
        self.log = log
        self.bank_width = bank_width
        self.device_width = device_width
        self.chips = chips
        self.sector_size = sector_size
        self.manufacturer = manufacturer
        self.device = device
        self.table = cfi_query_table(size // chips, sector_size // chips, size // sector_size)
        self.mode = Mode.ARRAY
        self.status = SR_READY
        self.locked: set[int] = set()
        #: command bytes seen (tests and run summaries)
        self.commands: set[int] = set()
        self._buffer: list[tuple[int, int, int]] = []
        self._buffer_left = 0
        self._pending_addr = 0

    # guest interface ---------------------------------------------------------------
    @property
    def reads_array(self) -> bool:
        """True while a read returns the array bytes (the bus keeps plain memory then)."""
        return self.mode is Mode.ARRAY

    def sector_of(self, offset: int) -> int:
        return offset // self.sector_size

    def read(self, offset: int, size: int) -> int:
        """A guest read in a non-array mode: the chips' answer in the addressed lanes."""
        if self.mode is Mode.ARRAY:
            return int.from_bytes(self.store.read(offset, size), "little")
        out = 0
        for i in range(size):
            addr = offset + i
            word = addr - addr % self.bank_width
            answer = self._chip_answer(word)
            lane = addr % self.device_width
            out |= ((answer >> (8 * lane)) & 0xFF) << (8 * i)
        return out

    def write(self, offset: int, size: int, value: int) -> None:
        """A guest store anywhere in the bank: a command, or the data a command awaits."""
        mode = self.mode
        if mode is Mode.PROGRAM_SETUP:
            self._program(offset, size, value)
            self.mode = Mode.STATUS
            return
        if mode is Mode.BUFFER_COUNT:
            self._buffer_count(offset, value)
            return
        if mode is Mode.BUFFER_DATA:
            self._buffer_data(offset, size, value)
            return
        cmd = self._command(offset, size, value)
        self.commands.add(cmd)
        if mode is Mode.ERASE_SETUP:
            self._erase_confirm(offset, cmd)
        elif mode is Mode.LOCK_SETUP:
            self._lock_confirm(offset, cmd)
        elif mode is Mode.BUFFER_CONFIRM:
            self._buffer_confirm(cmd)
        else:
            self._start(offset, cmd)

    # commands ----------------------------------------------------------------------
    def _command(self, offset: int, size: int, value: int) -> int:
        """The command byte of a store; lanes that disagree are noted (chip 0 wins)."""
        dw = self.device_width
        if size >= 2 * dw and offset % self.bank_width == 0:
            mask = (1 << (8 * dw)) - 1
            lanes = {(value >> (8 * dw * i)) & mask for i in range(size // dw)}
            if len(lanes) > 1:
                self.log.unimp(
                    f"chips given different commands (0x{value:0{2 * size}x} at 0x{offset:x}); "
                    "all chips follow the first lane"
                )
        return value & 0xFF

    def _start(self, offset: int, cmd: int) -> None:
        if cmd in (CMD_READ_ARRAY, CMD_AMD_RESET):
            self.mode = Mode.ARRAY
        elif cmd == CMD_READ_STATUS:
            self.mode = Mode.STATUS
        elif cmd == CMD_CLEAR_STATUS:
            self.status = SR_READY
        elif cmd == CMD_READ_ID:
            self.mode = Mode.ID
        elif cmd == CMD_QUERY:
            self.mode = Mode.QUERY
        elif cmd == CMD_ERASE_SETUP:
            self.mode = Mode.ERASE_SETUP
        elif cmd in (CMD_PROGRAM, CMD_PROGRAM_ALT):
            self.mode = Mode.PROGRAM_SETUP
        elif cmd == CMD_LOCK_SETUP:
            self.mode = Mode.LOCK_SETUP
        elif cmd == CMD_BUFFER_PROGRAM:
            self._pending_addr = offset
            self.mode = Mode.BUFFER_COUNT
        elif cmd == CMD_CONFIRM:
            # a lone confirm (resume) outside a sequence: nothing is suspended
            self.mode = Mode.STATUS
        else:
            self.log.unimp(f"flash command 0x{cmd:02x} at 0x{offset:x} not modelled; "
                           "back to read array")
            self.mode = Mode.ARRAY

    def _sequence_error(self, what: str) -> None:
        self.log.guest_error(what)
        self.status |= SR_SEQUENCE_ERROR
        self.mode = Mode.STATUS

    def _erase_confirm(self, offset: int, cmd: int) -> None:
        if cmd != CMD_CONFIRM:
            self._sequence_error(f"block erase setup followed by 0x{cmd:02x}, not 0xd0")
            return
        self.mode = Mode.STATUS
        self.erase(offset)  # the block is the one addressed by the confirm

    def _lock_confirm(self, offset: int, cmd: int) -> None:
        sector = self.sector_of(offset)
        if cmd == CMD_LOCK:
            self.locked.add(sector)
        elif cmd == CMD_CONFIRM:
            self.locked.discard(sector)
        elif cmd == CMD_LOCK_DOWN:
            self.log.unimp("lock-down (0x60/0x2f) modelled as a plain lock")
            self.locked.add(sector)
        else:
            self._sequence_error(f"lock setup followed by 0x{cmd:02x}, not 0x01/0xd0/0x2f")
            return
        self.mode = Mode.STATUS

    def _program(self, offset: int, size: int, value: int) -> None:
        sector = self.sector_of(offset)
        if sector in self.locked:
            self.log.guest_error(f"program of 0x{value:x} at 0x{offset:x}: sector {sector} "
                                 "is locked")
            self.status |= SR_PROGRAM_ERROR | SR_LOCKED
            return
        self._and_into(offset, size, value)

    def _and_into(self, offset: int, size: int, value: int) -> None:
        old = self.store.read(offset, size)
        new = bytes(b & ((value >> (8 * i)) & 0xFF) for i, b in enumerate(old))
        if new != old:
            self.store.write(offset, new)

    def erase(self, offset: int) -> bool:
        """Erase the sector holding ``offset`` (fills it with 0xFF); False when locked."""
        sector = self.sector_of(offset)
        if sector in self.locked:
            self.log.guest_error(f"erase of sector {sector} (0x{offset:x}): it is locked")
            self.status |= SR_ERASE_ERROR | SR_LOCKED
            return False
        self.store.write(sector * self.sector_size, b"\xff" * self.sector_size)
        return True

    def _buffer_count(self, offset: int, value: int) -> None:
        count = (value & ((1 << (8 * self.device_width)) - 1)) + 1
        limit = (1 << BUFFER_LOG2) // self.device_width
        if count > limit:
            self._sequence_error(f"buffered program of {count} words: the buffer holds {limit}")
            return
        self._buffer = []
        self._buffer_left = count
        self.mode = Mode.BUFFER_DATA

    def _buffer_data(self, offset: int, size: int, value: int) -> None:
        if self.sector_of(offset) != self.sector_of(self._pending_addr):
            self._buffer = []
            self._sequence_error(f"buffered program data at 0x{offset:x} outside the sector "
                                 f"of 0x{self._pending_addr:x}")
            return
        self._buffer.append((offset, size, value))
        self._buffer_left -= 1
        if self._buffer_left == 0:
            self.mode = Mode.BUFFER_CONFIRM

    def _buffer_confirm(self, cmd: int) -> None:
        writes, self._buffer = self._buffer, []
        if cmd != CMD_CONFIRM:
            self._sequence_error(f"buffered program ended by 0x{cmd:02x}, not 0xd0")
            return
        self.mode = Mode.STATUS
        for offset, size, value in writes:
            self._program(offset, size, value)
            if self.status & SR_PROGRAM_ERROR:
                break

    # answers -----------------------------------------------------------------------
    def _chip_answer(self, word: int) -> int:
        """What one chip drives on its lane for bus word address ``word`` (a byte offset)."""
        index = word // self.bank_width  # the chip's own word address
        mode = self.mode
        if mode is Mode.QUERY:
            return self.table[index] if index < len(self.table) else 0
        if mode is Mode.ID:
            in_block = index % (self.sector_size // self.bank_width)
            if in_block == 0:
                return self.manufacturer
            if in_block == 1:
                return self.device
            if in_block == 2:
                return 1 if self.sector_of(word) in self.locked else 0
            return 0
        if mode in (Mode.BUFFER_COUNT, Mode.BUFFER_DATA):
            return SR_READY  # extended status: a write buffer is available
        return self.status


#: sector size of QEMU's virt flash (both chips of the interleave together)
DEFAULT_SECTOR = 0x40000


def cfi_part(size: int, log: DeviceLog, *, bank_width: int = 4, device_width: int | None = None,
             sector_size: int = DEFAULT_SECTOR) -> Callable[[FlashStore], CfiFlash] | None:
    """A factory of the CFI model for a bank of ``size`` bytes, or None when it has none.

    ``device_width`` defaults to x16 chips (x8 on an 8-bit bank). A bank the model
    cannot describe (a size that is not a power of two, a width other than 1, 2 or
    4) is logged as unimplemented and stays plain read-only memory.
    """
    dwidth = device_width if device_width is not None else min(bank_width, 2)
    sector = min(sector_size, size)
    try:
        CfiFlash(_NoStore(), size, log, bank_width=bank_width, device_width=dwidth,
                 sector_size=sector)
    except ConfigurationError as exc:
        log.unimp(f"flash not modelled, read-only memory: {exc}")
        return None

    def build(store: FlashStore) -> CfiFlash:
        return CfiFlash(store, size, log, bank_width=bank_width, device_width=dwidth,
                        sector_size=sector)

    return build


class _NoStore:
    def read(self, offset: int, size: int) -> bytes:
        return bytes(size)

    def write(self, offset: int, data: bytes) -> None:
        pass
