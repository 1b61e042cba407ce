"""``adaptive``: Kestrel's default metric detector, a composition of simpler evidence.

Per point, before learning it:

1. **Pattern residual** (:class:`~detectors.seasonal.SeasonalBaseline`): distance from the best of
   last-value / level / daily / weekly forecasts, in units of that forecaster's robust error
   scale. Catches spikes, steps and broken daily patterns; a normal daily peak is forecast.
2. **Long-run level**: distance from a slow exponentially weighted mean (about
   ``1 / level_fading`` points of memory) in units of its standard deviation, with outliers
   clipped before they enter the baseline. Catches slow drifts to values the series has not
   held for a long time (a fast forecaster follows a drift and misses it).
3. **Anomaly likelihood** (:class:`~detectors.likelihood.AnomalyLikelihood`) over each raw score:
   how far the short average of the raw score sits above its own long run, in long-run standard
   deviations. This puts spiky and smooth series on one scale.
4. **New record**: a value beyond the whole range seen so far (after warm-up) by more than
   ``record_tolerance`` of that range, and at least ``record_min_z`` long-run standard deviations
   from the long-run level, counts as a likelihood of ``record_score`` (about the alert
   threshold), plus a tie-breaking 0.1 at most that grows with the excess. An operations metric
   leaving everything it has ever done is worth a look even when it leaves slowly. (NAB's
   leading HTM detector uses the same "spatial anomaly" idea; here the range is learned online,
   never given up front.)
5. **Novelty gate**: an incident produces many high points; only the earliest matters. While
   no alert is open, the reported score is the largest of the above when it exceeds the recent
   peak (which decays by ``peak_decay`` per point), else it is damped by ``damping``. While an
   alert is open its points are not news: the score is damped, and the alert stays open as long
   as the evidence stays above ``threshold``. So a lasting incident pages once, and the score
   column ranks incidents the way the alerts do.

The score is non-negative, higher = more anomalous, continuous (distinct near the top). A point is
anomalous when the score exceeds ``threshold``; the alert fires after ``fire_after`` such points
and resolves after ``resolve_after`` normal ones.

Warm-up: the first ``warmup`` points (60 by default: 10 minutes at 10 s sampling) are learned and
scored 0; no alert fires during them. After a lasting level shift the long-run level, the
likelihoods and the record range re-learn the new normal (the shift's alert fires, then resolves).

Memory: O(profile buckets) (288 daily + 168 weekly floats by default, about 6 KB of JSON state)
plus O(1); time O(``short_window``) per point.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Final, Self

from pydantic import Field

from detectors._state import get_float, get_int, get_mapping, load_hysteresis
from detectors.base import DetectorParams, ValueDetector, Verdict
from detectors.guards import usable
from detectors.hysteresis import Hysteresis
from detectors.likelihood import AnomalyLikelihood
from detectors.params import Fading, FireAfter, ResolveAfter, Threshold, Warmup
from detectors.seasonal import SeasonalBaseline, SeasonalParams

__all__ = ["AdaptiveDetector", "AdaptiveParams"]

_NAN: Final = math.nan


class AdaptiveParams(DetectorParams):
    """Parameters of :class:`AdaptiveDetector`; counts are in points, scores in likelihood units.

    The defaults are the shipped settings (``kestrel evaluate`` measures them on NAB).
    """

    seasonal: SeasonalParams = Field(
        default_factory=SeasonalParams,
        description="Forecaster bank of the pattern residual (its hysteresis fields are unused).",
    )
    level_fading: Fading = Field(
        0.0005,
        description="Weight of the newest value in the long-run level (memory ~1/level_fading).",
    )
    level_clip: float = Field(
        3.0,
        gt=0.0,
        description="Deviations beyond this many standard deviations enter the level clipped.",
    )
    short_window: int = Field(
        5, ge=1, le=1000, description="Points in the likelihood's short average."
    )
    likelihood_fading: Fading = Field(
        0.001,
        description="Weight of the newest short average in the likelihood's long run.",
    )
    raw_cap: float = Field(
        8.0, gt=0.0, description="Raw scores are capped here before the likelihood."
    )
    peak_decay: float = Field(
        0.999,
        gt=0.0,
        le=1.0,
        description="Per-point decay of the recent peak used by the novelty gate.",
    )
    damping: float = Field(
        1e-3,
        ge=0.0,
        lt=1.0,
        description="Factor applied to a score that does not exceed the recent peak.",
    )
    record_tolerance: float = Field(
        0.01,
        gt=0.0,
        description=(
            "A value beyond the range seen so far by more than this fraction of the range is a "
            "new record (dimensionless)."
        ),
    )
    record_min_z: float = Field(
        4.0,
        ge=0.0,
        description=(
            "A new record counts only if it is also this many long-run standard deviations from "
            "the long-run level (records of plain noise are not news)."
        ),
    )
    record_score: float = Field(
        5.0,
        gt=0.0,
        description=(
            "Likelihood a new record counts as (the score units); plus up to 0.1 growing with "
            "the excess, so records stay distinct."
        ),
    )
    warmup: Warmup = 60
    threshold: Threshold = 4.3
    fire_after: FireAfter = 1
    resolve_after: ResolveAfter = 30


class AdaptiveDetector(ValueDetector[AdaptiveParams]):
    """Pattern residual + long-run level, each through an anomaly likelihood, novelty-gated.

    See the module docstring for the method. ``Verdict.expected`` is the forecast of the pattern
    residual. ``nan``/``inf`` values are ignored (score 0, not learned, alert state unchanged).

    Examples
    --------
    >>> import random
    >>> rng = random.Random(7)
    >>> det = AdaptiveDetector(AdaptiveParams())
    >>> verdicts = [det.update(50.0 + rng.gauss(0.0, 1.0), ts=300.0 * i) for i in range(1000)]
    >>> sum(v.transition is not None for v in verdicts)
    0
    >>> step = [det.update(65.0 + rng.gauss(0.0, 1.0), ts=300.0 * (1000 + i)) for i in range(10)]
    >>> [v.transition for v in step if v.transition]
    [<Transition.FIRED: 'fired'>]
    """

    kind: ClassVar[str] = "adaptive"
    params_type: ClassVar[type[DetectorParams]] = AdaptiveParams

    def __init__(self, params: AdaptiveParams) -> None:
        super().__init__(params)
        self._pattern = SeasonalBaseline(params.seasonal)
        self._pattern_likelihood = AnomalyLikelihood(
            params.short_window, params.likelihood_fading, params.raw_cap
        )
        self._level_likelihood = AnomalyLikelihood(
            params.short_window, params.likelihood_fading, params.raw_cap
        )
        self._record_low: float | None = None
        self._record_high: float | None = None
        self._level_fading = params.level_fading
        self._level_clip = params.level_clip
        self._level_mean: float | None = None
        self._level_var = 0.0
        self._level_seen = 0
        self._peak = 0.0
        self._seen = 0
        self._hysteresis = Hysteresis(params.fire_after, params.resolve_after)

    def _level_score(self, x: float) -> float:
        """Long-run level z-score of ``x``, then learn ``x`` (clipped) into the level."""
        mean = self._level_mean
        if mean is None:
            self._level_mean = x
            return 0.0
        delta = x - mean
        fading = self._level_fading
        # The variance starts at 0: divide by the weight learned so far (bias correction), so
        # young series are not judged against an underestimated spread.
        learned = 1.0 - (1.0 - fading) ** self._level_seen if self._level_seen else 1.0
        std = math.sqrt(self._level_var / learned) + 1e-9 + 1e-6 * abs(mean)
        z = abs(delta) / std
        limit = self._level_clip * std
        if self._level_seen > 50 and abs(delta) > limit:
            delta = math.copysign(limit, delta)
        self._level_mean = mean + fading * delta
        self._level_var = (1.0 - fading) * (self._level_var + fading * delta * delta)
        self._level_seen += 1
        return z

    def _record_excess(self, x: float) -> float:
        """How far ``x`` lies beyond the range learned so far, in ranges; then widen the range.

        0 while the range is empty (fewer than two distinct values) and during warm-up.
        """
        low, high = self._record_low, self._record_high
        if low is None or high is None:
            self._record_low = self._record_high = x
            return 0.0
        span = high - low
        excess = 0.0
        if span > 0.0 and self._seen >= self.params.warmup:
            excess = max(x - high, low - x) / span
        if x < low:
            self._record_low = x
        elif x > high:
            self._record_high = x
        return excess

    def update(self, value: float, ts: float) -> Verdict:
        """Score ``value`` (series units) observed at ``ts`` (epoch seconds), then learn it."""
        x = float(value)
        hysteresis = self._hysteresis
        if not usable(x) or not math.isfinite(ts):
            return Verdict(0.0, _NAN, False, hysteresis.firing)
        raw_pattern, expected = self._pattern.score(x, ts)
        self._pattern.learn(x, ts)
        raw_level = self._level_score(x)
        likelihood = max(
            self._pattern_likelihood.update(raw_pattern),
            self._level_likelihood.update(raw_level),
        )
        excess = self._record_excess(x)
        if excess > self.params.record_tolerance and raw_level > self.params.record_min_z:
            record = self.params.record_score + 0.1 * math.tanh(excess)
            if record > likelihood:
                likelihood = record
        if self._seen < self.params.warmup:
            self._seen += 1
            return Verdict(0.0, expected, False, hysteresis.firing)
        peak = self._peak
        decayed = peak * self.params.peak_decay
        self._peak = likelihood if likelihood > decayed else decayed
        threshold = self.params.threshold
        if hysteresis.firing:
            # An open alert: its points are not news (score damped), but they keep it open.
            score = likelihood * self.params.damping
            anomalous = likelihood > threshold
        else:
            score = likelihood if likelihood > peak else likelihood * self.params.damping
            anomalous = score > threshold
        if score < 0.0:
            score = 0.0
        transition = hysteresis.step(anomalous)
        return Verdict(score, expected, anomalous, hysteresis.firing, transition)

    def to_state(self) -> dict[str, Any]:
        """The whole mutable state as a JSON-serialisable dict (no non-finite floats)."""
        return {
            "pattern": self._pattern.to_state(),
            "pattern_likelihood": self._pattern_likelihood.to_state(),
            "level_likelihood": self._level_likelihood.to_state(),
            "level_mean": self._level_mean,
            "level_var": self._level_var,
            "level_seen": self._level_seen,
            "record_low": self._record_low,
            "record_high": self._record_high,
            "peak": self._peak,
            "seen": self._seen,
            "hysteresis": self._hysteresis.to_state(),
        }

    @classmethod
    def from_state(cls, params: AdaptiveParams, state: dict[str, Any]) -> Self:
        """Rebuild from ``params`` and :meth:`to_state` output; future verdicts are identical.

        Raises
        ------
        ValueError
            If ``state`` is malformed or does not fit ``params`` (e.g. another bucket width).
        """
        detector = cls(params)
        detector._pattern.load_state(get_mapping(state, "pattern"))
        detector._pattern_likelihood.load_state(get_mapping(state, "pattern_likelihood"))
        detector._level_likelihood.load_state(get_mapping(state, "level_likelihood"))
        if state.get("level_mean") is None:
            detector._level_mean = None
        else:
            detector._level_mean = get_float(state, "level_mean")
        detector._level_var = get_float(state, "level_var")
        detector._level_seen = get_int(state, "level_seen")
        for key in ("record_low", "record_high"):
            if state.get(key) is not None:
                get_float(state, key)
        low, high = state.get("record_low"), state.get("record_high")
        detector._record_low = None if low is None else float(low)
        detector._record_high = None if high is None else float(high)
        detector._peak = get_float(state, "peak")
        detector._seen = get_int(state, "seen")
        load_hysteresis(detector._hysteresis, state, "hysteresis")
        return detector
