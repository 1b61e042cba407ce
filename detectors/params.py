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

from collections.abc import Callable
from typing import Annotated, TypeVar

from pydantic import Field

__all__ = [
    "Fading",
    "FireAfter",
    "LearnOutliers",
    "RelearnAfter",
    "ResolveAfter",
    "Threshold",
    "Warmup",
    "constants_for",
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

_P = TypeVar("_P")
_C = TypeVar("_C")

#: Constants derived from params objects, by the params' type and identity (a config's params
#: objects are shared by all its series; equal params may still differ, e.g. in a zero's sign).
_CONSTANTS: dict[tuple[type, int], tuple[object, object]] = {}


def constants_for(params: _P, make: Callable[[_P], _C]) -> _C:
    """``make(params)``, computed once per params object and shared by every detector using it.

    Detectors read plain attributes on the hot path (a pydantic attribute costs several times a
    slot). The cache is bounded: past 4,096 params objects it starts afresh.
    """
    key = (type(params), id(params))
    known = _CONSTANTS.get(key)
    if known is not None and known[0] is params:
        return known[1]  # type: ignore[return-value]
    if len(_CONSTANTS) >= 4096:
        _CONSTANTS.clear()
    constants = make(params)
    _CONSTANTS[key] = (params, constants)
    return constants
