"""engine.sinks: the dead-letter sink and how the runtime drives sinks (backpressure)."""

from __future__ import annotations

import asyncio

from engine.core.batch import DeadLetter
from engine.model.events import Rejected
from engine.runtime.ingest import flush_sinks
from engine.sinks import Backpressure, DeadLetterSink, Sink, SinkBatch


def _dead(i: int) -> DeadLetter:
    return DeadLetter(
        Rejected("invalid_json", "invalid JSON", b"{x" + bytes([48 + i])), "t", 0, i, None
    )


async def test_each_rejected_input_is_written_with_its_headers() -> None:
    sent: list[tuple[bytes | None, bytes, dict[str, bytes]]] = []

    async def send(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        sent.append((key, value, dict(headers)))

    sink = DeadLetterSink(send)
    sink.add(SinkBatch(dead=[_dead(1), _dead(2)]))
    assert sent == []  # add only buffers
    await sink.flush()
    assert [v for _, v, _ in sent] == [b"{x1", b"{x2"]
    assert sent[1][2]["kestrel-source-offset"] == b"2"
    assert sink.counts == {"written": 2}
    await sink.flush()
    assert len(sent) == 2  # nothing is written twice


async def test_a_refused_record_is_counted_and_the_rest_written() -> None:
    sent: list[bytes] = []

    async def send(key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        if value == b"{x1":
            raise OSError("the topic refused it")
        sent.append(value)

    sink = DeadLetterSink(send)
    sink.add(SinkBatch(dead=[_dead(1), _dead(2)]))
    await sink.flush()
    assert sent == [b"{x2"]
    assert sink.counts == {"failed": 1, "written": 1}


class _Slow(Sink):
    """A sink that asks for a pause twice before it takes a batch."""

    name = "slow"

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[SinkBatch] = []
        self.refusals = 2

    def add(self, batch: SinkBatch) -> None:
        self.pending.append(batch)

    async def flush(self) -> None:
        if self.refusals:
            self.refusals -= 1
            raise Backpressure(self.name, 0.01, "database down")
        self.count("written", len(self.pending))
        self.pending.clear()


async def test_backpressure_pauses_until_the_sink_takes_the_batch() -> None:
    slow = _Slow()
    await asyncio.wait_for(flush_sinks([slow], SinkBatch()), 5)
    assert slow.refusals == 0
    assert slow.counts == {"written": 1}
