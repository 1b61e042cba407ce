"""[metrics] export_series: the pipeline's exported series and their gauges at scrape time.

Each test builds its own ``CollectorRegistry`` and reads values with ``get_sample_value``.
"""

from __future__ import annotations

import math
import random
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, generate_latest

from engine.config import parse_config
from engine.core.pipeline import Pipeline
from engine.model.alert import Alert
from engine.model.events import MetricSample
from engine.runtime.series_metrics import SERIES_METRICS, SeriesCollector


def pipeline(**metrics: Any) -> Pipeline:
    cfg = parse_config(
        {
            "metrics": metrics,
            "series": {"metric_detectors": ["zscore", "adaptive"]},
            "detectors": {"zscore": {"warmup": 20}},
        },
        "cfg.toml",
        {},
    )
    return Pipeline(cfg)


def feed(p: Pipeline, name: str, values: list[float], start: int = 0, **labels: str) -> list[Alert]:
    """Samples 10 s apart, the first at step ``start``."""
    out: list[Alert] = []
    for i, v in enumerate(values, start):
        p.metric(MetricSample(name, v, 1_700_000_000.0 + 10.0 * i, dict(labels)), 0, out)
    return out


def noise(n: int, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [100.0 + rng.gauss(0.0, 2.0) for _ in range(n)]


def registry_of(p: Pipeline) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(SeriesCollector(p.exported_views))
    return registry


def test_exported_series_show_value_expected_band_and_score() -> None:
    p = pipeline(export_series=["cpu*"])
    feed(p, "cpu", noise(200), host="a")
    feed(p, "mem", noise(200), host="a")  # not chosen
    registry = registry_of(p)
    got = registry.get_sample_value
    series = {"series": "cpu{host=a}"}
    zscore = {**series, "detector": "zscore"}
    adaptive = {**series, "detector": "adaptive"}
    print(generate_latest(registry).decode())
    value = got("kestrel_series_value", series)
    assert value is not None and 90.0 < value < 110.0
    for labels in (zscore, adaptive):
        expected = got("kestrel_series_expected", labels)
        low = got("kestrel_series_band_low", labels)
        high = got("kestrel_series_band_high", labels)
        score = got("kestrel_series_anomaly_score", labels)
        assert expected is not None and low is not None and high is not None and score is not None
        assert low < expected < high, labels
        assert 95.0 < expected < 105.0
        assert score >= 0.0
    # zscore's band is mean +- threshold (4 by default) x std: about 100 +- 8.
    z_low = got("kestrel_series_band_low", zscore)
    z_high = got("kestrel_series_band_high", zscore)
    assert z_low is not None and z_high is not None
    assert 4.0 < (z_high - z_low) / 2 < 16.0
    assert got("kestrel_series_value", {"series": "mem{host=a}"}) is None
    assert got("kestrel_series_exported") == 1.0


def test_a_value_outside_the_zscore_band_scores_above_the_threshold() -> None:
    p = pipeline(export_series=["cpu"])
    feed(p, "cpu", noise(100))
    (view,) = p.exported_views()
    z = {d.detector: d for d in view.detectors}["zscore"]
    print(view)
    out = feed(p, "cpu", [z.high + 1.0], start=100)
    (after,) = p.exported_views()
    score = {d.detector: d for d in after.detectors}["zscore"].score
    assert after.value == z.high + 1.0
    assert score > 4.0  # the default threshold
    print("alerts", [a.summary for a in out])


def test_the_number_of_exported_series_is_bounded() -> None:
    p = pipeline(export_series=["*"], export_max_series=3)
    for host in "abcdefg":
        feed(p, "cpu", noise(5), host=host)
    views = p.exported_views()
    print([v.series for v in views])
    assert [v.series for v in views] == ["cpu{host=a}", "cpu{host=b}", "cpu{host=c}"]
    assert registry_of(p).get_sample_value("kestrel_series_exported") == 3.0


def test_nothing_is_exported_by_default() -> None:
    p = pipeline()
    feed(p, "cpu", noise(30))
    assert p.exported_views() == []
    text = generate_latest(registry_of(p)).decode()
    assert "kestrel_series_exported 0.0" in text
    assert "kestrel_series_value{" not in text


def test_exported_series_save_and_restore_like_any_other() -> None:
    values = noise(120)
    plain, exported = pipeline(), pipeline(export_series=["cpu"])
    feed(plain, "cpu", values)
    feed(exported, "cpu", values)
    (a,), (b,) = plain.checkpoint(), exported.checkpoint()
    assert orjson.loads(a.value) == orjson.loads(b.value)
    # Restored into a fresh exporting pipeline, the series is exported again and goes on.
    saved = {b.key: b.value}
    again = Pipeline(exported.config, loader=saved.get)
    feed(again, "cpu", [100.0], start=120)
    (view,) = again.exported_views()
    assert view.value == 100.0 and all(not math.isnan(d.expected) for d in view.detectors)


def test_evicted_series_leave_the_export() -> None:
    p = pipeline(export_series=["cpu"])
    feed(p, "cpu", noise(10))
    assert len(p.exported_views()) == 1
    p.release([0])
    assert p.exported_views() == []


def test_every_series_metric_name_is_registered() -> None:
    p = pipeline(export_series=["cpu"])
    feed(p, "cpu", noise(30))
    names = {m.name for m in registry_of(p).collect()}
    assert names == set(SERIES_METRICS)
