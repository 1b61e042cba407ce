"""Alertmanager API v2 views: silence filters and the alerts query (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from engine.model.alert import Alert, AlertStatus, Severity, fingerprint
from engine.notify.api_v2 import AlertQuery, alert_views, parse_filter, silence_matches_filter
from engine.notify.grouping import AggregationGroup
from engine.notify.matchers import parse_matchers
from engine.notify.silences import Silence


def _silence(*matchers: str) -> Silence:
    return Silence("s", parse_matchers(matchers), 0.0, 10.0, "ops", "x")


@pytest.mark.parametrize(
    ("silence", "filter_", "expected"),
    [
        (("service=api",), 'service="api"', True),
        (("service=api",), 'service=~"a.*"', True),
        (("service=api",), 'service!="api"', False),
        (("service=api",), 'team=""', True),  # no team matcher: an empty value passes
        (("service=api",), 'team!="x"', True),
        (("service=api", "team=a"), 'team!=""', True),
        (("service=api", "team=a"), 'team=""', False),
        (("service=api",), 'team="a"', False),
    ],
)
def test_silence_filter_follows_alertmanager(
    silence: tuple[str, ...], filter_: str, expected: bool
) -> None:
    assert silence_matches_filter(_silence(*silence), parse_filter([filter_])) is expected


def test_bad_filters_and_queries_are_refused_with_their_name() -> None:
    with pytest.raises(ValueError, match="filter: bad matcher"):
        parse_filter(["=x"])
    with pytest.raises(ValueError, match="active: expected true or false"):
        AlertQuery.from_params({"active": ["yes"]})
    with pytest.raises(ValueError, match="receiver"):
        AlertQuery.from_params({"receiver": ["("]})


def _alert(service: str, status: AlertStatus = AlertStatus.FIRING) -> Alert:
    labels = {"service": service}
    return Alert(
        fingerprint(f"{service}_latency", labels, "zscore"),
        status,
        Severity.WARNING,
        f"{service}_latency",
        labels,
        "zscore",
        9.0,
        1.0,
        5.0,
        100.0,
        None if status is AlertStatus.FIRING else 160.0,
        "s",
    )


def _group(receiver: str, *alerts: Alert) -> AggregationGroup:
    group = AggregationGroup(receiver, "k", "r", {}, 1.0, 1.0, 0.0, 0.0)
    for alert in alerts:
        group.insert(alert)
    return group


def _views(query: AlertQuery) -> list[dict[str, Any]]:
    loud, muted, held, gone = (
        _alert("loud"),
        _alert("muted"),
        _alert("held"),
        _alert("gone", AlertStatus.RESOLVED),
    )
    groups = [_group("ops", loud, muted, held, gone), _group("pager", loud)]
    return alert_views(
        groups,
        silenced_by=lambda labels: ["s1"] if labels["service"] == "muted" else [],
        inhibited_by=lambda labels, fp: "f0" if labels["service"] == "held" else None,
        annotations=lambda alert: {"summary": alert.summary},
        query=query,
        now=200.0,
    )


def test_alert_views_show_firing_alerts_with_their_state_and_receivers() -> None:
    views = {v["labels"]["service"]: v for v in _views(AlertQuery())}
    assert sorted(views) == ["held", "loud", "muted"]  # the resolved one is not shown
    assert views["loud"]["receivers"] == [{"name": "ops"}, {"name": "pager"}]
    assert views["loud"]["status"] == {"state": "active", "silencedBy": [], "inhibitedBy": []}
    assert views["muted"]["status"]["silencedBy"] == ["s1"]
    assert views["held"]["status"] == {
        "state": "suppressed",
        "silencedBy": [],
        "inhibitedBy": ["f0"],
    }
    assert views["loud"]["startsAt"] == "1970-01-01T00:01:40Z"
    assert views["loud"]["labels"]["alertname"] == "loud_latency"


@pytest.mark.parametrize(
    ("params", "services"),
    [
        ({"silenced": ["false"], "inhibited": ["false"]}, ["loud"]),
        ({"active": ["false"], "inhibited": ["false"]}, ["muted"]),
        ({"active": ["false"], "silenced": ["false"]}, ["held"]),
        ({"receiver": ["pag.*"]}, ["loud"]),
        ({"receiver": ["pag"]}, []),  # anchored
        ({"filter": ['service=~"m.*|h.*"']}, ["held", "muted"]),
    ],
)
def test_the_alerts_query_selects_by_state_receiver_and_labels(
    params: dict[str, list[str]], services: list[str]
) -> None:
    views = _views(AlertQuery.from_params(params))
    assert sorted(v["labels"]["service"] for v in views) == services
