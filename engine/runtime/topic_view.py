"""A live, whole-topic view kept by every worker: the latest value of each key of a topic.

Faust's ``GlobalTable`` did not deliver updates after recovery on the embedded broker, so Kestrel
keeps the views it needs on every worker (silences, the alerts firing everywhere, for inhibition)
with a plain consumer: no consumer group, every partition, from the earliest offset, forever.
A ``None`` value (a tombstone) removes its key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from engine.config import KafkaSettings
from engine.runtime.kafka_clients import client_options, start_client

__all__ = ["TopicView", "read_last", "read_latest"]

log = logging.getLogger("kestrel.view")

Apply = Callable[[bytes, bytes | None], None]


class TopicView:
    """Follows ``topic`` on the brokers of ``kafka`` and calls ``apply(key, value)`` for every
    record.

    ``ready`` is set once the records present at start-up have all been applied.
    """

    def __init__(
        self, kafka: KafkaSettings, topic: str, apply: Apply, *, fetch_max_wait_ms: int = 50
    ) -> None:
        self.kafka = kafka
        self.topic = topic
        self._apply = apply
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()
        self.records = 0

    def start(self) -> None:
        """Start following the topic in a background task."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"view:{self.topic}"
            )

    async def stop(self) -> None:
        """Stop following."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            consumer = AIOKafkaConsumer(
                **client_options(self.kafka),
                group_id=None,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                fetch_max_wait_ms=self._fetch_max_wait_ms,
            )
            try:
                await consumer.start()
                await self._follow(consumer)
            except KafkaError as exc:
                log.warning("view of %s: %s; reconnecting", self.topic, exc)
                await asyncio.sleep(1.0)
            finally:
                await consumer.stop()

    async def _follow(self, consumer: Any) -> None:
        partitions = None
        while not partitions:
            partitions = consumer.partitions_for_topic(self.topic)
            if not partitions:
                await consumer._client.force_metadata_update()  # the topic may not exist yet
                partitions = consumer.partitions_for_topic(self.topic)
                if not partitions:
                    self.ready.set()  # nothing to read yet
                    await asyncio.sleep(1.0)
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    self._apply(record.key or b"", record.value)
                    self.records += 1
            if not self.ready.is_set() and all(
                await asyncio.gather(*(self._position_reached(consumer, tp, end[tp]) for tp in tps))
            ):
                self.ready.set()

    @staticmethod
    async def _position_reached(consumer: Any, tp: Any, end: int) -> bool:
        return bool(await consumer.position(tp) >= end)


async def read_last(kafka: KafkaSettings, topic: str, timeout: float = 10.0) -> bytes | None:
    """The value of the last record of partition 0 of ``topic`` (``None`` if it has none)."""
    consumer = AIOKafkaConsumer(**client_options(kafka), group_id=None, enable_auto_commit=False)
    try:
        await start_client(consumer, kafka)
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        if end == 0:
            return None
        consumer.seek(tp, end - 1)
        batch = await consumer.getmany(tp, timeout_ms=int(timeout * 1000))
        records = batch.get(tp, [])
        return bytes(records[-1].value) if records and records[-1].value is not None else None
    finally:
        await consumer.stop()


async def read_latest(
    kafka: KafkaSettings, topic: str, partitions: list[int] | None = None
) -> dict[bytes, bytes]:
    """The latest value of every key in ``partitions`` of ``topic`` (all when ``None``).

    Tombstones remove keys. Keys come in the order of their latest record.
    """
    if partitions is not None and not partitions:
        return {}
    consumer = AIOKafkaConsumer(**client_options(kafka), group_id=None, enable_auto_commit=False)
    latest: dict[bytes, bytes] = {}
    try:
        await start_client(consumer, kafka)
        if partitions is None:
            known = consumer.partitions_for_topic(topic)
            if not known:
                await consumer._client.force_metadata_update()  # the topic may be new to us
                known = consumer.partitions_for_topic(topic) or set()
            partitions = sorted(known)
        tps = [TopicPartition(topic, p) for p in partitions]
        if not tps:
            return {}
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                for record in records:
                    if record.key is None:
                        continue
                    latest.pop(record.key, None)
                    if record.value is not None:
                        latest[record.key] = record.value
    finally:
        await consumer.stop()
    return latest
