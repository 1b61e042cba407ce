"""Alert channels: turn alert notifications into deliveries (console, webhook, Slack, PagerDuty,
Alertmanager). Knows nothing of Kafka.

The engine wraps alerts in a :class:`Notification` and hands it to a :class:`Channel`, whose
``send`` makes **one** delivery attempt. Retries are the caller's: :func:`deliver_with_retries` runs
attempts under a :class:`RetryPolicy` (exponential backoff with full jitter, ``Retry-After``
honoured, attempt and time budgets) and returns a :class:`DeliveryOutcome`, so what was given up
can be dead-lettered. HTTP channels share :mod:`alert_channels.http` for timeouts, status
classification, ``Retry-After`` parsing and secret redaction; each is built from plain values and an
injected :class:`httpx.AsyncClient` (the engine maps its config to these constructors).

Exceptions::

    DeliveryError                    any failed delivery attempt (``status_code`` when HTTP)
    ├── RetryableDeliveryError       may succeed later: timeout, connection error, HTTP 408/429/5xx
    │                                (``retry_after``: seconds the receiver asked us to wait)
    └── PermanentDeliveryError       will fail again: other 4xx, rejected payload, invalid URL

Constructors raise ``ValueError`` naming the bad parameter. No message, ``repr``, traceback or
``httpx``/``httpcore`` log line contains a secret (URL paths and queries of webhooks, routing keys,
signing secrets, auth headers).
"""

from alert_channels.alertmanager import AlertmanagerChannel, alertmanager_alerts
from alert_channels.base import Channel
from alert_channels.console import ConsoleChannel, console_lines
from alert_channels.errors import DeliveryError, PermanentDeliveryError, RetryableDeliveryError
from alert_channels.pagerduty import PagerDutyChannel, pagerduty_event
from alert_channels.retry import DeliveryOutcome, RetryPolicy, deliver_with_retries
from alert_channels.slack import SlackChannel, slack_payload
from alert_channels.webhook import WebhookChannel, webhook_payload
from engine.model.alert import Alert, AlertStatus, Severity
from engine.model.notification import Notification

__all__ = [
    "Alert",
    "AlertStatus",
    "AlertmanagerChannel",
    "Channel",
    "ConsoleChannel",
    "DeliveryError",
    "DeliveryOutcome",
    "Notification",
    "PagerDutyChannel",
    "PermanentDeliveryError",
    "RetryPolicy",
    "RetryableDeliveryError",
    "Severity",
    "SlackChannel",
    "WebhookChannel",
    "alertmanager_alerts",
    "console_lines",
    "deliver_with_retries",
    "pagerduty_event",
    "slack_payload",
    "webhook_payload",
]
