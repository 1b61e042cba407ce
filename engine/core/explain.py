"""Read-only views of the pipeline for people: what is firing, which series exist, and why.

Pure and synchronous, like the rest of :mod:`engine.core`; the worker's API
(:mod:`engine.runtime.api`) serves what these functions return, and ``kestrel explain``,
``kestrel alerts``, ``kestrel top`` and the dashboard show it.

- :class:`AlertBoard` follows the alert transitions a worker records: the alerts firing now
  and the most recent transitions (bounded), and the last firing alert of each series and
  detector (bounded), which says why it fired.
- :func:`list_series` and :func:`explain` read the pipeline's series states (its cache) and the
  detectors' public :meth:`~detectors.base.Detector.describe`; they change nothing.
- :class:`Taps` keeps recent points (time, value, score, expected, band) of the few series
  someone looks at, not of every series: a tapped detector is wrapped in a recording proxy
  (a :class:`Tap`) that the pipeline calls as it would the detector. At most ``max_series``
  series are tapped at once (the least recently asked is untapped), each with a ring of
  ``points`` entries.

Only the series held in this worker's memory are visible (a series evicted from the cache, or
of a partition another worker owns, is not); the board shows the transitions this worker
recorded since it started.

>>> from engine.config import Config
>>> from engine.model.events import MetricSample
>>> pipeline = Pipeline(Config())
>>> out: list[Alert] = []
>>> for i in range(40):
...     _ = pipeline.metric(MetricSample("cpu", 50.0 + i % 3, float(i), {"host": "a"}), 0, out)
>>> [s["series"] for s in list_series(pipeline)]
['cpu{host=a}']
>>> doc = explain(pipeline, "cpu{host=a}")
>>> doc["detectors"][0]["kind"], doc["detectors"][0]["state"]["warm"]
('adaptive', False)
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from detectors.base import Detector, Verdict
from engine.core.pipeline import Pipeline, _PatternWatch, _Series, _Service, _Watch
from engine.core.wrapped import WrappedDetector, unwrapped
from engine.model.alert import Alert, AlertStatus, series_id

__all__ = ["AlertBoard", "Tap", "Taps", "explain", "finite", "list_series"]


def finite(x: Any) -> Any:
    """``x`` with every non-finite float (``nan``, ``inf``) replaced by ``None``, recursively, so
    that it is valid JSON.

    >>> finite({"a": float("nan"), "b": [1.0, float("inf")]})
    {'a': None, 'b': [1.0, None]}
    """
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [finite(v) for v in x]
    return x


def _reason(alert: Alert, threshold: float | None, fire_after: int | None) -> str:
    """One sentence: why ``alert`` fired (which evidence crossed which threshold)."""
    expected = "n/a" if not math.isfinite(alert.expected) else f"{alert.expected:.4g}"
    text = (
        f"{alert.detector} scored {alert.score:.2f} for value {alert.value:.4g} "
        f"(expected {expected})"
    )
    if threshold is not None:
        text += f", above its threshold {threshold:g}"
    if fire_after is not None and fire_after > 1:
        text += f" for {fire_after} points in a row"
    template = alert.annotations.get("template")
    if template:
        text += f"; log template: {template[:200]}"
    return text


class AlertBoard:
    """What is firing now and the recent alert transitions, fed the alerts a worker records.

    Parameters
    ----------
    recent:
        How many transitions to keep (newest first in :meth:`recent`).
    last_fired:
        How many (series, detector) pairs to remember the last firing alert of.

    Examples
    --------
    >>> from engine.model.alert import Severity, fingerprint
    >>> def alert(status, ts):
    ...     return Alert(fingerprint("cpu", {}, "zscore"), status, Severity.WARNING, "cpu", {},
    ...                  "zscore", 9.0, 1.0, 6.0, 10.0, None, "cpu: 9 vs 1", 0)
    >>> board = AlertBoard()
    >>> board.add([alert(AlertStatus.FIRING, 10.0)])
    >>> [a.series for a in board.firing()]
    ['cpu']
    >>> board.add([alert(AlertStatus.RESOLVED, 20.0)])
    >>> board.firing(), len(board.recent())
    ([], 2)
    >>> board.last_fired("cpu")[0].score
    6.0
    """

    def __init__(self, recent: int = 200, last_fired: int = 10_000) -> None:
        self._firing: dict[str, Alert] = {}
        self._recent: deque[Alert] = deque(maxlen=recent)
        self._last: OrderedDict[tuple[str, str], Alert] = OrderedDict()
        self._last_max = last_fired
        #: Transitions taken in since start.
        self.transitions = 0

    def add(self, alerts: Iterable[Alert]) -> None:
        """Take in alert transitions, in the order they were recorded."""
        for alert in alerts:
            self.transitions += 1
            self._recent.append(alert)
            if alert.status is AlertStatus.FIRING:
                self._firing[alert.fingerprint] = alert
                if alert.repeat == 0:
                    key = (alert.series_id, alert.detector)
                    self._last[key] = alert
                    self._last.move_to_end(key)
                    if len(self._last) > self._last_max:
                        self._last.popitem(last=False)
            else:
                self._firing.pop(alert.fingerprint, None)

    def firing(self) -> list[Alert]:
        """The alerts firing now (the latest firing transition of each), oldest incident first."""
        return sorted(self._firing.values(), key=lambda a: (a.started_at, a.fingerprint))

    def recent(self, limit: int | None = None) -> list[Alert]:
        """The most recent transitions, newest first."""
        items = list(reversed(self._recent))
        return items if limit is None else items[:limit]

    def last_fired(self, sid: str) -> list[Alert]:
        """The last alert that fired on series ``sid``, one per detector that fired on it."""
        return [a for (s, _), a in self._last.items() if s == sid]


def alert_view(alert: Alert, *, reason: str | None = None) -> dict[str, Any]:
    """The JSON form of an alert in the API: its record, its series id and a reason."""
    doc = alert.to_dict()
    doc["series_id"] = alert.series_id
    doc["reason"] = reason if reason is not None else alert.summary
    return finite(doc)  # type: ignore[no-any-return]


# -- series --------------------------------------------------------------------------------


def _watch_sid(watch: _Watch) -> str:
    flat = watch.labels
    return series_id(watch.name, dict(zip(flat[::2], flat[1::2], strict=True)))


def _series_of(pipeline: Pipeline) -> Iterator[tuple[str, str, Sequence[_Watch], float | None]]:
    """Every series in memory: ``(series id, kind, watches, last event time)``."""
    for entry in list(pipeline._cache.values()):
        if isinstance(entry, _Service):
            for series in (entry.errors, entry.count):
                if series.watches:
                    yield _watch_sid(series.watches[0]), series.kind, series.watches, series.last_ts
            if entry.patterns:
                sid = _watch_sid(entry.patterns[0])
                yield sid, "pattern", entry.patterns, entry.errors.last_ts
        elif isinstance(entry, _Series) and entry.watches:
            yield _watch_sid(entry.watches[0]), entry.kind, entry.watches, entry.last_ts


def _find(pipeline: Pipeline, sid: str) -> tuple[str, Sequence[_Watch], float | None] | None:
    for found, kind, watches, last_ts in _series_of(pipeline):
        if found == sid:
            return kind, watches, last_ts
    return None


def _detector(watch: _Watch) -> Detector[Any]:
    """The watch's detector, out of the wrappers a tap or an export may have put around it."""
    scorer = unwrapped(watch.scorer)
    assert isinstance(scorer, Detector)
    return scorer


def list_series(
    pipeline: Pipeline, match: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The series in memory whose id contains ``match`` (all if ``None``), firing ones first,
    then by id; at most ``limit``. Each: ``series``, ``kind``, ``detectors``, ``firing``,
    ``warm`` (every detector past its warm-up), ``last_ts``."""
    rows = []
    for sid, kind, watches, last_ts in _series_of(pipeline):
        if match is not None and match not in sid:
            continue
        states = [_detector(w).describe() for w in watches]
        rows.append(
            {
                "series": sid,
                "kind": kind,
                "detectors": [w.detector for w in watches],
                "firing": any(w.started_at is not None for w in watches),
                "warm": all(s.get("warm", True) for s in states),
                "last_ts": last_ts,
            }
        )
    rows.sort(key=lambda r: (not r["firing"], r["series"]))
    return finite(rows[:limit])  # type: ignore[no-any-return]


def explain(
    pipeline: Pipeline,
    sid: str,
    board: AlertBoard | None = None,
    taps: Taps | None = None,
) -> dict[str, Any] | None:
    """Everything known about series ``sid``, or ``None`` if it is not in memory.

    ``series``, ``kind``, ``last_ts``, and per detector (``detectors``): ``kind``, ``params``,
    ``state`` (its :meth:`~detectors.base.Detector.describe`: warm-up, expected value, band,
    threshold), ``firing``, ``started_at`` of the open incident, ``last_alert`` (the last
    firing alert this worker recorded, with ``reason``: which evidence crossed which threshold)
    and ``recent`` points if the series is tapped (see :class:`Taps`).
    """
    found = _find(pipeline, sid)
    if found is None:
        return None
    kind, watches, last_ts = found
    fired = {a.detector: a for a in board.last_fired(sid)} if board is not None else {}
    recent = taps.points(sid) if taps is not None else {}
    detectors = []
    for w in watches:
        det = _detector(w)
        state = det.describe()
        params = det.params.model_dump(mode="json")
        last = fired.get(w.detector)
        threshold = state.get("threshold", params.get("threshold"))
        detectors.append(
            {
                "kind": w.detector,
                "input": det.input.value,
                "params": params,
                "state": state,
                "firing": w.started_at is not None,
                "started_at": w.started_at,
                "last_alert": None
                if last is None
                else alert_view(last, reason=_reason(last, threshold, params.get("fire_after"))),
                "recent": recent.get(w.detector, []),
            }
        )
    doc = {"series": sid, "kind": kind, "last_ts": last_ts, "detectors": detectors}
    return finite(doc)  # type: ignore[no-any-return]


# -- taps ----------------------------------------------------------------------------------

#: The fields of one recorded point, in order.
POINT_FIELDS = ("ts", "value", "score", "expected", "low", "high", "anomalous", "firing")


class Tap(WrappedDetector):
    """A detector wrapped to record each point it judges (see :mod:`engine.core.wrapped`)."""

    __slots__ = ("ring",)

    def __init__(self, inner: Detector[Any], ring: deque[tuple[Any, ...]]) -> None:
        super().__init__(inner)
        self.ring = ring

    def _record(self, value: float, ts: float, verdict: Verdict, band: Any) -> Verdict:
        low, high = band if band else (None, None)
        self.ring.append(
            (
                ts,
                value,
                verdict.score,
                verdict.expected,
                low,
                high,
                verdict.anomalous,
                verdict.firing,
            )
        )
        return verdict

    def update(self, value: float, ts: float) -> Verdict:
        """Judge ``value`` with the detector, recording the band it was judged against."""
        band = self.inner.describe().get("band")
        return self._record(value, ts, self.inner.update(value, ts), band)

    def update_window(self, errors: int, total: int, ts: float) -> Verdict:
        """Judge a window with the detector; the recorded value is the error ratio."""
        band = self.inner.describe().get("band")
        verdict = self.inner.update_window(errors, total, ts)
        return self._record(errors / total if total else 0.0, ts, verdict, band)


class Taps:
    """Recent points of the series someone looks at (see the module docstring).

    Parameters
    ----------
    max_series:
        Series tapped at once; asking for another untaps the least recently asked.
    points:
        Points kept per series and detector.
    """

    def __init__(self, max_series: int = 32, points: int = 300) -> None:
        self._max = max_series
        self._points = points
        self._rings: OrderedDict[str, dict[str, deque[tuple[Any, ...]]]] = OrderedDict()

    def __contains__(self, sid: object) -> bool:
        return sid in self._rings

    def tap(self, pipeline: Pipeline, sid: str) -> bool:
        """Record the points of ``sid`` from now on (again, if its state was reloaded since);
        ``False`` if the series is not in memory or judges log messages only."""
        found = _find(pipeline, sid)
        if found is None:
            return False
        _, watches, _ = found
        rings = self._rings.setdefault(sid, {})
        self._rings.move_to_end(sid)
        tapped = False
        for w in watches:
            if isinstance(w, _PatternWatch):
                continue
            ring = rings.setdefault(w.detector, deque(maxlen=self._points))
            if not isinstance(w.scorer, Tap):
                w.scorer = Tap(w.scorer, ring)
            tapped = True
        while len(self._rings) > self._max:
            old, _ = self._rings.popitem(last=False)
            self._untap(pipeline, old)
        if not tapped:
            self._rings.pop(sid, None)
        return tapped

    @staticmethod
    def _untap(pipeline: Pipeline, sid: str) -> None:
        found = _find(pipeline, sid)
        if found is not None:
            for w in found[1]:
                if isinstance(w.scorer, Tap):
                    w.scorer = w.scorer.inner

    def points(self, sid: str) -> dict[str, list[dict[str, Any]]]:
        """The recorded points of ``sid`` by detector kind, oldest first (fields:
        :data:`POINT_FIELDS`)."""
        return {
            kind: [dict(zip(POINT_FIELDS, p, strict=True)) for p in ring]
            for kind, ring in self._rings.get(sid, {}).items()
        }
