"""Kestrel's metric detectors on the shared NAB part: in-sample and cross-validated scores.

    python bench/nab_eval.py [--jobs 2] [--only NAME,...] [--folds category|file]
    python bench/nab_eval.py --kind adaptive [--params '{"warmup": 100}'] [--jobs 1] [--files]
    python bench/nab_eval.py --kind adaptive --versus '{"score_needs_raw": true}' [--resamples 100]

Without ``--kind`` it scores the default metric detector (``[series] metric_detectors``' first
kind, default parameters) and every candidate of :data:`CANDIDATES`, and prints one table:
in-sample ranked and shipped per profile (the grid's first point, the candidate's own settings),
then the same cross-validated by :func:`engine.devtools.nab_cv.cross_validate`
(leave-one-category-out by default: a candidate with a parameter grid has its grid point and
thresholds chosen on the other categories only). The in-sample figures of a one-point grid are
those of ``kestrel evaluate``; "CV ranked" is what its ranked figure is worth on unseen files.
Then each of :data:`ENSEMBLES`, scored from its members' runs: a row's score is the largest
weighted member score, its alert any member's (so its shipped figures are those of ``kestrel
evaluate`` with the members in ``[series] metric_detectors``).

With ``--kind`` it runs the single-detector report below: exactly what ``kestrel evaluate DATA
--labels combined_windows.json`` runs (the same :func:`engine.devtools.offline.score_series` and
:mod:`engine.devtools.nab_scoring`), with the detector's defaults unless ``--params`` overrides
some. Prints:

1. the table: ranked (best single threshold) and shipped (the detector's own alerts) per profile;
2. the wall-clock time of the detector runs (``--jobs 1``, the default, is the one-core figure);
3. for the standard profile, each category's share of the normalised score (ranked at the pooled
   threshold, and shipped), so an improvement can be traced to categories rather than one file;
   ``--files`` adds the same per file.

A category's share is ``100 * (its raw score + fn * its windows) / (perfect - null)`` of the whole
part, so the shares add up to the normalised score.

With ``--versus`` it compares two settings of one kind (``--params`` against ``--versus``) by
their cross-validated standard ranked score, and says how much of the difference is noise: a
paired bootstrap over files (``--resamples`` draws of 35 files with replacement, both settings
scored on the same draw, fixed seed) prints the difference's mean, 5th/50th/95th percentiles
and the share of draws each setting wins. (100 draws: about 2 minutes on one core.)
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detectors.registry import build, params_for  # noqa: E402
from engine.config import SeriesSettings  # noqa: E402
from engine.devtools.nab_cv import by_category, by_file, cross_validate  # noqa: E402
from engine.devtools.nab_scoring import (  # noqa: E402
    PROFILES,
    CostProfile,
    ScoredFile,
    load_windows,
    ranked_score,
    row_weights,
    score_files,
    shipped_score,
)
from engine.devtools.offline import read_series_csv, score_series  # noqa: E402

NAB = REPO.parent / "shared" / "nab"

#: The settings ``adaptive`` shipped with before issue 12 (tuned in-sample on this part).
ADAPTIVE_V1: dict[str, Any] = {"alert_min_raw": 0.0, "alert_sure_raw": 0.0}
#: Round alternatives cross-validation may choose for the adaptive candidates.
ADAPTIVE_GRID: list[dict[str, Any]] = [
    {"alert_min_raw": 3.0},
    {"threshold": 5.0},
    {"record_min_z": 5.0},
    {"short_window": 10},
    {"seasonal": {"weekly": False}},
    {"record_min_z": 5.0, "threshold": 5.0, "record_score": 5.5},
]
#: ``adaptive`` with a smaller profile: no weekly profile, 15-minute daily buckets (96). (The
#: default fits 2 KB since issue 12 quantised its profiles.)
ADAPTIVE_SMALL: dict[str, Any] = {"seasonal": {"weekly": False, "bucket_seconds": 900.0}}
#: The v1 settings, and an alert needs a raw score above 3 (the default for a while in issue 12).
ADAPTIVE_V2: dict[str, Any] = {"alert_min_raw": 3.0, "alert_sure_raw": 0.0}
#: The default since issue 12's false-alarm target (0.8 per 100,000 points of noise, 11.9 for
#: v2): v2, and an incident whose evidence is weak (raw below 6) pages only once a point within
#: the next 10 confirms it (2 points less shipped here than v2).
ADAPTIVE_V3: dict[str, Any] = {"alert_min_raw": 3.0, "alert_sure_raw": 6.0, "confirm_within": 10}
#: ``adaptive`` whose score column, like its alerts, needs raw evidence (``score_needs_raw``):
#: a novel point whose residual and level z-score are both below ``alert_min_raw`` is scored
#: damped. Alerts unchanged; CV ranked 67.6 against 67.1, better at every alert threshold below.
ADAPTIVE_EVIDENCE: dict[str, Any] = {"score_needs_raw": True}
#: Alert thresholds around the default's 4.3 (round): the score column depends on the threshold
#: (an open alert damps its points), so these are what cross-validation may choose from.
THRESHOLD_GRID: list[dict[str, Any]] = [{"threshold": 4.0}, {"threshold": 4.5}, {"threshold": 5.0}]
#: ``context`` quantising the range seen so far, as CAD OSE quantises (issue 12).
CONTEXT_RANGE: dict[str, Any] = {"quantiser": "range"}
#: Round alternatives cross-validation may choose for ``context-range``.
CONTEXT_RANGE_GRID: list[dict[str, Any]] = [
    {"levels": 4},
    {"levels": 16},
    {"record_bits": 16.0},
    {"threshold": 5.0},
]


def _score_file(args: tuple[str, dict[str, Any], str, str]) -> tuple[str, list[float], list[float]]:
    kind, overrides, root, rel = args
    params = params_for(kind, overrides)
    _, rows = read_series_csv(Path(root) / rel)
    scored = score_series(rows, lambda: build(kind, params))
    return rel, [r.score for r in scored], [float(r.alert) for r in scored]


def cv_standard_ranked(files: list[ScoredFile], fold_of: Any = by_category) -> float:
    """Cross-validated standard ranked score of one run (the first figure of its CV row)."""
    return cross_validate([files], fold_of).profiles[0].ranked


def paired_bootstrap(
    a: list[ScoredFile], b: list[ScoredFile], resamples: int, fold_of: Any, seed: int = 1
) -> list[float]:
    """``b``'s CV standard ranked minus ``a``'s, on ``resamples`` draws of files with replacement.

    Both runs are of the same files in the same order; a draw takes the same files of each, so
    the differences are paired (sorted ascending).
    """
    standard = PROFILES["standard"]
    rng = random.Random(seed)
    n = len(a)
    diffs = []

    def cv(files: list[ScoredFile]) -> float:
        held: list[ScoredFile] = []
        folds = sorted({fold_of(f.name) for f in files})
        for fold in folds:
            train = [f for f in files if fold_of(f.name) != fold]
            threshold = (
                ranked_score(train, standard).threshold
                if any(f.windows for f in train)
                else math.inf
            )
            held.extend(
                replace(f, alerts=[1.0 if s >= threshold else 0.0 for s in f.scores])
                for f in files
                if fold_of(f.name) == fold
            )
        return shipped_score(held, standard)

    for _ in range(resamples):
        draw = [rng.randrange(n) for _ in range(n)]
        diffs.append(cv([b[i] for i in draw]) - cv([a[i] for i in draw]))
    return sorted(diffs)


def versus(args: argparse.Namespace, overrides: dict[str, Any]) -> int:
    """Two settings of one kind: CV standard ranked of each, and the paired bootstrap."""
    other: dict[str, Any] = json.loads(args.versus)
    params_for(args.kind, other)
    labels = load_windows(args.labels)
    fold_of = by_file if args.folds == "file" else by_category
    a = _run(args.kind, overrides, args.data, labels, args.jobs)
    b = _run(args.kind, other, args.data, labels, args.jobs)
    score_a, score_b = cv_standard_ranked(a, fold_of), cv_standard_ranked(b, fold_of)
    print(f"CV standard ranked (leave-one-{args.folds}-out): {args.kind} {json.dumps(overrides)}")
    print(f"  {score_a:.2f}; {json.dumps(other)} {score_b:.2f}")
    print(f"  difference {score_b - score_a:+.2f}")
    started = time.perf_counter()
    diffs = paired_bootstrap(a, b, args.resamples, fold_of)
    k = len(diffs)
    wins = sum(d > 0 for d in diffs) / k
    losses = sum(d < 0 for d in diffs) / k
    print(
        f"paired bootstrap over files, {k} draws ({time.perf_counter() - started:.0f} s): "
        f"mean {sum(diffs) / k:+.2f}, percentiles 5/50/95 {diffs[k // 20]:+.2f} / "
        f"{diffs[k // 2]:+.2f} / {diffs[-1 - k // 20]:+.2f}; the second wins {wins:.0%}, "
        f"loses {losses:.0%}"
    )
    return 0


def _file_raw(
    file: ScoredFile, values: list[float], threshold: float, profile: CostProfile
) -> tuple[float, int]:
    """Raw NAB score of one file detecting where ``value >= threshold``; and its window count."""
    index = {t.split(".")[0]: i for i, t in enumerate(file.timestamps)}
    spans = [(index[a.split(".")[0]], index[b.split(".")[0]]) for a, b in file.windows]
    weights, window_of, probation = row_weights(len(values), spans, profile)
    parts = [-profile.fn] * len(spans)
    fp = 0.0
    for i in range(probation, len(values)):
        if values[i] >= threshold:
            k = window_of[i]
            if k < 0:
                fp += weights[i]
            elif weights[i] > parts[k]:
                parts[k] = weights[i]
    return fp + sum(parts), len(spans)


#: Candidates: (name, kind, grid). The grid's first point is the candidate's own setting; the
#: other points are what cross-validation may choose from (round values, few knobs).
CANDIDATES: list[tuple[str, str, list[dict[str, Any]]]] = [
    ("adaptive-v1 (old default)", "adaptive", [ADAPTIVE_V1]),
    (
        "adaptive-v1 tuned",
        "adaptive",
        [ADAPTIVE_V1, *[{**ADAPTIVE_V1, **g} for g in ADAPTIVE_GRID]],
    ),
    ("adaptive-v2 (min raw 3)", "adaptive", [ADAPTIVE_V2]),
    (
        "adaptive-v3 tuned",
        "adaptive",
        [ADAPTIVE_V3, {**ADAPTIVE_V3, "confirm_within": 1}, {**ADAPTIVE_V3, "alert_sure_raw": 8.0}],
    ),
    ("adaptive-evidence", "adaptive", [ADAPTIVE_EVIDENCE]),
    ("adaptive threshold-grid", "adaptive", [{}, *THRESHOLD_GRID]),
    (
        "adaptive-evidence threshold-grid",
        "adaptive",
        [ADAPTIVE_EVIDENCE, *[{**ADAPTIVE_EVIDENCE, **g} for g in THRESHOLD_GRID]],
    ),
    ("adaptive-small", "adaptive", [ADAPTIVE_SMALL]),
    (
        "adaptive-small tuned",
        "adaptive",
        [ADAPTIVE_SMALL, *[{**ADAPTIVE_SMALL, **g} for g in ADAPTIVE_GRID[:4]]],
    ),
    ("zscore", "zscore", [{}]),
    ("ensemble", "ensemble", [{}]),
    ("resonance", "resonance", [{}]),
    (
        "resonance tuned",
        "resonance",
        [{}, {"vigilance": 1.0}, {"vigilance": 0.25}, {"window": 4}, {"prototypes": 16}],
    ),
    ("context", "context", [{}]),
    (
        "context tuned",
        "context",
        [{}, {"levels": 16}, {"level_fading": 0.01}, {"span": 2.0}, {"short_window": 1}],
    ),
    ("context-range", "context", [CONTEXT_RANGE]),
    (
        "context-range tuned",
        "context",
        [CONTEXT_RANGE, *[{**CONTEXT_RANGE, **g} for g in CONTEXT_RANGE_GRID]],
    ),
]

#: Ensembles scored from their members' runs: (name, [(kind, params, weight)]). A row's score is
#: the largest weighted member score, its alert column any member's alert (what running the
#: members side by side in ``[series] metric_detectors`` pages). The weights put the members on
#: one scale (adaptive's threshold 4.3 against context's 7.5 is about 1 to 0.5: round, not tuned).
ENSEMBLES: list[tuple[str, list[tuple[str, dict[str, Any], float]]]] = [
    ("adaptive+context", [("adaptive", {}, 1.0), ("context", {}, 0.5)]),
    ("adaptive+context-range", [("adaptive", {}, 1.0), ("context", CONTEXT_RANGE, 0.5)]),
    (
        "adaptive+context-range quiet",
        [("adaptive", {}, 1.0), ("context", {**CONTEXT_RANGE, "threshold": 10.0}, 0.5)],
    ),
]


def _run(
    kind: str, overrides: dict[str, Any], data: Path, labels: dict[str, Any], jobs: int
) -> list[ScoredFile]:
    tasks = [(kind, overrides, str(data), rel) for rel in sorted(labels)]
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            outputs = list(pool.map(_score_file, tasks))
    else:
        outputs = [_score_file(t) for t in tasks]
    files = []
    for rel, scores, alerts in outputs:
        texts, _ = read_series_csv(data / rel)
        files.append(ScoredFile(rel, texts, scores, labels[rel], alerts))
    return files


def _combined(members: list[tuple[list[ScoredFile], float]]) -> list[ScoredFile]:
    """An ensemble's files: per row the largest weighted member score, any member's alert."""
    combined = []
    for parts in zip(*(files for files, _ in members), strict=True):
        weights = [w for _, w in members]
        scores = [
            max(w * s for w, s in zip(weights, row, strict=True))
            for row in zip(*(f.scores for f in parts), strict=True)
        ]
        alerts = [
            float(any(a >= 0.5 for a in row))
            for row in zip(*(f.alerts or [0.0] * len(f.scores) for f in parts), strict=True)
        ]
        first = parts[0]
        combined.append(ScoredFile(first.name, first.timestamps, scores, first.windows, alerts))
    return combined


def compare(args: argparse.Namespace) -> int:
    """The candidates table: in-sample and cross-validated, standard / low FP / low FN."""
    labels = load_windows(args.labels)
    default_kind = SeriesSettings().metric_detectors[0]
    candidates = [(f"default ({default_kind})", default_kind, [{}]), *CANDIDATES]
    ensembles = ENSEMBLES
    if args.only:
        wanted = set(args.only.split(","))
        candidates = [c for c in candidates if c[0].split(" ")[0] in wanted or c[0] in wanted]
        ensembles = [e for e in ensembles if e[0] in wanted]
    runs_of: dict[str, list[ScoredFile]] = {}

    def run(kind: str, point: dict[str, Any]) -> list[ScoredFile]:
        key = f"{kind} {json.dumps(point, sort_keys=True)}"
        if key not in runs_of:
            runs_of[key] = _run(kind, point, args.data, labels, args.jobs)
        return runs_of[key]

    fold_of = by_file if args.folds == "file" else by_category
    print(
        f"NAB shared part: {len(labels)} files; CV = leave-one-{args.folds}-out "
        "(grid point and thresholds chosen on the training folds only)"
    )
    print(
        f"{'candidate':34s} {'grid':>4s} | {'in-sample ranked':>18s} | {'in-sample shipped':>18s}"
        f" | {'CV ranked':>18s} | {'CV shipped':>18s} | s"
    )
    print(f"{'':34s} {'':4s} |" + f" {'std lowFP lowFN':>18s} |" * 4)
    rows: list[tuple[str, str, list[dict[str, Any]] | None]] = [
        *((name, kind, grid) for name, kind, grid in candidates),
        *((name, "", None) for name, _ in ensembles),
    ]
    members_of = dict(ensembles)
    for name, kind, maybe_grid in rows:
        started = time.perf_counter()
        if maybe_grid is None:
            grid: list[dict[str, Any]] = [{}]
            runs = [_combined([(run(k, p), w) for k, p, w in members_of[name]])]
        else:
            grid = maybe_grid
            runs = [run(kind, point) for point in grid]
        insample = score_files(runs[0])
        cv = cross_validate(runs, fold_of)
        seconds = time.perf_counter() - started

        def fmt(values: list[float | None]) -> str:
            return " ".join(f"{v:5.1f}" if v is not None else "    -" for v in values)

        print(
            f"{name:34s} {len(grid):4d} | {fmt([r.ranked for r in insample]):>18s} | "
            f"{fmt([r.shipped for r in insample]):>18s} | "
            f"{fmt([r.ranked for r in cv.profiles]):>18s} | "
            f"{fmt([r.shipped for r in cv.profiles]):>18s} | {seconds:.0f}"
        )
        if len(grid) > 1 and args.folds == "category":
            picks = ", ".join(f"{fold}: {json.dumps(grid[g])}" for fold, g in cv.chosen.items())
            print(f"    chosen per held-out fold: {picks}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", default=None, help="single-detector report of this kind")
    parser.add_argument("--only", default="", help="comma-separated candidate names to compare")
    parser.add_argument("--folds", choices=["category", "file"], default="category")
    parser.add_argument("--params", default="{}", help="JSON object of parameter overrides")
    parser.add_argument("--data", type=Path, default=NAB / "data")
    parser.add_argument("--labels", type=Path, default=NAB / "labels" / "combined_windows.json")
    parser.add_argument("--jobs", type=int, default=1, help="processes (1 = the one-core time)")
    parser.add_argument("--files", action="store_true", help="also print per-file shares")
    parser.add_argument("--versus", default=None, help="JSON overrides to compare with --params")
    parser.add_argument("--resamples", type=int, default=100, help="bootstrap draws (--versus)")
    args = parser.parse_args()
    if args.kind is None:
        return compare(args)
    overrides: dict[str, Any] = json.loads(args.params)
    params_for(args.kind, overrides)  # fail early on a bad parameter
    if args.versus is not None:
        return versus(args, overrides)
    labels = load_windows(args.labels)
    rels = sorted(labels)
    tasks = [(args.kind, overrides, str(args.data), rel) for rel in rels]

    started = time.perf_counter()
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            outputs = list(pool.map(_score_file, tasks))
    else:
        outputs = [_score_file(t) for t in tasks]
    seconds = time.perf_counter() - started

    files = []
    for rel, scores, alerts in outputs:
        texts, _ = read_series_csv(args.data / rel)
        files.append(ScoredFile(rel, texts, scores, labels[rel], alerts))
    results = score_files(files)
    rows = sum(len(f.scores) for f in files)
    mode = "one core" if args.jobs <= 1 else f"{args.jobs} processes"
    print(
        f"{args.kind} {json.dumps(overrides)}: {len(files)} files, {rows} rows, "
        f"{seconds:.1f} s ({mode})"
    )
    print(f"{'profile':20s} {'ranked':>7s} {'shipped':>8s}  threshold")
    for r in results:
        print(f"{r.profile:20s} {r.ranked:7.2f} {r.shipped or 0.0:8.2f}  {r.threshold:.6g}")

    profile = PROFILES["standard"]
    threshold = results[0].threshold
    n_windows = sum(len(f.windows) for f in files)
    scale = 100.0 / ((profile.tp + profile.fn) * n_windows)
    by_category: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    per_file = []
    for f in files:
        ranked_raw, wins = _file_raw(f, list(f.scores), threshold, profile)
        shipped_raw, _ = _file_raw(f, list(f.alerts or []), 0.5, profile)
        cat = f.name.split("/")[0]
        by_category[cat][0] += wins
        by_category[cat][1] += (ranked_raw + profile.fn * wins) * scale
        by_category[cat][2] += (shipped_raw + profile.fn * wins) * scale
        per_file.append(
            (
                f.name,
                wins,
                (ranked_raw + profile.fn * wins) * scale,
                (shipped_raw + profile.fn * wins) * scale,
            )
        )
    print(f"\nstandard profile, share of the normalised score (max = 100 * windows / {n_windows})")
    print(f"{'category':24s} {'windows':>7s} {'max':>6s} {'ranked':>7s} {'shipped':>8s}")
    for cat, (cat_wins, cat_ranked, cat_shipped) in sorted(by_category.items()):
        print(
            f"{cat:24s} {int(cat_wins):7d} {2 * cat_wins * scale:6.2f} "
            f"{cat_ranked:7.2f} {cat_shipped:8.2f}"
        )
    if args.files:
        print()
        for name, wins, ranked, shipped in per_file:
            print(f"{name:60s} {wins:2d} {2 * wins * scale:6.2f} {ranked:7.2f} {shipped:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
