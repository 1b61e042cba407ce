"""Alertmanager channel: post alerts to Alertmanager's API v2 and let it route, group and silence.

Each notification becomes ``POST {url}/api/v2/alerts`` with a JSON list of postable alerts
(``labels``, ``annotations``, ``startsAt``, ``endsAt`` and, when there is an external URL,
``generatorURL``). Alertmanager answers 200 on success and 400 for invalid alerts.

Alertmanager resolves an alert on its own once its ``endsAt`` passes. A firing alert is therefore
sent with ``endsAt = now + resend_timeout_seconds`` (4 x ``resend_interval_seconds``, as Prometheus
does): **the engine must re-send every firing alert at least every**
``resend_interval_seconds`` (the channel's attribute), or Alertmanager will declare it resolved.
A resolution is sent with ``endsAt = ended_at``.

Alertmanager 0.25 accepts only label and annotation names matching ``[a-zA-Z_][a-zA-Z0-9_]*``:
other characters become ``_`` (``http.status`` -> ``http_status``), and empty label values are
dropped (they mean "no such label").
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import httpx
from pydantic import Field

from alert_channels.formatting import alert_annotations
from alert_channels.http import (
    HttpSender,
    SecretURL,
    encode_json,
    header_secrets,
    secret_headers,
)
from alert_channels.settings import BaseChannelSettings, NonEmptySecret
from engine.model.alert import AlertStatus, alert_labels
from engine.model.notification import Notification
from engine.model.times import rfc3339

__all__ = ["AlertmanagerChannel", "AlertmanagerSettings", "alertmanager_alerts", "label_name"]

#: How many missed re-sends Alertmanager tolerates before resolving a firing alert on its own.
RESEND_TIMEOUT_FACTOR = 4.0
_INVALID_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def label_name(name: str) -> str:
    """A valid Prometheus label name for ``name``.

    >>> label_name("http.status"), label_name("5xx"), label_name("")
    ('http_status', '_5xx', '_')
    """
    cleaned = _INVALID_NAME_CHARS.sub("_", name)
    if not cleaned or cleaned[0].isdigit():
        cleaned = "_" + cleaned
    return cleaned


def _names(pairs: Mapping[str, str]) -> dict[str, str]:
    return {label_name(k): v for k, v in pairs.items() if v != ""}


def alertmanager_alerts(
    notification: Notification, *, now: float, resend_timeout_seconds: float
) -> list[dict[str, Any]]:
    """The API v2 postable alerts for ``notification``.

    Parameters
    ----------
    notification
        What to post.
    now
        Wall-clock epoch seconds.
    resend_timeout_seconds
        How long a firing alert stays firing in Alertmanager without being re-sent.

    >>> from engine.model.alert import Alert, AlertStatus, Severity
    >>> alert = Alert("438fe56f6f6f643b", AlertStatus.FIRING, Severity.WARNING, "latency_ms",
    ...               {"service": "api"}, "zscore", 950.0, 120.0, 8.5, 1700000000.0, None, "slow")
    >>> [posted] = alertmanager_alerts(
    ...     Notification.single(alert, "am"), now=1700000060.0, resend_timeout_seconds=240.0)
    >>> posted["labels"]
    {'alertname': 'latency_ms', 'detector': 'zscore', 'service': 'api', 'severity': 'warning'}
    >>> posted["startsAt"], posted["endsAt"]
    ('2023-11-14T22:13:20Z', '2023-11-14T22:18:20Z')
    """
    out: list[dict[str, Any]] = []
    for alert in notification.alerts:
        if alert.status is AlertStatus.FIRING:
            ends_at = max(now, alert.started_at) + resend_timeout_seconds
        else:
            ended = now if alert.ended_at is None else alert.ended_at
            ends_at = max(ended, alert.started_at)
        posted: dict[str, Any] = {
            "labels": _names(alert_labels(alert)),
            "annotations": _names(alert_annotations(alert)),
            "startsAt": rfc3339(alert.started_at),
            "endsAt": rfc3339(ends_at),
        }
        if notification.external_url:
            posted["generatorURL"] = notification.external_url
        out.append(posted)
    return out


class AlertmanagerChannel:
    """Posts alerts to an Alertmanager (API v2); success is any 2xx (Alertmanager answers 200).

    Parameters
    ----------
    name
        The channel's name.
    url
        Alertmanager's base URL (``http://alertmanager:9093``, with any route prefix); its query and
        user info are secret.
    client
        The shared HTTP client.
    resend_interval_seconds
        How often the engine re-sends firing alerts; Alertmanager keeps an alert firing for
        ``resend_timeout_seconds`` = 4 x this after each post.
    timeout_seconds
        Per-request timeout.
    headers
        Extra headers (e.g. ``Authorization``); their values are treated as secret.
    clock
        Wall-clock epoch seconds, for ``endsAt`` and ``Retry-After`` dates.

    >>> import httpx
    >>> am = AlertmanagerChannel("am", "http://127.0.0.1:9093", client=httpx.AsyncClient())
    >>> am, am.resend_interval_seconds, am.resend_timeout_seconds
    (AlertmanagerChannel(name='am', url='http://127.0.0.1:9093/api/v2/alerts'), 60.0, 240.0)
    """

    def __init__(
        self,
        name: str,
        url: str,
        *,
        client: httpx.AsyncClient,
        resend_interval_seconds: float = 60.0,
        timeout_seconds: float = 10.0,
        headers: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not resend_interval_seconds > 0:
            raise ValueError(f"resend_interval_seconds must be > 0, got {resend_interval_seconds}")
        self.name = name
        self.resend_interval_seconds = float(resend_interval_seconds)
        self.resend_timeout_seconds = RESEND_TIMEOUT_FACTOR * self.resend_interval_seconds
        self._headers = secret_headers(headers)
        self._clock = clock
        self._http = HttpSender(
            kind="alertmanager",
            name=name,
            url=SecretURL(url, secret_path=False).join("/api/v2/alerts"),
            client=client,
            timeout_seconds=timeout_seconds,
            secrets=header_secrets(self._headers),
            clock=clock,
        )

    def __repr__(self) -> str:
        return f"AlertmanagerChannel(name={self.name!r}, url={self._http.url.redacted!r})"

    async def send(self, notification: Notification) -> None:
        """Post the notification's alerts once; see :class:`~alert_channels.base.Channel`."""
        alerts = alertmanager_alerts(
            notification, now=self._clock(), resend_timeout_seconds=self.resend_timeout_seconds
        )
        await self._http.post(encode_json(alerts), headers=self._headers)


class AlertmanagerSettings(BaseChannelSettings):
    """A ``type = "alertmanager"`` entry: Alertmanager's base ``url`` (required).

    >>> import httpx
    >>> settings = AlertmanagerSettings(name="am", url="http://127.0.0.1:9093")
    >>> am = settings.build(httpx.AsyncClient(), resend_interval_seconds=3600.0)
    >>> am, am.resend_timeout_seconds
    (AlertmanagerChannel(name='am', url='http://127.0.0.1:9093/api/v2/alerts'), 14400.0)
    """

    type: Literal["alertmanager"] = "alertmanager"
    url: NonEmptySecret = Field(
        description="Alertmanager's base URL, with any route prefix (its query is secret)."
    )

    def build(
        self, http: httpx.AsyncClient, *, resend_interval_seconds: float
    ) -> AlertmanagerChannel:
        """An :class:`AlertmanagerChannel` that keeps firing alerts alive for
        4 x ``resend_interval_seconds`` after each post.

        Raises
        ------
        ValueError
            If ``url`` is not an absolute http(s) URL or the interval is not positive.
        """
        return AlertmanagerChannel(
            self.name,
            self.url.get_secret_value(),
            client=http,
            timeout_seconds=self.timeout_seconds,
            resend_interval_seconds=resend_interval_seconds,
        )
