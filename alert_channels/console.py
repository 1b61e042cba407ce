"""A channel that writes one line per alert to a text stream (stdout by default)."""

from __future__ import annotations

import sys
from typing import Literal, TextIO

import httpx

from alert_channels.errors import RetryableDeliveryError
from alert_channels.formatting import alert_line
from alert_channels.settings import BaseChannelSettings
from engine.model.notification import Notification

__all__ = ["ConsoleChannel", "ConsoleSettings", "console_lines"]


def console_lines(notification: Notification) -> list[str]:
    """The lines :class:`ConsoleChannel` writes, one per alert (see ``base.alert_line``)."""
    return [alert_line(alert) for alert in notification.alerts]


class ConsoleChannel:
    """Writes one human line per alert to ``stream`` and flushes.

    Parameters
    ----------
    name
        The channel's name.
    stream
        Where to write; ``sys.stdout`` (looked up at each send) when ``None``.

    >>> import asyncio, io
    >>> from engine.model.alert import Alert, AlertStatus, Severity
    >>> alert = Alert("438fe56f6f6f643b", AlertStatus.RESOLVED, Severity.WARNING, "latency_ms",
    ...               {"service": "api"}, "zscore", 130.0, 120.0, 0.4, 1700000000.0,
    ...               1700000600.0, "ok")
    >>> out = io.StringIO()
    >>> channel = ConsoleChannel(stream=out)
    >>> asyncio.run(channel.send(Notification.single(alert, "console")))
    >>> print(out.getvalue(), end="")  # doctest: +NORMALIZE_WHITESPACE
    [RESOLVED warning] latency_ms{service=api} zscore: value 130 expected 120 (score 0.4)
    since 2023-11-14T22:13:20Z until 2023-11-14T22:23:20Z
    """

    def __init__(self, name: str = "console", *, stream: TextIO | None = None) -> None:
        self.name = name
        self._stream = stream

    def __repr__(self) -> str:
        return f"ConsoleChannel(name={self.name!r})"

    async def send(self, notification: Notification) -> None:
        """Write the notification's lines.

        Raises
        ------
        RetryableDeliveryError
            If the stream cannot be written (closed, broken pipe).
        """
        stream = sys.stdout if self._stream is None else self._stream
        text = "".join(line + "\n" for line in console_lines(notification))
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError) as exc:  # ValueError: I/O operation on closed file
            failure = f"console channel {self.name!r}: cannot write: {type(exc).__name__}"
        else:
            return
        raise RetryableDeliveryError(failure)


class ConsoleSettings(BaseChannelSettings):
    """A ``type = "console"`` entry: no keys of its own; writes to the worker's standard output.

    >>> import httpx
    >>> ConsoleSettings(name="stdout").build(httpx.AsyncClient(), resend_interval_seconds=3600.0)
    ConsoleChannel(name='stdout')
    """

    type: Literal["console"] = "console"

    def build(self, http: httpx.AsyncClient, *, resend_interval_seconds: float) -> ConsoleChannel:
        """A :class:`ConsoleChannel` on ``sys.stdout`` (``http`` and the interval are unused)."""
        return ConsoleChannel(self.name)
