"""The contract every registered detector must meet, run over each entry of ``DETECTORS``.

A detector added to the registry is checked automatically. Detectors whose input is not a float
series (``error_spike`` takes per-window counts) get a feed adapter in ``ADAPTERS``; every other
kind is driven through the generic ``update(value, ts)`` with Gaussian values.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import annotated_types
import numpy as np
import orjson
import pytest
from pydantic import ValidationError

# Submodules, not the package: with tests/conftest.py on sys.path, ``import detectors`` can
# resolve to the namespace package tests/detectors (see the report on pytest's import mode).
from detectors.base import Detector, DetectorParams, Input, Transition, Verdict
from detectors.registry import DETECTORS, build, kinds_for, restore

#: Detectors of numbers (message detectors are not driven by these scenarios yet).
NUMERIC = kinds_for(Input.VALUES, Input.WINDOWS)

Item = Any  # one input of a detector: a float, or an (errors, total) pair for error_spike


@dataclass(frozen=True)
class Adapter:
    """How to drive one detector kind with generic scenarios."""

    #: ``stationary(rng, n)``: n items from one unchanging distribution.
    stationary: Callable[[np.random.Generator, int], list[Item]]
    #: ``shifted(rng, n)``: n items from a distribution far above the stationary one.
    shifted: Callable[[np.random.Generator, int], list[Item]]
    #: n identical items.
    constant: Callable[[int], list[Item]]
    #: Extreme but valid items (must give finite, non-negative scores).
    extreme: list[Item]
    feed: Callable[[Detector[Any], Item, float], Verdict]
    warmup: Callable[[DetectorParams], int]


def _value_warmup(params: DetectorParams) -> int:
    warmup = getattr(params, "warmup", None)
    if not isinstance(warmup, int):
        raise TypeError(
            f"{type(params).__name__} has no int 'warmup': give its detector an Adapter in "
            "tests/detectors/test_conformance.py"
        )
    return warmup


VALUES = Adapter(
    stationary=lambda rng, n: rng.normal(100.0, 5.0, n).tolist(),
    shifted=lambda rng, n: rng.normal(200.0, 5.0, n).tolist(),  # +20 sigma
    constant=lambda n: [42.0] * n,
    extreme=[0.0, -0.0, 1e-300, -1e-300, 1e149, -1e149, 5e-324, 1e149, 3.0, -7.5, 1e6],
    feed=lambda det, item, ts: det.update(item, ts),
    warmup=_value_warmup,
)


def _windows(rng: np.random.Generator, n: int, ratio: float) -> list[Item]:
    totals = rng.integers(200, 2000, n)
    return list(zip(rng.binomial(totals, ratio).tolist(), totals.tolist(), strict=True))


COUNTS = Adapter(
    stationary=lambda rng, n: _windows(rng, n, 0.02),
    shifted=lambda rng, n: _windows(rng, n, 0.2),
    constant=lambda n: [(5, 100)] * n,
    extreme=[(0, 0), (1, 1), (0, 10**9), (10**9, 10**9), (1, 10**9), (10**9 - 1, 10**9), (0, 1)],
    feed=lambda det, item, ts: det.update_window(item[0], item[1], ts),  # type: ignore[attr-defined]
    warmup=lambda params: params.warmup_windows,  # type: ignore[attr-defined]
)

ADAPTERS: dict[str, Adapter] = {"error_spike": COUNTS}

#: Parameter sets checked besides the defaults.
VARIANTS: dict[str, list[dict[str, Any]]] = {
    "zscore": [{"baseline": "window"}, {"direction": "up"}],
    "error_spike": [{"statistic": "wald"}],
}


@dataclass(frozen=True)
class Case:
    kind: str
    overrides: dict[str, Any]

    @property
    def adapter(self) -> Adapter:
        return ADAPTERS.get(self.kind, VALUES)

    def params(self, **extra: Any) -> DetectorParams:
        return DETECTORS[self.kind].params_type.model_validate({**self.overrides, **extra})

    def build(self, **extra: Any) -> Detector[Any]:
        return build(self.kind, self.params(**extra))


CASES = [
    pytest.param(Case(kind, overrides), id="-".join([kind, *map(str, overrides.values())]))
    for kind in NUMERIC
    for overrides in [{}, *VARIANTS.get(kind, [])]
]
KINDS = pytest.mark.parametrize("kind", NUMERIC)
ALL_CASES = pytest.mark.parametrize("case", CASES)


def run(case: Case, det: Detector[Any], items: Iterable[Item], t0: float = 0.0) -> list[Verdict]:
    return [case.adapter.feed(det, item, t0 + 60.0 * i) for i, item in enumerate(items)]


def key(v: Verdict) -> tuple[Any, ...]:
    """A verdict compared bit for bit (``float.hex`` also makes ``nan`` equal to itself)."""
    return (v.score.hex(), v.expected.hex(), v.anomalous, v.firing, v.transition)


def via_json(state: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(state, allow_nan=False))
    return loaded


def assert_json_types(value: Any, path: str = "state") -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str), f"{path}: non-str key {k!r}"
            assert_json_types(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            assert_json_types(v, f"{path}[{i}]")
    elif isinstance(value, float):
        assert math.isfinite(value), f"{path}: non-finite float {value!r}"
    else:
        assert value is None or type(value) in (str, int, bool), f"{path}: {type(value)}"


def assert_sane(verdicts: Sequence[Verdict]) -> None:
    for i, v in enumerate(verdicts):
        assert math.isfinite(v.score), f"point {i}: score {v.score}"
        assert v.score >= 0.0, f"point {i}: score {v.score}"
        assert not math.isinf(v.expected), f"point {i}: expected {v.expected}"


# --- registry and parameters -------------------------------------------------------------------


@KINDS
def test_registered_under_its_own_kind(kind: str) -> None:
    cls = DETECTORS[kind]
    assert cls.kind == kind
    assert issubclass(cls.params_type, DetectorParams)
    cls.params_type()  # every parameter has a default


@KINDS
def test_every_parameter_is_documented(kind: str) -> None:
    fields = DETECTORS[kind].params_type.model_fields
    undocumented = [name for name, field in fields.items() if not field.description]
    assert undocumented == []


@KINDS
def test_unknown_parameter_is_rejected_by_name(kind: str) -> None:
    with pytest.raises(ValidationError) as info:
        DETECTORS[kind].params_type.model_validate({"no_such_param": 1})
    assert [e["loc"] for e in info.value.errors()] == [("no_such_param",)]


@KINDS
def test_params_are_frozen(kind: str) -> None:
    params = DETECTORS[kind].params_type()
    name = next(iter(type(params).model_fields))
    with pytest.raises(ValidationError):
        setattr(params, name, getattr(params, name))


def _violations(field: Any) -> list[Any]:
    """Values breaking each numeric bound of a pydantic field, plus non-finite floats."""
    bad: list[Any] = []
    step = 1 if field.annotation is int else 1e-9
    for bound in field.metadata:
        if isinstance(bound, annotated_types.Gt):
            limit: Any = bound.gt
            bad += [limit, limit - 1]
        elif isinstance(bound, annotated_types.Ge):
            limit = bound.ge
            bad.append(limit - step)
        elif isinstance(bound, annotated_types.Lt):
            limit = bound.lt
            bad += [limit, limit + 1]
        elif isinstance(bound, annotated_types.Le):
            limit = bound.le
            bad.append(limit + step)
    if field.annotation is float:
        bad += [math.nan, math.inf, -math.inf]
    return bad


@KINDS
def test_bad_parameter_values_are_rejected_by_name(kind: str) -> None:
    params_type = DETECTORS[kind].params_type
    checked = 0
    for name, field in params_type.model_fields.items():
        for value in _violations(field):
            with pytest.raises(ValidationError) as info:
                params_type.model_validate({name: value})
            assert [e["loc"] for e in info.value.errors()] == [(name,)], (name, value)
            checked += 1
    assert checked > 0


@KINDS
def test_negative_threshold_is_rejected(kind: str) -> None:
    with pytest.raises(ValidationError) as info:
        DETECTORS[kind].params_type.model_validate({"threshold": -1})
    assert info.value.errors()[0]["loc"] == ("threshold",)


# --- state -------------------------------------------------------------------------------------


@ALL_CASES
@pytest.mark.parametrize("cut", [0, 3, 500, 503])
def test_state_round_trip_gives_identical_verdicts(case: Case, cut: int) -> None:
    rng = np.random.default_rng(7)
    items = case.adapter.stationary(rng, 500) + case.adapter.shifted(rng, 500)
    original = case.build()
    before = run(case, original, items[:cut])
    state = original.to_state()
    assert_json_types(state)
    restored = restore(case.kind, case.params(), via_json(state))
    assert restored.to_state() == state

    after = [key(v) for v in run(case, original, items[cut:], t0=60.0 * cut)]
    assert [key(v) for v in run(case, restored, items[cut:], t0=60.0 * cut)] == after
    assert json.dumps(restored.to_state()) == json.dumps(original.to_state())
    if cut == 503:  # the cut falls inside the shift: the round trip carried an alert in flight
        assert any(v.firing for v in before) or after[0][3]


@ALL_CASES
def test_state_survives_orjson(case: Case) -> None:
    rng = np.random.default_rng(8)
    det = case.build()
    run(case, det, case.adapter.stationary(rng, 300))
    state = det.to_state()
    assert orjson.loads(orjson.dumps(state)) == state


@ALL_CASES
def test_malformed_state_is_rejected(case: Case) -> None:
    det = case.build()
    run(case, det, case.adapter.constant(50))
    state = det.to_state()
    with pytest.raises(ValueError, match="detector state"):
        restore(case.kind, case.params(), {})
    for name in state:
        broken = {**state, name: "not a valid value"}
        with pytest.raises(ValueError, match="detector state"):
            restore(case.kind, case.params(), broken)


@ALL_CASES
def test_state_stays_bounded(case: Case) -> None:
    rng = np.random.default_rng(9)
    det = case.build()
    run(case, det, case.adapter.stationary(rng, 1_000))
    size_1k = len(json.dumps(det.to_state()))
    run(case, det, case.adapter.stationary(rng, 9_000))
    size_10k = len(json.dumps(det.to_state()))
    assert size_10k <= 1.2 * size_1k + 32


# --- scoring -----------------------------------------------------------------------------------


@ALL_CASES
def test_warmup_scores_zero_then_scoring_starts(case: Case) -> None:
    rng = np.random.default_rng(10)
    det = case.build()
    warmup = case.adapter.warmup(det.params)
    verdicts = run(case, det, case.adapter.stationary(rng, warmup))
    assert [(v.score, v.anomalous, v.firing) for v in verdicts] == [(0.0, False, False)] * warmup
    first_scored = case.adapter.feed(det, case.adapter.shifted(rng, 1)[0], 1e9)
    assert first_scored.score > 0.0


@ALL_CASES
def test_expected_does_not_depend_on_the_scored_value(case: Case) -> None:
    """Prequential scoring: the baseline a value is compared with excludes that value."""
    rng = np.random.default_rng(11)
    det = case.build()
    run(case, det, case.adapter.stationary(rng, 200))
    state = via_json(det.to_state())
    normal, shifted = case.adapter.stationary(rng, 1)[0], case.adapter.shifted(rng, 1)[0]
    a = case.adapter.feed(restore(case.kind, case.params(), state), normal, 0.0)
    b = case.adapter.feed(restore(case.kind, case.params(), state), shifted, 0.0)
    assert a.expected == b.expected
    assert b.score > a.score


@ALL_CASES
def test_constant_input_is_finite_and_quiet(case: Case) -> None:
    det = case.build()
    verdicts = run(case, det, case.adapter.constant(3_000))
    assert_sane(verdicts)
    assert not any(v.anomalous or v.firing for v in verdicts)


@ALL_CASES
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stationary_stream_raises_no_alert(case: Case, seed: int) -> None:
    det = case.build()
    verdicts = run(case, det, case.adapter.stationary(np.random.default_rng(seed), 5_000))
    assert_sane(verdicts)
    assert [i for i, v in enumerate(verdicts) if v.transition is Transition.FIRED] == []


@ALL_CASES
def test_level_shift_fires_within_a_few_points(case: Case) -> None:
    rng = np.random.default_rng(12)
    det = case.build()
    run(case, det, case.adapter.stationary(rng, 500))
    verdicts = run(case, det, case.adapter.shifted(rng, 20))
    fired = [i for i, v in enumerate(verdicts) if v.transition is Transition.FIRED]
    fire_after: int = getattr(det.params, "fire_after", 1)
    assert fired, "the shift was never detected"
    assert fired[0] <= fire_after + 2


@ALL_CASES
def test_extreme_valid_inputs_give_finite_scores(case: Case) -> None:
    rng = np.random.default_rng(13)
    det = case.build()
    verdicts = run(case, det, case.adapter.stationary(rng, 100))
    for _ in range(20):
        verdicts += run(case, det, case.adapter.extreme)
    assert_sane(verdicts)
    assert_json_types(det.to_state())


@ALL_CASES
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_value_is_ignored(case: Case, bad: float) -> None:
    rng = np.random.default_rng(14)
    det = case.build()
    run(case, det, case.adapter.stationary(rng, 300) + case.adapter.shifted(rng, 2))
    before = det.to_state()
    verdict = det.update(bad, 0.0)
    assert (verdict.score, verdict.anomalous, verdict.transition) == (0.0, False, None)
    assert det.to_state() == before
