"""The cold-store consumer: cold log events and alert transitions from Kafka into the store.

It is a consumer group of its own (``<app_id>-cold-store``), with its own offsets, beside the
worker's detection (which it never waits for or slows beyond the CPU it uses): every worker
process runs one as a task (``[cold_store] enabled``), and ``kestrel store`` runs one alone.
The group spreads the input partitions over the running consumers.

Each fetched batch is decoded with the input topics' own decoders (so the stored fields are
what detection sees), its cold events and alert transitions are written in one transaction,
and only then are its offsets committed: at least once into the store, and exactly once in it,
since a replayed row's Kafka origin is already there. Decoding and writing run in threads, off
the event loop the worker's detection shares; while the store writes a batch (up to its
``writers`` at once, each over its own connection) the next is fetched and decoded, and
offsets are committed in fetch order, a batch's once it and every earlier one are durable.

When the database cannot be reached the write is retried every ``retry_seconds`` for as long as
it takes: consumption of the assigned partitions pauses meanwhile (the consumer keeps polling,
so it stays in its group), the failures are counted and logged once per outage, and the
consumer goes on by itself once the database is back, nothing skipped.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from engine.config import Config
from engine.formats import DecodeContext, Decoder, build_decoder
from engine.model.events import LOG, Decoded, LogEvent
from engine.runtime.kafka_clients import client_options, start_client
from engine.runtime.worker import Worker
from engine.sinks.cold_store import (
    AlertRow,
    ColdStore,
    EventRow,
    Origin,
    StoreError,
    Written,
    alert_row,
    event_row,
    open_store,
)

__all__ = [
    "ColdStoreCollector",
    "ColdStoreConsumer",
    "ColdStoreCounts",
    "attach_cold_store",
    "rows_of",
]

log = logging.getLogger("kestrel.cold_store")

#: How often retention runs, in seconds (when ``retention_days`` is set).
RETENTION_INTERVAL_SECONDS = 3600.0


@dataclass(slots=True)
class ColdStoreCounts:
    """What the consumer did since start (read by :class:`ColdStoreCollector` at scrape time)."""

    events_written: int = 0
    alerts_written: int = 0
    duplicates: int = 0
    write_errors: int = 0
    records_read: int = 0
    up: bool = False
    lag: int | None = None
    outage_started: float | None = None
    batches: int = 0


def rows_of(
    records: Mapping[Any, Sequence[Any]],
    *,
    source: str,
    decoders: Mapping[str, Decoder],
    alerts_topic: str | None,
    cold_types: frozenset[str],
    max_message_bytes: int,
    max_future_seconds: float,
) -> tuple[list[EventRow], list[AlertRow]]:
    """The rows of one fetched batch (``{TopicPartition: [ConsumerRecord]}``).

    A log message is decoded as detection decodes it (its topic's decoder, the same size limit
    and future-time limit); its valid events whose ``type`` is cold become rows, each with its
    position in the message. A record of ``alerts_topic`` becomes an alert-history row.
    Rejected inputs are not stored (they are on the dead-letter topic).
    """
    events: list[EventRow] = []
    alerts: list[AlertRow] = []
    for tp, batch in records.items():
        topic, partition = tp.topic, tp.partition
        if topic == alerts_topic:
            for record in batch:
                origin = Origin(source, topic, partition, record.offset)
                row = alert_row(record.value or b"", record.timestamp / 1000.0, origin)
                if row is not None:
                    alerts.append(row)
            continue
        decoder = decoders.get(topic)
        if decoder is None:
            continue
        context = DecodeContext(topic)
        for record in batch:
            value = record.value
            if not value or len(value) > max_message_bytes:
                continue
            context.not_after = record.timestamp / 1000.0 + max_future_seconds
            decoded = decoder(value, context, Decoded())
            for index, event in enumerate(decoded.events):
                if isinstance(event, LogEvent) and event.type in cold_types:
                    origin = Origin(source, topic, partition, record.offset, index)
                    events.append(event_row(event, origin))
    return events, alerts


class ColdStoreConsumer:
    """Fills the cold store from Kafka (see the module docstring).

    ``store`` is made by ``open`` (default: :func:`open_store` of the configured URL, with
    ``[cold_store] writers``) in the consumer's thread. ``clock`` gives epoch seconds (for
    retention).
    """

    def __init__(
        self,
        config: Config,
        *,
        open: Callable[[str], ColdStore] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        settings = config.cold_store
        self.settings = settings
        self.group_id = f"{config.kafka.app_id}-cold-store"
        self.decoders = {
            spec.topic: build_decoder(spec) for spec in config.inputs() if spec.kind == LOG
        }
        self.alerts_topic = config.topics.alerts if settings.alerts else None
        self.cold_types = frozenset(settings.types)
        self.topics = [*self.decoders, *([self.alerts_topic] if self.alerts_topic else [])]
        self.counts = ColdStoreCounts()
        self._open = open or functools.partial(open_store, writers=settings.writers)
        self._clock = clock
        self._store: ColdStore | None = None
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._next_retention = 0.0
        self._next_offsets: dict[Any, int] = {}

    # -- the store, used from one thread at a time ------------------------------------------

    def _store_now(self) -> ColdStore:
        if self._store is None:
            store = self._open(self.config.cold_store_url)
            if self.settings.migrate_on_start:
                applied = store.migrate()
                if applied:
                    log.info("cold store %s: applied migrations %s", store.shown_url, applied)
            self._store = store
        return self._store

    def _submit(self, records: dict[Any, list[Any]]) -> _Batch:
        """Decode ``records``' rows and start writing them, after retention when due (the
        batch's future holds a failure to open the store or to run retention)."""
        events, alerts = rows_of(
            records,
            source=self.config.kafka.app_id,
            decoders=self.decoders,
            alerts_topic=self.alerts_topic,
            cold_types=self.cold_types,
            max_message_bytes=self.config.worker.max_message_bytes,
            max_future_seconds=self.config.worker.max_future_seconds,
        )
        try:
            store = self._store_now()
            self._retention(store)
            future = store.submit(events, alerts)
        except StoreError as exc:
            future = concurrent.futures.Future()
            future.set_exception(exc)
        return _Batch(records, len(events) + len(alerts), future)

    def _retention(self, store: ColdStore) -> None:
        days = self.settings.retention_days
        now = self._clock()
        if days <= 0 or now < self._next_retention:
            return
        self._next_retention = now + RETENTION_INTERVAL_SECONDS
        dropped = store.drop_expired(now - days * 86400.0)
        if dropped:
            log.info("cold store: retention removed %d (older than %d days)", dropped, days)

    def _close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- the consumer -------------------------------------------------------------------------

    def start(self) -> None:
        """Run :meth:`run` in a task of the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="cold-store")

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop after the batch being written (at most ``timeout`` seconds, then cancel)."""
        self._stopping = True
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
            self._task = None

    async def run(self) -> None:
        """Open the store (migrating it, if so configured), then consume until :meth:`stop`;
        reconnects to Kafka after an error."""
        try:
            while not self._stopping:  # the store first: no point consuming without it
                try:
                    await asyncio.to_thread(self._store_now)
                    self.counts.up = True
                    break
                except StoreError as exc:
                    self._failed(exc)
                    await asyncio.sleep(self.settings.retry_seconds)
            while not self._stopping:
                consumer = AIOKafkaConsumer(
                    *self.topics,
                    **client_options(self.config.kafka),
                    group_id=self.group_id,
                    enable_auto_commit=False,
                    auto_offset_reset="earliest",
                    fetch_max_wait_ms=int(self.settings.fetch_max_wait_seconds * 1000),
                    max_poll_records=self.settings.batch_max_records,
                    metadata_max_age_ms=5000,  # input topics created after the start
                    session_timeout_ms=int(self.config.kafka.session_timeout_seconds * 1000),
                    heartbeat_interval_ms=max(
                        500, int(self.config.kafka.session_timeout_seconds * 200)
                    ),
                )
                try:
                    await start_client(consumer, self.config.kafka)
                    await self._consume(consumer)
                except KafkaError as exc:
                    if self._stopping:
                        break
                    log.warning("cold store consumer: %s; reconnecting", exc)
                    await asyncio.sleep(1.0)
                finally:
                    with contextlib.suppress(KafkaError, OSError):
                        await consumer.stop()
        finally:
            await asyncio.to_thread(self._close_store)

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        """Fetch, decode and start writing batch after batch, up to the store's ``writers`` in
        flight; commit each batch's offsets, in fetch order, once it is durable."""
        wait_ms = int(self.settings.fetch_max_wait_seconds * 1000)
        in_flight: collections.deque[_Batch] = collections.deque()
        try:
            while not self._stopping:
                records = await consumer.getmany(
                    timeout_ms=0 if in_flight else wait_ms,
                    max_records=self.settings.batch_max_records,
                )
                if records:
                    in_flight.append(await asyncio.to_thread(self._submit, dict(records)))
                elif not in_flight:
                    self._update_lag(consumer)
                    continue
                # Nothing new: wait for the oldest batch. Else finish the batches done, and the
                # oldest while more are in flight than the store writes at once (one more may
                # wait, decoded, for a free writer).
                if not records and not await self._finish(consumer, in_flight):
                    return  # stopped during an outage: nothing more committed
                writers = self._store.writers if self._store is not None else 1
                while in_flight and (in_flight[0].future.done() or len(in_flight) > writers):
                    if not await self._finish(consumer, in_flight):
                        return
        finally:
            await _settled(in_flight)  # (not committed: their rows are skipped when read again)

    async def _finish(
        self, consumer: AIOKafkaConsumer, in_flight: collections.deque[_Batch]
    ) -> bool:
        """Wait for the oldest batch in flight and commit its offsets. When it failed, wait for
        every batch in flight, write the failed ones again until durable, then commit them all.
        ``False``: stopped before that."""
        try:
            written = await asyncio.wrap_future(in_flight[0].future)
        except Exception:  # (any failure: the failed batches are written again, below)
            pass
        else:
            batch = in_flight.popleft()
            self._succeeded(batch.records, written, batch.rows)
            await self._commit(consumer, batch.records)
            self._update_lag(consumer)
            return True
        await _settled(in_flight)
        failed: dict[Any, list[Any]] = {}
        for batch in in_flight:
            exc = batch.future.exception()
            if exc is None:
                self._succeeded(batch.records, batch.future.result(), batch.rows)
                continue
            self._failed(exc)
            for tp, msgs in batch.records.items():
                failed.setdefault(tp, []).extend(msgs)
        batches = [batch.records for batch in in_flight]
        in_flight.clear()
        if not await self._write_until_durable(consumer, failed):
            return False
        await self._commit(consumer, *batches, failed)  # (failed: with what came meanwhile)
        self._update_lag(consumer)
        return True

    async def _write_until_durable(
        self, consumer: AIOKafkaConsumer, records: dict[Any, list[Any]]
    ) -> bool:
        """Write ``records``' rows; while the database is out, pause, keep polling (records of
        partitions assigned meanwhile join ``records``), and try again. ``False``: stopped
        before the rows were written."""
        while True:
            try:
                batch = await asyncio.to_thread(self._submit, records)
                written = await asyncio.wrap_future(batch.future)
            except Exception as exc:  # unreachable or not: still nothing may be lost
                self._failed(exc)
                self._update_lag(consumer, records)  # what waits (it read 0 when caught up)
            else:
                self._succeeded(records, written, batch.rows)
                return True
            consumer.pause(*consumer.assignment())
            deadline = time.monotonic() + self.settings.retry_seconds
            while time.monotonic() < deadline:
                extra = await consumer.getmany(timeout_ms=200)
                for tp, msgs in extra.items():
                    records.setdefault(tp, []).extend(msgs)
                consumer.pause(*consumer.assignment())  # (partitions assigned meanwhile)
                self._update_lag(consumer, records)  # what waits grows
                if self._stopping:
                    return False

    def _failed(self, exc: BaseException) -> None:
        """Count a failed write (or a failure to open the store) and close the store; the
        first of an outage is logged (with its traceback when it is not the store's error)."""
        self.counts.write_errors += 1
        if self.counts.up or self.counts.outage_started is None:
            log.error(
                "cold store: %s; consumption paused, retrying every %.1f s",
                exc if isinstance(exc, StoreError) else f"unexpected {exc!r}",
                self.settings.retry_seconds,
                exc_info=None if isinstance(exc, StoreError) else exc,
            )
            self.counts.outage_started = time.monotonic()
        self.counts.up = False
        with contextlib.suppress(Exception):
            self._close_store()  # (in the loop's thread: no write is running now)

    def _succeeded(self, records: Mapping[Any, Sequence[Any]], written: Written, rows: int) -> None:
        """Count a durable batch of ``records`` (``rows`` rows, of which ``written`` new)."""
        if not self.counts.up and self.counts.outage_started is not None:
            log.warning(
                "cold store: writing again after %.1f s",
                time.monotonic() - self.counts.outage_started,
            )
        self.counts.up = True
        self.counts.outage_started = None
        self.counts.events_written += written.events
        self.counts.alerts_written += written.alerts
        self.counts.duplicates += rows - written.events - written.alerts
        self.counts.records_read += sum(len(m) for m in records.values())
        self.counts.batches += 1

    async def _commit(
        self, consumer: AIOKafkaConsumer, *batches: Mapping[Any, Sequence[Any]]
    ) -> None:
        """Commit the offsets after the durable ``batches``' records, and resume consumption."""
        assigned = consumer.assignment()
        offsets: dict[Any, int] = {}
        for records in batches:
            for tp, msgs in records.items():
                if msgs and tp in assigned:
                    offsets[tp] = max(offsets.get(tp, 0), msgs[-1].offset + 1)
        if offsets:
            try:
                await consumer.commit(offsets)
                self._next_offsets.update(offsets)
            except (CommitFailedError, IllegalStateError) as exc:
                # A rebalance took the partitions: their next owner writes them again, and the
                # store keeps one row per origin.
                log.info("cold store: commit skipped after a rebalance (%s)", exc)
        paused = consumer.paused()
        if paused:
            consumer.resume(*paused)

    def _update_lag(
        self, consumer: AIOKafkaConsumer, held: Mapping[Any, Sequence[Any]] | None = None
    ) -> None:
        """Records of the assigned partitions not yet durable in the store: from the next offset
        to store (the last commit's; before any, the first of the records ``held`` through an
        outage) to the partition's high watermark as last fetched."""
        lag = 0
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            stored = self._next_offsets.get(tp)
            if stored is None and held and held.get(tp):
                stored = held[tp][0].offset
            if high is not None and stored is not None:
                lag += max(0, high - stored)
        self.counts.lag = lag


@dataclass(frozen=True, slots=True)
class _Batch:
    """A fetched batch being written: its ``records`` (``{TopicPartition: [ConsumerRecord]}``),
    how many ``rows`` they made, and the store's ``future`` of the write."""

    records: dict[Any, list[Any]]
    rows: int
    future: concurrent.futures.Future[Written]


async def _settled(batches: Iterable[_Batch]) -> None:
    """Wait until every batch's write has succeeded or failed."""
    futures = [asyncio.wrap_future(b.future) for b in batches]
    if futures:
        await asyncio.wait(futures)


@dataclass(eq=False)  # (a registry keys its collectors by identity)
class ColdStoreCollector(Collector):
    """The ``kestrel_cold_store_*`` metrics of a :class:`ColdStoreConsumer`, read at scrape
    time."""

    counts: Callable[[], ColdStoreCounts]
    backend: str = "sqlite"

    def collect(self) -> Iterator[Any]:
        c = self.counts()
        rows = CounterMetricFamily(
            "kestrel_cold_store_rows_written",
            "Rows the cold store wrote (duplicates of stored origins not counted), by table.",
            labels=["table"],
        )
        rows.add_metric(["events"], c.events_written)
        rows.add_metric(["alerts"], c.alerts_written)
        yield rows
        dup = CounterMetricFamily(
            "kestrel_cold_store_duplicates",
            "Rows not written because their Kafka origin was stored already (replays).",
        )
        dup.add_metric([], c.duplicates)
        yield dup
        errors = CounterMetricFamily(
            "kestrel_cold_store_write_errors",
            "Failed writes to the cold store's database (each is retried; nothing is skipped).",
        )
        errors.add_metric([], c.write_errors)
        yield errors
        records = CounterMetricFamily(
            "kestrel_cold_store_records_read", "Kafka records the cold store consumed and stored."
        )
        records.add_metric([], c.records_read)
        yield records
        up = GaugeMetricFamily(
            "kestrel_cold_store_up",
            "1 if the last write to the cold store's database succeeded, else 0.",
            labels=["backend"],
        )
        up.add_metric([self.backend], 1.0 if c.up else 0.0)
        yield up
        if c.lag is not None:
            lag = GaugeMetricFamily(
                "kestrel_cold_store_lag_records",
                "Records on the assigned partitions not yet stored (from the last fetch).",
            )
            lag.add_metric([], float(c.lag))
            yield lag


def attach_cold_store(worker: Worker) -> ColdStoreConsumer | None:
    """Run a :class:`ColdStoreConsumer` in ``worker``'s process (``[cold_store] enabled``):
    started with the app, stopped before it shuts down, its metrics on the worker's registry."""
    cfg = worker.config
    if not cfg.cold_store.enabled:
        return None
    consumer = ColdStoreConsumer(cfg)
    backend = "sqlite" if cfg.cold_store_url.startswith("sqlite") else "postgresql"
    worker.registry.register(ColdStoreCollector(lambda: consumer.counts, backend))
    app = worker.app

    @app.task  # type: ignore[untyped-decorator]
    async def start_cold_store() -> None:
        consumer.start()

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def stop_cold_store(sender: Any, **kwargs: Any) -> None:
        await consumer.stop(cfg.worker.shutdown_timeout_seconds / 2)

    return consumer
