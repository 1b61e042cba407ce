"""``error_spike``: a window whose share of error events is significantly above the baseline.

The input is per-window counts (errors, total events), not a float series: the engine counts
ERROR and CRITICAL log events per window and calls :meth:`ErrorSpikeDetector.update_window`.
"""

from __future__ import annotations

import enum
import math
from typing import Any, ClassVar, Final, Self

from pydantic import Field

from detectors._state import get_float, get_int, load_hysteresis
from detectors.base import DetectorParams, Verdict, WindowDetector
from detectors.guards import OutlierGate
from detectors.hysteresis import Hysteresis
from detectors.params import (
    Fading,
    FireAfter,
    LearnOutliers,
    RelearnAfter,
    ResolveAfter,
    Threshold,
    Warmup,
)

__all__ = ["ErrorSpikeDetector", "ErrorSpikeParams", "Statistic", "likelihood_ratio_z", "wald_z"]

_NAN: Final = math.nan


class Statistic(enum.StrEnum):
    """How :class:`ErrorSpikeDetector` turns a window's counts into a z-score."""

    #: Signed root of the binomial likelihood-ratio statistic (accurate tails at small counts).
    LIKELIHOOD_RATIO = "likelihood_ratio"
    #: Normal approximation ``(errors - n*p0) / sqrt(n*p0*(1-p0))`` (too many alerts when
    #: ``n*p0`` is small, e.g. 100 events at a 1% baseline).
    WALD = "wald"


class ErrorSpikeParams(DetectorParams):
    """Parameters of :class:`ErrorSpikeDetector`; counts are in windows unless stated."""

    fading_factor: Fading = Field(
        0.05,
        description=(
            "Weight of the newest window in the baseline error ratio (dimensionless); the baseline "
            "remembers roughly the last 1/fading_factor non-empty windows."
        ),
    )
    min_baseline_ratio: Fading = Field(
        0.01,
        description=(
            "Floor of the baseline error ratio (errors/events) used by the test, so a service "
            "with no past errors does not make a single error infinitely significant."
        ),
    )
    statistic: Statistic = Field(
        Statistic.LIKELIHOOD_RATIO,
        description="The binomial z-score: 'likelihood_ratio' (default) or 'wald'.",
    )
    #: The binomial z-score, in standard deviations.
    threshold: Threshold = 4.0
    min_errors: int = Field(
        5, ge=0, description="Fewest error events (per window) a window needs to be anomalous."
    )
    min_ratio: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Smallest window error ratio (errors/events) that can be anomalous.",
    )
    #: Non-empty windows.
    warmup_windows: Warmup = 5
    learn_anomalies: LearnOutliers = False
    relearn_after: RelearnAfter = 30
    fire_after: FireAfter = 1
    #: An empty window counts as normal.
    resolve_after: ResolveAfter = 2


class ErrorSpikeDetector(WindowDetector[ErrorSpikeParams]):
    """Flag windows whose error ratio is significantly above an exponentially weighted baseline.

    The baseline ratio ``p`` is the ratio of two exponentially weighted sums over past windows,
    ``E <- (1-f)*E + errors`` and ``N <- (1-f)*N + total``, so busy windows weigh more than quiet
    ones. A window of ``n`` events with ``k`` errors (ratio ``r = k/n``) is scored with a one-sided
    binomial test against ``p0 = max(p, min_baseline_ratio)``, as a z-score (``score = max(z, 0)``):

    * ``statistic="likelihood_ratio"`` (default): the signed root of the likelihood-ratio
      statistic, ``z = sqrt(2*(k*ln(r/p0) + (n-k)*ln((1-r)/(1-p0))))`` when ``r > p0``, else 0.
    * ``statistic="wald"``: the normal approximation ``z = (k - n*p0) / sqrt(n*p0*(1-p0))``.

    Both are about N(0, 1) under the baseline when ``n*p0`` is large, but at small counts the Wald
    z has a far heavier tail than the normal (``P(z > 4) = 3.2e-5``): with 100 events per window
    at a 1% baseline, ``P(z > 4)`` is 3.4e-3 for Wald (5 errors give z = 4.02) against 8e-6 for
    the likelihood ratio (it needs 8 errors), i.e. a false alert every ~300 windows instead of
    every ~100,000.

    It is anomalous when ``z > threshold`` (hence its ratio is above the baseline) and it has at
    least ``min_errors`` errors and a ratio of at least ``min_ratio``. ``Verdict.expected`` is the
    baseline ratio ``p`` (``nan`` before any window is learned).

    Rules:

    * The first ``warmup_windows`` non-empty windows are learned but score 0.
    * An empty window (``total == 0``) carries no evidence about the ratio: it is not scored or
      learned, but counts as a *normal* window for the alert state, so a service that went quiet
      resolves its alert after ``resolve_after`` windows (missing data is another detector's job).
    * Unless ``learn_anomalies``, anomalous windows are not learned, until ``relearn_after`` of
      them in a row: a lasting new error ratio then becomes the baseline and the alert resolves
      once the baseline has caught up (within about ``2 / fading_factor`` more windows).

    :meth:`update` (the :class:`~detectors.base.ValueDetector` entry point) treats each call
    as a window of one event that is an error when ``value > 0``; with ``min_errors >= 2`` such
    a window is never anomalous on its own, so feed the detector with :meth:`update_window`.

    Parameters
    ----------
    params:
        See :class:`ErrorSpikeParams`.

    Examples
    --------
    >>> det = ErrorSpikeDetector(ErrorSpikeParams(warmup_windows=3))
    >>> windows = [(2, 200), (1, 180), (3, 210), (2, 190), (40, 200), (2, 205), (1, 190)]
    >>> verdicts = [det.update_window(e, n, ts=60.0 * t) for t, (e, n) in enumerate(windows)]
    >>> [v.anomalous for v in verdicts]
    [False, False, False, False, True, False, False]
    >>> spike = verdicts[4]
    >>> round(spike.expected, 4), round(spike.score, 1), spike.transition
    (0.0103, 13.0, <Transition.FIRED: 'fired'>)
    >>> verdicts[-1].transition
    <Transition.RESOLVED: 'resolved'>
    """

    kind: ClassVar[str] = "error_spike"
    params_type: ClassVar[type[DetectorParams]] = ErrorSpikeParams

    __slots__ = (
        "_decay",
        "_errors",
        "_hysteresis",
        "_min_baseline_ratio",
        "_min_errors",
        "_min_ratio",
        "_outliers",
        "_seen",
        "_threshold",
        "_total",
        "_warmup",
        "_z",
    )

    def __init__(self, params: ErrorSpikeParams) -> None:
        super().__init__(params)
        self._decay = 1.0 - params.fading_factor
        self._min_baseline_ratio = params.min_baseline_ratio
        self._threshold = params.threshold
        self._min_errors = params.min_errors
        self._min_ratio = params.min_ratio
        self._warmup = params.warmup_windows
        self._z = likelihood_ratio_z if params.statistic is Statistic.LIKELIHOOD_RATIO else wald_z
        self._hysteresis = Hysteresis(params.fire_after, params.resolve_after)
        self._errors = 0.0  # exponentially weighted sum of error counts
        self._total = 0.0  # exponentially weighted sum of event counts
        self._seen = 0  # non-empty windows learned, counted up to ``warmup_windows`` only
        self._outliers = OutlierGate(params.learn_anomalies, params.relearn_after)

    @property
    def baseline_ratio(self) -> float:
        """The learned error ratio (errors/events), ``nan`` before any window is learned."""
        return self._errors / self._total if self._total > 0.0 else _NAN

    def update_window(self, errors: int, total: int, ts: float) -> Verdict:
        """Score one window's counts against the baseline, then learn them.

        Parameters
        ----------
        errors:
            Error events (ERROR and CRITICAL) in the window, ``0 <= errors <= total``.
        total:
            All events in the window.
        ts:
            The window's event time in epoch seconds (unused: the baseline counts windows).

        Raises
        ------
        ValueError
            If the counts are negative or ``errors > total``; nothing is learned then.
        """
        if not 0 <= errors <= total:
            raise ValueError(f"need 0 <= errors <= total, got errors={errors}, total={total}")
        hysteresis = self._hysteresis
        expected = self._errors / self._total if self._total > 0.0 else _NAN
        if total == 0:
            transition = hysteresis.step(False)
            return Verdict(0.0, expected, False, hysteresis.firing, transition)
        if self._seen < self._warmup:
            self._seen += 1
            self._learn(errors, total)
            return Verdict(0.0, expected, False, hysteresis.firing)

        p0 = expected if expected > self._min_baseline_ratio else self._min_baseline_ratio
        z = self._z(errors, total, p0)
        score = z if z > 0.0 else 0.0
        anomalous = (
            z > self._threshold and errors >= self._min_errors and errors / total >= self._min_ratio
        )

        if self._outliers.admits(anomalous):
            self._learn(errors, total)

        transition = hysteresis.step(anomalous)
        return Verdict(score, expected, anomalous, hysteresis.firing, transition)

    def _learn(self, errors: int, total: int) -> None:
        decay = self._decay
        self._errors = decay * self._errors + errors
        self._total = decay * self._total + total

    def update(self, value: float, ts: float) -> Verdict:
        """Score a window of one event that is an error when ``value > 0``.

        This adapts the generic detector interface; the engine calls :meth:`update_window`.
        A non-finite ``value`` is ignored: not learned, and the alert state does not move.
        """
        if not math.isfinite(value):
            return Verdict(0.0, self.baseline_ratio, False, self._hysteresis.firing)
        return self.update_window(1 if value > 0 else 0, 1, ts)

    def to_state(self) -> dict[str, Any]:
        """The whole mutable state as a JSON-serialisable dict (no non-finite floats)."""
        return {
            "errors": self._errors,
            "total": self._total,
            "seen": self._seen,
            "anomalous_run": self._outliers.run,
            "hysteresis": self._hysteresis.to_state(),
        }

    @classmethod
    def from_state(cls, params: ErrorSpikeParams, state: dict[str, Any]) -> Self:
        """Rebuild a detector from ``params`` and a dict produced by :meth:`to_state`.

        With the same ``params`` the restored detector's future verdicts are identical.

        Raises
        ------
        ValueError
            If ``state`` is malformed.
        """
        detector = cls(params)
        errors = get_float(state, "errors")
        total = get_float(state, "total")
        if not 0.0 <= errors <= total:
            raise ValueError(f"detector state: need 0 <= errors <= total, got {errors}, {total}")
        detector._errors = errors
        detector._total = total
        detector._seen = min(get_int(state, "seen"), params.warmup_windows)
        detector._outliers.load(get_int(state, "anomalous_run"))
        load_hysteresis(detector._hysteresis, state, "hysteresis")
        return detector


def wald_z(errors: int, total: int, p0: float) -> float:
    """Wald z-score of ``errors`` out of ``total`` events against an error ratio ``p0``.

    >>> round(wald_z(5, 100, 0.01), 2)
    4.02
    """
    variance = total * p0 * (1.0 - p0)
    return (errors - total * p0) / math.sqrt(variance) if variance > 0.0 else 0.0


def likelihood_ratio_z(errors: int, total: int, p0: float) -> float:
    """One-sided signed-root likelihood-ratio z of ``errors`` of ``total`` events against ``p0``.

    0.0 when the ratio ``errors/total`` is not above ``p0`` (or ``total`` is 0).

    >>> round(likelihood_ratio_z(5, 100, 0.01), 2), round(likelihood_ratio_z(8, 100, 0.01), 2)
    (2.87, 4.45)
    """
    if total <= 0:
        return 0.0
    ratio = errors / total
    if ratio <= p0:
        return 0.0
    deviance = errors * math.log(ratio / p0)
    if errors < total:
        deviance += (total - errors) * math.log((1.0 - ratio) / (1.0 - p0))
    return math.sqrt(2.0 * deviance) if deviance > 0.0 else 0.0
