"""The Faust app, built in one place: topics, the state table, agents, timers and web views.

Agents here contain no decisions: they batch, call :class:`engine.pipeline.Pipeline` and
:mod:`engine.delivery`, and do the I/O (Kafka, Redis, HTTP).

Crash semantics (at-least-once): Faust commits consumed offsets every
``broker_commit_interval`` (2.8 s by default) and Kestrel checkpoints changed series state every
``worker.checkpoint_interval_seconds``. After a crash, the messages since the last offset commit
are consumed again and learned again by state checkpointed up to ``checkpoint_interval`` earlier
or later; so at most about ``checkpoint_interval + commit_interval`` seconds of events are
replayed, and a firing alert found again is not re-notified (its incident state is checkpointed
with the series). A clean stop checkpoints everything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust
import orjson
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from alert_channels.alert import Alert
from engine.config import Config
from engine.delivery import ChannelRoute, Deliverer
from engine.ingest import process_batch
from engine.metrics import KestrelMetrics
from engine.mirror import RedisMirror
from engine.pipeline import Pipeline, StateWrite
from engine.transport import Transport

__all__ = ["KestrelApp", "Worker", "build_worker"]

log = logging.getLogger("kestrel.worker")

STATE_TABLE = "series-state"


class KestrelApp(faust.App):
    """``faust.App`` with Kestrel's transport (bounded fetch wait)."""

    fetch_max_wait_ms: int = 50

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)


@dataclass
class Worker:
    """Everything one worker process runs; :func:`build_worker` wires it."""

    config: Config
    app: KestrelApp
    pipeline: Pipeline
    metrics: KestrelMetrics
    registry: CollectorRegistry
    mirror: RedisMirror | None
    deliverer: Deliverer
    clock: Callable[[], float]
    topics: dict[str, Any] = field(default_factory=dict)
    table: Any = None
    started_at: float = 0.0


def _raw_topic(app: KestrelApp, names: str | tuple[str, ...], partitions: int) -> Any:
    return app.topic(
        *((names,) if isinstance(names, str) else names),
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
        internal=True,  # Faust declares (creates) it with these partitions if missing
    )


def build_worker(
    config: Config,
    *,
    registry: CollectorRegistry,
    routes: Sequence[ChannelRoute],
    mirror_factory: Callable[[KestrelMetrics], RedisMirror | None],
    clock: Callable[[], float] = time.time,
) -> Worker:
    """Build the Faust app and wire every agent to the pipeline, the mirror and the channels."""
    kafka, topics_cfg, wcfg = config.kafka, config.topics, config.worker
    app = KestrelApp(
        kafka.app_id,
        broker=kafka.broker,
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
        producer_acks=1,
        consumer_auto_offset_reset="earliest",
        stream_wait_empty=False,
        table_standby_replicas=0,
        autodiscover=False,
        datadir=wcfg.data_dir,
    )
    app.fetch_max_wait_ms = int(kafka.fetch_max_wait_seconds * 1000)
    metrics = KestrelMetrics(
        registry,
        topics=(topics_cfg.logs, topics_cfg.metrics),
        detectors=_all_detector_kinds(config),
        channels=[r.channel.name for r in routes],
    )
    table = app.Table(
        STATE_TABLE,
        key_type=bytes,
        value_type=bytes,  # bytes types mean the raw codec
        partitions=kafka.partitions,
    )

    def load(key: bytes) -> bytes | None:
        value = table.data.get(key)
        return None if value is None else bytes(value)

    pipeline = Pipeline(config, loader=load)
    mirror = mirror_factory(metrics)
    p = kafka.partitions
    topics = {
        "input": _raw_topic(app, (topics_cfg.logs, topics_cfg.metrics), p),
        "alerts": _raw_topic(app, topics_cfg.alerts, p),
        "dlq": _raw_topic(app, topics_cfg.dlq, p),
    }
    deliverer = Deliverer(routes, metrics=metrics, clock=clock)
    worker = Worker(
        config, app, pipeline, metrics, registry, mirror, deliverer, clock, topics, table
    )
    _wire(worker)
    return worker


def _all_detector_kinds(config: Config) -> list[str]:
    s = config.series
    kinds = {
        *s.metric_detectors,
        *s.latency_detectors,
        *s.event_count_detectors,
        *s.error_detectors,
    }
    for ov in config.overrides:
        kinds.update(ov.use or ())
    return sorted(kinds)


def _write_states(worker: Worker, writes: Sequence[StateWrite]) -> None:
    table = worker.table
    for w in writes:
        table.data[w.key] = w.value
        table.send_changelog(w.partition, w.key, w.value)
    if writes:
        worker.metrics.checkpoints.inc(len(writes))


def _wire(worker: Worker) -> None:
    app, cfg, metrics, pipeline = worker.app, worker.config, worker.metrics, worker.pipeline
    logs_topic, metrics_topic = cfg.topics.logs, cfg.topics.metrics
    alerts_topic, dlq_topic = worker.topics["alerts"], worker.topics["dlq"]
    max_bytes = cfg.worker.max_message_bytes
    clock = worker.clock

    async def publish_alerts(alerts: list[Alert]) -> None:
        for alert in alerts:
            metrics.alerts.labels(alert.detector, alert.severity.value, alert.status.value).inc()
            await alerts_topic.send(
                key=alert.fingerprint.encode(), value=orjson.dumps(alert.to_dict())
            )

    hot_types = frozenset(worker.mirror.hot_types) if worker.mirror is not None else frozenset()

    @app.agent(worker.topics["input"], name="kestrel-ingest")
    async def ingest(stream: Any) -> None:
        batches = stream.take_events(cfg.worker.batch_max_messages, cfg.worker.batch_within_seconds)
        async for batch in batches:
            started = time.perf_counter()
            result = process_batch(
                pipeline,
                ((event.message, event.value) for event in batch),
                logs_topic=logs_topic,
                hot_types=hot_types,
                max_bytes=max_bytes,
                now=clock(),
            )
            for topic, c in result.counts.items():
                metrics.messages.labels(topic).inc(c.messages)
                metrics.events.labels(topic).inc(c.events)
                if c.late:
                    metrics.late.labels(topic).inc(c.late)
                for reason, n in c.invalid.items():
                    metrics.invalid.labels(topic, reason).inc(n)
            for dead in result.dead:
                await dlq_topic.send(
                    key=dead.key, value=dead.rejected.original, headers=dead.headers()
                )
            if result.alerts:
                await publish_alerts(result.alerts)
            if worker.mirror is not None:
                await worker.mirror.write(result.hot, result.alerts)
            if result.newest_timestamp:
                metrics.lag.set(max(0.0, clock() - result.newest_timestamp))
            metrics.batch_seconds.observe(time.perf_counter() - started)

    @app.agent(alerts_topic, name="kestrel-deliver")
    async def deliver(stream: Any) -> None:
        async for raw in stream:
            try:
                alert = Alert.from_dict(orjson.loads(raw))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("alerts topic: skipping an unreadable record: %s", exc)
                continue
            await worker.deliverer.deliver(alert)

    @app.task  # type: ignore[untyped-decorator]
    async def declare_dlq() -> None:
        await dlq_topic.maybe_declare()

    @app.timer(cfg.worker.checkpoint_interval_seconds)  # type: ignore[untyped-decorator]
    async def checkpoint() -> None:
        _write_states(worker, pipeline.checkpoint())

    @app.timer(1.0)  # type: ignore[untyped-decorator]
    async def tick() -> None:
        alerts = pipeline.tick(clock())
        if alerts:
            await publish_alerts(alerts)
            if worker.mirror is not None:
                await worker.mirror.write((), alerts)
        for kind, n in pipeline.series_counts().items():
            metrics.series.labels(kind).set(n)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: Any, **kwargs: Any) -> None:
        parts = {tp.partition for tp in revoked if tp.topic in (logs_topic, metrics_topic)}
        if parts:
            writes = pipeline.release(parts)
            _write_states(worker, writes)
            log.info("partitions %s revoked: %d state(s) saved", sorted(parts), len(writes))

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def on_shutdown(sender: Any, **kwargs: Any) -> None:
        _write_states(worker, pipeline.checkpoint())
        await app.producer.flush()

    @app.page("/metrics")
    async def metrics_view(web: Any, request: Any) -> Any:
        # aiohttp refuses a charset in content_type=, so the full header goes in headers=.
        return web.bytes(
            generate_latest(worker.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    @app.page("/health")
    async def health_view(web: Any, request: Any) -> Any:
        assigned = sorted(
            {
                tp.partition
                for tp in app.consumer.assignment()
                if tp.topic in (logs_topic, metrics_topic)
            }
        )
        ready = not app.rebalancing and worker.started_at > 0
        body = {
            "status": "ok" if ready else "starting",
            "app_id": cfg.kafka.app_id,
            "partitions": assigned,
            "series": pipeline.series_counts(),
            "redis": None if worker.mirror is None else ("ok" if worker.mirror.healthy else "down"),
        }
        return web.json(body, status=200 if ready else 503)

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        worker.started_at = worker.started_at or clock()
        parts = sorted({tp.partition for tp in assigned if tp.topic in (logs_topic, metrics_topic)})
        log.info("input partitions assigned: %s", parts)
