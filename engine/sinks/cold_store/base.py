"""The cold store's one interface, its errors, and the choice of backend by URL.

A :class:`ColdStore` is synchronous (the consumer calls it in a thread, the CLI directly) and
owned by one thread at a time. :meth:`ColdStore.write` returns once the rows are durable
(committed); rows whose origin is already stored are skipped, so writing the same rows again is
harmless. :meth:`ColdStore.submit` starts a write and returns its future, so that a caller can
prepare the next batch (or have up to :attr:`ColdStore.writers` written at once) while the
database works; the rows are durable when the future is done. Errors::

    StoreError                 anything the store cannot do
     └── StoreUnavailable      the database cannot be reached now (try again later)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from engine.sinks.cold_store.query import AlertQuery, EventQuery, StoredAlert, StoredEvent
from engine.sinks.cold_store.rows import AlertRow, EventRow

__all__ = ["ColdStore", "StoreError", "StoreUnavailable", "Written"]


class StoreError(Exception):
    """The cold store failed (a bad URL, a schema newer than this Kestrel, a bad query)."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or refused the write for now; trying later may work."""


@dataclass(frozen=True, slots=True)
class Written:
    """What one :meth:`ColdStore.write` stored: new event and alert rows (duplicates not
    counted)."""

    events: int = 0
    alerts: int = 0


class ColdStore(ABC):
    """Where cold events and alert history are kept (SQLite or PostgreSQL).

    ``url`` is shown redacted (:attr:`shown_url`) in logs and errors.
    """

    #: The backend's name (a bounded metric label).
    backend: str = "store"
    #: How many writes :meth:`submit` runs at once (each over a connection of its own).
    writers: int = 1

    def __init__(self, shown_url: str) -> None:
        self.shown_url = shown_url

    @abstractmethod
    def migrate(self) -> list[int]:
        """Apply the schema migrations not applied yet, in order; return their versions."""

    @abstractmethod
    def schema_version(self) -> int:
        """The newest migration applied (0: none)."""

    @abstractmethod
    def write(self, events: Sequence[EventRow], alerts: Sequence[AlertRow]) -> Written:
        """Store the rows in one transaction, skipping those whose origin is stored already;
        return once committed.

        Raises
        ------
        StoreUnavailable
            The database cannot be reached; nothing was written.
        """

    def submit(self, events: Sequence[EventRow], alerts: Sequence[AlertRow]) -> Future[Written]:
        """Start :meth:`write` of the rows; the future holds what it returns (or its
        :class:`StoreError`), and the rows are durable once it is done. Writes submitted
        together commit independently, in any order. This default writes before returning."""
        future: Future[Written] = Future()
        try:
            future.set_result(self.write(events, alerts))
        except StoreError as exc:
            future.set_exception(exc)
        return future

    @abstractmethod
    def query_events(self, query: EventQuery) -> list[StoredEvent]:
        """The stored events ``query`` selects: newest first, or in storing order with
        ``after_id``."""

    @abstractmethod
    def alert_history(self, query: AlertQuery) -> list[StoredAlert]:
        """The alert transitions ``query`` selects, newest first."""

    @abstractmethod
    def drop_expired(self, before: float) -> int:
        """Remove what is older than ``before`` (epoch seconds); return how many tables or
        rows went (PostgreSQL: whole monthly partitions whose every row is older)."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection (a later call reconnects)."""
