"""engine.core.series_limit through the pipeline: a cap on the series one worker tracks."""

from __future__ import annotations

import tracemalloc

import pytest
from prometheus_client import CollectorRegistry

from engine.config import ConfigError, parse_config
from engine.core.pipeline import Pipeline, StateWrite
from engine.core.series_limit import QUIET_SECONDS, SERIES, SeriesLimit
from engine.model.alert import Alert, AlertStatus
from engine.runtime.metrics import LiveCollector, LiveCounts
from tests.engine.test_pipeline import (
    T0,
    WALL,
    event,
    gaussian,
    make_config,
    run_metrics,
    sample,
)


class Table:
    """The worker's changelog table as the pipeline sees it (see engine/runtime/ingest.py):
    loading a state takes it out; a state written while in memory is not kept."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def load(self, key: bytes) -> bytes | None:
        return self.data.pop(key, None)

    def write(self, writes: list[StateWrite]) -> None:
        for w in writes:
            if w.resident:
                self.data.pop(w.key, None)
            else:
                self.data[w.key] = w.value


def limited(max_tracked: int, table: Table | None = None, **worker: int) -> Pipeline:
    cfg = make_config(worker={"max_tracked_series": max_tracked, **worker})
    if table is None:
        return Pipeline(cfg)
    limit = SeriesLimit.for_config(cfg, stored=lambda: len(table.data), labels={"worker": "w1"})
    return Pipeline(cfg, loader=table.load, series_limit=limit)


def test_new_series_past_the_limit_get_no_state_and_are_counted() -> None:
    p = limited(3)
    out: list[Alert] = []
    untracked = []
    for i in range(10):
        p.metric(sample(1.0, T0, host=f"h{i}"), 0, out)
        untracked.append(p.series_limit.untracked["metric"])
    assert untracked == [0, 0, 0, 1, 2, 3, 4, 5, 6, 7]
    assert p.series_counts() == {"metric": 3, "latency": 0, "service": 0}
    assert p.series_limit.untracked == {"metric": 7, "latency": 0, "service": 0}
    assert p.created == 3
    assert sorted(w.key for w in p.checkpoint()) == [
        b"m|cpu{host=h0}",
        b"m|cpu{host=h1}",
        b"m|cpu{host=h2}",
    ]
    # An untracked series stays untracked while the limit holds: each event is counted.
    p.metric(sample(2.0, T0 + 10, host="h9"), 0, out)
    assert p.series_limit.untracked["metric"] == 8


def test_every_event_of_an_untracked_series_in_a_batch_is_counted() -> None:
    p = limited(1)
    batch = [sample(float(i), T0 + i, host="a" if i % 3 else "b") for i in range(9)]
    p.judge(batch, 0, WALL, [], [])
    assert p.series_counts()["metric"] == 1
    assert p.series_limit.untracked["metric"] == 6  # the six events of host a, the later series


def test_series_already_tracked_are_still_judged_at_the_limit() -> None:
    p = limited(2)
    run_metrics(p, gaussian(100, seed=1), T0, host="a")
    run_metrics(p, gaussian(100, seed=2), T0, host="b")
    out: list[Alert] = []
    for i in range(50):  # a label explosion meanwhile
        p.metric(sample(1.0, T0 + 1000.0, host=f"user-{i}"), 0, out)
    alerts = run_metrics(p, [500.0] * 4, T0 + 1000.0, host="a")
    assert [(a.labels["host"], a.status) for a in alerts] == [("a", AlertStatus.FIRING)]
    assert p.series_limit.untracked["metric"] == 50


def test_series_evicted_to_the_table_count_and_are_still_judged() -> None:
    table = Table()
    p = limited(4, table, max_series=2)  # two in memory, the rest in the table
    for host in "abcd":
        run_metrics(p, gaussian(60, seed=ord(host)), T0, host=host)
        table.write(p.checkpoint())
    assert p.series_counts()["metric"] == 2 and len(table.data) == 2
    out: list[Alert] = []
    p.metric(sample(1.0, T0 + 600, host="e"), 0, out)  # 2 + 2 = the limit
    assert p.series_limit.untracked["metric"] == 1
    # "a" was evicted: it is loaded back with its baseline and judged, at the limit.
    alerts = run_metrics(p, [500.0] * 4, T0 + 600, host="a")
    assert [a.status for a in alerts] == [AlertStatus.FIRING]
    assert (p.restored, p.created) == (1, 4)
    table.write(p.checkpoint())
    assert p.series_counts()["metric"] + len(table.data) == 4
    p.metric(sample(1.0, T0 + 700, host="e"), 0, out)
    assert p.series_limit.untracked["metric"] == 2


def test_services_and_latency_series_are_counted_by_kind() -> None:
    p = limited(2)
    out: list[Alert] = []
    assert p.log(event(T0, service="api", op="db", ms=5.0), 0, WALL, out)  # service + latency
    assert not p.log(event(T0, service="web"), 0, WALL, out)  # a new service: untracked
    assert p.log(event(T0 + 1, service="api", op="cache", ms=5.0), 0, WALL, out)  # counted...
    assert p.series_limit.untracked == {"metric": 0, "latency": 1, "service": 1}  # ...no latency
    assert p.series_counts() == {"metric": 0, "latency": 1, "service": 1}


def test_the_self_alert_fires_repeats_and_resolves() -> None:
    p = limited(1, Table())
    out: list[Alert] = []
    p.metric(sample(1.0, T0, host="a"), 0, out)
    now = WALL
    assert p.tick(now) == []  # at the limit, but nothing refused yet
    for i in range(5):
        p.metric(sample(1.0, T0, host=f"u{i}"), 0, out)
    (fired,) = p.tick(now)
    assert (fired.series, fired.status, fired.detector) == (
        SERIES,
        AlertStatus.FIRING,
        "series_limit",
    )
    assert fired.labels == {"worker": "w1"} and fired.value == 5.0 and fired.started_at == now
    assert "worker.max_tracked_series" in fired.summary and "5 events" in fired.summary
    p.metric(sample(1.0, T0, host="u9"), 0, out)
    assert p.tick(now + 10) == []  # still firing: repeats only every repeat_interval
    assert p.tick(now + 10 + QUIET_SECONDS - 1) == []  # not quiet for long enough
    (resolved,) = p.tick(now + 10 + QUIET_SECONDS)
    assert (resolved.status, resolved.fingerprint) == (AlertStatus.RESOLVED, fired.fingerprint)
    assert resolved.value == 6.0 and resolved.ended_at == now + 10 + QUIET_SECONDS
    assert p.tick(now + 5000) == []
    p.metric(sample(1.0, T0, host="u10"), 0, out)  # hit again: a new incident
    (again,) = p.tick(now + 6000)
    assert (again.status, again.value, again.started_at) == (AlertStatus.FIRING, 1.0, now + 6000)


def test_a_firing_self_alert_repeats_while_the_limit_is_hit() -> None:
    p = limited(1)
    p.series_limit = SeriesLimit(1, repeat_interval=60.0)
    out: list[Alert] = []
    statuses = []
    for second in range(0, 200, 10):
        p.metric(sample(1.0, T0, host=f"u{second}"), 0, out)
        statuses += [(a.status.value, a.repeat) for a in p.tick(WALL + second)]
    # u0 is the one tracked series; u10 on are refused from 10 s on.
    assert statuses == [("firing", 0), ("firing", 1), ("firing", 2), ("firing", 3)]  # 10 s, 70 s...


def test_the_log_line_comes_at_most_once_a_minute_with_the_count() -> None:
    limit = SeriesLimit(1)
    assert limit.admits("m|a", 0)
    assert limit.report(0.0) is None  # nothing refused
    for i in range(3):
        limit.admits(f"m|x{i}", 1)
    limit.admits("l|svc", 1)
    line = limit.report(100.0)
    assert line is not None and "4 events" in line and "metric 3, service 1" in line
    limit.admits("m|y", 1)
    assert limit.report(159.0) is None  # within the minute
    line = limit.report(160.0)
    assert line is not None and "1 events of new series" in line and "5 since start" in line
    assert limit.report(500.0) is None  # nothing new


def test_untracked_series_take_no_memory() -> None:
    """Memory kept while 4 x 10,000 new series are refused, window by window: none, but for
    one-off growth of the interpreter's own tables (e.g. its interned names) in one window."""
    p = limited(10)
    out: list[Alert] = []
    for i in range(10):
        p.metric(sample(1.0, T0, host=f"h{i}"), 0, out)
    kept = []
    tracemalloc.start()
    try:
        for w in range(4):
            before, _ = tracemalloc.get_traced_memory()
            for i in range(w * 10_000, (w + 1) * 10_000):
                p.metric(sample(1.0, T0, user=f"user-{i}"), 0, out)
            kept.append(tracemalloc.get_traced_memory()[0] - before)
    finally:
        tracemalloc.stop()
    print(f"\nbytes kept per 10,000 untracked series: {kept}")
    assert p.series_limit.untracked["metric"] == 40_000
    assert sum(k < 20_000 for k in kept) >= 3, kept  # a tracked series alone takes several kB


def test_the_untracked_counts_are_exported_by_kind() -> None:
    limit = SeriesLimit(1)
    limit.admits("m|a", 0)
    limit.admits("p|x", 1)
    registry = CollectorRegistry()
    counts = LiveCounts(dict, dict, dict, lambda: 0, dict, untracked=lambda: limit.untracked)
    registry.register(LiveCollector(counts))
    value = registry.get_sample_value
    assert value("kestrel_series_untracked_total", {"kind": "latency"}) == 1.0
    assert value("kestrel_series_untracked_total", {"kind": "metric"}) == 0.0


def test_the_limit_is_configured_per_worker() -> None:
    assert parse_config({}, "t.toml", {}).worker.max_tracked_series == 1_000_000
    with pytest.raises(ConfigError, match=r"worker\.max_tracked_series: must be >= 1"):
        parse_config({"worker": {"max_tracked_series": 0}}, "t.toml", {})
