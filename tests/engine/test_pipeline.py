"""engine.core.pipeline: events in, alerts and checkpointed state out (pure, no Kafka)."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import orjson
import pytest

from detectors.adaptive import AdaptiveParams
from engine.config import Config, parse_config
from engine.core.pipeline import (
    ERROR_RATIO,
    EVENT_COUNT,
    LATENCY,
    Pipeline,
    StateWrite,
    _params_hash,
)
from engine.model.alert import Alert, AlertStatus
from engine.model.events import LogEvent, MetricSample

T0 = 1_699_999_980.0  # event time of the first window (a multiple of 60)
WALL = T0 + 7200.0  # the wall clock, for log(); two hours after T0


def make_config(
    overrides: list[dict[str, Any]] | None = None, **sections: dict[str, Any]
) -> Config:
    """60 s windows, no lateness, 10 s idle advance, no repeats, no log patterns; else as given."""
    data: dict[str, Any] = {
        # zscore: these tests are about the pipeline's mechanics, judged with a simple detector.
        "series": {"pattern_detectors": [], "metric_detectors": ["zscore"]},
        "windows": {"size_seconds": 60, "allowed_lateness_seconds": 0, "idle_advance_seconds": 10},
        "alerts": {"repeat_interval_seconds": 1e9},
        "overrides": overrides or [],
    }
    for name, table in sections.items():
        data[name] = {**data.get(name, {}), **table}
    return parse_config(data, "test.toml", {})


#: Quick to warm up and to fire, for the event-count series.
FAST_COUNTS = [{"match": "log.events*", "detectors": {"zscore": {"warmup": 5, "fire_after": 1}}}]


def sample(value: float, ts: float, name: str = "cpu", **labels: str) -> MetricSample:
    return MetricSample(name, value, ts, labels or {"host": "a"})


def event(
    ts: float,
    error: bool = False,
    service: str = "api",
    op: str | None = None,
    ms: float | None = None,
    message: str = "m",
) -> LogEvent:
    return LogEvent(
        ts=ts,
        level="ERROR" if error else "INFO",
        service=service,
        message=message,
        type=None,
        operation=op,
        duration_ms=ms,
        raw={},
    )


def window_events(
    first: int, counts: Iterable[tuple[int, int]], service: str = "api"
) -> list[LogEvent]:
    """Events for consecutive 60 s windows from window index ``first``: (events, errors) each."""
    out: list[LogEvent] = []
    for w, (total, errors) in enumerate(counts, start=first):
        start = T0 + 60.0 * w
        out.extend(event(start + 59.0 * i / total, i < errors, service) for i in range(total))
    return out


def gaussian(n: int, seed: int, mean: float = 100.0, sd: float = 5.0) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(mean, sd) for _ in range(n)]


def run_metrics(
    p: Pipeline, values: list[float], t0: float, partition: int = 0, **labels: str
) -> list[Alert]:
    out: list[Alert] = []
    for i, v in enumerate(values):
        assert p.metric(sample(v, t0 + 10.0 * i, **labels), partition, out)
    return out


def run_logs(
    p: Pipeline, events: list[LogEvent], partition: int = 0, now: float = WALL
) -> list[Alert]:
    out: list[Alert] = []
    for ev in events:
        p.log(ev, partition, now, out)
    return out


def dicts(alerts: list[Alert]) -> list[dict[str, Any]]:
    return [a.to_dict() for a in alerts]


class Table:
    """The worker's state table as the pipeline sees it: a load takes the state out (the
    pipeline holds it from then on); a write keeps a copy only of states not in memory, and
    only changed states go to the changelog."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.changelog: dict[bytes, bytes] = {}

    def load(self, key: bytes) -> bytes | None:
        return self.data.pop(key, None)

    def write(self, writes: Iterable[StateWrite]) -> None:
        for w in writes:
            if w.resident:
                self.data.pop(w.key, None)
            else:
                self.data[w.key] = w.value
            if w.changed:
                self.changelog[w.key] = w.value


def by_key(writes: list[StateWrite]) -> dict[bytes, StateWrite]:
    keys = [w.key for w in writes]
    assert len(keys) == len(set(keys))
    return {w.key: w for w in writes}


# -- metrics ----------------------------------------------------------------------------------


def test_a_spike_in_a_stationary_metric_fires_then_resolves() -> None:
    p = Pipeline(make_config())
    assert run_metrics(p, gaussian(200, seed=1), T0) == []
    spike_t0 = T0 + 2000.0
    alerts = run_metrics(p, [200.0] * 5, spike_t0)
    (fired,) = alerts  # the default zscore fires after 3 anomalous points, once
    assert fired.status is AlertStatus.FIRING
    assert (fired.series, dict(fired.labels), fired.detector) == ("cpu", {"host": "a"}, "zscore")
    assert fired.value == 200.0
    assert fired.started_at == spike_t0 + 20.0  # the third spike point
    assert fired.expected == pytest.approx(100.0, abs=3.0)
    assert fired.score > 4.0
    resolved = run_metrics(p, gaussian(5, seed=2), spike_t0 + 50.0)
    assert [(a.status, a.started_at) for a in resolved] == [
        (AlertStatus.RESOLVED, fired.started_at)
    ]


def test_a_stationary_metric_raises_no_alert() -> None:
    p = Pipeline(make_config())
    assert run_metrics(p, gaussian(3000, seed=5), T0) == []
    assert run_metrics(p, gaussian(3000, seed=6, mean=-40.0, sd=0.5), T0, host="b") == []


def test_each_labelled_series_has_its_own_baseline() -> None:
    p = Pipeline(make_config())
    run_metrics(p, gaussian(100, seed=1), T0, host="a")
    run_metrics(p, gaussian(100, seed=2, mean=1000.0, sd=10.0), T0, host="b")
    alerts = run_metrics(p, [1000.0] * 3, T0 + 1000.0, host="a")  # normal for b, a spike for a
    assert [a.labels["host"] for a in alerts] == ["a"]
    assert p.series_counts() == {"metric": 2, "latency": 0, "service": 0}


def test_overrides_apply_to_matching_series() -> None:
    override = {
        "match": "cpu{host=b}",
        "severity": "critical",
        "detectors": {"zscore": {"fire_after": 1}},
    }
    p = Pipeline(make_config([override]))
    run_metrics(p, gaussian(100, seed=1), T0, host="a")
    run_metrics(p, gaussian(100, seed=1), T0, host="b")
    a = run_metrics(p, [300.0], T0 + 1000.0, host="a")
    b = run_metrics(p, [300.0], T0 + 1000.0, host="b")
    assert a == []
    assert [(x.status, x.severity.value) for x in b] == [(AlertStatus.FIRING, "critical")]


def test_late_metric_samples_are_counted_and_not_learned() -> None:
    p = Pipeline(make_config(windows={"allowed_lateness_seconds": 30}))
    out: list[Alert] = []
    assert p.metric(sample(1.0, 1000.0), 0, out)
    p.checkpoint()
    assert not p.metric(sample(1.0, 969.0), 0, out)
    assert p.late_events == 1
    assert p.checkpoint() == []  # nothing changed
    assert p.metric(sample(1.0, 975.0), 0, out)  # within lateness
    # Lateness is measured from the newest sample, not the last one: no creeping back in time.
    assert not p.metric(sample(1.0, 950.0), 0, out)
    assert p.late_events == 2


@pytest.mark.parametrize("batched", [False, True], ids=["point by point", "in batches"])
def test_anomalous_points_are_counted_by_detector_whether_or_not_they_alert(
    batched: bool,
) -> None:
    # zscore's default fire_after is 3: isolated spikes are anomalous points but make no alert;
    # the spikes of host b come three in a row and fire (each of the three is counted).
    p = Pipeline(make_config())
    events = [sample(v, T0 + 10.0 * i, host="a") for i, v in enumerate(gaussian(300, seed=1))]
    events += [sample(v, T0 + 10.0 * i, host="b") for i, v in enumerate(gaussian(300, seed=3))]
    for i in (100, 150, 200, 250):  # host a: four isolated spikes
        events[i] = sample(400.0, T0 + 10.0 * i, host="a")
    for i in (400, 401, 402):  # host b: one incident of three points
        events[i] = sample(400.0, T0 + 10.0 * (i - 300), host="b")
    events.sort(key=lambda e: e.ts)
    out: list[Alert] = []
    if batched:
        for start in range(0, len(events), 64):
            p.judge(events[start : start + 64], 0, WALL, out, [])
    else:
        for ev in events:
            p.judge([ev], 0, WALL, out, [])
    assert [(a.labels["host"], a.status) for a in out] == [
        ("b", AlertStatus.FIRING),
        ("b", AlertStatus.RESOLVED),
    ]
    assert p.anomalies == {"zscore": 7}


@pytest.mark.parametrize("detectors", [["zscore"], ["adaptive", "zscore"]])
def test_a_batch_is_judged_as_its_events_one_by_one(detectors: list[str]) -> None:
    # The pipeline judges a batch series by series (each detector takes a series' run of points
    # in one call): alerts, lateness and states must be those of judging event by event.
    cfg = make_config(
        [{"match": "*", "detectors": {"zscore": {"fire_after": 1, "resolve_after": 2}}}],
        series={"metric_detectors": detectors},
        windows={"allowed_lateness_seconds": 30},
    )
    rng = random.Random(4)
    events: list[MetricSample] = []
    for i in range(1500):
        host = f"h{i % 3}"
        ts = T0 + 10.0 * (i // 3)
        if i % 97 == 0:
            ts -= 20.0  # within the lateness allowed
        elif i % 89 == 0:
            ts -= 60.0  # too late
        value = rng.gauss(100.0, 5.0) + (300.0 if (i // 3) % 40 == 39 else 0.0)
        events.append(sample(value, ts, host=host))
    one, many = Pipeline(cfg), Pipeline(cfg)
    alone: list[Alert] = []
    for ev in events:
        one.judge([ev], 0, WALL, alone, [])
    batched: list[Alert] = []
    for start in range(0, len(events), 101):
        many.judge(events[start : start + 101], 0, WALL, batched, [])

    assert many.late_events == one.late_events > 0
    assert len(alone) > 20
    by_series = {a.fingerprint for a in alone}
    for fp in by_series:  # in order within each series (and detector)
        assert dicts([a for a in batched if a.fingerprint == fp]) == dicts(
            [a for a in alone if a.fingerprint == fp]
        )
    assert len(batched) == len(alone)
    assert many.anomalies == one.anomalies
    assert by_key(many.checkpoint()) == by_key(one.checkpoint())


# -- logs -------------------------------------------------------------------------------------


def test_an_error_burst_alerts_on_the_error_ratio_once_its_window_closes() -> None:
    p = Pipeline(make_config())
    normal = window_events(0, [(100, 1)] * 10)
    assert run_logs(p, normal) == []
    burst = window_events(10, [(100, 40)])
    assert run_logs(p, burst) == []  # the window is still open
    alerts = run_logs(p, [event(T0 + 660.0)])  # the next window's first event closes it
    (alert,) = alerts
    assert (alert.series, dict(alert.labels), alert.detector) == (
        ERROR_RATIO,
        {"service": "api"},
        "error_spike",
    )
    assert alert.status is AlertStatus.FIRING
    assert alert.value == pytest.approx(0.4)
    assert alert.expected == pytest.approx(0.01, abs=0.005)
    assert alert.started_at == T0 + 660.0  # the window's end (event time)
    # error_spike resolves after two normal windows.
    tail = run_logs(p, [*window_events(11, [(100, 1)] * 2), event(T0 + 780.0)])
    assert [(a.series, a.status) for a in tail] == [(ERROR_RATIO, AlertStatus.RESOLVED)]


def test_a_value_detector_on_the_error_series_judges_the_error_ratio() -> None:
    zscore = {"warmup": 10, "fire_after": 1, "direction": "up"}
    overrides = [{"match": "log.error_ratio*", "detectors": {"zscore": zscore}}]
    p = Pipeline(make_config(overrides, series={"error_detectors": ["zscore"]}))
    rng = random.Random(5)
    assert run_logs(p, window_events(0, [(100, rng.randint(1, 3)) for _ in range(20)])) == []
    (alert,) = run_logs(p, [*window_events(20, [(100, 40)]), event(T0 + 1260.0)])
    assert (alert.series, alert.detector, alert.status) == (
        ERROR_RATIO,
        "zscore",
        AlertStatus.FIRING,
    )
    assert alert.value == pytest.approx(0.4)
    assert alert.expected == pytest.approx(0.02, abs=0.01)


def test_services_are_judged_separately() -> None:
    p = Pipeline(make_config())
    events = window_events(0, [(50, 0)] * 8, "quiet") + window_events(0, [(50, 1)] * 8, "busy")
    events.sort(key=lambda e: e.ts)
    run_logs(p, events)
    alerts = run_logs(
        p,
        window_events(8, [(50, 30), (1, 0)], "busy") + window_events(8, [(50, 0), (1, 0)], "quiet"),
    )
    assert [dict(a.labels) for a in alerts if a.series == ERROR_RATIO] == [{"service": "busy"}]
    assert p.series_counts()["service"] == 2


def test_event_counts_per_window_feed_the_event_count_series() -> None:
    p = Pipeline(make_config(FAST_COUNTS))
    rng = random.Random(4)
    counts = [(rng.randint(90, 110), 0) for _ in range(20)]
    assert run_logs(p, window_events(0, counts)) == []
    alerts = run_logs(p, window_events(20, [(3, 0), (1, 0)]))  # a traffic drop
    (alert,) = alerts
    assert (alert.series, dict(alert.labels)) == (EVENT_COUNT, {"service": "api"})
    assert alert.value == 3.0
    assert alert.expected == pytest.approx(100.0, abs=10.0)


def test_an_empty_window_in_a_gap_counts_as_zero_events() -> None:
    p = Pipeline(make_config(FAST_COUNTS))
    run_logs(p, window_events(0, [(100, 0)] * 10))
    alerts = run_logs(p, window_events(12, [(100, 0)]))  # windows 10 and 11 had nothing
    assert [(a.series, a.value, a.started_at) for a in alerts] == [
        (EVENT_COUNT, 0.0, T0 + 11 * 60.0)
    ]


def test_latency_is_judged_per_operation() -> None:
    p = Pipeline(make_config())
    rng = random.Random(9)
    events = []
    for i in range(150):
        events.append(event(T0 + i, op="db", ms=rng.gauss(20.0, 2.0)))
        events.append(event(T0 + i + 0.5, op="http", ms=rng.gauss(50.0, 5.0)))
    events.append(event(T0 + 151, ms=rng.gauss(5.0, 1.0)))  # no operation: "default"
    assert run_logs(p, events) == []
    spikes = [event(T0 + 200 + i, op="db", ms=200.0) for i in range(3)]
    spikes += [event(T0 + 200 + i, op="http", ms=52.0) for i in range(3)]
    (alert,) = run_logs(p, spikes)
    assert (alert.series, dict(alert.labels)) == (LATENCY, {"service": "api", "operation": "db"})
    assert alert.value == 200.0
    assert alert.expected == pytest.approx(20.0, abs=2.0)
    assert p.series_counts() == {"metric": 0, "latency": 3, "service": 1}


def test_latency_series_keys_cannot_collide() -> None:
    p = Pipeline(make_config())
    run_logs(
        p, [event(T0, service="a|b", op="c", ms=1.0), event(T0, service="a", op="b|c", ms=2.0)]
    )
    assert p.series_counts()["latency"] == 2


def test_late_log_events_are_counted_and_not_used() -> None:
    p = Pipeline(make_config(windows={"allowed_lateness_seconds": 10}))
    out: list[Alert] = []
    assert p.log(event(T0 + 5.0), 0, WALL, out)
    assert p.log(event(T0 + 75.0), 0, WALL, out)  # closes [T0, T0+60)
    assert not p.log(event(T0 + 30.0, error=True), 0, WALL, out)
    assert not p.log(event(T0 - 500.0, ms=5.0), 0, WALL, out)
    assert p.late_events == 2
    assert p.series_counts()["latency"] == 0  # a refused event's latency is not used either
    assert p.log(event(T0 + 61.0), 0, WALL, out)  # out of order, within lateness


def test_tick_closes_the_windows_of_an_idle_service() -> None:
    p = Pipeline(make_config())
    run_logs(p, window_events(0, [(100, 1)] * 10), now=WALL)
    assert run_logs(p, window_events(10, [(100, 50)]), now=WALL) == []  # last window open
    p.checkpoint()
    assert p.tick(WALL + 5.0) == []  # not idle long enough
    assert p.checkpoint() == []
    alerts = p.tick(WALL + 10.0)
    assert [(a.series, a.status, a.started_at) for a in alerts] == [
        (ERROR_RATIO, AlertStatus.FIRING, T0 + 660.0)
    ]
    assert [w.key for w in p.checkpoint()] == [b"l|api"]  # the closed window changed state
    assert p.tick(WALL + 11.0) == []


def test_tick_leaves_busy_services_alone() -> None:
    p = Pipeline(make_config())
    run_logs(p, window_events(0, [(100, 1)] * 10), now=WALL)
    run_logs(p, window_events(10, [(100, 50)]), now=WALL + 100.0)
    assert p.tick(WALL + 105.0) == []


def test_a_backfill_is_judged_in_its_own_event_time_windows() -> None:
    p = Pipeline(make_config())
    old = T0  # the wall clock is two hours later (WALL)
    live = [event(WALL - 300.0 + i, service="live") for i in range(300)]
    run_logs(p, live, now=WALL)
    history = window_events(0, [(60, 1)] * 15 + [(60, 30), (1, 0)], service="backfill")
    alerts = run_logs(p, history, now=WALL)
    assert p.late_events == 0
    (alert,) = alerts
    assert dict(alert.labels) == {"service": "backfill"}
    assert alert.started_at == old + 16 * 60.0  # the end of the burst's own window
    assert alert.started_at < WALL - 3600.0


# -- state: checkpoint, restore, release, eviction --------------------------------------------


def test_checkpoint_returns_each_changed_state_once() -> None:
    p = Pipeline(make_config())
    out: list[Alert] = []
    p.metric(sample(1.0, T0, host="a"), 0, out)
    p.metric(sample(1.0, T0, host="b"), 3, out)
    p.log(event(T0, op="db", ms=4.0), 1, WALL, out)
    writes = by_key(p.checkpoint())
    assert {k: w.partition for k, w in writes.items()} == {
        b"m|cpu{host=a}": 0,
        b"m|cpu{host=b}": 3,
        b"l|api": 1,
        b'p|["api","db"]': 1,
    }
    assert all(orjson.loads(w.value)["v"] == 1 for w in writes.values())
    assert p.checkpoint() == []
    p.metric(sample(2.0, T0 + 1.0, host="b"), 3, out)
    assert [w.key for w in p.checkpoint()] == [b"m|cpu{host=b}"]


@pytest.mark.parametrize("seed", range(8))
def test_a_chunked_checkpoint_writes_every_change_made_before_it(seed: int) -> None:
    """Events judged between two chunks (evicting and reloading states) lose no change.

    After the last chunk, the table built from every write, in order, holds each state as it
    was when the checkpoint started, or as it became after an event judged since.
    """
    rng = random.Random(seed)
    table: dict[bytes, bytes] = {}
    p = Pipeline(make_config(worker={"max_series": 8}), loader=table.get)
    twin = Pipeline(make_config())  # unbounded: the expected states
    hosts = [f"h{i}" for i in range(20)]
    t = T0
    out: list[Alert] = []
    since: dict[bytes, set[bytes]] = {}  # each state's versions since the checkpoint started

    def state(key: bytes) -> bytes:
        return Pipeline._write(key.decode(), twin._cache[key.decode()]).value

    def feed(n: int) -> None:
        nonlocal t
        for _ in range(n):
            host, value = rng.choice(hosts), rng.gauss(100, 5)
            t += 1.0
            for pl in (p, twin):
                assert pl.metric(sample(value, t, host=host), 0, out)
            key = f"m|cpu{{host={host}}}".encode()
            since.setdefault(key, set()).add(state(key))

    def apply(writes: list[StateWrite]) -> None:
        for w in writes:
            table[w.key] = w.value

    feed(300)
    apply(p.checkpoint())
    feed(100)
    since.clear()
    started = {w.key: w.value for w in twin.checkpoint()}
    for chunk in p.checkpoint_chunks(size=3):
        apply(chunk)
        feed(rng.randrange(0, 6))  # judged between chunks: evicts and reloads states
    for key, value in started.items():
        assert table[key] == value or table[key] in since.get(key, ()), key
    assert since  # (events were judged during the checkpoint)


def history_and_continuation() -> tuple[list[Any], list[Any]]:
    """Interleaved metric samples and log events: a long history, then a short continuation."""
    history: list[Any] = [sample(v, T0 + 10.0 * i) for i, v in enumerate(gaussian(200, seed=21))]
    history += window_events(0, [(40, 1)] * 30)
    cont: list[Any] = [
        sample(v, T0 + 3000.0 + 10.0 * i) for i, v in enumerate(gaussian(10, seed=22))
    ]
    cont += [sample(250.0, T0 + 3100.0 + 10.0 * i) for i in range(4)]
    cont += [sample(v, T0 + 3200.0 + 10.0 * i) for i, v in enumerate(gaussian(10, seed=23))]
    cont += window_events(30, [(40, 1), (40, 25), (40, 1), (40, 1), (1, 0)])
    return history, cont


def feed(p: Pipeline, items: list[Any], partition: int = 0) -> list[Alert]:
    out: list[Alert] = []
    for item in items:
        if isinstance(item, MetricSample):
            p.metric(item, partition, out)
        else:
            p.log(item, partition, WALL, out)
    return out


def test_a_restored_pipeline_continues_with_the_same_baseline() -> None:
    cfg = make_config()
    history, cont = history_and_continuation()
    original = Pipeline(cfg)
    feed(original, history)
    store = {w.key: w.value for w in original.checkpoint()}
    restored = Pipeline(cfg, loader=store.get)

    expected = feed(original, cont)
    got = feed(restored, cont)
    assert dicts(got) == dicts(expected)
    assert {(a.series, a.status) for a in got} == {
        ("cpu", AlertStatus.FIRING),
        ("cpu", AlertStatus.RESOLVED),
        (ERROR_RATIO, AlertStatus.FIRING),
        (ERROR_RATIO, AlertStatus.RESOLVED),
    }
    # Same state afterwards, so the same verdicts from here on.
    assert by_key(restored.checkpoint()) == by_key(original.checkpoint())
    # Without the checkpoint the detectors would be warming up and see nothing.
    assert feed(Pipeline(cfg), cont) == []


def test_unreadable_saved_state_starts_afresh() -> None:
    cfg = make_config()
    p = Pipeline(cfg)
    run_metrics(p, gaussian(100, seed=1), T0)
    (write,) = p.checkpoint()
    doc = orjson.loads(write.value)
    doc["s"]["watches"][0]["state"]["seen"] = "many"  # a malformed detector state
    for value in (b"\x00not json", b"[]", orjson.dumps({"v": 999, "s": {}}), orjson.dumps(doc)):
        fresh = Pipeline(cfg, loader=lambda key, v=value: v)  # type: ignore[misc]
        assert run_metrics(fresh, [500.0] * 5, T0 + 5000.0) == []  # warming up again
        assert fresh.series_counts()["metric"] == 1


def test_release_returns_unsaved_states_of_the_partitions_and_forgets_them() -> None:
    cfg = make_config()
    p = Pipeline(cfg)
    twin = Pipeline(cfg)
    for pl in (p, twin):
        out: list[Alert] = []
        for part, host in ((0, "a"), (1, "b"), (0, "c")):
            pl.metric(sample(1.0, T0, host=host), part, out)
        pl.checkpoint()
        pl.metric(sample(2.0, T0 + 10.0, host="a"), 0, out)  # dirty, partition 0
        pl.metric(sample(2.0, T0 + 10.0, host="b"), 1, out)  # dirty, partition 1
    released = p.release([0, 7])
    assert [w.key for w in released] == [b"m|cpu{host=a}"]  # host=c is saved already
    assert released[0] == by_key(twin.checkpoint())[b"m|cpu{host=a}"]
    assert p.series_counts()["metric"] == 1
    assert [w.key for w in p.checkpoint()] == [b"m|cpu{host=b}"]
    assert p.release([0]) == []


def test_a_released_series_is_reloaded_from_the_loader() -> None:
    cfg = make_config()
    store: dict[bytes, bytes] = {}
    p = Pipeline(cfg, loader=store.get)
    run_metrics(p, gaussian(100, seed=1), T0, partition=2)
    store.update((w.key, w.value) for w in p.release([2]))
    assert p.series_counts()["metric"] == 0
    alerts = run_metrics(p, [300.0] * 3, T0 + 5000.0, partition=2)
    assert [a.status for a in alerts] == [AlertStatus.FIRING]  # the baseline came back


def test_eviction_keeps_dirty_state_until_checkpoint() -> None:
    cfg = make_config(worker={"max_series": 1})
    p = Pipeline(cfg)
    twin = Pipeline(make_config())
    for pl in (p, twin):
        run_metrics(pl, gaussian(50, seed=1), T0, partition=4, host="a")
        run_metrics(pl, [1.0], T0, partition=5, host="b")  # evicts host=a from p
    assert p.series_counts()["metric"] == 1
    writes = by_key(p.checkpoint())
    assert writes == by_key(twin.checkpoint())  # the evicted state is written
    # Only the evicted state needs a copy in the table; the pipeline holds the other one.
    assert {key: w.resident for key, w in writes.items()} == {
        b"m|cpu{host=a}": False,
        b"m|cpu{host=b}": True,
    }
    assert p.checkpoint() == []
    run_metrics(p, [2.0], T0 + 60, partition=5, host="b")
    assert [w.resident for w in p.release([5])] == [False]  # released: the table keeps it


def test_a_series_in_use_outlives_series_seen_once() -> None:
    asked: list[bytes] = []

    def loader(key: bytes) -> bytes | None:
        asked.append(key)
        return None

    p = Pipeline(make_config(worker={"max_series": 3}), loader=loader)
    out: list[Alert] = []
    for i in range(200):
        p.metric(sample(1.0, T0 + i, host="hot"), 0, out)
        p.metric(sample(1.0, T0 + i, host=f"once-{i}"), 0, out)
        assert sum(p.series_counts().values()) <= 3
    assert asked.count(b"m|cpu{host=hot}") == 1  # never evicted, so never loaded again
    assert len(asked) == 201
    evicted = by_key(p.checkpoint())
    assert len(evicted) == 201  # every series, once
    assert sum(w.resident for w in evicted.values()) == 3  # in memory: the hot one and two
    assert evicted[b"m|cpu{host=hot}"].resident


def test_an_evicted_state_reloaded_for_a_late_event_is_still_written() -> None:
    p = Pipeline(make_config(worker={"max_series": 1}))
    twin = Pipeline(make_config())
    for pl in (p, twin):
        run_metrics(pl, [1.0, 2.0], T0 + 1000.0, host="a")
        run_metrics(pl, [1.0], T0, host="b")
    out: list[Alert] = []
    assert not p.metric(sample(5.0, T0, host="a"), 0, out)  # late: reloads a, evicts b
    assert by_key(p.checkpoint()) == by_key(twin.checkpoint())


def test_eviction_then_reload_gives_the_same_results() -> None:
    rng = random.Random(31)
    hosts = ["a", "b", "c", "d"]
    stream = []
    for i in range(600):
        host = rng.choice(hosts)
        value = rng.gauss(100.0, 5.0) if not (300 <= i < 330 and host == "c") else 400.0
        stream.append(sample(value, T0 + i, host=host))
    big = Pipeline(make_config())
    small_pending = Pipeline(make_config(worker={"max_series": 2}))
    table = Table()
    small_table = Pipeline(make_config(worker={"max_series": 2}), loader=table.load)

    results: dict[str, list[Alert]] = {"big": [], "pending": [], "table": []}
    for i, s in enumerate(stream):
        big.metric(s, 0, results["big"])
        small_pending.metric(s, 0, results["pending"])
        small_table.metric(s, 0, results["table"])
        if i % 7 == 0:
            table.write(small_table.checkpoint())
        assert sum(small_table.series_counts().values()) <= 2
    assert any(a.labels["host"] == "c" for a in results["big"])
    assert dicts(results["pending"]) == dicts(results["big"])
    assert dicts(results["table"]) == dicts(results["big"])
    final = by_key(big.checkpoint())
    assert by_key(small_pending.checkpoint()) == final
    table.write(small_table.checkpoint())
    assert table.changelog == {k: w.value for k, w in final.items()}


def test_a_state_evicted_unchanged_is_handed_back_to_the_table() -> None:
    # The table gives its copy away when the pipeline loads a state, so a state evicted
    # unchanged since its last checkpoint must go back to it, or it would start afresh.
    table = Table()
    p = Pipeline(make_config(worker={"max_series": 1}), loader=table.load)
    run_metrics(p, gaussian(50, seed=1), T0, host="a")
    table.write(p.checkpoint())
    assert table.data == {}  # a is in memory: no copy
    run_metrics(p, [1.0], T0, host="b")  # evicts a, unchanged since the checkpoint
    writes = by_key(p.checkpoint())
    assert not writes[b"m|cpu{host=a}"].changed  # no second changelog record
    table.write(writes.values())
    assert b"m|cpu{host=a}" in table.data
    alerts = run_metrics(p, [300.0] * 3, T0 + 1000.0, host="a")  # reloads a: no new warm-up
    assert [a.status for a in alerts] == [AlertStatus.FIRING]


def test_evicted_service_windows_survive() -> None:
    cfg = make_config(worker={"max_series": 1})
    p = Pipeline(cfg)
    run_logs(p, window_events(0, [(100, 1)] * 10))
    run_logs(p, window_events(10, [(100, 40)]))
    run_metrics(p, [1.0], T0)  # evicts the service, its window still open
    alerts = run_logs(p, [event(T0 + 660.0)])
    assert [(a.series, a.status) for a in alerts] == [(ERROR_RATIO, AlertStatus.FIRING)]


def test_a_new_error_log_pattern_alerts_once_with_its_template() -> None:
    config = make_config(
        series={"pattern_detectors": ["new_pattern"]},
        detectors={"new_pattern": {"warmup_seconds": 300}},
    )
    pipeline = Pipeline(config)
    out: list[Alert] = []
    for i in range(300):  # parameters in messages must not make new templates
        msg = f"GET /orders/{i} took {i % 40}ms user={i * 7}"
        pipeline.log(event(T0 + i, message=msg), 0, WALL, out)
    assert out == []
    for i in range(3):
        msg = f"payment gateway timeout after {30 + i}s for order {i}"
        pipeline.log(event(T0 + 400 + i, error=True, message=msg), 0, WALL, out)
    fired = [a for a in out if a.status.value == "firing"]
    assert len(fired) == 1, out
    alert = fired[0]
    assert alert.series == "log.patterns" and alert.labels == {"service": "api"}
    assert alert.detector == "new_pattern"
    assert alert.annotations["template"] == "payment gateway timeout after <*> for order <*>"
    assert "new log pattern" in alert.summary


def test_metrics_run_the_adaptive_detector_by_default() -> None:
    config = parse_config({}, "test.toml", {})
    pipeline = Pipeline(config)
    out: list[Alert] = []
    for i, value in enumerate(gaussian(300, seed=11)):
        pipeline.metric(sample(value, T0 + 60 * i), 0, out)
    assert out == []
    for i in range(300, 305):
        pipeline.metric(sample(400.0, T0 + 60 * i), 0, out)
    assert [(a.detector, a.status.value) for a in out] == [("adaptive", "firing")]


def test_a_parameter_added_later_at_its_default_keeps_states_saved_before_it() -> None:
    # What the previous release saved with the default adaptive parameters (before
    # score_needs_raw existed) must still be restored; the option turned on is another detector.
    saved_by_previous_release = "fb9259277503"
    assert _params_hash(AdaptiveParams()) == saved_by_previous_release
    assert _params_hash(AdaptiveParams(score_needs_raw=True)) != saved_by_previous_release
    cfg = make_config(series={"metric_detectors": ["adaptive"]})
    p = Pipeline(cfg)
    run_metrics(p, gaussian(100, seed=3), T0)
    store = {w.key: w.value for w in p.checkpoint()}
    (raw,) = store.values()
    (watch,) = orjson.loads(raw)["s"]["watches"]
    assert watch["phash"] == saved_by_previous_release
    # Restored, not started afresh: the next point gets the same verdict as in the original.
    again = Pipeline(cfg, loader=store.get)
    assert run_metrics(again, [400.0], T0 + 1000.0) == run_metrics(p, [400.0], T0 + 1000.0)
    assert again.restored == 1
    assert {w.key: w.value for w in again.checkpoint()} == {w.key: w.value for w in p.checkpoint()}


@pytest.mark.parametrize("batched", [False, True], ids=["point by point", "one batch"])
def test_a_reconfigured_detector_resolves_the_incident_its_predecessor_left_open(
    batched: bool,
) -> None:
    before = make_config(detectors={"zscore": {"threshold": 4.0}})
    p = Pipeline(before)
    run_metrics(p, gaussian(100, seed=3), T0)
    fired = run_metrics(p, [500.0] * 5, T0 + 100 * 60)
    assert [a.status for a in fired] == [AlertStatus.FIRING]
    store = {w.key: w.value for w in p.checkpoint()}
    # New parameters: the detector starts afresh (warm-up), but the open incident is not lost.
    after = Pipeline(make_config(detectors={"zscore": {"threshold": 5.0}}), loader=store.get)
    samples = [sample(100.0, T0 + (106 + i) * 60) for i in range(6)]
    out: list[Alert] = []
    if batched:
        after.judge(samples, 0, WALL, out, [])
    else:
        for s in samples:
            after.judge([s], 0, WALL, out, [])
    # Resolved at the first point the new detector judges, and once.
    assert [(a.status, a.started_at, a.ended_at) for a in out] == [
        (AlertStatus.RESOLVED, fired[0].started_at, samples[0].ts)
    ]


def test_a_saved_state_missing_parts_starts_afresh() -> None:
    cfg = make_config()
    p = Pipeline(cfg)
    run_metrics(p, gaussian(100, seed=1), T0)
    (write,) = p.checkpoint()
    doc = orjson.loads(write.value)
    del doc["s"]["watches"]  # valid JSON, but not a state this version can use
    fresh = Pipeline(cfg, loader=lambda key: orjson.dumps(doc))
    assert run_metrics(fresh, [500.0] * 5, T0 + 5000.0) == []  # warming up again, no crash
    assert (fresh.restored, fresh.created) == (0, 1)


def test_a_clean_state_evicted_from_the_cache_is_kept_for_the_table() -> None:
    """The worker's table drops its copy of a state checkpointed while in memory (resident), so
    an eviction must hand the state back even when it has not changed since: it was lost, and
    its series started a new warm-up."""
    table: dict[bytes, bytes] = {}

    def write(writes: list[StateWrite]) -> None:  # as engine/runtime/ingest.py does
        for w in writes:
            if w.resident:
                table.pop(w.key, None)
            else:
                table[w.key] = w.value

    p = Pipeline(make_config(worker={"max_series": 1}), loader=lambda key: table.pop(key, None))
    run_metrics(p, gaussian(100, seed=1), T0, host="a")
    write(p.checkpoint())  # resident: the table keeps no copy
    run_metrics(p, [1.0], T0, host="b")  # evicts host=a, clean
    write(p.checkpoint())
    assert set(table) == {b"m|cpu{host=a}"}
    alerts = run_metrics(p, [500.0] * 4, T0 + 2000.0, host="a")
    assert (p.restored, [a.status for a in alerts]) == (1, [AlertStatus.FIRING])
