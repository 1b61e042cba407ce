"""The worker end to end: a real broker, Redis and HTTP receiver, worker processes.

The module runs twice: on Apache Kafka, then on the embedded Tansu broker (``each_broker``).
On Tansu, the restart test also checks that the worker applies the state changelog a whole
fetched batch at a time (``_restore`` in engine/runtime/ingest.py): Tansu 0.6 answers
ListOffsets (latest) with the base offset of the partition's last record batch plus one, not
the log end offset, so Faust's own recovery, a record at a time, ends before the rest of that
batch is applied (see ``test_the_end_offset_counts_every_record`` in
tests/engine/test_brokers.py).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from engine.devtools.broker import Broker, free_port
from tests.testkit import (
    RecordingServer,
    WorkerProcess,
    collect,
    producer,
    run,
    topic_configs,
    write_config,
)

T0 = 1_779_999_960.0  # event time of the first sample (2026-05-28), on a minute boundary
STEP = 10.0


@pytest.fixture(scope="module")
def receiver(each_broker: Broker) -> Iterator[RecordingServer]:
    """A webhook receiver per broker run (it counts notifications)."""
    with RecordingServer() as server:
        yield server


@pytest.fixture(scope="module")
def setup(
    each_broker: Broker,
    redis_url: str,
    receiver: RecordingServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    unique = f"w{random.randrange(1 << 30):x}"
    tmp = tmp_path_factory.mktemp("worker")
    cfg = tmp / "kestrel.toml"
    extra = f"""
[windows]
size_seconds = 60
allowed_lateness_seconds = 0
idle_advance_seconds = 1

[series]
# The worker's mechanics (restarts, baselines) are checked with the simple zscore detector;
# the default (adaptive) has its own tests, and runs in the demo.
metric_detectors = ["zscore"]

[routing]
group_wait_seconds = 1
group_interval_seconds = 2

[[channels]]
name = "hook"
type = "webhook"
url = "{receiver.base_url}/hook"
max_attempts = 3
"""
    port = write_config(cfg, each_broker, unique, redis_url, extra)
    worker = WorkerProcess(cfg, port, tmp / "worker.log").start()
    worker.wait_ready()
    r = redis.Redis.from_url(redis_url)
    info = {"unique": unique, "worker": worker, "cfg": cfg, "port": port, "tmp": tmp, "redis": r}
    run(_publish_first_round(each_broker.bootstrap, unique))
    yield info
    worker.stop()
    info["worker"].stop()  # the restart test replaces it
    keys = list(r.scan_iter(f"kestrel-test-{unique}:*"))
    if keys:
        r.delete(*keys)


def _metric(name: str, value: float, i: int, **labels: str) -> bytes:
    return orjson.dumps(
        {"name": name, "value": value, "timestamp": T0 + i * STEP, "labels": labels}
    )


def _log(service: str, i: float, level: str = "INFO", **extra: Any) -> dict[str, Any]:
    return {"timestamp": T0 + i, "level": level, "service": service, "message": "m", **extra}


async def _publish_first_round(bootstrap: str, unique: str) -> None:
    rng = random.Random(3)
    metrics, logs = f"metrics-{unique}", f"logs-{unique}"
    async with producer(bootstrap) as p:
        for i in range(200):
            await p.send(metrics, _metric("steady", rng.gauss(50, 2), i, host="a"), key=b"steady")
            spike = 150 <= i < 156
            value = 500.0 if spike else rng.gauss(100, 3)
            await p.send(metrics, _metric("spiky", value, i, host="a"), key=b"spiky")
        # 30 one-minute windows of 40 events; windows 20-22 are 60% errors.
        for w in range(30):
            batch = []
            for j in range(40):
                error = (j % 10 < 6) if 20 <= w < 23 else (j == 0 and w % 2 == 0)
                batch.append(_log("svc-burst", w * 60 + j, "ERROR" if error else "INFO"))
            await p.send(logs, orjson.dumps(batch), key=b"svc-burst")  # one message, a batch
        hot = [_log("svc-hot", k, type="thought", context={"step": k}) for k in range(5)]
        await p.send(logs, b"\n".join(orjson.dumps(e) for e in hot), key=b"svc-hot")  # NDJSON
        # Bad input: whole messages and one bad item inside an otherwise good batch.
        await p.send(metrics, b"{not json", key=b"bad")
        await p.send(metrics, b"\xff\xfe\x00", key=b"bad")
        await p.send(metrics, b'{"name": "x", "value": 1e999, "timestamp": 1}', key=b"bad")
        await p.send(metrics, b'{"value": 1, "timestamp": 1}', key=b"bad")
        good_and_bad = [
            {"name": "batch_ok", "value": 1.0, "timestamp": T0},
            {"name": "batch_bad", "value": "high", "timestamp": T0},
            {"name": "batch_ok", "value": 2.0, "timestamp": T0 + 1},
        ]
        await p.send(metrics, orjson.dumps(good_and_bad), key=b"batch")


def _alerts(broker: Broker, unique: str, until: Any, timeout: float = 45) -> list[dict[str, Any]]:
    records = run(
        collect(
            broker.bootstrap,
            f"alerts-{unique}",
            lambda rs: until([orjson.loads(r.value) for r in rs]),
            timeout,
        )
    )
    return [orjson.loads(r.value) for r in records]


def _has(alerts: list[dict[str, Any]], series: str, status: str) -> bool:
    return any(a["series"] == series and a["status"] == status for a in alerts)


def test_spike_and_error_burst_fire_and_resolve(each_broker: Broker, setup: dict[str, Any]) -> None:
    def done(alerts: list[dict[str, Any]]) -> bool:
        return all(
            _has(alerts, s, st)
            for s in ("spiky", "log.error_ratio")
            for st in ("firing", "resolved")
        )

    alerts = _alerts(each_broker, setup["unique"], done)
    assert done(alerts), f"alerts seen: {[(a['series'], a['status']) for a in alerts]}"
    spiky = [a for a in alerts if a["series"] == "spiky"]
    firing = [a for a in spiky if a["status"] == "firing" and a["repeat"] == 0]
    assert len(firing) == 1, spiky  # one incident, one firing notification
    assert firing[0]["started_at"] >= T0 + 150 * STEP  # judged in event time
    assert firing[0]["value"] == 500.0 and firing[0]["expected"] == pytest.approx(100, abs=5)
    assert firing[0]["labels"] == {"host": "a"} and firing[0]["detector"] == "zscore"
    errors = next(a for a in alerts if a["series"] == "log.error_ratio" and a["status"] == "firing")
    assert errors["labels"] == {"service": "svc-burst"} and errors["detector"] == "error_spike"
    assert errors["value"] == pytest.approx(0.6)
    assert T0 + 20 * 60 <= errors["started_at"] <= T0 + 24 * 60


def test_stationary_series_raises_no_alert(each_broker: Broker, setup: dict[str, Any]) -> None:
    alerts = _alerts(each_broker, setup["unique"], lambda a: _has(a, "spiky", "resolved"))
    assert _has(alerts, "spiky", "resolved")  # the worker got this far...
    assert not [a for a in alerts if a["series"] in ("steady", "log.events")]  # ...and stayed quiet


def test_alerts_reach_the_webhook_receiver(
    setup: dict[str, Any], receiver: RecordingServer
) -> None:
    # The whole incident was processed within group_wait: the receiver hears of it once, resolved.
    wanted = {("spiky", "resolved"), ("log.error_ratio", "resolved")}
    deadline = time.monotonic() + 30
    got: set[tuple[str, str]] = set()
    while time.monotonic() < deadline and not wanted <= got:
        got = {
            (a["labels"]["alertname"], a["status"])
            for b in receiver.got("/hook")
            for a in b["alerts"]
        }
        time.sleep(0.2)
    assert wanted <= got, receiver.got("/hook")
    spiky = [
        (b, a)
        for b in receiver.got("/hook")
        for a in b["alerts"]
        if a["labels"]["alertname"] == "spiky"
    ]
    assert len(spiky) == 1  # one incident, one notification
    body, alert = spiky[0]
    assert body["version"] == "4" and body["receiver"] == "hook"
    assert alert["labels"]["host"] == "a" and alert["labels"]["detector"] == "zscore"
    assert alert["startsAt"] < alert["endsAt"]


def test_bad_input_goes_to_the_dlq_with_reasons(each_broker: Broker, setup: dict[str, Any]) -> None:
    unique = setup["unique"]
    records = run(collect(each_broker.bootstrap, f"dlq-{unique}", lambda rs: len(rs) >= 5, 30))
    by_reason = {dict(r.headers)["kestrel-reason"].decode(): r for r in records}
    assert set(by_reason) == {
        "invalid_json",
        "not_utf8",
        "not_finite",
        "missing_field",
        "wrong_type",
    }
    assert by_reason["not_utf8"].value == b"\xff\xfe\x00"  # the original bytes
    headers = dict(by_reason["wrong_type"].headers)
    assert headers["kestrel-source-topic"] == f"metrics-{unique}".encode()
    assert headers["kestrel-batch-index"] == b"1"
    assert b"value" in headers["kestrel-error"]
    text = setup["worker"].metrics()
    assert f'kestrel_invalid_events_total{{reason="not_utf8",topic="metrics-{unique}"}} 1.0' in text
    # The two good items of the mixed batch were processed.
    deadline = time.monotonic() + 10
    while 'kind="metric"} 3.0' not in setup["worker"].metrics() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert 'kestrel_series_tracked{kind="metric"} 3.0' in setup["worker"].metrics()


def test_hot_events_are_mirrored_to_redis(setup: dict[str, Any]) -> None:
    r: redis.Redis = setup["redis"]
    key = f"kestrel-test-{setup['unique']}:events:svc-hot"
    deadline = time.monotonic() + 20
    while r.xlen(key) < 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    entries = r.xrange(key)
    assert len(entries) == 5
    first = orjson.loads(entries[0][1][b"event"])
    assert first["type"] == "thought" and first["context"] == {"step": 0}  # unknown fields kept
    assert 0 < r.ttl(key) <= 86400
    assert r.xlen(f"kestrel-test-{setup['unique']}:alerts") >= 1
    cold = f"kestrel-test-{setup['unique']}:events:svc-burst"
    assert r.exists(cold) == 0  # INFO/ERROR events without a hot type are not mirrored


def test_keyed_state_topics_are_compacted_and_event_topics_are_not(
    each_broker: Broker, setup: dict[str, Any]
) -> None:
    unique = setup["unique"]
    app_id = f"kestrel-test-{unique}"
    compacted = [f"{app_id}-series-state-changelog", f"silences-{unique}", f"{app_id}-notify-state"]
    deleted = [f"metrics-{unique}", f"logs-{unique}", f"alerts-{unique}", f"dlq-{unique}"]
    configs = run(topic_configs(each_broker.bootstrap, compacted + deleted))
    # Tansu lists only what was set at creation; Apache Kafka every effective value.
    policy = {topic: configs[topic].get("cleanup.policy", "delete") for topic in configs}
    assert policy == {
        **dict.fromkeys(compacted, "compact"),
        **dict.fromkeys(deleted, "delete"),
    }


def test_a_restarted_worker_keeps_its_baselines_and_a_second_one_takes_half(
    each_broker: Broker, setup: dict[str, Any]
) -> None:
    unique = setup["unique"]
    before = _alerts(each_broker, unique, lambda a: _has(a, "spiky", "resolved"))
    setup["worker"].stop()  # SIGTERM: a clean stop checkpoints state
    tmp: Path = setup["tmp"]
    a = WorkerProcess(setup["cfg"], setup["port"], tmp / "worker-a.log").start()
    setup["worker"] = a
    a.wait_ready()

    async def more() -> None:
        async with producer(each_broker.bootstrap) as p:
            # 2 normal points then a spike: only a warm baseline (no new warm-up) can flag it.
            for k, value in enumerate([100.0, 101.0, 600.0, 600.0, 600.0, 600.0]):
                await p.send(
                    f"metrics-{unique}", _metric("spiky", value, 300 + k, host="a"), key=b"spiky"
                )

    run(more())
    n_before = sum(1 for x in before if x["series"] == "spiky" and x["status"] == "firing")

    def new_incident(alerts: list[dict[str, Any]]) -> bool:
        firing = [x for x in alerts if x["series"] == "spiky" and x["status"] == "firing"]
        return len(firing) > n_before

    def loaded() -> list[str]:
        return [line for line in a.metrics().splitlines() if "states_loaded_total{" in line]

    after = _alerts(each_broker, unique, new_incident, timeout=40)
    assert new_incident(after), ([(x["series"], x["status"]) for x in after], loaded())
    new = [x for x in after if x["series"] == "spiky" and x["status"] == "firing"][-1]
    assert new["started_at"] >= T0 + 302 * STEP
    restored = 'kestrel_series_states_loaded_total{source="changelog"} 1.0'
    deadline = time.monotonic() + 5  # the counters are exported every second
    while restored not in loaded() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert restored in loaded()

    # A second worker with the same app id takes half of the partitions.
    second_cfg = tmp / "second.toml"
    port2 = free_port()
    second_cfg.write_text(
        setup["cfg"].read_text().replace(f"web_port = {setup['port']}", f"web_port = {port2}")
    )
    b = WorkerProcess(second_cfg, port2, tmp / "worker-b.log").start()
    try:
        b.wait_ready()
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            parts = [
                httpx.get(f"http://127.0.0.1:{w.web_port}/health").json()["partitions"]
                for w in (a, b)
            ]
            if sorted(parts[0] + parts[1]) == [0, 1] and parts[0] and parts[1]:
                break
            time.sleep(0.5)
        assert sorted(parts[0] + parts[1]) == [0, 1] and parts[0] and parts[1], parts
    finally:
        b.stop()
