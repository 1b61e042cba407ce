"""Kestrel's detectors: pure, per-stream online anomaly scorers.

The score contract, shared by every detector: for each observation a detector returns a
:class:`Verdict` computed **before** it learns that observation (prequential: no look-ahead),
with a finite, non-negative ``score`` where **higher means more anomalous**. Detectors do no I/O,
keep O(1) or O(window) state per stream, and save and restore that state exactly
(:meth:`Detector.to_state`, :meth:`Detector.from_state`). Inputs they cannot use (``nan``, ``inf``)
are ignored: score 0, nothing learned, the alert state unchanged.

An observation is one of three shapes (:class:`Input`), each with its base class in
:mod:`detectors.base`: a float of a series (:class:`ValueDetector`), a window's event counts
(:class:`WindowDetector`) or a log message (:class:`MessageDetector`).

Detectors are looked up by config name in :data:`DETECTORS`; :func:`params_for`, :func:`build` and
:func:`restore` validate parameters and create detectors by that name, :func:`kinds_for` lists the
kinds taking an input. Parameters several detectors share are declared once in
:mod:`detectors.params`, input guards in :mod:`detectors.guards`. :mod:`detectors.checks` runs the
conformance suite over any detector class, yours included.
"""

from detectors.adaptive import AdaptiveDetector, AdaptiveParams
from detectors.base import (
    Detector,
    DetectorParams,
    Direction,
    Input,
    MessageDetector,
    MessageVerdict,
    Transition,
    ValueDetector,
    Verdict,
    WindowDetector,
)
from detectors.error_spike import ErrorSpikeDetector, ErrorSpikeParams, Statistic
from detectors.hysteresis import Hysteresis
from detectors.new_pattern import NewPatternDetector, NewPatternParams
from detectors.registry import DETECTORS, build, detector_class, kinds_for, params_for, restore
from detectors.seasonal import SeasonalDetector, SeasonalParams
from detectors.zscore import Baseline, ZScoreDetector, ZScoreParams

__all__ = [
    "DETECTORS",
    "AdaptiveDetector",
    "AdaptiveParams",
    "Baseline",
    "Detector",
    "DetectorParams",
    "Direction",
    "ErrorSpikeDetector",
    "ErrorSpikeParams",
    "Hysteresis",
    "Input",
    "MessageDetector",
    "MessageVerdict",
    "NewPatternDetector",
    "NewPatternParams",
    "SeasonalDetector",
    "SeasonalParams",
    "Statistic",
    "Transition",
    "ValueDetector",
    "Verdict",
    "WindowDetector",
    "ZScoreDetector",
    "ZScoreParams",
    "build",
    "detector_class",
    "kinds_for",
    "params_for",
    "restore",
]
