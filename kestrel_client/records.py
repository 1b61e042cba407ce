"""Kestrel's log schema, built from what an application knows (pure: no I/O, no clock).

One log event is a JSON object with ``timestamp`` (epoch seconds), ``level``, ``service`` and
``message``, and optionally ``type``, ``session_id``, ``user_id``, ``context`` (an object) and
``performance_data`` (``{"operation": ..., "duration_ms": ...}``): the schema Kestrel's
``kestrel_json`` format reads. Messages are keyed by ``service``, so that one service's series
stay on one partition (one worker holds their baseline).

>>> rec = log_record(1700000000.0, "warn", "api", "slow", type="llm_request",
...                  session_id="s1", context={"model": "m"})
>>> rec  # doctest: +NORMALIZE_WHITESPACE
{'timestamp': 1700000000.0, 'level': 'WARNING', 'service': 'api', 'message': 'slow',
 'type': 'llm_request', 'session_id': 's1', 'context': {'model': 'm'}}
>>> key_of(encode(rec))
b'api'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import orjson

__all__ = ["LEVELS", "encode", "key_of", "level_name", "log_record"]

#: The level names Kestrel reads, by the spellings applications use (any case).
LEVELS: Final[Mapping[str, str]] = {
    "debug": "DEBUG",
    "info": "INFO",
    "warning": "WARNING",
    "warn": "WARNING",
    "error": "ERROR",
    "critical": "CRITICAL",
    "fatal": "CRITICAL",
}


def level_name(level: str | int) -> str:
    """Kestrel's name of a level given by name or by :mod:`logging` number.

    A number between two standard levels takes the lower one (``TRACE = 5`` becomes ``DEBUG``).

    >>> level_name("Warn"), level_name(40), level_name(5), level_name(55)
    ('WARNING', 'ERROR', 'DEBUG', 'CRITICAL')
    >>> level_name("loud")
    Traceback (most recent call last):
    ...
    ValueError: unknown level 'loud' (use debug, info, warning, error or critical)
    """
    if isinstance(level, int):
        for floor, name in ((50, "CRITICAL"), (40, "ERROR"), (30, "WARNING"), (20, "INFO")):
            if level >= floor:
                return name
        return "DEBUG"
    try:
        return LEVELS[level.lower()]
    except KeyError:
        raise ValueError(
            f"unknown level {level!r} (use debug, info, warning, error or critical)"
        ) from None


def log_record(
    timestamp: float,
    level: str | int,
    service: str,
    message: str,
    *,
    type: str | None = None,
    session_id: str | None = None,
    user_id: str | None = None,
    context: Mapping[str, Any] | None = None,
    performance_data: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One log event in Kestrel's schema; fields that are ``None`` or empty are left out.

    Parameters
    ----------
    timestamp
        When it happened, epoch seconds (UTC).
    level
        A level name (``"warn"``, ``"ERROR"``, ...) or a :mod:`logging` level number.
    service
        The service that logs (Kestrel's series are per service); must not be empty.
    message
        The text; Kestrel's pattern detector learns message templates from it.
    type, session_id, user_id
        The event type (``llm_request``, ``tool_executed``, ...) and who it concerns.
    context
        Any other fields (JSON-serialisable; others are written with ``str``).
    performance_data
        ``{"operation": ..., "duration_ms": ...}``: Kestrel's latency series per operation.
    """
    if not service:
        raise ValueError("service: must not be empty")
    rec: dict[str, Any] = {
        "timestamp": float(timestamp),
        "level": level_name(level),
        "service": service,
        "message": message,
    }
    for name, value in (("type", type), ("session_id", session_id), ("user_id", user_id)):
        if value is not None:
            rec[name] = value
    if context:
        rec["context"] = dict(context)
    if performance_data:
        rec["performance_data"] = dict(performance_data)
    return rec


def encode(record: Mapping[str, Any]) -> bytes:
    """The record as one line of JSON (no newline); values JSON cannot hold become ``str``."""
    return orjson.dumps(record, default=str, option=orjson.OPT_NON_STR_KEYS)


def key_of(value: bytes) -> bytes | None:
    """The Kafka key of an encoded record: its ``service`` (``None`` if it has none)."""
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    service = doc.get("service") if isinstance(doc, dict) else None
    return service.encode() if isinstance(service, str) and service else None
