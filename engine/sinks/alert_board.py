"""The alert board sink: hands every recorded alert transition to an in-memory
:class:`~engine.core.explain.AlertBoard`, which the worker's API and dashboard read.

In memory only and bounded (the board keeps the firing alerts and the latest transitions);
it does no I/O, so it never fails and never signals backpressure.
"""

from __future__ import annotations

from engine.core.explain import AlertBoard
from engine.sinks.base import Sink, SinkBatch

__all__ = ["AlertBoardSink"]


class AlertBoardSink(Sink):
    """Feeds ``board`` the alert transitions of each batch (see the module docstring).

    Examples
    --------
    >>> sink = AlertBoardSink(AlertBoard())
    >>> sink.add(SinkBatch())
    >>> sink.board.transitions
    0
    """

    name = "alert_board"

    def __init__(self, board: AlertBoard) -> None:
        super().__init__()
        self.board = board

    def add(self, batch: SinkBatch) -> None:
        """Take the batch's alert transitions."""
        if batch.alerts:
            self.board.add(batch.alerts)

    async def flush(self) -> None:
        """Nothing to write."""
