"""Faust's aiokafka transport with a bounded fetch wait and a batch path for the input topics.

**Fetch wait.** Faust hard-codes ``fetch_max_wait_ms=1500`` for worker consumers, which adds up to
1.5 s of latency whenever a partition is quiet. Kestrel bounds it (default 50 ms) through
:attr:`KestrelApp.fetch_max_wait_ms`.

**Batch path.** Faust turns every fetched record into a message, an event, a stream item and
several event-loop callbacks before an agent sees it: for single-event messages that machinery
is most of a worker's CPU. The records of Kestrel's own hot topics (the inputs, and the alerts
topic: :attr:`KestrelApp.batch_handlers`) skip it: the consumer takes each partition's fetch
whole, without a ``ConsumerRecord`` per record (:mod:`engine.runtime.fetched`), hands it to its
topic's handler in one call and then acknowledges it by offset (the next offset to commit per
partition). Faust keeps everything else: group membership and assignment, the changelog tables
and their recovery (input partitions stay paused until it is done), timers, the web server, the
other agents (their records take Faust's usual path), and the offset commits, which commit what
the handler finished (at least once: a batch is committed only after its handler returned).

**Restore path.** Faust restores a table one changelog record at a time (a message, a queue
item and several calls each: about 30 s for a million states). The records of the topics in
:attr:`KestrelApp.restore_handlers` (the state table's changelog) go to their handler a fetched
batch at a time instead; it applies them and tells Faust's recovery how far it got. They are
never committed (a changelog is read from its start at every recovery).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, cast

import faust
from aiokafka.errors import ConsumerStoppedError, KafkaError
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode.utils.futures import maybe_async

from engine.runtime.fetched import take_fetched

__all__ = ["BatchHandler", "KestrelApp", "Transport"]

#: ``handler(tp, records)``: process one partition's fetched records (in offset order, each with
#: ``offset``, ``timestamp``, ``key`` and ``value``: see :mod:`engine.runtime.fetched`); they are
#: committed once it returns.
BatchHandler = Callable[[TP, Sequence[Any]], Awaitable[None]]


class KestrelApp(faust.App):
    """``faust.App`` with Kestrel's transport (bounded fetch wait, batch path for inputs)."""

    #: Longest a fetch waits for data, in milliseconds.
    fetch_max_wait_ms: int = 50
    #: Whether the producer is idempotent (``acks=all``; Apache Kafka, not Tansu).
    idempotent_producer: bool = False
    #: Topics whose records go to a handler in batches instead of Faust's streams.
    batch_handlers: dict[str, BatchHandler]
    #: Changelog topics whose records go to a handler in batches, never committed.
    restore_handlers: dict[str, BatchHandler]
    #: Awaited before each offset commit, to write the state built from the consumed records
    #: (Faust then flushes the producer and commits): saved state is never older than the commit.
    before_commit: list[Callable[[], Awaitable[None]]]

    def on_init(self) -> None:
        """Start with no batch handler and no commit hook (the runtime adds them)."""
        super().on_init()
        self.batch_handlers = {}
        self.restore_handlers = {}
        self.before_commit = []

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)

    async def send_records(
        self, topic: str, partition: int, records: Iterable[tuple[bytes | None, bytes]]
    ) -> None:
        """Queue ``(key, value)`` records for one partition in order, in whole record batches.

        aiokafka's ``send`` creates a future and takes its accumulator's path once per record,
        and Faust's ``Topic.send`` builds several more objects per record: for a burst of
        records this builds each batch here and hands it over in one call. Returns once the
        batches are queued; :meth:`flush` (which Faust awaits before each commit) waits until
        the broker has them, as it does for records sent one by one.
        """
        producer = cast(_Producer, self.producer)._ensure_producer()
        batch = producer.create_batch()
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:  # full
                await producer.send_batch(batch, topic, partition=partition)
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)  # an empty batch takes any
        if batch.record_count():
            batch.close()
            await producer.send_batch(batch, topic, partition=partition)


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka reads this attribute when the consumer starts and builds its fetcher.
        consumer._fetch_max_wait_ms = int(getattr(self.app, "fetch_max_wait_ms", 1500))
        return consumer


class _InLoopConsumerThread(_ConsumerThread):
    """Faust's consumer "thread", run as a task on the app's own event loop.

    Faust runs the aiokafka consumer in a thread with its own event loop, so that a slow agent
    cannot starve its heartbeats. Every fetch then crosses threads twice, and each crossing
    waits for the GIL, up to ``sys.getswitchinterval()`` (5 ms) while the other thread
    computes: measured with a handler that does nothing, single-event messages were consumed
    at 112,000 a second with the thread (0.7 s of CPU in 1.8 s) and at 278,000 with the
    switch interval cut to 0.5 ms. Kestrel's handlers never block (each batch is judged in one
    synchronous call of milliseconds), so the consumer runs on the app's loop instead, and a
    call "into the thread" is a plain await.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        loop = kwargs.get("loop") or asyncio.get_event_loop()
        super().__init__(*args, thread_loop=loop, **kwargs)
        self._serving: asyncio.Future[None] | None = None

    async def start(self) -> None:
        """Serve as a task of the app's loop (no thread), once the consumer has started."""
        self._thread_started.set()
        running: asyncio.Future[None] = asyncio.Future(loop=self.parent_loop)
        self._thread_running = running
        self._serving = asyncio.ensure_future(self._serve(), loop=self.parent_loop)
        try:
            await asyncio.wait({running, self._serving}, return_when=asyncio.FIRST_COMPLETED)
            if running.done():
                running.result()
            else:
                self._serving.result()  # it ended before it ran: raise why
        finally:
            self._thread_running = None

    async def _fetch_records(
        self,
        consumer: Any,
        active_partitions: set[TP] | None,
        timeout: float | None = None,
        max_records: int | None = None,
    ) -> Any:
        """Faust's, except that the topics of the batch and restore handlers give their fetched
        records a whole partition fetch at a time, without a ``ConsumerRecord`` each
        (:func:`~engine.runtime.fetched.take_fetched`)."""
        if not self.consumer.flow_active:
            return {}
        fetcher = consumer._fetcher
        if consumer._closed or fetcher._closed:
            raise ConsumerStoppedError()
        app = cast(KestrelApp, self.app)
        whole = app.batch_handlers.keys() | app.restore_handlers.keys()
        with fetcher._subscriptions.fetch_context():
            return await take_fetched(
                fetcher, active_partitions, timeout or 0.0, max_records, whole
            )

    async def call_thread(self, fun: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fun`` (a function or a coroutine function) here: the "thread" is this loop."""
        return await maybe_async(fun(*args, **kwargs))

    async def cast_thread(self, fun: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``fun`` in the background on this loop."""
        self.add_future(maybe_async(fun(*args, **kwargs)))

    async def _gather_remaining_tasks(self) -> None:
        """Nothing: the thread's version cancels every task of its loop, here the app's."""


class _Consumer(faust_aiokafka.Consumer):
    """Faust's consumer, with the batch path for :attr:`KestrelApp.batch_handlers`.

    On the batch path offsets are committed by Faust's timer only (``broker_commit_interval``,
    set by ``worker.commit_interval_seconds``), never after ``broker_commit_every`` records:
    every commit first checkpoints each series changed since the last one
    (:attr:`KestrelApp.before_commit`), so a count trigger made the checkpoint work grow with
    the event rate (ten full checkpoints a second at 100,000 events/s: the worker used
    0.74-0.77 cores at that load with it, 0.53-0.64 without).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Per partition of a batch topic: the offset after the last record its handler finished.
        self._batch_done: dict[TP, int] = {}

    @property
    def _kestrel(self) -> KestrelApp:
        return cast(KestrelApp, self.app)

    def _new_consumer_thread(self) -> _ConsumerThread:
        return _InLoopConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _new_offset(self, tp: TP) -> int | None:
        if tp.topic in self._kestrel.batch_handlers:
            return self._batch_done.get(tp)
        offset: int | None = super()._new_offset(tp)
        return offset

    async def _commit_offsets(self, offsets: Any, start_new_transaction: bool = True) -> bool:
        for hook in self._kestrel.before_commit:
            await hook()
        return bool(await super()._commit_offsets(offsets, start_new_transaction))

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Forget the revoked partitions' progress too (their new owner reads the commit)."""
        await super().on_partitions_revoked(revoked)
        done = self._batch_done
        for tp in revoked:
            done.pop(tp, None)

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - needs a broker
        app = self._kestrel
        handlers, restorers = app.batch_handlers, app.restore_handlers
        if not handlers:
            await super()._drain_messages(fetcher)
            return
        done = self._batch_done
        read_offset = self._read_offset
        acked = self._acked
        stopped, fetcher_stopped = self._stopped.is_set, fetcher._stopped.is_set
        try:
            while not (stopped() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                records, _ = await self._wait_next_records(1.0)
                await asyncio.sleep(0)  # a fetch that returns at once must not starve the loop
                if not records or self.should_stop:
                    self.diag.unset_flag(CONSUMER_FETCHING)
                    continue
                generation = app.consumer_generation_id
                fetches = list(records.items())
                for i, (tp, fetched) in enumerate(fetches):
                    if not self.flow_active or app.consumer_generation_id != generation:
                        # A rebalance began, or the flow stopped: none of these is handled.
                        await self._fetch_again(fetches[i:])
                        break
                    last = read_offset[tp]
                    # >=, as in Faust's own loop: a seek (to the committed offset, at a start or
                    # a rebalance) sets the read offset to the next record's, not to be lost.
                    # Records come in offset order: only a batch that starts before the read
                    # offset needs filtering.
                    batch = (
                        fetched
                        if last is None or not fetched or fetched[0].offset >= last
                        else [r for r in fetched if r.offset >= last]
                    )
                    if not batch:
                        continue
                    handler = handlers.get(tp.topic)
                    if handler is not None:
                        await handler(tp, batch)
                        if not self.flow_active or app.consumer_generation_id != generation:
                            # Revoked meanwhile (its next owner reads the batch again) or
                            # paused: the partitions not handled yet are fetched again.
                            await self._fetch_again(fetches[i + 1 :])
                            break
                        # The next offset, as a seek sets it: a record fetched again after a
                        # seek during the handler call is not judged twice.
                        done[tp] = read_offset[tp] = batch[-1].offset + 1
                        acked.setdefault(tp, [])  # lists the partition among those to commit
                    elif tp.topic in restorers:
                        await restorers[tp.topic](tp, batch)
                        read_offset[tp] = batch[-1].offset + 1
                    else:
                        await self._deliver_each(tp, batch)
                        read_offset[tp] = batch[-1].offset  # (Faust's: the last one delivered)
                self.diag.unset_flag(CONSUMER_FETCHING)

        except self.consumer_stopped_errors:
            if not app.should_stop:
                raise  # (as Faust's own loop: a stopped consumer is normal only when stopping)
        except asyncio.CancelledError:
            if not app.should_stop:
                raise

    async def _fetch_again(self, dropped: Sequence[tuple[TP, Sequence[Any]]]) -> None:
        """Seek back to fetched records left unhandled (the flow stopped, a rebalance began).

        The fetch moved each partition's position past them: without a seek they would be
        skipped, unless a rebalance moves the partition (its next owner, this worker too, seeks
        to the committed offset). A partition no longer assigned, or whose position was moved
        since the fetch (Faust seeks to the committed offsets), is left alone.
        """
        assigned = self.assignment()
        for tp, fetched in dropped:
            if not fetched or tp not in assigned:
                continue
            with contextlib.suppress(KafkaError):  # (revoked meanwhile)
                if await self.position(tp) == fetched[-1].offset + 1:
                    await self.seek(tp, fetched[0].offset)

    async def _deliver_each(self, tp: TP, batch: Sequence[Any]) -> None:
        """Faust's usual path, one message at a time (silences, changelogs during recovery)."""
        acks_enabled = self.app.topics.acks_enabled_for(tp.topic)
        previous = self._read_offset[tp]
        for record in batch:
            if acks_enabled and previous is not None and record.offset - previous > 1:
                await self._add_gap(tp, previous + 1, record.offset)  # e.g. compacted away
            message = self._to_message(tp, record)
            await self.wait_first(self.callback(message), self.suspend_flow.wait())
            previous = record.offset
            await asyncio.sleep(0)


class _Producer(faust_aiokafka.Producer):
    """Faust's producer, idempotent when :attr:`KestrelApp.idempotent_producer` is set."""

    def _settings_extra(self) -> Mapping[str, Any]:
        extra = dict(super()._settings_extra())
        if getattr(self.app, "idempotent_producer", False):
            extra.update(acks="all", enable_idempotence=True)
        return extra


class Transport(faust_aiokafka.Transport):
    """The aiokafka transport, with :class:`_Consumer` and :class:`_Producer`."""

    Consumer = _Consumer
    Producer = _Producer
