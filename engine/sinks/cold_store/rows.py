"""What the cold store keeps, as plain rows: pure code, no database.

An :class:`EventRow` is one cold log event with all its fields and its Kafka origin; an
:class:`AlertRow` is one alert transition read from the alerts topic. The origin
(``source``, ``topic``, ``partition``, ``offset``, ``index``) is unique in the store, so writing
a row again (a replay after a crash or a database outage) changes nothing. ``source`` is the
worker's ``kafka.app_id``: two deployments (or two demo runs) whose topics share names and
offsets do not collide.

Timestamps are epoch seconds (float, UTC).

>>> from engine.model.events import LogEvent
>>> event = LogEvent(1700000000.0, "INFO", "api", "done", "task_completed", None, None,
...                  {"timestamp": 1700000000, "level": "INFO", "service": "api",
...                   "message": "done", "type": "task_completed", "session_id": "s-1",
...                   "context": {"attempt": 2}})
>>> row = event_row(event, Origin("kestrel", "logs", 0, 42, 0))
>>> row.session_id, row.context, row.type
('s-1', '{"attempt":2}', 'task_completed')
>>> transition_of({"status": "firing", "repeat": 0, "silenced": False})
'fired'
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson

from engine.model.alert import Alert
from engine.model.events import LogEvent

__all__ = [
    "ALERT_COLUMNS",
    "EVENT_COLUMNS",
    "TRANSITIONS",
    "AlertRow",
    "EventRow",
    "Origin",
    "alert_row",
    "event_row",
    "to_json",
    "transition_of",
]

#: The kinds of alert transition the history records.
TRANSITIONS: Final = ("fired", "repeated", "resolved", "silenced")


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a row came from: the app id, the Kafka topic, partition and offset, and the
    item's position in its message (a message may hold several events)."""

    source: str
    topic: str
    partition: int
    offset: int
    index: int = 0


def to_json(value: Any) -> str:
    """Compact JSON text of ``value`` (the standard library for what orjson refuses, e.g.
    nesting deeper than 254 levels or integers beyond 64 bits).

    >>> to_json({"a": [1, 2.5, None]})
    '{"a":[1,2.5,null]}'
    """
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value, separators=(",", ":"), default=str)


def _text(raw: Mapping[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)


def _json_or_none(value: Any) -> str | None:
    return None if value is None else to_json(value)


#: The event columns, in the order of :meth:`EventRow.values`.
EVENT_COLUMNS: Final = (
    "ts",
    "type",
    "level",
    "service",
    "message",
    "session_id",
    "user_id",
    "trace_id",
    "operation",
    "duration_ms",
    "context",
    "performance_data",
    "event",
    "source",
    "topic",
    "kafka_partition",
    "kafka_offset",
    "batch_index",
)


@dataclass(frozen=True, slots=True)
class EventRow:
    """One stored log event.

    ``context``, ``performance_data`` and ``event`` (the whole decoded object, unknown fields
    included) are JSON text; ``duration_ms`` is in milliseconds.
    """

    ts: float
    type: str
    level: str
    service: str
    message: str
    session_id: str | None
    user_id: str | None
    trace_id: str | None
    operation: str | None
    duration_ms: float | None
    context: str | None
    performance_data: str | None
    event: str
    origin: Origin

    def values(self) -> tuple[Any, ...]:
        """The column values in :data:`EVENT_COLUMNS` order (``ts`` as epoch seconds)."""
        o = self.origin
        return (
            self.ts,
            self.type,
            self.level,
            self.service,
            self.message,
            self.session_id,
            self.user_id,
            self.trace_id,
            self.operation,
            self.duration_ms,
            self.context,
            self.performance_data,
            self.event,
            o.source,
            o.topic,
            o.partition,
            o.offset,
            o.index,
        )


def event_row(event: LogEvent, origin: Origin) -> EventRow:
    """The row of a decoded log event (its ``type`` must be set: the caller chose it as cold)."""
    raw = event.raw
    return EventRow(
        ts=event.ts,
        type=event.type or "",
        level=event.level,
        service=event.service,
        message=event.message,
        session_id=_text(raw, "session_id"),
        user_id=_text(raw, "user_id"),
        trace_id=_text(raw, "trace_id"),
        operation=event.operation,
        duration_ms=event.duration_ms,
        context=_json_or_none(raw.get("context")),
        performance_data=_json_or_none(raw.get("performance_data")),
        event=to_json(raw),
        origin=origin,
    )


#: The alert-history columns, in the order of :meth:`AlertRow.values`.
ALERT_COLUMNS: Final = (
    "recorded_at",
    "transition",
    "fingerprint",
    "series",
    "series_id",
    "detector",
    "service",
    "severity",
    "status",
    "value",
    "expected",
    "score",
    "started_at",
    "ended_at",
    "summary",
    "repeat",
    "labels",
    "alert",
    "source",
    "topic",
    "kafka_partition",
    "kafka_offset",
)


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One alert transition as recorded on the alerts topic.

    ``recorded_at`` is the Kafka record's time (epoch seconds); ``transition`` is one of
    :data:`TRANSITIONS`; ``alert`` is the record's JSON; ``service`` the ``service`` label, if any.
    """

    recorded_at: float
    transition: str
    fingerprint: str
    series: str
    series_id: str
    detector: str
    service: str | None
    severity: str
    status: str
    value: float
    expected: float
    score: float
    started_at: float
    ended_at: float | None
    summary: str
    repeat: int
    labels: str
    alert: str
    origin: Origin

    def values(self) -> tuple[Any, ...]:
        """The column values in :data:`ALERT_COLUMNS` order."""
        o = self.origin
        return (
            self.recorded_at,
            self.transition,
            self.fingerprint,
            self.series,
            self.series_id,
            self.detector,
            self.service,
            self.severity,
            self.status,
            self.value,
            self.expected,
            self.score,
            self.started_at,
            self.ended_at,
            self.summary,
            self.repeat,
            self.labels,
            self.alert,
            o.source,
            o.topic,
            o.partition,
            o.offset,
        )


def transition_of(alert: Mapping[str, Any]) -> str:
    """Which transition an alerts-topic record is: ``silenced`` (recorded while a silence
    matched), ``resolved``, ``repeated`` (a reminder of a firing alert) or ``fired``."""
    if alert.get("silenced"):
        return "silenced"
    if alert.get("status") == "resolved":
        return "resolved"
    return "repeated" if int(alert.get("repeat", 0) or 0) > 0 else "fired"


_FLOATS: Final = ("value", "expected", "score")


def alert_row(value: bytes, recorded_at: float, origin: Origin) -> AlertRow | None:
    """The row of one alerts-topic record, or ``None`` if the record is not an alert.

    >>> from engine.model.alert import AlertStatus, Severity
    >>> a = Alert("f1", AlertStatus.RESOLVED, Severity.WARNING, "cpu", {"service": "api"},
    ...           "zscore", 1.0, 0.5, 4.0, 10.0, 70.0, "cpu is back")
    >>> row = alert_row(orjson.dumps(a.to_dict()), 71.0, Origin("k", "kestrel.alerts", 0, 7))
    >>> row.transition, row.series_id, row.service
    ('resolved', 'cpu{service=api}', 'api')
    >>> alert_row(b"not json", 0.0, Origin("k", "kestrel.alerts", 0, 8)) is None
    True
    """
    try:
        doc = orjson.loads(value)
        # NaN (e.g. no expected value yet) is written as JSON null: read it back as NaN.
        fixed = {**doc, **{k: math.nan for k in _FLOATS if doc.get(k, 0.0) is None}}
        alert = Alert.from_dict(fixed)
    except (orjson.JSONDecodeError, KeyError, ValueError, TypeError):
        return None
    return AlertRow(
        recorded_at=recorded_at,
        transition=transition_of(doc),
        fingerprint=alert.fingerprint,
        series=alert.series,
        series_id=alert.series_id,
        detector=alert.detector,
        service=alert.labels.get("service"),
        severity=alert.severity.value,
        status=alert.status.value,
        value=alert.value,
        expected=alert.expected,
        score=alert.score,
        started_at=alert.started_at,
        ended_at=alert.ended_at,
        summary=alert.summary,
        repeat=alert.repeat,
        labels=to_json(dict(alert.labels)),
        alert=to_json(doc),
        origin=origin,
    )
