"""Config models of notification routing, silences and inhibition (TOML ``[routing]``,
``[[routing.routes]]``, ``[[silences]]`` and ``[[inhibit_rules]]``).

Like every section of :mod:`engine.config`: frozen, unknown keys are errors, durations are floats in
seconds with a ``_seconds`` suffix. Matchers are strings in Alertmanager's syntax (see
:mod:`engine.notify.matchers`), checked here so a bad one is reported with its key path, e.g.
``routing.routes[0].matchers[1]: bad matcher 'service~api': ...``. Validators phrase cross-field
problems as ``<key>: <problem>``, which the config loader turns into a key path.

.. code-block:: toml

    [routing]
    group_by = ["service"]          # one notification per service and channel at a time
    group_wait_seconds = 10
    group_interval_seconds = 60
    repeat_interval_seconds = 3600

    [[routing.routes]]              # first matching route wins unless it has continue = true
    matchers = ['severity="critical"']
    channels = ["pagerduty", "slack"]

    [[routing.routes]]              # routes nest; a child inherits what it leaves out
    matchers = ['team="db"']
    channels = ["db-slack"]
    group_wait_seconds = "30s"      # every *_seconds key also takes Go-style durations

    [[routing.routes.routes]]       # critical db alerts also page the db on-call
    matchers = ['severity="critical"']
    channels = ["db-pager", "db-slack"]

    [[silences]]
    matchers = ['service="batch"']
    starts_at = 2024-05-01T20:00:00Z
    ends_at = "2024-05-01T22:00:00Z"
    created_by = "ops"
    comment = "nightly reindex"

    [[inhibit_rules]]
    source_matchers = ['severity="critical"']
    target_matchers = ['severity="warning"']
    equal = ["service"]

>>> RoutingSettings().group_by, RoutingSettings().group_wait_seconds
(('service',), 10.0)
>>> RouteSettings.model_validate({"matchers": ["env=prod"], "channels": ["ops"], "continue": True})
... # doctest: +ELLIPSIS
RouteSettings(matchers=('env=prod',), channels=('ops',), continue_=True, group_by=None, ...)
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from engine.model.durations import seconds_or_duration
from engine.notify.matchers import Matcher, parse_matcher

__all__ = [
    "GROUP_BY_ALL",
    "InhibitRuleSettings",
    "RouteSettings",
    "RoutingSettings",
    "SilenceSettings",
    "parse_time",
]

#: ``group_by = ["..."]``: group by every label, i.e. one group per alert.
GROUP_BY_ALL = "..."

_LABEL_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _durations(cls, value: Any, info: ValidationInfo) -> Any:
        """Every ``*_seconds`` key also takes Go-style text ("5m", "1h30m", "500ms")."""
        name = info.field_name or ""
        return seconds_or_duration(value) if name.endswith("_seconds") else value


def _check_matcher(text: str) -> str:
    parse_matcher(text)  # raises "bad matcher '<text>': <problem>"
    return text


def _check_label_name(name: str) -> str:
    if not _LABEL_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a label name")
    return name


def _check_group_label(name: str) -> str:
    return name if name == GROUP_BY_ALL else _check_label_name(name)


def _check_group_by(names: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if names is None:
        return None
    if GROUP_BY_ALL in names and len(names) > 1:
        raise ValueError(f"{GROUP_BY_ALL!r} (group by every label) must be the only entry")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate label names in {list(names)!r}")
    return names


def _check_channel_names(names: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if names is not None and len(set(names)) != len(names):
        raise ValueError(f"duplicate channel names in {list(names)!r}")
    return names


def _non_empty_matchers(texts: tuple[str, ...]) -> tuple[str, ...]:
    if not texts:
        raise ValueError("needs at least one matcher")
    return texts


def parse_time(value: Any) -> float:
    """Epoch seconds from a TOML datetime, an ISO 8601 string or a number of epoch seconds.

    Times without a timezone are refused: they would mean something different on every host.

    >>> parse_time("2023-11-14T22:13:20Z"), parse_time(1700000000)
    (1700000000.0, 1700000000.0)
    >>> parse_time("2023-11-14T22:13:20")
    Traceback (most recent call last):
    ...
    ValueError: time '2023-11-14T22:13:20' has no timezone (add Z or an offset such as +02:00)
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a time, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"epoch seconds must be finite and >= 0, got {value!r}")
        return seconds
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"{value!r} is not an ISO 8601 time such as 2024-05-01T20:00:00Z"
            ) from None
    elif isinstance(value, datetime):
        moment = value
    else:
        raise ValueError(f"expected an ISO 8601 time or epoch seconds, got {value!r}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        shown = repr(value) if isinstance(value, str) else moment.isoformat()
        raise ValueError(f"time {shown} has no timezone (add Z or an offset such as +02:00)")
    return moment.timestamp()


def _parse_time_field(value: Any) -> Any:
    return parse_time(value)


MatcherText = Annotated[str, AfterValidator(_check_matcher)]
LabelName = Annotated[str, AfterValidator(_check_label_name)]
GroupLabel = Annotated[str, AfterValidator(_check_group_label)]
ChannelName = Annotated[str, Field(min_length=1)]
EpochSeconds = Annotated[float, BeforeValidator(_parse_time_field)]


class RouteSettings(_Section):
    """A child route (TOML ``[[routing.routes]]``): where alerts matching ``matchers`` go.

    Routes are tried in order; the first whose matchers all match takes the alert, unless it has
    ``continue = true``, in which case the following routes are tried too. An alert no route takes
    goes to its parent route (in the end the root route, ``[routing]``). Routes nest as in
    Alertmanager (``[[routing.routes.routes]]``): a route whose own child routes do not take an
    alert takes it itself. Settings left out (``None``) are inherited from the parent route,
    ``channels`` included (Alertmanager's receiver inheritance).

    Attributes
    ----------
    matchers
        Alertmanager matchers on the alert's labels (``alertname`` = series name, ``detector``,
        ``severity`` and the series labels); none matches every alert.
    channels
        Names of the channels to notify; ``None`` (left out) inherits the parent's. An empty list
        drops the matched alerts on purpose.
    continue_
        TOML key ``continue``: keep trying the following routes after this one matched.
    group_by
        Labels whose values define a group (one notification per group); ``["..."]`` groups by
        every label, i.e. one group per alert.
    group_wait_seconds
        How long a new group waits for more alerts before its first notification (>= 0).
    group_interval_seconds
        How long a group waits before notifying about alerts added or changed since (> 0).
    repeat_interval_seconds
        How long before a notification that is still true is sent again (> 0).
    routes
        Child routes of this route, tried in order as above (any depth).
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True
    )

    matchers: tuple[MatcherText, ...] = ()
    channels: Annotated[tuple[ChannelName, ...] | None, AfterValidator(_check_channel_names)] = None
    continue_: bool = Field(False, alias="continue")
    group_by: Annotated[tuple[GroupLabel, ...] | None, AfterValidator(_check_group_by)] = None
    group_wait_seconds: float | None = Field(None, ge=0)
    group_interval_seconds: float | None = Field(None, gt=0)
    repeat_interval_seconds: float | None = Field(None, gt=0)
    routes: tuple[RouteSettings, ...] = ()

    def parsed_matchers(self) -> tuple[Matcher, ...]:
        """The matchers, parsed."""
        return tuple(parse_matcher(m) for m in self.matchers)


class RoutingSettings(_Section):
    """The root route and the notification pipeline's defaults (TOML ``[routing]``).

    The defaults are Alertmanager's model with shorter waits, because Kestrel's detectors already
    debounce (warm-up, hysteresis, windows):

    - ``group_by = ["service"]``: an incident in one service (many series and detectors firing at
      once) becomes one notification per channel, not one per series.
    - ``group_wait_seconds = 10``: long enough to collect a storm that comes out of one window
      close or one batch of events, short enough to page quickly (Alertmanager: 30 s).
    - ``group_interval_seconds = 60``: the window size; alerts joining a notified group are sent
      at most a minute later (Alertmanager: 5 min).
    - ``repeat_interval_seconds = 3600``: an unchanged firing group is re-sent hourly, as the
      engine's ``alerts.repeat_interval_seconds`` (Alertmanager: 4 h).

    Attributes
    ----------
    channels
        Channels of the root route; ``None`` (the default) means every configured channel.
    group_by, group_wait_seconds, group_interval_seconds, repeat_interval_seconds
        As in :class:`RouteSettings`; here they are the defaults child routes inherit.
    routes
        Child routes, tried in order; they may have child routes of their own.
    flap_window_seconds
        Window over which state changes of one alert are counted (> 0).
    flap_threshold
        Changes (firing or resolved) within the window that make an alert flapping: it is then
        notified once as flapping and held until stable for a whole window. 0 turns it off;
        otherwise >= 2.
    external_url
        Link back to Kestrel shown in notifications.
    """

    channels: Annotated[tuple[ChannelName, ...] | None, AfterValidator(_check_channel_names)] = None
    group_by: Annotated[tuple[GroupLabel, ...], AfterValidator(_check_group_by)] = ("service",)
    group_wait_seconds: float = Field(10.0, ge=0)
    group_interval_seconds: float = Field(60.0, gt=0)
    repeat_interval_seconds: float = Field(3600.0, gt=0)
    routes: tuple[RouteSettings, ...] = ()
    flap_window_seconds: float = Field(900.0, gt=0)
    flap_threshold: int = Field(4, ge=0)
    external_url: str | None = None

    @model_validator(mode="after")
    def _check_threshold(self) -> RoutingSettings:
        if self.flap_threshold == 1:
            raise ValueError(
                "flap_threshold: must be 0 (off) or >= 2 (1 would make every alert flapping)"
            )
        return self

    def channel_problems(self, known: Collection[str]) -> list[str]:
        """Channel names that are not configured, as ``routing.<key path>: <problem>`` lines.

        >>> RoutingSettings.model_validate(
        ...     {"routes": [{"channels": ["ops", "pager"]}]}
        ... ).channel_problems(["ops"])
        ["routing.routes[0].channels[1]: unknown channel 'pager' (configured: ops)"]
        """
        shown = ", ".join(sorted(known)) or "none"
        problems = []
        lists: list[tuple[str, tuple[str, ...]]] = [("routing.channels", self.channels or ())]
        pending = [(f"routing.routes[{i}]", r) for i, r in enumerate(self.routes)]
        while pending:
            path, route = pending.pop(0)
            lists.append((f"{path}.channels", route.channels or ()))
            pending += [(f"{path}.routes[{i}]", r) for i, r in enumerate(route.routes)]
        for path, names in lists:
            for j, name in enumerate(names):
                if name not in known:
                    problems.append(f"{path}[{j}]: unknown channel {name!r} (configured: {shown})")
        return problems


class SilenceSettings(_Section):
    """A silence defined in the config file (TOML ``[[silences]]``).

    Alerts matching every matcher are not notified between ``starts_at`` and ``ends_at``.

    Attributes
    ----------
    matchers
        At least one, and not all of them may match the empty string (a silence must not match
        every alert by accident).
    starts_at, ends_at
        A TOML datetime, an ISO 8601 string with a timezone, or epoch seconds; stored as epoch
        seconds. ``starts_at`` defaults to 0 (already started); ``ends_at`` must be later.
    created_by
        Who made it.
    comment
        Why.
    """

    matchers: Annotated[tuple[MatcherText, ...], AfterValidator(_non_empty_matchers)]
    starts_at: EpochSeconds = 0.0
    ends_at: EpochSeconds
    created_by: str = Field(min_length=1)
    comment: str = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> SilenceSettings:
        if not self.ends_at > self.starts_at:
            raise ValueError("ends_at: must be after starts_at")
        if all(m.matches({}) for m in self.parsed_matchers()):
            raise ValueError(
                "matchers: at least one matcher must not match the empty string, "
                "or the silence would match every alert"
            )
        return self

    def parsed_matchers(self) -> tuple[Matcher, ...]:
        """The matchers, parsed."""
        return tuple(parse_matcher(m) for m in self.matchers)


class InhibitRuleSettings(_Section):
    """An inhibition rule (TOML ``[[inhibit_rules]]``).

    While an alert matching ``source_matchers`` fires, alerts matching ``target_matchers`` that have
    the same value as it for every label in ``equal`` (a missing label being the empty string) are
    not notified.
    """

    source_matchers: Annotated[tuple[MatcherText, ...], AfterValidator(_non_empty_matchers)]
    target_matchers: Annotated[tuple[MatcherText, ...], AfterValidator(_non_empty_matchers)]
    equal: tuple[LabelName, ...] = ()

    def parsed_source_matchers(self) -> tuple[Matcher, ...]:
        """The source matchers, parsed."""
        return tuple(parse_matcher(m) for m in self.source_matchers)

    def parsed_target_matchers(self) -> tuple[Matcher, ...]:
        """The target matchers, parsed."""
        return tuple(parse_matcher(m) for m in self.target_matchers)
