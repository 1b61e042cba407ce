"""``context``: what it catches that the value detectors cannot, and its state's checks."""

from __future__ import annotations

import pytest

from detectors.base import Transition
from detectors.context import ContextDetector, ContextParams
from detectors.zscore import ZScoreDetector, ZScoreParams


def _fired(detector: object, values: list[float], start: int = 0) -> list[int]:
    update = detector.update  # type: ignore[attr-defined]
    return [
        i
        for i, v in enumerate(values)
        if update(v, 300.0 * (start + i)).transition is Transition.FIRED
    ]


def test_a_cycle_run_out_of_order_fires_where_the_value_detector_stays_quiet() -> None:
    # A batch job's queue: fills 0..9 and drains to 0, every 10 points. Then it runs backwards
    # for a while: every value is one the series has held thousands of times.
    cycle = [float(i % 10) for i in range(4000)]
    backwards = [float(9 - i % 10) for i in range(20)]
    context, zscore = ContextDetector(ContextParams()), ZScoreDetector(ZScoreParams())
    assert _fired(context, cycle) == []
    assert _fired(zscore, cycle) == []
    caught = _fired(context, backwards, start=4000)
    missed = _fired(zscore, backwards, start=4000)
    print(f"context fired at {caught}, zscore at {missed}")
    assert caught and caught[0] <= 4
    assert missed == []


def test_a_state_of_other_levels_is_refused() -> None:
    detector = ContextDetector(ContextParams(levels=8))
    for i in range(50):
        detector.update(float(i % 5), 60.0 * i)
    state = detector.to_state()
    state["prev"] = [1, 2]  # symbols that fit both
    with pytest.raises(ValueError, match="do not fit the levels"):
        ContextDetector.from_state(ContextParams(levels=4, min_row=0), state)
    state["prev"] = [3, 8]
    with pytest.raises(ValueError, match="'prev'"):
        ContextDetector.from_state(ContextParams(levels=8), state)


def test_range_quantiser_fires_on_a_move_to_an_empty_slice_of_a_noisy_series() -> None:
    # A noisy series whose range was set early by one excursion to 100: its normal values live in
    # the lowest slices. A move to 60 (inside the range, so no new record; 12 spreads of its noise
    # from its level) lands in slices the series never went to after that excursion.
    import random

    rng = random.Random(5)
    values = [100.0 if i == 10 else 10.0 + rng.gauss(0.0, 4.0) for i in range(3000)]
    shifted = [60.0 + rng.gauss(0.0, 4.0) for _ in range(10)]
    detector = ContextDetector(ContextParams(quantiser="range"))
    quiet = _fired(detector, values)
    caught = _fired(detector, shifted, start=3000)
    print(f"range quantiser: fired at {quiet} on the normal part, at {caught} after the move")
    assert quiet == []
    assert caught and caught[0] <= 2
    assert detector.to_state()["range"][1] == 100.0


def test_range_state_round_trips_and_an_older_state_loads() -> None:
    params = ContextParams(quantiser="range")
    detector = ContextDetector(params)
    for i in range(300):
        detector.update(float(i % 7) + 0.5 * (i % 3), 60.0 * i)
    state = detector.to_state()
    restored = ContextDetector.from_state(params, state)
    tail = [float((i * 5) % 11) for i in range(200)]
    a = [detector.update(v, 60.0 * (300 + i)) for i, v in enumerate(tail)]
    b = [restored.update(v, 60.0 * (300 + i)) for i, v in enumerate(tail)]
    assert a == b
    older = {k: v for k, v in state.items() if k != "range"}  # saved before the quantiser
    assert ContextDetector.from_state(params, older).to_state()["range"] is None
    with pytest.raises(ValueError, match="'range'"):
        ContextDetector.from_state(params, {**state, "range": [3.0, 1.0]})
