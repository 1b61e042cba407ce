"""Shared fixtures: the embedded broker and Redis (helpers for processes are in testkit.py).

Services are real. A missing service is a failure that says how to get it, never a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest
import redis

from engine.broker import EmbeddedBroker, free_port, wait_for_port

REDIS_URL = os.environ.get("KESTREL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One embedded Tansu broker for the whole test session (tests use unique topic names)."""
    log = tmp_path_factory.mktemp("broker") / "broker.log"
    b = EmbeddedBroker(log_path=log)
    b.start()
    yield b
    b.stop()


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


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topic names, consumer groups and Redis key prefixes."""
    return uuid.uuid4().hex[:10]
