"""Shared fixtures: the brokers and Redis (helpers for processes are in testkit.py).

``broker`` is Apache Kafka (one KRaft node, from the jars ``make kafka`` caches); a smoke subset
also runs on the embedded Tansu broker (``tansu_broker``), so that both stay supported.

Services are real. A missing service is a failure that says how to get it, never a skip.

A test that uses a service fixture (:data:`SERVICE_FIXTURES`) is marked ``integration``
automatically; modules that start services themselves set ``pytestmark``. So
``pytest -m "not integration"`` runs everything that needs no real service.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
import redis

from engine.devtools.apache_kafka import ApacheKafka
from engine.devtools.broker import Broker, EmbeddedBroker, free_port, wait_for_port
from engine.model.alert import Alert, AlertStatus
from engine.model.notification import Notification
from tests import alert_channel_fakes
from tests.alert_channel_fakes import FakeClock, FakeService, Reply
from tests.testkit import STARTED, PostgresServer, serving

#: Fixtures that start (or reach) a real service.
SERVICE_FIXTURES = frozenset(
    {"broker", "tansu_broker", "each_broker", "redis_url", "postgres", "postgres_url"}
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a service fixture as ``integration``."""
    for item in items:
        if SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


#: The broker behind the ``broker`` fixture: ``apache`` (the default) or ``tansu``.
TEST_BROKER = os.environ.get("KESTREL_TEST_BROKER", "apache")
REDIS_URL = os.environ.get("KESTREL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session", autouse=True)
def _no_worker_outlives_the_session() -> Iterator[None]:
    yield
    for process in STARTED:
        process.stop(signal.SIGKILL)


@pytest.fixture(scope="session")
def broker(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Broker]:
    """Apache Kafka, one KRaft node, for the whole session (tests use unique topic names).

    Its storage, config and log are in the session's temporary directory (``kafka0/node-1``).
    With ``KESTREL_TEST_BROKER=tansu`` it is the embedded Tansu broker instead.
    """
    if TEST_BROKER == "tansu":
        yield request.getfixturevalue("tansu_broker")
        return
    if TEST_BROKER != "apache":
        pytest.fail(f"KESTREL_TEST_BROKER={TEST_BROKER!r}: use apache (the default) or tansu")
    with serving(ApacheKafka(directory=tmp_path_factory.mktemp("kafka"))) as kafka:
        yield kafka


@pytest.fixture(scope="session")
def tansu_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """The embedded Tansu broker (the demo's), for the tests that keep it supported."""
    log = tmp_path_factory.mktemp("tansu") / "broker.log"
    with serving(EmbeddedBroker(log_path=log)) as b:
        yield b


@pytest.fixture(scope="module", params=["apache", "tansu"])
def each_broker(request: pytest.FixtureRequest) -> Broker:
    """Each broker in turn: a module using it runs on Apache Kafka, then again on Tansu."""
    return request.getfixturevalue("broker" if request.param == "apache" else "tansu_broker")


def _redis_ok(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The machine's Redis, or one started here (``redis-server`` from Debian's package)."""
    if _redis_ok(REDIS_URL):
        yield REDIS_URL
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            f"no Redis at {REDIS_URL} and no redis-server binary to start one: "
            "install it (apt-get install redis-server, or `make setup`) "
            "or set KESTREL_TEST_REDIS_URL"
        )
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path_factory.mktemp("redis"),
        stdout=subprocess.DEVNULL,
    )
    if not wait_for_port("127.0.0.1", port, 10):
        proc.kill()
        pytest.fail(f"redis-server did not start on port {port}")
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(5)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL server for the session (Debian's postgresql package; see
    :class:`tests.testkit.PostgresServer`). Tests take a database of their own
    (``postgres_url``), or start a server of their own to stop it mid-test."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """The URL of a new, empty database on the session's PostgreSQL."""
    return postgres.create_database(f"test_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topic names, consumer groups and Redis key prefixes."""
    return uuid.uuid4().hex[:10]


# -- alert channels: fake services answering like Slack, PagerDuty, webhooks ----------------


@pytest.fixture
async def fake_service() -> AsyncIterator[Callable[..., Awaitable[FakeService]]]:
    """Start fake services: ``await fake_service(Reply(202))``; all stopped after the test."""
    started: list[FakeService] = []

    async def start(default: Reply | None = None) -> FakeService:
        service = await FakeService(default or Reply()).start()
        started.append(service)
        return service

    yield start
    for service in started:
        await service.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client that ignores proxy settings of the environment."""
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_alert() -> Callable[..., Alert]:
    """Build an :class:`Alert` with sensible defaults; keyword arguments override them."""
    return alert_channel_fakes.make_alert


@pytest.fixture
def make_group() -> Callable[..., Notification]:
    """A grouped notification of ``n`` alerts of ``service=api`` (``statuses`` cycles per alert)."""

    def build(
        n: int,
        *,
        receiver: str = "test",
        statuses: tuple[AlertStatus, ...] = (AlertStatus.FIRING,),
        external_url: str | None = None,
        **alert_kwargs: Any,
    ) -> Notification:
        alerts = tuple(
            alert_channel_fakes.make_alert(
                labels={"service": "api", "instance": f"i-{i:04d}"},
                status=statuses[i % len(statuses)],
                **alert_kwargs,
            )
            for i in range(n)
        )
        return Notification(
            receiver=receiver,
            group_key='{}:{service="api"}',
            group_labels={"service": "api"},
            alerts=alerts,
            external_url=external_url,
        )

    return build
