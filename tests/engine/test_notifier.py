"""engine.runtime.notifier: what the notifier tells the alerts DLQ when a group it gave up on gets
through later (no service needed: a fake channel, an in-memory DLQ)."""

from __future__ import annotations

import asyncio

from msgspec.structs import replace
from prometheus_client import CollectorRegistry

from alert_channels.errors import RetryableDeliveryError
from alert_channels.retry import RetryPolicy
from engine.config import Config
from engine.model.alert import AlertStatus
from engine.model.notification import DeadNotification, DeliveredLater, Notification, Superseded
from engine.notify import RoutingSettings, Silences
from engine.runtime.channels import ChannelRoute
from engine.runtime.metrics import KestrelMetrics
from engine.runtime.notifier import Notifier
from tests.alert_channel_fakes import make_alert

T0 = 1_700_000_000.0

DlqRecord = DeadNotification | DeliveredLater | Superseded


class FlakyChannel:
    """Fails every attempt while ``down``; records what it delivered."""

    name = "ops"

    def __init__(self) -> None:
        self.down = True
        self.delivered: list[Notification] = []

    async def send(self, notification: Notification) -> None:
        if self.down:
            raise RetryableDeliveryError("503 Service Unavailable", status_code=503)
        self.delivered.append(notification)


class Harness:
    def __init__(self) -> None:
        self.now = T0
        self.channel = FlakyChannel()
        self.dlq: list[DlqRecord] = []
        routing = RoutingSettings(group_wait_seconds=0, group_interval_seconds=1)
        route = ChannelRoute(self.channel, RetryPolicy(max_attempts=1))
        metrics = KestrelMetrics(CollectorRegistry(), topics=(), detectors=(), channels=("ops",))
        self.notifier = Notifier(
            Config(routing=routing),
            {"ops": route},
            Silences(),
            metrics=metrics,
            clock=lambda: self.now,
            dead_letter=self.record,
            save_state=self.save,
        )
        self.notifier.activate(None)

    async def record(self, record: DlqRecord) -> None:
        self.dlq.append(record)

    async def save(self, state: bytes, *, durable: bool = False) -> None:
        pass

    async def flush_at(self, now: float) -> None:
        """Flush at ``now`` and wait for the deliveries it started."""
        self.now = now
        await self.notifier.flush()
        for _ in range(100):
            await asyncio.sleep(0)


async def test_a_group_that_gets_through_later_leaves_nothing_to_replay() -> None:
    h = Harness()
    firing = make_alert()
    await h.notifier.ingest([firing])
    await h.flush_at(T0)  # the firing notification is given up on
    await h.notifier.ingest([replace(firing, status=AlertStatus.RESOLVED, ended_at=T0 + 5)])
    await h.flush_at(T0 + 5)  # and so is the resolved one
    dead = [r for r in h.dlq if isinstance(r, DeadNotification)]
    assert [d.notification.status for d in dead] == [AlertStatus.FIRING, AlertStatus.RESOLVED]
    first, second = (d.notification.notification_id for d in dead)
    assert first != second

    h.channel.down = False
    await h.flush_at(T0 + 10)  # the group, resolved, gets through
    assert [n.notification_id for n in h.channel.delivered] == [second]
    markers = h.dlq[len(dead) :]
    assert [type(m) for m in markers] == [Superseded, DeliveredLater]
    superseded, delivered = markers
    assert isinstance(superseded, Superseded) and isinstance(delivered, DeliveredLater)
    assert (superseded.notification_id, superseded.by) == (first, second)
    assert delivered.notification_id == second
    # Nothing more to tell: a later success of the group adds no marker.
    await h.notifier.ingest([make_alert(started_at=T0 + 20)])
    await h.flush_at(T0 + 20)
    assert len(h.channel.delivered) == 2 and h.dlq[len(dead) + 2 :] == []


async def test_a_notification_given_up_on_again_is_remembered_once() -> None:
    h = Harness()
    await h.notifier.ingest([make_alert()])
    for t in range(0, 6, 2):  # the same notification fails at three flushes
        await h.flush_at(T0 + t)
    dead = [r for r in h.dlq if isinstance(r, DeadNotification)]
    assert len(dead) == 3 and len({d.notification.notification_id for d in dead}) == 1
    h.channel.down = False
    await h.flush_at(T0 + 10)
    assert [type(m) for m in h.dlq[3:]] == [DeliveredLater]  # one marker, not three
