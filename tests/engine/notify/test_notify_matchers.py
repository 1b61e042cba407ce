"""engine.notify.matchers: Alertmanager matcher syntax and semantics.

The semantics table was cross-checked against amtool 0.25 (``amtool config routes test``).
"""

from __future__ import annotations

import pytest

from engine.notify.matchers import Matcher, MatchOp, matches_all, parse_matcher, parse_matchers


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ('service="api"', {"service": "api"}, True),
        ('service="api"', {"service": "web"}, False),
        ("service=api", {"service": "api"}, True),
        ('service=~"api"', {"service": "api"}, True),
        ('service=~"api"', {"service": "api-v2"}, False),  # anchored at the end
        ('service=~"api"', {"service": "v2-api"}, False),  # and at the start
        ("service=~api|web", {"service": "web"}, True),  # alternation inside the anchors
        ('x=~"a|b"', {"x": "ab"}, False),
        ('service!~"api|web"', {"service": "db"}, True),
        ('service!~"api|web"', {"service": "api"}, False),
        ('service!~"api|web"', {}, True),
        ('env=""', {}, True),  # a missing label is the empty string
        ('env=""', {"env": "x"}, False),
        ('env!=""', {}, False),
        ('env!=""', {"env": "x"}, True),
        ("env!=prod", {}, True),
        ('env=~".*"', {}, True),
        ('env=~".+"', {}, False),
        ('code=~"5\\d\\d"', {"code": "503"}, True),  # unknown escapes stay literal
        ('code=~"5\\d\\d"', {"code": "5030"}, False),
        ("  service  =  api  ", {"service": "api"}, True),
        ('msg="a \\"b\\""', {"msg": 'a "b"'}, True),
        ('msg="line\\nbreak"', {"msg": "line\nbreak"}, True),
        ('p="back\\\\slash"', {"p": "back\\slash"}, True),
        ('x="a,b"', {"x": "a,b"}, True),
        ("x=a b", {"x": "a b"}, True),
        ('x=~"(?i)ABC"', {"x": "abc"}, True),
        ('x=~"^api$"', {"x": "api"}, True),
        ("job:name=x", {"job:name": "x"}, True),
        ('x=~"a.c"', {"x": "a\nc"}, False),  # "." does not match a line feed (as in Go)
    ],
)
def test_matcher_semantics(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "name", "op", "value"),
    [
        ('service=~"api|web"', "service", MatchOp.REGEX, "api|web"),
        ("a!=b", "a", MatchOp.NOT_EQUAL, "b"),
        ("a!~b", "a", MatchOp.NOT_REGEX, "b"),
        ("a=~b", "a", MatchOp.REGEX, "b"),  # "=~" is not "=" followed by "~b"
        ("a=", "a", MatchOp.EQUAL, ""),
        ('a=""', "a", MatchOp.EQUAL, ""),
        ("a==b", "a", MatchOp.EQUAL, "=b"),
        ('a="x" ', "a", MatchOp.EQUAL, "x"),
        ("a=b\\", "a", MatchOp.EQUAL, "b\\"),  # a trailing backslash is literal
    ],
)
def test_parse_matcher_parts(text: str, name: str, op: MatchOp, value: str) -> None:
    m = parse_matcher(text)
    assert (m.name, m.op, m.value) == (name, op, value)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("service", "expected an operator"),
        ("service ~= api", "expected an operator"),
        ("=x", "expected a label name at the start"),
        ("5xx=1", "expected a label name at the start"),
        ("a-b=1", "expected an operator"),
        ('a="b', "missing closing double quote"),
        ('a=b"c', "unescaped double quote"),
        ('a="b" c', "unexpected text after the closing quote"),
        ('a="b", c="d"', "unexpected text after the closing quote"),
        ('a=~"("', "invalid regular expression"),
    ],
)
def test_bad_matchers_name_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match="bad matcher") as info:
        parse_matcher(text)
    assert problem in str(info.value)
    assert repr(text) in str(info.value)


def test_parse_matchers_names_the_index_of_the_bad_one() -> None:
    with pytest.raises(ValueError, match=r"^\[2\] bad matcher 'oops'"):
        parse_matchers(["a=b", "c!=d", "oops"])
    assert [str(m) for m in parse_matchers(["a=b", "c!~d|e"])] == ['a="b"', 'c!~"d|e"']


@pytest.mark.parametrize("value", ["plain", 'with "quotes"', "back\\slash", "line\nfeed", "5\\d"])
def test_str_round_trips_through_the_parser(value: str) -> None:
    for op in MatchOp:
        m = Matcher("name", op, value if not op.is_regex else "x|y")
        assert parse_matcher(str(m)) == m


def test_matcher_constructor_validates() -> None:
    with pytest.raises(ValueError, match="not a valid label name"):
        Matcher("a b", MatchOp.EQUAL, "x")
    with pytest.raises(ValueError, match="unknown operator"):
        Matcher("a", "~", "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="invalid regular expression"):
        Matcher("a", MatchOp.REGEX, "[")
    assert Matcher("a", "=~", "x").op is MatchOp.REGEX  # type: ignore[arg-type]


def test_matchers_are_values() -> None:
    assert parse_matcher('a=~"x"') == parse_matcher("a =~ x")
    assert len({parse_matcher("a=x"), parse_matcher('a="x"')}) == 1


def test_matches_all() -> None:
    ms = parse_matchers(["service=api", 'severity=~"critical|warning"'])
    assert matches_all(ms, {"service": "api", "severity": "critical"})
    assert not matches_all(ms, {"service": "api", "severity": "info"})
    assert matches_all((), {})


def test_api_flags() -> None:
    for op in MatchOp:
        assert MatchOp.from_flags(is_regex=op.is_regex, is_equal=op.is_equal) is op
