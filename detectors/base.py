"""The detector contract shared by every detector.

A detector sees one series, one observation at a time, in event-time order. For each observation
it returns a :class:`Verdict` computed **before** it learns the observation (prequential scoring,
no look-ahead), then it learns it. Scores are non-negative floats: **higher means more anomalous**.

Detectors are pure: no I/O, no clocks, no globals. Their whole state can be saved with
:meth:`Detector.to_state` (a JSON-serialisable dict) and restored with :meth:`Detector.from_state`;
a restored detector produces exactly the same future verdicts as the original.

Parameters are pydantic models (frozen, unknown keys rejected), so a bad value is reported with the
parameter's name, e.g. ``threshold: Input should be greater than 0``.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict

__all__ = [
    "Detector",
    "DetectorParams",
    "Direction",
    "Transition",
    "Verdict",
]


class DetectorParams(BaseModel):
    """Base of every detector's parameters: immutable; unknown keys and ``nan``/``inf`` are errors.

    Parameters shared by several detectors are declared once in :mod:`detectors.params`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Direction(enum.StrEnum):
    """Which deviations count as anomalous."""

    UP = "up"
    DOWN = "down"
    BOTH = "both"


class Transition(enum.StrEnum):
    """A change of a detector's alert state caused by one observation."""

    FIRED = "fired"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a detector says about one observation, before learning it.

    Attributes
    ----------
    score:
        Non-negative anomaly score, higher = more anomalous (for ``zscore`` the z-score magnitude in
        the configured direction). 0.0 during warm-up.
    expected:
        The baseline value the observation was compared with, in the series' own units
        (``nan`` when the detector has no baseline yet).
    anomalous:
        Whether this single observation crossed the detector's threshold (never during warm-up).
    firing:
        The alert state after this observation, once hysteresis is applied.
    transition:
        ``FIRED`` or ``RESOLVED`` when this observation changed the alert state, else ``None``.
    """

    score: float
    expected: float
    anomalous: bool
    firing: bool
    transition: Transition | None = None


P = TypeVar("P", bound=DetectorParams)


class Detector(ABC, Generic[P]):
    """A per-series online anomaly detector (see the module docstring for the contract)."""

    #: Registry name used in config files, e.g. ``"zscore"``.
    kind: ClassVar[str]
    #: The parameter model of this detector.
    params_type: ClassVar[type[DetectorParams]]

    def __init__(self, params: P) -> None:
        self.params = params

    @abstractmethod
    def update(self, value: float, ts: float) -> Verdict:
        """Score ``value`` observed at ``ts`` (epoch seconds, UTC), then learn it."""

    @abstractmethod
    def to_state(self) -> dict[str, Any]:
        """The detector's whole mutable state as a JSON-serialisable dict."""

    @classmethod
    @abstractmethod
    def from_state(cls, params: P, state: dict[str, Any]) -> Self:
        """Rebuild a detector from ``params`` and a dict produced by :meth:`to_state`."""
