"""ZScoreDetector against numpy / pure-Python references, and its guards."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from river import stats

from detectors.base import Direction, Transition, Verdict
from detectors.zscore import Baseline, ZScoreDetector, ZScoreParams

EPS = float(np.finfo(float).eps)


def feed(det: ZScoreDetector, values: Sequence[float]) -> list[Verdict]:
    return [det.update(x, float(t)) for t, x in enumerate(values)]


def transitions(verdicts: Sequence[Verdict]) -> list[tuple[int, Transition]]:
    return [(i, v.transition) for i, v in enumerate(verdicts) if v.transition is not None]


def reference_z(x: float, mean: float, var: float, min_std: float, min_std_ratio: float) -> float:
    std = math.sqrt(var) if var > 0.0 else 0.0
    return (x - mean) / max(std, min_std, min_std_ratio * abs(mean))


def shifting_series(seed: int, n: int = 3_000) -> list[float]:
    """Gaussian noise whose level and scale jump by orders of magnitude, with spikes."""
    rng = np.random.default_rng(seed)
    parts = [
        rng.normal(100.0, 5.0, n // 3),
        rng.normal(1e5, 300.0, n // 3),
        rng.normal(3.0, 0.1, n // 3),
    ]
    values = np.concatenate(parts)
    values[rng.integers(0, values.size, 30)] *= 7.0
    out: list[float] = values.tolist()
    return out


# --- baselines against references --------------------------------------------------------------


@pytest.mark.parametrize("fading_factor", [0.05, 0.3, 0.01])
def test_ewm_baseline_matches_the_reference_recurrence_bit_for_bit(fading_factor: float) -> None:
    """River: m = f*x + (1-f)*m, s = f*x*x + (1-f)*s, var = s - m*m; the first x seeds m and s."""
    params = ZScoreParams(
        fading_factor=fading_factor, warmup=1, learn_anomalies=True, min_std_ratio=0.0
    )
    det = ZScoreDetector(params)
    values = shifting_series(1)
    verdicts = feed(det, values)

    f = fading_factor
    m, s = values[0], values[0] * values[0]
    assert math.isnan(verdicts[0].expected)
    for x, v in zip(values[1:], verdicts[1:], strict=True):
        assert v.expected == m
        assert v.score == abs(reference_z(x, m, s - m * m, params.min_std, 0.0))
        m = f * x + (1.0 - f) * m
        s = f * (x * x) + (1.0 - f) * s


@pytest.mark.parametrize("window_size", [2, 7, 50])
def test_window_baseline_matches_numpy_at_every_step(window_size: int) -> None:
    params = ZScoreParams(
        baseline=Baseline.WINDOW,
        window_size=window_size,
        warmup=1,
        learn_anomalies=True,
        min_std_ratio=0.0,
    )
    det = ZScoreDetector(params)
    values = shifting_series(2)
    verdicts = feed(det, values)

    for t in range(1, len(values)):
        window = np.asarray(values[max(0, t - window_size) : t])
        mean = float(np.mean(window))
        var = float(np.var(window, ddof=1)) if window.size > 1 else 0.0
        z = reference_z(values[t], mean, var, params.min_std, 0.0)
        # ``revert`` leaves rounding of the order eps*x**2 from values that already left the
        # window, until the next recomputation (at most window_size points later).
        scale = float(np.max(np.abs(values[max(0, t - 2 * window_size - 1) : t])))
        var_error = 8 * EPS * scale**2
        z_error = abs(z) * var_error / (2 * max(var, params.min_std**2))
        assert verdicts[t].expected == pytest.approx(mean, rel=1e-12, abs=8 * EPS * scale), t
        assert verdicts[t].score == pytest.approx(abs(z), rel=1e-9, abs=z_error + 1e-12), t


# --- scoring rules -----------------------------------------------------------------------------


def test_warmup_learns_but_scores_zero() -> None:
    det = ZScoreDetector(ZScoreParams(warmup=5, fire_after=1))
    verdicts = feed(det, [10.0, 12.0, 1e6, -1e6, 11.0])
    assert [(v.score, v.anomalous, v.firing) for v in verdicts] == [(0.0, False, False)] * 5
    assert math.isnan(verdicts[0].expected)
    assert verdicts[1].expected == 10.0  # learned during warm-up
    assert det.update(11.0, 5.0).score > 0.0


def test_spike_is_scored_against_the_baseline_before_it() -> None:
    """Prequential: the spike does not dilute its own score even when it will be learned."""
    history = [10.0, 11.0, 9.0, 10.5, 9.5, 10.0, 10.2, 9.8]
    spike = 30.0
    det = ZScoreDetector(
        ZScoreParams(baseline="window", window_size=50, warmup=len(history), learn_anomalies=True)
    )
    feed(det, history)
    verdict = det.update(spike, 99.0)

    before = np.asarray(history)
    expected_z = (spike - before.mean()) / before.std(ddof=1)
    assert verdict.expected == pytest.approx(before.mean())
    assert verdict.score == pytest.approx(expected_z)
    with_spike = np.asarray([*history, spike])
    assert verdict.score > 2 * (spike - with_spike.mean()) / with_spike.std(ddof=1)


@pytest.mark.parametrize("baseline", list(Baseline))
def test_outliers_are_held_out_of_the_baseline(baseline: Baseline) -> None:
    rng = np.random.default_rng(3)
    normal = rng.normal(50.0, 2.0, 200).tolist()
    held = ZScoreDetector(ZScoreParams(baseline=baseline))
    learned = ZScoreDetector(ZScoreParams(baseline=baseline, learn_anomalies=True))
    for det in (held, learned):
        feed(det, normal)
    held_spike, learned_spike = held.update(500.0, 0.0), learned.update(500.0, 0.0)
    assert held_spike.anomalous
    assert learned_spike.anomalous
    assert held_spike.expected == learned_spike.expected

    assert held.update(50.0, 1.0).expected == held_spike.expected
    assert learned.update(50.0, 1.0).expected > learned_spike.expected + 1.0


@pytest.mark.parametrize("baseline", list(Baseline))
def test_lasting_level_shift_fires_then_resolves_once_relearned(baseline: Baseline) -> None:
    rng = np.random.default_rng(4)
    values = np.r_[rng.normal(100.0, 5.0, 300), rng.normal(150.0, 5.0, 300)].tolist()
    params = ZScoreParams(baseline=baseline)
    verdicts = feed(ZScoreDetector(params), values)

    (fired, first), (resolved, second) = transitions(verdicts)
    assert (fired, first) == (300 + params.fire_after - 1, Transition.FIRED)
    assert second is Transition.RESOLVED
    assert 300 + params.relearn_after < resolved <= 300 + params.relearn_after + 20
    assert verdicts[-1].expected == pytest.approx(150.0, abs=3.0)

    # Without relearning the shift would page forever: that is what relearn_after prevents.
    never = ZScoreDetector(ZScoreParams(baseline=baseline, relearn_after=10_000))
    assert transitions(feed(never, values)) == [(fired, Transition.FIRED)]


def test_learning_anomalies_lets_an_ewm_baseline_absorb_a_level_shift() -> None:
    """Why learn_anomalies defaults to False: a learned step inflates the EW variance at once."""
    rng = np.random.default_rng(5)
    values = np.r_[rng.normal(100.0, 5.0, 300), rng.normal(150.0, 5.0, 50)].tolist()
    learning = feed(ZScoreDetector(ZScoreParams(learn_anomalies=True)), values)
    assert sum(v.anomalous for v in learning[300:]) < 3
    assert transitions(learning) == []
    assert transitions(feed(ZScoreDetector(ZScoreParams()), values))[0] == (302, Transition.FIRED)


@pytest.mark.parametrize(
    ("direction", "flags_up", "flags_down"),
    [(Direction.UP, True, False), (Direction.DOWN, False, True), (Direction.BOTH, True, True)],
)
def test_direction_selects_which_deviations_score(
    direction: Direction, flags_up: bool, flags_down: bool
) -> None:
    det = ZScoreDetector(ZScoreParams(direction=direction, warmup=10, fire_after=1))
    feed(det, [9.0, 11.0] * 10)
    up, down = det.update(20.0, 0.0), det.update(0.0, 1.0)
    assert (up.anomalous, down.anomalous) == (flags_up, flags_down)
    assert (up.score > 8.0, down.score > 8.0) == (flags_up, flags_down)
    assert 0.0 in (up.score, down.score) or direction is Direction.BOTH


def test_fire_after_and_resolve_after() -> None:
    det = ZScoreDetector(ZScoreParams(warmup=20, fire_after=3, resolve_after=2))
    feed(det, [9.0, 11.0] * 10)
    pattern = [30.0, 10.0, 30.0, 30.0, 10.0, 30.0, 30.0, 30.0, 30.0, 10.0, 30.0, 10.0, 10.0, 10.0]
    verdicts = feed(det, pattern)
    assert [v.anomalous for v in verdicts] == [x == 30.0 for x in pattern]
    assert transitions(verdicts) == [(7, Transition.FIRED), (12, Transition.RESOLVED)]
    assert [v.firing for v in verdicts] == [False] * 7 + [True] * 5 + [False] * 2


# --- guards ------------------------------------------------------------------------------------


@pytest.mark.parametrize("baseline", list(Baseline))
def test_flat_series_is_quiet_then_a_change_is_detected(baseline: Baseline) -> None:
    det = ZScoreDetector(ZScoreParams(baseline=baseline))
    flat = feed(det, [5.0] * 1_000)
    assert all(v.score == 0.0 and not v.anomalous for v in flat)
    assert all(v.expected == 5.0 for v in flat[1:])

    assert not det.update(5.000001, 0.0).anomalous  # a wiggle within 1% of the level
    changed = feed(det, [6.0] * 3)
    assert [v.anomalous for v in changed] == [True] * 3
    assert changed[-1].transition is Transition.FIRED
    assert all(math.isfinite(v.score) for v in changed)


def test_relative_floor_is_what_keeps_a_wiggle_quiet() -> None:
    absolute_only = ZScoreDetector(ZScoreParams(min_std_ratio=0.0))
    feed(absolute_only, [5.0] * 100)
    wiggle = absolute_only.update(5.000001, 0.0)
    assert wiggle.anomalous
    assert wiggle.score == pytest.approx(1e-6 / 1e-9, rel=1e-6)  # floored by min_std, finite


def test_ewm_variance_rounding_below_zero_is_clamped() -> None:
    value = 603.9200385961944  # river's EWVar of this constant series is -5.8e-11 after 2 points
    river_var = stats.EWVar(fading_factor=0.05)
    river_var.update(value)
    river_var.update(value)
    assert river_var.get() < 0.0

    det = ZScoreDetector(ZScoreParams(warmup=2))
    verdicts = feed(det, [value] * 50)
    assert all(v.score == 0.0 and not v.anomalous for v in verdicts)


def test_window_variance_rounding_below_zero_is_clamped() -> None:
    river_var = stats.Var(ddof=1)  # what the window baseline does after a huge value leaves
    for x in (1e7, 7.7, 7.7):
        river_var.update(x)
    river_var.revert(1e7)
    river_var.update(7.7)
    assert river_var.get() < 0.0

    det = ZScoreDetector(ZScoreParams(baseline="window", window_size=3, warmup=4))
    verdicts = feed(det, [1e7, 7.7, 7.7, 7.7, 7.7, 7.7])
    assert all(math.isfinite(v.score) and not v.anomalous for v in verdicts)
    assert verdicts[4].expected == pytest.approx(7.7)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 1e150, -1e200])
def test_invalid_values_are_not_learned_and_keep_the_alert_state(bad: float) -> None:
    det = ZScoreDetector(ZScoreParams(fire_after=2, resolve_after=2))
    feed(det, [9.0, 11.0] * 20)
    assert det.update(30.0, 0.0).anomalous
    assert det.update(30.0, 1.0).transition is Transition.FIRED
    det.update(10.0, 2.0)  # one normal point: half-way to resolving
    state = det.to_state()

    verdict = det.update(bad, 3.0)
    assert (verdict.score, verdict.anomalous, verdict.firing, verdict.transition) == (
        0.0,
        False,
        True,
        None,
    )
    assert math.isfinite(verdict.expected)
    assert det.to_state() == state
    assert det.update(10.0, 4.0).transition is Transition.RESOLVED


def test_invalid_value_before_any_learning_has_no_expected() -> None:
    det = ZScoreDetector(ZScoreParams())
    assert math.isnan(det.update(math.nan, 0.0).expected)
    assert det.to_state()["seen"] == 0


@pytest.mark.parametrize("baseline", list(Baseline))
def test_scores_stay_finite_for_extreme_values(baseline: Baseline) -> None:
    det = ZScoreDetector(
        ZScoreParams(baseline=baseline, warmup=2, min_std_ratio=0.0, learn_anomalies=True)
    )
    values = [0.0, 0.0, 9.9e149, -9.9e149, 0.0, 1e-300, 9.9e149, 9.9e149, -9.9e149] * 30
    verdicts = feed(det, values)
    assert all(math.isfinite(v.score) and v.score >= 0.0 for v in verdicts)
    assert all(math.isfinite(v.expected) for v in verdicts[1:])
    assert max(v.score for v in verdicts) > 1e100


# --- state -------------------------------------------------------------------------------------


def test_restore_rejects_an_incompatible_baseline() -> None:
    det = ZScoreDetector(ZScoreParams())
    feed(det, [1.0, 2.0, 3.0])
    state = json.loads(json.dumps(det.to_state()))
    with pytest.raises(ValueError, match="baseline"):
        ZScoreDetector.from_state(ZScoreParams(baseline="window"), state)
    with pytest.raises(ValueError, match="fading_factor"):
        ZScoreDetector.from_state(ZScoreParams(fading_factor=0.1), state)
    with pytest.raises(ValueError, match="'sq' must be a finite number"):
        ZScoreDetector.from_state(ZScoreParams(), {**state, "sq": None})
    old = _river_state([1.0, 2.0, 3.0], 0.05, {**state})
    with pytest.raises(ValueError, match="ewvar"):
        ZScoreDetector.from_state(ZScoreParams(), {**old, "ewvar": "AAAA"})


def _river_state(values: list[float], f: float, state: dict[str, Any]) -> dict[str, Any]:
    """``state`` as the river-backed version saved it (its baseline as river's binary blobs)."""
    mean, var = stats.EWMean(f)._ewmean, stats.EWVar(f)._ewvar
    for x in values:
        mean.update(x)
        var.update(x)
    old = {k: v for k, v in state.items() if k not in ("mean", "sq", "started")}
    old["ewmean"] = base64.b64encode(mean.__getstate__()).decode()
    old["ewvar"] = base64.b64encode(var.__getstate__()).decode()
    return old


def test_a_state_saved_by_the_river_backed_version_still_loads() -> None:
    values = shifting_series(3)[:300]
    params = ZScoreParams(learn_anomalies=True)  # every value enters the baseline
    det = ZScoreDetector(params)
    feed(det, values)
    restored = ZScoreDetector.from_state(params, _river_state(values, 0.05, det.to_state()))
    for x in shifting_series(4)[:50]:
        a, b = det.update(x, 0.0), restored.update(x, 0.0)
        assert a.expected == b.expected  # river's mean recurrence is the same to the bit
        assert b.score == pytest.approx(a.score, rel=1e-9)  # its variance rounds differently
        assert (a.anomalous, a.firing) == (b.anomalous, b.firing)


def test_restore_accepts_new_alerting_parameters() -> None:
    det = ZScoreDetector(ZScoreParams())
    feed(det, [9.0, 11.0] * 20)
    state = json.loads(json.dumps(det.to_state()))
    stricter = ZScoreDetector.from_state(ZScoreParams(threshold=100.0), state)
    strict_verdict, default_verdict = stricter.update(30.0, 0.0), det.update(30.0, 0.0)
    assert (strict_verdict.score, strict_verdict.expected) == (
        default_verdict.score,
        default_verdict.expected,
    )
    assert default_verdict.anomalous
    assert not strict_verdict.anomalous


def test_restore_into_a_smaller_window_keeps_the_newest_points() -> None:
    values = np.random.default_rng(6).normal(0.0, 1.0, 80).tolist()
    big = ZScoreDetector(ZScoreParams(baseline="window", window_size=50))
    feed(big, values)
    state: dict[str, Any] = json.loads(json.dumps(big.to_state()))
    small = ZScoreDetector.from_state(ZScoreParams(baseline="window", window_size=10), state)
    assert small.update(0.0, 0.0).expected == pytest.approx(np.mean(values[-10:]), abs=1e-12)
