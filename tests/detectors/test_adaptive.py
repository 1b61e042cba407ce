"""``adaptive`` and its parts: ``seasonal`` forecaster bank and the anomaly likelihood."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pydantic import ValidationError

from detectors.adaptive import AdaptiveDetector, AdaptiveParams
from detectors.base import Transition
from detectors.likelihood import AnomalyLikelihood
from detectors.seasonal import SeasonalBaseline, SeasonalDetector, SeasonalParams

STEP = 300.0  # seconds between points: 288 points a day


def _daily(n: int, rng: np.random.Generator, start: int = 0) -> list[float]:
    """A daily pattern: quiet nights, a busy plateau 09:00-17:00, small noise."""
    out = []
    for i in range(start, start + n):
        hour = (i * STEP / 3600.0) % 24.0
        out.append((80.0 if 9.0 <= hour < 17.0 else 20.0) + float(rng.normal(0.0, 1.0)))
    return out


def test_seasonal_picks_daily_profile_and_forecasts_the_peak() -> None:
    rng = np.random.default_rng(3)
    base = SeasonalBaseline(SeasonalParams())
    values = _daily(288 * 5, rng)
    for i, v in enumerate(values):
        base.score(v, i * STEP)
        base.learn(v, i * STEP)
    assert base.best == "daily"
    nine_am = (288 * 5 + 108) * STEP  # 09:00 on day 6
    z_peak, expected = base.score(80.0, nine_am)
    assert expected == pytest.approx(80.0, abs=3.0)
    assert z_peak < 3.0
    z_missing, _ = base.score(20.0, nine_am)
    assert z_missing > 20.0


def test_adaptive_does_not_page_on_daily_peaks_but_on_a_missing_one() -> None:
    rng = np.random.default_rng(5)
    det = AdaptiveDetector(AdaptiveParams())
    values = _daily(288 * 7, rng)
    normal = [det.update(v, i * STEP) for i, v in enumerate(values)]
    assert [v for v in normal[288 * 2 :] if v.transition is Transition.FIRED] == []
    # Day 8: the 09:00 peak does not come.
    broken = [
        det.update(20.0 + float(rng.normal(0.0, 1.0)), (288 * 7 + i) * STEP)
        for i in range(100, 160)
    ]
    fired = [i for i, v in enumerate(broken) if v.transition is Transition.FIRED]
    assert fired, "missing daily peak not detected"
    assert fired[0] <= 15  # the peak is due at index 8 (09:00)


def test_adaptive_detects_slow_drift_to_unseen_level() -> None:
    rng = np.random.default_rng(11)
    det = AdaptiveDetector(AdaptiveParams())
    for i in range(3000):
        det.update(50.0 + float(rng.normal(0.0, 2.0)), i * STEP)
    drift = [
        det.update(50.0 + 0.05 * k + float(rng.normal(0.0, 2.0)), (3000 + k) * STEP)
        for k in range(600)
    ]
    fired = [k for k, v in enumerate(drift) if v.transition is Transition.FIRED]
    assert fired
    assert fired[0] < 400


def test_adaptive_scores_stay_distinct_near_the_top() -> None:
    rng = np.random.default_rng(2)
    det = AdaptiveDetector(AdaptiveParams())
    scores = [det.update(float(v), i * STEP).score for i, v in enumerate(rng.standard_cauchy(4000))]
    top = sorted(scores)[-50:]
    assert len(set(top)) == len(top)
    assert all(math.isfinite(s) and s >= 0.0 for s in scores)


def test_adaptive_state_round_trip_mid_stream_is_exact() -> None:
    rng = np.random.default_rng(8)
    values = _daily(2000, rng)
    values[1500] = 500.0
    params = AdaptiveParams()
    first = AdaptiveDetector(params)
    for i, v in enumerate(values[:1000]):
        first.update(v, i * STEP)
    clone = AdaptiveDetector.from_state(params, json.loads(json.dumps(first.to_state())))
    for i, v in enumerate(values[1000:], start=1000):
        a, b = first.update(v, i * STEP), clone.update(v, i * STEP)
        assert (a.score.hex(), a.transition) == (b.score.hex(), b.transition), i


def test_state_of_other_bucket_width_is_rejected() -> None:
    det = SeasonalDetector(SeasonalParams())
    det.update(1.0, 0.0)
    other = SeasonalParams(bucket_seconds=600.0)
    with pytest.raises(ValueError, match="daily"):
        SeasonalDetector.from_state(other, det.to_state())


def test_likelihood_judges_a_raw_score_against_its_own_history() -> None:
    def burst_after(noise: float) -> float:
        lik = AnomalyLikelihood(short_window=5, fading_factor=0.002, cap=1e9)
        rng = np.random.default_rng(4)
        for v in np.abs(rng.normal(0.0, noise, 3000)):
            lik.update(float(v))
        return max(lik.update(6.0) for _ in range(5))

    assert burst_after(0.5) > 5.0  # 6 is extraordinary for a quiet raw score
    assert burst_after(4.0) < 3.0  # and routine for a noisy one


@pytest.mark.parametrize(
    ("field", "value"),
    [("short_window", 0), ("likelihood_fading", 1.0), ("peak_decay", 1.5), ("threshold", 0.0)],
)
def test_bad_parameters_name_the_field(field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        AdaptiveParams.model_validate({field: value})
