"""The command-line parsers: 2010 cma=/cma_map=, mainline cma=, whole command lines."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cma.cmdline import (
    MODERN_REGION_NAME,
    format_map,
    format_regions,
    is_modern_form,
    parse_cmdline,
    parse_map,
    parse_modern,
    parse_regions,
    split_cmdline,
)
from cma.config import CmaConfig, MapRule, Pattern, RegionSpec, Source
from cma.errors import ConfigError

M = 1 << 20


def region(name: str, size: int, **kw: object) -> RegionSpec:
    return RegionSpec(name=name, size=size, **kw)  # type: ignore[arg-type]


def rule(patterns: list[tuple[str, str | None]], regions: list[str]) -> MapRule:
    return MapRule(
        patterns=tuple(Pattern(device=d, kind=k) for d, k in patterns), regions=tuple(regions)
    )


# ----------------------------------------------------------------- cma= (2010): documented examples


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("r=20M", (region("r", 20 * M),)),
        ("v=20M;c=20M", (region("v", 20 * M), region("c", 20 * M))),
        ("v=20M,c=20M", (region("v", 20 * M), region("c", 20 * M))),
        ("c=10M", (region("c", 10 * M),)),
        ("r=30M:na", (region("r", 30 * M, allocator="na"),)),
        (
            "r1=64M@512M/1M:bf(x);r2=64M/1M",
            (
                region("r1", 64 * M, start=512 * M, alignment=M, allocator="bf", params="x"),
                region("r2", 64 * M, alignment=M),
            ),
        ),
        (
            "r1=64M@512M/1M:foo(bar);r2=64M/1M;r3=64M@512M:foo;",
            (
                region("r1", 64 * M, start=512 * M, alignment=M, allocator="foo", params="bar"),
                region("r2", 64 * M, alignment=M),
                region("r3", 64 * M, start=512 * M, allocator="foo"),
            ),
        ),
        (
            "a=32M@0,b=32M@512M",
            (region("a", 32 * M, start=0), region("b", 32 * M, start=512 * M)),
        ),
        ("r=64M", (region("r", 64 * M),)),
        ("", ()),
    ],
)
def test_documented_region_lists(text: str, expected: tuple[RegionSpec, ...]) -> None:
    assert parse_regions(text) == expected


def test_region_defaults_follow_2010_semantics() -> None:
    (spec,) = parse_regions("r1=64M@512M")
    assert spec.start == 512 * M
    assert spec.fixed is False  # "or at least as near as possible"
    assert spec.alignment == 0
    assert spec.allocator is None
    assert spec.params == ""
    assert spec.source is Source.CMDLINE
    assert spec.default is False


def test_sizes_are_not_rounded_to_pages() -> None:
    (spec,) = parse_regions("odd=0x1234@0x1001")
    assert (spec.size, spec.start) == (0x1234, 0x1001)


def test_allocator_forms() -> None:
    specs = parse_regions("a=1M:;b=1M:(p q);c=1M:bf();d=1M:best_fit2(x,y=1)")
    assert [(s.allocator, s.params) for s in specs] == [
        (None, ""),
        (None, "p q"),
        ("bf", ""),
        ("best_fit2", "x,y=1"),
    ]


def test_names_take_digits_and_underscores() -> None:
    assert [s.name for s in parse_regions("1=1M;cam_0=2M;R2=3M")] == ["1", "cam_0", "R2"]


def test_zero_alignment_means_the_default() -> None:
    (spec,) = parse_regions("r=1M/0")
    assert spec.alignment == 0


# ----------------------------------------------------------------- cma= (2010): errors


@pytest.mark.parametrize(
    ("text", "pos", "message"),
    [
        ("r", 1, "expected '=' after region name 'r', not end of text"),
        ("r:20M", 1, "expected '=' after region name 'r', not ':'"),
        ("=20M", 0, "expected a region name"),
        ("cam-0=1M", 3, "expected '=' after region name 'cam'"),
        ("r=", 2, "expected a size after 'r=', not end of text"),
        ("r=M", 2, "expected a size after 'r=', not 'M'"),
        ("r=0", 2, "region size must be greater than 0"),
        ("r=0M@1G", 2, "region size must be greater than 0"),
        ("r=1M@", 5, "expected a start address after '@'"),
        ("r=1M/", 5, "expected an alignment after '/'"),
        ("r=1M/0x3000", 5, "alignment must be a power of two, not 0x3000"),
        ("r=1M/3K", 5, "alignment must be a power of two, not 0xc00"),
        ("r=1M:bf(x", 9, "unbalanced parentheses: expected ')' to close the '(' at position 7"),
        ("r=1M:bf(x;s=1M", 9, "unbalanced parentheses"),
        ("r=1M)", 4, "unbalanced parentheses: ')' without '('"),
        ("r=1M:bf(x))", 10, "unbalanced parentheses: ')' without '('"),
        ("r=1M;r=2M", 5, "duplicate region name 'r' (first defined at position 0)"),
        ("a=1M,b=1M;a=1M", 10, "duplicate region name 'a'"),
        ("r=1Mx", 4, "expected ';' or ',' after region 'r', not 'x'"),
        ("r=1M r2=1M", 4, "expected ';' or ',' after region 'r', not ' '"),
        ("r=1M;;", 5, "expected a region name"),
        ("r=1M@1G/1M@2G", 10, "expected ';' or ','"),
        ("r=16E", 2, "does not fit in 64 bits"),
    ],
)
def test_invalid_region_lists(text: str, pos: int, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_regions(text)
    assert info.value.pos == pos
    assert info.value.text == text
    assert message in info.value.message
    assert f"at position {pos}" in str(info.value)


# ----------------------------------------------------------------- cma_map=


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("camera=c", (rule([("camera", None)], ["c"]),)),
        ("video,camera=r", (rule([("video", None), ("camera", None)], ["r"]),)),
        ("video=v;camera=c", (rule([("video", None)], ["v"]), rule([("camera", None)], ["c"]))),
        (
            "foo/a=a,b;foo/b=b,a",
            (rule([("foo", "a")], ["a", "b"]), rule([("foo", "b")], ["b", "a"])),
        ),
        ("foo/a=a;foo/b=b", (rule([("foo", "a")], ["a"]), rule([("foo", "b")], ["b"]))),
        ("foo/*=r", (rule([("foo", "*")], ["r"]),)),
        ("*=common", (rule([("*", None)], ["common"]),)),
        ("*/*=common;", (rule([("*", "*")], ["common"]),)),
        ("baz?/a*,baz?/b*=r3", (rule([("baz?", "a*"), ("baz?", "b*")], ["r3"]),)),
        ("baz?/a*,/b*=r3", (rule([("baz?", "a*"), ("baz?", "b*")], ["r3"]),)),
        ("foo/=r", (rule([("foo", "")], ["r"]),)),
        (
            "cam@40000000=camera-pool@50000000,linux-cma",
            (rule([("cam@40000000", None)], ["camera-pool@50000000", "linux-cma"]),),
        ),
        ("", ()),
    ],
)
def test_documented_maps(text: str, expected: tuple[MapRule, ...]) -> None:
    assert parse_map(text) == expected


def test_the_2010_documentation_map_with_device_reuse_across_rules() -> None:
    rules = parse_map("foo=r1;foo/quaz=r2;/quaz=r2;foo/*=r3;/*=r3;bar/*=r1,r2;baz?/a*,baz?/b*=r3")
    assert rules == (
        rule([("foo", None)], ["r1"]),
        rule([("foo", "quaz")], ["r2"]),
        rule([("foo", "quaz")], ["r2"]),  # '/quaz' reused 'foo' from the rule before
        rule([("foo", "*")], ["r3"]),
        rule([("foo", "*")], ["r3"]),
        rule([("bar", "*")], ["r1", "r2"]),
        rule([("baz?", "a*"), ("baz?", "b*")], ["r3"]),
    )


@pytest.mark.parametrize(
    ("text", "pos", "message"),
    [
        ("/a=r", 0, "'/KIND' reuses the device of the pattern before it, but there is none"),
        ("camera", 6, "expected ',' or '=' after pattern, not end of text"),
        ("camera=", 7, "expected a region name, not end of text"),
        ("camera=c,", 9, "expected a region name"),
        ("=c", 0, "expected a device pattern or '/', not '='"),
        ("a,=c", 2, "expected a device pattern or '/'"),
        ("a=b=c", 3, "expected ',' or ';' after region name, not '='"),
        ("a*b=c", 1, "'*' may only end a pattern"),
        ("a/*x=c", 2, "'*' may only end a pattern"),
        ("a/b/c=r", 3, "expected ',' or '=' after pattern, not '/'"),
        ("a=r;;", 4, "expected a device pattern or '/', not ';'"),
        ("a b=r", 1, "expected ',' or '=' after pattern, not ' '"),
        ("a=r x", 3, "expected ',' or ';' after region name, not ' '"),
    ],
)
def test_invalid_maps(text: str, pos: int, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_map(text)
    assert info.value.pos == pos
    assert message in info.value.message


# ----------------------------------------------------------------- mainline cma=


def test_modern_plain_size_is_placed_anywhere() -> None:
    assert parse_modern("64M") == RegionSpec(
        name=MODERN_REGION_NAME, size=64 * M, default=True, source=Source.MODERN
    )


def test_modern_size_at_base_is_fixed() -> None:
    spec = parse_modern("64M@0x50000000")
    assert spec is not None
    assert (spec.start, spec.fixed, spec.alloc_ranges) == (0x50000000, True, ())
    assert spec.name == "reserved"
    assert spec.default
    assert spec.source is Source.MODERN


def test_modern_window_places_inside_it() -> None:
    spec = parse_modern("64M@1G-2G")
    assert spec is not None
    assert spec.size == 64 * M
    assert spec.fixed is False
    assert spec.start is None
    assert spec.alloc_ranges == ((1 << 30, 1 << 30),)


def test_modern_window_exactly_the_size_is_fixed() -> None:
    spec = parse_modern("64M@1G-1088M")
    assert spec is not None
    assert (spec.fixed, spec.start) == (True, 1 << 30)
    assert spec.alloc_ranges == ((1 << 30, 64 * M),)


@pytest.mark.parametrize("text", ["0", "0M", "0@0x40000000", "0@1G-2G"])
def test_modern_zero_disables_the_area(text: str) -> None:
    assert parse_modern(text) is None


@pytest.mark.parametrize(
    ("text", "pos", "message"),
    [
        ("", 0, "expected a size after 'cma='"),
        ("M", 0, "expected a size"),
        ("64Mx", 3, "expected '@' or end of text after the size, not 'x'"),
        ("64M@", 4, "expected a base address after '@'"),
        ("64M@1Gx", 6, "expected '-' or end of text after the base"),
        ("64M@1G-", 7, "expected a limit address after '-'"),
        ("64M@1G-2G-3G", 9, "expected end of text after the limit"),
        ("64M@2G-1G", 7, "limit 0x40000000 must be above the base 0x80000000"),
        ("64M@1G-1G", 7, "must be above the base"),
        ("64M@1G-1056M", 4, "window 0x40000000-0x42000000 is smaller than the size 0x4000000"),
    ],
)
def test_invalid_modern_forms(text: str, pos: int, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_modern(text)
    assert info.value.pos == pos
    assert message in info.value.message


@pytest.mark.parametrize(
    ("value", "modern"),
    [
        ("64M", True),
        ("64M@0x50000000", True),
        ("64M@1G-2G", True),
        ("0", True),
        ("r=20M", False),
        ("1=20M", False),
        ("v=20M;c=20M", False),
        ("", False),
    ],
)
def test_is_modern_form(value: str, modern: bool) -> None:
    assert is_modern_form(value) is modern


# ----------------------------------------------------------------- whole command lines


def test_split_cmdline_like_next_arg() -> None:
    line = (
        '  console=ttyAMA0,115200 quiet "foo bar" x="a b" "k=v w" =a=b '
        'init=/sbin/init -- rest "q"   '
    )
    assert split_cmdline(line) == [
        ("console", "ttyAMA0,115200"),
        ("quiet", None),
        ("foo bar", None),
        ("x", "a b"),
        ("k", "v w"),
        ("=a", "b"),  # an '=' at the very start does not split, as in the kernel
        ("init", "/sbin/init"),
        ("--", None),
        ("rest", None),
        ("q", None),
    ]


def test_split_cmdline_edge_cases() -> None:
    assert split_cmdline("") == []
    assert split_cmdline("   \t\n") == []
    assert split_cmdline("a= b=") == [("a", ""), ("b", "")]
    assert split_cmdline('a="') == [("a", "")]
    assert split_cmdline('a="x y') == [("a", "x y")]  # unterminated quote runs to the end
    assert split_cmdline("a=b=c") == [("a", "b=c")]


def test_parse_cmdline_documented_examples() -> None:
    assert parse_cmdline("cma=c=10M cma_map=camera=c") == CmaConfig(
        regions=(region("c", 10 * M),), rules=(rule([("camera", None)], ["c"]),)
    )
    config = parse_cmdline("cma=r=20M cma_map=video,camera=r")
    assert config.regions == (region("r", 20 * M),)
    assert config.rules == (rule([("video", None), ("camera", None)], ["r"]),)
    config = parse_cmdline("cma=v=20M,c=20M cma_map=video=v;camera=c")
    assert [r.name for r in config.regions] == ["v", "c"]
    assert len(config.rules) == 2
    config = parse_cmdline("cma=a=32M@0,b=32M@512M cma_map=foo/a=a,b;foo/b=b,a")
    assert [(r.name, r.start) for r in config.regions] == [("a", 0), ("b", 512 * M)]
    assert config.rules[1] == rule([("foo", "b")], ["b", "a"])


def test_parse_cmdline_ignores_other_parameters() -> None:
    config = parse_cmdline(
        'console=ttyAMA0 root=/dev/vda rw cma_foo=1 xcma=2 "cmdline with spaces" earlycon'
    )
    assert config.is_empty


def test_parse_cmdline_modern_dialect() -> None:
    config = parse_cmdline("console=ttyAMA0 cma=64M@0x50000000")
    assert len(config.regions) == 1
    assert config.regions[0].fixed
    assert config.regions[0].start == 0x50000000
    assert parse_cmdline("cma=0").regions == ()


def test_parse_cmdline_later_occurrences_override() -> None:
    config = parse_cmdline("cma=a=1M cma_map=x=a cma=64M cma_map=y=b")
    assert [r.name for r in config.regions] == ["reserved"]
    assert config.rules == (rule([("y", None)], ["b"]),)
    assert parse_cmdline("cma=64M cma=0").regions == ()
    assert [r.name for r in parse_cmdline("cma=64M cma=r=1M").regions] == ["r"]


def test_parse_cmdline_dash_and_underscore_are_the_same() -> None:
    assert parse_cmdline("cma-map=camera=c").rules == (rule([("camera", None)], ["c"]),)


def test_parse_cmdline_stops_at_double_dash() -> None:
    config = parse_cmdline("cma=c=10M -- cma=d=1M cma_map=x=y")
    assert [r.name for r in config.regions] == ["c"]
    assert config.rules == ()


def test_parse_cmdline_quoted_values() -> None:
    config = parse_cmdline('cma_map="video,camera=r" "cma=r=20M"')
    assert config.rules == (rule([("video", None), ("camera", None)], ["r"]),)
    assert config.regions == (region("r", 20 * M),)


def test_parse_cmdline_does_not_check_region_names() -> None:
    config = parse_cmdline("cma=c=10M cma_map=camera=linux-cma")
    assert config.rules[0].regions == ("linux-cma",)


def test_parse_cmdline_errors_point_into_the_whole_line() -> None:
    line = "console=ttyAMA0 cma=r=1M/0x3000 quiet"
    with pytest.raises(ConfigError) as info:
        parse_cmdline(line)
    assert info.value.text == line
    assert info.value.pos == line.index("0x3000")
    assert "alignment must be a power of two, not 0x3000" in info.value.message
    line = 'quiet cma_map="a=b=c"'
    with pytest.raises(ConfigError) as info:
        parse_cmdline(line)
    assert info.value.pos == line.index("=c")


def test_parse_cmdline_bare_cma_is_an_error() -> None:
    with pytest.raises(ConfigError, match="cma needs a value") as info:
        parse_cmdline("quiet cma")
    assert info.value.pos == 6


def test_parse_cmdline_checks_overridden_values_too() -> None:
    with pytest.raises(ConfigError):
        parse_cmdline("cma=r=0 cma=r=1M")


# ----------------------------------------------------------------- properties

_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCZ0189_", min_size=1, max_size=8)
_sizes = st.one_of(
    st.integers(min_value=1, max_value=(1 << 40)),
    st.integers(min_value=1, max_value=4096).map(lambda n: n << 20),
)
_addresses = st.one_of(st.none(), st.integers(min_value=0, max_value=(1 << 40)))
_alignments = st.one_of(st.just(0), st.integers(min_value=0, max_value=40).map(lambda s: 1 << s))
_allocators = st.one_of(st.none(), _names)
_params = st.text(
    alphabet=st.characters(blacklist_characters=");", blacklist_categories=["Cs"]), max_size=10
)


@st.composite
def region_lists(draw: st.DrawFn) -> tuple[RegionSpec, ...]:
    names = draw(st.lists(_names, min_size=1, max_size=5, unique=True))
    return tuple(
        RegionSpec(
            name=name,
            size=draw(_sizes),
            start=draw(_addresses),
            alignment=draw(_alignments),
            allocator=draw(_allocators),
            params=draw(_params),
        )
        for name in names
    )


@settings(max_examples=150)
@given(region_lists(), st.sampled_from([";", ","]), st.booleans())
def test_region_lists_round_trip(
    specs: tuple[RegionSpec, ...], separator: str, trailing: bool
) -> None:
    text = separator.join(format_regions([spec]) for spec in specs)
    if trailing:
        text += separator
    assert parse_regions(text) == specs


_pattern_part = st.text(alphabet="abcxyz09_-.@?", min_size=1, max_size=6).flatmap(
    lambda s: st.sampled_from([s, s + "*"])
)
_kinds = st.one_of(st.none(), st.just(""), st.just("*"), _pattern_part)
_region_names = st.text(alphabet="abcxyz09_-@.:", min_size=1, max_size=8)


@st.composite
def map_rules(draw: st.DrawFn) -> tuple[MapRule, ...]:
    rules = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        patterns = tuple(
            Pattern(device=draw(_pattern_part), kind=draw(_kinds))
            for _ in range(draw(st.integers(min_value=1, max_value=3)))
        )
        regions = tuple(draw(st.lists(_region_names, min_size=1, max_size=3)))
        rules.append(MapRule(patterns=patterns, regions=regions))
    return tuple(rules)


@settings(max_examples=150)
@given(map_rules())
def test_map_rules_round_trip(rules: tuple[MapRule, ...]) -> None:
    assert parse_map(format_map(rules)) == rules


@settings(max_examples=100)
@given(map_rules())
def test_kind_only_patterns_reuse_the_previous_device(rules: tuple[MapRule, ...]) -> None:
    # write every pattern whose device equals the one before it as '/KIND'
    out = []
    previous: str | None = None
    assert all(p.device is not None for r in rules for p in r.patterns)
    for r in rules:
        parts = []
        for p in r.patterns:
            if p.device == previous and p.kind is not None:
                parts.append(f"/{p.kind}")
            else:
                parts.append(f"{p.device}" + ("" if p.kind is None else f"/{p.kind}"))
            previous = p.device
        out.append(f"{','.join(parts)}={','.join(r.regions)}")
    assert parse_map(";".join(out)) == rules


_garbage = st.text(alphabet='rcamv=;,:@/()-*?0123456789xKMG _"', max_size=40)


_PARSERS: tuple[Callable[[str], object], ...] = (
    parse_regions,
    parse_map,
    parse_modern,
    parse_cmdline,
)


def _error_of(parse: Callable[[str], object], text: str) -> ConfigError | None:
    """The ConfigError ``parse`` raises for ``text`` (any other exception propagates)."""
    try:
        parse(text)
    except ConfigError as err:
        return err
    return None


@settings(max_examples=300)
@given(_garbage)
def test_garbage_raises_only_config_errors(text: str) -> None:
    for parse in _PARSERS:
        err = _error_of(parse, text)
        if err is not None:
            assert err.pos is None or 0 <= err.pos <= len(err.text)
            assert err.message in str(err)


@settings(max_examples=150)
@given(st.text(max_size=40))
def test_any_text_raises_only_config_errors(text: str) -> None:
    for parse in _PARSERS:
        _error_of(parse, text)
