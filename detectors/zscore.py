"""``zscore``: how many standard deviations a value is from a rolling baseline.

The baseline is either exponentially weighted (river ``EWMean``/``EWVar``, O(1) memory) or the
last ``window_size`` learned points (river ``Var`` with ``revert``, O(window) memory). Each value is
scored against the baseline as it was *before* the value arrived, then learned.
"""

from __future__ import annotations

import collections
import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, Final, Self

from pydantic import Field
from river import stats

from detectors._state import (
    decode_bytes,
    get_bool,
    get_float,
    get_int,
    get_list,
    load_hysteresis,
)
from detectors.base import DetectorParams, Direction, ValueDetector, Verdict
from detectors.guards import MAX_ABS_VALUE, OutlierGate, usable
from detectors.hysteresis import Hysteresis
from detectors.params import (
    Fading,
    FireAfter,
    LearnOutliers,
    RelearnAfter,
    ResolveAfter,
    Threshold,
    Warmup,
    constants_for,
)

__all__ = ["Baseline", "ZScoreDetector", "ZScoreParams"]

_NAN: Final = math.nan


class Baseline(enum.StrEnum):
    """How :class:`ZScoreDetector` estimates the normal mean and spread."""

    #: Exponentially weighted mean and variance: O(1) memory, adapts continuously.
    EWM = "ewm"
    #: Mean and sample variance (ddof=1) of the last ``window_size`` learned points.
    WINDOW = "window"


class ZScoreParams(DetectorParams):
    """Parameters of :class:`ZScoreDetector`; all counts are in points (observations)."""

    baseline: Baseline = Field(
        Baseline.EWM, description="How the baseline is kept: 'ewm' (O(1)) or 'window'."
    )
    fading_factor: Fading = Field(
        0.05,
        description=(
            "Weight of the newest point in the 'ewm' baseline (dimensionless); the baseline "
            "remembers roughly the last 1/fading_factor points. Ignored by 'window'."
        ),
    )
    window_size: int = Field(
        100,
        ge=2,
        le=100_000,
        description="Points in the 'window' baseline (memory is O(window_size)). Ignored by 'ewm'.",
    )
    warmup: Warmup = 30
    #: In standard deviations.
    threshold: Threshold = 4.0
    direction: Direction = Field(
        Direction.BOTH,
        description="Which deviations score: 'up' (above the mean), 'down' (below) or 'both'.",
    )
    min_std: float = Field(
        1e-9,
        gt=0.0,
        description="Absolute floor of the standard deviation, in the series' own units.",
    )
    min_std_ratio: float = Field(
        0.01,
        ge=0.0,
        description=(
            "Floor of the standard deviation as a fraction of |mean| (dimensionless), so a "
            "near-flat series does not turn a tiny wiggle into a huge score."
        ),
    )
    #: Outliers are points with ``|z| > threshold``, whatever the direction.
    learn_anomalies: LearnOutliers = False
    relearn_after: RelearnAfter = 20
    fire_after: FireAfter = 3
    resolve_after: ResolveAfter = 5


class _Constants:
    """The per-point constants of a :class:`ZScoreDetector`, shared by those of one params
    (plain attributes: pydantic attribute access is slower; one shared object keeps them out of
    every series' memory)."""

    __slots__ = (
        "direction",
        "fading",
        "keep",
        "min_std",
        "min_std_ratio",
        "threshold",
        "warmup",
    )

    def __init__(self, params: ZScoreParams) -> None:
        self.warmup = params.warmup
        self.threshold = params.threshold
        self.min_std = params.min_std
        self.min_std_ratio = params.min_std_ratio
        # +1: score z; -1: score -z; 0: score |z|.
        self.direction = {Direction.UP: 1.0, Direction.DOWN: -1.0, Direction.BOTH: 0.0}[
            params.direction
        ]
        self.fading = params.fading_factor
        self.keep = 1.0 - params.fading_factor


class _WindowBaseline:
    """River ``Var`` (Welford, ddof=1) over the last ``size`` learned values.

    ``revert`` accumulates rounding error that never decays (and can push the variance below 0
    after a level shift), so the statistic is recomputed from the window every ``size`` points:
    O(1) amortised, and drift is bounded.
    """

    __slots__ = ("_since_rebuild", "_size", "_values", "_var")

    def __init__(self, size: int) -> None:
        self._size = size
        self._values: collections.deque[float] = collections.deque()
        self._var: Any = stats.Var(ddof=1)
        self._since_rebuild = 0

    def stats(self) -> tuple[float, float]:
        var = self._var
        return var.mean._mean, var.get()

    def learn(self, x: float) -> None:
        values = self._values
        if len(values) == self._size:
            self._var.revert(values.popleft())
        self._var.update(x)
        values.append(x)
        self._since_rebuild += 1
        if self._since_rebuild >= self._size:
            self._rebuild(values)

    def _rebuild(self, values: Iterable[float]) -> None:
        var = stats.Var(ddof=1)
        for value in values:
            var.update(value)
        self._var = var
        self._since_rebuild = 0

    def to_state(self) -> dict[str, Any]:
        return {
            "values": list(self._values),
            "mean": self._var.mean._mean,
            "s": self._var._S,
            "since_rebuild": self._since_rebuild,
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        values = get_list(state, "values")
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"detector state: 'values' holds a non-number {value!r}")
            if not usable(value):
                raise ValueError(f"detector state: 'values' holds an invalid number {value!r}")
        floats = [float(value) for value in values]
        if len(floats) > self._size:
            # window_size shrank since the save: keep the newest points, recompute exactly.
            self._values = collections.deque(floats[-self._size :])
            self._rebuild(self._values)
            return
        self._values = collections.deque(floats)
        var = stats.Var(ddof=1)
        var.mean.n = float(len(floats))
        var.mean._mean = get_float(state, "mean") if floats else 0.0
        var._S = get_float(state, "s") if floats else 0.0
        self._var = var
        self._since_rebuild = min(get_int(state, "since_rebuild"), self._size - 1)


class ZScoreDetector(ValueDetector[ZScoreParams]):
    """Flag values far from a rolling mean, in units of the rolling standard deviation.

    Each value ``x`` is scored against the baseline learned from earlier values only::

        z = (x - mean) / max(std, min_std, min_std_ratio * |mean|)

    and the score is ``max(z, 0)`` for ``direction="up"``, ``max(-z, 0)`` for ``"down"`` and
    ``|z|`` for ``"both"``. A value is anomalous when its score exceeds ``threshold``; the alert
    fires after ``fire_after`` anomalous values in a row and resolves after ``resolve_after``
    normal ones. ``Verdict.expected`` is the mean the value was compared with.

    Guards:

    * The first ``warmup`` values are learned but score 0 (never anomalous).
    * A variance that rounds to slightly below 0 is treated as 0; a flat series (std 0) uses the
      floor, so scores stay finite.
    * ``nan``, ``inf`` and values with ``|x| >= 1e150`` (whose square would overflow) are not
      learned and do not move the alert state: their verdict has score 0, is not anomalous, and
      repeats the current ``firing`` flag with no transition.
    * Baseline protection: unless ``learn_anomalies``, outliers (``|z| > threshold``, whatever the
      direction) are not learned, so an incident does not inflate its own baseline. After
      ``relearn_after`` outliers in a row the detector learns them again: a lasting level shift
      then becomes the new normal and the alert resolves instead of firing forever (with the
      defaults, about 25 points after a 10-sigma step). With ``learn_anomalies=True`` and the
      ``ewm`` baseline, a step inflates the variance at once and is absorbed within 2 or 3
      points, so with ``fire_after >= 3`` a level shift may never fire.

    Per-point work is O(1) (amortised O(1) for ``baseline="window"``). ``ts`` is not used: the
    baseline counts points, not seconds.

    Parameters
    ----------
    params:
        See :class:`ZScoreParams`.

    Examples
    --------
    >>> det = ZScoreDetector(ZScoreParams(warmup=10, fire_after=1))
    >>> values = [10.0, 10.4, 9.8, 10.1, 9.9, 10.2, 10.0, 9.7, 10.3, 10.0, 10.1, 25.0]
    >>> verdicts = [det.update(v, ts=float(t)) for t, v in enumerate(values)]
    >>> [v.anomalous for v in verdicts[-3:]]
    [False, False, True]
    >>> spike = verdicts[-1]
    >>> round(spike.expected, 2), round(spike.score, 1), spike.transition
    (10.02, 116.0, <Transition.FIRED: 'fired'>)

    The spike was held out of the baseline, so the next normal value scores low again:

    >>> round(det.update(10.0, ts=12.0).score, 2)
    0.15
    """

    kind: ClassVar[str] = "zscore"
    params_type: ClassVar[type[DetectorParams]] = ZScoreParams

    __slots__ = ("_c", "_hysteresis", "_mean", "_outliers", "_seen", "_sq", "_window")

    def __init__(self, params: ZScoreParams) -> None:
        super().__init__(params)
        self._c = constants_for(params, _Constants)
        # The "ewm" baseline, in plain floats: river's definitions, ``m <- f*x + (1-f)*m`` and
        # ``s <- f*x*x + (1-f)*s`` with the first value initialising both, and
        # ``variance = s - m*m`` (which can round to slightly below 0). Four calls into Rust per
        # point (river's EWMean and EWVar) cost more than this arithmetic.
        self._mean = 0.0
        self._sq = 0.0  # the weighted mean of squares
        self._window = (
            None if params.baseline is Baseline.EWM else _WindowBaseline(params.window_size)
        )
        self._hysteresis = Hysteresis(params.fire_after, params.resolve_after)
        self._seen = 0  # points learned, counted up to ``warmup`` only
        self._outliers = OutlierGate(params.learn_anomalies, params.relearn_after)

    def _learn(self, x: float) -> None:
        window = self._window
        if window is not None:
            window.learn(x)
        elif self._seen:
            c = self._c
            self._mean = c.fading * x + c.keep * self._mean
            self._sq = c.fading * (x * x) + c.keep * self._sq
        else:
            self._mean, self._sq = x, x * x

    def update(self, value: float, ts: float) -> Verdict:
        """Score ``value`` against the baseline, then learn it (see the class docstring).

        Parameters
        ----------
        value:
            The observation, in the series' own units.
        ts:
            Its event time in epoch seconds (unused by this detector).
        """
        x = float(value)
        c = self._c
        window = self._window
        if window is None:
            mean = self._mean
            var = self._sq - mean * mean
        else:
            mean, var = window.stats()
        seen = self._seen
        if not -MAX_ABS_VALUE < x < MAX_ABS_VALUE:  # not usable (false for nan too)
            return Verdict(0.0, mean if seen else _NAN, False, self._hysteresis.firing)
        if seen < c.warmup:
            self._learn(x)
            self._seen = seen + 1
            return Verdict(0.0, mean if seen else _NAN, False, self._hysteresis.firing)

        std = math.sqrt(var) if var > 0.0 else 0.0
        floor = c.min_std_ratio * abs(mean)
        if floor < c.min_std:
            floor = c.min_std
        if std < floor:
            std = floor
        z = (x - mean) / std
        magnitude = abs(z)
        direction = c.direction
        if direction == 0.0:
            score = magnitude
        else:
            score = z * direction
            if score < 0.0:
                score = 0.0
        threshold = c.threshold
        anomalous = score > threshold

        outliers = self._outliers
        if magnitude <= threshold:  # the common case of OutlierGate.admits, inline
            outliers.run = 0
            self._learn(x)
        elif outliers.admits(True):
            self._learn(x)

        hysteresis = self._hysteresis
        transition = hysteresis.step(anomalous)
        return Verdict(score, mean, anomalous, hysteresis.firing, transition)

    def update_many(
        self, values: Sequence[float], times: Sequence[float]
    ) -> list[tuple[int, Verdict]]:
        """:meth:`update` for a run of points (floats), building only the verdicts that matter
        to alerts and counts (see :meth:`~detectors.base.ValueDetector.update_many`).

        >>> det = ZScoreDetector(ZScoreParams(warmup=3, fire_after=1))
        >>> [(i, v.transition.value) for i, v in det.update_many([5.0, 5.1, 4.9, 60.0], range(4))]
        [(3, 'fired')]
        """
        # What update() does point by point, in one loop over local variables (the
        # conformance checks hold the two to the same verdicts and states).
        c = self._c  # read once a run, kept in locals for the loop
        warmup, threshold, direction = c.warmup, c.threshold, c.direction
        fading, keep, min_std, min_std_ratio = c.fading, c.keep, c.min_std, c.min_std_ratio
        window = self._window
        mean, sq, seen = self._mean, self._sq, self._seen
        outliers, hysteresis = self._outliers, self._hysteresis
        found: list[tuple[int, Verdict]] = []
        for i, x in enumerate(values):
            if window is None:
                var = sq - mean * mean
            else:
                mean, var = window.stats()
            usable = -MAX_ABS_VALUE < x < MAX_ABS_VALUE  # false for nan too
            if not usable or seen < warmup:  # not scored; the alert state does not move
                if hysteresis.firing:
                    found.append(
                        (i, Verdict(0.0, mean if seen else _NAN, False, hysteresis.firing))
                    )
                if not usable:
                    continue  # nor learned
                learn = True  # a point of the warm-up
            else:
                std = math.sqrt(var) if var > 0.0 else 0.0
                floor = min_std_ratio * abs(mean)
                if floor < min_std:
                    floor = min_std
                if std < floor:
                    std = floor
                z = (x - mean) / std
                magnitude = abs(z)
                if direction == 0.0:
                    score = magnitude
                else:
                    score = z * direction
                    if score < 0.0:
                        score = 0.0
                anomalous = score > threshold
                if magnitude <= threshold:  # the common case of OutlierGate.admits, inline
                    outliers.run = 0
                    learn = True
                else:
                    learn = outliers.admits(True)
                transition = (
                    hysteresis.step(anomalous)
                    if anomalous or hysteresis.firing or hysteresis._run
                    else None  # a normal point on a quiet series: step() would change nothing
                )
                if anomalous or transition is not None or hysteresis.firing:
                    found.append(
                        (i, Verdict(score, mean, anomalous, hysteresis.firing, transition))
                    )
            if learn:
                if window is not None:
                    window.learn(x)
                elif seen:
                    mean = fading * x + keep * mean
                    sq = fading * (x * x) + keep * sq
                else:
                    mean, sq = x, x * x
                if seen < warmup:
                    seen += 1
        if window is None:
            self._mean, self._sq = mean, sq
        self._seen = seen
        return found

    def expected_band(self) -> tuple[float, float, float] | None:
        """``(mean, mean - threshold * std, mean + threshold * std)``: values outside score above
        ``threshold`` (std with its floors, as in :meth:`update`); ``None`` before any value.

        >>> det = ZScoreDetector(ZScoreParams(warmup=2, threshold=3.0, min_std=1.0))
        >>> det.expected_band() is None
        True
        >>> _ = det.update(10.0, 0.0), det.update(10.0, 1.0)
        >>> det.expected_band()
        (10.0, 7.0, 13.0)
        """
        if not self._seen:
            return None
        c = self._c
        if self._window is None:
            mean, var = self._mean, self._sq - self._mean * self._mean
        else:
            mean, var = self._window.stats()
        std = max(math.sqrt(var) if var > 0.0 else 0.0, c.min_std, c.min_std_ratio * abs(mean))
        return mean, mean - c.threshold * std, mean + c.threshold * std

    def describe(self) -> dict[str, Any]:
        """Warm-up, mean and band (:meth:`expected_band`) the next value meets."""
        c, band = self._c, self.expected_band()
        return {
            "seen": self._seen,
            "warmup": c.warmup,
            "warm": self._seen >= c.warmup,
            "expected": band[0] if band else None,
            "std": (band[2] - band[0]) / c.threshold if band else None,
            "band": [band[1], band[2]] if band else None,
            "threshold": c.threshold,
            "firing": self._hysteresis.firing,
        }

    def to_state(self) -> dict[str, Any]:
        """The whole mutable state as a JSON-serialisable dict (no non-finite floats)."""
        window = self._window
        baseline = (
            window.to_state()
            if window is not None
            else {
                "fading_factor": self._c.fading,
                "mean": self._mean,
                "sq": self._sq,
                "started": self._seen > 0,
            }
        )
        return {
            "baseline": self.params.baseline.value,
            **baseline,
            "seen": self._seen,
            "outlier_run": self._outliers.run,
            "hysteresis": self._hysteresis.to_state(),
        }

    def _load_ewm(self, state: Mapping[str, Any]) -> bool:
        """Load the "ewm" baseline from ``state``; whether it had started."""
        saved = get_float(state, "fading_factor")
        if saved != self._c.fading:
            raise ValueError(
                f"detector state: saved with fading_factor={saved}, "
                f"params have {self._c.fading}; the state cannot be reused"
            )
        if "ewmean" not in state:
            self._mean = get_float(state, "mean")
            self._sq = get_float(state, "sq")
            return get_bool(state, "started")
        # Saved by the river-backed version: its EWMean and EWVar blobs.
        cores: tuple[Any, Any] = (
            stats.EWMean(saved)._ewmean,
            stats.EWVar(saved)._ewvar,
        )
        for key, core in zip(("ewmean", "ewvar"), cores, strict=True):
            blob = decode_bytes(state.get(key), key)
            try:
                core.__setstate__(blob)
            except BaseException as exc:
                # A bad blob makes river's Rust decoder panic; pyo3's PanicException derives
                # from BaseException, so it is matched by name (KeyboardInterrupt etc. pass on).
                if isinstance(exc, Exception) or type(exc).__name__ == "PanicException":
                    raise ValueError(f"detector state: {key!r} is not a river state") from exc
                raise
        mean, var = cores[0].get(), cores[1].get()
        self._mean, self._sq = mean, var + mean * mean
        return bool(mean != 0.0 or var != 0.0)

    @classmethod
    def from_state(cls, params: ZScoreParams, state: dict[str, Any]) -> Self:
        """Rebuild a detector from ``params`` and a dict produced by :meth:`to_state`.

        With the same ``params`` the restored detector's future verdicts are identical, bit for
        bit. ``threshold``, ``direction``, ``fire_after`` etc. may differ from the saved ones;
        ``baseline`` and ``fading_factor`` may not (``ValueError``). A smaller ``window_size``
        keeps the newest points.

        Raises
        ------
        ValueError
            If ``state`` is malformed or was saved with an incompatible baseline.
        """
        detector = cls(params)
        saved_baseline = state.get("baseline")
        if saved_baseline != params.baseline.value:
            raise ValueError(
                f"detector state: saved with baseline={saved_baseline!r}, "
                f"params have {params.baseline.value!r}"
            )
        seen = min(get_int(state, "seen"), params.warmup)
        if detector._window is not None:
            detector._window.load_state(state)
        elif detector._load_ewm(state):
            seen = max(seen, 1)  # started: the first point initialised the baseline
        else:
            seen = 0
        detector._seen = seen
        detector._outliers.load(get_int(state, "outlier_run"))
        load_hysteresis(detector._hysteresis, state, "hysteresis")
        return detector
