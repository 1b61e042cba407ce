"""Kestrel's detectors: pure, per-series online anomaly scorers.

The score contract, shared by every detector: for each observation a detector returns a
:class:`Verdict` computed **before** it learns that observation (prequential: no look-ahead),
with a finite, non-negative ``score`` where **higher means more anomalous**. Detectors do no I/O,
keep O(1) or O(window) state per series, and save and restore that state exactly
(:meth:`Detector.to_state`, :meth:`Detector.from_state`).

Detectors are looked up by config name in :data:`DETECTORS`; :func:`params_for`, :func:`build` and
:func:`restore` validate parameters and create detectors by that name.
"""

from detectors.base import Detector, DetectorParams, Direction, Transition, Verdict
from detectors.error_spike import ErrorSpikeDetector, ErrorSpikeParams, Statistic
from detectors.hysteresis import Hysteresis
from detectors.registry import DETECTORS, build, detector_class, params_for, restore
from detectors.zscore import Baseline, ZScoreDetector, ZScoreParams

__all__ = [
    "DETECTORS",
    "Baseline",
    "Detector",
    "DetectorParams",
    "Direction",
    "ErrorSpikeDetector",
    "ErrorSpikeParams",
    "Hysteresis",
    "Statistic",
    "Transition",
    "Verdict",
    "ZScoreDetector",
    "ZScoreParams",
    "build",
    "detector_class",
    "params_for",
    "restore",
]
