"""``resonance``: novelty of the recent *shape* of a series, after ARTime's adaptive resonance.

ARTime (the best published detector on NAB) feeds windows of the recent signal to an adaptive
resonance network: a window that resonates with (lies close to) a learned category refines it; a
window that matches none founds a new category, and that novelty is the anomaly. This detector
keeps the idea in bounded, per-series form (our own code, not a port):

1. **Normalise** each value online: ``z = (x - level) / spread`` with a slowly fading mean and
   standard deviation (about ``1 / level_fading`` points of memory; outliers enter clipped to
   ``level_clip`` spreads, so one spike does not widen the scale).
2. **Window**: the last ``window`` normalised values, each clipped to +-``z_cap``.
3. **Resonate**: the distance to each of at most ``prototypes`` learned windows is the mean
   absolute difference (in spreads). The nearest within ``vigilance`` learns the window (moves
   ``learning_rate`` of the way to it); otherwise the window founds a new prototype, replacing
   the one unused longest when all slots are taken. The raw novelty is the nearest distance in
   units of ``vigilance`` (0 on an empty memory).
4. **Anomaly likelihood** (:class:`~detectors.likelihood.AnomalyLikelihood`, NAB's HTM idea): the
   short average of the novelty against its own long run, in long-run standard deviations, so
   a series whose shapes are always new (noise) and a regular one share one threshold.
5. **Novelty gate** as in :mod:`detectors.adaptive`: a score that does not exceed the recent peak
   (decaying by ``peak_decay`` per point) is damped, and an open alert's points are not news.

Memory: ``prototypes * window`` floats plus O(``window``) (about 1.5 KB of JSON state with the
defaults); time O(``prototypes * window``) per point, a constant.
"""

from __future__ import annotations

import math
from math import sqrt
from typing import Any, ClassVar, Self

from pydantic import Field

from detectors._state import get_float, get_int, get_list, get_mapping, load_hysteresis
from detectors.base import DetectorParams, ValueDetector, Verdict
from detectors.guards import usable
from detectors.hysteresis import Hysteresis
from detectors.likelihood import AnomalyLikelihood
from detectors.params import Fading, FireAfter, ResolveAfter, Threshold, Warmup

__all__ = ["ResonanceDetector", "ResonanceParams"]


class ResonanceParams(DetectorParams):
    """Parameters of :class:`ResonanceDetector`; counts in points, distances in spreads."""

    window: int = Field(8, ge=1, le=64, description="Points in a pattern (window).")
    prototypes: int = Field(8, ge=1, le=64, description="Learned patterns kept per series.")
    vigilance: float = Field(
        0.5,
        gt=0.0,
        description="Mean absolute distance (in spreads) under which a window resonates.",
    )
    learning_rate: float = Field(
        0.1, gt=0.0, le=1.0, description="Share of the way a resonating prototype moves."
    )
    level_fading: Fading = Field(
        0.001, description="Weight of the newest value in the normalising mean and spread."
    )
    level_clip: float = Field(
        3.0,
        gt=0.0,
        description="Values enter the normalising statistics clipped to this many spreads.",
    )
    z_cap: float = Field(20.0, gt=0.0, description="Normalised values are clipped to +-z_cap.")
    short_window: int = Field(3, ge=1, le=1000, description="Points in the likelihood's average.")
    likelihood_fading: Fading = Field(
        0.001, description="Weight of the newest short average in the likelihood's long run."
    )
    raw_cap: float = Field(
        20.0, gt=0.0, description="Novelty is clipped to this (vigilance units)."
    )
    peak_decay: float = Field(
        0.995, gt=0.0, lt=1.0, description="Per-point decay of the recent peak (novelty gate)."
    )
    damping: float = Field(
        1e-3, ge=0.0, lt=1.0, description="Factor applied to a score not above the recent peak."
    )
    warmup: Warmup = 100
    threshold: Threshold = 5.0
    fire_after: FireAfter = 1
    resolve_after: ResolveAfter = 30


class ResonanceDetector(ValueDetector[ResonanceParams]):
    """Novelty of the recent window of values against a few learned windows (adaptive resonance).

    See the module docstring for the method. ``Verdict.expected`` is the normalising mean.
    ``nan``/``inf`` values are ignored (score 0, not learned, alert state unchanged).

    Examples
    --------
    >>> import math, random
    >>> rng = random.Random(3)
    >>> det = ResonanceDetector(ResonanceParams())
    >>> wave = [10.0 * math.sin(i / 5.0) + rng.gauss(0.0, 0.3) for i in range(3000)]
    >>> quiet = [det.update(v, ts=60.0 * i) for i, v in enumerate(wave)]
    >>> sum(v.transition is not None for v in quiet)
    0
    >>> flat = [det.update(60.0, ts=60.0 * (3000 + i)) for i in range(10)]
    >>> [v.transition for v in flat if v.transition]
    [<Transition.FIRED: 'fired'>]
    """

    kind: ClassVar[str] = "resonance"
    params_type: ClassVar[type[DetectorParams]] = ResonanceParams

    __slots__ = (
        "_hysteresis",
        "_last_used",
        "_likelihood",
        "_mean",
        "_peak",
        "_prototypes",
        "_recent",
        "_seen",
        "_var",
    )

    def __init__(self, params: ResonanceParams) -> None:
        super().__init__(params)
        self._mean = 0.0
        self._var = 0.0
        self._seen = 0
        self._recent: list[float] = []
        self._prototypes: list[list[float]] = []
        self._last_used: list[int] = []
        self._likelihood = AnomalyLikelihood(
            params.short_window, params.likelihood_fading, params.raw_cap
        )
        self._peak = 0.0
        self._hysteresis = Hysteresis(params.fire_after, params.resolve_after)

    def _normalise(self, x: float) -> tuple[float, float]:
        """``x`` in spreads from the normalising mean, then learn ``x`` (clipped)."""
        p = self.params
        seen = self._seen
        if seen == 0:
            self._mean = x
            return 0.0, x
        mean, var = self._mean, self._var
        keep = 1.0 - p.level_fading
        # Bias-corrected spread (the variance starts at 0), floored relative to the level.
        weight = 1.0 - keep**seen
        std = sqrt(var / weight) + 1e-9 + 1e-6 * abs(mean)
        delta = x - mean
        z = delta / std
        if seen > 30:
            limit = p.level_clip * std
            delta = max(-limit, min(limit, delta))
        self._mean = mean + p.level_fading * delta
        self._var = keep * (var + p.level_fading * delta * delta)
        return max(-p.z_cap, min(p.z_cap, z)), mean

    def _resonate(self, pattern: list[float]) -> float:
        """Novelty of ``pattern`` in vigilance units, then learn it into the prototypes."""
        p = self.params
        best, best_total = -1, math.inf
        n = len(pattern)
        for k, proto in enumerate(self._prototypes):
            total = 0.0
            for a, b in zip(pattern, proto, strict=True):
                total += a - b if a > b else b - a
                if total >= best_total:
                    break  # already no nearer than the best: abandon this prototype
            else:
                best, best_total = k, total
        best_distance = best_total / n
        if best >= 0 and best_distance <= p.vigilance:
            rate = p.learning_rate
            proto = self._prototypes[best]
            for i in range(n):
                proto[i] += rate * (pattern[i] - proto[i])
            self._last_used[best] = self._seen
        elif len(self._prototypes) < p.prototypes:
            self._prototypes.append(list(pattern))
            self._last_used.append(self._seen)
        else:
            oldest = min(range(len(self._last_used)), key=self._last_used.__getitem__)
            self._prototypes[oldest] = list(pattern)
            self._last_used[oldest] = self._seen
        return 0.0 if best < 0 else best_distance / p.vigilance

    def update(self, value: float, ts: float) -> Verdict:
        """Score ``value`` (series units) observed at ``ts`` (epoch seconds), then learn it."""
        hysteresis = self._hysteresis
        if not usable(value) or not math.isfinite(ts):
            return Verdict(0.0, math.nan, False, hysteresis.firing)
        p = self.params
        z, expected = self._normalise(float(value))
        recent = self._recent
        recent.append(z)
        if len(recent) > p.window:
            del recent[0]
        novelty = self._resonate(recent) if len(recent) == p.window else 0.0
        likelihood = self._likelihood.update(novelty)
        seen = self._seen
        self._seen = seen + 1
        if seen < p.warmup:
            return Verdict(0.0, expected, False, hysteresis.firing)
        peak = self._peak
        decayed = peak * p.peak_decay
        self._peak = likelihood if likelihood > decayed else decayed
        if hysteresis.firing:
            score = likelihood * p.damping
            anomalous = likelihood > p.threshold
        else:
            score = likelihood if likelihood > peak else likelihood * p.damping
            anomalous = score > p.threshold
        transition = hysteresis.step(anomalous)
        return Verdict(max(score, 0.0), expected, anomalous, hysteresis.firing, transition)

    def to_state(self) -> dict[str, Any]:
        """The whole mutable state as a JSON-serialisable dict (no non-finite floats)."""
        return {
            "mean": self._mean,
            "var": self._var,
            "seen": self._seen,
            "recent": list(self._recent),
            "prototypes": [list(proto) for proto in self._prototypes],
            "last_used": list(self._last_used),
            "likelihood": self._likelihood.to_state(),
            "peak": self._peak,
            "hysteresis": self._hysteresis.to_state(),
        }

    @classmethod
    def from_state(cls, params: ResonanceParams, state: dict[str, Any]) -> Self:
        """Rebuild from ``params`` and :meth:`to_state` output; future verdicts are identical.

        Raises
        ------
        ValueError
            If ``state`` is malformed or does not fit ``params`` (e.g. another window length).
        """
        detector = cls(params)
        detector._mean = get_float(state, "mean")
        detector._var = get_float(state, "var")
        detector._seen = get_int(state, "seen")
        recent = [_finite(v, "recent") for v in get_list(state, "recent")]
        protos = [
            [_finite(v, "prototypes") for v in _list(p)] for p in get_list(state, "prototypes")
        ]
        last_used = get_list(state, "last_used")
        if len(recent) > params.window or any(len(p) != params.window for p in protos):
            raise ValueError("detector state: 'recent'/'prototypes' do not fit the window")
        if len(protos) > params.prototypes or len(last_used) != len(protos):
            raise ValueError("detector state: 'prototypes'/'last_used' do not fit the params")
        if not all(isinstance(u, int) and not isinstance(u, bool) for u in last_used):
            raise ValueError("detector state: 'last_used' must hold ints")
        detector._recent, detector._prototypes, detector._last_used = recent, protos, last_used
        detector._likelihood.load_state(get_mapping(state, "likelihood"))
        detector._peak = get_float(state, "peak")
        load_hysteresis(detector._hysteresis, state, "hysteresis")
        return detector


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError("detector state: 'prototypes' must be a list of lists")
    return value


def _finite(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"detector state: {key!r} must hold finite numbers, got {value!r}")
    return float(value)
