"""Fetched records taken from aiokafka's fetcher a whole partition fetch at a time.

aiokafka's ``Fetcher.fetched_records`` turns each record into a ``ConsumerRecord`` (a dataclass
of eleven fields, through a generator): about 0.8 us a record more than reading the fetched
record batches, and 19% of a worker's samples (py-spy) under a steady load of single-event
messages. For the
topics of Kestrel's batch handlers (:func:`take_fetched`'s ``whole_topics``) it hands over the
record objects of the fetched record batches instead: aiokafka's batch reader builds them in C,
each with the ``offset``, ``timestamp``, ``key`` and ``value`` a handler reads
(:class:`engine.core.batch.Record`). The rest is what aiokafka does: each record batch's CRC is
checked, control batches are skipped, records before the fetch position dropped, and the
partition's position is moved past the fetch. With ``isolation_level = read_committed`` (whose
aborted transactions need filtering) aiokafka's own path runs. This follows the internals of
aiokafka 0.12-0.14 (``Fetcher.fetched_records``, ``FetchResult``, ``PartitionRecords``, the
same in the three), so ``pyproject.toml`` keeps aiokafka below 0.15; the integration tests run
it on Apache Kafka.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Container
from typing import Any

from aiokafka.consumer.fetcher import READ_COMMITTED, FetchResult
from aiokafka.errors import CorruptRecordException

__all__ = ["take_fetched", "take_whole"]


async def take_fetched(
    fetcher: Any,
    partitions: Collection[Any] | None,
    timeout: float,
    max_records: int | None,
    whole_topics: Container[str],
) -> dict[Any, list[Any]]:
    """The fetched records of ``partitions`` (all if ``None``), waiting up to ``timeout`` seconds
    for some: aiokafka's ``fetcher.fetched_records``, except that a partition of
    ``whole_topics`` gives its whole fetch at once (:func:`take_whole`; it may take the total
    past ``max_records``, after which no other partition is taken).
    """
    subscriptions = fetcher._subscriptions
    buffered = fetcher._records
    while True:
        # Records fetched before a rebalance may not belong to this consumer after it.
        if subscriptions.reassignment_in_progress:
            await subscriptions.wait_for_assignment()
        started = time.monotonic()
        drained: dict[Any, list[Any]] = {}
        for tp in list(buffered):
            if partitions and tp not in partitions:
                if not subscriptions.is_assigned(tp):
                    del buffered[tp]
                continue
            fetched = buffered[tp]
            if type(fetched) is FetchResult:
                if tp.topic in whole_topics:
                    records = take_whole(fetched, tp)
                else:
                    records = fetched.getall(max_records)
                if not fetched.has_more():
                    del buffered[tp]  # and fetch this partition again
                    fetcher._notify(fetcher._wait_consume_future)
                if not records:
                    continue
                drained[tp] = records
                if max_records is not None:
                    max_records -= len(records)
                    if max_records <= 0:
                        break
            elif drained:
                return drained  # the error is raised by the next call
            else:
                del buffered[tp]
                fetcher._notify(fetcher._wait_consume_future)
                fetched.check_raise()
        if drained or not timeout:
            return drained
        waiter = fetcher._create_fetch_waiter()
        done, pending = await asyncio.wait([waiter], timeout=timeout)
        if not done or fetcher._closed:
            for future in pending:
                future.cancel()
            return {}
        waiter.result()  # raises an authorization error, for one
        timeout = max(0.0, timeout - (time.monotonic() - started))


def take_whole(fetched: Any, tp: Any) -> list[Any]:
    """Every record of one partition's fetch (a ``FetchResult``), in offset order, as the record
    objects of its record batches; the partition's position moves past the fetch.

    ``[]`` if the partition is no longer fetchable (revoked, paused, or sought elsewhere since
    the fetch). Raises ``CorruptRecordException`` on a record batch whose CRC is wrong; then
    none of the fetch is taken and the partition keeps its position (it is fetched again).
    """
    if not fetched.has_more() or not fetched.check_assignment(tp):
        return []
    part = fetched._partition_records
    if part._isolation_level == READ_COMMITTED:
        records: list[Any] = fetched.getall()
        return records
    batches = part._records
    position: int = part.next_fetch_offset
    taken: list[Any] = []
    while batches.has_next():
        batch = batches.next_batch()
        if part._check_crcs and not batch.validate_crc():
            fetched._partition_records = None  # none taken: fetched again from the position
            raise CorruptRecordException(f"Invalid CRC - {tp}")
        if not batch.is_control_batch:
            records = list(batch)
            # A fetch starts at the record batch holding the position, which may begin before it.
            if records and records[0].offset < position:
                records = [r for r in records if r.offset >= position]
            taken += records
        position = batch.next_offset
    part.next_fetch_offset = position
    fetched._update_position()
    fetched._partition_records = None
    return taken
