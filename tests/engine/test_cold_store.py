"""The cold store's backends (SQLite and a real PostgreSQL): writes, replays that store nothing
twice, queries, alert history, migrations and retention."""

from __future__ import annotations

import calendar
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest

from engine.model.alert import Alert, AlertStatus, Severity
from engine.model.events import LogEvent
from engine.sinks.cold_store import (
    AlertQuery,
    ColdStore,
    EventQuery,
    Origin,
    StoreError,
    StoreUnavailable,
    alert_row,
    event_row,
    open_store,
)
from engine.sinks.cold_store.postgres import PostgresStore
from tests.testkit import PostgresServer

NOV = calendar.timegm((2026, 11, 20, 12, 0, 0))


def _event(i: int, ts: float, *, etype: str = "task_created", service: str = "api") -> LogEvent:
    raw = {
        "timestamp": ts,
        "level": "ERROR" if i % 5 == 0 else "INFO",
        "service": service,
        "type": etype,
        "message": f"event {i}",
        "session_id": f"s-{i % 3}",
        "user_id": f"u-{i % 2}",
        "trace_id": f"t-{i}",
        "context": {"attempt": i, "nested": {"k": [1, 2]}},
        "performance_data": {"operation": "tool_call", "duration_ms": 1.5 * i},
        "extra_field": "kept",
    }
    level = "ERROR" if i % 5 == 0 else "INFO"
    return LogEvent(ts, level, service, raw["message"], etype, "tool_call", 1.5 * i, raw)  # type: ignore[arg-type]


def _rows(n: int, start: float = NOV, offset0: int = 0) -> list:  # type: ignore[type-arg]
    return [
        event_row(_event(i, start + i), Origin("app", "logs", i % 2, offset0 + i // 2, 0))
        for i in range(n)
    ]


def _alert_bytes(status: AlertStatus, repeat: int = 0, *, silenced: bool = False) -> bytes:
    a = Alert(
        "fp1",
        status,
        Severity.WARNING,
        "latency_ms",
        {"service": "api"},
        "zscore",
        950.0,
        float("nan"),
        8.5,
        NOV,
        NOV + 60 if status is AlertStatus.RESOLVED else None,
        "latency_ms{service=api} is 950",
        repeat=repeat,
        silenced=silenced,
    )
    return orjson.dumps(a.to_dict())


def _migrations(store: ColdStore) -> tuple[tuple[int, tuple[str, ...]], ...]:
    from engine.sinks.cold_store import postgres, sqlite

    return postgres.MIGRATIONS if store.backend == "postgresql" else sqlite.MIGRATIONS


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ColdStore]:
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path}/cold.db")
    else:
        s = open_store(request.getfixturevalue("postgres_url"))
    assert s.migrate() == [version for version, _ in _migrations(s)]
    yield s
    s.close()


def test_writes_every_field_and_a_replay_stores_nothing_twice(store: ColdStore) -> None:
    rows = _rows(50)
    written = store.write(rows, [])
    assert written.events == 50
    again = store.write(rows[10:30] + _rows(5, offset0=100), [])  # a replay, plus 5 new ones
    assert again.events == 5
    stored = store.query_events(EventQuery(limit=None))
    print(f"{store.backend}: {len(stored)} rows stored")
    assert len(stored) == 55
    assert [e.ts for e in stored] == sorted((e.ts for e in stored), reverse=True)  # newest first
    one = next(e for e in stored if e.event["message"] == "event 7")
    assert one.event == orjson.loads(rows[7].event)  # the original fields, unknown ones too
    assert one.event["extra_field"] == "kept"
    assert (one.session_id, one.user_id, one.trace_id) == ("s-1", "u-1", "t-7")
    assert (one.topic, one.partition, one.offset, one.index) == ("logs", 1, 3, 0)
    assert one.ts == pytest.approx(NOV + 7)


def test_queries_filter_by_every_field(store: ColdStore) -> None:
    store.write(_rows(30), [])
    store.write(
        [
            event_row(_event(100, NOV + 100, etype="security_event", service="auth"), Origin(
                "app", "logs", 0, 999, 0))
        ],
        [],
    )  # fmt: skip
    assert {e.session_id for e in store.query_events(EventQuery(session="s-2"))} == {"s-2"}
    assert len(store.query_events(EventQuery(session="s-2"))) == 10
    assert len(store.query_events(EventQuery(user="u-0"))) == 16
    assert [e.trace_id for e in store.query_events(EventQuery(trace_id="t-4"))] == ["t-4"]
    assert [e.service for e in store.query_events(EventQuery(types=("security_event",)))] == [
        "auth"
    ]
    assert len(store.query_events(EventQuery(services=("api", "auth")))) == 31
    assert len(store.query_events(EventQuery(levels=("error",)))) == 7  # 0,5,...,25 and 100
    window = store.query_events(EventQuery(since=NOV + 10, until=NOV + 20))
    assert sorted(e.event["message"] for e in window) == sorted(f"event {i}" for i in range(10, 20))
    assert len(store.query_events(EventQuery(limit=3))) == 3
    newest = store.query_events(EventQuery(limit=1))[0]
    assert newest.event["message"] == "event 100"
    later = store.query_events(EventQuery(after_id=newest.id - 2, limit=None))
    assert [e.id for e in later] == sorted(e.id for e in later)
    assert len(later) == 2


def test_alert_history_keeps_every_transition_once(store: ColdStore) -> None:
    records = [
        (AlertStatus.FIRING, 0, False),
        (AlertStatus.FIRING, 1, False),
        (AlertStatus.FIRING, 2, True),
        (AlertStatus.RESOLVED, 0, False),
    ]
    rows = [
        alert_row(_alert_bytes(status, repeat, silenced=s), NOV + i, Origin("app", "al", 0, i))
        for i, (status, repeat, s) in enumerate(records)
    ]
    assert all(r is not None for r in rows)
    assert store.write([], rows).alerts == 4  # type: ignore[arg-type]
    assert store.write([], rows).alerts == 0  # type: ignore[arg-type]
    history = store.alert_history(AlertQuery(series="latency_ms"))
    assert [h.transition for h in history] == ["resolved", "silenced", "repeated", "fired"]
    assert history[0].alert["status"] == "resolved"
    assert len(store.alert_history(AlertQuery(series="latency_ms{service=api}"))) == 4
    assert len(store.alert_history(AlertQuery(detector="zscore", service="api"))) == 4
    assert store.alert_history(AlertQuery(detector="adaptive")) == []
    assert len(store.alert_history(AlertQuery(since=NOV + 2))) == 2
    assert len(store.alert_history(AlertQuery(transitions=("fired", "resolved")))) == 2


def test_migrations_are_versioned_and_run_once(store: ColdStore) -> None:
    assert store.schema_version() == _migrations(store)[-1][0]
    assert store.migrate() == []


def test_retention_drops_only_what_is_older(store: ColdStore) -> None:
    sept = calendar.timegm((2026, 9, 10, 0, 0, 0))
    store.write(_rows(10, start=sept) + _rows(10, offset0=50), [])
    cutoff = calendar.timegm((2026, 11, 1, 0, 0, 0))
    assert store.drop_expired(cutoff) >= 1
    left = store.query_events(EventQuery(limit=None))
    assert len(left) == 10
    assert min(e.ts for e in left) >= cutoff
    if isinstance(store, PostgresStore):
        assert store.partitions() == ["cold_events_p2026_11"]


@pytest.mark.integration
def test_postgres_down_is_unavailable_then_writes_again(tmp_path: Path) -> None:
    server = PostgresServer().start()
    try:
        store = open_store(server.create_database("outage"))
        store.migrate()
        assert store.write(_rows(5), []).events == 5
        server.stop()
        with pytest.raises(StoreUnavailable):
            store.write(_rows(5, offset0=10), [])
        server.start()
        assert store.write(_rows(5, offset0=10), []).events == 5  # reconnects by itself
        assert len(store.query_events(EventQuery(limit=None))) == 10
        store.close()
    finally:
        server.remove()


def test_a_locked_sqlite_file_is_unavailable(tmp_path: Path) -> None:
    import sqlite3

    from engine.sinks.cold_store.sqlite import SQLiteStore

    store = SQLiteStore(str(tmp_path / "cold.db"), timeout_seconds=0.2)
    store.migrate()
    other = sqlite3.connect(tmp_path / "cold.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    with pytest.raises(StoreUnavailable):
        store.write(_rows(3), [])
    other.execute("ROLLBACK")
    assert store.write(_rows(3), []).events == 3


def test_kestrel_logs_follows_new_events(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.testkit import REPO

    cfg = tmp_path / "kestrel.toml"
    cfg.write_text(f'[worker]\ndata_dir = "{tmp_path}"\n')
    store = open_store(f"sqlite:///{tmp_path}/cold-store.db")
    store.migrate()
    store.write(_rows(3), [])
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "logs", "--config", str(cfg), "--follow", "--json",
         "--type", "task_created", "--interval", "0.2"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = [json.loads(proc.stdout.readline()) for _ in range(3)]
        assert [e["message"] for e in first] == ["event 0", "event 1", "event 2"]  # oldest first
        store.write(_rows(2, start=NOV + 100, offset0=50), [])
        store.write([event_row(_event(9, NOV + 200, etype="task_failed"), Origin(
            "app", "logs", 0, 99, 0))], [])  # fmt: skip
        store.write(_rows(1, start=NOV + 300, offset0=60), [])
        later = [json.loads(proc.stdout.readline())["message"] for _ in range(3)]
        print(f"followed: {later}")
        assert later == ["event 0", "event 1", "event 0"]  # the new ones, task_failed left out
    finally:
        proc.kill()
        proc.wait()
        store.close()


def test_nul_characters_do_not_stop_the_store(store: ColdStore) -> None:
    event = _event(1, NOV)
    event.message = "bad\x00byte"
    event.raw["message"] = "bad\x00byte"
    event.raw["context"] = {"note": "nul \x00 here"}
    assert store.write([event_row(event, Origin("app", "logs", 0, 1, 0))], []).events == 1
    (stored,) = store.query_events(EventQuery())
    print(f"{store.backend}: stored message {stored.message!r}")
    assert stored.message.startswith("bad") and stored.message.endswith("byte")


def test_tabs_newlines_and_backslashes_survive(store: ColdStore) -> None:
    text = "line 1\nline 2\ttab\\back\rcr \\N é 🦅"
    event = _event(1, NOV)
    event.message = text
    event.raw["message"] = text
    event.raw["context"] = {"text": text}
    assert store.write([event_row(event, Origin("app", "logs", 0, 1, 0))], []).events == 1
    (stored,) = store.query_events(EventQuery())
    assert stored.message == text
    assert stored.event["message"] == text and stored.event["context"] == {"text": text}


@pytest.mark.integration
def test_postgres_migrations_2_to_4_keep_stored_rows_and_their_lookups(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database filled under migration 1 is migrated to 2 (ids byte-wise, hash indexes for
    session and trace), 3 (a block-range index on id, for following) and 4 (JSON kept as text,
    the origin key's fixed-width columns first): its rows stay, lookups find them, a replay
    still stores nothing twice."""
    from engine.sinks.cold_store import postgres

    store = open_store(postgres_url)
    monkeypatch.setattr(postgres, "MIGRATIONS", postgres.MIGRATIONS[:1])
    assert store.migrate() == [1]
    rows = _rows(40)
    assert store.write(rows, []).events == 40
    monkeypatch.undo()
    assert store.migrate() == [2, 3, 4]
    with psycopg.connect(postgres_url) as conn:
        kinds = dict(
            conn.execute(
                "SELECT indexname, split_part(split_part(indexdef, 'USING ', 2), ' ', 1) "
                "FROM pg_indexes WHERE tablename = 'cold_events'"
            ).fetchall()
        )
        collation = conn.execute(
            "SELECT collation_name FROM information_schema.columns "
            "WHERE table_name = 'cold_events' AND column_name = 'trace_id'"
        ).fetchone()
        context = conn.execute(
            "SELECT data_type FROM information_schema.columns "
            "WHERE table_name = 'cold_events' AND column_name = 'context'"
        ).fetchone()
        old_row = conn.execute(
            "SELECT context::json, performance_data::json -> 'duration_ms' FROM cold_events "
            "WHERE trace_id = 't-3'"
        ).fetchone()
        origin_key = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'cold_events'::regclass AND contype = 'u'"
        ).fetchall()
    print(f"after migration 4: {kinds}, trace_id collation {collation}, key {origin_key}")
    assert kinds["cold_events_session"] == "hash" and kinds["cold_events_trace"] == "hash"
    assert kinds["cold_events_user"] == "btree" and kinds["cold_events_ts"] == "btree"
    assert kinds["cold_events_id"] == "brin"
    assert collation == ("C",)
    assert context == ("text",)
    assert old_row == ({"attempt": 3, "nested": {"k": [1, 2]}}, 4.5)
    assert origin_key == [
        ("UNIQUE (kafka_partition, kafka_offset, batch_index, ts, topic, source)",)
    ]
    assert store.write(rows[:20] + _rows(5, offset0=100), []).events == 5
    by_session = store.query_events(EventQuery(session="s-1", limit=None))
    assert len(by_session) == 15  # i % 3 == 1 of 0..39 (13), and of the 5 new ones (2)
    assert [e.ts for e in by_session] == sorted((e.ts for e in by_session), reverse=True)
    assert [e.event["message"] for e in store.query_events(EventQuery(trace_id="t-7"))] == [
        "event 7"
    ]
    assert len(store.query_events(EventQuery(user="u-0", limit=None))) == 23
    store.close()


def test_postgres_writes_batches_at_once_over_two_connections_exactly_once(
    postgres_url: str,
) -> None:
    """With ``writers = 2`` two submitted batches are written at once, each over its own
    connection in its own transaction; a batch overlapping one being written, a replay and a
    batch half stored store nothing twice; a batch the server refuses fails alone."""
    store = open_store(postgres_url, writers=2)
    store.migrate()
    rows = _rows(6000)
    first, second = store.submit(rows[:3000], []), store.submit(rows[4500:5500], [])
    overlapping = store.submit(rows[2000:4500], [])  # waits for a free writer, then races
    assert second.result().events == 1000
    # Whichever of two writers stores an origin first has it; the other skips it.
    got = [first.result().events, overlapping.result().events]
    print(f"first and overlapping batches stored {got} new rows")
    assert sum(got) == 4500 and got[0] >= 2000 and got[1] >= 1500
    with psycopg.connect(postgres_url) as conn:
        (connections,) = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()  # type: ignore[misc]
    assert connections == 3  # the owner's (partitions, queries) and two writers'
    assert store.write(rows[:4500], []).events == 0  # a replay: every row skipped
    assert store.write(rows, []).events == 500  # mostly stored: only the rest is new
    alert = alert_row(_alert_bytes(AlertStatus.FIRING), NOV, Origin("app", "al", 0, 1))
    assert alert is not None
    bad = dataclasses.replace(alert, labels="{not json")  # jsonb: the server refuses it
    with pytest.raises(StoreError, match="write"):
        store.submit([], [bad]).result()
    assert store.write(_rows(1, offset0=9000), []).events == 1  # its writer reconnects
    stored = store.query_events(EventQuery(limit=None))
    print(f"stored {len(stored)} rows over {connections} connections")
    assert len(stored) == 6001
    assert len({(e.topic, e.partition, e.offset, e.index) for e in stored}) == 6001
    store.close()
