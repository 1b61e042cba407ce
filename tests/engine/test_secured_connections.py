"""Kestrel over secured connections: Apache Kafka with SASL over TLS, Redis with TLS and a password.

The broker is a single Apache Kafka node with a SASL_SSL listener (PLAIN, SCRAM-SHA-256 and
SCRAM-SHA-512) whose certificate a throwaway CA signs (:mod:`engine.devtools.certificates`);
Redis is Debian's ``redis-server`` on a TLS port only, with ``requirepass``. Every Kestrel
client is configured from the config file alone, with the passwords in environment variables,
and no client of the test reaches the broker's PLAINTEXT listener.

A worker (once with SCRAM-SHA-512, once with PLAIN) consumes, detects, records and notifies
alerts, mirrors them to Redis, and its events are published with ``kestrel produce``; a wrong
password or an untrusted certificate is a one-line error at once, and no secret is ever printed.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis

from engine.config import Config, KafkaSettings, RedisSettings, load_config
from engine.devtools.apache_kafka import ApacheKafka, SaslSslListener
from engine.devtools.broker import BrokerError, free_port, wait_for_port
from engine.devtools.certificates import CertificateFiles, make_certificates
from engine.runtime.kafka_clients import client_options
from engine.sinks import RedisMirror, SinkBatch, redis_client
from tests.alert_channel_fakes import make_alert
from tests.testkit import REPO, RecordingServer, WorkerProcess, collect, serving

pytestmark = pytest.mark.integration  # starts a secured broker and Redis itself

USER = "kestrel"
KAFKA_PASSWORD = f"Kafka-{random.randrange(1 << 40):x}"
REDIS_PASSWORD = f"Redis-{random.randrange(1 << 40):x}"
API_TOKEN = f"Token-{random.randrange(1 << 40):x}"
WRONG_PASSWORD = f"Wrong-{random.randrange(1 << 40):x}"
SECRETS = (KAFKA_PASSWORD, REDIS_PASSWORD, API_TOKEN, WRONG_PASSWORD)
ENV = {
    "KESTREL_TEST_KAFKA_PASSWORD": KAFKA_PASSWORD,
    "KESTREL_TEST_REDIS_PASSWORD": REDIS_PASSWORD,
    "KESTREL_API_TOKEN": API_TOKEN,
}

T0 = 1_779_999_960.0  # event time of the first sample, on a minute boundary
STEP = 10.0
POINTS = 200
SPIKE = range(150, 156)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> CertificateFiles:
    try:
        return make_certificates(tmp_path_factory.mktemp("certs"))
    except BrokerError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def secure_kafka(
    certs: CertificateFiles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApacheKafka]:
    """One Apache Kafka node with a SASL_SSL listener beside its PLAINTEXT one."""
    kafka = ApacheKafka(
        directory=tmp_path_factory.mktemp("secure-kafka"),
        sasl_ssl=SaslSslListener(certs.keystore, {USER: KAFKA_PASSWORD}),
    )
    started = time.monotonic()
    with serving(kafka):
        print(f"secured Apache Kafka ready in {time.monotonic() - started:.1f}s")
        yield kafka


@dataclass
class TlsRedis:
    port: int
    process: subprocess.Popen[bytes]

    def url(self, password: str = "${KESTREL_TEST_REDIS_PASSWORD}") -> str:
        return f"rediss://:{password}@127.0.0.1:{self.port}/0"


@pytest.fixture(scope="module")
def tls_redis(
    certs: CertificateFiles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TlsRedis]:
    """``redis-server`` listening on a TLS port only (``--port 0``), with ``requirepass``."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is needed: apt-get install redis-server (or `make setup`)")
    workdir = tmp_path_factory.mktemp("tls-redis")
    port = free_port()
    log = workdir / "redis.log"
    process = subprocess.Popen(
        [
            binary,
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            str(certs.cert),
            "--tls-key-file",
            str(certs.key),
            "--tls-ca-cert-file",
            str(certs.ca_cert),
            "--tls-auth-clients",
            "no",
            "--requirepass",
            REDIS_PASSWORD,
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        cwd=workdir,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    if not wait_for_port("127.0.0.1", port, 15):
        process.kill()
        process.wait()
        pytest.fail(
            "redis-server did not listen on a TLS port; it needs TLS support (Debian's "
            "redis-server 6 or newer has it: apt-get install redis-server). Its log:\n"
            + log.read_text(errors="replace")[-2000:]
        )
    yield TlsRedis(port, process)
    process.terminate()
    process.wait(10)


def _kafka_toml(
    kafka: ApacheKafka,
    certs: CertificateFiles,
    mechanism: str,
    password: str = "${KESTREL_TEST_KAFKA_PASSWORD}",
    cafile: Path | None = None,
) -> str:
    return f"""
broker = "{kafka.secure_url}"
security_protocol = "SASL_SSL"
sasl_mechanism = "{mechanism}"
sasl_username = "{USER}"
sasl_password = "{password}"
ssl_cafile = "{cafile or certs.ca_cert}"
"""


def _config(
    path: Path,
    kafka_toml: str,
    unique: str,
    *,
    redis: TlsRedis | None = None,
    certs: CertificateFiles | None = None,
    hook: str = "http://127.0.0.1:9/hook",
) -> int:
    """Write a worker config with unique topics; returns its web port."""
    port = free_port()
    if redis is not None and certs is not None:
        redis_toml = f"""
url = "{redis.url()}"
ssl_cafile = "{certs.ca_cert}"
key_prefix = "kestrel-test-{unique}:"
"""
    else:
        redis_toml = "enabled = false"
    path.write_text(
        f"""
[kafka]
app_id = "kestrel-test-{unique}"
partitions = 2
session_timeout_seconds = 6
{kafka_toml}

[topics]
logs = "logs-{unique}"
metrics = "metrics-{unique}"
alerts = "alerts-{unique}"
dlq = "dlq-{unique}"
alerts_dlq = "alerts-dlq-{unique}"
silences = "silences-{unique}"

[redis]
{redis_toml}

[worker]
web_port = {port}
checkpoint_interval_seconds = 0.5

[series]
metric_detectors = ["zscore"]

[routing]
group_wait_seconds = 1
group_interval_seconds = 2

[api]
token = "${{KESTREL_API_TOKEN}}"

[[channels]]
name = "hook"
type = "webhook"
url = "{hook}"
max_attempts = 3
"""
    )
    return port


def _events_file(path: Path) -> int:
    """A JSON-lines file of two metric series (``spiky`` has a spike) and one bad line."""
    rng = random.Random(5)
    lines = []
    for i in range(POINTS):
        t = T0 + i * STEP
        lines.append({"name": "steady", "value": rng.gauss(50, 2), "timestamp": t})
        value = 500.0 if i in SPIKE else rng.gauss(100, 3)
        lines.append({"name": "spiky", "value": value, "timestamp": t, "labels": {"host": "a"}})
    path.write_bytes(b"\n".join(orjson.dumps(doc) for doc in lines) + b"\n{not json\n")
    return len(lines) + 1


def _kestrel(
    *args: str, env: dict[str, str], timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    """Run a ``kestrel`` command; fails the test if it runs longer than ``timeout`` seconds."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "engine.cli", *args],
            cwd=REPO,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"kestrel {' '.join(args)} still ran after {timeout}s (a hang): {exc.stderr}")


def _no_secret_in(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


async def _read(kafka: KafkaSettings, topic: str, until: Any, timeout: float) -> list[Any]:
    """Read ``topic`` from the start, over the secured listener, until ``until(records)``."""
    return await collect("", topic, until, timeout, **client_options(kafka))


# -- a worker on the secured broker --------------------------------------------------------


@pytest.fixture(scope="module", params=["SCRAM-SHA-512", "PLAIN"])
def secured(
    request: pytest.FixtureRequest,
    secure_kafka: ApacheKafka,
    tls_redis: TlsRedis,
    certs: CertificateFiles,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """A worker configured with SASL_SSL (the mechanism of the parameter) and Redis over TLS."""
    mechanism: str = request.param
    unique = f"sec{random.randrange(1 << 30):x}"
    tmp = tmp_path_factory.mktemp(f"secured-{mechanism.lower()}")
    cfg_path = tmp / "kestrel.toml"
    with RecordingServer() as receiver:
        port = _config(
            cfg_path,
            _kafka_toml(secure_kafka, certs, mechanism),
            unique,
            redis=tls_redis,
            certs=certs,
            hook=f"{receiver.base_url}/hook",
        )
        cfg = load_config(cfg_path, env={**os.environ, **ENV})
        worker = WorkerProcess(cfg_path, port, tmp / "worker.log", env=ENV)
        started = time.monotonic()
        worker.start().wait_ready(90)
        print(f"{mechanism}: worker ready in {time.monotonic() - started:.1f}s")
        yield {
            "mechanism": mechanism,
            "unique": unique,
            "cfg_path": cfg_path,
            "cfg": cfg,
            "worker": worker,
            "port": port,
            "receiver": receiver,
            "tmp": tmp,
            "outputs": [],
        }
        worker.stop()


def test_a_secured_worker_detects_records_notifies_and_mirrors(
    secured: dict[str, Any], certs: CertificateFiles
) -> None:
    cfg: Config = secured["cfg"]
    unique, mechanism = secured["unique"], secured["mechanism"]
    events = secured["tmp"] / "events.jsonl"
    sent = _events_file(events)
    started = time.monotonic()
    produced = _kestrel(
        "produce",
        "--config",
        str(secured["cfg_path"]),
        "--topic",
        f"metrics-{unique}",
        "--file",
        str(events),
        env=ENV,
    )
    secured["outputs"].append(produced.stdout + produced.stderr)
    assert produced.returncode == 0, produced.stderr
    assert f"sent {sent} message(s) to metrics-{unique}" in produced.stdout

    def spiky_resolved(records: list[Any]) -> bool:
        alerts = [orjson.loads(r.value) for r in records]
        return any(a["series"] == "spiky" and a["status"] == "resolved" for a in alerts)

    records = asyncio.run(_read(cfg.kafka, f"alerts-{unique}", spiky_resolved, 60))
    alerts = [orjson.loads(r.value) for r in records]
    recorded_after = time.monotonic() - started
    assert spiky_resolved(records), [(a["series"], a["status"]) for a in alerts]
    firing = [a for a in alerts if a["series"] == "spiky" and a["status"] == "firing"]
    assert len(firing) == 1 and firing[0]["value"] == 500.0
    assert firing[0]["started_at"] >= T0 + SPIKE.start * STEP
    assert not [a for a in alerts if a["series"] == "steady"]
    # The bad line went to the dead-letter topic (Faust's producer, over SASL_SSL).
    dead = asyncio.run(_read(cfg.kafka, f"dlq-{unique}", lambda rs: len(rs) >= 1, 30))
    assert [r.value for r in dead] == [b"{not json"]

    # The notifier (its saved state read over SASL_SSL) sent the incident to the webhook.
    receiver: RecordingServer = secured["receiver"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not receiver.got("/hook"):
        time.sleep(0.2)
    notified = [a["labels"]["alertname"] for b in receiver.got("/hook") for a in b["alerts"]]
    assert "spiky" in notified

    # The Redis mirror wrote the alert transitions over TLS, with the password.
    r = redis.Redis(
        host="127.0.0.1",
        port=cfg.redis.url.get_secret_value().rsplit(":", 1)[1].split("/")[0],
        password=REDIS_PASSWORD,
        ssl=True,
        ssl_ca_certs=str(certs.ca_cert),
    )
    key = f"kestrel-test-{unique}:alerts"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and r.xlen(key) < 2:
        time.sleep(0.2)
    mirrored = [orjson.loads(fields[b"alert"])["series"] for _, fields in r.xrange(key)]
    assert mirrored.count("spiky") >= 2, mirrored  # firing, resolved
    health = httpx.get(f"http://127.0.0.1:{secured['port']}/health", timeout=5).json()
    assert health["redis"] == "ok"
    print(
        f"{mechanism}: {sent} messages produced; {len(alerts)} alert transition(s) recorded "
        f"(spiky resolved {recorded_after:.1f}s after the produce started); "
        f"{len(dead)} dead letter(s); {len(notified)} alert(s) notified; "
        f"{len(mirrored)} mirrored to Redis over TLS"
    )


def test_dlq_replay_reads_the_secured_topic(secured: dict[str, Any]) -> None:
    replay = _kestrel("dlq", "replay", "--config", str(secured["cfg_path"]), env=ENV)
    secured["outputs"].append(replay.stdout + replay.stderr)
    assert replay.returncode == 0, replay.stderr
    assert "delivered=0 failed=0" in replay.stdout


def test_the_api_changes_nothing_without_the_token(secured: dict[str, Any]) -> None:
    base = f"http://127.0.0.1:{secured['port']}"
    now = time.time()
    silence = {
        "matchers": [{"name": "service", "value": "x", "isRegex": False}],
        "startsAt": now,
        "endsAt": now + 60,
        "createdBy": "tests",
        "comment": "auth check",
    }
    bearer = {"Authorization": f"Bearer {API_TOKEN}"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": API_TOKEN}):
        assert httpx.post(f"{base}/silences", json=silence, headers=headers).status_code == 401
        assert httpx.delete(f"{base}/silences/some-id", headers=headers).status_code == 401
    created = httpx.post(f"{base}/silences", json=silence, headers=bearer)
    assert created.status_code == 200, created.text
    silence_id = created.json()["silenceID"]
    assert httpx.delete(f"{base}/silences/{silence_id}", headers={}).status_code == 401
    assert httpx.delete(f"{base}/silences/{silence_id}", headers=bearer).status_code == 200
    # Read-only views answer without it; Faust's table and router views are off.
    assert httpx.get(f"{base}/metrics").status_code == 200
    assert httpx.get(f"{base}/health").status_code == 200
    for path in ("/table/", "/router/"):
        assert httpx.get(f"{base}{path}").status_code == 404, path


def test_no_secret_is_printed(secured: dict[str, Any]) -> None:
    log = secured["worker"].log_path.read_text(errors="replace")
    assert "notifier active" in log  # the log is the worker's, and it got that far
    _no_secret_in(log)
    for output in secured["outputs"]:
        _no_secret_in(output)


# -- each mechanism, and what goes wrong -----------------------------------------------------


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_produce_works_with_each_mechanism(
    mechanism: str, secure_kafka: ApacheKafka, certs: CertificateFiles, tmp_path: Path
) -> None:
    unique = f"p{random.randrange(1 << 30):x}"
    path = tmp_path / "kestrel.toml"
    _config(path, _kafka_toml(secure_kafka, certs, mechanism), unique)
    events = tmp_path / "events.jsonl"
    events.write_text('{"name": "cpu", "value": 1}\n{"name": "cpu", "value": 2}\n')
    produced = _kestrel(
        "produce", "--config", str(path), "--topic", f"t-{unique}", "--file", str(events), env=ENV
    )
    assert produced.returncode == 0, produced.stderr
    assert f"sent 2 message(s) to t-{unique}" in produced.stdout
    kafka = load_config(path, env=ENV).kafka
    records = asyncio.run(_read(kafka, f"t-{unique}", lambda rs: len(rs) >= 2, 30))
    assert [orjson.loads(r.value)["value"] for r in records] == [1, 2]
    _no_secret_in(produced.stdout + produced.stderr)


def test_a_wrong_password_stops_the_worker_at_once_with_a_clear_error(
    secure_kafka: ApacheKafka, certs: CertificateFiles, tmp_path: Path
) -> None:
    path = tmp_path / "kestrel.toml"
    toml = _kafka_toml(secure_kafka, certs, "SCRAM-SHA-512", password=WRONG_PASSWORD)
    _config(path, toml, f"w{random.randrange(1 << 30):x}")
    started = time.monotonic()
    worker = _kestrel("worker", "--config", str(path), env=ENV, timeout=60)
    took = time.monotonic() - started
    print(
        f"worker with a wrong password exited {worker.returncode} after {took:.1f}s: "
        f"{worker.stderr.strip()}"
    )
    assert worker.returncode == 1
    assert worker.stderr.strip() == (
        f"kestrel worker: Kafka at {secure_kafka.secure_bootstrap} (SASL_SSL, SCRAM-SHA-512 as "
        f"user '{USER}') refused the credentials: Authentication failed during authentication "
        "due to invalid credentials with SASL mechanism SCRAM-SHA-512"
    )
    _no_secret_in(worker.stdout + worker.stderr)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_a_wrong_password_fails_the_commands_clearly(
    mechanism: str, secure_kafka: ApacheKafka, certs: CertificateFiles, tmp_path: Path
) -> None:
    path = tmp_path / "kestrel.toml"
    toml = _kafka_toml(secure_kafka, certs, mechanism, password=WRONG_PASSWORD)
    _config(path, toml, f"w{random.randrange(1 << 30):x}")
    events = tmp_path / "events.jsonl"
    events.write_text('{"name": "cpu", "value": 1}\n')
    produced = _kestrel(
        "produce", "--config", str(path), "--topic", "t", "--file", str(events), env=ENV
    )
    replay = _kestrel("dlq", "replay", "--config", str(path), env=ENV)
    for command, result in (("produce", produced), ("dlq replay", replay)):
        print(f"kestrel {command}: exit {result.returncode}: {result.stderr.strip()[-300:]}")
        assert result.returncode == 1
        assert (
            f"kestrel {command}: Kafka at {secure_kafka.secure_bootstrap} (SASL_SSL, "
            f"{mechanism} as user '{USER}') refused the credentials: " in result.stderr
        )
        _no_secret_in(result.stdout + result.stderr)


def test_an_untrusted_certificate_is_a_clear_error(
    secure_kafka: ApacheKafka, certs: CertificateFiles, tmp_path: Path
) -> None:
    other = make_certificates(tmp_path / "other-ca")
    path = tmp_path / "kestrel.toml"
    toml = _kafka_toml(secure_kafka, certs, "SCRAM-SHA-512", cafile=other.ca_cert)
    _config(path, toml, f"u{random.randrange(1 << 30):x}")
    worker = _kestrel("worker", "--config", str(path), env=ENV, timeout=60)
    print(f"worker trusting another CA: exit {worker.returncode}: {worker.stderr.strip()}")
    assert worker.returncode == 1
    assert f"kestrel worker: Kafka at {secure_kafka.secure_bootstrap} (SASL_SSL, " in worker.stderr
    # OpenSSL's words depend on the chain the broker sends (here the CA's certificate too).
    assert re.search(
        r"TLS failed: (self-signed certificate in certificate chain|unable to get local issuer)",
        worker.stderr,
    )
    assert f"is ssl_cafile {other.ca_cert} the authority of its certificate?" in worker.stderr
    _no_secret_in(worker.stdout + worker.stderr)


# -- the Redis mirror over TLS ---------------------------------------------------------------


def test_the_mirror_writes_over_tls_and_a_wrong_password_is_counted_unprinted(
    tls_redis: TlsRedis, certs: CertificateFiles, caplog: pytest.LogCaptureFixture
) -> None:
    unique = f"m{random.randrange(1 << 30):x}"

    async def write(password: str) -> RedisMirror:
        settings = RedisSettings(url=tls_redis.url(password), ssl_cafile=str(certs.ca_cert))
        mirror = RedisMirror(
            redis_client(settings),
            prefix=f"kestrel-test-{unique}:",
            hot_types=(),
            retention_seconds=600,
            retry_after_seconds=0,
            clock=time.time,
            target=settings.shown_url,
        )
        mirror.add(SinkBatch(alerts=[make_alert(series="cpu"), make_alert(series="mem")]))
        await mirror.flush()
        await mirror.close()
        return mirror

    good = asyncio.run(write(REDIS_PASSWORD))
    assert good.counts == {"written": 2, "failed": 0, "skipped": 0}
    with caplog.at_level("WARNING", logger="engine.sinks.redis_mirror"):
        bad = asyncio.run(write(WRONG_PASSWORD))
    assert bad.counts == {"written": 0, "failed": 2, "skipped": 0}
    (warning,) = [r.getMessage() for r in caplog.records]
    print(warning)
    assert f"rediss://:<redacted>@127.0.0.1:{tls_redis.port}/0" in warning
    _no_secret_in(warning)


def test_tls_against_the_plaintext_listener_is_a_clear_error(
    secure_kafka: ApacheKafka, certs: CertificateFiles, tmp_path: Path
) -> None:
    path = tmp_path / "kestrel.toml"
    toml = f"""
broker = "{secure_kafka.url}"
security_protocol = "SSL"
ssl_cafile = "{certs.ca_cert}"
"""
    _config(path, toml, f"t{random.randrange(1 << 30):x}")
    events = tmp_path / "events.jsonl"
    events.write_text('{"name": "cpu", "value": 1}\n')
    produced = _kestrel(
        "produce", "--config", str(path), "--topic", "t", "--file", str(events), env=ENV
    )
    print(
        f"kestrel produce over TLS to a plaintext listener: exit {produced.returncode}: "
        f"{produced.stderr.strip()[-400:]}"
    )
    assert produced.returncode == 1
    assert produced.stderr.strip().splitlines()[-1] == (
        f"kestrel produce: Kafka at {secure_kafka.bootstrap} (SSL): TLS failed: the connection "
        f"was closed during the handshake (is {secure_kafka.bootstrap} a TLS listener?)"
    )


def test_plaintext_against_the_sasl_ssl_listener_is_a_clear_error(
    secure_kafka: ApacheKafka, tmp_path: Path
) -> None:
    path = tmp_path / "kestrel.toml"
    _config(path, f'broker = "{secure_kafka.secure_url}"', f"t{random.randrange(1 << 30):x}")
    events = tmp_path / "events.jsonl"
    events.write_text('{"name": "cpu", "value": 1}\n')
    produced = _kestrel(
        "produce", "--config", str(path), "--topic", "t", "--file", str(events), env=ENV
    )
    print(
        f"kestrel produce in plaintext to the SASL_SSL listener: exit {produced.returncode}: "
        f"{produced.stderr.strip()[-400:]}"
    )
    assert produced.returncode == 1
    assert produced.stderr.strip().splitlines()[-1] == (
        f"kestrel produce: Kafka at {secure_kafka.secure_bootstrap} (PLAINTEXT): no broker could "
        "be reached, or none answered as a Kafka listener with this security_protocol"
    )
