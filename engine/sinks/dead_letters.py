"""The input dead-letter topic as a sink: each rejected input, its original bytes and why.

The record's value is the original bytes (for one bad item of a batch: that item; for an oversized
message: its first 64 KiB) and its headers say why and from where (see
:meth:`engine.core.batch.DeadLetter.headers`). Writing goes through an injected ``send``
coroutine (the runtime passes the Kafka topic's), so this module knows no Kafka client.

A record the topic refuses is counted (``failed``) and logged; the rest of the batch goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from engine.core.batch import DeadLetter
from engine.sinks.base import Sink, SinkBatch

__all__ = ["DeadLetterSink", "Send"]

log = logging.getLogger("kestrel.dlq")

#: ``send(key, value, headers)``: write one record to the dead-letter topic.
Send = Callable[[bytes | None, bytes, list[tuple[str, bytes]]], Awaitable[object]]


class DeadLetterSink(Sink):
    """Writes rejected inputs to the dead-letter topic (see the module docstring)."""

    name = "dlq"

    def __init__(self, send: Send) -> None:
        super().__init__()
        self._send = send
        self._pending: list[DeadLetter] = []

    def add(self, batch: SinkBatch) -> None:
        """Buffer the batch's rejected inputs."""
        self._pending.extend(batch.dead)

    async def flush(self) -> None:
        """Write each buffered rejected input; a refused one is counted and logged."""
        pending, self._pending = self._pending, []
        for dead in pending:
            try:
                await self._send(dead.key, dead.rejected.original, dead.headers())
            except Exception as exc:  # the DLQ refused it: count it, keep the batch going
                self.count("failed")
                log.error("dead-letter topic: cannot write a rejected input: %r", exc)
            else:
                self.count("written")
