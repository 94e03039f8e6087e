"""PL011 UART through guest register accesses, the console sink and feed()."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from emu.clock import VirtualClock
from emu.devices.base import DeviceContext, DeviceLog, IrqLine
from emu.devices.char.pl011 import Pl011

DR, RSR, FR, IBRD, FBRD, LCR_H, CR, IFLS, IMSC, RIS, MIS, ICR, DMACR = (
    0x00, 0x04, 0x18, 0x24, 0x28, 0x2C, 0x30, 0x34, 0x38, 0x3C, 0x40, 0x44, 0x48)
BUSY, RXFE, TXFF, RXFF, TXFE = 1 << 3, 1 << 4, 1 << 5, 1 << 6, 1 << 7
RXIM, TXIM, RTIM, OEIM = 1 << 4, 1 << 5, 1 << 6, 1 << 10
FEN = 1 << 4
UARTEN, TXE, RXE = 1, 1 << 8, 1 << 9


def make_uart() -> tuple[Pl011, IrqLine, list[bytes]]:
    out: list[bytes] = []
    irq = IrqLine(name="uart")
    ctx = DeviceContext("uart0", VirtualClock(), irqs=[irq], log=DeviceLog("uart0"))
    return Pl011(ctx, console=out.append), irq, out


def enable(uart: Pl011, *, fifo: bool = True) -> None:
    uart.write(LCR_H, 4, (3 << 5) | (FEN if fifo else 0))  # 8N1
    uart.write(CR, 4, UARTEN | TXE | RXE)


def test_reset_values() -> None:
    uart, irq, _ = make_uart()
    assert uart.read(FR, 4) == RXFE | TXFE
    assert uart.read(CR, 4) == TXE | RXE
    assert uart.read(IFLS, 4) == 0x12
    assert uart.read(RIS, 4) == 0
    assert not irq.level


def test_primecell_identification() -> None:
    uart, _, _ = make_uart()
    periph = [uart.read(0xFE0 + 4 * i, 4) for i in range(4)]
    cell = [uart.read(0xFF0 + 4 * i, 4) for i in range(4)]
    assert periph == [0x11, 0x10, 0x14, 0x00]
    assert cell == [0x0D, 0xF0, 0x05, 0xB1]


def test_transmit_goes_to_the_console_at_once() -> None:
    uart, _, out = make_uart()
    enable(uart)
    for ch in b"ok\n":
        uart.write(DR, 1, ch)
    assert b"".join(out) == b"ok\n"
    assert bytes(uart.transmitted) == b"ok\n"
    fr = uart.read(FR, 4)
    assert fr & TXFE
    assert not fr & (TXFF | BUSY)
    assert not uart.log.guest_errors


def test_transmit_while_disabled_is_logged_and_still_sent() -> None:
    uart, _, out = make_uart()
    uart.write(DR, 4, ord("x"))
    assert out == [b"x"]
    assert "UARTEN" in uart.log.guest_errors[-1]
    uart.write(DR, 4, ord("y"))  # an early console does this for every byte: logged once
    assert out == [b"x", b"y"]
    assert len(uart.log.guest_errors) == 1


def test_tx_interrupt_follows_imsc_and_icr() -> None:
    uart, irq, _ = make_uart()
    enable(uart)
    uart.write(DR, 4, ord("a"))
    assert uart.read(RIS, 4) & TXIM
    assert not irq.level  # masked
    uart.write(IMSC, 4, TXIM)
    assert irq.level
    assert uart.read(MIS, 4) == TXIM
    uart.write(ICR, 4, TXIM)
    assert not irq.level
    assert uart.read(RIS, 4) & TXIM == 0
    uart.write(DR, 4, ord("b"))
    assert irq.level


def test_receive_fifo_fill_and_drain() -> None:
    uart, _, _ = make_uart()
    enable(uart)
    assert uart.feed(b"hi") == 2
    assert not uart.read(FR, 4) & RXFE
    assert uart.read(DR, 4) == ord("h")
    assert uart.read(DR, 4) == ord("i")
    assert uart.read(FR, 4) & RXFE


def test_receive_fifo_full_and_overrun() -> None:
    uart, irq, _ = make_uart()
    enable(uart)
    uart.write(IMSC, 4, OEIM)
    data = bytes(range(0x40, 0x40 + 18))
    assert uart.feed(data) == 16
    assert uart.read(FR, 4) & RXFF
    assert uart.read(RSR, 4) & 0x8  # OE
    assert uart.read(RIS, 4) & OEIM
    assert irq.level
    got = [uart.read(DR, 4) for _ in range(16)]
    assert got == list(data[:16])  # the FIFO kept the oldest bytes
    assert uart.read(FR, 4) & RXFE
    assert not uart.read(FR, 4) & RXFF
    uart.feed(b"Z")
    assert uart.read(DR, 4) == (1 << 11) | ord("Z")  # the next byte carries DR.OE
    uart.write(RSR, 4, 0)  # ECR: clear the error flags
    assert uart.read(RSR, 4) == 0
    uart.write(ICR, 4, OEIM)
    assert not irq.level


def test_fifo_disabled_is_one_deep() -> None:
    uart, _, _ = make_uart()
    enable(uart, fifo=False)
    assert uart.rx_space == 1
    assert uart.feed(b"ab") == 1
    assert uart.read(FR, 4) & RXFF
    assert uart.read(DR, 4) == ord("a")
    assert uart.read(RIS, 4) & OEIM


def test_rx_and_receive_timeout_interrupts() -> None:
    uart, irq, _ = make_uart()
    enable(uart)
    uart.write(IFLS, 4, 0 << 3)  # RX trigger at 1/8 = 2 bytes
    uart.write(IMSC, 4, RXIM)
    uart.feed(b"1")
    assert not irq.level  # below the trigger level
    assert uart.read(RIS, 4) & RTIM  # but data is waiting
    uart.write(IMSC, 4, RXIM | RTIM)
    assert irq.level
    uart.write(IMSC, 4, RXIM)
    uart.feed(b"2")
    assert irq.level
    assert uart.read(MIS, 4) == RXIM
    uart.read(DR, 4)
    assert not irq.level  # back under the trigger
    uart.read(DR, 4)
    assert uart.read(RIS, 4) & (RXIM | RTIM) == 0


def test_icr_clears_receive_timeout_until_new_data() -> None:
    uart, irq, _ = make_uart()
    enable(uart)
    uart.write(IMSC, 4, RTIM)
    uart.feed(b"q")
    assert irq.level
    uart.write(ICR, 4, RTIM)
    assert not irq.level
    uart.feed(b"r")
    assert irq.level


def test_receiver_disabled_drops_input() -> None:
    uart, _, _ = make_uart()
    uart.write(CR, 4, UARTEN | TXE)  # RXE off
    assert uart.rx_space == 0
    assert uart.feed(b"lost") == 0
    assert uart.read(FR, 4) & RXFE


def test_fen_toggle_flushes_and_dma_is_unimplemented() -> None:
    uart, _, _ = make_uart()
    enable(uart)
    uart.feed(b"abc")
    uart.write(LCR_H, 4, 3 << 5)  # FIFOs off
    assert uart.read(FR, 4) & RXFE
    uart.write(DMACR, 4, 3)
    assert any("DMA" in m for m in uart.log.unimplemented)


def test_baud_registers_are_stored() -> None:
    uart, _, _ = make_uart()
    uart.write(IBRD, 4, 0x27)
    uart.write(FBRD, 4, 0x04)
    assert uart.read(IBRD, 4) == 0x27
    assert uart.read(FBRD, 4) == 0x04


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.binary(min_size=1, max_size=20), st.integers(1, 8)), max_size=20))
def test_fifo_behaves_like_a_bounded_queue(ops: list[bytes | int]) -> None:
    uart, _, _ = make_uart()
    enable(uart)
    model: list[int] = []
    for op in ops:
        if isinstance(op, bytes):
            taken = uart.feed(op)
            assert taken == min(len(op), 16 - len(model))
            model += list(op[:taken])
        else:
            for _ in range(op):
                value = uart.read(DR, 4) & 0xFF
                assert value == (model.pop(0) if model else 0)
        fr = uart.read(FR, 4)
        assert bool(fr & RXFE) == (not model)
        assert bool(fr & RXFF) == (len(model) == 16)
