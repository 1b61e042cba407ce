"""``kestrel_json``: Kestrel's own JSON schema for log events and metric samples.

A Kafka message carries one JSON object, a JSON array of objects, or newline-delimited JSON.
``NaN``, ``Infinity`` and numbers too large for a float (``1e999``) are not JSON, but they are
read (as non-finite floats) so that the item holding them is rejected as ``not_finite`` while the
rest of its batch is kept. A topic carries one kind: log events or metric samples.
:func:`decode_message` turns one message into valid events plus :class:`Rejected` items, each
with a reason from :data:`~engine.model.events.REASONS` and a human message. Nothing here does
I/O.

>>> msg = b'{"name": "cpu", "value": 0.5, "timestamp": 1700000000}'
>>> batch = decode_message(msg, METRIC)
>>> batch.events[0].name, batch.events[0].value, batch.events[0].ts
('cpu', 0.5, 1700000000.0)
>>> msg = b'{"name": "cpu", "value": "high", "timestamp": 1}'
>>> decode_message(msg, METRIC).rejected[0].reason
'wrong_type'
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import msgspec
import orjson

from engine.formats._common import undecodable
from engine.formats.base import DecodeContext
from engine.formats.timestamps import EPOCH_SECONDS_MAX, parse_timestamp
from engine.model.events import (
    LOG,
    METRIC,
    Decoded,
    Event,
    InvalidEvent,
    Kind,
    LogEvent,
    MetricSample,
    Rejected,
)
from engine.model.levels import LEVEL_SPELLINGS, canonical_level

__all__ = ["INPUT_LEVELS", "KestrelJsonDecoder", "decode_message"]

#: Level spellings this format accepts (any case): every name and synonym of the levels table.
INPUT_LEVELS: Final = LEVEL_SPELLINGS


def _number(obj: Mapping[str, Any], key: str, where: str) -> float:
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEvent(
            "wrong_type", f"{where}{key}: expected a number, got {type(value).__name__}"
        )
    number = float(value)
    if not math.isfinite(number):
        raise InvalidEvent("not_finite", f"{where}{key}: must be finite, got {value!r}")
    return number


def _text(obj: Mapping[str, Any], key: str) -> str:
    value = obj[key]
    if not isinstance(value, str):
        raise InvalidEvent("wrong_type", f"{key}: expected a string, got {type(value).__name__}")
    return value


def _metric(obj: dict[str, Any]) -> MetricSample:
    return _fast_metric(obj) or _checked_metric(obj)


def _fast_metric(obj: dict[str, Any]) -> MetricSample | None:
    """The common case, checked with few calls: ``None`` for anything unusual (which
    :func:`_checked_metric` then reads, saying why it is wrong if it is)."""
    value: Any = obj.get("value")
    stamp: Any = obj.get("timestamp")
    name, labels = obj.get("name"), obj.get("labels")
    kind = type(value)
    if (
        type(name) is str
        and name
        and (kind is float or kind is int)
        and (labels is None or (type(labels) is dict and _all_text(labels)))
    ):
        number = float(value)
        kind = type(stamp)
        if (kind is float or kind is int) and 0.0 <= stamp <= EPOCH_SECONDS_MAX:
            ts = float(stamp)  # epoch seconds: parse_timestamp's common case, inline
        elif stamp is None:
            return None
        else:
            try:
                ts = parse_timestamp(stamp)
            except InvalidEvent:
                return None
        if -math.inf < number < math.inf:
            return MetricSample(name, number, ts, labels or {})
    return None


def _all_text(labels: dict[str, Any]) -> bool:
    for v in labels.values():  # noqa: SIM110  (a loop: no generator per call on the hot path)
        if type(v) is not str:
            return False
    return True


def _checked_metric(obj: dict[str, Any]) -> MetricSample:
    for key in ("name", "value", "timestamp"):
        if key not in obj:
            raise InvalidEvent("missing_field", f"{key}: required field is missing")
    name = _text(obj, "name")
    if not name:
        raise InvalidEvent("wrong_type", "name: must not be empty")
    labels = obj.get("labels")
    if labels is None:
        labels = {}
    elif not isinstance(labels, dict):
        raise InvalidEvent("wrong_type", f"labels: expected an object, got {type(labels).__name__}")
    for k, v in labels.items():
        if not isinstance(v, str):
            raise InvalidEvent(
                "wrong_type", f"labels.{k}: expected a string, got {type(v).__name__}"
            )
    return MetricSample(name, _number(obj, "value", ""), parse_timestamp(obj["timestamp"]), labels)


def _log(obj: dict[str, Any]) -> LogEvent:
    for key in ("timestamp", "level", "message"):
        if key not in obj:
            raise InvalidEvent("missing_field", f"{key}: required field is missing")
    service = obj.get("service")
    if service is None or service == "":
        service = obj.get("component")
    if service is None or service == "":
        raise InvalidEvent("missing_field", "service: required field is missing (or component)")
    if not isinstance(service, str):
        raise InvalidEvent(
            "wrong_type", f"service: expected a string, got {type(service).__name__}"
        )
    level_text = _text(obj, "level")
    level = canonical_level(level_text) if level_text.lower() in INPUT_LEVELS else None
    if level is None:
        raise InvalidEvent("bad_level", f"level: unknown level {level_text[:32]!r}")
    message = _text(obj, "message")
    etype = obj.get("type")
    if etype is not None and not isinstance(etype, str):
        raise InvalidEvent("wrong_type", f"type: expected a string, got {type(etype).__name__}")
    operation: str | None = None
    duration: float | None = None
    perf = obj.get("performance_data")
    if perf is not None:
        if not isinstance(perf, dict):
            raise InvalidEvent(
                "wrong_type", f"performance_data: expected an object, got {type(perf).__name__}"
            )
        if "duration_ms" in perf:
            duration = _number(perf, "duration_ms", "performance_data.")
            op = perf.get("operation")
            if isinstance(op, list | dict):  # (str() of one nested 1,000 deep would raise)
                raise InvalidEvent(
                    "wrong_type",
                    f"performance_data.operation: expected a string, got {_json_type(op)}",
                )
            operation = "default" if op is None else op if isinstance(op, str) else str(op)
    return LogEvent(
        parse_timestamp(obj["timestamp"]), level, service, message, etype, operation, duration, obj
    )


def _fast_log(obj: dict[str, Any]) -> LogEvent | None:
    """A valid log event, or ``None`` (then :func:`decode_message` says why)."""
    try:
        return _log(obj)
    except InvalidEvent:
        return None


_PARSERS: Final[dict[str, Callable[[dict[str, Any]], Event]]] = {LOG: _log, METRIC: _metric}


def _int_or_float(text: str) -> int | float:
    """An integer literal; one of 19 digits or more becomes a float (no overflow, no huge ints)."""
    return int(text) if len(text) < 19 else float(text)


class _Undecodable(Exception):
    """Raised by :func:`_loads` for bytes that are not a JSON document."""


def _loads(data: bytes) -> tuple[Any, bool]:
    """The JSON document in ``data`` and whether it needed the lenient reader.

    orjson rejects ``NaN``, ``Infinity`` and out-of-range numbers such as ``1e999``; the standard
    library reads them as non-finite floats, which the field checks then report as ``not_finite``.
    """
    try:
        return orjson.loads(data), False
    except orjson.JSONDecodeError:
        pass
    try:
        doc = json.loads(data.decode("utf-8"), parse_int=_int_or_float)
        orjson.dumps(doc)  # refuses what orjson would (lone surrogates, too deep)
    except (ValueError, RecursionError, orjson.JSONEncodeError):
        raise _Undecodable from None
    return doc, True


def _reencode(obj: Any, lenient: bool) -> bytes:
    """Bytes of one rejected array element (``NaN`` and ``Infinity`` kept as written)."""
    if lenient:
        try:
            return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
        except (ValueError, RecursionError):  # pragma: no cover - orjson.dumps accepted it
            pass
    try:
        return orjson.dumps(obj)
    except orjson.JSONEncodeError:  # nested over 254 levels: orjson reads 1,024 but writes 254
        try:
            return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
        except RecursionError:
            return b'"(not kept: nested too deep to write; see the source offset)"'


def _item(
    obj: Any,
    parse: Callable[[dict[str, Any]], Event],
    original: bytes | None,
    index: int | None,
    lenient: bool,
    out: Decoded,
    not_after: float,
) -> None:
    try:
        if not isinstance(obj, dict):
            raise InvalidEvent("not_an_object", f"expected a JSON object, got {_json_type(obj)}")
        event = parse(obj)
        if event.ts > not_after:
            raise InvalidEvent(
                "bad_timestamp",
                f"timestamp: {event.ts - not_after:.0f}s later than the message's own time allows",
            )
        out.events.append(event)
    except InvalidEvent as exc:
        raw = original if original is not None else _reencode(obj, lenient)
        out.rejected.append(Rejected(exc.reason, str(exc), raw, index))


def _not_an_object(obj: Any) -> Event:
    raise InvalidEvent("not_an_object", f"expected a JSON object, got {_json_type(obj)}")


def _json_type(obj: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(obj), "number"
    )


def decode_message(data: bytes, kind: Kind, not_after: float = math.inf) -> Decoded:
    """Decode one Kafka message value into events (``kind`` says log or metric).

    Never raises on bad input: each bad part becomes a :class:`Rejected` and the rest is kept.
    Events stamped later than ``not_after`` (epoch seconds; the caller passes the message's Kafka
    time plus an allowance) are rejected as ``bad_timestamp``: one far-future timestamp would
    otherwise make every later event of its series look late.
    A message that is not one JSON document is read as NDJSON, one document per line, unless no
    line is JSON: then the whole message is rejected once.
    """
    out = Decoded()
    parse = _PARSERS[kind]
    try:
        doc, lenient = _loads(data)
    except _Undecodable:
        pass
    else:
        if isinstance(doc, list):
            for i, obj in enumerate(doc):
                _item(obj, parse, None, i, lenient, out, not_after)
        else:
            _item(doc, parse, data, None, lenient, out, not_after)
        return out
    lines = [(i, line) for i, line in enumerate(data.split(b"\n")) if line.strip()]
    items: list[tuple[int, bytes, Any, bool] | Rejected] = []
    for i, line in lines:
        try:
            obj, lenient = _loads(line)
        except _Undecodable:
            bad = undecodable(line)
            bad.index = i
            items.append(bad)
        else:
            items.append((i, line, obj, lenient))
    if len(lines) < 2 or all(isinstance(item, Rejected) for item in items):
        out.rejected.append(undecodable(data))  # not NDJSON either (e.g. pretty-printed)
        return out
    for item in items:
        if isinstance(item, Rejected):
            out.rejected.append(item)
        else:
            i, line, obj, lenient = item
            _item(obj, parse, line, i, lenient, out, not_after)
    return out


#: Reads a metric message straight into samples: one sample, or an array of them. Anything it
#: refuses (``labels: null``, a timestamp that is a string, ``NaN``, NDJSON, a wrong type, ...)
#: goes the way of other messages, which accepts what the schema allows and says why the rest is
#: rejected.
_SAMPLES: Final = msgspec.json.Decoder(MetricSample | list[MetricSample])


def _decode_samples(value: bytes, context: DecodeContext, events: list[Event]) -> bool:
    """Append the samples of a metric message to ``events`` if every one is valid as decoded
    (a name, a finite value, a timestamp in epoch seconds not after ``context.not_after``);
    ``False`` (nothing appended) if the message needs the general path.

    >>> events = []
    >>> _decode_samples(b'[{"name": "cpu", "value": 1, "timestamp": 5}]',
    ...                 DecodeContext("metrics"), events), events
    (True, [MetricSample(name='cpu', value=1.0, ts=5.0, labels={})])
    >>> _decode_samples(b'{"name": "cpu", "value": 1, "timestamp": "5"}',
    ...                 DecodeContext("metrics"), events), len(events)
    (False, 1)
    """
    # msgspec skips the fields it does not know without checking all that the general path
    # (orjson) checks: that the text is UTF-8, holds no escaped lone surrogate and nests at
    # most 1,024 deep. Messages that could fail one of those go that way: not ASCII, any
    # escaped character (rare in metrics), or over 1,000 brackets.
    if not value.isascii() or b"\\u" in value:
        return False
    if len(value) > 1000 and value.count(b"[") + value.count(b"{") > 1000:
        return False
    try:
        doc = _SAMPLES.decode(value)
    except msgspec.DecodeError:  # (its ValidationError too)
        return False
    not_after = context.not_after
    # (msgspec refuses a number out of a float's range: every value here is finite.)
    if type(doc) is MetricSample:
        if doc.name and 0.0 <= doc.ts <= EPOCH_SECONDS_MAX and doc.ts <= not_after:
            events.append(doc)
            return True
        return False
    assert isinstance(doc, list)
    return _extend_if_valid(doc, not_after, events)


def _extend_if_valid(samples: list[MetricSample], not_after: float, events: list[Event]) -> bool:
    """Append ``samples`` to ``events`` if each has a name and a timestamp in epoch seconds
    not after ``not_after``; ``False`` (nothing appended) otherwise."""
    for sample in samples:
        ts = sample.ts
        if not (sample.name and 0.0 <= ts <= EPOCH_SECONDS_MAX and ts <= not_after):
            return False
    events.extend(samples)
    return True


#: Reads newline-separated metric samples (:func:`_decode_sample_run`).
_SAMPLE_LINES: Final = msgspec.json.Decoder(MetricSample)


def _decode_sample_run(values: Sequence[bytes], not_after: float, events: list[Event]) -> bool:
    """Append the samples of a run of single-sample metric messages to ``events``, decoded in
    one call, if every message holds one valid sample (as :func:`_decode_samples` judges it)
    whose timestamp is not after ``not_after``; ``False`` (nothing appended) otherwise.

    The messages are joined with newlines and read as newline-delimited JSON. That gives each
    message's own outcome only when each message is exactly one JSON value, so the run must
    show it: no message holds a newline (the joined text has one per boundary), and every
    boundary is ``}`` newline ``{``. A JSON string cannot hold a raw newline, and after a
    ``}`` inside an object or array only ``,``, ``}`` or ``]`` may follow, so each message ends
    a top-level value: each holds at least one, and as many values as messages means one each.

    >>> events = []
    >>> run = [b'{"name": "a", "value": 1, "timestamp": 5}', b'{"name": "b", "value": 2,'
    ...        b' "timestamp": 6}']
    >>> _decode_sample_run(run, 10.0, events), [e.name for e in events]
    (True, ['a', 'b'])
    >>> _decode_sample_run(run, 5.5, events), len(events)  # b is after not_after
    (False, 2)
    >>> two_in_one = [b'{"name": "a", "value": 1, "timestamp": 5} {"name": "b", "value": 2,'
    ...               b' "timestamp": 6}', b'{"name": "c"}']
    >>> _decode_sample_run(two_in_one, 10.0, events), len(events)
    (False, 2)
    """
    n = len(values)
    # The checks of _decode_samples, for all of them at once: a message over 1,000 bytes could
    # nest deeper than the general path allows.
    if n == 0 or max(map(len, values)) > 1000:
        return False
    joined = b"\n".join(values)
    if not joined.isascii() or b"\\u" in joined:
        return False
    if (
        joined.count(b"\n") != n - 1
        or joined.count(b"}\n{") != n - 1
        or joined[:1] != b"{"
        or joined[-1:] != b"}"
    ):
        return False
    try:
        samples = _SAMPLE_LINES.decode_lines(joined)
    except msgspec.DecodeError:
        return False
    return len(samples) == n and _extend_if_valid(samples, not_after, events)


class KestrelJsonDecoder:
    """The :class:`~engine.formats.base.Decoder` of a topic in Kestrel's schema.

    Parameters
    ----------
    kind:
        What the topic carries: ``"log"`` events or ``"metric"`` samples.

    >>> decoder = KestrelJsonDecoder("log")
    >>> msg = b'{"timestamp": 1, "level": "warn", "service": "api", "message": "slow"}'
    >>> decoder(msg, DecodeContext("logs")).events[0].level
    'WARNING'
    """

    __slots__ = ("_fast", "_metric", "kind")

    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self._fast = _fast_metric if kind == METRIC else _fast_log
        self._metric = kind == METRIC

    @property
    def takes_runs(self) -> bool:
        """A metric topic's: a log topic's runs go message by message (see
        :class:`~engine.formats.base.RunDecoder`)."""
        return self._metric

    def decode_run(self, values: Sequence[bytes], not_after: float, out: Decoded) -> bool:
        """Decode a run of messages in one call if each is one valid metric sample (see
        :class:`~engine.formats.base.RunDecoder`)."""
        return self._metric and _decode_sample_run(values, not_after, out.events)

    def __call__(self, value: bytes, context: DecodeContext, out: Decoded | None = None) -> Decoded:
        """Decode one message value into ``out`` (see :func:`decode_message`).

        A metric message of valid samples decodes straight into them (:func:`_decode_samples`).
        Otherwise a valid JSON object or array of objects (the common cases) is decoded with a
        few calls; anything else (NDJSON, non-finite numbers), and any message with a
        rejection, goes through :func:`decode_message`, which says why item by item. Each path
        gives what :func:`decode_message` would (a property test holds them to it).
        """
        if out is None:
            out = Decoded()
        events = out.events
        if self._metric and _decode_samples(value, context, events):
            return out
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError:
            doc = None
        kind = type(doc)
        if kind is dict:
            event = self._fast(doc)
            if event is not None and event.ts <= context.not_after:
                events.append(event)
                return out
        elif kind is list:
            fast, not_after, before = self._fast, context.not_after, len(events)
            for obj in doc:
                event = fast(obj) if type(obj) is dict else None
                if event is None or event.ts > not_after:
                    del events[before:]  # this message takes the path that says why
                    break
                events.append(event)
            else:
                return out
        decoded = decode_message(value, self.kind, context.not_after)
        events.extend(decoded.events)
        out.rejected.extend(decoded.rejected)
        return out
