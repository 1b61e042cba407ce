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
Memory is O(buckets per day + buckets per week) (288 + 168 doubles by default, allocated as the
buckets are first seen), time O(1) per point.
"""

from __future__ import annotations

import math
import re
import struct
import sys
from array import array
from collections.abc import Mapping
from math import floor
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
from detectors.guards import MAX_ABS_VALUE
from detectors.hysteresis import Hysteresis
from detectors.params import Fading, FireAfter, ResolveAfter, Threshold, Warmup, constants_for

__all__ = ["SeasonalBaseline", "SeasonalDetector", "SeasonalParams"]

DAY_SECONDS: Final = 86_400.0
WEEK_SECONDS: Final = 7 * DAY_SECONDS
_NAN: Final = math.nan
_LOWEST: Final = -MAX_ABS_VALUE
_INF: Final = math.inf

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


class _Constants:
    """The per-point constants of a :class:`SeasonalBaseline`, shared by those of one params."""

    __slots__ = (
        "bucket_seconds",
        "buckets_day",
        "buckets_week",
        "clip",
        "daily",
        "error_fading",
        "level_fading",
        "min_ratio",
        "season_fading",
        "select_fading",
        "week_bucket_seconds",
        "week_fading",
        "weekly",
        "whole_bucket",
        "whole_from",
        "whole_week_bucket",
    )

    def __init__(self, params: SeasonalParams) -> None:
        self.level_fading = params.level_fading
        self.season_fading = params.season_fading
        self.week_fading = params.week_fading
        self.error_fading = params.error_fading
        self.select_fading = params.select_fading
        self.clip = params.clip
        self.min_ratio = params.min_scale_ratio
        self.bucket_seconds = params.bucket_seconds
        self.buckets_day: int = math.ceil(DAY_SECONDS / params.bucket_seconds)
        self.week_bucket_seconds = params.weekly_bucket_seconds
        self.buckets_week: int = math.ceil(WEEK_SECONDS / params.weekly_bucket_seconds)
        self.daily = params.daily
        self.weekly = params.weekly
        # For ts >= 0 and whole-second bucket widths, the bucket ``int((ts % P) // width) %
        # buckets`` (P a day or a week) is exactly ``floor(ts) % P // width``, which costs less:
        # float % and // are exact for ts >= 0, so both are floor((ts mod P) / width), and
        # floor(t / w) == floor(floor(t) / w) for a whole w. Else the float formula everywhere.
        whole = params.bucket_seconds.is_integer() and params.weekly_bucket_seconds.is_integer()
        self.whole_from = 0.0 if whole else math.inf
        self.whole_bucket = int(params.bucket_seconds)
        self.whole_week_bucket = int(params.weekly_bucket_seconds)


#: The bytes of one bucket not seen yet (``nan``, as the profiles have always been filled).
_EMPTY: Final = struct.pack("=d", _NAN)
_EMPTY_WORD: Final[int] = struct.unpack("=Q", _EMPTY)[0]
_EMPTY_RUN: Final = re.compile(b"\x01+")


def _stored(
    profile: array[float], start: int, index: int, bucket: int, size: int, value: float
) -> tuple[array[float], int]:
    """``profile`` (buckets ``start``, ``start + 1``, ... mod ``size``) extended to ``bucket``.

    ``index`` is ``(bucket - start) mod size``, at least ``len(profile)``. The buckets skipped
    on the way are ``nan``, ``bucket`` holds ``value``. Returns the profile and its start (the
    bucket itself when the profile was empty); a complete profile starts at bucket 0.
    """
    if not profile:
        start, index = bucket, 0
    profile.frombytes(_EMPTY * (index - len(profile)))
    profile.append(value)
    if len(profile) == size:  # complete: from bucket 0, without the slack of growing
        return _full(profile, start, size), 0
    return profile, start


def _full(profile: array[float] | None, start: int, size: int) -> array[float]:
    """The profile as ``size`` buckets from bucket 0 (``nan`` where not seen yet)."""
    if profile is None:
        return array("d")
    if len(profile) == size:  # a whole day (week): only rotate; an exact-size copy
        return profile[size - start :] + profile[: size - start]
    out = array("d", _EMPTY * size)
    head = min(len(profile), size - start)
    out[start : start + head] = profile[:head]
    out[: len(profile) - head] = profile[head:]
    return out


def _arc(full: array[float]) -> tuple[array[float], int]:
    """Inverse of :func:`_full`: the shortest run of buckets (circularly) holding all seen ones.

    A bucket counts as not seen when it holds exactly the ``nan`` the profiles are filled with,
    so a loaded profile is saved again byte for byte.
    """
    size = len(full)
    blob = full.tobytes()
    if _EMPTY not in blob:  # not at any offset: every bucket seen (the steady state)
        return full[:], 0
    empty_word = _EMPTY_WORD
    flags = bytes([word == empty_word for word in array("Q", blob)])  # 1: not seen
    if 0 not in flags:
        return array("d"), 0
    if 1 not in flags:
        return full[:], 0
    # The longest run of empty buckets, twice round (it may wrap past the end); the profile
    # starts right after it.
    longest, start = 0, 0
    for run in _EMPTY_RUN.finditer(flags + flags):
        if run.end() - run.start() > longest:
            longest, start = run.end() - run.start(), run.end() % size
    return _full(full, (size - start) % size, size)[: size - longest], start


def _encode(profile: array[float]) -> str:
    """Base64 of little-endian doubles (``nan`` = bucket not seen yet)."""
    if sys.byteorder != "little":  # pragma: no cover - no big-endian CI
        profile = array("d", profile)
        profile.byteswap()
    return encode_bytes(profile.tobytes())


def _decode(state: Mapping[str, Any], key: str, size: int) -> array[float]:
    blob = decode_bytes(state.get(key), key)
    if len(blob) != 8 * size:
        raise ValueError(f"detector state: {key!r} must hold {size} doubles")
    values = array("d")
    values.frombytes(blob)
    if sys.byteorder != "little":  # pragma: no cover - no big-endian CI
        values.byteswap()
    if math.inf in values or -math.inf in values:
        raise ValueError(f"detector state: {key!r} holds an infinite number")
    return values


def _check_slots(values: list[Any], size: int, key: str) -> list[float]:
    """Read the four forecasters' scales (or selection errors); ``None`` becomes ``nan``."""
    if len(values) != size:
        raise ValueError(f"detector state: {key!r} must hold {size} entries, got {len(values)}")
    out: list[float] = []
    for value in values:
        if value is None:
            out.append(_NAN)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"detector state: {key!r} holds a non-number {value!r}")
        elif not math.isfinite(value):
            raise ValueError(f"detector state: {key!r} holds a non-finite number")
        else:
            out.append(float(value))
    return out


def _optional(value: float) -> float | None:
    return None if value != value else value


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

    :meth:`step` does both at once (what the detectors call):

    >>> base.step(1.0, 24 * 14 * 3600.0 + 9 * 3600.0) == (z, expected)
    True
    """

    # Memory: the profiles are arrays of doubles covering only the buckets seen so far (a run of
    # buckets, circularly: ``_daily[k]`` is bucket ``(_daily_start + k) mod buckets_day``), so a
    # young series does not pay for a whole day and week; ``None`` when the forecaster is off.
    # "Not yet" is ``nan`` everywhere (no forecast, no scale), never ``None``, so the hot path
    # compares floats only. The constants live in one object per params object (_constants).
    __slots__ = (
        "_c",
        "_daily",
        "_daily_start",
        "_last",
        "_level",
        "_scale_daily",
        "_scale_last",
        "_scale_level",
        "_scale_weekly",
        "_select_daily",
        "_select_last",
        "_select_level",
        "_select_weekly",
        "_weekly",
        "_weekly_start",
    )

    def __init__(self, params: SeasonalParams) -> None:
        c = self._c = constants_for(params, _Constants)
        self._last = self._level = _NAN
        self._daily: array[float] | None = array("d") if c.daily else None
        self._weekly: array[float] | None = array("d") if c.weekly else None
        self._daily_start = self._weekly_start = 0
        self._scale_last = self._scale_level = self._scale_daily = self._scale_weekly = _NAN
        self._select_last = self._select_level = self._select_daily = self._select_weekly = _NAN

    def _forecasts(self, ts: float) -> tuple[float, float, float, float]:
        """``(last, level, daily, weekly)`` forecasts for ``ts``, ``nan`` where there is none."""
        c = self._c
        daily, weekly = self._daily, self._weekly
        d = w = _NAN
        if daily is not None:
            size = c.buckets_day
            i = int((ts % DAY_SECONDS) // c.bucket_seconds) % size - self._daily_start
            if i < 0:
                i += size
            if i < len(daily):
                d = daily[i]
        if weekly is not None:
            size = c.buckets_week
            j = int((ts % WEEK_SECONDS) // c.week_bucket_seconds) % size - self._weekly_start
            if j < 0:
                j += size
            if j < len(weekly):
                w = (d if daily is not None else self._level) + weekly[j]
        return self._last, self._level, d, w

    @property
    def best(self) -> str | None:
        """Name of the forecaster currently used (``None`` before any has an error scale)."""
        best: str | None = None
        best_error = math.inf
        for name, scale, error in zip(
            _NAMES,
            (self._scale_last, self._scale_level, self._scale_daily, self._scale_weekly),
            (self._select_last, self._select_level, self._select_daily, self._select_weekly),
            strict=True,
        ):
            if scale == scale and error < best_error:
                best, best_error = name, error
        return best

    def score(self, x: float, ts: float) -> tuple[float, float]:
        """``(|x - forecast| / scale, forecast)`` of the best forecaster; ``(0, nan)`` if none."""
        forecasts = self._forecasts(ts)
        scales = (self._scale_last, self._scale_level, self._scale_daily, self._scale_weekly)
        errors = (self._select_last, self._select_level, self._select_daily, self._select_weekly)
        index = -1
        best_error = math.inf
        for i in range(4):
            error = errors[i]
            if forecasts[i] == forecasts[i] and scales[i] == scales[i] and error < best_error:
                index, best_error = i, error
        if index < 0:
            return 0.0, _NAN
        forecast = forecasts[index]
        floor = self._c.min_ratio * abs(forecast) + 1e-9
        return abs(x - forecast) / (scales[index] + floor), forecast

    def learn(self, x: float, ts: float) -> None:
        """Update every forecaster's error scales with its error on ``x``, then the forecasters.

        The weekly correction learns ``x`` minus the daily forecast made before this update.
        """
        self.step(x, ts)

    def step(self, x: float, ts: float) -> tuple[float, float]:
        """:meth:`score` ``x``, then learn it, in one pass (the detectors' hot path).

        Returns exactly what ``score(x, ts)`` returns, bit for bit, then learns ``x`` as
        :meth:`learn` does (``learn`` is this step without its result). Written out flat, with no
        allocation beyond the returned pair: it runs for every point of every series. ``ts``
        must be finite (the detectors ignore points whose ``ts`` is not).
        """
        c = self._c
        last = self._last
        level = self._level
        if ts >= c.whole_from:  # the buckets in integers (see _Constants.whole_from)
            in_week = floor(ts) % 604_800  # floor == int here, and cheaper
            day = in_week % 86_400 // c.whole_bucket  # a week is whole days
            week = in_week // c.whole_week_bucket
        else:
            day = int((ts % DAY_SECONDS) // c.bucket_seconds) % c.buckets_day
            week = int((ts % WEEK_SECONDS) // c.week_bucket_seconds) % c.buckets_week
        # Forecasts (nan = none), as _forecasts does.
        daily = self._daily
        d = _NAN
        if daily is not None:
            i = day - self._daily_start
            if i < 0:
                i += c.buckets_day
            seen_days = len(daily)
            if i < seen_days:
                d = daily[i]
        weekly = self._weekly
        w = base = _NAN
        if weekly is not None:
            j = week - self._weekly_start
            if j < 0:
                j += c.buckets_week
            # The weekly forecast is the daily one (or the level) plus this time-of-week's
            # learned correction, so coarse weekly buckets still follow the fine daily shape.
            base = d if daily is not None else level
            seen_weeks = len(weekly)
            if j < seen_weeks:
                correction = weekly[j]
                w = base + correction

        # Score: the forecaster with the lowest selection error (the first on a tie) among those
        # with a forecast and a scale.
        scale_last, select_last = self._scale_last, self._select_last
        scale_level, select_level = self._scale_level, self._select_level
        scale_daily, select_daily = self._scale_daily, self._select_daily
        scale_weekly, select_weekly = self._scale_weekly, self._select_weekly
        forecast = scale = _NAN
        best_error = _INF
        if last == last and scale_last == scale_last and select_last < best_error:
            forecast, scale, best_error = last, scale_last, select_last
        if level == level and scale_level == scale_level and select_level < best_error:
            forecast, scale, best_error = level, scale_level, select_level
        if d == d and scale_daily == scale_daily and select_daily < best_error:
            forecast, scale, best_error = d, scale_daily, select_daily
        if w == w and scale_weekly == scale_weekly and select_weekly < best_error:
            forecast, scale = w, scale_weekly
        if forecast == forecast:
            out = abs(x - forecast) / (scale + (c.min_ratio * abs(forecast) + 1e-9))
        else:
            out = 0.0

        # Learn: each forecaster's error scale (errors clipped to `clip` scales) and selection
        # error, then the forecasters themselves.
        clip, error_fading, select_fading = c.clip, c.error_fading, c.select_fading
        if last == last:
            error = abs(x - last)
            if scale_last != scale_last:
                self._scale_last = error
            else:
                if scale_last > 0.0 and error > clip * scale_last:
                    error = clip * scale_last
                self._scale_last = scale_last + error_fading * (error - scale_last)
            self._select_last = (
                error
                if select_last != select_last
                else select_last + select_fading * (error - select_last)
            )
        if level == level:
            error = abs(x - level)
            if scale_level != scale_level:
                self._scale_level = error
            else:
                if scale_level > 0.0 and error > clip * scale_level:
                    error = clip * scale_level
                self._scale_level = scale_level + error_fading * (error - scale_level)
            self._select_level = (
                error
                if select_level != select_level
                else select_level + select_fading * (error - select_level)
            )
            self._level = level + c.level_fading * (x - level)
        else:
            self._level = x
        if d == d:
            error = abs(x - d)
            if scale_daily != scale_daily:
                self._scale_daily = error
            else:
                if scale_daily > 0.0 and error > clip * scale_daily:
                    error = clip * scale_daily
                self._scale_daily = scale_daily + error_fading * (error - scale_daily)
            self._select_daily = (
                error
                if select_daily != select_daily
                else select_daily + select_fading * (error - select_daily)
            )
        if w == w:
            error = abs(x - w)
            if scale_weekly != scale_weekly:
                self._scale_weekly = error
            else:
                if scale_weekly > 0.0 and error > clip * scale_weekly:
                    error = clip * scale_weekly
                self._scale_weekly = scale_weekly + error_fading * (error - scale_weekly)
            self._select_weekly = (
                error
                if select_weekly != select_weekly
                else select_weekly + select_fading * (error - select_weekly)
            )
        self._last = x
        if weekly is not None and base == base:
            target = x - base
            if j < seen_weeks:
                weekly[j] = (
                    target
                    if correction != correction
                    else correction + c.week_fading * (target - correction)
                )
            elif j == seen_weeks and seen_weeks + 1 < c.buckets_week:  # the next bucket
                weekly.append(target)
            else:
                self._weekly, self._weekly_start = _stored(
                    weekly, self._weekly_start, j, week, c.buckets_week, target
                )
        if daily is not None:
            if i < seen_days:
                daily[i] = x if d != d else d + c.season_fading * (x - d)
            elif i == seen_days and seen_days + 1 < c.buckets_day:  # the next bucket
                daily.append(x)
            else:
                self._daily, self._daily_start = _stored(
                    daily, self._daily_start, i, day, c.buckets_day, x
                )
        return out, forecast

    def to_state(self) -> dict[str, Any]:
        """The mutable state as a JSON-serialisable dict."""
        c = self._c
        return {
            "last": _optional(self._last),
            "level": _optional(self._level),
            "daily": _encode(_full(self._daily, self._daily_start, c.buckets_day)),
            "weekly": _encode(_full(self._weekly, self._weekly_start, c.buckets_week)),
            "scale": [
                _optional(v)
                for v in (
                    self._scale_last,
                    self._scale_level,
                    self._scale_daily,
                    self._scale_weekly,
                )
            ],
            "select": [
                _optional(v)
                for v in (
                    self._select_last,
                    self._select_level,
                    self._select_daily,
                    self._select_weekly,
                )
            ],
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`to_state` returned (``ValueError`` if malformed)."""
        c = self._c
        for key in ("last", "level"):
            value = state.get(key)
            if value is not None:
                get_float(state, key)
        last, level = state.get("last"), state.get("level")
        daily = _decode(state, "daily", c.buckets_day if c.daily else 0)
        weekly = _decode(state, "weekly", c.buckets_week if c.weekly else 0)
        scales = _check_slots(get_list(state, "scale"), 4, "scale")
        selects = _check_slots(get_list(state, "select"), 4, "select")
        self._last = _NAN if last is None else float(last)
        self._level = _NAN if level is None else float(level)
        if self._daily is not None:
            self._daily, self._daily_start = _arc(daily)
        if self._weekly is not None:
            self._weekly, self._weekly_start = _arc(weekly)
        self._scale_last, self._scale_level, self._scale_daily, self._scale_weekly = scales
        self._select_last, self._select_level, self._select_daily, self._select_weekly = selects


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

    __slots__ = ("_baseline", "_hysteresis", "_seen", "_threshold", "_warmup")

    def __init__(self, params: SeasonalParams) -> None:
        super().__init__(params)
        self._baseline = SeasonalBaseline(params)
        self._hysteresis = Hysteresis(params.fire_after, params.resolve_after)
        self._seen = 0
        # Plain attributes for the hot path (pydantic attribute access is slower).
        self._warmup = params.warmup
        self._threshold = params.threshold

    def update(self, value: float, ts: float) -> Verdict:
        """Score ``value`` (series units) at ``ts`` (epoch seconds), then learn it."""
        x = float(value)
        hysteresis = self._hysteresis
        # usable(x) and a finite ts, inlined: nan fails every comparison, inf - inf is nan.
        if not _LOWEST < x < MAX_ABS_VALUE or ts - ts != 0.0:
            return Verdict(0.0, _NAN, False, hysteresis.firing)
        score, expected = self._baseline.step(x, ts)
        if self._seen < self._warmup:
            self._seen += 1
            return Verdict(0.0, expected, False, hysteresis.firing)
        anomalous = score > self._threshold
        if anomalous or hysteresis.firing or hysteresis._run:
            transition = hysteresis.step(anomalous)
            return Verdict(score, expected, anomalous, hysteresis.firing, transition)
        # A normal point while the alert tracker rests: Hysteresis.step(False) would do nothing.
        return Verdict(score, expected, False, False)

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
