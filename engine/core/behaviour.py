"""Behaviour, security and cost signals of log events: derived series and per-user anomalies.

Turned on by ``[series]`` keys (all off by default); the :class:`~engine.core.pipeline.Pipeline`
calls :meth:`Behaviour.observe` once per log event. Everything is counted per Kafka partition in
event-time windows of ``windows.size_seconds``; an event up to one window late counts in the open
window, an older one is not counted here. A partition's window closes at its first event past
the window's end, or once the partition has been quiet for ``windows.idle_advance_seconds`` of
wall clock and its event time advanced by that quiet passes the end (:meth:`Behaviour.tick`, as
the services' windows do). When it closes:

- **Derived series** go through the pipeline as metric series (so the metric detectors,
  ``[[overrides]]``, checkpointing and the series cap apply to them). Their labels include the
  service, whose events stay on one partition when the logs topic is keyed by service:

  - ``per_type``: ``log.type_events{service,type}``, events of each type per window (0 for a
    window without any, until the pair has been idle for :data:`IDLE_WINDOWS` windows);
  - ``per_tool``: ``tool.failure_ratio{service,tool}`` (for windows with at least
    :data:`MIN_CALLS` calls) and ``tool.latency_ms{service,tool}`` (the mean
    ``performance_data.duration_ms``, for windows with calls);
  - ``per_model``: ``llm.latency_ms``, ``llm.tokens`` and ``llm.cost_usd{service,model}`` (the
    window's mean latency, total tokens, total cost), for windows with calls.

- **Per-user and per-session measures**, for the event types in ``per_user_types`` (and
  ``per_session_types``): ``events`` (the count), ``failures`` (failed ones) and ``cost_usd``
  (spend) per window, by ``user_id`` (``session_id``). Each (type, measure) has a
  :class:`UserTable`: a space-saving top-K (:mod:`engine.core.heavy_hitters`) of at most
  ``max_tracked_users`` entities, each with its own mean per window, and the population's mean per
  active entity, which counts every entity (tracked or not). An entity whose window exceeds both
  ``user_history_factor`` times its own mean and ``user_population_factor`` times the
  population's, and a floor (``user_min_events`` / ``user_min_cost_usd``), fires an alert
  (detector ``behaviour``); its first normal window resolves it. An entity with no history of
  its own yet (fewer than :data:`WARMUP_WINDOWS` windows tracked: new, or back after eviction)
  is judged against the population alone: above ``user_population_factor`` times its mean and
  :data:`NEW_ENTITY_TOP_FACTOR` times the population's heaviest usual window (the moving
  average of each window's largest value not judged anomalous). Nothing alerts before the
  table has seen :data:`WARMUP_WINDOWS` windows, and the population's mean is learnt without
  the entities judged anomalous (a burst does not raise the bar it is judged by).

Fields read from a log event (Kestrel's schema, see the README):

========================  =================================================================
``type``                  the event type (``cost_tracking``, ``security_event``, ...)
``user_id``               the user (top level)
``session_id``            the session (top level)
``performance_data``      ``duration_ms`` (latency)
``context.tool``          the tool name (or ``context.tool_name``)
``context.model``         the LLM model
``context.total_tokens``  tokens (or ``context.tokens``, or ``prompt_tokens`` +
                          ``completion_tokens``)
``context.cost_usd``      spend in US dollars (or ``context.cost``)
failure                   level ERROR/CRITICAL, ``context.success`` false,
                          ``context.approved`` false, or ``context.status`` (or
                          ``context.outcome``) one of :data:`FAILED_STATUSES`
========================  =================================================================

State: each partition's user tables (the :data:`SAVED_USERS` heaviest entities of each, with
their means, and every open incident) and the population means are saved under the state key
``b|<partition>`` at each window close, and restored when the partition's first event comes
after a restart or a rebalance; the rest of the tables (lighter entities) and the counts of the
open window are rebuilt from traffic.

>>> from engine.config import Config
>>> from engine.model.events import LogEvent
>>> cfg = Config.model_validate({"series": {"per_type": True}})
>>> b = Behaviour.for_config(cfg)
>>> def log(ts: float) -> LogEvent:
...     return LogEvent(ts, "INFO", "api", "hi", "login", None, None, {})
>>> b.observe(log(0.0), 0, [])
()
>>> [(s.name, s.value, s.ts, s.labels) for s in b.observe(log(61.0), 0, [])]
[('log.type_events', 1.0, 60.0, {'service': 'api', 'type': 'login'})]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import orjson
from msgspec.structs import replace

from detectors.base import Transition, Verdict
from engine.config import Config
from engine.core.heavy_hitters import HeavyHitters
from engine.core.tracking import AlertTracker
from engine.model.alert import Alert, Severity
from engine.model.events import LogEvent, MetricSample

__all__ = [
    "DETECTOR",
    "FAILED_STATUSES",
    "Behaviour",
    "UserTable",
    "cost_of",
    "failed",
    "tokens_of",
]

#: The detector name of per-user and per-session alerts.
DETECTOR: Final = "behaviour"
#: ``context.status`` / ``context.outcome`` values that mean the action failed (lower case).
FAILED_STATUSES: Final = frozenset(
    {"failed", "failure", "error", "denied", "rejected", "blocked", "timeout", "unauthorized"}
)
#: Windows a table (and an entity) must have seen before its own history counts.
WARMUP_WINDOWS: Final = 3
#: An entity without a history of its own must also exceed this many times the population's
#: heaviest usual window (a new session of a heavy user is not an anomaly).
NEW_ENTITY_TOP_FACTOR: Final = 2.0
#: Weight of the newest window in an entity's mean and the population's.
ALPHA: Final = 0.1
#: Weight of an anomalous window in its entity's mean (a burst is learnt slowly).
ANOMALOUS_ALPHA: Final = 0.02
#: Space-saving counts are multiplied by this at each window close (a half-life of one window).
DECAY: Final = 0.5
#: A quiet entity whose decayed count falls below this is no longer tracked (after about 7
#: windows without events for an entity of one event a window): the cost of a window's close is
#: in proportion to the entities recently active, not to the table's capacity.
DROP_COUNT: Final = 0.01
#: Least calls of a tool in a window for its ``tool.failure_ratio``.
MIN_CALLS: Final = 10
#: A derived ``per_type`` pair idle this many windows is forgotten.
IDLE_WINDOWS: Final = 30
#: Most keys (service and type, tool or model) of each derived kind per partition.
MAX_DERIVED_KEYS: Final = 4096
#: Heaviest entities of each table saved with the partition's state.
SAVED_USERS: Final = 256
STATE_VERSION: Final = 1

_EMPTY: Final[Mapping[str, Any]] = {}
_NO_SAMPLES: Final[tuple[MetricSample, ...]] = ()


def _number(value: object) -> float | None:
    """``value`` if it is a finite non-negative number (not a bool), else ``None``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        x = float(value)
        if math.isfinite(x) and x >= 0.0:
            return x
    return None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def cost_of(context: Mapping[str, Any]) -> float | None:
    """Spend in USD: ``context.cost_usd``, else ``context.cost``.

    >>> cost_of({"cost_usd": 0.25}), cost_of({"cost": 1}), cost_of({"cost": "x"})
    (0.25, 1.0, None)
    """
    cost = _number(context.get("cost_usd"))
    return cost if cost is not None else _number(context.get("cost"))


def tokens_of(context: Mapping[str, Any]) -> float | None:
    """Tokens: ``total_tokens``, else ``tokens``, else ``prompt_tokens + completion_tokens``.

    >>> tokens_of({"total_tokens": 900}), tokens_of({"prompt_tokens": 5, "completion_tokens": 7})
    (900.0, 12.0)
    """
    for key in ("total_tokens", "tokens"):
        tokens = _number(context.get(key))
        if tokens is not None:
            return tokens
    prompt = _number(context.get("prompt_tokens"))
    completion = _number(context.get("completion_tokens"))
    if prompt is None and completion is None:
        return None
    return (prompt or 0.0) + (completion or 0.0)


def failed(event: LogEvent, context: Mapping[str, Any]) -> bool:
    """Whether ``event`` reports a failure (see the module docstring).

    >>> e = LogEvent(0.0, "INFO", "api", "login", "security_event", None, None, {})
    >>> failed(e, {"status": "DENIED"}), failed(e, {"success": False}), failed(e, {})
    (True, True, False)
    """
    if event.is_error or context.get("success") is False or context.get("approved") is False:
        return True
    status = context.get("status", context.get("outcome"))
    return isinstance(status, str) and status.lower() in FAILED_STATUSES


class _Tracked:
    """A tracked user or session: space-saving ``count``/``error``, this window's ``value``,
    its ``mean`` per window over the ``windows`` it was tracked, the last ``other`` id (the
    session of a user, the user of a session), ``tool`` and ``model`` seen, its open
    ``incident``."""

    __slots__ = ("count", "error", "incident", "mean", "model", "other", "tool", "value", "windows")

    def __init__(self) -> None:
        self.count = 0.0
        self.error = 0.0
        self.value = 0.0
        self.mean = 0.0
        self.windows = 0
        self.other: str | None = None
        self.tool: str | None = None
        self.model: str | None = None
        self.incident: AlertTracker | None = None


class UserTable:
    """One measure of one event type by user (or session), bounded (see the module docstring).

    Parameters
    ----------
    entity:
        ``user_id`` or ``session_id``: the label of the tracked ids.
    event_type:
        The event type measured.
    measure:
        ``events``, ``failures`` or ``cost_usd``; alerts are on series ``user.<measure>`` (or
        ``session.<measure>``).
    capacity:
        Most entities tracked exactly (``max_tracked_users``).
    history_factor, population_factor:
        How many times its own mean and the population's mean per active entity a window must
        exceed to be anomalous.
    floor:
        Least value of a window that can be anomalous (in the measure's units).
    window_seconds:
        The window length (for the alert's reason).
    severity, repeat_interval:
        Of its alerts (``repeat_interval`` in seconds of event time).

    >>> t = UserTable("user_id", "cost_tracking", "cost_usd", 100, 10.0, 10.0, 5.0, 60.0)
    >>> out: list[Alert] = []
    >>> for w in range(10):
    ...     for u in range(20):
    ...         t.add(f"u{u}", 1.0 if w < 9 or u else 80.0, None, None, None)
    ...     t.close(60.0 * (w + 1), out)
    >>> [(a.status.value, a.labels["user_id"], a.value) for a in out]
    [('firing', 'u0', 80.0)]
    """

    __slots__ = (
        "active",
        "entity",
        "event_type",
        "floor",
        "history_factor",
        "measure",
        "name",
        "population",
        "population_factor",
        "repeat_interval",
        "severity",
        "top",
        "total",
        "users",
        "window_seconds",
        "windows",
    )

    def __init__(
        self,
        entity: str,
        event_type: str,
        measure: str,
        capacity: int,
        history_factor: float,
        population_factor: float,
        floor: float,
        window_seconds: float,
        severity: Severity = Severity.WARNING,
        repeat_interval: float = 3600.0,
    ) -> None:
        self.entity = entity
        self.event_type = event_type
        self.measure = measure
        self.name = f"{'user' if entity == 'user_id' else 'session'}.{measure}"
        self.users: HeavyHitters[_Tracked] = HeavyHitters(capacity, _Tracked)
        self.history_factor = history_factor
        self.population_factor = population_factor
        self.floor = floor
        self.window_seconds = window_seconds
        self.severity = severity
        self.repeat_interval = repeat_interval
        self.total = 0.0  # this window's sum over every entity, tracked or not
        self.active = 0  # entities active in this window (one evicted and back counts twice)
        self.population: float | None = None  # mean per active entity per window
        self.top: float | None = None  # the heaviest usual window of an entity
        self.windows = 0

    def add(
        self,
        key: str,
        weight: float,
        other: str | None,
        tool: str | None,
        model: str | None,
        out: list[Alert] | None = None,
    ) -> None:
        """Count ``weight`` (> 0) for entity ``key`` in this window, with its context."""
        users = self.users
        entry = users.add(key, weight)
        if users.evicted_key is not None:
            gone = users.evicted
            if gone is not None and gone.incident is not None and out is not None:
                self._resolve(gone, gone.value, gone.mean, math.nan, out)
        if entry.value == 0.0:
            self.active += 1
            if entry.windows == 0:  # newly tracked: presumed typical until it has a history
                entry.mean = self.population if self.population is not None else 0.0
        entry.value += weight
        self.total += weight
        if other is not None:
            entry.other = other
        if tool is not None:
            entry.tool = tool
        if model is not None:
            entry.model = model

    def close(self, ts: float, out: list[Alert]) -> None:
        """End the window at event time ``ts``: judge every tracked entity, then learn."""
        pop = self.population
        judging = self.windows >= WARMUP_WINDOWS and pop is not None
        pop_limit = self.population_factor * pop if pop is not None else math.inf
        top = self.top
        new_limit = NEW_ENTITY_TOP_FACTOR * top if top is not None else math.inf
        factor, floor = self.history_factor, self.floor
        heaviest = 0.0
        outliers, outlier_total = 0, 0.0  # the population's mean is learnt without them
        quiet: list[str] = []
        drop_below = DROP_COUNT / DECAY
        for key, e in self.users.items():
            x = e.value
            anomalous = False
            if judging and x >= floor and x > pop_limit:
                limit = new_limit if e.windows < WARMUP_WINDOWS else factor * e.mean
                anomalous = x > limit
            if anomalous:
                self._fire(key, e, x, ts, out)
                outliers += 1
                outlier_total += x
            elif e.incident is not None:
                self._resolve(e, x, e.mean, ts, out)
            if e.windows == 0 and pop is None:
                e.mean = x
            else:
                e.mean += (ANOMALOUS_ALPHA if anomalous else ALPHA) * (x - e.mean)
            e.windows += 1
            e.value = 0.0
            if not anomalous and x > heaviest:
                heaviest = x
            if x == 0.0 and e.count < drop_below and e.incident is None:
                quiet.append(key)
        if heaviest > 0.0:
            self.top = heaviest if top is None else top + ALPHA * (heaviest - top)
        if self.active > outliers:
            per_active = (self.total - outlier_total) / (self.active - outliers)
            self.population = per_active if pop is None else pop + ALPHA * (per_active - pop)
        self.total = 0.0
        self.active = 0
        self.windows += 1
        self.users.decay(DECAY, quiet)

    def _labels(self, key: str, e: _Tracked) -> dict[str, str]:
        labels = {"type": self.event_type, self.entity: key}
        if e.other is not None:
            labels["session_id" if self.entity == "user_id" else "user_id"] = e.other
        if e.tool is not None:
            labels["tool"] = e.tool
        if e.model is not None:
            labels["model"] = e.model
        return labels

    def _reason(self, key: str, e: _Tracked, x: float) -> str:
        pop = self.population or 0.0
        who = "user" if self.entity == "user_id" else "session"
        own = (
            f"{x / e.mean:.0f}x its own mean {e.mean:.3g} over {e.windows} windows"
            if e.windows >= WARMUP_WINDOWS and e.mean > 0
            else f"no history of its own, {x / (self.top or 1.0):.0f}x the heaviest usual "
            f"window {self.top or 0.0:.3g}"
            if e.windows < WARMUP_WINDOWS
            else "nothing in its own history"
        )
        return (
            f"{who} {key}: {self.measure} {x:.4g} of {self.event_type} in a "
            f"{self.window_seconds:.0f}s window: {own}; {x / pop:.0f}x the population's mean "
            f"{pop:.3g} per active {who}"
            if pop > 0
            else f"{who} {key}: {self.measure} {x:.4g} of {self.event_type}: {own}"
        )

    def _expected(self, e: _Tracked) -> float:
        pop = self.population or 0.0
        if e.windows < WARMUP_WINDOWS:
            return max(pop, self.top or 0.0)
        return max(pop, e.mean)

    def _fire(self, key: str, e: _Tracked, x: float, ts: float, out: list[Alert]) -> None:
        expected = self._expected(e)
        score = x / expected if expected > 0 else math.inf
        reason = self._reason(key, e, x)
        if e.incident is None:
            e.incident = AlertTracker(
                self.name, self._labels(key, e), DETECTOR, self.severity, self.repeat_interval
            )
            verdict = Verdict(score, expected, True, True, Transition.FIRED)
        else:
            verdict = Verdict(score, expected, True, True)
        alert = e.incident.observe(verdict, x, ts)
        if alert is not None:
            out.append(_with_reason(alert, reason))

    def _resolve(self, e: _Tracked, x: float, expected: float, ts: float, out: list[Alert]) -> None:
        assert e.incident is not None
        if math.isnan(ts):  # evicted: resolved at the last time it fired
            ts = e.incident.last_sent
        verdict = Verdict(0.0, expected, False, False, Transition.RESOLVED)
        alert = e.incident.observe(verdict, x, ts)
        e.incident = None
        if alert is not None:
            out.append(alert)

    # -- state -------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """The table's saved form: population, windows, the heaviest entities, open incidents."""
        saved = dict(self.users.top(SAVED_USERS))
        saved.update((k, e) for k, e in self.users.items() if e.incident is not None)
        return {
            "population": self.population,
            "top": self.top,
            "windows": self.windows,
            "users": [
                [
                    k,
                    e.count,
                    e.error,
                    e.mean,
                    e.windows,
                    e.other,
                    e.tool,
                    e.model,
                    None
                    if e.incident is None
                    else [_flat_labels(e.incident), e.incident.to_state()],
                ]
                for k, e in saved.items()
            ],
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore what :meth:`to_state` returned."""
        pop = state["population"]
        self.population = None if pop is None else float(pop)
        top = state["top"]
        self.top = None if top is None else float(top)
        self.windows = int(state["windows"])
        for key, count, error, mean, windows, other, tool, model, incident in state["users"]:
            e = _Tracked()
            e.count, e.error, e.mean, e.windows = float(count), float(error), float(mean), windows
            e.other, e.tool, e.model = other, tool, model
            if incident is not None:
                flat, tracker = incident
                labels = dict(zip(flat[::2], flat[1::2], strict=True))
                e.incident = AlertTracker(
                    self.name, labels, DETECTOR, self.severity, self.repeat_interval
                )
                e.incident.load_state(tracker)
            self.users.restore(str(key), e)


def _flat_labels(tracker: AlertTracker) -> list[str]:
    return list(tracker.labels)


def _with_reason(alert: Alert, reason: str) -> Alert:
    return replace(
        alert,
        summary=f"{alert.summary}: {reason}",
        annotations={**alert.annotations, "reason": reason},
    )


class _Partition:
    """What one Kafka partition's events built: its window, derived counts and user tables."""

    __slots__ = (
        "dirty",
        "end",
        "idle_since",
        "last_ts",
        "models",
        "start",
        "tables",
        "tools",
        "types",
    )

    def __init__(self) -> None:
        self.start = -math.inf
        self.end = -math.inf
        self.last_ts = -math.inf  # the newest event time seen
        self.idle_since = 0.0  # wall clock of its last event (not saved)
        self.dirty = False
        #: (service, type) -> [events this window, windows idle]
        self.types: dict[tuple[str, str], list[int]] = {}
        #: (service, tool) -> [calls, failures, latency sum, latency count]
        self.tools: dict[tuple[str, str], list[float]] = {}
        #: (service, model) -> [calls, latency sum, latency count, tokens, cost]
        self.models: dict[tuple[str, str], list[float]] = {}
        #: (entity, type, measure) -> table
        self.tables: dict[tuple[str, str, str], UserTable] = {}


class Behaviour:
    """The behaviour signals of one worker's log events (see the module docstring).

    Build it with :meth:`for_config` (``None`` when every behaviour key is off). ``loader``
    returns the saved state bytes of a state key (the pipeline's loader).
    """

    def __init__(self, config: Config, loader: Callable[[bytes], bytes | None] | None) -> None:
        s = config.series
        self.per_type = s.per_type
        self.per_tool = s.per_tool
        self.per_model = s.per_model
        self.user_types = frozenset(s.per_user_types)
        self.session_types = frozenset(s.per_session_types)
        self._entities = bool(self.user_types or self.session_types)
        self.config = config
        self.size = config.windows.size_seconds
        self.idle = config.windows.idle_advance_seconds
        self._loader = loader or (lambda key: None)
        self._parts: dict[int, _Partition] = {}
        #: Log events too late to count here (more than one window behind their partition).
        self.late_events = 0

    @classmethod
    def for_config(
        cls, config: Config, loader: Callable[[bytes], bytes | None] | None = None
    ) -> Behaviour | None:
        """A :class:`Behaviour` if some behaviour key of ``[series]`` is on, else ``None``."""
        s = config.series
        if s.per_type or s.per_tool or s.per_model or s.per_user_types or s.per_session_types:
            return cls(config, loader)
        return None

    # -- events ------------------------------------------------------------------------------

    def observe(
        self, event: LogEvent, partition: int, out: list[Alert], now: float = 0.0
    ) -> tuple[MetricSample, ...] | list[MetricSample]:
        """Count ``event``; returns the derived samples of a window it closed, if any.

        Per-user and per-session alerts go to ``out``. ``now`` is the wall clock (epoch
        seconds), used only to notice idle partitions (see :meth:`tick`).
        """
        part = self._parts.get(partition)
        if part is None:
            part = self._parts[partition] = self._load(partition)
        part.idle_since = now
        ts = event.ts
        if ts > part.last_ts:
            part.last_ts = ts
        samples: tuple[MetricSample, ...] | list[MetricSample] = _NO_SAMPLES
        if ts >= part.end:
            if part.end != -math.inf:
                samples = self._close(part, out)
            part.start = math.floor(ts / self.size) * self.size
            part.end = part.start + self.size
        elif ts < part.start - self.size:
            self.late_events += 1
            return samples
        etype = event.type
        service = event.service
        if self.per_type and etype is not None:
            key = (service, etype)
            counted = part.types.get(key)
            if counted is not None:
                counted[0] += 1
            elif len(part.types) < MAX_DERIVED_KEYS:
                part.types[key] = [1, 0]
        context = event.raw.get("context")
        ctx: Mapping[str, Any] = context if isinstance(context, dict) else _EMPTY
        tool = model = None
        if self.per_tool or self._entities:
            tool = _text(ctx.get("tool")) or _text(ctx.get("tool_name"))
        if self.per_model or self._entities:
            model = _text(ctx.get("model"))
        if self.per_tool and tool is not None:
            self._count_tool(part, service, tool, event, ctx)
        if self.per_model and model is not None:
            self._count_model(part, service, model, event, ctx)
        if etype in self.user_types or etype in self.session_types:
            self._count_entities(part, etype, event, ctx, tool, model, out)
        return samples

    def _count_tool(
        self, part: _Partition, service: str, tool: str, event: LogEvent, ctx: Mapping[str, Any]
    ) -> None:
        key = (service, tool)
        acc = part.tools.get(key)
        if acc is None:
            if len(part.tools) >= MAX_DERIVED_KEYS:
                return
            acc = part.tools[key] = [0.0, 0.0, 0.0, 0.0]
        acc[0] += 1.0
        if failed(event, ctx):
            acc[1] += 1.0
        if event.duration_ms is not None:
            acc[2] += event.duration_ms
            acc[3] += 1.0

    def _count_model(
        self, part: _Partition, service: str, model: str, event: LogEvent, ctx: Mapping[str, Any]
    ) -> None:
        key = (service, model)
        acc = part.models.get(key)
        if acc is None:
            if len(part.models) >= MAX_DERIVED_KEYS:
                return
            acc = part.models[key] = [0.0, 0.0, 0.0, 0.0, 0.0]
        acc[0] += 1.0
        if event.duration_ms is not None:
            acc[1] += event.duration_ms
            acc[2] += 1.0
        acc[3] += tokens_of(ctx) or 0.0
        acc[4] += cost_of(ctx) or 0.0

    def _count_entities(
        self,
        part: _Partition,
        etype: str,
        event: LogEvent,
        ctx: Mapping[str, Any],
        tool: str | None,
        model: str | None,
        out: list[Alert],
    ) -> None:
        raw = event.raw
        user = _text(raw.get("user_id"))
        session = _text(raw.get("session_id"))
        bad = failed(event, ctx)
        if user is not None and etype in self.user_types:
            self._table(part, "user_id", etype, "events").add(user, 1.0, session, tool, model, out)
            if bad:
                table = self._table(part, "user_id", etype, "failures")
                table.add(user, 1.0, session, tool, model, out)
            cost = cost_of(ctx)
            if cost:
                table = self._table(part, "user_id", etype, "cost_usd")
                table.add(user, cost, session, tool, model, out)
        if session is not None and etype in self.session_types:
            table = self._table(part, "session_id", etype, "events")
            table.add(session, 1.0, user, tool, model, out)

    def _table(self, part: _Partition, entity: str, etype: str, measure: str) -> UserTable:
        key = (entity, etype, measure)
        table = part.tables.get(key)
        if table is None:
            table = part.tables[key] = self._new_table(entity, etype, measure)
        return table

    def _new_table(self, entity: str, etype: str, measure: str) -> UserTable:
        s, cfg = self.config.series, self.config
        name = f"{'user' if entity == 'user_id' else 'session'}.{measure}"
        severity = cfg.alerts.severity
        for ov in cfg.overrides:
            if ov.severity is not None and ov.matches(name, name):
                severity = ov.severity
        return UserTable(
            entity,
            etype,
            measure,
            s.max_tracked_users,
            s.user_history_factor,
            s.user_population_factor,
            s.user_min_cost_usd if measure == "cost_usd" else s.user_min_events,
            self.size,
            severity,
            cfg.alerts.repeat_interval_seconds,
        )

    def _close(self, part: _Partition, out: list[Alert]) -> list[MetricSample]:
        """Close ``part``'s open window: its derived samples, and judge its user tables."""
        ts = part.end
        samples: list[MetricSample] = []
        for (service, etype), counted in list(part.types.items()):
            if counted[0]:
                counted[1] = 0
            else:
                counted[1] += 1
                if counted[1] > IDLE_WINDOWS:
                    del part.types[(service, etype)]
                    continue
            labels = {"service": service, "type": etype}
            samples.append(MetricSample("log.type_events", float(counted[0]), ts, labels))
            counted[0] = 0
        for (service, tool), acc in part.tools.items():
            labels = {"service": service, "tool": tool}
            if acc[0] >= MIN_CALLS:  # a ratio of a call or two is noise
                samples.append(MetricSample("tool.failure_ratio", acc[1] / acc[0], ts, labels))
            if acc[3]:
                samples.append(MetricSample("tool.latency_ms", acc[2] / acc[3], ts, labels))
        part.tools.clear()
        for (service, model), acc in part.models.items():
            labels = {"service": service, "model": model}
            if acc[2]:
                samples.append(MetricSample("llm.latency_ms", acc[1] / acc[2], ts, labels))
            samples.append(MetricSample("llm.tokens", acc[3], ts, labels))
            samples.append(MetricSample("llm.cost_usd", acc[4], ts, labels))
        part.models.clear()
        for table in part.tables.values():
            table.close(ts, out)
        if part.tables:
            part.dirty = True
        return samples

    def tick(self, now: float, out: list[Alert]) -> list[tuple[int, list[MetricSample]]]:
        """Close the open window of each partition idle for ``windows.idle_advance_seconds``
        (wall clock ``now``) once its event time, advanced by the idle time, passes the window's
        end (as the services' windows do); returns ``(partition, derived samples)`` of each."""
        closed = []
        for partition, part in self._parts.items():
            idle = now - part.idle_since
            if idle < self.idle or part.end == -math.inf or part.last_ts + idle < part.end:
                continue
            closed.append((partition, self._close(part, out)))
            part.last_ts += idle
            part.idle_since = now
            part.start = math.floor(part.last_ts / self.size) * self.size
            part.end = part.start + self.size
        return closed

    # -- state -------------------------------------------------------------------------------

    @staticmethod
    def state_key(partition: int) -> bytes:
        """The state key of a partition's behaviour state."""
        return f"b|{partition}".encode()

    def _load(self, partition: int) -> _Partition:
        part = _Partition()
        raw = self._loader(self.state_key(partition))
        if raw is None:
            return part
        try:
            doc = orjson.loads(raw)
            if doc.get("v") != STATE_VERSION:
                return part
            state = doc["s"]
            part.start, part.end = float(state["start"]), float(state["end"])
            for entity, etype, measure, saved in state["tables"]:
                table = self._new_table(entity, etype, measure)
                table.load_state(saved)
                part.tables[(entity, etype, measure)] = table
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            return _Partition()  # malformed: rebuilt from traffic
        return part

    def _save(self, partition: int, part: _Partition) -> tuple[bytes, int, bytes]:
        state = {
            "start": part.start,
            "end": part.end,
            "tables": [[*key, t.to_state()] for key, t in part.tables.items()],
        }
        value = orjson.dumps({"v": STATE_VERSION, "kind": "behaviour", "s": state})
        return self.state_key(partition), partition, value

    def checkpoint(self) -> list[tuple[bytes, int, bytes]]:
        """``(key, partition, value)`` of each partition state changed since the last call
        (they stay in memory)."""
        writes = []
        for partition, part in self._parts.items():
            if part.dirty:
                writes.append(self._save(partition, part))
                part.dirty = False
        return writes

    def release(self, partitions: Iterable[int]) -> list[tuple[bytes, int, bytes]]:
        """Forget ``partitions`` (revoked); returns ``(key, partition, value)`` of their states,
        which the table must keep."""
        writes = []
        for partition in partitions:
            part = self._parts.pop(partition, None)
            if part is not None and part.tables:
                writes.append(self._save(partition, part))
        return writes

    def tracked(self) -> int:
        """Users and sessions tracked exactly, over every partition and table."""
        return sum(len(t.users) for p in self._parts.values() for t in p.tables.values())
