"""``kestrel produce``: publish events from a JSON-lines file or a built-in scenario.

Every message is keyed by its series, as the README asks of producers, so that a series stays on
one partition (and so with one worker): a metric sample by its ``name``, a log event by its
``service`` (else ``component``). Which of the two an event is follows from the topic (the
configured ``[topics]``); on any other topic the first of ``name``, ``service``, ``component``
that is set is used. A file line that is not a JSON object with such a field is sent
as written with no key; the worker dead-letters what it cannot read, which is how the dead-letter
topic is tried out.

With ``--batch N`` (N > 1) events of one key are sent together as a JSON array of up to N events;
an array never mixes series, and events of one series keep their order.

>>> lines = [b'{"name": "cpu", "value": 1}', b"not json", b'{"name": "cpu", "value": 2}']
>>> list(batches(file_items(lines, "metric"), 10))
[(None, b'not json'), (b'cpu', b'[{"name": "cpu", "value": 1},{"name": "cpu", "value": 2}]')]
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from engine.config import Config, KafkaSettings
from engine.devtools.scenarios import SCENARIOS
from engine.model.events import LOG, METRIC
from engine.runtime.kafka_clients import client_options, start_client

__all__ = ["batches", "file_items", "message_key", "publish", "run_produce", "topic_kind"]

#: A Kafka message (or one event before batching): its key and its value.
Message = tuple[bytes | None, bytes]

#: Fields naming an event's series, by kind (``None``: topic of unknown kind); the first that
#: holds a non-empty string wins, as the worker reads them.
_SERIES_FIELDS: dict[str | None, tuple[str, ...]] = {
    METRIC: ("name",),
    LOG: ("service", "component"),
    None: ("name", "service", "component"),
}


def message_key(doc: Any, kind: str | None = None) -> bytes | None:
    """The Kafka key of one decoded event: its series (UTF-8), or ``None`` if it names none.

    ``kind`` is ``"metric"`` (key by ``name``), ``"log"`` (by ``service``, else ``component``)
    or ``None`` (the first of the three that is set).

    >>> message_key({"name": "cpu", "value": 0.5}), message_key({"service": "", "component": "db"})
    (b'cpu', b'db')
    >>> message_key({"service": "api", "name": "job-7"}, "log")
    b'api'
    >>> message_key([{"name": "cpu"}]), message_key({"value": 1})
    (None, None)
    """
    if not isinstance(doc, dict):
        return None
    for field in _SERIES_FIELDS[kind]:
        value = doc.get(field)
        if isinstance(value, str) and value:
            return value.encode()
    return None


def file_items(lines: Iterable[bytes], kind: str | None = None) -> Iterator[Message]:
    """``(key, line)`` for each non-blank line of a JSON-lines file, the line kept as written.

    The key is :func:`message_key` of the line's JSON; a line that is not a JSON object naming
    its series gets the key ``None``.

    >>> list(file_items([b'{"service": "api", "message": "hi"}', b"  ", b"[1]"], "log"))
    [(b'api', b'{"service": "api", "message": "hi"}'), (None, b'[1]')]
    """
    for line in lines:
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError:
            yield None, line
            continue
        yield message_key(doc, kind), line


def batches(items: Iterable[Message], size: int) -> Iterator[Message]:
    """Group ``(key, event JSON)`` items into messages of up to ``size`` events of one key.

    With ``size <= 1`` every item is its own message. Otherwise a key's events are buffered and
    sent as a JSON array when ``size`` have gathered, and what is left at the end is sent in
    order of each key's first event. Items keyed ``None`` are sent at once, alone and unchanged
    (they may not be JSON at all, and must not spoil a batch of good events).

    >>> items = [(b"a", b"1"), (b"b", b"2"), (None, b"?"), (b"a", b"3"), (b"b", b"4"), (b"a", b"5")]
    >>> list(batches(items, 2))
    [(None, b'?'), (b'a', b'[1,3]'), (b'b', b'[2,4]'), (b'a', b'[5]')]
    """
    if size <= 1:
        yield from items
        return
    buffers: dict[bytes, list[bytes]] = {}
    for key, value in items:
        if key is None:
            yield key, value
            continue
        buffer = buffers.setdefault(key, [])
        buffer.append(value)
        if len(buffer) >= size:
            del buffers[key]
            yield key, _array(buffer)
    for key, buffer in buffers.items():
        yield key, _array(buffer)


def _array(values: list[bytes]) -> bytes:
    return b"[" + b",".join(values) + b"]"


def topic_kind(cfg: Config, topic: str) -> str | None:
    """``"log"`` or ``"metric"`` for the configured input topics, else ``None``."""
    return {cfg.topics.logs: LOG, cfg.topics.metrics: METRIC}.get(topic)


async def publish(
    kafka: KafkaSettings, topic: str, messages: Iterable[Message], *, bootstrap: str | None = None
) -> int:
    """Send ``(key, value)`` messages to ``topic`` on the brokers of ``kafka`` (or on
    ``bootstrap``, ``host:port,...``, with the security settings of ``kafka``); returns how many
    were sent."""
    producer = AIOKafkaProducer(**client_options(kafka, bootstrap=bootstrap), linger_ms=5)
    await start_client(producer, kafka)
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
    """Publish a file (one event per line) or a scenario to ``topic``, keyed by series.

    ``broker`` (``host:port``) replaces the configured brokers; the security settings of
    ``[kafka]`` apply either way.
    """
    items: Iterable[Message]
    if file is not None:
        items = file_items(file.read_bytes().splitlines(), topic_kind(cfg, topic))
    else:
        gen = SCENARIOS.get(scenario or "")
        if gen is None:
            print(
                f"kestrel produce: unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}",
                file=sys.stderr,
            )
            return 2
        start = time.time() - minutes * 60
        items = (
            (key, orjson.dumps(ev))
            for _, key, ev in gen(random.Random(7), start=start, minutes=minutes)
        )
    n = asyncio.run(publish(cfg.kafka, topic, batches(items, batch), bootstrap=broker))
    print(f"kestrel produce: sent {n} message(s) to {topic}")
    return 0
