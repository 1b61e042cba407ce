"""ErrorSpikeDetector against numpy references and exact binomial tails, and its rules."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import pytest

from detectors.base import Transition, Verdict
from detectors.error_spike import (
    ErrorSpikeDetector,
    ErrorSpikeParams,
    Statistic,
    likelihood_ratio_z,
    wald_z,
)

Window = tuple[int, int]


def feed(det: ErrorSpikeDetector, windows: Sequence[Window]) -> list[Verdict]:
    return [det.update_window(e, n, 60.0 * t) for t, (e, n) in enumerate(windows)]


def transitions(verdicts: Sequence[Verdict]) -> list[tuple[int, Transition]]:
    return [(i, v.transition) for i, v in enumerate(verdicts) if v.transition is not None]


def binomial_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), exactly."""
    return math.fsum(math.comb(n, j) * p**j * (1.0 - p) ** (n - j) for j in range(k, n + 1))


GRID_K, GRID_N, GRID_P = (
    a.ravel()
    for a in np.meshgrid(
        np.array([0, 1, 2, 5, 8, 13, 50, 99, 100]),
        np.array([100, 1000]),
        np.array([0.001, 0.01, 0.2, 0.9]),
    )
)


def test_wald_z_matches_numpy() -> None:
    expected = (GRID_K - GRID_N * GRID_P) / np.sqrt(GRID_N * GRID_P * (1.0 - GRID_P))
    got = [wald_z(int(k), int(n), float(p)) for k, n, p in zip(GRID_K, GRID_N, GRID_P, strict=True)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_likelihood_ratio_z_matches_numpy() -> None:
    k, n, p = GRID_K.astype(float), GRID_N.astype(float), GRID_P
    r = k / n
    with np.errstate(divide="ignore", invalid="ignore"):
        deviance = np.where(k > 0, k * np.log(r / p), 0.0) + np.where(
            k < n, (n - k) * np.log((1.0 - r) / (1.0 - p)), 0.0
        )
    expected = np.where(r > p, np.sqrt(2.0 * deviance), 0.0)
    got = [
        likelihood_ratio_z(int(a), int(b), float(c))
        for a, b, c in zip(GRID_K, GRID_N, GRID_P, strict=True)
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert likelihood_ratio_z(0, 0, 0.5) == 0.0


def test_likelihood_ratio_tail_is_close_to_normal_where_wald_is_not() -> None:
    """The documented reason for the default: 100 events per window at a 1% baseline."""
    n, p0, threshold = 100, 0.01, 4.0
    normal_tail = 0.5 * math.erfc(threshold / math.sqrt(2.0))  # 3.2e-5
    first_wald = next(k for k in range(n + 1) if wald_z(k, n, p0) > threshold)
    first_lr = next(k for k in range(n + 1) if likelihood_ratio_z(k, n, p0) > threshold)
    assert (first_wald, first_lr) == (5, 8)
    assert binomial_tail(first_wald, n, p0) > 100 * normal_tail
    assert binomial_tail(first_lr, n, p0) < normal_tail


@pytest.mark.parametrize("statistic", list(Statistic))
def test_scores_and_baseline_match_the_reference(statistic: Statistic) -> None:
    rng = np.random.default_rng(1)
    totals = rng.integers(0, 500, 2_000)
    errors = rng.binomial(totals, rng.choice([0.01, 0.05, 0.3], totals.size))
    windows = list(zip(errors.tolist(), totals.tolist(), strict=True))
    params = ErrorSpikeParams(statistic=statistic, warmup_windows=1, learn_anomalies=True)
    verdicts = feed(ErrorSpikeDetector(params), windows)

    z_of = likelihood_ratio_z if statistic is Statistic.LIKELIHOOD_RATIO else wald_z
    decay = 1.0 - params.fading_factor
    sum_errors = sum_total = 0.0
    learned = 0
    for (k, n), v in zip(windows, verdicts, strict=True):
        baseline = sum_errors / sum_total if sum_total else math.nan
        assert v.expected == baseline or (math.isnan(baseline) and math.isnan(v.expected))
        if n and learned:
            p0 = max(baseline, params.min_baseline_ratio)
            assert v.score == max(z_of(k, n, p0), 0.0)
            assert v.anomalous == (
                v.score > params.threshold and k >= params.min_errors and k / n >= params.min_ratio
            )
        else:
            assert (v.score, v.anomalous) == (0.0, False)
        if n:
            sum_errors, sum_total = decay * sum_errors + k, decay * sum_total + n
            learned += 1
    assert sum(v.anomalous for v in verdicts) > 10


# --- rules -------------------------------------------------------------------------------------


def test_warmup_counts_non_empty_windows_only() -> None:
    det = ErrorSpikeDetector(ErrorSpikeParams(warmup_windows=2))
    verdicts = feed(det, [(0, 0), (100, 100), (0, 0), (90, 100)])
    assert [(v.score, v.anomalous) for v in verdicts] == [(0.0, False)] * 4
    assert math.isnan(verdicts[1].expected)
    assert verdicts[3].expected == 1.0
    assert det.update_window(0, 100, 0.0).expected > 0.9  # scored now, and learned: ratio drops


def test_a_service_without_past_errors_uses_the_floor() -> None:
    det = ErrorSpikeDetector(ErrorSpikeParams(min_errors=1, min_ratio=0.0))
    feed(det, [(0, 1000)] * 20)
    one = det.update_window(1, 100, 0.0)
    assert one.expected == 0.0
    assert one.score == pytest.approx(likelihood_ratio_z(1, 100, 0.01))
    assert not one.anomalous
    assert det.update_window(20, 100, 0.0).anomalous


@pytest.mark.parametrize(
    ("window", "params", "anomalous"),
    [
        ((4, 20), {}, False),  # 20% errors and z > 4, but fewer than min_errors
        ((4, 20), {"min_errors": 4}, True),
        ((300, 10_000), {}, False),  # z > 4, but a 3% ratio is under min_ratio
        ((300, 10_000), {"min_ratio": 0.03}, True),
    ],
)
def test_min_errors_and_min_ratio_gate_significant_windows(
    window: Window, params: dict[str, int | float], anomalous: bool
) -> None:
    det = ErrorSpikeDetector(ErrorSpikeParams.model_validate(params))
    feed(det, [(1, 1000)] * 30)
    verdict = det.update_window(*window, 0.0)
    assert verdict.score > 4.0
    assert verdict.anomalous is anomalous


def test_below_baseline_scores_zero() -> None:
    det = ErrorSpikeDetector(ErrorSpikeParams())
    feed(det, [(100, 1000)] * 30)
    assert det.update_window(100, 1000, 0.0).score < 1e-6  # at the baseline (up to rounding)
    assert det.update_window(50, 1000, 0.0).score == 0.0
    assert det.update_window(0, 1000, 0.0).score == 0.0


def test_a_baseline_of_only_errors_never_scores() -> None:
    det = ErrorSpikeDetector(ErrorSpikeParams(statistic="wald"))
    feed(det, [(10, 10)] * 10)
    verdict = det.update_window(10, 10, 0.0)
    assert (verdict.score, verdict.expected) == (0.0, 1.0)


def test_fires_on_one_window_and_resolves_after_two_normal_or_empty_ones() -> None:
    det = ErrorSpikeDetector(ErrorSpikeParams())
    feed(det, [(2, 200)] * 20)
    verdicts = feed(
        det, [(60, 200), (2, 200), (40, 200), (2, 200), (0, 0), (50, 200), (0, 0), (0, 0)]
    )
    assert [v.anomalous for v in verdicts] == [True, False, True, False, False, True, False, False]
    assert transitions(verdicts) == [
        (0, Transition.FIRED),
        (4, Transition.RESOLVED),
        (5, Transition.FIRED),
        (7, Transition.RESOLVED),
    ]


def test_empty_windows_are_not_learned() -> None:
    det = ErrorSpikeDetector(ErrorSpikeParams())
    feed(det, [(3, 100), (1, 300)] * 10)
    state = det.to_state()
    verdict = det.update_window(0, 0, 0.0)
    assert (verdict.score, verdict.anomalous, verdict.expected) == (
        0.0,
        False,
        state["errors"] / state["total"],
    )
    assert det.to_state() == state


def test_anomalous_windows_are_held_out_until_relearn_after() -> None:
    params = ErrorSpikeParams(relearn_after=10)
    det = ErrorSpikeDetector(params)
    feed(det, [(10, 1000)] * 50)
    verdicts = feed(det, [(300, 1000)] * 100)
    assert all(v.expected == pytest.approx(0.01) for v in verdicts[: params.relearn_after + 1])
    assert verdicts[params.relearn_after + 2].expected > 0.02
    fired, resolved = transitions(verdicts)
    assert fired == (0, Transition.FIRED)
    assert resolved[1] is Transition.RESOLVED
    # Once relearning, the alert lasts until the baseline ratio has caught up with the new one.
    assert params.relearn_after < resolved[0] < params.relearn_after + 2 / params.fading_factor

    learning = ErrorSpikeDetector(ErrorSpikeParams(learn_anomalies=True))
    feed(learning, [(10, 1000)] * 50)
    assert feed(learning, [(300, 1000)] * 2)[1].expected > 0.02


def test_update_treats_each_value_as_one_event() -> None:
    det = ErrorSpikeDetector(ErrorSpikeParams(warmup_windows=4))
    for i, value in enumerate([0.0, 1.0, -3.0, 2.5]):
        det.update(value, float(i))
    assert det.baseline_ratio == pytest.approx(0.5, abs=0.02)
    state = det.to_state()
    assert det.update(math.nan, 9.0) == Verdict(0.0, det.baseline_ratio, False, False)
    assert det.to_state() == state


@pytest.mark.parametrize(("errors", "total"), [(-1, 10), (11, 10), (0, -1)])
def test_impossible_counts_are_rejected_without_learning(errors: int, total: int) -> None:
    det = ErrorSpikeDetector(ErrorSpikeParams())
    feed(det, [(1, 10)] * 3)
    state = det.to_state()
    with pytest.raises(ValueError, match="errors"):
        det.update_window(errors, total, 0.0)
    assert det.to_state() == state


def test_restore_rejects_inconsistent_sums() -> None:
    det = ErrorSpikeDetector(ErrorSpikeParams())
    feed(det, [(1, 10)] * 3)
    state = json.loads(json.dumps(det.to_state()))
    with pytest.raises(ValueError, match="errors <= total"):
        ErrorSpikeDetector.from_state(ErrorSpikeParams(), {**state, "errors": state["total"] + 1})
