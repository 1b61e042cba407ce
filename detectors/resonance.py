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
from typing import Any, ClassVar, Self

from pydantic import Field

from detectors._state import get_float, get_int, get_list, get_mapping, load_hysteresis
from detectors.base import DetectorParams, ValueDetector, Verdict
from detectors.guards import usable
from detectors.likelihood import AnomalyLikelihood
from detectors.novelty import FadingNormaliser, NoveltyGate, NoveltyParams
from detectors.params import Threshold

__all__ = ["ResonanceDetector", "ResonanceParams"]


class ResonanceParams(NoveltyParams):
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
    z_cap: float = Field(20.0, gt=0.0, description="Normalised values are clipped to +-z_cap.")
    raw_cap: float = Field(
        20.0, gt=0.0, description="Novelty is clipped to this (vigilance units)."
    )
    threshold: Threshold = 5.0


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
        "_gate",
        "_last_used",
        "_likelihood",
        "_normaliser",
        "_prototypes",
        "_recent",
    )

    def __init__(self, params: ResonanceParams) -> None:
        super().__init__(params)
        self._normaliser = FadingNormaliser(params.level_fading, params.level_clip)
        self._recent: list[float] = []
        self._prototypes: list[list[float]] = []
        self._last_used: list[int] = []
        self._likelihood = AnomalyLikelihood(
            params.short_window, params.likelihood_fading, params.raw_cap
        )
        self._gate = NoveltyGate.of(params)

    def _resonate(self, pattern: list[float], index: int) -> float:
        """Novelty of ``pattern`` in vigilance units, then learn it into the prototypes (``index``,
        this point's number, marks the prototype it used as the most recent)."""
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
            self._last_used[best] = index
        elif len(self._prototypes) < p.prototypes:
            self._prototypes.append(list(pattern))
            self._last_used.append(index)
        else:
            oldest = min(range(len(self._last_used)), key=self._last_used.__getitem__)
            self._prototypes[oldest] = list(pattern)
            self._last_used[oldest] = index
        return 0.0 if best < 0 else best_distance / p.vigilance

    def update(self, value: float, ts: float) -> Verdict:
        """Score ``value`` (series units) observed at ``ts`` (epoch seconds), then learn it."""
        gate = self._gate
        if not usable(value) or not math.isfinite(ts):
            return gate.quiet(math.nan)
        p = self.params
        z, expected = self._normaliser.standardise(float(value))
        index = self._normaliser.seen - 1  # this point's, from 0
        recent = self._recent
        recent.append(max(-p.z_cap, min(p.z_cap, z)))
        if len(recent) > p.window:
            del recent[0]
        novelty = self._resonate(recent, index) if len(recent) == p.window else 0.0
        likelihood = self._likelihood.update(novelty)
        if index < p.warmup:
            return gate.quiet(expected)
        return gate.judge(likelihood, expected)

    def to_state(self) -> dict[str, Any]:
        """The whole mutable state as a JSON-serialisable dict (no non-finite floats)."""
        return {
            "mean": self._normaliser.mean,
            "var": self._normaliser.var,
            "seen": self._normaliser.seen,
            "recent": list(self._recent),
            "prototypes": [list(proto) for proto in self._prototypes],
            "last_used": list(self._last_used),
            "likelihood": self._likelihood.to_state(),
            "peak": self._gate.peak,
            "hysteresis": self._gate.hysteresis.to_state(),
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
        detector._normaliser.mean = get_float(state, "mean")
        detector._normaliser.var = get_float(state, "var")
        detector._normaliser.seen = get_int(state, "seen")
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
        detector._gate.peak = get_float(state, "peak")
        load_hysteresis(detector._gate.hysteresis, state, "hysteresis")
        return detector


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError("detector state: 'prototypes' must be a list of lists")
    return value


def _finite(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"detector state: {key!r} must hold finite numbers, got {value!r}")
    return float(value)
