"""engine.notify.nflog: the needs_update decision table, recording, gc and state."""

from __future__ import annotations

import json
from collections.abc import Iterable

import pytest

from engine.notify.nflog import NotificationEntry, NotificationLog, needs_update

A, B, C = "a@1.0", "b@1.0", "c@1.0"
A2 = "a@500.0"  # a new incident of alert a


def entry(
    firing: Iterable[str], resolved: Iterable[str] = (), sent_at: float = 0.0
) -> NotificationEntry:
    return NotificationEntry(frozenset(firing), frozenset(resolved), sent_at)


@pytest.mark.parametrize(
    ("last", "firing", "resolved", "send_resolved", "now", "expected", "why"),
    [
        (None, {A}, set(), True, 1.0, True, "first notification"),
        (None, set(), {A}, True, 1.0, False, "never told, nothing fires"),
        (entry({A}), {A}, set(), True, 60.0, False, "nothing new"),
        (entry({A}), {A, B}, set(), True, 60.0, True, "a new firing alert"),
        (entry({A}), {A2}, set(), True, 60.0, True, "a new incident of a known alert"),
        (entry({A, B}), {A}, {B}, True, 60.0, True, "resolved, wanted"),
        (entry({A, B}), {A}, {B}, False, 60.0, False, "resolved, not wanted"),
        (entry({A}, {B}), {A}, {B}, True, 60.0, False, "resolved already told"),
        (entry({A}), set(), {A}, True, 60.0, True, "all resolved, wanted"),
        (entry({A}), set(), {A}, False, 60.0, False, "all resolved, not wanted"),
        (entry(set(), {A}), set(), {A, B}, True, 60.0, False, "receiver knows of nothing firing"),
        (entry({A}), {A}, set(), True, 3599.0, False, "before the repeat interval"),
        (entry({A}), {A}, set(), True, 3600.0, True, "repeat interval elapsed"),
        (entry({A}, {B}), {A}, {B}, False, 3600.0, True, "repeat while firing"),
        (entry({A}), set(), {A}, False, 9999.0, False, "no repeat once nothing fires"),
        (entry({A, B, C}), {B}, set(), True, 60.0, False, "fewer firing alerts (silenced)"),
    ],
)
def test_needs_update_table(
    last: NotificationEntry | None,
    firing: set[str],
    resolved: set[str],
    send_resolved: bool,
    now: float,
    expected: bool,
    why: str,
) -> None:
    got = needs_update(
        last,
        firing,
        resolved,
        send_resolved=send_resolved,
        repeat_interval_seconds=3600.0,
        now=now,
    )
    assert got is expected, why


def test_record_get_and_gc() -> None:
    log = NotificationLog()
    assert log.get("ops", "g") is None
    log.record("ops", "g1", {A}, set(), now=0.0)
    log.record("ops", "g2", set(), {B}, now=0.0)
    log.record("pager", "g1", {A}, set(), now=100.0)
    assert log.get("ops", "g1") == entry({A})
    assert log.gc(now=50.0, retention_seconds=100.0) == 0
    # Old and nothing firing: dropped. Old but firing in a live group: kept.
    assert log.gc(now=150.0, retention_seconds=100.0, keep={("ops", "g1")}) == 1
    assert log.get("ops", "g2") is None and log.get("ops", "g1") is not None
    assert log.gc(now=250.0, retention_seconds=100.0) == 2  # groups gone: dropped too
    assert len(log) == 0


def test_state_round_trip() -> None:
    log = NotificationLog()
    log.record("ops", 'root:{service="api"}', {A, B}, {C}, now=1700000000.123)
    log.record("pager", "routes[0]:{}", {A2}, set(), now=5.5)
    state = json.loads(json.dumps(log.to_state()))
    restored = NotificationLog.from_state(state)
    assert restored.to_state() == log.to_state()
    assert restored.get("ops", 'root:{service="api"}') == log.get("ops", 'root:{service="api"}')
