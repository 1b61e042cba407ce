"""The worker's Prometheus metrics, built against an injected registry.

Names follow Prometheus conventions (``kestrel_`` prefix, ``_total`` counters, base units) and
every label set is bounded: topics come from config, reasons from :data:`engine.events.REASONS`,
detectors from the registry, channels from config. A series id is never a label.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> m = KestrelMetrics(registry, topics=("logs",), detectors=("zscore",), channels=("ops",))
>>> labels = {"topic": "logs", "reason": "invalid_json"}
>>> registry.get_sample_value("kestrel_invalid_events_total", labels)
0.0
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from alert_channels.alert import AlertStatus, Severity
from engine.events import REASONS

__all__ = ["DELIVERY_OUTCOMES", "KestrelMetrics"]

DELIVERY_OUTCOMES = ("ok", "retried", "dead_lettered")
MIRROR_OUTCOMES = ("written", "failed", "skipped")
SERIES_KINDS = ("metric", "latency", "service")


class KestrelMetrics:
    """Every metric the worker exports; label children are created up front so they show at 0."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        topics: Iterable[str],
        detectors: Iterable[str],
        channels: Iterable[str],
    ) -> None:
        topics, detectors, channels = tuple(topics), tuple(detectors), tuple(channels)
        self.messages = Counter(
            "kestrel_messages_consumed_total",
            "Kafka messages consumed.",
            ["topic"],
            registry=registry,
        )
        self.events = Counter(
            "kestrel_events_consumed_total",
            "Valid events consumed (a batch message counts each event).",
            ["topic"],
            registry=registry,
        )
        self.invalid = Counter(
            "kestrel_invalid_events_total",
            "Rejected inputs sent to the dead-letter topic, by reason.",
            ["topic", "reason"],
            registry=registry,
        )
        self.dlq_errors = Counter(
            "kestrel_dlq_write_errors_total",
            "Rejected inputs that could not be written to the dead-letter topic.",
            registry=registry,
        )
        self.late = Counter(
            "kestrel_late_events_total",
            "Events older than the allowed lateness, not counted in any window or baseline.",
            ["topic"],
            registry=registry,
        )
        self.alerts = Counter(
            "kestrel_alerts_total",
            "Alert transitions written to the alerts topic.",
            ["detector", "severity", "status"],
            registry=registry,
        )
        self.deliveries = Counter(
            "kestrel_deliveries_total",
            "Alert notifications by channel and outcome.",
            ["channel", "outcome"],
            registry=registry,
        )
        self.delivery_seconds = Histogram(
            "kestrel_delivery_seconds",
            "Time to deliver one notification, retries included.",
            ["channel"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.series = Gauge(
            "kestrel_series_tracked",
            "Series held in memory by this worker.",
            ["kind"],
            registry=registry,
        )
        self.lag = Gauge(
            "kestrel_processing_lag_seconds",
            "Wall-clock time from a message's Kafka timestamp to the end of its processing.",
            registry=registry,
        )
        self.mirror = Counter(
            "kestrel_redis_mirror_events_total",
            "Hot events and alerts mirrored to Redis, by outcome.",
            ["outcome"],
            registry=registry,
        )
        self.states_loaded = Counter(
            "kestrel_series_states_loaded_total",
            "Series states brought into memory: restored from the changelog, or new.",
            ["source"],
            registry=registry,
        )
        for source in ("changelog", "new"):
            self.states_loaded.labels(source)
        self.checkpoints = Counter(
            "kestrel_checkpoint_writes_total",
            "Series states written to the changelog.",
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "kestrel_batch_seconds",
            "Processing time of one consumed batch.",
            registry=registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
        )
        self.muted = Counter(
            "kestrel_notifications_muted_total",
            "Alerts left out of notifications, by why: silenced or inhibited.",
            ["reason"],
            registry=registry,
        )
        self.queue_depth = Gauge(
            "kestrel_notification_queue_alerts",
            "Alerts held in notification groups, waiting to be sent or to resolve.",
            registry=registry,
        )
        self.silenced_records = Counter(
            "kestrel_alerts_silenced_total",
            "Alert transitions recorded while a silence matched them.",
            registry=registry,
        )
        for reason in ("silenced", "inhibited"):
            self.muted.labels(reason)
        for topic in topics:
            self.messages.labels(topic)
            self.events.labels(topic)
            self.late.labels(topic)
            for reason in REASONS:
                self.invalid.labels(topic, reason)
        for det in detectors:
            for sev in Severity:
                for status in AlertStatus:
                    self.alerts.labels(det, sev.value, status.value)
        for ch in channels:
            self.delivery_seconds.labels(ch)
            for outcome in DELIVERY_OUTCOMES:
                self.deliveries.labels(ch, outcome)
        for kind in SERIES_KINDS:
            self.series.labels(kind)
        for outcome in MIRROR_OUTCOMES:
            self.mirror.labels(outcome)
