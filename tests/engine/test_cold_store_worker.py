"""The cold store filled by a real worker on Apache Kafka: PostgreSQL stopped and started again
mid-stream (every cold event and alert transition stored exactly once, detection not held up),
the worker killed while PostgreSQL is down and both restarted (every cold event stored once),
and the default SQLite store read back with ``kestrel logs`` and ``kestrel alerts --history``.

Each test prints the figures it measured (run pytest with ``-s`` or ``-rP``).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from engine.devtools.broker import Broker
from tests.testkit import (
    REPO,
    PostgresServer,
    WorkerProcess,
    collect,
    metric_total,
    producer,
    run,
    write_config,
)

pytestmark = pytest.mark.integration

T0 = 1_779_999_960.0
COLD = ("task_created", "tool_executed", "security_event")
HOT = ("thought", "stream_delta")

#: zscore on metrics only (so a spiked series fires and resolves), quick notifications off.
DETECTION = """
[series]
metric_detectors = ["zscore"]
latency_detectors = []
event_count_detectors = []
error_detectors = []
pattern_detectors = []

[detectors.zscore]
warmup = 10
"""


def _log_messages(start: int, n: int) -> tuple[list[tuple[bytes, bytes]], int]:
    """``n`` messages of NDJSON with 3 events each (one cold type in two of them, a hot one),
    and how many cold events they hold."""
    out, cold = [], 0
    for m in range(start, start + n):
        events = []
        for j in range(3):
            etype = COLD[(m + j) % len(COLD)] if j < 2 else HOT[m % len(HOT)]
            cold += etype in COLD
            events.append(
                {
                    "timestamp": T0 + m + j / 10,
                    "level": "ERROR" if etype == "security_event" else "INFO",
                    "service": f"svc-{m % 3}",
                    "type": etype,
                    "message": f"message {m}.{j}",
                    "session_id": f"s-{m % 7}",
                    "user_id": f"u-{m % 4}",
                    "trace_id": f"t-{m}",
                    "context": {"m": m, "j": j},
                }
            )
        out.append((f"svc-{m % 3}".encode(), b"\n".join(orjson.dumps(e) for e in events)))
    return out, cold


def _metric_messages() -> list[tuple[bytes, bytes]]:
    """One series, 80 points: steady, a spike at 40..42 (fires), steady again (resolves)."""
    docs = [
        {
            "name": "cold_latency",
            "value": 500.0 if 40 <= i < 43 else 100.0 + (i % 5),
            "timestamp": T0 + i * 10,
            "labels": {"service": "api"},
        }
        for i in range(80)
    ]
    return [(b"cold_latency", orjson.dumps(docs[j : j + 10])) for j in range(0, 80, 10)]


async def _send(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    async with producer(bootstrap) as p:
        for key, value in messages:
            await p.send(topic, value, key=key)
        await p.flush()


def _wait(what: str, check: Callable[[], bool], timeout: float, log: Callable[[], str]) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.3)
    pytest.fail(f"{what}: not within {timeout}s; worker log:\n{log()}")


@pytest.fixture(scope="module")
def pg_server() -> Iterator[PostgresServer]:
    """A PostgreSQL of this module's own: the test stops and starts it."""
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.remove()


def _count(url: str, sql: str) -> int:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
            return int(row[0]) if row else 0
    except psycopg.Error:  # down, or not migrated yet
        return -1


#: Stored cold events, and their distinct Kafka origins (equal when nothing is stored twice).
EVENTS = "SELECT count(*) FROM cold_events"
DISTINCT = (
    "SELECT count(*) FROM (SELECT DISTINCT source, topic, kafka_partition, kafka_offset, "
    "batch_index FROM cold_events) d"
)


def _postgres_config(
    tmp_path: Path, broker: Broker, unique: str, redis_url: str, db_url: str
) -> tuple[Path, int]:
    """A worker config whose cold store is ``db_url``, retrying fast; and its web port."""
    cfg = tmp_path / "kestrel.toml"
    port = write_config(
        cfg,
        broker,
        unique,
        redis_url,
        DETECTION
        + f"""
[cold_store]
url = "{db_url}"
retry_seconds = 0.5
fetch_max_wait_seconds = 0.2
""",
    )
    return cfg, port


def test_postgres_outage_mid_stream_loses_and_duplicates_nothing(
    broker: Broker, redis_url: str, tmp_path: Path, unique: str, pg_server: PostgresServer
) -> None:
    db_url = pg_server.create_database(f"e2e_{unique}")
    cfg, port = _postgres_config(tmp_path, broker, unique, redis_url, db_url)
    worker = WorkerProcess(cfg, port, tmp_path / "worker.log").start()
    worker.wait_ready()
    events, distinct = EVENTS, DISTINCT

    first, cold1 = _log_messages(0, 150)
    run(_send(broker.bootstrap, f"logs-{unique}", first))
    took = _wait("first part stored", lambda: _count(db_url, events) == cold1, 60, worker.log)
    print(f"\npostgres: {cold1} cold events stored {took:.1f}s after producing")

    pg_server.stop()
    before = metric_total(worker.metrics(), "kestrel_events_consumed")
    second, cold2 = _log_messages(150, 150)
    run(_send(broker.bootstrap, f"logs-{unique}", second))
    run(_send(broker.bootstrap, f"metrics-{unique}", _metric_messages()))
    # Detection goes on without the database: the events are judged, the spike fires.
    _wait(
        "detection during the outage",
        lambda: metric_total(worker.metrics(), "kestrel_events_consumed") >= before + 450 + 80,
        60,
        worker.log,
    )
    alerts = run(collect(broker.bootstrap, f"alerts-{unique}", lambda r: len(r) >= 2, timeout=60))
    assert len(alerts) >= 2, "the spike should fire and resolve"
    # The store keeps trying (every retry_seconds) while the database is down.
    _wait(
        "retries during the outage",
        lambda: metric_total(worker.metrics(), "kestrel_cold_store_write_errors") >= 3,
        60,
        worker.log,
    )
    page = worker.metrics()
    errors = metric_total(page, "kestrel_cold_store_write_errors")
    print(f"postgres down: write errors counted {errors:.0f}, up gauge "
          f"{metric_total(page, 'kestrel_cold_store_up'):.0f}")  # fmt: skip
    assert metric_total(page, "kestrel_cold_store_up") == 0
    waiting = metric_total(page, "kestrel_cold_store_lag_records")
    print(f"postgres down: cold store lag {waiting:.0f} records")
    assert waiting > 0  # the records held through the outage are not durable yet
    assert _count(db_url, events) == -1  # (down indeed)

    pg_server.start()
    total = cold1 + cold2
    took = _wait(
        "all stored after the outage", lambda: _count(db_url, events) == total, 90, worker.log
    )
    time.sleep(2.0)  # nothing more comes (no duplicate, nothing late)
    assert _count(db_url, events) == total
    assert _count(db_url, distinct) == total
    stored_alerts = _count(db_url, "SELECT count(*) FROM alert_history")
    alerts = run(collect(broker.bootstrap, f"alerts-{unique}", lambda r: False, timeout=3))
    print(f"postgres back: all {total} cold events stored {took:.1f}s later, exactly once; "
          f"alert history {stored_alerts} of {len(alerts)} alert records")  # fmt: skip
    assert stored_alerts == len(alerts)
    page = worker.metrics()
    assert metric_total(page, "kestrel_cold_store_up") == 1
    assert metric_total(page, "kestrel_cold_store_rows_written", table="events") == total
    assert metric_total(page, "kestrel_cold_store_lag_records") == 0
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT event::json, context::json, session_id, user_id, trace_id, batch_index "
            "FROM cold_events "
            "WHERE trace_id = 't-200' ORDER BY batch_index"
        ).fetchall()
    assert [r[5] for r in row] == [0, 1]  # the two cold events of message 200, by position
    assert row[0][0]["message"] == "message 200.0"
    assert row[0][1] == {"m": 200, "j": 0}
    assert (row[0][2], row[0][3]) == ("s-4", "u-0")
    worker.stop()


def test_worker_killed_while_postgres_is_down_stores_everything_once_after_restart(
    broker: Broker, redis_url: str, tmp_path: Path, unique: str, pg_server: PostgresServer
) -> None:
    """SIGKILL (no shutdown, no offset commit) while the store retries a batch against a
    stopped PostgreSQL; then PostgreSQL and a new worker (same group) start: every cold event
    is stored, none twice."""
    db_url = pg_server.create_database(f"crash_{unique}")
    cfg, port = _postgres_config(tmp_path, broker, unique, redis_url, db_url)
    worker = WorkerProcess(cfg, port, tmp_path / "worker1.log").start()
    worker.wait_ready()
    events, distinct = EVENTS, DISTINCT
    first, cold1 = _log_messages(0, 100)
    run(_send(broker.bootstrap, f"logs-{unique}", first))
    took = _wait("first part stored", lambda: _count(db_url, events) == cold1, 60, worker.log)
    print(f"\npostgres: {cold1} cold events stored {took:.1f}s after producing")

    pg_server.stop()
    try:
        errors_before = metric_total(worker.metrics(), "kestrel_cold_store_write_errors")
        second, cold2 = _log_messages(100, 100)
        run(_send(broker.bootstrap, f"logs-{unique}", second))
        # The store has fetched the second part and retries its write: kill it mid-retry.
        _wait(
            "retries during the outage",
            lambda: (
                metric_total(worker.metrics(), "kestrel_cold_store_write_errors")
                >= errors_before + 2
            ),
            60,
            worker.log,
        )
        errors = metric_total(worker.metrics(), "kestrel_cold_store_write_errors")
        worker.stop(signal.SIGKILL)
        assert worker.proc is not None and worker.proc.returncode == -signal.SIGKILL
        print(f"worker killed (SIGKILL) with postgres down, after {errors:.0f} failed writes")
    finally:
        pg_server.start()
    assert _count(db_url, events) == cold1  # nothing of the second part got in

    restarted = WorkerProcess(cfg, port, tmp_path / "worker2.log").start()
    try:
        restarted.wait_ready()
        total = cold1 + cold2
        took = _wait(
            "all stored after the restart",
            lambda: _count(db_url, events) == total,
            90,
            restarted.log,
        )
        time.sleep(2.0)  # nothing more comes (no duplicate, nothing late)
        assert _count(db_url, events) == total
        assert _count(db_url, distinct) == total
        page = restarted.metrics()
        assert metric_total(page, "kestrel_cold_store_lag_records") == 0
        print(f"postgres and worker restarted: all {total} cold events stored {took:.1f}s "
              f"later, exactly once")  # fmt: skip
        with psycopg.connect(db_url) as conn:
            rows = conn.execute(
                "SELECT batch_index, event::json FROM cold_events WHERE trace_id = 't-150' "
                "ORDER BY batch_index"
            ).fetchall()
        assert [r[0] for r in rows] == [0, 1]
        assert rows[0][1]["message"] == "message 150.0"
    finally:
        restarted.stop()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_default_sqlite_store_is_read_by_kestrel_logs_and_alerts(
    broker: Broker, redis_url: str, tmp_path: Path, unique: str
) -> None:
    cfg = tmp_path / "kestrel.toml"
    port = write_config(
        cfg,
        broker,
        unique,
        redis_url,
        DETECTION + "\n[cold_store]\nfetch_max_wait_seconds = 0.2\n",
    )
    worker = WorkerProcess(cfg, port, tmp_path / "worker.log").start()
    worker.wait_ready()
    messages, cold = _log_messages(0, 60)
    run(_send(broker.bootstrap, f"logs-{unique}", messages))
    run(_send(broker.bootstrap, f"metrics-{unique}", _metric_messages()))

    def stored() -> int:
        done = _cli("logs", "--config", str(cfg), "--limit", "0", "--json")
        return len(done.stdout.splitlines()) if done.returncode == 0 else -1

    took = _wait("stored in SQLite", lambda: stored() == cold, 60, worker.log)
    print(f"\nsqlite: {cold} cold events stored and read back {took:.1f}s after producing")
    assert (tmp_path / f"data-{unique}" / "cold-store.db").exists()  # write_config's data_dir

    done = _cli("logs", "--config", str(cfg), "--session", "s-3", "--type", "security_event",
                "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines: list[dict[str, Any]] = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines and all(e["session_id"] == "s-3" and e["type"] == "security_event" for e in lines)
    assert [e["timestamp"] for e in lines] == sorted((e["timestamp"] for e in lines), reverse=True)
    assert set(lines[0]) >= {"timestamp", "level", "service", "message", "context", "trace_id"}
    human = _cli("logs", "--config", str(cfg), "--trace-id", "t-5", "--since", "2026-05-01")
    assert human.returncode == 0, human.stderr
    print(human.stdout)
    assert len(human.stdout.splitlines()) == 2 and "trace=t-5" in human.stdout

    _wait(
        "alert history",
        lambda: "resolved" in _cli("alerts", "--config", str(cfg), "--history").stdout,
        60,
        worker.log,
    )
    history = _cli("alerts", "--config", str(cfg), "--history", "--series", "cold_latency")
    print(history.stdout)
    assert history.returncode == 0
    kinds = [line.split()[1] for line in history.stdout.splitlines()]
    assert kinds[0] == "resolved" and kinds[-1] == "fired"
    migrate = _cli("db", "migrate", "--config", str(cfg), "--json")
    assert json.loads(migrate.stdout)["applied"] == []  # the worker migrated at start
    worker.stop()

    # `kestrel store` alone: another app id (a group of its own) into a file of its own.
    alone = tmp_path / "alone.toml"
    alone.write_text(
        cfg.read_text()
        .replace(f'app_id = "kestrel-test-{unique}"', f'app_id = "kestrel-alone-{unique}"')
        .replace(f"data-{unique}", f"alone-{unique}")
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "store", "--config", str(alone)],
        cwd=REPO,
        stdout=(tmp_path / "store.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:

        def stored_alone() -> int:
            done = _cli("logs", "--config", str(alone), "--limit", "0", "--json")
            return len(done.stdout.splitlines()) if done.returncode == 0 else -1

        took = _wait(
            "kestrel store", lambda: stored_alone() == cold, 60,
            lambda: (tmp_path / "store.log").read_text(),
        )  # fmt: skip
        print(f"kestrel store alone: {cold} cold events stored in {took:.1f}s")
    finally:
        proc.terminate()
        assert proc.wait(30) == 0
