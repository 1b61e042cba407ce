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
