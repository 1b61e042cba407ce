"""The fault matrix, the rows about sinks and receivers (issue 9, section 2), on Apache Kafka.

Each test runs a real worker over a stream with injected anomalies whose alerts are known in
advance: the same samples go through the pure pipeline (:class:`engine.core.pipeline.Pipeline`)
in the test, which says which alert transitions the worker must record. Then it injects a fault
and counts: nothing lost, nothing twice. Each test prints the figures it measured (run pytest
with ``-s`` or ``-rP`` to see them).

- Redis down for 60 s: detection and alerting go on; the mirror counts what it could not write
  and writes again once Redis is back.
- A webhook receiver down, then back: what failed is dead-lettered, then delivered once.
- A slow receiver (10 s per request): detection does not wait for notifications.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import subprocess
import sys
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from engine.config import KafkaSettings, parse_config
from engine.core.pipeline import Pipeline
from engine.devtools.broker import Broker
from engine.model.alert import Alert, AlertStatus, Severity, fingerprint
from engine.model.events import MetricSample
from engine.model.notification import DeadNotification, Notification
from engine.runtime.alerts_dlq import pending
from engine.runtime.topic_view import read_latest
from tests.testkit import (
    REPO,
    RedisServer,
    WebhookReceiver,
    WorkerProcess,
    collect,
    metric_total,
    producer,
    run,
    write_config,
)

T0 = 1_779_999_960.0  # event time of the first sample (2026-05-28)
STEP = 10.0  # seconds of event time between two samples of a series
SPIKE = range(60, 66)  # the points of a spiked series that are anomalous (500 instead of ~100)

#: Detection as the worker runs it and as the test's oracle computes it: zscore on metrics, no
#: detector on logs (log events are here for the Redis mirror only), one notification group per
#: series (group_by alertname), short group timings.
DETECTION = """
[series]
metric_detectors = ["zscore"]
latency_detectors = []
event_count_detectors = []
error_detectors = []
pattern_detectors = []

[detectors.zscore]
warmup = 10

[routing]
group_by = ["alertname"]
group_wait_seconds = 1
group_interval_seconds = 2
"""

AlertKey = tuple[str, str, float]  # (series, status, started_at)


@dataclass(frozen=True)
class Stream:
    """Metric series named ``<prefix>_<k>``: the first ``spiked`` have a spike at :data:`SPIKE`,
    the others are steady. ``points`` samples each, :data:`STEP` seconds apart from :data:`T0`."""

    prefix: str
    spiked: int
    steady: int = 2
    points: int = 120
    seed: int = 1

    def names(self) -> list[str]:
        return [f"{self.prefix}_{k}" for k in range(self.spiked + self.steady)]

    def spiked_names(self) -> list[str]:
        return self.names()[: self.spiked]

    def values(self) -> dict[str, list[float]]:
        rng = random.Random(self.seed)
        out: dict[str, list[float]] = {}
        for k, name in enumerate(self.names()):
            out[name] = [
                500.0 if k < self.spiked and i in SPIKE else round(rng.gauss(100, 3), 3)
                for i in range(self.points)
            ]
        return out

    def samples(self, start: int = 0, stop: int | None = None) -> list[MetricSample]:
        """The samples of points ``start`` to ``stop``, series after series."""
        return [
            MetricSample(name, value, T0 + i * STEP, {"host": "a"})
            for name, values in self.values().items()
            for i, value in enumerate(values)
            if start <= i < (self.points if stop is None else stop)
        ]

    def messages(
        self, start: int = 0, stop: int | None = None, per_message: int = 10
    ) -> list[tuple[bytes, bytes]]:
        """``(key, value)`` Kafka messages: JSON arrays of up to ``per_message`` consecutive
        samples of one series, keyed by the series (so each series stays in order)."""
        by_series: dict[str, list[dict[str, Any]]] = {}
        for s in self.samples(start, stop):
            doc = {"name": s.name, "value": s.value, "timestamp": s.ts, "labels": s.labels}
            by_series.setdefault(s.name, []).append(doc)
        out = []
        for name, docs in by_series.items():
            for j in range(0, len(docs), per_message):
                out.append((name.encode(), orjson.dumps(docs[j : j + per_message])))
        return out

    def events(self, start: int = 0, stop: int | None = None) -> int:
        return len(self.samples(start, stop))

    def expected(self) -> Counter[AlertKey]:
        """The alert transitions the worker must record, by the pure pipeline."""
        pipeline = Pipeline(parse_config(tomllib.loads(DETECTION), "<test>"))
        out: list[Any] = []
        for sample in self.samples():
            pipeline.metric(sample, 0, out)
        counts = Counter((a.series, a.status.value, a.started_at) for a in out)
        # The stream as designed: each spike is one incident, steady series stay quiet.
        incidents = Counter((series, status) for series, status, _ in counts.elements())
        assert incidents == Counter(
            {(name, status): 1 for name in self.spiked_names() for status in ("firing", "resolved")}
        ), counts
        return counts


def _channel(receiver: WebhookReceiver, **settings: Any) -> str:
    lines = [
        "[[channels]]",
        'name = "hook"',
        'type = "webhook"',
        f'url = "{receiver.url("/hook")}"',
    ]
    lines += [f"{key} = {value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def _hot_logs(service: str, n: int) -> bytes:
    """One NDJSON message of ``n`` hot (mirrored) log events of ``service``."""
    return b"\n".join(
        orjson.dumps(
            {
                "timestamp": T0 + i,
                "level": "INFO",
                "service": service,
                "message": "thinking",
                "type": "thought",
                "step": i,
            }
        )
        for i in range(n)
    )


def _publish(broker: Broker, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    async def send() -> None:
        async with producer(broker.bootstrap) as p:
            for key, value in messages:
                await p.send(topic, value, key=key)

    run(send())


def _recorded(
    broker: Broker,
    unique: str,
    until: Callable[[Counter[AlertKey]], bool],
    timeout: float = 60,
    strict: bool = True,
) -> Counter[AlertKey]:
    """The alert transitions on the alerts topic, read until ``until(counts)`` (within
    ``timeout`` seconds, else a failure when ``strict``)."""

    def counts(records: list[Any]) -> Counter[AlertKey]:
        docs = (orjson.loads(r.value) for r in records)
        return Counter((a["series"], a["status"], a["started_at"]) for a in docs)

    topic = f"alerts-{unique}"
    records = run(collect(broker.bootstrap, topic, lambda rs: until(counts(rs)), timeout))
    assert until(counts(records)) or not strict, f"recorded in {timeout} s: {counts(records)}"
    return counts(records)


def _all_recorded(broker: Broker, unique: str) -> Counter[AlertKey]:
    """Every alert transition on the alerts topic (read for 3 s: later duplicates show too)."""
    return _recorded(broker, unique, lambda got: False, timeout=3, strict=False)


def _covers(expected: Counter[AlertKey]) -> Callable[[Counter[AlertKey]], bool]:
    return lambda got: all(got[k] >= n for k, n in expected.items())


def _wait(condition: Callable[[], bool], timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return condition()


def _notified(receiver: WebhookReceiver) -> dict[str, str]:
    """Each series' latest status as the receiver heard it (by the order of its answers)."""
    latest: dict[str, str] = {}
    for delivery in receiver.got("/hook"):
        for alert in delivery.body["alerts"]:
            latest[alert["labels"]["alertname"]] = alert["status"]
    return latest


def _all_resolved(receiver: WebhookReceiver, series: list[str]) -> Callable[[], bool]:
    return lambda: all(_notified(receiver).get(s) == "resolved" for s in series)


def _wait_resolved(
    receiver: WebhookReceiver, worker: WorkerProcess, series: list[str], timeout: float
) -> None:
    """Wait until the receiver heard that every one of ``series`` resolved; fail saying why not."""
    if not _wait(_all_resolved(receiver, series), timeout):
        pytest.fail(
            f"not all of {series} notified as resolved within {timeout} s; the receiver "
            f"heard {_notified(receiver)} in {len(receiver.got())} requests "
            f"({receiver.in_flight} in flight); worker log:\n{worker.log()}"
        )


def _duplicates(receiver: WebhookReceiver) -> dict[str, int]:
    """Notification ids (``webhook-id``) the receiver answered more than once, with the count."""
    counts = Counter(d.webhook_id for d in receiver.got("/hook"))
    return {ident: n for ident, n in counts.items() if n > 1}


def _figures(title: str, **figures: Any) -> None:
    print(f"\n[{title}]")
    for name, value in figures.items():
        if isinstance(value, float):
            value = f"{value:.2f}"
        print(f"  {name.replace('_', ' ')}: {value}")


def _start_worker(
    broker: Broker, unique: str, tmp: Path, redis_url: str, channel: str
) -> WorkerProcess:
    cfg = tmp / "kestrel.toml"
    port = write_config(cfg, broker, unique, redis_url, DETECTION + channel)
    worker = WorkerProcess(cfg, port, tmp / "worker.log").start()
    worker.wait_ready()
    return worker


def _consumed(worker: WorkerProcess) -> float:
    return metric_total(worker.metrics(), "kestrel_events_consumed")


# -- Redis down for 60 s ---------------------------------------------------------------------


class Trickle:
    """Sends one hot log event every ``interval`` seconds from a thread, until stopped."""

    def __init__(self, broker: Broker, topic: str, service: str, interval: float) -> None:
        self.broker, self.topic, self.service, self.interval = broker, topic, service, interval
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        async with producer(self.broker.bootstrap) as p:
            while not self._stop.is_set():
                await p.send_and_wait(self.topic, _hot_logs(self.service, 1), key=b"trickle")
                self.sent += 1
                await asyncio.sleep(self.interval)

    def __enter__(self) -> Trickle:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


@contextlib.contextmanager
def _stopped_at_the_end(server: RedisServer) -> Iterator[RedisServer]:
    try:
        yield server
    finally:
        server.stop()


def _mirror_counts(worker: WorkerProcess) -> dict[str, float]:
    text = worker.metrics()
    return {
        outcome: metric_total(text, "kestrel_redis_mirror_events", outcome=outcome)
        for outcome in ("written", "failed", "skipped")
    }


def test_redis_down_for_60_s_detection_and_alerting_go_on_and_the_mirror_comes_back(
    broker: Broker, unique: str, tmp_path: Path
) -> None:
    outage = 60.0
    server = RedisServer(tmp_path).start()  # this test's own Redis, not the session's
    r = redis.Redis.from_url(server.url)
    logs = f"logs-{unique}"
    prefix = f"kestrel-test-{unique}:"
    before, during, after = (Stream(f"redis_{p}", spiked=3, seed=s) for s, p in enumerate("abc"))
    hot = 10  # hot log events per phase
    with WebhookReceiver() as receiver, _stopped_at_the_end(server):
        worker = _start_worker(broker, unique, tmp_path, server.url, _channel(receiver))
        try:
            with Trickle(broker, logs, "trickle", 0.5) as trickle:
                # Before: everything reaches the alerts topic, the receiver and Redis.
                _publish(broker, f"metrics-{unique}", before.messages())
                _publish(broker, logs, [(b"svc-a", _hot_logs("svc-a", hot))])
                _recorded(broker, unique, _covers(before.expected()))
                assert _wait(lambda: r.xlen(f"{prefix}events:svc-a") == hot, 30)
                _wait_resolved(receiver, worker, before.spiked_names(), 30)

                # During: Redis is stopped for 60 s.
                server.stop()
                down_at = time.monotonic()
                at_down = _mirror_counts(worker)
                _publish(broker, f"metrics-{unique}", during.messages())
                _publish(broker, logs, [(b"svc-b", _hot_logs("svc-b", hot))])
                recorded_during = _recorded(
                    broker, unique, _covers(before.expected() + during.expected())
                )
                alerts_recorded_after_s = time.monotonic() - down_at
                notified = _wait(_all_resolved(receiver, during.spiked_names()), 30)
                notified_after_s = time.monotonic() - down_at
                health = httpx.get(f"http://127.0.0.1:{worker.web_port}/health", timeout=5)
                up_in_outage = metric_total(worker.metrics(), "kestrel_redis_mirror_up")
                mid = _mirror_counts(worker)
                time.sleep(max(0.0, outage - (time.monotonic() - down_at)))
                at_up = _mirror_counts(worker)

                # After: the same port again, an empty Redis; the mirror writes by itself.
                server.start()
                up_at = time.monotonic()
                assert _wait(lambda: _mirror_counts(worker)["written"] > at_up["written"], 30)
                recovered_after_s = time.monotonic() - up_at
                _publish(broker, f"metrics-{unique}", after.messages())
                _publish(broker, logs, [(b"svc-c", _hot_logs("svc-c", hot))])
                everything = before.expected() + during.expected() + after.expected()
                _recorded(broker, unique, _covers(everything))
                assert _wait(lambda: r.xlen(f"{prefix}events:svc-c") == hot, 30)
                _wait_resolved(receiver, worker, after.spiked_names(), 30)
            recorded = _all_recorded(broker, unique)
            # Every item offered to the mirror is counted once: written, failed or skipped.
            offered = trickle.sent + 3 * hot + sum(recorded.values())
            assert _wait(lambda: sum(_mirror_counts(worker).values()) == offered, 30), (
                _mirror_counts(worker),
                offered,
            )
            final = _mirror_counts(worker)
            up_at_the_end = metric_total(worker.metrics(), "kestrel_redis_mirror_up")
            alerts_in_redis = r.xlen(f"{prefix}alerts")
        finally:
            worker.stop()

    lost_in_outage = (at_up["failed"] + at_up["skipped"]) - (at_down["failed"] + at_down["skipped"])
    _figures(
        "Redis down 60 s",
        events_in=before.events() + during.events() + after.events(),
        hot_log_events_in=3 * hot + trickle.sent,
        alerts_expected=sum(everything.values()),
        alerts_recorded=sum(recorded.values()),
        duplicates=sum(n - 1 for n in recorded.values() if n > 1),
        alerts_of_the_outage_recorded_after_s=alerts_recorded_after_s,
        notified_after_s=notified_after_s,
        incidents_notified=len(_notified(receiver)),
        mirror_written=final["written"],
        mirror_failed=final["failed"],
        mirror_skipped=final["skipped"],
        mirror_items_not_written_during_the_outage=lost_in_outage,
        alerts_in_redis_after_restart=alerts_in_redis,
        outage_s=up_at - down_at,
        time_to_recover_s=recovered_after_s,
    )
    # Detection and alerting went on while Redis was down.
    assert recorded_during == before.expected() + during.expected()
    assert notified and notified_after_s < outage, "alerts of the outage notified in the outage"
    assert health.status_code == 200 and health.json()["redis"] == "down", health.text
    assert up_in_outage == 0 and up_at_the_end == 1
    # Nothing lost or twice on the alerts topic; every incident reached the receiver.
    assert recorded == everything
    assert set(_notified(receiver)) == set(
        before.spiked_names() + during.spiked_names() + after.spiked_names()
    )
    # The mirror wrote nothing while Redis was down, and counted what it did not write.
    assert at_up["written"] == at_down["written"] == mid["written"]
    assert lost_in_outage >= hot + sum(during.expected().values())
    # It wrote again, by itself, once Redis was back: the events and alerts of after.
    assert alerts_in_redis >= sum(after.expected().values())
    assert final["written"] >= at_up["written"] + hot + sum(after.expected().values())


# -- a webhook receiver down, then back ------------------------------------------------------


def _dlq_pending(broker: Broker, unique: str) -> dict[bytes, dict[str, Any]]:
    kafka = KafkaSettings(broker=broker.url)
    return pending(run(read_latest(kafka, f"alerts-dlq-{unique}")))


def _dlq_records(broker: Broker, unique: str) -> list[dict[str, Any]]:
    records = run(collect(broker.bootstrap, f"alerts-dlq-{unique}", lambda rs: False, 3))
    return [{"key": r.key.decode(), **orjson.loads(r.value)} for r in records]


def _dead_series(records: list[dict[str, Any]], status: str) -> set[str]:
    """Series with a dead-lettered notification that tells of them as ``status``."""
    return {
        a["series"]
        for d in records
        if d["status"] == "failed"
        for a in d["notification"]["alerts"]
        if a["status"] == status
    }


def _replay(cfg: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "dlq", "replay", "--config", str(cfg)],
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_receiver_down_then_back_gets_every_notification_once(
    broker: Broker, redis_url: str, unique: str, tmp_path: Path
) -> None:
    stream = Stream("hook_down", spiked=4, seed=7)
    fired_by = SPIKE.start + 4  # the spike has fired by then, and not resolved
    with WebhookReceiver() as receiver:
        # Two attempts within a second, then the dead-letter topic.
        channel = _channel(receiver, max_attempts=2, retry_budget_seconds=1)
        worker = _start_worker(broker, unique, tmp_path, redis_url, channel)
        try:
            receiver.stop()
            down_at = time.monotonic()
            # The incidents fire while the receiver is down...
            _publish(broker, f"metrics-{unique}", stream.messages(0, fired_by))
            firing = Counter({k: n for k, n in stream.expected().items() if k[1] == "firing"})
            _recorded(broker, unique, _covers(firing))
            assert _wait(
                lambda: (
                    _dead_series(_dlq_records(broker, unique), "firing")
                    >= set(stream.spiked_names())
                ),
                60,
                step=1.0,
            ), _dlq_records(broker, unique)
            # ...and resolve while it is still down.
            _publish(broker, f"metrics-{unique}", stream.messages(fired_by))
            _recorded(broker, unique, _covers(stream.expected()))
            assert _wait(
                lambda: (
                    _dead_series(_dlq_records(broker, unique), "resolved")
                    >= set(stream.spiked_names())
                ),
                60,
                step=1.0,
            ), _dlq_records(broker, unique)
            dead = _dlq_records(broker, unique)
            pending_before = _dlq_pending(broker, unique)
            assert receiver.arrivals == 0
            time.sleep(max(0.0, 10.0 - (time.monotonic() - down_at)))  # down for 10 s at least

            # Back: `kestrel dlq replay` at once, racing the worker's own retries of the groups
            # (a replay that sent what the worker also sends would be a duplicate)...
            receiver.start()
            up_at = time.monotonic()
            replay = _replay(tmp_path / "kestrel.toml")
            assert replay.returncode == 0, replay.stdout + replay.stderr
            _wait_resolved(receiver, worker, stream.spiked_names(), 30)
            recovered_after_s = time.monotonic() - up_at
            time.sleep(6)  # three group intervals: anything still to come would come now
            # ...and again once the worker delivered (a replay that sent the firing notifications
            # now would tell the receiver an older state than it has).
            again = _replay(tmp_path / "kestrel.toml")
            pending_after = _dlq_pending(broker, unique)
            recorded = _all_recorded(broker, unique)
            # A dead notification that nothing else will deliver (of a group the notifier does
            # not hold, e.g. recorded before a redeployment) is sent by the replay, once.
            orphan = _orphan()
            _publish(broker, f"alerts-dlq-{unique}", [(orphan.key, orphan.to_json())])
            orphan_replay = _replay(tmp_path / "kestrel.toml")
            orphan_again = _replay(tmp_path / "kestrel.toml")
            metrics = worker.metrics()
        finally:
            worker.stop()

    deliveries = receiver.got("/hook")
    duplicates = _duplicates(receiver)
    _figures(
        "webhook receiver down, then back",
        events_in=stream.events(),
        alerts_expected=sum(stream.expected().values()),
        alerts_recorded=sum(recorded.values()),
        dead_letter_records=len([d for d in dead if d["status"] == "failed"]),
        dead_notification_ids=len({d["key"] for d in dead if d["status"] == "failed"}),
        pending_when_back=len(pending_before),
        replay=replay.stdout.strip(),
        replay_again=again.stdout.strip(),
        replay_of_a_notification_nobody_holds=orphan_replay.stdout.strip(),
        pending_at_the_end=len(pending_after),
        notifications_received=len(deliveries),
        distinct_notification_ids=len({d.webhook_id for d in deliveries}),
        duplicates=sum(n - 1 for n in duplicates.values()),
        incidents_notified=len(_notified(receiver)) - 1,
        dead_lettered_metric=metric_total(
            metrics, "kestrel_deliveries", channel="hook", outcome="dead_lettered"
        ),
        time_to_recover_s=recovered_after_s,
    )
    assert recorded == stream.expected()
    # None twice: no notification id reached the receiver twice...
    assert not duplicates, duplicates
    # ...none lost, and none stale: the last word on every incident is that it resolved.
    incidents = {k: v for k, v in _notified(receiver).items() if k != "orphan"}
    assert incidents == dict.fromkeys(stream.spiked_names(), "resolved")
    # Nothing is left to replay, and a second replay sends nothing.
    assert pending_after == {}, pending_after
    assert "delivered=0 failed=0 superseded=0 held=0" in again.stdout, again.stdout
    assert "delivered=1 failed=0 superseded=0 held=0" in orphan_replay.stdout, orphan_replay.stdout
    assert "delivered=0 failed=0 superseded=0 held=0" in orphan_again.stdout, orphan_again.stdout
    assert [d.webhook_id for d in deliveries].count(orphan.notification.notification_id) == 1


def _orphan() -> DeadNotification:
    """A dead notification of the ``hook`` channel about a group no worker holds."""
    labels = {"host": "gone"}
    alert = Alert(
        fingerprint("orphan", labels, "zscore"), AlertStatus.FIRING, Severity.WARNING, "orphan",
        labels, "zscore", 500.0, 100.0, 9.0, T0, None, "orphan: 500 vs expected 100",
    )  # fmt: skip
    return DeadNotification(Notification.single(alert, "hook"), "hook", "503", 2, time.time())


# -- a slow receiver ---------------------------------------------------------------------------


def test_a_slow_receiver_does_not_slow_detection(
    broker: Broker, redis_url: str, unique: str, tmp_path: Path
) -> None:
    slow = 10.0  # seconds per request
    deadline = 45.0  # for a backlog the worker drains in a few seconds
    metrics = f"metrics-{unique}"
    warmup = Stream("warmup", spiked=2, steady=8, seed=2)
    fast_load = Stream("fast", spiked=10, steady=40, points=400, seed=3)
    trigger = Stream("trigger", spiked=10, steady=0, seed=4)
    slow_load = Stream("slow", spiked=10, steady=40, points=400, seed=6)
    with WebhookReceiver() as receiver:
        # The request timeout is above the receiver's 10 s: it is slow, not failing.
        worker = _start_worker(
            broker, unique, tmp_path, redis_url, _channel(receiver, timeout_seconds=30)
        )
        try:

            def drain(stream: Stream) -> tuple[float, float, float]:
                """Publish the stream; (seconds to consume it, to record its alerts, at when)."""
                base = _consumed(worker)
                start = time.monotonic()
                _publish(broker, metrics, stream.messages(per_message=50))
                done = base + stream.events()
                consumed = _wait(lambda: _consumed(worker) >= done, deadline, step=0.05)
                consumed_s = time.monotonic() - start
                assert consumed, f"{stream.prefix}: not consumed within {deadline}s"
                _recorded(broker, unique, _covers(stream.expected()))
                return consumed_s, time.monotonic() - start, time.monotonic()

            # Without the slow receiver (after a first stream: new topics, first series).
            drain(warmup)
            fast_consumed_s, fast_recorded_s, _ = drain(fast_load)
            _wait_resolved(receiver, worker, fast_load.spiked_names(), 30)

            # With it: its first requests are in flight while a backlog like the first comes in.
            _wait_resolved(receiver, worker, warmup.spiked_names(), 30)
            answered_before = len(receiver.got("/hook"))
            receiver.delay_seconds = slow
            _publish(broker, metrics, trigger.messages())
            assert _wait(lambda: receiver.in_flight >= 1, 30, step=0.05)
            trigger_sent_at = time.monotonic()
            slow_consumed_s, slow_recorded_s, slow_recorded_at = drain(slow_load)
            answered_when_recorded = len(receiver.got("/hook")) - answered_before
            in_flight_when_recorded = receiver.in_flight
            queued = metric_total(worker.metrics(), "kestrel_notification_queue_alerts")
            everyone = trigger.spiked_names() + slow_load.spiked_names()
            _wait_resolved(receiver, worker, everyone, 4 * slow + 30)
        finally:
            worker.stop()

    fast_rate = fast_load.events() / fast_consumed_s
    slow_rate = slow_load.events() / slow_consumed_s
    _figures(
        "slow receiver (10 s per request)",
        events_in=sum(s.events() for s in (warmup, fast_load, trigger, slow_load)),
        alerts_expected=sum(
            sum(s.expected().values()) for s in (warmup, fast_load, trigger, slow_load)
        ),
        events_per_s_fast_receiver=fast_rate,
        events_per_s_slow_receiver=slow_rate,
        alerts_recorded_after_s_fast_receiver=fast_recorded_s,
        alerts_recorded_after_s_slow_receiver=slow_recorded_s,
        requests_in_flight_when_the_backlog_was_done=in_flight_when_recorded,
        slow_notifications_answered_by_then=answered_when_recorded,
        alerts_queued_for_notification_by_then=queued,
        notifications_received=len(receiver.got("/hook")),
        duplicates=sum(n - 1 for n in _duplicates(receiver).values()),
    )
    # The backlog was consumed and its alerts recorded while the receiver was still answering
    # the requests sent before it: detection did not wait for notifications. (Had it waited for
    # each of the trigger's ten 10 s requests in turn, it could not have been done before 100 s.)
    assert slow_recorded_at - trigger_sent_at < 10 * slow
    assert slow_recorded_s < deadline
    assert not _duplicates(receiver)
