"""The detector registry: config names (``kind``) to detector classes.

>>> params = params_for("zscore", {"threshold": 5.0})
>>> detector = build("zscore", params)
>>> type(detector).__name__, detector.params.threshold
('ZScoreDetector', 5.0)
>>> kinds_for(Input.MESSAGES)
('new_pattern',)
>>> params_for("zscore", {"threshold": -1})
Traceback (most recent call last):
    ...
pydantic_core._pydantic_core.ValidationError: 1 validation error for ZScoreParams
threshold
  Input should be greater than 0 [type=greater_than, input_value=-1, input_type=int]
    ...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detectors.adaptive import AdaptiveDetector
from detectors.base import Detector, DetectorParams, Input
from detectors.context import ContextDetector
from detectors.ensemble import EnsembleDetector
from detectors.error_spike import ErrorSpikeDetector
from detectors.new_pattern import NewPatternDetector
from detectors.resonance import ResonanceDetector
from detectors.seasonal import SeasonalDetector
from detectors.zscore import ZScoreDetector

__all__ = ["DETECTORS", "build", "detector_class", "kinds_for", "params_for", "restore"]

#: Every detector by its config name, whatever its input. The conformance suite
#: (:mod:`detectors.checks`) runs over each entry.
DETECTORS: Mapping[str, type[Detector[Any]]] = {
    "zscore": ZScoreDetector,
    "error_spike": ErrorSpikeDetector,
    "seasonal": SeasonalDetector,
    "adaptive": AdaptiveDetector,
    "resonance": ResonanceDetector,
    "context": ContextDetector,
    "ensemble": EnsembleDetector,
    "new_pattern": NewPatternDetector,
}


def kinds_for(*inputs: Input) -> tuple[str, ...]:
    """The registered kinds whose :attr:`~detectors.base.Detector.input` is one of ``inputs``.

    >>> kinds_for(Input.VALUES, Input.WINDOWS)
    ('zscore', 'error_spike', 'seasonal', 'adaptive', 'resonance', 'context', 'ensemble')
    """
    return tuple(kind for kind, cls in DETECTORS.items() if cls.input in inputs)


def detector_class(kind: str) -> type[Detector[Any]]:
    """The detector class registered as ``kind``.

    Raises
    ------
    ValueError
        If no detector is registered as ``kind`` (a ``ValueError`` so that, raised inside a
        pydantic validator, it is reported as a validation error of the config field).
    """
    try:
        return DETECTORS[kind]
    except KeyError:
        known = ", ".join(sorted(DETECTORS))
        raise ValueError(f"unknown detector kind {kind!r}; known kinds: {known}") from None


def params_for(kind: str, mapping: Mapping[str, Any]) -> DetectorParams:
    """Validate ``mapping`` (e.g. from a config file) into the parameters of ``kind``.

    Raises
    ------
    pydantic.ValidationError
        If a parameter is unknown or invalid; each error's ``loc`` names the parameter.
    ValueError
        If ``kind`` is not registered.
    """
    return detector_class(kind).params_type.model_validate(dict(mapping))


def _checked(kind: str, params: DetectorParams) -> type[Detector[Any]]:
    cls = detector_class(kind)
    if not isinstance(params, cls.params_type):
        raise TypeError(f"{kind!r} needs {cls.params_type.__name__}, got {type(params).__name__}")
    return cls


def build(kind: str, params: DetectorParams) -> Detector[Any]:
    """A fresh detector of ``kind`` with ``params`` (from :func:`params_for`)."""
    return _checked(kind, params)(params)


def restore(kind: str, params: DetectorParams, state: dict[str, Any]) -> Detector[Any]:
    """A detector of ``kind`` rebuilt from a :meth:`~detectors.base.Detector.to_state` dict.

    Raises
    ------
    ValueError
        If ``state`` is malformed or does not fit ``params`` (see each detector's
        ``from_state``); the caller should then start from :func:`build`.
    """
    return _checked(kind, params).from_state(params, state)
