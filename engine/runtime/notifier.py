"""Delivering alert notifications: the dispatcher (routing, grouping, silences, inhibition, flap
control, deduplication) with real channels, retries and a dead-letter topic.

The alerts topic has one partition, so exactly one worker of the group is the *active* notifier
at a time: it sees every alert, as one Alertmanager would. When that partition moves (a crash, a
rebalance), the new owner restores the dispatcher's state (groups, notification log, flap
history) from the state topic and carries on without re-sending what was already sent.

Deliveries run as tasks, concurrently; the dispatcher leaves a group alone while its
notification is in flight. A notification whose retry budget is spent is recorded on the alerts
DLQ with the channel, the error and the attempt count (see :mod:`engine.runtime.alerts_dlq`), and
the group is retried at its next flush. When a later notification of that group gets through, the
DLQ is told that nothing is left to replay: the same notification was delivered later
(:class:`~engine.model.notification.DeliveredLater`), or a newer one of its group
(:class:`~engine.model.notification.Superseded`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import orjson

from alert_channels.retry import deliver_with_retries
from engine.config import Config
from engine.model.alert import Alert
from engine.model.notification import DeadNotification, DeliveredLater, Superseded
from engine.notify import Dispatcher, PendingNotification, Silences, build_dispatcher
from engine.runtime.channels import ChannelRoute
from engine.runtime.metrics import KestrelMetrics

__all__ = ["Notifier"]

log = logging.getLogger("kestrel.notify")

RecordOnDlq = Callable[[DeadNotification | DeliveredLater | Superseded], Awaitable[None]]


class SaveState(Protocol):
    """Persists the dispatcher's state; with ``durable``, returns once the broker has it."""

    def __call__(self, state: bytes, *, durable: bool = False) -> Awaitable[None]: ...


#: At most this many groups with dead-lettered notifications are remembered, and this many
#: notification ids of each (the oldest are forgotten).
MAX_DEAD_GROUPS = 10_000
MAX_DEAD_PER_GROUP = 100


class Notifier:
    """The active notifier of one worker (inactive until it owns the alerts partition).

    Parameters
    ----------
    config:
        The configuration (``[routing]``, ``[[inhibit_rules]]``, channels).
    routes:
        The channels by name, with their retry policies.
    silences:
        The worker's silences (config and API ones, kept up to date from the silences topic).
    metrics, clock:
        Injected metrics and wall clock (epoch seconds).
    dead_letter:
        Records a notification given up on.
    save_state:
        Persists the dispatcher's state (bytes). The state is saved before every commit of the
        alerts topic's offsets (:meth:`save_changes`), so a new owner of the partition never
        skips an alert its saved state has not seen; and durably after each delivery, so a
        crash right after a notification rarely leads to sending it again (only a crash between
        the receiver's answer and the broker's acknowledgement of the state does; the resent
        notification has the same id, by which the receiver can drop it).
    """

    def __init__(
        self,
        config: Config,
        routes: Mapping[str, ChannelRoute],
        silences: Silences,
        *,
        metrics: KestrelMetrics,
        clock: Callable[[], float],
        dead_letter: RecordOnDlq,
        save_state: SaveState,
    ) -> None:
        self.config = config
        self.routes = dict(routes)
        self.silences = silences
        self._metrics = metrics
        self._clock = clock
        self._dead_letter = dead_letter
        self._save_state = save_state
        self.dispatcher: Dispatcher | None = None
        self._activated = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        # Ids of the notifications dead-lettered since start, by (channel, group key), oldest
        # first: when a later notification of the group gets through, the DLQ is told, so that
        # a replay neither sends it twice nor sends an older state of the group after it.
        self._dead: dict[tuple[str, str], list[str]] = {}
        self._dirty = False
        #: Totals of every dispatcher this process ran (read by the metrics collector).
        self.counts: dict[str, int] = {}

    @property
    def active(self) -> bool:
        """Whether this worker currently sends notifications."""
        return self.dispatcher is not None

    def activate(self, saved: bytes | None) -> None:
        """Become the active notifier, resuming from ``saved`` state if any."""
        state: dict[str, Any] | None = None
        if saved:
            try:
                state = orjson.loads(saved)
                # The silences topic, not this snapshot, is the truth about silences.
                state["silences"] = self.silences.to_state()
            except (orjson.JSONDecodeError, TypeError):
                log.error("notifier: unreadable saved state; starting afresh")
                state = None
        channels = {name: r.send_resolved for name, r in self.routes.items()}
        cfg = self.config
        try:
            dispatcher = build_dispatcher(
                cfg.routing, channels, (), cfg.inhibit_rules, state=state, counters=self.counts
            )
        except (ValueError, KeyError) as exc:
            log.error("notifier: saved state not usable (%s); starting afresh", exc)
            dispatcher = build_dispatcher(
                cfg.routing, channels, (), cfg.inhibit_rules, counters=self.counts
            )
        dispatcher.silences = self.silences
        self.dispatcher = dispatcher
        self._activated.set()
        log.info("notifier active (%d group(s) restored)", len(dispatcher.groups()))

    async def deactivate(self) -> None:
        """Stop being the active notifier: wait for deliveries in flight, then save the state.

        New alerts and flushes stop at once; the deliveries in flight still ack or nack the
        dispatcher, whose state is saved after they are all done.
        """
        dispatcher = self.dispatcher
        if dispatcher is None:
            return
        self.dispatcher = None
        self._activated.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._save_state(orjson.dumps(dispatcher.to_state()))
        log.info("notifier inactive")

    async def ingest(self, alerts: Sequence[Alert]) -> None:
        """Take alert transitions from the alerts topic, in their order there.

        Only the owner of the alerts partition receives alerts; Faust may hand them over before
        the activation (which reads the saved state) is complete, so this waits for it.
        """
        await self._activated.wait()
        dispatcher = self.dispatcher
        assert dispatcher is not None
        now = self._clock()
        for alert in alerts:
            dispatcher.ingest(alert, now)
        self._dirty = True

    async def flush(self) -> None:
        """Start delivering every notification that is due now."""
        dispatcher = self.dispatcher
        if dispatcher is None:
            return
        now = self._clock()
        for pending in dispatcher.due(now):
            self._dirty = True
            task = asyncio.get_running_loop().create_task(self._deliver(dispatcher, pending))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self._dirty:
            await self.save()

    async def save(self, *, durable: bool = False) -> None:
        """Persist the dispatcher's state now (``durable``: wait for the broker's ack)."""
        if self.dispatcher is not None:
            self._dirty = False
            await self._save_state(orjson.dumps(self.dispatcher.to_state()), durable=durable)

    async def save_changes(self) -> None:
        """Persist the dispatcher's state if it changed since it was last saved."""
        if self._dirty:
            await self.save()

    async def _deliver(self, dispatcher: Dispatcher, pending: PendingNotification) -> None:
        name = pending.receiver
        route = self.routes.get(name)
        if route is None:  # a group restored from state for a channel no longer configured
            log.error("notifier: channel %s is not configured; dropping its notification", name)
            dispatcher.ack(pending, self._clock())
            return
        started = time.perf_counter()
        try:
            outcome = await deliver_with_retries(
                route.channel, pending.notification, policy=route.policy
            )
        except Exception:  # a bug in a channel must not leave the group in flight for ever
            log.exception("channel %s: unexpected error; will retry the group", name)
            dispatcher.nack(pending, self._clock())
            return
        self._metrics.delivery_seconds.labels(name).observe(time.perf_counter() - started)
        if outcome.attempts > 1:
            self._metrics.deliveries.labels(name, "retried").inc(outcome.attempts - 1)
        now = self._clock()
        ident = pending.notification.notification_id
        group = (name, pending.group_key)
        if outcome.delivered:
            self._metrics.deliveries.labels(name, "ok").inc()
            dispatcher.ack(pending, now)
            for dead_id in self._dead.pop(group, ()):
                if dead_id == ident:
                    await self._dead_letter(DeliveredLater(ident, name, now))
                else:
                    await self._dead_letter(Superseded(dead_id, name, ident, now))
        else:
            dispatcher.nack(pending, now)
            # (deliver_with_retries has logged why it gave up)
            dead = DeadNotification(
                pending.notification, name, str(outcome.error), outcome.attempts, now
            )
            await self._dead_letter(dead)
            ids = self._dead.pop(group, [])  # (re-inserted: the groups stay oldest first)
            kept = [i for i in ids if i != ident][1 - MAX_DEAD_PER_GROUP :]
            self._dead[group] = [*kept, ident]
            while len(self._dead) > MAX_DEAD_GROUPS:  # bounded: the oldest are forgotten
                self._dead.pop(next(iter(self._dead)))
            self._metrics.deliveries.labels(name, "dead_lettered").inc()
        if self.dispatcher is dispatcher:  # (deactivate saves it itself)
            await self.save(durable=outcome.delivered)

    def queued_alerts(self) -> int:
        """Alerts held in notification groups, waiting to be sent or to resolve."""
        dispatcher = self.dispatcher
        return 0 if dispatcher is None else sum(len(g.alerts) for g in dispatcher.groups())
