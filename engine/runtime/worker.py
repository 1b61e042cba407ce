"""What one worker process holds: its topics, state table, pipeline, sinks and notifier.

Built by :func:`engine.runtime.app.build_worker`; the handlers (:mod:`engine.runtime.ingest`,
:mod:`engine.runtime.delivery`) and the web views (:mod:`engine.runtime.web`) work on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from engine.config import Config
from engine.core.pipeline import Pipeline
from engine.formats import Decoder
from engine.notify import Silences
from engine.runtime.metrics import KestrelMetrics
from engine.runtime.notifier import Notifier
from engine.runtime.topic_view import TopicView
from engine.runtime.transport import KestrelApp
from engine.sinks import RedisMirror, Sink

__all__ = ["Topics", "Worker"]


@dataclass(frozen=True, slots=True)
class Topics:
    """The Faust topics a worker reads and writes (raw bytes in and out)."""

    #: Every input topic, read by the ingest handler.
    inputs: Any
    #: Alert transitions, the durable record (one partition: one active notifier).
    alerts: Any
    #: Rejected inputs.
    dlq: Any
    #: Notifications given up on.
    alerts_dlq: Any
    #: Silences made through the API (compacted).
    silences: Any
    #: The notifier's state snapshots (compacted).
    notify_state: Any


@dataclass(slots=True)
class Worker:
    """Everything one worker process runs; :func:`build_worker` wires it."""

    config: Config
    app: KestrelApp
    topics: Topics
    table: Any
    pipeline: Pipeline
    decoders: dict[str, Decoder]
    sinks: list[Sink]
    notifier: Notifier
    silences: Silences
    metrics: KestrelMetrics
    registry: CollectorRegistry
    clock: Callable[[], float]
    mirror: RedisMirror | None = None
    silence_view: TopicView | None = None
    started_at: float = 0.0

    @property
    def input_topics(self) -> frozenset[str]:
        """The names of the input topics."""
        return frozenset(self.decoders)
