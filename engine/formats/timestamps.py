"""Timestamps as users write them, to epoch seconds (float, UTC).

Accepted: ISO 8601 with or without a zone (no zone means UTC), and epoch seconds or milliseconds
as numbers or numeric strings. A number above 1e11 is taken as milliseconds (1e11 s is the year
5138).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Final

from engine.model.events import InvalidEvent

__all__ = ["EPOCH_SECONDS_MAX", "parse_timestamp"]

#: Epoch numbers above this are taken as milliseconds (1e11 s is the year 5138).
EPOCH_SECONDS_MAX: Final = 1e11


def parse_timestamp(value: Any) -> float:
    """Epoch seconds (UTC) from ISO 8601 (zone optional, UTC assumed) or epoch s/ms.

    >>> parse_timestamp("2024-01-02T03:04:05Z"), parse_timestamp("2024-01-02 03:04:05")
    (1704164645.0, 1704164645.0)
    >>> parse_timestamp(1704164645123), parse_timestamp("1704164645.5")
    (1704164645.123, 1704164645.5)
    """
    kind = type(value)
    if kind is float or kind is int:  # the common case first (bool is neither)
        ts = float(value)
        if 0.0 <= ts <= EPOCH_SECONDS_MAX:
            return ts
    if isinstance(value, bool):
        raise InvalidEvent("bad_timestamp", f"timestamp: expected a time, got {value!r}")
    if isinstance(value, int | float):
        ts = float(value)
    elif isinstance(value, str):
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
    if ts > EPOCH_SECONDS_MAX:
        ts /= 1000.0
    # Beyond the year 5138 even as milliseconds: a unit mistake, never a real time.
    if not math.isfinite(ts) or not 0 <= ts <= EPOCH_SECONDS_MAX:
        raise InvalidEvent("bad_timestamp", f"timestamp: out of range: {value!r}")
    return ts
