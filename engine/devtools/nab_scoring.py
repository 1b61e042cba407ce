"""Kestrel's own NAB scorer (Numenta Anomaly Benchmark v1.1 rules), pure and dependency-free.

The rules (see ``shared/nab/SCORING.md``):

1. The first ``min(floor(0.15 * n), 750)`` rows of a file are probation and are ignored.
2. Scaled sigmoid ``S(y) = 2 / (1 + exp(5 y)) - 1`` (and ``-1`` for ``y > 3``).
3. A detection at row ``i`` inside window ``[l, r]`` (width ``w = r - l + 1``) is worth
   ``tp * S(-(r - i + 1) / w) / S(-1)``; only the earliest detection of a window counts.
4. A detection outside every window is worth ``-fp`` before the file's first window has ended,
   else ``fp * S(|i - r_prev| / (w_prev - 1))`` (negative, milder just after a window).
5. A window without detection costs ``-fn``.
6. Normalised score ``100 * (raw - null) / (perfect - null)`` with ``null = -fn * windows`` and
   ``perfect = tp * windows``.

Two figures per profile: **ranked** (one threshold over ``anomaly_score`` for all files, chosen to
maximise the pooled raw score; how NAB ranks detectors) and **shipped** (the detector's own 0/1
alert column; what users get).

The threshold search sorts all rows once and sweeps distinct score values from the top, updating
the false-positive sum and each window's best detection incrementally (``O(n log n)``). Sums are
accumulated in the same order as the reference scorer so the results match it exactly.

>>> f = ScoredFile(
...     name="a.csv",
...     timestamps=[str(i) for i in range(20)],
...     scores=[0.0] * 10 + [0.9, 0.2] + [0.0] * 8,
...     windows=[("9", "12")],
... )
>>> result = ranked_score([f], PROFILES["standard"])
>>> round(result.normalised, 2), result.threshold
(98.35, 0.9)
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PROBATION_FRACTION",
    "PROFILES",
    "CostProfile",
    "ProfileResult",
    "RankedResult",
    "ScoredFile",
    "WindowSpan",
    "load_windows",
    "ranked_score",
    "row_weights",
    "scaled_sigmoid",
    "score_files",
    "shipped_score",
]

#: Fraction of each file (capped at ``PROBATION_FRACTION * 5000`` rows) ignored at the start.
PROBATION_FRACTION = 0.15

#: A window as (first timestamp, last timestamp), both inclusive, as written in the labels file.
WindowSpan = tuple[str, str]


@dataclass(frozen=True, slots=True)
class CostProfile:
    """NAB cost weights: reward of a true positive, cost of a false positive and of a miss."""

    name: str
    tp: float
    fp: float
    fn: float


#: The three NAB profiles, keyed by their NAB names.
PROFILES: dict[str, CostProfile] = {
    "standard": CostProfile("standard", tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": CostProfile("reward_low_FP_rate", tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": CostProfile("reward_low_FN_rate", tp=1.0, fp=0.11, fn=2.0),
}


@dataclass(frozen=True, slots=True)
class ScoredFile:
    """One file's detector output and labels.

    Attributes
    ----------
    name:
        Relative path of the file (e.g. ``realKnownCause/nyc_taxi.csv``); names windows in reports.
    timestamps:
        Row timestamps as strings, in file order; window edges are matched against them
        (a fractional-seconds suffix such as ``.000000`` is ignored on both sides).
    scores:
        ``anomaly_score`` per row (higher = more anomalous).
    windows:
        Labelled anomaly windows ``(start, end)``, inclusive timestamps.
    alerts:
        The shipped 0/1 alert column, or ``None`` when the detector produced none.
    """

    name: str
    timestamps: Sequence[str]
    scores: Sequence[float]
    windows: Sequence[WindowSpan] = ()
    alerts: Sequence[float] | None = None


@dataclass(frozen=True, slots=True)
class RankedResult:
    """Best single-threshold result over ``anomaly_score``."""

    raw: float
    normalised: float
    threshold: float


@dataclass(frozen=True, slots=True)
class ProfileResult:
    """Figures for one cost profile; ``shipped`` is ``None`` when some file had no alert column."""

    profile: str
    ranked: float
    threshold: float
    shipped: float | None = None


def scaled_sigmoid(y: float) -> float:
    """NAB's scaled sigmoid ``2 / (1 + exp(5 y)) - 1``, and ``-1`` for ``y > 3``.

    >>> scaled_sigmoid(0.0), scaled_sigmoid(4.0)
    (0.0, -1.0)
    """
    if y > 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def _strip_fraction(ts: str) -> str:
    return ts.split(".")[0]


def _spans(file: ScoredFile) -> list[tuple[int, int]]:
    index = {_strip_fraction(t): i for i, t in enumerate(file.timestamps)}
    spans = []
    for start, end in file.windows:
        try:
            spans.append((index[_strip_fraction(start)], index[_strip_fraction(end)]))
        except KeyError as exc:
            raise ValueError(
                f"{file.name}: window edge {exc.args[0]!r} is not a timestamp of the file"
            ) from exc
    return spans


def row_weights(
    n: int, spans: Sequence[tuple[int, int]], profile: CostProfile
) -> tuple[list[float], list[int], int]:
    """Value of a detection at each row, the window each row belongs to, and the probation length.

    Parameters
    ----------
    n:
        Number of rows in the file.
    spans:
        Windows as inclusive row index pairs ``(l, r)``, in time order.
    profile:
        Cost weights.

    Returns
    -------
    weights, window_of, probation:
        ``weights[i]`` is the (signed) worth of a detection at row ``i``; ``window_of[i]`` the index
        of the window holding row ``i`` (``-1`` if none); rows ``< probation`` are ignored.
    """
    window_of = [-1] * n
    for k in range(len(spans) - 1, -1, -1):  # the first window holding a row wins
        lo, hi = spans[k]
        for i in range(max(lo, 0), min(hi, n - 1) + 1):
            window_of[i] = k
    max_tp = scaled_sigmoid(-1.0)
    weights = [0.0] * n
    prev_right: int | None = None
    prev_width = 0
    for i in range(n):
        k = window_of[i]
        if k >= 0:
            lo, hi = spans[k]
            y = -(hi - i + 1) / (hi - lo + 1)
            weights[i] = scaled_sigmoid(y) * profile.tp / max_tp
            if i == hi:
                prev_right, prev_width = i, hi - lo + 1
        elif prev_right is None:
            weights[i] = -1.0 * profile.fp
        else:
            distance = abs(prev_right - i)
            y = distance / (prev_width - 1) if prev_width > 1 else math.inf
            weights[i] = scaled_sigmoid(y) * profile.fp
    probation = min(math.floor(PROBATION_FRACTION * n), PROBATION_FRACTION * 5000)
    return weights, window_of, math.ceil(probation)


def _points(
    files: Sequence[ScoredFile], profile: CostProfile, use_alerts: bool
) -> tuple[list[tuple[float, float, int]], int]:
    points: list[tuple[float, float, int]] = []
    offset = 0
    for file in sorted(files, key=lambda f: f.name):
        spans = _spans(file)
        n = len(file.timestamps)
        values = file.alerts if use_alerts else file.scores
        if values is None:
            raise ValueError(f"{file.name}: no alert column")
        if len(values) != n:
            raise ValueError(f"{file.name}: {len(values)} values for {n} timestamps")
        weights, window_of, probation = row_weights(n, spans, profile)
        for i in range(probation, n):
            k = window_of[i]
            points.append((float(values[i]), weights[i], offset + k if k >= 0 else -1))
        offset += len(spans)
    return points, offset


def _normalise(raw: float, n_windows: int, profile: CostProfile) -> float:
    null = -profile.fn * n_windows
    perfect = profile.tp * n_windows
    if perfect == null:
        return 0.0
    return 100.0 * (raw - null) / (perfect - null)


def ranked_score(files: Sequence[ScoredFile], profile: CostProfile) -> RankedResult:
    """Best pooled score over one threshold on ``anomaly_score`` (a row detects if score >= t).

    Candidate thresholds are ``+inf`` (no detection) and every distinct score; the highest
    threshold reaching the best raw score is reported.
    """
    points, n_windows = _points(files, profile, use_alerts=False)
    order = sorted(points, key=lambda p: -p[0])  # stable: ties keep file/row order
    parts = [-profile.fn] * n_windows
    parts_sum = sum(parts)
    fp = 0.0
    best_raw, best_threshold = fp + parts_sum, math.inf
    j = 0
    n = len(order)
    while j < n:
        threshold = order[j][0]
        changed = False
        while j < n and order[j][0] >= threshold:
            _, weight, k = order[j]
            if k < 0:
                fp += weight
            elif weight > parts[k]:
                parts[k] = weight
                changed = True
            j += 1
        if changed:
            parts_sum = sum(parts)
        total = fp + parts_sum
        if total > best_raw:
            best_raw, best_threshold = total, threshold
    return RankedResult(best_raw, _normalise(best_raw, n_windows, profile), best_threshold)


def shipped_score(files: Sequence[ScoredFile], profile: CostProfile) -> float:
    """Normalised score of the 0/1 alert columns (a row detects if ``alert >= 0.5``)."""
    points, n_windows = _points(files, profile, use_alerts=True)
    parts = [-profile.fn] * n_windows
    fp = 0.0
    for value, weight, k in points:
        if value >= 0.5:
            if k < 0:
                fp += weight
            else:
                parts[k] = max(parts[k], weight)
    return _normalise(fp + sum(parts), n_windows, profile)


def score_files(
    files: Sequence[ScoredFile], profiles: Iterable[CostProfile] = PROFILES.values()
) -> list[ProfileResult]:
    """Ranked and (when every file has alerts) shipped figures for each profile."""
    has_alerts = bool(files) and all(f.alerts is not None for f in files)
    results = []
    for profile in profiles:
        ranked = ranked_score(files, profile)
        shipped = shipped_score(files, profile) if has_alerts else None
        results.append(ProfileResult(profile.name, ranked.normalised, ranked.threshold, shipped))
    return results


def load_windows(path: str | Path) -> dict[str, list[WindowSpan]]:
    """Read a NAB ``combined_windows.json``: ``{relative path: [[start, end], ...]}``."""
    raw: Mapping[str, list[list[str]]] = json.loads(Path(path).read_text())
    return {rel: [(str(a), str(b)) for a, b in wins] for rel, wins in raw.items()}
