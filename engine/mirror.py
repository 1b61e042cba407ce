"""Mirror hot events and alert transitions to Redis Streams, for live UIs.

One stream per service (``<prefix>events:<service>``) and one for alerts (``<prefix>alerts``).
Entries older than ``retention_seconds`` are trimmed on every write (``XADD ... MINID ~``) and each
key also expires after the retention, so an abandoned stream disappears. Writes of one batch go in
one pipeline (one round trip).

Redis being down never stops detection: a failed write is counted, and for ``retry_after_seconds``
the following writes are skipped (and counted) instead of waiting on timeouts; then the client
reconnects by itself on the next write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from alert_channels.alert import Alert
from engine.events import LogEvent
from engine.metrics import KestrelMetrics

__all__ = ["RedisMirror"]

log = logging.getLogger(__name__)


class RedisMirror:
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
    metrics, clock:
        Injected metrics and wall clock (epoch seconds).
    """

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str,
        hot_types: Sequence[str],
        retention_seconds: float,
        retry_after_seconds: float,
        metrics: KestrelMetrics,
        clock: Callable[[], float],
    ) -> None:
        self._client = client
        self._prefix = prefix
        self.hot_types = frozenset(hot_types)
        self._retention_ms = int(retention_seconds * 1000)
        self._ttl = max(1, int(retention_seconds))
        self._retry_after = retry_after_seconds
        self._metrics = metrics
        self._clock = clock
        self._down_until = 0.0
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

    async def write(self, events: Sequence[LogEvent], alerts: Sequence[Alert]) -> None:
        """Mirror one batch; never raises on Redis errors."""
        count = len(events) + len(alerts)
        if not count:
            return
        now = self._clock()
        if now < self._down_until:
            self._metrics.mirror.labels("skipped").inc(count)
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
                "event": orjson.dumps(ev.raw),
            }
            pipe.xadd(key, fields, minid=minid, approximate=True)
        for alert in alerts:
            keys.add(self.alerts_key)
            pipe.xadd(
                self.alerts_key,
                {"status": alert.status.value, "alert": orjson.dumps(alert.to_dict())},
                minid=minid,
                approximate=True,
            )
        for key in keys:
            pipe.expire(key, self._ttl)
        try:
            await pipe.execute()
        except (RedisError, OSError) as exc:
            self._down_until = now + self._retry_after
            self._metrics.mirror.labels("failed").inc(count)
            if self.healthy:
                log.warning(
                    "redis mirror: write failed, skipping writes for %.1fs: %s",
                    self._retry_after,
                    type(exc).__name__,
                )
            self.healthy = False
            return
        if not self.healthy:
            log.info("redis mirror: writing again")
        self.healthy = True
        self._metrics.mirror.labels("written").inc(count)
