"""The production cold store: PostgreSQL through psycopg 3.

Both tables are partitioned by month on their time column (``cold_events.ts``, the event's
time; ``alert_history.recorded_at``, the alert record's Kafka time), with indexes on time, type,
service, session, user and trace id (events) and series, detector, service (alerts). A month's
partition (``cold_events_p2026_11``) is created when its first row comes; retention drops whole
partitions once every row in them is older than the cutoff.

A write copies the rows straight into the table (``COPY`` in binary format: the fastest way
in; the server parses no text for times, numbers and ids). When some origin is stored already (a
replay after a crash or an outage) the unique key refuses the copy; the write then copies them
into a temporary staging table and moves them with ``INSERT ... SELECT ... ON CONFLICT DO
NOTHING``, in the same transaction: a row whose Kafka origin is stored already is skipped (the
unique key holds the partition column too, as PostgreSQL requires; an origin always decodes to
the same time).

Batches are written by a pool of ``writers`` connections (:meth:`PostgresStore.submit`), so
the consumer can have several in flight at once, each in a transaction of its own; it commits a
batch's offsets once that batch and every earlier one are durable.

Most of a write's time is the server's upkeep of the indexes (seven per event row). Migration 2
made it cheaper, each change measured as the server's CPU time per row (about 40 % less in all):

- the indexed id columns of ``cold_events`` (type, service, session, user, trace id and the
  origin's source and topic) have the ``"C"`` collation: their b-trees compare bytes instead of
  calling the locale's collation (equal values are equal in either, so lookups find the same
  rows);
- session and trace ids have hash indexes instead of b-trees: a new row goes straight to its
  hash bucket, not down a b-tree at a random place. Lookups by session or trace are equality
  lookups of few rows (a session's or a trace's events), sorted by time after the lookup. User,
  type, service and time keep (ordered) b-trees: a user may have millions of events;
- ``context`` and ``performance_data`` are ``json`` (checked and kept as text) rather than
  ``jsonb`` (converted to a binary tree on the way in): about 12 % less.

Migration 4 took about 15 % more off (server CPU per row 20.6-23.4 -> 17.5-20.6 us, four
rounds in turn on a loaded machine):

- ``event``, ``context`` and ``performance_data`` are ``text``: the server no longer parses
  every row's JSON three times on the way in. Kestrel writes them (compact JSON, always valid)
  and reads ``event`` back as ``event::json``; in SQL, ``context::json ->> 'model'``;
- the origin's unique key lists its fixed-width columns first (partition, offset, index, time,
  then topic and source): a b-tree compares fixed-width columns without walking the variable
  ones before them, and each new row's key is compared a dozen times on its way down.

Migration 3 adds a block-range (BRIN) index on ``cold_events.id`` for ``kestrel logs --follow``,
which asks for the rows above the last id it saw: ids grow with the table, so the newest block
ranges answer it, where a scan of every partition would read the whole store each poll.
"""

from __future__ import annotations

import calendar
import contextlib
import queue
import time
from collections.abc import Iterable, Iterator, Sequence, Set
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final

import psycopg
from psycopg import errors as pg_errors

from engine.sinks.cold_store.base import ColdStore, StoreError, StoreUnavailable, Written
from engine.sinks.cold_store.query import AlertQuery, EventQuery, StoredAlert, StoredEvent
from engine.sinks.cold_store.rows import ALERT_COLUMNS, EVENT_COLUMNS, AlertRow, EventRow

__all__ = ["MIGRATIONS", "PostgresStore", "month_of", "partition_name", "pg_jsonb", "pg_time"]

_EVENT_INDEXES: Final = (
    ("ts", "ts"),
    ("type", "type, ts"),
    ("service", "service, ts"),
    ("session", "session_id, ts"),
    ("user", "user_id, ts"),
    ("trace", "trace_id, ts"),
)
_ALERT_INDEXES: Final = (
    ("time", "recorded_at"),
    ("series", "series_id, recorded_at"),
    ("name", "series, recorded_at"),
    ("detector", "detector, recorded_at"),
    ("service", "service, recorded_at"),
)

#: The text columns of ``cold_events`` compared byte-wise (migration 2).
_C_COLUMNS: Final = ("type", "service", "session_id", "user_id", "trace_id", "source", "topic")
#: The name PostgreSQL gave migration 1's unique key on the origin (replaced by migration 4).
_ORIGIN_KEY_1: Final = "cold_events_source_topic_kafka_partition_kafka_offset_batch_key"

#: Schema migrations by version: each is applied once, in order, in one transaction.
MIGRATIONS: Final[tuple[tuple[int, tuple[str, ...]], ...]] = (
    (
        1,
        (
            "CREATE SEQUENCE cold_events_id_seq",
            """CREATE TABLE cold_events (
                id bigint NOT NULL DEFAULT nextval('cold_events_id_seq'),
                ts timestamptz NOT NULL,
                type text NOT NULL,
                level text NOT NULL,
                service text NOT NULL,
                message text NOT NULL,
                session_id text,
                user_id text,
                trace_id text,
                operation text,
                duration_ms double precision,
                context jsonb,
                performance_data jsonb,
                event json NOT NULL,
                source text NOT NULL,
                topic text NOT NULL,
                kafka_partition integer NOT NULL,
                kafka_offset bigint NOT NULL,
                batch_index integer NOT NULL,
                stored_at timestamptz NOT NULL DEFAULT now(),
                UNIQUE (source, topic, kafka_partition, kafka_offset, batch_index, ts)
            ) PARTITION BY RANGE (ts)""",
            *(
                f"CREATE INDEX cold_events_{name} ON cold_events ({cols})"
                for name, cols in _EVENT_INDEXES
            ),
            "CREATE SEQUENCE alert_history_id_seq",
            """CREATE TABLE alert_history (
                id bigint NOT NULL DEFAULT nextval('alert_history_id_seq'),
                recorded_at timestamptz NOT NULL,
                transition text NOT NULL,
                fingerprint text NOT NULL,
                series text NOT NULL,
                series_id text NOT NULL,
                detector text NOT NULL,
                service text,
                severity text NOT NULL,
                status text NOT NULL,
                value double precision,
                expected double precision,
                score double precision,
                started_at double precision NOT NULL,
                ended_at double precision,
                summary text NOT NULL,
                repeat integer NOT NULL,
                labels jsonb NOT NULL,
                alert json NOT NULL,
                source text NOT NULL,
                topic text NOT NULL,
                kafka_partition integer NOT NULL,
                kafka_offset bigint NOT NULL,
                stored_at timestamptz NOT NULL DEFAULT now(),
                UNIQUE (source, topic, kafka_partition, kafka_offset, recorded_at)
            ) PARTITION BY RANGE (recorded_at)""",
            *(
                f"CREATE INDEX alert_history_{name} ON alert_history ({cols})"
                for name, cols in _ALERT_INDEXES
            ),
        ),
    ),
    (
        2,
        (  # faster writes (see the module docstring)
            "DROP INDEX cold_events_session",
            "DROP INDEX cold_events_trace",
            "ALTER TABLE cold_events "
            + ", ".join(f'ALTER COLUMN {col} TYPE text COLLATE "C"' for col in _C_COLUMNS)
            + ", ALTER COLUMN context TYPE json, ALTER COLUMN performance_data TYPE json",
            "CREATE INDEX cold_events_session ON cold_events USING hash (session_id)",
            "CREATE INDEX cold_events_trace ON cold_events USING hash (trace_id)",
        ),
    ),
    (
        3,
        (  # kestrel logs --follow asks for ids above the last seen: a block-range index (ids
            # grow with the table) answers that from the newest blocks and costs writes little
            "CREATE INDEX cold_events_id ON cold_events USING brin (id)",
        ),
    ),
    (
        4,
        (  # faster writes again (see the module docstring)
            "ALTER TABLE cold_events ALTER COLUMN event TYPE text, "
            "ALTER COLUMN context TYPE text, ALTER COLUMN performance_data TYPE text",
            f"ALTER TABLE cold_events DROP CONSTRAINT {_ORIGIN_KEY_1}",
            "ALTER TABLE cold_events ADD CONSTRAINT cold_events_origin "
            "UNIQUE (kafka_partition, kafka_offset, batch_index, ts, topic, source)",
        ),
    ),
)

#: Each partitioned table and its time column.
_TABLES: Final = {"cold_events": "ts", "alert_history": "recorded_at"}
#: Serialises migrations of concurrent workers (``pg_advisory_xact_lock``).
_MIGRATION_LOCK: Final = 0x6B657374  # "kest"
#: 2000-01-01 00:00 UTC in epoch seconds: a binary ``timestamptz`` counts microseconds from it.
_PG_EPOCH: Final = 946_684_800.0


def month_of(ts: float) -> tuple[int, int]:
    """The (year, month) in UTC of epoch seconds ``ts``.

    >>> month_of(1_700_000_000.0)
    (2023, 11)
    """
    t = time.gmtime(ts)
    return t.tm_year, t.tm_mon


def _next_month(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def partition_name(table: str, year: int, month: int) -> str:
    """The name of ``table``'s partition of one month.

    >>> partition_name("cold_events", 2026, 1)
    'cold_events_p2026_01'
    """
    return f"{table}_p{year:04d}_{month:02d}"


def _months(stamps: Iterable[float]) -> set[tuple[int, int]]:
    days = {int(ts // 86400) for ts in stamps}  # few distinct days per batch: few gmtime calls
    return {month_of(day * 86400.0) for day in days}


_FLOAT_COLUMNS: Final = frozenset(
    {"duration_ms", "value", "expected", "score", "started_at", "ended_at"}
)


def _binary_types(columns: Sequence[str], time_column: str, jsonb: Set[str]) -> list[str]:
    """The types psycopg writes each column's values as in a binary ``COPY``: what the server
    reads is the column type's binary form. A ``timestamptz`` is an int8 of microseconds since
    2000 (:func:`pg_time`); a ``jsonb`` (the columns ``jsonb``) is a version byte (1) and the
    JSON text (:func:`pg_jsonb`), written as bytea; a ``json`` is its text."""
    types = []
    for col in columns:
        if col == time_column or col == "kafka_offset":
            types.append("int8")
        elif col in _FLOAT_COLUMNS:
            types.append("float8")
        elif col in ("kafka_partition", "batch_index", "repeat"):
            types.append("int4")
        elif col in jsonb:
            types.append("bytea")
        else:
            types.append("text")
    return types


def pg_time(ts: float) -> int:
    """Epoch seconds ``ts`` as a binary ``timestamptz``: microseconds since 2000-01-01 UTC.

    >>> pg_time(946_684_800.0), pg_time(946_684_801.5)
    (0, 1500000)
    """
    return round((ts - _PG_EPOCH) * 1e6)


def pg_jsonb(text: str | None) -> bytes | None:
    """JSON ``text`` as a binary ``jsonb`` (format version 1, then the text).

    >>> pg_jsonb('{"a":1}'), pg_jsonb(None)
    (b'\\x01{"a":1}', None)
    """
    return None if text is None else b"\x01" + text.encode()


def _binary_rows(
    rows: Sequence[EventRow] | Sequence[AlertRow], at: int, jsonb: Sequence[int]
) -> Iterator[list[Any]]:
    """The values of ``rows`` for a binary ``COPY``: time ``at``, JSON at ``jsonb``."""
    for row in rows:
        values = _clean_values(row)
        values[at] = pg_time(values[at])
        for i in jsonb:
            values[i] = pg_jsonb(values[i])
        yield values


def _pg_where(where: Sequence[str], time_column: str) -> str:
    clauses = []
    for clause in where:
        if clause.startswith(time_column + " "):
            clause = clause.replace("?", "to_timestamp(%s)")
        clauses.append(clause.replace("?", "%s"))
    return (" WHERE " + " AND ".join(clauses)) if clauses else ""


class PostgresStore(ColdStore):
    """The cold store in the PostgreSQL database at ``url`` (``postgresql://...``).

    ``shown_url`` is the URL without its password, for logs and errors.
    """

    backend = "postgresql"

    def __init__(
        self, url: str, shown_url: str, *, connect_timeout_seconds: int = 5, writers: int = 1
    ) -> None:
        super().__init__(shown_url)
        self._url = url
        self.connect_timeout_seconds = connect_timeout_seconds
        self.writers = max(1, writers)
        #: Migrations, queries, partitions, retention: the owner's thread.
        self._conn: psycopg.Connection[Any] | None = None
        #: The writers' connections not in use (``None``: to be opened when next needed).
        self._idle: queue.SimpleQueue[psycopg.Connection[Any] | None] = queue.SimpleQueue()
        for _ in range(self.writers):
            self._idle.put(None)
        self._pool: ThreadPoolExecutor | None = None
        #: Set by a writer whose connection failed: the owner's may be as dead (a restart).
        self._reconnect = False
        self._partitions: set[str] = set()
        self._jsonb: dict[str, frozenset[str]] = {}

    def _open(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self._url, connect_timeout=self.connect_timeout_seconds)
        except psycopg.Error as exc:
            raise StoreUnavailable(f"{self.shown_url}: {_first_line(exc)}") from None

    def _connect(self) -> psycopg.Connection[Any]:
        if self._reconnect and self._conn is not None:
            self._reconnect = False
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        if self._conn is None or self._conn.closed:
            self._conn = self._open()
            self._partitions.clear()
            self._jsonb.clear()
        return self._conn

    def _failed(self, exc: psycopg.Error, what: str) -> StoreError:
        """Translate ``exc`` of the owner's connection, which is dropped (the next call
        reconnects; a writer's connection is dropped by its own failure)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()
        return _store_error(exc, f"{self.shown_url}: {what}")

    def schema_version(self) -> int:
        conn = self._connect()
        try:
            with conn.transaction():
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS kestrel_schema "
                    "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                )
                row = conn.execute("SELECT max(version) FROM kestrel_schema").fetchone()
        except psycopg.Error as exc:
            raise self._failed(exc, "schema version") from None
        return int(row[0] or 0) if row else 0

    def migrate(self) -> list[int]:
        self.schema_version()  # creates the version table
        conn = self._connect()
        newest = MIGRATIONS[-1][0]
        applied = []
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                row = conn.execute("SELECT max(version) FROM kestrel_schema").fetchone()
                current = int(row[0] or 0) if row else 0
                if current > newest:
                    raise StoreError(
                        f"{self.shown_url}: schema version {current} is newer than this "
                        f"Kestrel's ({newest}); upgrade Kestrel"
                    )
                for version, statements in MIGRATIONS:
                    if version <= current:
                        continue
                    for statement in statements:
                        conn.execute(statement)
                    conn.execute("INSERT INTO kestrel_schema (version) VALUES (%s)", (version,))
                    applied.append(version)
        except psycopg.Error as exc:
            raise self._failed(exc, "migration") from None
        if applied:
            self.close()  # what the connection knows of the schema (types, staging) is old
        return applied

    def _ensure_partitions(self, table: str, months: set[tuple[int, int]]) -> None:
        conn = self._connect()
        for year, month in sorted(months):
            name = partition_name(table, year, month)
            if name in self._partitions:
                continue
            ny, nm = _next_month(year, month)
            try:
                with conn.transaction():
                    conn.execute(
                        f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {table} "
                        f"FOR VALUES FROM ('{year:04d}-{month:02d}-01 00:00:00+00') "
                        f"TO ('{ny:04d}-{nm:02d}-01 00:00:00+00')"
                    )
            except (pg_errors.DuplicateTable, pg_errors.UniqueViolation):
                pass  # another writer made it at the same moment
            self._partitions.add(name)

    def write(self, events: Sequence[EventRow], alerts: Sequence[AlertRow]) -> Written:
        return self.submit(events, alerts).result()

    def submit(self, events: Sequence[EventRow], alerts: Sequence[AlertRow]) -> Future[Written]:
        """Write the rows in one transaction over a writer's connection of its own, in the
        store's thread pool: up to :attr:`writers` batches are written at once (the server's
        work per row is most of a write's cost, and each connection has a server process).
        Their months' partitions are made first, in the caller's thread."""
        future: Future[Written] = Future()
        if not events and not alerts:
            future.set_result(Written())
            return future
        try:
            if events:
                self._ensure_partitions("cold_events", _months(r.ts for r in events))
            if alerts:
                self._ensure_partitions("alert_history", _months(r.recorded_at for r in alerts))
            conn = self._connect()
            jsonb = (
                self._jsonb_columns(conn, "cold_events"),
                self._jsonb_columns(conn, "alert_history"),
            )
        except psycopg.Error as exc:
            future.set_exception(self._failed(exc, "write"))
            return future
        except StoreError as exc:
            future.set_exception(exc)
            return future
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.writers, "kestrel-cold-store")
        return self._pool.submit(self._write_batch, events, alerts, jsonb)

    def _write_batch(
        self,
        events: Sequence[EventRow],
        alerts: Sequence[AlertRow],
        jsonb: tuple[frozenset[str], frozenset[str]],
    ) -> Written:
        """One batch over an idle writer's connection (opened when it has none)."""
        conn = self._idle.get()
        try:
            if conn is None or conn.closed:
                conn = None
                conn = self._open()
            with conn.transaction():
                stored_events = self._copy(conn, "cold_events", EVENT_COLUMNS, events, jsonb[0])
                stored_alerts = self._copy(conn, "alert_history", ALERT_COLUMNS, alerts, jsonb[1])
        except psycopg.Error as exc:
            assert conn is not None  # (_open raises StoreUnavailable, not psycopg.Error)
            with contextlib.suppress(psycopg.Error):
                conn.close()
            conn = None
            error = _store_error(exc, f"{self.shown_url}: write")
            self._reconnect = isinstance(error, StoreUnavailable)
            raise error from None
        finally:
            self._idle.put(conn)
        return Written(stored_events, stored_alerts)

    def _jsonb_columns(self, conn: psycopg.Connection[Any], table: str) -> frozenset[str]:
        """The ``jsonb`` columns of ``table`` (their binary form differs from ``json``'s; the
        schema may be older than this Kestrel's when ``migrate_on_start`` is off)."""
        if table not in self._jsonb:
            with conn.transaction():  # (else the connection would stay in one)
                rows = conn.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass "
                    "AND attnum > 0 AND NOT attisdropped AND atttypid = 'jsonb'::regtype",
                    (table,),
                ).fetchall()
            self._jsonb[table] = frozenset(str(r[0]) for r in rows)
        return self._jsonb[table]

    def _copy(
        self,
        conn: psycopg.Connection[Any],
        table: str,
        columns: Sequence[str],
        rows: Sequence[EventRow] | Sequence[AlertRow],
        jsonb_columns: frozenset[str],
    ) -> int:
        """Copy ``rows`` into ``table`` (``jsonb_columns``: its ``jsonb`` columns): straight in
        (the common case, new rows only), or, when some origin is stored already (a replay),
        through the staging table, skipping those."""
        if not rows:
            return 0
        cols = ", ".join(columns)
        types = _binary_types(columns, _TABLES[table], jsonb_columns)
        at = columns.index(_TABLES[table])
        jsonb = [i for i, col in enumerate(columns) if col in jsonb_columns]
        try:
            with conn.transaction(), conn.cursor() as cur:  # a savepoint in the write's transaction
                with cur.copy(f"COPY {table} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.set_types(types)  # no lookup per value
                    for values in _binary_rows(rows, at, jsonb):
                        copy.write_row(values)
                return len(rows)
        except pg_errors.UniqueViolation:
            pass  # a replay: the savepoint is rolled back; skip what is stored already
        # The staging table has the table's column types (no constraints, no defaults).
        conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS stage_{table} ON COMMIT DELETE ROWS "
            f"AS SELECT {cols} FROM {table} WITH NO DATA"
        )
        with conn.cursor() as cur:
            with cur.copy(f"COPY stage_{table} ({cols}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(types)
                for values in _binary_rows(rows, at, jsonb):
                    copy.write_row(values)
            cur.execute(
                f"INSERT INTO {table} ({cols}) SELECT {cols} FROM stage_{table} "
                "ON CONFLICT DO NOTHING"
            )
            count = max(0, cur.rowcount)
            cur.execute(f"TRUNCATE stage_{table}")
            return count

    def _select(self, sql: str, args: Sequence[Any]) -> list[Any]:
        conn = self._connect()
        try:
            with conn.transaction():
                return conn.execute(sql, args).fetchall()
        except psycopg.Error as exc:
            raise self._failed(exc, "query") from None

    def query_events(self, query: EventQuery) -> list[StoredEvent]:
        where, args = query.where_clauses()
        order = "id ASC" if query.after_id is not None else "ts DESC, id DESC"
        sql = (
            "SELECT id, extract(epoch FROM ts)::double precision, type, level, service, "
            "message, session_id, user_id, trace_id, event::json, topic, kafka_partition, "
            f"kafka_offset, batch_index FROM cold_events{_pg_where(where, 'ts')} ORDER BY {order}"
        )
        if query.limit is not None:
            sql += f" LIMIT {int(query.limit)}"
        return [StoredEvent(*r) for r in self._select(sql, args)]

    def alert_history(self, query: AlertQuery) -> list[StoredAlert]:
        where, args = query.where_clauses()
        sql = (
            "SELECT id, extract(epoch FROM recorded_at)::double precision, transition, "
            "series_id, detector, service, severity, summary, alert FROM alert_history"
            f"{_pg_where(where, 'recorded_at')} ORDER BY recorded_at DESC, id DESC"
        )
        if query.limit is not None:
            sql += f" LIMIT {int(query.limit)}"
        return [StoredAlert(*r) for r in self._select(sql, args)]

    def partitions(self) -> list[str]:
        """The names of the monthly partitions of both tables, sorted."""
        rows = self._select(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname IN ('cold_events', 'alert_history') ORDER BY c.relname",
            (),
        )
        return [str(r[0]) for r in rows]

    def drop_expired(self, before: float) -> int:
        dropped = 0
        conn = self._connect()
        for name in self.partitions():
            _, _, suffix = name.rpartition("_p")
            try:
                year, month = (int(x) for x in suffix.split("_"))
            except ValueError:
                continue  # not one of ours
            ny, nm = _next_month(year, month)
            if calendar.timegm((ny, nm, 1, 0, 0, 0)) > before:
                continue
            try:
                with conn.transaction():
                    conn.execute(f"DROP TABLE IF EXISTS {name}")
            except psycopg.Error as exc:
                raise self._failed(exc, f"drop {name}") from None
            self._partitions.discard(name)
            dropped += 1
        return dropped

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()  # (waits for the writes under way)
            self._pool = None
        conns = [self._conn]
        for _ in range(self.writers):
            conns.append(self._idle.get())
            self._idle.put(None)
        self._conn = None
        for conn in conns:
            if conn is not None:
                with contextlib.suppress(psycopg.Error):
                    conn.close()


def _store_error(exc: psycopg.Error, message: str) -> StoreError:
    """``exc`` as the store's error: :class:`StoreUnavailable` when trying again may work."""
    text = f"{message}: {_first_line(exc)}"
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return StoreUnavailable(text)
    return StoreError(text)


def _clean_values(row: EventRow | AlertRow) -> list[Any]:
    """The row's values for PostgreSQL. Every text of a row comes from its original JSON
    (``event`` or ``alert``, where a NUL is written ``\\u0000``), so one search there tells
    whether any value needs :func:`_without_nul`."""
    original = row.event if isinstance(row, EventRow) else row.alert
    if "\\u0000" in original:
        return _without_nul(row.values())
    return list(row.values())


def _without_nul(values: Sequence[Any]) -> list[Any]:
    r"""``values`` with NUL characters replaced by U+FFFD: PostgreSQL's text cannot hold them,
    nor jsonb their ``\u0000`` escape, and a row it refuses would stop the store for good.

    >>> _without_nul(("a\x00b", 1.5)) == ["a\ufffdb", 1.5]
    True
    >>> _without_nul(['{"m":"\\u0000"}']) == ['{"m":"\\ufffd"}']
    True
    """
    out = list(values)
    for i, value in enumerate(out):
        if type(value) is str and ("\x00" in value or "\\u0000" in value):
            out[i] = value.replace("\x00", "\ufffd").replace("\\u0000", "\\ufffd")
    return out


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
