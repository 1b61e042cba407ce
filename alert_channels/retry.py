"""Retrying a delivery: :class:`RetryPolicy`, :func:`deliver_with_retries` and its outcome.

Exponential backoff with full jitter, ``Retry-After`` honoured, attempt and time budgets; the
outcome says what was given up, so the caller can dead-letter it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from alert_channels.base import Channel
from alert_channels.errors import DeliveryError, RetryableDeliveryError
from engine.model.notification import Notification

__all__ = ["DeliveryOutcome", "RetryPolicy", "deliver_with_retries"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard :func:`deliver_with_retries` tries.

    The delay before attempt ``n + 1`` is drawn uniformly from
    ``[0, min(max_delay_seconds, base_delay_seconds * 2 ** (n - 1))]`` ("full jitter"), raised to
    the receiver's ``Retry-After`` when it sent one.

    Parameters
    ----------
    max_attempts
        Attempts in all, the first included (>= 1).
    base_delay_seconds
        Upper bound of the first delay (> 0).
    max_delay_seconds
        Cap of the backoff bound (>= ``base_delay_seconds``); ``Retry-After`` may exceed it.
    budget_seconds
        Give up rather than wait past this many seconds since the first attempt (``None``: no
        limit). A ``Retry-After`` beyond the budget ends the loop at once; the outcome's error keeps
        it, so the caller may re-schedule.

    >>> RetryPolicy(max_attempts=0)
    Traceback (most recent call last):
    ...
    ValueError: max_attempts must be >= 1, got 0
    """

    max_attempts: int = 5
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 60.0
    budget_seconds: float | None = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if not self.base_delay_seconds > 0:
            raise ValueError(f"base_delay_seconds must be > 0, got {self.base_delay_seconds}")
        if not self.max_delay_seconds >= self.base_delay_seconds:
            raise ValueError(
                f"max_delay_seconds must be >= base_delay_seconds, got {self.max_delay_seconds}"
            )
        if self.budget_seconds is not None and not self.budget_seconds >= 0:
            raise ValueError(f"budget_seconds must be >= 0 or None, got {self.budget_seconds}")

    def backoff_bound(self, failed_attempts: int) -> float:
        """Upper bound of the delay after ``failed_attempts`` failures (>= 1)."""
        exponent = min(failed_attempts - 1, 64)
        return min(self.max_delay_seconds, self.base_delay_seconds * 2.0**exponent)


OutcomeReason = Literal["delivered", "permanent", "max_attempts", "budget"]


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What :func:`deliver_with_retries` did.

    Attributes
    ----------
    delivered
        Whether an attempt succeeded.
    attempts
        How many attempts were made.
    error
        The last error, ``None`` when delivered.
    delays
        The waits between attempts, in seconds.
    reason
        ``delivered``, ``permanent`` (a permanent error), ``max_attempts`` or ``budget`` (gave up
        on a retryable error). A bounded set: usable as a metric label.
    """

    delivered: bool
    attempts: int
    error: DeliveryError | None
    delays: tuple[float, ...]
    reason: OutcomeReason


_DEFAULT_RNG = random.Random()


async def deliver_with_retries(
    channel: Channel,
    notification: Notification,
    *,
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> DeliveryOutcome:
    """Send ``notification`` through ``channel``, retrying retryable failures per ``policy``.

    Parameters
    ----------
    channel
        The channel; each call of its ``send`` is one attempt.
    notification
        What to deliver. Channels use its ``notification_id`` as idempotency key, so a retry of an
        attempt that did arrive is recognisable by the receiver.
    policy
        Attempts, backoff and time budget.
    sleep
        Awaited with each delay; inject a fake in tests.
    rng
        Source of the jitter; a process-wide generator by default.
    clock
        Monotonic seconds, for the time budget.

    Returns
    -------
    DeliveryOutcome
        Never raises a :class:`~alert_channels.errors.DeliveryError`; other exceptions (bugs,
        cancellation) propagate.
    """
    rng = _DEFAULT_RNG if rng is None else rng
    start = clock()
    delays: list[float] = []
    attempt = 0
    while True:
        attempt += 1
        try:
            await channel.send(notification)
        except RetryableDeliveryError as exc:
            error: DeliveryError = exc
        except DeliveryError as exc:  # PermanentDeliveryError, or an unclassified failure
            logger.warning(
                "channel %r gave up on notification %s: permanent failure: %s",
                channel.name,
                notification.notification_id,
                exc,
            )
            return DeliveryOutcome(False, attempt, exc, tuple(delays), "permanent")
        else:
            return DeliveryOutcome(True, attempt, None, tuple(delays), "delivered")

        if attempt >= policy.max_attempts:
            logger.warning(
                "channel %r gave up on notification %s after %d attempts: %s",
                channel.name,
                notification.notification_id,
                attempt,
                error,
            )
            return DeliveryOutcome(False, attempt, error, tuple(delays), "max_attempts")
        delay = rng.uniform(0.0, policy.backoff_bound(attempt))
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            delay = max(delay, retry_after)
        if policy.budget_seconds is not None and clock() - start + delay > policy.budget_seconds:
            logger.warning(
                "channel %r gave up on notification %s: waiting %.1fs would exceed "
                "the %.1fs budget: %s",
                channel.name,
                notification.notification_id,
                delay,
                policy.budget_seconds,
                error,
            )
            return DeliveryOutcome(False, attempt, error, tuple(delays), "budget")
        logger.info(
            "channel %r attempt %d for notification %s failed, retrying in %.2fs: %s",
            channel.name,
            attempt,
            notification.notification_id,
            delay,
            error,
        )
        delays.append(delay)
        await sleep(delay)
