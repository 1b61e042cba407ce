"""A notification: one message to one receiver about the alerts of one group, and its records.

The notify core builds :class:`Notification` objects and channels deliver them. The alerts
dead-letter topic holds :class:`DeadNotification` records (a channel gave up), and markers that
leave nothing to replay: :class:`DeliveredLater` (a later retry got through) and
:class:`Superseded` (a later notification of the same group got through);
:func:`notification_to_dict` and :func:`notification_from_dict` are their JSON codec.

>>> from engine.model.alert import Alert, AlertStatus, Severity
>>> alert = Alert(
...     fingerprint="438fe56f6f6f643b", status=AlertStatus.FIRING, severity=Severity.WARNING,
...     series="latency_ms", labels={"service": "api"}, detector="zscore", value=950.0,
...     expected=120.0, score=8.5, started_at=1700000000.0, ended_at=None,
...     summary="latency_ms{service=api} is 950 (expected 120)",
... )
>>> n = Notification.single(alert, receiver="ops")
>>> n.status, n.notification_id
(<AlertStatus.FIRING: 'firing'>, '438fe56f6f6f643b-1700000000000-firing-0')
>>> notification_from_dict(notification_to_dict(n)) == n
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from engine.model.alert import Alert, AlertStatus, Severity

__all__ = [
    "DeadNotification",
    "DeliveredLater",
    "Notification",
    "Superseded",
    "notification_from_dict",
    "notification_to_dict",
]

_SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to one receiver about the alerts of one group.

    Parameters
    ----------
    receiver
        Name of the channel it is for.
    group_key
        Identifies the group (Alertmanager's ``groupKey``); stable while the group exists.
    group_labels
        The labels the alerts were grouped by.
    alerts
        The alerts, at least one; a list is turned into a tuple.
    external_url
        A link back to Kestrel (dashboard, API) shown by channels that can show one.

    Raises
    ------
    ValueError
        If ``alerts`` is empty.
    """

    receiver: str
    group_key: str
    group_labels: Mapping[str, str]
    alerts: tuple[Alert, ...]
    external_url: str | None = None
    _id: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        alerts = tuple(self.alerts)
        if not alerts:
            raise ValueError("alerts: a notification needs at least one alert")
        object.__setattr__(self, "alerts", alerts)
        object.__setattr__(self, "group_labels", dict(self.group_labels))
        if len(alerts) == 1:
            ident = alerts[0].notification_id
        else:
            text = "\x00".join([self.group_key, *sorted(a.notification_id for a in alerts)])
            ident = "grp-" + hashlib.sha256(text.encode()).hexdigest()[:32]
        object.__setattr__(self, "_id", ident)

    @classmethod
    def single(
        cls, alert: Alert, receiver: str, *, external_url: str | None = None
    ) -> Notification:
        """A notification about one alert, grouped by its own fingerprint.

        Its ``group_key`` is the alert's fingerprint and its ``group_labels`` are the alert's name
        and series labels.
        """
        return cls(
            receiver=receiver,
            group_key=alert.fingerprint,
            group_labels={"alertname": alert.series, **alert.labels},
            alerts=(alert,),
            external_url=external_url,
        )

    @property
    def status(self) -> AlertStatus:
        """Firing if any alert is firing, else resolved."""
        if any(a.status is AlertStatus.FIRING for a in self.alerts):
            return AlertStatus.FIRING
        return AlertStatus.RESOLVED

    @property
    def notification_id(self) -> str:
        """Idempotency key, the same for the same content.

        The alert's own :attr:`~engine.model.alert.Alert.notification_id` for a single alert, else
        a hash of the group key and the alerts' ids (no dots, as the Standard Webhooks spec asks).
        """
        return self._id

    @property
    def is_single(self) -> bool:
        """Whether this is a per-alert notification as built by :meth:`single`."""
        return len(self.alerts) == 1 and self.group_key == self.alerts[0].fingerprint

    @property
    def firing(self) -> tuple[Alert, ...]:
        """The firing alerts."""
        return tuple(a for a in self.alerts if a.status is AlertStatus.FIRING)

    @property
    def resolved(self) -> tuple[Alert, ...]:
        """The resolved alerts."""
        return tuple(a for a in self.alerts if a.status is AlertStatus.RESOLVED)

    @property
    def severity(self) -> Severity:
        """The most urgent severity among the firing alerts (among all if none is firing)."""
        pool = self.firing or self.alerts
        return min((a.severity for a in pool), key=_SEVERITY_RANK.__getitem__)


def notification_to_dict(n: Notification) -> dict[str, Any]:
    """A JSON-serialisable form of a notification."""
    return {
        "receiver": n.receiver,
        "group_key": n.group_key,
        "group_labels": dict(n.group_labels),
        "alerts": [a.to_dict() for a in n.alerts],
        "external_url": n.external_url,
    }


def notification_from_dict(data: Mapping[str, Any]) -> Notification:
    """Parse :func:`notification_to_dict` output; ``KeyError``/``ValueError`` on bad input."""
    return Notification(
        receiver=str(data["receiver"]),
        group_key=str(data["group_key"]),
        group_labels={str(k): str(v) for k, v in dict(data["group_labels"]).items()},
        alerts=tuple(Alert.from_dict(a) for a in data["alerts"]),
        external_url=data.get("external_url"),
    )


@dataclass(frozen=True, slots=True)
class DeadNotification:
    """A notification a channel gave up on."""

    notification: Notification
    channel: str
    error: str
    attempts: int
    failed_at: float

    @property
    def key(self) -> bytes:
        """The record key: the notification id."""
        return self.notification.notification_id.encode()

    def to_json(self) -> bytes:
        """The record value."""
        return orjson.dumps(
            {
                "status": "failed",
                "channel": self.channel,
                "error": self.error,
                "attempts": self.attempts,
                "failed_at": self.failed_at,
                "notification": notification_to_dict(self.notification),
            }
        )


@dataclass(frozen=True, slots=True)
class DeliveredLater:
    """A dead-lettered notification that a later retry delivered: nothing left to replay."""

    notification_id: str
    channel: str
    delivered_at: float

    @property
    def key(self) -> bytes:
        """The record key: the notification id."""
        return self.notification_id.encode()

    def to_json(self) -> bytes:
        """The record value."""
        return orjson.dumps(
            {"status": "delivered", "channel": self.channel, "delivered_at": self.delivered_at}
        )


@dataclass(frozen=True, slots=True)
class Superseded:
    """A dead-lettered notification made stale by a later notification of its group that was
    delivered: nothing left to replay (replaying it would tell the receiver something older).

    ``by`` is the id of that later notification when known, else ``""``.

    >>> Superseded("n1", "ops", "n2", 1700000000.0).to_json()
    b'{"status":"superseded","channel":"ops","by":"n2","superseded_at":1700000000.0}'
    """

    notification_id: str
    channel: str
    by: str
    superseded_at: float

    @property
    def key(self) -> bytes:
        """The record key: the id of the dead notification."""
        return self.notification_id.encode()

    def to_json(self) -> bytes:
        """The record value."""
        return orjson.dumps(
            {
                "status": "superseded",
                "channel": self.channel,
                "by": self.by,
                "superseded_at": self.superseded_at,
            }
        )
