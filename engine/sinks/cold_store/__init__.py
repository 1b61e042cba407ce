"""The cold store: cold log events and alert history, kept in SQLite or PostgreSQL.

:func:`open_store` picks the backend by URL. The rows (:mod:`~engine.sinks.cold_store.rows`)
and queries (:mod:`~engine.sinks.cold_store.query`) are pure; the backends
(:mod:`~engine.sinks.cold_store.sqlite`, :mod:`~engine.sinks.cold_store.postgres`) implement
:class:`~engine.sinks.cold_store.base.ColdStore`. The consumer that fills the store from Kafka is
:mod:`engine.runtime.cold_store`.
"""

from __future__ import annotations

from engine.config import redact_url
from engine.sinks.cold_store.base import ColdStore, StoreError, StoreUnavailable, Written
from engine.sinks.cold_store.query import (
    AlertQuery,
    EventQuery,
    FollowCursor,
    StoredAlert,
    StoredEvent,
    parse_when,
)
from engine.sinks.cold_store.rows import AlertRow, EventRow, Origin, alert_row, event_row

__all__ = [
    "AlertQuery",
    "AlertRow",
    "ColdStore",
    "EventQuery",
    "EventRow",
    "FollowCursor",
    "Origin",
    "StoreError",
    "StoreUnavailable",
    "StoredAlert",
    "StoredEvent",
    "Written",
    "alert_row",
    "event_row",
    "open_store",
    "parse_when",
]


def open_store(url: str, *, writers: int = 1) -> ColdStore:
    """The store at ``url``: ``sqlite:///path`` or ``postgresql://...`` (``postgres://``).

    Nothing connects until the store is first used. ``writers`` is how many connections a large
    batch is written over at once (PostgreSQL; SQLite has one writer).

    >>> open_store("sqlite:////tmp/x/cold.db").shown_url
    'sqlite:////tmp/x/cold.db'
    >>> open_store("postgresql://app:hunter2@db:5432/kestrel").shown_url
    'postgresql://app:<redacted>@db:5432/kestrel'

    Raises
    ------
    StoreError
        For any other scheme.
    """
    if url.startswith("sqlite:///"):
        from engine.sinks.cold_store.sqlite import SQLiteStore

        return SQLiteStore(url.removeprefix("sqlite:///") or "cold-store.db")
    if url.startswith(("postgresql://", "postgres://")):
        from engine.sinks.cold_store.postgres import PostgresStore

        return PostgresStore(url, redact_url(url), writers=writers)
    raise StoreError(f"{redact_url(url)}: the cold store's url must be sqlite:/// or postgresql://")
