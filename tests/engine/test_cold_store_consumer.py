"""The cold-store consumer's order of work, with a scripted Kafka consumer and a store whose
writes the test finishes in any order: offsets are committed in fetch order, each once its
batch and every earlier one are durable, and a failed batch among several in flight is written
again before anything after it is committed."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Awaitable, Callable, Sequence
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition

from engine.config import parse_config
from engine.runtime.cold_store import ColdStoreConsumer
from engine.sinks.cold_store import (
    AlertQuery,
    AlertRow,
    ColdStore,
    EventQuery,
    EventRow,
    StoredAlert,
    StoredEvent,
    StoreUnavailable,
    Written,
)

TP = TopicPartition("logs", 0)
T = 1_780_000_000.0


class ScriptedConsumer:
    """Hands out one prepared batch per fetch, then nothing; records commits."""

    def __init__(self, batches: list[list[int]]) -> None:
        self.batches = list(batches)
        self.commits: list[int] = []
        self._paused: set[TopicPartition] = set()

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> Any:
        await asyncio.sleep(0)
        if not self.batches or TP in self._paused:
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        doc = {"timestamp": T, "level": "INFO", "service": "api", "type": "task_created",
               "message": "m"}  # fmt: skip
        value = orjson.dumps(doc)
        return {
            TP: [
                SimpleNamespace(offset=o, value=value, timestamp=int(T * 1000))
                for o in self.batches.pop(0)
            ]
        }

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def pause(self, *tps: TopicPartition) -> None:
        self._paused.update(tps)

    def paused(self) -> set[TopicPartition]:
        return set(self._paused)

    def resume(self, *tps: TopicPartition) -> None:
        self._paused.difference_update(tps)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets[TP])

    def highwater(self, tp: TopicPartition) -> int | None:
        return None


class HeldStore(ColdStore):
    """Two writers; each submitted write waits until the test finishes it (or fails it)."""

    backend = "held"
    writers = 2

    def __init__(self) -> None:
        super().__init__("held://")
        self.writes: list[tuple[list[int], concurrent.futures.Future[Written]]] = []
        self.stored: list[int] = []

    def submit(self, events: Sequence[EventRow], alerts: Sequence[AlertRow]) -> Any:
        future: concurrent.futures.Future[Written] = concurrent.futures.Future()
        self.writes.append(([e.origin.offset for e in events], future))
        return future

    def finish(self, k: int) -> None:
        offsets, future = self.writes[k]
        self.stored.extend(offsets)
        future.set_result(Written(len(offsets)))

    def fail(self, k: int, exc: Exception | None = None) -> None:
        error = exc or StoreUnavailable("held://: the database went away")
        self.writes[k][1].set_exception(error)

    def release(self) -> None:
        """Fail what is still held (so that a failed test ends instead of waiting)."""
        for _, future in self.writes:
            if not future.done():
                future.set_exception(StoreUnavailable("held://: test over"))

    def write(self, events: Sequence[EventRow], alerts: Sequence[AlertRow]) -> Written:
        raise AssertionError("the consumer submits")

    def migrate(self) -> list[int]:
        return []

    def schema_version(self) -> int:
        return 3

    def query_events(self, query: EventQuery) -> list[StoredEvent]:
        return []

    def alert_history(self, query: AlertQuery) -> list[StoredAlert]:
        return []

    def drop_expired(self, before: float) -> int:
        return 0

    def close(self) -> None:
        pass


async def _until(check: Any, what: str) -> None:
    for _ in range(2000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within 20 s: {what}")


Scenario = Callable[[HeldStore, ScriptedConsumer, ColdStoreConsumer], Awaitable[None]]


def _run(scenario: Scenario, batches: list[list[int]]) -> None:
    """Run ``scenario`` beside the consumer's loop over ``batches``; stop both after it."""

    async def main() -> None:
        store, kafka = HeldStore(), ScriptedConsumer(batches)
        cold = _consumer(store)
        task = asyncio.create_task(cold._consume(kafka))
        try:
            await scenario(store, kafka, cold)
        finally:
            cold._stopping = True
            store.release()
            await asyncio.wait_for(task, 10)

    asyncio.run(main())


def _consumer(store: HeldStore) -> ColdStoreConsumer:
    config = parse_config(
        {"cold_store": {"retry_seconds": 0.1, "fetch_max_wait_seconds": 0.01}}, "test"
    )
    cold = ColdStoreConsumer(config, open=lambda url: store)
    cold._store = store
    return cold


def test_offsets_are_committed_in_fetch_order_whatever_order_writes_finish() -> None:
    async def scenario(store: HeldStore, kafka: ScriptedConsumer, cold: ColdStoreConsumer) -> None:
        await _until(lambda: len(store.writes) == 3, "three batches in flight")
        await asyncio.sleep(0.05)
        assert len(store.writes) == 3  # two writers and one waiting, decoded: no fourth yet
        store.finish(1)  # the second batch is durable first: nothing may be committed
        await asyncio.sleep(0.05)
        assert kafka.commits == []
        store.finish(0)
        await _until(lambda: kafka.commits == [2, 4], "the first two batches committed")
        await _until(lambda: len(store.writes) == 4, "the fourth batch submitted")
        store.finish(3)
        store.finish(2)
        await _until(lambda: kafka.commits == [2, 4, 5, 7], "all committed in order")
        assert cold.counts.events_written == 7 and cold.counts.batches == 4

    _run(scenario, [[0, 1], [2, 3], [4], [5, 6]])


def test_a_failed_batch_in_flight_is_written_again_before_later_offsets_are_committed() -> None:
    async def scenario(store: HeldStore, kafka: ScriptedConsumer, cold: ColdStoreConsumer) -> None:
        await _until(lambda: len(store.writes) == 3, "three batches in flight")
        store.finish(1)
        store.fail(0)  # the oldest fails while a later one is durable and another pending
        await asyncio.sleep(0.05)
        assert kafka.commits == []  # the pending third must settle first
        store.finish(2)
        await _until(lambda: len(store.writes) == 4, "the failed batch written again")
        assert store.writes[3][0] == [0, 1]
        assert kafka.commits == []
        store.finish(3)
        await _until(lambda: kafka.commits == [5], "everything committed at once")
        assert sorted(store.stored) == [0, 1, 2, 3, 4]
        assert cold.counts.write_errors == 1 and cold.counts.events_written == 5

    _run(scenario, [[0, 1], [2, 3], [4]])


def test_an_unexpected_error_of_a_write_is_counted_and_the_batch_written_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario(store: HeldStore, kafka: ScriptedConsumer, cold: ColdStoreConsumer) -> None:
        await _until(lambda: len(store.writes) == 1, "the batch in flight")
        store.fail(0, TypeError("a bug"))  # not the store's error: still nothing may be lost
        await _until(lambda: len(store.writes) == 2, "the batch written again")
        assert kafka.commits == [] and cold.counts.write_errors == 1
        store.finish(1)
        await _until(lambda: kafka.commits == [2], "committed once durable")
        assert cold.counts.up and cold.counts.events_written == 2

    with caplog.at_level(logging.ERROR, "kestrel.cold_store"):
        _run(scenario, [[0, 1]])
    assert "unexpected TypeError('a bug')" in caplog.text
    assert any(r.exc_info for r in caplog.records)  # with its traceback
