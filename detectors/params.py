"""Parameters shared by several detectors, declared once: constraint and description.

Each is an :data:`typing.Annotated` type; a detector's parameter model uses it with its own
default, e.g. ``threshold: Threshold = 4.0``. A bad value is reported under the parameter's name
as usual (``threshold: Input should be greater than 0``).

>>> from detectors.base import DetectorParams
>>> class Params(DetectorParams):
...     warmup: Warmup = 30
...     threshold: Threshold = 4.0
>>> Params().warmup, Params.model_fields["threshold"].description
(30, 'An observation is anomalous when its score exceeds this.')
>>> Params(threshold=0)
Traceback (most recent call last):
    ...
pydantic_core._pydantic_core.ValidationError: 1 validation error for Params
threshold
  Input should be greater than 0 [type=greater_than, input_value=0, input_type=int]
    ...
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

__all__ = [
    "Fading",
    "FireAfter",
    "LearnOutliers",
    "RelearnAfter",
    "ResolveAfter",
    "Threshold",
    "Warmup",
]

#: Observations learned before scoring starts.
Warmup = Annotated[
    int,
    Field(
        ge=1,
        description="Observations (points, or non-empty windows) learned before scoring starts; "
        "the score is 0 and no alert fires meanwhile.",
    ),
]

#: The score above which one observation is anomalous.
Threshold = Annotated[
    float,
    Field(gt=0.0, description="An observation is anomalous when its score exceeds this."),
]

#: Hysteresis: anomalous observations in a row that fire an alert.
FireAfter = Annotated[
    int, Field(ge=1, description="Consecutive anomalous observations needed to fire an alert.")
]

#: Hysteresis: normal observations in a row that resolve a firing alert.
ResolveAfter = Annotated[
    int,
    Field(ge=1, description="Consecutive normal observations needed to resolve a firing alert."),
]

#: Whether outliers enter the baseline.
LearnOutliers = Annotated[
    bool,
    Field(
        description="Learn outlying observations into the baseline. If false they are held out, "
        "until relearn_after of them in a row."
    ),
]

#: Outliers in a row after which they are learned anyway.
RelearnAfter = Annotated[
    int,
    Field(
        ge=1,
        description="Consecutive outlying observations after which they are learned anyway, so a "
        "lasting level shift becomes the new baseline and its alert resolves.",
    ),
]

#: The weight of the newest value in an exponentially weighted statistic, in (0, 1); the
#: statistic remembers roughly the last ``1 / weight`` values.
Fading = Annotated[float, Field(gt=0.0, lt=1.0)]
