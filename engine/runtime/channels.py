"""Building alert channels from the ``[[channels]]`` config entries (see
:mod:`alert_channels.registry`)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from alert_channels.base import Channel
from alert_channels.registry import build_channel
from alert_channels.retry import RetryPolicy
from engine.config import Config

__all__ = ["ChannelRoute", "build_routes"]


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
