"""The pure explain logic: the alert board, listing and explaining series, taps, describe()."""

from __future__ import annotations

import math
import random

import orjson

from detectors.adaptive import AdaptiveDetector, AdaptiveParams
from detectors.base import DetectorParams, ValueDetector, Verdict, WindowDetector
from detectors.zscore import ZScoreDetector, ZScoreParams
from engine.core.explain import AlertBoard, Tap, Taps, explain, list_series
from engine.core.pipeline import Pipeline
from engine.model.alert import Alert, AlertStatus
from tests.engine.test_pipeline import T0, WALL, event, make_config, sample

FAST = [{"match": "cpu*", "detectors": {"zscore": {"warmup": 20, "fire_after": 2}}}]


def _feed(pipeline: Pipeline, values: list[float], start: int = 0, **labels: str) -> list[Alert]:
    out: list[Alert] = []
    for i, v in enumerate(values, start=start):
        pipeline.metric(sample(v, T0 + 10.0 * i, **labels), 0, out)
    return out


def _spiked() -> tuple[Pipeline, AlertBoard, list[Alert]]:
    rng = random.Random(1)
    pipeline = Pipeline(make_config(FAST))
    values = [50.0 + rng.gauss(0, 1) for _ in range(60)] + [90.0] * 3
    alerts = _feed(pipeline, values)
    board = AlertBoard()
    board.add(alerts)
    return pipeline, board, alerts


def test_a_fired_alert_is_firing_on_the_board_and_explained_with_its_threshold() -> None:
    pipeline, board, alerts = _spiked()
    assert [a.status for a in alerts] == [AlertStatus.FIRING]
    firing = board.firing()
    assert [a.series_id for a in firing] == ["cpu{host=a}"]

    doc = explain(pipeline, "cpu{host=a}", board)
    assert doc is not None
    print(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    assert doc["kind"] == "metric"
    (det,) = doc["detectors"]
    assert det["kind"] == "zscore"
    assert det["params"]["threshold"] == 4.0
    assert det["params"]["warmup"] == 20
    assert det["firing"] is True
    assert det["started_at"] == T0 + 10.0 * 61  # the second anomalous point fired
    state = det["state"]
    assert state["warm"] is True
    assert state["seen"] == 20
    assert 49.0 < state["expected"] < 51.0  # the spike was held out of the baseline
    low, high = state["band"]
    assert low < state["expected"] < high
    assert high < 90.0  # the spike is outside the band
    reason = det["last_alert"]["reason"]
    assert "above its threshold 4" in reason
    assert "for 2 points in a row" in reason
    assert det["last_alert"]["score"] > 4.0


def test_resolution_leaves_the_board_but_the_last_firing_alert_is_remembered() -> None:
    pipeline, board, _ = _spiked()
    rng = random.Random(2)
    alerts = _feed(pipeline, [50.0 + rng.gauss(0, 1) for _ in range(20)], start=63)
    assert [a.status for a in alerts] == [AlertStatus.RESOLVED]
    board.add(alerts)
    assert board.firing() == []
    assert [a.status for a in board.recent()] == [AlertStatus.RESOLVED, AlertStatus.FIRING]
    assert board.recent(1)[0].status is AlertStatus.RESOLVED
    doc = explain(pipeline, "cpu{host=a}", board)
    assert doc is not None
    (det,) = doc["detectors"]
    assert det["firing"] is False
    assert det["last_alert"]["status"] == "firing"


def test_board_is_bounded() -> None:
    _, _, alerts = _spiked()
    small = AlertBoard(recent=3, last_fired=2)
    for i in range(10):
        small.add([alerts[0].__class__(**{**_fields(alerts[0]), "fingerprint": f"f{i}"})])
    assert len(small.recent()) == 3
    assert len(small._last) <= 2
    assert small.transitions == 10


def _fields(alert: Alert) -> dict[str, object]:
    return {f: getattr(alert, f) for f in alert.__struct_fields__}


def test_series_are_listed_firing_first_filtered_and_limited() -> None:
    pipeline, _, _ = _spiked()
    _feed(pipeline, [10.0] * 5, host="b")
    out: list[Alert] = []
    pipeline.log(event(T0), 0, WALL, out)
    rows = list_series(pipeline)
    print(rows)
    assert rows[0]["series"] == "cpu{host=a}" and rows[0]["firing"] is True
    ids = {r["series"] for r in rows}
    assert {"cpu{host=b}", "log.error_ratio{service=api}", "log.events{service=api}"} <= ids
    assert [r["series"] for r in list_series(pipeline, match="host=b")] == ["cpu{host=b}"]
    assert len(list_series(pipeline, limit=2)) == 2
    b = next(r for r in rows if r["series"] == "cpu{host=b}")
    assert b["warm"] is False and b["detectors"] == ["zscore"]


def test_an_unknown_series_is_not_explained() -> None:
    pipeline, board, _ = _spiked()
    assert explain(pipeline, "cpu{host=zz}", board) is None
    assert Taps().tap(pipeline, "cpu{host=zz}") is False


def test_a_tapped_series_records_its_points_and_keeps_its_verdicts_and_state() -> None:
    rng = random.Random(3)
    values = [50.0 + rng.gauss(0, 1) for _ in range(80)] + [90.0] * 3 + [50.0] * 10
    plain = Pipeline(make_config(FAST))
    tapped = Pipeline(make_config(FAST))
    taps = Taps(points=50)
    expected_alerts = _feed(plain, values[:30])
    got_alerts = _feed(tapped, values[:30])
    assert taps.tap(tapped, "cpu{host=a}")
    expected_alerts += _feed(plain, values[30:], start=30)
    got_alerts += _feed(tapped, values[30:], start=30)
    # The same decisions and the same saved state, tapped or not.
    assert got_alerts == expected_alerts
    assert [w.value for w in tapped.checkpoint()] == [w.value for w in plain.checkpoint()]

    points = taps.points("cpu{host=a}")["zscore"]
    assert len(points) == 50  # the ring's size
    assert points[-1]["ts"] == T0 + 10.0 * (len(values) - 1)
    spike = [p for p in points if p["value"] == 90.0]
    assert len(spike) == 3 and all(p["anomalous"] for p in spike)
    assert all(p["high"] < 90.0 for p in spike)  # the band it was judged against
    assert spike[1]["firing"] is True
    doc = explain(tapped, "cpu{host=a}", None, taps)
    assert doc is not None
    assert len(doc["detectors"][0]["recent"]) == 50


def test_a_tap_is_seen_as_its_detector_and_window_detectors_still_get_windows() -> None:
    pipeline = Pipeline(make_config())
    out: list[Alert] = []
    pipeline.log(event(T0), 0, WALL, out)
    taps = Taps()
    assert taps.tap(pipeline, "log.error_ratio{service=api}")
    for w in range(1, 6):
        for j in range(10):
            pipeline.log(event(T0 + 60.0 * w + j, error=j < 3), 0, WALL, out)
    points = taps.points("log.error_ratio{service=api}")
    (kind,) = points
    assert kind == "error_spike"
    ratios = [p["value"] for p in points[kind]]
    print(ratios)
    assert ratios[-1] == 0.3  # windows judged by update_window: errors / total
    scorer = next(iter(pipeline._cache.values())).errors.watches[0].scorer  # type: ignore[attr-defined]
    assert isinstance(scorer, Tap)
    assert isinstance(scorer, WindowDetector)


def test_taps_are_bounded_and_untap_the_oldest() -> None:
    pipeline = Pipeline(make_config(FAST))
    for host in "abc":
        _feed(pipeline, [1.0, 2.0], host=host)
    taps = Taps(max_series=2)
    for host in "abc":
        assert taps.tap(pipeline, f"cpu{{host={host}}}")
    assert "cpu{host=a}" not in taps
    assert "cpu{host=c}" in taps
    watch = pipeline._cache["m|cpu{host=a}"].watches[0]  # type: ignore[attr-defined]
    assert not isinstance(watch.scorer, Tap)
    assert taps.points("cpu{host=a}") == {}


def test_zscore_describe_matches_its_verdicts() -> None:
    det = ZScoreDetector(ZScoreParams(warmup=5, threshold=3.0))
    assert det.describe()["expected"] is None and det.describe()["warm"] is False
    for i in range(30):
        det.update(10.0 + (i % 3), float(i))
    d = det.describe()
    verdict = det.update(100.0, 30.0)
    assert d["expected"] == verdict.expected
    low, high = d["band"]
    assert math.isclose(high - d["expected"], 3.0 * d["std"])
    assert verdict.anomalous == (not low <= 100.0 <= high)


def test_adaptive_describe_reports_warmup_level_and_range() -> None:
    det = AdaptiveDetector(AdaptiveParams())
    for i in range(100):
        det.update(50.0 + (i % 5), 300.0 * i)
    d = det.describe()
    print(d)
    assert d["warm"] is True and d["seen"] == d["warmup"] == 60
    assert 50.0 <= d["expected"] <= 54.0
    assert d["band"][0] < d["expected"] < d["band"][1]
    assert d["range"] == [50.0, 54.0]


def test_a_detector_without_describe_says_nothing() -> None:
    class Plain(ValueDetector[DetectorParams]):
        kind = "plain"
        params_type = DetectorParams

        def update(self, value: float, ts: float) -> Verdict:
            return Verdict(0.0, math.nan, False, False)

        def to_state(self) -> dict[str, object]:
            return {}

        @classmethod
        def from_state(cls, params: DetectorParams, state: dict[str, object]) -> Plain:
            return cls(params)

    assert Plain(DetectorParams()).describe() == {}


def test_an_exported_series_is_explained_and_tapped_too() -> None:
    """[metrics] export_series wraps the detectors of a series too: explain sees through it."""
    rng = random.Random(5)
    values = [50.0 + rng.gauss(0, 1) for _ in range(60)] + [90.0] * 3
    plain = Pipeline(make_config(FAST))
    exported = Pipeline(make_config(FAST, metrics={"export_series": ["cpu*"]}))
    taps = Taps(points=20)
    _feed(plain, values[:30])
    _feed(exported, values[:30])
    assert taps.tap(exported, "cpu{host=a}")
    (watch,) = exported._cache["m|cpu{host=a}"].watches  # type: ignore[attr-defined]
    assert isinstance(watch.scorer, ZScoreDetector)  # through both wrappers: a tap and an export
    assert _feed(exported, values[30:], start=30) == _feed(plain, values[30:], start=30)
    doc = explain(exported, "cpu{host=a}", None, taps)
    assert doc is not None
    (det,) = doc["detectors"]
    assert det["kind"] == "zscore" and det["state"]["warm"] is True
    assert len(det["recent"]) == 20
    assert [w.value for w in exported.checkpoint()] == [w.value for w in plain.checkpoint()]
