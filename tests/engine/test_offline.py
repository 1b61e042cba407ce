"""``engine.devtools.offline``: replay and evaluate share one prequential scoring loop."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from detectors.base import DetectorParams, Transition, ValueDetector, Verdict
from detectors.registry import build, params_for
from engine.cli import main
from engine.config import Config
from engine.devtools.offline import (
    detector_factory,
    evaluate_dir,
    read_series_csv,
    score_series,
)

REPO = Path(__file__).resolve().parents[2]
NAB = REPO.parent / "shared" / "nab"


class _Recorder(ValueDetector[DetectorParams]):
    """Scores each value by the number of values learned before it (exposes look-ahead)."""

    kind = "recorder"
    params_type = DetectorParams

    def __init__(self, params: DetectorParams) -> None:
        super().__init__(params)
        self.seen: list[float] = []

    def update(self, value: float, ts: float) -> Verdict:
        score = float(len(self.seen))
        self.seen.append(value)
        fired = value > 100.0
        return Verdict(score, 0.0, fired, fired, Transition.FIRED if fired else None)

    def to_state(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_state(cls, params: DetectorParams, state: dict[str, Any]) -> _Recorder:
        return cls(params)


def _write_series(path: Path, values: list[float]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value"])
        for i, v in enumerate(values):
            writer.writerow([f"2024-03-01 {i // 60:02d}:{i % 60:02d}:00", v])


def test_read_series_csv_reads_timestamps_as_the_worker_does(tmp_path: Path) -> None:
    path = tmp_path / "forms.csv"
    path.write_text(
        "timestamp,value\n"
        "2014-04-01 00:00:00,1\n"  # NAB: naive, taken as UTC
        "2014-04-01T02:00:00+02:00,2\n"
        "1396310400,3\n"  # epoch seconds
        "1396310400000,4\n"  # epoch milliseconds
        " 1396310400.5 ,5\n"
    )
    texts, rows = read_series_csv(path)
    assert [ts for ts, _ in rows] == [1396310400.0] * 4 + [1396310400.5]
    assert texts[0] == "2014-04-01 00:00:00"
    assert texts[-1] == " 1396310400.5 "  # the text is kept as written


def test_read_series_csv_names_bad_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "when.csv"
    path.write_text("timestamp,value\n2024-01-01 00:00:00,1\nyesterday,2\n")
    with pytest.raises(ValueError, match=r"when\.csv:3: timestamp: cannot parse 'yesterday'"):
        read_series_csv(path)


def test_score_series_is_prequential_and_marks_fired_rows() -> None:
    rows = [(60.0 * i, v) for i, v in enumerate([1.0, 2.0, 500.0, 3.0])]
    scored = score_series(rows, lambda: _Recorder(DetectorParams()))
    assert [r.score for r in scored] == [0.0, 1.0, 2.0, 3.0]
    assert [r.alert for r in scored] == [0, 0, 1, 0]
    assert [r.ts for r in scored] == [0.0, 60.0, 120.0, 180.0]


def test_read_series_csv_names_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("timestamp,value\n2024-01-01 00:00:00,1\n2024-01-01 00:01:00,oops\n")
    with pytest.raises(ValueError, match=r"bad\.csv:3"):
        read_series_csv(path)


def test_replay_writes_columns_and_matches_detector(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    values = [10.0 + (i % 7) * 0.1 for i in range(120)] + [50.0] * 5
    source = tmp_path / "in.csv"
    _write_series(source, values)
    out = tmp_path / "out" / "scored.csv"
    config = tmp_path / "kestrel.toml"
    config.write_text("[detectors.zscore]\nwarmup = 20\nfire_after = 1\n")
    replay = ["replay", str(source), "--detector", "zscore", "--config", str(config)]
    assert main([*replay, "--output", str(out)]) == 0
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["timestamp", "value", "anomaly_score", "alert"]
    assert rows[0]["timestamp"] == "2024-03-01 00:00:00"
    assert len(rows) == len(values)
    assert [int(r["alert"]) for r in rows].count(1) == 1
    assert rows[120]["alert"] == "1"
    # The written scores are exactly what a fresh detector yields on the same stream.
    det = build("zscore", params_for("zscore", {"warmup": 20, "fire_after": 1}))
    direct = [det.update(v, 1709251200.0 + 60.0 * i).score for i, v in enumerate(values)]
    assert [float(r["anomaly_score"]) for r in rows] == direct
    # Without --output the same CSV goes to standard output.
    capsys.readouterr()
    assert main(replay) == 0
    assert capsys.readouterr().out == out.read_bytes().decode()


def test_evaluate_dir_on_two_nab_files(tmp_path: Path) -> None:
    if not NAB.is_dir():
        pytest.fail(f"NAB data not found at {NAB}: check out 'shared/' beside the repository")
    names = [
        "artificialWithAnomaly/art_daily_jumpsup.csv",
        "realAWSCloudwatch/ec2_cpu_utilization_825cc2.csv",
    ]
    data = tmp_path / "data"
    for name in names:
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(NAB / "data" / name, data / name)
    labels = json.loads((NAB / "labels" / "combined_windows.json").read_text())
    labels_path = tmp_path / "labels.json"
    labels_path.write_text(json.dumps({n: labels[n] for n in names}))
    params = params_for("adaptive", {})
    report = evaluate_dir(data, tmp_path / "out", lambda: build("adaptive", params), labels_path)
    assert report.files == 2
    assert report.rows == 2 * 4032
    for name in names:
        with open(tmp_path / "out" / name, newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert list(rows[0]) == ["timestamp", "value", "anomaly_score", "alert"]
        assert len(rows) == 4032
        assert {r["alert"] for r in rows} <= {"0", "1"}
    by_profile = {r.profile: r for r in report.results}
    assert set(by_profile) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}
    # Both windows are easy: the default detector finds them with few false positives.
    assert by_profile["standard"].ranked > 70.0
    assert by_profile["standard"].shipped is not None
    assert by_profile["standard"].shipped > 50.0
    assert "standard" in report.summary()


def test_evaluate_dir_reports_missing_labelled_file(tmp_path: Path) -> None:
    _write_series(tmp_path / "data" / "a.csv", [1.0] * 10)
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"a.csv": [], "b.csv": []}))
    with pytest.raises(ValueError, match=r"b\.csv"):
        evaluate_dir(tmp_path / "data", None, lambda: _Recorder(DetectorParams()), labels)


def test_commands_use_the_configured_metric_detectors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "kestrel.toml"
    config.write_text(
        '[series]\nmetric_detectors = ["adaptive", "zscore"]\n[detectors.zscore]\nwarmup = 5\n'
    )
    values = [10.0 + (i % 5) * 0.1 for i in range(300)] + [80.0] * 3
    _write_series(tmp_path / "data" / "sub" / "m.csv", values)
    evaluate = ["evaluate", str(tmp_path / "data"), "--output", str(tmp_path / "out")]
    assert main([*evaluate, "--config", str(config)]) == 0
    assert "files=1 rows=303" in capsys.readouterr().out
    with open(tmp_path / "out" / "sub" / "m.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # adaptive fires on the first high point, zscore after its fire_after=3: either one alerts.
    assert [r["alert"] for r in rows[295:]] == ["0"] * 5 + ["1", "0", "1"]
    adaptive = build("adaptive", params_for("adaptive", {}))
    first = [adaptive.update(v, 1709251200.0 + 60.0 * i).score for i, v in enumerate(values)]
    assert [float(r["anomaly_score"]) for r in rows] == first  # the first kind gives the score
    series = str(tmp_path / "data" / "sub" / "m.csv")
    assert main(["replay", series, "--detector", "zscore", "--config", str(config)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "timestamp,value,anomaly_score,alert"
    assert len(out) == 304


def test_replay_takes_only_detectors_of_values() -> None:
    with pytest.raises(ValueError, match="'new_pattern' does not score a series of values"):
        detector_factory(Config(), "m", "new_pattern")
    with pytest.raises(ValueError, match="unknown detector kind 'nope'"):
        detector_factory(Config(), "m", "nope")
    assert detector_factory(Config(), "m", "error_spike")().update(1.0, 0.0).score == 0.0
