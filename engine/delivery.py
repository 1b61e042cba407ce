"""Delivering alert transitions to the configured channels.

The delivery agent (see :mod:`engine.app`) consumes ``kestrel.alerts`` and hands each alert to a
:class:`Deliverer`, which sends it to every channel concurrently (a slow channel does not hold up
the others), each with its own retry policy, and counts the outcome.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from alert_channels.alert import Alert, AlertStatus
from alert_channels.base import (
    Channel,
    DeliveryOutcome,
    Notification,
    RetryPolicy,
    deliver_with_retries,
)
from engine.metrics import KestrelMetrics

__all__ = ["ChannelRoute", "Deliverer"]

log = logging.getLogger("kestrel.delivery")


@dataclass(frozen=True, slots=True)
class ChannelRoute:
    """A channel with its delivery settings."""

    channel: Channel
    policy: RetryPolicy
    send_resolved: bool = True


class Deliverer:
    """Sends alerts to channels and records outcomes in ``metrics``."""

    def __init__(
        self,
        routes: Sequence[ChannelRoute],
        *,
        metrics: KestrelMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.routes = tuple(routes)
        self._metrics = metrics
        self._clock = clock

    @property
    def channel_names(self) -> list[str]:
        """Names of the configured channels."""
        return [r.channel.name for r in self.routes]

    async def deliver(self, alert: Alert) -> list[DeliveryOutcome]:
        """Send ``alert`` to every channel that wants it; never raises on delivery failures."""
        routes = [
            r for r in self.routes if r.send_resolved or alert.status is not AlertStatus.RESOLVED
        ]
        return list(await asyncio.gather(*(self._one(r, alert) for r in routes)))

    async def _one(self, route: ChannelRoute, alert: Alert) -> DeliveryOutcome:
        name = route.channel.name
        started = time.perf_counter()
        outcome = await deliver_with_retries(
            route.channel, Notification.single(alert, receiver=name), policy=route.policy
        )
        self._metrics.delivery_seconds.labels(name).observe(time.perf_counter() - started)
        if outcome.delivered:
            self._metrics.deliveries.labels(name, "ok").inc()
        else:
            self._metrics.deliveries.labels(name, "failed").inc()
            log.error(
                "channel %s: gave up on %s after %d attempt(s): %s",
                name,
                alert.notification_id,
                outcome.attempts,
                outcome.error,
            )
        if outcome.attempts > 1:
            self._metrics.deliveries.labels(name, "retried").inc(outcome.attempts - 1)
        return outcome
