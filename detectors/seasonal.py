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
Memory is O(buckets per day + buckets per week), time O(1) per point (amortised: a profile is
re-quantised in O(buckets) when its range doubles, and checked once a day or week for a finer
step). Each profile is stored as int16 codes, ``value = offset + code * step`` with a per-profile
offset and a power-of-two step putting the profile's range within +-16,384 codes: precision about
1/30,000 of the range (a forecast needs far less). 288 + 168 codes by default: 1.0 KB in memory
(the doubles before issue 12 took 3.6 KB), allocated as the buckets are first seen. The saved
state is about 1.4 KB of JSON.
"""

from __future__ import annotations

import math
import re
import struct
from array import array
from collections.abc import Mapping
from math import floor
from typing import Any, ClassVar, Final, Self

from detectors._state import (
    decode_array,
    decode_doubles,
    encode_array,
    encode_doubles,
    get_float,
    get_int,
    get_list,
    get_mapping,
    load_hysteresis,
)
from detectors.base import DetectorParams, ValueDetector, Verdict
from detectors.guards import MAX_ABS_VALUE
from detectors.hysteresis import Hysteresis
from detectors.params import constants_for
from detectors.seasonal_params import SeasonalParams

__all__ = ["SeasonalBaseline", "SeasonalDetector", "SeasonalParams"]

DAY_SECONDS: Final = 86_400.0
WEEK_SECONDS: Final = 7 * DAY_SECONDS
_NAN: Final = math.nan
_LOWEST: Final = -MAX_ABS_VALUE
_INF: Final = math.inf

_NAMES: Final = ("last", "level", "daily", "weekly")


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


#: The code of a bucket not seen yet; a seen bucket holds a code in [-_CODE_MAX, _CODE_MAX].
_EMPTY: Final = -32768
_CODE_MAX: Final = 32767
#: After (re)quantising, the values of a profile lie within this many steps of its offset, so
#: it can widen twofold before the next re-quantisation.
_HEADROOM: Final = 16384.0
#: A profile is re-quantised finer (once a period, at bucket 0) when its codes span fewer steps.
_SHRINK_SPAN: Final = 8192
_EMPTY_BYTES: Final = struct.pack("=h", _EMPTY)
_EMPTY_RUN: Final = re.compile(b"\x01+")
#: The scalars a saved state packs as doubles, in order (see :meth:`SeasonalBaseline.to_state`).
_SCALARS: Final = (
    "_last",
    "_level",
    "_scale_last",
    "_scale_level",
    "_scale_daily",
    "_scale_weekly",
    "_select_last",
    "_select_level",
    "_select_daily",
    "_select_weekly",
    "_daily_offset",
    "_daily_step",
    "_weekly_offset",
    "_weekly_step",
)


#: Every power of two a double can be (2**-1074 .. 2**1023), one float object each: a step is
#: always one of them, shared by every series (a float of its own would cost each series 24
#: bytes per profile).
_POWERS_OF_TWO: Final = tuple(math.ldexp(1.0, e) for e in range(-1074, 1024))


def _shared(step: float) -> float:
    """``step`` itself, or the shared object equal to it when it is a power of two."""
    mantissa, exponent = math.frexp(step)
    if step > 0.0 and mantissa == 0.5:
        return _POWERS_OF_TWO[exponent + 1073]
    return step


def _quantum(half: float) -> float:
    """The power of two that puts every value within ``half`` of the offset at most
    :data:`_HEADROOM` steps from it (the shared object, see :func:`_shared`)."""
    return _POWERS_OF_TWO[math.frexp(half / _HEADROOM)[1] + 1074]


def _requantised(
    profile: array[int], offset: float, step: float, value: float
) -> tuple[float, float, int]:
    """Re-encode ``profile`` in place so that its values and ``value`` fit; the new
    ``(offset, step)`` and the code of ``value`` (:data:`_EMPTY` for a ``nan`` value).

    The offset is the middle of the values' range, the step the power of two putting them within
    :data:`_HEADROOM` steps of it (at least ``2**-24`` of the offset's magnitude: float32-like
    precision for a near-constant profile). ``offset`` is ``nan`` for an empty profile.
    """
    values = [offset + q * step for q in profile if q != _EMPTY] if offset == offset else []
    if value == value:
        values.append(value)
    if not values:
        return offset, step, _EMPTY
    low, high = min(values), max(values)
    mid = 0.5 * low + 0.5 * high
    half = max(high - mid, mid - low, abs(mid) * 2.0**-10, 2.0**-1000)
    new_step = _quantum(half)
    for k, q in enumerate(profile):
        if q != _EMPTY:
            profile[k] = round((offset + q * step - mid) / new_step)
    code = round((value - mid) / new_step) if value == value else _EMPTY
    return mid, new_step, code


def _tightened(profile: array[int], offset: float, step: float) -> tuple[float, float]:
    """``(offset, step)`` after re-quantising ``profile`` finer if its codes span fewer than
    :data:`_SHRINK_SPAN` steps and a finer step fits (a spike that has faded out of it)."""
    high, low = max(profile), min(profile)
    if low == _EMPTY:
        low = min((q for q in profile if q != _EMPTY), default=high)
    if high == _EMPTY or high - low >= _SHRINK_SPAN or offset != offset:
        return offset, step
    mid = offset + (0.5 * low + 0.5 * high) * step
    half = max(0.5 * (high - low) * step, abs(mid) * 2.0**-10, 2.0**-1000)
    if not _quantum(half) < step:
        return offset, step
    offset, step, _ = _requantised(profile, offset, step, _NAN)
    return offset, step


def _stored(
    profile: array[int], start: int, index: int, bucket: int, size: int, code: int
) -> tuple[array[int], int]:
    """``profile`` (buckets ``start``, ``start + 1``, ... mod ``size``) extended to ``bucket``.

    ``index`` is ``(bucket - start) mod size``, at least ``len(profile)``. The buckets skipped
    on the way are :data:`_EMPTY`, ``bucket`` holds ``code``. Returns the profile and its start
    (the bucket itself when the profile was empty); a complete profile starts at bucket 0.
    """
    if not profile:
        start, index = bucket, 0
    profile.frombytes(_EMPTY_BYTES * (index - len(profile)))
    profile.append(code)
    if len(profile) == size:  # complete: from bucket 0, without the slack of growing
        return _full(profile, start, size), 0
    return profile, start


def _full(profile: array[int] | None, start: int, size: int) -> array[int]:
    """The profile as ``size`` buckets from bucket 0 (:data:`_EMPTY` where not seen yet)."""
    if profile is None:
        return array("h")
    if len(profile) == size:  # a whole day (week): only rotate; an exact-size copy
        return profile[size - start :] + profile[: size - start]
    out = array("h", _EMPTY_BYTES * size)
    head = min(len(profile), size - start)
    out[start : start + head] = profile[:head]
    out[: len(profile) - head] = profile[head:]
    return out


def _arc(full: array[int]) -> tuple[array[int], int]:
    """Inverse of :func:`_full`: the shortest run of buckets (circularly) holding all seen ones."""
    size = len(full)
    if _EMPTY not in full:  # every bucket seen (the steady state)
        return full[:], 0
    flags = bytes([q == _EMPTY for q in full])  # 1: not seen
    if 0 not in flags:
        return array("h"), 0
    # The longest run of empty buckets, twice round (it may wrap past the end); the profile
    # starts right after it.
    longest, start = 0, 0
    for run in _EMPTY_RUN.finditer(flags + flags):
        if run.end() - run.start() > longest:
            longest, start = run.end() - run.start(), run.end() % size
    return _full(full, (size - start) % size, size)[: size - longest], start


def _decode(state: Mapping[str, Any], key: str, size: int) -> array[int]:
    """A profile's int16 codes as :func:`~detectors._state.encode_array` saved them."""
    return decode_array(state.get(key), key, "h", size)


def _rounded(r: float) -> int:
    """``round(r)`` (half to even) of a finite ``r``, in native code.

    mypyc compiles ``round`` as a call to the builtin (its argument boxed, its ``__round__``
    looked up and its arguments parsed): the two calls a point made were a tenth of
    ``adaptive``'s time per point in a profile. ``r - floor(r)`` is exact for the codes' range.

    >>> [_rounded(x) for x in (2.5, 3.5, -2.5, -1.5, 0.49999999999999994, -0.7)]
    [2, 4, -2, -2, 0, -1]
    """
    f = floor(r)
    diff = r - f
    if diff > 0.5 or (diff == 0.5 and f % 2 == 1):
        return f + 1
    return f


def _quantised(values: array[float]) -> tuple[array[int], float, float]:
    """A profile of doubles (``nan`` = not seen) as ``(codes, offset, step)``."""
    codes = array("h", _EMPTY_BYTES * len(values))
    offset, step = _NAN, _NAN
    for k, value in enumerate(values):
        if value == value:
            r = (value - offset) / step
            if -_CODE_MAX <= r <= _CODE_MAX:
                codes[k] = _rounded(r)
            else:
                offset, step, codes[k] = _requantised(codes, offset, step, value)
    return codes, offset, step


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

    # Memory: the profiles are arrays of int16 codes covering only the buckets seen so far (a run
    # of buckets, circularly: ``_daily[k]`` is bucket ``(_daily_start + k) mod buckets_day``),
    # so a young series does not pay for a whole day and week; ``None`` when the forecaster is
    # off. A code decodes as ``offset + code * step`` (``_daily_offset``, ``_daily_step``; the
    # steps are powers of two, one float object shared by all series); -32768 is a bucket not
    # seen yet. Elsewhere "not yet" is ``nan`` (no forecast, no scale), never ``None``, so the
    # hot path compares floats only. The constants live in one object per params object.
    __slots__ = (
        "_c",
        "_daily",
        "_daily_offset",
        "_daily_start",
        "_daily_step",
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
        "_weekly_offset",
        "_weekly_start",
        "_weekly_step",
    )

    def __init__(self, params: SeasonalParams) -> None:
        c = self._c = constants_for(params, _Constants)
        self._last = self._level = _NAN
        self._daily: array[int] | None = array("h") if c.daily else None
        self._weekly: array[int] | None = array("h") if c.weekly else None
        self._daily_start = self._weekly_start = 0
        # A profile's value is ``offset + code * step`` (see the class comment).
        self._daily_offset = self._daily_step = self._weekly_offset = self._weekly_step = _NAN
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
            if i < len(daily) and daily[i] != _EMPTY:
                d = self._daily_offset + daily[i] * self._daily_step
        if weekly is not None:
            size = c.buckets_week
            j = int((ts % WEEK_SECONDS) // c.week_bucket_seconds) % size - self._weekly_start
            if j < 0:
                j += size
            if j < len(weekly) and weekly[j] != _EMPTY:
                correction = self._weekly_offset + weekly[j] * self._weekly_step
                w = (d if daily is not None else self._level) + correction
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
                code = daily[i]
                if code != _EMPTY:
                    d = self._daily_offset + code * self._daily_step
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
            correction = _NAN
            if j < seen_weeks:
                code = weekly[j]
                if code != _EMPTY:
                    correction = self._weekly_offset + code * self._weekly_step
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
        # The profiles learn in their int16 codes (see the class comment): a value that does not
        # fit re-quantises the profile (rare: the range grew twofold).
        if weekly is not None and base == base:
            target = x - base
            if correction == correction:
                target = correction + c.week_fading * (target - correction)
            offset, step = self._weekly_offset, self._weekly_step
            r = (target - offset) / step  # nan while the profile is empty
            if -_CODE_MAX <= r <= _CODE_MAX:
                code = _rounded(r)
            else:
                offset, step, code = _requantised(weekly, offset, step, target)
                self._weekly_offset, self._weekly_step = offset, step
            if j < seen_weeks:
                weekly[j] = code
                if j == 0 and seen_weeks == c.buckets_week:  # once a week: finer if it can be
                    self._weekly_offset, self._weekly_step = _tightened(weekly, offset, step)
            elif j == seen_weeks and seen_weeks + 1 < c.buckets_week:  # the next bucket
                weekly.append(code)
            else:
                self._weekly, self._weekly_start = _stored(
                    weekly, self._weekly_start, j, week, c.buckets_week, code
                )
        if daily is not None:
            target = x if d != d else d + c.season_fading * (x - d)
            offset, step = self._daily_offset, self._daily_step
            r = (target - offset) / step  # nan while the profile is empty
            if -_CODE_MAX <= r <= _CODE_MAX:
                code = _rounded(r)
            else:
                offset, step, code = _requantised(daily, offset, step, target)
                self._daily_offset, self._daily_step = offset, step
            if i < seen_days:
                daily[i] = code
                if i == 0 and seen_days == c.buckets_day:  # once a day: finer if it can be
                    self._daily_offset, self._daily_step = _tightened(daily, offset, step)
            elif i == seen_days and seen_days + 1 < c.buckets_day:  # the next bucket
                daily.append(code)
            else:
                self._daily, self._daily_start = _stored(
                    daily, self._daily_start, i, day, c.buckets_day, code
                )
        return out, forecast

    def to_state(self) -> dict[str, Any]:
        """The mutable state as a JSON-serialisable dict.

        ``daily`` and ``weekly`` are the profiles' int16 codes (base64, little-endian, whole
        profiles from bucket 0, -32768 = not seen yet); ``floats`` packs the 14 scalars as
        little-endian doubles (base64; ``nan`` = not yet): last value, level, the four error
        scales and the four selection errors, then each profile's offset and step.
        """
        c = self._c
        return {
            "format": 2,
            "floats": encode_doubles(getattr(self, name) for name in _SCALARS),
            "daily": encode_array(_full(self._daily, self._daily_start, c.buckets_day)),
            "weekly": encode_array(_full(self._weekly, self._weekly_start, c.buckets_week)),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`to_state` returned, or a state saved before issue 12 (profiles of
        doubles, re-quantised here); ``ValueError`` if malformed."""
        c = self._c
        days, weeks = c.buckets_day if c.daily else 0, c.buckets_week if c.weekly else 0
        if "format" not in state:
            self._load_doubles(state, days, weeks)
            return
        if state["format"] != 2:
            raise ValueError(f"detector state: unknown seasonal format {state['format']!r}")
        floats = decode_doubles(state.get("floats"), "floats", len(_SCALARS))
        daily = _decode(state, "daily", days)
        weekly = _decode(state, "weekly", weeks)
        for key, codes, offset, step in (
            ("daily", daily, floats[10], floats[11]),
            ("weekly", weekly, floats[12], floats[13]),
        ):
            if any(q != _EMPTY for q in codes) and not (offset == offset and step > 0.0):
                raise ValueError(f"detector state: {key!r} holds codes without offset and step")
        for name, value in zip(_SCALARS, floats, strict=True):
            setattr(self, name, value)
        self._daily_step, self._weekly_step = _shared(floats[11]), _shared(floats[13])
        if self._daily is not None:
            self._daily, self._daily_start = _arc(daily)
        if self._weekly is not None:
            self._weekly, self._weekly_start = _arc(weekly)

    def _load_doubles(self, state: Mapping[str, Any], days: int, weeks: int) -> None:
        """Restore a state saved before issue 12: JSON scalars, profiles of doubles."""
        for key in ("last", "level"):
            value = state.get(key)
            if value is not None:
                get_float(state, key)
        last, level = state.get("last"), state.get("level")
        daily = decode_doubles(state.get("daily"), "daily", days)
        weekly = decode_doubles(state.get("weekly"), "weekly", weeks)
        scales = _check_slots(get_list(state, "scale"), 4, "scale")
        selects = _check_slots(get_list(state, "select"), 4, "select")
        self._last = _NAN if last is None else float(last)
        self._level = _NAN if level is None else float(level)
        if self._daily is not None:
            codes, self._daily_offset, self._daily_step = _quantised(daily)
            self._daily, self._daily_start = _arc(codes)
        if self._weekly is not None:
            codes, self._weekly_offset, self._weekly_step = _quantised(weekly)
            self._weekly, self._weekly_start = _arc(codes)
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
