"""Helpers for tests that run Kestrel's processes against real services.

Fixtures live in ``conftest.py``; these are plain functions and classes, imported as
``from tests.testkit import ...``.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from engine.devtools.apache_kafka import ApacheKafka
from engine.devtools.broker import Broker, BrokerError, free_port, wait_for_port

REPO = Path(__file__).resolve().parent.parent


class _Startable(Protocol):
    def start(self) -> Any: ...
    def stop(self) -> Any: ...


_S = TypeVar("_S", bound=_Startable)


@contextlib.contextmanager
def serving(service: _S) -> Iterator[_S]:
    """Start ``service`` (a broker) for a test and stop it after; one that cannot start fails
    the test with its message (which says how to get what is missing)."""
    try:
        service.start()
    except BrokerError as exc:
        pytest.fail(str(exc))
    try:
        yield service
    finally:
        service.stop()


#: Every worker process started by a test; the session stops any still running at its end.
STARTED: list[WorkerProcess] = []


@dataclass
class WorkerProcess:
    """A ``kestrel worker`` subprocess with its own config file."""

    config_path: Path
    web_port: int
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)

    def start(self) -> WorkerProcess:
        env = {**os.environ, **self.env}
        STARTED.append(self)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "worker", "--config", str(self.config_path)],
            cwd=REPO,
            env=env,
            stdout=self.log_path.open("ab"),
            stderr=subprocess.STDOUT,
        )
        if not wait_for_port("127.0.0.1", self.web_port, 30):
            self.stop()
            pytest.fail(f"worker did not serve HTTP on {self.web_port}; log:\n{self.log()}")
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until /health says ok (joined the group, partitions assigned)."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"worker exited with {self.proc.returncode}; log:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                r = httpx.get(f"http://127.0.0.1:{self.web_port}/health", timeout=2)
                if r.status_code == 200 and r.json()["status"] == "ok":
                    return
            time.sleep(0.2)
        pytest.fail(f"worker not ready within {timeout}s; log:\n{self.log()}")

    def metrics(self) -> str:
        import httpx

        return httpx.get(f"http://127.0.0.1:{self.web_port}/metrics", timeout=5).text

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


def write_config(path: Path, broker: Broker, unique: str, redis_url: str, extra: str = "") -> int:
    """Write a worker config with unique topics and group; returns its web port."""
    port = free_port()
    path.write_text(
        f"""
[kafka]
broker = "{broker.url}"
app_id = "kestrel-test-{unique}"
partitions = 2
# Dead members leave the group soon; 6 s is the least Apache Kafka accepts
# (group.min.session.timeout.ms).
session_timeout_seconds = 6
# What the real broker offers (Tansu has no idempotent producer).
idempotent_producer = {"true" if isinstance(broker, ApacheKafka) else "false"}

[topics]
logs = "logs-{unique}"
metrics = "metrics-{unique}"
alerts = "alerts-{unique}"
dlq = "dlq-{unique}"
alerts_dlq = "alerts-dlq-{unique}"
silences = "silences-{unique}"

[redis]
url = "{redis_url}"
key_prefix = "kestrel-test-{unique}:"

[worker]
web_port = {port}
checkpoint_interval_seconds = 0.5
# The test's own: the cold store's default SQLite file is there.
data_dir = "{path.parent / ("data-" + unique)}"

{extra}
"""
    )
    return port


async def collect(
    bootstrap: str, topic: str, until: Any, timeout: float, **client: Any
) -> list[Any]:
    """Read ``topic`` from the start until ``until(records)`` is true or ``timeout`` passes.

    ``client`` replaces the connection options (e.g. a secured listener's, from
    ``engine.runtime.kafka_clients.client_options``).
    """
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        **(client or {"bootstrap_servers": bootstrap}),
        auto_offset_reset="earliest",
        group_id=None,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not until(records):
            batch = await consumer.getmany(timeout_ms=200)
            for msgs in batch.values():
                records.extend(msgs)
    finally:
        await consumer.stop()
    return records


async def topic_configs(
    bootstrap: str, topics: list[str], timeout: float = 15.0
) -> dict[str, dict[str, str]]:
    """Each topic's configuration as the broker describes it (DescribeConfigs).

    Apache Kafka lists every setting with its effective value; Tansu lists only those set when
    the topic was created. A topic just created may be unknown (error 3) to a broker whose
    metadata has not caught up yet; that is asked again until ``timeout`` seconds have passed.
    """
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    unknown_topic = 3
    deadline = time.monotonic() + timeout
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        while True:
            responses = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics]
            )
            resources = [r for response in responses for r in response.resources]
            if time.monotonic() > deadline or all(r[0] != unknown_topic for r in resources):
                break
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    configs: dict[str, dict[str, str]] = {}
    for error_code, error_message, _type, name, entries in resources:
        assert error_code == 0, f"DescribeConfigs {name}: {error_code} {error_message}"
        configs[name] = {entry[0]: entry[1] for entry in entries}
    return configs


@contextlib.asynccontextmanager
async def producer(bootstrap: str) -> AsyncIterator[Any]:
    """An aiokafka producer (not idempotent: Tansu does not support it)."""
    from aiokafka import AIOKafkaProducer

    p = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


def run(coro: Any) -> Any:
    """Run a coroutine from a sync test."""
    return asyncio.run(coro)


class RecordingServer(http.server.ThreadingHTTPServer):
    """A local HTTP receiver: records every POSTed JSON body by path; answers 503 while ``down``.

    Use as a context manager: it serves from a thread until the block ends.
    """

    def __init__(self) -> None:
        self.bodies: dict[str, list[dict[str, Any]]] = {}
        self.down = False
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", free_port()), _RecordingHandler)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def got(self, path: str) -> list[dict[str, Any]]:
        """The bodies received on ``path`` so far."""
        with self.lock:
            return list(self.bodies.get(path, []))

    def __enter__(self) -> RecordingServer:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _RecordingHandler(http.server.BaseHTTPRequestHandler):
    server: RecordingServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.server.down:
            self.send_response(503)
            self.end_headers()
            return
        with self.server.lock:
            self.server.bodies.setdefault(self.path, []).append(json.loads(body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


def metric_total(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of metric ``name`` in a Prometheus text page whose labels include
    ``labels`` (a counter's ``_total`` sample is found by its family name or its sample name)."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in (name, f"{name}_total") and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                total += sample.value
    return total


class RedisServer:
    """A private ``redis-server`` on a fixed port, that a test can stop and start again.

    It keeps nothing on disk (``--save ""``), so a restart comes back empty.
    """

    def __init__(self, workdir: Path) -> None:
        import shutil

        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is needed: apt-get install redis-server (or `make setup`)")
        self.binary, self.workdir, self.port = binary, workdir, free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no"]
        self.proc = subprocess.Popen(args, cwd=self.workdir, stdout=subprocess.DEVNULL)
        if not wait_for_port("127.0.0.1", self.port, 10):
            self.stop()
            pytest.fail(f"redis-server did not start on port {self.port}")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@dataclass(frozen=True)
class Delivery:
    """One request a :class:`WebhookReceiver` answered with 200."""

    path: str
    webhook_id: str
    body: dict[str, Any]
    arrived: float  # time.monotonic() when the request came in
    answered: float  # and when it was answered


class WebhookReceiver:
    """A webhook receiver on a fixed port: it can go down (connections refused) and come back,
    and answer slowly (``delay_seconds`` per request, requests served concurrently).

    It keeps every request it answered, with its ``webhook-id`` header (the notification id), so a
    test can count duplicates. Use as a context manager; :meth:`stop` and :meth:`start` within.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.delay_seconds = 0.0
        self.deliveries: list[Delivery] = []
        self.arrivals = 0
        self.in_flight = 0
        self.lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def got(self, path: str | None = None) -> list[Delivery]:
        """The requests answered so far (on ``path`` only, if given), in the order answered."""
        with self.lock:
            return [d for d in self.deliveries if path is None or d.path == path]

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                arrived = time.monotonic()
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.arrivals += 1
                    receiver.in_flight += 1
                try:
                    if receiver.delay_seconds:
                        time.sleep(receiver.delay_seconds)
                    delivery = Delivery(
                        self.path,
                        self.headers.get("webhook-id", ""),
                        json.loads(body),
                        arrived,
                        time.monotonic(),
                    )
                    with receiver.lock:
                        receiver.deliveries.append(delivery)
                    with contextlib.suppress(OSError):  # the sender may have given up waiting
                        self.send_response(200)
                        self.end_headers()
                        self.wfile.write(b"ok")
                finally:
                    with receiver.lock:
                        receiver.in_flight -= 1

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server
        return self

    def stop(self) -> None:
        """Stop listening: from now on connections are refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: Where Debian's postgresql package puts the server's programs (initdb, pg_ctl).
POSTGRES_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


class PostgresServer:
    """A private PostgreSQL (``initdb`` + ``pg_ctl`` from Debian's package) on a free loopback
    port, that a test can stop and start again (its data survives a restart).

    ``initdb`` refuses to run as root, so as root the server runs as the ``postgres`` user the
    package creates, in a directory of its own under the system's temporary directory. Any local
    user may connect as ``kestrel`` without a password (``trust``); :meth:`create_database` makes
    a fresh database for a test.
    """

    def __init__(self) -> None:
        import pwd
        import shutil
        import tempfile

        bins = [d for d in POSTGRES_BIN_DIRS if (d / "initdb").exists()]
        if not bins:
            pytest.fail(
                "PostgreSQL is needed for the cold-store tests: apt-get install postgresql "
                "(or `make setup`); initdb was not found under /usr/lib/postgresql/*/bin"
            )
        self.bin = bins[0]
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="kestrel-pg-"))
        self.data = self.dir / "data"
        self.log_path = self.dir / "server.log"
        self._as: list[str] = []
        if os.geteuid() == 0:
            try:
                user = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail("running as root needs the postgres user (apt-get install postgresql)")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            runuser = shutil.which("runuser")
            if runuser is None:
                pytest.fail("running as root needs runuser (util-linux) to start PostgreSQL")
            self._as = [runuser, "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-U", "kestrel", "--auth=trust", "-E", "UTF8")

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(
            [*self._as, str(self.bin / program), *args],
            capture_output=True,
            text=True,
            cwd=self.dir,
            timeout=120,
        )
        if done.returncode != 0:
            pytest.fail(f"{program} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    @property
    def url(self) -> str:
        """The URL of the ``postgres`` database."""
        return f"postgresql://kestrel@127.0.0.1:{self.port}/postgres"

    def start(self) -> PostgresServer:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir} "
            "-c fsync=off -c full_page_writes=off -c max_connections=50"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-o", options,
                  "-w", "-t", "60", "start")  # fmt: skip
        return self

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        """Stop the server and delete its directory."""
        import shutil

        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def create_database(self, name: str) -> str:
        """Create database ``name``; return its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
        return f"postgresql://kestrel@127.0.0.1:{self.port}/{name}"
