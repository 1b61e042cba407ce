"""Notification: the handler of the alerts topic, the notifier's timer, the silences view.

The alerts topic has one partition, so one worker of the group is the active notifier (see
:class:`engine.runtime.notifier.Notifier`); it activates when that partition is assigned, with
the state saved by the previous owner, and deactivates (saving its state) when it is revoked.
Silences are followed from their compacted topic by every worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from aiokafka.errors import KafkaError

from engine.core.batch import Record
from engine.model.alert import Alert
from engine.notify import Silence
from engine.runtime.kafka_clients import KafkaAccessError
from engine.runtime.topic_view import TopicView, read_last
from engine.runtime.worker import Worker

__all__ = ["read_saved_state", "wire_delivery"]

log = logging.getLogger("kestrel.worker")


async def read_saved_state(
    read: Callable[[], Awaitable[bytes | None]],
    keep_trying: Callable[[], bool],
    *,
    first_delay: float = 0.5,
    max_delay: float = 5.0,
) -> tuple[bool, bytes | None]:
    """The notifier's saved state from ``read``, read again (after ``first_delay`` seconds,
    doubling up to ``max_delay``) while no broker answers, so that an outage during a rebalance
    does not crash the worker: ``(True, state)``, or ``(False, None)`` once ``keep_trying``
    says no (the worker stops, or the group rebalanced and the next assignment reads it)."""
    delay = first_delay
    while True:
        try:
            return True, await read()
        except (KafkaAccessError, KafkaError) as exc:
            if not keep_trying():
                return False, None
            log.warning("notifier: cannot read its saved state (%s); again in %.1f s", exc, delay)
            await asyncio.sleep(delay)
            delay = min(2 * delay, max_delay)


def wire_delivery(worker: Worker) -> None:
    """Add the delivery handler, the notifier's timer and the silences view to ``worker.app``."""
    app, cfg, notifier = worker.app, worker.config, worker.notifier
    alerts_tp = (cfg.topics.alerts, 0)
    state_topic = cfg.notify_state_topic

    async def deliver(tp: Any, records: Sequence[Record]) -> None:
        # This worker owns the alerts partition, but its notifier may still be reading the saved
        # state. A rebalance meanwhile ends the wait: the partition's next owner reads them.
        generation = app.consumer_generation_id
        while not notifier.active:
            if app.consumer_generation_id != generation or app.should_stop:
                return
            await asyncio.sleep(0.05)
        alerts = []
        for record in records:
            try:
                alerts.append(Alert.from_dict(orjson.loads(record.value or b"")))
            except (ValueError, KeyError, TypeError) as exc:
                log.error("alerts topic: skipping an unreadable record: %s", exc)
        if alerts:
            await notifier.ingest(alerts)

    # Subscribe to the alerts topic; its records come to deliver() in batches (see transport).
    app.topics.add(worker.topics.alerts)
    app.batch_handlers[cfg.topics.alerts] = deliver
    # The dispatcher's state covers every alert whose offset is committed: a crash then loses
    # none (the new owner restores the state and reads the alerts after the commit).
    app.before_commit.append(notifier.save_changes)

    @app.timer(0.5)  # type: ignore[untyped-decorator]
    async def flush_notifications() -> None:
        await notifier.flush()

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned_alerts(sender: Any, assigned: Any, **kwargs: Any) -> None:
        if not notifier.active and any((tp.topic, tp.partition) == alerts_tp for tp in assigned):
            if worker.silence_view is not None:  # know the silences before sending anything
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(worker.silence_view.ready.wait(), 10.0)
            generation = app.consumer_generation_id
            found, state = await read_saved_state(
                lambda: read_last(cfg.kafka, state_topic),
                lambda: not app.should_stop and app.consumer_generation_id == generation,
            )
            if found:
                notifier.activate(state)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked_alerts(sender: Any, revoked: Any, **kwargs: Any) -> None:
        if any((tp.topic, tp.partition) == alerts_tp for tp in revoked):
            await notifier.deactivate()

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def on_shutdown_notify(sender: Any, **kwargs: Any) -> None:
        await notifier.deactivate()
        if worker.silence_view is not None:
            await worker.silence_view.stop()

    def apply_silence(key: bytes, value: bytes | None) -> None:
        if value is None:
            return
        try:
            worker.silences.upsert(Silence.from_state(orjson.loads(value)))
        except (ValueError, KeyError, TypeError) as exc:
            log.error("silences topic: skipping an unreadable record: %s", exc)

    worker.silence_view = TopicView(cfg.kafka, cfg.topics.silences, apply_silence)

    @app.task  # type: ignore[untyped-decorator]
    async def follow_silences() -> None:
        assert worker.silence_view is not None
        await worker.topics.silences.maybe_declare()
        worker.silence_view.start()

    @app.task  # type: ignore[untyped-decorator]
    async def declare_alert_topics() -> None:
        await worker.topics.alerts_dlq.maybe_declare()
        await worker.topics.notify_state.maybe_declare()
