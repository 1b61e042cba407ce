"""Aggregation groups: the alerts one receiver gets together in one notification.

A group is identified by its receiver (channel name) and its group key (route id + group labels,
see :func:`engine.notify.routes.group_key`). It holds the latest version of each alert by
fingerprint and its own timer: the first flush ``group_wait_seconds`` after the group was created,
then one every ``group_interval_seconds``. Resolved alerts stay until a flush has dealt with them;
a group left without alerts is deleted.

Versions of one alert are ordered by :func:`alert_order` (a later incident, then resolved after
firing), so a record that arrives late never replaces a newer one.

>>> from engine.model.alert import AlertStatus
>>> alert_order(AlertStatus.FIRING, 10.0) < alert_order(AlertStatus.RESOLVED, 10.0)
True
>>> alert_order(AlertStatus.RESOLVED, 10.0) < alert_order(AlertStatus.FIRING, 20.0)
True
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.model.alert import Alert, AlertStatus
from engine.notify.routes import RouteMatch

__all__ = ["AggregationGroup", "GroupedAlert", "alert_key", "alert_order", "alert_to_state"]


def alert_order(status: AlertStatus, started_at: float) -> tuple[float, int]:
    """Sort key of the versions of one alert: incident start, then firing before resolved."""
    return (started_at, 0 if status is AlertStatus.FIRING else 1)


def alert_key(alert: Alert) -> str:
    """Identity of one incident of one alert, ``<fingerprint>@<started_at>``.

    What the notification log remembers, so a new incident of the same series is new while a
    repeat of the same incident is not.

    >>> from engine.model.alert import Alert, AlertStatus, Severity
    >>> alert_key(Alert("f1", AlertStatus.FIRING, Severity.INFO, "cpu", {}, "z", 1.0, 0.0, 3.0,
    ...                 1700000000.5, None, "s"))
    'f1@1700000000.5'
    """
    return f"{alert.fingerprint}@{alert.started_at!r}"


@dataclass(slots=True)
class GroupedAlert:
    """An alert in a group, with what the dispatcher remembers about it there.

    Attributes
    ----------
    alert
        Its latest version.
    muted
        ``<reason>@<started_at>`` once it was counted as silenced or inhibited (so each incident
        is counted once per group), else ``None``.
    flap_announced
        Start (epoch seconds) of the flapping episode already notified to this receiver, else
        ``None``.
    """

    alert: Alert
    muted: str | None = None
    flap_announced: float | None = None


@dataclass(slots=True)
class AggregationGroup:
    """The alerts of one group for one receiver, and the group's timer.

    Attributes
    ----------
    receiver
        The channel name.
    group_key
        See :func:`engine.notify.routes.group_key`.
    route_id, group_labels
        Where it comes from.
    group_interval_seconds, repeat_interval_seconds
        The route's timings (seconds).
    created_at
        When the group was created (epoch seconds).
    next_flush
        When it is next due (epoch seconds).
    alerts
        By fingerprint.
    in_flight
        A notification of this group is being delivered (not persisted: a restarted worker
        re-evaluates the group).
    """

    receiver: str
    group_key: str
    route_id: str
    group_labels: dict[str, str]
    group_interval_seconds: float
    repeat_interval_seconds: float
    created_at: float
    next_flush: float
    alerts: dict[str, GroupedAlert] = field(default_factory=dict)
    in_flight: bool = False

    @classmethod
    def new(
        cls,
        receiver: str,
        group_key: str,
        route: RouteMatch,
        group_labels: Mapping[str, str],
        now: float,
    ) -> AggregationGroup:
        """An empty group created at ``now``, first due at ``now + group_wait_seconds``."""
        return cls(
            receiver=receiver,
            group_key=group_key,
            route_id=route.route_id,
            group_labels=dict(group_labels),
            group_interval_seconds=route.group_interval_seconds,
            repeat_interval_seconds=route.repeat_interval_seconds,
            created_at=now,
            next_flush=now + route.group_wait_seconds,
        )

    def insert(self, alert: Alert) -> bool:
        """Store ``alert`` unless the group holds a newer version of it; whether it was stored."""
        held = self.alerts.get(alert.fingerprint)
        if held is None:
            self.alerts[alert.fingerprint] = GroupedAlert(alert)
            return True
        if alert_order(alert.status, alert.started_at) < alert_order(
            held.alert.status, held.alert.started_at
        ):
            return False
        held.alert = alert
        return True

    def remove_if_unchanged(self, alert: Alert) -> None:
        """Drop ``alert`` if the group still holds that very version (same incident and status)."""
        held = self.alerts.get(alert.fingerprint)
        if held is not None and alert_order(held.alert.status, held.alert.started_at) == (
            alert_order(alert.status, alert.started_at)
        ):
            del self.alerts[alert.fingerprint]

    def to_state(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot (``in_flight`` is not kept)."""
        return {
            "receiver": self.receiver,
            "group_key": self.group_key,
            "route_id": self.route_id,
            "group_labels": dict(self.group_labels),
            "group_interval_seconds": self.group_interval_seconds,
            "repeat_interval_seconds": self.repeat_interval_seconds,
            "created_at": self.created_at,
            "next_flush": self.next_flush,
            "alerts": [
                {
                    "alert": alert_to_state(g.alert),
                    "muted": g.muted,
                    "flap_announced": g.flap_announced,
                }
                for _, g in sorted(self.alerts.items())
            ],
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> AggregationGroup:
        """The group :meth:`to_state` described."""
        group = cls(
            receiver=str(state["receiver"]),
            group_key=str(state["group_key"]),
            route_id=str(state["route_id"]),
            group_labels={str(k): str(v) for k, v in state["group_labels"].items()},
            group_interval_seconds=float(state["group_interval_seconds"]),
            repeat_interval_seconds=float(state["repeat_interval_seconds"]),
            created_at=float(state["created_at"]),
            next_flush=float(state["next_flush"]),
        )
        for item in state["alerts"]:
            alert = Alert.from_dict(item["alert"])
            announced = item["flap_announced"]
            group.alerts[alert.fingerprint] = GroupedAlert(
                alert,
                muted=None if item["muted"] is None else str(item["muted"]),
                flap_announced=None if announced is None else float(announced),
            )
        return group


def alert_to_state(alert: Alert) -> dict[str, Any]:
    """:meth:`Alert.to_dict` with non-finite numbers as strings (``"nan"``), valid strict JSON.

    :meth:`Alert.from_dict` reads them back (``float("nan")``).
    """
    out = alert.to_dict()
    for key in ("value", "expected", "score"):
        if not math.isfinite(out[key]):
            out[key] = str(out[key])
    return out
