"""Kestrel's NAB scorer against the reference scorer in ../shared/nab/score.py.

CI runs with ``shared/`` beside the clone; a missing reference is a failure, never a skip.
"""

from __future__ import annotations

import csv
import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

from engine.devtools.nab_scoring import (
    PROFILES,
    ScoredFile,
    ranked_score,
    row_weights,
    scaled_sigmoid,
    score_files,
    shipped_score,
)

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO.parent / "shared" / "nab" / "score.py"


def _reference() -> Path:
    if not REFERENCE.is_file():
        pytest.fail(
            f"reference NAB scorer not found at {REFERENCE}: check out 'shared/' beside the "
            "repository (CI provides it at ../shared)"
        )
    return REFERENCE


def _timestamps(n: int, start_hour: int = 0) -> list[str]:
    return [
        f"2014-01-{1 + (start_hour * 60 + 5 * i) // 1440:02d} "
        f"{((start_hour * 60 + 5 * i) // 60) % 24:02d}:{(5 * i) % 60:02d}:00"
        for i in range(n)
    ]


def _case(seed: int) -> list[ScoredFile]:
    """Small files with 0-2 windows each, random scores with ties, random alerts."""
    rng = random.Random(seed)
    files = []
    for k, (n, n_windows) in enumerate([(400, 1), (300, 2), (250, 0), (500, 2)]):
        ts = _timestamps(n)
        windows = []
        edges = sorted(rng.sample(range(80, n - 5), 2 * n_windows))
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            windows.append((ts[a] + ".000000", ts[b] + ".000000"))
        scores = [round(rng.random() ** 3, 2) for _ in range(n)]  # rounding makes ties
        alerts = [1.0 if rng.random() < 0.02 else 0.0 for _ in range(n)]
        files.append(ScoredFile(f"cat{k % 2}/f{k}.csv", ts, scores, windows, alerts))
    return files


def _run_reference(files: list[ScoredFile], tmp: Path) -> dict[str, object]:
    labels = {}
    for f in files:
        path = tmp / "results" / f.name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["timestamp", "anomaly_score", "alert"])
            assert f.alerts is not None
            for row in zip(f.timestamps, f.scores, f.alerts, strict=True):
                writer.writerow([row[0], repr(row[1]), int(row[2])])
        labels[f.name] = [list(w) for w in f.windows]
    labels_path = tmp / "labels.json"
    labels_path.write_text(json.dumps(labels))
    done = subprocess.run(
        [
            sys.executable,
            str(_reference()),
            str(tmp / "results"),
            "--labels",
            str(labels_path),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_matches_reference_scorer(seed: int, tmp_path: Path) -> None:
    files = _case(seed)
    expected = _run_reference(files, tmp_path)
    ours = {r.profile: r for r in score_files(files)}
    for name in PROFILES:
        entry = expected[name]
        assert isinstance(entry, dict)
        assert round(ours[name].ranked, 2) == entry["ranked"], name
        assert ours[name].threshold == entry["threshold"], name
        assert ours[name].shipped is not None
        assert round(ours[name].shipped, 2) == entry["shipped"], name


def test_scaled_sigmoid_values() -> None:
    assert scaled_sigmoid(0.0) == 0.0
    assert scaled_sigmoid(3.5) == -1.0
    assert math.isclose(scaled_sigmoid(-1.0), 2.0 / (1.0 + math.exp(-5.0)) - 1.0)


def test_row_weights_window_and_after() -> None:
    weights, window_of, probation = row_weights(100, [(40, 49)], PROFILES["standard"])
    assert probation == 15
    assert window_of[39] == -1
    assert window_of[40] == 0
    assert window_of[49] == 0
    assert weights[40] == pytest.approx(1.0)  # earliest detection in the window is worth tp
    assert weights[49] < weights[40]
    assert weights[10] == pytest.approx(-0.11)  # before any window ended: full fp cost
    assert weights[50] > weights[99]  # just after a window, an fp costs less


def test_perfect_and_null_detectors() -> None:
    ts = _timestamps(200)
    window = (ts[100], ts[119])
    perfect = ScoredFile("a.csv", ts, [1.0 if i == 100 else 0.0 for i in range(200)], [window])
    silent = ScoredFile("a.csv", ts, [0.0] * 200, [window], alerts=[0.0] * 200)
    assert ranked_score([perfect], PROFILES["standard"]).normalised == pytest.approx(100.0)
    assert shipped_score([silent], PROFILES["standard"]) == pytest.approx(0.0)


def test_window_edge_not_in_file_is_an_error() -> None:
    ts = _timestamps(50)
    bad = ScoredFile("a.csv", ts, [0.0] * 50, [("1999-01-01 00:00:00", ts[10])])
    with pytest.raises(ValueError, match=r"a\.csv: window edge"):
        ranked_score([bad], PROFILES["standard"])
