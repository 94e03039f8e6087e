"""memparse(): the kernel's number syntax, and the size formatters."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cma.errors import ConfigError
from cma.memparse import SUFFIX_SHIFTS, format_memsize, format_size, memparse

U64 = (1 << 64) - 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", (0, 1)),
        ("20M", (20 << 20, 3)),
        ("20m", (20 << 20, 3)),
        ("64K", (64 << 10, 3)),
        ("1G", (1 << 30, 2)),
        ("2g", (2 << 30, 2)),
        ("3T", (3 << 40, 2)),
        ("5p", (5 << 50, 2)),
        ("7E", (7 << 60, 2)),
        ("0x50000000", (0x50000000, 10)),
        ("0X1fM", (0x1F << 20, 5)),
        ("0200", (0o200, 4)),  # leading 0: octal, as simple_strtoull base 0
        ("0777k", (0o777 << 10, 5)),
        ("512M@1G", (512 << 20, 4)),  # stops at the first non-number character
        ("123abc", (123, 3)),  # 'a' is no suffix: decimal stops there
        ("08", (0, 1)),  # '8' is not an octal digit
        ("0x", (0, 1)),  # "0x" without a hex digit is the octal number 0
        ("0xg", (0, 1)),
        ("1KM", (1 << 10, 2)),  # one suffix only
        ("18446744073709551615", (U64, 20)),
    ],
)
def test_memparse_reads_like_the_kernel(text: str, expected: tuple[int, int]) -> None:
    assert memparse(text) == expected


def test_memparse_starts_at_pos() -> None:
    assert memparse("r=64M@0x1000", 2) == (64 << 20, 5)
    assert memparse("r=64M@0x1000", 6) == (0x1000, 12)


@pytest.mark.parametrize(
    ("text", "pos"), [("", 0), ("M", 0), ("r=", 2), ("-1", 0), (" 1", 0), ("x1", 0)]
)
def test_memparse_without_digits_raises_with_position(text: str, pos: int) -> None:
    with pytest.raises(ConfigError) as info:
        memparse(text, pos)
    assert info.value.pos == pos
    assert info.value.text == text
    assert "expected a number" in info.value.message


def test_memparse_rejects_values_beyond_64_bits() -> None:
    with pytest.raises(ConfigError, match="does not fit in 64 bits"):
        memparse("16E")
    with pytest.raises(ConfigError, match="does not fit in 64 bits"):
        memparse("18446744073709551616")


def test_config_error_draws_a_caret() -> None:
    with pytest.raises(ConfigError) as info:
        memparse("r=xyz", 2)
    lines = str(info.value).splitlines()
    assert lines[0].endswith("at position 2")
    assert lines[1].strip() == "r=xyz"
    assert lines[2].index("^") == lines[1].index("r") + 2


@settings(max_examples=150)
@given(st.integers(min_value=0, max_value=U64))
def test_memparse_reads_decimal_hex_and_octal_renderings(n: int) -> None:
    assert memparse(str(n)) == (n, len(str(n)))
    assert memparse(hex(n)) == (n, len(hex(n)))
    octal = "0" + format(n, "o")
    assert memparse(octal) == (n, len(octal))


@settings(max_examples=150)
@given(
    st.integers(min_value=0, max_value=(1 << 20) - 1),
    st.sampled_from(sorted(SUFFIX_SHIFTS)),
    st.booleans(),
)
def test_memparse_suffixes_are_binary_multiples(n: int, suffix: str, lower: bool) -> None:
    shift = SUFFIX_SHIFTS[suffix]
    text = f"{n}{suffix.lower() if lower else suffix}"
    if n << shift > U64:
        with pytest.raises(ConfigError):
            memparse(text)
    else:
        assert memparse(text) == (n << shift, len(text))


@settings(max_examples=150)
@given(st.integers(min_value=0, max_value=U64))
def test_format_memsize_round_trips(n: int) -> None:
    text = format_memsize(n)
    assert memparse(text) == (n, len(text))


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 bytes"),
        (64 << 20, "64 MiB"),
        (4096, "4 KiB"),
        (1 << 30, "1 GiB"),
        (1536 << 10, "1536 KiB"),
        (3 << 40, "3 TiB"),
        (0x1234, "0x1234 bytes"),
        (1, "0x1 bytes"),
    ],
)
def test_format_size(n: int, text: str) -> None:
    assert format_size(n) == text


def test_formatters_reject_negative_sizes() -> None:
    with pytest.raises(ValueError, match="not -1"):
        format_size(-1)
    with pytest.raises(ValueError, match="not -1"):
        format_memsize(-1)
