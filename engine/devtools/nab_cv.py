"""Cross-validated NAB scores: what a detector's settings are worth on files they were not tuned on.

A detector whose parameters and threshold were picked on the scored files (in-sample) looks
better than it is. :func:`cross_validate` holds out one group of files at a time (a NAB category,
or a single file), picks everything that is picked (the grid point, by the pooled standard
ranked score; then each profile's threshold) on the other groups only, and scores the held-out
group with those choices. The held-out detections of all folds are pooled and scored once, as
NAB pools files:

* **CV ranked**: held-out rows detect where their score reaches the threshold chosen on the
  training folds (the honest counterpart of NAB's "ranked", whose threshold sees every file);
* **CV shipped**: the held-out files' own alerts, of the grid point chosen on the training folds
  (equal to in-sample shipped when the grid has one point: nothing is tuned).

A fold whose training part has no window chooses the first grid point and an infinite threshold.

>>> def f(name, scores, windows=()):
...     ts = [str(i) for i in range(len(scores))]
...     return ScoredFile(name, ts, scores, windows, [float(s > 0.5) for s in scores])
>>> quiet, spike = [0.0] * 20, [0.0] * 10 + [0.9] + [0.0] * 9
>>> grid = [[f("a/1.csv", spike, [("9", "12")]), f("b/1.csv", spike, [("9", "12")])]]
>>> result = cross_validate(grid, by_category)
>>> [round(r.ranked, 2) for r in result.profiles][:1], result.chosen
([98.35], {'a': 0, 'b': 0})
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from engine.devtools.nab_scoring import PROFILES, ScoredFile, ranked_score, shipped_score

__all__ = ["CrossValidated", "FoldedProfile", "by_category", "by_file", "cross_validate"]


def by_category(name: str) -> str:
    """The fold of a file named ``<category>/<file>.csv``: its category."""
    return name.split("/")[0]


def by_file(name: str) -> str:
    """The fold of a file: the file itself (leave-one-file-out)."""
    return name


@dataclass(frozen=True, slots=True)
class FoldedProfile:
    """Cross-validated normalised scores (0-100) of one NAB cost profile."""

    profile: str
    ranked: float
    shipped: float | None


@dataclass(frozen=True, slots=True)
class CrossValidated:
    """:func:`cross_validate`'s result: per-profile scores, and the grid point each fold chose."""

    profiles: list[FoldedProfile]
    chosen: dict[str, int]


def _detections(file: ScoredFile, threshold: float) -> ScoredFile:
    return replace(file, alerts=[1.0 if s >= threshold else 0.0 for s in file.scores])


def cross_validate(
    grid: Sequence[Sequence[ScoredFile]], fold_of: Callable[[str], str] = by_category
) -> CrossValidated:
    """Score each fold with the grid point and thresholds chosen on the other folds.

    Parameters
    ----------
    grid:
        One list of scored files per grid point (the same file names, in any order); the first
        grid point is the default, preferred on ties.
    fold_of:
        A file's fold from its name (:func:`by_category` or :func:`by_file`).

    Returns
    -------
    CrossValidated
        Pooled held-out scores per profile (``shipped`` is ``None`` when some file has no
        alerts) and, per fold, the index of the grid point chosen on its training part.
    """
    folds = sorted({fold_of(f.name) for f in grid[0]})
    standard = PROFILES["standard"]
    held_ranked: dict[str, list[ScoredFile]] = {p: [] for p in PROFILES}
    held_shipped: list[ScoredFile] = []
    chosen: dict[str, int] = {}
    for fold in folds:
        train = [[f for f in files if fold_of(f.name) != fold] for files in grid]
        test = [[f for f in files if fold_of(f.name) == fold] for files in grid]
        has_windows = any(f.windows for f in train[0])
        best, best_score = 0, -math.inf
        if has_windows and len(grid) > 1:
            for g, files in enumerate(train):
                score = ranked_score(files, standard).normalised
                if score > best_score:
                    best, best_score = g, score
        chosen[fold] = best
        for name, profile in PROFILES.items():
            threshold = ranked_score(train[best], profile).threshold if has_windows else math.inf
            held_ranked[name].extend(_detections(f, threshold) for f in test[best])
        held_shipped.extend(test[best])
    has_alerts = all(f.alerts is not None for f in held_shipped)
    results = [
        FoldedProfile(
            name,
            shipped_score(held_ranked[name], profile),
            shipped_score(held_shipped, profile) if has_alerts else None,
        )
        for name, profile in PROFILES.items()
    ]
    return CrossValidated(results, chosen)
