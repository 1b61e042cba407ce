"""Guards shared by the detectors: which inputs they may learn, and which outliers a baseline takes.

>>> usable(3.5), usable(float("nan")), usable(float("inf")), usable(-1e150)
(True, False, False, False)
"""

from __future__ import annotations

from typing import Final

__all__ = ["MAX_ABS_VALUE", "OutlierGate", "usable"]

#: Values at least this large in magnitude are rejected like ``nan``: their square (used by
#: variances) would overflow a float and poison a baseline with ``inf``.
MAX_ABS_VALUE: Final = 1e150


def usable(x: float) -> bool:
    """Whether ``x`` is a number a detector may learn: finite, with ``|x| < MAX_ABS_VALUE``."""
    return -MAX_ABS_VALUE < x < MAX_ABS_VALUE  # false for nan too


class OutlierGate:
    """Baseline protection: outliers are kept out of a baseline, until ``relearn_after`` in a row.

    An incident then does not inflate its own baseline, while a lasting shift (more than
    ``relearn_after`` outliers in a row) is learned and becomes the new normal. With
    ``learn_outliers`` every observation is learned. :attr:`run` is the detector's saved state.

    Parameters
    ----------
    learn_outliers:
        Learn outliers too (the ``learn_anomalies`` parameter).
    relearn_after:
        Outliers in a row after which they are learned anyway (>= 1).

    Examples
    --------
    >>> gate = OutlierGate(learn_outliers=False, relearn_after=2)
    >>> [gate.admits(outlier) for outlier in (True, True, True, True, False, True)]
    [False, False, True, True, True, False]
    """

    __slots__ = ("learn_outliers", "relearn_after", "run")

    def __init__(self, learn_outliers: bool, relearn_after: int) -> None:
        self.learn_outliers = learn_outliers
        self.relearn_after = relearn_after
        self.run = 0  # consecutive outliers, counted up to ``relearn_after + 1`` only

    def admits(self, outlier: bool) -> bool:
        """Count one observation; whether the baseline should learn it."""
        if not outlier:
            self.run = 0
            return True
        run = self.run
        if run <= self.relearn_after:
            self.run = run = run + 1
        return self.learn_outliers or run > self.relearn_after

    def load(self, run: int) -> None:
        """Restore :attr:`run` (saved with other parameters: capped at ``relearn_after + 1``)."""
        self.run = min(run, self.relearn_after + 1)
