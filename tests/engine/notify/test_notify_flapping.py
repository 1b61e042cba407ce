"""engine.notify.flapping: transitions, episodes, their end, bounded memory, state."""

from __future__ import annotations

import json

import pytest

from engine.model.alert import AlertStatus
from engine.notify.flapping import FlapDetector

F, R = AlertStatus.FIRING, AlertStatus.RESOLVED


def cycle(flaps: FlapDetector, fp: str, times: list[float]) -> None:
    """Fire at even positions, resolve at odd ones; each firing is a new incident."""
    for i, now in enumerate(times):
        started = times[i - i % 2]
        flaps.record(fp, F if i % 2 == 0 else R, started, now)


def test_transitions_and_repeats() -> None:
    flaps = FlapDetector(window_seconds=600, threshold=4)
    assert flaps.record("a", F, 0.0, now=0.0)
    assert not flaps.record("a", F, 0.0, now=10.0)  # a repeat of the same incident
    assert flaps.record("a", R, 0.0, now=20.0)
    assert not flaps.record("a", R, 0.0, now=21.0)  # a duplicate
    assert not flaps.record("a", F, 0.0, now=22.0)  # a late record of the resolved incident
    assert flaps.record("a", F, 30.0, now=30.0)  # a new incident
    assert not flaps.flapping("a", 30.0)


def test_threshold_within_the_window_starts_an_episode() -> None:
    flaps = FlapDetector(window_seconds=600, threshold=4)
    cycle(flaps, "a", [0.0, 100.0, 200.0])
    assert not flaps.flapping("a", 250.0)
    cycle(flaps, "b", [0.0, 200.0, 400.0, 700.0])  # 4 transitions but over 700 s
    assert not flaps.flapping("b", 700.0)
    cycle(flaps, "c", [0.0, 100.0, 200.0, 300.0])
    assert flaps.flapping("c", 300.0) and flaps.episode("c", 300.0) == 300.0


def test_episode_lasts_until_stable_for_a_whole_window() -> None:
    flaps = FlapDetector(window_seconds=600, threshold=4)
    times = [0.0, 60.0, 120.0, 180.0, 240.0, 300.0, 360.0, 420.0]
    cycle(flaps, "a", times)
    assert flaps.episode("a", 420.0) == 180.0  # one episode, started at the 4th transition
    assert flaps.flapping("a", 420.0 + 599.0)
    assert not flaps.flapping("a", 420.0 + 600.0)
    # A new transition after the episode ended does not revive it on its own.
    flaps.record("a", F, 2000.0, now=2000.0)
    assert not flaps.flapping("a", 2000.0)


def test_memory_is_bounded() -> None:
    flaps = FlapDetector(window_seconds=60, threshold=3)
    cycle(flaps, "a", [float(t) for t in range(0, 10_000, 5)])
    assert flaps.to_state()["alerts"][0]["times"] == [9985.0, 9990.0, 9995.0]
    for i in range(100):
        flaps.record(f"x{i}", F, 0.0, now=0.0)
    assert len(flaps) == 101
    assert flaps.prune(now=10_000.0) == 100  # "a" is still within its window
    assert flaps.prune(now=20_000.0) == 1 and len(flaps) == 0


def test_threshold_zero_turns_it_off() -> None:
    flaps = FlapDetector(window_seconds=600, threshold=0)
    cycle(flaps, "a", [float(t) for t in range(0, 100, 5)])
    assert not flaps.flapping("a", 100.0)
    assert len(flaps.to_state()["alerts"][0]["times"]) == 1


@pytest.mark.parametrize(("window", "threshold"), [(0.0, 4), (-1.0, 4), (600.0, 1), (600.0, -2)])
def test_bad_parameters(window: float, threshold: int) -> None:
    with pytest.raises(ValueError, match=r"^(window_seconds|threshold) must be"):
        FlapDetector(window, threshold)


def test_state_round_trip() -> None:
    flaps = FlapDetector(window_seconds=600, threshold=4)
    cycle(flaps, "a", [0.0, 60.5, 120.25, 180.125, 240.0])
    flaps.record("b", R, 7.0, now=1.0)
    state = json.loads(json.dumps(flaps.to_state()))
    restored = FlapDetector.from_state(state, window_seconds=600, threshold=4)
    assert restored.to_state() == flaps.to_state()
    assert restored.episode("a", 300.0) == flaps.episode("a", 300.0) == 180.125
    assert not restored.record("a", F, 120.25, now=301.0)  # remembers the last state
