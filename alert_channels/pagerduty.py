"""PagerDuty Events API v2 channel: one trigger or resolve event per notification.

* ``event_action``: ``trigger`` while the notification is firing, ``resolve`` once every alert in it
  is resolved.
* ``dedup_key`` (what PagerDuty groups events of one incident by): for a per-alert notification
  (:meth:`~engine.model.notification.Notification.single`) the alert's ``fingerprint``, so each
  series and detector has its own incident; for a grouped notification the SHA-256 hex of its
  ``group_key`` (as Alertmanager does), so the whole group is one incident, resolved when all its
  alerts are.
* ``payload.severity``: Kestrel's ``critical``, ``warning`` and ``info`` map to PagerDuty's values
  of the same names (PagerDuty's ``error`` is not used); a group takes its most urgent firing
  alert's.
* ``payload.summary`` is at most 1,024 characters (cut with ``…``), ``payload.source`` is the
  series (or the group labels), ``component`` the series name, ``class`` the detector, and
  ``custom_details`` hold value, expected, score, labels and start/end times (per alert for a
  group).

PagerDuty answers ``202`` on success, ``400`` for an invalid event (permanent), ``429`` when
throttled and ``5xx`` on its own trouble (both retryable).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from typing import Any, Literal

import httpx
from pydantic import Field, SecretStr

from alert_channels.formatting import format_labels, notification_title
from alert_channels.http import HttpSender, SecretURL, encode_json
from alert_channels.settings import BaseChannelSettings
from engine.model.alert import Alert, AlertStatus, Severity
from engine.model.notification import Notification
from engine.model.times import rfc3339

__all__ = [
    "DEFAULT_EVENTS_URL",
    "PagerDutyChannel",
    "PagerDutySettings",
    "pagerduty_dedup_key",
    "pagerduty_event",
]

DEFAULT_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
SUMMARY_MAX_CHARS = 1024
SOURCE_MAX_CHARS = 1024
DEDUP_KEY_MAX_CHARS = 255
PAGERDUTY_SEVERITY = {
    Severity.CRITICAL: "critical",
    Severity.WARNING: "warning",
    Severity.INFO: "info",
}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(x: float) -> float | None:
    """JSON has no NaN or infinity: those become ``null``."""
    return x if math.isfinite(x) else None


def pagerduty_dedup_key(notification: Notification) -> str:
    """The alert fingerprint for a per-alert notification, else SHA-256 hex of the group key."""
    if notification.is_single:
        return notification.alerts[0].fingerprint[:DEDUP_KEY_MAX_CHARS]
    return hashlib.sha256(notification.group_key.encode()).hexdigest()


def _alert_details(alert: Alert) -> dict[str, Any]:
    return {
        "series": alert.series_id,
        "status": alert.status.value,
        "severity": alert.severity.value,
        "detector": alert.detector,
        "value": _number(alert.value),
        "expected": _number(alert.expected),
        "score": _number(alert.score),
        "labels": dict(alert.labels),
        "started_at": rfc3339(alert.started_at),
        "ended_at": None if alert.ended_at is None else rfc3339(alert.ended_at),
        "fingerprint": alert.fingerprint,
        "summary": alert.summary,
    }


def _only(values: set[str]) -> str | None:
    return next(iter(values)) if len(values) == 1 else None


def pagerduty_event(
    notification: Notification, routing_key: str, *, max_alerts: int = 20
) -> dict[str, Any]:
    """The Events API v2 body for ``notification``.

    Parameters
    ----------
    notification
        What to send.
    routing_key
        The integration's routing key (secret).
    max_alerts
        Alerts detailed in ``custom_details`` of a grouped notification at most (>= 1).

    >>> from engine.model.alert import Alert, AlertStatus, Severity
    >>> alert = Alert("438fe56f6f6f643b", AlertStatus.FIRING, Severity.CRITICAL, "latency_ms",
    ...               {"service": "api"}, "zscore", 950.0, 120.0, 8.5, 1700000000.0, None, "slow")
    >>> event = pagerduty_event(Notification.single(alert, "pd"), "R" * 32)
    >>> event["event_action"], event["dedup_key"], event["payload"]["severity"]
    ('trigger', '438fe56f6f6f643b', 'critical')
    >>> event["payload"]["custom_details"]["value"], event["payload"]["source"]
    (950.0, 'latency_ms{service=api}')
    """
    if max_alerts < 1:
        raise ValueError(f"max_alerts must be >= 1, got {max_alerts}")
    dedup_key = pagerduty_dedup_key(notification)
    if notification.status is AlertStatus.RESOLVED:
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key}

    alerts = notification.alerts
    first = (notification.firing or alerts)[0]
    details: dict[str, Any]
    if len(alerts) == 1:
        source = first.series_id
        details = _alert_details(first)
    else:
        source = format_labels(notification.group_labels) or notification.receiver
        details = {
            "firing": len(notification.firing),
            "resolved": len(notification.resolved),
            "group_labels": dict(notification.group_labels),
            "alerts": [_alert_details(a) for a in alerts[:max_alerts]],
            "alerts_not_shown": max(0, len(alerts) - max_alerts),
        }
    payload: dict[str, Any] = {
        "summary": _cut(notification_title(notification), SUMMARY_MAX_CHARS),
        "source": _cut(source, SOURCE_MAX_CHARS),
        "severity": PAGERDUTY_SEVERITY[notification.severity],
        "timestamp": rfc3339(min(a.started_at for a in alerts)),
        "custom_details": details,
    }
    component = _only({a.series for a in alerts})
    if component is not None:
        payload["component"] = component
    detector = _only({a.detector for a in alerts})
    if detector is not None:
        payload["class"] = detector
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key,
        "payload": payload,
        "client": "Kestrel",
    }
    if notification.external_url:
        event["client_url"] = notification.external_url
        event["links"] = [{"href": notification.external_url, "text": "Kestrel"}]
    return event


class PagerDutyChannel:
    """Sends PagerDuty Events API v2 events; success is any 2xx (PagerDuty answers 202).

    Parameters
    ----------
    name
        The channel's name.
    routing_key
        The Events API v2 integration key (secret: never shown).
    client
        The shared HTTP client.
    url
        The events endpoint; :data:`DEFAULT_EVENTS_URL` unless testing or using a proxy.
    timeout_seconds
        Per-request timeout.
    max_alerts
        Alerts detailed per grouped event; see :func:`pagerduty_event`.
    clock
        Wall-clock epoch seconds, for ``Retry-After`` dates.

    >>> import httpx
    >>> PagerDutyChannel("pd", "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY00", client=httpx.AsyncClient())
    PagerDutyChannel(name='pd', url='https://events.pagerduty.com/v2/enqueue')
    """

    def __init__(
        self,
        name: str,
        routing_key: str,
        *,
        client: httpx.AsyncClient,
        url: str = DEFAULT_EVENTS_URL,
        timeout_seconds: float = 10.0,
        max_alerts: int = 20,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not routing_key.strip():
            raise ValueError("routing_key must not be empty")
        if max_alerts < 1:
            raise ValueError(f"max_alerts must be >= 1, got {max_alerts}")
        self.name = name
        self.max_alerts = max_alerts
        self._routing_key = routing_key
        self._http = HttpSender(
            kind="pagerduty",
            name=name,
            url=SecretURL(url, secret_path=False),
            client=client,
            timeout_seconds=timeout_seconds,
            secrets=[routing_key],
            clock=clock,
        )

    def __repr__(self) -> str:
        return f"PagerDutyChannel(name={self.name!r}, url={self._http.url.redacted!r})"

    async def send(self, notification: Notification) -> None:
        """Send one event; see :class:`~alert_channels.base.Channel`."""
        event = pagerduty_event(notification, self._routing_key, max_alerts=self.max_alerts)
        await self._http.post(encode_json(event))


class PagerDutySettings(BaseChannelSettings):
    """A ``type = "pagerduty"`` entry: ``routing_key`` (required) and ``url`` (optional).

    >>> import httpx
    >>> settings = PagerDutySettings(name="pd", routing_key="R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY00")
    >>> settings.routing_key
    SecretStr('**********')
    >>> settings.build(httpx.AsyncClient(), resend_interval_seconds=3600.0)
    PagerDutyChannel(name='pd', url='https://events.pagerduty.com/v2/enqueue')
    """

    type: Literal["pagerduty"] = "pagerduty"
    routing_key: SecretStr = Field(description="The Events API v2 integration key (secret).")
    url: SecretStr = Field(
        SecretStr(DEFAULT_EVENTS_URL),
        description="The events endpoint; change it only for a proxy or a test server.",
    )

    def build(self, http: httpx.AsyncClient, *, resend_interval_seconds: float) -> PagerDutyChannel:
        """A :class:`PagerDutyChannel` (``resend_interval_seconds`` is unused); an empty ``url``
        (e.g. from an empty variable) means :data:`DEFAULT_EVENTS_URL`.

        Raises
        ------
        ValueError
            If ``routing_key`` is blank or ``url`` is not an absolute http(s) URL.
        """
        return PagerDutyChannel(
            self.name,
            self.routing_key.get_secret_value(),
            client=http,
            url=self.url.get_secret_value() or DEFAULT_EVENTS_URL,
            timeout_seconds=self.timeout_seconds,
        )
