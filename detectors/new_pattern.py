"""``new_pattern``: log messages whose template was never seen, or whose rate jumps.

Messages of one service are mined into templates online by
:class:`~detectors.log_templates.TemplateMiner` (Drain-like: obvious parameters masked, messages
grouped by token count and first token, a message joins the most similar template; see that
module). At most ``max_templates`` templates are kept per service; the least recently used is
forgotten (LRU), so state stays bounded. A forgotten template that returns counts as new again.

Each message is scored before it is learned. A message is anomalous when

* its template is new and its level is at least ``min_level`` (default ``ERROR``), or
* its template is known and the template's short-term rate (events per second, decaying with
  ``fast_seconds``) is at least ``rate_ratio`` times its long-term rate (``slow_seconds``), with at
  least ``min_burst`` recent events.

Time per message is O(message length) for a message shape seen before, else O(templates in its
group x tokens); memory is O(``max_templates``) for the saved state plus the miner's speed caches
(1,024 entries each, not saved).
"""

from __future__ import annotations

import math
from math import exp, isfinite
from typing import Any, ClassVar, Final, Self

from pydantic import Field, field_validator

from detectors._state import get_float, get_int, get_list, load_hysteresis
from detectors.base import DetectorParams, MessageDetector, MessageVerdict, Transition
from detectors.hysteresis import Hysteresis
from detectors.log_templates import WILDCARD, TemplateMiner, mask_tokens
from detectors.params import ResolveAfter
from engine.model.levels import ALIASES, LEVEL_NUMBERS, canonical_level, level_number

__all__ = ["WILDCARD", "NewPatternDetector", "NewPatternParams", "mask_tokens"]

_NAN: Final = math.nan


class NewPatternParams(DetectorParams):
    """Parameters of :class:`NewPatternDetector`."""

    similarity: float = Field(
        0.5,
        gt=0.0,
        le=1.0,
        description="Least share of equal token positions for a message to join a template.",
    )
    max_templates: int = Field(
        1000, ge=1, le=100_000, description="Templates kept per service (LRU beyond that)."
    )
    min_level: str = Field(
        "ERROR",
        description="A new template alerts only at this level or above (e.g. 'WARNING'; any case).",
    )
    fast_seconds: float = Field(
        300.0, gt=0.0, description="Time constant of the short-term rate, in seconds."
    )
    slow_seconds: float = Field(
        21_600.0, gt=0.0, description="Time constant of the long-term (baseline) rate, in seconds."
    )
    rate_ratio: float = Field(
        10.0, gt=1.0, description="Short-term over long-term rate that counts as a jump."
    )
    min_burst: float = Field(
        20.0, gt=0.0, description="Least recent events (short-term count) for a rate jump."
    )
    #: Normal messages.
    resolve_after: ResolveAfter = 50
    warmup_seconds: float = Field(
        3600.0,
        ge=0.0,
        description="Templates first seen within this many seconds of the service's first message "
        "are learned without alerting (every template is new at first).",
    )

    @field_validator("min_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        """A known level name or alias (any case), stored as its canonical name.

        A typo is an error, not INFO (see :mod:`engine.model.levels`).

        >>> [NewPatternParams(min_level=name).min_level for name in ("warning", " Err ")]
        ['WARNING', 'ERROR']
        """
        name = canonical_level(value)
        if name is None:
            accepted = ", ".join([*LEVEL_NUMBERS, *ALIASES])
            raise ValueError(
                f"min_level: unknown level {value[:32]!r}; accepted (any case): {accepted}"
            )
        return name


def _verdict(
    score: float,
    anomalous: bool,
    firing: bool,
    transition: Transition | None,
    template_id: str,
    template: str,
    new: bool,
    rate_ratio: float,
) -> MessageVerdict:
    """``MessageVerdict(score, nan, anomalous, firing, transition, template_id=..., ...)``, faster.

    Calling a class with keyword arguments builds a dict of them (about 1 µs here, once per log
    message); setting the slots of a bare instance costs about 0.4 µs. ``MessageVerdict`` has no
    ``__post_init__``; ``tests/detectors/test_new_pattern.py`` checks the two are equal.
    """
    verdict = _new_instance(MessageVerdict)
    verdict.score = score
    verdict.expected = _NAN
    verdict.anomalous = anomalous
    verdict.firing = firing
    verdict.transition = transition
    verdict.template_id = template_id
    verdict.template = template
    verdict.new = new
    verdict.rate_ratio = rate_ratio
    return verdict


_new_instance: Final = object.__new__


#: Score of a new template at or above ``min_level``.
NEW_TEMPLATE_SCORE: Final = 1e6


class _Rates:
    """A template's decayed event counts and its first and last event times."""

    __slots__ = ("fast", "first_ts", "last_ts", "slow")

    def __init__(self, ts: float) -> None:
        self.fast = 0.0  # decayed event count, time constant fast_seconds, as of last_ts
        self.slow = 0.0  # decayed event count, time constant slow_seconds, as of last_ts
        self.first_ts = ts
        self.last_ts = ts


class NewPatternDetector(MessageDetector[NewPatternParams]):
    """Online log template miner that flags new error templates and template rate jumps.

    It consumes ``(message, level, ts)`` through :meth:`observe` and answers with a
    :class:`~detectors.base.MessageVerdict`. Its ``score`` is in ``rate_ratio`` units for a known
    template (also during the warm-up: only new templates wait for it) and ``1e6`` for a new
    template at or above ``min_level``. State is saved with :meth:`to_state` and restored exactly
    with :meth:`from_state`.

    Examples
    --------
    >>> det = NewPatternDetector(NewPatternParams(warmup_seconds=600))
    >>> for i in range(200):
    ...     v = det.observe(f"GET /orders/{i} took {i % 50}ms user={i * 7}", "INFO", 10.0 * i)
    >>> v.new, v.template
    (False, 'GET <*> took <*> user=<*>')
    >>> v = det.observe("payment gateway timeout after 30s for order 81", "ERROR", 2000.0)
    >>> v.new, v.anomalous, v.transition
    (True, True, <Transition.FIRED: 'fired'>)
    >>> det.observe("payment gateway timeout after 12s for order 7", "ERROR", 2001.0).new
    False
    """

    kind: ClassVar[str] = "new_pattern"
    params_type: ClassVar[type[DetectorParams]] = NewPatternParams

    def __init__(self, params: NewPatternParams) -> None:
        super().__init__(params)
        self._min_level = level_number(params.min_level)
        # Small speed caches: a worker holds one detector per service.
        self._miner = TemplateMiner(
            params.similarity, max_templates=params.max_templates, cache_size=1024
        )
        self._rates: dict[str, _Rates] = {}
        self._first_ts: float | None = None  # event time of the first message seen
        self._hysteresis = Hysteresis(1, params.resolve_after)
        # The parameters read per message, as plain attributes (no model look-ups per line).
        self._fast_seconds = params.fast_seconds
        self._slow_seconds = params.slow_seconds
        self._rate_ratio = params.rate_ratio
        self._min_burst = params.min_burst
        self._warmup_seconds = params.warmup_seconds
        #: Level spellings seen, by whether they are at least ``min_level`` (bounded: see
        #: :meth:`_alerting_level`).
        self._level_alerts: dict[str, bool] = {}

    def _alerting_level(self, level: str) -> bool:
        """Whether ``level`` is at least ``min_level`` (memoised for the spellings seen)."""
        alerts = self._level_alerts.get(level)
        if alerts is None:
            alerts = level_number(level) >= self._min_level
            if len(self._level_alerts) >= 64:  # odd spellings: stay bounded
                self._level_alerts.clear()
            self._level_alerts[level] = alerts
        return alerts

    @property
    def templates(self) -> dict[str, str]:
        """Known templates by id, least recently used first."""
        return {t.id: t.text for t in self._miner.templates()}

    def observe(self, message: str, level: str, ts: float) -> MessageVerdict:
        """Score one log message (its level name, its time in epoch seconds), then learn it.

        A message with a non-finite ``ts`` is ignored (score 0, not learned, alert state kept):
        its time would poison the template rates and the saved state.
        """
        if not isfinite(ts):
            return MessageVerdict(
                0.0,
                _NAN,
                False,
                self._hysteresis.firing,
                template_id="",
                template="",
                new=False,
                rate_ratio=0.0,
            )
        miner = self._miner
        template, new = miner.add(message)
        tid = template.id
        if miner.evicted:
            for evicted in miner.evicted:
                self._rates.pop(evicted, None)
        if new:
            ratio = 0.0
            rates = self._rates[tid] = _Rates(ts)
            rates.fast = rates.slow = 1.0  # this message
            first_ts = self._first_ts
            if first_ts is None:
                self._first_ts = first_ts = ts
            anomalous = ts - first_ts >= self._warmup_seconds and self._alerting_level(level)
            score = NEW_TEMPLATE_SCORE if anomalous else 0.0
        else:
            rates = self._rates[tid]
            if self._first_ts is None:  # a template restored without its first message's time
                self._first_ts = ts
            fast_seconds = self._fast_seconds
            slow_seconds = self._slow_seconds
            dt = ts - rates.last_ts
            if dt > 0.0:  # decay both counts to ts, and count this message
                rates.fast = fast = rates.fast * exp(-dt / fast_seconds) + 1.0
                rates.slow = slow = rates.slow * exp(-dt / slow_seconds) + 1.0
                rates.last_ts = ts
            else:
                rates.fast = fast = rates.fast + 1.0
                rates.slow = slow = rates.slow + 1.0
            age = ts - rates.first_ts
            # The baseline covers at least the template's age, so a young template is not judged
            # against a long run it has not had.
            horizon = age if age > fast_seconds else fast_seconds
            if horizon > slow_seconds:
                horizon = slow_seconds
            score = ratio = (fast / fast_seconds) / (slow / horizon)
            anomalous = (
                age >= fast_seconds and ratio >= self._rate_ratio and fast >= self._min_burst
            )
        hysteresis = self._hysteresis
        # With fire_after 1, a normal message while not firing never changes the hysteresis (its
        # run is 0): skip the call in that, the usual, case.
        transition = hysteresis.step(anomalous) if anomalous or hysteresis.firing else None
        return _verdict(
            score, anomalous, hysteresis.firing, transition, tid, template.text, new, ratio
        )

    def to_state(self) -> dict[str, Any]:
        """The whole mutable state as a JSON-serialisable dict (templates in LRU order)."""
        miner = self._miner.to_state()
        return {
            "next_id": miner["next_id"],
            "first_ts": self._first_ts,
            "templates": [
                [tid, tokens, r.fast, r.slow, r.first_ts, r.last_ts]
                for tid, tokens, _ in miner["templates"]
                for r in (self._rates[tid],)
            ],
            "hysteresis": self._hysteresis.to_state(),
        }

    @classmethod
    def from_state(cls, params: NewPatternParams, state: dict[str, Any]) -> Self:
        """Rebuild from ``params`` and :meth:`to_state` output; future verdicts are identical.

        A smaller ``max_templates`` than at save time keeps the most recently used templates.

        Raises
        ------
        ValueError
            If ``state`` is malformed.
        """
        detector = cls(params)
        next_id = get_int(state, "next_id", minimum=1)
        first_ts = state.get("first_ts")
        if first_ts is not None:
            detector._first_ts = get_float(state, "first_ts")
        loaded: list[tuple[str, list[str], int]] = []
        for entry in get_list(state, "templates"):
            if not (isinstance(entry, list) and len(entry) == 6):
                raise ValueError("detector state: 'templates' entries must be 6-element lists")
            tid, tokens, fast, slow, first, last = entry
            if not isinstance(tid, str) or not (
                isinstance(tokens, list) and all(isinstance(t, str) for t in tokens)
            ):
                raise ValueError("detector state: malformed template id or tokens")
            numbers = {"fast": fast, "slow": slow, "first_ts": first, "last_ts": last}
            rates = _Rates(get_float(numbers, "first_ts"))
            rates.fast = get_float(numbers, "fast")
            rates.slow = get_float(numbers, "slow")
            rates.last_ts = get_float(numbers, "last_ts")
            detector._rates[tid] = rates
            loaded.append((tid, list(tokens), 0))
        detector._miner.load(next_id, loaded)
        for tid in detector._miner.evicted:
            detector._rates.pop(tid, None)
        load_hysteresis(detector._hysteresis, state, "hysteresis")
        return detector
