"""cma_map= pattern matching and rule selection."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cma.cmdline import parse_map
from cma.config import MapRule, Pattern
from cma.patterns import match_pattern, pattern_matches, select_regions


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("camera", "camera", True),
        ("camera", "camera0", False),
        ("camera", "camer", False),
        ("baz?", "baz1", True),
        ("baz?", "baz", False),  # '?' is exactly one character
        ("baz?", "baz12", False),
        ("a*", "a", True),  # '*' includes nothing
        ("a*", "abc", True),
        ("a*", "ba", False),
        ("*", "", True),
        ("*", "anything", True),
        ("?*", "", False),
        ("?*", "x", True),
        ("", "", True),
        ("", "x", False),
        ("a?c*", "abcdef", True),
        ("a?c*", "abd", False),
    ],
)
def test_match_pattern(pattern: str, text: str, matches: bool) -> None:
    assert match_pattern(pattern, text) is matches


def test_none_is_matched_as_the_empty_string() -> None:
    assert match_pattern("*", None)
    assert match_pattern("", None)
    assert not match_pattern("a*", None)
    assert not match_pattern("?", None)


def test_a_pattern_without_kind_matches_every_kind() -> None:
    p = Pattern(device="foo", kind=None)
    assert pattern_matches(p, "foo", None)
    assert pattern_matches(p, "foo", "a")
    assert pattern_matches(p, "foo", "")
    assert not pattern_matches(p, "bar", None)


def test_an_empty_kind_matches_only_requests_without_a_kind() -> None:
    p = Pattern(device="foo", kind="")
    assert pattern_matches(p, "foo", None)
    assert pattern_matches(p, "foo", "")
    assert not pattern_matches(p, "foo", "a")


def test_a_pattern_without_device_matches_every_device() -> None:
    p = Pattern(device=None, kind="a*")
    assert pattern_matches(p, "foo", "a")
    assert pattern_matches(p, None, "abc")
    assert not pattern_matches(p, "foo", "b")


def test_kind_patterns_use_wildcards() -> None:
    p = Pattern(device="baz?", kind="a*")
    assert pattern_matches(p, "baz1", "alpha")
    assert not pattern_matches(p, "baz1", "beta")
    assert not pattern_matches(p, "baz", "alpha")


def test_select_regions_first_matching_rule_wins() -> None:
    rules = parse_map("foo/a=a,b;foo/b=b,a;foo=c;*=common")
    assert select_regions(rules, "foo", "a") == ("a", "b")
    assert select_regions(rules, "foo", "b") == ("b", "a")
    assert select_regions(rules, "foo", None) == ("c",)
    assert select_regions(rules, "foo", "zzz") == ("c",)
    assert select_regions(rules, "bar", "a") == ("common",)


def test_select_regions_returns_none_when_nothing_matches() -> None:
    rules = parse_map("video=v;camera=c")
    assert select_regions(rules, "video", None) == ("v",)
    assert select_regions(rules, "camera", "preview") == ("c",)
    assert select_regions(rules, "display", None) is None
    assert select_regions((), "video", None) is None


def test_select_regions_on_the_2010_documentation_example() -> None:
    rules = parse_map("foo=r1;foo/quaz=r2;/quaz=r2;foo/*=r3;/*=r3;bar/*=r1,r2;baz?/a*,baz?/b*=r3")
    # a bare device part matches every kind, so "foo" takes all of foo's requests
    assert select_regions(rules, "foo", None) == ("r1",)
    assert select_regions(rules, "foo", "quaz") == ("r1",)
    assert select_regions(rules, "bar", None) == ("r1", "r2")
    assert select_regions(rules, "baz7", "apple") == ("r3",)
    assert select_regions(rules, "baz7", "banana") == ("r3",)
    assert select_regions(rules, "baz7", "cherry") is None
    assert select_regions(rules, "baz", "apple") is None


def test_select_regions_with_kinds_before_the_catch_all() -> None:
    rules = parse_map("foo/quaz=r2;/*=r3;*=r1")
    assert select_regions(rules, "foo", "quaz") == ("r2",)
    assert select_regions(rules, "foo", None) == ("r3",)  # '/*' reused device foo
    assert select_regions(rules, "bar", "quaz") == ("r1",)


def test_select_regions_accepts_rules_built_in_code() -> None:
    rules = [MapRule(patterns=(Pattern(device=None, kind=None),), regions=("any",))]
    assert select_regions(rules, "whatever", "kind") == ("any",)


_plain = st.text(alphabet="abcxyz019_-.@", min_size=0, max_size=12)


@settings(max_examples=150)
@given(_plain)
def test_a_text_matches_itself(text: str) -> None:
    assert match_pattern(text, text)


@settings(max_examples=150)
@given(_plain, _plain)
def test_trailing_star_matches_any_continuation(prefix: str, rest: str) -> None:
    assert match_pattern(prefix + "*", prefix + rest)
    assert match_pattern(prefix, prefix + rest) is (rest == "")


@settings(max_examples=150)
@given(_plain.filter(bool), st.data())
def test_question_mark_stands_for_any_one_character(text: str, data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
    pattern = text[:index] + "?" + text[index + 1 :]
    assert match_pattern(pattern, text)
    assert not match_pattern(pattern, text + "x")
    assert not match_pattern(pattern, text[:-1])
