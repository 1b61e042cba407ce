"""The Faust app, built in one place: topics, the state table, agents, timers and web views.

Agents here contain no decisions: they batch, call :class:`engine.pipeline.Pipeline` and
:class:`engine.notifier.Notifier`, and do the I/O (Kafka, Redis, HTTP).

Crash semantics (at-least-once): Faust commits consumed offsets every
``broker_commit_interval`` (2.8 s by default) and Kestrel checkpoints changed series state every
``worker.checkpoint_interval_seconds``. After a crash, the messages since the last offset commit
are consumed again and learned again by state checkpointed up to ``checkpoint_interval`` earlier
or later; so at most about ``checkpoint_interval + commit_interval`` seconds of events are
replayed: a few points may be learned twice, and an incident that fired in that span may be
recorded again (the notifier's log usually keeps it from being notified twice). A clean stop
checkpoints everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import faust
import orjson
from prometheus_client import CollectorRegistry

from alert_channels.alert import Alert
from alert_channels.base import alert_labels
from engine.channels import ChannelRoute
from engine.config import Config
from engine.dlq import DeadNotification, DeliveredLater
from engine.ingest import process_batch
from engine.metrics import KestrelMetrics
from engine.mirror import RedisMirror
from engine.notifier import Notifier
from engine.notify import Silence, Silences, silence_from_settings
from engine.pipeline import Pipeline, StateWrite
from engine.topic_view import TopicView, read_last, read_latest
from engine.transport import Transport
from engine.web import register_views

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
    notifier: Notifier
    silences: Silences
    clock: Callable[[], float]
    topics: dict[str, Any] = field(default_factory=dict)
    table: Any = None
    started_at: float = 0.0
    silence_view: TopicView | None = None
    # Input partitions assigned since the last check that the table holds their saved states.
    unchecked: set[int] = field(default_factory=set)
    exported: dict[str, int] = field(default_factory=dict)  # pipeline counts already exported


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
        # One partition: one active notifier sees every alert (see engine.notifier).
        "alerts": _raw_topic(app, topics_cfg.alerts, 1),
        "dlq": _raw_topic(app, topics_cfg.dlq, p),
        "alerts_dlq": _raw_topic(app, topics_cfg.alerts_dlq, 1),
        "silences": _raw_topic(app, topics_cfg.silences, 1, compacted=True),
        "notify_state": _raw_topic(app, notify_state_topic(config), 1, compacted=True),
    }
    silences = Silences(map(silence_from_settings, config.silences))

    async def dead_letter(dead: DeadNotification | DeliveredLater) -> None:
        await topics["alerts_dlq"].send(key=dead.key, value=dead.to_json())

    async def save_state(state: bytes) -> None:
        await topics["notify_state"].send(key=b"dispatcher", value=state)

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
        config, app, pipeline, metrics, registry, mirror, notifier, silences, clock, topics, table
    )
    _wire_ingest(worker)
    _wire_notify(worker)
    register_views(worker)
    return worker


def notify_state_topic(config: Config) -> str:
    """The topic holding the notifier's state snapshots (``<app_id>-notify-state``)."""
    return f"{config.kafka.app_id}-notify-state"


def _all_detector_kinds(config: Config) -> list[str]:
    s = config.series
    kinds = {
        *s.metric_detectors,
        *s.latency_detectors,
        *s.event_count_detectors,
        *s.error_detectors,
        *s.pattern_detectors,
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


async def _complete_table(worker: Worker) -> None:
    """Make sure the state table holds every state saved for the newly assigned partitions.

    Faust's recovery of a memory table on the embedded broker sometimes stops early (seen: one
    key of five restored), and a series whose state is missing would start afresh. So after
    recovery Kestrel reads those changelog partitions itself and adds any key Faust missed.
    """
    parts, worker.unchecked = sorted(worker.unchecked), set()
    topic = worker.table.changelog_topic.get_topic_name()
    latest = await read_latest(worker.config.kafka.bootstrap_servers, topic, parts)
    data = worker.table.data
    missing = [key for key in latest if key not in data]
    for key in missing:
        data[key] = latest[key]
    if missing:
        log.warning("state table: %d saved state(s) added after recovery", len(missing))


def _count_loads(worker: Worker) -> None:
    """Export the pipeline's state-load counts (the pipeline itself knows no metrics)."""
    totals = {"changelog": worker.pipeline.restored, "new": worker.pipeline.created}
    for source, total in totals.items():
        delta = total - worker.exported.get(source, 0)
        if delta > 0:
            worker.metrics.states_loaded.labels(source).inc(delta)
            worker.exported[source] = total


def _wire_ingest(worker: Worker) -> None:
    """The ingest agent (detection), its timers and the state checkpoints."""
    app, cfg, metrics, pipeline = worker.app, worker.config, worker.metrics, worker.pipeline
    logs_topic, metrics_topic = cfg.topics.logs, cfg.topics.metrics
    alerts_topic, dlq_topic = worker.topics["alerts"], worker.topics["dlq"]
    max_bytes = cfg.worker.max_message_bytes
    clock = worker.clock

    async def publish_alerts(alerts: list[Alert]) -> list[Alert]:
        now = clock()
        recorded = []
        for alert in alerts:
            if worker.silences.is_silenced(alert_labels(alert), now):
                alert = replace(alert, silenced=True)
                metrics.silenced_records.inc()
            recorded.append(alert)
            metrics.alerts.labels(alert.detector, alert.severity.value, alert.status.value).inc()
            await alerts_topic.send(
                key=alert.fingerprint.encode(), value=orjson.dumps(alert.to_dict())
            )
        return recorded

    hot_types = frozenset(worker.mirror.hot_types) if worker.mirror is not None else frozenset()

    @app.agent(worker.topics["input"], name="kestrel-ingest")
    async def ingest(stream: Any) -> None:
        batches = stream.take_events(cfg.worker.batch_max_messages, cfg.worker.batch_within_seconds)
        recovery = app.tables.recovery  # type: ignore[attr-defined]
        async for batch in batches:
            # Series state comes from the changelog table: judging an event before the table is
            # restored would start its series afresh (a new warm-up) and shadow the saved state.
            while app.in_recovery or not recovery.completed.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            if worker.unchecked:
                await _complete_table(worker)
            started = time.perf_counter()
            result = process_batch(
                pipeline,
                ((event.message, event.value) for event in batch),
                logs_topic=logs_topic,
                hot_types=hot_types,
                max_bytes=max_bytes,
                max_future_seconds=cfg.worker.max_future_seconds,
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
                try:
                    await dlq_topic.send(
                        key=dead.key, value=dead.rejected.original, headers=dead.headers()
                    )
                except Exception as exc:  # the DLQ refused it: count it, keep the batch going
                    metrics.dlq_errors.inc()
                    log.error("dead-letter topic: cannot write a rejected input: %r", exc)
            alerts = await publish_alerts(result.alerts) if result.alerts else []
            if worker.mirror is not None:
                await worker.mirror.write(result.hot, alerts)
            if result.newest_timestamp:
                metrics.lag.set(max(0.0, clock() - result.newest_timestamp))
            metrics.batch_seconds.observe(time.perf_counter() - started)

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
            alerts = await publish_alerts(alerts)
            if worker.mirror is not None:
                await worker.mirror.write((), alerts)
        for kind, n in pipeline.series_counts().items():
            metrics.series.labels(kind).set(n)
        _count_loads(worker)

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

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        worker.started_at = worker.started_at or clock()
        parts = sorted({tp.partition for tp in assigned if tp.topic in (logs_topic, metrics_topic)})
        worker.unchecked.update(parts)
        log.info("input partitions assigned: %s", parts)


def _wire_notify(worker: Worker) -> None:
    """The delivery agent on the alerts topic, the notifier's timer, and the silences view."""
    app, cfg, notifier = worker.app, worker.config, worker.notifier
    alerts_tp = (cfg.topics.alerts, 0)
    state_topic = notify_state_topic(cfg)
    bootstrap = cfg.kafka.bootstrap_servers

    @app.agent(worker.topics["alerts"], name="kestrel-deliver")
    async def deliver(stream: Any) -> None:
        async for raw in stream:
            try:
                alert = Alert.from_dict(orjson.loads(raw))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("alerts topic: skipping an unreadable record: %s", exc)
                continue
            await notifier.ingest(alert)

    @app.timer(0.5)  # type: ignore[untyped-decorator]
    async def flush_notifications() -> None:
        await notifier.flush()

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned_alerts(sender: Any, assigned: Any, **kwargs: Any) -> None:
        if not notifier.active and any((tp.topic, tp.partition) == alerts_tp for tp in assigned):
            if worker.silence_view is not None:  # know the silences before sending anything
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(worker.silence_view.ready.wait(), 10.0)
            notifier.activate(await read_last(bootstrap, state_topic))

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked_alerts(sender: Any, revoked: Any, **kwargs: Any) -> None:
        if any((tp.topic, tp.partition) == alerts_tp for tp in revoked):
            await notifier.deactivate()

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def on_shutdown_notify(sender: Any, **kwargs: Any) -> None:
        await notifier.deactivate()
        if worker.silence_view is not None:
            await worker.silence_view.stop()

    def apply_silence(key: bytes, value: bytes | None) -> None:
        if value is None:
            return
        try:
            worker.silences.upsert(Silence.from_state(orjson.loads(value)))
        except (ValueError, KeyError, TypeError) as exc:
            log.error("silences topic: skipping an unreadable record: %s", exc)

    worker.silence_view = TopicView(bootstrap, cfg.topics.silences, apply_silence)

    @app.task  # type: ignore[untyped-decorator]
    async def follow_silences() -> None:
        assert worker.silence_view is not None
        await worker.topics["silences"].maybe_declare()
        worker.silence_view.start()

    @app.task  # type: ignore[untyped-decorator]
    async def declare_alert_topics() -> None:
        await worker.topics["alerts_dlq"].maybe_declare()
        await worker.topics["notify_state"].maybe_declare()
