"""engine.core.tracking: the alert lifecycle of one detector on one series."""

from __future__ import annotations

import math
import random

import orjson

from detectors.base import Transition, Verdict
from detectors.zscore import ZScoreDetector, ZScoreParams
from engine.core.tracking import AlertTracker, summarize
from engine.model.alert import Alert, AlertStatus, Severity, fingerprint

FIRED = Verdict(9.0, 10.0, True, True, Transition.FIRED)
STILL = Verdict(8.0, 10.0, True, True)
RESOLVED = Verdict(0.5, 10.0, False, False, Transition.RESOLVED)
QUIET = Verdict(0.5, 10.0, False, False)


def tracker(repeat: float = 600.0) -> AlertTracker:
    return AlertTracker("latency_ms", {"service": "api"}, "zscore", Severity.CRITICAL, repeat)


def test_fires_once_then_repeats_every_interval_then_resolves() -> None:
    t = tracker(repeat=600.0)
    assert t.observe(QUIET, 10.0, ts=50.0) is None
    fired = t.observe(FIRED, 95.0, ts=100.0)
    assert fired is not None
    assert fired.status is AlertStatus.FIRING
    assert (fired.started_at, fired.ended_at, fired.repeat) == (100.0, None, 0)
    assert (fired.value, fired.expected, fired.score) == (95.0, 10.0, 9.0)
    assert fired.severity is Severity.CRITICAL
    assert fired.fingerprint == fingerprint("latency_ms", {"service": "api"}, "zscore")
    assert (fired.series, dict(fired.labels), fired.detector) == (
        "latency_ms",
        {"service": "api"},
        "zscore",
    )
    assert fired.summary == "latency_ms{service=api}: 95 vs expected 10 (zscore score 9.0)"

    assert [t.observe(STILL, 90.0, ts=ts) for ts in (150.0, 400.0, 699.0)] == [None, None, None]
    first_repeat = t.observe(STILL, 91.0, ts=700.0)
    assert first_repeat is not None
    assert (first_repeat.status, first_repeat.repeat, first_repeat.started_at) == (
        AlertStatus.FIRING,
        1,
        100.0,
    )
    assert t.observe(STILL, 90.0, ts=1299.0) is None
    second = t.observe(STILL, 90.0, ts=1300.0)
    assert second is not None
    assert second.repeat == 2
    assert first_repeat.notification_id != fired.notification_id != second.notification_id

    resolved = t.observe(RESOLVED, 11.0, ts=1400.0)
    assert resolved is not None
    assert resolved.status is AlertStatus.RESOLVED
    assert (resolved.started_at, resolved.ended_at) == (100.0, 1400.0)
    assert resolved.summary == "latency_ms{service=api}: 11 vs expected 10 (zscore score 0.5)"
    assert resolved.fingerprint == fired.fingerprint

    # Over: nothing until the next incident, which starts afresh.
    assert t.observe(QUIET, 10.0, ts=5000.0) is None
    again = t.observe(FIRED, 99.0, ts=6000.0)
    assert again is not None
    assert (again.started_at, again.repeat) == (6000.0, 0)


def test_a_resolve_without_an_incident_sends_nothing() -> None:
    t = tracker()
    assert t.observe(RESOLVED, 1.0, ts=10.0) is None
    assert t.observe(STILL, 1.0, ts=10_000.0) is None  # not firing: no repeats either


def test_out_of_order_time_does_not_repeat() -> None:
    t = tracker(repeat=60.0)
    t.observe(FIRED, 1.0, ts=1000.0)
    assert t.observe(STILL, 1.0, ts=900.0) is None
    assert t.observe(STILL, 1.0, ts=1059.0) is None
    assert t.observe(STILL, 1.0, ts=1060.0) is not None


def test_each_alert_gets_its_own_labels() -> None:
    labels = {"service": "api"}
    t = AlertTracker("x", labels, "zscore", Severity.INFO, 60.0)
    alert = t.observe(FIRED, 1.0, ts=0.0)
    assert alert is not None
    assert alert.labels == {"service": "api"} and alert.labels is not labels


def zscore_alerts(values: list[float], t: AlertTracker) -> list[Alert]:
    det = ZScoreDetector(ZScoreParams(warmup=20, fire_after=3, resolve_after=3))
    out = []
    for i, v in enumerate(values):
        alert = t.observe(det.update(v, float(i)), v, float(i))
        if alert is not None:
            out.append(alert)
    return out


def test_one_incident_from_a_real_detector_is_one_firing_and_one_resolved() -> None:
    rng = random.Random(11)
    values = [rng.gauss(50.0, 2.0) for _ in range(100)] + [150.0] * 10 + [50.0] * 20
    alerts = zscore_alerts(values, tracker(repeat=1e9))
    assert [(a.status, a.repeat) for a in alerts] == [
        (AlertStatus.FIRING, 0),
        (AlertStatus.RESOLVED, 0),
    ]
    assert alerts[0].started_at == 102.0  # the third anomalous point
    assert alerts[1].ended_at == 112.0  # the third normal point


def test_state_round_trip_mid_incident_gives_the_same_alerts() -> None:
    t = tracker(repeat=100.0)
    t.observe(FIRED, 5.0, ts=1000.0)
    t.observe(STILL, 5.0, ts=1100.0)  # repeat 1
    copy = tracker(repeat=100.0)
    copy.load_state(orjson.loads(orjson.dumps(t.to_state())))
    rest = [(STILL, 1150.0), (STILL, 1200.0), (STILL, 1250.0), (RESOLVED, 1260.0), (QUIET, 2000.0)]
    a = [t.observe(v, 5.0, ts) for v, ts in rest]
    b = [copy.observe(v, 5.0, ts) for v, ts in rest]
    assert a == b
    assert [x.repeat if x else None for x in a] == [None, 2, None, 2, None]
    assert b[3] is not None
    assert b[3].started_at == 1000.0


def test_a_fresh_state_round_trips() -> None:
    t = tracker()
    copy = tracker()
    copy.load_state(orjson.loads(orjson.dumps(t.to_state())))
    assert copy.observe(STILL, 1.0, ts=1e6) is None
    assert copy.to_state() == t.to_state()


def test_summary_formats() -> None:
    assert summarize("cpu", "zscore", 0.123456, math.nan, 12.345) == (
        "cpu: 0.1235 vs expected n/a (zscore score 12.3)"
    )
    assert summarize("e{s=a}", "error_spike", 0.5, 0.01, 1.0) == (
        "e{s=a}: 0.5 vs expected 0.01 (error_spike score 1.0)"
    )


def test_an_alert_without_an_expected_value_survives_the_alerts_topic() -> None:
    """JSON has no NaN: ``expected = nan`` (a pattern alert, a detector without a baseline) is
    written as null, and must read back (delivery used to skip such a record as unreadable)."""
    a = Alert("f", AlertStatus.FIRING, Severity.WARNING, "log.pattern", {"service": "api"},
              "new_pattern", 1.0, math.nan, 3.0, 0.0, None, "new template")  # fmt: skip
    back = Alert.from_dict(orjson.loads(orjson.dumps(a.to_dict())))
    assert math.isnan(back.expected) and back.series == "log.pattern"
