"""Kestrel's metric detector on the shared NAB part: the NAB table, the time, per-category parts.

    python bench/nab_eval.py [--kind adaptive] [--params '{"warmup": 100}'] [--jobs 1] [--files]

Runs exactly what ``kestrel evaluate DATA --labels combined_windows.json`` runs (the same
:func:`engine.devtools.offline.score_series` and :mod:`engine.devtools.nab_scoring`), with the
detector's defaults
unless ``--params`` overrides some. Prints:

1. the table: ranked (best single threshold) and shipped (the detector's own alerts) per profile;
2. the wall-clock time of the detector runs (``--jobs 1``, the default, is the one-core figure);
3. for the standard profile, each category's share of the normalised score (ranked at the pooled
   threshold, and shipped), so an improvement can be traced to categories rather than one file;
   ``--files`` adds the same per file.

A category's share is ``100 * (its raw score + fn * its windows) / (perfect - null)`` of the whole
part, so the shares add up to the normalised score.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detectors.registry import build, params_for  # noqa: E402
from engine.devtools.nab_scoring import (  # noqa: E402
    PROFILES,
    CostProfile,
    ScoredFile,
    load_windows,
    row_weights,
    score_files,
)
from engine.devtools.offline import read_series_csv, score_series  # noqa: E402

NAB = Path("/work/shared/nab")


def _score_file(args: tuple[str, dict[str, Any], str, str]) -> tuple[str, list[float], list[float]]:
    kind, overrides, root, rel = args
    params = params_for(kind, overrides)
    _, rows = read_series_csv(Path(root) / rel)
    scored = score_series(rows, lambda: build(kind, params))
    return rel, [r.score for r in scored], [float(r.alert) for r in scored]


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kind", default="adaptive")
    parser.add_argument("--params", default="{}", help="JSON object of parameter overrides")
    parser.add_argument("--data", type=Path, default=NAB / "data")
    parser.add_argument("--labels", type=Path, default=NAB / "labels" / "combined_windows.json")
    parser.add_argument("--jobs", type=int, default=1, help="processes (1 = the one-core time)")
    parser.add_argument("--files", action="store_true", help="also print per-file shares")
    args = parser.parse_args()
    overrides: dict[str, Any] = json.loads(args.params)
    params_for(args.kind, overrides)  # fail early on a bad parameter
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
