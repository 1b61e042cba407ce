"""Detection: the batch handler of the input topics, its timers and the state checkpoints.

The consumer hands each fetched partition batch of the input topics to one handler call (see
:mod:`engine.runtime.transport`). Per batch the handler waits for state recovery, decodes and
judges the records (:func:`engine.core.batch.process_batch`), records alert transitions on the
alerts topic, and hands the results to every sink (:mod:`engine.sinks`); the batch is committed
when it returns. Series state is checkpointed to the changelog table every
``worker.checkpoint_interval_seconds``, before each offset commit, on revoke and at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any

from msgspec.structs import replace

from engine.core.batch import Record, process_batch
from engine.core.pipeline import StateWrite
from engine.core.traces import TraceExamples
from engine.model.alert import Alert, AlertStatus, Severity, alert_labels
from engine.runtime.worker import Worker
from engine.sinks import Backpressure, Sink, SinkBatch

__all__ = ["flush_sinks", "wire_ingest"]

log = logging.getLogger("kestrel.worker")


async def _write_states(worker: Worker, writes: Sequence[StateWrite]) -> None:
    """Write states to the changelog; the table keeps a copy only of those not in memory.

    The changed states go to their partitions in whole record batches
    (:meth:`KestrelApp.send_records`), the records Faust's ``send_changelog`` would send (the
    table's keys and values are raw bytes) without its several objects per record: a worker
    with 100,000 series, each sending a point every 5 s, spent more CPU writing checkpoints
    than judging. Faust flushes the producer before each commit, so the states are on the
    changelog before the offsets they cover are committed.
    """
    table = worker.table
    data = table.data
    records: dict[int, list[tuple[bytes | None, bytes]]] = {}
    for w in writes:
        if w.resident:
            data.pop(w.key, None)
        else:
            data[w.key] = w.value
        if w.changed:
            records.setdefault(w.partition, []).append((w.key, w.value))
    if not records:
        return
    topic = table.changelog_topic.get_topic_name()
    for partition, pending in records.items():
        await worker.app.send_records(topic, partition, pending)
    worker.metrics.checkpoints.inc(sum(map(len, records.values())))


async def _checkpoint(worker: Worker) -> None:
    """Write the changed states a chunk at a time, letting other work run between chunks.

    Events may be judged between two chunks (see :meth:`Pipeline.checkpoint_chunks`); the
    memory a checkpoint holds is a chunk's, not every changed state's at once.
    """
    for writes in worker.pipeline.checkpoint_chunks():
        await _write_states(worker, writes)
        await asyncio.sleep(0)


def _restore(worker: Worker, tp: Any, records: Sequence[Record]) -> None:
    """Apply a fetched batch of the state changelog to the table, during Faust's recovery.

    Faust's own recovery applies a record at a time; this applies a whole fetched batch and
    then moves Faust's recovery offset for the partition to its last record, so Faust's
    recovery ends (as it would have) once every partition reached its high-water mark. A whole
    fetched batch is applied: on the embedded broker the high-water mark Faust reads is the
    first offset of the last record batch (see tests/engine/test_brokers.py), and applying one
    record at a time up to it loses the rest of that batch.
    """
    recovery = worker.app.tables.recovery  # type: ignore[attr-defined]
    if tp in recovery.active_tps:
        offsets = recovery.active_offsets
    elif tp in recovery.standby_tps:
        offsets = recovery.standby_offsets
    else:
        return  # not a partition this worker restores (any more)
    seen = offsets.get(tp)
    data = worker.table.data
    applied = 0
    for record in records:
        if seen is not None and record.offset <= seen:
            continue
        if record.value is None:
            data.pop(record.key, None)
        else:
            data[record.key] = record.value
        applied += 1
    offsets[tp] = records[-1].offset
    worker.metrics.restored.inc(applied)
    if recovery.in_recovery and not recovery.need_recovery():
        recovery.signal_recovery_end.set()  # what Faust's recovery loop would do


async def _record(worker: Worker, alerts: list[Alert]) -> list[Alert]:
    """Write alert transitions to the alerts topic, marking the silenced ones; returns them.

    They go to the alerts topic's one partition in whole record batches
    (:meth:`KestrelApp.send_records`): sent one by one, through Faust or aiokafka, they cost
    more than the detection of a whole batch when an incident makes many transitions. Faust
    flushes the producer before it commits the input offsets, so a transition is on the topic
    before the records that caused it are committed.
    """
    now = worker.clock()
    metrics, topic = worker.metrics, worker.topics.alerts
    await topic.maybe_declare()  # once: Faust remembers it
    silences, counted = worker.silences, metrics.alerts.labels
    recorded, records = [], []
    decorate = worker.pipeline.decorate  # override labels and annotations, summary template
    counters: dict[tuple[str, Severity, AlertStatus], Any] = {}  # labels() costs a few µs
    for alert in alerts:
        alert = decorate(alert)
        if len(silences) and silences.is_silenced(alert_labels(alert), now):
            alert = replace(alert, silenced=True)
            metrics.silenced_records.inc()
        recorded.append(alert)
        which = (alert.detector, alert.severity, alert.status)
        counter = counters.get(which)
        if counter is None:
            counter = counters[which] = counted(
                alert.detector, alert.severity.value, alert.status.value
            )
        counter.inc()
        records.append((alert.fingerprint.encode(), alert.to_json()))
    await worker.app.send_records(topic.get_topic_name(), 0, records)
    return recorded


async def flush_sinks(sinks: Sequence[Sink], batch: SinkBatch) -> None:
    """Hand ``batch`` to every sink and flush; a sink's backpressure pauses until it clears."""
    for sink in sinks:
        sink.add(batch)
    for sink in sinks:
        while True:
            try:
                await sink.flush()
                break
            except Backpressure as exc:
                log.warning("%s", exc)
                await asyncio.sleep(exc.retry_after_seconds)


def wire_ingest(worker: Worker) -> None:
    """Add the ingest handler, its timers and the partition hooks to ``worker.app``."""
    app, cfg, metrics, pipeline = worker.app, worker.config, worker.metrics, worker.pipeline
    inputs = worker.input_topics
    wcfg = cfg.worker
    clock = worker.clock

    recovery = app.tables.recovery  # type: ignore[attr-defined]
    traces = TraceExamples(cfg.alerts.trace_examples, cfg.alerts.trace_link_template)

    async def on_batch(tp: Any, records: Sequence[Record]) -> None:
        # Series state comes from the changelog table: judging an event before the table is
        # restored would start its series afresh (a new warm-up) and shadow the saved state.
        while app.in_recovery or not recovery.completed.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        started = time.perf_counter()
        result = process_batch(
            pipeline,
            tp.topic,
            tp.partition,
            records,
            decoders=worker.decoders,
            max_bytes=wcfg.max_message_bytes,
            max_future_seconds=wcfg.max_future_seconds,
            now=clock(),
        )
        result.alerts = traces.annotate(result.alerts, result.logs)
        for topic, c in result.counts.items():
            metrics.messages.labels(topic).inc(c.messages)
            metrics.events.labels(topic).inc(c.events)
            if c.late:
                metrics.late.labels(topic).inc(c.late)
            for reason, n in c.invalid.items():
                metrics.invalid.labels(topic, reason).inc(n)
        alerts = await _record(worker, result.alerts) if result.alerts else []
        await flush_sinks(
            worker.sinks, SinkBatch(logs=result.logs, alerts=alerts, dead=result.dead)
        )
        finished = clock()
        if result.newest_timestamp:
            metrics.lag.set(max(0.0, finished - result.newest_timestamp))
        metrics.last_batch.set(finished)
        metrics.batch_seconds.observe(time.perf_counter() - started)

    # Subscribe to the inputs (no agent: their records go to on_batch, see the transport).
    app.topics.add(worker.topics.inputs)
    app.batch_handlers.update(dict.fromkeys(inputs, on_batch))

    async def restore(tp: Any, records: Sequence[Record]) -> None:
        _restore(worker, tp, records)

    app.restore_handlers[worker.table.changelog_topic.get_topic_name()] = restore

    @app.task  # type: ignore[untyped-decorator]
    async def start_sinks() -> None:
        await worker.topics.dlq.maybe_declare()
        for sink in worker.sinks:
            await sink.start()

    @app.timer(wcfg.checkpoint_interval_seconds)  # type: ignore[untyped-decorator]
    async def checkpoint() -> None:
        await _checkpoint(worker)

    async def checkpoint_before_commit() -> None:
        await _checkpoint(worker)  # the commit then covers no unsaved event

    app.before_commit.append(checkpoint_before_commit)

    @app.timer(1.0)  # type: ignore[untyped-decorator]
    async def tick() -> None:
        alerts = pipeline.tick(clock())
        if line := pipeline.series_limit.report(clock()):  # at most once a minute
            log.warning("%s", line)
        if alerts:
            await flush_sinks(worker.sinks, SinkBatch(alerts=await _record(worker, alerts)))

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        parts = {tp.partition for tp in revoked if tp.topic in inputs}
        if parts:
            writes = pipeline.release(parts)
            await _write_states(worker, writes)
            log.info("partitions %s revoked: %d state(s) saved", sorted(parts), len(writes))

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def on_shutdown(sender: Any, **kwargs: Any) -> None:
        async def save() -> None:
            await _write_states(worker, pipeline.checkpoint())
            await app.producer.flush()

        # Bounded, so that the other shutdown hooks still run when the broker is gone (the flush
        # would wait for it for ever).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(save(), wcfg.shutdown_timeout_seconds / 2)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        worker.started_at = worker.started_at or clock()
        parts = sorted({tp.partition for tp in assigned if tp.topic in inputs})
        log.info("input partitions assigned: %s", parts)
