"""``otlp_json`` and ``otlp_proto``: OpenTelemetry logs, metrics and spans, as the Collector's
Kafka exporter writes them (one ``Export{Logs,Metrics,Trace}ServiceRequest`` per message, in
protobuf or in its JSON mapping, on the topics ``otlp_logs``, ``otlp_metrics``, ``otlp_spans``).

What becomes what:

- **Log records** become log events: ``severityText`` (any synonym) else ``severityNumber``
  (1-24) gives the level (INFO when neither is set), the resource's ``service.name`` the service,
  the body the message, and ``raw`` keeps the attributes (the context), ``trace_id`` and
  ``span_id`` (hex). The time is ``timeUnixNano``, else ``observedTimeUnixNano``.
- **Metrics** become samples labelled with the data point's attributes and ``service``:
  a gauge is itself; a monotonic sum becomes ``<name>.rate`` (per second: a delta point's value
  over its interval, a cumulative point's increase since the previous point of its series); a
  non-monotonic cumulative sum is a gauge; a histogram becomes ``<name>.count`` (observations in
  the interval), ``<name>.mean`` and ``<name>.p50``/``.p90``/``.p99`` (linear within buckets);
  an exponential histogram ``.count`` and ``.mean``; a summary its quantiles (``<name>.p99``).
- **Spans** become log events of type ``span`` (the RED signals through the log series): the
  service's request rate (``log.events``) and error ratio (``log.error_ratio``: status ERROR is
  an error), and per span name the latency (``log.latency_ms{operation=<span name>}``). With
  ``group_by = "span"`` the rate and error ratio are per span name too (service
  ``<service>:<span name>``). ``raw`` keeps ``trace_id``, ``span_id``, kind and attributes.

State: a cumulative point is turned into a rate against the previous point of its series, held
by the decoder in a bounded table (:class:`CumulativeTable`, least recently seen dropped first).
It lives in memory only: after a restart (or for a series new to this worker) the first point
of each series only sets the baseline, so one export interval per series is lost. Rates from
cumulative values stay right when points of one series are split across workers (each worker's
increase over its own interval is still the rate), unlike deltas of a delta.

>>> doc = {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name",
...     "value": {"stringValue": "cart"}}]}, "scopeLogs": [{"logRecords": [{
...     "timeUnixNano": "1700000000000000000", "severityNumber": 17,
...     "body": {"stringValue": "db down"}, "traceId": "5b8efff798038103d269b633813fc60c"}]}]}]}
>>> import orjson
>>> ev = OtlpJsonDecoder()(orjson.dumps(doc), DecodeContext("otlp_logs")).events[0]
>>> ev.ts, ev.level, ev.service, ev.message, ev.raw["trace_id"]
(1700000000.0, 'ERROR', 'cart', 'db down', '5b8efff798038103d269b633813fc60c')
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, Literal

import orjson
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.logs.v1.logs_pb2 import SeverityNumber
from opentelemetry.proto.metrics.v1.metrics_pb2 import AggregationTemporality
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from engine.formats._common import as_number, json_items, reencode, reject
from engine.formats._otlp_proto import logs_doc, metrics_doc, traces_doc
from engine.formats.base import DecodeContext
from engine.model.events import Decoded, Event, InvalidEvent, LogEvent, MetricSample, Rejected
from engine.model.levels import LEVEL_SPELLINGS, canonical_level, otel_level

__all__ = [
    "QUANTILES",
    "CumulativeTable",
    "OtlpJsonDecoder",
    "OtlpProtoDecoder",
    "Signal",
    "signal_for_topic",
]

Signal = Literal["logs", "metrics", "traces"]
GroupBy = Literal["service", "span"]

#: The quantiles a histogram is summarised by.
QUANTILES: Final = (0.5, 0.9, 0.99)

_DELTA: Final = 1
_CUMULATIVE: Final = 2
_STATUS_ERROR: Final = 2
_UNKNOWN_SERVICE: Final = "unknown_service"
#: The names of the enums' values (``"STATUS_CODE_ERROR"``: 2), which OTLP JSON may carry
#: instead of the numbers: the protobuf JSON mapping allows both, and the Collector's own JSON
#: reader takes both (its writer uses numbers).
_SEVERITY_NAMES: Final[dict[str, int]] = dict(SeverityNumber.items())
_TEMPORALITY_NAMES: Final[dict[str, int]] = dict(AggregationTemporality.items())
_KIND_NAMES: Final[dict[str, int]] = dict(Span.SpanKind.items())
_STATUS_NAMES: Final[dict[str, int]] = dict(Status.StatusCode.items())
_DOCS: Final[dict[Signal, Callable[[Any], dict[str, Any]]]] = {
    "logs": logs_doc,
    "metrics": metrics_doc,
    "traces": traces_doc,
}
_REQUESTS: Final[dict[Signal, type[Message]]] = {
    "logs": ExportLogsServiceRequest,
    "metrics": ExportMetricsServiceRequest,
    "traces": ExportTraceServiceRequest,
}


def signal_for_topic(topic: str) -> Signal | None:
    """The signal a topic's name suggests (the Collector's default topics are ``otlp_spans``,
    ``otlp_metrics`` and ``otlp_logs``), or ``None``.

    >>> signal_for_topic("otlp_spans"), signal_for_topic("otel.metrics"), signal_for_topic("x")
    ('traces', 'metrics', None)
    """
    name = topic.lower()
    if "span" in name or "trace" in name:
        return "traces"
    if "metric" in name:
        return "metrics"
    if "log" in name:
        return "logs"
    return None


class CumulativeTable:
    """The previous point of each cumulative series, bounded (least recently seen dropped).

    >>> table = CumulativeTable(max_series=2)
    >>> table.swap("a", 1), table.swap("b", 2), table.swap("a", 3), table.swap("c", 4)
    (None, None, 1, None)
    >>> len(table), table.swap("b", 5)
    (2, None)
    """

    __slots__ = ("_points", "max_series")

    def __init__(self, max_series: int = 100_000) -> None:
        self.max_series = max_series
        self._points: dict[Any, Any] = {}

    def __len__(self) -> int:
        return len(self._points)

    def swap(self, key: Any, point: Any) -> Any:
        """Store ``point`` as ``key``'s latest; return the one it replaces (or ``None``)."""
        points = self._points
        old = points.pop(key, None)
        if old is None and len(points) >= self.max_series:
            del points[next(iter(points))]
        points[key] = point
        return old


def _any(value: Any) -> Any:
    """A Python value from an OTLP ``AnyValue`` (JSON mapping)."""
    if not isinstance(value, dict):
        return None
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return value["boolValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return value["doubleValue"]
    if "arrayValue" in value:
        return [_any(v) for v in value["arrayValue"].get("values", ())]
    if "kvlistValue" in value:
        return _attributes(value["kvlistValue"].get("values"))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def _attributes(attrs: Any) -> dict[str, Any]:
    if not attrs:
        return {}
    if not isinstance(attrs, list):
        raise InvalidEvent(
            "wrong_type", f"attributes: expected an array, got {type(attrs).__name__}"
        )
    return {
        kv["key"]: _any(kv.get("value")) for kv in attrs if isinstance(kv, dict) and "key" in kv
    }


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return orjson.dumps(value, default=str).decode()


def _nanos(record: dict[str, Any], *keys: str) -> float | None:
    """Epoch seconds from the first non-zero ``*UnixNano`` field of ``keys``."""
    nanos = _unix_nanos(record, *keys)
    return None if nanos is None else nanos / 1_000_000_000  # int / int: rounded once


def _unix_nanos(record: dict[str, Any], *keys: str) -> int | None:
    """The first non-zero ``*UnixNano`` field of ``keys``, in integer nanoseconds."""
    for key in keys:
        value = record.get(key)
        if value in (None, 0, "0"):
            continue
        try:
            nanos = int(value)
        except (TypeError, ValueError):
            raise InvalidEvent(
                "bad_timestamp", f"{key}: expected integer nanoseconds, got {value!r:.64}"
            ) from None
        if not 0 < nanos <= 10**20:
            raise InvalidEvent("bad_timestamp", f"{key}: out of range: {value!r:.64}")
        return nanos
    return None


def _enum(value: Any, names: dict[str, int], key: str) -> int:
    """The number of an enum field given as its number or its name (``0`` when absent).

    >>> _enum("SPAN_KIND_SERVER", _KIND_NAMES, "kind"), _enum(2, _KIND_NAMES, "kind")
    (2, 2)
    """
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value in names:
        return names[value]
    raise InvalidEvent("wrong_type", f"{key}: expected an enum number or name, got {value!r:.48}")


def _hex_id(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) and value else None


def _interpolated(q: float, bounds: list[float], counts: list[float], total: float) -> float:
    """The ``q`` quantile of a histogram (explicit bounds), linear within its bucket."""
    rank = q * total
    seen = 0.0
    for i, count in enumerate(counts):
        if count <= 0:
            continue
        if seen + count >= rank:
            lower = bounds[i - 1] if i > 0 else min(0.0, bounds[0]) if bounds else 0.0
            upper = bounds[i] if i < len(bounds) else (bounds[-1] if bounds else lower)
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    return bounds[-1] if bounds else 0.0


class _Reader:
    """Walks one export request (in the JSON mapping) into events and per-record rejections."""

    __slots__ = ("_id", "cumulative", "group_by")

    def __init__(self, *, group_by: GroupBy, max_series: int) -> None:
        self._id: Callable[[Any], str | None] = _hex_id
        self.group_by = group_by
        self.cumulative = CumulativeTable(max_series)

    def request(
        self, doc: Any, out: Decoded, context: DecodeContext, raw: bytes, where: int | None
    ) -> None:
        """Decode one request; ``raw`` and ``where`` are its bytes and its index in the message
        (``None``: the request is the whole message)."""
        if not isinstance(doc, dict):
            out.rejected.append(
                Rejected(
                    "not_an_object",
                    f"expected an OTLP export request, got {type(doc).__name__}",
                    raw,
                    where,
                )
            )
            return
        index = 0
        for key, walk in (
            ("resourceLogs", self._logs),
            ("resourceMetrics", self._metrics),
            ("resourceSpans", self._spans),
        ):
            resources = doc.get(key)
            if resources is None:
                continue
            if not isinstance(resources, list):
                out.rejected.append(Rejected("wrong_type", f"{key}: expected an array", raw, where))
                return
            for resource in resources:
                if not isinstance(resource, dict):
                    out.rejected.append(
                        Rejected(
                            "wrong_type", f"{key}[]: expected an object", reencode(resource), index
                        )
                    )
                    index += 1
                    continue
                try:
                    attrs = _attributes((resource.get("resource") or {}).get("attributes"))
                except (InvalidEvent, AttributeError) as exc:
                    out.rejected.append(
                        Rejected("wrong_type", f"resource: {exc}", reencode(resource), index)
                    )
                    index += 1
                    continue
                try:
                    index = walk(resource, attrs, out, context, index)
                except (TypeError, ValueError, AttributeError, KeyError) as exc:
                    message = f"{key}[]: malformed: {exc!s:.200}"
                    out.rejected.append(Rejected("wrong_type", message, reencode(resource), index))
                    index += 1
            return
        out.rejected.append(
            Rejected(
                "missing_field",
                "resourceLogs, resourceMetrics or resourceSpans: none is present",
                raw,
                where,
            )
        )

    def _records(self, resource: dict[str, Any], scopes_key: str, records_key: str) -> list[Any]:
        records: list[Any] = []
        for scope in resource.get(scopes_key) or ():
            if isinstance(scope, dict):
                records.extend(scope.get(records_key) or ())
        return records

    def _each(
        self,
        records: list[Any],
        parse: Callable[[dict[str, Any]], list[Event]],
        out: Decoded,
        context: DecodeContext,
        index: int,
    ) -> int:
        not_after = context.not_after
        for record in records:
            try:
                if not isinstance(record, dict):
                    raise InvalidEvent(
                        "not_an_object", f"expected an object, got {type(record).__name__}"
                    )
                events = parse(record)
                for event in events:
                    if event.ts > not_after:
                        raise InvalidEvent(
                            "bad_timestamp",
                            f"timestamp: {event.ts - not_after:.0f}s later than the message's own "
                            "time allows",
                        )
                out.events.extend(events)
            except InvalidEvent as exc:
                reject(out, exc, record, None, index)
            except (TypeError, ValueError, AttributeError, KeyError) as exc:
                reject(
                    out,
                    InvalidEvent("wrong_type", f"malformed record: {exc!s:.200}"),
                    record,
                    None,
                    index,
                )
            index += 1
        return index

    # -- logs ------------------------------------------------------------------------------

    def _logs(
        self,
        resource: dict[str, Any],
        attrs: dict[str, Any],
        out: Decoded,
        context: DecodeContext,
        index: int,
    ) -> int:
        service = _text(attrs.get("service.name") or _UNKNOWN_SERVICE)
        to_id = self._id

        def parse(record: dict[str, Any]) -> list[Event]:
            ts = _nanos(record, "timeUnixNano", "observedTimeUnixNano")
            if ts is None:
                raise InvalidEvent(
                    "missing_field", "timeUnixNano: missing (and observedTimeUnixNano)"
                )
            text = record.get("severityText")
            level = (
                canonical_level(text)
                if isinstance(text, str) and text.lower() in LEVEL_SPELLINGS
                else None
            )
            if level is None:
                number = _enum(record.get("severityNumber"), _SEVERITY_NAMES, "severityNumber")
                level = otel_level(number) or ("INFO" if number == 0 and not text else None)
            if level is None:
                raise InvalidEvent(
                    "bad_level", f"severityText {text!r:.32}, severityNumber: no known level"
                )
            body = _any(record.get("body"))
            message = "" if body is None else _text(body)
            raw = {
                "attributes": _attributes(record.get("attributes")),
                "trace_id": to_id(record.get("traceId")),
                "span_id": to_id(record.get("spanId")),
                "severity_text": text,
                "resource": attrs,
            }
            return [LogEvent(ts, level, service, message, None, None, None, raw)]

        return self._each(
            self._records(resource, "scopeLogs", "logRecords"), parse, out, context, index
        )

    # -- spans -----------------------------------------------------------------------------

    def _spans(
        self,
        resource: dict[str, Any],
        attrs: dict[str, Any],
        out: Decoded,
        context: DecodeContext,
        index: int,
    ) -> int:
        service = _text(attrs.get("service.name") or _UNKNOWN_SERVICE)
        to_id, by_span = self._id, self.group_by == "span"

        def parse(span: dict[str, Any]) -> list[Event]:
            name = span.get("name")
            if not isinstance(name, str) or not name:
                raise InvalidEvent("missing_field", "name: a span needs a name")
            start = _unix_nanos(span, "startTimeUnixNano")
            end = _unix_nanos(span, "endTimeUnixNano")
            if start is None or end is None:
                raise InvalidEvent(
                    "missing_field", "startTimeUnixNano and endTimeUnixNano: both needed"
                )
            if end < start:
                raise InvalidEvent("bad_timestamp", "endTimeUnixNano: before startTimeUnixNano")
            status = span.get("status") or {}
            if isinstance(status, dict) and "code" in status:
                status = {**status, "code": _enum(status["code"], _STATUS_NAMES, "status.code")}
            error = isinstance(status, dict) and status.get("code") == _STATUS_ERROR
            raw = {
                "trace_id": to_id(span.get("traceId")),
                "span_id": to_id(span.get("spanId")),
                "parent_span_id": to_id(span.get("parentSpanId")),
                "kind": _enum(span.get("kind"), _KIND_NAMES, "kind"),
                "status": status,
                "attributes": _attributes(span.get("attributes")),
            }
            return [
                LogEvent(
                    end / 1_000_000_000,
                    "ERROR" if error else "INFO",
                    f"{service}:{name}" if by_span else service,
                    name,
                    "span",
                    name,
                    (end - start) / 1_000_000,
                    raw,
                )
            ]

        return self._each(
            self._records(resource, "scopeSpans", "spans"), parse, out, context, index
        )

    # -- metrics ---------------------------------------------------------------------------

    def _metrics(
        self,
        resource: dict[str, Any],
        attrs: dict[str, Any],
        out: Decoded,
        context: DecodeContext,
        index: int,
    ) -> int:
        service = attrs.get("service.name")
        base = {} if service is None else {"service": _text(service)}
        for metric in self._records(resource, "scopeMetrics", "metrics"):
            if (
                not isinstance(metric, dict)
                or not isinstance(metric.get("name"), str)
                or not metric["name"]
            ):
                reject(
                    out,
                    InvalidEvent("missing_field", "name: a metric needs a name"),
                    metric,
                    None,
                    index,
                )
                index += 1
                continue
            name = metric["name"]
            for kind in ("gauge", "sum", "histogram", "exponentialHistogram", "summary"):
                data = metric.get(kind)
                if isinstance(data, dict):
                    break
            else:
                reject(
                    out,
                    InvalidEvent("missing_field", f"{name}: no gauge, sum, histogram or summary"),
                    metric,
                    None,
                    index,
                )
                index += 1
                continue
            try:
                temporality = _enum(
                    data.get("aggregationTemporality"), _TEMPORALITY_NAMES, "aggregationTemporality"
                )
            except InvalidEvent as bad:
                reject(out, bad, metric, None, index)
                index += 1
                continue
            monotonic = bool(data.get("isMonotonic", False))

            def parse(
                point: dict[str, Any],
                kind: str = kind,
                temporality: Any = temporality,
                monotonic: bool = monotonic,
                name: str = name,
            ) -> list[Event]:
                labels = {k: _text(v) for k, v in _attributes(point.get("attributes")).items()}
                for k, v in base.items():
                    labels.setdefault(k, v)
                ts = _nanos(point, "timeUnixNano")
                if ts is None:
                    raise InvalidEvent("missing_field", "timeUnixNano: required")
                if kind == "gauge" or (
                    kind == "sum" and not monotonic and temporality == _CUMULATIVE
                ):
                    return [MetricSample(name, _point_value(point), ts, labels)]
                if kind == "sum":
                    return self._rate(name, labels, point, ts, temporality)
                if kind == "summary":
                    return [
                        MetricSample(
                            _quantile_name(name, as_number(qv.get("quantile", 0), "quantile")),
                            as_number(qv.get("value", 0), "value"),
                            ts,
                            labels,
                        )
                        for qv in point.get("quantileValues") or ()
                    ]
                return self._histogram(name, labels, point, ts, temporality, kind == "histogram")

            index = self._each(list(data.get("dataPoints") or ()), parse, out, context, index)
        return index

    def _rate(
        self, name: str, labels: dict[str, str], point: dict[str, Any], ts: float, temporality: Any
    ) -> list[Event]:
        value = _point_value(point)
        start = _nanos(point, "startTimeUnixNano")
        key = (name, tuple(sorted(labels.items())))
        if temporality == _DELTA:
            previous = self.cumulative.swap(key, (start, ts, 0.0))
            begin = start if start is not None else previous[1] if previous else None
            if begin is None or ts <= begin:
                return []
            return [MetricSample(f"{name}.rate", value / (ts - begin), ts, labels)]
        previous = self.cumulative.swap(key, (start, ts, value))
        if previous is None:
            return []  # the baseline of this series (first point seen, or after a restart)
        p_start, p_ts, p_value = previous
        if value < p_value or (start is not None and start != p_start):  # a reset
            if start is None or ts <= start:
                return []
            return [MetricSample(f"{name}.rate", value / (ts - start), ts, labels)]
        if ts <= p_ts:
            return []
        return [MetricSample(f"{name}.rate", (value - p_value) / (ts - p_ts), ts, labels)]

    def _histogram(
        self,
        name: str,
        labels: dict[str, str],
        point: dict[str, Any],
        ts: float,
        temporality: Any,
        explicit: bool,
    ) -> list[Event]:
        count = as_number(point.get("count", 0), "count")
        total = as_number(point["sum"], "sum") if "sum" in point else None
        buckets = (
            [as_number(c, "bucketCounts") for c in point.get("bucketCounts") or ()]
            if explicit
            else []
        )
        if temporality == _CUMULATIVE:
            key = (name, tuple(sorted(labels.items())))
            previous = self.cumulative.swap(key, (count, total, buckets))
            if previous is None:
                return []
            p_count, p_total, p_buckets = previous
            if count >= p_count and len(buckets) == len(p_buckets):
                count -= p_count
                total = None if total is None or p_total is None else total - p_total
                buckets = [c - p for c, p in zip(buckets, p_buckets, strict=True)]
        out: list[Event] = [MetricSample(f"{name}.count", count, ts, labels)]
        if count > 0:
            if total is not None:
                out.append(MetricSample(f"{name}.mean", total / count, ts, labels))
            bounds = [as_number(b, "explicitBounds") for b in point.get("explicitBounds") or ()]
            if buckets and len(buckets) == len(bounds) + 1:
                for q in QUANTILES:
                    out.append(
                        MetricSample(
                            _quantile_name(name, q),
                            _interpolated(q, bounds, buckets, count),
                            ts,
                            labels,
                        )
                    )
        return out


def _point_value(point: dict[str, Any]) -> float:
    if "asDouble" in point:
        return as_number(point["asDouble"], "asDouble")
    if "asInt" in point:
        return as_number(point["asInt"], "asInt")
    raise InvalidEvent("missing_field", "asDouble or asInt: a data point needs a value")


def _quantile_name(name: str, q: float) -> str:
    """``<name>.p99`` for the 0.99 quantile.

    >>> _quantile_name("latency", 0.5), _quantile_name("latency", 0.999)
    ('latency.p50', 'latency.p99.9')
    """
    return f"{name}.p{round(q * 100, 6):g}"


class OtlpJsonDecoder:
    """The :class:`~engine.formats.base.Decoder` of OTLP's JSON mapping (see module docstring).

    Parameters
    ----------
    group_by:
        ``"service"``: spans give rate and error ratio per service; ``"span"``: per service and
        span name.
    max_series:
        Cumulative series whose previous point is kept (see :class:`CumulativeTable`).
    """

    __slots__ = ("_reader",)

    def __init__(self, group_by: GroupBy = "service", max_series: int = 100_000) -> None:
        self._reader = _Reader(group_by=group_by, max_series=max_series)

    def __call__(self, value: bytes, context: DecodeContext, out: Decoded | None = None) -> Decoded:
        """Decode one message: an export request (or NDJSON of them, as a file exporter writes)."""
        if out is None:
            out = Decoded()
        for where, doc, raw in json_items(value, out):
            self._reader.request(
                doc, out, context, raw if raw is not None else reencode(doc), where
            )
        return out


class OtlpProtoDecoder:
    """The :class:`~engine.formats.base.Decoder` of OTLP protobuf (see module docstring).

    Protobuf does not say which request it holds, so the decoder is told the ``signal``.
    """

    __slots__ = ("_doc", "_reader", "_request", "signal")

    def __init__(
        self, signal: Signal, group_by: GroupBy = "service", max_series: int = 100_000
    ) -> None:
        self.signal = signal
        self._request = _REQUESTS[signal]
        self._doc = _DOCS[signal]
        self._reader = _Reader(group_by=group_by, max_series=max_series)

    def __call__(self, value: bytes, context: DecodeContext, out: Decoded | None = None) -> Decoded:
        """Decode one message: one export request of the decoder's signal."""
        if out is None:
            out = Decoded()
        try:
            message = self._request.FromString(value)
        except (DecodeError, ValueError, RuntimeError) as exc:
            out.rejected.append(
                Rejected(
                    "invalid_protobuf", f"not an OTLP {self.signal} request: {exc!s:.200}", value
                )
            )
            return out
        if not message.ByteSize():
            out.rejected.append(
                Rejected("missing_field", f"an empty OTLP {self.signal} request", value)
            )
            return out
        self._reader.request(self._doc(message), out, context, value, None)
        return out
