"""ARM PrimeCell UART PL011 ("arm,pl011", "arm,primecell").

Interface:
  MMIO      0x1000 bytes, registers below (8-, 16- and 32-bit accesses)
  IRQ       one output (``ctx.irqs[0]``): the combined interrupt, high while
            RIS & IMSC != 0 (level)
  Console   transmitted bytes go at once to the injected ``console`` sink
            (``bytes -> None``) and are kept in :attr:`Pl011.transmitted`
  Input     :meth:`Pl011.feed` puts received bytes into the receive FIFO; the
            machine calls it over virtual time with scripted input

Modelled: DR (transmit; receive with the FE/PE/BE/OE flags), RSR/ECR, FR
(TXFE, RXFE, RXFF, TXFF, BUSY), IBRD/FBRD/LCR_H/CR/IFLS (stored; LCR_H.FEN
selects a 16-entry receive FIFO, otherwise a 1-deep holding register), the
interrupt registers IMSC/RIS/MIS/ICR and the PrimeCell identification registers
(peripheral ID 0x00141011: a PL011 r1p5 as Linux's AMBA bus probe expects).

Transmission takes no time: the transmit FIFO is always empty, so FR.TXFE
reads 1 and BUSY / TXFF read 0. Each DR write sets the transmit interrupt
(RIS.TX), as the FIFO drains below any trigger level at once; ICR clears it.
Like QEMU, a write to DR while CR.UARTEN or CR.TXE is clear is logged as a guest
error and the byte is still sent.

Reception: a byte arriving while the FIFO is full is lost and sets the overrun
error (RSR.OE, RIS.OE; the next received byte carries DR.OE). Bytes arriving
while CR.UARTEN or CR.RXE is clear are dropped. :meth:`Pl011.feed` returns how
many bytes were taken, and :attr:`Pl011.rx_space` says how many would fit, so
a caller may instead hold input back until the guest has room. RIS.RX is set
while the FIFO holds at least the IFLS trigger level (any byte with the FIFO
off); RIS.RT (receive timeout) is set whenever received data is waiting. Both
follow the FIFO level and can be cleared through ICR until the next byte.

Logged as unimplemented: DMA (DMACR), IrDA (SIREN), loopback (LBE), break,
modem status lines (their interrupts never fire; FR's CTS/DSR/DCD/RI read 0).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from emu.devices.base import Access, Device, DeviceContext, Field, IrqLine, Register

FIFO_DEPTH = 16

# interrupt bits (IMSC, RIS, MIS, ICR)
INT_RI = 1 << 0
INT_CTS = 1 << 1
INT_DCD = 1 << 2
INT_DSR = 1 << 3
INT_RX = 1 << 4
INT_TX = 1 << 5
INT_RT = 1 << 6
INT_FE = 1 << 7
INT_PE = 1 << 8
INT_BE = 1 << 9
INT_OE = 1 << 10
INT_ALL = 0x7FF

FR_BUSY = 1 << 3
FR_RXFE = 1 << 4
FR_TXFF = 1 << 5
FR_RXFF = 1 << 6
FR_TXFE = 1 << 7

DR_OE = 1 << 11
RSR_OE = 1 << 3

LCR_H_FEN = 1 << 4
CR_UARTEN = 1 << 0
CR_SIREN = 1 << 1
CR_LBE = 1 << 7
CR_TXE = 1 << 8
CR_RXE = 1 << 9

_RX_TRIGGER = (2, 4, 8, 12, 14)  # IFLS.RXIFLSEL: 1/8, 1/4, 1/2, 3/4, 7/8 of 16

_INT_FIELDS = (
    Field("RIM", 0, doc="nUARTRI modem status"),
    Field("CTSM", 1, doc="nUARTCTS modem status"),
    Field("DCDM", 2, doc="nUARTDCD modem status"),
    Field("DSRM", 3, doc="nUARTDSR modem status"),
    Field("RX", 4, doc="receive FIFO at or above the trigger level"),
    Field("TX", 5, doc="transmit FIFO at or below the trigger level"),
    Field("RT", 6, doc="receive timeout: data waiting"),
    Field("FE", 7, doc="framing error"),
    Field("PE", 8, doc="parity error"),
    Field("BE", 9, doc="break error"),
    Field("OE", 10, doc="overrun error"),
)


def _ro(fields: tuple[Field, ...]) -> tuple[Field, ...]:
    return tuple(Field(f.name, f.lsb, f.width, Access.R, f.reset, f.doc) for f in fields)


def _w(fields: tuple[Field, ...]) -> tuple[Field, ...]:
    return tuple(Field(f.name, f.lsb, f.width, Access.W, f.reset, f.doc) for f in fields)


_PERIPH_ID = (0x11, 0x10, 0x14, 0x00)
_CELL_ID = (0x0D, 0xF0, 0x05, 0xB1)


class Pl011(Device):
    """The PL011 UART with an immediate transmitter and a receive FIFO."""

    compatible = ("arm,pl011", "arm,primecell")
    mmio_size = 0x1000
    registers = (
        Register(0x000, "DR", Access.RW, fields=(
            Field("DATA", 0, 8, doc="write: byte to send; read: oldest received byte"),
            Field("FE", 8, access=Access.R, doc="framing error"),
            Field("PE", 9, access=Access.R, doc="parity error"),
            Field("BE", 10, access=Access.R, doc="break error"),
            Field("OE", 11, access=Access.R, doc="overrun error"),
        ), doc="data"),
        Register(0x004, "RSR_ECR", Access.RW, fields=(
            Field("FE", 0), Field("PE", 1), Field("BE", 2),
            Field("OE", 3, doc="a byte was lost: the receive FIFO was full"),
        ), doc="read: receive status; write (any value): clear the error flags"),
        Register(0x018, "FR", Access.R, fields=(
            Field("CTS", 0, access=Access.R), Field("DSR", 1, access=Access.R),
            Field("DCD", 2, access=Access.R),
            Field("BUSY", 3, access=Access.R, doc="transmitting (never: sending is immediate)"),
            Field("RXFE", 4, access=Access.R, doc="receive FIFO empty"),
            Field("TXFF", 5, access=Access.R, doc="transmit FIFO full (never)"),
            Field("RXFF", 6, access=Access.R, doc="receive FIFO full"),
            Field("TXFE", 7, access=Access.R, doc="transmit FIFO empty (always)"),
            Field("RI", 8, access=Access.R),
        ), doc="flags"),
        Register(0x020, "ILPR", Access.RW, doc="IrDA low-power counter (stored)"),
        Register(0x024, "IBRD", Access.RW, fields=(Field("BAUD_DIVINT", 0, 16),),
                 doc="integer baud rate divisor (stored)"),
        Register(0x028, "FBRD", Access.RW, fields=(Field("BAUD_DIVFRAC", 0, 6),),
                 doc="fractional baud rate divisor (stored)"),
        Register(0x02C, "LCR_H", Access.RW, fields=(
            Field("BRK", 0), Field("PEN", 1), Field("EPS", 2), Field("STP2", 3),
            Field("FEN", 4, doc="FIFOs enabled (16 entries), else 1-deep"),
            Field("WLEN", 5, 2, doc="word length - 5"), Field("SPS", 7),
        ), doc="line control"),
        Register(0x030, "CR", Access.RW, 0x300, fields=(
            Field("UARTEN", 0, doc="UART enabled"), Field("SIREN", 1), Field("SIRLP", 2),
            Field("LBE", 7, doc="loopback (not modelled)"),
            Field("TXE", 8, reset=1, doc="transmitter enabled"),
            Field("RXE", 9, reset=1, doc="receiver enabled"),
            Field("DTR", 10), Field("RTS", 11), Field("OUT1", 12), Field("OUT2", 13),
            Field("RTSEN", 14), Field("CTSEN", 15),
        ), doc="control"),
        Register(0x034, "IFLS", Access.RW, 0x12, fields=(
            Field("TXIFLSEL", 0, 3, reset=2, doc="transmit trigger level"),
            Field("RXIFLSEL", 3, 3, reset=2, doc="receive trigger: 1/8 1/4 1/2 3/4 7/8"),
        ), doc="interrupt FIFO level select"),
        Register(0x038, "IMSC", Access.RW, fields=_INT_FIELDS, doc="interrupt mask (1: enabled)"),
        Register(0x03C, "RIS", Access.R, fields=_ro(_INT_FIELDS), doc="raw interrupt status"),
        Register(0x040, "MIS", Access.R, fields=_ro(_INT_FIELDS),
                 doc="masked interrupt status: RIS & IMSC"),
        Register(0x044, "ICR", Access.W, fields=_w(_INT_FIELDS), doc="write 1 to clear RIS bits"),
        Register(0x048, "DMACR", Access.RW, fields=(
            Field("RXDMAE", 0), Field("TXDMAE", 1), Field("DMAONERR", 2),
        ), doc="DMA control (not modelled)"),
        *(Register(0xFE0 + 4 * i, f"PERIPHID{i}", Access.R, v, doc="peripheral identification")
          for i, v in enumerate(_PERIPH_ID)),
        *(Register(0xFF0 + 4 * i, f"CELLID{i}", Access.R, v, doc="PrimeCell identification")
          for i, v in enumerate(_CELL_ID)),
    )

    def __init__(self, ctx: DeviceContext, *,
                 console: Callable[[bytes], None] | None = None) -> None:
        self.console = console
        self.transmitted = bytearray()
        #: bytes written while the UART or its transmitter was disabled (logged once)
        self._disabled_writes = 0
        self._rx: deque[int] = deque()
        self._pending_oe = False
        self._ris = 0
        self.irq = ctx.irqs[0] if ctx.irqs else IrqLine(name=f"{ctx.name}.irq")
        super().__init__(ctx)
        self.hook("DR", read=self._read_dr, write=self._write_dr)
        self.hook("RSR_ECR", write=self._write_ecr)
        self.hook("FR", read=self._read_fr)
        self.hook("LCR_H", write=self._write_lcr_h)
        self.hook("CR", write=self._write_cr)
        self.hook("IMSC", write=lambda _i, _o, _n: self._update())
        self.hook("RIS", read=lambda _i: self._ris)
        self.hook("MIS", read=lambda _i: self._ris & self.get("IMSC"))
        self.hook("ICR", write=self._write_icr)
        self.hook("DMACR", write=self._write_dmacr)

    def reset(self) -> None:
        super().reset()
        self._rx = deque()
        self._pending_oe = False
        self._ris = 0
        self._update()

    # host side -------------------------------------------------------------
    @property
    def fifo_depth(self) -> int:
        """Receive capacity: 16 with LCR_H.FEN, else 1."""
        return FIFO_DEPTH if self.get("LCR_H") & LCR_H_FEN else 1

    @property
    def rx_space(self) -> int:
        """How many bytes :meth:`feed` would take now without an overrun."""
        if not self._receiving():
            return 0
        return max(self.fifo_depth - len(self._rx), 0)

    @property
    def rx_level(self) -> int:
        """Bytes waiting in the receive FIFO."""
        return len(self._rx)

    def feed(self, data: bytes) -> int:
        """Bytes arriving on the receive wire; returns how many entered the FIFO."""
        if not data:
            return 0
        if not self._receiving():
            self.log.guest_error(
                f"{len(data)} received byte(s) dropped: receiver disabled (CR 0x{self.get('CR'):x})"
            )
            return 0
        taken = 0
        for byte in data:
            if len(self._rx) >= self.fifo_depth:
                self._pending_oe = True
                self.set("RSR_ECR", self.get("RSR_ECR") | RSR_OE)
                self._ris |= INT_OE
                continue
            entry = byte | (DR_OE if self._pending_oe else 0)
            self._pending_oe = False
            self._rx.append(entry)
            taken += 1
        self._rx_levels_changed(received=taken > 0)
        return taken

    # register side effects -------------------------------------------------
    def _receiving(self) -> bool:
        cr = self.get("CR")
        return bool(cr & CR_UARTEN and cr & CR_RXE)

    def _update(self) -> None:
        self.irq.set(bool(self._ris & self.get("IMSC")))

    def _rx_trigger(self) -> int:
        if not self.get("LCR_H") & LCR_H_FEN:
            return 1
        sel = (self.get("IFLS") >> 3) & 0x7
        if sel >= len(_RX_TRIGGER):
            self.log.guest_error(f"IFLS.RXIFLSEL {sel} is reserved; using 1/2")
            sel = 2
        return _RX_TRIGGER[sel]

    def _rx_levels_changed(self, *, received: bool) -> None:
        level = len(self._rx)
        if level >= self._rx_trigger():
            if received:
                self._ris |= INT_RX
        else:
            self._ris &= ~INT_RX
        if level == 0:
            self._ris &= ~INT_RT
        elif received:
            self._ris |= INT_RT
        self._update()

    def _read_dr(self, _index: int) -> int:
        if not self._rx:
            return 0
        entry = self._rx.popleft()
        self._rx_levels_changed(received=False)
        return entry

    def _write_dr(self, _index: int, _old: int, new: int) -> None:
        cr = self.get("CR")
        transmitting = CR_UARTEN | CR_TXE
        if (cr & transmitting) != transmitting:
            self._disabled_writes += 1
            if self._disabled_writes == 1:  # an early console does this for every byte
                what = "UART is disabled (CR.UARTEN 0)" if not cr & CR_UARTEN \
                    else "transmitter is disabled (CR.TXE 0)"
                self.log.guest_error(f"data written to DR while the {what}; sent anyway, "
                                     "like QEMU; further such writes are counted, not logged")
        byte = bytes((new & 0xFF,))
        self.transmitted += byte
        if self.console is not None:
            self.console(byte)
        self._ris |= INT_TX
        self._update()

    def _read_fr(self, _index: int) -> int:
        fr = FR_TXFE
        if not self._rx:
            fr |= FR_RXFE
        if len(self._rx) >= self.fifo_depth:
            fr |= FR_RXFF
        return fr

    def _write_ecr(self, _index: int, _old: int, _new: int) -> None:
        self.set("RSR_ECR", 0)

    def _write_lcr_h(self, _index: int, old: int, new: int) -> None:
        if (old ^ new) & LCR_H_FEN:
            self._rx.clear()  # switching the FIFOs on or off flushes them (as QEMU does)
            self._rx_levels_changed(received=False)
        if new & 1:
            self.log.unimp("LCR_H.BRK: sending a break")

    def _write_cr(self, _index: int, _old: int, new: int) -> None:
        if new & CR_LBE:
            self.log.unimp("CR.LBE: loopback")
        if new & CR_SIREN:
            self.log.unimp("CR.SIREN: IrDA encoding")

    def _write_icr(self, _index: int, _old: int, new: int) -> None:
        self._ris &= ~new & INT_ALL
        self._update()

    def _write_dmacr(self, _index: int, _old: int, new: int) -> None:
        if new & 0x7:
            self.log.unimp(f"DMACR 0x{new:x}: DMA requests")
