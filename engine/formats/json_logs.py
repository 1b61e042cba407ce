"""``json``: the JSON log records of any shipper (Vector, Fluent Bit, Logstash, Filebeat), mapped.

Shippers each name their fields their own way, so which field holds the timestamp, level,
service, message and trace id is configuration (:class:`JsonFields`, the ``[inputs.options]``
table). Each setting is a field name or a list of them, tried in order; a dotted name
(``log.level``) is a top-level key of that name if there is one, else a path into nested
objects. The defaults fit the shippers' default output:

============ ============================================================================
shipper      default record (Kafka sink/output, JSON codec)
============ ============================================================================
Vector       ``{"message", "timestamp": "<RFC 3339>", "host", "source_type", ...}``
Fluent Bit   ``{"@timestamp": <epoch s, float>, "log": "<line>", ...}``
Logstash     ``{"@timestamp": "<ISO 8601>", "@version", "message", "host", ...}``
Filebeat     ``{"@timestamp", "message", "log": {"level"?, ...}, "host": {...}, ...}``
============ ============================================================================

None of these has a service or a level unless the application logs them: a record without a
level gets ``default_level`` (INFO) and one without a service gets ``default_service`` (the
topic's name unless set). Levels accept every synonym of :mod:`engine.model.levels` (``err``,
``notice``, ``trace``, ``emerg``, ...) and syslog/OpenTelemetry severity numbers are not
guessed: an unknown level is rejected as ``bad_level``. The timestamp is ISO 8601 or epoch
s/ms/us/ns.

>>> decoder = JsonLogDecoder(JsonFields(), "app_logs")
>>> msg = b'{"@timestamp": 1700000000.5, "log": "GET / 200", "level": "notice"}'
>>> ev = decoder(msg, DecodeContext("app_logs")).events[0]
>>> ev.ts, ev.level, ev.service, ev.message
(1700000000.5, 'NOTICE', 'app_logs', 'GET / 200')
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.formats._common import add_item, json_items
from engine.formats.base import DecodeContext
from engine.formats.timestamps import parse_timestamp
from engine.model.events import Decoded, Event, InvalidEvent, LogEvent
from engine.model.levels import LEVEL_SPELLINGS, canonical_level

__all__ = ["JsonFields", "JsonLogDecoder"]

_MISSING: Final = object()


class JsonFields(BaseModel):
    """The ``[inputs.options]`` of a ``json`` input: which fields hold what (see module)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timestamp: tuple[str, ...] = ("timestamp", "@timestamp", "time", "ts", "date")
    level: tuple[str, ...] = ("level", "log.level", "severity", "loglevel", "lvl", "levelname")
    service: tuple[str, ...] = (
        "service",
        "service.name",
        "app",
        "application",
        "kubernetes.labels.app",
        "kubernetes.container_name",
        "container_name",
    )
    message: tuple[str, ...] = ("message", "msg", "log", "text")
    trace_id: tuple[str, ...] = ("trace_id", "traceId", "trace.id", "traceid")
    default_level: str = Field("INFO", description="The level of a record without one.")
    default_service: str | None = Field(
        None, description="The service of a record without one (default: the topic's name)."
    )

    @field_validator("timestamp", "level", "service", "message", "trace_id", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        """A single field name is a list of one."""
        return (value,) if isinstance(value, str) else value


def _lookup(obj: dict[str, Any], names: tuple[str, ...]) -> Any:
    """The value of the first of ``names`` present in ``obj`` (dotted names may be paths);
    empty values and objects are skipped."""
    for name in names:
        value = obj.get(name, _MISSING)
        if value is _MISSING and "." in name:
            value = obj
            for part in name.split("."):
                if not isinstance(value, dict):
                    value = _MISSING
                    break
                value = value.get(part, _MISSING)
        # An object is not this field's value (ECS nests: "service": {"name": ...}).
        if value is not _MISSING and value is not None and value != "" and type(value) is not dict:
            return value
    return _MISSING


class JsonLogDecoder:
    """The :class:`~engine.formats.base.Decoder` of a shipper's JSON log records (see module).

    Parameters
    ----------
    fields:
        Which fields hold the timestamp, level, service, message and trace id.
    topic:
        The input topic: the service of records without one, unless ``fields`` says otherwise.
    """

    __slots__ = ("_default_level", "_default_service", "fields")

    def __init__(self, fields: JsonFields, topic: str) -> None:
        level = canonical_level(fields.default_level)
        if level is None:
            raise ValueError(f"default_level: unknown level {fields.default_level!r}")
        self.fields = fields
        self._default_level = level
        self._default_service = fields.default_service or topic

    def record(self, obj: Any) -> list[Event]:
        """The log event of one record (a one-element list)."""
        if not isinstance(obj, dict):
            raise InvalidEvent("not_an_object", f"expected a JSON object, got {type(obj).__name__}")
        f = self.fields
        stamp = _lookup(obj, f.timestamp)
        if stamp is _MISSING:
            raise InvalidEvent("missing_field", f"timestamp: none of {', '.join(f.timestamp)}")
        message = _lookup(obj, f.message)
        if message is _MISSING:
            raise InvalidEvent("missing_field", f"message: none of {', '.join(f.message)}")
        if not isinstance(message, str):
            raise InvalidEvent(
                "wrong_type", f"message: expected a string, got {type(message).__name__}"
            )
        level_text = _lookup(obj, f.level)
        level: str | None = None
        if level_text is _MISSING:
            level = self._default_level
        elif isinstance(level_text, str):
            if level_text.lower() in LEVEL_SPELLINGS:
                level = canonical_level(level_text)
            if level is None:
                raise InvalidEvent("bad_level", f"level: unknown level {level_text[:32]!r}")
        else:
            raise InvalidEvent(
                "wrong_type", f"level: expected a string, got {type(level_text).__name__}"
            )
        service = _lookup(obj, f.service)
        if service is _MISSING:
            service = self._default_service
        elif not isinstance(service, str):
            raise InvalidEvent(
                "wrong_type", f"service: expected a string, got {type(service).__name__}"
            )
        trace = _lookup(obj, f.trace_id)
        raw = obj
        if isinstance(trace, str) and obj.get("trace_id") != trace:
            raw = {**obj, "trace_id": trace}
        ts = parse_timestamp(stamp)
        return [LogEvent(ts, level or "INFO", service, message, None, None, None, raw)]

    def __call__(self, value: bytes, context: DecodeContext, out: Decoded | None = None) -> Decoded:
        """Decode one message: one record, an array of records or NDJSON."""
        if out is None:
            out = Decoded()
        for index, item, raw in json_items(value, out):
            add_item(out, context, self.record, item, raw, index)
        return out
