"""Taking fetched records a whole partition fetch at a time: what aiokafka's own path gives.

Real aiokafka objects (record batches built by its builder, its subscription state and
``FetchResult``), no broker: each test compares :mod:`engine.runtime.fetched` with aiokafka's
``getall`` on the same fetch, or checks what aiokafka's path would do (positions, CRCs, pauses).
"""

from __future__ import annotations

import asyncio
import struct
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.consumer.fetcher import READ_COMMITTED, FetchResult, PartitionRecords
from aiokafka.consumer.subscription_state import SubscriptionState
from aiokafka.errors import CorruptRecordException
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import ConsumerRecord, TopicPartition

from engine.runtime.fetched import take_fetched, take_whole

TP = TopicPartition("metrics", 0)
OTHER = TopicPartition("silences", 0)
T0_MS = 1_700_000_000_000


def _batches(base_offsets: list[int], per_batch: int = 3, key: bytes | None = b"k") -> bytes:
    """Record batches of ``per_batch`` records each, starting at ``base_offsets``."""
    out = b""
    for base in base_offsets:
        builder = DefaultRecordBatchBuilder(
            magic=2,
            compression_type=0,
            is_transactional=0,
            producer_id=-1,
            producer_epoch=-1,
            base_sequence=-1,
            batch_size=1 << 20,
        )
        for i in range(per_batch):
            value = b'{"n": %d}' % (base + i)
            builder.append(i, timestamp=T0_MS + base + i, key=key, value=value, headers=[])
        data = bytearray(builder.build())
        struct.pack_into(">q", data, 0, base)  # the base offset (not covered by the CRC)
        out += bytes(data)
    return out


def _fetch(
    data: bytes, position: int, tp: TopicPartition = TP, isolation: int = 0
) -> tuple[FetchResult, Any]:
    """A ``FetchResult`` of ``data`` fetched at ``position``, and the partition's state (in a
    running loop, as aiokafka's subscription state wants)."""
    subscriptions = SubscriptionState()
    subscriptions.assign_from_user({tp})
    assignment = subscriptions.subscription.assignment
    state = assignment.state_value(tp)
    state.seek(position)
    records = PartitionRecords(tp, MemoryRecords(data), [], position, None, None, True, isolation)
    fetched = FetchResult(tp, assignment=assignment, partition_records=records, backoff=0)
    return fetched, state


def _fields(record: Any) -> tuple[int, int | None, bytes | None, bytes | None]:
    return record.offset, record.timestamp, record.key, record.value


async def test_a_whole_fetch_gives_what_aiokafka_gives_and_moves_the_position() -> None:
    # The fetch starts at offset 4, inside the batch of offsets 3-5 (a fetch returns whole
    # record batches): aiokafka drops offset 3, and so does take_whole.
    data = _batches([3, 6, 9])
    mine, state = _fetch(data, 4)
    theirs, their_state = _fetch(data, 4)
    taken = take_whole(mine, TP)
    expected = theirs.getall()
    assert all(isinstance(r, ConsumerRecord) for r in expected)
    assert [_fields(r) for r in taken] == [_fields(r) for r in expected]
    assert [r.offset for r in taken] == [4, 5, 6, 7, 8, 9, 10, 11]
    assert taken[0].timestamp == T0_MS + 4 and taken[0].value == b'{"n": 4}'
    assert state.position == their_state.position == 12
    assert not mine.has_more()
    assert take_whole(mine, TP) == []  # taken once


async def test_records_without_a_key_keep_none() -> None:
    fetched, _ = _fetch(_batches([0], key=None), 0)
    assert [r.key for r in take_whole(fetched, TP)] == [None, None, None]


async def test_a_partition_sought_or_paused_since_the_fetch_gives_nothing() -> None:
    fetched, state = _fetch(_batches([0]), 0)
    state.seek(2)  # sought elsewhere (a rebalance, a replay): the fetch is stale
    assert take_whole(fetched, TP) == []
    assert state.position == 2
    fetched, state = _fetch(_batches([0]), 0)
    state.pause()
    assert take_whole(fetched, TP) == []
    assert state.position == 0


async def test_a_corrupt_batch_takes_nothing_and_keeps_the_position() -> None:
    data = bytearray(_batches([0, 3]))
    data[-1] ^= 0xFF  # the last record's value, covered by its batch's CRC
    fetched, state = _fetch(bytes(data), 0)
    with pytest.raises(CorruptRecordException):
        take_whole(fetched, TP)
    assert state.position == 0  # the first batch is not taken either: fetched again
    assert not fetched.has_more()
    # Through the fetcher's buffer: the error is raised once, then the partition is fetched
    # again from its position.
    fetched, state = _fetch(bytes(data), 0)
    fetcher = _Fetcher({TP: fetched})
    with pytest.raises(CorruptRecordException):
        await take_fetched(fetcher, None, 0.0, None, {"metrics"})
    assert await take_fetched(fetcher, None, 0.0, None, {"metrics"}) == {}
    assert TP not in fetcher._records and fetcher.notified == 1 and state.position == 0


async def test_read_committed_takes_aiokafka_s_own_path() -> None:
    fetched, state = _fetch(_batches([0]), 0, isolation=READ_COMMITTED)
    taken = take_whole(fetched, TP)
    assert all(isinstance(r, ConsumerRecord) for r in taken)
    assert [r.offset for r in taken] == [0, 1, 2]
    assert state.position == 3


class _Fetcher:
    """What :func:`take_fetched` uses of aiokafka's ``Fetcher``: its buffer of fetches."""

    def __init__(self, fetches: dict[TopicPartition, FetchResult]) -> None:
        self._records = dict(fetches)
        self._subscriptions = SimpleNamespace(
            reassignment_in_progress=False, is_assigned=lambda tp: True
        )
        self._closed = False
        self._wait_consume_future = None
        self.notified = 0

    def _notify(self, future: Any) -> None:
        self.notified += 1

    def _create_fetch_waiter(self) -> asyncio.Future[None]:
        return asyncio.get_running_loop().create_future()  # no fetch arrives


async def test_whole_topics_come_whole_and_the_others_as_aiokafka_gives_them() -> None:
    mine, mine_state = _fetch(_batches([0, 3]), 0)
    other, other_state = _fetch(_batches([0, 3]), 0, tp=OTHER)
    fetcher = _Fetcher({TP: mine, OTHER: other})
    got = await take_fetched(fetcher, None, 0.0, 4, {"metrics"})
    # The whole fetch of the batch topic (6 records, past the cap of 4): nothing more taken.
    assert [r.offset for r in got[TP]] == [0, 1, 2, 3, 4, 5]
    assert not isinstance(got[TP][0], ConsumerRecord)
    assert OTHER not in got
    assert TP not in fetcher._records and fetcher.notified == 1  # fetched again
    # The other topic: aiokafka's getall, capped.
    got = await take_fetched(fetcher, None, 0.0, 4, {"metrics"})
    assert [r.offset for r in got[OTHER]] == [0, 1, 2, 3]
    assert isinstance(got[OTHER][0], ConsumerRecord)
    assert other_state.position == 4 and OTHER in fetcher._records
    assert (mine_state.position, fetcher.notified) == (6, 1)


async def test_nothing_fetched_waits_at_most_the_timeout() -> None:
    fetcher = _Fetcher({})
    assert await take_fetched(fetcher, None, 0.0, None, {"metrics"}) == {}
    assert await take_fetched(fetcher, None, 0.05, None, {"metrics"}) == {}
