"""Channel settings and the registry: each type takes its own keys and builds its own channel."""

from __future__ import annotations

from typing import Any

import httpx
import pydantic
import pytest

from alert_channels.alertmanager import AlertmanagerChannel
from alert_channels.console import ConsoleChannel
from alert_channels.pagerduty import DEFAULT_EVENTS_URL, PagerDutyChannel
from alert_channels.registry import CHANNEL_TYPES, ChannelSettings, build_channel
from alert_channels.settings import BaseChannelSettings
from alert_channels.slack import SlackChannel
from alert_channels.webhook import WebhookChannel

SECRET = "s3cr3t-Path-7d1e"
SETTINGS = pydantic.TypeAdapter(ChannelSettings)

#: The smallest valid entry of each type, and the channel it builds.
MINIMAL: dict[str, tuple[dict[str, Any], type]] = {
    "console": ({}, ConsoleChannel),
    "webhook": ({"url": f"https://example.com/hook/{SECRET}"}, WebhookChannel),
    "slack": ({"url": f"https://hooks.slack.com/services/{SECRET}"}, SlackChannel),
    "pagerduty": ({"routing_key": SECRET}, PagerDutyChannel),
    "alertmanager": ({"url": "http://127.0.0.1:9093"}, AlertmanagerChannel),
}


def entry(kind: str, **keys: Any) -> dict[str, Any]:
    return {"name": f"my-{kind}", "type": kind, **MINIMAL[kind][0], **keys}


def test_every_type_is_registered_under_the_name_its_model_takes() -> None:
    assert list(CHANNEL_TYPES) == sorted(MINIMAL)
    for name, kind in CHANNEL_TYPES.items():
        assert issubclass(kind.settings, BaseChannelSettings)
        assert kind.settings.model_fields["type"].default == name
        assert kind.settings(**entry(name)).type == name


@pytest.mark.parametrize("kind", sorted(MINIMAL))
async def test_each_type_builds_its_channel(kind: str) -> None:
    settings = SETTINGS.validate_python(entry(kind))
    assert isinstance(settings, CHANNEL_TYPES[kind].settings)
    async with httpx.AsyncClient() as http:
        channel = build_channel(settings, http, resend_interval_seconds=60.0)
    assert type(channel) is MINIMAL[kind][1]
    assert channel.name == f"my-{kind}"
    assert SECRET not in repr(settings) + repr(channel) + settings.model_dump_json()


@pytest.mark.parametrize("kind", sorted(MINIMAL))
def test_the_shared_keys_have_the_same_defaults_for_every_type(kind: str) -> None:
    settings = SETTINGS.validate_python(entry(kind))
    shared = (
        settings.timeout_seconds,
        settings.max_attempts,
        settings.retry_budget_seconds,
        settings.send_resolved,
    )
    assert shared == (5.0, 5, 120.0, True)


@pytest.mark.parametrize(
    ("kind", "key"),
    [
        ("console", "url"),
        ("console", "routing_key"),
        ("webhook", "routing_key"),
        ("slack", "secret"),
        ("pagerduty", "secret"),
        ("alertmanager", "routing_key"),
    ],
)
def test_a_type_rejects_the_keys_of_other_types(kind: str, key: str) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        SETTINGS.validate_python(entry(kind, **{key: "x"}))
    [error] = info.value.errors()
    assert (error["type"], error["loc"][-1]) == ("extra_forbidden", key)


def test_settings_are_frozen() -> None:
    settings = SETTINGS.validate_python(entry("webhook"))
    with pytest.raises(pydantic.ValidationError):
        settings.max_attempts = 2  # type: ignore[misc]


async def test_the_resend_interval_reaches_the_alertmanager_channel() -> None:
    settings = SETTINGS.validate_python(entry("alertmanager", timeout_seconds=2.5))
    async with httpx.AsyncClient() as http:
        channel = build_channel(settings, http, resend_interval_seconds=90.0)
    assert isinstance(channel, AlertmanagerChannel)
    assert channel.resend_interval_seconds == 90.0


async def test_a_webhook_with_a_secret_signs() -> None:
    settings = SETTINGS.validate_python(entry("webhook", secret="whsec_" + "A" * 32))
    async with httpx.AsyncClient() as http:
        channel = build_channel(settings, http, resend_interval_seconds=60.0)
    assert "signed=True" in repr(channel)


@pytest.mark.parametrize("url", [None, ""])
async def test_pagerduty_posts_to_the_events_api_unless_told_otherwise(url: str | None) -> None:
    keys = {} if url is None else {"url": url}
    settings = SETTINGS.validate_python(entry("pagerduty", **keys))
    async with httpx.AsyncClient() as http:
        channel = build_channel(settings, http, resend_interval_seconds=60.0)
    assert repr(channel) == f"PagerDutyChannel(name='my-pagerduty', url='{DEFAULT_EVENTS_URL}')"


def test_the_base_model_is_abstract() -> None:
    with pytest.raises(TypeError):
        BaseChannelSettings(name="x", type="x")  # type: ignore[abstract]
