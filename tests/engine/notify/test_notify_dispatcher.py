"""engine.notify.dispatcher: the whole pipeline, driven by an injected clock.

A small harness ingests alerts at given times, calls ``due`` every second, delivers (acks) what is
due and records what each channel received.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pytest
from msgspec.structs import replace

from engine.model.alert import Alert, AlertStatus, Severity, fingerprint
from engine.model.notification import Notification
from engine.notify.dispatcher import Dispatcher, PendingNotification, build_dispatcher
from engine.notify.matchers import parse_matchers
from engine.notify.settings import InhibitRuleSettings, RoutingSettings, SilenceSettings

T0 = 1_700_000_000.0
F, R = AlertStatus.FIRING, AlertStatus.RESOLVED


def alert(
    series: str = "latency_ms",
    *,
    service: str = "api",
    host: str = "h1",
    severity: Severity = Severity.WARNING,
    started_at: float = T0,
    detector: str = "zscore",
) -> Alert:
    labels = {"service": service, "host": host}
    return Alert(
        fingerprint=fingerprint(series, labels, detector),
        status=F,
        severity=severity,
        series=series,
        labels=labels,
        detector=detector,
        value=950.0,
        expected=float("nan"),
        score=8.5,
        started_at=started_at,
        ended_at=None,
        summary=f"{series} high",
    )


def resolved(a: Alert, at: float) -> Alert:
    return replace(a, status=R, ended_at=at)


@dataclass
class Sent:
    at: float
    notification: Notification

    @property
    def statuses(self) -> dict[str, str]:
        return {a.series + "/" + a.labels["host"]: a.status.value for a in self.notification.alerts}


@dataclass
class Harness:
    dispatcher: Dispatcher
    now: float = T0
    sent: list[Sent] = field(default_factory=list)
    fail: set[str] = field(default_factory=set)  # receivers whose deliveries fail

    def ingest(self, *alerts: Alert, at: float | None = None) -> None:
        if at is not None:
            self.advance(at)
        for a in alerts:
            self.dispatcher.ingest(a, self.now)

    def advance(self, until: float) -> None:
        """Tick once per second up to ``until`` (inclusive), delivering what is due."""
        while self.now < until:
            self.now = min(until, float(int(self.now) + 1))
            self.tick()
        self.tick()

    def tick(self) -> list[PendingNotification]:
        due = self.dispatcher.due(self.now)
        for p in due:
            if p.receiver in self.fail:
                self.dispatcher.nack(p, self.now)
            else:
                self.sent.append(Sent(self.now, p.notification))
                self.dispatcher.ack(p, self.now)
        return due

    def to(self, receiver: str) -> list[Sent]:
        return [s for s in self.sent if s.notification.receiver == receiver]


def harness(
    channels: dict[str, bool] | None = None,
    silences: Iterable[SilenceSettings] = (),
    inhibit_rules: Iterable[InhibitRuleSettings] = (),
    **routing: Any,
) -> Harness:
    d = build_dispatcher(
        RoutingSettings.model_validate(routing),
        channels or {"ops": True},
        silences,
        inhibit_rules,
        id_factory=iter(f"s{i}" for i in range(1000)).__next__,
    )
    return Harness(d)


# -- timing -------------------------------------------------------------------------------------


def test_group_wait_then_group_interval() -> None:
    h = harness()
    a, b, c = alert(host="h1"), alert(host="h2"), alert(host="h3")
    h.ingest(a)
    assert h.dispatcher.next_wakeup(h.now) == T0 + 10
    h.advance(T0 + 9.5)
    assert h.sent == []
    h.ingest(b, at=T0 + 9.9)
    h.advance(T0 + 10)
    assert [(s.at, s.statuses) for s in h.sent] == [
        (T0 + 10, {"latency_ms/h1": "firing", "latency_ms/h2": "firing"})
    ]
    assert h.dispatcher.next_wakeup(h.now) == T0 + 70
    h.ingest(c, at=T0 + 20)
    h.advance(T0 + 69)
    assert len(h.sent) == 1  # a new alert waits for the group interval
    h.advance(T0 + 70)
    assert len(h.sent) == 2 and len(h.sent[1].notification.alerts) == 3
    h.advance(T0 + 300)
    assert len(h.sent) == 2  # nothing new


def test_a_new_group_waits_group_wait_even_when_others_are_old() -> None:
    h = harness()
    h.ingest(alert(service="api"))
    h.advance(T0 + 100)
    h.ingest(alert(service="web"), at=T0 + 100)
    h.advance(T0 + 109)
    assert [s.notification.group_labels for s in h.sent] == [{"service": "api"}]
    h.advance(T0 + 110)
    assert [s.notification.group_labels for s in h.sent][-1] == {"service": "web"}


def test_storm_becomes_a_handful_of_notifications() -> None:
    h = harness({"ops": True, "pager": False})
    alerts = [alert(f"series_{s}", host=f"h{i}") for s in range(50) for i in range(20)]
    assert len({a.fingerprint for a in alerts}) == 1000
    for k, a in enumerate(alerts):  # 1,000 alerts over 12 s: some after the first flush
        h.ingest(a, at=T0 + k * 0.012)
    h.advance(T0 + 600)
    for receiver in ("ops", "pager"):
        got = h.to(receiver)
        assert 1 <= len(got) <= 5
        assert all(len(s.notification.alerts) >= 100 for s in got)
        covered = {a.fingerprint for s in got for a in s.notification.alerts}
        assert covered == {a.fingerprint for a in alerts}
    assert len(h.sent) == 4  # one at group_wait, one for the late ones, per channel


def test_repeat_interval() -> None:
    h = harness(repeat_interval_seconds=300)
    h.ingest(alert())
    h.advance(T0 + 1000)
    assert [s.at - T0 for s in h.sent] == [10, 310, 610, 910]


def test_route_timings_and_channels() -> None:
    h = harness(
        {"ops": True, "pager": True},
        routes=[
            {
                "matchers": ['severity="critical"'],
                "channels": ["pager"],
                "group_wait_seconds": 0,
                "continue": True,
            },
            {"matchers": ['service="api"'], "channels": ["ops"]},
            {"matchers": ['service="batch"'], "channels": []},
        ],
    )
    h.ingest(alert(severity=Severity.CRITICAL), alert(service="batch"))
    h.advance(T0)
    assert [(s.notification.receiver, s.notification.group_key) for s in h.sent] == [
        ("pager", 'routes[0]:{service="api"}')
    ]
    h.advance(T0 + 600)
    assert [(s.at - T0, s.notification.receiver, s.notification.group_key) for s in h.sent] == [
        (0, "pager", 'routes[0]:{service="api"}'),
        (10, "ops", 'routes[1]:{service="api"}'),  # the next matching route, after continue
    ]  # and the batch alert went to a route without channels
    assert all(a.labels["service"] == "api" for s in h.sent for a in s.notification.alerts)


def test_group_by_all_gives_one_group_per_alert() -> None:
    h = harness(group_by=["..."])
    h.ingest(alert(host="h1"), alert(host="h2"))
    h.advance(T0 + 10)
    assert sorted(len(s.notification.alerts) for s in h.sent) == [1, 1]


# -- resolved -----------------------------------------------------------------------------------


def test_send_resolved_true_and_false() -> None:
    h = harness({"ops": True, "quiet": False})
    a, b = alert(host="a"), alert(host="b")
    h.ingest(a, b)
    h.advance(T0 + 10)
    assert len(h.to("ops")) == len(h.to("quiet")) == 1
    h.ingest(resolved(b, T0 + 30), at=T0 + 30)
    h.advance(T0 + 70)
    assert [s.statuses for s in h.to("ops")][-1] == {
        "latency_ms/a": "firing",
        "latency_ms/b": "resolved",
    }
    assert len(h.to("quiet")) == 1  # nothing new fires
    c = alert(host="c")
    h.ingest(c, at=T0 + 80)
    h.advance(T0 + 130)
    # Without send_resolved the notification has firing alerts only.
    assert h.to("quiet")[-1].statuses == {"latency_ms/a": "firing", "latency_ms/c": "firing"}
    assert h.to("ops")[-1].statuses == {"latency_ms/a": "firing", "latency_ms/c": "firing"}
    h.ingest(resolved(a, T0 + 140), resolved(c, T0 + 140), at=T0 + 140)
    h.advance(T0 + 400)
    assert h.to("ops")[-1].notification.status is R and len(h.to("ops")) == 4
    assert len(h.to("quiet")) == 2  # all resolved: a receiver without send_resolved hears nothing
    assert h.dispatcher.groups() == []  # resolved alerts are gone once dealt with
    quiet = h.dispatcher.nflog.get("quiet", 'root:{service="api"}')
    assert quiet is not None and quiet.firing == frozenset()


def test_an_incident_over_before_group_wait_is_notified_once_as_resolved() -> None:
    # Unlike Alertmanager: a short spike or a backfilled incident still reaches the channel.
    h = harness()
    a = alert()
    h.ingest(a)
    h.ingest(resolved(a, T0 + 5), at=T0 + 5)
    h.advance(T0 + 300)
    assert [list(s.statuses.values()) for s in h.sent] == [["resolved"]]
    assert h.dispatcher.groups() == []


def test_an_incident_over_before_group_wait_reaches_a_channel_without_send_resolved() -> None:
    h = harness(channels={"ops": False})
    a = alert()
    h.ingest(a)
    h.ingest(resolved(a, T0 + 5), at=T0 + 5)
    h.advance(T0 + 300)
    assert [list(s.statuses.values()) for s in h.sent] == [["resolved"]]


def test_resolved_alert_nobody_heard_of_creates_no_group() -> None:
    h = harness()
    h.ingest(resolved(alert(), T0))
    assert h.dispatcher.groups() == [] and h.dispatcher.next_wakeup(T0) is None


def test_late_records_do_not_replace_newer_ones() -> None:
    h = harness()
    a = alert()
    h.ingest(a)
    h.ingest(resolved(a, T0 + 5), at=T0 + 5)
    h.ingest(a, at=T0 + 6)  # a late repeat of the same incident
    h.advance(T0 + 100)
    assert [list(s.statuses.values()) for s in h.sent] == [["resolved"]]


# -- silences and inhibition ----------------------------------------------------------------------


def silence_h2(d: Dispatcher) -> str:
    """Silence host h2 from T0 for 200 s; returns the silence id."""
    return d.silences.add(
        parse_matchers(['host="h2"']),
        starts_at=T0,
        ends_at=T0 + 200,
        created_by="ops",
        comment="maintenance",
        now=T0,
    )


def test_silenced_alerts_are_left_out_and_counted_once() -> None:
    h = harness()
    d = h.dispatcher
    assert silence_h2(d) == "s0"
    h.ingest(alert(host="h1"), alert(host="h2"))
    h.advance(T0 + 190)
    assert [s.statuses for s in h.sent] == [{"latency_ms/h1": "firing"}]
    assert d.silenced == 1  # counted once although the group was flushed 4 times
    h.advance(T0 + 250)  # the silence expired by itself: h2 is new to the receiver
    assert h.sent[-1].statuses == {"latency_ms/h1": "firing", "latency_ms/h2": "firing"}
    assert d.counters()["sent"] == 2


def test_dispatchers_sharing_a_counters_dict_keep_one_total() -> None:
    """A notifier that hands over and takes back keeps counting where it was."""
    totals: dict[str, int] = {}
    for _ in range(2):
        d = build_dispatcher(RoutingSettings(), {"ops": True}, counters=totals)
        silence_h2(d)
        h = Harness(d)
        h.ingest(alert(host="h2"))
        h.advance(T0 + 60)
    assert totals["silenced"] == 2
    assert d.counters()["silenced"] == 2


def test_a_fully_silenced_group_sends_nothing() -> None:
    silence = SilenceSettings(
        matchers=('service="api"',),
        starts_at=T0,
        ends_at=T0 + 3600,
        created_by="ops",
        comment="x",
    )
    h = harness(silences=[silence])
    h.ingest(alert())
    h.advance(T0 + 600)
    assert h.sent == [] and h.dispatcher.silenced == 1


def test_pending_silence_applies_once_started() -> None:
    h = harness(repeat_interval_seconds=60)
    h.dispatcher.silences.add(
        parse_matchers(['service="api"']),
        starts_at=T0 + 100,
        ends_at=T0 + 1000,
        created_by="ops",
        comment="x",
        now=T0,
    )
    h.ingest(alert())
    h.advance(T0 + 500)
    assert [s.at - T0 for s in h.sent] == [10, 70]  # repeats stop once the silence starts


def test_inhibition_and_release() -> None:
    rule = InhibitRuleSettings(
        source_matchers=('severity="critical"',),
        target_matchers=('severity="warning"',),
        equal=("service",),
    )
    h = harness(inhibit_rules=[rule], group_by=["..."])
    source = alert("errors", severity=Severity.CRITICAL)
    target = alert("latency_ms", severity=Severity.WARNING)
    other = alert("latency_ms", service="web", severity=Severity.WARNING)
    h.ingest(source, target, other)
    h.advance(T0 + 60)
    notified = sorted(
        a.series + "/" + a.labels["service"] for s in h.sent for a in s.notification.alerts
    )
    assert notified == ["errors/api", "latency_ms/web"]
    assert h.dispatcher.inhibited == 1
    h.ingest(resolved(source, T0 + 100), at=T0 + 100)
    h.advance(T0 + 200)
    last_two = {(s.notification.alerts[0].series, s.notification.status) for s in h.sent[-2:]}
    assert last_two == {("errors", R), ("latency_ms", F)}  # the target is notified now


# -- flapping -----------------------------------------------------------------------------------


def test_flapping_alert_is_announced_once_held_then_settled() -> None:
    h = harness(flap_window_seconds=900, flap_threshold=4)
    for k in range(6):  # fires and resolves 6 times, one cycle every 40 s
        a = alert(started_at=T0 + 40 * k)
        h.ingest(a, at=T0 + 40 * k)
        h.ingest(resolved(a, T0 + 40 * k + 20), at=T0 + 40 * k + 20)
    last_transition = T0 + 220
    h.advance(last_transition + 899)
    flapping = [s for s in h.sent if s.notification.alerts[0].annotations.get("flapping")]
    assert len(flapping) == 1
    assert [s.at - T0 for s in h.sent] == [10, 70]  # first firing, then the announcement
    assert flapping[0].at == T0 + 70
    h.advance(last_transition + 1000)
    assert len(h.sent) == 3  # stable for a whole window: its state once, without the mark
    final = h.sent[-1].notification
    assert final.status is R and final.alerts[0].started_at == T0 + 200
    assert "flapping" not in final.alerts[0].annotations
    h.advance(last_transition + 5000)
    assert len(h.sent) == 3 and h.dispatcher.groups() == []
    assert h.dispatcher.counters()["flapping"] == 1


def test_flapping_alert_that_settles_firing_is_sent_again() -> None:
    h = harness(flap_window_seconds=300, flap_threshold=4, repeat_interval_seconds=86400)
    for k in range(3):
        a = alert(started_at=T0 + 30 * k)
        h.ingest(a, at=T0 + 30 * k)
        h.ingest(resolved(a, T0 + 30 * k + 15), at=T0 + 30 * k + 15)
    final = alert(started_at=T0 + 90)
    h.ingest(final, at=T0 + 90)
    h.advance(T0 + 1000)
    marks = [s.notification.alerts[0].annotations.get("flapping") for s in h.sent]
    assert marks == [None, "true", None]
    assert h.sent[-1].notification.alerts[0] == final
    assert h.sent[-1].at >= T0 + 90 + 300


# -- failures and restarts ------------------------------------------------------------------------


def test_nack_retries_at_the_next_interval_and_in_flight_groups_wait() -> None:
    h = harness()
    h.ingest(alert())
    (p,) = h.dispatcher.due(T0 + 10)
    assert h.dispatcher.due(T0 + 100) == []  # in flight: not flushed again
    assert h.dispatcher.next_wakeup(T0 + 100) is None
    h.dispatcher.nack(p, T0 + 100)
    assert h.dispatcher.next_wakeup(T0 + 100) == T0 + 160
    assert h.dispatcher.due(T0 + 159) == []
    (again,) = h.dispatcher.due(T0 + 160)
    assert again.notification.notification_id == p.notification.notification_id
    h.dispatcher.ack(again, T0 + 161)
    assert h.dispatcher.counters()["failed"] == 1 and h.dispatcher.counters()["sent"] == 1


def test_the_fate_of_a_dead_notification_follows_the_group() -> None:
    h = harness()
    a = alert()
    h.fail.add("ops")
    h.ingest(a)
    h.advance(T0 + 10)  # sent and given up on at T0 + 10 (nacked)
    key = h.dispatcher.groups()[0].group_key
    assert h.dispatcher.fate_of_dead("ops", key, T0 + 10) == "held"  # the group is retried
    h.fail.clear()
    h.ingest(resolved(a, T0 + 30), at=T0 + 30)
    h.advance(T0 + 70)  # the group's resolved state got through at T0 + 70
    assert [s.statuses for s in h.sent] == [{"latency_ms/h1": "resolved"}]
    assert h.dispatcher.groups() == []
    # Both the firing notification given up on at T0 + 10 and one given up on when the resolved
    # state got through are told by it; a failure after it is not.
    assert h.dispatcher.fate_of_dead("ops", key, T0 + 10) == "superseded"
    assert h.dispatcher.fate_of_dead("ops", key, T0 + 70) == "superseded"
    assert h.dispatcher.fate_of_dead("ops", key, T0 + 71) == "replay"
    assert h.dispatcher.fate_of_dead("other", key, T0 + 10) == "replay"  # another receiver
    # The same questions, answered by a restarted worker's dispatcher.
    assert restart(h).dispatcher.fate_of_dead("ops", key, T0 + 10) == "superseded"


def restart(h: Harness, **routing: Any) -> Harness:
    state = json.loads(json.dumps(h.dispatcher.to_state(), allow_nan=False))
    d = build_dispatcher(RoutingSettings.model_validate(routing), {"ops": True}, state=state)
    assert d.to_state() == h.dispatcher.to_state()
    return Harness(d, now=h.now)


def test_restart_right_after_ack_sends_no_duplicate_but_new_alerts() -> None:
    h = harness()
    a, b = alert(host="a"), alert(host="b")
    h.ingest(a, b)
    h.advance(T0 + 10)
    assert len(h.sent) == 1
    h2 = restart(h)
    h2.advance(T0 + 500)
    assert h2.sent == []
    c = alert(host="c")
    h2.ingest(c, at=T0 + 500)
    h2.advance(T0 + 600)
    assert [s.statuses for s in h2.sent] == [
        {"latency_ms/a": "firing", "latency_ms/b": "firing", "latency_ms/c": "firing"}
    ]
    h2.ingest(resolved(a, T0 + 600), at=T0 + 600)
    h2.advance(T0 + 700)
    assert h2.sent[-1].statuses["latency_ms/a"] == "resolved"


def test_restart_before_ack_sends_again() -> None:
    h = harness()
    h.ingest(alert())
    (p,) = h.dispatcher.due(T0 + 10)
    h2 = restart(h)
    h2.advance(T0 + 70)
    assert [s.notification.notification_id for s in h2.sent] == [p.notification.notification_id]


def test_a_replay_of_older_transitions_notifies_nothing_twice() -> None:
    # After a crash the engine records again the transitions of the events it consumes again:
    # the alerts topic then holds an incident's firing (and resolution) after its resolution.
    h = harness(group_by=["..."])
    a = alert()
    h.ingest(a)
    h.advance(T0 + 20)
    h.ingest(resolved(a, T0 + 20), at=T0 + 20)
    h.advance(T0 + 100)
    assert [list(s.statuses.values()) for s in h.sent] == [["firing"], ["resolved"]]
    h2 = restart(h)  # (the state keeps what it took in)
    h2.ingest(a, at=T0 + 101)  # the replay: firing again, flushed before its resolution comes
    h2.advance(T0 + 120)
    h2.ingest(resolved(a, T0 + 20), at=T0 + 120)
    h2.advance(T0 + 200)
    assert h2.sent == []
    assert h2.dispatcher.counters()["replayed"] == 1  # (the resolution is not older: taken in)
    # A new incident of the same alert is news.
    b = replace(a, started_at=T0 + 300)
    h2.ingest(b, at=T0 + 300)
    h2.advance(T0 + 320)
    assert [list(s.statuses.values()) for s in h2.sent] == [["firing"]]


def test_restart_keeps_flap_holding_silences_and_inhibition() -> None:
    rule = InhibitRuleSettings(source_matchers=("severity=critical",), target_matchers=("host=t",))
    h = harness(inhibit_rules=[rule], flap_threshold=4)
    h.dispatcher.silences.add(
        parse_matchers(["host=s"]),
        starts_at=T0,
        ends_at=T0 + 9999,
        created_by="x",
        comment="y",
        now=T0,
    )
    h.ingest(alert(host="s"), alert(host="t"), alert(host="c", severity=Severity.CRITICAL))
    for k in range(4):
        a = alert(host="f", started_at=T0 + 10 * k)
        h.ingest(a, at=T0 + 10 * k)
        h.ingest(resolved(a, T0 + 10 * k + 5), at=T0 + 10 * k + 5)
    h.advance(T0 + 70)
    assert [{a.labels["host"]: a.annotations for a in s.notification.alerts} for s in h.sent] == [
        {"c": {}, "f": {}},
        {"c": {}, "f": {"flapping": "true"}},  # the whole group, f marked
    ]
    d = restart(h).dispatcher
    d2 = build_dispatcher(
        RoutingSettings(flap_threshold=4),
        {"ops": True},
        inhibit_rules=[rule],
        state=json.loads(json.dumps(d.to_state())),
    )
    assert d2.to_state() == h.dispatcher.to_state()
    assert d2.silences.is_silenced({"host": "s"}, T0 + 100) == ["s0"]
    assert d2.inhibitor.is_inhibited({"host": "t"}, "x")
    assert d2.flaps.flapping(alert(host="f").fingerprint, T0 + 100)
    assert d2.due(T0 + 130) == []


def test_state_rejects_another_version() -> None:
    d = build_dispatcher(RoutingSettings(), {"ops": True})
    with pytest.raises(ValueError, match="version"):
        d.load_state({**d.to_state(), "version": 99})


def test_external_url_and_group_labels_reach_the_notification() -> None:
    h = harness(external_url="https://kestrel.example/", group_by=["service", "region"])
    h.ingest(alert())
    h.advance(T0 + 10)
    n = h.sent[0].notification
    assert n.external_url == "https://kestrel.example/"
    assert n.group_labels == {"service": "api"}
    assert n.group_key == 'root:{service="api"}'


def test_nested_routes_deliver_with_their_inherited_timings() -> None:
    """A nested route's alerts go to its channels with the timings of its parent route."""
    h = harness(
        channels={"ops": True, "api-team": True, "pager": True},
        routes=[
            {
                "matchers": ['service="api"'],
                "channels": ["api-team"],
                "group_wait_seconds": "30s",
                "routes": [
                    {"matchers": ['severity="critical"'], "channels": ["pager"], "continue": True},
                    {"matchers": ['host="h1"']},  # inherits api-team and the 30 s wait
                ],
            }
        ],
    )
    h.ingest(alert(host="h1", severity=Severity.CRITICAL), alert(host="h2"), alert(service="db"))
    h.advance(T0 + 29)
    # Only the db alert so far: the root route (every channel), after its 10 s group wait.
    early = sorted((s.at - T0, s.notification.receiver, s.notification.group_key) for s in h.sent)
    assert early == [(10.0, r, 'root:{service="db"}') for r in ("api-team", "ops", "pager")]
    h.advance(T0 + 30)
    got = sorted(
        (s.notification.receiver, s.notification.group_key, tuple(sorted(s.statuses)))
        for s in h.sent[3:]
    )
    print(got)
    assert got == [
        ("api-team", 'routes[0].routes[1]:{service="api"}', ("latency_ms/h1",)),
        ("api-team", 'routes[0]:{service="api"}', ("latency_ms/h2",)),
        ("pager", 'routes[0].routes[0]:{service="api"}', ("latency_ms/h1",)),
    ]
    assert all(s.at == T0 + 30 for s in h.sent[3:])
