"""The Faust app, built in one place: topics, the state table, sinks, agents, timers, web views.

:func:`build_worker` makes a :class:`Worker`; :mod:`engine.runtime.ingest` wires detection and
:mod:`engine.runtime.delivery` wires notifications onto it, and :mod:`engine.runtime.web` adds
the HTTP endpoints. Agents contain no decisions: they batch, call the pure core
(:func:`engine.core.batch.process_batch`, :class:`engine.notify.Dispatcher` through the
:class:`~engine.runtime.notifier.Notifier`) and do the I/O.

Crash semantics (at least once): Faust commits consumed offsets every
``worker.commit_interval_seconds`` (its ``broker_commit_interval``, 2.8 s by default); before
each commit the runtime writes the changed series states and the notifier's state
(``KestrelApp.before_commit``), so saved state is never older than the committed offsets. After a
crash the messages consumed since the last commit (at most that interval of consumption) are
consumed again: their points are learned twice and their alert transitions recorded twice, and
the notifier drops transitions older than what it took in. A clean stop checkpoints everything;
one that waits for the broker longer than ``worker.shutdown_timeout_seconds`` is cut short (see
:mod:`engine.runtime.process`).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from engine import __version__
from engine.config import Config
from engine.core.pipeline import Pipeline
from engine.core.series_limit import SeriesLimit
from engine.formats import build_decoder
from engine.notify import Silences, silence_from_settings
from engine.runtime.channels import ChannelRoute
from engine.runtime.cold_store import attach_cold_store
from engine.runtime.delivery import wire_delivery
from engine.runtime.ingest import wire_ingest
from engine.runtime.kafka_clients import faust_credentials
from engine.runtime.metrics import (
    KestrelMetrics,
    LiveCollector,
    LiveCounts,
    register_process_metrics,
)
from engine.runtime.notifier import Notifier
from engine.runtime.repartition import wire_repartition
from engine.runtime.series_metrics import SeriesCollector
from engine.runtime.transport import KestrelApp
from engine.runtime.web import register_views
from engine.runtime.worker import Topics, Worker
from engine.sinks import DeadLetterSink, RedisMirror, Sink

__all__ = ["build_worker"]

STATE_TABLE = "series-state"

#: How often the consumer refreshes its cluster metadata, in milliseconds. A subscribed topic the
#: metadata did not list when the group was joined (on Apache Kafka, an input topic Faust has
#: just created is sometimes not in the broker's metadata yet; or a topic deleted and created
#: again) is assigned only after a refresh notices it: aiokafka does not ask again for a missing
#: topic sooner, so with its default (5 minutes) the worker ignored that input for minutes.
CONSUMER_METADATA_MAX_AGE_MS = 5_000

#: The producer's batch size per partition, in bytes (Faust's default: 16 KiB). A record that
#: finds its partition's batch full waits until the sender takes that batch, which it does only
#: once its previous request to the broker is answered: with 16 KiB (about 30 alert records)
#: an alert storm or a checkpoint stalled the worker for a round trip every 30 records. Larger
#: batches make larger requests, which an alert record then waits behind: with 512 KiB the
#: publish-to-alert p99 under load went from about 200 ms to about 300 ms (bench/throughput.py).
PRODUCER_MAX_BATCH_BYTES = 128 * 1024


def _raw_topic(
    app: KestrelApp, names: str | tuple[str, ...], partitions: int, *, compacted: bool = False
) -> Any:
    return app.topic(
        *((names,) if isinstance(names, str) else names),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
        internal=True,  # Faust declares (creates) it with these partitions if missing
        # Keyed state (latest value per key counts): compaction keeps it past retention.
        compacting=True if compacted else None,
    )


def _new_app(config: Config) -> KestrelApp:
    kafka, wcfg = config.kafka, config.worker
    app = KestrelApp(
        kafka.app_id,
        broker=kafka.broker,
        broker_credentials=faust_credentials(kafka),
        store="memory://",
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        broker_session_timeout=kafka.session_timeout_seconds,
        broker_heartbeat_interval=max(0.5, kafka.session_timeout_seconds / 5),
        broker_rebalance_timeout=max(kafka.session_timeout_seconds, 10.0),
        broker_request_timeout=max(90.0, kafka.session_timeout_seconds * 2),
        web_enabled=True,
        web_bind=wcfg.web_host,
        web_host=wcfg.web_host,
        web_port=wcfg.web_port,
        # Faust's /table (table data: series states) and /router (the workers' addresses) would
        # answer anyone who reaches the port; Kestrel uses neither.
        web_tables_enabled=False,
        web_router_enabled=False,
        producer_acks=1,
        # Alerts, dead letters and checkpoints come in bursts: 5 ms of batching sends a burst in a
        # few requests instead of one request per record.
        producer_linger=0.005,
        producer_max_batch_size=PRODUCER_MAX_BATCH_BYTES,
        consumer_auto_offset_reset="earliest",
        consumer_metadata_max_age_ms=CONSUMER_METADATA_MAX_AGE_MS,
        stream_wait_empty=False,
        broker_max_poll_records=wcfg.batch_max_messages,
        broker_commit_interval=wcfg.commit_interval_seconds,
        table_standby_replicas=0,
        autodiscover=False,
        datadir=wcfg.data_dir,
    )
    app.fetch_max_wait_ms = int(kafka.fetch_max_wait_seconds * 1000)
    app.idempotent_producer = kafka.idempotent_producer
    return app


def build_worker(
    config: Config,
    *,
    registry: CollectorRegistry,
    routes: Sequence[ChannelRoute],
    mirror: RedisMirror | None,
    clock: Callable[[], float] = time.time,
) -> Worker:
    """Build the Faust app and wire every agent to the pipeline, the sinks and the channels.

    ``mirror`` is the Redis mirror sink, or ``None`` when ``[redis] enabled = false``.
    """
    app = _new_app(config)
    kafka, names = config.kafka, config.topics
    p = kafka.partitions
    decoders = {spec.topic: build_decoder(spec) for spec in config.inputs()}
    topics = Topics(
        inputs=_raw_topic(app, tuple(decoders), p),
        alerts=_raw_topic(app, names.alerts, 1),
        dlq=_raw_topic(app, names.dlq, p),
        alerts_dlq=_raw_topic(app, names.alerts_dlq, 1),
        silences=_raw_topic(app, names.silences, 1, compacted=True),
        notify_state=_raw_topic(app, config.notify_state_topic, 1, compacted=True),
    )
    table = app.Table(
        STATE_TABLE,
        key_type=bytes,
        value_type=bytes,  # bytes types mean the raw codec
        partitions=p,
    )

    def load(key: bytes) -> bytes | None:
        # The pipeline holds the state from now on: the table's copy would only cost memory.
        value = table.data.pop(key, None)
        return None if value is None else bytes(value)

    async def send_dead_letter(key: bytes | None, value: bytes, headers: Any) -> None:
        await topics.dlq.send(key=key, value=value, headers=headers)

    sinks: list[Sink] = [DeadLetterSink(send_dead_letter)]
    if mirror is not None:
        sinks.append(mirror)
    metrics = KestrelMetrics(
        registry,
        topics=tuple(decoders),
        detectors=config.detector_kinds(),
        channels=[r.channel.name for r in routes],
    )
    silences = Silences(map(silence_from_settings, config.silences))
    # The limit counts the states saved in the table (evicted or not yet loaded) too.
    worker_name = f"{socket.gethostname()}:{config.worker.web_port}"
    limit = SeriesLimit.for_config(
        config, stored=lambda: len(table.data), labels={"worker": worker_name}
    )
    pipeline = Pipeline(config, loader=load, series_limit=limit)

    async def dead_letter(record: Any) -> None:
        await topics.alerts_dlq.send(key=record.key, value=record.to_json())

    async def save_state(state: bytes, *, durable: bool = False) -> None:
        sent = await topics.notify_state.send(key=b"dispatcher", value=state)
        if durable:
            await sent

    notifier = Notifier(
        config,
        {r.channel.name: r for r in routes},
        silences,
        metrics=metrics,
        clock=clock,
        dead_letter=dead_letter,
        save_state=save_state,
    )
    worker = Worker(
        config=config,
        app=app,
        topics=topics,
        table=table,
        pipeline=pipeline,
        decoders=decoders,
        sinks=sinks,
        notifier=notifier,
        silences=silences,
        metrics=metrics,
        registry=registry,
        clock=clock,
        mirror=mirror,
    )
    registry.register(
        LiveCollector(
            LiveCounts(
                states_loaded=pipeline.load_counts,
                series=pipeline.series_counts,
                notifier=lambda: notifier.counts,
                queued_alerts=notifier.queued_alerts,
                sinks=lambda: {s.name: s.counts for s in sinks},
                mirror_up=lambda: None if mirror is None else mirror.healthy,
                untracked=lambda: limit.untracked,
                anomalies=lambda: pipeline.anomalies,
            ),
            detectors=config.detector_kinds(),
        )
    )
    registry.register(SeriesCollector(pipeline.exported_views))  # [metrics] export_series
    register_process_metrics(registry, __version__)
    wire_ingest(worker)
    wire_repartition(worker)  # after wire_ingest: takes over the repartitioned inputs
    wire_delivery(worker)
    register_views(worker)
    attach_cold_store(worker)  # its own consumer group: never in detection's way
    return worker
