"""Times as Kestrel writes them for people and peers (Alertmanager, Slack, PagerDuty).

Inside Kestrel a time is epoch seconds (float, UTC); this module formats it.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["rfc3339"]


def rfc3339(ts: float, timespec: str | None = None) -> str:
    """Epoch seconds as an RFC 3339 UTC timestamp, fractional seconds only when there are some;
    with ``timespec`` (``"seconds"``, ``"milliseconds"``, ...) always to that precision, as
    :meth:`datetime.isoformat` takes it (columns of a command's output line up).

    >>> rfc3339(1700000000.0)
    '2023-11-14T22:13:20Z'
    >>> rfc3339(1700000000.25)
    '2023-11-14T22:13:20.25Z'
    >>> rfc3339(1700000000.0, "milliseconds")
    '2023-11-14T22:13:20.000Z'
    """
    moment = datetime.fromtimestamp(ts, tz=UTC)
    if timespec is not None:
        return moment.isoformat(timespec=timespec).replace("+00:00", "Z")
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"
