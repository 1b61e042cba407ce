"""Questions asked of the cold store, and the times they are asked with: pure code.

>>> parse_when("15m", now=1_700_000_000.0)
1699999100.0
>>> parse_when("2026-11-26T04:00:00Z", now=0.0)
1795665600.0
>>> EventQuery(session="s-1").where_clauses()
(['session_id = ?'], ['s-1'])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

__all__ = [
    "AlertQuery",
    "EventQuery",
    "FollowCursor",
    "StoredAlert",
    "StoredEvent",
    "parse_when",
]

_RELATIVE: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_when(text: str, *, now: float) -> float:
    """Epoch seconds of ``text``: a duration ago (``30s``, ``15m``, ``2h``, ``7d``, ``1w``), an
    ISO 8601 time (without a zone: UTC), or epoch seconds.

    Raises
    ------
    ValueError
        Naming the text and the forms accepted.
    """
    match = _RELATIVE.match(text)
    if match:
        return now - float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r}: not a time; use an ISO time (2026-11-26T04:00:00Z), epoch seconds, "
            "or a duration ago (30s, 15m, 2h, 7d, 1w)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _between(
    column: str, since: float | None, until: float | None, where: list[str], args: list[Any]
) -> None:
    """``since <= column < until``, for the bounds that are set."""
    if since is not None:
        where.append(f"{column} >= ?")
        args.append(since)
    if until is not None:
        where.append(f"{column} < ?")
        args.append(until)


def _in(column: str, values: tuple[str, ...], where: list[str], args: list[Any]) -> None:
    if len(values) == 1:
        where.append(f"{column} = ?")
    else:
        where.append(f"{column} IN ({', '.join('?' * len(values))})")
    args.extend(values)


@dataclass(frozen=True, slots=True)
class EventQuery:
    """Which stored events to return: every set filter must match (a tuple matches any of its
    values); times are epoch seconds, ``since`` inclusive, ``until`` exclusive.

    ``after_id`` returns only rows stored after the row of that id (to follow the store);
    ``limit`` caps the rows (newest first, or oldest first with ``after_id``).
    """

    session: str | None = None
    user: str | None = None
    trace_id: str | None = None
    types: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    since: float | None = None
    until: float | None = None
    after_id: int | None = None
    limit: int | None = 100

    def where_clauses(self) -> tuple[list[str], list[Any]]:
        """The SQL conditions (``?`` placeholders, times in epoch seconds) and their arguments;
        a backend rewrites placeholders and time columns as it needs."""
        where: list[str] = []
        args: list[Any] = []
        for column, value in (
            ("session_id", self.session),
            ("user_id", self.user),
            ("trace_id", self.trace_id),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        for column, values in (
            ("type", self.types),
            ("service", self.services),
            ("level", tuple(v.upper() for v in self.levels)),
        ):
            if values:
                _in(column, values, where, args)
        _between("ts", self.since, self.until, where, args)
        if self.after_id is not None:
            where.append("id > ?")
            args.append(self.after_id)
        return where, args


@dataclass(frozen=True, slots=True)
class AlertQuery:
    """Which alert transitions to return (newest first): by series (name or ``name{labels}``),
    detector, ``service`` label, transition kind, time recorded (epoch seconds)."""

    series: str | None = None
    detector: str | None = None
    service: str | None = None
    transitions: tuple[str, ...] = ()
    since: float | None = None
    until: float | None = None
    limit: int | None = 100

    def where_clauses(self) -> tuple[list[str], list[Any]]:
        """The SQL conditions and arguments, as :meth:`EventQuery.where_clauses`.

        >>> AlertQuery(series="cpu", since=5.0).where_clauses()
        (['(series = ? OR series_id = ?)', 'recorded_at >= ?'], ['cpu', 'cpu', 5.0])
        """
        where: list[str] = []
        args: list[Any] = []
        if self.series is not None:
            where.append("(series = ? OR series_id = ?)")
            args.extend((self.series, self.series))
        for column, value in (("detector", self.detector), ("service", self.service)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if self.transitions:
            _in("transition", self.transitions, where, args)
        _between("recorded_at", self.since, self.until, where, args)
        return where, args


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as read back: its store id, time (epoch s), main fields, the original event
    (``event``: every field as it came) and its origin."""

    id: int
    ts: float
    type: str
    level: str
    service: str
    message: str
    session_id: str | None
    user_id: str | None
    trace_id: str | None
    event: dict[str, Any]
    topic: str
    partition: int
    offset: int
    index: int


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert transition as read back (``alert``: the alerts-topic record as it came)."""

    id: int
    recorded_at: float
    transition: str
    series_id: str
    detector: str
    service: str | None
    severity: str
    summary: str
    alert: dict[str, Any]


class FollowCursor:
    """Where ``kestrel logs --follow`` is: which ids to ask for next, and which rows are new.

    Ids come from one sequence, but each worker's cold store writes in its own transaction, so
    rows commit out of id order: a row may appear after a row of a higher id was read. The
    cursor therefore asks again from the highest id read ``settle_seconds`` ago or more (a row
    commits within its write's transaction, well under that), and :meth:`fresh` drops the rows
    it has already returned. A poll that comes back full (``limit`` rows: a burst, or many
    rows within the settle time) moves the cursor past all it returned, so following keeps up,
    at the price of that guarantee for rows committed late during the burst.

    >>> times = iter([0.0, 1.0, 40.0, 41.0])
    >>> cursor = FollowCursor(last_id=10, clock=lambda: next(times), limit=4)
    >>> [r.id for r in cursor.fresh([_row(12), _row(14)])], cursor.after_id
    ([12, 14], 10)
    >>> [r.id for r in cursor.fresh([_row(12), _row(13), _row(14)])]  # 13 committed late
    [13]
    >>> _ = cursor.fresh([])  # 40 s later: everything read before has settled
    >>> cursor.after_id
    14
    >>> [r.id for r in cursor.fresh([_row(i) for i in (15, 16, 17, 18)])], cursor.after_id
    ([15, 16, 17, 18], 18)
    """

    def __init__(
        self,
        last_id: int,
        clock: Callable[[], float],
        settle_seconds: float = 10.0,
        limit: int = 20_000,
    ) -> None:
        self._floor = last_id
        self._clock = clock
        self._settle = settle_seconds
        self.limit = limit
        self._recent: dict[int, float] = {}  # ids returned within the settle time: when

    @property
    def after_id(self) -> int:
        """Ask for the rows above this id (at most :attr:`limit` of them, oldest first)."""
        return self._floor

    def fresh(self, rows: Sequence[StoredEvent]) -> list[StoredEvent]:
        """The rows of a poll not returned before, in order; then move the floor up to the
        highest id returned ``settle_seconds`` ago or more (or all, after a full poll)."""
        now = self._clock()
        recent = self._recent
        out = [r for r in rows if r.id > self._floor and r.id not in recent]
        for row in out:
            recent[row.id] = now
        if len(rows) >= self.limit:
            settled = list(recent)
        else:
            settled = [i for i, seen in recent.items() if now - seen >= self._settle]
        if settled:
            self._floor = max(self._floor, *settled)
            for i in [i for i in recent if i <= self._floor]:
                del recent[i]
        return out


def _row(row_id: int) -> StoredEvent:
    """A stored event with only an id (for the examples)."""
    return StoredEvent(row_id, 0.0, "t", "INFO", "s", "", None, None, None, {}, "t", 0, 0, 0)
