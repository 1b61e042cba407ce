"""Live hot events from the Redis mirror's streams, filtered: what ``GET /api/v1/tail`` sends.

The mirror (:mod:`engine.sinks.redis_mirror`) writes one stream per service,
``<prefix>events:<service>``, each entry with ``ts``, ``type``, ``level`` and the ``event`` JSON.
:func:`tail` reads them with ``XREAD`` (blocking up to a second at a time), finds the streams of
services that appear later by scanning the key space every few seconds, and yields the entries
that pass a :class:`TailFilter`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from engine.model.levels import level_number

__all__ = ["TailFilter", "tail"]

#: How often the key space is scanned for the streams of new services, in seconds.
RESCAN_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class TailFilter:
    """Which hot events to pass; ``None`` passes any.

    ``service`` and ``type`` match exactly, ``session`` matches the event's ``session_id`` (or
    ``session``), ``level`` is the least level (``WARNING`` passes warnings and errors).

    >>> f = TailFilter(level="warning", session="s-1")
    >>> f.passes({"level": "ERROR", "type": "x", "event": {"session_id": "s-1"}})
    True
    >>> f.passes({"level": "INFO", "type": "x", "event": {"session_id": "s-1"}})
    False
    """

    service: str | None = None
    type: str | None = None
    session: str | None = None
    level: str | None = None

    def passes(self, entry: dict[str, Any]) -> bool:
        """Whether a decoded entry (see :func:`tail`) passes."""
        if self.service is not None and entry.get("service") != self.service:
            return False
        if self.type is not None and entry.get("type") != self.type:
            return False
        if self.level is not None and level_number(str(entry.get("level", ""))) < level_number(
            self.level
        ):
            return False
        if self.session is not None:
            event = entry.get("event")
            if not isinstance(event, dict):
                return False
            session = event.get("session_id", event.get("session"))
            if session != self.session:
                return False
        return True


def _decode(key: str, prefix: str, entry_id: bytes, fields: dict[bytes, bytes]) -> dict[str, Any]:
    try:
        event = orjson.loads(fields.get(b"event", b"null"))
    except orjson.JSONDecodeError:
        event = None
    try:
        ts = float(fields.get(b"ts", b"nan"))
    except ValueError:
        ts = float("nan")
    return {
        "id": entry_id.decode(),
        "service": key[len(prefix) :],
        "ts": ts,
        "type": fields.get(b"type", b"").decode(errors="replace"),
        "level": fields.get(b"level", b"").decode(errors="replace"),
        "event": event,
    }


async def tail(
    client: Redis,
    events_prefix: str,
    where: TailFilter,
    *,
    since_seconds: float = 0.0,
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[dict[str, Any]]:
    """Yield hot events as they are mirrored, from ``since_seconds`` ago on, for ever.

    ``events_prefix`` is the mirror's ``<prefix>events:``. Each item: ``id`` (the stream entry
    id), ``service``, ``ts`` (event time, epoch seconds), ``type``, ``level``, ``event`` (the
    whole event as logged). Redis errors propagate.
    """
    start = f"{max(0, int((clock() - since_seconds) * 1000))}-0"
    positions: dict[str, str] = {}
    scanned = 0.0
    while True:
        now = time.monotonic()
        if now - scanned >= RESCAN_SECONDS:
            scanned = now
            if where.service is not None:
                keys = [events_prefix + where.service]
            else:
                keys = [
                    k.decode() if isinstance(k, bytes) else str(k)
                    async for k in client.scan_iter(match=events_prefix + "*", count=500)
                ]
            for key in keys:
                positions.setdefault(key, start)
        if not positions:
            await asyncio.sleep(1.0)
            continue
        answer: Any = await client.xread(dict(positions), count=500, block=1000)  # type: ignore[arg-type]
        for raw_key, entries in answer or ():
            key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
            for entry_id, fields in entries:
                positions[key] = entry_id.decode()
                item = _decode(key, events_prefix, entry_id, fields)
                if where.passes(item):
                    yield item
