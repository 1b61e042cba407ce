"""PagerDutyChannel: Events API v2 event shape, dedup keys, severities and limits."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable

import httpx
import pytest

from alert_channels.pagerduty import (
    DEFAULT_EVENTS_URL,
    PagerDutyChannel,
    pagerduty_dedup_key,
    pagerduty_event,
)
from engine.model.alert import Alert, AlertStatus, Severity
from engine.model.notification import Notification
from tests.alert_channel_fakes import FakeService, Reply

KEY = "0123456789abcdef0123456789abcdef"


def test_trigger_event_for_one_alert(make_alert: Callable[..., Alert]) -> None:
    alert = make_alert(labels={"service": "api", "region": "eu"})
    event = pagerduty_event(Notification.single(alert, "pd", external_url="https://k"), KEY)
    assert event["routing_key"] == KEY
    assert event["event_action"] == "trigger"
    assert event["dedup_key"] == alert.fingerprint
    assert event["client"] == "Kestrel"
    assert event["client_url"] == "https://k"
    assert event["links"] == [{"href": "https://k", "text": "Kestrel"}]
    payload = event["payload"]
    assert payload["summary"].startswith("[FIRING warning] latency_ms{region=eu,service=api}")
    assert payload["source"] == "latency_ms{region=eu,service=api}"
    assert payload["severity"] == "warning"
    assert payload["component"] == "latency_ms"
    assert payload["class"] == "zscore"
    assert payload["timestamp"] == "2023-11-14T22:13:20Z"
    details = payload["custom_details"]
    assert details["value"] == 950.0
    assert details["expected"] == 120.0
    assert details["score"] == 8.5
    assert details["labels"] == {"service": "api", "region": "eu"}
    assert details["started_at"] == "2023-11-14T22:13:20Z"
    assert details["ended_at"] is None


@pytest.mark.parametrize(
    ("severity", "expected"),
    [(Severity.CRITICAL, "critical"), (Severity.WARNING, "warning"), (Severity.INFO, "info")],
)
def test_severity_mapping(
    make_alert: Callable[..., Alert], severity: Severity, expected: str
) -> None:
    event = pagerduty_event(Notification.single(make_alert(severity=severity), "pd"), KEY)
    assert event["payload"]["severity"] == expected


def test_resolve_event(make_alert: Callable[..., Alert]) -> None:
    alert = make_alert(status=AlertStatus.RESOLVED)
    event = pagerduty_event(Notification.single(alert, "pd"), KEY)
    assert event == {"routing_key": KEY, "event_action": "resolve", "dedup_key": alert.fingerprint}


def test_grouped_event(make_group: Callable[..., Notification]) -> None:
    group = make_group(30, statuses=(AlertStatus.FIRING, AlertStatus.RESOLVED))
    event = pagerduty_event(group, KEY, max_alerts=10)
    key = hashlib.sha256(group.group_key.encode()).hexdigest()
    assert event["dedup_key"] == key == pagerduty_dedup_key(group)
    assert len(event["dedup_key"]) <= 255
    payload = event["payload"]
    assert payload["summary"] == "15 firing and 15 resolved alerts for service=api"
    assert payload["source"] == "service=api"
    details = payload["custom_details"]
    assert (details["firing"], details["resolved"], details["alerts_not_shown"]) == (15, 15, 20)
    assert len(details["alerts"]) == 10
    # the same group resolves the same incident
    all_resolved = make_group(30, statuses=(AlertStatus.RESOLVED,))
    assert pagerduty_event(all_resolved, KEY)["dedup_key"] == key
    assert pagerduty_event(all_resolved, KEY)["event_action"] == "resolve"


def test_summary_is_at_most_1024_characters(make_alert: Callable[..., Alert]) -> None:
    alert = make_alert(labels={"k": "v" * 5000})
    event = pagerduty_event(Notification.single(alert, "pd"), KEY)
    assert len(event["payload"]["summary"]) == 1024
    assert event["payload"]["summary"].endswith("…")
    assert len(event["payload"]["source"]) <= 1024


def test_non_finite_numbers_become_null(make_alert: Callable[..., Alert]) -> None:
    alert = make_alert(expected=float("nan"), score=float("inf"))
    event = pagerduty_event(Notification.single(alert, "pd"), KEY)
    details = event["payload"]["custom_details"]
    assert details["expected"] is None
    assert details["score"] is None
    json.dumps(event, allow_nan=False)


def test_validation(client: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="routing_key must not be empty"):
        PagerDutyChannel("pd", " ", client=client)
    with pytest.raises(ValueError, match="max_alerts must be >= 1"):
        PagerDutyChannel("pd", KEY, client=client, max_alerts=0)


async def test_posts_event_and_accepts_202(
    fake_service: Callable[..., Awaitable[FakeService]],
    client: httpx.AsyncClient,
    make_alert: Callable[..., Alert],
) -> None:
    service = await fake_service(
        Reply(202, '{"status":"success","message":"Event processed","dedup_key":"x"}')
    )
    channel = PagerDutyChannel("pd", KEY, client=client, url=f"{service.url}/v2/enqueue")
    notification = Notification.single(make_alert(), "pd")
    await channel.send(notification)
    [got] = service.received
    assert got.path == "/v2/enqueue"
    assert got.json() == pagerduty_event(notification, KEY)
    assert repr(channel) == f"PagerDutyChannel(name='pd', url='{service.url}/v2/enqueue')"
    assert KEY not in repr(channel)
    assert DEFAULT_EVENTS_URL == "https://events.pagerduty.com/v2/enqueue"
