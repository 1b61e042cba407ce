"""engine.runtime.channels: one route per ``[[channels]]`` entry, built through the registry."""

from __future__ import annotations

import httpx

from alert_channels.alertmanager import AlertmanagerChannel
from alert_channels.console import ConsoleChannel
from alert_channels.pagerduty import PagerDutyChannel
from alert_channels.retry import RetryPolicy
from alert_channels.slack import SlackChannel
from alert_channels.webhook import WebhookChannel
from engine.config import parse_config
from engine.runtime.channels import build_routes


async def test_every_configured_channel_becomes_a_route_with_its_policy() -> None:
    cfg = parse_config(
        {
            "channels": [
                {"name": "out", "type": "console", "send_resolved": False},
                {
                    "name": "hook",
                    "type": "webhook",
                    "url": "http://127.0.0.1:1/h",
                    "max_attempts": 2,
                },
                {"name": "chat", "type": "slack", "url": "https://hooks.slack.com/services/T/B/X"},
                {"name": "pd", "type": "pagerduty", "routing_key": "R" * 32},
                {
                    "name": "am",
                    "type": "alertmanager",
                    "url": "http://127.0.0.1:9093",
                    "retry_budget_seconds": 30,
                },
            ],
            "routing": {"repeat_interval_seconds": 600},
        },
        "cfg.toml",
        {},
    )
    async with httpx.AsyncClient() as http:
        routes = build_routes(cfg, http)
    assert [(r.channel.name, type(r.channel)) for r in routes] == [
        ("out", ConsoleChannel),
        ("hook", WebhookChannel),
        ("chat", SlackChannel),
        ("pd", PagerDutyChannel),
        ("am", AlertmanagerChannel),
    ]
    assert [r.send_resolved for r in routes] == [False, True, True, True, True]
    assert routes[1].policy == RetryPolicy(
        max_attempts=2, base_delay_seconds=0.5, max_delay_seconds=30.0, budget_seconds=120.0
    )
    assert routes[4].policy.budget_seconds == 30.0
    am = routes[4].channel
    assert isinstance(am, AlertmanagerChannel)
    assert am.resend_interval_seconds == 600.0
