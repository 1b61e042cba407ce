"""Building alert channels from the ``[[channels]]`` config entries."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from alert_channels.alertmanager import AlertmanagerChannel
from alert_channels.base import Channel
from alert_channels.console import ConsoleChannel
from alert_channels.pagerduty import DEFAULT_EVENTS_URL, PagerDutyChannel
from alert_channels.retry import RetryPolicy
from alert_channels.slack import SlackChannel
from alert_channels.webhook import WebhookChannel
from engine.config import ChannelSettings, Config

__all__ = ["ChannelRoute", "build_channel", "build_routes"]


@dataclass(frozen=True, slots=True)
class ChannelRoute:
    """A channel with its delivery settings."""

    channel: Channel
    policy: RetryPolicy
    send_resolved: bool = True


def build_routes(cfg: Config, client: httpx.AsyncClient | None = None) -> list[ChannelRoute]:
    """One :class:`ChannelRoute` per configured channel, sharing one HTTP client."""
    http = client or httpx.AsyncClient()
    return [
        ChannelRoute(
            build_channel(c, http, resend_interval_seconds=cfg.routing.repeat_interval_seconds),
            RetryPolicy(
                max_attempts=c.max_attempts,
                base_delay_seconds=0.5,
                max_delay_seconds=30.0,
                budget_seconds=c.retry_budget_seconds,
            ),
            c.send_resolved,
        )
        for c in cfg.channels
    ]


def build_channel(
    c: ChannelSettings, http: httpx.AsyncClient, *, resend_interval_seconds: float = 3600.0
) -> Channel:
    """The channel object for one config entry (validation already ensured its required keys).

    ``resend_interval_seconds`` is how often firing alerts are notified again (the routing
    ``repeat_interval``): an Alertmanager channel keeps its alerts alive at least that long.
    """
    url = c.url.get_secret_value() if c.url is not None else None
    timeout = c.timeout_seconds
    if c.type == "console":
        return ConsoleChannel(c.name)
    if c.type == "pagerduty":
        assert c.routing_key is not None
        return PagerDutyChannel(
            c.name,
            c.routing_key.get_secret_value(),
            client=http,
            url=url or DEFAULT_EVENTS_URL,
            timeout_seconds=timeout,
        )
    assert url is not None
    if c.type == "webhook":
        secret = c.secret.get_secret_value() if c.secret is not None else None
        return WebhookChannel(c.name, url, client=http, secret=secret, timeout_seconds=timeout)
    if c.type == "slack":
        return SlackChannel(c.name, url, client=http, timeout_seconds=timeout)
    return AlertmanagerChannel(
        c.name,
        url,
        client=http,
        timeout_seconds=timeout,
        resend_interval_seconds=resend_interval_seconds,
    )
