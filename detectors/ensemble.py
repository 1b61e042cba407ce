"""``ensemble``: ``adaptive`` and ``resonance`` side by side; the louder of the two speaks.

The two watch different things: :mod:`detectors.adaptive` the value against its forecasts and its
long-run level and range, :mod:`detectors.resonance` the recent *shape* against the shapes seen
before. Both report scores in the same units (anomaly likelihood, novelty-gated), so the ensemble's
score is the larger of the two, and a point is anomalous when either member finds it so (each
with the ensemble's ``threshold`` and ``warmup``). The ensemble's own alert state follows those
flags through ``fire_after`` / ``resolve_after``.

Memory and time: the sum of the members' (O(1) per point).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Self

from pydantic import Field

from detectors._state import get_mapping, load_hysteresis
from detectors.adaptive import AdaptiveDetector, AdaptiveParams
from detectors.base import DetectorParams, ValueDetector, Verdict
from detectors.guards import usable
from detectors.hysteresis import Hysteresis
from detectors.params import FireAfter, ResolveAfter, Threshold, Warmup
from detectors.resonance import ResonanceDetector, ResonanceParams

__all__ = ["EnsembleDetector", "EnsembleParams"]


class EnsembleParams(DetectorParams):
    """Parameters of :class:`EnsembleDetector`: the members', and the shared alerting ones."""

    adaptive: AdaptiveParams = Field(
        default_factory=AdaptiveParams,
        description="The adaptive member (its warmup, threshold and hysteresis are replaced).",
    )
    resonance: ResonanceParams = Field(
        default_factory=lambda: ResonanceParams(prototypes=16),
        description="The resonance member (its warmup, threshold and hysteresis are replaced).",
    )
    warmup: Warmup = 100
    threshold: Threshold = 4.3
    fire_after: FireAfter = 1
    resolve_after: ResolveAfter = 30


def _member(params: DetectorParams, ensemble: EnsembleParams) -> Any:
    shared = {
        "warmup": ensemble.warmup,
        "threshold": ensemble.threshold,
        "fire_after": ensemble.fire_after,
        "resolve_after": ensemble.resolve_after,
    }
    return type(params).model_validate({**params.model_dump(), **shared})


class EnsembleDetector(ValueDetector[EnsembleParams]):
    """The larger score of an ``adaptive`` and a ``resonance`` member; anomalous if either is.

    ``Verdict.expected`` is the adaptive member's forecast. ``nan``/``inf`` values are ignored.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(7)
    >>> det = EnsembleDetector(EnsembleParams())
    >>> quiet = [det.update(50.0 + rng.gauss(0.0, 1.0), ts=300.0 * i) for i in range(1000)]
    >>> sum(v.transition is not None for v in quiet)
    0
    >>> step = [det.update(65.0 + rng.gauss(0.0, 1.0), ts=300.0 * (1000 + i)) for i in range(10)]
    >>> [v.transition for v in step if v.transition]
    [<Transition.FIRED: 'fired'>]
    """

    kind: ClassVar[str] = "ensemble"
    params_type: ClassVar[type[DetectorParams]] = EnsembleParams

    __slots__ = ("_adaptive", "_hysteresis", "_resonance")

    def __init__(self, params: EnsembleParams) -> None:
        super().__init__(params)
        self._adaptive = AdaptiveDetector(_member(params.adaptive, params))
        self._resonance = ResonanceDetector(_member(params.resonance, params))
        self._hysteresis = Hysteresis(params.fire_after, params.resolve_after)

    def update(self, value: float, ts: float) -> Verdict:
        """Score ``value`` (series units) observed at ``ts`` (epoch seconds), then learn it."""
        hysteresis = self._hysteresis
        if not usable(value) or not math.isfinite(ts):
            return Verdict(0.0, math.nan, False, hysteresis.firing)
        a = self._adaptive.update(value, ts)
        r = self._resonance.update(value, ts)
        anomalous = a.anomalous or r.anomalous
        transition = hysteresis.step(anomalous)
        return Verdict(max(a.score, r.score), a.expected, anomalous, hysteresis.firing, transition)

    def to_state(self) -> dict[str, Any]:
        """The whole mutable state as a JSON-serialisable dict."""
        return {
            "adaptive": self._adaptive.to_state(),
            "resonance": self._resonance.to_state(),
            "hysteresis": self._hysteresis.to_state(),
        }

    @classmethod
    def from_state(cls, params: EnsembleParams, state: dict[str, Any]) -> Self:
        """Rebuild from ``params`` and :meth:`to_state` output; future verdicts are identical.

        Raises
        ------
        ValueError
            If ``state`` or a member's state is malformed.
        """
        detector = cls(params)
        detector._adaptive = AdaptiveDetector.from_state(
            detector._adaptive.params, dict(get_mapping(state, "adaptive"))
        )
        detector._resonance = ResonanceDetector.from_state(
            detector._resonance.params, dict(get_mapping(state, "resonance"))
        )
        load_hysteresis(detector._hysteresis, state, "hysteresis")
        return detector
