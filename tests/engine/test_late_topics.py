"""Partitions that appear after the worker's group was joined are assigned within seconds.

On Apache Kafka an input topic Faust has just created is sometimes missing from the metadata the
worker's group is joined with (seen in about one worker start in seven here); the worker then
ignored that input until aiokafka's next metadata refresh, 5 minutes later by default. Kestrel's
consumer refreshes every :data:`~engine.runtime.app.CONSUMER_METADATA_MAX_AGE_MS`. A group
consumer notices both a topic and more partitions of a topic the same way (the partition count
of each subscribed topic changes: missing counts as none), so this checks, deterministically,
that a group consumer with that setting consumes a partition added after it joined.
"""

from __future__ import annotations

import time
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic

from engine.config import Config
from engine.devtools.broker import Broker
from engine.runtime.app import CONSUMER_METADATA_MAX_AGE_MS, _new_app
from tests.testkit import producer, run


def test_the_worker_consumer_refreshes_its_metadata_every_few_seconds() -> None:
    app = _new_app(Config())
    assert app.conf.consumer_metadata_max_age_ms == CONSUMER_METADATA_MAX_AGE_MS <= 10_000


async def _late_partition(bootstrap: str, topic: str, max_age_ms: int) -> dict[str, Any]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 1)])
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"group-{topic}",
        auto_offset_reset="earliest",
        metadata_max_age_ms=max_age_ms,
    )
    try:
        async with producer(bootstrap) as p:
            await p.send_and_wait(topic, b"first", partition=0)
        await consumer.start()
        await consumer.getone()  # joined, with partition 0 only
        await admin.create_partitions({topic: NewPartitions(total_count=2)})
        added_at = time.monotonic()
        async with producer(bootstrap) as p:
            deadline = added_at + 30
            while time.monotonic() < deadline:  # the producer may not know partition 1 at once
                try:
                    await p.send_and_wait(topic, b"late", partition=1)
                    break
                except AssertionError:  # aiokafka: "Unrecognized partition"
                    await p.client.force_metadata_update()
        deadline = added_at + 30  # with aiokafka's default (5 minutes) it takes much longer
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            if any(r.value == b"late" for records in batch.values() for r in records):
                return {"seconds": time.monotonic() - added_at}
        return {"seconds": None, "assignment": consumer.assignment()}
    finally:
        await consumer.stop()
        await admin.close()


def test_a_partition_added_after_the_group_was_joined_is_consumed(
    broker: Broker, unique: str
) -> None:
    result = run(_late_partition(broker.bootstrap, f"late-{unique}", CONSUMER_METADATA_MAX_AGE_MS))
    print(f"\nthe added partition was consumed {result['seconds']} s after it was added")
    assert result["seconds"] is not None, result
