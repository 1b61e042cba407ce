"""``seasonal``: residual of the best of several forecasters, so a normal daily peak does not page.

:class:`SeasonalBaseline` runs a small bank of one-step forecasters side by side:

* ``last``: the previous value (random walks, slowly drifting gauges);
* ``level``: an exponentially weighted mean (noisy but stationary series);
* ``daily``: an exponentially weighted profile per time-of-day bucket (``ts mod 86400``);
* ``weekly``: the daily forecast plus a learned correction per time-of-week bucket
  (``ts mod 604800``; weekends differ). The correction is smooth over a week, so coarse (hourly)
  buckets suffice while the daily profile keeps the fine shape.

Every forecaster keeps a robust running error scale (mean absolute error, with each error clipped
to ``clip`` times the current scale so outliers already in the data do not inflate it) and a
slower running error used to *select* the forecaster. Each value is compared with the forecast of
the currently best forecaster; seasonality is therefore detected automatically: on a series with a
daily pattern the daily profile forecasts best and is used, on a flat one the level or last value.

The score is ``|x - forecast| / scale`` of the selected forecaster.
Memory is O(buckets per day + buckets per week) (288 + 168 floats by default),
time O(1) per point.
"""

from __future__ import annotations

import math
import struct
from array import array
from collections.abc import Mapping
from typing import Any, ClassVar, Final, Self

from pydantic import Field

from detectors._state import (
    decode_bytes,
    encode_bytes,
    get_float,
    get_int,
    get_list,
    get_mapping,
    load_hysteresis,
)
from detectors.base import DetectorParams, ValueDetector, Verdict
from detectors.guards import usable
from detectors.hysteresis import Hysteresis
from detectors.params import Fading, FireAfter, ResolveAfter, Threshold, Warmup

__all__ = ["SeasonalBaseline", "SeasonalDetector", "SeasonalParams"]

DAY_SECONDS: Final = 86_400.0
WEEK_SECONDS: Final = 7 * DAY_SECONDS
_NAN: Final = math.nan

_LAST, _LEVEL, _DAILY, _WEEKLY = range(4)
_NAMES: Final = ("last", "level", "daily", "weekly")


class SeasonalParams(DetectorParams):
    """Parameters of :class:`SeasonalBaseline` and :class:`SeasonalDetector` (counts in points)."""

    level_fading: Fading = Field(
        0.05, description="Weight of the newest value in the 'level' forecaster."
    )
    season_fading: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description=(
            "Weight of the newest value in its daily/weekly bucket (1.0 = same time yesterday / "
            "last week)."
        ),
    )
    week_fading: float = Field(
        0.1,
        gt=0.0,
        le=1.0,
        description="Weight of the newest deviation from the daily forecast in its weekly bucket.",
    )
    bucket_seconds: float = Field(
        300.0,
        ge=60.0,
        le=3600.0,
        description="Width of a time-of-day bucket of the daily profile, in seconds.",
    )
    weekly_bucket_seconds: float = Field(
        3600.0,
        ge=300.0,
        le=86_400.0,
        description="Width of a time-of-week bucket of the weekly correction, in seconds.",
    )
    daily: bool = Field(True, description="Include the daily-profile forecaster.")
    weekly: bool = Field(True, description="Include the weekly-profile forecaster.")
    error_fading: Fading = Field(
        0.01, description="Weight of the newest error in each error scale."
    )
    select_fading: Fading = Field(
        0.005,
        description="Weight of the newest error in the running error used to pick a forecaster.",
    )
    clip: float = Field(
        6.0,
        gt=1.0,
        description="Errors are clipped to this many scales before updating a scale (robustness).",
    )
    min_scale_ratio: float = Field(
        1e-6,
        ge=0.0,
        description="Floor of the scale as a fraction of |forecast| (dimensionless).",
    )
    warmup: Warmup = 30
    threshold: Threshold = 8.0
    fire_after: FireAfter = 3
    resolve_after: ResolveAfter = 5


def _pack(profile: array[float]) -> str:
    """Encode a profile (``nan`` = bucket not seen yet) as base64 little-endian doubles."""
    return encode_bytes(struct.pack(f"<{len(profile)}d", *profile))


def _unpack(state: Mapping[str, Any], key: str, size: int) -> array[float]:
    blob = decode_bytes(state.get(key), key)
    if len(blob) != 8 * size:
        raise ValueError(f"detector state: {key!r} must hold {size} doubles")
    values = struct.unpack(f"<{size}d", blob)
    if any(math.isinf(v) for v in values):
        raise ValueError(f"detector state: {key!r} holds an infinite number")
    return array("d", values)


def _check_slots(values: list[Any], size: int, key: str) -> list[float | None]:
    if len(values) != size:
        raise ValueError(f"detector state: {key!r} must hold {size} entries, got {len(values)}")
    out: list[float | None] = []
    for value in values:
        if value is None:
            out.append(None)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"detector state: {key!r} holds a non-number {value!r}")
        elif not math.isfinite(value):
            raise ValueError(f"detector state: {key!r} holds a non-finite number")
        else:
            out.append(float(value))
    return out


class SeasonalBaseline:
    """The forecaster bank (see the module docstring); scores before learning.

    Parameters
    ----------
    params:
        See :class:`SeasonalParams` (hysteresis fields are not used here).

    Examples
    --------
    A daily square wave (high from 09:00 to 17:00), hourly points: after a day the daily profile
    forecasts it, so the 09:00 step no longer scores high, while a missing peak does.

    >>> base = SeasonalBaseline(SeasonalParams(bucket_seconds=3600.0))
    >>> wave = lambda h: 10.0 if 9 <= h % 24 < 17 else 1.0
    >>> for h in range(24 * 14):
    ...     _ = base.score(wave(h) + 0.01 * (h % 5), h * 3600.0)
    ...     base.learn(wave(h) + 0.01 * (h % 5), h * 3600.0)
    >>> base.best
    'daily'
    >>> z, expected = base.score(10.02, 24 * 14 * 3600.0 + 9 * 3600.0)
    >>> round(expected, 1), z < 3.0
    (10.0, True)
    >>> z, _ = base.score(1.0, 24 * 14 * 3600.0 + 9 * 3600.0)
    >>> z > 50.0
    True
    """

    __slots__ = (
        "_bucket_seconds",
        "_buckets_day",
        "_buckets_week",
        "_clip",
        "_daily",
        "_error_fading",
        "_last",
        "_level",
        "_level_fading",
        "_min_ratio",
        "_scale",
        "_season_fading",
        "_select",
        "_select_fading",
        "_week_bucket_seconds",
        "_week_fading",
        "_weekly",
    )

    def __init__(self, params: SeasonalParams) -> None:
        self._level_fading = params.level_fading
        self._season_fading = params.season_fading
        self._week_fading = params.week_fading
        self._error_fading = params.error_fading
        self._select_fading = params.select_fading
        self._clip = params.clip
        self._min_ratio = params.min_scale_ratio
        self._bucket_seconds = params.bucket_seconds
        self._buckets_day = math.ceil(DAY_SECONDS / params.bucket_seconds)
        self._week_bucket_seconds = params.weekly_bucket_seconds
        self._buckets_week = math.ceil(WEEK_SECONDS / params.weekly_bucket_seconds)
        self._last: float | None = None
        self._level: float | None = None
        # Profiles hold nan for buckets not seen yet (a fixed-size array: state size is constant).
        self._daily = array("d", [_NAN] * (self._buckets_day if params.daily else 0))
        self._weekly = array("d", [_NAN] * (self._buckets_week if params.weekly else 0))
        self._scale: list[float | None] = [None] * 4
        self._select: list[float | None] = [None] * 4

    def _buckets(self, ts: float) -> tuple[int, int]:
        day = int((ts % DAY_SECONDS) // self._bucket_seconds) % self._buckets_day
        week = int((ts % WEEK_SECONDS) // self._week_bucket_seconds) % self._buckets_week
        return day, week

    def _forecasts(self, ts: float) -> list[float | None]:
        day, week = self._buckets(ts)
        daily = self._daily[day] if self._daily else _NAN
        # The weekly forecast is the daily one (or the level) plus this time-of-week's learned
        # correction, so coarse weekly buckets still follow the fine daily shape.
        base = daily if self._daily else (_NAN if self._level is None else self._level)
        weekly = base + self._weekly[week] if self._weekly else _NAN
        return [
            self._last,
            self._level,
            None if daily != daily else daily,
            None if weekly != weekly else weekly,
        ]

    @property
    def best(self) -> str | None:
        """Name of the forecaster currently used (``None`` before any has an error scale)."""
        index = self._best_index([0, 1, 2, 3])
        return None if index is None else _NAMES[index]

    def _best_index(self, candidates: list[int]) -> int | None:
        best: int | None = None
        best_error = math.inf
        for i in candidates:
            error = self._select[i]
            if self._scale[i] is not None and error is not None and error < best_error:
                best, best_error = i, error
        return best

    def score(self, x: float, ts: float) -> tuple[float, float]:
        """``(|x - forecast| / scale, forecast)`` of the best forecaster; ``(0, nan)`` if none."""
        forecasts = self._forecasts(ts)
        index = self._best_index([i for i in range(4) if forecasts[i] is not None])
        if index is None:
            return 0.0, _NAN
        forecast = forecasts[index]
        scale = self._scale[index]
        if forecast is None or scale is None:  # not reached: _best_index checks both
            return 0.0, _NAN
        floor = self._min_ratio * abs(forecast) + 1e-9
        return abs(x - forecast) / (scale + floor), forecast

    def learn(self, x: float, ts: float) -> None:
        """Update every forecaster's error scales with its error on ``x``, then the forecasters.

        The weekly correction learns ``x`` minus the daily forecast made before this update.
        """
        forecasts = self._forecasts(ts)
        scales, selects = self._scale, self._select
        error_fading, select_fading, clip = self._error_fading, self._select_fading, self._clip
        for i, forecast in enumerate(forecasts):
            if forecast is None:
                continue
            error = abs(x - forecast)
            scale = scales[i]
            if scale is None:
                scales[i] = error
            else:
                if scale > 0.0 and error > clip * scale:
                    error = clip * scale
                scales[i] = scale + error_fading * (error - scale)
            select = selects[i]
            selects[i] = error if select is None else select + select_fading * (error - select)
        level = self._level
        self._level = x if level is None else level + self._level_fading * (x - level)
        self._last = x
        day, week = self._buckets(ts)
        fading = self._season_fading
        weekly = self._weekly
        if weekly:
            base = forecasts[_DAILY] if self._daily else forecasts[_LEVEL]
            if base is not None:
                old = weekly[week]
                target = x - base
                weekly[week] = target if old != old else old + self._week_fading * (target - old)
        daily = self._daily
        if daily:
            old = daily[day]
            daily[day] = x if old != old else old + fading * (x - old)

    def to_state(self) -> dict[str, Any]:
        """The mutable state as a JSON-serialisable dict."""
        return {
            "last": self._last,
            "level": self._level,
            "daily": _pack(self._daily),
            "weekly": _pack(self._weekly),
            "scale": list(self._scale),
            "select": list(self._select),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`to_state` returned (``ValueError`` if malformed)."""
        for key in ("last", "level"):
            value = state.get(key)
            if value is not None:
                get_float(state, key)
        last, level = state.get("last"), state.get("level")
        self._last = None if last is None else float(last)
        self._level = None if level is None else float(level)
        self._daily = _unpack(state, "daily", len(self._daily))
        self._weekly = _unpack(state, "weekly", len(self._weekly))
        self._scale = _check_slots(get_list(state, "scale"), 4, "scale")
        self._select = _check_slots(get_list(state, "select"), 4, "select")


class SeasonalDetector(ValueDetector[SeasonalParams]):
    """Residual z-score against the best of last-value, level, daily and weekly forecasts.

    The score is ``|x - forecast| / scale`` (see :class:`SeasonalBaseline`), 0 during warm-up;
    a point is anomalous above ``threshold`` and the alert uses ``fire_after``/``resolve_after``
    hysteresis. ``nan``/``inf`` values are ignored (score 0, not learned).

    Examples
    --------
    >>> det = SeasonalDetector(SeasonalParams(warmup=10, fire_after=1))
    >>> verdicts = [det.update(10.0 + 0.1 * (i % 3), ts=60.0 * i) for i in range(50)]
    >>> any(v.anomalous for v in verdicts)
    False
    >>> spike = det.update(30.0, ts=3000.0)
    >>> spike.anomalous, spike.transition
    (True, <Transition.FIRED: 'fired'>)
    """

    kind: ClassVar[str] = "seasonal"
    params_type: ClassVar[type[DetectorParams]] = SeasonalParams

    def __init__(self, params: SeasonalParams) -> None:
        super().__init__(params)
        self._baseline = SeasonalBaseline(params)
        self._hysteresis = Hysteresis(params.fire_after, params.resolve_after)
        self._seen = 0

    def update(self, value: float, ts: float) -> Verdict:
        """Score ``value`` (series units) at ``ts`` (epoch seconds), then learn it."""
        x = float(value)
        hysteresis = self._hysteresis
        if not usable(x) or not math.isfinite(ts):
            return Verdict(0.0, _NAN, False, hysteresis.firing)
        score, expected = self._baseline.score(x, ts)
        self._baseline.learn(x, ts)
        if self._seen < self.params.warmup:
            self._seen += 1
            return Verdict(0.0, expected, False, hysteresis.firing)
        anomalous = score > self.params.threshold
        transition = hysteresis.step(anomalous)
        return Verdict(score, expected, anomalous, hysteresis.firing, transition)

    def to_state(self) -> dict[str, Any]:
        """The whole mutable state as a JSON-serialisable dict."""
        return {
            "baseline": self._baseline.to_state(),
            "seen": self._seen,
            "hysteresis": self._hysteresis.to_state(),
        }

    @classmethod
    def from_state(cls, params: SeasonalParams, state: dict[str, Any]) -> Self:
        """Rebuild from ``params`` and :meth:`to_state` output (``ValueError`` if malformed)."""
        detector = cls(params)
        detector._baseline.load_state(get_mapping(state, "baseline"))
        detector._seen = get_int(state, "seen")
        load_hysteresis(detector._hysteresis, state, "hysteresis")
        return detector
