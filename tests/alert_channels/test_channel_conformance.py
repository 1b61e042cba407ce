"""What every HTTP channel must do: classify answers right, retry right, and leak no secret.

Each channel talks to a real local HTTP server answering like the real service (Slack ``ok`` /
``invalid_payload`` / ``rate_limited``, PagerDuty 202/400/429, ...).
"""

from __future__ import annotations

import base64
import email.utils
import logging
import random
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import httpx
import pytest

from alert_channels.alertmanager import AlertmanagerChannel
from alert_channels.base import Channel
from alert_channels.errors import DeliveryError, PermanentDeliveryError, RetryableDeliveryError
from alert_channels.pagerduty import PagerDutyChannel
from alert_channels.retry import RetryPolicy, deliver_with_retries
from alert_channels.slack import SlackChannel
from alert_channels.webhook import WebhookChannel
from engine.model.alert import Alert
from engine.model.notification import Notification
from tests.alert_channel_fakes import FakeClock, FakeService, Reply

Expected = Literal["ok", "retryable", "permanent"]

# Secrets: each distinctive, so any appearance anywhere is a leak.
WEBHOOK_PATH_SECRET = "whpath-7f3c9a1e5b"
WEBHOOK_QUERY_SECRET = "whquery-0d4e8b2a6c"
WEBHOOK_BEARER = "whbearer-9a8b7c6d5e"
WEBHOOK_SIGNING_KEY = b"signing-key-bytes-0123456789abcdef"
WEBHOOK_SIGNING_SECRET = "whsec_" + base64.b64encode(WEBHOOK_SIGNING_KEY).decode()
SLACK_SECRET = "sl4ckT0KENxQ9w8e7r6t5y4u"
PD_ROUTING_KEY = "pdR0UT1NGk3y0123456789abcdefabcd"
AM_PASSWORD = "amPa55w0rd-c3d4e5"
AM_API_KEY = "amApiKey-1a2b3c4d5e"

Builder = Callable[[str, httpx.AsyncClient, FakeClock, float], Channel]


def _webhook(base: str, client: httpx.AsyncClient, clock: FakeClock, timeout: float) -> Channel:
    return WebhookChannel(
        "hooks",
        f"{base}/hooks/{WEBHOOK_PATH_SECRET}?token={WEBHOOK_QUERY_SECRET}",
        client=client,
        secret=WEBHOOK_SIGNING_SECRET,
        headers={"Authorization": f"Bearer {WEBHOOK_BEARER}"},
        timeout_seconds=timeout,
        clock=clock,
    )


def _slack(base: str, client: httpx.AsyncClient, clock: FakeClock, timeout: float) -> Channel:
    return SlackChannel(
        "slack",
        f"{base}/services/T0001/B0001/{SLACK_SECRET}",
        client=client,
        timeout_seconds=timeout,
        clock=clock,
        sleep=clock.sleep,
    )


def _pagerduty(base: str, client: httpx.AsyncClient, clock: FakeClock, timeout: float) -> Channel:
    return PagerDutyChannel(
        "pd",
        PD_ROUTING_KEY,
        client=client,
        url=f"{base}/v2/enqueue",
        timeout_seconds=timeout,
        clock=clock,
    )


def _alertmanager(
    base: str, client: httpx.AsyncClient, clock: FakeClock, timeout: float
) -> Channel:
    with_user = base.replace("http://", f"http://kestrel:{AM_PASSWORD}@")
    return AlertmanagerChannel(
        "am",
        with_user,
        client=client,
        headers={"X-Api-Key": AM_API_KEY},
        timeout_seconds=timeout,
        clock=clock,
    )


def _http_date(offset: float) -> str:
    return email.utils.formatdate(FakeClock().now + offset, usegmt=True)


@dataclass(frozen=True)
class Kind:
    build: Builder
    secrets: tuple[str, ...]
    ok: Reply
    table: tuple[tuple[str, Reply, Expected, float | None], ...]


KINDS: dict[str, Kind] = {
    "webhook": Kind(
        _webhook,
        (
            WEBHOOK_PATH_SECRET,
            WEBHOOK_QUERY_SECRET,
            WEBHOOK_BEARER,
            WEBHOOK_SIGNING_SECRET,
            WEBHOOK_SIGNING_SECRET.removeprefix("whsec_"),
        ),
        Reply(200),
        (
            ("200", Reply(200), "ok", None),
            ("204", Reply(204), "ok", None),
            ("301", Reply(301, headers={"Location": "/elsewhere"}), "permanent", None),
            ("400", Reply(400, "bad request"), "permanent", None),
            ("404", Reply(404), "permanent", None),
            ("410", Reply(410, "gone"), "permanent", None),
            ("408", Reply(408), "retryable", None),
            ("429", Reply(429, headers={"Retry-After": "7"}), "retryable", 7.0),
            ("500", Reply(500), "retryable", None),
            ("503-date", Reply(503, headers={"Retry-After": _http_date(30)}), "retryable", 30.0),
        ),
    ),
    "slack": Kind(
        _slack,
        (SLACK_SECRET, f"/services/T0001/B0001/{SLACK_SECRET}"),
        Reply(200, "ok"),
        (
            ("200-ok", Reply(200, "ok"), "ok", None),
            ("200-not-ok", Reply(200, "invalid_token"), "permanent", None),
            ("204", Reply(204), "permanent", None),
            ("400", Reply(400, "invalid_payload"), "permanent", None),
            ("403", Reply(403, "action_prohibited"), "permanent", None),
            ("404", Reply(404, "channel_not_found"), "permanent", None),
            ("410", Reply(410, "channel_is_archived"), "permanent", None),
            ("429", Reply(429, "rate_limited", {"Retry-After": "3"}), "retryable", 3.0),
            ("500", Reply(500, "rollup_error"), "retryable", None),
        ),
    ),
    "pagerduty": Kind(
        _pagerduty,
        (PD_ROUTING_KEY,),
        Reply(202, '{"status":"success","message":"Event processed"}'),
        (
            ("202", Reply(202, '{"status":"success"}'), "ok", None),
            ("400", Reply(400, '{"status":"invalid event"}'), "permanent", None),
            ("429", Reply(429, '{"status":"throttle event"}'), "retryable", None),
            ("429-retry-after", Reply(429, headers={"Retry-After": "11"}), "retryable", 11.0),
            ("500", Reply(500), "retryable", None),
            ("502", Reply(502), "retryable", None),
        ),
    ),
    "alertmanager": Kind(
        _alertmanager,
        (AM_PASSWORD, AM_API_KEY),
        Reply(200),
        (
            ("200", Reply(200), "ok", None),
            ("400", Reply(400, '{"code":400,"message":"invalid label set"}'), "permanent", None),
            ("500", Reply(500), "retryable", None),
            ("503", Reply(503, headers={"Retry-After": "5"}), "retryable", 5.0),
        ),
    ),
}

STATUS_CASES = [
    pytest.param(kind, reply, expected, retry_after, id=f"{kind}-{case}")
    for kind, spec in KINDS.items()
    for case, reply, expected, retry_after in spec.table
]


async def _attempt(
    channel: Channel, notification: Notification
) -> tuple[Expected, DeliveryError | None]:
    try:
        await channel.send(notification)
    except RetryableDeliveryError as exc:
        return "retryable", exc
    except PermanentDeliveryError as exc:
        return "permanent", exc
    return "ok", None


@pytest.mark.parametrize(("kind", "reply", "expected", "retry_after"), STATUS_CASES)
async def test_status_table(
    kind: str,
    reply: Reply,
    expected: Expected,
    retry_after: float | None,
    fake_service: Callable[..., Awaitable[FakeService]],
    client: httpx.AsyncClient,
    fake_clock: FakeClock,
    make_alert: Callable[..., Alert],
) -> None:
    service = await fake_service(reply)
    channel = KINDS[kind].build(service.url, client, fake_clock, 5.0)
    notification = Notification.single(make_alert(), receiver=channel.name)
    verdict, error = await _attempt(channel, notification)
    assert verdict == expected, str(error)
    if isinstance(error, RetryableDeliveryError):
        assert error.retry_after == retry_after
    if error is not None:
        assert error.status_code == reply.status
    assert len(service.received) == 1
    assert service.received[0].method == "POST"


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_transport_failures_are_retryable(
    kind: str,
    fake_service: Callable[..., Awaitable[FakeService]],
    client: httpx.AsyncClient,
    fake_clock: FakeClock,
    closed_port: int,
    make_alert: Callable[..., Alert],
) -> None:
    notification = Notification.single(make_alert(), receiver=kind)
    refused = KINDS[kind].build(f"http://127.0.0.1:{closed_port}", client, fake_clock, 5.0)
    with pytest.raises(RetryableDeliveryError, match="ConnectError") as refused_error:
        await refused.send(notification)
    assert refused_error.value.status_code is None

    slow = await fake_service(Reply(200, "ok", delay=5.0))
    timing_out = KINDS[kind].build(slow.url, client, fake_clock, 0.2)
    with pytest.raises(RetryableDeliveryError, match=r"timed out after 0\.2s"):
        await timing_out.send(notification)


class SleepRecorder:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


POLICY = RetryPolicy(
    max_attempts=4, base_delay_seconds=0.1, max_delay_seconds=1.0, budget_seconds=None
)


def _failure(kind: str, retry_after: str | None = None) -> Reply:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    return Reply(429 if kind == "slack" else 503, headers=headers)


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_retries_until_delivered_and_honours_retry_after(
    kind: str,
    fake_service: Callable[..., Awaitable[FakeService]],
    client: httpx.AsyncClient,
    fake_clock: FakeClock,
    make_alert: Callable[..., Alert],
) -> None:
    service = await fake_service(KINDS[kind].ok)
    service.script(_failure(kind), _failure(kind, retry_after="2"))
    channel = KINDS[kind].build(service.url, client, fake_clock, 5.0)
    sleep = SleepRecorder()
    notification = Notification.single(make_alert(), receiver=channel.name)

    outcome = await deliver_with_retries(
        channel, notification, policy=POLICY, sleep=sleep, rng=random.Random(1)
    )

    assert outcome.delivered
    assert outcome.reason == "delivered"
    assert outcome.attempts == 3
    assert outcome.error is None
    assert len(service.received) == 3
    assert list(outcome.delays) == sleep.delays
    assert len(sleep.delays) == 2
    assert 0.0 <= sleep.delays[0] <= 0.1  # full jitter under the first bound
    assert sleep.delays[1] >= 2.0  # Retry-After: 2 honoured
    bodies = {r.body for r in service.received}
    assert len(bodies) == 1 or kind == "alertmanager"  # same content on every attempt


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_permanent_failure_is_not_retried(
    kind: str,
    fake_service: Callable[..., Awaitable[FakeService]],
    client: httpx.AsyncClient,
    fake_clock: FakeClock,
    make_alert: Callable[..., Alert],
) -> None:
    service = await fake_service(Reply(400, "invalid_payload"))
    channel = KINDS[kind].build(service.url, client, fake_clock, 5.0)
    sleep = SleepRecorder()
    outcome = await deliver_with_retries(
        channel,
        Notification.single(make_alert(), receiver=channel.name),
        policy=POLICY,
        sleep=sleep,
    )
    assert not outcome.delivered
    assert outcome.reason == "permanent"
    assert outcome.attempts == 1
    assert isinstance(outcome.error, PermanentDeliveryError)
    assert sleep.delays == []
    assert len(service.received) == 1


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_gives_up_after_max_attempts(
    kind: str,
    fake_service: Callable[..., Awaitable[FakeService]],
    client: httpx.AsyncClient,
    fake_clock: FakeClock,
    make_alert: Callable[..., Alert],
) -> None:
    service = await fake_service(Reply(500))
    channel = KINDS[kind].build(service.url, client, fake_clock, 5.0)
    sleep = SleepRecorder()
    outcome = await deliver_with_retries(
        channel,
        Notification.single(make_alert(), receiver=channel.name),
        policy=POLICY,
        sleep=sleep,
        rng=random.Random(7),
    )
    assert not outcome.delivered
    assert outcome.reason == "max_attempts"
    assert outcome.attempts == POLICY.max_attempts == len(service.received)
    assert isinstance(outcome.error, RetryableDeliveryError)
    assert len(sleep.delays) == POLICY.max_attempts - 1
    for n, delay in enumerate(sleep.delays, start=1):
        assert 0.0 <= delay <= POLICY.backoff_bound(n)


# --- No secret leaks --------------------------------------------------------------------------

FAILURES = ("refused", "timeout", "500", "400", "429")


def _assert_clean(text: str, secrets: tuple[str, ...], where: str) -> None:
    for secret in secrets:
        assert secret not in text, f"secret leaked in {where}: {text!r}"


@pytest.mark.parametrize("failure", FAILURES)
@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_no_secret_leaks(
    kind: str,
    failure: str,
    fake_service: Callable[..., Awaitable[FakeService]],
    client: httpx.AsyncClient,
    fake_clock: FakeClock,
    closed_port: int,
    make_alert: Callable[..., Alert],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    spec = KINDS[kind]
    timeout = 5.0
    if failure == "refused":
        base = f"http://127.0.0.1:{closed_port}"
    else:
        replies = {
            "timeout": Reply(200, "ok", delay=5.0),
            # The service echoes the request (URL and body) back, as some error pages do.
            "500": Reply(500, "internal error", echo=True),
            "400": Reply(400, "invalid_payload", echo=True),
            "429": Reply(429, "rate_limited", {"Retry-After": "1"}, echo=True),
        }
        service = await fake_service(replies[failure])
        base = service.url
        timeout = 0.2 if failure == "timeout" else timeout
    channel = spec.build(base, client, fake_clock, timeout)
    secrets = spec.secrets

    outcome = await deliver_with_retries(
        channel,
        Notification.single(make_alert(), receiver=channel.name),
        policy=RetryPolicy(max_attempts=2, base_delay_seconds=0.01, budget_seconds=None),
        sleep=SleepRecorder(),
    )

    error = outcome.error
    assert error is not None
    assert not outcome.delivered
    assert error.__cause__ is None
    assert error.__context__ is None
    _assert_clean(str(error), secrets, "str(error)")
    _assert_clean(repr(error), secrets, "repr(error)")
    _assert_clean("".join(traceback.format_exception(error)), secrets, "traceback")
    _assert_clean(repr(channel), secrets, "repr(channel)")
    _assert_clean(repr(outcome), secrets, "repr(outcome)")

    ours = [r for r in caplog.records if not r.name.startswith("aiohttp")]  # the fake server's
    assert any(r.name == "alert_channels.retry" for r in ours), "retry log lines expected"
    for record in ours:
        _assert_clean(record.getMessage(), secrets, f"log record of {record.name}")
    _assert_clean(caplog.text, secrets, "formatted log")
    if failure in ("500", "400", "429"):
        # httpx did log the request, with the URL's secret parts blanked.
        httpx_lines = [r.getMessage() for r in ours if r.name == "httpx"]
        assert httpx_lines, "httpx should log each request at INFO"
        if kind in ("webhook", "slack"):
            assert all("<redacted>" in line for line in httpx_lines)
