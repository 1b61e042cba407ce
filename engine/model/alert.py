"""The alert record: what the engine writes to ``kestrel.alerts`` and what channels deliver.

Timestamps are epoch seconds (float, UTC). An alert is identified by a stable ``fingerprint`` of its
series and detector; one incident is one ``fingerprint`` + ``started_at``.

>>> a = Alert(
...     fingerprint=fingerprint("latency_ms", {"service": "api"}, "zscore"),
...     status=AlertStatus.FIRING, severity=Severity.WARNING, series="latency_ms",
...     labels={"service": "api"}, detector="zscore", value=950.0, expected=120.0, score=8.5,
...     started_at=1700000000.0, ended_at=None,
...     summary="latency_ms{service=api} is 950 (expected 120)",
... )
>>> Alert.from_dict(a.to_dict()) == a
True
>>> sorted(a.to_dict()) == sorted(Alert.__struct_fields__)  # every field is written
True
>>> a.fingerprint
'438fe56f6f6f643b'
"""

from __future__ import annotations

import enum
import hashlib
import math
from collections.abc import Mapping
from typing import Any, Final

import msgspec

__all__ = ["Alert", "AlertStatus", "Severity", "alert_labels", "fingerprint", "series_id"]

#: Label names an alert sets itself; a series label of the same name is renamed.
RESERVED_LABELS = ("alertname", "detector", "severity")


class AlertStatus(enum.StrEnum):
    """Whether an incident is going on or over."""

    FIRING = "firing"
    RESOLVED = "resolved"


class Severity(enum.StrEnum):
    """How urgent an alert is, most urgent first."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


def series_id(name: str, labels: Mapping[str, str]) -> str:
    """The canonical text of a series: ``name{k1=v1,k2=v2}`` with labels sorted by key.

    >>> series_id("cpu", {"host": "b", "dc": "x"})
    'cpu{dc=x,host=b}'
    >>> series_id("cpu", {})
    'cpu'
    """
    if not labels:
        return name
    if len(labels) == 1:  # the common case, without sorting (one call per sample)
        for key, value in labels.items():
            return f"{name}{{{key}={value}}}"
    inner = ",".join([f"{k}={labels[k]}" for k in sorted(labels)])
    return f"{name}{{{inner}}}"


def fingerprint(name: str, labels: Mapping[str, str], detector: str) -> str:
    """A stable 16-hex-digit id of (series, detector), the same on every worker and every run."""
    text = f"{series_id(name, labels)}\x00{detector}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Alert(msgspec.Struct, frozen=True, gc=False):
    """One alert transition (firing, repeated while firing, or resolved) for one incident.

    An immutable msgspec ``Struct``, changed with ``msgspec.structs.replace``: each transition
    is built, decorated and read back from the alerts topic, and a frozen dataclass's
    ``__init__`` took 3.5 µs of it (a ``setattr`` through ``object`` per field), a frozen
    ``Struct`` 0.3 µs. Not tracked by the garbage collector (``gc=False``): its fields are
    strings, numbers, enums and dicts of strings, which cannot make a cycle through it.

    Attributes
    ----------
    fingerprint: id of (series, detector), see :func:`fingerprint`.
    status: firing or resolved.
    severity: critical, warning or info.
    series: the series name (metric name, or e.g. ``log.error_ratio`` for log-derived series).
    labels: the series labels (strings).
    detector: registry name of the detector that raised it.
    value: the observed value that caused this transition, in the series' units.
    expected: the baseline the value was compared with (``nan`` if none).
    score: the detector's anomaly score (higher = more anomalous).
    started_at: event time the incident started (epoch seconds).
    ended_at: event time it resolved, or ``None`` while firing.
    summary: one line for humans.
    repeat: 0 for the first firing notification of an incident, n for the n-th repeat.
    silenced: whether a silence matched it when it was recorded.
    """

    fingerprint: str
    status: AlertStatus
    severity: Severity
    series: str
    labels: Mapping[str, str]
    detector: str
    value: float
    expected: float
    score: float
    started_at: float
    ended_at: float | None
    summary: str
    repeat: int = 0
    silenced: bool = False
    annotations: Mapping[str, str] = msgspec.field(default_factory=dict)

    @property
    def series_id(self) -> str:
        """The canonical ``name{labels}`` text of the alert's series."""
        return series_id(self.series, self.labels)

    @property
    def notification_id(self) -> str:
        """Idempotency key of this notification: one alert transition always gets the same id."""
        return f"{self.fingerprint}-{int(self.started_at * 1000)}-{self.status.value}-{self.repeat}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (the format of ``kestrel.alerts`` records)."""
        return {  # field by field: dataclasses.asdict deep-copies, several times slower
            "fingerprint": self.fingerprint,
            "status": self.status.value,
            "severity": self.severity.value,
            "series": self.series,
            "labels": dict(self.labels),
            "detector": self.detector,
            "value": self.value,
            "expected": self.expected,
            "score": self.score,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "summary": self.summary,
            "repeat": self.repeat,
            "silenced": self.silenced,
            "annotations": dict(self.annotations),
        }

    def to_json(self) -> bytes:
        """:meth:`to_dict` as JSON bytes (a ``nan`` written as ``null``), encoded from the fields
        directly: a ``kestrel.alerts`` record.

        >>> a = Alert("f", AlertStatus.FIRING, Severity.INFO, "cpu", {"host": "a"}, "zscore",
        ...           1.0, math.nan, 3.0, 0.0, None, "s")
        >>> import orjson; orjson.loads(a.to_json()) == orjson.loads(orjson.dumps(a.to_dict()))
        True
        """
        return _JSON.encode(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        """Parse what :meth:`to_dict` produced; raises ``KeyError``/``ValueError`` on bad input."""
        ended = data.get("ended_at")
        return cls(
            fingerprint=str(data["fingerprint"]),
            status=_STATUSES[data["status"]],
            severity=_SEVERITIES[data["severity"]],
            series=str(data["series"]),
            labels=_texts(data["labels"]),
            detector=str(data["detector"]),
            value=_number(data["value"]),
            expected=_number(data["expected"]),
            score=_number(data["score"]),
            started_at=float(data["started_at"]),
            ended_at=None if ended is None else float(ended),
            summary=str(data["summary"]),
            repeat=int(data.get("repeat", 0)),
            silenced=bool(data.get("silenced", False)),
            annotations=_texts(data.get("annotations") or {}),
        )


_JSON: Final = msgspec.json.Encoder()

#: The enums by value: a dict lookup costs a fraction of an enum call (alerts are read back
#: from the alerts topic one by one).
_STATUSES: Final[Mapping[str, AlertStatus]] = {s.value: s for s in AlertStatus}
_SEVERITIES: Final[Mapping[str, Severity]] = {s.value: s for s in Severity}


def _texts(value: Any) -> dict[str, str]:
    """A JSON object of strings as written (the common case, checked in one pass), else each
    key and value turned into a string; raises ``TypeError``/``ValueError`` if not an object.

    >>> _texts({"host": "a"}), _texts({"port": 80}), _texts([("k", "v")])
    ({'host': 'a'}, {'port': '80'}, {'k': 'v'})
    """
    if type(value) is dict:
        for k, v in value.items():  # (a loop: no generator per call)
            if type(k) is not str or type(v) is not str:
                break
        else:
            return value
    return {str(k): str(v) for k, v in dict(value).items()}


def _number(value: Any) -> float:
    """A float field as :meth:`Alert.to_dict` wrote it: JSON has no NaN, so a ``nan`` (e.g. the
    expected value of a detector without a baseline, or of a log-pattern detector) comes back
    from the alerts topic as ``null``.

    >>> _number(None), _number(2)
    (nan, 2.0)
    """
    return math.nan if value is None else float(value)


def alert_labels(alert: Alert) -> dict[str, str]:
    """The alert's labels as Alertmanager-style receivers see them.

    ``alertname`` (the series name) first, then ``detector``, ``severity`` and the series labels,
    sorted by name. A series label that collides with one of the three is renamed
    ``exported_<name>`` (as Prometheus does on scrape).

    >>> a = Alert("f", AlertStatus.FIRING, Severity.INFO, "cpu", {"host": "a", "severity": "x"},
    ...           "zscore", 1.0, 0.0, 3.0, 0.0, None, "s")
    >>> alert_labels(a)  # doctest: +NORMALIZE_WHITESPACE
    {'alertname': 'cpu', 'detector': 'zscore', 'exported_severity': 'x', 'host': 'a',
     'severity': 'info'}
    """
    merged = {"detector": alert.detector, "severity": alert.severity.value}
    for key, value in alert.labels.items():
        merged["exported_" + key if key in RESERVED_LABELS else key] = value
    merged.pop("alertname", None)
    return {"alertname": alert.series, **{k: merged[k] for k in sorted(merged)}}
