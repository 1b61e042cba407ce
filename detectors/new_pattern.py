"""``new_pattern``: log messages whose template was never seen, or whose rate jumps.

Messages of one service are mined into templates online with a small Drain-like miner
(He et al., "Drain: An Online Log Parsing Approach with Fixed Depth Tree", ICWS 2017):

1. Tokens holding a digit (ids, durations, addresses, counts, UUIDs) are masked as ``<*>``;
   in ``key=value`` tokens only the value is masked.
2. Messages are grouped by token count and first token; within a group the message joins the most
   similar template (share of equal positions, ``<*>`` matching anything) if the similarity is at
   least ``similarity``, and the template's differing positions become ``<*>``; otherwise a new
   template starts.
3. At most ``max_templates`` templates are kept; the least recently used is forgotten (LRU), so
   state stays bounded. A forgotten template that returns counts as new again.

Why not ``drain3``: its ``TemplateMiner`` reads a config file unless given one, and its state is
saved through ``jsonpickle`` of live objects (an LRU cache among them), which does not give a
JSON document we can validate and restore exactly; it would also add two dependencies. This miner
is pure, its state is plain JSON and restores bit for bit.

Each message is scored before it is learned. A message is anomalous when

* its template is new and its level is at least ``min_level`` (default ``ERROR``), or
* its template is known and the template's short-term rate (events per second, decaying with
  ``fast_seconds``) is at least ``rate_ratio`` times its long-term rate (``slow_seconds``), with at
  least ``min_burst`` recent events.

Time and memory per message are O(templates in its group x tokens) and O(``max_templates``).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, ClassVar, Final, Self

from pydantic import Field, field_validator

from detectors._state import get_float, get_int, get_list, load_hysteresis
from detectors.base import DetectorParams, MessageDetector, MessageVerdict
from detectors.hysteresis import Hysteresis
from detectors.params import ResolveAfter
from engine.model.levels import ALIASES, LEVEL_NUMBERS, canonical_level, level_number

__all__ = ["NewPatternDetector", "NewPatternParams", "mask_tokens"]

WILDCARD: Final = "<*>"
_NAN: Final = math.nan


def mask_tokens(message: str) -> list[str]:
    """Whitespace tokens with variable parts masked as ``<*>``.

    >>> mask_tokens("user=42 fetched order 9f3a1c in 12.5ms from 10.0.0.7")
    ['user=<*>', 'fetched', 'order', '<*>', 'in', '<*>', 'from', '<*>']
    """
    out = []
    for token in message.split():
        if any(c.isdigit() for c in token):
            key, sep, _ = token.partition("=")
            if sep and key and not any(c.isdigit() for c in key):
                token = key + "=" + WILDCARD
            else:
                token = WILDCARD
        out.append(token)
    return out


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


#: Score of a new template at or above ``min_level``.
NEW_TEMPLATE_SCORE: Final = 1e6


class _Template:
    __slots__ = ("fast", "first_ts", "last_ts", "slow", "tokens")

    def __init__(self, tokens: list[str], ts: float) -> None:
        self.tokens = tokens
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
        self._templates: OrderedDict[str, _Template] = OrderedDict()  # LRU order: oldest first
        self._groups: dict[tuple[int, str], list[str]] = {}
        self._next_id = 1
        self._first_ts: float | None = None  # event time of the first message seen
        self._hysteresis = Hysteresis(1, params.resolve_after)

    @property
    def templates(self) -> dict[str, str]:
        """Known templates by id, least recently used first."""
        return {tid: " ".join(t.tokens) for tid, t in self._templates.items()}

    def _match(self, tokens: list[str]) -> str | None:
        best, best_sim = None, -1.0
        for tid in self._groups.get((len(tokens), tokens[0] if tokens else ""), ()):
            template = self._templates[tid].tokens
            equal = sum(1 for a, b in zip(template, tokens, strict=True) if a in (b, WILDCARD))
            sim = equal / len(tokens) if tokens else 1.0
            if sim > best_sim:
                best, best_sim = tid, sim
        return best if best is not None and best_sim >= self.params.similarity else None

    def _decay(self, template: _Template, ts: float) -> None:
        dt = ts - template.last_ts
        if dt > 0.0:
            template.fast *= math.exp(-dt / self.params.fast_seconds)
            template.slow *= math.exp(-dt / self.params.slow_seconds)
            template.last_ts = ts

    def observe(self, message: str, level: str, ts: float) -> MessageVerdict:
        """Score one log message (its level name, its time in epoch seconds), then learn it.

        A message with a non-finite ``ts`` is ignored (score 0, not learned, alert state kept):
        its time would poison the template rates and the saved state.
        """
        if not math.isfinite(ts):
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
        params = self.params
        tokens = mask_tokens(message)
        tid = self._match(tokens)
        new = tid is None
        ratio = 0.0
        if tid is None:
            tid = f"t{self._next_id}"
            self._next_id += 1
            template = _Template(tokens, ts)
            self._templates[tid] = template
            self._groups.setdefault((len(tokens), tokens[0] if tokens else ""), []).append(tid)
            self._evict()
            learning = ts - (self._first_ts if self._first_ts is not None else ts)
            anomalous = level_number(level) >= self._min_level and learning >= params.warmup_seconds
            score = NEW_TEMPLATE_SCORE if anomalous else 0.0
        else:
            template = self._templates[tid]
            self._templates.move_to_end(tid)
            template.tokens = [
                a if a == b else WILDCARD for a, b in zip(template.tokens, tokens, strict=True)
            ]
            self._decay(template, ts)
            fast_rate = (template.fast + 1.0) / params.fast_seconds
            # The baseline covers at least the template's age, so a young template is not judged
            # against a long run it has not had.
            horizon = min(params.slow_seconds, max(ts - template.first_ts, params.fast_seconds))
            slow_rate = (template.slow + 1.0) / horizon
            ratio = fast_rate / slow_rate
            old_enough = ts - template.first_ts >= params.fast_seconds
            anomalous = (
                old_enough
                and ratio >= params.rate_ratio
                and template.fast + 1.0 >= params.min_burst
            )
            score = ratio
        template.fast += 1.0
        template.slow += 1.0
        if self._first_ts is None:
            self._first_ts = ts
        transition = self._hysteresis.step(anomalous)
        return MessageVerdict(
            score,
            _NAN,
            anomalous,
            self._hysteresis.firing,
            transition,
            template_id=tid,
            template=" ".join(template.tokens),
            new=new,
            rate_ratio=ratio,
        )

    def _evict(self) -> None:
        while len(self._templates) > self.params.max_templates:
            tid, template = self._templates.popitem(last=False)
            key = (len(template.tokens), template.tokens[0] if template.tokens else "")
            group = self._groups[key]
            group.remove(tid)
            if not group:
                del self._groups[key]

    def to_state(self) -> dict[str, Any]:
        """The whole mutable state as a JSON-serialisable dict (templates in LRU order)."""
        return {
            "next_id": self._next_id,
            "first_ts": self._first_ts,
            "templates": [
                [tid, t.tokens, t.fast, t.slow, t.first_ts, t.last_ts]
                for tid, t in self._templates.items()
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
        detector._next_id = get_int(state, "next_id", minimum=1)
        first_ts = state.get("first_ts")
        if first_ts is not None:
            detector._first_ts = get_float(state, "first_ts")
        for entry in get_list(state, "templates"):
            if not (isinstance(entry, list) and len(entry) == 6):
                raise ValueError("detector state: 'templates' entries must be 6-element lists")
            tid, tokens, fast, slow, first_ts, last_ts = entry
            if not isinstance(tid, str) or not (
                isinstance(tokens, list) and all(isinstance(t, str) for t in tokens)
            ):
                raise ValueError("detector state: malformed template id or tokens")
            numbers = {"fast": fast, "slow": slow, "first_ts": first_ts, "last_ts": last_ts}
            template = _Template(list(tokens), get_float(numbers, "first_ts"))
            template.fast = get_float(numbers, "fast")
            template.slow = get_float(numbers, "slow")
            template.last_ts = get_float(numbers, "last_ts")
            detector._templates[tid] = template
            key = (len(tokens), tokens[0] if tokens else "")
            detector._groups.setdefault(key, []).append(tid)
        detector._evict()
        load_hysteresis(detector._hysteresis, state, "hysteresis")
        return detector
