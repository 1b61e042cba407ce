"""``context``: surprise of the newest value given the values before it, after CAD OSE's contexts.

CAD OSE (the Contextual Anomaly Detector, second among NAB's published detectors) turns each value
into a few discrete "facts", learns which facts follow which *contexts* of recent facts, and
scores a point by the share of its facts that the active contexts did not predict: a value that is
ordinary in itself but out of its usual sequence is the anomaly. This detector keeps the idea in
bounded, per-series form (our own code, not a port; CAD's context memory grows without bound):

1. **Quantise** each value online to one of ``levels`` symbols: ``z = (x - level) / spread``
   with a slowly fading mean and standard deviation (about ``1 / level_fading`` points of memory;
   outliers enter clipped to ``level_clip`` spreads), cut into equal bins over
   +-``span`` spreads (the end bins take everything beyond).
2. **Contexts**: the previous symbol (order 1) and the previous two (order 2). For each, a table
   of counts of the symbol that followed; a row whose counts reach 255 is halved, so the tables
   follow a changing behaviour and fit in bytes (``levels**2 + levels**3`` of them).
3. **Surprise**: ``-log2`` of the probability the order-1 row gives the new symbol (add-half
   smoothing), or the order-2 row's if that is smaller and the row has seen ``min_row`` points:
   as in CAD, a symbol that any of its contexts predicts is not news (and a value that a slowly
   moving bin edge puts in the next symbol is still predicted by the shorter context). In bits,
   0 for a certain symbol, ``log2(levels)`` for a uniform guess. A symbol's count is credited
   ``near`` of its neighbours' counts: the bins follow the level and spread, so a value may
   land one symbol off from where it used to, and that alone is not news. A value
   beyond the bins (more than ``span`` spreads out) is surprising in itself: its surprise is at
   least that of a uniform guess plus the bits by which its normal tail is rarer than the tail
   beyond ``span`` (``-log2`` of the tail: 9.5 bits at 3 spreads, 14.9 at 4, 294 at 20; the
   likelihood caps surprise at ``raw_cap``), so a level shift or a spike counts as well as a
   broken sequence.

   With ``quantiser = "range"`` the bins are instead ``levels`` equal slices of the range the
   series has held so far (its lowest and highest value, widened as new records come), which is
   how CAD OSE quantises (8 levels over the series' range; CAD is given the whole file's
   minimum and maximum up front, a look-ahead a stream does not have). A value beyond that range
   is a new record, worth ``record_bits`` of surprise. On a series whose normal values occupy a
   few of the range's slices, an excursion to an empty slice is news, however noisy the series.
4. **Anomaly likelihood** (:class:`~detectors.likelihood.AnomalyLikelihood`): the short average
   of the surprise against its own long run, in long-run standard deviations, so a noisy series
   (always a few bits of surprise) and a regular one (almost none) share one threshold.
5. **Novelty gate** as in :mod:`detectors.adaptive`: a score that does not exceed the recent peak
   (decaying by ``peak_decay`` per point) is damped, and an open alert's points are not news.

Memory: ``levels**2 + levels**3`` bytes of counts (576 with 8 levels) plus O(``short_window``)
(about 1 KB of JSON state; the range quantiser adds its two bounds); time O(``levels``) per
point.

Measured on the shared NAB part (``bench/nab_eval.py``, issue 12): alone, ``spread`` ranks 35.1
and ``range`` 38.4 (standard); CAD OSE itself, given each file's minimum and maximum up front as
NAB gives them, ranks 62.3 there. Beside ``adaptive`` (the larger of adaptive's score and half of
this one's, alerts of either) ``range`` raises the in-sample ranked score from 68.8 to 70.3 but
not the leave-one-category-out one (67.0 against 67.1).
"""

from __future__ import annotations

import math
from math import erfc, log, log2, pi, sqrt
from typing import Any, ClassVar, Literal, Self

from pydantic import Field

from detectors._state import (
    decode_bytes,
    encode_bytes,
    get_float,
    get_int,
    get_mapping,
    load_hysteresis,
)
from detectors.base import DetectorParams, ValueDetector, Verdict
from detectors.guards import usable
from detectors.likelihood import AnomalyLikelihood
from detectors.novelty import FadingNormaliser, NoveltyGate, NoveltyParams
from detectors.params import Threshold

__all__ = ["ContextDetector", "ContextParams"]

#: A count that reaches this halves its whole row (counts are stored in one byte each).
_FULL = 255
_SQRT_HALF = sqrt(0.5)
_LN2 = log(2.0)


class ContextParams(NoveltyParams):
    """Parameters of :class:`ContextDetector`; counts in points, surprise in bits."""

    levels: int = Field(8, ge=2, le=16, description="Symbols a value is quantised to.")
    span: float = Field(
        3.0, gt=0.0, description="The symbols' bins cover +-span spreads around the level."
    )
    near: float = Field(
        0.25,
        ge=0.0,
        le=1.0,
        description=(
            "Weight of a neighbouring symbol's count in a symbol's probability: a value the "
            "slowly moving bin edges put one symbol off is not news."
        ),
    )
    quantiser: Literal["spread", "range"] = Field(
        "spread",
        description=(
            "How values become symbols: 'spread' bins +-span spreads around the fading level; "
            "'range' bins the range of values seen so far (as CAD OSE bins the series' range)."
        ),
    )
    record_bits: float = Field(
        8.0,
        gt=0.0,
        description="Surprise (bits) of a value beyond the range seen so far ('range' only).",
    )
    min_row: int = Field(
        4,
        ge=0,
        description="Points an order-2 context must have seen before it is used (else order 1).",
    )
    raw_cap: float = Field(16.0, gt=0.0, description="Surprise is clipped to this (bits).")
    threshold: Threshold = 7.5


class ContextDetector(ValueDetector[ContextParams]):
    """Surprise of each value's symbol given the one or two symbols before it.

    See the module docstring for the method. ``Verdict.expected`` is the normalising mean.
    ``nan``/``inf`` values are ignored (score 0, not learned, alert state unchanged).

    Examples
    --------
    A saw-tooth climbs 0, 1, 2, ... 9 and drops back to 0; every value below stays inside the
    usual range, but the saw running backwards breaks the sequence, and that fires (once the
    cycle is well learned: the likelihood's long run covers about 1,000 points, and during the
    first thousands the surprise of the learning itself is still in it):

    >>> det = ContextDetector(ContextParams())
    >>> saw = [float(i % 10) for i in range(5000)]
    >>> quiet = [det.update(v, ts=60.0 * i) for i, v in enumerate(saw)]
    >>> sum(v.transition is not None for v in quiet)
    0
    >>> backwards = [9.0 - i % 10 for i in range(20)]
    >>> broken = [det.update(v, ts=60.0 * (5000 + i)) for i, v in enumerate(backwards)]
    >>> [v.transition for v in broken if v.transition]
    [<Transition.FIRED: 'fired'>]
    """

    kind: ClassVar[str] = "context"
    params_type: ClassVar[type[DetectorParams]] = ContextParams

    __slots__ = (
        "_edge_bits",
        "_first",
        "_gate",
        "_high",
        "_likelihood",
        "_low",
        "_normaliser",
        "_prev",
        "_prev2",
        "_second",
    )

    def __init__(self, params: ContextParams) -> None:
        super().__init__(params)
        levels = params.levels
        self._normaliser = FadingNormaliser(params.level_fading, params.level_clip)
        self._prev = -1  # the previous symbol (-1: none yet)
        self._prev2 = -1  # the one before it
        self._first = bytearray(levels * levels)  # order-1 counts: row = previous symbol
        self._second = bytearray(levels**3)  # order-2 counts: row = the previous two
        self._likelihood = AnomalyLikelihood(
            params.short_window, params.likelihood_fading, params.raw_cap
        )
        self._gate = NoveltyGate.of(params)
        self._edge_bits = _tail_bits(params.span)  # the tail beyond the bins
        # The range of the values seen so far ('range' quantiser; nan: none yet).
        self._low = self._high = math.nan

    def _symbol(self, z: float) -> int:
        """The symbol of a value ``z`` spreads from the level."""
        p = self.params
        if z <= -p.span:
            return 0
        if z >= p.span:
            return p.levels - 1
        return min(int((z + p.span) * p.levels / (2.0 * p.span)), p.levels - 1)

    def _range_symbol(self, x: float) -> tuple[int, bool]:
        """The symbol of ``x`` among ``levels`` slices of the range seen before it, and whether
        ``x`` lies beyond that range (a new record); then widen the range to ``x``."""
        low, high, levels = self._low, self._high, self.params.levels
        if low != low:  # nan: the first value
            self._low = self._high = x
            return 0, False
        span = high - low
        if span > 0.0:
            at = (x - low) / span
            beyond = at < 0.0 or at > 1.0
            symbol = 0 if at <= 0.0 else min(int(at * levels), levels - 1)
        else:
            beyond = x != low
            symbol = 0 if x <= low else levels - 1
        if x < low:
            self._low = x
        elif x > high:
            self._high = x
        return symbol, beyond

    def _surprise(self, symbol: int) -> float:
        """Bits of surprise at ``symbol`` after the previous symbols; then count it."""
        levels, near = self.params.levels, self.params.near
        prev, prev2 = self._prev, self._prev2
        if prev < 0:
            return 0.0
        first = self._first
        row = prev * levels
        bits = _bits(first, row, symbol, levels, near)
        _count(first, row, symbol, levels)
        if prev2 >= 0:
            second = self._second
            row = (prev2 * levels + prev) * levels
            if sum(second[row : row + levels]) >= self.params.min_row:
                bits = min(bits, _bits(second, row, symbol, levels, near))
            _count(second, row, symbol, levels)
        return bits

    def update(self, value: float, ts: float) -> Verdict:
        """Score ``value`` (series units) observed at ``ts`` (epoch seconds), then learn it."""
        gate = self._gate
        if not usable(value) or not math.isfinite(ts):
            return gate.quiet(math.nan)
        p = self.params
        x = float(value)
        z, expected = self._normaliser.standardise(x)
        if p.quantiser == "range":
            symbol, beyond = self._range_symbol(x)
            surprise = self._surprise(symbol)
            if beyond:  # a new record: surprising in itself
                surprise = max(surprise, p.record_bits)
        else:
            symbol = self._symbol(z)
            surprise = self._surprise(symbol)
            if not -p.span < z < p.span:  # beyond the bins: surprising in itself, by its tail
                bits = _tail_bits(abs(z)) - self._edge_bits + log2(p.levels)
                surprise = max(surprise, bits)
        self._prev2, self._prev = self._prev, symbol
        likelihood = self._likelihood.update(surprise)
        if self._normaliser.seen <= p.warmup:  # (this point counted)
            return gate.quiet(expected)
        return gate.judge(likelihood, expected)

    def to_state(self) -> dict[str, Any]:
        """The whole mutable state as a JSON-serialisable dict (no non-finite floats)."""
        return {
            "mean": self._normaliser.mean,
            "var": self._normaliser.var,
            "seen": self._normaliser.seen,
            "prev": [self._prev2, self._prev],
            "range": None if self._low != self._low else [self._low, self._high],
            "first": encode_bytes(bytes(self._first)),
            "second": encode_bytes(bytes(self._second)),
            "likelihood": self._likelihood.to_state(),
            "peak": self._gate.peak,
            "hysteresis": self._gate.hysteresis.to_state(),
        }

    @classmethod
    def from_state(cls, params: ContextParams, state: dict[str, Any]) -> Self:
        """Rebuild from ``params`` and :meth:`to_state` output; future verdicts are identical.

        Raises
        ------
        ValueError
            If ``state`` is malformed or does not fit ``params`` (e.g. another number of levels).
        """
        detector = cls(params)
        levels = params.levels
        detector._normaliser.mean = get_float(state, "mean")
        detector._normaliser.var = get_float(state, "var")
        detector._normaliser.seen = get_int(state, "seen")
        prev = state.get("prev")
        if (
            not isinstance(prev, list)
            or len(prev) != 2
            or not all(type(s) is int and -1 <= s < levels for s in prev)
        ):
            raise ValueError(f"detector state: 'prev' must be two symbols below {levels}")
        detector._prev2, detector._prev = prev
        span = state.get("range")  # absent in states saved before the 'range' quantiser
        if span is not None:
            if (
                not isinstance(span, list)
                or len(span) != 2
                or not all(type(v) in (int, float) and math.isfinite(v) for v in span)
                or span[0] > span[1]
            ):
                raise ValueError("detector state: 'range' must be [low, high], finite, low <= high")
            detector._low, detector._high = float(span[0]), float(span[1])
        first = decode_bytes(state.get("first"), "first")
        second = decode_bytes(state.get("second"), "second")
        if len(first) != levels**2 or len(second) != levels**3:
            raise ValueError("detector state: 'first'/'second' do not fit the levels")
        detector._first, detector._second = bytearray(first), bytearray(second)
        detector._likelihood.load_state(get_mapping(state, "likelihood"))
        detector._gate.peak = get_float(state, "peak")
        load_hysteresis(detector._gate.hysteresis, state, "hysteresis")
        return detector


def _bits(table: bytearray, row: int, symbol: int, levels: int, near: float) -> float:
    """``-log2`` of the probability ``table``'s ``row`` gives ``symbol``: its count plus
    ``near`` times its neighbours' (add-half smoothing)."""
    total = sum(table[row : row + levels])
    at = row + symbol
    weight = table[at] + 0.5
    if symbol > 0:
        weight += near * table[at - 1]
    if symbol < levels - 1:
        weight += near * table[at + 1]
    return -log2(weight / (total * (1.0 + 2.0 * near) + 0.5 * levels))


def _count(table: bytearray, row: int, symbol: int, levels: int) -> None:
    """Count ``symbol`` in ``table``'s ``row``, halving the row first when that count is full."""
    at = row + symbol
    if table[at] >= _FULL:
        for i in range(row, row + levels):
            table[i] >>= 1
    table[at] += 1


def _tail_bits(z: float) -> float:
    """``-log2`` of the probability that a normal value lies ``z`` or more spreads above its
    mean (``z >= 0``); past where ``erfc`` underflows, its asymptotic form.

    >>> round(_tail_bits(3.0), 1), round(_tail_bits(4.0), 1), round(_tail_bits(40.0))
    (9.5, 14.9, 1161)
    """
    if z < 8.0:
        return -log2(0.5 * erfc(z * _SQRT_HALF))
    return (0.5 * z * z + log(z * sqrt(2.0 * pi))) / _LN2
