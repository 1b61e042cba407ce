"""The parameters of :mod:`detectors.seasonal`: a pydantic model, outside the compiled
module (see :mod:`detectors.compiled`)."""

from __future__ import annotations

from pydantic import Field

from detectors.base import DetectorParams
from detectors.params import Fading, FireAfter, ResolveAfter, Threshold, Warmup

__all__ = ["SeasonalParams"]


class SeasonalParams(DetectorParams):
    """Parameters of :class:`SeasonalBaseline` and :class:`SeasonalDetector` (counts in points)."""

    level_fading: Fading = Field(
        0.05, description="Weight of the newest value in the 'level' forecaster."
    )
    season_fading: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description=(
            "Weight of the newest value in its daily/weekly bucket (1.0 = same time yesterday / "
            "last week)."
        ),
    )
    week_fading: float = Field(
        0.1,
        gt=0.0,
        le=1.0,
        description="Weight of the newest deviation from the daily forecast in its weekly bucket.",
    )
    bucket_seconds: float = Field(
        300.0,
        ge=60.0,
        le=3600.0,
        description="Width of a time-of-day bucket of the daily profile, in seconds.",
    )
    weekly_bucket_seconds: float = Field(
        3600.0,
        ge=300.0,
        le=86_400.0,
        description="Width of a time-of-week bucket of the weekly correction, in seconds.",
    )
    daily: bool = Field(True, description="Include the daily-profile forecaster.")
    weekly: bool = Field(True, description="Include the weekly-profile forecaster.")
    error_fading: Fading = Field(
        0.01, description="Weight of the newest error in each error scale."
    )
    select_fading: Fading = Field(
        0.005,
        description="Weight of the newest error in the running error used to pick a forecaster.",
    )
    clip: float = Field(
        6.0,
        gt=1.0,
        description="Errors are clipped to this many scales before updating a scale (robustness).",
    )
    min_scale_ratio: float = Field(
        1e-6,
        ge=0.0,
        description="Floor of the scale as a fraction of |forecast| (dimensionless).",
    )
    warmup: Warmup = 30
    threshold: Threshold = 8.0
    fire_after: FireAfter = 3
    resolve_after: ResolveAfter = 5
