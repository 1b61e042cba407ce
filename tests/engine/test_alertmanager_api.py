"""Alertmanager's API v2 at a live worker, driven by Debian's ``amtool`` (prometheus-alertmanager).

One worker on Apache Kafka for the module; alerts are published to its alerts topic directly
(the notifier holds them as Alertmanager would). amtool authenticates with a bearer token from
an ``--http.config.file``.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from engine.devtools.broker import Broker, free_port
from engine.model.alert import Alert, AlertStatus, Severity, fingerprint
from tests.testkit import WorkerProcess, producer, run, write_config

TOKEN = "am-token-7d41"
AMTOOL = "/usr/bin/amtool"


@pytest.fixture(scope="module")
def env(
    broker: Broker, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    if shutil.which(AMTOOL) is None:
        pytest.fail(f"{AMTOOL} is missing: apt-get install prometheus-alertmanager (make deps)")
    unique = f"am{random.randrange(1 << 30):x}"
    tmp = tmp_path_factory.mktemp("amtool")
    extra = f"""
[routing]
channels = ["ops"]
group_by = ["service"]
group_wait_seconds = 1
group_interval_seconds = 2

[[channels]]
name = "ops"
type = "console"

[api]
token = "{TOKEN}"
"""
    cfg = tmp / "kestrel.toml"
    port = write_config(cfg, broker, unique, redis_url, extra)
    worker = WorkerProcess(cfg, port, tmp / "worker.log")
    worker.start().wait_ready()
    # The alerts API answers on the active notifier only, which a worker becomes a little after
    # it is ready (when it holds the alerts topic's partition).
    health = f"http://127.0.0.1:{port}/health"
    notifier = _wait(lambda: httpx.get(health, timeout=5).json().get("notifier") is True, 60)
    assert notifier, "the worker did not become the active notifier within 60 s"
    http_config = tmp / "amtool-http.yml"
    http_config.write_text(f"authorization:\n  type: Bearer\n  credentials: {TOKEN}\n")
    yield {"unique": unique, "worker": worker, "port": port, "http_config": http_config}
    worker.stop()


def amtool(env: dict[str, Any], *args: str, auth: bool = True) -> subprocess.CompletedProcess[str]:
    command = [AMTOOL, f"--alertmanager.url=http://127.0.0.1:{env['port']}"]
    if auth:
        command.append(f"--http.config.file={env['http_config']}")
    done = subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=60, check=False
    )
    print(f"$ amtool {' '.join(args)}\n{done.stdout}{done.stderr}")
    return done


def api(env: dict[str, Any], path: str) -> Any:
    url = f"http://127.0.0.1:{env['port']}/api/v2{path}"
    r = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def _alert(series: str, service: str) -> Alert:
    labels = {"service": service}
    return Alert(
        fingerprint=fingerprint(series, labels, "zscore"),
        status=AlertStatus.FIRING,
        severity=Severity.WARNING,
        series=series,
        labels=labels,
        detector="zscore",
        value=9.0,
        expected=1.0,
        score=8.0,
        started_at=time.time() - 60,
        ended_at=None,
        summary=f"{series}: 9 vs expected 1",
    )


def test_amtool_needs_the_token(env: dict[str, Any]) -> None:
    done = amtool(env, "silence", "query", auth=False)
    assert done.returncode != 0
    assert "401" in done.stderr or "Unauthorized" in done.stderr


def test_amtool_adds_queries_and_expires_silences(env: dict[str, Any]) -> None:
    added = amtool(
        env,
        "silence",
        "add",
        "service=batch",
        "--author=alice",
        "--comment=nightly",
        "--duration=2h",
    )
    assert added.returncode == 0
    first = added.stdout.strip()
    regex = amtool(
        env,
        "silence",
        "add",
        'alertname=~"disk_.*"',
        "env!=prod",
        "--author=bob",
        "--comment=noisy disks",
        "--duration=30m",
    )
    assert regex.returncode == 0
    second = regex.stdout.strip()
    assert first and second and first != second

    stored = api(env, f"/silence/{second}")
    assert stored["matchers"] == [
        {"name": "alertname", "value": "disk_.*", "isRegex": True, "isEqual": True},
        {"name": "env", "value": "prod", "isRegex": False, "isEqual": False},
    ]
    assert (stored["createdBy"], stored["comment"]) == ("bob", "noisy disks")
    assert stored["status"]["state"] == "active"
    hours = (
        time.mktime(time.strptime(stored["endsAt"][:19], "%Y-%m-%dT%H:%M:%S"))
        - time.mktime(time.strptime(stored["startsAt"][:19], "%Y-%m-%dT%H:%M:%S"))
    ) / 3600
    assert 0.49 < hours < 0.51

    listed = amtool(env, "silence", "query", "-o", "json")
    ids = {s["id"] for s in json.loads(listed.stdout)}
    assert {first, second} <= ids
    quiet = amtool(env, "silence", "query", "-q")
    assert {first, second} <= set(quiet.stdout.split())
    filtered = amtool(env, "silence", "query", "-q", "service=batch")
    assert filtered.stdout.split() == [first]
    assert "nightly" in amtool(env, "silence", "query").stdout  # the table shows the comment

    updated = amtool(env, "silence", "update", second, "--comment=still noisy", "--duration=1h")
    assert updated.returncode == 0
    stored = api(env, f"/silence/{second}")
    assert (stored["comment"], stored["createdBy"]) == ("still noisy", "bob")
    assert len(api(env, "/silences")) == 2  # updated in place, not added

    expired = amtool(env, "silence", "expire", first)
    assert expired.returncode == 0
    assert api(env, f"/silence/{first}")["status"]["state"] == "expired"
    assert first not in amtool(env, "silence", "query", "-q").stdout.split()
    assert first in amtool(env, "silence", "query", "-q", "--expired").stdout.split()
    missing = amtool(env, "silence", "expire", "no-such-silence")
    assert missing.returncode != 0
    amtool(env, "silence", "expire", second)


def test_amtool_queries_alerts_with_their_silences(broker: Broker, env: dict[str, Any]) -> None:
    unique = env["unique"]
    added = amtool(
        env, "silence", "add", "service=muted", "--author=ops", "--comment=deploy", "--duration=1h"
    )
    silence_id = added.stdout.strip()
    alerts = [_alert(f"latency_{unique}", "muted"), _alert(f"errors_{unique}", "loud")]

    async def send() -> None:
        async with producer(broker.bootstrap) as p:
            for alert in alerts:
                await p.send(
                    f"alerts-{unique}",
                    orjson.dumps(alert.to_dict()),
                    key=alert.fingerprint.encode(),
                )

    run(send())
    assert _wait(lambda: len(api(env, "/alerts")) == 2, 60), api(env, "/alerts")

    views = {a["labels"]["service"]: a for a in api(env, "/alerts")}
    loud, muted = views["loud"], views["muted"]
    assert loud["status"] == {"state": "active", "silencedBy": [], "inhibitedBy": []}
    assert muted["status"] == {"state": "suppressed", "silencedBy": [silence_id], "inhibitedBy": []}
    assert loud["labels"]["alertname"] == f"errors_{unique}"
    assert loud["annotations"]["summary"] == f"errors_{unique}: 9 vs expected 1"
    assert loud["fingerprint"] == alerts[1].fingerprint
    assert loud["receivers"] == [{"name": "ops"}]

    active = amtool(env, "alert", "query", "-o", "json")
    assert [a["labels"]["service"] for a in json.loads(active.stdout)] == ["loud"]
    assert f"errors_{unique}" in amtool(env, "alert", "query").stdout
    silenced = json.loads(amtool(env, "alert", "query", "--silenced", "-o", "json").stdout)
    assert [(a["labels"]["service"], a["status"]["silencedBy"]) for a in silenced] == [
        ("muted", [silence_id])
    ]
    by_name = amtool(env, "alert", "query", "-o", "json", f"alertname=~errors_{unique[:4]}.*")
    assert [a["labels"]["service"] for a in json.loads(by_name.stdout)] == ["loud"]
    none = amtool(env, "alert", "query", "-o", "json", "service!=loud")
    assert json.loads(none.stdout) == []  # (the muted one is silenced: not asked for)

    amtool(env, "silence", "expire", silence_id)
    both = json.loads(amtool(env, "alert", "query", "-o", "json").stdout)
    assert sorted(a["labels"]["service"] for a in both) == ["loud", "muted"]


def test_amtool_reads_the_status(env: dict[str, Any]) -> None:
    shown = amtool(env, "config", "show")
    assert shown.returncode == 0 and "Kestrel is configured in TOML" in shown.stdout
    status = api(env, "/status")
    assert status["cluster"]["name"] == f"kestrel-test-{env['unique']}"
    assert status["versionInfo"]["version"]


def test_the_old_silences_paths_still_work(env: dict[str, Any]) -> None:
    url = f"http://127.0.0.1:{env['port']}/silences"
    r = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert r.status_code == 200 and isinstance(r.json(), list)


def test_only_the_notifier_answers_for_alerts(env: dict[str, Any]) -> None:
    """With two workers, the one that owns the alerts partition lists them; the other says 503."""
    first: WorkerProcess = env["worker"]
    cfg = first.config_path.parent / "second.toml"
    port = free_port()
    cfg.write_text(
        first.config_path.read_text().replace(f"web_port = {env['port']}", f"web_port = {port}")
    )
    second = WorkerProcess(cfg, port, cfg.parent / "second.log")
    second.start().wait_ready()
    try:

        def answers() -> dict[int, tuple[int, bool]]:
            out = {}
            for p in (env["port"], port):
                base = f"http://127.0.0.1:{p}"
                auth = {"Authorization": f"Bearer {TOKEN}"}
                alerts = httpx.get(f"{base}/api/v2/alerts", headers=auth, timeout=10)
                health = httpx.get(f"{base}/health", timeout=10).json()
                out[p] = (alerts.status_code, health["notifier"])
            return out

        seen: dict[int, tuple[int, bool]] = {}

        def settled() -> bool:
            nonlocal seen
            seen = answers()
            return sorted(seen.values()) == [(200, True), (503, False)]

        assert _wait(settled, 60), seen
        print(f"two workers: {seen}")
    finally:
        second.stop()
