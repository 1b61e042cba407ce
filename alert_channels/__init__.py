"""Alert channels: turn alert notifications into deliveries (console, webhook, Slack, PagerDuty,
Alertmanager). Knows nothing of Kafka.

The engine wraps alerts in a :class:`~engine.model.notification.Notification` (the domain model
lives in :mod:`engine.model`, the only part of ``engine`` this package imports) and hands it to a
:class:`Channel`, whose ``send`` makes **one** delivery attempt. Retries are the caller's:
:func:`deliver_with_retries` runs attempts under a :class:`RetryPolicy` (exponential backoff with
full jitter, ``Retry-After`` honoured, attempt and time budgets) and returns a
:class:`DeliveryOutcome`, so what was given up can be dead-lettered. HTTP channels share
:mod:`alert_channels.http` for timeouts, status classification, ``Retry-After`` parsing and secret
redaction; each is built from plain values and an injected :class:`httpx.AsyncClient`.

Each channel module also holds the channel's settings (a ``[[channels]]`` entry of the config file:
:class:`ConsoleSettings`, :class:`WebhookSettings`, :class:`SlackSettings`,
:class:`PagerDutySettings`, :class:`AlertmanagerSettings`, all :class:`BaseChannelSettings`), whose
``build`` makes the channel. :mod:`alert_channels.registry` joins them: :data:`ChannelSettings` (the
union the config validates entries with), :data:`CHANNEL_TYPES` and :func:`build_channel`. A new
channel is one module plus one line in the registry.

Exceptions::

    DeliveryError                    any failed delivery attempt (``status_code`` when HTTP)
    ├── RetryableDeliveryError       may succeed later: timeout, connection error, HTTP 408/429/5xx
    │                                (``retry_after``: seconds the receiver asked us to wait)
    └── PermanentDeliveryError       will fail again: other 4xx, rejected payload, invalid URL

Constructors raise ``ValueError`` naming the bad parameter. No message, ``repr``, traceback or
``httpx``/``httpcore`` log line contains a secret (URL paths and queries of webhooks, routing keys,
signing secrets, auth headers).
"""

from alert_channels.alertmanager import (
    AlertmanagerChannel,
    AlertmanagerSettings,
    alertmanager_alerts,
)
from alert_channels.base import Channel
from alert_channels.console import ConsoleChannel, ConsoleSettings, console_lines
from alert_channels.errors import DeliveryError, PermanentDeliveryError, RetryableDeliveryError
from alert_channels.pagerduty import PagerDutyChannel, PagerDutySettings, pagerduty_event
from alert_channels.registry import CHANNEL_TYPES, ChannelKind, ChannelSettings, build_channel
from alert_channels.retry import DeliveryOutcome, RetryPolicy, deliver_with_retries
from alert_channels.settings import BaseChannelSettings
from alert_channels.slack import SlackChannel, SlackSettings, slack_payload
from alert_channels.webhook import WebhookChannel, WebhookSettings, webhook_payload

__all__ = [
    "CHANNEL_TYPES",
    "AlertmanagerChannel",
    "AlertmanagerSettings",
    "BaseChannelSettings",
    "Channel",
    "ChannelKind",
    "ChannelSettings",
    "ConsoleChannel",
    "ConsoleSettings",
    "DeliveryError",
    "DeliveryOutcome",
    "PagerDutyChannel",
    "PagerDutySettings",
    "PermanentDeliveryError",
    "RetryPolicy",
    "RetryableDeliveryError",
    "SlackChannel",
    "SlackSettings",
    "WebhookChannel",
    "WebhookSettings",
    "alertmanager_alerts",
    "build_channel",
    "console_lines",
    "deliver_with_retries",
    "pagerduty_event",
    "slack_payload",
    "webhook_payload",
]
