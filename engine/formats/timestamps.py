"""Timestamps as users write them, to epoch seconds (float, UTC).

Accepted: ISO 8601 with or without a zone (no zone means UTC), and epoch seconds, milliseconds,
microseconds or nanoseconds as numbers or numeric strings. The unit is told by the magnitude: a
number up to 1e11 is seconds (1e11 s is the year 5138), up to 1e14 milliseconds, up to 1e17
microseconds, up to 1e20 nanoseconds (each the year 5138 in that unit); OpenTelemetry, Influx
line protocol and Go's shippers write nanoseconds, Java's milliseconds.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Final

from engine.model.events import InvalidEvent

__all__ = ["EPOCH_SECONDS_MAX", "epoch_seconds", "parse_timestamp"]

#: Epoch numbers above this are taken as milliseconds (1e11 s is the year 5138).
EPOCH_SECONDS_MAX: Final = 1e11
_SCALES: Final = (1, 10**3, 10**6, 10**9)  # s, ms, us, ns


def epoch_seconds(number: float) -> float:
    """Epoch seconds from an epoch number in s, ms, us or ns (told by its magnitude).

    Returns ``nan`` for a number out of every unit's range (negative, non-finite, or beyond the
    year 5138 even as nanoseconds): the caller rejects it. An integer is divided exactly (one
    rounding), so ``1715678463250`` ms and ``1715678463250000000`` ns are the same time.

    >>> epoch_seconds(1704164645), epoch_seconds(1704164645123), epoch_seconds(1704164645123456)
    (1704164645.0, 1704164645.123, 1704164645.123456)
    >>> epoch_seconds(1704164645123456789), epoch_seconds(-1)
    (1704164645.1234567, nan)
    >>> epoch_seconds(1715678463250000000) == epoch_seconds(1715678463250) == 1715678463.25
    True
    """
    if type(number) is int:
        for scale in _SCALES:
            ts = number / scale  # int / int: correctly rounded
            if 0.0 <= ts <= EPOCH_SECONDS_MAX:
                return ts
        return math.nan
    ts = float(number)
    if 0.0 <= ts <= EPOCH_SECONDS_MAX:
        return ts
    for _ in range(3):  # ms, us, ns
        ts /= 1000.0
        if 0.0 <= ts <= EPOCH_SECONDS_MAX:
            return ts
    return math.nan


def parse_timestamp(value: Any) -> float:
    """Epoch seconds (UTC) from ISO 8601 (zone optional, UTC assumed) or epoch s/ms/us/ns.

    >>> parse_timestamp("2024-01-02T03:04:05Z"), parse_timestamp("2024-01-02 03:04:05")
    (1704164645.0, 1704164645.0)
    >>> parse_timestamp(1704164645123), parse_timestamp("1704164645.5")
    (1704164645.123, 1704164645.5)
    >>> parse_timestamp(1704164645123456), parse_timestamp("1704164645123456789")
    (1704164645.123456, 1704164645.1234567)
    """
    kind = type(value)
    if (kind is float or kind is int) and 0.0 <= value <= EPOCH_SECONDS_MAX:
        return float(value)  # the common case first (bool is neither)
    if isinstance(value, bool):
        raise InvalidEvent("bad_timestamp", f"timestamp: expected a time, got {value!r}")
    ts: float
    if isinstance(value, int | float):
        ts = value
    elif isinstance(value, str):
        try:
            ts = int(value)  # exact, as an integer (nanoseconds do not fit a float)
        except ValueError:
            pass
        else:
            return _checked(epoch_seconds(ts), value)
        try:
            ts = float(value)
        except ValueError:
            try:
                dt = datetime.fromisoformat(value)
            except ValueError:
                raise InvalidEvent(
                    "bad_timestamp", f"timestamp: cannot parse {value[:64]!r}"
                ) from None
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
            ts = dt.timestamp()
            if not 0 <= ts <= EPOCH_SECONDS_MAX:
                raise InvalidEvent(
                    "bad_timestamp", f"timestamp: out of range: {value[:64]!r}"
                ) from None
            return ts
    else:
        raise InvalidEvent(
            "bad_timestamp", f"timestamp: expected a time, got {type(value).__name__}"
        )
    return _checked(epoch_seconds(ts) if type(ts) is int or math.isfinite(ts) else math.nan, value)


def _checked(seconds: float, value: Any) -> float:
    """``seconds``, or a ``bad_timestamp`` rejection of ``value`` when it is ``nan``."""
    # Beyond the year 5138 even as nanoseconds: a unit mistake, never a real time.
    if seconds != seconds:  # nan
        raise InvalidEvent("bad_timestamp", f"timestamp: out of range: {value!r:.64}")
    return seconds
