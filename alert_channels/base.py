"""The channel protocol: what every alert destination implements.

A :class:`Channel` makes **one** delivery attempt per :meth:`Channel.send` call and raises a
:class:`~alert_channels.errors.RetryableDeliveryError` or a
:class:`~alert_channels.errors.PermanentDeliveryError` when it fails. Retrying is not the channel's
business: the caller runs :func:`alert_channels.retry.deliver_with_retries` with its own policy.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from engine.model.notification import Notification

__all__ = ["Channel"]


@runtime_checkable
class Channel(Protocol):
    """Something that delivers notifications somewhere.

    ``send`` makes exactly one attempt. It returns on success and raises
    :class:`~alert_channels.errors.RetryableDeliveryError` or
    :class:`~alert_channels.errors.PermanentDeliveryError` on failure; any other exception is a bug.
    Neither its errors nor its ``repr`` contain secrets.
    """

    name: str

    async def send(self, notification: Notification) -> None:
        """Make one delivery attempt of ``notification``."""
        ...
