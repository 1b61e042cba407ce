"""What every channel's settings (a ``[[channels]]`` entry of the config file) have in common.

Each channel module holds its own settings model beside the channel (``WebhookSettings`` in
:mod:`alert_channels.webhook`, ...): a subclass of :class:`BaseChannelSettings` that narrows
``type`` to its own name, adds only its own keys and says in :meth:`~BaseChannelSettings.build` how
to make its channel. :mod:`alert_channels.registry` joins them into one discriminated union.

Like every config section: frozen, and an unknown key is an error. Secret values (URLs, signing
secrets, routing keys) are :class:`pydantic.SecretStr`, which never shows them.

>>> from alert_channels.console import ConsoleSettings
>>> ConsoleSettings(name="stdout")  # doctest: +NORMALIZE_WHITESPACE
ConsoleSettings(name='stdout', type='console', timeout_seconds=5.0, max_attempts=5,
                retry_budget_seconds=120.0, send_resolved=True)
>>> ConsoleSettings(name="stdout", colour="red")
Traceback (most recent call last):
    ...
pydantic_core._pydantic_core.ValidationError: 1 validation error for ConsoleSettings
colour
  Extra inputs are not permitted [type=extra_forbidden, input_value='red', input_type=str]
    ...
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Annotated, Any

import httpx
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    model_validator,
)

from alert_channels.base import Channel
from engine.model.durations import seconds_or_duration

__all__ = ["BaseChannelSettings", "NonEmptySecret"]


def _not_blank(value: SecretStr) -> SecretStr:
    if not value.get_secret_value().strip():
        raise ValueError("must not be empty")
    return value


#: A secret that must hold more than white space (e.g. an unset ``${VAR}`` expands to "").
NonEmptySecret = Annotated[SecretStr, AfterValidator(_not_blank)]


class BaseChannelSettings(BaseModel):
    """One alert destination: the keys every channel type has.

    Subclasses narrow ``type`` to ``Literal["<their name>"]`` (with that name as default), add their
    own keys and implement :meth:`build`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _durations(cls, data: Any) -> Any:
        """Every ``*_seconds`` key also takes Go-style text ("5m", "1h30m", "500ms").

        A model-level validator: a field validator on every field would touch ``type``, the
        discriminator of the channel union, which pydantic forbids.
        """
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for key, value in data.items():
            if isinstance(key, str) and key.endswith("_seconds"):
                try:
                    out[key] = seconds_or_duration(value)
                except ValueError as exc:
                    raise ValueError(f"{key}: {exc}") from None
        return out

    name: str = Field(min_length=1, description="The channel's name, used by routes and metrics.")
    type: str = Field(description="The channel type; picks the settings model.")
    timeout_seconds: float = Field(5.0, gt=0, description="Per-request timeout.")
    max_attempts: int = Field(5, ge=1, description="Delivery attempts in all, the first included.")
    retry_budget_seconds: float = Field(
        120.0,
        gt=0,
        description="Longest a notification is retried; then it goes to the alerts DLQ.",
    )
    send_resolved: bool = Field(True, description="Whether resolutions are notified too.")

    @abstractmethod
    def build(self, http: httpx.AsyncClient, *, resend_interval_seconds: float) -> Channel:
        """The channel these settings describe.

        Parameters
        ----------
        http
            The HTTP client every channel shares (channels that need none ignore it).
        resend_interval_seconds
            How often the engine re-sends firing alerts (the routing ``repeat_interval``);
            channels that need not know ignore it.

        Raises
        ------
        ValueError
            If a value the model accepts is still unusable (e.g. a webhook ``secret`` that is not
            base64); the message never quotes a secret.
        """
