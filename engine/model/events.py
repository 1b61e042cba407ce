"""Events as Kestrel sees them once decoded: log events, metric samples and rejected inputs.

Every input format (see :mod:`engine.formats`) turns Kafka messages into these types; the core
(:mod:`engine.core`) dispatches on the type, never on the topic name. Timestamps are epoch seconds
(float, UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

import msgspec

from engine.model.levels import ERROR_LEVELS

__all__ = [
    "LOG",
    "METRIC",
    "REASONS",
    "Decoded",
    "Event",
    "InvalidEvent",
    "Kind",
    "LogEvent",
    "MetricSample",
    "Rejected",
]

#: What a Kestrel-schema topic carries (``[topics] logs`` and ``metrics``).
LOG: Final = "log"
METRIC: Final = "metric"
Kind = Literal["log", "metric"]

#: Every reason an input can be rejected for (bounded label set of the invalid-events counter).
REASONS: Final = (
    "too_large",
    "not_utf8",
    "invalid_json",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "not_finite",
    "bad_timestamp",
    "bad_level",
    "invalid_protobuf",
    "invalid_line_protocol",
)


class InvalidEvent(ValueError):
    """One event failed validation: ``reason`` is from :data:`REASONS`."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class MetricSample(msgspec.Struct, gc=False):
    """One metric sample: ``name``, ``value`` (finite float), ``ts`` (epoch s), ``labels``.

    A msgspec ``Struct``, so that a JSON message in Kestrel's schema decodes straight into
    samples (``ts`` is the ``timestamp`` field there; see :mod:`engine.formats.kestrel_json`),
    with no dict per event in between. Not tracked by the garbage collector (``gc=False``): a
    sample holds a name, numbers and a dict of strings, so it cannot be part of a cycle.

    >>> MetricSample("cpu", 0.5, 1700000000.0, {"host": "a"}).labels
    {'host': 'a'}
    """

    name: str
    value: float
    ts: float = msgspec.field(name="timestamp")
    labels: dict[str, str] = msgspec.field(default_factory=dict)


@dataclass(slots=True)
class LogEvent:
    """One structured log event.

    ``service`` is the ``service`` field, else ``component``. ``duration_ms`` and ``operation``
    come from ``performance_data``. ``raw`` is the whole decoded object, unknown fields included.
    """

    ts: float
    level: str
    service: str
    message: str
    type: str | None
    operation: str | None
    duration_ms: float | None
    raw: dict[str, Any]

    @property
    def is_error(self) -> bool:
        """ERROR or CRITICAL."""
        return self.level in ERROR_LEVELS


@dataclass(slots=True)
class Rejected:
    """An input that could not be used.

    ``original`` holds its bytes: the whole message, or for one item of a batch that item
    (the NDJSON line as sent, or the array element re-encoded). ``index`` is the item's
    position in its batch (``None`` for a whole message). A message over the size limit keeps
    only its first 64 KiB (the dead-letter topic has a size limit too), and ``original_size``
    says how big it was.
    """

    reason: str
    message: str
    original: bytes
    index: int | None = None
    original_size: int | None = None


#: Any decoded event.
Event = LogEvent | MetricSample


@dataclass(slots=True)
class Decoded:
    """The valid events and the rejected items of one Kafka message."""

    events: list[Event] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
