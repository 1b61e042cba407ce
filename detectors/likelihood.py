"""Anomaly likelihood: how unusual the *recent* raw scores are compared with their long run.

A raw anomaly score (say a z-score) means different things on different series: 6 is routine on
a spiky network counter and extraordinary on a smooth temperature. Following the idea behind
Numenta's anomaly likelihood, :class:`AnomalyLikelihood` keeps the long-run mean and spread of the
short moving average of a raw score and reports how many long-run standard deviations the current
short average sits above its long-run mean. The result is comparable across series, so one
threshold works for all of them.

Memory and time are O(``short_window``) per point (the short average is a ring buffer; the
long-run statistics are exponentially weighted, O(1)).

>>> lik = AnomalyLikelihood(short_window=3, fading_factor=0.01, cap=8.0)
>>> quiet = [lik.update(1.0 + 0.1 * (i % 3)) for i in range(300)]
>>> round(max(quiet[100:]), 2)
0.5
>>> round(lik.update(8.0), 1)
7.4
"""

from __future__ import annotations

from collections.abc import Mapping
from math import sqrt
from typing import Any

from detectors._state import get_float, get_int, get_list

__all__ = ["AnomalyLikelihood", "likelihood_state", "read_likelihood_state"]


class AnomalyLikelihood:
    """Standardised short-term average of a raw score against its long-run distribution.

    Parameters
    ----------
    short_window:
        Points in the short moving average of the raw score (>= 1).
    fading_factor:
        Weight of the newest short average in the long-run mean and variance (0 < f < 1); the
        long run covers roughly the last ``1 / fading_factor`` points.
    cap:
        Raw scores are clipped to ``cap`` before averaging, so one huge value cannot dominate
        the average or the long-run variance (same units as the raw score).
    """

    # The short window is a ring allocated whole: the first ``_filled`` slots hold scores, the
    # rest 0.0. sum() over every slot is exactly the sum over the filled ones: sum() starts from
    # 0, so no partial sum is -0.0, and x + 0.0 == x for every other x. A list, not an array:
    # storing and summing are faster.
    __slots__ = (
        "_buffer",
        "_cap",
        "_fading",
        "_filled",
        "_keep",
        "_mean",
        "_pos",
        "_var",
        "short_window",
    )

    def __init__(self, short_window: int, fading_factor: float, cap: float) -> None:
        if short_window < 1:
            raise ValueError(f"short_window: must be >= 1, got {short_window}")
        if not 0.0 < fading_factor < 1.0:
            raise ValueError(f"fading_factor: must be in (0, 1), got {fading_factor}")
        if not cap > 0.0:
            raise ValueError(f"cap: must be > 0, got {cap}")
        self.short_window = short_window
        self._fading = fading_factor
        self._keep = 1.0 - fading_factor
        self._cap = cap
        self._buffer = [0.0] * short_window
        self._filled = 0
        self._pos = 0
        self._mean = 0.0
        self._var = 1.0

    def update(self, raw: float) -> float:
        """Standardised short average including ``raw``, then learn it into the long run.

        Returns
        -------
        float
            ``(short_average - long_mean) / long_std`` (may be negative).
        """
        cap = self._cap
        clipped = raw if raw < cap else cap  # nan becomes the cap
        if clipped < 0.0:
            clipped = 0.0
        buffer = self._buffer
        filled = self._filled
        if filled < self.short_window:
            buffer[filled] = clipped
            self._filled = filled = filled + 1
        else:
            pos = self._pos
            buffer[pos] = clipped
            pos += 1
            self._pos = 0 if pos == filled else pos
        mean = self._mean
        var = self._var
        delta = sum(buffer) / filled - mean
        fading = self._fading
        self._mean = mean + fading * delta
        self._var = self._keep * (var + fading * delta * delta)
        return delta / (sqrt(var) + 1e-9)

    def to_state(self) -> dict[str, Any]:
        """The mutable state as a JSON-serialisable dict."""
        return likelihood_state(self._buffer, self._filled, self._pos, self._mean, self._var)

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`to_state` returned (``ValueError`` if malformed)."""
        self._buffer, self._filled, self._pos, self._mean, self._var = read_likelihood_state(
            state, self.short_window
        )


def likelihood_state(
    buffer: list[float], filled: int, pos: int, mean: float, var: float
) -> dict[str, Any]:
    """The state dict of an :class:`AnomalyLikelihood` (for detectors that inline one)."""
    return {"buffer": buffer[:filled], "pos": pos, "mean": mean, "var": var}


def read_likelihood_state(
    state: Mapping[str, Any], short_window: int
) -> tuple[list[float], int, int, float, float]:
    """Check and read :func:`likelihood_state` output: ``(ring, filled, pos, mean, var)``.

    The ring is padded with 0.0 to ``short_window`` slots, ``filled`` of them used.

    Raises
    ------
    ValueError
        If ``state`` is malformed or holds more than ``short_window`` scores.
    """
    buffer = [float(v) for v in get_list(state, "buffer")]
    if len(buffer) > short_window:
        raise ValueError("detector state: likelihood 'buffer' longer than short_window")
    pos = get_int(state, "pos")
    if pos >= max(len(buffer), 1):
        raise ValueError("detector state: likelihood 'pos' out of range")
    mean = get_float(state, "mean")
    var = get_float(state, "var")
    return buffer + [0.0] * (short_window - len(buffer)), len(buffer), pos, mean, var
