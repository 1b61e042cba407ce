"""Cross-validated NAB scoring: choices are made on the training folds only."""

from __future__ import annotations

import math

from engine.devtools.nab_cv import by_category, by_file, cross_validate
from engine.devtools.nab_scoring import ScoredFile, scaled_sigmoid

#: Worth of a detection at row 31 of the window [30, 34] (standard profile).
EARLY = scaled_sigmoid(-4 / 5) / scaled_sigmoid(-1.0)


def _file(name: str, scores: list[float], window: bool) -> ScoredFile:
    ts = [str(i) for i in range(len(scores))]
    windows = [("30", "34")] if window else []
    return ScoredFile(name, ts, scores, windows, [float(s >= 0.5) for s in scores])


def _spike(at: int, height: float = 0.9) -> list[float]:
    scores = [0.0] * 40
    scores[at] = height
    return scores


def test_grid_point_is_chosen_without_the_held_out_fold() -> None:
    # Point 0 finds the windows of categories a and b, point 1 only that of c. Held out, c gets
    # point 0 (better on a and b) and misses its window; a (or b) held out, point 0 still wins
    # on the other two (one window each, point 0 earlier on ties as the default).
    hit, miss = _spike(31), _spike(10, 0.1)
    grid = [
        [_file("a/1.csv", hit, True), _file("b/1.csv", hit, True), _file("c/1.csv", miss, True)],
        [_file("a/1.csv", miss, True), _file("b/1.csv", miss, True), _file("c/1.csv", hit, True)],
    ]
    result = cross_validate(grid, by_category)
    print(result)
    assert result.chosen == {"a": 0, "b": 0, "c": 0}
    standard = result.profiles[0]
    # Two of three windows found early, one missed (in-sample, point 1 would not be chosen
    # either, but a per-fold oracle would score ~98).
    assert math.isclose(standard.ranked, 100.0 * (2 * EARLY - 1 + 3) / 6)
    assert standard.shipped is not None and math.isclose(standard.ranked, standard.shipped)


def test_threshold_comes_from_the_training_folds() -> None:
    # Every file's spike has the same height except the held-out one's, which is lower than
    # the threshold learned elsewhere: leave-one-file-out misses exactly that window.
    files = [_file(f"x/{i}.csv", _spike(31, 0.9), True) for i in range(3)]
    files.append(_file("x/low.csv", _spike(31, 0.3), True))
    result = cross_validate([files], by_file)
    standard = result.profiles[0]
    print(standard)
    assert math.isclose(standard.ranked, 100.0 * (3 * EARLY - 1 + 4) / 8)
    # The shipped column (alerts at >= 0.5) misses the low spike too, whatever the folds.
    assert standard.shipped is not None and standard.shipped < 80.0
