"""The embedded cold store: one SQLite file (the default; the demo and a laptop need no server).

Times are stored as epoch seconds (REAL). The file is in WAL mode, so ``kestrel logs`` reads
while a worker writes. Retention deletes old rows (SQLite has no partitions).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Sequence
from typing import Any, Final

import orjson

from engine.sinks.cold_store.base import ColdStore, StoreError, StoreUnavailable, Written
from engine.sinks.cold_store.query import AlertQuery, EventQuery, StoredAlert, StoredEvent
from engine.sinks.cold_store.rows import ALERT_COLUMNS, EVENT_COLUMNS, AlertRow, EventRow

__all__ = ["MIGRATIONS", "SQLiteStore"]

#: Schema migrations by version: each is applied once, in order, in one transaction.
MIGRATIONS: Final[tuple[tuple[int, tuple[str, ...]], ...]] = (
    (
        1,
        (
            """CREATE TABLE cold_events (
                id INTEGER PRIMARY KEY,
                ts REAL NOT NULL,
                type TEXT NOT NULL,
                level TEXT NOT NULL,
                service TEXT NOT NULL,
                message TEXT NOT NULL,
                session_id TEXT,
                user_id TEXT,
                trace_id TEXT,
                operation TEXT,
                duration_ms REAL,
                context TEXT,
                performance_data TEXT,
                event TEXT NOT NULL,
                source TEXT NOT NULL,
                topic TEXT NOT NULL,
                kafka_partition INTEGER NOT NULL,
                kafka_offset INTEGER NOT NULL,
                batch_index INTEGER NOT NULL,
                stored_at REAL NOT NULL,
                UNIQUE (source, topic, kafka_partition, kafka_offset, batch_index)
            )""",
            "CREATE INDEX cold_events_ts ON cold_events (ts)",
            "CREATE INDEX cold_events_type ON cold_events (type, ts)",
            "CREATE INDEX cold_events_service ON cold_events (service, ts)",
            "CREATE INDEX cold_events_session ON cold_events (session_id, ts)",
            "CREATE INDEX cold_events_user ON cold_events (user_id, ts)",
            "CREATE INDEX cold_events_trace ON cold_events (trace_id, ts)",
            """CREATE TABLE alert_history (
                id INTEGER PRIMARY KEY,
                recorded_at REAL NOT NULL,
                transition TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                series TEXT NOT NULL,
                series_id TEXT NOT NULL,
                detector TEXT NOT NULL,
                service TEXT,
                severity TEXT NOT NULL,
                status TEXT NOT NULL,
                value REAL,
                expected REAL,
                score REAL,
                started_at REAL NOT NULL,
                ended_at REAL,
                summary TEXT NOT NULL,
                repeat INTEGER NOT NULL,
                labels TEXT NOT NULL,
                alert TEXT NOT NULL,
                source TEXT NOT NULL,
                topic TEXT NOT NULL,
                kafka_partition INTEGER NOT NULL,
                kafka_offset INTEGER NOT NULL,
                stored_at REAL NOT NULL,
                UNIQUE (source, topic, kafka_partition, kafka_offset)
            )""",
            "CREATE INDEX alert_history_time ON alert_history (recorded_at)",
            "CREATE INDEX alert_history_series ON alert_history (series_id, recorded_at)",
            "CREATE INDEX alert_history_name ON alert_history (series, recorded_at)",
            "CREATE INDEX alert_history_detector ON alert_history (detector, recorded_at)",
            "CREATE INDEX alert_history_service ON alert_history (service, recorded_at)",
        ),
    ),
)

_EVENT_READ: Final = (
    "id, ts, type, level, service, message, session_id, user_id, trace_id, event, topic, "
    "kafka_partition, kafka_offset, batch_index"
)
_ALERT_READ: Final = (
    "id, recorded_at, transition, series_id, detector, service, severity, summary, alert"
)


def _nan_to_none(value: Any) -> Any:
    return None if isinstance(value, float) and value != value else value


class SQLiteStore(ColdStore):
    """The cold store in the SQLite file ``path`` (its directory is created if missing)."""

    backend = "sqlite"

    def __init__(self, path: str, *, timeout_seconds: float = 5.0) -> None:
        super().__init__(f"sqlite:///{path}")
        self.path = path
        self.timeout_seconds = timeout_seconds
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                directory = os.path.dirname(self.path)
                if directory:
                    os.makedirs(directory, exist_ok=True)
                conn = sqlite3.connect(
                    self.path,
                    timeout=self.timeout_seconds,
                    check_same_thread=False,
                    isolation_level=None,  # transactions are explicit (BEGIN IMMEDIATE)
                )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")  # durable at each WAL checkpoint
            except (OSError, sqlite3.Error) as exc:
                raise StoreUnavailable(f"{self.shown_url}: {exc}") from exc
            self._conn = conn
        return self._conn

    def schema_version(self) -> int:
        conn = self._connect()
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS kestrel_schema "
                "(version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
            )
            row = conn.execute("SELECT max(version) FROM kestrel_schema").fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.shown_url}: {exc}") from exc
        return int(row[0] or 0)

    def migrate(self) -> list[int]:
        current = self.schema_version()
        newest = MIGRATIONS[-1][0]
        if current > newest:
            raise StoreError(
                f"{self.shown_url}: schema version {current} is newer than this Kestrel's "
                f"({newest}); upgrade Kestrel"
            )
        conn = self._connect()
        applied = []
        for version, statements in MIGRATIONS:
            if version <= current:
                continue
            try:
                conn.execute("BEGIN IMMEDIATE")
                for statement in statements:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO kestrel_schema (version, applied_at) VALUES (?, ?)",
                    (version, time.time()),
                )
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                conn.rollback()
                raise StoreUnavailable(f"{self.shown_url}: migration {version}: {exc}") from exc
            applied.append(version)
        return applied

    def write(self, events: Sequence[EventRow], alerts: Sequence[AlertRow]) -> Written:
        conn = self._connect()
        now = time.time()
        try:
            conn.execute("BEGIN IMMEDIATE")
            before = conn.total_changes
            if events:
                conn.executemany(
                    f"INSERT OR IGNORE INTO cold_events ({', '.join(EVENT_COLUMNS)}, stored_at) "
                    f"VALUES ({', '.join('?' * (len(EVENT_COLUMNS) + 1))})",
                    [(*row.values(), now) for row in events],
                )
            stored_events = conn.total_changes - before
            if alerts:
                conn.executemany(
                    f"INSERT OR IGNORE INTO alert_history ({', '.join(ALERT_COLUMNS)}, stored_at)"
                    f" VALUES ({', '.join('?' * (len(ALERT_COLUMNS) + 1))})",
                    [(*map(_nan_to_none, row.values()), now) for row in alerts],
                )
            stored_alerts = conn.total_changes - before - stored_events
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.rollback()
            raise StoreUnavailable(f"{self.shown_url}: {exc}") from exc
        return Written(stored_events, stored_alerts)

    def _select(self, sql: str, args: Sequence[Any]) -> list[Any]:
        try:
            return self._connect().execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.shown_url}: {exc}") from exc

    def query_events(self, query: EventQuery) -> list[StoredEvent]:
        where, args = query.where_clauses()
        order = "id ASC" if query.after_id is not None else "ts DESC, id DESC"
        sql = f"SELECT {_EVENT_READ} FROM cold_events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY {order}"
        if query.limit is not None:
            sql += f" LIMIT {int(query.limit)}"
        return [
            StoredEvent(
                r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], orjson.loads(r[9]), *r[10:]
            )
            for r in self._select(sql, args)
        ]

    def alert_history(self, query: AlertQuery) -> list[StoredAlert]:
        where, args = query.where_clauses()
        sql = f"SELECT {_ALERT_READ} FROM alert_history"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY recorded_at DESC, id DESC"
        if query.limit is not None:
            sql += f" LIMIT {int(query.limit)}"
        return [
            StoredAlert(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], orjson.loads(r[8]))
            for r in self._select(sql, args)
        ]

    def drop_expired(self, before: float) -> int:
        conn = self._connect()
        try:
            with conn:
                n = conn.execute("DELETE FROM cold_events WHERE ts < ?", (before,)).rowcount
                n += conn.execute(
                    "DELETE FROM alert_history WHERE recorded_at < ?", (before,)
                ).rowcount
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"{self.shown_url}: {exc}") from exc
        return int(n)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
