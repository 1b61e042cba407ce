"""engine.runtime.alerts_dlq: what ``kestrel dlq replay`` sends, marks superseded, or leaves to
the worker's notifier (no service needed: the plan is pure)."""

from __future__ import annotations

from typing import Any

import orjson

from engine.model.notification import DeadNotification, Notification
from engine.notify import Dispatcher, RoutingSettings, build_dispatcher
from engine.runtime.alerts_dlq import pending, plan_replay
from tests.alert_channel_fakes import make_alert

T0 = 1_700_000_000.0


def _dead(notification: Notification, failed_at: float, channel: str = "ops") -> dict[str, Any]:
    record = DeadNotification(notification, channel, "503", 2, failed_at)
    return dict(orjson.loads(record.to_json()))


def _dispatcher() -> Dispatcher:
    return build_dispatcher(RoutingSettings(group_wait_seconds=0), {"ops": True, "pager": True})


def test_pending_is_what_last_failed() -> None:
    n = Notification.single(make_alert(), "ops")
    latest = {
        b"a": DeadNotification(n, "ops", "503", 2, T0).to_json(),
        b"b": orjson.dumps({"status": "superseded", "channel": "ops"}),
        b"c": b"not json",
    }
    assert list(pending(latest)) == [b"a"]


def test_only_the_newest_dead_notification_of_a_group_is_sent() -> None:
    firing = make_alert()
    resolved = make_alert(status=firing.status.RESOLVED)
    older = Notification("ops", "g1", {}, (firing,))
    newer = Notification("ops", "g1", {}, (resolved,))
    other = Notification("ops", "g2", {}, (make_alert(series="cpu"),))
    todo = {
        b"newer": _dead(newer, T0 + 20),
        b"older": _dead(older, T0 + 10),
        b"other": _dead(other, T0 + 15),
    }
    plan = plan_replay(todo, None)
    assert plan.send == [b"other", b"newer"]  # oldest failure first
    assert plan.superseded == {b"older": "newer"}
    assert plan.held == []


def test_groups_the_notifier_holds_are_left_to_it_and_delivered_ones_are_superseded() -> None:
    d = _dispatcher()
    held, told, lost = (make_alert(series=s, labels={"service": s}) for s in ("held", "told", "x"))
    for a in (held, told):
        d.ingest(a, T0)
    due = {p.notification.alerts[0].series: p for p in d.due(T0) if p.receiver == "ops"}
    d.nack(due["held"], T0 + 1)  # given up on: the group stays, retried at the next flush
    d.ack(due["told"], T0 + 5)  # delivered, after the failure below
    todo = {
        b"held": _dead(due["held"].notification, T0 + 1),
        b"told": _dead(due["told"].notification, T0 + 1),
        b"lost": _dead(Notification.single(lost, "ops"), T0 + 1),  # a group nobody holds
    }
    plan = plan_replay(todo, d)
    assert plan.held == [b"held"]
    assert plan.superseded == {b"told": ""}
    assert plan.send == [b"lost"]


def test_a_channel_filter_leaves_the_other_channels_alone() -> None:
    n = Notification.single(make_alert(), "ops")
    todo = {b"ops": _dead(n, T0, "ops"), b"pager": _dead(n, T0, "pager")}
    plan = plan_replay(todo, _dispatcher(), channel="pager")
    assert plan.send == [b"pager"] and not plan.superseded and not plan.held
