"""Detectors wrapped to watch what they do, and the way back to the detector.

A tap (:class:`engine.core.explain.Tap`) records the points a detector judges while someone looks
at its series; an export (:class:`engine.core.series_export.VerdictRecorder`) keeps its last
verdict for the gauges. Both are a :class:`WrappedDetector`: the pipeline calls one as it would
the detector, ``isinstance`` sees the detector's class (as :mod:`unittest.mock` does, so the
pipeline's dispatch on the detector's shape is unchanged), and every attribute the wrapper does
not define is the detector's (``to_state``, ``params``, ``describe``, ...), so saving and
restoring are unchanged. Wrappers may nest (a tapped exported series).

>>> from detectors.zscore import ZScoreDetector, ZScoreParams
>>> detector = ZScoreDetector(ZScoreParams())
>>> wrapped = WrappedDetector(WrappedDetector(detector))
>>> isinstance(wrapped, ZScoreDetector), wrapped.kind, unwrapped(wrapped) is detector
(True, 'zscore', True)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from detectors.base import Verdict, notable_verdicts

__all__ = ["WrappedDetector", "unwrapped"]


class WrappedDetector:
    """A detector (``inner``) behind a wrapper; subclasses override the calls they watch."""

    __slots__ = ("inner",)

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        """The wrapped detector's class, so ``isinstance`` checks see the detector (through
        every wrapper: ``type(self.inner)`` would be the next wrapper's)."""
        cls: type = self.inner.__class__
        return cls

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def update_many(
        self, values: Sequence[float], times: Sequence[float]
    ) -> list[tuple[int, Verdict]]:
        """A run of points through this wrapper's ``update``, one call per point, so that the
        wrapper sees each of them (the detector's own ``update_many`` would bypass it)."""
        return notable_verdicts(self.update, values, times)


def unwrapped(scorer: Any) -> Any:
    """The detector inside however many wrappers (``scorer`` itself if it is not wrapped)."""
    while issubclass(type(scorer), WrappedDetector):
        scorer = scorer.inner
    return scorer
