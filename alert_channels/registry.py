"""The channel registry: every channel type's settings model, and building a channel from them.

:data:`ChannelSettings` is the union the config file's ``[[channels]]`` entries are validated
with; its ``type`` key picks the model, which then accepts only that type's keys.
:data:`CHANNEL_TYPES` maps each type name to its model and builder, and :func:`build_channel` makes
the channel of one entry.

A new channel is one module (the channel, and its settings model: a subclass of
:class:`~alert_channels.settings.BaseChannelSettings` with ``type: Literal["<name>"]``, its own
keys and a ``build`` method) plus its model in :data:`ChannelSettings` below.

>>> import httpx
>>> from pydantic import TypeAdapter
>>> entry = {"name": "ops", "type": "webhook", "url": "https://example.com/hook/s3cr3t"}
>>> settings = TypeAdapter(ChannelSettings).validate_python(entry)
>>> type(settings).__name__, settings.url
('WebhookSettings', SecretStr('**********'))
>>> build_channel(settings, httpx.AsyncClient(), resend_interval_seconds=3600.0)
WebhookChannel(name='ops', url='https://example.com/<redacted>', signed=False)
>>> sorted(CHANNEL_TYPES)
['alertmanager', 'console', 'pagerduty', 'slack', 'webhook']
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, NamedTuple, Protocol, get_args

import httpx
from pydantic import Field

from alert_channels.alertmanager import AlertmanagerSettings
from alert_channels.base import Channel
from alert_channels.console import ConsoleSettings
from alert_channels.pagerduty import PagerDutySettings
from alert_channels.settings import BaseChannelSettings
from alert_channels.slack import SlackSettings
from alert_channels.webhook import WebhookSettings

__all__ = ["CHANNEL_TYPES", "ChannelBuilder", "ChannelKind", "ChannelSettings", "build_channel"]

#: One ``[[channels]]`` entry: the settings model its ``type`` names. One line per channel type.
ChannelSettings = Annotated[
    AlertmanagerSettings | ConsoleSettings | PagerDutySettings | SlackSettings | WebhookSettings,
    Field(discriminator="type"),
]


class ChannelBuilder(Protocol):
    """Makes a channel from its settings: a settings model's ``build``, called on the class."""

    def __call__(
        self, settings: Any, http: httpx.AsyncClient, /, *, resend_interval_seconds: float
    ) -> Channel: ...


class ChannelKind(NamedTuple):
    """A channel type: its settings model and how to build the channel from them."""

    settings: type[BaseChannelSettings]
    build: ChannelBuilder


def _type_name(model: type[BaseChannelSettings]) -> str:
    (name,) = get_args(model.model_fields["type"].annotation)  # Literal["<name>"]
    return str(name)


def _kinds() -> Mapping[str, ChannelKind]:
    (union, _discriminator) = get_args(ChannelSettings)
    kinds = {_type_name(model): ChannelKind(model, model.build) for model in get_args(union)}
    return MappingProxyType(dict(sorted(kinds.items())))


#: Every channel type by name (sorted), derived from :data:`ChannelSettings`.
CHANNEL_TYPES: Mapping[str, ChannelKind] = _kinds()


def build_channel(
    settings: ChannelSettings, http: httpx.AsyncClient, *, resend_interval_seconds: float
) -> Channel:
    """The channel of one validated ``[[channels]]`` entry.

    Parameters
    ----------
    settings
        The entry, validated with :data:`ChannelSettings`.
    http
        The HTTP client the channels share; the channels do not close it.
    resend_interval_seconds
        How often firing alerts are notified again (the routing ``repeat_interval``): an
        Alertmanager channel keeps its alerts alive at least that long.

    Raises
    ------
    KeyError
        If ``settings.type`` is not a registered channel type.
    ValueError
        If a value is unusable although valid for the model (see each model's ``build``).
    """
    kind = CHANNEL_TYPES[settings.type]
    return kind.build(settings, http, resend_interval_seconds=resend_interval_seconds)
