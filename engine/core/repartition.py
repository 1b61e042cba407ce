"""Repartitioning: unkeyed (or wrongly keyed) input, decoded and re-keyed by series.

A series' baseline lives on the worker that owns the partition its events arrive on. Shippers
do not key by series (the Collector's Kafka exporter sends spans unkeyed or keyed by trace id,
Telegraf and Fluent Bit unkeyed), so one series' events land on every partition: each worker
would see a part of the series and, out of order across partitions, most of it as late. An input
with ``repartition = true`` is therefore decoded and re-produced, in Kestrel's own schema and
keyed by series (metric: its ``name{labels}``; log event or span: its service), to an internal
topic the pipeline reads, as Faust's ``group_by`` does: ``<app_id>-repartition-metrics`` and
``<app_id>-repartition-logs``. Kafka's key partitioner then sends each series to one partition.

:func:`repartition_batch` is the pure part: records in, keyed messages, dead letters and counts
out. The runtime produces the messages (at least once: the source batch is committed after the
producer is flushed, so a crash re-sends rather than loses).

>>> from engine.model.events import MetricSample
>>> kind, key, value = keyed(MetricSample("cpu", 0.5, 1700000000.0, {"host": "a"}))
>>> kind, key, value[:40]
('metric', b'cpu{host=a}', b'{"name":"cpu","value":0.5,"timestamp":17')
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from engine.config import repartition_topics
from engine.core.batch import DeadLetter, Record, TopicCounts
from engine.formats import DecodeContext, Decoder, too_large
from engine.model.alert import series_id
from engine.model.events import LOG, METRIC, Decoded, Event, Kind, LogEvent

__all__ = ["RepartitionResult", "keyed", "repartition_batch", "repartition_topics"]


def keyed(event: Event) -> tuple[Kind, bytes, bytes]:
    """``(kind, key, value)``: one event in Kestrel's schema, keyed by its series.

    A log event keeps its trace and span ids (``trace_id``, ``span_id``), not the rest of its
    raw record (attributes stay on the source topic).
    """
    if isinstance(event, LogEvent):
        obj: dict[str, Any] = {
            "timestamp": event.ts,
            "level": event.level,
            "service": event.service,
            "message": event.message,
        }
        if event.type is not None:
            obj["type"] = event.type
        if event.duration_ms is not None:
            obj["performance_data"] = {
                "duration_ms": event.duration_ms,
                "operation": event.operation or "default",
            }
        raw = event.raw
        for name in ("trace_id", "span_id"):
            value = raw.get(name)
            if isinstance(value, str) and value:
                obj[name] = value
        return LOG, event.service.encode(), orjson.dumps(obj)
    obj = {"name": event.name, "value": event.value, "timestamp": event.ts, "labels": event.labels}
    return METRIC, series_id(event.name, event.labels).encode(), orjson.dumps(obj)


@dataclass(slots=True)
class RepartitionResult:
    """What one batch of a repartitioned input gives: messages to produce, rejects, counts."""

    messages: list[tuple[Kind, bytes, bytes]] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    counts: dict[str, TopicCounts] = field(default_factory=dict)


def repartition_batch(
    topic: str,
    partition: int,
    records: Iterable[Record],
    *,
    decoders: Mapping[str, Decoder],
    max_bytes: int,
    max_future_seconds: float,
    now: float,
) -> RepartitionResult:
    """Decode the records of one partition of ``topic`` and key their events by series (see
    the module docstring).

    The checks are those of :func:`~engine.core.batch.process_batch` (size limit, future
    timestamps): a record rejected here goes to the dead-letter topic from its source topic.
    """
    result = RepartitionResult()
    context = DecodeContext(topic)
    decoded = Decoded()
    events, rejected = decoded.events, decoded.rejected
    decode = decoders[topic]
    c = TopicCounts()
    for message in records:
        c.messages += 1
        data = message.value or b""
        stamp = message.timestamp
        sent_at = stamp / 1000.0 if stamp is not None and stamp > 0 else now
        if len(data) > max_bytes:
            rejected.append(too_large(data, max_bytes))
        else:
            context.not_after = sent_at + max_future_seconds
            decode(data, context, decoded)
        c.events += len(events)
        result.messages.extend(keyed(event) for event in events)
        events.clear()
        for bad in rejected:
            c.invalid[bad.reason] = c.invalid.get(bad.reason, 0) + 1
            result.dead.append(DeadLetter(bad, topic, partition, message.offset, message.key))
        rejected.clear()
    if c.messages:
        result.counts[topic] = c
    return result
