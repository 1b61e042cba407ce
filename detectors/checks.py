"""The detector conformance suite, as library code: run it over any detector class, yours too.

:func:`yield_checks` yields named :class:`Check` callables; each raises :class:`AssertionError`
(or the unexpected exception) when the detector breaks the contract stated in :mod:`detectors`.
They cover the parameter model (documented, validated by name, frozen), the state (JSON types,
exact round trip, bounded size, malformed states rejected) and scoring (warm-up, prequential
baseline, quiet on constant and stationary input, a shift detected within a few observations,
finite scores on extreme input, non-finite input ignored).

The checks drive a detector through the adapter of its input shape (:data:`ADAPTERS`, chosen by
:attr:`~detectors.base.Detector.input`): Gaussian values, binomial window counts, or log messages
from a fixed set of templates with variable ids. Observations are fed in event-time order, one
every :data:`STEP` seconds.

Examples
--------
>>> from detectors.zscore import ZScoreDetector, ZScoreParams
>>> checks = {check.name: check for check in yield_checks(ZScoreDetector)}
>>> checks["state_round_trip_gives_identical_verdicts[cut=3]"]()  # passes: returns None
>>> len(checks), len(list(yield_checks(ZScoreDetector, ZScoreParams(baseline="window"))))
(25, 25)

With pytest, one test runs them all::

    @pytest.mark.parametrize("check", list(yield_checks(MyDetector)), ids=lambda c: c.name)
    def test_my_detector(check):
        check()
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Final, TypeVar

import annotated_types
import numpy as np
import orjson
from pydantic import ValidationError

from detectors import base
from detectors.base import Detector, DetectorParams, Input, Transition, Verdict

__all__ = ["ADAPTERS", "LOG_TEMPLATES", "STEP", "Adapter", "Check", "yield_checks"]

#: Seconds between two observations fed by the checks.
STEP: Final = 60.0

#: One input of a detector: a float, an ``(errors, total)`` pair or a ``(message, level)`` pair.
Item = Any


@dataclass(frozen=True)
class Adapter:
    """How the checks drive detectors of one input shape."""

    #: ``stationary(rng, n)``: n items from one unchanging distribution.
    stationary: Callable[[np.random.Generator, int], list[Item]]
    #: ``shifted(rng, n)``: n items from a distribution far from the stationary one.
    shifted: Callable[[np.random.Generator, int], list[Item]]
    #: n identical items.
    constant: Callable[[int], list[Item]]
    #: Extreme but valid items (must give finite, non-negative scores).
    extreme: Sequence[Item]
    #: Feed one item observed at ``ts``.
    feed: Callable[[Detector[Any], Item, float], Verdict]
    #: Feed an input made invalid by the non-finite number given (it must be ignored).
    feed_invalid: Callable[[Detector[Any], float, float], Verdict]
    #: Items in the warm-up of a detector with these parameters.
    warmup: Callable[[DetectorParams], int]
    #: Whether a verdict given during the warm-up holds its score back.
    held_back: Callable[[Verdict], bool]
    #: Whether two verdicts were compared with the same baseline.
    same_baseline: Callable[[Verdict, Verdict], bool]


def _value_detector(detector: Detector[Any]) -> base.ValueDetector[Any]:
    assert isinstance(detector, base.ValueDetector), f"{detector!r} is not a ValueDetector"
    return detector


def _window_detector(detector: Detector[Any]) -> base.WindowDetector[Any]:
    assert isinstance(detector, base.WindowDetector), f"{detector!r} is not a WindowDetector"
    return detector


def _message_detector(detector: Detector[Any]) -> base.MessageDetector[Any]:
    assert isinstance(detector, base.MessageDetector), f"{detector!r} is not a MessageDetector"
    return detector


def _int_param(params: DetectorParams, name: str) -> int:
    value = getattr(params, name, None)
    if not isinstance(value, int):
        raise TypeError(f"{type(params).__name__} has no int {name!r}: the checks need it")
    return value


def _score_held_back(verdict: Verdict) -> bool:
    return verdict.score == 0.0


def _equal_baselines(a: Verdict, b: Verdict) -> bool:
    return a.expected == b.expected


VALUES = Adapter(
    stationary=lambda rng, n: rng.normal(100.0, 5.0, n).tolist(),
    shifted=lambda rng, n: rng.normal(200.0, 5.0, n).tolist(),  # +20 sigma
    constant=lambda n: [42.0] * n,
    extreme=[0.0, -0.0, 1e-300, -1e-300, 1e149, -1e149, 5e-324, 1e149, 3.0, -7.5, 1e6],
    feed=lambda det, item, ts: _value_detector(det).update(item, ts),
    feed_invalid=lambda det, bad, ts: _value_detector(det).update(bad, ts),
    warmup=lambda params: _int_param(params, "warmup"),
    held_back=_score_held_back,
    same_baseline=_equal_baselines,
)


def _window_counts(rng: np.random.Generator, n: int, ratio: float) -> list[Item]:
    totals = rng.integers(200, 2000, n)
    return list(zip(rng.binomial(totals, ratio).tolist(), totals.tolist(), strict=True))


WINDOWS = Adapter(
    stationary=lambda rng, n: _window_counts(rng, n, 0.02),
    shifted=lambda rng, n: _window_counts(rng, n, 0.2),
    constant=lambda n: [(5, 100)] * n,
    extreme=[(0, 0), (1, 1), (0, 10**9), (10**9, 10**9), (1, 10**9), (10**9 - 1, 10**9), (0, 1)],
    feed=lambda det, item, ts: _window_detector(det).update_window(item[0], item[1], ts),
    # A window detector is also a value detector: a non-finite single value is ignored.
    feed_invalid=lambda det, bad, ts: _window_detector(det).update(bad, ts),
    warmup=lambda params: _int_param(params, "warmup_windows"),
    held_back=_score_held_back,
    same_baseline=_equal_baselines,
)

#: Templates of ordinary service logs; ``{}`` are ids, durations and addresses.
LOG_TEMPLATES: Final = (
    ("GET /api/orders/{} 200 in {}ms", "INFO"),
    ("user={} logged in from 10.0.{}.{}", "INFO"),
    ("cache miss for key session:{}", "DEBUG"),
    ("retrying request {} attempt {}", "WARNING"),
    ("db query took {}ms rows={}", "INFO"),
    ("upstream 10.1.{}.7:8080 refused connection, job {} requeued", "ERROR"),
)


def _messages(rng: np.random.Generator, n: int) -> list[Item]:
    shapes = rng.integers(0, len(LOG_TEMPLATES), n).tolist()
    numbers = rng.integers(0, 1_000_000, (n, 3)).tolist()
    out = []
    for shape, values in zip(shapes, numbers, strict=True):
        template, level = LOG_TEMPLATES[shape]
        out.append((template.format(*values), level))
    return out


def _message_held_back(verdict: Verdict) -> bool:
    # A known template keeps its rate score during the warm-up; a new one waits for it to end.
    assert isinstance(verdict, base.MessageVerdict), f"{verdict!r} is not a MessageVerdict"
    return not verdict.new or verdict.score == 0.0


MESSAGES = Adapter(
    stationary=_messages,
    # An error never logged before, repeated.
    shifted=lambda rng, n: [
        (f"payment gateway timeout after {s}s for order {o}", "ERROR")
        for s, o in rng.integers(1, 100_000, (n, 2)).tolist()
    ],
    constant=lambda n: [("connection pool exhausted, retrying", "ERROR")] * n,
    extreme=[
        ("", "ERROR"),
        ("   ", "INFO"),
        ("x" * 10_000, "CRITICAL"),
        (" ".join(["token"] * 2_000), "WARNING"),
        ("ünïcødé ✓ 日本語 \x00\x1f tokens", "ERROR"),
        ("numbers 1e308 -1e308 nan inf 0x7fffffff", "error"),
        ("a level nobody uses", "whatever"),
        ("an empty level", ""),
    ],
    feed=lambda det, item, ts: _message_detector(det).observe(item[0], item[1], ts),
    feed_invalid=lambda det, bad, ts: _message_detector(det).observe(
        "retrying request 7 attempt 2", "WARNING", bad
    ),
    # A message detector's warm-up is in seconds (none without ``warmup_seconds``).
    warmup=lambda params: math.ceil(getattr(params, "warmup_seconds", 0.0) / STEP),
    held_back=_message_held_back,
    # A message has no baseline value: ``expected`` is always nan.
    same_baseline=lambda a, b: math.isnan(a.expected) and math.isnan(b.expected),
)

#: The adapter of each input shape.
ADAPTERS: Final[Mapping[Input, Adapter]] = {
    Input.VALUES: VALUES,
    Input.WINDOWS: WINDOWS,
    Input.MESSAGES: MESSAGES,
}


@dataclass(frozen=True)
class Check:
    """One named check of one detector class and parameter set; call it to run it."""

    name: str
    run: Callable[[], None]

    def __call__(self) -> None:
        self.run()


@dataclass(frozen=True)
class _Subject:
    """The detector class and parameters under check."""

    cls: type[Detector[Any]]
    params: DetectorParams

    @property
    def adapter(self) -> Adapter:
        return ADAPTERS[self.cls.input]

    def build(self) -> Detector[Any]:
        return self.cls(self.params)

    def restore(self, state: dict[str, Any]) -> Detector[Any]:
        return self.cls.from_state(self.params, state)


class _Feed:
    """Feeds one detector in event-time order, one item every :data:`STEP` seconds."""

    def __init__(self, subject: _Subject, detector: Detector[Any], ts: float = 0.0) -> None:
        self.adapter = subject.adapter
        self.detector = detector
        self.ts = ts

    def one(self, item: Item) -> Verdict:
        verdict = self.adapter.feed(self.detector, item, self.ts)
        self.ts += STEP
        return verdict

    def all(self, items: Sequence[Item]) -> list[Verdict]:
        return [self.one(item) for item in items]


def _key(v: Verdict) -> tuple[Any, ...]:
    """A verdict compared bit for bit (``float.hex`` also makes ``nan`` equal to itself)."""
    values = (getattr(v, f.name) for f in fields(v))
    return tuple(x.hex() if isinstance(x, float) else x for x in values)


def _via_json(state: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(state, allow_nan=False))
    return loaded


def _assert_json_types(value: Any, path: str = "state") -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str), f"{path}: non-str key {k!r}"
            _assert_json_types(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _assert_json_types(v, f"{path}[{i}]")
    elif isinstance(value, float):
        assert math.isfinite(value), f"{path}: non-finite float {value!r}"
    else:
        assert value is None or type(value) in (str, int, bool), f"{path}: {type(value)}"


def _assert_sane(verdicts: Sequence[Verdict]) -> None:
    for i, v in enumerate(verdicts):
        assert math.isfinite(v.score), f"point {i}: score {v.score}"
        assert v.score >= 0.0, f"point {i}: score {v.score}"
        assert not math.isinf(v.expected), f"point {i}: expected {v.expected}"


_E = TypeVar("_E", bound=BaseException)


def _raised(kind: type[_E], call: Callable[[], object], match: str = "") -> _E:
    """The ``kind`` exception ``call`` raises, its message matching ``match``."""
    try:
        call()
    except kind as exc:
        caught = exc
    else:
        raise AssertionError(f"{kind.__name__} was not raised")
    assert re.search(match, str(caught)), f"{str(caught)!r} does not match {match!r}"
    return caught


_Function = Callable[..., None]
#: Every check: its function, the name and values of its extra argument, and the one input
#: shape it is for (``None``: every detector).
_CHECKS: list[tuple[_Function, str, tuple[Any, ...], Input | None]] = []


def _check(
    argument: str = "", values: tuple[Any, ...] = (), only: Input | None = None
) -> Callable[[_Function], _Function]:
    """Register a check (of the detectors of input shape ``only``, or of all), run once or once
    per value of its keyword ``argument``."""

    def register(check: _Function) -> _Function:
        _CHECKS.append((check, argument, values, only))
        return check

    return register


# --- shape and parameters ----------------------------------------------------------------------


@_check()
def _declares_its_shape(s: _Subject) -> None:
    cls = s.cls
    assert isinstance(cls.kind, str) and cls.kind, "kind must be a non-empty str"
    assert issubclass(cls.params_type, DetectorParams)
    assert isinstance(s.params, cls.params_type)
    cls.params_type()  # every parameter has a default
    shape = {
        Input.VALUES: base.ValueDetector,
        Input.WINDOWS: base.WindowDetector,
        Input.MESSAGES: base.MessageDetector,
    }[cls.input]
    assert issubclass(cls, shape), f"a detector of {cls.input} must be a {shape.__name__}"


@_check()
def _every_parameter_is_documented(s: _Subject) -> None:
    fields_ = s.cls.params_type.model_fields
    undocumented = [name for name, field in fields_.items() if not field.description]
    assert undocumented == [], f"undocumented: {undocumented}"


@_check()
def _unknown_parameter_is_rejected_by_name(s: _Subject) -> None:
    exc = _raised(ValidationError, lambda: s.cls.params_type.model_validate({"no_such_param": 1}))
    assert [e["loc"] for e in exc.errors()] == [("no_such_param",)]


@_check()
def _params_are_frozen(s: _Subject) -> None:
    params = s.cls.params_type()
    name = next(iter(type(params).model_fields))
    _raised(ValidationError, lambda: setattr(params, name, getattr(params, name)))


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


@_check()
def _bad_parameter_values_are_rejected_by_name(s: _Subject) -> None:
    params_type = s.cls.params_type
    checked = 0
    for name, field in params_type.model_fields.items():
        for value in _violations(field):
            exc = _raised(ValidationError, lambda: params_type.model_validate({name: value}))  # noqa: B023
            assert [e["loc"] for e in exc.errors()] == [(name,)], (name, value)
            checked += 1
    assert checked > 0


@_check()
def _negative_threshold_is_rejected(s: _Subject) -> None:
    exc = _raised(ValidationError, lambda: s.cls.params_type.model_validate({"threshold": -1}))
    assert exc.errors()[0]["loc"] == ("threshold",)


# --- state -------------------------------------------------------------------------------------


@_check("cut", (0, 3, 500, 503))
def _state_round_trip_gives_identical_verdicts(s: _Subject, cut: int) -> None:
    rng = np.random.default_rng(7)
    items = s.adapter.stationary(rng, 500) + s.adapter.shifted(rng, 500)
    original = _Feed(s, s.build())
    before = original.all(items[:cut])
    state = original.detector.to_state()
    _assert_json_types(state)
    restored = _Feed(s, s.restore(_via_json(state)), original.ts)
    assert restored.detector.to_state() == state

    after = [_key(v) for v in original.all(items[cut:])]
    assert [_key(v) for v in restored.all(items[cut:])] == after
    assert json.dumps(restored.detector.to_state()) == json.dumps(original.detector.to_state())
    if cut == 503:  # the cut falls inside the shift: the round trip carried an alert in flight
        assert any(v.firing for v in before) or after[0][3]


@_check(only=Input.VALUES)
def _update_many_equals_point_by_point_updates(s: _Subject) -> None:
    # Runs of every length the pipeline hands over (one point, a few, many), with a point that
    # is not usable and a shift that fires and then resolves when the series comes back.
    rng = np.random.default_rng(11)
    values = VALUES.stationary(rng, 300) + VALUES.shifted(rng, 40) + VALUES.stationary(rng, 300)
    values[150] = math.nan
    times = [i * STEP for i in range(len(values))]
    one, many = _value_detector(s.build()), _value_detector(s.build())
    expected = [
        (i, _key(v))
        for i, v in enumerate(one.update(x, t) for x, t in zip(values, times, strict=True))
        if v.anomalous or v.firing or v.transition is not None
    ]
    assert any(v[4] is Transition.FIRED for _, v in expected), "the shift must fire"
    assert any(v[2] for _, v in expected), "the shift must be anomalous"
    got, start = [], 0
    for size in itertools.cycle((1, 2, 7, 64, 150)):
        if start >= len(values):
            break
        stop = min(start + size, len(values))
        run = many.update_many(values[start:stop], times[start:stop])
        got += [(start + i, _key(v)) for i, v in run]
        start = stop
    assert got == expected
    assert json.dumps(many.to_state()) == json.dumps(one.to_state())


@_check()
def _state_survives_orjson(s: _Subject) -> None:
    rng = np.random.default_rng(8)
    feed = _Feed(s, s.build())
    feed.all(s.adapter.stationary(rng, 300))
    state = feed.detector.to_state()
    assert orjson.loads(orjson.dumps(state)) == state


@_check()
def _malformed_state_is_rejected(s: _Subject) -> None:
    feed = _Feed(s, s.build())
    feed.all(s.adapter.constant(50))
    state = feed.detector.to_state()
    _raised(ValueError, lambda: s.restore({}), match="detector state")
    for name in state:
        broken = {**state, name: "not a valid value"}
        _raised(ValueError, lambda: s.restore(broken), match="detector state")  # noqa: B023


@_check()
def _state_stays_bounded(s: _Subject) -> None:
    rng = np.random.default_rng(9)
    feed = _Feed(s, s.build())
    feed.all(s.adapter.stationary(rng, 1_000))
    size_1k = len(json.dumps(feed.detector.to_state()))
    feed.all(s.adapter.stationary(rng, 9_000))
    size_10k = len(json.dumps(feed.detector.to_state()))
    assert size_10k <= 1.2 * size_1k + 32, (size_1k, size_10k)


# --- scoring -----------------------------------------------------------------------------------


@_check()
def _warmup_scores_zero_then_scoring_starts(s: _Subject) -> None:
    rng = np.random.default_rng(10)
    feed = _Feed(s, s.build())
    warmup = s.adapter.warmup(s.params)
    verdicts = feed.all(s.adapter.stationary(rng, warmup))
    held = s.adapter.held_back
    assert [(held(v), v.anomalous, v.firing) for v in verdicts] == [(True, False, False)] * warmup
    feed.ts = 1e9
    first_scored = feed.one(s.adapter.shifted(rng, 1)[0])
    assert first_scored.score > 0.0


@_check()
def _expected_does_not_depend_on_the_scored_value(s: _Subject) -> None:
    """Prequential scoring: the baseline a value is compared with excludes that value."""
    rng = np.random.default_rng(11)
    feed = _Feed(s, s.build())
    feed.all(s.adapter.stationary(rng, 200))
    state = _via_json(feed.detector.to_state())
    normal, shifted = s.adapter.stationary(rng, 1)[0], s.adapter.shifted(rng, 1)[0]
    a = _Feed(s, s.restore(state), feed.ts).one(normal)
    b = _Feed(s, s.restore(state), feed.ts).one(shifted)
    assert s.adapter.same_baseline(a, b), (a.expected, b.expected)
    assert b.score > a.score, (a.score, b.score)


@_check()
def _constant_input_is_finite_and_quiet(s: _Subject) -> None:
    verdicts = _Feed(s, s.build()).all(s.adapter.constant(3_000))
    _assert_sane(verdicts)
    assert not any(v.anomalous or v.firing for v in verdicts)


@_check("seed", (1, 2, 3))
def _stationary_stream_raises_no_alert(s: _Subject, seed: int) -> None:
    verdicts = _Feed(s, s.build()).all(s.adapter.stationary(np.random.default_rng(seed), 5_000))
    _assert_sane(verdicts)
    assert [i for i, v in enumerate(verdicts) if v.transition is Transition.FIRED] == []


@_check()
def _level_shift_fires_within_a_few_points(s: _Subject) -> None:
    rng = np.random.default_rng(12)
    feed = _Feed(s, s.build())
    feed.all(s.adapter.stationary(rng, 500))
    verdicts = feed.all(s.adapter.shifted(rng, 20))
    fired = [i for i, v in enumerate(verdicts) if v.transition is Transition.FIRED]
    fire_after: int = getattr(s.params, "fire_after", 1)
    assert fired, "the shift was never detected"
    assert fired[0] <= fire_after + 2, fired


@_check()
def _extreme_valid_inputs_give_finite_scores(s: _Subject) -> None:
    rng = np.random.default_rng(13)
    feed = _Feed(s, s.build())
    verdicts = feed.all(s.adapter.stationary(rng, 100))
    for _ in range(20):
        verdicts += feed.all(s.adapter.extreme)
    _assert_sane(verdicts)
    _assert_json_types(feed.detector.to_state())


@_check("bad", (math.nan, math.inf, -math.inf))
def _non_finite_input_is_ignored(s: _Subject, bad: float) -> None:
    rng = np.random.default_rng(14)
    feed = _Feed(s, s.build())
    feed.all(s.adapter.stationary(rng, 300) + s.adapter.shifted(rng, 2))
    before = feed.detector.to_state()
    verdict = s.adapter.feed_invalid(feed.detector, bad, feed.ts)
    assert (verdict.score, verdict.anomalous, verdict.transition) == (0.0, False, None)
    assert feed.detector.to_state() == before


def yield_checks(
    detector: type[Detector[Any]], params: DetectorParams | None = None
) -> Iterator[Check]:
    """The conformance checks of ``detector`` with ``params`` (default: the default parameters).

    Parameters
    ----------
    detector:
        A concrete subclass of :class:`~detectors.base.ValueDetector`,
        :class:`~detectors.base.WindowDetector` or :class:`~detectors.base.MessageDetector`;
        its :attr:`~detectors.base.Detector.input` selects the adapter that feeds it.
    params:
        An instance of ``detector.params_type``.

    Yields
    ------
    Check
        Named like ``state_round_trip_gives_identical_verdicts[cut=3]``; call it to run it.
    """
    subject = _Subject(detector, detector.params_type() if params is None else params)
    for check, argument, values, only in _CHECKS:
        if only is not None and detector.input is not only:
            continue
        name = check.__name__.lstrip("_")
        if not argument:
            yield Check(name, functools.partial(check, subject))
        for value in values:
            bound = functools.partial(check, subject, **{argument: value})
            yield Check(f"{name}[{argument}={value}]", bound)
