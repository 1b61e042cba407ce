"""engine.notify.routes: first match, continue, default route, inheritance, group keys."""

from __future__ import annotations

from typing import Any

import pytest

from engine.notify.routes import Route, RouteMatch, group_key
from engine.notify.settings import RoutingSettings

CHANNELS = ["console", "slack", "pager"]


def tree(**routing: Any) -> Route:
    return Route.from_settings(RoutingSettings.model_validate(routing), CHANNELS)


ROUTES = [
    {"matchers": ['severity="critical"'], "channels": ["pager"], "continue": True},
    {"matchers": ['service=~"api|web"'], "channels": ["slack"], "group_by": ["alertname"]},
    {"matchers": ['service="api"'], "channels": ["console"]},  # shadowed by the one above
    {"matchers": ['service="batch"'], "channels": [], "repeat_interval_seconds": 60},
]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"service": "api", "severity": "warning"}, [("routes[1]", ("slack",))]),
        ({"service": "web", "severity": "info"}, [("routes[1]", ("slack",))]),
        (
            {"service": "api", "severity": "critical"},
            [("routes[0]", ("pager",)), ("routes[1]", ("slack",))],
        ),
        ({"service": "db", "severity": "critical"}, [("routes[0]", ("pager",))]),
        ({"service": "db", "severity": "warning"}, [("root", ("console", "slack", "pager"))]),
        ({}, [("root", ("console", "slack", "pager"))]),
        ({"service": "batch"}, [("routes[3]", ())]),
    ],
)
def test_first_match_continue_and_default(
    labels: dict[str, str], expected: list[tuple[str, tuple[str, ...]]]
) -> None:
    got = tree(routes=ROUTES).match(labels)
    assert [(m.route_id, m.channels) for m in got] == expected


def test_children_inherit_unset_settings() -> None:
    root = tree(
        group_by=["service", "env"],
        group_wait_seconds=5,
        group_interval_seconds=30,
        repeat_interval_seconds=600,
        routes=ROUTES,
    )
    by_id = {m.route_id: m for m in root.match({"service": "api", "severity": "critical"})}
    assert by_id["routes[0]"] == RouteMatch(
        "routes[0]", ("pager",), ("service", "env"), False, 5.0, 30.0, 600.0
    )
    assert by_id["routes[1]"].group_by == ("alertname",)
    batch = root.find("routes[3]")
    assert batch is not None and batch.repeat_interval_seconds == 60.0
    assert batch.group_wait_seconds == 5.0
    assert root.find("routes[9]") is None


def test_root_channels_default_to_all_and_can_be_narrowed() -> None:
    assert tree().match({})[0].channels == tuple(CHANNELS)
    assert tree(channels=["slack"]).match({})[0].channels == ("slack",)


def test_unknown_channels_are_an_error_naming_them() -> None:
    with pytest.raises(ValueError, match="unknown channel") as info:
        tree(channels=["slak"], routes=[{"channels": ["pager", "sms"]}])
    message = str(info.value)
    assert "routing.channels[0]: unknown channel 'slak'" in message
    assert "routing.routes[0].channels[1]: unknown channel 'sms'" in message
    assert "pager'" not in message


def test_group_labels_and_group_by_all() -> None:
    labels = {"alertname": "cpu", "service": "api", "host": "a", "severity": "warning"}
    (m,) = tree(group_by=["service", "region"]).match(labels)
    assert m.group_labels(labels) == {"service": "api"}  # missing labels are left out
    (m,) = tree(group_by=["..."]).match(labels)
    assert m.group_by_all and m.group_labels(labels) == dict(sorted(labels.items()))
    (m,) = tree(routes=[{"channels": ["pager"], "group_by": ["..."]}]).match(labels)
    assert m.group_by_all


def test_group_key_is_stable_and_unambiguous() -> None:
    assert group_key("root", {"service": "api", "env": "prod"}) == (
        'root:{env="prod",service="api"}'
    )
    assert group_key("root", {"b": "1", "a": "2"}) == group_key("root", {"a": "2", "b": "1"})
    assert group_key("root", {}) == "root:{}"
    # A value containing the separators cannot imitate another group.
    assert group_key("root", {"a": 'x",b="y'}) != group_key("root", {"a": "x", "b": "y"})
    assert group_key("routes[0]", {"a": "x"}) != group_key("root", {"a": "x"})


# -- nested routes (Alertmanager's tree) ---------------------------------------------------------

NESTED = [
    {
        "matchers": ['team="db"'],
        "channels": ["slack"],
        "group_by": ["alertname"],
        "group_wait_seconds": "30s",
        "routes": [
            {"matchers": ['severity="critical"'], "channels": ["pager"], "continue": True},
            {"matchers": ['env="prod"'], "repeat_interval_seconds": "15m"},  # inherits slack
            {"matchers": ['env="test"'], "channels": []},
        ],
    },
    {"matchers": ['team="web"'], "routes": [{"matchers": ['severity="critical"']}]},
]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        # The child routes of routes[0] do not match: routes[0] itself takes the alert.
        ({"team": "db", "env": "dev"}, [("routes[0]", ("slack",))]),
        # continue = true in a nested route: the next sibling is tried too.
        (
            {"team": "db", "env": "prod", "severity": "critical"},
            [("routes[0].routes[0]", ("pager",)), ("routes[0].routes[1]", ("slack",))],
        ),
        ({"team": "db", "env": "prod"}, [("routes[0].routes[1]", ("slack",))]),
        ({"team": "db", "env": "test"}, [("routes[0].routes[2]", ())]),
        # No channels anywhere on the path: the root's (every channel).
        (
            {"team": "web", "severity": "critical"},
            [("routes[1].routes[0]", ("console", "slack", "pager"))],
        ),
        ({"team": "ops"}, [("root", ("console", "slack", "pager"))]),
    ],
)
def test_nested_routes_match_depth_first(
    labels: dict[str, str], expected: list[tuple[str, tuple[str, ...]]]
) -> None:
    got = tree(channels=None, routes=NESTED).match(labels)
    print(labels, [(m.route_id, m.channels) for m in got])
    assert [(m.route_id, m.channels) for m in got] == expected


def test_nested_routes_inherit_from_their_parent_not_the_root() -> None:
    root = tree(
        group_by=["service"], group_wait_seconds=5, repeat_interval_seconds=600, routes=NESTED
    )
    (m,) = root.match({"team": "db", "env": "prod"})
    # group_by and group_wait from routes[0]; repeat interval its own; interval from the root.
    assert m == RouteMatch(
        "routes[0].routes[1]", ("slack",), ("alertname",), False, 30.0, 60.0, 900.0
    )
    assert root.find("routes[0].routes[1]") == m
    (w,) = root.match({"team": "web", "severity": "critical"})
    assert (w.group_by, w.group_wait_seconds, w.repeat_interval_seconds) == (
        ("service",),
        5.0,
        600.0,
    )


def test_unknown_channels_in_nested_routes_name_their_path() -> None:
    with pytest.raises(ValueError, match=r"routing\.routes\[0\]\.routes\[1\]\.channels\[0\]: "):
        tree(routes=[{"matchers": ["a=b"], "routes": [{}, {"channels": ["sms"]}]}])


def test_group_keys_of_nested_routes_differ_from_their_parents() -> None:
    root = tree(routes=NESTED)
    (child,) = root.match({"team": "db", "env": "prod", "alertname": "cpu"})
    (parent,) = root.match({"team": "db", "env": "dev", "alertname": "cpu"})
    keys = {group_key(m.route_id, m.group_labels({"alertname": "cpu"})) for m in (child, parent)}
    assert keys == {'routes[0].routes[1]:{alertname="cpu"}', 'routes[0]:{alertname="cpu"}'}
