"""The decision code: events in, series updates, verdicts, alert transitions out.

Pure and synchronous: no Kafka, Faust, Redis or clocks. The Faust agent feeds it decoded events in
batches and does the I/O with what it returns; tests drive it directly.

State is kept per *state key*, the unit that is checkpointed to the changelog table:

- ``m|<series id>``: a metric series (its detectors and alert trackers);
- ``l|<service>``: a service's log windows and its ``log.error_ratio`` and ``log.events`` series;
- ``p|["<service>","<operation>"]``: a service operation's ``log.latency_ms`` series (a JSON
  array, so that a ``|`` in a name cannot make two keys equal).

States live in a cache of at most ``worker.max_series`` entries; a missing one is loaded with
the injected ``loader`` (the changelog-backed table) or created fresh. When the cache is full,
a state not used for the longest while is evicted (the CLOCK approximation of least recently
used: a state is marked when used, and the clock hand spares a marked state once, clearing its
mark; a plain dict and a ring of keys cost a third of an ``OrderedDict``'s memory per entry and
no reordering per event). Changed states are marked
dirty with the Kafka partition their events came from, and :meth:`Pipeline.checkpoint` hands them
out for writing to that changelog partition. A new series past ``worker.max_tracked_series``
gets no state at all (see :mod:`engine.core.series_limit`).
"""

from __future__ import annotations

import hashlib
import math
import sys
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

import msgspec
import orjson

from detectors.base import DetectorParams, Transition, Verdict, WindowDetector
from detectors.registry import build, restore
from engine.config import Config, DetectorChoice
from engine.core.behaviour import Behaviour
from engine.core.labels import AlertDecorator
from engine.core.series_export import SeriesView, VerdictRecorder, series_view
from engine.core.series_limit import SeriesLimit
from engine.core.tracking import AlertTracker
from engine.core.windows import WindowCounter
from engine.model.alert import Alert, Severity, series_id
from engine.model.events import Event, LogEvent, MetricSample

__all__ = ["ERROR_RATIO", "EVENT_COUNT", "LATENCY", "PATTERNS", "Pipeline", "StateWrite"]

#: Names of the series Kestrel derives from logs.
ERROR_RATIO = "log.error_ratio"
EVENT_COUNT = "log.events"
LATENCY = "log.latency_ms"
PATTERNS = "log.patterns"

STATE_VERSION = 1
Loader = Callable[[bytes], bytes | None]


@dataclass(frozen=True, slots=True)
class StateWrite:
    """One state to write to the changelog: ``key`` and ``value`` bytes, source ``partition``.

    ``resident`` says whether the state stays in the pipeline's memory: if so, the table need not
    keep a copy (the pipeline will not load it while it holds it), else the table must, so that
    the state can be loaded again. ``changed`` says whether the changelog needs it: a state
    evicted from memory unchanged since its last checkpoint is only handed back to the table.
    """

    key: bytes
    partition: int
    value: bytes
    resident: bool = field(default=False, compare=False)
    changed: bool = field(default=True, compare=False)


@lru_cache(maxsize=4096)
def _params_hash(params: DetectorParams) -> str:
    """A short hash of ``params``; one string object per parameter set, shared by its series."""
    return hashlib.sha1(params.state_key().encode()).hexdigest()[:12]


class _State:
    """What the state cache holds: marks for checkpointing, on a series or a service.

    ``partition`` is the Kafka partition its events last came from (its changelog partition),
    ``dirty`` whether it changed since its last checkpoint, ``used`` whether it was used since
    the cache's clock hand last passed it, ``kind`` its saved kind (``metric``, ``latency`` or
    ``service``).
    """

    __slots__ = ("dirty", "kind", "partition", "used")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.partition = 0
        self.dirty = False
        self.used = False  # a state used once only is the first to go

    def to_state(self) -> dict[str, Any]:
        raise NotImplementedError


class _Watch(AlertTracker):
    """One detector on one series: the series' alert tracker for that detector, with the
    detector itself (``scorer``), in one object (there is one per tracked series and detector).

    The detector is restored from ``saved`` (see :mod:`detectors.registry`); a saved state of
    another kind or other parameters, or a malformed one, is dropped and the detector starts
    afresh. The alert tracker is restored all the same: an incident left open by the old detector
    is resolved at the new detector's first normal verdict instead of being left firing for ever.
    """

    __slots__ = ("anomalies", "orphaned", "phash", "scorer")

    def __init__(
        self,
        choice: DetectorChoice,
        name: str,
        labels: Mapping[str, str],
        severity: Severity,
        repeat_interval: float,
        saved: Mapping[str, Any] | None,
        anomalies: dict[str, int],
    ) -> None:
        kind, params = choice.kind, choice.params
        super().__init__(name, labels, kind, severity, repeat_interval)
        self.anomalies = anomalies  # the pipeline's count of anomalous points, by detector
        self.phash = _params_hash(params)
        self.scorer: Any = None
        self.orphaned = False
        if saved is not None and saved["kind"] == kind:
            try:
                self.load_state(saved["alert"])
                if saved["phash"] == self.phash:
                    self.scorer = restore(kind, params, saved["state"])
            except (ValueError, KeyError, TypeError):  # malformed: this detector starts afresh
                self.scorer = None
        if self.scorer is None:
            self.scorer = build(kind, params)
            self.orphaned = self.started_at is not None

    def judge(self, verdict: Verdict, value: float, ts: float) -> Alert | None:
        """The alert ``verdict`` causes (see :class:`~engine.core.tracking.AlertTracker`); an
        anomalous verdict is counted."""
        if verdict.anomalous:
            anomalies = self.anomalies
            anomalies[self.detector] = anomalies.get(self.detector, 0) + 1
        if self.orphaned and not verdict.firing:
            verdict = replace(verdict, transition=Transition.RESOLVED)
            self.orphaned = False
        elif verdict.firing:
            self.orphaned = False
        return self.observe(verdict, value, ts)

    def save(self) -> dict[str, Any]:
        """The saved form: detector kind, parameter hash, detector state, alert tracker state."""
        return {
            "kind": self.detector,
            "phash": self.phash,
            "state": self.scorer.to_state(),
            "alert": self.to_state(),
        }


class _Series(_State):
    """The detectors watching one series."""

    __slots__ = ("last_ts", "watches")

    def __init__(
        self,
        cfg: Config,
        role: str,
        name: str,
        labels: dict[str, str],
        saved: Mapping[str, Any] | None,
        anomalies: dict[str, int],
    ) -> None:
        super().__init__(role)
        sid = series_id(name, labels)
        choices, severity = cfg.plan(role, name, sid)
        by_kind = {w["kind"]: w for w in saved["watches"]} if saved else {}
        repeat = cfg.alerts.repeat_interval_seconds
        self.watches = tuple(
            _Watch(c, name, labels, severity, repeat, by_kind.get(c.kind), anomalies)
            for c in choices
        )
        self.last_ts: float | None = saved["last_ts"] if saved else None

    def observe(self, value: float, ts: float, out: list[Alert]) -> None:
        """Judge one point (``ts`` in epoch seconds), appending its alerts to ``out``."""
        last = self.last_ts
        if last is None or ts > last:
            self.last_ts = ts  # the newest time seen: lateness is measured from it
        for w in self.watches:
            verdict = w.scorer.update(value, ts)
            # The common case, a quiet point on a quiet series, causes no alert.
            if (
                verdict.transition is None
                and not verdict.anomalous
                and not verdict.firing
                and not w.orphaned
                and w.started_at is None
            ):
                continue
            alert = w.judge(verdict, value, ts)
            if alert is not None:
                out.append(alert)

    def observe_run(self, values: list[float], times: list[float], out: list[Alert]) -> None:
        """Judge a run of points of this series in event-time order (what :meth:`observe` does
        for each, in fewer calls: each detector judges the whole run, see
        :meth:`~detectors.base.ValueDetector.update_many`)."""
        newest = max(times)
        last = self.last_ts
        if last is None or newest > last:
            self.last_ts = newest
        for w in self.watches:
            if w.orphaned:  # its open incident is not its detector's: every point counts
                for value, ts in zip(values, times, strict=True):
                    alert = w.judge(w.scorer.update(value, ts), value, ts)
                    if alert is not None:
                        out.append(alert)
                continue
            # Only anomalous, firing and state-changing verdicts can make an alert or count:
            # while an incident is open the detector is firing (the two are saved and restored
            # together).
            for i, verdict in w.scorer.update_many(values, times):
                alert = w.judge(verdict, values[i], times[i])
                if alert is not None:
                    out.append(alert)

    def to_state(self) -> dict[str, Any]:
        return {"last_ts": self.last_ts, "watches": [w.save() for w in self.watches]}


class _ExportedSeries(_Series):
    """A series whose anomaly view is exported (``[metrics] export_series``): it keeps its last
    value, and its detectors their last verdicts (see :mod:`engine.core.series_export`)."""

    __slots__ = ("__weakref__", "last_value", "sid")

    def __init__(
        self,
        cfg: Config,
        role: str,
        name: str,
        labels: dict[str, str],
        saved: Any,
        anomalies: dict[str, int],
    ) -> None:
        super().__init__(cfg, role, name, labels, saved, anomalies)
        self.sid = series_id(name, labels)
        self.last_value = math.nan
        for w in self.watches:
            w.scorer = VerdictRecorder(w.scorer)

    def observe(self, value: float, ts: float, out: list[Alert]) -> None:
        self.last_value = value
        super().observe(value, ts, out)

    def observe_run(self, values: list[float], times: list[float], out: list[Alert]) -> None:
        self.last_value = values[-1]
        super().observe_run(values, times, out)

    def view(self) -> SeriesView:
        """The series as the exported gauges show it."""
        return series_view(
            self.sid, self.last_value, ((w.detector, w.scorer) for w in self.watches)
        )


class _ErrorSeries(_Series):
    """``log.error_ratio``: fed one closed window at a time.

    Window detectors get its counts, value detectors its error ratio.
    """

    __slots__ = ()

    def observe_window(self, errors: int, total: int, ts: float, out: list[Alert]) -> None:
        self.last_ts = ts
        ratio = errors / total if total else 0.0
        for w in self.watches:
            detector = w.scorer
            verdict = (
                detector.update_window(errors, total, ts)
                if isinstance(detector, WindowDetector)
                else detector.update(ratio, ts)
            )
            alert = w.judge(verdict, ratio, ts)
            if alert is not None:
                out.append(alert)


class _PatternWatch(_Watch):
    """A message detector (e.g. ``new_pattern``) on one service, with its alert tracker.

    Its alerts carry the template in the ``template`` annotation and in the summary.
    """

    __slots__ = ()

    def observe_message(self, event: LogEvent, out: list[Alert]) -> None:
        """Judge one log message; an alert carries its template."""
        v = self.scorer.observe(event.message, event.level, event.ts)
        if v.transition is None and not v.anomalous and not v.firing and not self.orphaned:
            return
        # The observed value: the template's rate ratio for a jump, one message for a new one.
        alert = self.judge(v, 1.0 if v.new else v.rate_ratio, event.ts)
        if alert is not None:
            what = "new log pattern" if v.new else "log pattern rate jump"
            out.append(
                msgspec.structs.replace(
                    alert,
                    summary=f"{alert.series_id}: {what} at {event.level}: {v.template[:200]}",
                    annotations={"template": v.template[:1000], "template_id": v.template_id},
                )
            )


class _Service(_State):
    """A service's log windows, the two window-level series and its log-pattern detectors."""

    __slots__ = ("count", "errors", "idle_since", "patterns", "windows")

    def __init__(
        self,
        cfg: Config,
        service: str,
        saved: Mapping[str, Any] | None,
        anomalies: dict[str, int],
    ) -> None:
        super().__init__("service")
        labels = {"service": service}
        w = cfg.windows
        self.windows = WindowCounter(w.size_seconds, w.allowed_lateness_seconds)
        if saved:
            self.windows.load_state(saved["windows"])
        self.errors = _ErrorSeries(
            cfg, "error", ERROR_RATIO, labels, saved["errors"] if saved else None, anomalies
        )
        self.count = _Series(
            cfg, "event_count", EVENT_COUNT, labels, saved["count"] if saved else None, anomalies
        )
        choices, severity = cfg.plan("pattern", PATTERNS, series_id(PATTERNS, labels))
        saved_patterns = {p["kind"]: p for p in saved.get("patterns", ())} if saved else {}
        repeat = cfg.alerts.repeat_interval_seconds
        self.patterns = [
            _PatternWatch(
                c, PATTERNS, labels, severity, repeat, saved_patterns.get(c.kind), anomalies
            )
            for c in choices
        ]
        self.idle_since = 0.0  # wall-clock seconds, not saved

    def close(self, closed: Iterable[Any], out: list[Alert]) -> None:
        for win in closed:
            self.errors.observe_window(win.errors, win.total, win.end, out)
            self.count.observe(float(win.total), win.end, out)

    def to_state(self) -> dict[str, Any]:
        return {
            "windows": self.windows.to_state(),
            "errors": self.errors.to_state(),
            "count": self.count.to_state(),
            "patterns": [p.save() for p in self.patterns],
        }


class Pipeline:
    """Per-worker series state and the decisions made on each event (see the module docstring).

    Parameters
    ----------
    config:
        The validated configuration.
    loader:
        Returns the last checkpointed state bytes of a state key, or ``None``.
    series_limit:
        Caps the series tracked (by default ``worker.max_tracked_series``, counting only the
        states in memory); see :mod:`engine.core.series_limit`.
    """

    def __init__(
        self, config: Config, loader: Loader | None = None, series_limit: SeriesLimit | None = None
    ) -> None:
        self.config = config
        self.series_limit = series_limit or SeriesLimit.for_config(config)
        self._loader: Loader = loader or (lambda key: None)
        self._cache: dict[str, _State] = {}
        self._ring: deque[str] = deque()  # the cache's keys, in the clock hand's order
        self._evicted: dict[str, StateWrite] = {}
        self._max = config.worker.max_series
        self._lateness = config.windows.allowed_lateness_seconds
        self._idle = config.windows.idle_advance_seconds
        self.late_events = 0
        #: Points each detector judged anomalous since start, by detector kind (whether or not
        #: they made an alert: ``fire_after`` and the incident rules decide that).
        self.anomalies: dict[str, int] = {}
        #: Adds [[overrides]] labels and annotations and the summary template to transitions.
        self.decorate = AlertDecorator.for_config(config)
        #: Series whose anomaly view is exported, by series id (gone when their state is).
        self.exported: weakref.WeakValueDictionary[str, _ExportedSeries] = (
            weakref.WeakValueDictionary()
        )
        self.behaviour = Behaviour.for_config(config, self._loader)  # None when off
        #: States read back from the changelog, and states started afresh (since start).
        self.restored = 0
        self.created = 0

    # -- state cache -----------------------------------------------------------------------

    def _entry(
        self, key: str, partition: int, make: Callable[[Any], _State], events: int = 1
    ) -> _State | None:
        entry = self._cache.get(key)
        if entry is not None:
            entry.used = True
            entry.partition = partition
            return entry
        pending = self._evicted.pop(key, None)
        raw = pending.value if pending is not None else self._loader(key.encode())
        saved = None
        if raw is not None:
            try:
                doc = orjson.loads(raw)
            except orjson.JSONDecodeError:  # unreadable: start afresh
                doc = None
            if isinstance(doc, dict) and doc.get("v") == STATE_VERSION:
                saved = doc["s"]
        obj = None
        if saved is not None:
            try:
                obj = make(saved)
                self.restored += 1
            except (KeyError, TypeError, ValueError, IndexError):  # malformed: start afresh
                obj = None
        if obj is None:
            if raw is None and not self.series_limit.admits(
                key, len(self._cache) + len(self._evicted), events
            ):
                return None  # a new series past worker.max_tracked_series: not tracked
            obj = make(None)
            self.created += 1
        entry = obj
        entry.partition = partition
        entry.dirty = pending is not None and pending.changed
        if len(self._cache) >= self._max:
            self._evict()  # before the new state joins: it is about to be used
        self._cache[key] = entry
        self._ring.append(key)
        return entry

    def _evict(self) -> None:
        """Evict one state: the first unmarked one from the clock hand on."""
        cache, ring = self._cache, self._ring
        while True:
            key = ring.popleft()
            entry = cache[key]
            if entry.used:
                entry.used = False
                ring.append(key)
                continue
            del cache[key]
            # The table dropped its copy when the state was loaded: it gets one back, and the
            # changelog too if the state changed since its last checkpoint.
            self._evicted[key] = self._write(key, entry, changed=entry.dirty)
            return

    @staticmethod
    def _write(
        key: str, entry: _State, *, resident: bool = False, changed: bool = True
    ) -> StateWrite:
        doc = {"v": STATE_VERSION, "kind": entry.kind, "s": entry.to_state()}
        # A copy: orjson's result keeps its whole 4 KiB output buffer, and the state table keeps
        # the value of every state not in memory (measured: 4.1 KB a state, 0.4 KB copied).
        value = bytes(memoryview(orjson.dumps(doc)))
        return StateWrite(key.encode(), entry.partition, value, resident, changed)

    def checkpoint(self) -> list[StateWrite]:
        """The changed states since the last call, to write to the changelog, and the states
        evicted from memory since then (see :class:`StateWrite`)."""
        return [write for chunk in self.checkpoint_chunks() for write in chunk]

    def checkpoint_chunks(self, size: int = 1024) -> Iterator[list[StateWrite]]:
        """:meth:`checkpoint` in lists of about ``size`` writes, made as they are asked for.

        Writing a million changed states at once holds all of them serialized at the same time
        (the heap keeps that peak: 5.6 KB per series after one checkpoint of 1,000,000 against
        2.0 KB before it). A caller may let events be judged between two chunks: a state
        evicted meanwhile, or evicted before its chunk and loaded again after it, is written
        by the last chunk, so every state changed before the call is written by its end.
        """
        evicted = list(self._evicted.values())
        self._evicted.clear()
        cache = self._cache
        keys = [key for key, entry in cache.items() if entry.dirty]
        missed: list[str] = []  # not in memory when their chunk was made
        for start in range(-size, len(keys), size):
            if start < 0:
                chunk = evicted  # the states evicted before the call, first (older)
            else:
                chunk = []
                for key in keys[start : start + size]:
                    entry = cache.get(key)
                    if entry is None:
                        missed.append(key)
                    elif entry.dirty:
                        chunk.append(self._write(key, entry, resident=True))
                        entry.dirty = False
            if chunk:
                yield chunk
        last = list(self._evicted.values())
        self._evicted.clear()
        for key in missed:
            entry = cache.get(key)
            if entry is not None and entry.dirty:
                last.append(self._write(key, entry, resident=True))
                entry.dirty = False
        if self.behaviour is not None:
            last.extend(StateWrite(*w, resident=True) for w in self.behaviour.checkpoint())
        if last:
            yield last

    def release(self, partitions: Iterable[int]) -> list[StateWrite]:
        """Forget the states of ``partitions`` (revoked); returns their unsaved changes."""
        parts = set(partitions)
        writes = []
        for key in [k for k, e in self._cache.items() if e.partition in parts]:
            entry = self._cache.pop(key)
            if entry.dirty:
                writes.append(self._write(key, entry))
        self._ring = deque(key for key in self._ring if key in self._cache)
        for key, write in list(self._evicted.items()):
            if write.partition in parts:
                writes.append(self._evicted.pop(key))
        if self.behaviour is not None:
            writes.extend(StateWrite(*w) for w in self.behaviour.release(parts))
        return writes

    def load_counts(self) -> dict[str, int]:
        """States brought into memory since start: ``changelog`` (restored) and ``new``."""
        return {"changelog": self.restored, "new": self.created}

    def series_counts(self) -> dict[str, int]:
        """Series held in memory by kind (``metric``, ``latency``, ``service``)."""
        counts = {"metric": 0, "latency": 0, "service": 0}
        for entry in self._cache.values():
            counts[entry.kind] += 1
        return counts

    # -- events ----------------------------------------------------------------------------

    def judge(
        self,
        events: Iterable[Event],
        partition: int,
        now: float,
        out: list[Alert],
        logs: list[LogEvent],
    ) -> None:
        """Judge the decoded events of one Kafka partition, in order.

        Alert transitions are appended to ``out``, log events to ``logs`` (for the sinks).
        ``now`` is the wall clock (epoch seconds; see :meth:`log`). Events too late to use are
        counted in :attr:`late_events`. This is the hot path: the metric samples of one series
        are judged as one run, in their order (lateness, alerts and states are those of
        judging them one by one).
        """
        # Metric samples are grouped by series (a key, a dict lookup and an append each), then
        # each series judges its run in one call: the per-point work is the detectors' loops.
        # Log events are counted as they come; their series are not metric series, so the
        # order between the two does not matter.
        runs: dict[str, list[MetricSample]] = {}
        find = runs.get
        for ev in events:
            if type(ev) is not MetricSample:
                assert isinstance(ev, LogEvent)
                self.log(ev, partition, now, out)
                logs.append(ev)
                continue
            name, labels = ev.name, ev.labels
            if not labels:
                key = "m|" + name
            elif len(labels) == 1:  # series_id's common case, without a call
                for label, text in labels.items():
                    key = f"m|{name}{{{label}={text}}}"
            else:
                key = "m|" + series_id(name, labels)
            run = find(key)
            if run is None:
                runs[key] = [ev]
            else:
                run.append(ev)
        lookup = self._cache.get
        for key, run in runs.items():
            series = lookup(key)
            if series is None:
                series = self._new_metric(key, run[0], partition, len(run))
                if series is None:
                    continue
            else:
                series.used = True
                series.partition = partition
            assert isinstance(series, _Series)
            if len(run) == 1:  # a run of one point: the point's own path is shorter
                ev = run[0]
                self._point(series, ev.value, ev.ts, out)
                continue
            values, times = self._in_time(series, [e.value for e in run], [e.ts for e in run])
            if times:
                series.dirty = True
                series.observe_run(values, times, out)

    def _in_time(
        self, series: _Series, values: list[float], times: list[float]
    ) -> tuple[list[float], list[float]]:
        """The points of a run that are not too late for ``series`` (each is measured against
        the newest time seen before it, as if judged one by one); the others are counted."""
        lateness = self._lateness
        last = series.last_ts
        # The common case, a run in time order that starts in time: none of it is late.
        if (last is None or times[0] >= last - lateness) and sorted(times) == times:
            return values, times
        kept_values: list[float] = []
        kept_times: list[float] = []
        for value, ts in zip(values, times, strict=True):
            if last is not None and ts < last - lateness:
                self.late_events += 1
                continue
            if last is None or ts > last:
                last = ts
            kept_values.append(value)
            kept_times.append(ts)
        return kept_values, kept_times

    def _new_metric(
        self, key: str, sample: MetricSample, partition: int, events: int
    ) -> _State | None:
        cfg = self.config
        # Names and label values repeat across series: the series keeps one shared copy.
        name = sys.intern(sample.name)
        kept = {sys.intern(k): sys.intern(v) for k, v in sample.labels.items()}
        export = cfg.metrics  # once per new series: is it one to export (and is there room)?
        if (
            export.export_series
            and len(self.exported) < export.export_max_series
            and export.exports(name, key[2:])
        ):
            return self._entry(
                key, partition, lambda saved: self._exported(name, kept, saved), events
            )
        anomalies = self.anomalies
        return self._entry(
            key,
            partition,
            lambda saved: _Series(cfg, "metric", name, kept, saved, anomalies),
            events,
        )

    def _exported(self, name: str, labels: dict[str, str], saved: Any) -> _Series:
        series = _ExportedSeries(self.config, "metric", name, labels, saved, self.anomalies)
        self.exported[series.sid] = series
        return series

    def exported_views(self) -> list[SeriesView]:
        """The anomaly view of every exported series in memory (``[metrics] export_series``)."""
        return [series.view() for series in list(self.exported.values())]

    def metric(self, sample: MetricSample, partition: int, out: list[Alert]) -> bool:
        """Score and learn one metric sample; returns ``False`` if it was too late to use."""
        late = self.late_events
        self.judge((sample,), partition, 0.0, out, [])
        return self.late_events == late

    def _point(self, series: _State, value: float, ts: float, out: list[Alert]) -> bool:
        assert isinstance(series, _Series)
        last = series.last_ts
        if last is not None and ts < last - self._lateness:
            self.late_events += 1
            return False
        series.observe(value, ts, out)
        series.dirty = True
        return True

    def log(self, event: LogEvent, partition: int, now: float, out: list[Alert]) -> bool:
        """Count one log event in its window (and its latency); ``False`` if too late to count.

        ``now`` is the wall clock (epoch seconds), used only to notice idle services.
        """
        service = event.service
        cfg = self.config
        if self.behaviour is not None:
            derived = self.behaviour.observe(event, partition, out, now)
            if derived:
                self.judge(derived, partition, now, out, [])
        anomalies = self.anomalies
        svc = self._entry(
            "l|" + service, partition, lambda saved: _Service(cfg, service, saved, anomalies)
        )
        if svc is None:
            return False
        assert isinstance(svc, _Service)
        svc.idle_since = now
        svc.dirty = True
        windows = svc.windows
        if not windows.add(event.ts, event.is_error):
            self.late_events += 1
            return False
        if windows.watermark >= windows.next_close_at:
            svc.close(windows.advance(), out)
        for watch in svc.patterns:
            watch.observe_message(event, out)
        if event.duration_ms is not None:
            op = event.operation or "default"
            labels = {"service": service, "operation": op}
            lat = self._entry(
                "p|" + orjson.dumps([service, op]).decode(),
                partition,
                lambda saved: _Series(cfg, "latency", LATENCY, labels, saved, anomalies),
            )
            if lat is not None:
                self._point(lat, event.duration_ms, event.ts, out)
        return True

    def tick(self, now: float) -> list[Alert]:
        """Advance the event time of services idle for ``windows.idle_advance_seconds``.

        Call it periodically with the wall clock; closes their pending windows.
        """
        out: list[Alert] = []
        for svc in self._cache.values():
            if not isinstance(svc, _Service):
                continue
            idle = now - svc.idle_since
            if idle >= self._idle and svc.windows.next_close_at != float("inf"):
                closed = svc.windows.advance(idle)
                svc.idle_since = now
                if closed:
                    svc.close(closed, out)
                    svc.dirty = True
        if self.behaviour is not None:
            for part, samples in self.behaviour.tick(now, out):
                self.judge(samples, part, now, out, [])
        limited = self.series_limit.tick(now)
        if limited is not None:
            out.append(limited)
        return out
