"""Notifications end to end: a worker on Apache Kafka delivering to real local servers.

Covers the storm (grouping), a receiver that is down and comes back (retries, the alerts DLQ and
`kestrel dlq replay`), the silences API, and a restart that must not send duplicates.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from engine.devtools.broker import Broker
from engine.model.alert import Alert, AlertStatus, Severity, fingerprint
from tests.testkit import REPO, RecordingServer, WorkerProcess, collect, producer, run, write_config

TOKEN = "test-token-5b1f0c"
T0 = 1_779_999_960.0


@pytest.fixture(scope="module")
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as s:
        yield s


@pytest.fixture(scope="module")
def env(
    broker: Broker,
    redis_url: str,
    server: RecordingServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    unique = f"n{random.randrange(1 << 30):x}"
    tmp = tmp_path_factory.mktemp("notify")
    base = server.base_url
    extra = f"""
[series]
metric_detectors = ["zscore"]

[detectors.zscore]
warmup = 10

[routing]
channels = ["hook"]
group_by = ["service"]
group_wait_seconds = 1
group_interval_seconds = 2

[[routing.routes]]
matchers = ['service="storm"']
channels = ["slack"]

[[channels]]
name = "hook"
type = "webhook"
url = "{base}/hook"
max_attempts = 2
retry_budget_seconds = 1

[[channels]]
name = "slack"
type = "slack"
url = "{base}/slack"

[api]
token = "${{KESTREL_API_TOKEN}}"
"""
    cfg = tmp / "kestrel.toml"
    port = write_config(cfg, broker, unique, redis_url, extra)
    worker = WorkerProcess(cfg, port, tmp / "worker.log", env={"KESTREL_API_TOKEN": TOKEN})
    worker.start().wait_ready()
    yield {"unique": unique, "worker": worker, "cfg": cfg, "port": port, "tmp": tmp}
    worker.stop()


def _alert(
    series: str, service: str, status: AlertStatus = AlertStatus.FIRING, repeat: int = 0
) -> Alert:
    labels = {"service": service}
    return Alert(
        fingerprint=fingerprint(series, labels, "zscore"),
        status=status,
        severity=Severity.WARNING,
        series=series,
        labels=labels,
        detector="zscore",
        value=9.0,
        expected=1.0,
        score=8.0,
        started_at=T0,
        ended_at=None if status is AlertStatus.FIRING else T0 + 60,
        summary=f"{series}: 9 vs expected 1",
        repeat=repeat,
    )


def _publish_alerts(broker: Broker, unique: str, alerts: list[Alert], spread: float = 0.0) -> None:
    async def send() -> None:
        async with producer(broker.bootstrap) as p:
            for i, alert in enumerate(alerts):
                await p.send(
                    f"alerts-{unique}",
                    orjson.dumps(alert.to_dict()),
                    key=alert.fingerprint.encode(),
                )
                if spread and i % 100 == 99:
                    await p.flush()
                    await asyncio.sleep(spread / (len(alerts) / 100))

    run(send())


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def test_a_storm_becomes_a_handful_of_slack_messages(
    broker: Broker, env: dict[str, Any], server: RecordingServer
) -> None:
    # 1,000 alert records (20 each for 50 series of one service) within about 5 s.
    storm = [_alert(f"storm_metric_{i % 50}", "storm", repeat=i // 50) for i in range(1000)]
    _publish_alerts(broker, env["unique"], storm, spread=5.0)
    assert _wait(lambda: len(server.got("/slack")) >= 1, 20)
    time.sleep(6)  # several group intervals: nothing more should come for an unchanged group
    messages = server.got("/slack")
    assert 1 <= len(messages) <= 5, [m["text"] for m in messages]
    covered = set()
    for message in messages:
        assert "alerts firing for service=storm" in message["text"], message["text"]
        count = int(message["text"].split(" alerts firing")[0].split()[-1])
        assert 1 <= count <= 50
        covered.add(count)
    assert max(covered) == 50  # together, every series of the storm was reported
    assert server.got("/hook") == [] or all(
        b["groupLabels"].get("service") != "storm" for b in server.got("/hook")
    )  # routed to Slack only


def test_a_receiver_that_was_down_gets_everything_after_replay(
    broker: Broker, env: dict[str, Any], server: RecordingServer
) -> None:
    unique = env["unique"]
    server.down = True
    lost = [_alert(f"down_metric_{i}", "web") for i in range(5)]
    _publish_alerts(broker, unique, lost)
    # The retry budget (2 attempts, 1 s) is spent: the notification reaches the alerts DLQ.
    dlq = run(
        collect(
            broker.bootstrap,
            f"alerts-dlq-{unique}",
            lambda rs: any(orjson.loads(r.value).get("channel") == "hook" for r in rs),
            30,
        )
    )
    dead = [orjson.loads(r.value) for r in dlq]
    assert any(d["channel"] == "hook" and d["attempts"] == 2 and "503" in d["error"] for d in dead)
    metrics = env["worker"].metrics()
    assert 'kestrel_deliveries_total{channel="hook",outcome="dead_lettered"}' in metrics
    server.down = False
    replay = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "dlq",
            "replay",
            "--config",
            str(env["cfg"]),
            "--channel",
            "hook",
        ],
        cwd=REPO,
        env={**os.environ, "KESTREL_API_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert replay.returncode == 0, replay.stdout + replay.stderr
    wanted = {a.series for a in lost}

    def delivered() -> set[str]:
        return {a["labels"]["alertname"] for b in server.got("/hook") for a in b["alerts"]} & wanted

    assert _wait(lambda: delivered() == wanted, 20), delivered()
    again = subprocess.run(
        [sys.executable, "-m", "engine.cli", "dlq", "replay", "--config", str(env["cfg"])],
        cwd=REPO,
        env={**os.environ, "KESTREL_API_TOKEN": TOKEN},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "delivered=0 failed=0" in again.stdout  # nothing pending twice


def _api(
    env: dict[str, Any], method: str, path: str, token: str | None = TOKEN, **kw: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"http://127.0.0.1:{env['port']}{path}"
    return httpx.request(method, url, headers=headers, timeout=10, **kw)


def test_silences_api_mutes_matching_alerts_and_records_them_as_silenced(
    broker: Broker, env: dict[str, Any], server: RecordingServer
) -> None:
    unique = env["unique"]
    assert _api(env, "GET", "/silences", token=None).status_code == 401
    assert _api(env, "GET", "/silences", token="wrong").status_code == 401
    bad = _api(env, "POST", "/silences", json={"matchers": []})
    assert bad.status_code == 400 and "matchers" in bad.json()["error"]
    now = time.time()
    silence = {
        "matchers": [{"name": "service", "value": "muted", "isRegex": False}],
        "startsAt": now - 1,
        "endsAt": now + 3600,
        "createdBy": "tests",
        "comment": "maintenance window",
    }
    created = _api(env, "POST", "/silences", json=silence)
    assert created.status_code == 200, created.text
    silence_id = created.json()["silenceID"]
    listed = _api(env, "GET", "/silences").json()
    assert [s["id"] for s in listed if s["status"]["state"] == "active"] == [silence_id]

    async def spikes() -> None:
        async with producer(broker.bootstrap) as p:
            for service in ("muted", "loud"):
                for i in range(30):
                    value = 500.0 if i >= 25 else 100.0 + (i % 3)
                    doc = {
                        "name": "api_latency_ms",
                        "value": value,
                        "timestamp": T0 + 10 * i,
                        "labels": {"service": service},
                    }
                    await p.send(f"metrics-{unique}", orjson.dumps(doc), key=service.encode())

    run(spikes())

    def loud_delivered() -> bool:
        return any(b["groupLabels"].get("service") == "loud" for b in server.got("/hook"))

    assert _wait(loud_delivered, 30)
    time.sleep(3)  # a group interval more: the muted service must still be absent
    assert not any(b["groupLabels"].get("service") == "muted" for b in server.got("/hook"))
    records = run(collect(broker.bootstrap, f"alerts-{unique}", lambda rs: False, 3))
    ours = [orjson.loads(r.value) for r in records if b"api_latency_ms" in r.value]
    by_service = {a["labels"]["service"]: a["silenced"] for a in ours}
    assert by_service == {"muted": True, "loud": False}  # still recorded, marked silenced
    assert "kestrel_alerts_silenced_total 1.0" in env["worker"].metrics()

    expired = _api(env, "DELETE", f"/silences/{silence_id}")
    assert expired.status_code == 200 and expired.json()["status"]["state"] == "expired"
    assert _api(env, "GET", f"/silences/{silence_id}").json()["status"]["state"] == "expired"
    assert _api(env, "DELETE", "/silences/no-such-id").status_code == 404


def test_a_restarted_worker_sends_no_duplicates(
    env: dict[str, Any], server: RecordingServer
) -> None:
    def counts() -> dict[str, int]:
        return {path: len(server.got(path)) for path in ("/hook", "/slack")}

    # Let the earlier tests' notifications settle (the expired silence un-mutes an alert).
    before = counts()
    while True:
        time.sleep(4)
        if counts() == before:
            break
        before = counts()
    assert before["/hook"] and before["/slack"]
    worker: WorkerProcess = env["worker"]
    worker.stop()
    worker.start().wait_ready()
    time.sleep(6)  # three group intervals after the new worker took over
    after = {path: len(server.got(path)) for path in ("/hook", "/slack")}
    assert after == before
    assert "group(s) restored" in worker.log()
