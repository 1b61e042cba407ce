"""The detector contract: one base class, three input shapes, one verdict.

The score contract is stated once, in :mod:`detectors`. What an observation is depends on the
detector's shape, declared by its :attr:`Detector.input`:

* :class:`ValueDetector` (``Input.VALUES``): one float of a series, ``update(value, ts)``;
* :class:`WindowDetector` (``Input.WINDOWS``): a closed window's event counts,
  ``update_window(errors, total, ts)``; it is also a :class:`ValueDetector`, so it can watch any
  numeric series (each detector documents how it reads a single value);
* :class:`MessageDetector` (``Input.MESSAGES``): one log message, ``observe(message, level, ts)``,
  answered with a :class:`MessageVerdict` (a :class:`Verdict` naming the message's template).

Observations arrive one at a time in event-time order (``ts`` in epoch seconds, UTC). A detector's
whole state is saved with :meth:`Detector.to_state` (a JSON-serialisable dict) and restored with
:meth:`Detector.from_state`; a restored detector produces exactly the same future verdicts.

Parameters are pydantic models (frozen, unknown keys and non-finite floats rejected), so a bad
value is reported with the parameter's name, e.g. ``threshold: Input should be greater than 0``.
:mod:`detectors.checks` verifies all of this for any detector class.

>>> class Above(ValueDetector[DetectorParams]):
...     '''Anomalous above 1.0; no state.'''
...     kind = "above"
...     params_type = DetectorParams
...     def update(self, value: float, ts: float) -> Verdict:
...         return Verdict(max(value - 1.0, 0.0), 1.0, value > 1.0, value > 1.0)
...     def to_state(self): return {}
...     @classmethod
...     def from_state(cls, params, state): return cls(params)
>>> Above.input
<Input.VALUES: 'values'>
>>> Above(DetectorParams()).update(3.0, ts=0.0).score
2.0
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Self, TypeVar

from pydantic import BaseModel, ConfigDict

__all__ = [
    "Detector",
    "DetectorParams",
    "Direction",
    "Input",
    "MessageDetector",
    "MessageVerdict",
    "Transition",
    "ValueDetector",
    "Verdict",
    "WindowDetector",
    "notable_verdicts",
]


class DetectorParams(BaseModel):
    """Base of every detector's parameters: immutable; unknown keys and ``nan``/``inf`` are errors.

    Parameters shared by several detectors are declared once in :mod:`detectors.params`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    #: Parameters added after states were saved without them, that change verdicts but not what
    #: a saved state means: while at their default they are left out of :meth:`state_key`, so
    #: adding one does not make every series saved before it start a new warm-up.
    added_later: ClassVar[frozenset[str]] = frozenset()

    def state_key(self) -> str:
        """These parameters as JSON, less :attr:`added_later` ones at their default: a saved
        state carries a hash of it, and is restored only into the same parameters."""
        fields = type(self).model_fields
        at_default = {
            name for name in self.added_later if getattr(self, name) == fields[name].default
        }
        return self.model_dump_json(exclude=at_default)


class Input(enum.StrEnum):
    """What a detector consumes (:attr:`Detector.input`)."""

    #: Floats of a series: :meth:`ValueDetector.update`.
    VALUES = "values"
    #: Per-window event counts: :meth:`WindowDetector.update_window`.
    WINDOWS = "windows"
    #: Log messages with their level: :meth:`MessageDetector.observe`.
    MESSAGES = "messages"


class Direction(enum.StrEnum):
    """Which deviations count as anomalous."""

    UP = "up"
    DOWN = "down"
    BOTH = "both"


class Transition(enum.StrEnum):
    """A change of a detector's alert state caused by one observation."""

    FIRED = "fired"
    RESOLVED = "resolved"


@dataclass(slots=True)
class Verdict:
    """What a detector says about one observation, before learning it.

    A value object: treat it as immutable (use :func:`dataclasses.replace` for a changed copy).
    It is not ``frozen`` only because a frozen dataclass costs about 1 µs more to create, and a
    detector makes one per observation.

    Attributes
    ----------
    score:
        Non-negative anomaly score, higher = more anomalous (for ``zscore`` the z-score magnitude in
        the configured direction). 0.0 during a value or window detector's warm-up.
    expected:
        The baseline value the observation was compared with, in the series' own units
        (``nan`` when the detector has no baseline yet, and for log messages).
    anomalous:
        Whether this single observation crossed the detector's threshold (never during warm-up).
    firing:
        The alert state after this observation, once hysteresis is applied.
    transition:
        ``FIRED`` or ``RESOLVED`` when this observation changed the alert state, else ``None``.
    """

    score: float
    expected: float
    anomalous: bool
    firing: bool
    transition: Transition | None = None


@dataclass(slots=True)
class MessageVerdict(Verdict):
    """A :class:`Verdict` about one log message, with the template the message belongs to.

    ``expected`` is ``nan`` (a message has no baseline value). The extra fields are keyword-only.

    Attributes
    ----------
    template_id:
        Stable id of the template the message matched or started (empty for an ignored message).
    template:
        The template text after learning the message (``<*>`` marks variable tokens).
    new:
        The template was not known before this message.
    rate_ratio:
        Short-term over long-term rate of the template (0 for a new template).

    Examples
    --------
    >>> v = MessageVerdict(
    ...     2.5, float("nan"), False, False, template_id="t1", template="GET <*>", new=False,
    ...     rate_ratio=2.5,
    ... )
    >>> isinstance(v, Verdict), v.transition
    (True, None)
    """

    template_id: str = field(kw_only=True)
    template: str = field(kw_only=True)
    new: bool = field(kw_only=True)
    rate_ratio: float = field(kw_only=True)


P = TypeVar("P", bound=DetectorParams)


class Detector(ABC, Generic[P]):
    """A per-stream online anomaly detector (the contract is in :mod:`detectors`).

    Subclass one of the shapes (:class:`ValueDetector`, :class:`WindowDetector`,
    :class:`MessageDetector`), not this class.

    Parameters
    ----------
    params:
        An instance of :attr:`params_type`.
    """

    #: Registry name used in config files, e.g. ``"zscore"``.
    kind: ClassVar[str]
    #: The parameter model of this detector.
    params_type: ClassVar[type[DetectorParams]]
    #: What the detector consumes; set by each shape.
    input: ClassVar[Input]

    def __init__(self, params: P) -> None:
        self.params = params

    @abstractmethod
    def to_state(self) -> dict[str, Any]:
        """The detector's whole mutable state as a JSON-serialisable dict."""

    def describe(self) -> dict[str, Any]:
        """What the detector believes now, for people (``kestrel explain``, the dashboard).

        Read-only and optional: the default says nothing. A detector may give any of ``seen``
        and ``warmup`` (points learned, points needed before it scores), ``warm``, ``expected``
        (the baseline the next value is compared with, series units), ``band`` (``[low, high]``,
        series units: values inside it are normal), ``threshold`` (of the score) and ``firing``.
        A number not known yet is ``None``.
        """
        return {}

    @classmethod
    @abstractmethod
    def from_state(cls, params: P, state: dict[str, Any]) -> Self:
        """Rebuild a detector from ``params`` and a dict produced by :meth:`to_state`.

        Raises
        ------
        ValueError
            If ``state`` is malformed (the message starts with ``detector state``).
        """


class ValueDetector(Detector[P]):
    """A detector of a float series."""

    input: ClassVar[Input] = Input.VALUES

    def expected_band(self) -> tuple[float, float, float] | None:
        """What the detector expects next, as ``(expected, low, high)`` in the series' units.

        A read-only view of the learned baseline for charts (e.g. Prometheus gauges of a value
        against its band); it does not change the state and is not used to decide. ``None``
        (the default) when the detector has no such band or has learned nothing yet. Each
        detector documents what its band means.
        """
        return None

    @abstractmethod
    def update(self, value: float, ts: float) -> Verdict:
        """Score ``value`` observed at ``ts`` (epoch seconds, UTC), then learn it.

        A value that is not finite is ignored: score 0, not anomalous, not learned, and the alert
        state does not move.
        """

    def update_many(
        self, values: Sequence[float], times: Sequence[float]
    ) -> list[tuple[int, Verdict]]:
        """:meth:`update` with each of a series' points in turn; the ones that matter to alerts.

        ``values[i]`` was observed at ``times[i]`` (epoch seconds), in event-time order. The
        state afterwards is exactly what point-by-point updates leave, and the result lists
        ``(i, verdict)`` for every point whose verdict is anomalous, firing or changes the alert
        state (a transition): a quiet verdict makes no alert and is not counted, so it need not
        be built. This is the
        pipeline's path for a batch's points of one series; a detector overrides it when it
        can judge a run faster than one call per point (the default makes those calls).
        """
        return notable_verdicts(self.update, values, times)


def notable_verdicts(
    update: Callable[[float, float], Verdict], values: Sequence[float], times: Sequence[float]
) -> list[tuple[int, Verdict]]:
    """``(i, verdict)`` of the anomalous, firing or state-changing verdicts of ``update`` over a
    run of points (see :meth:`ValueDetector.update_many`), one ``update`` call per point.

    >>> from detectors.zscore import ZScoreDetector, ZScoreParams
    >>> det = ZScoreDetector(ZScoreParams(warmup=3, fire_after=1, resolve_after=1))
    >>> [(i, v.transition.value) for i, v in notable_verdicts(
    ...     det.update, [1.0, 1.1, 0.9, 1.0, 50.0, 1.0], range(6)) if v.transition]
    [(4, 'fired'), (5, 'resolved')]
    """
    found: list[tuple[int, Verdict]] = []
    for i, value in enumerate(values):
        verdict = update(value, times[i])
        if verdict.anomalous or verdict.firing or verdict.transition is not None:
            found.append((i, verdict))
    return found


class WindowDetector(ValueDetector[P]):
    """A detector of per-window event counts (errors among all events of a closed window).

    It is also a :class:`ValueDetector`: :meth:`update` reads a single value as a window in a
    way each detector documents, so that it can watch any numeric series.
    """

    input: ClassVar[Input] = Input.WINDOWS

    @abstractmethod
    def update_window(self, errors: int, total: int, ts: float) -> Verdict:
        """Score a window of ``total`` events, ``errors`` of them errors, ending at ``ts``.

        Raises
        ------
        ValueError
            If the counts are negative or ``errors > total``; nothing is learned then.
        """


class MessageDetector(Detector[P]):
    """A detector of one service's log messages."""

    input: ClassVar[Input] = Input.MESSAGES

    @abstractmethod
    def observe(self, message: str, level: str, ts: float) -> MessageVerdict:
        """Score ``message`` logged at ``level`` (any spelling) at ``ts``, then learn it.

        A message with a non-finite ``ts`` is ignored: score 0, not anomalous, not learned, and
        the alert state does not move.
        """
