"""Flap detection: an alert that keeps firing and resolving is notified once, then held.

Each accepted new state of an alert (firing, resolved, or a new incident) is a *transition*; a
repeat of the same state is not, and a record older than the last one is ignored. When
``threshold`` transitions fall within ``window_seconds``, a flapping *episode* begins (identified
by its start time). It lasts until the alert has made no transition for a whole window.

The dispatcher uses the episodes: at the first flush of an episode it notifies the alert once with
the annotation ``flapping=true``, then leaves the alert out of notifications; after the episode it
notifies the alert's state then once. Memory is bounded: at most ``threshold`` times per alert,
and alerts without a transition within the window are forgotten by :meth:`FlapDetector.prune`.

>>> from engine.model.alert import AlertStatus
>>> flaps = FlapDetector(window_seconds=600, threshold=4)
>>> for i, status in enumerate(["firing", "resolved"] * 2):
...     _ = flaps.record("fp", AlertStatus(status), started_at=100.0 * (i // 2), now=60.0 * i)
>>> flaps.flapping("fp", now=200.0), flaps.episode("fp", now=200.0)
(True, 180.0)
>>> flaps.flapping("fp", now=180.0 + 600)
False
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.model.alert import AlertStatus
from engine.notify.grouping import alert_order

__all__ = ["FlapDetector"]


@dataclass(slots=True)
class _History:
    order: tuple[float, int]  # alert_order of the last accepted state
    times: deque[float] = field(default_factory=deque)  # transition times, newest last
    episode: float | None = None  # start of the current flapping episode


class FlapDetector:
    """Counts the transitions of each alert and tells which alerts are flapping.

    Parameters
    ----------
    window_seconds
        Transitions are counted over this window, and an episode ends after a window without
        any (> 0).
    threshold
        Transitions within the window that start an episode (>= 2); 0 turns detection off.

    Raises
    ------
    ValueError
        On a bad parameter, naming it.
    """

    def __init__(self, window_seconds: float = 900.0, threshold: int = 4) -> None:
        if not window_seconds > 0:
            raise ValueError(f"window_seconds must be > 0, got {window_seconds}")
        if threshold != 0 and threshold < 2:
            raise ValueError(f"threshold must be 0 (off) or >= 2, got {threshold}")
        self.window_seconds = float(window_seconds)
        self.threshold = threshold
        self._alerts: dict[str, _History] = {}

    def __len__(self) -> int:
        """How many alerts it remembers."""
        return len(self._alerts)

    def record(self, fingerprint: str, status: AlertStatus, started_at: float, now: float) -> bool:
        """Take note of a state of an alert at ``now``; whether it was a transition.

        Parameters
        ----------
        fingerprint
            The alert's fingerprint.
        status, started_at
            Its state: a later incident or resolved-after-firing is a transition.
        now
            Wall-clock time of the record (epoch seconds).
        """
        order = alert_order(status, started_at)
        history = self._alerts.get(fingerprint)
        if history is None:
            history = self._alerts[fingerprint] = _History(order)
        elif order <= history.order:
            return False
        else:
            history.order = order
        if history.episode is not None and not self._in_episode(history, now):
            history.episode = None
        history.times.append(now)
        if self.threshold:
            while len(history.times) > self.threshold:
                history.times.popleft()
            recent = sum(1 for t in history.times if t > now - self.window_seconds)
            if history.episode is None and recent >= self.threshold:
                history.episode = now
        else:
            while len(history.times) > 1:
                history.times.popleft()
        return True

    def _in_episode(self, history: _History, now: float) -> bool:
        last = history.times[-1] if history.times else float("-inf")
        return history.episode is not None and now - last < self.window_seconds

    def episode(self, fingerprint: str, now: float) -> float | None:
        """Start (epoch seconds) of the alert's current flapping episode, or ``None``."""
        history = self._alerts.get(fingerprint)
        if history is None or not self._in_episode(history, now):
            return None
        return history.episode

    def flapping(self, fingerprint: str, now: float) -> bool:
        """Whether the alert is flapping at ``now``."""
        return self.episode(fingerprint, now) is not None

    def prune(self, now: float) -> int:
        """Forget alerts without a transition within the window; how many were forgotten.

        A forgotten alert's next record counts as one transition, which cannot start an episode
        on its own.
        """
        stale = [
            fp
            for fp, h in self._alerts.items()
            if not h.times or now - h.times[-1] >= self.window_seconds
        ]
        for fp in stale:
            del self._alerts[fp]
        return len(stale)

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable state; :meth:`load_state` restores it exactly."""
        return {
            "alerts": [
                {
                    "fingerprint": fp,
                    "order": list(h.order),
                    "times": list(h.times),
                    "episode": h.episode,
                }
                for fp, h in sorted(self._alerts.items())
            ]
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Replace what it remembers with ``state`` (from :meth:`to_state`)."""
        self._alerts = {}
        for item in state["alerts"]:
            started, rank = item["order"]
            episode = item["episode"]
            self._alerts[str(item["fingerprint"])] = _History(
                order=(float(started), int(rank)),
                times=deque(float(t) for t in item["times"]),
                episode=None if episode is None else float(episode),
            )

    @classmethod
    def from_state(
        cls, state: Mapping[str, Any], window_seconds: float = 900.0, threshold: int = 4
    ) -> FlapDetector:
        """A detector with these parameters that remembers what ``state`` holds."""
        detector = cls(window_seconds, threshold)
        detector.load_state(state)
        return detector
