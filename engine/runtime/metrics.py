"""The worker's Prometheus metrics, built against an injected registry.

Names follow Prometheus conventions (``kestrel_`` prefix, ``_total`` counters, base units) and
every label set is bounded: topics come from config, reasons from
:data:`engine.model.events.REASONS`, detectors from the registry, channels from config. A series
id is never a label.

Two kinds: :class:`KestrelMetrics` holds the counters and histograms the runtime increments where
things happen; :class:`LiveCollector` reads counts the pure parts keep themselves (the pipeline's
state loads, the notifier's totals, the sinks' outcomes) at scrape time, so nothing is copied by
hand. :func:`register_process_metrics` adds ``kestrel_build_info`` and the standard process and
platform metrics.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> m = KestrelMetrics(registry, topics=("logs",), detectors=("zscore",), channels=("ops",))
>>> labels = {"topic": "logs", "reason": "invalid_json"}
>>> registry.get_sample_value("kestrel_invalid_events_total", labels)
0.0
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from detectors.compiled import compiled_modules
from engine.model.alert import AlertStatus, Severity
from engine.model.events import REASONS
from engine.sinks.redis_mirror import MIRROR_OUTCOMES

__all__ = [
    "DELIVERY_OUTCOMES",
    "KestrelMetrics",
    "LiveCollector",
    "LiveCounts",
    "register_process_metrics",
]

DELIVERY_OUTCOMES = ("ok", "retried", "dead_lettered")
SERIES_KINDS = ("metric", "latency", "service")
STATE_SOURCES = ("changelog", "new")
MUTE_REASONS = ("silenced", "inhibited")


class KestrelMetrics:
    """The counters and histograms the runtime increments; every label child shows from start."""

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
        self.last_batch = Gauge(
            "kestrel_last_batch_timestamp_seconds",
            "Wall-clock time (epoch seconds) the worker finished judging its last input batch "
            "(time() minus it: how long the worker has consumed nothing).",
            registry=registry,
        )
        self.lag = Gauge(
            "kestrel_processing_lag_seconds",
            "Wall-clock time from a message's Kafka timestamp to the end of its processing.",
            registry=registry,
        )
        self.checkpoints = Counter(
            "kestrel_checkpoint_writes_total",
            "Series states written to the changelog.",
            registry=registry,
        )
        self.restored = Counter(
            "kestrel_changelog_records_restored_total",
            "State changelog records applied to the state table while recovering it.",
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "kestrel_batch_seconds",
            "Processing time of one consumed batch.",
            registry=registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
        )
        self.silenced_records = Counter(
            "kestrel_alerts_silenced_total",
            "Alert transitions recorded while a silence matched them.",
            registry=registry,
        )
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


@dataclass(frozen=True, slots=True)
class LiveCounts:
    """Where :class:`LiveCollector` reads each count, as functions called at scrape time.

    ``states_loaded``: states by source (``changelog``/``new``); ``series``: series in memory by
    kind; ``notifier``: the notifier's totals (``silenced``, ``inhibited``, ...);
    ``queued_alerts``: alerts waiting in notification groups; ``sinks``: each sink's outcome
    counts by sink name; ``mirror_up``: whether the Redis mirror's last write succeeded (``None``
    when there is no mirror); ``untracked``: events of new series not tracked for the series
    limit, by kind; ``anomalies``: points judged anomalous, by detector.
    """

    states_loaded: Callable[[], Mapping[str, int]]
    series: Callable[[], Mapping[str, int]]
    notifier: Callable[[], Mapping[str, int]]
    queued_alerts: Callable[[], int]
    sinks: Callable[[], Mapping[str, Mapping[str, int]]]
    mirror_up: Callable[[], bool | None] = lambda: None
    untracked: Callable[[], Mapping[str, int]] = dict
    anomalies: Callable[[], Mapping[str, int]] = dict


class LiveCollector(Collector):
    """Exports counts kept by the worker's parts, read when Prometheus scrapes.

    >>> from prometheus_client import CollectorRegistry
    >>> registry = CollectorRegistry()
    >>> counts = LiveCounts(lambda: {"new": 3.0}, dict, dict, lambda: 0, lambda: {})
    >>> registry.register(LiveCollector(counts))
    >>> registry.get_sample_value("kestrel_series_states_loaded_total", {"source": "new"})
    3.0
    """

    def __init__(self, counts: LiveCounts, detectors: Iterable[str] = ()) -> None:
        self._counts = counts
        self._detectors = tuple(detectors)  # shown at 0 before their first anomaly

    def collect(self) -> Iterator[Metric]:
        """The current values (every label child shown, at 0 when nothing happened yet)."""
        c = self._counts
        loaded = CounterMetricFamily(
            "kestrel_series_states_loaded",
            "Series states brought into memory: restored from the changelog, or new.",
            labels=["source"],
        )
        states = c.states_loaded()
        for source in STATE_SOURCES:
            loaded.add_metric([source], states.get(source, 0))
        yield loaded
        tracked = GaugeMetricFamily(
            "kestrel_series_tracked", "Series held in memory by this worker.", labels=["kind"]
        )
        series = c.series()
        for kind in SERIES_KINDS:
            tracked.add_metric([kind], series.get(kind, 0))
        yield tracked
        untracked = CounterMetricFamily(
            "kestrel_series_untracked",
            "Events of new series not tracked (no state, not judged): the worker was at "
            "worker.max_tracked_series. By kind of series.",
            labels=["kind"],
        )
        refused = c.untracked()
        for kind in SERIES_KINDS:
            untracked.add_metric([kind], refused.get(kind, 0))
        yield untracked
        anomalous = CounterMetricFamily(
            "kestrel_anomalous_points",
            "Points (values, windows, log messages) each detector judged anomalous, whether or "
            "not they made an alert (fire_after and the incident rules decide that).",
            labels=["detector"],
        )
        found = c.anomalies()
        for det in sorted({*self._detectors, *found}):
            anomalous.add_metric([det], found.get(det, 0))
        yield anomalous
        muted = CounterMetricFamily(
            "kestrel_notifications_muted",
            "Alerts left out of notifications, by why: silenced or inhibited.",
            labels=["reason"],
        )
        notifier = c.notifier()
        for reason in MUTE_REASONS:
            muted.add_metric([reason], notifier.get(reason, 0))
        yield muted
        yield GaugeMetricFamily(
            "kestrel_notification_queue_alerts",
            "Alerts held in notification groups, waiting to be sent or to resolve.",
            value=c.queued_alerts(),
        )
        sinks = c.sinks()
        mirror = CounterMetricFamily(
            "kestrel_redis_mirror_events",
            "Hot events and alerts mirrored to Redis, by outcome.",
            labels=["outcome"],
        )
        redis_counts = sinks.get("redis", {})
        for outcome in MIRROR_OUTCOMES:
            mirror.add_metric([outcome], redis_counts.get(outcome, 0))
        yield mirror
        up = c.mirror_up()
        if up is not None:
            yield GaugeMetricFamily(
                "kestrel_redis_mirror_up",
                "1 while the Redis mirror writes (its last write succeeded, or none was tried), "
                "0 from a failed write until one succeeds again.",
                value=1.0 if up else 0.0,
            )
        yield CounterMetricFamily(
            "kestrel_dlq_write_errors",
            "Rejected inputs that could not be written to the dead-letter topic.",
            value=sinks.get("dlq", {}).get("failed", 0),
        )


def register_process_metrics(registry: CollectorRegistry, version: str) -> None:
    """Add ``kestrel_build_info`` and the standard ``process_*``, ``python_gc_*`` and
    ``python_info`` metrics.

    ``kestrel_build_info`` has the version, the Python, and ``compiled``: the detector modules
    running compiled by mypyc (comma-separated, ``none`` for a pure-Python build; see
    :mod:`detectors.compiled`).
    """
    Info(
        "kestrel_build",
        "Kestrel's version, the Python running it and its compiled detector modules.",
        registry=registry,
    ).info(
        {
            "version": version,
            "python": platform.python_version(),
            "compiled": ",".join(compiled_modules()) or "none",
        }
    )
    ProcessCollector(registry=registry)
    GCCollector(registry=registry)
    PlatformCollector(registry=registry)
