"""``influx_line``: InfluxDB line protocol, as Telegraf's Kafka output writes it by default.

One message holds one or more lines ``measurement[,tag=value...] field=value[,...] [timestamp]``.
Each numeric field becomes one series named ``<measurement>_<field>`` (the names Telegraf's
Prometheus output gives), labelled with the tags; integers (``7i``, ``7u``), floats and
booleans (1 and 0) are read, string fields are skipped (a line of string fields only, such as
Telegraf's ``system uptime_format="..."``, gives no event and is no error). The timestamp is
epoch ns by default (s, ms and us are told by magnitude, see :mod:`engine.formats.timestamps`).
A line that cannot be parsed, or has no timestamp, is rejected alone (``invalid_line_protocol`` or
``missing_field``, with its line number as the index); the other lines are kept.

>>> line = b'cpu,host=a,cpu=cpu0 usage_idle=98.5,usage_user=1i 1700000000000000000'
>>> events = InfluxLineDecoder()(line, DecodeContext("t")).events
>>> [(e.name, e.value, e.ts) for e in events]
[('cpu_usage_idle', 98.5, 1700000000.0), ('cpu_usage_user', 1.0, 1700000000.0)]
>>> events[0].labels
{'host': 'a', 'cpu': 'cpu0'}
"""

from __future__ import annotations

import math
from typing import Final

from engine.formats._common import reject
from engine.formats.base import DecodeContext
from engine.formats.timestamps import epoch_seconds
from engine.model.events import Decoded, Event, InvalidEvent, MetricSample, Rejected

__all__ = ["InfluxLineDecoder", "parse_line"]

_TRUE: Final = frozenset({"t", "T", "true", "True", "TRUE"})
_FALSE: Final = frozenset({"f", "F", "false", "False", "FALSE"})


def _bad(message: str) -> InvalidEvent:
    return InvalidEvent("invalid_line_protocol", message)


def _scan(line: str, i: int, stops: str) -> tuple[str, int]:
    """Text from ``i`` up to the first unescaped character of ``stops``; a backslash escapes
    the next character when it is one of ``stops`` (or a backslash, ``=``, space or comma)."""
    out: list[str] = []
    n = len(line)
    while i < n:
        c = line[i]
        if c == "\\" and i + 1 < n and line[i + 1] in ' ,="\\':
            out.append(line[i + 1])
            i += 2
            continue
        if c in stops:
            break
        out.append(c)
        i += 1
    return "".join(out), i


def _field_value(text: str, key: str) -> float | None:
    """The number of one unquoted field value (``None`` for a string field)."""
    if text in _TRUE:
        return 1.0
    if text in _FALSE:
        return 0.0
    try:
        number = float(text[:-1]) if text[-1:] in ("i", "u") else float(text)
    except ValueError:
        raise _bad(f"field {key}: cannot read {text[:64]!r} as a number") from None
    if not math.isfinite(number):
        raise InvalidEvent("not_finite", f"field {key}: must be finite, got {text[:64]!r}")
    return number


def parse_line(line: str) -> list[Event]:
    """The samples of one line of line protocol (one per numeric field).

    >>> parse_line('mem,host=a used_percent=40.5,active=7u 1700000000')[0].name
    'mem_used_percent'
    >>> parse_line('mem used=1')
    Traceback (most recent call last):
    ...
    engine.model.events.InvalidEvent: timestamp: the line has none (Kestrel needs event times)
    """
    measurement, i = _scan(line, 0, ", ")
    if not measurement:
        raise _bad("no measurement name")
    labels: dict[str, str] = {}
    n = len(line)
    while i < n and line[i] == ",":
        key, i = _scan(line, i + 1, "=, ")
        if i >= n or line[i] != "=" or not key:
            raise _bad(f"tag {key[:64]!r}: expected key=value")
        value, i = _scan(line, i + 1, ", ")
        if not value:
            raise _bad(f"tag {key[:64]}: empty value")
        labels[key] = value
    if i >= n or line[i] != " ":
        raise _bad("no fields")
    while i < n and line[i] == " ":
        i += 1
    fields: list[tuple[str, float]] = []
    while True:
        key, i = _scan(line, i, "=, ")
        if i >= n or line[i] != "=" or not key:
            raise _bad(f"field {key[:64]!r}: expected key=value")
        i += 1
        if i < n and line[i] == '"':  # a string field: skipped, but read past its escapes
            _, i = _scan(line, i + 1, '"')
            if i >= n:
                raise _bad(f"field {key[:64]}: unterminated string")
            i += 1
        else:
            text, i = _scan(line, i, ", ")
            if not text:
                raise _bad(f"field {key[:64]}: empty value")
            number = _field_value(text, key)
            if number is not None:
                fields.append((key, number))
        if i < n and line[i] == ",":
            i += 1
            continue
        break
    stamp = line[i:].strip()
    if not stamp:
        raise InvalidEvent(
            "missing_field", "timestamp: the line has none (Kestrel needs event times)"
        )
    try:
        ts = epoch_seconds(int(stamp))
    except ValueError:
        raise _bad(f"timestamp: expected an integer, got {stamp[:64]!r}") from None
    if ts != ts:
        raise InvalidEvent("bad_timestamp", f"timestamp: out of range: {stamp[:64]}")
    return [MetricSample(f"{measurement}_{k}", v, ts, labels) for k, v in fields]


class InfluxLineDecoder:
    """The :class:`~engine.formats.base.Decoder` of line protocol (see the module docstring)."""

    __slots__ = ()

    def __call__(self, value: bytes, context: DecodeContext, out: Decoded | None = None) -> Decoded:
        """Decode every line of one message; a bad line is rejected alone."""
        if out is None:
            out = Decoded()
        lines = value.split(b"\n")
        count = sum(1 for raw in lines if raw.strip())
        if not count:
            out.rejected.append(Rejected("invalid_line_protocol", "no line in the message", value))
            return out
        single = count == 1
        not_after = context.not_after
        for index, raw in enumerate(lines):
            if not raw.strip() or raw.lstrip().startswith(b"#"):
                continue
            try:
                try:
                    line = raw.decode("utf-8").rstrip("\r")
                except UnicodeDecodeError as exc:
                    raise InvalidEvent("not_utf8", f"not UTF-8 at byte {exc.start}") from None
                events = parse_line(line)
                for event in events:
                    if event.ts > not_after:
                        raise InvalidEvent(
                            "bad_timestamp",
                            f"timestamp: {event.ts - not_after:.0f}s later than the message's "
                            "own time allows",
                        )
                out.events.extend(events)
            except InvalidEvent as exc:
                reject(out, exc, None, value if single else raw, None if single else index)
        return out
