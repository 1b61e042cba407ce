"""The default metric detector on the whole shared NAB part, and on stationary noise.

The NAB figures are in-sample (``bench/nab_eval.py`` prints them next to cross-validated ones);
they pin the default so a change that loses detection quality shows here. CI runs with
``shared/`` beside the clone; a missing data set is a failure, never a skip.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from detectors.base import Transition
from detectors.registry import build, params_for
from engine.config import SeriesSettings
from engine.devtools.nab_scoring import ScoredFile, load_windows, score_files
from engine.devtools.offline import read_series_csv, score_series

NAB = Path(__file__).resolve().parents[2].parent / "shared" / "nab"
DEFAULT_KIND = SeriesSettings().metric_detectors[0]


def test_default_scores_at_least_68_on_the_shared_nab_part() -> None:
    if not NAB.is_dir():
        pytest.fail(f"NAB data not found at {NAB}: check out 'shared/' beside the repository")
    labels = load_windows(NAB / "labels" / "combined_windows.json")
    params = params_for(DEFAULT_KIND, {})
    files = []
    for rel in sorted(labels):
        texts, rows = read_series_csv(NAB / "data" / rel)
        scored = score_series(rows, lambda: build(DEFAULT_KIND, params))
        scores = [r.score for r in scored]
        files.append(ScoredFile(rel, texts, scores, labels[rel], [float(r.alert) for r in scored]))
    results = {r.profile: r for r in score_files(files)}
    for r in results.values():
        print(f"{DEFAULT_KIND} {r.profile}: ranked {r.ranked:.2f} shipped {r.shipped:.2f}")
    standard = results["standard"]
    assert standard.ranked >= 68.0
    # Shipped: 69.3 when every incident pages; the default pages weak ones only when confirmed
    # (alert_sure_raw, for issue 12's false-alarm target), which costs two files' windows.
    assert standard.shipped is not None and standard.shipped >= 67.0
    assert results["reward_low_FP_rate"].ranked >= 60.0
    assert results["reward_low_FN_rate"].ranked >= 72.0


def test_default_false_alarms_on_gaussian_noise_stay_bounded() -> None:
    # 200,000 points of N(0, 1) around 50 every 300 s: the default pages about 0.8 times per
    # 100,000 points (bench/false_alarms.py, 20 series; issue 12's target is 1), 11.9 when weak
    # incidents page unconfirmed (alert_sure_raw = 0). The bound catches a return to that.
    detector = build(DEFAULT_KIND, params_for(DEFAULT_KIND, {}))
    rng = random.Random(2026)
    fired = sum(
        detector.update(50.0 + rng.gauss(0.0, 1.0), 300.0 * i).transition is Transition.FIRED
        for i in range(200_000)
    )
    print(f"{DEFAULT_KIND}: {fired} alerts on 200,000 points of Gaussian noise")
    assert fired <= 6
