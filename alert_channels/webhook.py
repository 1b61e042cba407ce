"""A generic webhook channel: Alertmanager's webhook JSON (version "4"), optionally signed.

The body is what Alertmanager's ``notify/webhook`` sends (``template.Data`` plus ``version``,
``groupKey`` and ``truncatedAlerts``), so receivers written for Alertmanager work unchanged. Each
alert's ``labels`` hold ``alertname`` (the series name), ``detector``, ``severity`` and the series
labels; its ``annotations`` hold ``summary``, ``value``, ``expected`` and ``score``; a firing
alert's ``endsAt`` is Go's zero time ``0001-01-01T00:00:00Z``, as Alertmanager sends it.

Every request carries the Standard Webhooks headers ``webhook-id`` (the notification id: the same on
every retry, so receivers can drop duplicates) and ``webhook-timestamp`` (epoch seconds), and with a
``secret`` also ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

import httpx
from pydantic import Field, SecretStr

from alert_channels.formatting import ZERO_TIME, alert_annotations, common_items
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

__all__ = [
    "WebhookChannel",
    "WebhookSettings",
    "decode_signing_secret",
    "sign_payload",
    "webhook_payload",
]

SECRET_PREFIX = "whsec_"
#: The Standard Webhooks spec asks for 24 to 64 random bytes.
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


def webhook_payload(notification: Notification, *, max_alerts: int = 0) -> dict[str, Any]:
    """The Alertmanager webhook (version "4") body for ``notification``.

    Parameters
    ----------
    notification
        What to send.
    max_alerts
        Send at most this many alerts (0: all); the rest are counted in ``truncatedAlerts``.

    >>> from engine.model.alert import Alert, AlertStatus, Severity
    >>> alert = Alert("438fe56f6f6f643b", AlertStatus.FIRING, Severity.WARNING, "latency_ms",
    ...               {"service": "api"}, "zscore", 950.0, 120.0, 8.5, 1700000000.0, None, "slow")
    >>> body = webhook_payload(Notification.single(alert, "hooks"))
    >>> body["version"], body["status"], body["groupKey"], body["truncatedAlerts"]
    ('4', 'firing', '438fe56f6f6f643b', 0)
    >>> body["alerts"][0]["labels"]
    {'alertname': 'latency_ms', 'detector': 'zscore', 'service': 'api', 'severity': 'warning'}
    >>> body["alerts"][0]["startsAt"], body["alerts"][0]["endsAt"]
    ('2023-11-14T22:13:20Z', '0001-01-01T00:00:00Z')
    """
    if max_alerts < 0:
        raise ValueError(f"max_alerts must be >= 0, got {max_alerts}")
    alerts = notification.alerts
    truncated = 0
    if max_alerts and len(alerts) > max_alerts:
        alerts, truncated = alerts[:max_alerts], len(alerts) - max_alerts
    external = notification.external_url or ""
    items: list[dict[str, Any]] = []
    all_labels: list[dict[str, str]] = []
    all_annotations: list[dict[str, str]] = []
    for alert in alerts:
        labels = alert_labels(alert)
        annotations = alert_annotations(alert)
        all_labels.append(labels)
        all_annotations.append(annotations)
        ends_at = ZERO_TIME
        if alert.status is AlertStatus.RESOLVED and alert.ended_at is not None:
            ends_at = rfc3339(alert.ended_at)
        items.append(
            {
                "status": alert.status.value,
                "labels": labels,
                "annotations": annotations,
                "startsAt": rfc3339(alert.started_at),
                "endsAt": ends_at,
                "generatorURL": external,
                "fingerprint": alert.fingerprint,
            }
        )
    return {
        "receiver": notification.receiver,
        "status": notification.status.value,
        "alerts": items,
        "groupLabels": dict(notification.group_labels),
        "commonLabels": common_items(all_labels),
        "commonAnnotations": common_items(all_annotations),
        "externalURL": external,
        "version": "4",
        "groupKey": notification.group_key,
        "truncatedAlerts": truncated,
    }


def decode_signing_secret(secret: str | bytes) -> bytes:
    """The HMAC key of a Standard Webhooks secret.

    A ``str`` is the spec's serialisation: base64, usually behind a ``whsec_`` prefix. ``bytes`` are
    the raw key. Either way the key must be 24 to 64 bytes.

    Raises
    ------
    ValueError
        If the secret is not valid base64 or has the wrong size (the message never quotes it).

    >>> len(decode_signing_secret("whsec_" + "A" * 32))
    24
    """
    if isinstance(secret, bytes):
        key = secret
    else:
        text = secret.removeprefix(SECRET_PREFIX).strip()
        try:
            key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            key = b""
            invalid = True
        else:
            invalid = False
        if invalid:
            raise ValueError("secret: not base64 after the 'whsec_' prefix (value not shown)")
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"secret: the key must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, "
            f"got {len(key)}"
        )
    return key


def sign_payload(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256 of ``{id}.{timestamp}.{body}``.

    >>> sign_payload(b"k" * 24, "msg_1", 1700000000, b"{}")
    'v1,E3sCg9uS8x43RKlJqcda1EcaYZxNkN+l2u7RBZBSZQQ='
    """
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


class WebhookChannel:
    """Posts Alertmanager-format webhooks, signed per Standard Webhooks when given a ``secret``.

    Success is any 2xx; see :mod:`alert_channels.http` for the other statuses.

    Parameters
    ----------
    name
        The channel's name.
    url
        The receiver's URL; its path, query and user info are treated as secret.
    client
        The shared HTTP client.
    secret
        Signing secret (``whsec_<base64>`` text or raw key bytes), or ``None`` to not sign.
    timeout_seconds
        Per-request timeout.
    max_alerts
        Alerts per message at most (0: all); see :func:`webhook_payload`.
    headers
        Extra headers (e.g. ``Authorization``); their values are treated as secret.
    clock
        Wall-clock epoch seconds, for ``webhook-timestamp`` and ``Retry-After`` dates.

    >>> import httpx
    >>> url = "https://example.com/hook/s3cr3t"
    >>> channel = WebhookChannel("hooks", url, client=httpx.AsyncClient())
    >>> channel
    WebhookChannel(name='hooks', url='https://example.com/<redacted>', signed=False)
    """

    def __init__(
        self,
        name: str,
        url: str,
        *,
        client: httpx.AsyncClient,
        secret: str | bytes | None = None,
        timeout_seconds: float = 10.0,
        max_alerts: int = 0,
        headers: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_alerts < 0:
            raise ValueError(f"max_alerts must be >= 0, got {max_alerts}")
        self.name = name
        self.max_alerts = max_alerts
        self._key = None if secret is None else decode_signing_secret(secret)
        self._headers = secret_headers(headers)
        self._clock = clock
        secrets = header_secrets(self._headers)
        if isinstance(secret, str):
            secrets += [secret, secret.removeprefix(SECRET_PREFIX)]
        if self._key is not None:
            secrets.append(base64.b64encode(self._key).decode("ascii"))
        self._http = HttpSender(
            kind="webhook",
            name=name,
            url=SecretURL(url, secret_path=True),
            client=client,
            timeout_seconds=timeout_seconds,
            secrets=secrets,
            clock=clock,
        )

    def __repr__(self) -> str:
        return (
            f"WebhookChannel(name={self.name!r}, url={self._http.url.redacted!r}, "
            f"signed={self._key is not None})"
        )

    def request_headers(self, notification: Notification, body: bytes) -> dict[str, str]:
        """The Standard Webhooks headers (and extra headers) for one attempt."""
        msg_id = notification.notification_id
        timestamp = int(self._clock())
        headers = {
            **self._headers,
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
        }
        if self._key is not None:
            headers["webhook-signature"] = sign_payload(self._key, msg_id, timestamp, body)
        return headers

    async def send(self, notification: Notification) -> None:
        """Post the notification once; see :class:`~alert_channels.base.Channel`."""
        body = encode_json(webhook_payload(notification, max_alerts=self.max_alerts))
        await self._http.post(body, headers=self.request_headers(notification, body))


class WebhookSettings(BaseChannelSettings):
    """A ``type = "webhook"`` entry: ``url`` (required) and ``secret`` (optional, signs requests).

    >>> import httpx
    >>> settings = WebhookSettings(name="ops", url="https://example.com/hook/s3cr3t")
    >>> settings.url
    SecretStr('**********')
    >>> settings.build(httpx.AsyncClient(), resend_interval_seconds=3600.0)
    WebhookChannel(name='ops', url='https://example.com/<redacted>', signed=False)
    """

    type: Literal["webhook"] = "webhook"
    url: NonEmptySecret = Field(description="The receiver's URL (secret).")
    secret: SecretStr | None = Field(
        None, description="Standard Webhooks signing secret (whsec_<base64>); unset: unsigned."
    )

    def build(self, http: httpx.AsyncClient, *, resend_interval_seconds: float) -> WebhookChannel:
        """A :class:`WebhookChannel` (``resend_interval_seconds`` is unused).

        Raises
        ------
        ValueError
            If ``url`` is not an absolute http(s) URL or ``secret`` is not a valid signing secret.
        """
        return WebhookChannel(
            self.name,
            self.url.get_secret_value(),
            client=http,
            secret=None if self.secret is None else self.secret.get_secret_value(),
            timeout_seconds=self.timeout_seconds,
        )
