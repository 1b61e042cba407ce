"""The fault matrix of issue 9, the worker and broker rows, on Apache Kafka: inject, then count.

Every test runs workers on the same kind of stream: ``SERIES`` metric series (one per host, keyed
by host, so spread over both input partitions), each with a warm-up of normal points and a spike
at a point of its own, so incidents fire and resolve all along the stream (phase A). The fault
is injected in its middle, once an offset commit happened. After it, phase B puts a spike on
every series two normal points after phase A: only a warm baseline flags it (a lost state would
mean a new warm-up of 30 points, and no alert).

The alert transitions the stream must produce are computed by running the same samples through
the pure :class:`~engine.core.pipeline.Pipeline` with the worker's own config
(:func:`expected_alerts`). "Nothing lost" (:func:`check_nothing_lost`) means: the alerts topic
holds every one of them and nothing else (an at-least-once replay may record one twice: counted);
the webhook receiver heard of every incident (or of a later one of the same series, which a
notification group holds instead), never of one alert state under two notification ids, never
twice of one id (the ``webhook-id`` idempotency key) except for a delivery right before the
notifier was killed, and of no alert left firing.

Each test prints its figures (events in, consumed, alerts expected / recorded / recorded twice,
notifications, time to recover); ``pytest -s`` or ``-rP`` shows them.

Rows: a worker SIGKILLed mid-stream and restarted; one of two workers SIGKILLed; the leader of an
input partition stopped in a three-node cluster; the broker stopped for 60 s and back; SIGTERM
while the broker is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.server
import json
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from engine.config import Config, WorkerSettings, load_config
from engine.core.pipeline import Pipeline
from engine.devtools.apache_kafka import ApacheKafka
from engine.devtools.broker import Broker, free_port
from engine.model.alert import Alert
from engine.model.events import MetricSample
from engine.model.times import rfc3339
from tests.testkit import WorkerProcess, collect, serving, write_config

pytestmark = pytest.mark.integration

#: Event time of point 0: a day ago, on a minute boundary (events must not be in the future).
T0 = float(int(time.time()) // 60 * 60 - 86_400)
STEP = 10.0
METRIC = "fault_load"
SERIES = 16
#: Points of the first phase (warm-up, then one spike per series) and of the phase after the fault.
PHASE_A = 160
PHASE_B = 30
SPIKE_LEN = 6
#: How often the workers commit offsets (``worker.commit_interval_seconds``, not set here).
COMMIT_INTERVAL = WorkerSettings().commit_interval_seconds

AlertKey = tuple[str, str, float]  # (fingerprint, status, started_at)

EXTRA_CONFIG = """
[series]
# The worker's mechanics are checked with the simple zscore detector (warm-up 30 points, fires
# after 3 anomalous points, resolves after 5 normal ones).
metric_detectors = ["zscore"]

[routing]
group_by = ["..."]
group_wait_seconds = 0
group_interval_seconds = 1
flap_threshold = 0

[[channels]]
name = "hook"
type = "webhook"
url = "{hook}/hook"
max_attempts = 3
"""


# -- the stream and what it must produce -----------------------------------------------------


@dataclass(frozen=True)
class Stream:
    """Per-host values; point ``k`` of every host is stamped ``T0 + k * STEP``."""

    values: dict[str, list[float]]

    @property
    def hosts(self) -> list[str]:
        return list(self.values)

    def message(self, host: str, k: int) -> bytes:
        sample = {
            "name": METRIC,
            "value": self.values[host][k],
            "timestamp": T0 + k * STEP,
            "labels": {"host": host},
        }
        return orjson.dumps(sample)


def build_stream(seed: int) -> Stream:
    """Warm-up, one spike per series in phase A (spread over it), one more early in phase B.

    Series ``i`` spikes at point ``40 + 6 i`` (so incidents fire all along phase A) and at point
    ``PHASE_A + 2``: two normal points after phase A, too early for a fresh detector.
    """
    rng = random.Random(seed)
    values: dict[str, list[float]] = {}
    for i in range(SERIES):
        starts = (40 + 6 * i, PHASE_A + 2)
        series = [rng.gauss(100.0, 2.0) for _ in range(PHASE_A + PHASE_B)]
        for start in starts:
            for k in range(start, start + SPIKE_LEN):
                series[k] = 500.0 + rng.gauss(0.0, 5.0)
        values[f"h{i:02d}"] = series
    return Stream(values)


def expected_alerts(config: Config, stream: Stream, points: int) -> set[AlertKey]:
    """The alert transitions of the first ``points`` points, by the pure pipeline."""
    pipeline = Pipeline(config)
    out: list[Alert] = []
    for host, values in stream.values.items():
        for k in range(points):
            sample = MetricSample(METRIC, values[k], T0 + k * STEP, {"host": host})
            pipeline.metric(sample, 0, out)
    return {(a.fingerprint, a.status.value, a.started_at) for a in out}


def alert_key(alert: dict[str, Any]) -> AlertKey:
    return (alert["fingerprint"], alert["status"], alert["started_at"])


# -- Kafka clients -----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def reliable_producer(bootstrap: str) -> AsyncIterator[Any]:
    """An idempotent producer (``acks=all``): retries across a leader change, no duplicates."""
    from aiokafka import AIOKafkaProducer

    p = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        linger_ms=5,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=30_000,
    )
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


async def produce(
    bootstrap: str,
    topic: str,
    stream: Stream,
    points: range,
    rate: float,
    progress: list[int] | None = None,
) -> int:
    """Send ``points`` of every series at ``rate`` points per second; returns messages sent.

    ``progress[0]``, if given, counts the messages acknowledged so far.
    """
    sent = 0
    async with reliable_producer(bootstrap) as p:
        started = time.monotonic()
        for n, k in enumerate(points):
            futures = [
                await p.send(topic, stream.message(host, k), key=host.encode())
                for host in stream.hosts
            ]
            await asyncio.gather(*futures)
            sent += len(futures)
            if progress is not None:
                progress[0] = sent
            pause = started + (n + 1) / rate - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
    return sent


async def committed_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """``group``'s committed offset of each partition of ``topic`` (0 when none)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: max(0, meta.offset) for tp, meta in offsets.items() if tp.topic == topic}


async def partition_leaders(bootstrap: str, topic: str) -> dict[int, int]:
    """The node id leading each partition of ``topic``."""
    from aiokafka import AIOKafkaClient

    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        metadata = await client.fetch_all_metadata()
    finally:
        await client.close()
    return {p: metadata.leader_for_partition(TopicPartition(topic, p)) for p in range(2)}


def read_alerts(
    bootstrap: str, topic: str, until: Callable[[list[dict[str, Any]]], bool], timeout: float
) -> list[dict[str, Any]]:
    records = asyncio.run(
        collect(bootstrap, topic, lambda rs: until([orjson.loads(r.value) for r in rs]), timeout)
    )
    return [orjson.loads(r.value) for r in records]


# -- the webhook receiver ---------------------------------------------------------------------


class HookReceiver(http.server.ThreadingHTTPServer):
    """Records every notification with its ``webhook-id`` (the idempotency key) and arrival
    (``time.monotonic()``)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, float, dict[str, Any]]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", free_port()), _HookHandler)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def notifications(self) -> list[tuple[str, float, dict[str, Any]]]:
        with self.lock:
            return list(self.received)

    def __enter__(self) -> HookReceiver:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _HookHandler(http.server.BaseHTTPRequestHandler):
    server: HookReceiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.received.append(
                (self.headers.get("webhook-id", ""), time.monotonic(), body)
            )
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


#: A notifier killed within this long after a delivery may send it again after its restart (the
#: receiver's answer and the broker's ack of the notifier's state cannot be atomic; the resent
#: notification has the same id, by which a receiver drops it). Seconds, generous.
RESEND_WINDOW = 5.0


@dataclass
class NotificationCount:
    """What the receiver heard, deduplicated by notification id (the idempotency key)."""

    requests: int
    #: (fingerprint, startsAt, status) of every alert, counted once per notification id.
    states: Counter[tuple[str, str, str]]
    #: Ids received again: (id, first arrival, later arrival).
    resent: list[tuple[str, float, float]]
    #: Per fingerprint, the status it was last notified with.
    last_status: dict[str, str]

    @property
    def incidents(self) -> set[tuple[str, str]]:
        return {(f, s) for f, s, _ in self.states}

    @property
    def still_firing(self) -> set[str]:
        """Fingerprints whose last notification said firing.

        (A receiver may never hear that incident A resolved when the same series fires again
        within ``group_interval``: the group holds one version per fingerprint, as in
        Alertmanager, and the resolution of the newer incident resolves the fingerprint.)
        """
        return {f for f, status in self.last_status.items() if status == "firing"}

    @property
    def duplicate_states(self) -> list[tuple[str, str, str]]:
        """Alert states notified under two ids: duplicates a receiver cannot drop."""
        return [state for state, n in self.states.items() if n > 1]

    def resent_outside(self, fault_at: float | None) -> list[tuple[str, float, float]]:
        """Re-sent ids not first delivered within :data:`RESEND_WINDOW` before ``fault_at``
        (or just after: a request on its way when the notifier was killed)."""
        return [
            r
            for r in self.resent
            if fault_at is None or not fault_at - RESEND_WINDOW <= r[1] <= fault_at + 2.0
        ]


def count_notifications(receiver: HookReceiver) -> NotificationCount:
    first: dict[str, float] = {}
    resent: list[tuple[str, float, float]] = []
    states: Counter[tuple[str, str, str]] = Counter()
    last: dict[str, str] = {}
    got = receiver.notifications()
    for ident, at, body in got:
        if ident in first:
            resent.append((ident, first[ident], at))
            continue
        first[ident] = at
        for a in body["alerts"]:
            states[(a["fingerprint"], a["startsAt"], a["status"])] += 1
            last[a["fingerprint"]] = a["status"]
    return NotificationCount(len(got), states, resent, last)


def wait_notified(
    receiver: HookReceiver, done: Callable[[NotificationCount], bool], timeout: float
) -> NotificationCount:
    deadline = time.monotonic() + timeout
    count = count_notifications(receiver)
    while not done(count) and time.monotonic() < deadline:
        time.sleep(0.3)
        count = count_notifications(receiver)
    return count


# -- workers -----------------------------------------------------------------------------------


def metric_value(text: str, name: str, **labels: str) -> float:
    """A sample of the Prometheus text ``text`` (0 if absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


@functools.cache
def http_client() -> httpx.Client:
    """One client for the many scrapes (a new one per request costs a TLS context each time)."""
    return httpx.Client(trust_env=False, timeout=5)


def scrape(worker: WorkerProcess) -> str:
    """The worker's /metrics text ("" if it does not answer)."""
    try:
        return http_client().get(f"http://127.0.0.1:{worker.web_port}/metrics").text
    except httpx.HTTPError:
        return ""


def health(worker: WorkerProcess) -> dict[str, Any]:
    """The worker's /health body ({} if it does not answer)."""
    try:
        return dict(http_client().get(f"http://127.0.0.1:{worker.web_port}/health").json())
    except (httpx.HTTPError, ValueError):
        return {}


def wait_health(read: Callable[[], Any], ok: Callable[[Any], bool], timeout: float) -> Any:
    """Poll ``read()`` until ``ok`` says yes; fails with the last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    value = read()
    while not ok(value):
        if time.monotonic() > deadline:
            pytest.fail(f"not reached within {timeout} s: {value}")
        time.sleep(0.2)
        value = read()
    return value


def wait_committed(setup: Setup, n: int, timeout: float = 30) -> int:
    """Wait until the group has committed ``n`` messages of the metrics topic; returns the sum."""

    def read() -> int:
        offsets = asyncio.run(
            committed_offsets(setup.broker.bootstrap, setup.group, setup.metrics_topic)
        )
        return sum(offsets.values())

    deadline = time.monotonic() + timeout
    total = read()
    while total < n and time.monotonic() < deadline:
        time.sleep(0.5)
        total = read()
    return total


def wait_consumed(setup: Setup, worker: WorkerProcess, n: float, timeout: float = 30) -> float:
    """Wait until ``worker`` has consumed ``n`` events of the metrics topic; returns its count."""
    deadline = time.monotonic() + timeout
    count = setup.consumed(worker)
    while count < n and time.monotonic() < deadline:
        time.sleep(0.2)
        count = setup.consumed(worker)
    return count


@dataclass
class Setup:
    """One test's worker config, topics, stream and expectations."""

    broker: Broker
    tmp: Path
    unique: str
    config_path: Path
    port: int
    config: Config
    stream: Stream
    started: list[WorkerProcess] = field(default_factory=list)

    @property
    def metrics_topic(self) -> str:
        return self.config.topics.metrics

    @property
    def alerts_topic(self) -> str:
        return self.config.topics.alerts

    @property
    def group(self) -> str:
        return self.config.kafka.app_id

    def worker(self, name: str) -> WorkerProcess:
        """A worker process of this setup (a second one gets a config with its own web port)."""
        if not self.started:
            path, port = self.config_path, self.port
        else:
            port = free_port()
            path = self.tmp / f"{name}.toml"
            path.write_text(
                self.config_path.read_text().replace(
                    f"web_port = {self.port}", f"web_port = {port}"
                )
            )
        w = WorkerProcess(path, port, self.tmp / f"{name}.log")
        self.started.append(w)
        return w

    def consumed(self, worker: WorkerProcess) -> float:
        return metric_value(
            scrape(worker), "kestrel_events_consumed_total", topic=self.metrics_topic
        )

    def stop_all(self) -> None:
        for w in self.started:
            w.stop(signal.SIGKILL)


@pytest.fixture
def make_setup(redis_url: str, tmp_path: Path, unique: str) -> Iterator[Callable[..., Setup]]:
    setups: list[Setup] = []

    def make(broker: Broker, receiver: HookReceiver, kafka: str = "") -> Setup:
        cfg = tmp_path / "kestrel.toml"
        extra = EXTRA_CONFIG.format(hook=receiver.base_url)
        port = write_config(cfg, broker, unique, redis_url, extra)
        text = cfg.read_text()
        # The default checkpoint interval (write_config's 0.5 s would hide a checkpoint older
        # than the committed offsets).
        text = text.replace("checkpoint_interval_seconds = 0.5", "checkpoint_interval_seconds = 5")
        if kafka:  # extra [kafka] keys
            text = text.replace("[kafka]\n", f"[kafka]\n{kafka}\n", 1)
        cfg.write_text(text)
        config = load_config(cfg)
        setup = Setup(broker, tmp_path, unique, cfg, port, config, build_stream(seed=9))
        setups.append(setup)
        return setup

    yield make
    for s in setups:
        s.stop_all()


@pytest.fixture
def receiver() -> Iterator[HookReceiver]:
    with HookReceiver() as server:
        yield server


def check_nothing_lost(
    setup: Setup,
    receiver: HookReceiver,
    *,
    points: int = PHASE_A + PHASE_B,
    timeout: float = 60.0,
    killed_at: float | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Wait for the alerts of the first ``points`` points; assert all recorded and notified once.

    ``killed_at`` (``time.monotonic()``) is when the active notifier was killed, if it was.
    Returns the figures (to print) and the records of the alerts topic.
    """
    expected = expected_alerts(setup.config, setup.stream, points)
    # Every series fires and resolves once per spike (a sanity check of the stream itself).
    spikes = 1 if points <= PHASE_A else 2
    assert len(expected) == SERIES * spikes * 2, sorted(expected)

    def complete(alerts: list[dict[str, Any]]) -> bool:
        return expected <= {alert_key(a) for a in alerts}

    alerts = read_alerts(setup.broker.bootstrap, setup.alerts_topic, complete, timeout)
    keys = [alert_key(a) for a in alerts]
    recorded = set(keys)
    duplicates = len(keys) - len(recorded)
    # Every incident reached the receiver, or a later incident of the same series did: a group
    # holds one version per fingerprint, so an incident that resolved and fired again within a
    # group interval (a worker catching up) is notified as the newer one (as in Alertmanager).
    incidents = {(f, rfc3339(started)) for f, status, started in expected if status == "firing"}

    def unheard(notes: NotificationCount) -> list[tuple[str, str]]:
        newest: dict[str, str] = {}
        for f, started in notes.incidents:
            newest[f] = max(newest.get(f, ""), started)
        return sorted((f, t) for f, t in incidents - notes.incidents if newest.get(f, "") <= t)

    notes = wait_notified(receiver, lambda n: not n.still_firing and not unheard(n), 30)
    never = unheard(notes)
    figures = {
        "alerts expected": len(expected),
        "alerts recorded": len(recorded & expected),
        "alerts recorded twice": duplicates,
        "unexpected alerts": len(recorded - expected),
        "notifications": notes.requests,
        "incidents notified": len(notes.incidents),
        "notifications sent again (same id)": len(notes.resent),
    }
    figures["incidents notified as a later one"] = len(incidents - notes.incidents) - len(never)
    print(figures)
    missing = expected - recorded
    seen = [(a["labels"]["host"], a["status"], a["started_at"]) for a in alerts]
    assert not missing, (
        f"{len(missing)} expected alert(s) never recorded: {sorted(missing)}; {seen}"
    )
    assert recorded <= expected, f"unexpected alerts: {sorted(recorded - expected)[:5]}"
    assert notes.requests > 0
    # Nothing notified twice: no alert state under two ids, and an id sent again only for a
    # delivery right before the notifier was killed (the receiver drops it by its id).
    assert not notes.duplicate_states, f"alert states notified twice: {notes.duplicate_states}"
    resent = notes.resent_outside(killed_at)
    assert not resent, f"sent again, not right before a kill ({killed_at=}): {resent}"
    assert not notes.still_firing, f"notified firing, never resolved: {notes.still_firing}"
    assert not never, f"incidents the receiver never heard of: {never}"
    return figures, alerts


def spikes_after_fault_detected(setup: Setup, alerts: Sequence[dict[str, Any]]) -> set[str]:
    """Hosts whose phase-B spike (two normal points after phase A) fired."""
    after = T0 + PHASE_A * STEP
    return {
        a["labels"]["host"] for a in alerts if a["status"] == "firing" and a["started_at"] >= after
    }


# -- injecting a fault mid-stream -------------------------------------------------------------


@dataclass
class Fault:
    """When a fault was injected into phase A, and how far the stream had got."""

    #: ``time.monotonic()`` when it was injected.
    at: float = 0.0
    #: Events the watched workers had consumed then (a lower bound: read just before).
    consumed: float = 0.0
    #: Messages the producer had sent then.
    produced: int = 0
    #: (time, events consumed) as sampled until the fault.
    timeline: list[tuple[float, float]] = field(default_factory=list)
    #: With ``follow``: when the workers had consumed all that was produced before the fault.
    caught_up: float | None = None


async def phase_a_with_fault(
    setup: Setup,
    consumed: Callable[[], float],
    inject: Callable[[], None],
    *,
    rate: float = 20.0,
    follow: bool = False,
) -> tuple[int, Fault]:
    """Produce phase A at ``rate`` points/s; past its middle, once an offset commit happened
    (there is saved state), call ``inject`` (in a thread, while production goes on). With
    ``follow``, then wait until ``consumed()`` reaches what had been produced at the fault.

    Returns the messages sent (all of phase A) and the fault's figures.
    """
    total = SERIES * PHASE_A
    progress = [0]
    producing = asyncio.ensure_future(
        produce(
            setup.broker.bootstrap,
            setup.metrics_topic,
            setup.stream,
            range(PHASE_A),
            rate,
            progress,
        )
    )
    fault = Fault()
    committed = 0
    deadline = time.monotonic() + 90
    while True:
        n = await asyncio.to_thread(consumed)
        fault.timeline.append((time.monotonic(), n))
        assert n < total, "phase A was consumed before any offset commit: no fault injected"
        assert time.monotonic() < deadline, f"consumption stalled: {fault.timeline[-5:]}"
        if n >= total / 2 and not committed:
            offsets = await committed_offsets(
                setup.broker.bootstrap, setup.group, setup.metrics_topic
            )
            committed = sum(offsets.values())
        if committed:
            fault.at, fault.consumed, fault.produced = time.monotonic(), n, progress[0]
            await asyncio.to_thread(inject)
            break
        await asyncio.sleep(0.05)
    while follow and fault.caught_up is None:
        if await asyncio.to_thread(consumed) >= fault.produced:
            fault.caught_up = time.monotonic()
        assert time.monotonic() < fault.at + 120, "the workers did not catch up"
        await asyncio.sleep(0.1)
    return await producing, fault


def sigkill(worker: WorkerProcess) -> Callable[[], None]:
    def kill() -> None:
        assert worker.proc is not None
        worker.proc.send_signal(signal.SIGKILL)
        worker.proc.wait(10)

    return kill


def produce_phase_b(setup: Setup) -> int:
    """The phase after the fault: two normal points, then a spike on every series."""
    points = range(PHASE_A, PHASE_A + PHASE_B)
    return int(
        asyncio.run(produce(setup.broker.bootstrap, setup.metrics_topic, setup.stream, points, 10))
    )


def states_loaded(worker: WorkerProcess) -> tuple[float, float]:
    """(restored from the changelog, started new) series states of ``worker``."""
    text = scrape(worker)
    name = "kestrel_series_states_loaded_total"
    return metric_value(text, name, source="changelog"), metric_value(text, name, source="new")


# -- 1. worker SIGKILL mid-stream, restarted ----------------------------------------------------


def test_a_worker_killed_mid_stream_and_restarted_loses_nothing(
    broker: Broker, make_setup: Callable[..., Setup], receiver: HookReceiver
) -> None:
    setup = make_setup(broker, receiver)
    first = setup.worker("first").start()
    first.wait_ready()

    async def phase_a() -> tuple[int, Fault, dict[int, int]]:
        sent, fault = await phase_a_with_fault(setup, lambda: setup.consumed(first), sigkill(first))
        committed = await committed_offsets(broker.bootstrap, setup.group, setup.metrics_topic)
        return sent, fault, committed

    sent, fault, offsets = asyncio.run(phase_a())
    committed = sum(offsets.values())
    second = setup.worker("second").start()
    second.wait_ready()
    ready = time.monotonic() - fault.at
    sent += produce_phase_b(setup)
    figures, alerts = check_nothing_lost(setup, receiver, killed_at=fault.at)
    restored, fresh = states_loaded(second)
    consumed_after = wait_consumed(setup, second, sent - committed)
    # The records the killed worker had consumed past the last commit are read again.
    replayed = fault.consumed - committed
    # How old the last commit was when the worker died: when had it consumed that much?
    commit_time = next((t for t, n in fault.timeline if n >= committed), fault.at)
    replay_span = fault.at - commit_time
    print(
        {
            "events in": sent,
            "consumed before the kill": fault.consumed,
            "committed at the kill": committed,
            "consumed after the restart": consumed_after,
            "replayed (at least)": replayed,
            "replay span s": round(replay_span, 2),
            "states restored": restored,
            "states new": fresh,
            "ready after the kill s": round(ready, 1),
            **figures,
        }
    )
    # Nothing skipped: the restarted worker read everything from the committed offsets on.
    assert consumed_after == sent - committed
    assert replayed >= 0
    # Replay bounded as documented (README, "State, scaling and crashes"): what was consumed
    # since the last offset commit, at most broker_commit_interval old (+ a margin for a busy
    # machine).
    assert replay_span <= COMMIT_INTERVAL + 5.0, fault.timeline
    # Baselines restored: every series' state came from the changelog, none started afresh, and
    # the spike right after phase A (too early for a new warm-up) fired on every series.
    assert (restored, fresh) == (SERIES, 0)
    assert spikes_after_fault_detected(setup, alerts) == set(setup.stream.hosts)


# -- 2. one of two workers SIGKILLed -----------------------------------------------------------


def test_the_survivor_of_two_workers_takes_the_partitions_and_their_baselines(
    broker: Broker, make_setup: Callable[..., Setup], receiver: HookReceiver
) -> None:
    setup = make_setup(broker, receiver)
    a = setup.worker("a").start()
    b = setup.worker("b").start()
    a.wait_ready()
    b.wait_ready()
    split = wait_health(
        lambda: [health(a).get("partitions"), health(b).get("partitions")],
        lambda parts: (
            sorted(parts[0] or []) + sorted(parts[1] or []) in ([0, 1], [1, 0]) and all(parts)
        ),
        timeout=60,
    )
    # The victim is the active notifier: its alerts partition moves too.
    victim, survivor = (a, b) if health(a).get("notifier") else (b, a)
    victim_parts = health(victim)["partitions"]

    def both() -> float:
        return setup.consumed(a) + setup.consumed(b)

    before: dict[str, float] = {}

    def kill() -> None:
        before["victim series"] = metric_value(
            scrape(victim), "kestrel_series_tracked", kind="metric"
        )
        sigkill(victim)()

    sent, fault = asyncio.run(phase_a_with_fault(setup, both, kill))
    offsets = asyncio.run(committed_offsets(broker.bootstrap, setup.group, setup.metrics_topic))

    def took_over(h: dict[str, Any]) -> bool:
        return h.get("partitions") == [0, 1] and bool(h.get("notifier")) and h.get("status") == "ok"

    wait_health(lambda: health(survivor), took_over, timeout=60)
    takeover = time.monotonic() - fault.at
    sent += produce_phase_b(setup)
    own = SERIES - before["victim series"]
    figures, alerts = check_nothing_lost(setup, receiver, killed_at=fault.at)
    restored, fresh = states_loaded(survivor)
    consumed = wait_consumed(setup, survivor, sent - offsets.get(victim_parts[0], 0))
    print(
        {
            "events in": sent,
            "partitions": split,
            "victim's partitions": victim_parts,
            "victim's series": before["victim series"],
            "committed at the kill": offsets,
            "survivor consumed": consumed,
            "takeover s": round(takeover, 1),
            "session timeout s": setup.config.kafka.session_timeout_seconds,
            "survivor's states restored": restored,
            "survivor's states new": fresh,
            **figures,
        }
    )
    # Within the session timeout, plus a generous margin for the rebalance on a busy machine.
    assert takeover <= setup.config.kafka.session_timeout_seconds + 30
    # The baselines came along: the survivor restored the victim's series from the changelog
    # (and its own, whose partition the rebalance took away and gave back) and started afresh
    # only its own series, at the start; the spike after phase A fired on every series.
    assert before["victim series"] > 0
    assert fresh == own and restored >= before["victim series"], (restored, fresh)
    assert spikes_after_fault_detected(setup, alerts) == set(setup.stream.hosts)
    # Nothing skipped: the survivor read its partition (from the start) and the victim's from
    # its committed offset on, and everything was committed in the end.
    assert consumed >= sent - offsets.get(victim_parts[0], 0)
    assert wait_committed(setup, sent) == sent


# -- 3. the partition leader of three brokers stopped -------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheKafka]:
    """Three Apache Kafka nodes (replication factor 3, min.insync.replicas 2)."""
    with serving(ApacheKafka(nodes=3, directory=tmp_path_factory.mktemp("kafka3"))) as kafka:
        yield kafka


def test_alerting_goes_on_when_the_partition_leader_of_three_brokers_stops(
    cluster: ApacheKafka, make_setup: Callable[..., Setup], receiver: HookReceiver
) -> None:
    setup = make_setup(cluster, receiver, kafka="replication_factor = 3")
    worker = setup.worker("worker").start()
    worker.wait_ready()
    leaders = asyncio.run(partition_leaders(cluster.bootstrap, setup.metrics_topic))
    alerts_leader = asyncio.run(partition_leaders(cluster.bootstrap, setup.alerts_topic))
    stopped = leaders[0]

    def stop_leader() -> None:
        cluster.stop_node(stopped)

    sent, fault = asyncio.run(
        phase_a_with_fault(setup, lambda: setup.consumed(worker), stop_leader, follow=True)
    )
    assert fault.caught_up is not None
    new_leaders = asyncio.run(partition_leaders(cluster.bootstrap, setup.metrics_topic))
    sent += produce_phase_b(setup)
    figures, alerts = check_nothing_lost(setup, receiver)
    consumed = wait_consumed(setup, worker, sent)
    print(
        {
            "events in": sent,
            "consumed": consumed,
            "metrics partition leaders": leaders,
            "alerts partition leader": alerts_leader[0],
            "stopped node": stopped,
            "leaders after": new_leaders,
            "produced before the stop": fault.produced,
            "caught up after the stop s": round(fault.caught_up - fault.at, 1),
            **figures,
        }
    )
    assert stopped not in new_leaders.values()  # a new leader was elected
    assert worker.proc is not None and worker.proc.poll() is None
    assert consumed >= sent  # (a duplicate after a retried fetch would be counted twice)
    assert spikes_after_fault_detected(setup, alerts) == set(setup.stream.hosts)


# -- 4. the broker stopped for 60 s and back; 5. SIGTERM while it is gone ------------------------

#: How long the broker stays down (issue 9: 60 s).
OUTAGE_SECONDS = 60.0


@pytest.fixture(scope="module")
def outage_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApacheKafka]:
    """A single Apache Kafka node of these tests' own, to stop and start again."""
    with serving(ApacheKafka(directory=tmp_path_factory.mktemp("kafka-outage"))) as kafka:
        yield kafka


def test_the_worker_reconnects_and_catches_up_after_the_broker_was_down_60_s(
    outage_broker: ApacheKafka, make_setup: Callable[..., Setup], receiver: HookReceiver
) -> None:
    setup = make_setup(outage_broker, receiver)
    worker = setup.worker("worker").start()
    worker.wait_ready()
    half = PHASE_A // 2
    sent = asyncio.run(
        produce(outage_broker.bootstrap, setup.metrics_topic, setup.stream, range(half), 40)
    )
    before = wait_consumed(setup, worker, sent)
    assert before == sent
    outage_broker.stop_node(1)
    down = time.monotonic()
    time.sleep(OUTAGE_SECONDS)
    assert worker.proc is not None and worker.proc.poll() is None, worker.log()
    restarting = time.monotonic()
    outage_broker.start_node(1)
    back = time.monotonic()
    rest = range(half, PHASE_A + PHASE_B)
    sent += asyncio.run(
        produce(outage_broker.bootstrap, setup.metrics_topic, setup.stream, rest, 40)
    )
    consumed = wait_consumed(setup, worker, sent, timeout=120)
    caught_up = time.monotonic() - back
    figures, alerts = check_nothing_lost(setup, receiver)
    print(
        {
            "events in": sent,
            "consumed before the outage": before,
            "consumed": consumed,
            "broker down s": round(restarting - down, 1),
            "broker start s": round(back - restarting, 1),
            "caught up after the broker was back s": round(caught_up, 1),
            **figures,
        }
    )
    assert worker.proc.poll() is None  # it reconnected by itself: the same process
    assert consumed >= sent
    assert spikes_after_fault_detected(setup, alerts) == set(setup.stream.hosts)


def test_sigterm_while_the_broker_is_gone_exits_within_15_s(
    outage_broker: ApacheKafka, make_setup: Callable[..., Setup], receiver: HookReceiver
) -> None:
    setup = make_setup(outage_broker, receiver)
    worker = setup.worker("worker").start()
    worker.wait_ready()
    sent = asyncio.run(
        produce(outage_broker.bootstrap, setup.metrics_topic, setup.stream, range(40), 80)
    )
    assert wait_consumed(setup, worker, sent) == sent
    outage_broker.stop_node(1)
    try:
        time.sleep(2.0)  # the worker notices (fetches and heartbeats fail)
        assert worker.proc is not None
        died = worker.proc.poll()
        assert died is None, f"the worker exited ({died}) when the broker stopped:\n" + _story(
            worker.log_path.read_text(errors="replace")
        )
        signalled = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        try:
            status = worker.proc.wait(60)
        except subprocess.TimeoutExpired:
            status = None
        took = time.monotonic() - signalled
    finally:
        outage_broker.start_node(1)
    log = worker.log_path.read_text(errors="replace")
    print(
        {
            "events in": sent,
            "exit after SIGTERM s": round(took, 1),
            "exit status": status,
            "shutdown_timeout_seconds": setup.config.worker.shutdown_timeout_seconds,
        }
    )
    assert status is not None, f"still running {took:.0f} s after SIGTERM; log:\n{_story(log)}"
    assert took <= 15.0, _story(log)
    # It began its clean stop (which saves states and the notifier's state, all to the broker)
    # and the watchdog ended the wait for the broker.
    assert "Stopping..." in log and "shutdown did not finish" in log, _story(log)


#: Lines a worker repeats every 100 ms while its broker is down (they hide the rest of its log).
_RETRIES = ("Unable connect to node", "Unable to update metadata", "NodeNotReadyError")


def _story(log: str, chars: int = 4000) -> str:
    """The end of a worker's log without the connection retries, which are counted instead."""
    lines = log.splitlines()
    kept = [line for line in lines if not any(r in line for r in _RETRIES)]
    return (
        f"({len(lines) - len(kept)} connection retry lines left out)\n" + "\n".join(kept)[-chars:]
    )
