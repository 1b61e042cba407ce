"""Tumbling event-time windows that count events and errors, with allowed lateness.

Windows follow the events' own timestamps: a backfill carrying an hour of timestamps closes an
hour of windows. A window ``[start, start + size)`` closes once the watermark (the newest event
time seen, advanced by wall-clock time while the source is idle) passes ``end + lateness``.
Events for a window that has closed, or that the watermark has passed by ``end + lateness``, are
*late*: :meth:`WindowCounter.add` refuses them so the caller can count them. Windows with no
events between two busy ones close as empty windows (a traffic drop is a signal), at most
``max_empty`` in a row.

>>> w = WindowCounter(size=60.0, lateness=0.0)
>>> [w.add(t, err) for t, err in ((0.0, False), (30.0, True), (61.0, False))]
[True, True, True]
>>> w.advance()
[ClosedWindow(start=0.0, end=60.0, total=2, errors=1)]
>>> w.add(59.0, False)  # its window has closed
False
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["ClosedWindow", "WindowCounter"]


@dataclass(frozen=True, slots=True)
class ClosedWindow:
    """Counts of one closed window; ``start``/``end`` in epoch seconds."""

    start: float
    end: float
    total: int
    errors: int


class WindowCounter:
    """Per-source tumbling windows (see module docstring).

    Parameters
    ----------
    size:
        Window length in seconds.
    lateness:
        How long after its end (in event time) a window accepts late events, in seconds.
    max_empty:
        Most empty windows emitted in a row after a gap.
    """

    __slots__ = ("_counts", "_empty_run", "_next", "lateness", "max_empty", "size", "watermark")

    def __init__(self, size: float, lateness: float, max_empty: int = 60) -> None:
        self.size = size
        self.lateness = lateness
        self.max_empty = max_empty
        self.watermark = -math.inf
        self._counts: dict[float, list[int]] = {}  # window start -> [total, errors]
        self._next: float | None = None  # windows starting before this have closed
        self._empty_run = 0  # empty windows emitted since the last event

    def add(self, ts: float, is_error: bool) -> bool:
        """Count one event at event time ``ts``; ``False`` (not counted) if it is too late."""
        start = ts - ts % self.size
        if self._next is not None and start < self._next:
            return False
        if start + self.size + self.lateness <= self.watermark:
            return False  # due to close already (no window may have closed yet)
        counts = self._counts.get(start)
        if counts is None:
            counts = self._counts[start] = [0, 0]
        counts[0] += 1
        if is_error:
            counts[1] += 1
        if ts > self.watermark:
            self.watermark = ts
        self._empty_run = 0
        return True

    def advance(self, idle_seconds: float = 0.0) -> list[ClosedWindow]:
        """Close every window the watermark (plus ``idle_seconds``) has passed, oldest first."""
        if self._next is None and not self._counts:
            return []
        self.watermark += idle_seconds
        limit = self.watermark - self.lateness
        closed: list[ClosedWindow] = []
        start = self._next if self._next is not None else min(self._counts)
        while start + self.size <= limit:
            counts = self._counts.pop(start, None)
            if counts is not None:
                closed.append(ClosedWindow(start, start + self.size, counts[0], counts[1]))
                self._empty_run = 0
            elif self._empty_run < self.max_empty:
                closed.append(ClosedWindow(start, start + self.size, 0, 0))
                self._empty_run += 1
            elif self._counts:
                start = min(self._counts)  # skip the rest of a long gap
                continue
            else:
                start = limit - limit % self.size
                break
            start += self.size
        self._next = start
        return closed

    @property
    def next_close_at(self) -> float:
        """Watermark at which :meth:`advance` will close the next window (``inf`` if none open)."""
        if self._next is None:
            return min(self._counts) + self.size + self.lateness if self._counts else math.inf
        return self._next + self.size + self.lateness

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable state."""
        return {
            "wm": None if self.watermark == -math.inf else self.watermark,
            "next": self._next,
            "counts": [[s, c[0], c[1]] for s, c in self._counts.items()],
            "empty_run": self._empty_run,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`to_state` returned."""
        wm = state["wm"]
        self.watermark = -math.inf if wm is None else float(wm)
        self._next = state["next"]
        self._counts = {float(s): [int(t), int(e)] for s, t, e in state["counts"]}
        self._empty_run = int(state["empty_run"])
