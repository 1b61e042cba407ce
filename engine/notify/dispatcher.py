"""The dispatcher: Alertmanager's notification pipeline as pure decisions.

:meth:`Dispatcher.ingest` routes each alert transition into aggregation groups (one per route,
group labels and channel); :meth:`Dispatcher.due` flushes the groups whose time has come and says
which notifications to send; the caller delivers them and reports back with :meth:`Dispatcher.ack`
or :meth:`Dispatcher.nack`. A flush of a group, for its channel:

1. leaves out alerts that are inhibited (:class:`~engine.notify.inhibit.Inhibitor`) or silenced
   (:class:`~engine.notify.silences.Silences`), counting them when they become so;
2. applies flap holding (:class:`~engine.notify.flapping.FlapDetector`): a flapping alert is sent
   once marked ``flapping=true``, then held until stable for a whole window, then sent once more;
3. asks the notification log (:func:`~engine.notify.nflog.needs_update`) whether the channel must
   hear about the group again; a channel without ``send_resolved`` gets only firing alerts;
4. returns a :class:`PendingNotification` holding the whole group (all its alerts) in one
   :class:`~engine.model.notification.Notification`.

Nothing here does I/O or reads a clock: every method takes ``now`` (epoch seconds, wall clock).
The state (:meth:`Dispatcher.to_state`) is JSON-serialisable, so a restarted worker resumes
without notifying again what was acknowledged before it stopped; a notification that was due but
not acknowledged is sent again (at least once).

After a crash the engine records again the transitions of the events it consumes again (at
least once), so the alerts topic may hold an older version of an alert after a newer one (a
firing after its resolution). :meth:`Dispatcher.ingest` drops a transition older than the newest
it took in for that fingerprint (by incident start, then firing before resolved), so a replay
notifies nothing twice; it counts them as ``replayed``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from msgspec.structs import replace

from engine.model.alert import Alert, AlertStatus, alert_labels
from engine.model.notification import Notification
from engine.notify.flapping import FlapDetector
from engine.notify.grouping import AggregationGroup, alert_key, alert_order
from engine.notify.inhibit import Inhibitor
from engine.notify.nflog import DEFAULT_RETENTION_SECONDS as NFLOG_RETENTION_SECONDS
from engine.notify.nflog import NotificationLog, needs_update
from engine.notify.routes import Route, group_key
from engine.notify.settings import InhibitRuleSettings, RoutingSettings, SilenceSettings
from engine.notify.silences import DEFAULT_RETENTION_SECONDS as SILENCE_RETENTION_SECONDS
from engine.notify.silences import Silences, silence_from_settings

__all__ = [
    "FLAPPING_ANNOTATION",
    "DeadFate",
    "Dispatcher",
    "PendingNotification",
    "build_dispatcher",
]

#: Annotation set to ``"true"`` on the copy of an alert notified as flapping.
FLAPPING_ANNOTATION = "flapping"
STATE_VERSION = 1
COUNTERS = ("silenced", "inhibited", "flapping", "sent", "failed", "replayed")

#: What to do with a dead-lettered notification (see :meth:`Dispatcher.fate_of_dead`).
DeadFate = Literal["superseded", "held", "replay"]


@dataclass(frozen=True, slots=True)
class PendingNotification:
    """A notification to deliver, and what the dispatcher needs to know once it was.

    Attributes
    ----------
    notification
        What to send: ``receiver`` is the channel name, ``alerts`` the group's alerts.
    route_id
        The route that made the group.
    firing, resolved
        Keys of the alerts it tells about (recorded in the notification log on :meth:`ack`).
    settles
        Resolved alerts to drop from the group once delivered.
    flap_announced
        (fingerprint, episode start) of alerts notified as flapping.
    flap_settled
        Fingerprints of alerts notified after their flapping episode ended.
    """

    notification: Notification
    route_id: str
    firing: frozenset[str]
    resolved: frozenset[str]
    settles: tuple[Alert, ...] = ()
    flap_announced: tuple[tuple[str, float], ...] = ()
    flap_settled: tuple[str, ...] = ()

    @property
    def receiver(self) -> str:
        """The channel name."""
        return self.notification.receiver

    @property
    def group_key(self) -> str:
        """The group's key (see :func:`engine.notify.routes.group_key`)."""
        return self.notification.group_key


@dataclass(slots=True)
class _Flush:
    """What one flush of one group decided, before it is sent or applied."""

    visible: list[Alert]
    settles: list[Alert]
    announced: list[tuple[str, float]]
    settled: list[str]
    force: bool


class Dispatcher:
    """Routes, groups, mutes, deduplicates and times notifications (pure; see module docstring).

    Parameters
    ----------
    routes
        The routing tree.
    silences
        The silences (the engine also uses them to mark ``Alert.silenced``).
    inhibitor
        The inhibition rules and the firing alerts they know.
    flaps
        The flap detector.
    nflog
        The notification log.
    send_resolved
        Per channel name, whether it wants resolved alerts (missing: yes).
    external_url
        Put in every notification.
    nflog_retention_seconds, silence_retention_seconds
        How long log entries and expired silences are kept (see :meth:`gc`).
    gc_interval_seconds
        :meth:`due` runs :meth:`gc` at most this often.
    counters
        The dict of totals to add to (see :meth:`counters`); a new one if ``None``.

    Examples
    --------
    >>> from engine.model.alert import Alert, AlertStatus, Severity
    >>> d = build_dispatcher(RoutingSettings(), {"ops": True})
    >>> for i in range(3):
    ...     d.ingest(Alert(f"fp{i}", AlertStatus.FIRING, Severity.WARNING, f"s{i}",
    ...                    {"service": "api"}, "zscore", 9.0, 1.0, 5.0, 1000.0, None, "x"),
    ...              now=1000.0 + i)
    >>> d.due(now=1005.0), d.next_wakeup(now=1005.0)
    ([], 1010.0)
    >>> [(p.receiver, p.group_key, len(p.notification.alerts)) for p in d.due(now=1010.0)]
    [('ops', 'root:{service="api"}', 3)]
    """

    def __init__(
        self,
        routes: Route,
        silences: Silences,
        inhibitor: Inhibitor,
        flaps: FlapDetector,
        nflog: NotificationLog,
        send_resolved: Mapping[str, bool],
        *,
        external_url: str | None = None,
        nflog_retention_seconds: float = NFLOG_RETENTION_SECONDS,
        silence_retention_seconds: float = SILENCE_RETENTION_SECONDS,
        gc_interval_seconds: float = 300.0,
        counters: dict[str, int] | None = None,
    ) -> None:
        self.routes = routes
        self.silences = silences
        self.inhibitor = inhibitor
        self.flaps = flaps
        self.nflog = nflog
        self.send_resolved = dict(send_resolved)
        self.external_url = external_url
        self.nflog_retention_seconds = nflog_retention_seconds
        self.silence_retention_seconds = silence_retention_seconds
        self.gc_interval_seconds = gc_interval_seconds
        self._groups: dict[tuple[str, str], AggregationGroup] = {}
        if counters is None:
            counters = {}
        for name in COUNTERS:
            counters.setdefault(name, 0)
        self._counters = counters
        self._last_gc: float | None = None
        #: Per fingerprint: the newest version taken in (alert_order) and when (epoch seconds).
        self._newest: dict[str, tuple[tuple[float, int], float]] = {}

    # -- counters and views ---------------------------------------------------------------------

    @property
    def silenced(self) -> int:
        """How often an alert incident became silenced at a flush, per group (a silenced alert is
        counted once, not at every flush)."""
        return self._counters["silenced"]

    @property
    def inhibited(self) -> int:
        """How often an alert incident became inhibited at a flush, per group (an inhibited alert
        is counted once, not at every flush)."""
        return self._counters["inhibited"]

    def counters(self) -> dict[str, int]:
        """Totals since start: ``silenced``, ``inhibited``, ``flapping`` (alerts notified as
        flapping), ``sent`` (acknowledged notifications), ``failed`` (nacked ones), ``replayed``
        (transitions older than one already taken in, dropped)."""
        return dict(self._counters)

    def groups(self) -> list[AggregationGroup]:
        """The current groups, by next flush time (for inspection; do not change them)."""
        return sorted(self._groups.values(), key=lambda g: (g.next_flush, g.receiver, g.group_key))

    # -- the pipeline -----------------------------------------------------------------------------

    def ingest(self, alert: Alert, now: float) -> None:
        """Take in an alert transition (firing, repeat, or resolved) at ``now``.

        Records the transition for flap detection, tells the inhibitor, and puts the alert in the
        group of each route and channel it goes to (replacing an older version of it there). A
        resolved alert that no group holds and no channel was told about is dropped, and so is a
        version older than one taken in before (a replay: see the module docstring).
        """
        order = alert_order(alert.status, alert.started_at)
        newest = self._newest.get(alert.fingerprint)
        if newest is not None and order < newest[0]:
            self._counters["replayed"] += 1
            return
        self._newest[alert.fingerprint] = (order, now)
        labels = alert_labels(alert)
        self.flaps.record(alert.fingerprint, alert.status, alert.started_at, now)
        self.inhibitor.observe_labels(
            alert.fingerprint, labels, alert.started_at, firing=alert.status is AlertStatus.FIRING
        )
        for route in self.routes.match(labels):
            group_labels = route.group_labels(labels)
            key = group_key(route.route_id, group_labels)
            for channel in route.channels:
                group = self._groups.get((channel, key))
                if group is None:
                    if alert.status is AlertStatus.RESOLVED:
                        entry = self.nflog.get(channel, key)
                        if entry is None or alert_key(alert) not in entry.firing:
                            continue
                    group = AggregationGroup.new(channel, key, route, group_labels, now)
                    self._groups[(channel, key)] = group
                group.insert(alert)

    def due(self, now: float) -> list[PendingNotification]:
        """Flush the groups whose time has come; the notifications to deliver now.

        A group is first due ``group_wait_seconds`` after it was created, then every
        ``group_interval_seconds``; a group with a notification in flight is skipped until it is
        acked or nacked. Groups left empty are deleted.
        """
        if self._last_gc is None or now - self._last_gc >= self.gc_interval_seconds:
            self.gc(now)
        out = []
        for key in sorted(self._groups, key=lambda k: (self._groups[k].next_flush, k)):
            group = self._groups[key]
            if group.in_flight or group.next_flush > now:
                continue
            group.next_flush = now + group.group_interval_seconds
            pending = self._flush(group, now)
            if pending is not None:
                group.in_flight = True
                out.append(pending)
        return out

    def ack(self, pending: PendingNotification, now: float) -> None:
        """Record that ``pending`` was delivered at ``now``.

        Updates the notification log, drops the resolved alerts it told about from the group
        (unless a newer version arrived meanwhile) and deletes the group when empty.
        """
        self._counters["sent"] += 1
        self.nflog.record(
            pending.receiver, pending.group_key, pending.firing, pending.resolved, now
        )
        group = self._groups.get((pending.receiver, pending.group_key))
        if group is None:
            return
        group.in_flight = False
        self._settle(group, pending.settles, pending.flap_announced, pending.flap_settled)

    def nack(self, pending: PendingNotification, now: float) -> None:
        """Record that delivering ``pending`` was given up at ``now``.

        Nothing is recorded as sent, so the group's next flush, one ``group_interval_seconds``
        from now at the earliest, tries again with the group's alerts as they are then.
        """
        self._counters["failed"] += 1
        group = self._groups.get((pending.receiver, pending.group_key))
        if group is not None:
            group.in_flight = False
            group.next_flush = max(group.next_flush, now + group.group_interval_seconds)

    def fate_of_dead(self, receiver: str, group_key: str, failed_at: float) -> DeadFate:
        """What replaying a notification of group ``group_key`` to ``receiver``, given up on at
        ``failed_at`` (epoch seconds), would do, as this dispatcher's state tells:

        - ``superseded``: the receiver was sent a later notification of the group, which told the
          group as it was then; replaying would tell it something older;
        - ``held``: the group is still here, not notified since; the dispatcher notifies it itself
          (as it is then) at a next flush, so replaying would tell the receiver twice;
        - ``replay``: neither; nothing else will tell the receiver.

        >>> from engine.model.alert import Alert, AlertStatus, Severity
        >>> d = build_dispatcher(RoutingSettings(group_wait_seconds=0), {"ops": True})
        >>> d.ingest(Alert("fp", AlertStatus.FIRING, Severity.WARNING, "cpu", {"service": "api"},
        ...                "zscore", 9.0, 1.0, 5.0, 1000.0, None, "x"), now=1000.0)
        >>> [pending] = d.due(now=1000.0)
        >>> d.nack(pending, now=1001.0)  # given up on at 1001: the group is still held
        >>> d.fate_of_dead("ops", pending.group_key, failed_at=1001.0)
        'held'
        >>> [pending] = d.due(now=1061.0)
        >>> d.ack(pending, now=1062.0)  # a later notification of the group got through
        >>> d.fate_of_dead("ops", pending.group_key, failed_at=1001.0)
        'superseded'
        >>> d.fate_of_dead("ops", "a group never seen", failed_at=1001.0)
        'replay'
        """
        entry = self.nflog.get(receiver, group_key)
        if entry is not None and entry.sent_at >= failed_at:
            return "superseded"
        if (receiver, group_key) in self._groups:
            return "held"
        return "replay"

    def next_wakeup(self, now: float) -> float | None:
        """When :meth:`due` next has something to do (may be ``<= now``), ``None`` if never.

        Groups with a notification in flight are not counted: :meth:`ack`/:meth:`nack` come first.
        """
        times = [g.next_flush for g in self._groups.values() if not g.in_flight]
        return min(times) if times else None

    def gc(self, now: float) -> None:
        """Forget old log entries and expired silences, and alerts that stopped changing in the
        flap detector; :meth:`due` calls it every ``gc_interval_seconds``."""
        self._last_gc = now
        self.nflog.gc(now, self.nflog_retention_seconds, keep=set(self._groups))
        cutoff = now - self.nflog_retention_seconds
        for fp in [fp for fp, (_, seen) in self._newest.items() if seen < cutoff]:
            del self._newest[fp]
        self.silences.gc(now, self.silence_retention_seconds)
        self.flaps.prune(now)

    # -- one flush ------------------------------------------------------------------------------

    def _flush(self, group: AggregationGroup, now: float) -> PendingNotification | None:
        send_resolved = self.send_resolved.get(group.receiver, True)
        flush = self._select(group, now, send_resolved)
        if not flush.visible:
            self._settle(group, flush.settles, (), ())
            return None
        firing = frozenset(alert_key(a) for a in flush.visible if a.status is AlertStatus.FIRING)
        resolved = frozenset(
            alert_key(a) for a in flush.visible if a.status is AlertStatus.RESOLVED
        )
        entry = self.nflog.get(group.receiver, group.group_key)
        # Incidents that fired and resolved before the channel heard of them (a short spike, a
        # backfill, a worker catching up): the channel hears of each once, as resolved, even
        # without send_resolved, since it would otherwise never learn they happened.
        known = entry.firing | entry.resolved if entry is not None else frozenset()
        unseen = resolved - known
        send = (
            flush.force
            or bool(unseen)
            or needs_update(
                entry,
                firing,
                resolved,
                send_resolved=send_resolved,
                repeat_interval_seconds=group.repeat_interval_seconds,
                now=now,
            )
        )
        alerts = [
            a
            for a in flush.visible
            if send_resolved
            or a.status is AlertStatus.FIRING
            or a.annotations.get(FLAPPING_ANNOTATION) == "true"
            or alert_key(a) in unseen
        ]
        if send and alerts:
            alerts.sort(
                key=lambda a: (a.status is not AlertStatus.FIRING, a.started_at, a.fingerprint)
            )
            notification = Notification(
                receiver=group.receiver,
                group_key=group.group_key,
                group_labels=group.group_labels,
                alerts=tuple(alerts),
                external_url=self.external_url,
            )
            return PendingNotification(
                notification=notification,
                route_id=group.route_id,
                firing=firing,
                resolved=resolved,
                settles=tuple(flush.settles),
                flap_announced=tuple(flush.announced),
                flap_settled=tuple(flush.settled),
            )
        if send or (not firing and entry is not None and entry.firing):
            # Nothing the channel wants to hear (resolved alerts only, without send_resolved):
            # record it as told, so the log stops listing the firing alerts.
            self.nflog.record(group.receiver, group.group_key, firing, resolved, now)
        self._settle(group, flush.settles, flush.announced, flush.settled)
        return None

    def _select(self, group: AggregationGroup, now: float, send_resolved: bool) -> _Flush:
        """Which alerts of the group a notification would show, and what is due about flapping."""
        flush = _Flush([], [], [], [], False)
        for fp in sorted(group.alerts):
            held = group.alerts[fp]
            alert = held.alert
            labels = alert_labels(alert)
            reason = self._mute_reason(labels, fp, now)
            if reason is not None:
                mark = f"{reason}@{alert.started_at!r}"
                if held.muted != mark:
                    held.muted = mark
                    self._counters[reason] += 1
                if alert.status is AlertStatus.RESOLVED:
                    flush.settles.append(alert)
                continue
            held.muted = None
            episode = self.flaps.episode(fp, now)
            if episode is not None:
                if held.flap_announced != episode:
                    annotations = {**alert.annotations, FLAPPING_ANNOTATION: "true"}
                    flush.visible.append(replace(alert, annotations=annotations))
                    flush.announced.append((fp, episode))
                    flush.force = True
                continue  # held while flapping
            if held.flap_announced is not None:
                flush.settled.append(fp)
                flush.force = flush.force or alert.status is AlertStatus.FIRING or send_resolved
            flush.visible.append(alert)
            if alert.status is AlertStatus.RESOLVED:
                flush.settles.append(alert)
        return flush

    def _mute_reason(self, labels: Mapping[str, str], fingerprint: str, now: float) -> str | None:
        if self.inhibitor.is_inhibited(labels, fingerprint):
            return "inhibited"
        if self.silences.is_silenced(labels, now):
            return "silenced"
        return None

    def _settle(
        self,
        group: AggregationGroup,
        settles: Iterable[Alert],
        announced: Iterable[tuple[str, float]],
        settled: Iterable[str],
    ) -> None:
        """Apply a flush that needs no (more) delivery: drop resolved alerts, note flap news."""
        for alert in settles:
            group.remove_if_unchanged(alert)
        for fp, episode in announced:
            if fp in group.alerts:
                group.alerts[fp].flap_announced = episode
                self._counters["flapping"] += 1
        for fp in settled:
            if fp in group.alerts:
                group.alerts[fp].flap_announced = None
        if not group.alerts and not group.in_flight:
            del self._groups[(group.receiver, group.group_key)]

    # -- state ------------------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Everything a restarted worker needs, JSON-serialisable (strict JSON: no NaN)."""
        return {
            "version": STATE_VERSION,
            "groups": [self._groups[k].to_state() for k in sorted(self._groups)],
            "nflog": self.nflog.to_state(),
            "flaps": self.flaps.to_state(),
            "inhibitor": self.inhibitor.to_state(),
            "silences": self.silences.to_state(),
            "last_gc": self._last_gc,
            "newest": [
                [fp, started_at, rank, seen]
                for fp, ((started_at, rank), seen) in sorted(self._newest.items())
            ],
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Replace the state with ``state`` (from :meth:`to_state`).

        Groups whose route still exists take that route's current timings.

        Raises
        ------
        ValueError
            If ``state`` has another version.
        """
        if state.get("version") != STATE_VERSION:
            raise ValueError(
                f"version: dispatcher state version {state.get('version')!r} is not {STATE_VERSION}"
            )
        groups = {}
        for item in state["groups"]:
            group = AggregationGroup.from_state(item)
            route = self.routes.find(group.route_id)
            if route is not None:
                group.group_interval_seconds = route.group_interval_seconds
                group.repeat_interval_seconds = route.repeat_interval_seconds
            groups[(group.receiver, group.group_key)] = group
        self._groups = groups
        self.nflog.load_state(state["nflog"])
        self.flaps.load_state(state["flaps"])
        self.inhibitor.load_state(state["inhibitor"])
        self.silences.load_state(state["silences"])
        last_gc = state.get("last_gc")
        self._last_gc = None if last_gc is None else float(last_gc)
        self._newest = {
            str(fp): ((float(started_at), int(rank)), float(seen))
            for fp, started_at, rank, seen in state.get("newest", ())  # (older states: none)
        }

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        routes: Route,
        silences: Silences,
        inhibitor: Inhibitor,
        flaps: FlapDetector,
        nflog: NotificationLog,
        send_resolved: Mapping[str, bool],
        **options: Any,
    ) -> Dispatcher:
        """A dispatcher built like the constructor, then :meth:`load_state` of ``state``."""
        dispatcher = cls(routes, silences, inhibitor, flaps, nflog, send_resolved, **options)
        dispatcher.load_state(state)
        return dispatcher


def build_dispatcher(
    routing: RoutingSettings,
    channels: Mapping[str, bool],
    silences: Iterable[SilenceSettings] = (),
    inhibit_rules: Iterable[InhibitRuleSettings] = (),
    *,
    state: Mapping[str, Any] | None = None,
    id_factory: Callable[[], str] | None = None,
    counters: dict[str, int] | None = None,
) -> Dispatcher:
    """A dispatcher for the config sections ``[routing]``, ``[[silences]]``, ``[[inhibit_rules]]``.

    Parameters
    ----------
    routing
        The routing tree, timings and flap detection.
    channels
        The configured channels, in config order: name -> ``send_resolved``.
    silences, inhibit_rules
        From the config file.
    state
        A saved :meth:`Dispatcher.to_state` to resume from.
    id_factory
        Makes the ids of silences created through the API (uuid4 by default).
    counters
        The totals to add to (see :meth:`Dispatcher.counters`); pass the same dict to every
        dispatcher of a process to keep its totals across hand-overs.

    Raises
    ------
    ValueError
        If a route names a channel that is not configured.
    """
    dispatcher = Dispatcher(
        routes=Route.from_settings(routing, channels),
        silences=Silences(map(silence_from_settings, silences), id_factory=id_factory),
        inhibitor=Inhibitor(inhibit_rules),
        flaps=FlapDetector(routing.flap_window_seconds, routing.flap_threshold),
        nflog=NotificationLog(),
        send_resolved=channels,
        external_url=routing.external_url,
        counters=counters,
    )
    if state is not None:
        dispatcher.load_state(state)
    return dispatcher
