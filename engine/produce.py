"""``kestrel produce``: publish events from a JSON-lines file or a built-in scenario."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from engine.config import Config
from engine.scenarios import SCENARIOS

__all__ = ["publish", "run_produce"]


def _chunks(
    items: Iterable[tuple[bytes | None, bytes]], size: int
) -> Iterator[tuple[bytes | None, bytes]]:
    """Group ``(key, json)`` items into messages of ``size`` events (a JSON array when > 1)."""
    if size <= 1:
        yield from items
        return
    buf: list[bytes] = []
    key: bytes | None = None
    for k, value in items:
        key = key or k
        buf.append(value)
        if len(buf) >= size:
            yield key, b"[" + b",".join(buf) + b"]"
            buf, key = [], None
    if buf:
        yield key, b"[" + b",".join(buf) + b"]"


async def publish(
    bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes]]
) -> int:
    """Send ``(key, value)`` messages to ``topic``; returns how many were sent."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    n = 0
    try:
        for key, value in messages:
            await producer.send(topic, value, key=key)
            n += 1
        await producer.flush()
    finally:
        await producer.stop()
    return n


def run_produce(
    cfg: Config,
    *,
    topic: str,
    file: Path | None,
    scenario: str | None,
    broker: str | None,
    minutes: float,
    batch: int,
) -> int:
    """Publish a file (one event per line) or a scenario to ``topic``."""
    bootstrap = broker or cfg.kafka.bootstrap_servers
    items: Iterable[tuple[bytes | None, bytes]]
    if file is not None:
        lines = file.read_bytes().splitlines()
        items = [(None, line) for line in lines if line.strip()]
    else:
        assert scenario is not None
        gen = SCENARIOS.get(scenario)
        if gen is None:
            print(
                f"kestrel produce: unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}",
                file=sys.stderr,
            )
            return 2
        start = time.time() - minutes * 60
        items = [
            (key, orjson.dumps(ev))
            for _, key, ev in gen(random.Random(7), start=start, minutes=minutes)
        ]
    n = asyncio.run(publish(bootstrap, topic, _chunks(items, batch)))
    print(f"kestrel produce: sent {n} message(s) to {topic}")
    return 0
