"""deliver_with_retries, RetryPolicy and Notification, with a scripted in-memory channel."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable

import pytest

from alert_channels.base import Channel
from alert_channels.errors import DeliveryError, PermanentDeliveryError, RetryableDeliveryError
from alert_channels.formatting import notification_title
from alert_channels.retry import RetryPolicy, deliver_with_retries
from engine.model.alert import Alert, AlertStatus, Severity
from engine.model.notification import Notification
from tests.alert_channel_fakes import FakeClock


class ScriptedChannel:
    """Fails with the scripted errors in order, then succeeds."""

    def __init__(self, *errors: Exception) -> None:
        self.name = "scripted"
        self.errors = list(errors)
        self.calls = 0

    async def send(self, notification: Notification) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)


def retryable(retry_after: float | None = None) -> RetryableDeliveryError:
    return RetryableDeliveryError("try again", retry_after=retry_after, status_code=503)


@pytest.fixture
def notification(make_alert: Callable[..., Alert]) -> Notification:
    return Notification.single(make_alert(), receiver="scripted")


def test_scripted_channel_is_a_channel() -> None:
    assert isinstance(ScriptedChannel(), Channel)


async def test_first_attempt_success_does_not_sleep(
    notification: Notification, fake_clock: FakeClock
) -> None:
    outcome = await deliver_with_retries(
        ScriptedChannel(), notification, policy=RetryPolicy(), sleep=fake_clock.sleep
    )
    assert (outcome.delivered, outcome.attempts, outcome.reason) == (True, 1, "delivered")
    assert fake_clock.sleeps == []


async def test_full_jitter_exponential_backoff_with_cap(
    notification: Notification, fake_clock: FakeClock
) -> None:
    policy = RetryPolicy(
        max_attempts=8, base_delay_seconds=1.0, max_delay_seconds=10.0, budget_seconds=None
    )
    channel = ScriptedChannel(*[retryable() for _ in range(7)])
    outcome = await deliver_with_retries(
        channel, notification, policy=policy, sleep=fake_clock.sleep, rng=random.Random(42)
    )
    assert outcome.delivered
    assert outcome.attempts == 8 == channel.calls
    bounds = [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
    assert [policy.backoff_bound(n) for n in range(1, 8)] == bounds
    assert len(fake_clock.sleeps) == 7
    for delay, bound in zip(fake_clock.sleeps, bounds, strict=True):
        assert 0.0 <= delay <= bound
    # The same seed gives the same delays: the jitter comes from the injected rng only.
    again = FakeClock()
    await deliver_with_retries(
        ScriptedChannel(*[retryable() for _ in range(7)]),
        notification,
        policy=policy,
        sleep=again.sleep,
        rng=random.Random(42),
    )
    assert again.sleeps == fake_clock.sleeps


async def test_jitter_spreads_over_the_whole_range(notification: Notification) -> None:
    """Full jitter: delays are uniform on [0, bound], not clustered at the bound."""
    rng = random.Random(3)
    policy = RetryPolicy(max_attempts=2, base_delay_seconds=4.0, budget_seconds=None)
    delays: list[float] = []
    for _ in range(400):
        clock = FakeClock()
        await deliver_with_retries(
            ScriptedChannel(retryable()), notification, policy=policy, sleep=clock.sleep, rng=rng
        )
        delays.extend(clock.sleeps)
    assert min(delays) < 0.5
    assert max(delays) > 3.5
    assert 1.6 < sum(delays) / len(delays) < 2.4


async def test_retry_after_raises_the_delay(
    notification: Notification, fake_clock: FakeClock
) -> None:
    policy = RetryPolicy(
        max_attempts=3, base_delay_seconds=0.5, max_delay_seconds=1.0, budget_seconds=None
    )
    channel = ScriptedChannel(retryable(retry_after=30.0), retryable(retry_after=0.0))
    outcome = await deliver_with_retries(
        channel, notification, policy=policy, sleep=fake_clock.sleep, rng=random.Random(0)
    )
    assert outcome.delivered
    assert fake_clock.sleeps[0] == 30.0  # what the receiver asked for, beyond max_delay
    assert 0.0 <= fake_clock.sleeps[1] <= 1.0  # Retry-After 0 does not cancel the backoff


async def test_permanent_error_stops_at_once(
    notification: Notification, fake_clock: FakeClock
) -> None:
    channel = ScriptedChannel(retryable(), PermanentDeliveryError("nope", status_code=400))
    outcome = await deliver_with_retries(
        channel, notification, policy=RetryPolicy(max_attempts=10), sleep=fake_clock.sleep
    )
    assert (outcome.delivered, outcome.attempts, outcome.reason) == (False, 2, "permanent")
    assert isinstance(outcome.error, PermanentDeliveryError)
    assert len(outcome.delays) == 1


async def test_unclassified_delivery_error_is_not_retried(
    notification: Notification, fake_clock: FakeClock
) -> None:
    outcome = await deliver_with_retries(
        ScriptedChannel(DeliveryError("odd")),
        notification,
        policy=RetryPolicy(),
        sleep=fake_clock.sleep,
    )
    assert (outcome.attempts, outcome.reason) == (1, "permanent")


async def test_max_attempts_exhausted(notification: Notification, fake_clock: FakeClock) -> None:
    channel = ScriptedChannel(*[retryable() for _ in range(10)])
    outcome = await deliver_with_retries(
        channel,
        notification,
        policy=RetryPolicy(max_attempts=3, budget_seconds=None),
        sleep=fake_clock.sleep,
    )
    assert (outcome.delivered, outcome.attempts, outcome.reason) == (False, 3, "max_attempts")
    assert isinstance(outcome.error, RetryableDeliveryError)
    assert len(fake_clock.sleeps) == 2


async def test_time_budget_stops_before_oversleeping(
    notification: Notification, fake_clock: FakeClock
) -> None:
    policy = RetryPolicy(
        max_attempts=100, base_delay_seconds=1.0, max_delay_seconds=1.0, budget_seconds=5.0
    )
    channel = ScriptedChannel(*[retryable(retry_after=1.0) for _ in range(100)])
    outcome = await deliver_with_retries(
        channel, notification, policy=policy, sleep=fake_clock.sleep, clock=fake_clock
    )
    assert outcome.reason == "budget"
    assert sum(outcome.delays) <= 5.0
    assert outcome.attempts == 6  # sleeps of 1 s after attempts 1..5, then 6 s would exceed 5 s


async def test_retry_after_beyond_budget_gives_up_and_keeps_it(
    notification: Notification, fake_clock: FakeClock
) -> None:
    channel = ScriptedChannel(retryable(retry_after=3600.0))
    outcome = await deliver_with_retries(
        channel,
        notification,
        policy=RetryPolicy(budget_seconds=60.0),
        sleep=fake_clock.sleep,
        clock=fake_clock,
    )
    assert (outcome.attempts, outcome.reason, outcome.delays) == (1, "budget", ())
    assert isinstance(outcome.error, RetryableDeliveryError)
    assert outcome.error.retry_after == 3600.0  # the caller can re-schedule the notification


async def test_bugs_propagate(notification: Notification, fake_clock: FakeClock) -> None:
    with pytest.raises(ZeroDivisionError):
        await deliver_with_retries(
            ScriptedChannel(ZeroDivisionError()),
            notification,
            policy=RetryPolicy(),
            sleep=fake_clock.sleep,
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be >= 1"),
        ({"base_delay_seconds": 0}, "base_delay_seconds must be > 0"),
        ({"base_delay_seconds": float("nan")}, "base_delay_seconds must be > 0"),
        ({"max_delay_seconds": 0.5}, "max_delay_seconds must be >= base_delay_seconds"),
        ({"budget_seconds": -1}, "budget_seconds must be >= 0 or None"),
    ],
)
def test_retry_policy_validation(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


# --- Notification -------------------------------------------------------------------------------


def test_notification_needs_alerts() -> None:
    with pytest.raises(ValueError, match="alerts: a notification needs at least one alert"):
        Notification(receiver="r", group_key="g", group_labels={}, alerts=())


def test_single_notification(make_alert: Callable[..., Alert]) -> None:
    alert = make_alert()
    n = Notification.single(alert, receiver="ops", external_url="http://kestrel")
    assert n.notification_id == alert.notification_id
    assert n.group_key == alert.fingerprint
    assert n.group_labels == {"alertname": "latency_ms", "service": "api"}
    assert n.status is AlertStatus.FIRING
    assert n.is_single
    assert n.external_url == "http://kestrel"


def test_group_status_and_severity(make_alert: Callable[..., Alert]) -> None:
    firing_info = make_alert(severity=Severity.INFO, labels={"i": "1"})
    resolved_critical = make_alert(
        severity=Severity.CRITICAL, status=AlertStatus.RESOLVED, labels={"i": "2"}
    )
    mixed = Notification("r", "g", {}, (firing_info, resolved_critical))
    assert mixed.status is AlertStatus.FIRING
    assert mixed.severity is Severity.INFO  # the firing ones decide
    assert not mixed.is_single
    assert notification_title(mixed) == "1 firing and 1 resolved alerts"
    over = Notification("r", "g", {"service": "api"}, (resolved_critical,) * 2)
    assert over.status is AlertStatus.RESOLVED
    assert over.severity is Severity.CRITICAL
    assert notification_title(over) == "2 alerts resolved for service=api"


def test_group_notification_id_is_stable_and_content_bound(
    make_group: Callable[..., Notification], make_alert: Callable[..., Alert]
) -> None:
    a = make_group(3)
    b = make_group(3)
    assert a.notification_id == b.notification_id
    assert "." not in a.notification_id  # Standard Webhooks ids must not contain dots
    reordered = Notification(a.receiver, a.group_key, a.group_labels, a.alerts[::-1])
    assert reordered.notification_id == a.notification_id
    assert make_group(4).notification_id != a.notification_id
    repeated = Notification(
        a.receiver, a.group_key, a.group_labels, (*a.alerts[:2], make_alert(repeat=1))
    )
    assert repeated.notification_id != a.notification_id
    assert make_group(3, receiver="other").notification_id == a.notification_id


def test_notification_copies_its_inputs(make_alert: Callable[..., Alert]) -> None:
    labels = {"service": "api"}
    alerts = [make_alert()]
    n = Notification("r", "g", labels, alerts)  # type: ignore[arg-type]
    labels["service"] = "changed"
    assert n.group_labels == {"service": "api"}
    assert isinstance(n.alerts, tuple)


def test_package_exports_in_a_clean_interpreter() -> None:
    """``import alert_channels`` in a fresh interpreter exports everything its ``__all__`` names."""
    code = (
        "import alert_channels as ac\n"
        "missing = [n for n in ac.__all__ if not hasattr(ac, n)]\n"
        "assert not missing, missing\n"
        "assert 'RetryableDeliveryError' in ac.__doc__\n"
        "print(len(ac.__all__))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 15
