"""Label matchers in Alertmanager's syntax: ``name="value"``, ``name!=v``, ``name=~"re|x"``.

A matcher tests one label of an alert. A label the alert does not have counts as the empty string,
so ``env=""`` matches alerts without an ``env`` label and ``env!=""`` those that have one. Regular
expressions are anchored at both ends: ``service=~"api"`` matches ``api`` only, not ``api-v2``.

Syntax (as Alertmanager's ``ParseMatcher``): a label name (``[A-Za-z_:][A-Za-z0-9_:]*``), one of
``=``, ``!=``, ``=~``, ``!~``, then a value, either in double quotes or bare; spaces around the
three parts are ignored. Inside the value ``\\"`` is a double quote, ``\\\\`` a backslash and
``\\n`` a line feed; any other backslash is kept as written, so ``code=~"5\\d\\d"`` works. The
regular expressions are Python's (close to Go's RE2 for everyday patterns).

>>> m = parse_matcher('service=~"api|web"')
>>> m
Matcher(name='service', op=<MatchOp.REGEX: '=~'>, value='api|web')
>>> m.matches({"service": "web"}), m.matches({"service": "web2"}), m.matches({})
(True, False, False)
>>> str(m)
'service=~"api|web"'
>>> parse_matcher("env!=prod").matches({})
True
>>> parse_matcher("5xx=true")
Traceback (most recent call last):
...
ValueError: bad matcher '5xx=true': expected a label name at the start
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["MatchOp", "Matcher", "matches_all", "parse_matcher", "parse_matchers"]

_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
# Longest first, so that "=~" is not read as "=" followed by a value starting with "~".
_OPS = ("=~", "!~", "!=", "=")


class MatchOp(enum.StrEnum):
    """How a matcher compares a label's value."""

    EQUAL = "="
    NOT_EQUAL = "!="
    REGEX = "=~"
    NOT_REGEX = "!~"

    @property
    def is_regex(self) -> bool:
        """Whether the value is a regular expression."""
        return self in (MatchOp.REGEX, MatchOp.NOT_REGEX)

    @property
    def is_equal(self) -> bool:
        """Whether a match means "is" (``=``, ``=~``) rather than "is not" (``!=``, ``!~``)."""
        return self in (MatchOp.EQUAL, MatchOp.REGEX)

    @classmethod
    def from_flags(cls, *, is_regex: bool, is_equal: bool) -> MatchOp:
        """The operator of Alertmanager's API form (``isRegex``, ``isEqual``).

        >>> MatchOp.from_flags(is_regex=True, is_equal=False)
        <MatchOp.NOT_REGEX: '!~'>
        """
        if is_regex:
            return cls.REGEX if is_equal else cls.NOT_REGEX
        return cls.EQUAL if is_equal else cls.NOT_EQUAL


@dataclass(frozen=True, slots=True)
class Matcher:
    """One condition on one label.

    Parameters
    ----------
    name
        The label name.
    op
        The operator; a string such as ``"=~"`` is accepted.
    value
        The value, or the regular expression for ``=~`` and ``!~`` (anchored at both ends).

    Raises
    ------
    ValueError
        If the name is not a label name, the operator unknown or the regular expression invalid.
    """

    name: str
    op: MatchOp
    value: str
    _regex: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"{self.name!r} is not a valid label name")
        try:
            op = MatchOp(self.op)
        except ValueError:
            raise ValueError(f"unknown operator {self.op!r} (use =, !=, =~ or !~)") from None
        object.__setattr__(self, "op", op)
        if op.is_regex:
            try:
                regex = re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {self.value!r}: {exc}") from None
            object.__setattr__(self, "_regex", regex)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this matcher (a missing label is the empty string).

        >>> Matcher("env", MatchOp.EQUAL, "").matches({"service": "api"})
        True
        """
        actual = labels.get(self.name, "")
        if self._regex is not None:
            return (self._regex.fullmatch(actual) is not None) is self.op.is_equal
        return (actual == self.value) is self.op.is_equal

    def __str__(self) -> str:
        """The matcher in the syntax :func:`parse_matcher` reads (value quoted and escaped)."""
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op.value}"{escaped}"'


def matches_all(matchers: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    """Whether every matcher matches ``labels`` (true for no matchers).

    >>> matches_all(parse_matchers(["service=api", "env=~prod|staging"]), {"service": "api"})
    False
    """
    return all(m.matches(labels) for m in matchers)


def parse_matcher(text: str) -> Matcher:
    """Read one matcher such as ``service=~"api|web"`` or ``env != prod``.

    Parameters
    ----------
    text
        The matcher in Alertmanager's syntax (see the module docstring).

    Raises
    ------
    ValueError
        ``bad matcher '<text>': <problem>``, naming what is wrong.

    >>> parse_matcher(r'msg="say \\"hi\\""').value
    'say "hi"'
    >>> parse_matcher('code=~"5\\\\d\\\\d"').matches({"code": "503"})
    True
    >>> parse_matcher('a="b", c="d"')
    Traceback (most recent call last):
    ...
    ValueError: bad matcher 'a="b", c="d"': unexpected text after the closing quote: ', c="d"'
    """
    if not isinstance(text, str):
        raise ValueError(f"bad matcher {text!r}: must be a string")
    try:
        return _parse(text)
    except ValueError as exc:
        raise ValueError(f"bad matcher {text!r}: {exc}") from None


def parse_matchers(texts: Iterable[str]) -> tuple[Matcher, ...]:
    """Read several matchers, one per string; the first bad one raises.

    Raises
    ------
    ValueError
        ``[<index>] bad matcher '<text>': <problem>`` for the first string that is not a matcher.

    >>> [str(m) for m in parse_matchers(["service=api", "severity=~critical|warning"])]
    ['service="api"', 'severity=~"critical|warning"']
    >>> parse_matchers(["service=api", "=x"])
    Traceback (most recent call last):
    ...
    ValueError: [1] bad matcher '=x': expected a label name at the start
    """
    out = []
    for i, text in enumerate(texts):
        try:
            out.append(parse_matcher(text))
        except ValueError as exc:
            raise ValueError(f"[{i}] {exc}") from None
    return tuple(out)


def _parse(text: str) -> Matcher:
    rest = text.strip()
    if not rest:
        raise ValueError("empty")
    name_match = _NAME.match(rest)
    if name_match is None:
        raise ValueError("expected a label name at the start")
    name = name_match.group()
    rest = rest[name_match.end() :].lstrip()
    op = next((o for o in _OPS if rest.startswith(o)), None)
    if op is None:
        raise ValueError("expected an operator (=, !=, =~ or !~) after the label name")
    value = _unquote(rest[len(op) :].strip())
    return Matcher(name, MatchOp(op), value)


def _unquote(raw: str) -> str:
    """The value with escapes resolved; quoted values must end at their closing quote."""
    quoted = raw.startswith('"')
    body = raw[1:] if quoted else raw
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt == "n":
                out.append("\n")
            elif nxt in '"\\':
                out.append(nxt)
            else:  # not an escape we know: the backslash is literal (regex classes like \d)
                out.append("\\" + nxt)
            i += 2
            continue
        if ch == '"':
            if not quoted:
                raise ValueError('unescaped double quote in the value (write \\" or quote it)')
            trailing = body[i + 1 :]
            if trailing.strip():
                raise ValueError(f"unexpected text after the closing quote: {trailing!r}")
            return "".join(out)
        out.append(ch)
        i += 1
    if quoted:
        raise ValueError("missing closing double quote")
    return "".join(out)
