"""The sink seam: where the results of a batch go besides the alerts topic.

A :class:`Sink` has an explicit lifecycle, driven by the runtime:

1. :meth:`Sink.start` once, before the first batch (connect, create what is missing);
2. :meth:`Sink.add` for each batch (or timer tick) with a :class:`SinkBatch`; it only buffers;
3. :meth:`Sink.flush` after each ``add`` (and at checkpoints and shutdown): write what was
   added. A sink that cannot take more **now** raises :class:`Backpressure` with the seconds to
   wait; the runtime then waits and flushes again, which pauses consumption. A best-effort sink
   (the Redis mirror) never does: it counts what it drops instead;
4. :meth:`Sink.close` once, at shutdown.

Sinks keep their own counts (:attr:`Sink.counts`); the runtime's metrics collector reads them at
scrape time. A new sink is one module with a subclass, built in :mod:`engine.runtime.app`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from engine.core.batch import DeadLetter
from engine.model.alert import Alert
from engine.model.events import LogEvent

__all__ = ["Backpressure", "Sink", "SinkBatch"]


@dataclass(frozen=True, slots=True)
class SinkBatch:
    """What one consumed batch (or one timer tick) hands every sink.

    ``logs`` are the batch's valid log events in order, ``alerts`` the alert transitions as
    recorded on the alerts topic, ``dead`` the rejected inputs. Each sink takes what it wants.
    """

    logs: Sequence[LogEvent] = ()
    alerts: Sequence[Alert] = ()
    dead: Sequence[DeadLetter] = ()


class Backpressure(Exception):
    """A sink cannot take more now; ``retry_after_seconds`` says when to flush again."""

    def __init__(self, sink: str, retry_after_seconds: float, reason: str) -> None:
        super().__init__(f"sink {sink}: {reason}; retry in {retry_after_seconds:.1f}s")
        self.sink = sink
        self.retry_after_seconds = retry_after_seconds


class Sink(ABC):
    """A destination of batch results (see the module docstring).

    ``name`` is the sink's bounded metric label; ``counts`` maps an outcome name to how many
    items had it since start (read by the metrics collector).
    """

    name: str = "sink"

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def count(self, outcome: str, n: int = 1) -> None:
        """Add ``n`` items to ``outcome``."""
        self.counts[outcome] = self.counts.get(outcome, 0) + n

    async def start(self) -> None:  # noqa: B027  (optional hook)
        """Prepare to write (connect, declare)."""

    @abstractmethod
    def add(self, batch: SinkBatch) -> None:
        """Buffer what this sink takes from ``batch``; no I/O."""

    @abstractmethod
    async def flush(self) -> None:
        """Write what was added; may raise :class:`Backpressure`."""

    async def close(self) -> None:  # noqa: B027  (optional hook)
        """Release connections; called once at shutdown, after the last flush."""
