"""Two parts shared by the novelty detectors (:mod:`detectors.resonance`, :mod:`detectors.context`).

:class:`FadingNormaliser` standardises values online against a slowly fading mean and spread;
:class:`NoveltyGate` turns an anomaly likelihood into verdicts, so that an incident, which makes
many high points, pages once:

* while no alert is open, the score is the likelihood when it exceeds the recent peak (which
  decays by ``peak_decay`` per point), else the likelihood damped by ``damping``; the point is
  anomalous when that score exceeds ``threshold``;
* while an alert is open its points are not news: the score is damped, and the alert stays open
  as long as the likelihood stays above ``threshold``;
* the alert fires and resolves through a :class:`~detectors.hysteresis.Hysteresis`.

>>> gate = NoveltyGate(peak_decay=0.9, damping=0.001, threshold=5.0, fire_after=1, resolve_after=2)
>>> verdicts = [gate.judge(likelihood, expected=0.0) for likelihood in (1.0, 6.0, 6.0, 1.0, 1.0)]
>>> [round(v.score, 3) for v in verdicts]  # the second 6.0 is not above the peak: damped
[1.0, 6.0, 0.006, 0.001, 0.001]
>>> [v.transition.value if v.transition else None for v in verdicts]
[None, 'fired', None, None, 'resolved']
>>> norm = FadingNormaliser(fading=0.01, clip=3.0)
>>> _ = [norm.standardise(10.0 + (-1) ** i) for i in range(500)]
>>> z, mean = norm.standardise(13.0)
>>> round(z, 2), round(mean, 2)
(2.99, 10.0)
>>> z, _ = norm.standardise(30.0)  # the spike entered clipped to 3 spreads
>>> round(z, 1), round(norm.mean, 2)
(19.2, 10.06)
"""

from __future__ import annotations

from math import sqrt

from pydantic import Field

from detectors.base import DetectorParams, Verdict
from detectors.hysteresis import Hysteresis
from detectors.params import Fading, FireAfter, ResolveAfter, Threshold, Warmup

__all__ = ["FadingNormaliser", "NoveltyGate", "NoveltyParams"]


class NoveltyParams(DetectorParams):
    """The parameters a novelty detector's normaliser, likelihood and gate share (counts in
    points); each detector adds its own (its raw score's cap and units, its threshold)."""

    level_fading: Fading = Field(
        0.001, description="Weight of the newest value in the normalising mean and spread."
    )
    level_clip: float = Field(
        3.0,
        gt=0.0,
        description="Values enter the normalising statistics clipped to this many spreads.",
    )
    short_window: int = Field(3, ge=1, le=1000, description="Points in the likelihood's average.")
    likelihood_fading: Fading = Field(
        0.001, description="Weight of the newest short average in the likelihood's long run."
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


class FadingNormaliser:
    """A value's distance from a slowly fading mean, in fading standard deviations ("spreads").

    Parameters
    ----------
    fading:
        Weight of the newest value in the mean and variance (memory about ``1 / fading`` points).
    clip:
        After 30 points, values enter the statistics clipped to this many spreads, so one spike
        does not widen the scale.

    Attributes
    ----------
    mean, var:
        The statistics (series units and their square); the variance is not yet corrected for
        its start at 0, which :meth:`standardise` does with the number of points seen.
    seen:
        The points learned so far (the detectors count their warm-up with it too).
    """

    __slots__ = ("_clip", "_fading", "mean", "seen", "var")

    def __init__(self, fading: float, clip: float) -> None:
        self._fading = fading
        self._clip = clip
        self.mean = 0.0
        self.var = 0.0
        self.seen = 0

    def standardise(self, x: float) -> tuple[float, float]:
        """``x``'s distance from the mean in spreads and the mean, both before ``x``; then learn
        ``x`` (the first point sets the mean)."""
        seen = self.seen
        self.seen = seen + 1
        if seen == 0:
            self.mean = x
            return 0.0, x
        mean, var, fading = self.mean, self.var, self._fading
        keep = 1.0 - fading
        # Bias-corrected spread (the variance starts at 0), floored relative to the level.
        std = sqrt(var / (1.0 - keep**seen)) + 1e-9 + 1e-6 * abs(mean)
        delta = x - mean
        z = delta / std
        if seen > 30:
            limit = self._clip * std
            delta = max(-limit, min(limit, delta))
        self.mean = mean + fading * delta
        self.var = keep * (var + fading * delta * delta)
        return z, mean


class NoveltyGate:
    """Verdicts from an anomaly likelihood: the first high point of an incident is the news.

    Parameters
    ----------
    peak_decay:
        Per-point decay of the recent peak (0 < d < 1).
    damping:
        Factor applied to a score that is not above the recent peak, and to an open alert's.
    threshold:
        Likelihood (score units) above which a point is anomalous.
    fire_after, resolve_after:
        The :class:`~detectors.hysteresis.Hysteresis` of the alert (points).

    Attributes
    ----------
    peak:
        The recent peak of the likelihood.
    hysteresis:
        The alert state.
    """

    __slots__ = ("_damping", "_decay", "_threshold", "hysteresis", "peak")

    @classmethod
    def of(cls, params: NoveltyParams) -> NoveltyGate:
        """The gate of a detector with these parameters."""
        return cls(
            peak_decay=params.peak_decay,
            damping=params.damping,
            threshold=params.threshold,
            fire_after=params.fire_after,
            resolve_after=params.resolve_after,
        )

    def __init__(
        self,
        *,
        peak_decay: float,
        damping: float,
        threshold: float,
        fire_after: int,
        resolve_after: int,
    ) -> None:
        self._decay = peak_decay
        self._damping = damping
        self._threshold = threshold
        self.peak = 0.0
        self.hysteresis = Hysteresis(fire_after, resolve_after)

    def quiet(self, expected: float) -> Verdict:
        """The verdict of a point that is not judged (warm-up, unusable value): score 0."""
        return Verdict(0.0, expected, False, self.hysteresis.firing)

    def judge(self, likelihood: float, expected: float) -> Verdict:
        """The verdict of a point with this ``likelihood``; ``expected`` is reported as is."""
        hysteresis = self.hysteresis
        peak = self.peak
        decayed = peak * self._decay
        self.peak = likelihood if likelihood > decayed else decayed
        if hysteresis.firing:
            score = likelihood * self._damping
            anomalous = likelihood > self._threshold
        else:
            score = likelihood if likelihood > peak else likelihood * self._damping
            anomalous = score > self._threshold
        transition = hysteresis.step(anomalous)
        return Verdict(max(score, 0.0), expected, anomalous, hysteresis.firing, transition)
