"""Building alert channels from the ``[[channels]]`` config entries."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from alert_channels.base import RetryPolicy
from alert_channels.console import ConsoleChannel
from alert_channels.webhook import WebhookChannel
from engine.config import ChannelSettings, Config
from engine.delivery import ChannelRoute

__all__ = ["build_routes"]


def _secret(value: object) -> str | None:
    get = getattr(value, "get_secret_value", None)
    return None if get is None else str(get())


def build_routes(cfg: Config, client: httpx.AsyncClient | None = None) -> list[ChannelRoute]:
    """One :class:`ChannelRoute` per configured channel, sharing one HTTP client."""
    http = client or httpx.AsyncClient()
    return [_route(c, http) for c in cfg.channels]


def _route(c: ChannelSettings, http: httpx.AsyncClient) -> ChannelRoute:
    policy = RetryPolicy(max_attempts=c.max_attempts, base_delay_seconds=0.5, max_delay_seconds=30.0)
    if c.type == "console":
        return ChannelRoute(ConsoleChannel(c.name), policy, c.send_resolved)
    if c.type == "webhook":
        url = _secret(c.url)
        assert url is not None
        channel = WebhookChannel(
            c.name, url, client=http, secret=_secret(c.secret), timeout=c.timeout_seconds
        )
        return ChannelRoute(channel, policy, c.send_resolved)
    raise NotImplementedError(f"channels: type {c.type!r} is not wired yet")


