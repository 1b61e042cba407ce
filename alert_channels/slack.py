"""Slack incoming-webhook channel: Block Kit messages, paced to Slack's one message per second.

Slack answers an incoming webhook with ``200`` and the body ``ok`` on success; ``429`` (with
``Retry-After``) when rate limited; ``400 invalid_payload`` (and other 4xx such as ``403
action_prohibited``, ``404 channel_not_found``, ``410 channel_is_archived``) for requests that will
never succeed; ``500 rollup_error`` and other 5xx for its own failures. So: 200 + ``ok`` is
success, a 2xx with any other body is a permanent failure, and the rest follows
:mod:`alert_channels.http`.

Slack's limits are kept with ``…`` truncation: header text 150 characters, section text 3,000, 50
blocks per message; the fallback ``text`` is also kept to 3,000.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import httpx
import jinja2
from pydantic import Field

from alert_channels.errors import PermanentDeliveryError, RetryableDeliveryError
from alert_channels.formatting import alert_line, format_number, notification_title
from alert_channels.http import HttpSender, SecretURL, encode_json
from alert_channels.settings import BaseChannelSettings, NonEmptySecret
from alert_channels.templates import TemplateText, compile_template, notification_context, render
from engine.model.alert import Alert
from engine.model.notification import Notification
from engine.model.times import rfc3339

__all__ = ["SlackChannel", "SlackSettings", "TokenBucket", "slack_payload"]

HEADER_MAX_CHARS = 150
TEXT_MAX_CHARS = 3000
MAX_BLOCKS = 50
#: Room left for alert sections: one header, one "and N more" line, one link.
MAX_ALERT_SECTIONS = MAX_BLOCKS - 3
ELLIPSIS = "…"


def _escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with a trailing ``…``, never splitting an ``&amp;``.

    >>> truncate("abcdef", 4), truncate("abc", 4), truncate("a &amp; b", 5)
    ('abc…', 'abc', 'a …')
    """
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + ELLIPSIS


def _alert_section(alert: Alert) -> dict[str, Any]:
    lines = [
        f"*{alert.status.value.upper()}* · *{alert.severity.value}* · `{_escape(alert.series_id)}`",
        f"Observed *{format_number(alert.value)}* vs expected *{format_number(alert.expected)}*"
        f" · score *{format_number(alert.score)}* · detector `{_escape(alert.detector)}`",
        f"Started {rfc3339(alert.started_at)}"
        + (f" · ended {rfc3339(alert.ended_at)}" if alert.ended_at is not None else ""),
    ]
    if alert.summary:
        lines.append("> " + _escape(" ".join(alert.summary.split())))
    links = [  # annotations that are links (runbook_url, dashboard, ...) from [[overrides]]
        f"<{_escape(v.replace('|', '%7C'))}|{_escape(k)}>"
        for k, v in sorted(alert.annotations.items())
        if v.startswith(("https://", "http://"))
    ]
    if links:
        lines.append(" · ".join(links))
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": truncate("\n".join(lines), TEXT_MAX_CHARS)},
    }


def _header(notification: Notification) -> str:
    if len(notification.alerts) == 1:
        alert = notification.alerts[0]
        return f"{alert.status.value.upper()} {alert.severity.value}: {alert.series_id}"
    return notification_title(notification)


def slack_payload(
    notification: Notification,
    *,
    max_alerts: int = 5,
    template: jinja2.Template | None = None,
    title_template: jinja2.Template | None = None,
) -> dict[str, Any]:
    """The incoming-webhook body: fallback ``text`` plus ``blocks``.

    A header (status, severity and series; or the count and group labels, e.g. ``12 alerts firing
    for service=api``), one section per alert for the first ``max_alerts`` alerts (severity,
    series, observed vs expected, score, started/ended, summary, link annotations such as
    ``runbook_url``), a line counting the alerts not shown, and a link to ``external_url`` when
    there is one.

    Parameters
    ----------
    notification
        What to show.
    max_alerts
        Alerts shown in detail, 1 to 47 (the 50-block limit less header, "more" line and link).
    template
        The user's text (Slack mrkdwn; see :mod:`alert_channels.templates`): it replaces the
        alert sections and the fallback text. If it fails or renders empty, the built-in text.
    title_template
        The user's header text, plain (same fallback).

    >>> from engine.model.alert import Alert, AlertStatus, Severity
    >>> alert = Alert("438fe56f6f6f643b", AlertStatus.FIRING, Severity.WARNING, "latency_ms",
    ...               {"service": "api"}, "zscore", 950.0, 120.0, 8.5, 1700000000.0, None, "slow")
    >>> body = slack_payload(Notification.single(alert, "slack"))
    >>> body["blocks"][0]["text"]["text"]
    'FIRING warning: latency_ms{service=api}'
    >>> print(body["blocks"][1]["text"]["text"])
    *FIRING* · *warning* · `latency_ms{service=api}`
    Observed *950* vs expected *120* · score *8.5* · detector `zscore`
    Started 2023-11-14T22:13:20Z
    > slow
    """
    if not 1 <= max_alerts <= MAX_ALERT_SECTIONS:
        raise ValueError(f"max_alerts must be in [1, {MAX_ALERT_SECTIONS}], got {max_alerts}")
    alerts = notification.alerts
    shown = alerts[:max_alerts]
    context = notification_context(notification) if template or title_template else {}
    header = _header(notification)
    if title_template is not None:
        header = render(title_template, context, header) or header
    text = render(template, context, "") if template is not None else ""
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": truncate(header, HEADER_MAX_CHARS),
                "emoji": False,
            },
        }
    ]
    if text:
        shown = alerts  # the template chose what to show
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(text, TEXT_MAX_CHARS)}}
        )
    else:
        blocks.extend(_alert_section(alert) for alert in shown)
    hidden = len(alerts) - len(shown)
    if hidden:
        blocks.append(
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": f"{ELLIPSIS}and {hidden} more alerts not shown"}
                ],
            }
        )
    if notification.external_url:
        url = _escape(notification.external_url.replace("|", "%7C"))
        link = truncate(f"<{url}|Open in Kestrel>", TEXT_MAX_CHARS)
        if link.endswith(">"):  # a URL too long to link is left out rather than cut
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": link}]})
    if text:
        return {"text": truncate(text, TEXT_MAX_CHARS), "blocks": blocks}
    fallback = alert_line(alerts[0]) if len(alerts) == 1 else notification_title(notification)
    return {"text": truncate(_escape(fallback), TEXT_MAX_CHARS), "blocks": blocks}


class TokenBucket:
    """Paces calls to ``rate_per_second`` with bursts of up to ``capacity``.

    :meth:`acquire` reserves a token at once (the balance may go negative: a queue of reservations)
    and sleeps until it is covered, so concurrent callers are served in order without a lock.

    Parameters
    ----------
    rate_per_second
        Tokens added per second (> 0).
    capacity
        Tokens held at most (>= 1): how many calls may go out back to back.
    clock
        Seconds (any monotonic-enough clock).
    sleep
        Awaited with each wait.
    """

    def __init__(
        self,
        *,
        rate_per_second: float = 1.0,
        capacity: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if not rate_per_second > 0:
            raise ValueError(f"rate_per_second must be > 0, got {rate_per_second}")
        if not capacity >= 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.rate_per_second = float(rate_per_second)
        self.capacity = float(capacity)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.capacity
        self._updated = clock()

    def _refill(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._updated)
        self._updated = now
        self._tokens = min(self.capacity, self._tokens + elapsed * self.rate_per_second)

    async def acquire(self) -> float:
        """Wait for a token; returns the seconds waited (0 when one was available)."""
        self._refill()
        self._tokens -= 1.0
        if self._tokens >= 0:
            return 0.0
        wait = -self._tokens / self.rate_per_second
        try:
            await self._sleep(wait)
        except BaseException:  # cancelled while queued: give the reservation back
            self._tokens += 1.0
            raise
        return wait

    def hold(self, seconds: float) -> None:
        """Let no call through for ``seconds`` (e.g. after a 429 with ``Retry-After``)."""
        self._refill()
        self._tokens = min(self._tokens, 1.0 - max(0.0, seconds) * self.rate_per_second)


class SlackChannel:
    """Posts to a Slack incoming webhook, at most ``rate_per_second`` messages per second.

    Parameters
    ----------
    name
        The channel's name.
    url
        The incoming-webhook URL (``https://hooks.slack.com/services/...``); its path is secret.
    client
        The shared HTTP client.
    timeout_seconds
        Per-request timeout.
    max_alerts
        Alerts shown in detail per message; see :func:`slack_payload`.
    template, title_template
        Sandboxed templates of the message text and header; see :func:`slack_payload`.
    rate_per_second, burst
        Pacing of this webhook (Slack allows about one message per second).
    clock
        Wall-clock epoch seconds, for pacing and ``Retry-After`` dates.
    sleep
        Awaited while pacing.

    >>> import httpx
    >>> url = "https://hooks.slack.com/services/T0/B0/XXXX"
    >>> SlackChannel("ops", url, client=httpx.AsyncClient())
    SlackChannel(name='ops', url='https://hooks.slack.com/<redacted>')
    """

    def __init__(
        self,
        name: str,
        url: str,
        *,
        client: httpx.AsyncClient,
        timeout_seconds: float = 10.0,
        max_alerts: int = 5,
        template: jinja2.Template | None = None,
        title_template: jinja2.Template | None = None,
        rate_per_second: float = 1.0,
        burst: float = 1.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if not 1 <= max_alerts <= MAX_ALERT_SECTIONS:
            raise ValueError(f"max_alerts must be in [1, {MAX_ALERT_SECTIONS}], got {max_alerts}")
        self.name = name
        self.max_alerts = max_alerts
        self.template, self.title_template = template, title_template
        self.bucket = TokenBucket(
            rate_per_second=rate_per_second, capacity=burst, clock=clock, sleep=sleep
        )
        self._http = HttpSender(
            kind="slack",
            name=name,
            url=SecretURL(url, secret_path=True),
            client=client,
            timeout_seconds=timeout_seconds,
            clock=clock,
        )

    def __repr__(self) -> str:
        return f"SlackChannel(name={self.name!r}, url={self._http.url.redacted!r})"

    async def send(self, notification: Notification) -> None:
        """Post the notification once (after pacing); see :class:`~alert_channels.base.Channel`."""
        body = encode_json(
            slack_payload(
                notification,
                max_alerts=self.max_alerts,
                template=self.template,
                title_template=self.title_template,
            )
        )
        await self.bucket.acquire()
        try:
            response = await self._http.post(body)
        except RetryableDeliveryError as exc:
            if exc.status_code == 429:
                self.bucket.hold(exc.retry_after if exc.retry_after is not None else 1.0)
            raise
        if response.status_code != 200 or response.text.strip() != "ok":
            quoted = self._http.redact(" ".join(response.text.split()))[:200]
            raise PermanentDeliveryError(
                f"{self._http.prefix}: HTTP {response.status_code} without 'ok': {quoted}",
                status_code=response.status_code,
            )


class SlackSettings(BaseChannelSettings):
    """A ``type = "slack"`` entry: the incoming-webhook ``url`` (required).

    >>> import httpx
    >>> settings = SlackSettings(name="ops", url="https://hooks.slack.com/services/T0/B0/XXXX")
    >>> settings.build(httpx.AsyncClient(), resend_interval_seconds=3600.0)
    SlackChannel(name='ops', url='https://hooks.slack.com/<redacted>')
    """

    type: Literal["slack"] = "slack"
    url: NonEmptySecret = Field(description="The incoming-webhook URL (secret).")
    template: TemplateText | None = Field(
        None,
        description="Jinja text of the message (Slack mrkdwn), run sandboxed; replaces the "
        "built-in alert sections. See alert_channels.templates for what it sees.",
    )
    title_template: TemplateText | None = Field(
        None, description="Jinja text of the message header (plain text), run sandboxed."
    )

    def build(self, http: httpx.AsyncClient, *, resend_interval_seconds: float) -> SlackChannel:
        """A :class:`SlackChannel` (``resend_interval_seconds`` is unused).

        Raises
        ------
        ValueError
            If ``url`` is not an absolute http(s) URL.
        """
        return SlackChannel(
            self.name,
            self.url.get_secret_value(),
            client=http,
            timeout_seconds=self.timeout_seconds,
            template=None if self.template is None else compile_template(self.template),
            title_template=(
                None if self.title_template is None else compile_template(self.title_template)
            ),
        )
