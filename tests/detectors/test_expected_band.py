"""``expected_band()``: a read-only view of what a detector expects, for charts."""

from __future__ import annotations

import random

import pytest

from detectors.adaptive import AdaptiveDetector, AdaptiveParams
from detectors.registry import DETECTORS, build
from detectors.zscore import ZScoreDetector, ZScoreParams


def noise(n: int, seed: int = 3, mean: float = 50.0, sd: float = 2.0) -> list[float]:
    rng = random.Random(seed)
    return [mean + rng.gauss(0.0, sd) for _ in range(n)]


@pytest.mark.parametrize("baseline", ["ewm", "window"])
def test_zscore_band_is_where_the_score_crosses_the_threshold(baseline: str) -> None:
    det = ZScoreDetector(ZScoreParams(warmup=30, threshold=3.0, baseline=baseline, fire_after=1))
    assert det.expected_band() is None
    for t, v in enumerate(noise(300)):
        det.update(v, float(t))
    band = det.expected_band()
    assert band is not None
    expected, low, high = band
    print(baseline, band)
    assert low < expected < high
    assert abs(expected - 50.0) < 1.0
    assert 3.0 < (high - low) / 2 < 9.0  # 3 sigma of sd 2, give or take
    state = det.to_state()
    assert det.expected_band() == band and det.to_state() == state  # read only
    inside = det.update(high - 0.01 * (high - low), 300.0)
    assert inside.score <= 3.0
    det2 = ZScoreDetector.from_state(det.params, state)
    outside = det2.update(high + 0.01 * (high - low), 300.0)
    assert outside.score > 3.0


def test_adaptive_band_is_the_long_run_level_and_record_distance() -> None:
    det = AdaptiveDetector(AdaptiveParams())
    assert det.expected_band() is None
    for i, v in enumerate(noise(500)):
        det.update(v, 300.0 * i)
    band = det.expected_band()
    assert band is not None
    expected, low, high = band
    print(band)
    assert abs(expected - 50.0) < 1.5
    # record_min_z (4) long-run standard deviations of noise with sd 2.
    assert 4.0 < (high - low) / 2 < 14.0
    state = det.to_state()
    det.expected_band()
    assert det.to_state() == state


def test_other_detectors_default_to_no_band() -> None:
    for kind, cls in DETECTORS.items():
        if kind in ("zscore", "adaptive") or not hasattr(cls, "expected_band"):
            continue
        det = build(kind, cls.params_type())
        assert det.expected_band() is None, kind  # type: ignore[attr-defined]
