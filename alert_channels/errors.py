"""Delivery errors raised by channels.

A channel makes one delivery attempt per ``send`` call and says how it failed with the class of the
error it raises; :func:`alert_channels.deliver_with_retries` decides whether to try again::

    DeliveryError                    any failed delivery attempt
    ├── RetryableDeliveryError       may succeed later: timeout, connection error, HTTP 429/5xx
    └── PermanentDeliveryError       will fail again: other HTTP 4xx, rejected payload, bad URL

Messages never contain secrets (webhook URL paths and queries, tokens, routing keys, signing
secrets), and the errors carry no ``__cause__`` or ``__context__`` from the HTTP library (whose
messages contain the request URL).
"""

from __future__ import annotations

__all__ = ["DeliveryError", "PermanentDeliveryError", "RetryableDeliveryError"]


class DeliveryError(Exception):
    """A delivery attempt failed.

    Parameters
    ----------
    message
        What failed, for humans; must already be redacted.
    status_code
        The HTTP status of the response, or ``None`` when there was no response.
    """

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code

    @property
    def retryable(self) -> bool:
        """Whether another attempt may succeed."""
        return False


class RetryableDeliveryError(DeliveryError):
    """A delivery attempt failed for a reason that may go away (timeout, 429, 5xx).

    Parameters
    ----------
    message
        What failed, already redacted.
    retry_after
        Seconds the receiver asked us to wait before the next attempt (``Retry-After``), if any.
    status_code
        The HTTP status of the response, or ``None`` when there was no response.
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Always ``True``."""
        return True


class PermanentDeliveryError(DeliveryError):
    """A delivery attempt failed and would fail the same way again (4xx, rejected payload)."""
