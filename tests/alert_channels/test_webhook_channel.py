"""WebhookChannel: Alertmanager webhook v4 body and Standard Webhooks signatures."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from alert_channels.retry import RetryPolicy, deliver_with_retries
from alert_channels.webhook import (
    WebhookChannel,
    decode_signing_secret,
    sign_payload,
    webhook_payload,
)
from engine.model.alert import Alert, AlertStatus
from engine.model.notification import Notification
from tests.alert_channel_fakes import FakeClock, FakeService, Reply

# The keys of Alertmanager's notify/webhook Message (template.Data + version/groupKey/truncated).
AM_WEBHOOK_KEYS = {
    "receiver",
    "status",
    "alerts",
    "groupLabels",
    "commonLabels",
    "commonAnnotations",
    "externalURL",
    "version",
    "groupKey",
    "truncatedAlerts",
}
AM_ALERT_KEYS = {
    "status",
    "labels",
    "annotations",
    "startsAt",
    "endsAt",
    "generatorURL",
    "fingerprint",
}


def test_payload_matches_alertmanager_v4(make_alert: Callable[..., Alert]) -> None:
    alert = make_alert(annotations={"runbook": "https://runbooks/latency", "summary": "old"})
    body = webhook_payload(Notification.single(alert, "hooks", external_url="https://kestrel"))
    assert set(body) == AM_WEBHOOK_KEYS
    assert body["version"] == "4"
    assert body["receiver"] == "hooks"
    assert body["status"] == "firing"
    assert body["groupKey"] == alert.fingerprint
    assert body["groupLabels"] == {"alertname": "latency_ms", "service": "api"}
    assert body["externalURL"] == "https://kestrel"
    assert body["truncatedAlerts"] == 0
    [item] = body["alerts"]
    assert set(item) == AM_ALERT_KEYS
    assert item["labels"] == {
        "alertname": "latency_ms",
        "detector": "zscore",
        "service": "api",
        "severity": "warning",
    }
    assert item["annotations"] == {
        "expected": "120",
        "runbook": "https://runbooks/latency",
        "score": "8.5",
        "summary": "latency_ms is 950.0 (expected 120.0)",  # computed summary wins
        "value": "950",
    }
    assert item["startsAt"] == "2023-11-14T22:13:20Z"
    assert item["endsAt"] == "0001-01-01T00:00:00Z"
    assert item["generatorURL"] == "https://kestrel"
    assert item["fingerprint"] == alert.fingerprint
    assert len(item["fingerprint"]) == 16
    assert body["commonLabels"] == item["labels"]
    assert body["commonAnnotations"] == item["annotations"]
    json.dumps(body, allow_nan=False)  # plain JSON


def test_payload_for_groups_and_resolutions(make_group: Callable[..., Notification]) -> None:
    group = make_group(5, statuses=(AlertStatus.RESOLVED,), started_at=1700000000.5)
    body = webhook_payload(group, max_alerts=2)
    assert body["status"] == "resolved"
    assert body["truncatedAlerts"] == 3
    assert len(body["alerts"]) == 2
    assert body["externalURL"] == ""
    assert body["groupKey"] == '{}:{service="api"}'
    assert body["alerts"][0]["startsAt"] == "2023-11-14T22:13:20.5Z"
    assert body["alerts"][0]["endsAt"] == "2023-11-14T22:23:20.5Z"
    assert body["alerts"][0]["status"] == "resolved"
    # instance differs between alerts, so it is not common
    assert "instance" not in body["commonLabels"]
    assert body["commonLabels"]["service"] == "api"
    with pytest.raises(ValueError, match="max_alerts must be >= 0"):
        webhook_payload(group, max_alerts=-1)


def test_nan_expected_is_a_string(make_alert: Callable[..., Alert]) -> None:
    body = webhook_payload(Notification.single(make_alert(expected=float("nan")), "h"))
    assert body["alerts"][0]["annotations"]["expected"] == "NaN"


def _secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


async def test_signature_verifies_with_standardwebhooks(
    fake_service: Callable[..., Awaitable[FakeService]],
    client: httpx.AsyncClient,
    make_alert: Callable[..., Alert],
) -> None:
    service = await fake_service(Reply(204))
    secret = _secret()
    channel = WebhookChannel("hooks", f"{service.url}/hook", client=client, secret=secret)
    notification = Notification.single(make_alert(), "hooks")
    await channel.send(notification)

    [got] = service.received
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert headers["webhook-id"] == notification.notification_id
    assert headers["content-type"] == "application/json"
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 60
    assert headers["webhook-signature"].startswith("v1,")
    verified = Webhook(secret).verify(got.body, headers)
    assert verified == webhook_payload(notification)

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(got.body.replace(b"950", b"951"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(_secret()).verify(got.body, headers)


async def test_raw_key_bytes_sign_too(
    fake_service: Callable[..., Awaitable[FakeService]],
    client: httpx.AsyncClient,
    make_alert: Callable[..., Alert],
) -> None:
    service = await fake_service(Reply(200))
    key = os.urandom(24)
    channel = WebhookChannel("hooks", f"{service.url}/hook", client=client, secret=key)
    await channel.send(Notification.single(make_alert(), "hooks"))
    [got] = service.received
    Webhook(key).verify(got.body, dict(got.headers))


async def test_unsigned_requests_still_carry_id_and_timestamp(
    fake_service: Callable[..., Awaitable[FakeService]],
    client: httpx.AsyncClient,
    make_alert: Callable[..., Alert],
    fake_clock: FakeClock,
) -> None:
    service = await fake_service(Reply(200))
    channel = WebhookChannel(
        "hooks",
        f"{service.url}/hook",
        client=client,
        clock=fake_clock,
        headers={"Authorization": "Bearer abc"},
    )
    await channel.send(Notification.single(make_alert(), "hooks"))
    [got] = service.received
    headers = {k.lower(): v for k, v in got.headers.items()}
    assert "webhook-signature" not in headers
    assert headers["webhook-timestamp"] == "1700000000"
    assert headers["authorization"] == "Bearer abc"
    assert got.path == "/hook"


async def test_retries_keep_the_id_and_re_sign_with_a_fresh_timestamp(
    fake_service: Callable[..., Awaitable[FakeService]],
    client: httpx.AsyncClient,
    make_alert: Callable[..., Alert],
    fake_clock: FakeClock,
) -> None:
    service = await fake_service(Reply(200))
    service.script(
        Reply(503, headers={"Retry-After": "10"}), Reply(429, headers={"Retry-After": "7"})
    )
    key = os.urandom(32)
    channel = WebhookChannel(
        "hooks", f"{service.url}/hook", client=client, secret=key, clock=fake_clock
    )
    outcome = await deliver_with_retries(
        channel,
        Notification.single(make_alert(), "hooks"),
        policy=RetryPolicy(base_delay_seconds=5.0, budget_seconds=None),
        sleep=fake_clock.sleep,
    )
    assert outcome.attempts == 3
    ids = {r.headers["webhook-id"] for r in service.received}
    stamps = [int(r.headers["webhook-timestamp"]) for r in service.received]
    assert len(ids) == 1
    assert stamps[1] - stamps[0] >= 10
    assert stamps[2] - stamps[1] >= 7
    for r in service.received:
        expected = sign_payload(
            key, r.headers["webhook-id"], int(r.headers["webhook-timestamp"]), r.body
        )
        assert r.headers["webhook-signature"] == expected


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("whsec_not base64!", "secret: not base64"),
        ("whsec_" + base64.b64encode(b"short").decode(), "secret: the key must be 24 to 64 bytes"),
        (b"x" * 65, "got 65"),
    ],
)
def test_bad_secrets_are_rejected_without_quoting(secret: str | bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message) as excinfo:
        decode_signing_secret(secret)
    text = str(excinfo.value)
    assert (secret if isinstance(secret, str) else secret.decode()) not in text


def test_whsec_prefix_is_optional() -> None:
    raw = os.urandom(32)
    encoded = base64.b64encode(raw).decode()
    assert decode_signing_secret("whsec_" + encoded) == raw
    assert decode_signing_secret(encoded) == raw
    assert decode_signing_secret(encoded.rstrip("=")) == raw
