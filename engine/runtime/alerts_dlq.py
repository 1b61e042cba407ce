"""The alerts dead-letter topic: notifications given up on, and ``kestrel dlq replay``.

A record on ``topics.alerts_dlq`` is keyed by the notification id; its JSON value says which
channel gave up, with what error, after how many attempts, and holds the whole notification.
The topic stays an append-only log: a notification is pending while its latest record is a
failure, and these markers end that: ``replayed`` (by the replay), ``delivered`` (a later retry
of the worker got through) and ``superseded`` (a later notification of the same group did).

A dead notification is not always something to send again: the notifier keeps the group and
retries it at its next flush (as the group is then), so the replay asks the notifier's saved
state (:meth:`engine.notify.Dispatcher.fate_of_dead`) first. It sends only what nothing else will
tell the receiver, and of a group only the newest dead notification:

- the receiver got a later notification of the group: ``superseded`` (marked, not sent);
- the notifier still holds the group and will notify it itself: ``held`` (left pending, so it is
  not sent twice; the worker marks it once it got through);
- otherwise the newest dead notification of the group is sent (``replayed``) and any older one
  is ``superseded`` by it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from alert_channels.retry import deliver_with_retries
from engine.config import Config
from engine.model.notification import DeadNotification, Superseded, notification_from_dict
from engine.notify import Dispatcher, build_dispatcher
from engine.runtime.channels import build_routes
from engine.runtime.kafka_clients import client_options, start_client
from engine.runtime.topic_view import read_last, read_latest

__all__ = ["ReplayPlan", "ReplayResult", "pending", "plan_replay", "replay"]


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


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    """What :func:`replay` does with each pending dead notification (by record key).

    ``send``: to deliver, oldest failure first; ``superseded``: to mark, with the id of the
    notification that supersedes it (``""`` when the receiver already got a later one); ``held``:
    left pending, as the notifier still holds their groups and will notify them itself.
    """

    send: list[bytes] = field(default_factory=list)
    superseded: dict[bytes, str] = field(default_factory=dict)
    held: list[bytes] = field(default_factory=list)


def plan_replay(
    todo: Mapping[bytes, Mapping[str, Any]],
    dispatcher: Dispatcher | None,
    channel: str | None = None,
) -> ReplayPlan:
    """Decide what to do with the pending dead notifications ``todo`` (see the module docstring).

    Parameters
    ----------
    todo
        The pending records by key, as :func:`pending` returns them.
    dispatcher
        The notifier's last saved state, or ``None`` when there is none (then nothing is known to
        be held or superseded by a delivery: the newest of each group is sent).
    channel
        Only the notifications of this channel (``None``: all).

    >>> def dead(group, failed_at):
    ...     return {"channel": "ops", "failed_at": failed_at,
    ...             "notification": {"group_key": group}}
    >>> todo = {b"a1": dead("a", 10.0), b"a2": dead("a", 20.0), b"b1": dead("b", 15.0)}
    >>> plan_replay(todo, None)
    ReplayPlan(send=[b'b1', b'a2'], superseded={b'a1': 'a2'}, held=[])
    """
    plan = ReplayPlan()
    newest: dict[tuple[str, str], tuple[float, bytes]] = {}
    for key, doc in sorted(todo.items(), key=lambda item: _failed_at(item[1])):
        name = str(doc.get("channel"))
        if channel is not None and name != channel:
            continue
        group_key = str(doc.get("notification", {}).get("group_key"))
        failed_at = _failed_at(doc)
        fate = "replay"
        if dispatcher is not None:
            fate = dispatcher.fate_of_dead(name, group_key, failed_at)
        if fate == "superseded":
            plan.superseded[key] = ""
        elif fate == "held":
            plan.held.append(key)
        else:
            older = newest.get((name, group_key))
            if older is not None:
                plan.superseded[older[1]] = key.decode()
            newest[(name, group_key)] = (failed_at, key)
    plan.send.extend(key for _, key in sorted(newest.values()))
    return plan


def _failed_at(doc: Mapping[str, Any]) -> float:
    try:
        return float(doc.get("failed_at", 0.0))
    except (TypeError, ValueError):
        return 0.0


def _saved_dispatcher(cfg: Config, saved: bytes | None) -> Dispatcher | None:
    """The notifier's dispatcher as last saved, or ``None`` if there is no usable state."""
    if not saved:
        return None
    channels = {c.name: c.send_resolved for c in cfg.channels}
    try:
        state = orjson.loads(saved)
        return build_dispatcher(cfg.routing, channels, (), cfg.inhibit_rules, state=state)
    except (orjson.JSONDecodeError, ValueError, KeyError, TypeError) as exc:
        print(f"kestrel dlq: the notifier's saved state is not usable ({exc})", file=sys.stderr)
        return None


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """How many pending dead notifications :func:`replay` delivered, failed to deliver (again),
    marked superseded, and left to the notifier (held)."""

    delivered: int = 0
    failed: int = 0
    superseded: int = 0
    held: int = 0


async def replay(cfg: Config, channel: str | None) -> ReplayResult:
    """Re-deliver the pending dead notifications (of ``channel`` only, if given) that nothing else
    will deliver; see the module docstring. Every outcome but ``held`` is recorded on the topic.
    """

    topic = cfg.topics.alerts_dlq
    todo = pending(await read_latest(cfg.kafka, topic))
    saved = await read_last(cfg.kafka, cfg.notify_state_topic) if todo else None
    plan = plan_replay(todo, _saved_dispatcher(cfg, saved), channel)
    delivered = failed = 0
    async with httpx.AsyncClient() as http:
        routes = {r.channel.name: r for r in build_routes(cfg, http)}
        producer = AIOKafkaProducer(**client_options(cfg.kafka))
        await start_client(producer, cfg.kafka)
        try:
            for key, by in plan.superseded.items():
                name = str(todo[key].get("channel"))
                stale = Superseded(key.decode(), name, by, time.time())
                await producer.send_and_wait(topic, stale.to_json(), key=key)
            for key in plan.send:
                doc = todo[key]
                name = str(doc.get("channel"))
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
    return ReplayResult(delivered, failed, len(plan.superseded), len(plan.held))
