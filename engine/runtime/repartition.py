"""The batch handler of the inputs with ``repartition = true``: decode, re-key, re-produce.

Each fetched partition batch of such a topic is decoded and its events produced, keyed by
series, to ``<app_id>-repartition-logs`` / ``-metrics`` (see :mod:`engine.core.repartition`),
which the ingest handler reads like any input. Rejects go to the DLQ as from any input. The
batch is acknowledged when the handler returns; Faust flushes the producer before it commits
the source offsets, so a crash re-sends (at least once) and never loses.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from engine.config import repartition_topics
from engine.core.batch import Record
from engine.core.repartition import repartition_batch
from engine.runtime.ingest import flush_sinks
from engine.runtime.worker import Worker
from engine.sinks import SinkBatch

__all__ = ["wire_repartition"]


def wire_repartition(worker: Worker) -> None:
    """Route the records of the ``repartition = true`` inputs to the re-keying handler."""
    cfg, app, metrics = worker.config, worker.app, worker.metrics
    sources = cfg.repartition_sources()
    if not sources:
        return
    topics = repartition_topics(cfg.kafka.app_id)
    wcfg = cfg.worker

    async def on_batch(tp: Any, records: Sequence[Record]) -> None:
        started = time.perf_counter()
        result = repartition_batch(
            tp.topic,
            tp.partition,
            records,
            decoders=worker.decoders,
            max_bytes=wcfg.max_message_bytes,
            max_future_seconds=wcfg.max_future_seconds,
            now=worker.clock(),
        )
        send = app.producer.send
        for kind, key, value in result.messages:
            await send(topics[kind], key, value, None, None, None)
        for topic, c in result.counts.items():
            metrics.messages.labels(topic).inc(c.messages)
            metrics.events.labels(topic).inc(c.events)
            for reason, n in c.invalid.items():
                metrics.invalid.labels(topic, reason).inc(n)
        if result.dead:
            await flush_sinks(worker.sinks, SinkBatch(logs=[], alerts=[], dead=result.dead))
        metrics.batch_seconds.observe(time.perf_counter() - started)

    app.batch_handlers.update(dict.fromkeys(sources, on_batch))
