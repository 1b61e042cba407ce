"""The Redis mirror against a real Redis that goes down and comes back."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis
from redis.asyncio import Redis

from engine.model.alert import Alert, AlertStatus, Severity
from engine.model.events import LogEvent
from engine.sinks import RedisMirror, SinkBatch
from engine.sinks.redis_mirror import TOO_DEEP
from tests.testkit import RedisServer

pytestmark = pytest.mark.integration  # starts real services itself


class _Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    s = RedisServer(tmp_path).start()
    yield s
    s.stop()


def _event(i: int, etype: str = "thought") -> LogEvent:
    raw = {"timestamp": 1.0 * i, "level": "INFO", "service": "agent", "message": "m", "type": etype}
    return LogEvent(1.0 * i, "INFO", "agent", "m", etype, None, None, raw)


def _alert() -> Alert:
    return Alert(
        "f" * 16, AlertStatus.FIRING, Severity.WARNING, "cpu", {}, "zscore", 9.0, 1.0, 8.0,
        1.0, None, "cpu: 9 vs expected 1",
    )  # fmt: skip


async def test_the_mirror_counts_what_it_loses_and_reconnects_by_itself(
    server: RedisServer,
) -> None:
    clock = _Clock()
    client = Redis(
        host="127.0.0.1", port=server.port, socket_timeout=0.5, socket_connect_timeout=0.5
    )
    mirror = RedisMirror(
        client,
        prefix="t:",
        hot_types=("thought",),
        retention_seconds=60,
        retry_after_seconds=2,
        clock=clock,
    )

    async def write(events: list[LogEvent], alerts: list[Alert]) -> None:
        mirror.add(SinkBatch(logs=events, alerts=alerts))
        await mirror.flush()

    def count(outcome: str) -> int:
        return mirror.counts[outcome]

    await write([_event(1), _event(2), _event(9, "task_created")], [_alert()])  # one not hot
    assert count("written") == 3 and mirror.healthy
    check = redis.Redis(host="127.0.0.1", port=server.port)
    assert check.xlen("t:events:agent") == 2 and check.xlen("t:alerts") == 1
    assert 0 < check.ttl("t:events:agent") <= 60

    server.stop()
    await write([_event(3)], [])  # fails fast, counted, no exception
    assert count("failed") == 1 and not mirror.healthy
    await write([_event(4)], [])  # within retry_after: skipped without waiting
    assert count("skipped") == 1

    server.start()
    clock.now += 3  # past retry_after: the next write reconnects by itself
    await write([_event(5)], [])
    assert count("written") == 4 and mirror.healthy
    check = redis.Redis(host="127.0.0.1", port=server.port)
    assert check.xlen("t:events:agent") == 1  # a fresh server: only what came after
    await client.aclose()


async def test_entries_older_than_the_retention_are_trimmed(server: RedisServer) -> None:
    clock = _Clock()
    client = Redis(host="127.0.0.1", port=server.port)
    mirror = RedisMirror(
        client,
        prefix="t:",
        hot_types=("thought",),
        retention_seconds=60,
        retry_after_seconds=2,
        clock=clock,
    )
    # Entries get ids from Redis' own clock; MINID trims by the mirror's clock, so moving the
    # mirror's clock two retentions ahead makes everything written so far "old".
    clock.now = time.time()
    for i in range(200):
        mirror.add(SinkBatch(logs=[_event(i)]))
        await mirror.flush()
    clock.now += 120
    mirror.add(SinkBatch(logs=[_event(999), _event(1000, "debug_dump")]))
    await mirror.flush()
    check = redis.Redis(host="127.0.0.1", port=server.port)
    assert check.xlen("t:events:agent") < 200  # trimmed (approximately, as XADD MINID ~ does)
    await client.aclose()


async def test_an_event_nested_deeper_than_orjson_writes_is_mirrored(
    server: RedisServer,
) -> None:
    """orjson reads 1,024 levels but writes 254: such an event raised TypeError out of flush()
    and so out of the worker's batch handler."""
    client = Redis(host="127.0.0.1", port=server.port)
    mirror = RedisMirror(
        client,
        prefix="t:",
        hot_types=("thought",),
        retention_seconds=60,
        retry_after_seconds=2,
        clock=_Clock(),
    )
    events = []
    for depth in (300, 1020):
        deep = orjson.loads(b"[" * depth + b"]" * depth)
        event = _event(depth)
        event.raw["deep"] = deep
        events.append(event)
    mirror.add(SinkBatch(logs=events))
    await mirror.flush()
    assert mirror.counts["written"] == 2
    check = redis.Redis(host="127.0.0.1", port=server.port)
    first, second = (fields[b"event"] for _, fields in check.xrange("t:events:agent"))
    assert json.loads(first)["deep"] == orjson.loads(b"[" * 300 + b"]" * 300)
    assert second == TOO_DEEP
    await client.aclose()
