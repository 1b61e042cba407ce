"""Offline runs of Kestrel's detectors over CSV files: ``kestrel replay`` and ``kestrel evaluate``.

Both commands share :func:`score_series`: every value is scored by the detector **before** the
detector learns it, in file order, exactly as the worker does on a live stream. A row's ``alert`` is
1 when the detector's alert fired at that row (the same transition that makes the worker open an
alert), else 0.

Input files are ``timestamp,value`` CSVs; timestamps are ``YYYY-MM-DD HH:MM:SS`` (UTC, as in NAB),
any ISO 8601 form, or epoch seconds or milliseconds (read by
:func:`engine.formats.timestamps.parse_timestamp`,
as on the live stream). Output files are ``timestamp,value,anomaly_score,alert`` with
the input's timestamp text kept as is.

>>> from detectors.base import DetectorParams, ValueDetector, Verdict, Transition
>>> class Above(ValueDetector[DetectorParams]):
...     kind = "above"
...     params_type = DetectorParams
...     def update(self, value: float, ts: float) -> Verdict:
...         hit = value > 1.0
...         return Verdict(value, 0.0, hit, hit, Transition.FIRED if hit else None)
...     def to_state(self): return {}
...     @classmethod
...     def from_state(cls, params, state): return cls(params)
>>> rows = score_series([(0.0, 0.5), (60.0, 2.0)], lambda: Above(DetectorParams()))
>>> [(r.score, r.alert) for r in rows]
[(0.5, 0), (2.0, 1)]
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Self, TextIO

from detectors.base import DetectorParams, Transition, ValueDetector, Verdict
from engine.devtools.nab_scoring import (
    PROFILES,
    CostProfile,
    ProfileResult,
    ScoredFile,
    load_windows,
    score_files,
)
from engine.formats.timestamps import parse_timestamp

__all__ = [
    "EvaluationReport",
    "ScoredRow",
    "detector_factory",
    "evaluate_dir",
    "read_series_csv",
    "score_series",
    "write_scored_csv",
    "write_scored_rows",
]

if TYPE_CHECKING:
    from engine.config import Config

#: Builds a fresh detector for one series.
DetectorFactory = Callable[[], ValueDetector[Any]]

OUTPUT_HEADER = ("timestamp", "value", "anomaly_score", "alert")


class ScoredRow(NamedTuple):
    """One output row: epoch seconds, the value, its anomaly score and the alert flag (0/1)."""

    ts: float
    value: float
    score: float
    alert: int


def read_series_csv(path: str | Path) -> tuple[list[str], list[tuple[float, float]]]:
    """Read a ``timestamp,value`` CSV: the timestamp texts and ``(epoch seconds, value)`` rows.

    Raises
    ------
    ValueError
        If the header lacks ``timestamp`` or ``value``, or a row cannot be parsed (the message
        names the file and line).
    """
    texts: list[str] = []
    rows: list[tuple[float, float]] = []
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return texts, rows
        names = [h.strip() for h in header]
        try:
            t_col, v_col = names.index("timestamp"), names.index("value")
        except ValueError as exc:
            raise ValueError(f"{path}: header must name 'timestamp' and 'value'") from exc
        for line_no, record in enumerate(reader, start=2):
            if not record:
                continue
            try:
                text = record[t_col]
                row = (parse_timestamp(text.strip()), float(record[v_col]))
            except (ValueError, IndexError) as exc:  # InvalidEvent is a ValueError
                raise ValueError(f"{path}:{line_no}: {exc}") from exc
            texts.append(text)
            rows.append(row)
    return texts, rows


def score_series(
    rows: Iterable[tuple[float, float]], detector_factory: DetectorFactory
) -> list[ScoredRow]:
    """Run one fresh detector over ``(ts, value)`` rows in order, scoring each before learning it.

    Parameters
    ----------
    rows:
        ``(epoch seconds, value)`` pairs in time order.
    detector_factory:
        Called once to build the detector for this series.

    Returns
    -------
    list of ScoredRow
        ``alert`` is 1 on the rows where the detector's alert fired (``Transition.FIRED``).
    """
    detector = detector_factory()
    update = detector.update
    fired = Transition.FIRED
    out: list[ScoredRow] = []
    append = out.append
    for ts, value in rows:
        verdict = update(value, ts)
        score = verdict.score
        append(
            ScoredRow(
                ts, value, score if math.isfinite(score) else 0.0, int(verdict.transition is fired)
            )
        )
    return out


def write_scored_rows(
    handle: TextIO, timestamps: Sequence[str], scored: Sequence[ScoredRow]
) -> None:
    """Write ``timestamp,value,anomaly_score,alert`` rows (full float precision) to ``handle``."""
    writer = csv.writer(handle)
    writer.writerow(OUTPUT_HEADER)
    writer.writerows(
        (text, repr(row.value), repr(row.score), row.alert)
        for text, row in zip(timestamps, scored, strict=True)
    )


def write_scored_csv(
    path: str | Path, timestamps: Sequence[str], scored: Sequence[ScoredRow]
) -> None:
    """Write :func:`write_scored_rows` to the file ``path`` (its folders are created)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        write_scored_rows(handle, timestamps, scored)


@dataclass(frozen=True, slots=True)
class EvaluationReport:
    """Outcome of :func:`evaluate_dir`.

    Attributes
    ----------
    files:
        Number of CSV files scored.
    rows:
        Total rows scored.
    seconds:
        Wall-clock time of the detector runs and output writing, in seconds.
    results:
        Per-profile NAB figures (empty without labels).
    windows:
        Number of labelled windows used by the NAB scorer.
    """

    files: int
    rows: int
    seconds: float
    results: list[ProfileResult] = field(default_factory=list)
    windows: int = 0

    def summary(self) -> str:
        """Human-readable lines, one per profile."""
        lines = [
            f"files={self.files} rows={self.rows} windows={self.windows} "
            f"seconds={self.seconds:.1f} ({1e6 * self.seconds / max(self.rows, 1):.1f} us/row)"
        ]
        for r in self.results:
            line = f"{r.profile:20s} ranked={r.ranked:6.2f} (threshold {r.threshold:.6g})"
            if r.shipped is not None:
                line += f"  shipped={r.shipped:6.2f}"
            lines.append(line)
        return "\n".join(lines)


def evaluate_dir(
    data_dir: str | Path,
    output_dir: str | Path | None,
    detector_factory: DetectorFactory,
    labels_path: str | Path | None = None,
    profiles: Iterable[CostProfile] = PROFILES.values(),
    factory_for_file: Callable[[str], DetectorFactory] | None = None,
) -> EvaluationReport:
    """``kestrel evaluate``: score every ``*.csv`` under ``data_dir`` (one series per file).

    Parameters
    ----------
    data_dir:
        Folder searched recursively for ``timestamp,value`` CSVs.
    output_dir:
        Receives one ``timestamp,value,anomaly_score,alert`` CSV per input at the same relative
        path; ``None`` writes nothing.
    detector_factory:
        Builds a fresh detector for each file (the worker's default for a metric series).
    labels_path:
        NAB ``combined_windows.json``; when given, the files it names are scored with
        :mod:`engine.devtools.nab_scoring` (every file it names must be present under ``data_dir``).
    profiles:
        Cost profiles to report.
    factory_for_file:
        When given, called with each file's relative path (``/``-separated) to get the factory
        for that file instead of ``detector_factory`` (per-series config overrides).

    Returns
    -------
    EvaluationReport
    """
    data_root = Path(data_dir)
    paths = sorted(p for p in data_root.rglob("*.csv") if p.is_file())
    labels = load_windows(labels_path) if labels_path is not None else None
    scored_files: list[ScoredFile] = []
    total_rows = 0
    started = time.perf_counter()
    for path in paths:
        rel = path.relative_to(data_root).as_posix()
        texts, rows = read_series_csv(path)
        factory = detector_factory if factory_for_file is None else factory_for_file(rel)
        scored = score_series(rows, factory)
        total_rows += len(scored)
        if output_dir is not None:
            write_scored_csv(Path(output_dir) / rel, texts, scored)
        if labels is not None and rel in labels:
            scored_files.append(
                ScoredFile(
                    name=rel,
                    timestamps=texts,
                    scores=[r.score for r in scored],
                    windows=labels[rel],
                    alerts=[float(r.alert) for r in scored],
                )
            )
    seconds = time.perf_counter() - started
    if labels is None:
        return EvaluationReport(len(paths), total_rows, seconds)
    missing = sorted(set(labels) - {f.name for f in scored_files})
    if missing:
        raise ValueError(f"labelled files missing under {data_root}: {', '.join(missing)}")
    results = score_files(scored_files, profiles)
    n_windows = sum(len(f.windows) for f in scored_files)
    return EvaluationReport(len(paths), total_rows, seconds, results, n_windows)


class _PrimaryScoreAnyAlert(ValueDetector[DetectorParams]):
    """Several detectors on one series: the first one's score, an alert when any one fires."""

    kind = "_offline_combination"
    params_type = DetectorParams

    def __init__(self, detectors: Sequence[ValueDetector[Any]]) -> None:
        super().__init__(DetectorParams())
        self._detectors = list(detectors)

    def update(self, value: float, ts: float) -> Verdict:
        verdicts = [d.update(value, ts) for d in self._detectors]
        first = verdicts[0]
        fired = any(v.transition is Transition.FIRED for v in verdicts)
        return Verdict(
            first.score,
            first.expected,
            any(v.anomalous for v in verdicts),
            any(v.firing for v in verdicts),
            Transition.FIRED if fired else None,
        )

    def to_state(self) -> dict[str, Any]:
        return {"detectors": [d.to_state() for d in self._detectors]}

    @classmethod
    def from_state(cls, params: DetectorParams, state: dict[str, Any]) -> Self:
        raise NotImplementedError("offline combinations are not saved")


def _value_detector(kind: str, params: DetectorParams) -> ValueDetector[Any]:
    from detectors.registry import build

    detector = build(kind, params)
    if not isinstance(detector, ValueDetector):
        raise ValueError(f"detector kind {kind!r} does not score a series of values")
    return detector


def detector_factory(config: Config, name: str, kind: str | None) -> DetectorFactory:
    """The metric-series detectors the worker would run for series ``name``.

    Raises
    ------
    ValueError
        If ``kind`` is not a detector of value series (or not a detector at all).
    """
    if kind is not None:
        params = config.detector_params(kind)
        _value_detector(kind, params)  # a kind of another input fails here, not in the loop
        return lambda: _value_detector(kind, params)
    choices, _ = config.plan("metric", name, name)
    if not choices:
        raise ValueError(f"no metric detectors configured for series {name!r}")
    if len(choices) == 1:
        only = choices[0]
        return lambda: _value_detector(only.kind, only.params)
    return lambda: _PrimaryScoreAnyAlert([_value_detector(c.kind, c.params) for c in choices])
