"""The consecutive-count alert state machine shared by all detectors."""

from __future__ import annotations

import json

import pytest

from detectors.base import Transition
from detectors.hysteresis import Hysteresis


def steps(h: Hysteresis, flags: str) -> list[Transition | None]:
    """Feed a pattern such as ``"AAN"`` (A = anomalous, N = normal)."""
    return [h.step(flag == "A") for flag in flags]


def test_fires_only_after_enough_consecutive_anomalies() -> None:
    h = Hysteresis(fire_after=3, resolve_after=1)
    assert steps(h, "AANAANAA") == [None] * 8
    assert not h.firing
    assert steps(h, "A") == [Transition.FIRED]
    assert h.firing


def test_resolves_only_after_enough_consecutive_normal_points() -> None:
    h = Hysteresis(fire_after=1, resolve_after=3)
    assert steps(h, "A") == [Transition.FIRED]
    assert steps(h, "NNANNA") == [None] * 6
    assert h.firing
    assert steps(h, "NNN") == [None, None, Transition.RESOLVED]
    assert not h.firing


def test_one_and_one_follows_each_point() -> None:
    h = Hysteresis(fire_after=1, resolve_after=1)
    assert steps(h, "AANA") == [Transition.FIRED, None, Transition.RESOLVED, Transition.FIRED]


def test_state_round_trip_keeps_a_partial_run() -> None:
    h = Hysteresis(fire_after=3, resolve_after=2)
    steps(h, "AAAAN")  # firing, one normal point towards resolving
    restored = Hysteresis(fire_after=3, resolve_after=2)
    restored.load_state(json.loads(json.dumps(h.to_state())))
    assert restored.firing
    assert steps(restored, "N") == [Transition.RESOLVED]
    assert steps(h, "N") == [Transition.RESOLVED]


@pytest.mark.parametrize(
    ("fire_after", "resolve_after", "name"), [(0, 1, "fire_after"), (1, 0, "resolve_after")]
)
def test_counts_below_one_are_rejected(fire_after: int, resolve_after: int, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        Hysteresis(fire_after, resolve_after)
