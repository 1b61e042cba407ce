"""Mirror hot events and alert transitions to Redis Streams, for live UIs.

One stream per service (``<prefix>events:<service>``) and one for alerts (``<prefix>alerts``).
Entries older than ``retention_seconds`` are trimmed on every write (``XADD ... MINID ~``) and each
key also expires after the retention, so an abandoned stream disappears. Writes of one batch go in
one pipeline (one round trip).

Redis being down never stops detection: the mirror is a best-effort :class:`~engine.sinks.base.Sink`
that never signals backpressure. A failed write is counted (``failed``), and for
``retry_after_seconds`` the following writes are skipped (and counted, ``skipped``) instead of
waiting on timeouts; then the client reconnects by itself on the next write.

:func:`redis_client` makes the client from ``[redis]``: a ``redis://`` or ``rediss://`` (TLS) URL,
with a password if it holds one. The URL is a secret: messages show it without the password.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from engine.config import RedisSettings
from engine.model.alert import Alert
from engine.model.events import LogEvent
from engine.sinks.base import Sink, SinkBatch

__all__ = ["MIRROR_OUTCOMES", "RedisMirror", "redis_client"]

#: Outcomes the mirror counts, per event or alert.
MIRROR_OUTCOMES = ("written", "failed", "skipped")

log = logging.getLogger(__name__)

#: What a mirrored event holds when even the standard library cannot write it.
TOO_DEEP = b'{"kestrel_error":"event nested too deep to write"}'


def _event_json(raw: Mapping[str, Any]) -> bytes:
    """The event as JSON.

    orjson reads documents nested up to 1,024 levels but writes only 254, so an event nested
    deeper goes through the standard library, and one deeper still than that writes (about
    1,000 levels) is replaced by :data:`TOO_DEEP`, so one odd event cannot stop a batch.
    """
    try:
        return orjson.dumps(raw)
    except orjson.JSONEncodeError:
        try:
            return json.dumps(raw, ensure_ascii=False, separators=(",", ":")).encode()
        except (RecursionError, ValueError):
            return TOO_DEEP


def redis_client(settings: RedisSettings) -> Redis:
    """A client for the mirror: ``settings.url`` with its timeouts and, for ``rediss://``,
    its TLS files (``ssl_cafile`` to trust, ``ssl_certfile``/``ssl_keyfile`` to show).

    It connects on first use, not here.
    """
    options: dict[str, Any] = {}
    if settings.uses_tls:
        options = {
            "ssl_cert_reqs": "required",
            "ssl_ca_certs": settings.ssl_cafile,
            "ssl_certfile": settings.ssl_certfile,
            "ssl_keyfile": settings.ssl_keyfile,
            "ssl_check_hostname": settings.ssl_check_hostname,
        }
    return Redis.from_url(
        settings.url.get_secret_value(),
        socket_timeout=settings.timeout_seconds,
        socket_connect_timeout=settings.timeout_seconds,
        **options,
    )


class RedisMirror(Sink):
    """Writes hot events and alerts to Redis Streams (see module docstring).

    Parameters
    ----------
    client:
        An injected ``redis.asyncio.Redis``.
    prefix:
        Prefix of every key written.
    hot_types:
        Log event ``type`` values to mirror.
    retention_seconds:
        Age after which stream entries are trimmed and idle keys expire.
    retry_after_seconds:
        How long to skip writes after a failure.
    clock:
        Injected wall clock (epoch seconds).
    target:
        Where the client writes, as messages may show it (no password: see
        :attr:`engine.config.RedisSettings.shown_url`).
    """

    name = "redis"

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str,
        hot_types: Sequence[str],
        retention_seconds: float,
        retry_after_seconds: float,
        clock: Callable[[], float],
        target: str = "redis",
    ) -> None:
        super().__init__()
        self.counts = dict.fromkeys(MIRROR_OUTCOMES, 0)
        self._client = client
        self._prefix = prefix
        self.hot_types = frozenset(hot_types)
        self._retention_ms = int(retention_seconds * 1000)
        self._ttl = max(1, int(retention_seconds))
        self._retry_after = retry_after_seconds
        self._clock = clock
        self.target = target
        self._down_until = 0.0
        self._events: list[LogEvent] = []
        self._alerts: list[Alert] = []
        self.healthy = True

    def events_key(self, service: str) -> str:
        """The stream key of a service's hot events."""
        return f"{self._prefix}events:{service}"

    @property
    def alerts_key(self) -> str:
        """The stream key of alert transitions."""
        return f"{self._prefix}alerts"

    async def close(self) -> None:
        """Close the Redis connections."""
        await self._client.aclose()

    def add(self, batch: SinkBatch) -> None:
        """Buffer the batch's hot log events (by ``type``) and its alert transitions."""
        hot = self.hot_types
        self._events.extend(ev for ev in batch.logs if ev.type in hot)
        self._alerts.extend(batch.alerts)

    async def flush(self) -> None:
        """Mirror what was added, in one pipeline; never raises on Redis errors."""
        events, alerts = self._events, self._alerts
        self._events, self._alerts = [], []
        await self._write(events, alerts)

    async def _write(self, events: Sequence[LogEvent], alerts: Sequence[Alert]) -> None:
        count = len(events) + len(alerts)
        if not count:
            return
        now = self._clock()
        if now < self._down_until:
            self.count("skipped", count)
            return
        minid = str(int(now * 1000) - self._retention_ms)
        pipe = self._client.pipeline(transaction=False)
        keys: set[str] = set()
        for ev in events:
            key = self.events_key(ev.service)
            keys.add(key)
            fields: dict[Any, Any] = {
                "ts": repr(ev.ts),
                "type": ev.type or "",
                "level": ev.level,
                "event": _event_json(ev.raw),
            }
            pipe.xadd(key, fields, minid=minid, approximate=True)
        for alert in alerts:
            keys.add(self.alerts_key)
            pipe.xadd(
                self.alerts_key,
                {"status": alert.status.value, "alert": alert.to_json()},
                minid=minid,
                approximate=True,
            )
        for key in keys:
            pipe.expire(key, self._ttl)
        try:
            await pipe.execute()
        except (RedisError, OSError) as exc:
            self._down_until = now + self._retry_after
            self.count("failed", count)
            if self.healthy:
                log.warning(
                    "redis mirror: write to %s failed, skipping writes for %.1fs: %s",
                    self.target,
                    self._retry_after,
                    type(exc).__name__,
                )
            self.healthy = False
            return
        if not self.healthy:
            log.info("redis mirror: writing again")
        self.healthy = True
        self.count("written", count)
