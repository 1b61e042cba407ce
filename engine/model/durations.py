"""Durations as people write them in config: seconds, or Go-style text such as ``"1h30m"``.

Alertmanager and Prometheus users write durations the Go way (``"5m"``, ``"1h30m"``,
``"500ms"``); Kestrel's config keys end in ``_seconds`` and hold numbers. :func:`parse_duration`
accepts both, so ``group_wait_seconds = "30s"`` and ``group_wait_seconds = 30`` mean the same.
Units: ``ns``, ``us`` (or ``µs``), ``ms``, ``s``, ``m``, ``h``, and Prometheus' ``d``, ``w``
(24 h and 7 d; no months or years, whose length varies).

:func:`seconds_or_duration` is the pydantic "before" validator the config sections apply to every
``*_seconds`` key; it leaves numbers (and anything that is not a string) to the field's own
validation, so bounds such as ``gt=0`` still apply to the parsed value.

>>> parse_duration("1h30m"), parse_duration("500ms"), parse_duration(90)
(5400.0, 0.5, 90.0)
>>> parse_duration("5 minutes")
Traceback (most recent call last):
...
ValueError: expected seconds or a duration such as "5m", "1h30m", "500ms", got '5 minutes'
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["UNITS", "parse_duration", "seconds_or_duration"]

#: Seconds per unit of a Go-style duration.
UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}

# Longest unit names first, so "ms" is not read as "m" followed by "s".
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h|d|w)")
_NUMBER = re.compile(r"[+]?(\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_HINT = 'expected seconds or a duration such as "5m", "1h30m", "500ms"'


def parse_duration(value: float | int | str) -> float:
    """Seconds from a number of seconds or a Go-style duration text.

    Parameters
    ----------
    value
        A number of seconds (``30``, ``0.5``), a numeric string (``"30"``), or a Go-style
        duration: one or more ``<number><unit>`` parts, largest first or not (``"1h30m"``,
        ``"1.5h"``, ``"250ms"``); ``"0"`` is zero. No sign: durations in config are not negative.

    Returns
    -------
    float
        The duration in seconds (finite, >= 0).

    Raises
    ------
    ValueError
        If ``value`` is neither; the message shows the value and the accepted forms.

    >>> parse_duration("1m30s"), parse_duration("1.5h"), parse_duration("2d"), parse_duration("0")
    (90.0, 5400.0, 172800.0, 0.0)
    >>> parse_duration("-5m")
    Traceback (most recent call last):
    ...
    ValueError: expected seconds or a duration such as "5m", "1h30m", "500ms", got '-5m'
    """
    if isinstance(value, bool):
        raise ValueError(f"{_HINT}, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value)
    else:
        raise ValueError(f"{_HINT}, got {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"a duration must be finite and >= 0, got {value!r}")
    return seconds


def _parse_text(value: str) -> float:
    text = value.strip()
    if _NUMBER.fullmatch(text):
        return float(text)
    total, pos = 0.0, 0
    for part in _PART.finditer(text):
        if part.start() != pos:
            break
        total += float(part.group(1)) * UNITS[part.group(2)]
        pos = part.end()
    if pos == 0 or pos != len(text):
        raise ValueError(f"{_HINT}, got {value!r}")
    return total


def seconds_or_duration(value: Any) -> Any:
    """A pydantic "before" validator: Go-style text to seconds, anything else unchanged.

    Numbers pass through untouched (the field validates them); strings are parsed with
    :func:`parse_duration`, whose ``ValueError`` pydantic reports at the key's path.

    >>> seconds_or_duration("2m"), seconds_or_duration(5), seconds_or_duration(None)
    (120.0, 5, None)
    """
    if isinstance(value, str):
        return parse_duration(value)
    return value
