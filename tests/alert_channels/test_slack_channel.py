"""SlackChannel: Block Kit payload within Slack's limits, success rules and pacing."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from alert_channels.errors import PermanentDeliveryError, RetryableDeliveryError
from alert_channels.slack import (
    HEADER_MAX_CHARS,
    MAX_BLOCKS,
    TEXT_MAX_CHARS,
    SlackChannel,
    TokenBucket,
    slack_payload,
    truncate,
)
from engine.model.alert import Alert, AlertStatus, Severity
from engine.model.notification import Notification
from tests.alert_channel_fakes import FakeClock, FakeService, Reply


def _texts(payload: dict[str, Any]) -> list[str]:
    out = []
    for block in payload["blocks"]:
        if "text" in block:
            out.append(block["text"]["text"])
        out.extend(e["text"] for e in block.get("elements", []))
    return out


def _assert_within_limits(payload: dict[str, Any]) -> None:
    blocks = payload["blocks"]
    assert len(blocks) <= MAX_BLOCKS
    assert blocks[0]["type"] == "header"
    assert len(blocks[0]["text"]["text"]) <= HEADER_MAX_CHARS
    assert len(payload["text"]) <= TEXT_MAX_CHARS
    for block in blocks[1:]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= TEXT_MAX_CHARS
        else:
            assert block["type"] == "context"
            assert len(block["elements"]) <= 10
            assert all(len(e["text"]) <= TEXT_MAX_CHARS for e in block["elements"])


def test_single_alert_message(make_alert: Callable[..., Alert]) -> None:
    alert = make_alert(severity=Severity.CRITICAL, summary="p99 <high> & rising")
    payload = slack_payload(Notification.single(alert, "slack", external_url="https://k/a?b=1&c=2"))
    _assert_within_limits(payload)
    assert payload["text"].startswith("[FIRING critical] latency_ms{service=api} zscore: value 950")
    header, section, link = payload["blocks"]
    assert header["text"] == {
        "type": "plain_text",
        "text": "FIRING critical: latency_ms{service=api}",
        "emoji": False,
    }
    text = section["text"]["text"]
    assert "Observed *950* vs expected *120*" in text
    assert "score *8.5*" in text
    assert "Started 2023-11-14T22:13:20Z" in text
    assert "p99 &lt;high&gt; &amp; rising" in text  # mrkdwn control characters escaped
    assert link["elements"][0]["text"] == "<https://k/a?b=1&amp;c=2|Open in Kestrel>"


def test_resolved_alert_shows_end(make_alert: Callable[..., Alert]) -> None:
    payload = slack_payload(Notification.single(make_alert(status=AlertStatus.RESOLVED), "s"))
    assert "ended 2023-11-14T22:23:20Z" in payload["blocks"][1]["text"]["text"]
    assert payload["blocks"][0]["text"]["text"].startswith("RESOLVED warning")


def test_many_alerts_show_count_and_first_n(make_group: Callable[..., Notification]) -> None:
    payload = slack_payload(make_group(12), max_alerts=5)
    _assert_within_limits(payload)
    assert payload["blocks"][0]["text"]["text"] == "12 alerts firing for service=api"
    assert payload["text"] == "12 alerts firing for service=api"
    sections = [b for b in payload["blocks"] if b["type"] == "section"]
    assert len(sections) == 5
    assert "instance=i-0000" in sections[0]["text"]["text"]
    assert payload["blocks"][-1]["elements"][0]["text"] == "…and 7 more alerts not shown"


def test_huge_inputs_stay_within_limits(make_group: Callable[..., Notification]) -> None:
    group = make_group(
        1000,
        summary="&" * 5000 + "S" * 20_000,
        series="m" * 5000,
        detector="d" * 5000,
        external_url="https://kestrel.example/" + "x" * 10_000,
    )
    group = Notification(
        group.receiver,
        group.group_key,
        {f"k{i}": "v" * 100 for i in range(50)},
        group.alerts,
        group.external_url,
    )
    payload = slack_payload(group, max_alerts=47)
    _assert_within_limits(payload)
    assert (
        len(payload["blocks"]) == 49
    )  # header + 47 alerts + "more"; the over-long link is dropped
    assert payload["blocks"][0]["text"]["text"].endswith("…")
    assert all(t.endswith("…") for t in _texts(payload)[1:48])
    for text in _texts(payload):  # no entity cut in half
        assert re.search(r"&(?!amp;|lt;|gt;)", text) is None, text[-20:]
    assert len(json.dumps(payload)) < 200_000


@pytest.mark.parametrize("limit", range(2, 30))
def test_truncation_never_splits_an_entity(limit: int) -> None:
    text = "a&amp;b&lt;&gt;" * 5
    cut = truncate(text, limit)
    assert len(cut) <= limit
    assert cut.endswith("…")
    assert re.search(r"&(?!amp;|lt;|gt;)", cut) is None, cut


def test_max_alerts_bounds(make_group: Callable[..., Notification]) -> None:
    for bad in (0, 48):
        with pytest.raises(ValueError, match="max_alerts must be in"):
            slack_payload(make_group(2), max_alerts=bad)


async def test_posts_the_payload(
    fake_service: Callable[..., Awaitable[FakeService]],
    client: httpx.AsyncClient,
    make_alert: Callable[..., Alert],
    fake_clock: FakeClock,
) -> None:
    service = await fake_service(Reply(200, "ok"))
    channel = SlackChannel(
        "slack", f"{service.url}/services/T/B/X", client=client, clock=fake_clock
    )
    notification = Notification.single(make_alert(), "slack")
    await channel.send(notification)
    [got] = service.received
    assert got.path == "/services/T/B/X"
    assert got.headers["Content-Type"] == "application/json"
    assert got.json() == slack_payload(notification)


async def test_ok_with_whitespace_is_success_but_other_bodies_are_not(
    fake_service: Callable[..., Awaitable[FakeService]],
    client: httpx.AsyncClient,
    make_alert: Callable[..., Alert],
    fake_clock: FakeClock,
) -> None:
    service = await fake_service(Reply(200, "ok\n"))
    channel = SlackChannel(
        "slack", f"{service.url}/s", client=client, clock=fake_clock, sleep=fake_clock.sleep
    )
    notification = Notification.single(make_alert(), "slack")
    await channel.send(notification)
    service.script(Reply(200, "no_text"))
    with pytest.raises(PermanentDeliveryError, match="HTTP 200 without 'ok': no_text"):
        await channel.send(notification)


async def test_five_quick_sends_are_paced_one_second_apart(
    fake_service: Callable[..., Awaitable[FakeService]],
    client: httpx.AsyncClient,
    make_alert: Callable[..., Alert],
    fake_clock: FakeClock,
) -> None:
    service = await fake_service(Reply(200, "ok"))
    channel = SlackChannel(
        "slack", f"{service.url}/s", client=client, clock=fake_clock, sleep=fake_clock.sleep
    )
    notification = Notification.single(make_alert(), "slack")
    for _ in range(5):
        await channel.send(notification)
    assert len(service.received) == 5
    assert fake_clock.sleeps == pytest.approx([1.0, 1.0, 1.0, 1.0])
    # After a quiet while the bucket is full again: no wait.
    fake_clock.now += 10
    await channel.send(notification)
    assert len(fake_clock.sleeps) == 4


async def test_burst_capacity_and_concurrent_senders_queue_in_order(
    fake_clock: FakeClock,
) -> None:
    bucket = TokenBucket(
        rate_per_second=1.0, capacity=3.0, clock=fake_clock, sleep=fake_clock.sleep
    )
    waits = [await bucket.acquire() for _ in range(3)]
    assert waits == [0.0, 0.0, 0.0]
    # Concurrent callers reserve in turn: with the clock frozen, they wait 1, 2, 3 seconds.
    frozen: list[float] = []

    async def frozen_sleep(seconds: float) -> None:
        frozen.append(seconds)

    bucket = TokenBucket(rate_per_second=2.0, capacity=1.0, clock=lambda: 0.0, sleep=frozen_sleep)
    await asyncio.gather(*(bucket.acquire() for _ in range(4)))
    assert frozen == pytest.approx([0.5, 1.0, 1.5])


async def test_cancelled_waiter_returns_its_token(fake_clock: FakeClock) -> None:
    started = asyncio.Event()

    async def slow_sleep(seconds: float) -> None:
        started.set()
        await asyncio.sleep(3600)

    bucket = TokenBucket(clock=lambda: 0.0, sleep=slow_sleep)
    await bucket.acquire()
    waiter = asyncio.create_task(bucket.acquire())
    await started.wait()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    recorded: list[float] = []

    async def record(seconds: float) -> None:
        recorded.append(seconds)

    bucket._sleep = record
    await bucket.acquire()
    assert recorded == [1.0]  # not 2.0: the cancelled reservation was given back


async def test_429_holds_the_bucket_for_retry_after(
    fake_service: Callable[..., Awaitable[FakeService]],
    client: httpx.AsyncClient,
    make_alert: Callable[..., Alert],
    fake_clock: FakeClock,
) -> None:
    service = await fake_service(Reply(200, "ok"))
    service.script(Reply(429, "rate_limited", {"Retry-After": "30"}))
    channel = SlackChannel(
        "slack", f"{service.url}/s", client=client, clock=fake_clock, sleep=fake_clock.sleep
    )
    notification = Notification.single(make_alert(), "slack")
    with pytest.raises(RetryableDeliveryError) as excinfo:
        await channel.send(notification)
    assert excinfo.value.retry_after == 30.0
    # Another send to the same webhook (e.g. another notification) waits out the Retry-After.
    await channel.send(notification)
    assert fake_clock.sleeps == pytest.approx([30.0])


def test_bucket_validation() -> None:
    with pytest.raises(ValueError, match="rate_per_second must be > 0"):
        TokenBucket(rate_per_second=0)
    with pytest.raises(ValueError, match="capacity must be >= 1"):
        TokenBucket(capacity=0.5)


def test_an_alert_with_a_trace_link_shows_it(make_alert: Callable[..., Alert]) -> None:
    alert = make_alert(annotations={"trace_url": "https://jaeger/trace/4bf92f3577b34da6"})
    payload = slack_payload(Notification.single(alert, "slack"))
    _assert_within_limits(payload)
    assert "<https://jaeger/trace/4bf92f3577b34da6|trace_url>" in _texts(payload)[1]
    plain = slack_payload(Notification.single(make_alert(), "slack"))
    assert "trace_url" not in " ".join(_texts(plain))
