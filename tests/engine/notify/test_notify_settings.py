"""engine.notify.settings: the [routing], [[silences]] and [[inhibit_rules]] config models.

Errors are checked as the config loader prints them (``<key.path>: <problem>``), through a root
model shaped like the config file.
"""

from __future__ import annotations

import textwrap
import tomllib
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from engine.config import _format_errors
from engine.notify.settings import (
    InhibitRuleSettings,
    RouteSettings,
    RoutingSettings,
    SilenceSettings,
    parse_time,
)


class _Root(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    routing: RoutingSettings = RoutingSettings()
    silences: tuple[SilenceSettings, ...] = ()
    inhibit_rules: tuple[InhibitRuleSettings, ...] = ()


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        _Root.model_validate(data)
    return _format_errors(info.value.errors(include_url=False), ())


def silence(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "matchers": ['service="api"'],
        "starts_at": "2024-05-01T20:00:00Z",
        "ends_at": "2024-05-01T22:00:00Z",
        "created_by": "ops",
        "comment": "reindex",
    }
    return {**base, **overrides}


def test_defaults() -> None:
    r = RoutingSettings()
    assert r.channels is None
    assert r.group_by == ("service",)
    assert (r.group_wait_seconds, r.group_interval_seconds, r.repeat_interval_seconds) == (
        10.0,
        60.0,
        3600.0,
    )
    assert (r.flap_window_seconds, r.flap_threshold, r.routes, r.external_url) == (
        900.0,
        4,
        (),
        None,
    )


def test_a_full_toml_document() -> None:
    doc = tomllib.loads(
        textwrap.dedent(
            """
            [routing]
            channels = ["slack"]
            group_by = ["service", "env"]
            external_url = "https://kestrel.example/"

            [[routing.routes]]
            matchers = ['severity="critical"']
            channels = ["pagerduty"]
            continue = true
            group_wait_seconds = 0

            [[routing.routes]]
            matchers = ['service=~"batch|etl"']
            channels = []
            group_by = ["..."]

            [[silences]]
            matchers = ['service="batch"']
            starts_at = 2024-05-01T20:00:00Z
            ends_at = "2024-05-01T23:00:00+02:00"
            created_by = "ops"
            comment = "nightly reindex"

            [[inhibit_rules]]
            source_matchers = ['severity="critical"']
            target_matchers = ['severity="warning"']
            equal = ["service"]
            """
        )
    )
    root = _Root.model_validate(doc)
    first, second = root.routing.routes
    assert first.continue_ is True and second.continue_ is False
    assert first.group_wait_seconds == 0 and first.group_by is None
    assert second.channels == () and second.group_by == ("...",)
    (s,) = root.silences
    assert (s.starts_at, s.ends_at) == (1714593600.0, 1714593600.0 + 3600.0)
    (rule,) = root.inhibit_rules
    assert [str(m) for m in rule.parsed_target_matchers()] == ['severity="warning"']


def test_route_continue_alias_and_name() -> None:
    by_alias = RouteSettings.model_validate({"channels": ["a"], "continue": True})
    by_name = RouteSettings.model_validate({"channels": ["a"], "continue_": True})
    assert by_alias == by_name and by_alias.continue_


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"routing": {"routes": [{"channels": ["a"], "matchers": ["a=b", "service~api"]}]}},
            "routing.routes[0].matchers[1]: bad matcher 'service~api': expected an operator "
            "(=, !=, =~ or !~) after the label name",
        ),
        (
            {"routing": {"routes": [{"routes": [{"matchers": ["a=b", "service~api"]}]}]}},
            "routing.routes[0].routes[0].matchers[1]: bad matcher 'service~api': expected an "
            "operator (=, !=, =~ or !~) after the label name",
        ),
        (
            {"routing": {"routes": [{"channels": ["a"], "contineu": True}]}},
            "routing.routes[0].contineu: unknown key",
        ),
        (
            {"routing": {"group_wait_seconds": -1}},
            "routing.group_wait_seconds: must be >= 0, got -1",
        ),
        (
            {"routing": {"group_interval_seconds": 0}},
            "routing.group_interval_seconds: must be > 0, got 0",
        ),
        (
            {"routing": {"routes": [{"channels": ["a"], "repeat_interval_seconds": 0}]}},
            "routing.routes[0].repeat_interval_seconds: must be > 0, got 0",
        ),
        (
            {"routing": {"group_by": ["...", "service"]}},
            "routing.group_by: '...' (group by every label) must be the only entry",
        ),
        ({"routing": {"group_by": ["a-b"]}}, "routing.group_by[0]: 'a-b' is not a label name"),
        (
            {"routing": {"group_by": ["a", "a"]}},
            "routing.group_by: duplicate label names in ['a', 'a']",
        ),
        (
            {"routing": {"channels": ["ops", "ops"]}},
            "routing.channels: duplicate channel names in ['ops', 'ops']",
        ),
        (
            {"routing": {"routes": [{"channels": [""]}]}},
            "routing.routes[0].channels[0]: String should have at least 1 character, got ''",
        ),
        (
            {"routing": {"flap_threshold": 1}},
            "routing.flap_threshold: must be 0 (off) or >= 2 (1 would make every alert flapping)",
        ),
        (
            {"routing": {"flap_window_seconds": 0}},
            "routing.flap_window_seconds: must be > 0, got 0",
        ),
        (
            {"silences": [silence(ends_at="2024-05-01T19:00:00Z")]},
            "silences[0].ends_at: must be after starts_at",
        ),
        (
            {"silences": [silence(), silence(starts_at="2024-05-01T20:00:00")]},
            "silences[1].starts_at: time '2024-05-01T20:00:00' has no timezone "
            "(add Z or an offset such as +02:00)",
        ),
        (
            {"silences": [silence(ends_at="tomorrow")]},
            "silences[0].ends_at: 'tomorrow' is not an ISO 8601 time such as 2024-05-01T20:00:00Z",
        ),
        (
            {"silences": [silence(ends_at=True)]},
            "silences[0].ends_at: expected a time, got True",
        ),
        ({"silences": [silence(matchers=[])]}, "silences[0].matchers: needs at least one matcher"),
        (
            {"silences": [silence(matchers=['env=~".*"'])]},
            "silences[0].matchers: at least one matcher must not match the empty string, "
            "or the silence would match every alert",
        ),
        (
            {"silences": [silence(matchers=["a=b", 'c="'])]},
            "silences[0].matchers[1]: bad matcher 'c=\"': missing closing double quote",
        ),
        (
            {"silences": [silence(comment="")]},
            "silences[0].comment: String should have at least 1 character, got ''",
        ),
        (
            {"silences": [{k: v for k, v in silence().items() if k != "created_by"}]},
            "silences[0].created_by: required key is missing",
        ),
        (
            {"inhibit_rules": [{"source_matchers": [], "target_matchers": ["a=b"]}]},
            "inhibit_rules[0].source_matchers: needs at least one matcher",
        ),
        (
            {"inhibit_rules": [{"source_matchers": ["a=b"], "target_matchers": ["a=~("]}]},
            "inhibit_rules[0].target_matchers[0]: bad matcher 'a=~(': invalid regular "
            "expression '(': missing ), unterminated subpattern at position 0",
        ),
        (
            {
                "inhibit_rules": [
                    {"source_matchers": ["a=b"], "target_matchers": ["c=d"], "equal": ["..."]}
                ]
            },
            "inhibit_rules[0].equal[0]: '...' is not a label name",
        ),
    ],
)
def test_errors_name_the_key_path(data: dict[str, Any], expected: str) -> None:
    assert expected in problems(data)


def test_all_problems_are_reported_at_once() -> None:
    found = problems(
        {
            "routing": {"routes": [{"channels": ["a"], "matchers": ["bad"]}], "group_by": ["-"]},
            "silences": [silence(matchers=["oops"])],
        }
    )
    assert [p.split(":")[0] for p in found] == [
        "routing.group_by[0]",
        "routing.routes[0].matchers[0]",
        "silences[0].matchers[0]",
    ]


def test_channel_problems_name_unknown_channels() -> None:
    routing = RoutingSettings.model_validate(
        {"channels": ["ops", "nope"], "routes": [{"channels": ["ops"]}, {"channels": ["pager"]}]}
    )
    assert routing.channel_problems(["ops", "slack"]) == [
        "routing.channels[1]: unknown channel 'nope' (configured: ops, slack)",
        "routing.routes[1].channels[0]: unknown channel 'pager' (configured: ops, slack)",
    ]
    assert RoutingSettings().channel_problems([]) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2023-11-14T22:13:20Z", 1700000000.0),
        ("2023-11-14T23:13:20+01:00", 1700000000.0),
        ("2023-11-14T22:13:20.5Z", 1700000000.5),
        (1700000000, 1700000000.0),
        (1700000000.25, 1700000000.25),
    ],
)
def test_parse_time(value: Any, expected: float) -> None:
    assert parse_time(value) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (-1, "epoch seconds must be finite and >= 0"),
        (float("nan"), "epoch seconds must be finite and >= 0"),
        (float("inf"), "epoch seconds must be finite and >= 0"),
        ("2023-11-14", "has no timezone"),
        ([], "expected an ISO 8601 time or epoch seconds"),
        (None, "expected an ISO 8601 time or epoch seconds"),
    ],
)
def test_parse_time_refuses(value: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_time(value)


def test_models_are_frozen() -> None:
    r = RoutingSettings()
    with pytest.raises(ValidationError):
        r.group_wait_seconds = 1.0  # type: ignore[misc]
