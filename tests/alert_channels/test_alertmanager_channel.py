"""AlertmanagerChannel: API v2 postable alerts, endsAt rules and label names."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx
import pytest

from alert_channels.alertmanager import AlertmanagerChannel, alertmanager_alerts
from engine.model.alert import Alert, AlertStatus
from engine.model.notification import Notification
from tests.alert_channel_fakes import FakeClock, FakeService, Reply

POSTABLE_KEYS = {"labels", "annotations", "startsAt", "endsAt", "generatorURL"}


def test_firing_alert_ends_one_resend_timeout_from_now(make_alert: Callable[..., Alert]) -> None:
    alert = make_alert()
    [posted] = alertmanager_alerts(
        Notification.single(alert, "am", external_url="https://kestrel/x"),
        now=1_700_000_100.0,
        resend_timeout_seconds=240.0,
    )
    assert set(posted) == POSTABLE_KEYS
    assert posted["labels"] == {
        "alertname": "latency_ms",
        "detector": "zscore",
        "service": "api",
        "severity": "warning",
    }
    assert posted["annotations"]["summary"] == alert.summary
    assert posted["annotations"]["value"] == "950"
    assert posted["startsAt"] == "2023-11-14T22:13:20Z"
    assert posted["endsAt"] == "2023-11-14T22:19:00Z"  # 100 s + 240 s after the start
    assert posted["generatorURL"] == "https://kestrel/x"


def test_resolution_ends_at_ended_at(make_alert: Callable[..., Alert]) -> None:
    alert = make_alert(status=AlertStatus.RESOLVED, ended_at=1_700_000_600.0)
    [posted] = alertmanager_alerts(
        Notification.single(alert, "am"), now=1_700_009_999.0, resend_timeout_seconds=240.0
    )
    assert posted["endsAt"] == "2023-11-14T22:23:20Z"
    assert "generatorURL" not in posted  # no external URL: omitted, not an invalid ""


def test_end_never_precedes_start(make_alert: Callable[..., Alert]) -> None:
    future = make_alert(started_at=1_800_000_000.0)
    [posted] = alertmanager_alerts(
        Notification.single(future, "am"), now=1_700_000_000.0, resend_timeout_seconds=60.0
    )
    assert posted["endsAt"] > posted["startsAt"]


def test_label_names_are_made_valid(make_alert: Callable[..., Alert]) -> None:
    alert = make_alert(
        labels={"http.status": "500", "9lives": "x", "empty": "", "alertname": "shadow"},
        annotations={"runbook-url": "https://r"},
    )
    [posted] = alertmanager_alerts(
        Notification.single(alert, "am"), now=1_700_000_000.0, resend_timeout_seconds=60.0
    )
    assert posted["labels"] == {
        "alertname": "latency_ms",
        "_9lives": "x",
        "detector": "zscore",
        "exported_alertname": "shadow",
        "http_status": "500",
        "severity": "warning",
    }
    assert posted["annotations"]["runbook_url"] == "https://r"


async def test_posts_to_api_v2_alerts(
    fake_service: Callable[..., Awaitable[FakeService]],
    client: httpx.AsyncClient,
    make_group: Callable[..., Notification],
    fake_clock: FakeClock,
) -> None:
    service = await fake_service(Reply(200))
    channel = AlertmanagerChannel(
        "am",
        f"{service.url}/am-prefix/",
        client=client,
        clock=fake_clock,
        resend_interval_seconds=30.0,
        headers={"Authorization": "Bearer t0ken-1234"},
    )
    assert channel.resend_interval_seconds == 30.0
    assert channel.resend_timeout_seconds == 120.0
    group = make_group(3)
    await channel.send(group)
    [got] = service.received
    assert got.path == "/am-prefix/api/v2/alerts"
    assert got.headers["Authorization"] == "Bearer t0ken-1234"
    body = got.json()
    assert isinstance(body, list)
    assert len(body) == 3
    assert body == alertmanager_alerts(group, now=fake_clock.now, resend_timeout_seconds=120.0)
    assert "t0ken" not in repr(channel)


def test_validation(client: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="resend_interval_seconds must be > 0"):
        AlertmanagerChannel("am", "http://am:9093", client=client, resend_interval_seconds=0)
    with pytest.raises(ValueError, match="url: not an absolute http"):
        AlertmanagerChannel("am", "am:9093", client=client)
