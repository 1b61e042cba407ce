"""The parameters of :mod:`detectors.adaptive`: a pydantic model, outside the compiled
module (see :mod:`detectors.compiled`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from detectors.base import DetectorParams
from detectors.params import Fading, FireAfter, ResolveAfter, Threshold, Warmup
from detectors.seasonal_params import SeasonalParams

__all__ = ["AdaptiveParams"]


class AdaptiveParams(DetectorParams):
    """Parameters of :class:`AdaptiveDetector`; counts are in points, scores in likelihood units.

    The defaults are the shipped settings (``kestrel evaluate`` measures them on NAB).
    """

    added_later: ClassVar[frozenset[str]] = frozenset({"score_needs_raw"})

    seasonal: SeasonalParams = Field(
        default_factory=SeasonalParams,
        description="Forecaster bank of the pattern residual (its hysteresis fields are unused).",
    )
    level_fading: Fading = Field(
        0.0005,
        description="Weight of the newest value in the long-run level (memory ~1/level_fading).",
    )
    level_clip: float = Field(
        3.0,
        gt=0.0,
        description="Deviations beyond this many standard deviations enter the level clipped.",
    )
    short_window: int = Field(
        5, ge=1, le=1000, description="Points in the likelihood's short average."
    )
    likelihood_fading: Fading = Field(
        0.001,
        description="Weight of the newest short average in the likelihood's long run.",
    )
    raw_cap: float = Field(
        8.0, gt=0.0, description="Raw scores are capped here before the likelihood."
    )
    peak_decay: float = Field(
        0.999,
        gt=0.0,
        le=1.0,
        description="Per-point decay of the recent peak used by the novelty gate.",
    )
    damping: float = Field(
        1e-3,
        ge=0.0,
        lt=1.0,
        description="Factor applied to a score that does not exceed the recent peak.",
    )
    record_tolerance: float = Field(
        0.01,
        gt=0.0,
        description=(
            "A value beyond the range seen so far by more than this fraction of the range is a "
            "new record (dimensionless)."
        ),
    )
    record_min_z: float = Field(
        4.0,
        ge=0.0,
        description=(
            "A new record counts only if it is also this many long-run standard deviations from "
            "the long-run level (records of plain noise are not news)."
        ),
    )
    record_score: float = Field(
        5.0,
        gt=0.0,
        description=(
            "Likelihood a new record counts as (the score units); plus up to 0.1 growing with "
            "the excess, so records stay distinct."
        ),
    )
    alert_min_raw: float = Field(
        3.0,
        ge=0.0,
        description=(
            "An alert also needs this point's own raw evidence (pattern residual or long-run "
            "z-score, in their scale units) above this; 0 turns the check off."
        ),
    )
    alert_sure_raw: float = Field(
        6.0,
        ge=0.0,
        description=(
            "Raw evidence (pattern residual or long-run z-score, in their scale units) from which "
            "one anomalous point fires; weaker evidence must be confirmed within "
            "confirm_within points. 6: 0.8 false pages per 100,000 points of Gaussian noise "
            "(11.9 with 0, which pages every incident; 0 gains 2 points of shipped NAB score "
            "on the shared part)."
        ),
    )
    confirm_within: int = Field(
        10,
        ge=1,
        le=100,
        description=(
            "Points after a weakly anomalous one in which a point whose likelihood and raw "
            "evidence are above threshold and alert_min_raw confirms it (fires)."
        ),
    )
    score_needs_raw: bool = Field(
        False,
        description=(
            "The score column too needs raw evidence above alert_min_raw: a novel point without "
            "it is scored damped, as its alert would be refused (the alerts are unchanged)."
        ),
    )
    warmup: Warmup = 60
    threshold: Threshold = 4.3
    fire_after: FireAfter = 1
    resolve_after: ResolveAfter = 30
