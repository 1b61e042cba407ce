"""What an exported series shows: its last value and each detector's expected value, band, score.

``[metrics] export_series`` chooses series (globs) whose anomaly view the worker exports as
Prometheus gauges (see :mod:`engine.runtime.series_metrics`). The pipeline decides once, when a
series' state is made, whether it is exported (at most ``export_max_series`` of them); only
exported series record their last value and their detectors' last verdicts, through a
:class:`VerdictRecorder` wrapped around each detector, so the other series pay nothing.

:func:`series_view` turns such a series into a :class:`SeriesView` at scrape time (read only).

>>> from detectors.zscore import ZScoreDetector, ZScoreParams
>>> rec = VerdictRecorder(ZScoreDetector(ZScoreParams(warmup=2, threshold=3.0, min_std=1.0)))
>>> _ = [rec.update(v, float(t)) for t, v in enumerate([10.0, 10.0, 10.0])]
>>> detector_view("zscore", rec)
DetectorView(detector='zscore', score=0.0, expected=10.0, low=7.0, high=13.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from detectors.base import ValueDetector, Verdict
from engine.core.wrapped import WrappedDetector

__all__ = ["DetectorView", "SeriesView", "VerdictRecorder", "detector_view", "series_view"]

_NAN = math.nan


class VerdictRecorder(WrappedDetector):
    """A detector that keeps its last verdict: wraps one detector of an exported series (see
    :mod:`engine.core.wrapped`: everything else is the wrapped detector's)."""

    __slots__ = ("verdict",)

    def __init__(self, detector: ValueDetector[Any]) -> None:
        super().__init__(detector)
        self.verdict: Verdict | None = None

    def update(self, value: float, ts: float) -> Verdict:
        """The wrapped detector's :meth:`~detectors.base.ValueDetector.update`, remembered."""
        verdict: Verdict = self.inner.update(value, ts)
        self.verdict = verdict
        return verdict


@dataclass(frozen=True, slots=True)
class DetectorView:
    """One detector of an exported series as charts see it (series units; ``nan`` if unknown).

    Attributes
    ----------
    detector
        The detector kind.
    score
        The anomaly score of the last value (higher = more anomalous).
    expected, low, high
        The detector's :meth:`~detectors.base.ValueDetector.expected_band` now, or the last
        verdict's expected value with no band.
    """

    detector: str
    score: float
    expected: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class SeriesView:
    """An exported series: its id, last observed value (``nan`` before any) and detectors."""

    series: str
    value: float
    detectors: tuple[DetectorView, ...]


def detector_view(kind: str, detector: Any) -> DetectorView:
    """The :class:`DetectorView` of ``detector`` (a :class:`VerdictRecorder` or a detector)."""
    verdict = getattr(detector, "verdict", None)
    band = detector.expected_band() if hasattr(detector, "expected_band") else None
    score = _NAN if verdict is None else verdict.score
    if band is not None:
        expected, low, high = band
    else:
        expected, low, high = (_NAN if verdict is None else verdict.expected), _NAN, _NAN
    return DetectorView(kind, score, expected, low, high)


def series_view(series: str, value: float, watches: Iterable[tuple[str, Any]]) -> SeriesView:
    """The view of one exported series from its (kind, detector) pairs."""
    return SeriesView(series, value, tuple(detector_view(k, d) for k, d in watches))
