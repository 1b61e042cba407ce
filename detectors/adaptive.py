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
   column ranks incidents the way the alerts do. With ``score_needs_raw`` a novel point whose
   own raw evidence is below ``alert_min_raw`` (which can never open an alert) is damped too.

The score is non-negative, higher = more anomalous, continuous (distinct near the top). A point is
anomalous when the score exceeds ``threshold`` and the point's own raw evidence (pattern residual
in units of its mean absolute error, about 0.8 standard deviations on Gaussian noise; or long-run
z-score in standard deviations) exceeds ``alert_min_raw`` (a short run of middling residuals,
which plain noise produces, is ranked but not alerted); an incident opens after ``fire_after``
such points and closes after ``resolve_after`` normal ones.

6. **Paging**: an incident pages (``Transition.FIRED``) at once only when its raw evidence
   reaches ``alert_sure_raw`` (6: about 4.8 standard deviations of Gaussian noise), else only
   when one of the next ``confirm_within`` points confirms it (likelihood above ``threshold``
   and raw evidence above ``alert_min_raw`` again), or a later point of the open incident is
   sure. Plain noise opens about 12 weak incidents per 100,000 points (a chance cluster of
   2.4-4 sigma residuals lifts the likelihood, or a 4-sigma new record); they page about 0.8
   times per 100,000 points (``bench/false_alarms.py``; 11.9 with ``alert_sure_raw = 0``, which
   pages every incident). The price: the shared NAB part's shipped score is 67.2 instead of
   69.3 (two files had windows caught only by such weak evidence). The score is that of the
   incident either way, so paging changes no ranking.

Warm-up: the first ``warmup`` points (60 by default: 10 minutes at 10 s sampling) are learned and
scored 0; no alert fires during them. After a lasting level shift the long-run level, the
likelihoods and the record range re-learn the new normal (the shift's alert fires, then resolves).

Memory: O(profile buckets) (288 daily + 168 weekly int16 codes by default, allocated as the
buckets are first seen) plus O(``short_window``): about 2.0 KB in memory once the profiles hold
a whole day and week (``bench/detectors.py``, tracemalloc; 5.0 KB before issue 12) and 1.8 KB of
JSON state (5.8 KB before). Time O(``short_window``) per point.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Sequence
from math import sqrt, tanh
from typing import Any, ClassVar, Final, Self

from detectors._state import (
    decode_doubles,
    encode_doubles,
    get_bool,
    get_float,
    get_int,
    get_mapping,
    load_hysteresis,
)
from detectors.adaptive_params import AdaptiveParams
from detectors.base import DetectorParams, Transition, ValueDetector, Verdict
from detectors.guards import MAX_ABS_VALUE
from detectors.hysteresis import Hysteresis
from detectors.likelihood import AnomalyLikelihood, read_likelihood_state
from detectors.params import constants_for
from detectors.seasonal import SeasonalBaseline

__all__ = ["AdaptiveDetector", "AdaptiveParams"]

_NAN: Final = math.nan
#: The ``_rings`` of every detector with the default window (its rings are attributes): empty.
_NO_RINGS: Final[array[float]] = array("d")
_LOWEST: Final = -MAX_ABS_VALUE

_FIRED: Final = Transition.FIRED
# The transition of a judged point (AdaptiveDetector._judge), and the Verdict's for each.
_QUIET: Final = 0
_FIRES: Final = 1
_RESOLVES: Final = 2
_TRANSITIONS: Final = (None, Transition.FIRED, Transition.RESOLVED)

# The scalars of an AdaptiveDetector, in the order its saved state's doubles begin with them
# (then come the rings).
_SCALAR_NAMES: Final = (
    "_level_mean",
    "_level_var",
    "_peak",
    "_pattern_mean",
    "_pattern_var",
    "_level_lik_mean",
    "_level_lik_var",
)
_SCALARS: Final = len(_SCALAR_NAMES)


def _optional(value: float) -> float | None:
    return None if value != value else value


def _settled(keep: float) -> int:
    """The first ``n`` with ``1.0 - keep**n == 1.0``: the bias correction's weight is then exact.

    ``keep**n`` falls by the factor ``keep`` per step, far more than its rounding error (pow is
    accurate to within an ulp), so once ``1.0 - keep**n`` rounds to 1.0 it does so for every
    larger ``n`` too. For a weight so close to 1 that this is not clear (and the series would
    need more than 10**9 points anyway), never: ``sys.maxsize``.
    """
    if not keep < 1.0 - 1e-9:
        return sys.maxsize
    n = max(1, int(math.log(2.0**-54) / math.log(keep)) - 2)
    while 1.0 - keep**n == 1.0:
        n -= 1
    while 1.0 - keep**n != 1.0:
        n += 1
    return n


class _Constants:
    """The per-point constants of an :class:`AdaptiveDetector`, shared by those of one params.

    Plain attributes: pydantic attribute access is slower, and one shared object keeps them out
    of every series' memory.
    """

    __slots__ = (
        "alert_min_raw",
        "alert_sure_raw",
        "confirm_within",
        "damping",
        "level_clip",
        "level_fading",
        "level_keep",
        "likelihood_fading",
        "likelihood_keep",
        "peak_decay",
        "raw_cap",
        "record_min_z",
        "record_score",
        "record_tolerance",
        "score_needs_raw",
        "settled",
        "short_window",
        "sum_five",
        "threshold",
        "warmup",
    )

    def __init__(self, params: AdaptiveParams) -> None:
        self.warmup = params.warmup
        self.threshold = params.threshold
        self.damping = params.damping
        self.alert_min_raw = params.alert_min_raw
        self.alert_sure_raw = params.alert_sure_raw
        self.confirm_within = params.confirm_within
        self.peak_decay = params.peak_decay
        self.record_tolerance = params.record_tolerance
        self.record_min_z = params.record_min_z
        self.record_score = params.record_score
        self.level_fading = params.level_fading
        self.level_keep = 1.0 - params.level_fading
        self.level_clip = params.level_clip
        self.short_window = params.short_window
        self.likelihood_fading = params.likelihood_fading
        self.likelihood_keep = 1.0 - params.likelihood_fading
        self.raw_cap = params.raw_cap
        self.score_needs_raw = params.score_needs_raw
        # Up to Python 3.11 sum() of floats adds them left to right from 0.0: for the default
        # window of 5 the update writes those additions out. From 3.12 on sum() compensates
        # rounding, so it is called whatever the window (verdicts stay those of sum()).
        self.sum_five = params.short_window == 5 and sys.version_info < (3, 12)
        #: From this many learned points on, the level's bias correction divides by 1.0.
        self.settled = _settled(self.level_keep)


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

    # The two anomaly likelihoods are AnomalyLikelihood written out inline: they step together,
    # so they share the ring's fill count and position (and the per-point call overhead).
    # Memory and speed: compiled (detectors/compiled.py), the float attributes are C doubles in
    # the object (8 bytes each, read and written without a float object). The two rings (pattern
    # then level) are ``_p0``..``_p4`` and ``_q0``..``_q4`` for the default window of 5 (see
    # _Constants.sum_five), else one array of doubles, ``_rings`` (a float object would cost 32
    # bytes); :meth:`_ring_values` reads them either way.
    __slots__ = (
        "_armed",
        "_c",
        "_hysteresis",
        "_level_lik_mean",
        "_level_lik_var",
        "_level_mean",
        "_level_seen",
        "_level_var",
        "_p0",
        "_p1",
        "_p2",
        "_p3",
        "_p4",
        "_paging",
        "_pattern",
        "_pattern_mean",
        "_pattern_var",
        "_peak",
        "_q0",
        "_q1",
        "_q2",
        "_q3",
        "_q4",
        "_record_high",
        "_record_low",
        "_ring_filled",
        "_ring_pos",
        "_rings",
        "_seen",
    )

    def __init__(self, params: AdaptiveParams) -> None:
        super().__init__(params)
        self._c = constants_for(params, _Constants)
        self._pattern = SeasonalBaseline(params.seasonal)
        # Two AnomalyLikelihood (see __slots__); it checks the parameters.
        AnomalyLikelihood(params.short_window, params.likelihood_fading, params.raw_cap)
        # Level mean (nan: not yet) and variance, peak, each likelihood's long-run mean and
        # variance; the two rings (pattern, level) of short_window raw scores each, made from
        # one list (extending an array over-allocates).
        self._level_mean, self._level_var, self._peak = _NAN, 0.0, 0.0
        self._pattern_mean, self._pattern_var = 0.0, 1.0
        self._level_lik_mean, self._level_lik_var = 0.0, 1.0
        self._p0 = self._p1 = self._p2 = self._p3 = self._p4 = 0.0
        self._q0 = self._q1 = self._q2 = self._q3 = self._q4 = 0.0
        five = self._c.sum_five
        self._rings = _NO_RINGS if five else array("d", [0.0] * 2 * params.short_window)
        self._ring_filled = self._ring_pos = 0
        # Not yet is nan (compared as floats on the hot path), saved as None.
        self._record_low = self._record_high = _NAN
        self._level_seen = 0
        # The open incident (the hysteresis firing) pages only once its evidence is sure or
        # confirmed: _paging; points left to confirm a weak start: _armed.
        self._paging = False
        self._armed = 0
        self._seen = 0
        self._hysteresis = Hysteresis(params.fire_after, params.resolve_after)

    def update(self, value: float, ts: float) -> Verdict:
        """Score ``value`` (series units) observed at ``ts`` (epoch seconds), then learn it."""
        score, expected, anomalous, firing, change = self._judge(float(value), ts)
        return Verdict(score, expected, anomalous, firing, _TRANSITIONS[change])

    def update_many(
        self, values: Sequence[float], times: Sequence[float]
    ) -> list[tuple[int, Verdict]]:
        """:meth:`update` over a run of a series' points (see :meth:`ValueDetector.update_many`):
        one call, and a :class:`Verdict` only for the points that matter to alerts."""
        found: list[tuple[int, Verdict]] = []
        for i in range(len(values)):
            score, expected, anomalous, firing, change = self._judge(float(values[i]), times[i])
            if anomalous or firing or change:
                verdict = Verdict(score, expected, anomalous, firing, _TRANSITIONS[change])
                found.append((i, verdict))
        return found

    def _judge(self, x: float, ts: float) -> tuple[float, float, bool, bool, int]:
        """:meth:`update`'s work: the verdict's fields, the transition as ``_QUIET``, ``_FIRES``
        or ``_RESOLVES`` (compiled, a tuple of C values: no object per point)."""
        hysteresis = self._hysteresis
        # usable(x) and a finite ts, inlined: nan fails every comparison, inf - inf is nan.
        if not _LOWEST < x < MAX_ABS_VALUE or ts - ts != 0.0:
            return 0.0, _NAN, False, hysteresis.firing, _QUIET
        c = self._c
        raw_pattern, expected = self._pattern.step(x, ts)

        # Long-run level z-score of x, then learn x (clipped) into the level.
        mean = self._level_mean
        if mean != mean:
            self._level_mean = x
            raw_level = 0.0
        else:
            delta = x - mean
            seen = self._level_seen
            var = self._level_var
            # The variance starts at 0: divide by the weight learned so far (bias correction),
            # so young series are not judged against an underestimated spread. The weight
            # reaches 1.0 exactly (see _Constants.settled) and then stays there.
            if seen and seen < c.settled:
                std = (
                    sqrt(var / (1.0 - math.pow(c.level_keep, float(seen))))
                    + 1e-9
                    + 1e-6 * abs(mean)
                )
            else:  # the weight is 1.0 (var / 1.0 == var)
                std = sqrt(var) + 1e-9 + 1e-6 * abs(mean)
            size = abs(delta)
            raw_level = size / std
            if seen > 50:
                limit = c.level_clip * std
                if size > limit:
                    delta = limit if delta > 0.0 else -limit
            fading = c.level_fading
            self._level_mean = mean + fading * delta
            self._level_var = c.level_keep * (var + fading * delta * delta)
            if seen < c.settled:  # from then on the count changes nothing: stop (no new int)
                self._level_seen = seen + 1

        # The anomaly likelihood of each raw score (AnomalyLikelihood.update, twice), the larger.
        cap = c.raw_cap
        raw_pattern = raw_pattern if raw_pattern < cap else cap  # nan becomes the cap
        if raw_pattern < 0.0:
            raw_pattern = 0.0
        raw = raw_level if raw_level < cap else cap
        if raw < 0.0:
            raw = 0.0
        window = c.short_window
        filled = self._ring_filled
        if filled < window:
            slot = filled
            self._ring_filled = filled = filled + 1
        else:
            slot = self._ring_pos
            pos = slot + 1
            self._ring_pos = 0 if pos == filled else pos
        if c.sum_five:
            # The default window: the rings are ten float attributes (C doubles, no float object
            # read or written; an array's items are boxed on every read), and sum() is written
            # out (see sum_five).
            if slot == 0:
                self._p0 = raw_pattern
                self._q0 = raw
            elif slot == 1:
                self._p1 = raw_pattern
                self._q1 = raw
            elif slot == 2:
                self._p2 = raw_pattern
                self._q2 = raw
            elif slot == 3:
                self._p3 = raw_pattern
                self._q3 = raw
            else:
                self._p4 = raw_pattern
                self._q4 = raw
            pattern_sum = 0.0 + self._p0 + self._p1 + self._p2 + self._p3 + self._p4
            level_sum = 0.0 + self._q0 + self._q1 + self._q2 + self._q3 + self._q4
        else:
            rings = self._rings
            rings[slot] = raw_pattern
            rings[window + slot] = raw
            pattern_sum = sum(rings[:window])
            level_sum = sum(rings[window:])
        fading, keep = c.likelihood_fading, c.likelihood_keep
        mean, var = self._pattern_mean, self._pattern_var
        delta = pattern_sum / filled - mean
        self._pattern_mean = mean + fading * delta
        self._pattern_var = keep * (var + fading * delta * delta)
        likelihood = delta / (sqrt(var) + 1e-9)
        level_mean, level_var = self._level_lik_mean, self._level_lik_var
        delta = level_sum / filled - level_mean
        self._level_lik_mean = level_mean + fading * delta
        self._level_lik_var = keep * (level_var + fading * delta * delta)
        level_likelihood = delta / (sqrt(level_var) + 1e-9)
        if level_likelihood > likelihood:
            likelihood = level_likelihood

        # New record: how far x lies beyond the range learned so far, in ranges (0 while the
        # range is empty and during warm-up); then widen the range.
        low, high = self._record_low, self._record_high
        seen = self._seen
        if low != low or high != high:
            self._record_low = self._record_high = x
        else:
            span = high - low
            if span > 0.0 and seen >= c.warmup:
                excess = x - high
                if low - x > excess:
                    excess = low - x
                excess /= span
                if excess > c.record_tolerance and raw_level > c.record_min_z:
                    record = c.record_score + 0.1 * tanh(excess)
                    if record > likelihood:
                        likelihood = record
            if x < low:
                self._record_low = x
            elif x > high:
                self._record_high = x

        if seen < c.warmup:
            self._seen = seen + 1
            return 0.0, expected, False, hysteresis.firing, _QUIET
        peak = self._peak
        decayed = peak * c.peak_decay
        self._peak = likelihood if likelihood > decayed else decayed
        firing = hysteresis.firing
        if firing:
            # An open alert: its points are not news (score damped), but they keep it open.
            score = likelihood * c.damping
            anomalous = likelihood > c.threshold
        else:
            evident = raw_pattern > c.alert_min_raw or raw > c.alert_min_raw
            if likelihood > peak and (evident or not c.score_needs_raw):
                score = likelihood
            else:
                score = likelihood * c.damping
            anomalous = score > c.threshold and evident
        if score < 0.0:
            score = 0.0
        if anomalous or firing or hysteresis._run:
            # The incident (hysteresis) opens and closes as ever (it gates the score); it pages
            # when its evidence is sure, or once a weakly anomalous start is confirmed.
            transition = hysteresis.step(anomalous)
            paging = self._paging
            if transition is None:
                if hysteresis.firing and not paging:
                    armed = self._armed
                    if anomalous and (
                        raw_pattern >= c.alert_sure_raw
                        or raw >= c.alert_sure_raw
                        or (armed and (raw_pattern > c.alert_min_raw or raw > c.alert_min_raw))
                    ):
                        self._paging = True
                        self._armed = 0
                        return score, expected, True, True, _FIRES
                    if armed:
                        self._armed = armed - 1
                return score, expected, anomalous, paging, _QUIET
            if transition is _FIRED:
                if raw_pattern >= c.alert_sure_raw or raw >= c.alert_sure_raw:
                    self._paging = True
                    return score, expected, True, True, _FIRES
                self._armed = c.confirm_within  # weak: wait for a confirming point
                return score, expected, True, False, _QUIET
            # Resolved: the incident is over; it pages a resolution if it paged.
            self._armed = 0
            if paging:
                self._paging = False
                return score, expected, anomalous, False, _RESOLVES
            return score, expected, anomalous, False, _QUIET
        # A normal point while the alert tracker rests: Hysteresis.step(False) would do nothing.
        return score, expected, False, False, _QUIET

    def _ring_values(self) -> list[float]:
        """Both rings' values, the pattern's then the level's (each in slot order)."""
        if self._c.sum_five:
            return [
                *(self._p0, self._p1, self._p2, self._p3, self._p4),
                *(self._q0, self._q1, self._q2, self._q3, self._q4),
            ]
        return list(self._rings)

    def _set_rings(self, values: Sequence[float]) -> None:
        """Load what :meth:`_ring_values` returned."""
        if self._c.sum_five:
            self._p0, self._p1, self._p2, self._p3, self._p4 = values[:5]
            self._q0, self._q1, self._q2, self._q3, self._q4 = values[5:]
        else:
            self._rings = array("d", values)

    def _scalars(self) -> list[float]:
        """The scalars as saved (``_SCALAR_NAMES``, before the rings)."""
        return [getattr(self, name) for name in _SCALAR_NAMES]

    def _set_scalars(self, values: Sequence[float]) -> None:
        """Load what :meth:`_scalars` returned."""
        for name, value in zip(_SCALAR_NAMES, values, strict=True):
            setattr(self, name, value)

    def expected_band(self) -> tuple[float, float, float] | None:
        """The long-run level and ``record_min_z`` long-run standard deviations either side.

        A value outside the band is far enough from the level to count as a new record (one of
        the detector's kinds of evidence); the band is for charts, the verdict weighs more.
        ``None`` before any value.
        """
        mean = self._level_mean
        if mean != mean:  # nan: nothing learned yet
            return None
        seen, var = self._level_seen, self._level_var
        c = self._c
        if seen and seen < c.settled:
            var /= 1.0 - math.pow(c.level_keep, float(seen))
        width = c.record_min_z * sqrt(var)
        return mean, mean - width, mean + width

    def describe(self) -> dict[str, Any]:
        """Warm-up, long-run level and its band (:meth:`expected_band`; indicative: the score
        is a likelihood, not a distance), the range seen so far and the threshold."""
        c, band = self._c, self.expected_band()
        return {
            "seen": self._seen,
            "warmup": c.warmup,
            "warm": self._seen >= c.warmup,
            "expected": band[0] if band else None,
            "std": (band[2] - band[0]) / c.record_min_z if band else None,
            "band": [band[1], band[2]] if band else None,
            "range": [self._record_low, self._record_high] if band else None,
            "threshold": c.threshold,
            "firing": self._hysteresis.firing,
        }

    def to_state(self) -> dict[str, Any]:
        """The whole mutable state as a JSON-serialisable dict (no non-finite floats).

        ``floats`` packs the doubles (base64 of little-endian doubles, ``nan`` = not yet): the
        detector's scalars (``_scalars``), its rings, then the record range's low and high.
        """
        return {
            "format": 2,
            "pattern": self._pattern.to_state(),
            "floats": encode_doubles(
                [*self._scalars(), *self._ring_values(), self._record_low, self._record_high]
            ),
            "filled": self._ring_filled,
            "pos": self._ring_pos,
            "level_seen": self._level_seen,
            "armed": self._armed,
            "paging": self._paging,
            "seen": self._seen,
            "hysteresis": self._hysteresis.to_state(),
        }

    @classmethod
    def from_state(cls, params: AdaptiveParams, state: dict[str, Any]) -> Self:
        """Rebuild from ``params`` and :meth:`to_state` output; future verdicts are identical.

        A state saved before issue 12 (JSON floats, profiles of doubles) loads too; its profiles
        are quantised as they load (:class:`~detectors.seasonal.SeasonalBaseline`).

        Raises
        ------
        ValueError
            If ``state`` is malformed or does not fit ``params`` (e.g. another bucket width).
        """
        detector = cls(params)
        detector._pattern.load_state(get_mapping(state, "pattern"))
        if "format" not in state:
            detector._load_v1(params, state)
        elif state["format"] != 2:
            raise ValueError(f"detector state: unknown adaptive format {state['format']!r}")
        else:
            window = params.short_window
            size = _SCALARS + 2 * window + 2
            floats = decode_doubles(
                state.get("floats"), "floats", size, f" (short_window {window})"
            )
            filled, pos = get_int(state, "filled"), get_int(state, "pos")
            if filled > window or pos >= max(filled, 1):
                raise ValueError("detector state: ring 'filled' or 'pos' out of range")
            detector._record_high = floats.pop()
            detector._record_low = floats.pop()
            detector._set_scalars(floats[:_SCALARS])
            detector._set_rings(floats[_SCALARS:])
            detector._ring_filled, detector._ring_pos = filled, pos
            detector._level_seen = get_int(state, "level_seen")
            detector._armed = get_int(state, "armed")
            detector._paging = get_bool(state, "paging")
        detector._seen = get_int(state, "seen")
        load_hysteresis(detector._hysteresis, state, "hysteresis")
        if "format" not in state:  # an open alert of an older version had paged
            detector._paging = detector._hysteresis.firing
        return detector

    def _load_v1(self, params: AdaptiveParams, state: dict[str, Any]) -> None:
        """The state of the detector before issue 12 (its scalars as JSON)."""
        window = params.short_window
        pattern = read_likelihood_state(get_mapping(state, "pattern_likelihood"), window)
        level = read_likelihood_state(get_mapping(state, "level_likelihood"), window)
        if pattern[1:3] != level[1:3]:  # every version has stepped them together
            raise ValueError("detector state: the two likelihoods' buffers are out of step")
        pattern_ring, filled, pos, pattern_mean, pattern_var = pattern
        level_ring, _, _, level_mean, level_var = level
        self._ring_filled, self._ring_pos = filled, pos
        mean = _NAN if state.get("level_mean") is None else get_float(state, "level_mean")
        self._set_scalars(
            [
                mean,
                get_float(state, "level_var"),
                get_float(state, "peak"),
                pattern_mean,
                pattern_var,
                level_mean,
                level_var,
            ]
        )
        self._set_rings([*pattern_ring, *level_ring])
        self._level_seen = min(get_int(state, "level_seen"), self._c.settled)
        for key in ("record_low", "record_high"):
            if state.get(key) is not None:
                get_float(state, key)
        low, high = state.get("record_low"), state.get("record_high")
        self._record_low = _NAN if low is None else float(low)
        self._record_high = _NAN if high is None else float(high)
