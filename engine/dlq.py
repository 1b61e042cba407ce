"""The alerts dead-letter topic: notifications given up on, and ``kestrel dlq replay``.

A record on ``topics.alerts_dlq`` is keyed by the notification id; its JSON value says which
channel gave up, with what error, after how many attempts, and holds the whole notification.
Replaying appends a ``replayed`` marker for each notification it delivers, so the topic stays an
append-only log: a notification is pending while its latest record is a failure.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from alert_channels.alert import Alert
from alert_channels.base import Notification, deliver_with_retries
from engine.config import Config
from engine.topic_view import read_latest

__all__ = [
    "DeadNotification",
    "DeliveredLater",
    "notification_from_dict",
    "notification_to_dict",
    "replay",
]


def notification_to_dict(n: Notification) -> dict[str, Any]:
    """A JSON-serialisable form of a notification."""
    return {
        "receiver": n.receiver,
        "group_key": n.group_key,
        "group_labels": dict(n.group_labels),
        "alerts": [a.to_dict() for a in n.alerts],
        "external_url": n.external_url,
    }


def notification_from_dict(data: Mapping[str, Any]) -> Notification:
    """Parse :func:`notification_to_dict` output; ``KeyError``/``ValueError`` on bad input."""
    return Notification(
        receiver=str(data["receiver"]),
        group_key=str(data["group_key"]),
        group_labels={str(k): str(v) for k, v in dict(data["group_labels"]).items()},
        alerts=tuple(Alert.from_dict(a) for a in data["alerts"]),
        external_url=data.get("external_url"),
    )


@dataclass(frozen=True, slots=True)
class DeadNotification:
    """A notification a channel gave up on."""

    notification: Notification
    channel: str
    error: str
    attempts: int
    failed_at: float

    @property
    def key(self) -> bytes:
        """The record key: the notification id."""
        return self.notification.notification_id.encode()

    def to_json(self) -> bytes:
        """The record value."""
        return orjson.dumps(
            {
                "status": "failed",
                "channel": self.channel,
                "error": self.error,
                "attempts": self.attempts,
                "failed_at": self.failed_at,
                "notification": notification_to_dict(self.notification),
            }
        )


@dataclass(frozen=True, slots=True)
class DeliveredLater:
    """A dead-lettered notification that a later retry delivered: nothing left to replay."""

    notification_id: str
    channel: str
    delivered_at: float

    @property
    def key(self) -> bytes:
        """The record key: the notification id."""
        return self.notification_id.encode()

    def to_json(self) -> bytes:
        """The record value."""
        return orjson.dumps(
            {"status": "delivered", "channel": self.channel, "delivered_at": self.delivered_at}
        )


def pending(latest: Mapping[bytes, bytes]) -> dict[bytes, dict[str, Any]]:
    """The notifications whose latest record (by key, see :func:`read_latest`) is a failure."""
    out: dict[bytes, dict[str, Any]] = {}
    for key, value in latest.items():
        try:
            doc = orjson.loads(value)
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict) and doc.get("status") == "failed":
            out[key] = doc
    return out


async def replay(cfg: Config, bootstrap: str, channel: str | None) -> tuple[int, int]:
    """Re-deliver the pending dead notifications (of ``channel`` only, if given).

    Returns ``(delivered, failed)``; both are recorded on the topic.
    """
    from engine.channels import build_routes  # the channels as the worker builds them

    topic = cfg.topics.alerts_dlq
    todo = pending(await read_latest(bootstrap, topic))
    async with httpx.AsyncClient() as http:
        routes = {r.channel.name: r for r in build_routes(cfg, http)}
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
        await producer.start()
        delivered = failed = 0
        try:
            for key, doc in todo.items():
                name = str(doc.get("channel"))
                if channel is not None and name != channel:
                    continue
                route = routes.get(name)
                notification = notification_from_dict(doc["notification"])
                if route is None:
                    print(f"kestrel dlq: channel {name!r} is not configured; kept", file=sys.stderr)
                    failed += 1
                    continue
                outcome = await deliver_with_retries(
                    route.channel, notification, policy=route.policy
                )
                if outcome.delivered:
                    delivered += 1
                    marker = {"status": "replayed", "channel": name, "replayed_at": time.time()}
                    await producer.send_and_wait(topic, orjson.dumps(marker), key=key)
                else:
                    failed += 1
                    dead = DeadNotification(
                        notification,
                        name,
                        str(outcome.error),
                        int(doc.get("attempts", 0)) + outcome.attempts,
                        time.time(),
                    )
                    await producer.send_and_wait(topic, dead.to_json(), key=key)
        finally:
            await producer.stop()
    return delivered, failed


def dlq_replay_command(cfg: Config, channel: str | None) -> int:
    """``kestrel dlq replay``: exit 0 when everything pending was delivered."""
    delivered, failed = asyncio.run(replay(cfg, cfg.kafka.bootstrap_servers, channel))
    print(f"kestrel dlq replay: delivered={delivered} failed={failed}")
    return 0 if failed == 0 else 1
