"""What every channel shares: the notification, the channel protocol and the retry loop.

A :class:`Notification` is one message for one receiver about one or more alerts of a group. A
:class:`Channel` makes **one** delivery attempt per :meth:`Channel.send` call and raises a
:class:`~alert_channels.errors.RetryableDeliveryError` or a
:class:`~alert_channels.errors.PermanentDeliveryError` when it fails. Retrying is not the channel's
business: the caller runs :func:`deliver_with_retries` with its own :class:`RetryPolicy` and gets a
:class:`DeliveryOutcome` back, so it controls the budget and can dead-letter what was given up.

>>> from alert_channels.alert import Alert, AlertStatus, Severity
>>> alert = Alert(
...     fingerprint="438fe56f6f6f643b", status=AlertStatus.FIRING, severity=Severity.WARNING,
...     series="latency_ms", labels={"service": "api"}, detector="zscore", value=950.0,
...     expected=120.0, score=8.5, started_at=1700000000.0, ended_at=None,
...     summary="latency_ms{service=api} is 950 (expected 120)",
... )
>>> n = Notification.single(alert, receiver="ops")
>>> n.status, n.notification_id
(<AlertStatus.FIRING: 'firing'>, '438fe56f6f6f643b-1700000000000-firing-0')
>>> print(alert_line(alert))  # doctest: +NORMALIZE_WHITESPACE
[FIRING warning] latency_ms{service=api} zscore: value 950 expected 120 (score 8.5)
since 2023-11-14T22:13:20Z
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol, runtime_checkable

from alert_channels.alert import Alert, AlertStatus, Severity
from alert_channels.errors import DeliveryError, RetryableDeliveryError

__all__ = [
    "Channel",
    "DeliveryOutcome",
    "Notification",
    "RetryPolicy",
    "alert_annotations",
    "alert_labels",
    "alert_line",
    "common_items",
    "deliver_with_retries",
    "format_labels",
    "format_number",
    "notification_title",
    "rfc3339",
]

logger = logging.getLogger(__name__)

#: Alertmanager's JSON for "no end time" (Go's zero ``time.Time``), used for firing alerts.
ZERO_TIME = "0001-01-01T00:00:00Z"

_SEVERITY_RANK = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
_RESERVED_LABELS = ("alertname", "detector", "severity")


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

        The alert's own :attr:`~alert_channels.alert.Alert.notification_id` for a single alert, else
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


@runtime_checkable
class Channel(Protocol):
    """Something that delivers notifications somewhere.

    ``send`` makes exactly one attempt. It returns on success and raises
    :class:`~alert_channels.errors.RetryableDeliveryError` or
    :class:`~alert_channels.errors.PermanentDeliveryError` on failure; any other exception is a bug.
    Neither its errors nor its ``repr`` contain secrets.
    """

    name: str

    async def send(self, notification: Notification) -> None:
        """Make one delivery attempt of ``notification``."""
        ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard :func:`deliver_with_retries` tries.

    The delay before attempt ``n + 1`` is drawn uniformly from
    ``[0, min(max_delay_seconds, base_delay_seconds * 2 ** (n - 1))]`` ("full jitter"), raised to
    the receiver's ``Retry-After`` when it sent one.

    Parameters
    ----------
    max_attempts
        Attempts in all, the first included (>= 1).
    base_delay_seconds
        Upper bound of the first delay (> 0).
    max_delay_seconds
        Cap of the backoff bound (>= ``base_delay_seconds``); ``Retry-After`` may exceed it.
    budget_seconds
        Give up rather than wait past this many seconds since the first attempt (``None``: no
        limit). A ``Retry-After`` beyond the budget ends the loop at once; the outcome's error keeps
        it, so the caller may re-schedule.

    >>> RetryPolicy(max_attempts=0)
    Traceback (most recent call last):
    ...
    ValueError: max_attempts must be >= 1, got 0
    """

    max_attempts: int = 5
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 60.0
    budget_seconds: float | None = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if not self.base_delay_seconds > 0:
            raise ValueError(f"base_delay_seconds must be > 0, got {self.base_delay_seconds}")
        if not self.max_delay_seconds >= self.base_delay_seconds:
            raise ValueError(
                f"max_delay_seconds must be >= base_delay_seconds, got {self.max_delay_seconds}"
            )
        if self.budget_seconds is not None and not self.budget_seconds >= 0:
            raise ValueError(f"budget_seconds must be >= 0 or None, got {self.budget_seconds}")

    def backoff_bound(self, failed_attempts: int) -> float:
        """Upper bound of the delay after ``failed_attempts`` failures (>= 1)."""
        exponent = min(failed_attempts - 1, 64)
        return min(self.max_delay_seconds, self.base_delay_seconds * 2.0**exponent)


OutcomeReason = Literal["delivered", "permanent", "max_attempts", "budget"]


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What :func:`deliver_with_retries` did.

    Attributes
    ----------
    delivered
        Whether an attempt succeeded.
    attempts
        How many attempts were made.
    error
        The last error, ``None`` when delivered.
    delays
        The waits between attempts, in seconds.
    reason
        ``delivered``, ``permanent`` (a permanent error), ``max_attempts`` or ``budget`` (gave up
        on a retryable error). A bounded set: usable as a metric label.
    """

    delivered: bool
    attempts: int
    error: DeliveryError | None
    delays: tuple[float, ...]
    reason: OutcomeReason


_DEFAULT_RNG = random.Random()


async def deliver_with_retries(
    channel: Channel,
    notification: Notification,
    *,
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> DeliveryOutcome:
    """Send ``notification`` through ``channel``, retrying retryable failures per ``policy``.

    Parameters
    ----------
    channel
        The channel; each call of its ``send`` is one attempt.
    notification
        What to deliver. Channels use its ``notification_id`` as idempotency key, so a retry of an
        attempt that did arrive is recognisable by the receiver.
    policy
        Attempts, backoff and time budget.
    sleep
        Awaited with each delay; inject a fake in tests.
    rng
        Source of the jitter; a process-wide generator by default.
    clock
        Monotonic seconds, for the time budget.

    Returns
    -------
    DeliveryOutcome
        Never raises a :class:`~alert_channels.errors.DeliveryError`; other exceptions (bugs,
        cancellation) propagate.
    """
    rng = _DEFAULT_RNG if rng is None else rng
    start = clock()
    delays: list[float] = []
    attempt = 0
    while True:
        attempt += 1
        try:
            await channel.send(notification)
        except RetryableDeliveryError as exc:
            error: DeliveryError = exc
        except DeliveryError as exc:  # PermanentDeliveryError, or an unclassified failure
            logger.warning(
                "channel %r gave up on notification %s: permanent failure: %s",
                channel.name,
                notification.notification_id,
                exc,
            )
            return DeliveryOutcome(False, attempt, exc, tuple(delays), "permanent")
        else:
            return DeliveryOutcome(True, attempt, None, tuple(delays), "delivered")

        if attempt >= policy.max_attempts:
            logger.warning(
                "channel %r gave up on notification %s after %d attempts: %s",
                channel.name,
                notification.notification_id,
                attempt,
                error,
            )
            return DeliveryOutcome(False, attempt, error, tuple(delays), "max_attempts")
        delay = rng.uniform(0.0, policy.backoff_bound(attempt))
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            delay = max(delay, retry_after)
        if policy.budget_seconds is not None and clock() - start + delay > policy.budget_seconds:
            logger.warning(
                "channel %r gave up on notification %s: waiting %.1fs would exceed "
                "the %.1fs budget: %s",
                channel.name,
                notification.notification_id,
                delay,
                policy.budget_seconds,
                error,
            )
            return DeliveryOutcome(False, attempt, error, tuple(delays), "budget")
        logger.info(
            "channel %r attempt %d for notification %s failed, retrying in %.2fs: %s",
            channel.name,
            attempt,
            notification.notification_id,
            delay,
            error,
        )
        delays.append(delay)
        await sleep(delay)


# --- Formatting shared by the channels (pure functions) ---------------------------------------


def rfc3339(ts: float) -> str:
    """Epoch seconds as an RFC 3339 UTC timestamp, fractional seconds only when there are some.

    >>> rfc3339(1700000000.0)
    '2023-11-14T22:13:20Z'
    >>> rfc3339(1700000000.25)
    '2023-11-14T22:13:20.25Z'
    """
    moment = datetime.fromtimestamp(ts, tz=UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


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


def alert_labels(alert: Alert) -> dict[str, str]:
    """The alert's labels as Alertmanager-style receivers see them.

    ``alertname`` (the series name) first, then ``detector``, ``severity`` and the series labels,
    sorted by name. A series label that collides with one of the three is renamed
    ``exported_<name>`` (as Prometheus does on scrape).

    >>> from alert_channels.alert import Alert, AlertStatus, Severity
    >>> a = Alert("f", AlertStatus.FIRING, Severity.INFO, "cpu", {"host": "a", "severity": "x"},
    ...           "zscore", 1.0, 0.0, 3.0, 0.0, None, "s")
    >>> alert_labels(a)  # doctest: +NORMALIZE_WHITESPACE
    {'alertname': 'cpu', 'detector': 'zscore', 'exported_severity': 'x', 'host': 'a',
     'severity': 'info'}
    """
    merged = {"detector": alert.detector, "severity": alert.severity.value}
    for key, value in alert.labels.items():
        merged["exported_" + key if key in _RESERVED_LABELS else key] = value
    merged.pop("alertname", None)
    return {"alertname": alert.series, **{k: merged[k] for k in sorted(merged)}}


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
