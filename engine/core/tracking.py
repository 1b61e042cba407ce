"""From detector verdicts to alert transitions: one incident per (series, detector).

An :class:`AlertTracker` follows one detector on one series. When the detector's hysteresis
fires, it emits a firing :class:`~engine.model.alert.Alert`; while the incident lasts it
re-emits it once every ``repeat_interval`` seconds of event time (``repeat`` counts up); when the
detector resolves it emits the resolved alert. It never emits two firing notifications for one
incident otherwise.

>>> from detectors.base import Verdict, Transition
>>> t = AlertTracker("cpu", {"host": "a"}, "zscore", Severity.WARNING, repeat_interval=60.0)
>>> t.observe(Verdict(9.0, 1.0, True, True, Transition.FIRED), 5.0, ts=100.0).status
<AlertStatus.FIRING: 'firing'>
>>> t.observe(Verdict(9.0, 1.0, True, True), 5.0, ts=130.0) is None
True
>>> t.observe(Verdict(9.0, 1.0, True, True), 5.0, ts=161.0).repeat
1
>>> t.observe(Verdict(0.1, 1.0, False, False, Transition.RESOLVED), 1.0, ts=200.0).ended_at
200.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from detectors.base import Transition, Verdict
from engine.model.alert import Alert, AlertStatus, Severity, fingerprint, series_id

__all__ = ["AlertTracker", "summarize"]


def _fmt(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.4g}"


def summarize(sid: str, detector: str, value: float, expected: float, score: float) -> str:
    """The one-line human summary of an alert.

    >>> summarize("cpu{host=a}", "zscore", 97.0, 20.0, 8.25)
    'cpu{host=a}: 97 vs expected 20 (zscore score 8.2)'
    """
    return f"{sid}: {_fmt(value)} vs expected {_fmt(expected)} ({detector} score {score:.1f})"


class AlertTracker:
    """The alert lifecycle of one detector on one series (see the module docstring).

    ``repeat_interval`` is in seconds of event time. There is one tracker per tracked series and
    detector, so it stays small: it keeps ``labels`` as a flat tuple of keys and values (a
    series' labels never change; a tuple takes half the memory of a dict), and each alert gets a
    dict of them. The fingerprint and series id are computed only when an alert is made.
    """

    __slots__ = (
        "detector",
        "labels",
        "last_sent",
        "name",
        "repeat",
        "repeat_interval",
        "severity",
        "started_at",
    )

    def __init__(
        self,
        name: str,
        labels: Mapping[str, str],
        detector: str,
        severity: Severity,
        repeat_interval: float,
    ) -> None:
        self.name = name
        self.labels = tuple([text for pair in labels.items() for text in pair])
        self.detector = detector
        self.severity = severity
        self.repeat_interval = repeat_interval
        self.started_at: float | None = None
        self.last_sent = 0.0
        self.repeat = 0

    def observe(self, verdict: Verdict, value: float, ts: float) -> Alert | None:
        """The alert this verdict (for ``value`` at event time ``ts``) causes, if any."""
        if verdict.transition is Transition.FIRED:
            self.started_at = ts
            self.last_sent = ts
            self.repeat = 0
            return self._alert(AlertStatus.FIRING, verdict, value, None)
        if self.started_at is None:
            return None
        if verdict.transition is Transition.RESOLVED:
            alert = self._alert(AlertStatus.RESOLVED, verdict, value, ts)
            self.started_at = None
            return alert
        if ts - self.last_sent >= self.repeat_interval:
            self.last_sent = ts
            self.repeat += 1
            return self._alert(AlertStatus.FIRING, verdict, value, None)
        return None

    def _alert(
        self, status: AlertStatus, verdict: Verdict, value: float, ended: float | None
    ) -> Alert:
        assert self.started_at is not None
        name, flat = self.name, self.labels
        labels = dict(zip(flat[::2], flat[1::2], strict=True))
        return Alert(
            fingerprint=fingerprint(name, labels, self.detector),
            status=status,
            severity=self.severity,
            series=name,
            labels=labels,
            detector=self.detector,
            value=value,
            expected=verdict.expected,
            score=verdict.score,
            started_at=self.started_at,
            ended_at=ended,
            summary=summarize(
                series_id(name, labels), self.detector, value, verdict.expected, verdict.score
            ),
            repeat=self.repeat,
        )

    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable state."""
        return {"started_at": self.started_at, "last_sent": self.last_sent, "repeat": self.repeat}

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`to_state` returned."""
        self.started_at = state["started_at"]
        self.last_sent = float(state["last_sent"])
        self.repeat = int(state["repeat"])
