"""engine.runtime.metrics: live counts are read at scrape time; build info and process metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from engine import __version__
from engine.runtime.metrics import LiveCollector, LiveCounts, register_process_metrics


def test_live_counts_are_read_at_each_scrape() -> None:
    loaded = {"changelog": 0, "new": 0}
    notifier = {"silenced": 0, "inhibited": 0}
    sinks = {"redis": {"written": 0, "failed": 0, "skipped": 0}, "dlq": {"failed": 0}}
    queued = [0]
    up = [True]
    anomalies: dict[str, int] = {}
    registry = CollectorRegistry()
    registry.register(
        LiveCollector(
            LiveCounts(
                states_loaded=lambda: loaded,
                series=lambda: {"metric": 7},
                notifier=lambda: notifier,
                queued_alerts=lambda: queued[0],
                sinks=lambda: sinks,
                mirror_up=lambda: up[0],
                anomalies=lambda: anomalies,
            ),
            detectors=("adaptive", "zscore"),
        )
    )

    def value(name: str, labels: dict[str, str] | None = None) -> float | None:
        return registry.get_sample_value(name, labels or {})

    assert value("kestrel_series_states_loaded_total", {"source": "changelog"}) == 0
    assert value("kestrel_series_tracked", {"kind": "latency"}) == 0  # shown before any exists
    assert value("kestrel_anomalous_points_total", {"detector": "zscore"}) == 0  # (the same)
    loaded["changelog"] = 5
    notifier["inhibited"] = 2
    sinks["redis"]["failed"] = 3
    sinks["dlq"]["failed"] = 1
    queued[0] = 4
    anomalies.update(zscore=6, new_pattern=1)  # (a detector the config no longer uses)
    assert value("kestrel_series_states_loaded_total", {"source": "changelog"}) == 5
    assert value("kestrel_series_tracked", {"kind": "metric"}) == 7
    assert value("kestrel_notifications_muted_total", {"reason": "inhibited"}) == 2
    assert value("kestrel_redis_mirror_events_total", {"outcome": "failed"}) == 3
    assert value("kestrel_dlq_write_errors_total") == 1
    assert value("kestrel_notification_queue_alerts") == 4
    assert value("kestrel_anomalous_points_total", {"detector": "zscore"}) == 6
    assert value("kestrel_anomalous_points_total", {"detector": "adaptive"}) == 0
    assert value("kestrel_anomalous_points_total", {"detector": "new_pattern"}) == 1
    assert value("kestrel_redis_mirror_up") == 1
    up[0] = False
    assert value("kestrel_redis_mirror_up") == 0


def test_the_mirror_gauge_is_absent_without_a_mirror() -> None:
    registry = CollectorRegistry()
    counts = LiveCounts(lambda: {}, dict, dict, lambda: 0, lambda: {})
    registry.register(LiveCollector(counts))
    assert registry.get_sample_value("kestrel_redis_mirror_up") is None
    skipped = registry.get_sample_value("kestrel_redis_mirror_events_total", {"outcome": "skipped"})
    assert skipped == 0


def test_build_info_and_process_metrics() -> None:
    registry = CollectorRegistry()
    register_process_metrics(registry, __version__)
    names = {m.name for m in registry.collect()}
    assert {"kestrel_build", "python_info", "process_cpu_seconds", "python_gc_collections"} <= names
    info = next(m for m in registry.collect() if m.name == "kestrel_build")
    (sample,) = info.samples
    assert sample.name == "kestrel_build_info" and sample.labels["version"] == __version__
    # make compiles the hot detector modules (tests/detectors/test_compiled.py checks the build).
    assert sample.labels["compiled"] == "detectors.seasonal,detectors.adaptive"
