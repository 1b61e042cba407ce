"""engine.notify.inhibit: equal labels, two-sided rules, no self-inhibition, resolution, state."""

from __future__ import annotations

import json

from engine.model.alert import Alert, AlertStatus, Severity
from engine.notify.inhibit import Inhibitor, InhibitRule
from engine.notify.matchers import parse_matchers
from engine.notify.settings import InhibitRuleSettings

CRIT_MUTES_WARN = InhibitRuleSettings(
    source_matchers=('severity="critical"',),
    target_matchers=('severity="warning"',),
    equal=("service",),
)


def alert(
    fp: str,
    severity: Severity,
    service: str,
    status: AlertStatus = AlertStatus.FIRING,
    started_at: float = 100.0,
) -> Alert:
    ended_at = None if status is AlertStatus.FIRING else started_at + 60
    labels = {"service": service}
    return Alert(
        fp,
        status,
        severity,
        "latency_ms",
        labels,
        "zscore",
        1.0,
        0.0,
        5.0,
        started_at,
        ended_at,
        "x",
    )


def labels(severity: str, service: str) -> dict[str, str]:
    return {"alertname": "latency_ms", "severity": severity, "service": service}


def test_source_mutes_targets_with_equal_labels_only() -> None:
    inh = Inhibitor([CRIT_MUTES_WARN])
    inh.observe(alert("src", Severity.CRITICAL, "api"))
    assert inh.is_inhibited(labels("warning", "api"), "t1")
    assert inh.inhibited_by(labels("warning", "api"), "t1") == "src"
    assert not inh.is_inhibited(labels("warning", "web"), "t2")  # other service
    assert not inh.is_inhibited(labels("info", "api"), "t3")  # not a target
    assert not inh.is_inhibited(labels("critical", "api"), "t4")  # not a target


def test_missing_equal_labels_count_as_empty() -> None:
    inh = Inhibitor([CRIT_MUTES_WARN])
    inh.observe_labels("src", {"severity": "critical"}, 1.0, firing=True)
    assert inh.is_inhibited({"severity": "warning"}, "t")
    assert inh.is_inhibited({"severity": "warning", "service": ""}, "t")
    assert not inh.is_inhibited({"severity": "warning", "service": "api"}, "t")


def test_resolved_source_stops_inhibiting() -> None:
    inh = Inhibitor([CRIT_MUTES_WARN])
    inh.observe(alert("src", Severity.CRITICAL, "api"))
    inh.observe(alert("src", Severity.CRITICAL, "api", AlertStatus.RESOLVED))
    assert not inh.is_inhibited(labels("warning", "api"), "t1")
    assert len(inh) == 0
    # A new incident of the source inhibits again.
    inh.observe(alert("src", Severity.CRITICAL, "api", started_at=500.0))
    assert inh.is_inhibited(labels("warning", "api"), "t1")


def test_an_alert_does_not_inhibit_itself_nor_its_peers_in_a_two_sided_rule() -> None:
    # Any service alert mutes the others of its service: both sides match every alert.
    everything = parse_matchers(["service=~.+"])
    rule = InhibitRule(everything, everything, ("service",))
    inh = Inhibitor([rule])
    inh.observe_labels("a", {"service": "api"}, 1.0, firing=True)
    assert not inh.is_inhibited({"service": "api"}, "a")
    inh.observe_labels("b", {"service": "api"}, 1.0, firing=True)
    assert not inh.is_inhibited({"service": "api"}, "a")
    assert not inh.is_inhibited({"service": "api"}, "b")


def test_two_sided_rule_still_inhibits_by_a_one_sided_source() -> None:
    # Source: critical; target: anything of the service. A critical target is only muted by a
    # critical source that is not itself a target... which every alert is, so only non-targets.
    rule = InhibitRule(parse_matchers(['severity="critical"']), parse_matchers(["service=api"]))
    inh = Inhibitor([rule])
    inh.observe_labels("db", {"severity": "critical", "service": "db"}, 1.0, firing=True)
    assert inh.is_inhibited({"severity": "critical", "service": "api"}, "x")
    assert inh.is_inhibited({"severity": "warning", "service": "api"}, "y")
    inh.observe_labels("db", {"severity": "critical", "service": "db"}, 1.0, firing=False)
    inh.observe_labels("api", {"severity": "critical", "service": "api"}, 1.0, firing=True)
    assert not inh.is_inhibited({"severity": "critical", "service": "api"}, "x")
    assert inh.is_inhibited({"severity": "warning", "service": "api"}, "y")


def test_state_round_trip() -> None:
    inh = Inhibitor([CRIT_MUTES_WARN])
    inh.observe(alert("src", Severity.CRITICAL, "api"))
    inh.observe(alert("w", Severity.WARNING, "web"))
    state = json.loads(json.dumps(inh.to_state()))
    restored = Inhibitor.from_state(state, [CRIT_MUTES_WARN])
    assert restored.to_state() == inh.to_state()
    assert restored.is_inhibited(labels("warning", "api"), "t")
    assert not restored.is_inhibited(labels("warning", "web"), "t")
