"""The alerts dead-letter topic: notifications given up on, and ``kestrel dlq replay``.

A record on ``topics.alerts_dlq`` is keyed by the notification id; its JSON value says which
channel gave up, with what error, after how many attempts, and holds the whole notification.
Replaying appends a ``replayed`` marker for each notification it delivers, so the topic stays an
append-only log: a notification is pending while its latest record is a failure.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from alert_channels.retry import deliver_with_retries
from engine.config import Config
from engine.model.notification import DeadNotification, notification_from_dict
from engine.runtime.channels import build_routes
from engine.runtime.kafka_clients import client_options, start_client
from engine.runtime.topic_view import read_latest

__all__ = ["pending", "replay"]


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


async def replay(cfg: Config, channel: str | None) -> tuple[int, int]:
    """Re-deliver the pending dead notifications (of ``channel`` only, if given).

    Returns ``(delivered, failed)``; both are recorded on the topic.
    """

    topic = cfg.topics.alerts_dlq
    todo = pending(await read_latest(cfg.kafka, topic))
    async with httpx.AsyncClient() as http:
        routes = {r.channel.name: r for r in build_routes(cfg, http)}
        producer = AIOKafkaProducer(**client_options(cfg.kafka))
        await start_client(producer, cfg.kafka)
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
