"""The cap on how many series one worker tracks, and the self-alert that says it is being hit.

A label explosion (a user id in a label, one new series per event) would otherwise grow a
worker's memory without bound: every series has detector state, kept in the pipeline's cache or,
once evicted, in the changelog table's in-memory copy. ``worker.max_tracked_series`` caps the
states a worker holds in both places together. When a *new* series would go past it, the
:class:`~engine.core.pipeline.Pipeline` asks :meth:`SeriesLimit.admits`, which counts the event
as untracked (by state kind) and says no: the event gets no state and is not judged. Series
already tracked, in the cache or in the table, are judged as ever.

Being at the limit is reported three ways: the untracked counts (exported as
``kestrel_series_untracked_total``), a log line at most once a minute (:meth:`SeriesLimit.report`)
and an alert of its own on the synthetic series ``kestrel.series_limit``
(:meth:`SeriesLimit.tick`): it fires at the first tick that sees new untracked events, repeats
like any alert while they go on, and resolves once none has come for ``quiet_seconds``.

No clock here: the caller passes the wall clock to :meth:`~SeriesLimit.tick` and
:meth:`~SeriesLimit.report`.

>>> limit = SeriesLimit(2, stored=lambda: 1)  # one state already saved in the table
>>> limit.admits("m|cpu{host=a}", in_memory=0), limit.admits("m|cpu{host=b}", in_memory=1)
(True, False)
>>> limit.untracked
{'metric': 1, 'latency': 0, 'service': 0}
>>> limit.tick(1000.0).status.value
'firing'
>>> limit.tick(1000.0 + QUIET_SECONDS).status.value
'resolved'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Final

from msgspec.structs import replace

from detectors.base import Transition, Verdict
from engine.config import Config
from engine.core.tracking import AlertTracker
from engine.model.alert import Alert, Severity

__all__ = ["DETECTOR", "KINDS", "QUIET_SECONDS", "SERIES", "SeriesLimit"]

#: The synthetic series and detector name of the self-alert.
SERIES: Final = "kestrel.series_limit"
DETECTOR: Final = "series_limit"
#: State kinds by the prefix of their state key (see :mod:`engine.core.pipeline`).
KINDS: Final = {"m|": "metric", "p|": "latency", "l|": "service"}
#: Wall-clock seconds without a new untracked event before the self-alert resolves.
QUIET_SECONDS: Final = 300.0
#: At most one log line a minute.
REPORT_EVERY_SECONDS: Final = 60.0


class SeriesLimit:
    """The series cap of one worker, its untracked counts and its self-alert.

    Parameters
    ----------
    max_tracked:
        Most series states (metric series, latency series, services) tracked at once, in memory
        and in the table together (``worker.max_tracked_series``).
    stored:
        The number of states saved outside the pipeline's memory (the table's copies); called
        only when a new series would be created.
    labels:
        Labels of the self-alert, e.g. which worker it is.
    severity, repeat_interval:
        Of the self-alert, as for any alert (``repeat_interval`` in seconds, here wall clock).
    quiet_seconds:
        Wall-clock seconds without a new untracked event before the self-alert resolves.
    """

    def __init__(
        self,
        max_tracked: int,
        *,
        stored: Callable[[], int] = lambda: 0,
        labels: Mapping[str, str] | None = None,
        severity: Severity = Severity.WARNING,
        repeat_interval: float = 3600.0,
        quiet_seconds: float = QUIET_SECONDS,
    ) -> None:
        self.max_tracked = max_tracked
        self._stored = stored
        #: Events of new series not tracked because of the limit, by state kind (since start).
        self.untracked = dict.fromkeys(KINDS.values(), 0)
        self.quiet_seconds = quiet_seconds
        self._alert = AlertTracker(SERIES, dict(labels or {}), DETECTOR, severity, repeat_interval)
        self._seen = 0  # untracked total at the last tick
        self._from = 0  # untracked total when the firing incident started
        self._hit_at = -math.inf  # wall clock of the last tick that saw new untracked events
        self._reported = 0  # untracked total at the last log line
        self._reported_at = -math.inf

    @classmethod
    def for_config(
        cls,
        config: Config,
        *,
        stored: Callable[[], int] = lambda: 0,
        labels: Mapping[str, str] | None = None,
    ) -> SeriesLimit:
        """The limit ``config`` sets, its alert with the configured severity and repeat."""
        return cls(
            config.worker.max_tracked_series,
            stored=stored,
            labels=labels,
            severity=config.alerts.severity,
            repeat_interval=config.alerts.repeat_interval_seconds,
        )

    def admits(self, key: str, in_memory: int, events: int = 1) -> bool:
        """Whether a new state ``key`` may be created, ``in_memory`` states being held now.

        If not, its ``events`` (those of a batch that need it) are counted as untracked under
        its kind.
        """
        if in_memory + self._stored() < self.max_tracked:
            return True
        self.untracked[KINDS.get(key[:2], "metric")] += events
        return False

    @property
    def total(self) -> int:
        """Untracked events since start, all kinds."""
        return sum(self.untracked.values())

    def tick(self, now: float) -> Alert | None:
        """The self-alert transition at wall-clock time ``now`` (epoch seconds), if any.

        Call it periodically (the worker does every second).
        """
        total = self.total
        firing = self._alert.started_at is not None
        if total > self._seen:
            if not firing:
                self._from = self._seen
            self._seen, self._hit_at = total, now
            return self._made(None if firing else Transition.FIRED, now)  # None: maybe a repeat
        if firing and now - self._hit_at >= self.quiet_seconds:
            return self._made(Transition.RESOLVED, now)
        return None

    def _made(self, transition: Transition | None, now: float) -> Alert | None:
        firing = transition is not Transition.RESOLVED
        n = self._seen - self._from  # untracked events in this incident
        # value: untracked events of this incident; expected: none; score: 1 while firing.
        verdict = Verdict(float(firing), 0.0, firing, firing, transition)
        alert = self._alert.observe(verdict, float(n), now)
        if alert is None:
            return None
        if firing:
            summary = (
                f"{SERIES}: this worker tracks its limit of {self.max_tracked:,} series "
                f"(worker.max_tracked_series): {n:,} events of new series not tracked"
            )
        else:
            summary = (
                f"{SERIES}: no new series refused for {self.quiet_seconds:.0f} s "
                f"({n:,} events were not tracked)"
            )
        return replace(alert, summary=summary)

    def report(self, now: float) -> str | None:
        """A log line on new untracked events, at most one per minute (``now`` is wall clock)."""
        total = self.total
        if total == self._reported or now - self._reported_at < REPORT_EVERY_SECONDS:
            return None
        new, self._reported, self._reported_at = total - self._reported, total, now
        kinds = ", ".join(f"{k} {n:,}" for k, n in self.untracked.items() if n)
        return (
            f"series limit reached ({self.max_tracked:,}, worker.max_tracked_series): "
            f"{new:,} events of new series not tracked since the last report "
            f"({total:,} since start: {kinds})"
        )
