"""Bad input for ``kestrel_json``: valid items, the ways to corrupt them, and what Kestrel must say.

Shared by the property tests (``tests/engine/test_formats_properties.py``, which draw from these
tables with hypothesis) and the live fuzz run (``tests/engine/test_fuzz_worker.py``, which draws
from them with a seeded :class:`random.Random`). A :class:`Corruption` makes a valid item invalid
in one way and names the reason the decoder must give; a :class:`LineCorruption` breaks one
NDJSON line (or a whole message) below the level of JSON.

Items may hold :class:`Raw` parts: bytes written into the message as they are (``NaN``,
``1e999``, a 400-digit integer, invalid UTF-8, nesting deeper than any JSON writer goes), which
no JSON encoder would produce. :func:`encode` writes an item with them.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.model.events import LOG, METRIC

__all__ = [
    "CORRUPTIONS",
    "LINE_CORRUPTIONS",
    "Corruption",
    "LineCorruption",
    "Raw",
    "encode",
    "nested",
    "random_log",
    "random_metric",
]

T0 = 1_700_000_000


@dataclass(frozen=True)
class Raw:
    """Bytes written into a message as they are, where a JSON value would be."""

    data: bytes


def nested(depth: int) -> Raw:
    """An array nested ``depth`` levels deep (``[[[...]]]``), as raw bytes."""
    return Raw(b"[" * depth + b"]" * depth)


NON_FINITE = (
    Raw(b"NaN"),
    Raw(b"Infinity"),
    Raw(b"-Infinity"),
    Raw(b"1e999"),
    Raw(b"-1e999"),
    Raw(b"1" + b"0" * 400),  # an integer far beyond any float
)
#: A JSON string holding bytes that are not UTF-8.
NOT_UTF8 = (Raw(b'"a\xffb"'), Raw(b'"\xc3\x28"'), Raw(b'"\xe2\x82"'), Raw(b'"\xed\xa0\x80"'))
#: Values of every JSON type but string, number and null.
NOT_TEXT = (7, 1.5, True, [], ["a"], {}, {"a": "b"}, None)
NOT_NUMBER = ("high", "1", True, False, [], [1], {}, {"v": 1}, None)
BAD_TIMES = (
    True,
    None,
    [],
    [T0],
    {"s": T0},
    "soon",
    "",
    "2024-13-01T00:00:00Z",
    -1,
    -1e300,
    1e300,
    10**30,
    "nan",
    *NON_FINITE,
)


def encode(item: Any) -> bytes:
    """``item`` as compact JSON (``NaN`` allowed), with its :class:`Raw` parts written as is.

    The result holds no newline, so it is one NDJSON line.
    """
    raws: list[bytes] = []

    def swap(x: Any) -> Any:
        if isinstance(x, Raw):
            raws.append(x.data)
            return f"\x00raw{len(raws) - 1}\x00"
        if isinstance(x, dict):
            return {k: swap(v) for k, v in x.items()}
        if isinstance(x, list):
            return [swap(v) for v in x]
        return x

    data = json.dumps(swap(item), ensure_ascii=False, separators=(",", ":")).encode()
    for i, raw in enumerate(raws):
        data = data.replace(json.dumps(f"\x00raw{i}\x00").encode(), raw, 1)
    return data


@dataclass(frozen=True)
class Corruption:
    """One way to make a valid item of ``kind`` invalid, and the reason Kestrel must give."""

    kind: str
    name: str
    reason: str
    apply: Callable[[dict[str, Any]], Any]


def _drop(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda obj: {k: v for k, v in obj.items() if k != key}


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda obj: {**obj, key: value}


def _replace(value: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda obj: value


def _cases() -> list[Corruption]:
    out: list[Corruption] = []
    for kind in (METRIC, LOG):
        for i, v in enumerate((7, "x", None, True, [], [{"a": 1}], 1e300)):
            out.append(
                Corruption(kind, f"item is {type(v).__name__} {i}", "not_an_object", _replace(v))
            )
        for i, v in enumerate(BAD_TIMES):
            out.append(
                Corruption(kind, f"timestamp={v!r:.20} {i}", "bad_timestamp", _set("timestamp", v))
            )
        out.append(Corruption(kind, "no timestamp", "missing_field", _drop("timestamp")))
    # Metric samples: name, value, timestamp, labels.
    for key in ("name", "value"):
        out.append(Corruption(METRIC, f"no {key}", "missing_field", _drop(key)))
    for v in (*NOT_TEXT, ""):
        out.append(Corruption(METRIC, f"name={v!r}", "wrong_type", _set("name", v)))
    for v in NOT_NUMBER:
        out.append(Corruption(METRIC, f"value={v!r}", "wrong_type", _set("value", v)))
    for v in NON_FINITE:
        out.append(Corruption(METRIC, f"value={v.data[:12]!r}", "not_finite", _set("value", v)))
    for v in ("a", 5, [], ["a"], True, {"k": 5}, {"k": None}, {"k": ["a"]}, {"k": {}}):
        out.append(Corruption(METRIC, f"labels={v!r}", "wrong_type", _set("labels", v)))
    # Log events: timestamp, level, service (or component), message, type, performance_data.
    for key in ("level", "message"):
        out.append(Corruption(LOG, f"no {key}", "missing_field", _drop(key)))
    out.append(Corruption(LOG, "no service", "missing_field", _drop("service")))
    out.append(Corruption(LOG, "empty service", "missing_field", _set("service", "")))
    out.append(Corruption(LOG, "null service", "missing_field", _set("service", None)))
    for v in (7, 0, False, [], ["a"], {}, {"a": 1}):
        out.append(Corruption(LOG, f"service={v!r}", "wrong_type", _set("service", v)))
    for v in ("loud", "", "errors", "warning!", "i\u0307nfo"):
        out.append(Corruption(LOG, f"level={v!r}", "bad_level", _set("level", v)))
    for v in NOT_TEXT:
        out.append(Corruption(LOG, f"level={v!r}", "wrong_type", _set("level", v)))
        out.append(Corruption(LOG, f"message={v!r}", "wrong_type", _set("message", v)))
        if v is not None:
            out.append(Corruption(LOG, f"type={v!r}", "wrong_type", _set("type", v)))
    for v in ("slow", 5, [], True):
        out.append(
            Corruption(LOG, f"performance_data={v!r}", "wrong_type", _set("performance_data", v))
        )
    for v in NOT_NUMBER:
        perf = {"duration_ms": v, "operation": "db"}
        out.append(
            Corruption(LOG, f"duration_ms={v!r}", "wrong_type", _set("performance_data", perf))
        )
    for v in ([], ["db"], {"name": "db"}, nested(200)):
        perf = {"duration_ms": 1.0, "operation": v}
        out.append(
            Corruption(LOG, f"operation={v!r:.20}", "wrong_type", _set("performance_data", perf))
        )
    for v in NON_FINITE:
        perf = {"duration_ms": v}
        out.append(
            Corruption(
                LOG, f"duration_ms={v.data[:12]!r}", "not_finite", _set("performance_data", perf)
            )
        )
    return out


#: Every single-field corruption of a valid item, with the reason it must be rejected for.
CORRUPTIONS: tuple[Corruption, ...] = tuple(_cases())


@dataclass(frozen=True)
class LineCorruption:
    """Breaks an encoded item (one NDJSON line, or a whole message) below the level of JSON."""

    name: str
    reason: str
    apply: Callable[[dict[str, Any]], bytes]


def _with_raw(key: str, raw: Raw) -> Callable[[dict[str, Any]], bytes]:
    return lambda obj: encode({**obj, key: raw})


#: Ways to make a line or message unreadable as JSON; ``x_extra`` is a field Kestrel ignores.
LINE_CORRUPTIONS: tuple[LineCorruption, ...] = (
    *(
        LineCorruption(f"not UTF-8 {r.data!r}", "not_utf8", _with_raw("x_extra", r))
        for r in NOT_UTF8
    ),
    LineCorruption("nested 1,100 deep", "invalid_json", _with_raw("x_extra", nested(1100))),
    LineCorruption("nested 100,000 deep", "invalid_json", _with_raw("x_extra", nested(100_000))),
    LineCorruption("truncated", "invalid_json", lambda obj: encode(obj)[:-1]),
    LineCorruption("trailing comma", "invalid_json", lambda obj: encode(obj)[:-1] + b",}"),
    LineCorruption("single quotes", "invalid_json", lambda obj: encode(obj).replace(b'"', b"'")),
    LineCorruption("two objects", "invalid_json", lambda obj: encode(obj) * 2),
)


# -- random valid items, for the live fuzz run (the property tests use hypothesis strategies) --


def _text(rng: random.Random, n: int) -> str:
    alphabet = 'abcxyz_-.:/ é中😀\u200b"\\\t'
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, n + 1)))


def random_metric(rng: random.Random, name: str | None = None) -> dict[str, Any]:
    """A valid metric sample: odd names, labels, huge and tiny values, every timestamp form."""
    value = rng.choice(
        [rng.gauss(100, 5), rng.randrange(-(10**25), 10**25), 1e308, -1e308, 5e-324, 0, -0.0]
    )
    stamp = rng.choice(
        [
            T0 + rng.random() * 1000,
            int((T0 + rng.random() * 1000) * 1000),  # milliseconds
            "2023-11-14T22:13:20Z",
            "2023-11-14 22:13:20.5+02:00",
            str(T0),
        ]
    )
    obj: dict[str, Any] = {"name": name or _text(rng, 12), "value": value, "timestamp": stamp}
    if rng.random() < 0.7:
        obj["labels"] = {_text(rng, 6): _text(rng, 8) for _ in range(rng.randrange(0, 4))}
    if rng.random() < 0.2:
        obj["x_extra"] = nested(rng.randrange(1, 250))
    return obj


def random_log(rng: random.Random, service: str | None = None) -> dict[str, Any]:
    """A valid log event: every level spelling, optional type and performance data, extras."""
    level = rng.choice(["debug", "info", "warning", "warn", "error", "critical", "fatal"])
    level = "".join(c.upper() if rng.random() < 0.5 else c for c in level)
    obj: dict[str, Any] = {
        "timestamp": T0 + rng.random() * 1000,
        "level": level,
        "service": service or _text(rng, 10),
        "message": _text(rng, 40),
    }
    if rng.random() < 0.3:
        obj["type"] = rng.choice(["thought", "llm_request", _text(rng, 8)])
    if rng.random() < 0.3:
        perf: dict[str, Any] = {"duration_ms": rng.choice([rng.random() * 100, 0, 10**20])}
        if rng.random() < 0.7:
            perf["operation"] = rng.choice(["db", None, 5, _text(rng, 6)])
        obj["performance_data"] = perf
    if rng.random() < 0.2:
        obj["x_extra"] = rng.choice([nested(rng.randrange(1, 250)), {"a": [1, {"b": None}]}])
    return obj
