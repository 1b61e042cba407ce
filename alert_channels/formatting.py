"""Formatting shared by the channels: pure functions from alerts to text and label sets.

>>> from engine.model.alert import Alert, AlertStatus, Severity
>>> alert = Alert(
...     fingerprint="438fe56f6f6f643b", status=AlertStatus.FIRING, severity=Severity.WARNING,
...     series="latency_ms", labels={"service": "api"}, detector="zscore", value=950.0,
...     expected=120.0, score=8.5, started_at=1700000000.0, ended_at=None,
...     summary="latency_ms{service=api} is 950 (expected 120)",
... )
>>> print(alert_line(alert))  # doctest: +NORMALIZE_WHITESPACE
[FIRING warning] latency_ms{service=api} zscore: value 950 expected 120 (score 8.5)
since 2023-11-14T22:13:20Z
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from engine.model.alert import Alert
from engine.model.notification import Notification
from engine.model.times import rfc3339

__all__ = [
    "ZERO_TIME",
    "alert_annotations",
    "alert_line",
    "common_items",
    "format_labels",
    "format_number",
    "notification_title",
]

#: Alertmanager's JSON for "no end time" (Go's zero ``time.Time``), used for firing alerts.
ZERO_TIME = "0001-01-01T00:00:00Z"


def format_number(x: float) -> str:
    """A number for humans: integers without ``.0``, others to 6 significant digits.

    >>> [format_number(v) for v in (950, 8.5, 0.123456789, 1234567.25, math.nan, -math.inf)]
    ['950', '8.5', '0.123457', '1234567.2', 'NaN', '-Inf']
    """
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    if abs(x) >= 1e6:
        return f"{x:.1f}"
    return f"{x:.6g}"


def format_labels(labels: Mapping[str, str]) -> str:
    """``k=v`` pairs sorted by key, comma separated.

    >>> format_labels({"service": "api", "env": "prod"})
    'env=prod, service=api'
    """
    return ", ".join(f"{k}={labels[k]}" for k in sorted(labels))


def alert_annotations(alert: Alert) -> dict[str, str]:
    """The alert's annotations plus ``summary``, ``value``, ``expected`` and ``score``, sorted.

    The four computed ones win over annotations of the same name.
    """
    merged = {
        **alert.annotations,
        "summary": alert.summary,
        "value": format_number(alert.value),
        "expected": format_number(alert.expected),
        "score": format_number(alert.score),
    }
    return {k: merged[k] for k in sorted(merged)}


def common_items(mappings: list[dict[str, str]]) -> dict[str, str]:
    """The key/value pairs present and equal in every mapping (Alertmanager's ``commonLabels``).

    >>> common_items([{"a": "1", "b": "2"}, {"a": "1", "b": "3"}])
    {'a': '1'}
    """
    if not mappings:
        return {}
    first, *rest = mappings
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in rest)}


def alert_line(alert: Alert) -> str:
    """One line for humans about one alert (the console format).

    ``[FIRING warning] latency_ms{service=api} zscore: value 950 expected 120 (score 8.5) since
    2023-11-14T22:13:20Z``, with ``until <end>`` added once resolved.
    """
    status = f"{alert.status.value.upper()} {alert.severity.value}"
    line = (
        f"[{status}] {alert.series_id} {alert.detector}: "
        f"value {format_number(alert.value)} expected {format_number(alert.expected)} "
        f"(score {format_number(alert.score)}) since {rfc3339(alert.started_at)}"
    )
    if alert.ended_at is not None:
        line += f" until {rfc3339(alert.ended_at)}"
    return line


def notification_title(notification: Notification) -> str:
    """A title: the alert's line for one alert, else counts and group labels.

    e.g. ``12 alerts firing for service=api`` or ``3 firing and 2 resolved alerts for service=api``.
    """
    if len(notification.alerts) == 1:
        return alert_line(notification.alerts[0])
    firing, resolved = len(notification.firing), len(notification.resolved)
    if firing and resolved:
        head = f"{firing} firing and {resolved} resolved alerts"
    elif firing:
        head = f"{firing} alerts firing"
    else:
        head = f"{resolved} alerts resolved"
    if notification.group_labels:
        head += f" for {format_labels(notification.group_labels)}"
    return head
