"""[[overrides]] labels and annotations, and [alerts] summary_template, on alert transitions."""

from __future__ import annotations

from typing import Any

import pytest
from msgspec.structs import replace

from engine.config import ConfigError, parse_config
from engine.core.labels import AlertDecorator
from engine.core.pipeline import Pipeline
from engine.model.alert import Alert, AlertStatus, Severity, alert_labels
from engine.model.events import MetricSample
from engine.notify.routes import Route


def config(data: dict[str, Any]) -> Any:
    return parse_config(data, "cfg.toml", {})


def alert(series: str = "db_latency_ms", **labels: str) -> Alert:
    return Alert(
        "438fe56f6f6f643b",
        AlertStatus.FIRING,
        Severity.WARNING,
        series,
        labels or {"host": "db1"},
        "zscore",
        95.0,
        12.0,
        9.0,
        1700000000.0,
        None,
        "built-in summary",
    )


OVERRIDES = [
    {"match": "db_*", "labels": {"team": "db"}, "annotations": {"runbook_url": "https://rb/db"}},
    {
        "match": "db_latency_ms{host=db1}",
        "labels": {"team": "dba", "tier": "1"},
        "annotations": {"dashboard": "https://grafana/d/db"},
    },
    {"match": "web_*", "labels": {"team": "web"}},
]


def test_matching_overrides_add_labels_and_annotations_later_ones_win() -> None:
    decorate = AlertDecorator.for_config(config({"overrides": OVERRIDES}))
    got = decorate(alert())
    print(got.labels, got.annotations)
    assert dict(got.labels) == {"team": "dba", "tier": "1", "host": "db1"}
    assert dict(got.annotations) == {
        "runbook_url": "https://rb/db",
        "dashboard": "https://grafana/d/db",
    }
    assert got.fingerprint == alert().fingerprint  # identity unchanged
    other = decorate(alert(host="db2"))
    assert dict(other.labels) == {"team": "db", "host": "db2"}
    untouched = alert("cpu")
    assert decorate(untouched) is untouched


def test_series_labels_and_own_annotations_win() -> None:
    decorate = AlertDecorator.for_config(
        config({"overrides": [{"match": "*", "labels": {"host": "x"}, "annotations": {"t": "o"}}]})
    )
    got = decorate(replace(alert(), annotations={"t": "mine"}))
    assert got.labels["host"] == "db1" and got.annotations["t"] == "mine"


def test_routes_match_override_labels() -> None:
    cfg = config(
        {
            "overrides": OVERRIDES,
            "channels": [
                {"name": "ops", "type": "console"},
                {"name": "db-pager", "type": "console"},
                {"name": "web-chat", "type": "console"},
            ],
            "routing": {
                "channels": ["ops"],
                "routes": [
                    {"matchers": ['team=~"db|dba"'], "channels": ["db-pager"]},
                    {"matchers": ['team="web"'], "channels": ["web-chat"]},
                ],
            },
        }
    )
    root = Route.from_settings(cfg.routing, [c.name for c in cfg.channels])
    decorate = AlertDecorator.for_config(cfg)
    routed = {
        series: [m.channels for m in root.match(alert_labels(decorate(alert(series))))]
        for series in ("db_latency_ms", "web_errors", "cpu")
    }
    print(routed)
    assert routed == {
        "db_latency_ms": [("db-pager",)],
        "web_errors": [("web-chat",)],
        "cpu": [("ops",)],
    }


def test_summary_template_writes_the_summary() -> None:
    cfg = config(
        {
            "overrides": OVERRIDES,
            "alerts": {
                "summary_template": (
                    "[{{ labels.team }}] {{ series }} on {{ labels.host }}: "
                    "{{ value|number }} (expected {{ expected|number }}) "
                    "{{ annotations.dashboard }}"
                )
            },
        }
    )
    got = AlertDecorator.for_config(cfg)(alert())
    assert got.summary == "[dba] db_latency_ms on db1: 95 (expected 12) https://grafana/d/db"


def test_the_pipeline_carries_the_decorator_of_its_config() -> None:
    cfg = config(
        {
            "overrides": [{"match": "cpu", "labels": {"team": "infra"}}],
            "series": {"metric_detectors": ["zscore"]},
            "detectors": {"zscore": {"warmup": 10, "fire_after": 1}},
        }
    )
    p = Pipeline(cfg)
    out: list[Alert] = []
    for i, v in enumerate([10.0, 10.2, 9.9, 10.1, 10.0, 9.8, 10.2, 10.1, 9.9, 10.0, 10.0, 80.0]):
        p.metric(MetricSample("cpu", v, 1700000000.0 + i, {}), 0, out)
    assert [a.status for a in out] == [AlertStatus.FIRING]
    assert "team" not in out[0].labels  # the pipeline's own transition
    assert p.decorate(out[0]).labels == {"team": "infra"}  # what ingest records


def test_bad_label_names_are_config_errors() -> None:
    with pytest.raises(ConfigError) as info:
        config({"overrides": [{"match": "x", "labels": {"te-am": "db"}}]})
    print(info.value.problems)
    assert info.value.problems[0].startswith("overrides[0].labels.te-am")
    assert "'te-am' is not a label name" in info.value.problems[0]


@pytest.mark.parametrize("name", ["alertname", "detector", "severity"])
def test_labels_kestrel_sets_itself_cannot_be_overridden(name: str) -> None:
    with pytest.raises(ConfigError) as info:
        config({"overrides": [{"match": "x", "labels": {name: "v"}}]})
    print(info.value.problems)
    assert f"{name!r} is set by Kestrel itself" in info.value.problems[0]
