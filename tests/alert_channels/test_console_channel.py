"""ConsoleChannel: one human line per alert."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from alert_channels.console import ConsoleChannel, console_lines
from alert_channels.errors import RetryableDeliveryError
from alert_channels.retry import RetryPolicy, deliver_with_retries
from engine.model.alert import Alert, AlertStatus
from engine.model.notification import Notification


async def test_one_line_per_alert(make_group: Callable[..., Notification]) -> None:
    out = io.StringIO()
    group = make_group(3, statuses=(AlertStatus.FIRING, AlertStatus.RESOLVED))
    await ConsoleChannel("console", stream=out).send(group)
    lines = out.getvalue().splitlines()
    assert lines == console_lines(group)
    assert lines[0] == (
        "[FIRING warning] latency_ms{instance=i-0000,service=api} zscore: value 950 "
        "expected 120 (score 8.5) since 2023-11-14T22:13:20Z"
    )
    assert lines[1].startswith("[RESOLVED warning] latency_ms{instance=i-0001,service=api}")
    assert lines[1].endswith("since 2023-11-14T22:13:20Z until 2023-11-14T22:23:20Z")


async def test_writes_to_stdout_by_default(
    make_alert: Callable[..., Alert], capsys: pytest.CaptureFixture[str]
) -> None:
    await ConsoleChannel().send(Notification.single(make_alert(value=0.25), "console"))
    assert "value 0.25 expected 120" in capsys.readouterr().out


@pytest.mark.parametrize(("broken", "expected"), [(False, "ok"), (True, "retryable")])
async def test_status_table(make_alert: Callable[..., Alert], broken: bool, expected: str) -> None:
    out = io.StringIO()
    if broken:
        out.close()
    channel = ConsoleChannel("console", stream=out)
    outcome = await deliver_with_retries(
        channel,
        Notification.single(make_alert(), "console"),
        policy=RetryPolicy(max_attempts=2, base_delay_seconds=0.001, budget_seconds=None),
    )
    assert outcome.delivered is (expected == "ok")
    if broken:
        assert isinstance(outcome.error, RetryableDeliveryError)
        assert outcome.attempts == 2
        assert "cannot write: ValueError" in str(outcome.error)
    assert repr(channel) == "ConsoleChannel(name='console')"
